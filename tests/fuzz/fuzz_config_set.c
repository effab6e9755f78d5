/* fuzz_config_set.c - libFuzzer harness: `--set KEY=VALUE` strings through
 * ff_config_set. The input is one or more assignments separated by newlines (a NUL
 * ends the input, as it would end argv), applied in turn over configs/quick.yaml's
 * values; the config after each one that succeeds must survive the
 * ff_config_to_yaml -> ff_config_parse round trip unchanged. */
#include "ff/config.h"
#include "fuzz_config_check.h"

/* configs/quick.yaml (two fc layers, so model.layers.N.field has layers to reach) */
static const char base_yaml[] =
    "mode: supervised\nseed: 7\n"
    "data: {dir: data/mnist, train_limit: 10000, test_limit: 2000}\n"
    "model:\n  layers:\n    - {type: fc, units: 200}\n    - {type: fc, units: 200}\n"
    "train: {epochs: 6, batch_size: 50}\n"
    "optimizer: {type: adam, lr: 0.001}\n"
    "eval: {every: 1, softmax: true}\n"
    "log: {every: 20}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ff_config base;
    static int have_base;
    ff_err err = {0};
    if (!have_base) {
        if (ff_config_parse(&base, base_yaml, sizeof base_yaml - 1, "quick", &err))
            fuzz_fail("base config: %s", err.msg);
        have_base = 1;
    }
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    ff_config cfg, before; /* copied with memcpy: padding included, for the memcmp */
    memcpy(&cfg, &base, sizeof cfg);
    for (char *line = text, *next; line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        memcpy(&before, &cfg, sizeof cfg);
        if (ff_config_set(&cfg, line, &err) != FF_OK) {
            if (!err.msg[0])
                fuzz_fail("ff_config_set failed without a message");
            if (memcmp(&before, &cfg, sizeof cfg) != 0)
                fuzz_fail("a failed ff_config_set changed the config");
            continue;
        }
        /* --set values are checked one by one; ffrun validates the whole config after
         * the last one, and only a valid config is written into a model file */
        if (ff_config_validate(&cfg, &err) == FF_OK)
            fuzz_config_round_trip(&cfg);
    }
    free(text);
    return 0;
}
