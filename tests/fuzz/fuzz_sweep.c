/* fuzz_sweep.c - libFuzzer harness: a sweep file's bytes through ff_sweep_parse (libyaml,
 * the nesting limit, duplicate keys, axes, seeds, asha, name). A file that parses must
 * hold a spec within its bounds: a base config, something to sweep, axes with values or
 * lo < hi, distinct axis keys, and a name that is one plain directory name. */
#include <string.h>

#include "ff/sweep.h"
#include "fuzz_util.h"

static void check_spec(const ff_sweep_spec *s)
{
    if (!s->config[0] || (!s->n_axes && !s->n_seeds))
        fuzz_fail("parsed without a config or without anything to sweep");
    if (s->n_axes < 0 || s->n_axes > FF_SWEEP_MAX_AXES || s->n_seeds < 0 ||
        s->n_seeds > FF_SWEEP_MAX_SEEDS || s->n_sets < 0 || s->n_sets > FF_SWEEP_MAX_SETS)
        fuzz_fail("counts out of bounds: %d axes, %d seeds, %d sets", s->n_axes, s->n_seeds,
                  s->n_sets);
    for (int i = 0; i < s->n_axes; i++) {
        const ff_sweep_axis *a = &s->axes[i];
        if ((a->kind == FF_AXIS_LIST || a->kind == FF_AXIS_CHOICE) &&
            (a->n_values < 1 || a->n_values > FF_SWEEP_MAX_VALUES))
            fuzz_fail("axis %d: %d values", i, a->n_values);
        if ((a->kind == FF_AXIS_UNIFORM || a->kind == FF_AXIS_LOG_UNIFORM) && !(a->lo < a->hi))
            fuzz_fail("axis %d: lo %g >= hi %g", i, a->lo, a->hi);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->axes[j].key, a->key))
                fuzz_fail("axis key '%s' twice", a->key);
    }
    if (!s->name[0] || strchr(s->name, '/') || !strcmp(s->name, ".") || !strcmp(s->name, ".."))
        fuzz_fail("name '%s' is not one plain directory name", s->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ff_sweep_spec spec;
    ff_err err = {0};
    if (ff_sweep_parse(&spec, (const char *)data, size, "fuzz.yaml", &err) == FF_OK)
        check_spec(&spec);
    else if (err.code == FF_OK || !err.msg[0])
        fuzz_fail("ff_sweep_parse failed without a message");
    return 0;
}
