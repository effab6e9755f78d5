/* fuzz_config.c - libFuzzer harness: a config file's bytes through ff_config_parse
 * (libyaml, the schema, validation); a config that parses must survive the
 * ff_config_to_yaml -> ff_config_parse round trip unchanged. */
#include "ff/config.h"
#include "fuzz_config_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ff_config cfg;
    ff_err err = {0};
    if (ff_config_parse(&cfg, (const char *)data, size, "fuzz.yaml", &err) == FF_OK)
        fuzz_config_round_trip(&cfg);
    else if (err.code == FF_OK || !err.msg[0])
        fuzz_fail("ff_config_parse failed without a message");
    return 0;
}
