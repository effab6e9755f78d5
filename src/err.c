/* err.c - filling ff_err records (see include/ff/err.h). */
#include "ff/err.h"

#include <stdarg.h>
#include <string.h>

int ff_err_set(ff_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ff_err_prefix(ff_err *err, const char *fmt, ...)
{
    if (!err)
        return FF_OK;
    char prefix[FF_ERR_MSG_MAX], old[FF_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}

int ff_err_exit_status(int code)
{
    switch (code) {
    case FF_OK: return 0;
    case FF_ERR_USAGE: return 2;
    case FF_ERR_INTERRUPTED: return 130;
    default: return 1;
    }
}
