/* fs.c - mkdir -p, never-overwriting run directories, the non-blocking whole-file
 * reader, atomic writes and stale temporary files (include/ff/fs.h). */
#include "ff/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ff_fs_mkdir_p(const char *path, ff_err *err)
{
    char buf[4096];
    if (!*path) /* the loop below starts after the first byte */
        return ff_err_set(err, FF_ERR_USAGE, "cannot create a directory with an empty name");
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ff_err_set(err, FF_ERR_USAGE, "path too long: %s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return ff_err_set(err, FF_ERR_IO, "cannot create directory %s: %s", buf,
                              strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ff_err_set(err, FF_ERR_IO, "%s exists and is not a directory", path);
    return FF_OK;
}

int ff_fs_make_run_dir(const char *root, const char *name, time_t t, char *out, size_t cap,
                    ff_err *err)
{
    int rc = ff_fs_mkdir_p(root, err);
    if (rc)
        return rc;
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int n = 1; n < 1000; n++) {
        char suffix[16] = "";
        if (n > 1)
            snprintf(suffix, sizeof suffix, "-%d", n);
        int len = snprintf(out, cap, "%s/%s%s%s%s", root, stamp, suffix, name && *name ? "_" : "",
                           name ? name : "");
        if (len < 0 || (size_t)len >= cap)
            return ff_err_set(err, FF_ERR_USAGE, "run directory path too long under %s", root);
        if (mkdir(out, 0777) == 0)
            return FF_OK;
        if (errno != EEXIST)
            return ff_err_set(err, FF_ERR_IO, "cannot create run directory %s: %s", out,
                              strerror(errno));
    }
    return ff_err_set(err, FF_ERR_IO, "too many runs named %s under %s", stamp, root);
}

int ff_fs_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *b = data;
    while (len) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        b += w;
        len -= (size_t)w;
    }
    return 0;
}

void ff_fs_fsync_parent_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ------------------------------------------------------------------ reading */

static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m)   ? "a FIFO"
           : S_ISDIR(m)  ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a plain file";
}

/* ff_fs_open_regular, also returning the fstat result. */
static int open_regular(const char *path, int *fd_out, struct stat *st, ff_err *err)
{
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ff_err_set(err, FF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return ff_err_set(err, FF_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return ff_err_set(err, FF_ERR_FORMAT, "%s: not a regular file (%s)", path,
                          file_kind(st->st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return ff_err_set(err, FF_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *fd_out = fd;
    return FF_OK;
}

int ff_fs_open_regular(const char *path, int *fd, ff_err *err)
{
    struct stat st;
    return open_regular(path, fd, &st, err);
}

static int too_large(const char *path, size_t max_bytes, ff_err *err)
{
    return ff_err_set(err, FF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
}

/* Reads fd to EOF into a buffer of first capacity cap (> 0), at most max_bytes. */
static int read_fd(int fd, const char *path, size_t cap, size_t max_bytes, uint8_t **out,
                   size_t *len, ff_err *err)
{
    const size_t limit = max_bytes < SIZE_MAX - 1 ? max_bytes + 1 : SIZE_MAX; /* + the NUL */
    size_t used = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
    for (;;) {
        if (used == cap) { /* full: the file grew, or the size was unknown */
            size_t ncap = cap > limit / 2 ? limit : 2 * cap;
            uint8_t *nbuf = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nbuf) {
                free(buf);
                return ncap > cap ? ff_err_set(err, FF_ERR_NOMEM,
                                               "%s: out of memory reading %zu bytes", path, ncap)
                                  : too_large(path, max_bytes, err);
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return ff_err_set(err, FF_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    if (used > max_bytes) {
        free(buf);
        return too_large(path, max_bytes, err);
    }
    buf[used] = 0; /* used < cap: the last read returned 0 with room left */
    *out = buf;
    *len = used;
    return FF_OK;
}

int ff_fs_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, ff_err *err)
{
    FF_ASSERT(path && buf && len);
    *buf = NULL;
    *len = 0;
    int fd;
    struct stat st;
    int rc = open_regular(path, &fd, &st, err);
    if (rc)
        return rc;
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return too_large(path, max_bytes, err);
    }
    rc = read_fd(fd, path, (size_t)st.st_size + 1, max_bytes, buf, len, err);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------ writing */

/* Per-process counter: with the pid it makes every temporary name unique. */
static unsigned tmp_counter;

int ff_fs_atomic_open(ff_atomic_file *f, const char *path, ff_err *err)
{
    FF_ASSERT(f && path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if ((size_t)snprintf(f->path, sizeof f->path, "%s", path) >= sizeof f->path)
        return ff_err_set(err, FF_ERR_USAGE, "path too long: %s", path);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = __atomic_fetch_add(&tmp_counter, 1, __ATOMIC_RELAXED);
        snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld.%u", path, (long)getpid(), n);
        /* O_EXCL: never share (or truncate) another writer's temporary file */
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f->fd >= 0) {
            f->open = 1;
            return FF_OK;
        }
        if (errno != EEXIST)
            break;
    }
    return ff_err_set(err, FF_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
}

void ff_fs_atomic_abort(ff_atomic_file *f)
{
    if (!f || !f->open)
        return;
    if (f->fd >= 0)
        close(f->fd);
    unlink(f->tmp);
    f->fd = -1;
    f->open = 0;
}

/* Aborts f and reports errno e as a failure to write f->path. */
static int write_failed(ff_atomic_file *f, int e, ff_err *err)
{
    ff_fs_atomic_abort(f);
    return ff_err_set(err, FF_ERR_IO, "%s: cannot write: %s", f->path, strerror(e));
}

int ff_fs_atomic_write(ff_atomic_file *f, const void *data, size_t len, ff_err *err)
{
    FF_ASSERT(f && f->open);
    if (ff_fs_write_all(f->fd, data, len) != 0)
        return write_failed(f, errno, err);
    return FF_OK;
}

int ff_fs_atomic_commit(ff_atomic_file *f, ff_err *err)
{
    FF_ASSERT(f && f->open);
    if (fsync(f->fd) != 0)
        return write_failed(f, errno, err);
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0 || rename(f->tmp, f->path) != 0)
        return write_failed(f, errno, err);
    f->open = 0;
    ff_fs_fsync_parent_dir(f->path);
    return FF_OK;
}

int ff_fs_write_file_atomic(const char *path, const void *data, size_t len, ff_err *err)
{
    ff_atomic_file f;
    int rc = ff_fs_atomic_open(&f, path, err);
    if (!rc)
        rc = ff_fs_atomic_write(&f, data, len, err);
    if (!rc)
        rc = ff_fs_atomic_commit(&f, err);
    return rc;
}

/* The pid in a name "<anything>.tmp.<pid>.<n>" (digits only), or 0. */
static long tmp_name_pid(const char *name)
{
    const char *p = NULL;
    for (const char *q = strstr(name, ".tmp."); q; q = strstr(q + 1, ".tmp."))
        p = q; /* the last ".tmp." */
    if (!p || p == name)
        return 0;
    p += 5;
    char *end;
    if (*p < '1' || *p > '9')
        return 0;
    long pid = strtol(p, &end, 10);
    if (*end != '.' || !end[1] || end - p > 10)
        return 0;
    for (const char *d = end + 1; *d; d++)
        if (*d < '0' || *d > '9')
            return 0;
    return pid;
}

int ff_fs_clean_stale_tmp(const char *dir, int *removed, ff_err *err)
{
    int n = 0, rc = FF_OK;
    if (removed)
        *removed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? FF_OK
                               : ff_err_set(err, FF_ERR_IO, "%s: cannot read directory: %s",
                                            dir, strerror(errno));
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        long pid = tmp_name_pid(e->d_name);
        if (pid <= 0 || pid > INT32_MAX || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* not ours, or its writer may still be running */
        char path[FF_FS_PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlink(path) == 0)
            n++;
        else if (errno != ENOENT) /* ENOENT: another process cleaned it first */
            rc = ff_err_set(err, FF_ERR_IO, "%s: cannot remove stale temporary file: %s", path,
                            strerror(errno));
    }
    closedir(d);
    if (removed)
        *removed = n;
    return rc;
}
