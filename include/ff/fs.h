/* fs.h - small file-system helpers: mkdir -p, unique run directories, the one
 * whole-file reader and the one atomic writer every module uses, and the cleanup of
 * temporary files a killed writer left behind.
 *
 * Reading: every file ffrun reads that comes from the user (config, IDX and .gz data,
 * SHA256SUMS, .ffm models, hybrid caches, event files) is opened with
 * ff_fs_open_regular, which never blocks (O_NONBLOCK, so a FIFO cannot hang open(2)) and
 * refuses anything but a regular file with "<path>: not a regular file (a FIFO)".
 *
 * Writing: ff_fs_write_file_atomic (or ff_fs_atomic_open / _write / _commit for a file
 * written in pieces) writes "<path>.tmp.<pid>.<n>" (created with O_EXCL, so two
 * writers of one path never share a temporary file), fsyncs it, renames it over
 * <path> and fsyncs the directory: readers see the old file or the new one, never a
 * torn one, and the last rename wins. On any failure the temporary file is unlinked.
 * A writer killed by SIGKILL leaves its temporary file; ff_fs_clean_stale_tmp removes
 * those whose process is gone. */
#ifndef FF_FS_H
#define FF_FS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ff/err.h"

#define FF_FS_PATH_MAX 4096

/* Creates path and its missing parents (like mkdir -p). FF_ERR_USAGE for "". */
int ff_fs_mkdir_p(const char *path, ff_err *err);

/* Creates a new, empty directory <root>/<YYYYmmdd-HHMMSS>[_<name>] for time t
 * (adding -2, -3, ... if it exists: a run never overwrites another) and
 * writes its path into out. */
int ff_fs_make_run_dir(const char *root, const char *name, time_t t, char *out, size_t cap,
                    ff_err *err);

/* write(2) all len bytes, retrying on EINTR and short writes; 0 or -1 (errno set). */
int ff_fs_write_all(int fd, const void *data, size_t len);

/* fsync the directory holding path (after a rename into it); best effort. */
void ff_fs_fsync_parent_dir(const char *path);

/* ------------------------------------------------------------------ reading */

/* Opens path read-only (O_CLOEXEC) without blocking and checks it is a regular file;
 * on success *fd is a blocking descriptor the caller closes.
 * Errors: FF_ERR_IO "<path>: cannot open: <strerror>" (missing, no permission, ...);
 * FF_ERR_FORMAT "<path>: not a regular file (a FIFO)" (or a directory, a character
 * device, a block device, a socket). */
int ff_fs_open_regular(const char *path, int *fd, ff_err *err);

/* Reads the whole regular file path (opened with ff_fs_open_regular) into *buf, a
 * malloc'ed buffer the caller frees, holding *len bytes plus a NUL after them (so a
 * text file is a C string). Errors: those of ff_fs_open_regular; FF_ERR_IO (read
 * failed); FF_ERR_FORMAT "<path>: larger than <max_bytes> bytes"; FF_ERR_NOMEM. On
 * error *buf is NULL and *len 0. */
int ff_fs_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, ff_err *err);

/* ------------------------------------------------------------------ writing */

/* Writes data[0..len) to path atomically (see the top of this file). Errors: FF_ERR_IO
 * "<path>: cannot write: <strerror>" (or cannot create the temporary file); nothing
 * is left behind. */
int ff_fs_write_file_atomic(const char *path, const void *data, size_t len, ff_err *err);

/* A file being written atomically in pieces: ff_fs_atomic_open, any number of
 * ff_fs_atomic_write, then ff_fs_atomic_commit (renames it into place) or ff_fs_atomic_abort
 * (drops it). _write and _commit abort by themselves when they fail, and
 * ff_fs_atomic_abort is a no-op on a zeroed, committed or aborted one, so error paths
 * may always call it. */
typedef struct ff_atomic_file {
    int fd;
    int open;                            /* the temporary file exists */
    char path[FF_FS_PATH_MAX];       /* the final name */
    char tmp[FF_FS_PATH_MAX + 48];   /* "<path>.tmp.<pid>.<n>" */
} ff_atomic_file;

int ff_fs_atomic_open(ff_atomic_file *f, const char *path, ff_err *err);
int ff_fs_atomic_write(ff_atomic_file *f, const void *data, size_t len, ff_err *err);
int ff_fs_atomic_commit(ff_atomic_file *f, ff_err *err);
void ff_fs_atomic_abort(ff_atomic_file *f);

/* Removes from dir every regular file named "<anything>.tmp.<pid>.<n>" (as the
 * writers above name them) whose pid is no live process (kill(pid, 0) fails with
 * ESRCH): the leftovers of a writer killed mid-write. Files of live processes and
 * every other name are left alone. *removed (if not NULL) is set to the number
 * removed. A missing dir is not an error (0 removed); FF_ERR_IO if it cannot be read
 * or a stale file cannot be removed. */
int ff_fs_clean_stale_tmp(const char *dir, int *removed, ff_err *err);

#endif
