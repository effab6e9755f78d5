/* data_idx.c - MNIST's IDX files (the data.format idx reader): parsing IDX bytes
 * and reading "<train|t10k>-images-idx3-ubyte[.gz]" with its labels file. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_SIDE 4096u

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks magic and header length; fills dims[0..ndims). */
static int parse_header(const uint8_t *buf, size_t len, const char *name, uint32_t magic,
                        int ndims, const char *kind, uint32_t *dims, ff_err *err)
{
    size_t hdr = 4 + 4 * (size_t)ndims;
    if (len < 4)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: truncated IDX header (%zu bytes)", name, len);
    uint32_t got = be32(buf);
    if (got != magic)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: bad magic 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, %d "
                          "dimension%s)",
                          name, got, magic, kind, ndims, ndims == 1 ? "" : "s");
    if (len < hdr)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: truncated IDX header (%zu bytes, expected %zu)", name, len, hdr);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(buf + 4 + 4 * i);
    if (dims[0] > INT_MAX)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: count %u is too large", name, dims[0]);
    return FF_OK;
}

/* Checks that exactly `want` payload bytes follow the header. */
static int check_payload(const char *name, size_t have, uint64_t want, const char *what,
                         ff_err *err)
{
    if (have < want)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: truncated: the header declares %s (%llu bytes) but only %zu bytes "
                          "follow",
                          name, what, (unsigned long long)want, have);
    if (have > want)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: %llu unexpected bytes after the %llu bytes of %s declared in the "
                          "header",
                          name, (unsigned long long)(have - want), (unsigned long long)want, what);
    return FF_OK;
}

int ff_data_idx_parse_images(const uint8_t *buf, size_t len, const char *name, int *n, int *rows,
                        int *cols, const uint8_t **pixels, ff_err *err)
{
    uint32_t d[3] = {0};
    name = name ? name : "<images>";
    int rc = parse_header(buf, len, name, IDX_IMAGES_MAGIC, 3, "images", d, err);
    if (rc)
        return rc;
    if (d[1] < 1 || d[1] > IDX_MAX_SIDE || d[2] < 1 || d[2] > IDX_MAX_SIDE)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: image size %ux%u is out of range (rows and cols must be 1..%u)",
                          name, d[1], d[2], IDX_MAX_SIDE);
    char what[96];
    snprintf(what, sizeof what, "%u images of %ux%u", d[0], d[1], d[2]);
    rc = check_payload(name, len - 16, (uint64_t)d[0] * d[1] * d[2], what, err);
    if (rc)
        return rc;
    *n = (int)d[0];
    *rows = (int)d[1];
    *cols = (int)d[2];
    *pixels = buf + 16;
    return FF_OK;
}

int ff_data_idx_parse_labels(const uint8_t *buf, size_t len, const char *name, int *n,
                        const uint8_t **labels, ff_err *err)
{
    uint32_t d[1] = {0};
    name = name ? name : "<labels>";
    int rc = parse_header(buf, len, name, IDX_LABELS_MAGIC, 1, "labels", d, err);
    if (rc)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "%u labels", d[0]);
    rc = check_payload(name, len - 8, d[0], what, err);
    if (rc)
        return rc;
    *n = (int)d[0];
    *labels = buf + 8;
    return FF_OK;
}


/* the file name prefix of a split */
static const char *const PREFIX[FF_SPLIT_COUNT] = {"train", "t10k"};

int ff_data_idx_detect(const char *dir, const char **marker)
{
    *marker = "train-images-idx3-ubyte[.gz]";
    return ff_data_file_exists(dir, "train-images-idx3-ubyte", 1);
}

int ff_data_idx_read(const char *dir, ff_split split, const ff_sums *sums, ff_data_raw *out,
                     ff_err *err)
{
    char base[64];
    ff_data_file *img = calloc(1, sizeof *img), *lab = calloc(1, sizeof *lab);
    int n = 0, rows = 0, cols = 0, nl = 0;
    const uint8_t *pixels = NULL, *labels = NULL;
    int rc = !img || !lab ? ff_err_set(err, FF_ERR_NOMEM, "out of memory") : FF_OK;
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", PREFIX[split]);
    if (!rc)
        rc = ff_data_file_read(img, dir, base, 1, sums, err);
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", PREFIX[split]);
    if (!rc)
        rc = ff_data_file_read(lab, dir, base, 1, sums, err);
    if (!rc)
        rc = ff_data_idx_parse_images(img->bytes, img->len, img->path, &n, &rows, &cols, &pixels, err);
    if (!rc)
        rc = ff_data_idx_parse_labels(lab->bytes, lab->len, lab->path, &nl, &labels, err);
    if (!rc && n != nl)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s has %d images but %s has %d labels", img->path, n,
                        lab->path, nl);
    if (!rc) {
        const size_t count = (size_t)n * (size_t)rows * (size_t)cols;
        out->pixels = malloc(count ? count : 1);
        out->labels = malloc(n ? (size_t)n : 1);
        if (!out->pixels || !out->labels)
            rc = ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory for %d images", img->path, n);
        else {
            memcpy(out->pixels, pixels, count);
            memcpy(out->labels, labels, (size_t)n);
            out->n = n;
            out->shape = (ff_shape){1, rows, cols};
            out->label_err = FF_ERR_FORMAT;
            snprintf(out->source, sizeof out->source, "%.1023s", img->path);
            snprintf(out->label_path, sizeof out->label_path, "%s", lab->path);
        }
    }
    if (img)
        free(img->bytes);
    if (lab)
        free(lab->bytes);
    free(img);
    free(lab);
    return rc;
}
