/* err.h - error codes and the error record every fallible ffrun function fills.
 *
 * Convention: a function that can fail returns int (FF_OK = 0, or a negative
 * FF_ERR_* code) and takes `ff_err *err` as its last argument. On failure it
 * fills err->msg with a complete, user-facing message (for config errors:
 * "file:line:col: what was expected") and returns the same code it stored in
 * err->code. Nothing below main.c prints or exits. err may be NULL when the
 * caller does not care about the message. */
#ifndef FF_ERR_H
#define FF_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    FF_OK = 0,
    FF_ERR_USAGE = -1,       /* bad command line or config: exit status 2 */
    FF_ERR_IO = -2,          /* open/read/write/fsync/rename failed */
    FF_ERR_FORMAT = -3,      /* corrupt, truncated or unexpected file content */
    FF_ERR_NOMEM = -4,       /* allocation failed */
    FF_ERR_INTERRUPTED = -5, /* stopped by SIGINT/SIGTERM */
    FF_ERR_RUNTIME = -6      /* anything else that went wrong while running */
};

#define FF_ERR_MSG_MAX 1024

typedef struct ff_err {
    int code;
    char msg[FF_ERR_MSG_MAX];
} ff_err;

/* Stores code and a printf-formatted message in err (if not NULL); returns code.
 * Typical use: return ff_err_set(err, FF_ERR_IO, "%s: %s", path, strerror(errno)); */
int ff_err_set(ff_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an already filled message (e.g. adding a file name). */
int ff_err_prefix(ff_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Process exit status for an error code: 2 for FF_ERR_USAGE, 130 for
 * FF_ERR_INTERRUPTED, 1 otherwise, 0 for FF_OK. */
int ff_err_exit_status(int code);

/* Always-on assertion for programmer errors (never for bad input). */
#define FF_ASSERT(cond)                                                              \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
