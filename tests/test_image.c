/* test_image.c - the input side of `ffrun predict` and the .npz writer: ff_pnm_decode
 * (maxval scaling, comments, every refusal), ff_image_file_read (format recognition,
 * grey / colour conversion, alpha, refusals naming the file) and ff_npz (a zip whose
 * members inflate back to the .npy bytes, with the right CRCs and offsets). */
#include "ff/image.h"
#include "ff/npz.h"
#include "ff/png.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    if (f)
        fclose(f);
    return path;
}

static void test_pnm(void)
{
    uint8_t *px;
    int h, w, c;
    ff_err err = {0};
    const char pgm[] = "P5 # two rows\n3 2\n# maxval next\n15\n\x00\x01\x0f\x07\x08\x0e";
    CHECK(ff_pnm_decode((const uint8_t *)pgm, sizeof pgm - 1, "a.pgm", &px, &h, &w, &c, &err) ==
          FF_OK);
    CHECK(h == 2 && w == 3 && c == 1);
    if (px) {
        CHECK(px[0] == 0 && px[1] == 17 && px[2] == 255 && px[3] == 119 && px[5] == 238);
        free(px);
    }
    const char ppm[] = "P6\n1 1\n255\n\x01\x02\x03trailing";
    CHECK(ff_pnm_decode((const uint8_t *)ppm, sizeof ppm - 1, "b.ppm", &px, &h, &w, &c, &err) ==
          FF_OK && c == 3 && px[2] == 3);
    free(px);
    const char *bad[] = {"P2 1 1 255\n1", "P5 1 1 255\n", "P5 0 1 255\nx", "P5 1 1 256\nxx",
                         "P5 1 1 255", "P5 1 1 9\n\x0a", "Q5 1 1 255\nx", "P6 2 1 255\nxyz"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        px = (uint8_t *)"x";
        const int rc = ff_pnm_decode((const uint8_t *)bad[i], strlen(bad[i]), "bad.pgm", &px,
                                     &h, &w, &c, &err);
        CHECK(rc == FF_ERR_FORMAT && !px && !h && !w && !c &&
              !strncmp(err.msg, "bad.pgm: ", 9));
    }
}

/* a 2x2 PNG of `ch` channels from pixel bytes */
static const char *png_file(const char *name, const uint8_t *px, int ch)
{
    uint8_t *png;
    size_t n;
    ff_err err;
    CHECK(ff_png_encode(px, 2, 2, ch, &png, &n, &err) == FF_OK);
    const char *path = write_tmp(name, png, n);
    free(png);
    return path;
}

static void test_read(void)
{
    ff_image_file f;
    ff_err err = {0};
    const ff_shape grey = {1, 2, 2}, colour = {3, 2, 2};
    const uint8_t g[4] = {0, 51, 102, 255};
    CHECK(ff_image_file_read(png_file("g.png", g, 1), grey, &f, &err) == FF_OK && f.n == 1 &&
          !strcmp(f.kind, "png"));
    CHECK(f.images && f.images[1] == 51 / 255.0f && f.images[3] == 1.0f);
    ff_image_file_free(&f);
    /* RGB with equal channels is grey; RGB(A) for a colour model goes to CHW planes */
    const uint8_t rgb_grey[12] = {0, 0, 0, 51, 51, 51, 102, 102, 102, 255, 255, 255};
    CHECK(ff_image_file_read(png_file("e.png", rgb_grey, 3), grey, &f, &err) == FF_OK &&
          f.images[2] == 102 / 255.0f);
    ff_image_file_free(&f);
    const uint8_t rgba[16] = {10, 20, 30, 0, 11, 21, 31, 9, 12, 22, 32, 9, 13, 23, 33, 9};
    CHECK(ff_image_file_read(png_file("c.png", rgba, 4), colour, &f, &err) == FF_OK);
    CHECK(f.images[0] == 10 / 255.0f && f.images[4] == 20 / 255.0f && f.images[11] == 33 / 255.0f);
    ff_image_file_free(&f);
    /* refusals: colour for grey, grey for colour, wrong size, not an image, missing */
    CHECK(ff_image_file_read(png_file("c3.png", rgba, 4), grey, &f, &err) == FF_ERR_USAGE &&
          strstr(err.msg, "c3.png: a colour (RGBA) image") && !f.images);
    CHECK(ff_image_file_read(png_file("g3.png", g, 1), colour, &f, &err) == FF_ERR_USAGE &&
          strstr(err.msg, "g3.png: a greyscale image"));
    CHECK(ff_image_file_read(png_file("s.png", g, 1), (ff_shape){1, 3, 3}, &f, &err) ==
              FF_ERR_USAGE && strstr(err.msg, "the image is 2x2"));
    CHECK(ff_image_file_read(write_tmp("t.txt", "hello", 5), grey, &f, &err) == FF_ERR_USAGE &&
          strstr(err.msg, "t.txt: not an image file"));
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.png", dir);
    CHECK(ff_image_file_read(missing, grey, &f, &err) == FF_ERR_IO && strstr(err.msg, "none.png"));
    /* CIFAR records: two images of a 3x2x2 model; a label byte over 9 is not CIFAR */
    uint8_t rec[26];
    for (int i = 0; i < 26; i++)
        rec[i] = (uint8_t)(i % 13 == 0 ? 7 : i);
    CHECK(ff_image_file_read(write_tmp("r.bin", rec, 26), colour, &f, &err) == FF_OK &&
          f.n == 2 && !strcmp(f.kind, "cifar10") && f.images[12] == 14 / 255.0f);
    ff_image_file_free(&f);
    rec[13] = 10;
    CHECK(ff_image_file_read(write_tmp("r2.bin", rec, 26), colour, &f, &err) == FF_ERR_USAGE);
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned le16(const uint8_t *p) { return p[0] | p[1] << 8; }

static void test_npz(void)
{
    ff_npz z = {0};
    ff_err err = {0};
    const float v[6] = {1, -2, 3.5f, 0, 1e-30f, 6};
    const int64_t shape[2] = {2, 3};
    CHECK(ff_npz_add_f32(&z, "a", v, shape, 2, &err) == FF_OK);
    CHECK(ff_npz_add_bytes(&z, "manifest.json", "{}", 2, &err) == FF_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/x.npz", dir);
    CHECK(ff_npz_write(&z, path, &err) == FF_OK);
    ff_npz_free(&z);
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    const size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 22 && le32(buf + n - 22) == 0x06054b50u && le16(buf + n - 12) == 2);
    if (n <= 22)
        return;
    /* the first member: inflate it and find the .npy header and the floats */
    const uint8_t *cd = buf + le32(buf + n - 6);
    CHECK(le32(cd) == 0x02014b50u && le32(cd + 42) == 0);
    const uint8_t *lh = buf;
    CHECK(le32(lh) == 0x04034b50u && le16(lh + 26) == 5 && !memcmp(lh + 30, "a.npy", 5));
    const uint32_t csize = le32(lh + 18), usize = le32(lh + 22);
    uint8_t out[512];
    z_stream zs = {0};
    CHECK(inflateInit2(&zs, -15) == Z_OK);
    zs.next_in = (Bytef *)(lh + 35);
    zs.avail_in = csize;
    zs.next_out = out;
    zs.avail_out = sizeof out;
    CHECK(inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == usize);
    inflateEnd(&zs);
    CHECK(usize == 128 + 24 && !memcmp(out, "\x93NUMPY\x01\x00", 8) && le16(out + 8) == 118);
    CHECK(strstr((char *)out + 10, "'shape': (2, 3), }") != NULL && out[127] == '\n');
    CHECK(crc32(0, out, usize) == le32(lh + 14) && !memcmp(out + 128, v, 24));
    const int64_t bad[1] = {-1};
    CHECK(ff_npz_add_f32(&z, "b", v, bad, 1, &err) == FF_ERR_USAGE);
    ff_npz_free(&z);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ff_test_image.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(test_pnm);
    RUN(test_read);
    RUN(test_npz);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
    TEST_MAIN_END();
}
