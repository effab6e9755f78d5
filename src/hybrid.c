/* hybrid.c - hybrid-image negatives and their checksummed cache file (include/ff/hybrid.h). */
#include "ff/hybrid.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ff/crc32c.h"
#include "ff/endian.h"
#include "ff/fs.h"
#include "ff/rng.h"
#include "ff/sha256.h"

/* images and indices go to disk as host bytes; the format is little-endian */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "hybrid cache assumes little-endian");

#define MASK_TRIES 16
#define PAIR_TRIES 1000

const char *ff_hybrid_origin_name(ff_hybrid_origin o)
{
    switch (o) {
    case FF_HYBRID_GENERATED: return "generated (no cache)";
    case FF_HYBRID_LOADED: return "loaded from cache";
    case FF_HYBRID_CACHED: return "generated and cached";
    case FF_HYBRID_REBUILT: return "cache invalid, regenerated";
    }
    return "?";
}

/* ---------------------------------------------------------------- masks */

static float tap3(float lo, float mid, float hi) { return 0.25f * lo + 0.5f * mid + 0.25f * hi; }

/* One [1/4, 1/2, 1/4] pass along each row, edges replicated. */
static void blur_rows(const float *x, float *y, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *a = x + (size_t)r * cols;
        float *b = y + (size_t)r * cols;
        b[0] = tap3(a[0], a[0], a[cols > 1 ? 1 : 0]);
        for (int c = 1; c + 1 < cols; c++)
            b[c] = tap3(a[c - 1], a[c], a[c + 1]);
        if (cols > 1)
            b[cols - 1] = tap3(a[cols - 2], a[cols - 1], a[cols - 1]);
    }
}

/* One [1/4, 1/2, 1/4] pass along each column, edges replicated. */
static void blur_cols(const float *x, float *y, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *up = x + (size_t)(r > 0 ? r - 1 : 0) * cols;
        const float *mid = x + (size_t)r * cols;
        const float *down = x + (size_t)(r + 1 < rows ? r + 1 : r) * cols;
        float *b = y + (size_t)r * cols;
        for (int c = 0; c < cols; c++)
            b[c] = tap3(up[c], mid[c], down[c]);
    }
}

static void random_bits(ff_rng *rng, float *m, int dim)
{
    for (int j = 0; j < dim; j += 64) {
        uint64_t bits = ff_rng_u64(rng);
        const int end = dim - j < 64 ? dim - j : 64;
        for (int k = 0; k < end; k++)
            m[j + k] = (float)((bits >> k) & 1);
    }
}

/* Thresholds m in place; returns 1 if both values are present. */
static int threshold(float *m, int dim)
{
    int ones = 0;
    for (int j = 0; j < dim; j++) {
        const int on = m[j] > 0.5f; /* no branch: the values are random */
        m[j] = (float)on;
        ones += on;
    }
    return ones > 0 && ones < dim;
}

void ff_hybrid_mask(ff_rng *rng, ff_shape image, int blur_passes, float *mask, float *scratch)
{
    const int rows = image.h, cols = image.w;
    const int dim = rows * cols;
    for (int t = 0; t < MASK_TRIES; t++) {
        random_bits(rng, mask, dim);
        for (int p = 0; p < blur_passes; p++) {
            blur_rows(mask, scratch, rows, cols);
            blur_cols(scratch, mask, rows, cols);
        }
        if (threshold(mask, dim))
            return;
    }
}

void ff_hybrid_mix(const float *m, const float *a, const float *b, ff_shape image, float *out)
{
    const size_t hw = (size_t)image.h * image.w;
    for (int c = 0; c < image.c; c++) /* one mask over every channel of a pixel */
        for (size_t j = 0; j < hw; j++) {
            const size_t k = (size_t)c * hw + j;
            out[k] = m[j] * a[k] + (1.0f - m[j]) * b[k];
        }
}

/* ---------------------------------------------------------------- pairs and sets */

void ff_hybrid_pick_pair(ff_rng *rng, const ff_dataset *ds, int *ia, int *ib)
{
    const int a = (int)ff_rng_below(rng, (uint32_t)ds->n);
    const uint8_t la = ds->labels[a];
    int b = (int)ff_rng_below(rng, (uint32_t)ds->n);
    for (int t = 0; t < PAIR_TRIES && ds->labels[b] == la; t++)
        b = (int)ff_rng_below(rng, (uint32_t)ds->n);
    /* a dataset almost all of one class: walk on to the next different label */
    for (int k = 0; k < ds->n && ds->labels[b] == la; k++)
        b = (b + 1) % ds->n;
    FF_ASSERT(ds->labels[b] != la);
    *ia = a;
    *ib = b;
}

void ff_hybrid_batch(ff_rng *rng, const ff_dataset *ds, int blur_passes, int batch, float *out,
                     int32_t *src, float *scratch)
{
    const size_t dim = ff_dataset_dim(ds), hw = (size_t)ds->shape.h * ds->shape.w;
    float *mask = scratch, *tmp = scratch + hw;
    for (int i = 0; i < batch; i++) {
        int a, b;
        ff_hybrid_pick_pair(rng, ds, &a, &b);
        ff_hybrid_mask(rng, ds->shape, blur_passes, mask, tmp);
        ff_hybrid_mix(mask, ds->images + (size_t)a * dim, ds->images + (size_t)b * dim, ds->shape,
                      out + (size_t)i * dim);
        if (src) {
            src[2 * i] = a;
            src[2 * i + 1] = b;
        }
    }
}

static int two_classes(const ff_dataset *ds)
{
    for (int i = 1; i < ds->n; i++)
        if (ds->labels[i] != ds->labels[0])
            return 1;
    return 0;
}

static int alloc_set(ff_hybrid_set *set, int n, ff_shape shape, ff_err *err)
{
    memset(set, 0, sizeof *set);
    set->n = n;
    set->shape = shape;
    set->images = malloc(sizeof(float) * (size_t)n * (size_t)ff_shape_dim(shape));
    set->src = malloc(sizeof(int32_t) * 2 * (size_t)n);
    if (!set->images || !set->src) {
        ff_hybrid_free(set);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for %d hybrid images", n);
    }
    return FF_OK;
}

int ff_hybrid_make(ff_hybrid_set *set, const ff_dataset *ds, int n, uint64_t seed,
                   int blur_passes, ff_err *err)
{
    memset(set, 0, sizeof *set);
    if (n < 1 || blur_passes < 0)
        return ff_err_set(err, FF_ERR_USAGE, "hybrid negatives: need n >= 1 and blur passes >= 0 "
                          "(got n = %d, passes = %d)", n, blur_passes);
    if (ds->n < 2 || !two_classes(ds))
        return ff_err_set(err, FF_ERR_USAGE, "hybrid negatives need images of at least two "
                          "classes (the dataset has %d image%s of one class)", ds->n,
                          ds->n == 1 ? "" : "s");
    int rc = alloc_set(set, n, ds->shape, err);
    if (rc)
        return rc;
    float *scratch = malloc(sizeof(float) * 2 * (size_t)ds->shape.h * (size_t)ds->shape.w);
    if (!scratch) {
        ff_hybrid_free(set);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for hybrid masks");
    }
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    ff_hybrid_batch(&rng, ds, blur_passes, n, set->images, set->src, scratch);
    free(scratch);
    return FF_OK;
}

void ff_hybrid_free(ff_hybrid_set *set)
{
    free(set->images);
    free(set->src);
    memset(set, 0, sizeof *set);
}

/* ---------------------------------------------------------------- cache key */

void ff_hybrid_key(const ff_dataset *ds, int n, uint64_t seed, int blur_passes, uint8_t key[32])
{
    uint8_t buf[9 * 4 + 8];
    ff_endian_put_u32le(buf, ff_crc32c(0, ds->images, sizeof(float) * (size_t)ds->n * ff_dataset_dim(ds)));
    ff_endian_put_u32le(buf + 4, ff_crc32c(0, ds->labels, (size_t)ds->n));
    ff_endian_put_u32le(buf + 8, FF_HYBRID_VERSION);
    ff_endian_put_u32le(buf + 12, (uint32_t)ds->shape.c);
    ff_endian_put_u32le(buf + 16, (uint32_t)ds->shape.h);
    ff_endian_put_u32le(buf + 20, (uint32_t)ds->shape.w);
    ff_endian_put_u32le(buf + 24, (uint32_t)ds->n);
    ff_endian_put_u32le(buf + 28, (uint32_t)n);
    ff_endian_put_u32le(buf + 32, (uint32_t)blur_passes);
    ff_endian_put_u64le(buf + 36, seed);
    ff_sha256(buf, sizeof buf, key);
}

int ff_hybrid_cache_path(const char *cache_dir, const uint8_t key[32], char *path, size_t cap,
                         ff_err *err)
{
    char hex[65];
    ff_sha256_hex(key, hex);
    hex[16] = '\0';
    if ((size_t)snprintf(path, cap, "%s/hybrid-%s.bin", cache_dir, hex) >= cap)
        return ff_err_set(err, FF_ERR_USAGE, "cache path too long: %s", cache_dir);
    return FF_OK;
}

/* ---------------------------------------------------------------- cache file */

static int write_crc(ff_atomic_file *f, const void *data, size_t len, uint32_t *crc, ff_err *err)
{
    *crc = ff_crc32c(*crc, data, len);
    return ff_fs_atomic_write(f, data, len, err);
}

static void encode_header(uint8_t h[FF_HYBRID_HEADER], const ff_hybrid_set *set,
                          const uint8_t key[32], int src_n, int blur_passes, uint64_t seed)
{
    memcpy(h, FF_HYBRID_MAGIC, 8);
    ff_endian_put_u32le(h + 8, FF_HYBRID_VERSION);
    ff_endian_put_u32le(h + 12, (uint32_t)set->shape.c);
    ff_endian_put_u32le(h + 16, (uint32_t)set->shape.h);
    ff_endian_put_u32le(h + 20, (uint32_t)set->shape.w);
    ff_endian_put_u32le(h + 24, (uint32_t)set->n);
    ff_endian_put_u32le(h + 28, (uint32_t)blur_passes);
    ff_endian_put_u32le(h + 32, (uint32_t)src_n);
    ff_endian_put_u64le(h + 36, seed);
    memcpy(h + 44, key, 32);
}

static int write_body(ff_atomic_file *f, const ff_hybrid_set *set, const uint8_t *h, ff_err *err)
{
    uint32_t crc = 0;
    uint8_t tail[4];
    int rc;
    if ((rc = write_crc(f, h, FF_HYBRID_HEADER, &crc, err)) ||
        (rc = write_crc(f, set->src, 8 * (size_t)set->n, &crc, err)) ||
        (rc = write_crc(f, set->images, 4 * (size_t)set->n * (size_t)ff_shape_dim(set->shape), &crc,
                        err)))
        return rc;
    ff_endian_put_u32le(tail, crc);
    return write_crc(f, tail, 4, &crc, err);
}

int ff_hybrid_save(const ff_hybrid_set *set, const uint8_t key[32], int src_n, int blur_passes,
                   uint64_t seed, const char *path, ff_err *err)
{
    uint8_t h[FF_HYBRID_HEADER];
    encode_header(h, set, key, src_n, blur_passes, seed);
    ff_atomic_file f;
    int rc = ff_fs_atomic_open(&f, path, err);
    if (!rc)
        rc = write_body(&f, set, h, err);
    if (!rc)
        rc = ff_fs_atomic_commit(&f, err);
    ff_fs_atomic_abort(&f); /* no-op unless a step above failed before aborting */
    return rc;
}

static int read_exact(FILE *f, void *dst, size_t len, uint32_t *crc)
{
    if (fread(dst, 1, len, f) != len)
        return -1;
    *crc = ff_crc32c(*crc, dst, len);
    return 0;
}

static int check_header(const uint8_t *h, const uint8_t key[32], ff_shape s, int n,
                        const char *path, ff_err *err)
{
    if (memcmp(h, FF_HYBRID_MAGIC, 8) != 0)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: not a hybrid cache file (bad magic)", path);
    if (ff_get_u32le(h + 8) != FF_HYBRID_VERSION)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: unsupported version %u", path,
                          ff_get_u32le(h + 8));
    if (ff_get_u32le(h + 12) != (uint32_t)s.c || ff_get_u32le(h + 16) != (uint32_t)s.h ||
        ff_get_u32le(h + 20) != (uint32_t)s.w || ff_get_u32le(h + 24) != (uint32_t)n)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: holds %u images of %ux%ux%u, expected %d of "
                          "%dx%dx%d", path, ff_get_u32le(h + 24), ff_get_u32le(h + 12),
                          ff_get_u32le(h + 16), ff_get_u32le(h + 20), n, s.c, s.h, s.w);
    if (memcmp(h + 44, key, 32) != 0)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: made from other data or settings (key differs)",
                          path);
    return FF_OK;
}

/* Range checks of the payload: indices within the source, pixels finite (in [0, 1]
 * unless the source was standardised, data.normalize channel). */
static int check_payload(const ff_hybrid_set *set, uint32_t src_n, const char *path, ff_err *err)
{
    for (size_t i = 0; i < 2 * (size_t)set->n; i++)
        if (set->src[i] < 0 || (uint32_t)set->src[i] >= src_n)
            return ff_err_set(err, FF_ERR_FORMAT, "%s: source index %d out of range", path,
                              (int)set->src[i]);
    for (size_t i = 0; i < (size_t)set->n * (size_t)ff_shape_dim(set->shape); i++)
        if (!isfinite(set->images[i]))
            return ff_err_set(err, FF_ERR_FORMAT, "%s: pixel %zu is not finite", path, i);
    return FF_OK;
}

static int read_set(FILE *f, ff_hybrid_set *set, const uint8_t *h, const char *path, ff_err *err)
{
    uint32_t crc = ff_crc32c(0, h, FF_HYBRID_HEADER);
    uint8_t tail[4];
    if (read_exact(f, set->src, 8 * (size_t)set->n, &crc) ||
        read_exact(f, set->images, 4 * (size_t)set->n * (size_t)ff_shape_dim(set->shape), &crc) ||
        fread(tail, 1, 4, f) != 4)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: truncated", path);
    if (fgetc(f) != EOF)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: unexpected bytes after the checksum", path);
    if (ff_get_u32le(tail) != crc)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: checksum mismatch", path);
    return check_payload(set, ff_get_u32le(h + 32), path, err);
}

int ff_hybrid_load(ff_hybrid_set *set, const char *path, const uint8_t key[32], ff_shape shape,
                   int n, ff_err *err)
{
    memset(set, 0, sizeof *set);
    int fd;
    int rc = ff_fs_open_regular(path, &fd, err);
    if (rc)
        return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory", path);
    }
    uint8_t h[FF_HYBRID_HEADER];
    if (fread(h, 1, sizeof h, f) != sizeof h)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: truncated header", path);
    else if (!(rc = check_header(h, key, shape, n, path, err)) &&
             !(rc = alloc_set(set, n, shape, err)))
        rc = read_set(f, set, h, path, err);
    fclose(f);
    if (rc)
        ff_hybrid_free(set);
    return rc;
}

int ff_hybrid_load_or_make(ff_hybrid_set *set, const ff_dataset *ds, int n, uint64_t seed,
                           int blur_passes, const char *cache_dir, ff_hybrid_origin *origin,
                           char *path, size_t cap, ff_err *err)
{
    ff_hybrid_origin o = FF_HYBRID_GENERATED;
    char file[4096] = "";
    uint8_t key[32];
    int rc;
    memset(set, 0, sizeof *set);
    if (cache_dir && *cache_dir) {
        ff_hybrid_key(ds, n, seed, blur_passes, key);
        if ((rc = ff_hybrid_cache_path(cache_dir, key, file, sizeof file, err)))
            return rc;
        struct stat st;
        o = stat(file, &st) == 0 ? FF_HYBRID_REBUILT : FF_HYBRID_CACHED;
        if (o == FF_HYBRID_REBUILT &&
            ff_hybrid_load(set, file, key, ds->shape, n, NULL) == FF_OK)
            o = FF_HYBRID_LOADED;
    }
    if (o != FF_HYBRID_LOADED) {
        if ((rc = ff_hybrid_make(set, ds, n, seed, blur_passes, err)))
            return rc;
        if (o != FF_HYBRID_GENERATED &&
            ((rc = ff_fs_mkdir_p(cache_dir, err)) ||
             (rc = ff_hybrid_save(set, key, ds->n, blur_passes, seed, file, err)))) {
            ff_hybrid_free(set);
            return rc;
        }
    }
    if (origin)
        *origin = o;
    if (path && cap)
        snprintf(path, cap, "%s", file);
    return FF_OK;
}
