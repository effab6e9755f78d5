/* fuzz_config_check.h - the round trip both config harnesses check: a config that
 * parsed is written as YAML (ff_config_to_yaml), that YAML must parse again and be
 * written back byte for byte the same; anything else aborts. */
#ifndef FF_FUZZ_CONFIG_CHECK_H
#define FF_FUZZ_CONFIG_CHECK_H

#include "ff/config.h"
#include "fuzz_util.h"

/* Returns the malloc'ed YAML of cfg, checking the size ff_config_to_yaml reports. */
static char *fuzz_config_yaml(const ff_config *cfg, size_t *len)
{
    size_t n = ff_config_to_yaml(cfg, NULL, 0);
    char *y = malloc(n + 1);
    if (!y)
        abort();
    size_t m = ff_config_to_yaml(cfg, y, n + 1);
    if (m != n || strlen(y) != n)
        fuzz_fail("ff_config_to_yaml: size %zu, then %zu, text %zu", n, m, strlen(y));
    *len = n;
    return y;
}

static void fuzz_config_round_trip(const ff_config *cfg)
{
    size_t n1, n2;
    char *y1 = fuzz_config_yaml(cfg, &n1);
    ff_config again;
    ff_err err = {0};
    if (ff_config_parse(&again, y1, n1, "round-trip", &err))
        fuzz_fail("the YAML of a parsed config does not parse: %s\n---\n%s---", err.msg, y1);
    if (ff_config_validate(&again, &err))
        fuzz_fail("the YAML of a parsed config does not validate: %s\n---\n%s---", err.msg, y1);
    char *y2 = fuzz_config_yaml(&again, &n2);
    if (n1 != n2 || memcmp(y1, y2, n1) != 0)
        fuzz_fail("config round trip differs\n--- first\n%s--- second\n%s---", y1, y2);
    free(y1);
    free(y2);
}

#endif
