/* fuzz_cifar10.c - libFuzzer harness: the CIFAR-10 reader (src/data_cifar10.c). The
 * input's first byte picks which file it becomes in a data directory, the rest is that
 * file's content: test_batch.bin (any bytes: whole records or not, labels in range or
 * not) or batches.meta.txt (the class names) beside a valid one-record test batch. The
 * test split is read: a success must hold whole records of 3 x 32 x 32 pixels with
 * labels 0..9 exactly as the bytes say; a failure must leave no data set and a message
 * naming the file. */
#include <string.h>

#include "ff/data.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t one[3073];
    char path[512];
    if (size < 1)
        return 0;
    const int names = data[0] & 1;
    const uint8_t *body = data + 1;
    const size_t len = size - 1;
    one[0] = 7;
    for (int i = 1; i < 3073; i++)
        one[i] = (uint8_t)(i * 31);
    fuzz_write_file("test_batch.bin", names ? one : body, names ? sizeof one : len, path,
                    sizeof path);
    if (names)
        fuzz_write_file("batches.meta.txt", body, len, path, sizeof path);
    else {
        snprintf(path, sizeof path, "%s/batches.meta.txt", fuzz_dir());
        remove(path);
    }
    ff_dataset ds;
    ff_err err = {0};
    if (ff_dataset_open(&ds, fuzz_dir(), FF_DATA_CIFAR10, FF_SPLIT_TEST, 0, &err) == FF_OK) {
        const uint8_t *rec = names ? one : body;
        const size_t n = names ? 1 : len / 3073;
        if ((size_t)ds.n != n || ds.shape.c != 3 || ds.shape.h != 32 || ds.shape.w != 32 ||
            (!names && len % 3073 != 0))
            fuzz_fail("cifar10: %d images of %dx%dx%d from %zu bytes", ds.n, ds.shape.c,
                      ds.shape.h, ds.shape.w, names ? sizeof one : len);
        for (size_t i = 0; i < n; i++) {
            if (ds.labels[i] != rec[i * 3073] || ds.labels[i] > 9 ||
                ds.images[i * 3072 + 1000] != (float)rec[i * 3073 + 1001] / 255.0f)
                fuzz_fail("cifar10: record %zu read wrong", i);
        }
        for (int k = 0; k < 10; k++)
            if (!ds.class_names[k][0] || strlen(ds.class_names[k]) >= FF_CLASS_NAME_MAX)
                fuzz_fail("cifar10: class name %d empty or unterminated", k);
        ff_dataset_free(&ds);
    } else if (!err.msg[0] || ds.images || ds.labels || ds.n || err.code != FF_ERR_USAGE ||
               !strstr(err.msg, fuzz_dir())) {
        fuzz_fail("cifar10: failed (%d) but left a data set, no message or no file name: %s",
                  err.code, err.msg);
    }
    return 0;
}
