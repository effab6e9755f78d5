/* fuzz_image.c - libFuzzer harness: the bytes of an input file for `ffrun predict` through
 * ff_pnm_decode (PGM/PPM) and ff_image_file_read (format recognition, then PNG, PGM/PPM,
 * IDX, gzip or CIFAR-10 records, and the conversion to a model's shape), for a grey 1x4x4
 * and a colour 3x4x4 model. A decoded PGM/PPM must be within the documented bounds; a
 * file read must hold n >= 1 images of the asked shape, every value in [0, 1]; a refusal
 * must leave no output and name the file. */
#include "ff/image.h"
#include "fuzz_util.h"

static void pnm_one(const uint8_t *data, size_t size)
{
    uint8_t *px = (uint8_t *)"unchanged";
    int h = -1, w = -1, ch = -1;
    ff_err err = {0};
    if (ff_pnm_decode(data, size, "fuzz.pnm", &px, &h, &w, &ch, &err) != FF_OK) {
        if (px || h || w || ch || strncmp(err.msg, "fuzz.pnm: ", 10) != 0)
            fuzz_fail("pnm refused leaving output or without naming the file: %s", err.msg);
        return;
    }
    if (!px || h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20) || (ch != 1 && ch != 3) ||
        (uint64_t)h * w * ch > size)
        fuzz_fail("pnm decoded %dx%dx%d out of bounds", h, w, ch);
    double sum = 0;
    for (size_t i = 0; i < (size_t)h * w * ch; i++)
        sum += px[i];
    fuzz_sink = sum;
    free(px);
}

static void read_one(const char *path, ff_shape want)
{
    ff_image_file f;
    ff_err err = {0};
    if (ff_image_file_read(path, want, &f, &err) != FF_OK) {
        if (f.images || f.n || !strstr(err.msg, path))
            fuzz_fail("refused leaving output or without naming the file: %s", err.msg);
        return;
    }
    if (f.n < 1 || f.shape.c != want.c || f.shape.h != want.h || f.shape.w != want.w)
        fuzz_fail("read %d images of %dx%dx%d for %dx%dx%d", f.n, f.shape.c, f.shape.h,
                  f.shape.w, want.c, want.h, want.w);
    for (size_t i = 0; i < (size_t)f.n * ff_shape_dim(want); i++)
        if (!(f.images[i] >= 0.0f && f.images[i] <= 1.0f))
            fuzz_fail("value %g outside [0, 1]", f.images[i]);
    ff_image_file_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pnm_one(data, size);
    char path[512];
    fuzz_write_file("input", data, size, path, sizeof path);
    read_one(path, (ff_shape){1, 4, 4});
    read_one(path, (ff_shape){3, 4, 4});
    return 0;
}
