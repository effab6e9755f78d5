/* fuzz_png.c - libFuzzer harness: PNG file bytes through ff_png_decode. A decoded image
 * must be within the documented bounds with every pixel readable; grey, RGB and RGBA ones
 * (up to 2^20 samples, for speed) must survive ff_png_encode -> ff_png_decode unchanged. A refusal must leave no output
 * and give a message naming the file. Each input is decoded as given and again with every
 * chunk CRC recomputed, so mutations of chunk contents get past the CRC check. */
#include "ff/png.h"
#include "fuzz_util.h"

#include <zlib.h>

static void check_round_trip(const uint8_t *px, int h, int w, int ch)
{
    uint8_t *png = NULL, *again = NULL;
    size_t n = 0;
    int h2, w2, c2;
    ff_err err = {0};
    if (ff_png_encode(px, h, w, ch, &png, &n, &err) != FF_OK)
        fuzz_fail("ff_png_encode refused a decoded %dx%dx%d image: %s", h, w, ch, err.msg);
    if (ff_png_decode(png, n, "again.png", &again, &h2, &w2, &c2, &err) != FF_OK)
        fuzz_fail("re-encoded %dx%dx%d image does not decode: %s", h, w, ch, err.msg);
    if (h2 != h || w2 != w || c2 != ch || memcmp(again, px, (size_t)h * w * ch) != 0)
        fuzz_fail("re-encoded %dx%dx%d image decodes differently", h, w, ch);
    free(again);
    free(png);
}

static void decode_one(const uint8_t *data, size_t size)
{
    uint8_t *px = (uint8_t *)"unchanged";
    int h = -1, w = -1, ch = -1;
    ff_err err = {0};
    int rc = ff_png_decode(data, size, "fuzz.png", &px, &h, &w, &ch, &err);
    if (rc != FF_OK) {
        if (px || h || w || ch || strncmp(err.msg, "fuzz.png: ", 10) != 0 || rc != err.code)
            fuzz_fail("refused (%d) leaving output or without naming the file: %s", rc, err.msg);
        return;
    }
    if (!px || h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20) || ch < 1 || ch > 4 ||
        (uint64_t)h * (uint64_t)w * (uint64_t)ch > ((uint64_t)1 << 30))
        fuzz_fail("decoded %dx%dx%d out of bounds", h, w, ch);
    size_t n = (size_t)h * w * ch;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += px[i];
    fuzz_sink = sum;
    if (ch != 2 && n <= ((size_t)1 << 20))
        check_round_trip(px, h, w, ch);
    free(px);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_one(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    memcpy(fixed, data, size);
    for (size_t pos = 8; pos <= size && size - pos >= 12;) {
        uint32_t len = be32(fixed + pos);
        if (len > size - pos - 12)
            break;
        uint32_t crc = (uint32_t)crc32(0L, fixed + pos + 4, 4 + len);
        for (int i = 0; i < 4; i++)
            fixed[pos + 8 + len + i] = (uint8_t)(crc >> (24 - 8 * i));
        pos += 12 + (size_t)len;
    }
    decode_one(fixed, size);
    free(fixed);
    return 0;
}
