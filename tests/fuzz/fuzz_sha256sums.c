/* fuzz_sha256sums.c - libFuzzer harness: a data directory's SHA256SUMS. The input is
 * written as <dir>/SHA256SUMS beside two small, valid IDX files (train-images-idx3-ubyte:
 * 2 images of 2x3, train-labels-idx1-ubyte) and ff_dataset_open reads the directory,
 * parsing every SHA256SUMS line and checking the files it lists. A load that succeeds
 * must hold those two images. */
#include "ff/data.h"
#include "fuzz_util.h"

static const uint8_t images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
                                 0, 51, 102, 153, 204, 255, 255, 204, 153, 102, 51, 0};
static const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 9};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int have_files;
    char path[512];
    if (!have_files) {
        fuzz_write_file("train-images-idx3-ubyte", images, sizeof images, path, sizeof path);
        fuzz_write_file("train-labels-idx1-ubyte", labels, sizeof labels, path, sizeof path);
        have_files = 1;
    }
    fuzz_write_file("SHA256SUMS", data, size, path, sizeof path);
    ff_dataset ds;
    ff_err err = {0};
    if (ff_dataset_open(&ds, fuzz_dir(), FF_DATA_IDX, FF_SPLIT_TRAIN, 0, &err) == FF_OK) {
        if (ds.n != 2 || ds.shape.c != 1 || ds.shape.h != 2 || ds.shape.w != 3 || ds.labels[0] != 3 || ds.labels[1] != 9 ||
            ds.images[5] != 1.0f)
            fuzz_fail("ff_dataset_open: unexpected dataset (n %d, %dx%dx%d)", ds.n, ds.shape.c,
                      ds.shape.h, ds.shape.w);
        ff_dataset_free(&ds);
    } else if (!err.msg[0] || ds.images || ds.labels || ds.n) {
        fuzz_fail("ff_dataset_open failed but left a dataset or no message");
    }
    return 0;
}
