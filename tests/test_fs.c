/* test_fs.c - the whole-file reader (regular files only, never blocking on a FIFO),
 * atomic writes (unique temporary names, nothing left behind, concurrent writers of one
 * path) and the cleanup of stale temporary files (include/ff/fs.h). */
#include "ff/err.h"
#include "ff/text.h"
#include "ff/fs.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp_root[64];

static int has(const char *s, const char *sub) { return s && sub && strstr(s, sub) != NULL; }

/* A fresh sub-directory of the temp root; returns a static-lifetime copy. */
static const char *case_dir(const char *name)
{
    static char paths[16][256];
    static int used;
    char *p = paths[used++ % 16];
    snprintf(p, 256, "%s/%s", tmp_root, name);
    if (mkdir(p, 0700) != 0)
        fprintf(stderr, "  cannot create %s\n", p);
    return p;
}

static const char *join(const char *dir, const char *name)
{
    static char paths[8][512];
    static int used;
    char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name); /* dir may be an earlier result */
    char *p = paths[used++ % 8];
    memcpy(p, buf, sizeof buf);
    return p;
}

static int put_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* Number of entries of dir (without . and ..) whose name contains sub. */
static int count_names(const char *dir, const char *sub)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, sub))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    int st;
    waitpid(p, &st, 0);
    return p;
}

/* ------------------------------------------------------------------ reading */

static void test_read_file(void)
{
    const char *dir = case_dir("read");
    const char *path = join(dir, "f.bin");
    uint8_t data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    CHECK(put_file(path, data, sizeof data) == 0);
    uint8_t *b = NULL;
    size_t len = 0;
    ff_err e = {0};
    CHECK(ff_fs_read_file(path, 100, &b, &len, &e) == FF_OK);
    CHECK(b && len == 100 && memcmp(b, data, 100) == 0 && b[100] == 0); /* NUL after it */
    free(b);
    /* one byte over the limit */
    b = (uint8_t *)&len;
    CHECK(ff_fs_read_file(path, 99, &b, &len, &e) == FF_ERR_FORMAT);
    CHECK(b == NULL && len == 0 && has(e.msg, path) && has(e.msg, "larger than 99 bytes"));
    /* empty: a valid, NUL-terminated buffer */
    const char *empty = join(dir, "empty");
    CHECK(put_file(empty, "", 0) == 0);
    CHECK(ff_fs_read_file(empty, 10, &b, &len, &e) == FF_OK && b && len == 0 && b[0] == 0);
    free(b);
    /* missing */
    CHECK(ff_fs_read_file(join(dir, "nope"), 10, &b, &len, &e) == FF_ERR_IO);
    CHECK(has(e.msg, "nope: cannot open: No such file") && b == NULL);
    /* a directory and a character device are refused, naming the file and its kind */
    CHECK(ff_fs_read_file(dir, 10, &b, &len, &e) == FF_ERR_FORMAT);
    CHECK(has(e.msg, dir) && has(e.msg, "not a regular file (a directory)"));
    CHECK(ff_fs_read_file("/dev/null", 10, &b, &len, &e) == FF_ERR_FORMAT);
    CHECK(has(e.msg, "/dev/null: not a regular file (a character device)"));
}

/* A FIFO with no writer made open(2) wait forever (issue 20 item 8). The alarm
 * turns a regression into a failed test instead of a hung one. */
static void test_fifo_does_not_block(void)
{
    const char *dir = case_dir("fifo");
    const char *fifo = join(dir, "config.yaml");
    CHECK(mkfifo(fifo, 0600) == 0);
    uint8_t *b = NULL;
    size_t len = 0;
    ff_err e = {0};
    alarm(10);
    CHECK(ff_fs_read_file(fifo, 1 << 20, &b, &len, &e) == FF_ERR_FORMAT);
    CHECK(has(e.msg, fifo) && has(e.msg, "not a regular file (a FIFO)") && b == NULL);
    int fd = -1;
    CHECK(ff_fs_open_regular(fifo, &fd, &e) == FF_ERR_FORMAT && fd == -1);
    CHECK(has(e.msg, "not a regular file (a FIFO)"));
    alarm(0);
    /* a regular file: a blocking, close-on-exec descriptor */
    const char *reg = join(dir, "r");
    CHECK(put_file(reg, "abc", 3) == 0);
    CHECK(ff_fs_open_regular(reg, &fd, &e) == FF_OK && fd >= 0);
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) == 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    char got[4] = {0};
    CHECK(read(fd, got, 4) == 3 && memcmp(got, "abc", 3) == 0);
    close(fd);
}

/* ------------------------------------------------------------------ writing */

static void test_write_atomic(void)
{
    const char *dir = case_dir("write");
    const char *path = join(dir, "m.ffm");
    ff_err e = {0};
    uint8_t *b = NULL;
    size_t len = 0;
    CHECK(ff_fs_write_file_atomic(path, "first", 5, &e) == FF_OK);
    CHECK(ff_fs_write_file_atomic(path, "second!", 7, &e) == FF_OK); /* replaces it */
    CHECK(ff_fs_read_file(path, 100, &b, &len, &e) == FF_OK && len == 7 && !memcmp(b, "second!", 7));
    free(b);
    CHECK(count_names(dir, ".tmp") == 0);

    /* two writers of one path at once: distinct temporary files, "<path>.tmp.<pid>.<n>" */
    ff_atomic_file a, c;
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s.tmp.%ld.", path, (long)getpid());
    CHECK(ff_fs_atomic_open(&a, path, &e) == FF_OK && ff_fs_atomic_open(&c, path, &e) == FF_OK);
    CHECK(strcmp(a.tmp, c.tmp) != 0);
    CHECK(strncmp(a.tmp, prefix, strlen(prefix)) == 0 && strncmp(c.tmp, prefix, strlen(prefix)) == 0);
    CHECK(count_names(dir, ".tmp.") == 2);
    CHECK(ff_fs_atomic_write(&a, "aaaa", 4, &e) == FF_OK && ff_fs_atomic_write(&c, "cc", 2, &e) == FF_OK);
    CHECK(ff_fs_atomic_write(&a, "AA", 2, &e) == FF_OK);
    CHECK(ff_fs_atomic_commit(&c, &e) == FF_OK && ff_fs_atomic_commit(&a, &e) == FF_OK);
    ff_fs_atomic_abort(&a); /* no-op after a commit */
    CHECK(ff_fs_read_file(path, 100, &b, &len, &e) == FF_OK && len == 6 && !memcmp(b, "aaaaAA", 6));
    free(b);
    CHECK(count_names(dir, ".tmp") == 0);

    /* abort: neither the file nor the temporary one appears */
    const char *other = join(dir, "other.bin");
    CHECK(ff_fs_atomic_open(&a, other, &e) == FF_OK && ff_fs_atomic_write(&a, "x", 1, &e) == FF_OK);
    ff_fs_atomic_abort(&a);
    ff_fs_atomic_abort(&a);
    CHECK(access(other, F_OK) != 0 && count_names(dir, ".tmp") == 0);
    ff_atomic_file z;
    memset(&z, 0, sizeof z);
    ff_fs_atomic_abort(&z); /* safe on a zeroed one */

    /* failures name the file and leave nothing behind */
    CHECK(ff_fs_write_file_atomic(join(dir, "no/such/dir.bin"), "x", 1, &e) == FF_ERR_IO);
    CHECK(has(e.msg, "no/such/dir.bin.tmp.") && has(e.msg, "No such file"));
    const char *taken = join(dir, "taken"); /* rename over a non-empty directory fails */
    CHECK(mkdir(taken, 0700) == 0 && put_file(join(taken, "f"), "", 0) == 0);
    CHECK(ff_fs_write_file_atomic(taken, "x", 1, &e) == FF_ERR_IO);
    CHECK(has(e.msg, taken) && has(e.msg, "cannot write"));
    CHECK(count_names(dir, ".tmp") == 0);
}

/* Two processes saving one model path (issue 20 item 1): with a shared "<path>.tmp" one
 * truncated or renamed away the other's file. Now every save succeeds and the result is
 * always one writer's complete file. */
static void test_concurrent_writers(void)
{
    enum { SIZE = 1 << 16, ROUNDS = 40 };
    const char *dir = case_dir("concurrent");
    const char *path = join(dir, "model.ffm");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            static uint8_t buf[SIZE];
            memset(buf, 'A' + k, SIZE);
            for (int r = 0; r < ROUNDS; r++)
                if (ff_fs_write_file_atomic(path, buf, SIZE, NULL) != FF_OK)
                    _exit(1);
            _exit(0);
        }
    }
    int bad_exit = 0;
    for (int k = 0; k < 2; k++) {
        int st = 0;
        waitpid(kids[k], &st, 0);
        bad_exit += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    CHECK(bad_exit == 0);
    uint8_t *b = NULL;
    size_t len = 0;
    CHECK(ff_fs_read_file(path, 2 * SIZE, &b, &len, NULL) == FF_OK && len == SIZE);
    int uniform = b && len == SIZE && (b[0] == 'A' || b[0] == 'B');
    for (size_t i = 1; uniform && i < len; i++)
        uniform = b[i] == b[0];
    CHECK(uniform);
    free(b);
    CHECK(count_names(dir, ".tmp") == 0);
}

/* ------------------------------------------------------------------ stale temporary files */

static void test_clean_stale_tmp(void)
{
    const char *dir = case_dir("stale");
    long dead = (long)dead_pid(), me = (long)getpid();
    CHECK(kill((pid_t)dead, 0) != 0 && errno == ESRCH);
    char name[128];
    const char *remove[] = {"m.ffm.tmp.%ld.0", "hybrid-ab.bin.tmp.%ld.17"};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, remove[i], dead);
        CHECK(put_file(join(dir, name), "x", 1) == 0);
    }
    /* kept: a live writer's file, other names, and a directory */
    const char *keep[] = {"m.ffm.tmp.%ld.0", "m.ffm.tmp.%ld.0.partial", "m.ffm.tmp.%ld.",
                          "m.ffm.tmp.%ld", "m.ffm.tmp.x%ld.0", "m.ffm", ".tmp.%ld.0"};
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof name, keep[i], i == 0 ? me : dead);
        CHECK(put_file(join(dir, name), "x", 1) == 0);
    }
    snprintf(name, sizeof name, "d.tmp.%ld.3", dead);
    CHECK(mkdir(join(dir, name), 0700) == 0);
    int removed = -1;
    ff_err e = {0};
    CHECK(ff_fs_clean_stale_tmp(dir, &removed, &e) == FF_OK && removed == 2);
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, remove[i], dead);
        CHECK(access(join(dir, name), F_OK) != 0);
    }
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof name, keep[i], i == 0 ? me : dead);
        CHECK(access(join(dir, name), F_OK) == 0);
    }
    CHECK(ff_fs_clean_stale_tmp(dir, &removed, &e) == FF_OK && removed == 0); /* idempotent */
    CHECK(ff_fs_clean_stale_tmp(join(dir, "missing"), &removed, &e) == FF_OK && removed == 0);
    CHECK(ff_fs_clean_stale_tmp(join(dir, "m.ffm"), &removed, &e) == FF_ERR_IO);
    CHECK(has(e.msg, "m.ffm: cannot read directory"));
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

/* ff_text_json_quote (err.h): quotes, escapes '"', '\\' and control bytes, keeps other bytes;
 * returns the whole length as snprintf does and never writes a cut escape */
static void test_json_quote(void)
{
    const char *in = "a\"b\\c\n\x01\xc3\xa9";
    const char *want = "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"";
    char out[64];
    CHECK(ff_text_json_quote(in, out, sizeof out) == strlen(want) && strcmp(out, want) == 0);
    CHECK(ff_text_json_quote(in, NULL, 0) == strlen(want));
    CHECK(ff_text_json_quote("", out, sizeof out) == 2 && strcmp(out, "\"\"") == 0);
    /* room for '"a\"' and 2 more bytes: the 6-byte \n escape is left out whole */
    CHECK(ff_text_json_quote("a\nb", out, 6) == 10 && strcmp(out, "\"a") == 0);
    char *q = ff_text_json_quoted(in);
    CHECK(q && strcmp(q, want) == 0);
    free(q);
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ff_test_fs.XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_json_quote);
    RUN(test_read_file);
    RUN(test_fifo_does_not_block);
    RUN(test_write_atomic);
    RUN(test_concurrent_writers);
    RUN(test_clean_stale_tmp);
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_MAIN_END();
}
