/* data.h - data sets: one reader per file format (MNIST's IDX, CIFAR-10's binary
 * batches), one function that opens a split for everyone, checksums, statistics.
 *
 * Images are stored as float in [0, 1] (pixel / 255; standardised per channel with
 * data.normalize channel), one image after another, each CHW: pixel (c, y, x) of
 * image i is images[i * dim + (c * h + y) * w + x], dim = ff_shape_dim(shape). Labels
 * are 0..9. The dataset owns both arrays; ff_dataset_free releases them (safe on a
 * zeroed struct). */
#ifndef FF_DATA_H
#define FF_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"
#include "ff/config.h"
#include "ff/shape.h"

/* The splits every data set format has. */
typedef enum { FF_SPLIT_TRAIN, FF_SPLIT_TEST, FF_SPLIT_COUNT } ff_split;

#define FF_DATA_CLASSES 10      /* labels are 0..9 in every format */
#define FF_CLASS_NAME_MAX 32

typedef struct ff_dataset {
    int n;            /* number of images */
    ff_shape shape;   /* one image: channels x height x width (1 x 28 x 28 for MNIST,
                         3 x 32 x 32 for CIFAR-10) */
    float *images;    /* n images of ff_shape_dim(shape) floats, each CHW (channel-major) */
    uint8_t *labels;  /* n labels in 0..9 */
    ff_data_format format; /* the format it was read in */
    char class_names[FF_DATA_CLASSES][FF_CLASS_NAME_MAX]; /* "" where the format has none */
    char source[1024]; /* the images file it was loaded from, for messages ("" if made in code) */
} ff_dataset;

/* Floats of one image. */
static inline size_t ff_dataset_dim(const ff_dataset *ds) { return (size_t)ff_shape_dim(ds->shape); }

/* The batch rule of every trainer: train.batch_size images per batch, or all n if
 * fewer. An epoch is n / batch full batches for the FF trainer (the rest of the order
 * waits for the next epoch's shuffle) and ceil(n / batch) for the classifier (its last
 * batch partial): ff_data_batches_per_epoch with partial 0 or 1. */
static inline int ff_data_batch_of(int batch_size, int n) { return batch_size < n ? batch_size : n; }
static inline int ff_data_batches_per_epoch(int n, int batch, int partial)
{
    return partial ? (n + batch - 1) / batch : n / batch;
}

/* Reads a whole file (ff_fs_read_file: regular files only, so a FIFO is refused
 * instead of blocking), transparently gunzipping it if it starts with the gzip
 * magic (1f 8b). *out is malloc'ed; caller frees. Errors name the file
 * (missing, unreadable, not a regular file, corrupt or truncated gzip stream,
 * trailing bytes after the gzip stream; multi-member gzip is not supported). */
int ff_data_read_maybe_gz(const char *path, uint8_t **out, size_t *len, ff_err *err);

/* Parses IDX bytes: magic 0x00000803 (images, u8, 3 dims) or 0x00000801
 * (labels, u8, 1 dim), big-endian dimensions, exact payload size (short =
 * "truncated", long = "unexpected bytes"); images must be 1..4096 rows and
 * cols. *pixels / *labels point into buf (not copied). `name` is used in
 * messages. */
int ff_data_idx_parse_images(const uint8_t *buf, size_t len, const char *name, int *n, int *rows,
                        int *cols, const uint8_t **pixels, ff_err *err);
int ff_data_idx_parse_labels(const uint8_t *buf, size_t len, const char *name, int *n,
                        const uint8_t **labels, ff_err *err);

/* Opens one split of the data set in dir, read by the reader of `format`
 * (FF_DATA_AUTO: the format whose files are in dir, ff_data_detect). Every file the
 * reader reads is checked against <dir>/SHA256SUMS when that lists it (of the
 * decompressed bytes; mismatch = FF_ERR_FORMAT "checksum mismatch"). Pixels become
 * pixel / 255. limit > 0 keeps only the first `limit` images (limit <= 0: all). *ds is
 * overwritten (not freed) and left zeroed on failure; on success the caller calls
 * ff_dataset_free. Formats (src/data_<name>.c, one reader each, table in data.c):
 *   idx     - MNIST's "<train|t10k>-<images-idx3|labels-idx1>-ubyte[.gz]" (grey)
 *   cifar10 - CIFAR-10's binary batches: data_batch_1..5.bin / test_batch.bin,
 *             records of a label byte and 3 x 32 x 32 pixel bytes (R, G, B planes),
 *             class names from batches.meta.txt; content errors are FF_ERR_USAGE
 *             (exit 2: data.dir names the wrong data) */
int ff_dataset_open(ff_dataset *ds, const char *dir, ff_data_format format, ff_split split,
                    int limit, ff_err *err);

/* The format of the data set in dir: the one format whose files are there. No format,
 * or files of two formats: FF_ERR_USAGE naming dir and what was found. */
int ff_data_detect(const char *dir, ff_data_format *format, ff_err *err);

/* "idx", "cifar10" (config data.format names; "auto" for FF_DATA_AUTO). */
const char *ff_data_format_name(ff_data_format format);

/* Per-channel standardisation (data.normalize channel): mean[c] and std[c] of
 * channel c over every pixel of every image of ds (the training split), then
 * ff_dataset_standardize applies (x - mean[c]) / std[c] to every image of a set
 * (std 0 is taken as 1). C at most FF_MAX_CHANNELS. */
#define FF_MAX_CHANNELS 16
void ff_dataset_channel_stats(const ff_dataset *ds, float *mean, float *std);
void ff_dataset_standardize(ff_dataset *ds, const float *mean, const float *std);

/* data.validation: the images it holds out of n training images (a fraction of n rounded,
 * or the count itself; 0 = none). */
int ff_data_validation_count(float validation, int n);

/* The same, checked: *count images held out of n (0 for none); FF_ERR_USAGE if a split
 * is asked for that has no image or leaves none to train on (source, if not "", names
 * the images in the message). What --dry-run and ff_data_open check. */
int ff_data_validation_plan(float validation, int n, const char *source, int *count, ff_err *err);

/* The held-out sets a run evaluates: the validation images (data.validation) and the
 * test split. */
typedef enum { FF_SET_VAL, FF_SET_TEST, FF_SET_COUNT } ff_eval_set;

/* What a validation split took: its images, of each class, and a digest of their
 * indices in the training split (FNV-1a 64 of the little-endian int32 indices, ascending)
 * that names the split in run records: equal digests, equal splits. */
typedef struct ff_split_info {
    int n;                            /* 0: no split */
    int per_class[FF_DATA_CLASSES];
    uint64_t digest;
} ff_split_info;

/* Moves `count` images of ds (1 <= count < ds->n, else FF_ERR_USAGE) into val: from each
 * class its share of count in proportion to the class's images (largest remainders),
 * drawn with an RNG seeded by `seed` alone; val and the remaining ds keep index order.
 * The same data, count and seed give the same split on any machine or process. info may
 * be NULL. */
int ff_dataset_split_validation(ff_dataset *ds, int count, uint64_t seed, ff_dataset *val,
                                ff_split_info *info, ff_err *err);

/* What ff_data_open did beside loading: the validation split, and with data.normalize
 * channel the statistics it standardised with (of the training images after the split,
 * C = the images' channels). */
typedef struct ff_data_info {
    ff_split_info split;
    float mean[FF_MAX_CHANNELS], std[FF_MAX_CHANNELS];
} ff_data_info;

/* Opens cfg's sets: the training split (data.dir, data.format, data.train_limit) less
 * the validation images of data.validation (into *val; val NULL: left out all the same,
 * so training and statistics match the run's), and the test split (data.test_limit);
 * checks they hold images of one shape, and with data.normalize channel standardises all
 * three with the training images' statistics. info may be NULL. What every trainer and
 * `ffrun eval` use. */
int ff_data_open(const ff_config *cfg, ff_dataset *train, ff_dataset *val, ff_dataset *test,
                 ff_data_info *info, ff_err *err);

/* Tells note (one line per call) what ff_data_open did beside loading: the validation
 * split (its size, per-class range, seed and digest) and the statistics of
 * data.normalize channel. Nothing without either. */
void ff_data_note(const ff_config *cfg, const ff_dataset *train, const ff_data_info *info,
                  void (*note)(void *ctx, const char *msg), void *ctx);

void ff_dataset_free(ff_dataset *ds);

/* FF_OK if a and b hold images of one shape, else FF_ERR_FORMAT naming both
 * files and sizes: a net built for one set must not be fed the other (e.g. the training
 * and the test set). */
int ff_dataset_check_same_shape(const ff_dataset *a, const ff_dataset *b, ff_err *err);

#endif
