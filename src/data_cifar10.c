/* data_cifar10.c - CIFAR-10's official binary format (the data.format cifar10 reader):
 * data_batch_1.bin ... data_batch_5.bin (training, in order) and test_batch.bin, each
 * a sequence of 3,073-byte records: the label byte (0-9), then the 32 x 32 red, green
 * and blue planes, each row-major; batches.meta.txt names the ten classes. A file
 * that is missing, not whole records or holds a label over 9 means data.dir names the
 * wrong data: FF_ERR_USAGE (exit 2), the message naming the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_TRAIN_BATCHES 5

static const char *const DEFAULT_NAMES[FF_DATA_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

int ff_data_cifar10_detect(const char *dir, const char **marker)
{
    *marker = "data_batch_1.bin";
    return ff_data_file_exists(dir, "data_batch_1.bin", 0) ||
           ff_data_file_exists(dir, "test_batch.bin", 0);
}

/* A reader's error as a usage error (the data set in data.dir is not CIFAR-10's). */
static int as_usage(int rc, ff_err *err)
{
    if (rc == FF_ERR_IO || rc == FF_ERR_FORMAT) {
        if (err)
            err->code = FF_ERR_USAGE;
        return FF_ERR_USAGE;
    }
    return rc;
}

/* batches.meta.txt: ten non-empty class names, one a line (blank lines after them
 * allowed); missing file: the standard names. */
static int read_names(const char *dir, const ff_sums *sums, ff_data_raw *out, ff_err *err)
{
    for (int k = 0; k < FF_DATA_CLASSES; k++)
        snprintf(out->class_names[k], FF_CLASS_NAME_MAX, "%s", DEFAULT_NAMES[k]);
    if (!ff_data_file_exists(dir, "batches.meta.txt", 0))
        return FF_OK;
    ff_data_file f;
    int rc = ff_data_file_read(&f, dir, "batches.meta.txt", 0, sums, err);
    if (rc)
        return rc;
    /* An empty file may come back with no buffer: never offset a null pointer. */
    const char *p = f.bytes ? (const char *)f.bytes : "", *end = f.bytes ? p + f.len : p;
    for (int k = 0; !rc && k < FF_DATA_CLASSES; k++) {
        const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const char *stop = nl ? nl : end;
        size_t n = p < end ? (size_t)(stop - p) : 0; /* past the end: no line */
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (p >= end || n == 0 || n >= FF_CLASS_NAME_MAX || memchr(p, '\0', n))
            rc = ff_err_set(err, FF_ERR_FORMAT, "%s: line %d: expected the name of class %d (1 to "
                            "%d characters, one a line)", f.path, k + 1, k, FF_CLASS_NAME_MAX - 1);
        else {
            memcpy(out->class_names[k], p, n);
            out->class_names[k][n] = '\0';
        }
        p = stop + 1;
    }
    for (; !rc && p < end; p++)
        if (*p != '\n' && *p != '\r' && *p != ' ')
            rc = ff_err_set(err, FF_ERR_FORMAT, "%s: more than %d class names", f.path,
                            FF_DATA_CLASSES);
    free(f.bytes);
    return rc;
}

/* Appends the records of one batch file to out (grown by realloc). */
static int read_batch(const char *dir, const char *base, const ff_sums *sums, ff_data_raw *out,
                      ff_err *err)
{
    ff_data_file f;
    int rc = ff_data_file_read(&f, dir, base, 0, sums, err);
    if (!rc && (f.len == 0 || f.len % CIFAR_RECORD != 0))
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: %zu bytes is not a whole number of %d-byte records "
                        "(a label byte and 3 x 32 x 32 pixels): truncated or not a CIFAR-10 batch "
                        "(%zu records and %zu bytes)", f.path, f.len, CIFAR_RECORD,
                        f.len / CIFAR_RECORD, f.len % CIFAR_RECORD);
    const size_t m = rc ? 0 : f.len / CIFAR_RECORD, n0 = (size_t)out->n;
    if (!rc && n0 + m > (size_t)1 << 24)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: too many images", f.path);
    if (!rc) {
        uint8_t *px = realloc(out->pixels, (n0 + m) * CIFAR_PIXELS);
        if (px)
            out->pixels = px;
        uint8_t *lab = px ? realloc(out->labels, n0 + m) : NULL;
        if (lab)
            out->labels = lab;
        if (!px || !lab)
            rc = ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory", f.path);
    }
    for (size_t i = 0; !rc && i < m; i++) {
        const uint8_t *r = f.bytes + i * CIFAR_RECORD;
        if (r[0] >= FF_DATA_CLASSES)
            rc = ff_err_set(err, FF_ERR_FORMAT, "%s: record %zu (byte offset %zu) has label %d; "
                            "CIFAR-10 labels are 0..9", f.path, i, i * CIFAR_RECORD, r[0]);
        out->labels[n0 + i] = r[0];
        memcpy(out->pixels + (n0 + i) * CIFAR_PIXELS, r + 1, CIFAR_PIXELS);
    }
    if (!rc) {
        out->n = (int)(n0 + m);
        if (!out->source[0])
            snprintf(out->source, sizeof out->source, "%.1023s", f.path);
        snprintf(out->label_path, sizeof out->label_path, "%s", f.path);
    }
    free(f.bytes);
    return rc;
}

int ff_data_cifar10_read(const char *dir, ff_split split, const ff_sums *sums, ff_data_raw *out,
                         ff_err *err)
{
    out->shape = (ff_shape){CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE};
    out->label_err = FF_ERR_USAGE;
    int rc = FF_OK;
    if (split == FF_SPLIT_TRAIN)
        for (int b = 1; !rc && b <= CIFAR_TRAIN_BATCHES; b++) {
            char base[32];
            snprintf(base, sizeof base, "data_batch_%d.bin", b);
            rc = read_batch(dir, base, sums, out, err);
        }
    else
        rc = read_batch(dir, "test_batch.bin", sums, out, err);
    if (!rc)
        rc = read_names(dir, sums, out, err);
    return as_usage(rc, err);
}
