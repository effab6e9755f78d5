/* data.h - MNIST-format (IDX) datasets: loading, validation, batching.
 *
 * Images are stored as float in [0, 1] (pixel / 255), row-major, one image
 * after another: images[i * dim + r * cols + c]. Labels are 0..9. The dataset
 * owns both arrays; ff_dataset_free releases them (safe on a zeroed struct). */
#ifndef FF_DATA_H
#define FF_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"
#include "ff/layer.h"

typedef struct ff_dataset {
    int n;            /* number of images */
    int channels;     /* 1 for IDX files (grey levels) */
    int rows, cols;   /* 28 x 28 for MNIST */
    int dim;          /* channels * rows * cols */
    float *images;    /* n * dim floats in [0, 1] */
    uint8_t *labels;  /* n labels in 0..9 */
    char source[1024]; /* the images file it was loaded from, for messages ("" if made in code) */
} ff_dataset;

/* Reads a whole file (ff_read_file: regular files only, so a FIFO is refused
 * instead of blocking), transparently gunzipping it if it starts with the gzip
 * magic (1f 8b). *out is malloc'ed; caller frees. Errors name the file
 * (missing, unreadable, not a regular file, corrupt or truncated gzip stream,
 * trailing bytes after the gzip stream; multi-member gzip is not supported). */
int ff_read_file_maybe_gz(const char *path, uint8_t **out, size_t *len, ff_err *err);

/* Parses IDX bytes: magic 0x00000803 (images, u8, 3 dims) or 0x00000801
 * (labels, u8, 1 dim), big-endian dimensions, exact payload size (short =
 * "truncated", long = "unexpected bytes"); images must be 1..4096 rows and
 * cols. *pixels / *labels point into buf (not copied). `name` is used in
 * messages. */
int ff_idx_parse_images(const uint8_t *buf, size_t len, const char *name, int *n, int *rows,
                        int *cols, const uint8_t **pixels, ff_err *err);
int ff_idx_parse_labels(const uint8_t *buf, size_t len, const char *name, int *n,
                        const uint8_t **labels, ff_err *err);

/* Loads "<dir>/<prefix>-images-idx3-ubyte[.gz]" and "-labels-idx1-ubyte[.gz]"
 * where prefix is "train" or "t10k". Checks that counts agree, labels are
 * 0..9, and, if <dir>/SHA256SUMS lists the uncompressed file, its SHA-256
 * (of the decompressed bytes; mismatch = FF_ERR_FORMAT "checksum mismatch").
 * The .gz name is tried first. limit > 0 keeps only the first `limit` images
 * (limit <= 0: all). *ds is overwritten (not freed) and left zeroed on failure;
 * on success the caller calls ff_dataset_free. Files over 2 GiB (raw or
 * decompressed) are rejected. */
int ff_dataset_load(ff_dataset *ds, const char *dir, const char *prefix, int limit, ff_err *err);

void ff_dataset_free(ff_dataset *ds);

/* The shape of one image: {channels, rows, cols}. What a net's input is built
 * from (through the label embedding), never a literal. */
ff_shape ff_dataset_shape(const ff_dataset *ds);

/* FF_OK if a and b hold images of one size (rows x cols), else FF_ERR_FORMAT naming both
 * files and sizes: a net built for one set must not be fed the other (e.g. the training
 * and the test set). */
int ff_dataset_check_same_shape(const ff_dataset *a, const ff_dataset *b, ff_err *err);

/* SHA-256 of len bytes into out[32]. */
void ff_sha256(const void *data, size_t len, uint8_t out[32]);

/* Lower-case hex form of a SHA-256 digest, NUL-terminated, into out[65]. */
void ff_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
