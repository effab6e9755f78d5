/* fuzz_checkpoint.c - libFuzzer harness: model files (.ffm) through ff_checkpoint_load.
 * The trailing CRC-32C is recomputed over the mutated bytes before the file is
 * written, so inputs get past the checksum into the header, size and embedded-config
 * checks. A model that loads must have a config that survives the YAML round trip. */
#include "ff/checkpoint.h"
#include "ff/crc32c.h"
#include "ff/endian.h"
#include "fuzz_config_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        abort();
    memcpy(b, data, size);
    if (size >= 4)
        ff_endian_put_u32le(b + size - 4, ff_crc32c(0, b, size - 4));
    char path[512];
    fuzz_write_file("model.ffm", b, size, path, sizeof path);
    free(b);
    ff_checkpoint ck;
    ff_err err = {0};
    if (ff_checkpoint_load(path, &ck, &err) == FF_OK) {
        if (ck.n_order < 0 || strlen(ck.run_dir) >= sizeof ck.run_dir)
            fuzz_fail("ff_checkpoint_load: n_order %d", ck.n_order);
        /* every array is as long as the header says (ASan checks the reads) */
        double sum = 0;
        for (uint64_t i = 0; i < ck.n_params; i++)
            sum += ck.params[i];
        for (uint64_t i = 0; i < ck.n_state; i++)
            sum += ck.state[i];
        for (uint64_t i = 0; i < ck.n_aux; i++)
            sum += ck.aux[i];
        for (uint64_t i = 0; i < ck.n_head; i++)
            sum += ck.head[i];
        for (uint64_t i = 0; i < ck.n_head_state; i++)
            sum += ck.head_state[i];
        for (int i = 0; i < ck.n_order; i++)
            sum += ck.order[i];
        fuzz_sink = sum;
        fuzz_config_round_trip(&ck.cfg);
        ff_checkpoint_free(&ck);
    } else if (!err.msg[0] || ck.params || ck.state || ck.order) {
        fuzz_fail("ff_checkpoint_load failed but left arrays or no message");
    }
    return 0;
}
