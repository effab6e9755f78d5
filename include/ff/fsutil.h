/* fsutil.h - small file-system helpers: mkdir -p and unique run directories. */
#ifndef FF_FSUTIL_H
#define FF_FSUTIL_H

#include <stddef.h>
#include <time.h>

#include "ff/err.h"

/* Creates path and its missing parents (like mkdir -p). */
int ff_mkdir_p(const char *path, ff_err *err);

/* Creates a new, empty directory <root>/<YYYYmmdd-HHMMSS>[_<name>] for time t
 * (adding -2, -3, ... if it exists: a run never overwrites another) and
 * writes its path into out. */
int ff_make_run_dir(const char *root, const char *name, time_t t, char *out, size_t cap,
                    ff_err *err);

#endif
