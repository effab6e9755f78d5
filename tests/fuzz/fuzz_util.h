/* fuzz_util.h - helpers shared by the libFuzzer harnesses in tests/fuzz/: a scratch
 * file (or directory) per process for the parsers that read from a path, and
 * fuzz_fail, which prints what broke and aborts so libFuzzer keeps the input. */
#ifndef FF_FUZZ_UTIL_H
#define FF_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A directory of its own under $TMPDIR (default /tmp), made once, removed at exit. */
static char fuzz_dir_path[256];

__attribute__((unused)) static void fuzz_dir_remove(void)
{
    char cmd[300];
    if (fuzz_dir_path[0] && snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path) < (int)sizeof cmd)
        (void)!system(cmd);
}

__attribute__((unused)) static const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/ff_fuzz.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Writes len bytes to <fuzz_dir>/name (replacing it) and its path into out. */
__attribute__((unused)) static void fuzz_write_file(const char *name, const void *data, size_t len, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", fuzz_dir(), name);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(out);
        abort();
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k <= 0) {
            perror(out);
            abort();
        }
        p += k;
        len -= (size_t)k;
    }
    close(fd);
}

/* Where the harnesses store sums of what they read, so the reads are not optimised away. */
__attribute__((unused)) static volatile double fuzz_sink;

/* A property the parser promises was broken: say which and abort (libFuzzer saves the input). */
__attribute__((format(printf, 1, 2), noreturn)) static void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

#endif
