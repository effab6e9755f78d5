/* image.c - input images for a trained model (include/ff/image.h): PGM/PPM decoding,
 * format recognition and conversion of PNG, PGM/PPM, IDX and CIFAR-10 files to CHW floats. */
#include "ff/image.h"

#include <stdlib.h>
#include <string.h>

#include "ff/data.h"
#include "ff/png.h"

#define PNM_MAX_SIDE (1 << 20)
#define PNM_MAX_SAMPLES ((uint64_t)1 << 30)

/* ---------------------------------------------------------------- PGM / PPM */

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips whitespace and '#' comments from *pos. */
static void skip_space(const uint8_t *buf, size_t len, size_t *pos)
{
    while (*pos < len) {
        if (buf[*pos] == '#') {
            while (*pos < len && buf[*pos] != '\n')
                (*pos)++;
        } else if (is_space(buf[*pos])) {
            (*pos)++;
        } else {
            return;
        }
    }
}

/* A decimal header field of 1..max at *pos (after whitespace); -1 if there is none. */
static long header_number(const uint8_t *buf, size_t len, size_t *pos, long max)
{
    skip_space(buf, len, pos);
    long v = 0;
    size_t start = *pos;
    while (*pos < len && buf[*pos] >= '0' && buf[*pos] <= '9') {
        v = v * 10 + (buf[*pos] - '0');
        (*pos)++;
        if (v > max)
            return -1;
    }
    return *pos == start || v < 1 ? -1 : v;
}

static int pnm_fail(const char *name, const char *what, uint8_t **pixels, int *h, int *w, int *c,
                    ff_err *err)
{
    *pixels = NULL;
    *h = *w = *c = 0;
    return ff_err_set(err, FF_ERR_FORMAT, "%s: %s", name, what);
}

int ff_pnm_decode(const uint8_t *buf, size_t len, const char *name, uint8_t **pixels,
                  int *height, int *width, int *channels, ff_err *err)
{
    *pixels = NULL;
    *height = *width = *channels = 0;
    if (len < 2 || buf[0] != 'P' || (buf[1] != '5' && buf[1] != '6'))
        return pnm_fail(name, len >= 2 && buf[0] == 'P' && (buf[1] == '2' || buf[1] == '3')
                                  ? "ASCII PGM/PPM (P2/P3) is not supported; save it as binary (P5/P6)"
                                  : "not a binary PGM/PPM file (expected P5 or P6)",
                        pixels, height, width, channels, err);
    const int c = buf[1] == '5' ? 1 : 3;
    size_t pos = 2;
    const long w = header_number(buf, len, &pos, PNM_MAX_SIDE);
    const long h = w < 0 ? -1 : header_number(buf, len, &pos, PNM_MAX_SIDE);
    const long maxval = h < 0 ? -1 : header_number(buf, len, &pos, 65535);
    if (maxval < 0 || pos >= len || !is_space(buf[pos]))
        return pnm_fail(name, "bad PGM/PPM header (width, height, maxval 1..255 expected)",
                        pixels, height, width, channels, err);
    if (maxval > 255)
        return pnm_fail(name, "16-bit PGM/PPM samples (maxval over 255) are not supported",
                        pixels, height, width, channels, err);
    pos++; /* the one whitespace byte before the pixels */
    const uint64_t n = (uint64_t)w * (uint64_t)h * (uint64_t)c;
    if (n > PNM_MAX_SAMPLES)
        return pnm_fail(name, "image too large (over 2^30 samples)", pixels, height, width,
                        channels, err);
    if (len - pos < n)
        return pnm_fail(name, "truncated pixel data", pixels, height, width, channels, err);
    uint8_t *px = malloc((size_t)n);
    if (!px)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory for %llu samples", name,
                          (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        const unsigned v = buf[pos + i];
        if (v > (unsigned)maxval) {
            free(px);
            return pnm_fail(name, "a sample exceeds the header's maxval", pixels, height, width,
                            channels, err);
        }
        px[i] = (uint8_t)((v * 255u + (unsigned)maxval / 2) / (unsigned)maxval);
    }
    *pixels = px;
    *height = (int)h;
    *width = (int)w;
    *channels = c;
    return FF_OK;
}

/* ---------------------------------------------------------------- conversion */

/* 1 if the 3 colour channels (of `ch` interleaved) are equal at every pixel. */
static int all_grey(const uint8_t *px, size_t pixels, int ch)
{
    for (size_t i = 0; i < pixels; i++) {
        const uint8_t *p = px + i * (size_t)ch;
        if (p[0] != p[1] || p[0] != p[2])
            return 0;
    }
    return 1;
}

static const char *channels_name(int ch)
{
    return ch == 1 ? "greyscale" : ch == 2 ? "greyscale + alpha" : ch == 3 ? "RGB" : "RGBA";
}

/* One decoded image (h x w x ch interleaved bytes) into out (want, CHW floats). */
static int convert_interleaved(const uint8_t *px, int h, int w, int ch, const char *path,
                               ff_shape want, float *out, ff_err *err)
{
    if (h != want.h || w != want.w)
        return ff_err_set(err, FF_ERR_USAGE,
                          "%s: the image is %dx%d (width x height), the model takes %dx%d "
                          "images (%dx%dx%d); resize it first (predict does not resize)",
                          path, w, h, want.w, want.h, want.c, want.h, want.w);
    const size_t plane = (size_t)h * (size_t)w;
    if (want.c == 1 && ch >= 3 && !all_grey(px, plane, ch))
        return ff_err_set(err, FF_ERR_USAGE,
                          "%s: a colour (%s) image, but the model takes greyscale images "
                          "(%dx%dx%d)", path, channels_name(ch), want.c, want.h, want.w);
    if (want.c == 3 && ch < 3)
        return ff_err_set(err, FF_ERR_USAGE,
                          "%s: a %s image, but the model takes colour (RGB) images (%dx%dx%d)",
                          path, channels_name(ch), want.c, want.h, want.w);
    if (want.c != 1 && want.c != 3)
        return ff_err_set(err, FF_ERR_USAGE, "%s: the model takes %d-channel images; only "
                          "greyscale (1) and RGB (3) image files can be read", path, want.c);
    for (int c = 0; c < want.c; c++)
        for (size_t i = 0; i < plane; i++)
            out[(size_t)c * plane + i] = px[i * (size_t)ch + (size_t)c] / 255.0f;
    return FF_OK;
}

static int alloc_images(ff_image_file *out, int n, ff_shape want, const char *path, ff_err *err)
{
    out->n = n;
    out->shape = want;
    out->images = malloc(sizeof(float) * (size_t)n * (size_t)ff_shape_dim(want) + 1);
    if (!out->images)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory for %d images", path, n);
    return FF_OK;
}

static int read_decoded(const uint8_t *buf, size_t len, const char *path, ff_shape want, int png,
                        ff_image_file *out, ff_err *err)
{
    uint8_t *px = NULL;
    int h, w, ch;
    int rc = png ? ff_png_decode(buf, len, path, &px, &h, &w, &ch, err)
                 : ff_pnm_decode(buf, len, path, &px, &h, &w, &ch, err);
    if (!rc)
        rc = alloc_images(out, 1, want, path, err);
    if (!rc)
        rc = convert_interleaved(px, h, w, ch, path, want, out->images, err);
    out->kind = png ? "png" : ch == 1 ? "pgm" : "ppm";
    free(px);
    return rc;
}

static int read_idx(const uint8_t *buf, size_t len, const char *path, ff_shape want,
                    ff_image_file *out, ff_err *err)
{
    int n, rows, cols;
    const uint8_t *px;
    int rc = ff_data_idx_parse_images(buf, len, path, &n, &rows, &cols, &px, err);
    if (rc)
        return rc;
    if (want.c != 1)
        return ff_err_set(err, FF_ERR_USAGE, "%s: IDX images are greyscale, but the model takes "
                          "colour images (%dx%dx%d)", path, want.c, want.h, want.w);
    if (rows != want.h || cols != want.w)
        return ff_err_set(err, FF_ERR_USAGE, "%s: IDX images of %dx%d (width x height), the "
                          "model takes %dx%d", path, cols, rows, want.w, want.h);
    if ((rc = alloc_images(out, n, want, path, err)))
        return rc;
    for (size_t i = 0; i < (size_t)n * (size_t)rows * (size_t)cols; i++)
        out->images[i] = px[i] / 255.0f;
    out->kind = "idx";
    return FF_OK;
}

/* A CIFAR-10 batch: records of a label byte (0..9) and the image's planes. */
static int is_cifar(const uint8_t *buf, size_t len, ff_shape want)
{
    const size_t rec = 1 + (size_t)ff_shape_dim(want);
    if (len == 0 || len % rec != 0)
        return 0;
    for (size_t i = 0; i < len; i += rec)
        if (buf[i] > 9)
            return 0;
    return 1;
}

static int read_cifar(const uint8_t *buf, size_t len, const char *path, ff_shape want,
                      ff_image_file *out, ff_err *err)
{
    const size_t dim = (size_t)ff_shape_dim(want), rec = dim + 1;
    const size_t n = len / rec;
    if (n > (size_t)1 << 24)
        return ff_err_set(err, FF_ERR_USAGE, "%s: too many records (%zu)", path, n);
    int rc = alloc_images(out, (int)n, want, path, err);
    for (size_t i = 0; !rc && i < n; i++)
        for (size_t j = 0; j < dim; j++)
            out->images[i * dim + j] = buf[i * rec + 1 + j] / 255.0f;
    out->kind = "cifar10";
    return rc;
}

int ff_image_file_read(const char *path, ff_shape want, ff_image_file *out, ff_err *err)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = ff_data_read_maybe_gz(path, &buf, &len, err);
    if (rc)
        return rc;
    if (len >= 8 && !memcmp(buf, png_sig, 8))
        rc = read_decoded(buf, len, path, want, 1, out, err);
    else if (len >= 2 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7')
        rc = read_decoded(buf, len, path, want, 0, out, err);
    else if (len >= 4 && buf[0] == 0 && buf[1] == 0 && buf[2] == 0x08 && buf[3] == 0x03)
        rc = read_idx(buf, len, path, want, out, err);
    else if (is_cifar(buf, len, want))
        rc = read_cifar(buf, len, path, want, out, err);
    else
        rc = ff_err_set(err, FF_ERR_USAGE,
                        "%s: not an image file ffrun reads: expected a PNG, a binary PGM/PPM, "
                        "an IDX image file or CIFAR-10 batch records of %d bytes (a label byte "
                        "and %dx%dx%d pixels)", path, 1 + ff_shape_dim(want), want.c, want.h,
                        want.w);
    free(buf);
    if (rc)
        ff_image_file_free(out);
    return rc;
}

void ff_image_file_free(ff_image_file *f)
{
    free(f->images);
    memset(f, 0, sizeof *f);
}
