/* png.c - minimal PNG encoder (8-bit, filter 0, zlib), a decoder for 8-bit non-interlaced
 * grey/grey+alpha/RGB/RGBA files (all five row filters, zlib alone) and a float
 * image-grid helper. */
#include "ff/png.h"

#include <inttypes.h>
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
/* decoder                                                                   */

#define PNG_MAX_DIM ((uint32_t)1 << 20)      /* width and height accepted */
#define PNG_MAX_PIXELS ((uint64_t)1 << 30)   /* width * height * channels accepted */
#define PNG_MAX_CHUNK ((uint32_t)0x7fffffff) /* the format's own chunk length bound */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Chunk type as text for messages: non-letters shown as '?'. */
static void type_text(const uint8_t *t, char out[5])
{
    for (int i = 0; i < 4; i++)
        out[i] = (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ? (char)t[i] : '?';
    out[4] = '\0';
}

/* Checks the 13 IHDR bytes; fills the size and channel count. */
static int parse_ihdr(const uint8_t *d, const char *name, uint32_t *h, uint32_t *w, int *ch,
                      ff_err *err)
{
    *w = get_be32(d);
    *h = get_be32(d + 4);
    int depth = d[8], ctype = d[9];
    if (*w == 0 || *h == 0 || *w > PNG_MAX_DIM || *h > PNG_MAX_DIM)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: image size %" PRIu32 "x%" PRIu32 " (width x height) is out of "
                          "range (1 to %" PRIu32 " each)", name, *w, *h, PNG_MAX_DIM);
    if (ctype == 3)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: palette images (colour type 3) are not supported (grey, grey+alpha, "
                          "RGB or RGBA only)", name);
    static const int channels[7] = {1, 0, 3, 0, 2, 0, 4};
    if (ctype > 6 || !channels[ctype])
        return ff_err_set(err, FF_ERR_FORMAT, "%s: invalid colour type %d (0, 2, 4 or 6 expected)",
                          name, ctype);
    *ch = channels[ctype];
    if (depth != 8)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: bit depth %d is not supported (8 bits per sample only)", name, depth);
    if (d[10] != 0 || d[11] != 0)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: unknown compression method %d or filter method %d (0 expected)",
                          name, d[10], d[11]);
    if (d[12] == 1)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: interlaced (Adam7) images are not supported", name);
    if (d[12] != 0)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: invalid interlace method %d", name, d[12]);
    if ((uint64_t)*w * *h * (uint64_t)*ch > PNG_MAX_PIXELS)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: image %" PRIu32 "x%" PRIu32 "x%d is too large (at most %" PRIu64
                          " samples)", name, *w, *h, *ch, PNG_MAX_PIXELS);
    return FF_OK;
}

static uint8_t paeth(uint8_t a, uint8_t b, uint8_t c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Undoes the row filters of raw (height rows of 1 filter byte + row bytes) into out. */
static int unfilter(const uint8_t *raw, uint8_t *out, size_t height, size_t row, size_t bpp,
                    const char *name, ff_err *err)
{
    for (size_t y = 0; y < height; y++) {
        const uint8_t *in = raw + y * (row + 1) + 1;
        uint8_t *cur = out + y * row;
        const uint8_t *prev = y ? cur - row : NULL; /* NULL: the row above is all zero */
        int f = in[-1];
        switch (f) {
        case 0:
            memcpy(cur, in, row);
            break;
        case 1:
            for (size_t i = 0; i < row; i++)
                cur[i] = (uint8_t)(in[i] + (i >= bpp ? cur[i - bpp] : 0));
            break;
        case 2:
            for (size_t i = 0; i < row; i++)
                cur[i] = (uint8_t)(in[i] + (prev ? prev[i] : 0));
            break;
        case 3:
            for (size_t i = 0; i < row; i++)
                cur[i] = (uint8_t)(in[i] + (((i >= bpp ? cur[i - bpp] : 0) +
                                             (prev ? prev[i] : 0)) >> 1));
            break;
        case 4:
            for (size_t i = 0; i < row; i++)
                cur[i] = (uint8_t)(in[i] + paeth(i >= bpp ? cur[i - bpp] : 0, prev ? prev[i] : 0,
                                                 i >= bpp && prev ? prev[i - bpp] : 0));
            break;
        default:
            return ff_err_set(err, FF_ERR_FORMAT,
                              "%s: row %zu has filter type %d (0-4 expected)", name, y, f);
        }
    }
    return FF_OK;
}

/* Decoding state: the IHDR fields, the zlib stream the IDAT chunks feed, and the
 * filtered bytes it inflates into: raw_len expected (one extra byte catches overlong
 * data), the buffer growing with the data actually inflated so a tiny file claiming a
 * huge image costs no memory. */
typedef struct png_dec {
    const char *name;
    uint32_t h, w;
    int ch;
    z_stream zs;
    int zs_open, z_end;
    uint8_t *raw;
    size_t raw_len, raw_cap;
} png_dec;

/* Doubles the inflate buffer, up to raw_len + 1 bytes. */
static int grow_raw(png_dec *d, ff_err *err)
{
    size_t cap = d->raw_cap ? 2 * d->raw_cap : (size_t)1 << 16;
    cap = cap < d->raw_len + 1 ? cap : d->raw_len + 1;
    uint8_t *p = realloc(d->raw, cap);
    if (!p)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory for %zu bytes", d->name, cap);
    d->raw = p;
    d->raw_cap = cap;
    d->zs.next_out = p + d->zs.total_out;
    d->zs.avail_out = (uInt)(cap - d->zs.total_out);
    return FF_OK;
}

/* Feeds one IDAT chunk's bytes to the inflater. */
static int inflate_idat(png_dec *d, const uint8_t *data, uint32_t len, ff_err *err)
{
    d->zs.next_in = (Bytef *)(uintptr_t)data;
    d->zs.avail_in = len;
    while (d->zs.avail_in > 0 && !d->z_end) {
        int rc = d->zs.avail_out == 0 ? grow_raw(d, err) : FF_OK;
        if (rc)
            return rc;
        int zr = inflate(&d->zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            d->z_end = 1;
        else if (zr == Z_MEM_ERROR)
            return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory inflating", d->name);
        else if (zr != Z_OK)
            return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt image data (zlib: %s)", d->name,
                              d->zs.msg ? d->zs.msg : "stream error");
        if (d->zs.total_out > d->raw_len)
            return ff_err_set(err, FF_ERR_FORMAT,
                              "%s: image data inflates to more than the %zu bytes %" PRIu32
                              "x%" PRIu32 "x%d pixels need", d->name, d->raw_len, d->h, d->w,
                              d->ch);
    }
    return FF_OK; /* bytes after the end of the zlib stream are ignored */
}

/* Walks the chunks from after the signature to IEND, checking every CRC. */
static int read_chunks(png_dec *d, const uint8_t *buf, size_t len, ff_err *err)
{
    size_t pos = sizeof PNG_SIGNATURE;
    int idx = 0, n_idat = 0, idat_done = 0;
    for (;; idx++) {
        if (pos == len && idx == 0)
            return ff_err_set(err, FF_ERR_FORMAT, "%s: missing IHDR (nothing after the "
                              "signature)", d->name);
        if (pos == len)
            return ff_err_set(err, FF_ERR_FORMAT, "%s: missing IEND (file ends at byte %zu%s)",
                              d->name, pos, n_idat ? "" : ", no IDAT either");
        if (len - pos < 12)
            return ff_err_set(err, FF_ERR_FORMAT,
                              "%s: truncated chunk at byte %zu (%zu bytes left, 12 at least)",
                              d->name, pos, len - pos);
        uint32_t n = get_be32(buf + pos);
        const uint8_t *type = buf + pos + 4, *data = buf + pos + 8;
        char tt[5];
        type_text(type, tt);
        if (n > PNG_MAX_CHUNK || n > len - pos - 12)
            return ff_err_set(err, FF_ERR_FORMAT,
                              "%s: truncated chunk %s at byte %zu (%" PRIu32 " data bytes, %zu "
                              "left)", d->name, tt, pos, n, len - pos - 12);
        if ((uint32_t)crc32(0L, type, 4 + n) != get_be32(data + n))
            return ff_err_set(err, FF_ERR_FORMAT, "%s: CRC mismatch in chunk %s at byte %zu",
                              d->name, tt, pos);
        int is_idat = memcmp(type, "IDAT", 4) == 0;
        if (idx == 0) {
            if (memcmp(type, "IHDR", 4) != 0 || n != 13)
                return ff_err_set(err, FF_ERR_FORMAT,
                                  "%s: missing IHDR (first chunk is %s of %" PRIu32 " bytes)",
                                  d->name, tt, n);
            int rc = parse_ihdr(data, d->name, &d->h, &d->w, &d->ch, err);
            if (rc)
                return rc;
            d->raw_len = (size_t)d->h * ((size_t)d->w * (size_t)d->ch + 1);
            if (inflateInit(&d->zs) != Z_OK)
                return ff_err_set(err, FF_ERR_NOMEM, "%s: cannot start zlib", d->name);
            d->zs_open = 1;
        } else if (is_idat) {
            if (idat_done)
                return ff_err_set(err, FF_ERR_FORMAT,
                                  "%s: IDAT chunks are not consecutive (another at byte %zu)",
                                  d->name, pos);
            n_idat++;
            int rc = inflate_idat(d, data, n, err);
            if (rc)
                return rc;
        } else if (memcmp(type, "IEND", 4) == 0) {
            if (!n_idat)
                return ff_err_set(err, FF_ERR_FORMAT, "%s: missing IDAT (no image data before "
                                  "IEND)", d->name);
            return FF_OK; /* bytes after IEND are ignored */
        } else if (memcmp(type, "IHDR", 4) == 0) {
            return ff_err_set(err, FF_ERR_FORMAT, "%s: second IHDR at byte %zu", d->name, pos);
        } else if (!(type[0] & 0x20) && memcmp(type, "PLTE", 4) != 0) {
            return ff_err_set(err, FF_ERR_FORMAT, "%s: unknown critical chunk %s at byte %zu",
                              d->name, tt, pos);
        } /* ancillary chunks, and a suggested palette (PLTE), are skipped */
        idat_done = n_idat > 0 && !is_idat;
        pos += 12 + (size_t)n;
    }
}

int ff_png_decode(const uint8_t *buf, size_t len, const char *name, uint8_t **pixels,
                  int *height, int *width, int *channels, ff_err *err)
{
    FF_ASSERT((buf || !len) && name && pixels && height && width && channels);
    *pixels = NULL;
    *height = *width = *channels = 0;
    if (len < sizeof PNG_SIGNATURE || memcmp(buf, PNG_SIGNATURE, sizeof PNG_SIGNATURE) != 0)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: not a PNG file (bad signature)", name);
    png_dec d;
    memset(&d, 0, sizeof d);
    d.name = name;
    int rc = read_chunks(&d, buf, len, err);
    if (!rc && (!d.z_end || d.zs.total_out != d.raw_len))
        rc = ff_err_set(err, FF_ERR_FORMAT,
                        "%s: image data inflates to %s%lu bytes, %" PRIu32 "x%" PRIu32
                        "x%d pixels need %zu", name, d.z_end ? "" : "at least ",
                        (unsigned long)d.zs.total_out, d.h, d.w, d.ch, d.raw_len);
    if (d.zs_open)
        inflateEnd(&d.zs);
    uint8_t *out = NULL;
    if (!rc) {
        out = malloc((size_t)d.h * d.w * (size_t)d.ch);
        if (!out)
            rc = ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory for %" PRIu32 "x%" PRIu32
                            "x%d pixels", name, d.h, d.w, d.ch);
    }
    if (!rc)
        rc = unfilter(d.raw, out, d.h, (size_t)d.w * (size_t)d.ch, (size_t)d.ch, name, err);
    free(d.raw);
    if (rc) {
        free(out);
        return rc;
    }
    *pixels = out;
    *height = (int)d.h;
    *width = (int)d.w;
    *channels = d.ch;
    return FF_OK;
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

int ff_png_grid(const float *images, int n, int h, int w, int cols, float lo, float hi,
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
