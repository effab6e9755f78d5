/* data_internal.h - what a data set reader (src/data_<format>.c) gets from data.c:
 * reading a file of the data set's directory with its SHA256SUMS check, and the
 * raw set a reader returns. A new format is a reader function and a line in data.c's
 * table (and its name in config_schema.c's data.format names). */
#ifndef FF_DATA_INTERNAL_H
#define FF_DATA_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "ff/data.h"

/* <dir>/SHA256SUMS; text is NULL when the file does not exist. */
typedef struct ff_sums {
    char path[PATH_MAX];
    char *text;
    size_t len;
} ff_sums;

/* A file of the data set as read: the path actually used, the base name as listed in
 * SHA256SUMS (uncompressed) and its (decompressed) bytes. */
typedef struct ff_data_file {
    char path[PATH_MAX];
    char base[128];
    uint8_t *bytes;
    size_t len;
    int gz; /* the file read was "<base>.gz" */
} ff_data_file;

/* Reads <dir>/<base> (with try_gz, "<dir>/<base>.gz" first), gunzipping it if it
 * starts with the gzip magic, and checks it against sums. f->bytes is malloc'ed
 * (free it). A missing file: FF_ERR_IO "no such file". */
int ff_data_file_read(ff_data_file *f, const char *dir, const char *base, int try_gz,
                      const ff_sums *sums, ff_err *err);

/* 1 if <dir>/<base> (or with try_gz "<dir>/<base>.gz") exists. */
int ff_data_file_exists(const char *dir, const char *base, int try_gz);

/* What a reader returns: n images of `shape` as bytes (each CHW), their labels
 * (checked 0..9 by data.c), class names where the format has them. */
typedef struct ff_data_raw {
    int n;
    ff_shape shape;
    uint8_t *pixels;  /* n * ff_shape_dim(shape) bytes, malloc'ed */
    uint8_t *labels;  /* n bytes, malloc'ed */
    char class_names[FF_DATA_CLASSES][FF_CLASS_NAME_MAX];
    char source[1024]; /* the (first) images file, for messages */
    int label_err;    /* error code for a label out of range (FF_ERR_FORMAT or _USAGE) */
    char label_path[PATH_MAX]; /* the file the labels came from */
} ff_data_raw;

/* One format: `detect` says whether dir holds its files (the file it found in
 * *marker); `read` fills *out with one split. */
typedef struct ff_data_reader {
    const char *name;
    int (*detect)(const char *dir, const char **marker);
    int (*read)(const char *dir, ff_split split, const ff_sums *sums, ff_data_raw *out,
                ff_err *err);
} ff_data_reader;

int ff_data_idx_detect(const char *dir, const char **marker);
int ff_data_idx_read(const char *dir, ff_split split, const ff_sums *sums, ff_data_raw *out,
                     ff_err *err);
int ff_data_cifar10_detect(const char *dir, const char **marker);
int ff_data_cifar10_read(const char *dir, ff_split split, const ff_sums *sums, ff_data_raw *out,
                         ff_err *err);

#endif
