/* err.c - filling ff_err records and the exit status they mean (include/ff/err.h). */
#include "ff/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
    char old[FF_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof err->msg ? (size_t)n : sizeof err->msg - 1;
    const char *parts[2] = {": ", old};
    for (int p = 0; p < 2; p++)
        for (const char *c = parts[p]; *c && used + 1 < sizeof err->msg; c++)
            err->msg[used++] = *c;
    err->msg[used] = '\0';
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
