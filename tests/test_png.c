/* test_png.c - PNG round trips through an independent zlib-based decoder; the image grid. */
#include "ff/png.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------------------ */
/* a strict little PNG decoder for what ff_png_encode writes                 */

typedef struct png_info {
    uint32_t width, height;
    int depth, ctype, comp, filter, interlace;
    int nidat;
    size_t max_idat;
    uint8_t *pixels; /* malloc'ed, height * width * channels */
} png_info;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int channels_of(int ctype) { return ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 6 ? 4 : 0; }

/* Walks the chunks, verifying every CRC; collects IHDR fields and the IDAT
 * stream (*z, malloc'ed). Returns NULL or a reason. */
static const char *read_chunks(const uint8_t *p, size_t n, png_info *pi, uint8_t **z, size_t *zn)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(p, sig, 8) != 0)
        return "bad signature";
    size_t pos = 8;
    int seen_iend = 0, last_idat = -1;
    *z = NULL;
    *zn = 0;
    for (int idx = 0; pos < n; idx++) {
        if (seen_iend)
            return "data after IEND";
        if (n - pos < 12)
            return "truncated chunk header";
        uint32_t len = be32(p + pos);
        const uint8_t *type = p + pos + 4, *data = p + pos + 8;
        if (len > n - pos - 12)
            return "chunk overruns file";
        if ((uint32_t)crc32(0L, type, 4 + len) != be32(data + len))
            return "bad chunk CRC";
        if (idx == 0 && (memcmp(type, "IHDR", 4) != 0 || len != 13))
            return "first chunk is not a 13-byte IHDR";
        if (idx == 0) {
            pi->width = be32(data);
            pi->height = be32(data + 4);
            pi->depth = data[8];
            pi->ctype = data[9];
            pi->comp = data[10];
            pi->filter = data[11];
            pi->interlace = data[12];
        } else if (memcmp(type, "IDAT", 4) == 0) {
            if (last_idat >= 0 && last_idat != idx - 1)
                return "IDAT chunks not consecutive";
            last_idat = idx;
            pi->nidat++;
            pi->max_idat = len > pi->max_idat ? len : pi->max_idat;
            *z = realloc(*z, *zn + len + 1);
            memcpy(*z + *zn, data, len);
            *zn += len;
        } else if (memcmp(type, "IEND", 4) == 0) {
            if (len != 0)
                return "IEND with data";
            seen_iend = 1;
        } else {
            return "unexpected chunk";
        }
        pos += 12 + (size_t)len;
    }
    return seen_iend ? NULL : "no IEND";
}

/* Inflates the IDAT stream and undoes filter 0 on every row. */
static const char *unfilter(png_info *pi, const uint8_t *z, size_t zn)
{
    int ch = channels_of(pi->ctype);
    if (!ch || pi->depth != 8 || pi->width == 0 || pi->height == 0)
        return "unsupported IHDR";
    size_t row = (size_t)pi->width * (size_t)ch, want = (row + 1) * pi->height;
    uint8_t *raw = malloc(want + 1);
    uLongf got = (uLongf)want + 1;
    int zr = uncompress(raw, &got, z, (uLong)zn);
    if (zr != Z_OK || got != want) {
        free(raw);
        return "IDAT does not inflate to the expected size";
    }
    pi->pixels = malloc(row * pi->height);
    for (size_t y = 0; y < pi->height; y++) {
        if (raw[y * (row + 1)] != 0) {
            free(raw);
            return "row filter is not 0";
        }
        memcpy(pi->pixels + y * row, raw + y * (row + 1) + 1, row);
    }
    free(raw);
    return NULL;
}

static const char *decode_png(const uint8_t *p, size_t n, png_info *pi)
{
    uint8_t *z = NULL;
    size_t zn = 0;
    memset(pi, 0, sizeof *pi);
    const char *why = read_chunks(p, n, pi, &z, &zn);
    if (!why)
        why = unfilter(pi, z, zn);
    free(z);
    return why;
}

/* ------------------------------------------------------------------------ */
/* encoder                                                                   */

/* Encodes, decodes and compares; returns the decoded info (pixels freed). */
static png_info round_trip(const uint8_t *px, int h, int w, int ch)
{
    uint8_t *png = NULL;
    size_t n = 0;
    ff_err err = {0};
    png_info pi;
    memset(&pi, 0, sizeof pi);
    CHECK(ff_png_encode(px, h, w, ch, &png, &n, &err) == FF_OK);
    if (!png)
        return pi;
    const char *why = decode_png(png, n, &pi);
    if (why)
        fprintf(stderr, "  decode: %s\n", why);
    CHECK(why == NULL);
    CHECK(pi.width == (uint32_t)w && pi.height == (uint32_t)h);
    CHECK(pi.depth == 8 && pi.comp == 0 && pi.filter == 0 && pi.interlace == 0);
    CHECK(channels_of(pi.ctype) == ch);
    CHECK(pi.pixels && memcmp(pi.pixels, px, (size_t)h * w * ch) == 0);
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    CHECK(n >= 12 && memcmp(png + n - 12, iend, 12) == 0);
    free(pi.pixels);
    pi.pixels = NULL;
    free(png);
    return pi;
}

static uint8_t *pattern(int h, int w, int ch, int noise)
{
    size_t n = (size_t)h * w * ch;
    uint8_t *p = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = noise ? (uint8_t)(x >> 24) : (uint8_t)(i * 37 + i / 5);
    }
    return p;
}

static void test_grey(void)
{
    uint8_t *px = pattern(5, 7, 1, 0);
    png_info pi = round_trip(px, 5, 7, 1);
    CHECK(pi.ctype == 0 && pi.nidat == 1);
    free(px);
    uint8_t one = 200;
    pi = round_trip(&one, 1, 1, 1);
    CHECK(pi.width == 1 && pi.height == 1 && pi.ctype == 0);
}

static void test_rgb_rgba(void)
{
    uint8_t *px = pattern(4, 3, 3, 0);
    png_info pi = round_trip(px, 4, 3, 3);
    CHECK(pi.ctype == 2);
    free(px);
    px = pattern(2, 9, 4, 0);
    pi = round_trip(px, 2, 9, 4);
    CHECK(pi.ctype == 6);
    free(px);
}

static void test_many_idat(void)
{
    uint8_t *px = pattern(300, 300, 3, 1); /* noise: ~270 KB of zlib data */
    png_info pi = round_trip(px, 300, 300, 3);
    CHECK(pi.nidat > 1);
    CHECK(pi.max_idat > 0 && pi.max_idat <= 65536);
    free(px);
}

static void test_decoder_catches_corruption(void)
{
    uint8_t *px = pattern(6, 6, 1, 0), *png = NULL;
    size_t n = 0;
    ff_err err = {0};
    png_info pi;
    CHECK(ff_png_encode(px, 6, 6, 1, &png, &n, &err) == FF_OK);
    CHECK(png && n > 40);
    if (png && n > 40) {
        png[8 + 8 + 5] ^= 1; /* inside IHDR data: its CRC no longer matches */
        const char *why = decode_png(png, n, &pi);
        CHECK(why && strcmp(why, "bad chunk CRC") == 0);
        free(pi.pixels);
    }
    free(png);
    free(px);
}

static void test_encode_errors(void)
{
    uint8_t px[16] = {0}, *png = (uint8_t *)px;
    size_t n = 99;
    ff_err err = {0};
    CHECK(ff_png_encode(px, 2, 2, 2, &png, &n, &err) == FF_ERR_USAGE);
    CHECK(png == NULL && n == 0 && strstr(err.msg, "2 channels") != NULL);
    CHECK(ff_png_encode(px, 2, 0, 1, &png, &n, &err) == FF_ERR_USAGE);
    CHECK(ff_png_encode(px, -1, 2, 1, &png, &n, &err) == FF_ERR_USAGE);
    CHECK(ff_png_encode(px, 1 << 20, 1 << 20, 4, &png, &n, &err) == FF_ERR_USAGE);
    CHECK(png == NULL && strstr(err.msg, "too large") != NULL);
}

/* ------------------------------------------------------------------------ */
/* image grid                                                                */

static void test_grid_geometry(void)
{
    enum { N = 5, H = 2, W = 3, COLS = 3 };
    float img[N * H * W];
    for (int i = 0; i < N * H * W; i++)
        img[i] = (float)(i % 6) / 5.0f; /* 0, .2, .4, .6, .8, 1 per tile */
    uint8_t *g = NULL;
    int oh = 0, ow = 0;
    ff_err err = {0};
    CHECK(ff_image_grid(img, N, H, W, COLS, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(oh == 2 * (H + 1) + 1 && ow == COLS * (W + 1) + 1);
    if (!g || oh != 7 || ow != 13) {
        free(g);
        return;
    }
    int border_ok = 1, tiles_ok = 1, empty_ok = 1;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int by = y % (H + 1) == 0, bx = x % (W + 1) == 0;
            int cell = (y / (H + 1)) * COLS + x / (W + 1);
            uint8_t v = g[y * ow + x];
            if (by || bx)
                border_ok &= v == 128;
            else if (cell >= N)
                empty_ok &= v == 128;
            else {
                int k = ((y - 1) % (H + 1)) * W + (x - 1) % (W + 1);
                static const uint8_t want[6] = {0, 51, 102, 153, 204, 255};
                tiles_ok &= v == want[k];
            }
        }
    CHECK(border_ok);
    CHECK(tiles_ok);
    CHECK(empty_ok);
    /* image 4 sits at row 1, column 1: top-left pixel (4, 5) */
    CHECK(g[4 * ow + 5] == 0 && g[5 * ow + 7] == 255);
    free(g);

    /* more columns than images: the documented geometry still holds */
    CHECK(ff_image_grid(img, 2, H, W, 4, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(oh == H + 2 && ow == 4 * (W + 1) + 1);
    free(g);
}

static void test_grid_scaling(void)
{
    float img[8] = {-0.5f, 0.0f, 0.5f, 1.0f, 1.5f, NAN, 0.25f, -1.0f};
    uint8_t *g = NULL;
    int oh = 0, ow = 0;
    ff_err err = {0};
    CHECK(ff_image_grid(img, 1, 2, 4, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(oh == 4 && ow == 6);
    if (g) {
        const uint8_t want[8] = {0, 0, 128, 255, 255, 0, 64, 0};
        for (int i = 0; i < 8; i++)
            CHECK(g[(1 + i / 4) * ow + 1 + i % 4] == want[i]);
        free(g);
    }
    /* [-1, 1] range: 0 maps to mid-grey */
    CHECK(ff_image_grid(img, 1, 2, 4, 1, -1.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(g && g[1 * ow + 2] == 128 && g[2 * ow + 4] == 0 && g[1 * ow + 4] == 255);
    free(g);
}

static void test_grid_per_tile(void)
{
    float img[2 * 3] = {2.0f, 4.0f, 6.0f, /* second tile constant: */ 7.0f, 7.0f, 7.0f};
    uint8_t *g = NULL;
    int oh = 0, ow = 0;
    ff_err err = {0};
    CHECK(ff_image_grid(img, 2, 1, 3, 2, 0.0f, 0.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(oh == 3 && ow == 9);
    if (g && ow == 9) {
        CHECK(g[ow + 1] == 0 && g[ow + 2] == 128 && g[ow + 3] == 255);
        CHECK(g[ow + 5] == 0 && g[ow + 6] == 0 && g[ow + 7] == 0);
        CHECK(g[ow + 4] == 128 && g[ow + 8] == 128 && g[0] == 128);
    }
    free(g);
}

static void test_grid_errors_and_png(void)
{
    float img[4] = {0.0f, 0.25f, 0.5f, 1.0f};
    uint8_t *g = (uint8_t *)img, *png = NULL;
    int oh = 5, ow = 5;
    ff_err err = {0};
    CHECK(ff_image_grid(img, 0, 2, 2, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(g == NULL && oh == 0 && ow == 0);
    CHECK(ff_image_grid(img, 1, 2, 2, 0, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(ff_image_grid(img, 1, 0, 2, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(ff_image_grid(img, 1, 2, 2, 1, NAN, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(ff_image_grid(img, 1, 1 << 20, 1 << 20, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) ==
          FF_ERR_USAGE);
    /* grid -> PNG -> decoded pixels are the grid */
    CHECK(ff_image_grid(img, 1, 2, 2, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    size_t n = 0;
    png_info pi;
    memset(&pi, 0, sizeof pi);
    CHECK(g && ff_png_encode(g, oh, ow, 1, &png, &n, &err) == FF_OK);
    CHECK(png && decode_png(png, n, &pi) == NULL);
    CHECK(pi.pixels && pi.width == 4 && pi.height == 4 && memcmp(pi.pixels, g, 16) == 0);
    free(pi.pixels);
    free(png);
    free(g);
}

int main(void)
{
    RUN(test_grey);
    RUN(test_rgb_rgba);
    RUN(test_many_idat);
    RUN(test_decoder_catches_corruption);
    RUN(test_encode_errors);
    RUN(test_grid_geometry);
    RUN(test_grid_scaling);
    RUN(test_grid_per_tile);
    RUN(test_grid_errors_and_png);
    TEST_MAIN_END();
}
