/* fuzz_idx.c - libFuzzer harness: dataset file bytes. The input is written to a file
 * and read back with ff_data_read_maybe_gz (gunzip when it starts with 1f 8b); the
 * bytes it returns, and the raw input, go through ff_data_idx_parse_images and
 * ff_data_idx_parse_labels, whose results must describe exactly the bytes given. */
#include "ff/data.h"
#include "fuzz_util.h"

static void parse(const uint8_t *buf, size_t len)
{
    int n, rows, cols;
    const uint8_t *px;
    ff_err err = {0};
    if (ff_data_idx_parse_images(buf, len, "fuzz-images", &n, &rows, &cols, &px, &err) == FF_OK) {
        if (n < 0 || rows < 1 || cols < 1 || px != buf + 16 ||
            16 + (uint64_t)n * (uint64_t)rows * (uint64_t)cols != len)
            fuzz_fail("images: n %d rows %d cols %d do not match %zu bytes", n, rows, cols, len);
        double sum = 0; /* every pixel is readable */
        for (size_t i = 0; i < len - 16; i++)
            sum += px[i];
        fuzz_sink = sum;
    } else if (!err.msg[0]) {
        fuzz_fail("ff_data_idx_parse_images failed without a message");
    }
    const uint8_t *lab;
    err.msg[0] = '\0';
    if (ff_data_idx_parse_labels(buf, len, "fuzz-labels", &n, &lab, &err) == FF_OK) {
        if (n < 0 || lab != buf + 8 || 8 + (uint64_t)n != len)
            fuzz_fail("labels: n %d does not match %zu bytes", n, len);
    } else if (!err.msg[0]) {
        fuzz_fail("ff_data_idx_parse_labels failed without a message");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write_file("input", data, size, path, sizeof path);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ff_err err = {0};
    if (ff_data_read_maybe_gz(path, &bytes, &len, &err) == FF_OK) {
        int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
        if (!bytes || (!gz && (len != size || memcmp(bytes, data, size) != 0)))
            fuzz_fail("ff_data_read_maybe_gz: %zu bytes in, %zu out, not gzip", size, len);
        parse(bytes, len);
        free(bytes);
    } else if (bytes || len || !err.msg[0]) {
        fuzz_fail("ff_data_read_maybe_gz failed but left output or no message");
    }
    parse(data, size); /* libFuzzer's copy of the input: exactly size bytes, for ASan */
    return 0;
}
