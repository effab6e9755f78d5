/* png.c - minimal PNG encoder (8-bit, filter 0, zlib) and a float image-grid helper. */
#include "ff/png.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PNG_MAX_RAW ((size_t)1 << 30) /* filtered image bytes accepted by the encoder */
#define IDAT_MAX 65536                /* bytes of zlib data per IDAT chunk */
#define GRID_BORDER 128               /* grey level of grid borders and empty cells */
#define GRID_MAX_PIXELS ((int64_t)1 << 28)

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes one chunk (length, type, data, CRC-32 of type + data) at p; returns
 * the bytes written (12 + len). */
static size_t put_chunk(uint8_t *p, const char *type, const uint8_t *data, uint32_t len)
{
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (len)
        memcpy(p + 8, data, len);
    put_be32(p + 8 + len, (uint32_t)crc32(0L, p + 4, 4 + len));
    return 12 + (size_t)len;
}

/* PNG colour type for a channel count, or -1. */
static int color_type(int channels)
{
    switch (channels) {
    case 1: return 0;
    case 3: return 2;
    case 4: return 6;
    default: return -1;
    }
}

/* Builds the filtered image (filter byte 0 before each row) and deflates it.
 * *z is malloc'ed; caller frees. */
static int deflate_rows(const uint8_t *pixels, int height, size_t row, uint8_t **z,
                        size_t *z_len, ff_err *err)
{
    size_t raw_len = (row + 1) * (size_t)height;
    uLong bound = compressBound((uLong)raw_len);
    uint8_t *raw = malloc(raw_len);
    *z = malloc(bound);
    if (!raw || !*z) {
        free(raw);
        free(*z);
        *z = NULL;
        return ff_err_set(err, FF_ERR_NOMEM, "png: out of memory for %zu bytes", raw_len);
    }
    for (int y = 0; y < height; y++) {
        raw[(size_t)y * (row + 1)] = 0;
        memcpy(raw + (size_t)y * (row + 1) + 1, pixels + (size_t)y * row, row);
    }
    uLongf zl = bound;
    int zr = compress2(*z, &zl, raw, (uLong)raw_len, Z_DEFAULT_COMPRESSION);
    free(raw);
    if (zr != Z_OK) {
        free(*z);
        *z = NULL;
        return ff_err_set(err, zr == Z_MEM_ERROR ? FF_ERR_NOMEM : FF_ERR_RUNTIME,
                          "png: zlib compress failed (%d)", zr);
    }
    *z_len = zl;
    return FF_OK;
}

/* Assembles signature, IHDR, IDAT chunks of at most IDAT_MAX bytes and IEND. */
static int assemble(const uint8_t *z, size_t z_len, int height, int width, int ctype,
                    uint8_t **out, size_t *out_len, ff_err *err)
{
    size_t nidat = (z_len + IDAT_MAX - 1) / IDAT_MAX;
    size_t total = sizeof PNG_SIGNATURE + (12 + 13) + nidat * 12 + z_len + 12;
    uint8_t *buf = malloc(total), ihdr[13];
    if (!buf)
        return ff_err_set(err, FF_ERR_NOMEM, "png: out of memory for %zu bytes", total);
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;               /* bit depth */
    ihdr[9] = (uint8_t)ctype;  /* colour type */
    ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering, no interlace */
    memcpy(buf, PNG_SIGNATURE, sizeof PNG_SIGNATURE);
    size_t pos = sizeof PNG_SIGNATURE;
    pos += put_chunk(buf + pos, "IHDR", ihdr, 13);
    for (size_t off = 0; off < z_len; off += IDAT_MAX) {
        size_t n = z_len - off < IDAT_MAX ? z_len - off : IDAT_MAX;
        pos += put_chunk(buf + pos, "IDAT", z + off, (uint32_t)n);
    }
    pos += put_chunk(buf + pos, "IEND", NULL, 0);
    FF_ASSERT(pos == total);
    *out = buf;
    *out_len = total;
    return FF_OK;
}

int ff_png_encode(const uint8_t *pixels, int height, int width, int channels, uint8_t **out,
                  size_t *out_len, ff_err *err)
{
    FF_ASSERT(pixels && out && out_len);
    *out = NULL;
    *out_len = 0;
    int ctype = color_type(channels);
    if (ctype < 0)
        return ff_err_set(err, FF_ERR_USAGE, "png: %d channels not supported (1, 3 or 4)",
                          channels);
    if (height < 1 || width < 1)
        return ff_err_set(err, FF_ERR_USAGE, "png: invalid image size %dx%d", height, width);
    size_t row = (size_t)width * (size_t)channels;
    if ((row + 1) > PNG_MAX_RAW / (size_t)height)
        return ff_err_set(err, FF_ERR_USAGE, "png: image %dx%dx%d is too large", height, width,
                          channels);
    uint8_t *z = NULL;
    size_t z_len = 0;
    int rc = deflate_rows(pixels, height, row, &z, &z_len, err);
    if (!rc)
        rc = assemble(z, z_len, height, width, ctype, out, out_len, err);
    free(z);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* image grid                                                                */

/* Maps v linearly from [lo, hi] to 0..255 (rounded, clamped; NaN -> 0). */
static uint8_t scale_pixel(float v, float lo, float hi)
{
    if (hi == lo)
        return 0;
    float t = (v - lo) / (hi - lo);
    if (!(t > 0.0f))
        return 0;
    if (t >= 1.0f)
        return 255;
    return (uint8_t)(t * 255.0f + 0.5f);
}

/* Minimum and maximum of the finite values in x[0..n) (0, 0 if none). */
static void tile_range(const float *x, int n, float *lo, float *hi)
{
    float mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    *lo = mn <= mx ? mn : 0.0f;
    *hi = mn <= mx ? mx : 0.0f;
}

/* Draws one h x w tile with its top-left pixel at (y0, x0) of a grid of width ow. */
static void draw_tile(uint8_t *grid, int ow, int y0, int x0, const float *img, int h, int w,
                      float lo, float hi)
{
    if (lo == hi)
        tile_range(img, h * w, &lo, &hi);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            grid[(size_t)(y0 + y) * (size_t)ow + (size_t)(x0 + x)] =
                scale_pixel(img[(size_t)y * (size_t)w + (size_t)x], lo, hi);
}

int ff_image_grid(const float *images, int n, int h, int w, int cols, float lo, float hi,
                  uint8_t **out, int *out_h, int *out_w, ff_err *err)
{
    FF_ASSERT(images && out && out_h && out_w);
    *out = NULL;
    *out_h = *out_w = 0;
    if (n < 1 || h < 1 || w < 1 || cols < 1)
        return ff_err_set(err, FF_ERR_USAGE,
                          "image grid: invalid geometry (%d images of %dx%d, %d columns)", n, h,
                          w, cols);
    if (!isfinite(lo) || !isfinite(hi))
        return ff_err_set(err, FF_ERR_USAGE, "image grid: range [%g, %g] is not finite",
                          (double)lo, (double)hi);
    int64_t rows = (n + (int64_t)cols - 1) / cols;
    int64_t oh = rows * ((int64_t)h + 1) + 1, ow = (int64_t)cols * ((int64_t)w + 1) + 1;
    if (oh > INT_MAX || ow > INT_MAX || oh * ow > GRID_MAX_PIXELS)
        return ff_err_set(err, FF_ERR_USAGE, "image grid: %lldx%lld pixels is too large",
                          (long long)oh, (long long)ow);
    uint8_t *grid = malloc((size_t)(oh * ow));
    if (!grid)
        return ff_err_set(err, FF_ERR_NOMEM, "image grid: out of memory");
    memset(grid, GRID_BORDER, (size_t)(oh * ow));
    for (int i = 0; i < n; i++)
        draw_tile(grid, (int)ow, 1 + (i / cols) * (h + 1), 1 + (i % cols) * (w + 1),
                  images + (size_t)i * (size_t)h * (size_t)w, h, w, lo, hi);
    *out = grid;
    *out_h = (int)oh;
    *out_w = (int)ow;
    return FF_OK;
}
