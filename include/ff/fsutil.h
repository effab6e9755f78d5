/* fsutil.h - small file-system helpers: mkdir -p and unique run directories. */
#ifndef FF_FSUTIL_H
#define FF_FSUTIL_H

#include <stddef.h>
#include <time.h>

#include "ff/err.h"

/* Creates path and its missing parents (like mkdir -p). FF_ERR_USAGE for "". */
int ff_mkdir_p(const char *path, ff_err *err);

/* Creates a new, empty directory <root>/<YYYYmmdd-HHMMSS>[_<name>] for time t
 * (adding -2, -3, ... if it exists: a run never overwrites another) and
 * writes its path into out. */
int ff_make_run_dir(const char *root, const char *name, time_t t, char *out, size_t cap,
                    ff_err *err);

/* write(2) all len bytes, retrying on EINTR and short writes; 0 or -1 (errno set). */
int ff_write_all(int fd, const void *data, size_t len);

/* fsync the directory holding path (after a rename into it); best effort. */
void ff_fsync_parent_dir(const char *path);

#endif
