/* test_sweep.c - sweep expansion (src/sweep.c): grid order and run names, seeds,
 * every run validated up front with all distinct problems in one error, random
 * search reproducible from its seed. Runs from the repository root (configs/quick.yaml). */
#include <math.h>
#include <string.h>

#include "ff/sweep.h"
#include "test.h"

static int expand(ff_sweep *sw, const char *const *axes, int n, int seeds, ff_err *err)
{
    memset(sw, 0, sizeof *sw);
    int rc = ff_sweep_from_args(&sw->spec, "configs/quick.yaml", axes, n, seeds, err);
    return rc ? rc : ff_sweep_expand(sw, err);
}

static void test_grid_names_and_configs(void)
{
    const char *axes[] = {"optimizer.lr=0.001,0.002", "train.jitter=0,1"};
    ff_sweep sw;
    ff_err err = {0};
    CHECK(expand(&sw, axes, 2, 2, &err) == FF_OK);
    CHECK(sw.n_points == 4 && sw.n_runs == 8);
    CHECK(!strcmp(sw.runs[0].name, "lr=0.001,jitter=0,seed=1"));
    CHECK(!strcmp(sw.runs[3].name, "lr=0.001,jitter=1,seed=2"));
    CHECK(!strcmp(sw.runs[7].point_name, "lr=0.002,jitter=1"));
    CHECK(sw.runs[7].point == 3 && sw.runs[7].cfg.seed == 2 && sw.runs[7].cfg.train.jitter == 1);
    CHECK_NEAR(sw.runs[5].cfg.optimizer.lr, 0.002, 1e-9);
    ff_sweep_free(&sw);
}

static void test_all_problems_at_once(void)
{
    const char *axes[] = {"optimizer.lrr=0.001,0.002", "train.jitter=0,x"};
    ff_sweep sw;
    ff_err err = {0};
    CHECK(expand(&sw, axes, 2, 0, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "did you mean 'optimizer.lr'") != NULL);
    CHECK(strstr(err.msg, "train.jitter=x") != NULL);
    CHECK(strstr(strstr(err.msg, "unknown key") + 1, "unknown key") == NULL); /* once, not per point */
    ff_sweep_free(&sw);
}

static void test_random_reproducible(void)
{
    ff_sweep a = {0}, b = {0};
    ff_err err = {0};
    for (ff_sweep *s = &a; s; s = s == &a ? &b : NULL) {
        memset(s, 0, sizeof *s);
        snprintf(s->spec.origin, sizeof s->spec.origin, "test");
        snprintf(s->spec.config, sizeof s->spec.config, "configs/quick.yaml");
        s->spec.random = 1;
        s->spec.trials = 5;
        s->spec.n_axes = 1;
        snprintf(s->spec.axes[0].key, sizeof s->spec.axes[0].key, "optimizer.lr");
        s->spec.axes[0].kind = FF_AXIS_LOG_UNIFORM;
        s->spec.axes[0].lo = 1e-4;
        s->spec.axes[0].hi = 1e-2;
        CHECK(ff_sweep_expand(s, &err) == FF_OK);
    }
    CHECK(a.n_runs == 5 && b.n_runs == 5);
    for (int i = 0; i < 5; i++) {
        CHECK(!strcmp(a.runs[i].name, b.runs[i].name));
        CHECK(a.runs[i].cfg.optimizer.lr >= 1e-4f && a.runs[i].cfg.optimizer.lr <= 1e-2f);
    }
    ff_sweep_free(&a);
    ff_sweep_free(&b);
}

int main(void)
{
    RUN(test_grid_names_and_configs);
    RUN(test_all_problems_at_once);
    RUN(test_random_reproducible);
    TEST_MAIN_END();
}
