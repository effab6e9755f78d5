/* test_png.c - PNG round trips through an independent zlib-based decoder and through
 * ff_png_decode; ff_png_decode on hand-made files (every row filter, every refusal); the
 * image grid. */
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
    uint8_t *dec = NULL;
    int dh = 0, dw = 0, dc = 0;
    CHECK(ff_png_decode(png, n, "rt.png", &dec, &dh, &dw, &dc, &err) == FF_OK);
    CHECK(dh == h && dw == w && dc == ch);
    CHECK(dec && memcmp(dec, px, (size_t)h * w * ch) == 0);
    free(dec);
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

/* ------------------------------------------------------------------------ */
/* ff_png_decode on hand-made files                                          */

/* A growing byte buffer and a chunk writer independent of src/png.c. */
typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static void add(bytes *b, const void *data, size_t n)
{
    b->p = realloc(b->p, b->n + n + 1);
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void add_be32(bytes *b, uint32_t v)
{
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    add(b, q, 4);
}

static void add_chunk(bytes *b, const char *type, const void *data, uint32_t n)
{
    add_be32(b, n);
    size_t at = b->n;
    add(b, type, 4);
    add(b, data, n);
    add_be32(b, (uint32_t)crc32(0L, b->p + at, 4 + n));
}

static const uint8_t SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* The IHDR chunk for the given fields, after the signature. */
static void add_ihdr(bytes *b, uint32_t w, uint32_t h, int depth, int ctype, int interlace)
{
    uint8_t d[13];
    for (int i = 0; i < 4; i++) {
        d[i] = (uint8_t)(w >> (24 - 8 * i));
        d[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    d[8] = (uint8_t)depth;
    d[9] = (uint8_t)ctype;
    d[10] = d[11] = 0;
    d[12] = (uint8_t)interlace;
    add(b, SIG, 8);
    add_chunk(b, "IHDR", d, 13);
}

/* Deflates raw with zlib's compress and adds it as IDAT chunks of at most `split` bytes. */
static void add_idat(bytes *b, const uint8_t *raw, size_t n, size_t split)
{
    uLongf zn = compressBound((uLong)n);
    uint8_t *z = malloc(zn);
    CHECK(compress(z, &zn, raw, (uLong)n) == Z_OK);
    for (size_t off = 0; off < zn; off += split)
        add_chunk(b, "IDAT", z + off, (uint32_t)(zn - off < split ? zn - off : split));
    free(z);
}

/* A whole file: signature, IHDR, the filtered bytes raw as IDAT, IEND. */
static bytes make_png(uint32_t w, uint32_t h, int depth, int ctype, int interlace,
                      const uint8_t *raw, size_t n)
{
    bytes b = {0};
    add_ihdr(&b, w, h, depth, ctype, interlace);
    add_idat(&b, raw, n, 1 << 16);
    add_chunk(&b, "IEND", NULL, 0);
    return b;
}

/* Filters pixels (h rows of row bytes, bpp bytes a pixel) with filter types[y] on row y,
 * straight from the PNG specification's definitions; returns h * (row + 1) bytes. */
static uint8_t *filter_rows(const uint8_t *px, int h, int row, int bpp, const int *types)
{
    uint8_t *raw = malloc((size_t)h * (row + 1));
    for (int y = 0; y < h; y++) {
        uint8_t *o = raw + (size_t)y * (row + 1);
        o[0] = (uint8_t)types[y];
        for (int i = 0; i < row; i++) {
            int x = px[y * row + i];
            int a = i >= bpp ? px[y * row + i - bpp] : 0;
            int b = y > 0 ? px[(y - 1) * row + i] : 0;
            int c = i >= bpp && y > 0 ? px[(y - 1) * row + i - bpp] : 0;
            int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
            int pred = types[y] == 0   ? 0
                       : types[y] == 1 ? a
                       : types[y] == 2 ? b
                       : types[y] == 3 ? (a + b) / 2
                       : (pa <= pb && pa <= pc) ? a
                       : pb <= pc       ? b
                                        : c;
            o[1 + i] = (uint8_t)(x - pred);
        }
    }
    return raw;
}

static int decode(const bytes *b, uint8_t **px, int *h, int *w, int *ch, ff_err *err)
{
    return ff_png_decode(b->p, b->n, "hand.png", px, h, w, ch, err);
}

static void test_decode_filters(void)
{
    static const int ctypes[4] = {0, 4, 2, 6}, chans[4] = {1, 2, 3, 4};
    enum { H = 10, W = 7 };
    for (int k = 0; k < 4; k++)
        for (int shift = 0; shift < 5; shift++) { /* every filter on the first row too */
            int ch = chans[k], row = W * ch, types[H];
            for (int y = 0; y < H; y++)
                types[y] = (y + shift) % 5;
            uint8_t *px = pattern(H, W, ch, 1);
            px[0] = 255; /* wrap-around in the sums */
            uint8_t *raw = filter_rows(px, H, row, ch, types);
            bytes b = make_png(W, H, 8, ctypes[k], 0, raw, (size_t)H * (row + 1));
            uint8_t *out = NULL;
            int h = 0, w = 0, c = 0;
            ff_err err = {0};
            CHECK(decode(&b, &out, &h, &w, &c, &err) == FF_OK);
            CHECK(h == H && w == W && c == ch);
            CHECK(out && memcmp(out, px, (size_t)H * row) == 0);
            if (err.msg[0])
                fprintf(stderr, "  %s\n", err.msg);
            free(out);
            free(b.p);
            free(raw);
            free(px);
        }
}

/* IDAT split into 1-byte chunks, ancillary chunks and a suggested palette around them,
 * bytes after IEND: all accepted. */
static void test_decode_chunk_layout(void)
{
    uint8_t *px = pattern(3, 4, 3, 0);
    int types[3] = {4, 3, 1};
    uint8_t *raw = filter_rows(px, 3, 12, 3, types);
    bytes b = {0};
    add_ihdr(&b, 4, 3, 8, 2, 0);
    add_chunk(&b, "tEXt", "Comment\0hi", 10);
    add_chunk(&b, "PLTE", "\0\0\0", 3);
    add_idat(&b, raw, 3 * 13, 1);
    add_chunk(&b, "tIME", "\x07\xe8\1\1\0\0\0", 7);
    add_chunk(&b, "IEND", NULL, 0);
    add(&b, "trailing", 8);
    uint8_t *out = NULL;
    int h, w, c;
    ff_err err = {0};
    CHECK(decode(&b, &out, &h, &w, &c, &err) == FF_OK);
    CHECK(out && h == 3 && w == 4 && c == 3 && memcmp(out, px, 36) == 0);
    free(out);
    free(b.p);
    free(raw);
    free(px);
}

/* Decoding b must fail with FF_ERR_FORMAT, a message naming the file and saying `what`. */
static void expect_refused(const bytes *b, const char *what, int line)
{
    uint8_t *out = (uint8_t *)"x";
    int h = 7, w = 7, c = 7;
    ff_err err = {0};
    int rc = decode(b, &out, &h, &w, &c, &err);
    int good = rc == FF_ERR_FORMAT && out == NULL && h == 0 && w == 0 && c == 0 &&
               strncmp(err.msg, "hand.png: ", 10) == 0 && strstr(err.msg, what) != NULL;
    if (!good)
        fprintf(stderr, "  line %d: rc %d, \"%s\" (want \"%s\")\n", line, rc, err.msg, what);
    CHECK(good);
    if (rc == FF_OK)
        free(out);
}
#define REFUSED(b, what) expect_refused(b, what, __LINE__)

/* A valid 2x3 RGB file with filter 0 rows: its filtered bytes. */
static uint8_t RAW23[2 * 7] = {0, 1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 11, 12};

static void test_decode_refusals(void)
{
    bytes ok = make_png(2, 2, 8, 2, 0, RAW23, sizeof RAW23), b = {0};
    uint8_t *out = NULL;
    int h, w, c;
    ff_err err = {0};
    CHECK(decode(&ok, &out, &h, &w, &c, &err) == FF_OK && h == 2 && w == 2 && c == 3);
    CHECK(out && out[0] == 1 && out[11] == 12);
    free(out);

    /* signature, truncation, CRC */
    b = (bytes){0};
    add(&b, ok.p, ok.n);
    b.p[1] = 'Q';
    REFUSED(&b, "bad signature");
    b.n = 5;
    REFUSED(&b, "bad signature");
    b.p[1] = 'P';
    b.n = 8;
    REFUSED(&b, "missing IHDR");
    b.n = 8 + 25 + 20; /* in the middle of IDAT */
    REFUSED(&b, "truncated chunk IDAT");
    b.n = ok.n - 3; /* in IEND */
    REFUSED(&b, "truncated chunk at byte");
    b.n = ok.n - 12; /* no IEND at all */
    REFUSED(&b, "missing IEND");
    b.n = ok.n;
    b.p[8 + 8 + 3] ^= 4; /* IHDR width byte */
    REFUSED(&b, "CRC mismatch in chunk IHDR");
    b.p[8 + 8 + 3] ^= 4;
    b.p[8 + 25 + 9] ^= 1; /* in the zlib data */
    REFUSED(&b, "CRC mismatch in chunk IDAT");
    free(b.p);

    /* missing chunks */
    b = (bytes){0};
    add(&b, SIG, 8);
    add_idat(&b, RAW23, sizeof RAW23, 1 << 16);
    add_chunk(&b, "IEND", NULL, 0);
    REFUSED(&b, "missing IHDR");
    free(b.p);
    b = (bytes){0};
    add_ihdr(&b, 2, 2, 8, 2, 0);
    add_chunk(&b, "IEND", NULL, 0);
    REFUSED(&b, "missing IDAT");
    free(b.p);
    b = (bytes){0};
    add_ihdr(&b, 2, 2, 8, 2, 0);
    add_idat(&b, RAW23, sizeof RAW23, 1 << 16);
    REFUSED(&b, "missing IEND");
    free(b.p);

    /* what the decoder does not support, saying which */
    static const struct {
        int depth, ctype, interlace;
        const char *what;
    } bad[] = {{16, 2, 0, "bit depth 16"}, {1, 0, 0, "bit depth 1"}, {4, 0, 0, "bit depth 4"},
               {8, 3, 0, "palette"},       {8, 1, 0, "colour type 1"}, {8, 7, 0, "colour type 7"},
               {8, 2, 1, "interlaced (Adam7)"}, {8, 2, 2, "interlace method 2"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = make_png(2, 2, bad[i].depth, bad[i].ctype, bad[i].interlace, RAW23, sizeof RAW23);
        REFUSED(&b, bad[i].what);
        free(b.p);
    }

    /* filter bytes, inflated size, zlib stream */
    uint8_t raw[sizeof RAW23 + 1];
    memcpy(raw, RAW23, sizeof RAW23);
    raw[7] = 5;
    b = make_png(2, 2, 8, 2, 0, raw, sizeof RAW23);
    REFUSED(&b, "row 1 has filter type 5");
    free(b.p);
    raw[7] = 0;
    b = make_png(2, 2, 8, 2, 0, raw, sizeof RAW23 - 1);
    REFUSED(&b, "inflates to 13 bytes");
    free(b.p);
    b = make_png(2, 2, 8, 2, 0, raw, sizeof RAW23 + 1);
    REFUSED(&b, "inflates to more than the 14 bytes");
    free(b.p);
    b = (bytes){0};
    add_ihdr(&b, 2, 2, 8, 2, 0);
    add_chunk(&b, "IDAT", "\x78\x9c\xff\xff\xff\xff", 6);
    add_chunk(&b, "IEND", NULL, 0);
    REFUSED(&b, "corrupt image data");
    free(b.p);
    b = (bytes){0};
    add_ihdr(&b, 2, 2, 8, 2, 0);
    add_idat(&b, RAW23, sizeof RAW23, 4);
    add_chunk(&b, "tEXt", "a\0b", 3);
    add_chunk(&b, "IDAT", "", 0);
    add_chunk(&b, "IEND", NULL, 0);
    REFUSED(&b, "not consecutive");
    free(b.p);
    b = (bytes){0};
    add_ihdr(&b, 2, 2, 8, 2, 0);
    add_chunk(&b, "ZZZZ", "", 0);
    REFUSED(&b, "unknown critical chunk ZZZZ");
    free(b.p);

    /* size bounds (checked before any allocation) */
    b = make_png(0, 2, 8, 2, 0, RAW23, sizeof RAW23);
    REFUSED(&b, "out of range");
    free(b.p);
    b = make_png((1u << 20) + 1, 1, 8, 0, 0, RAW23, sizeof RAW23);
    REFUSED(&b, "out of range");
    free(b.p);
    b = make_png(1, 0x80000000u, 8, 0, 0, RAW23, sizeof RAW23);
    REFUSED(&b, "out of range");
    free(b.p);
    b = make_png(1u << 20, 1u << 10, 8, 2, 0, RAW23, sizeof RAW23);
    REFUSED(&b, "too large");
    free(b.p);
    b = make_png(1u << 20, 1u << 10, 8, 0, 0, RAW23, sizeof RAW23); /* 2^30: allowed size */
    REFUSED(&b, "inflates to 14 bytes");
    free(b.p);
    free(ok.p);
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
    CHECK(ff_png_grid(img, N, H, W, COLS, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
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
    CHECK(ff_png_grid(img, 2, H, W, 4, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(oh == H + 2 && ow == 4 * (W + 1) + 1);
    free(g);
}

static void test_grid_scaling(void)
{
    float img[8] = {-0.5f, 0.0f, 0.5f, 1.0f, 1.5f, NAN, 0.25f, -1.0f};
    uint8_t *g = NULL;
    int oh = 0, ow = 0;
    ff_err err = {0};
    CHECK(ff_png_grid(img, 1, 2, 4, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(oh == 4 && ow == 6);
    if (g) {
        const uint8_t want[8] = {0, 0, 128, 255, 255, 0, 64, 0};
        for (int i = 0; i < 8; i++)
            CHECK(g[(1 + i / 4) * ow + 1 + i % 4] == want[i]);
        free(g);
    }
    /* [-1, 1] range: 0 maps to mid-grey */
    CHECK(ff_png_grid(img, 1, 2, 4, 1, -1.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
    CHECK(g && g[1 * ow + 2] == 128 && g[2 * ow + 4] == 0 && g[1 * ow + 4] == 255);
    free(g);
}

static void test_grid_per_tile(void)
{
    float img[2 * 3] = {2.0f, 4.0f, 6.0f, /* second tile constant: */ 7.0f, 7.0f, 7.0f};
    uint8_t *g = NULL;
    int oh = 0, ow = 0;
    ff_err err = {0};
    CHECK(ff_png_grid(img, 2, 1, 3, 2, 0.0f, 0.0f, &g, &oh, &ow, &err) == FF_OK);
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
    CHECK(ff_png_grid(img, 0, 2, 2, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(g == NULL && oh == 0 && ow == 0);
    CHECK(ff_png_grid(img, 1, 2, 2, 0, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(ff_png_grid(img, 1, 0, 2, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(ff_png_grid(img, 1, 2, 2, 1, NAN, 1.0f, &g, &oh, &ow, &err) == FF_ERR_USAGE);
    CHECK(ff_png_grid(img, 1, 1 << 20, 1 << 20, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) ==
          FF_ERR_USAGE);
    /* grid -> PNG -> decoded pixels are the grid */
    CHECK(ff_png_grid(img, 1, 2, 2, 1, 0.0f, 1.0f, &g, &oh, &ow, &err) == FF_OK);
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
    RUN(test_decode_filters);
    RUN(test_decode_chunk_layout);
    RUN(test_decode_refusals);
    RUN(test_grid_geometry);
    RUN(test_grid_scaling);
    RUN(test_grid_per_tile);
    RUN(test_grid_errors_and_png);
    TEST_MAIN_END();
}
