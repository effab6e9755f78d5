/* fsutil.c - mkdir -p and never-overwriting run directories (include/ff/fsutil.h). */
#include "ff/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ff_mkdir_p(const char *path, ff_err *err)
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

int ff_make_run_dir(const char *root, const char *name, time_t t, char *out, size_t cap,
                    ff_err *err)
{
    int rc = ff_mkdir_p(root, err);
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

int ff_write_all(int fd, const void *data, size_t len)
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

void ff_fsync_parent_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}
