/* test_sweep.c - sweep expansion (src/sweep.c): grid order and run names, seeds,
 * every run validated up front with all distinct problems in one error, random
 * search reproducible from its seed; asha (src/sweep_asha.c): the rungs, and
 * which runs the asynchronous promotion rule lets go on, on synthetic metric
 * tables; the scheduler's keys in a sweep file. Runs from the repository root
 * (configs/quick.yaml). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void test_asha_rungs(void)
{
    ff_asha a = {.min_epochs = 1, .eta = 3};
    ff_sweep_asha_rungs(&a, 27);
    CHECK(a.n_rungs == 3 && a.rung_epoch[0] == 1 && a.rung_epoch[1] == 3 && a.rung_epoch[2] == 9);
    a = (ff_asha){.min_epochs = 2, .eta = 2};
    ff_sweep_asha_rungs(&a, 9);
    CHECK(a.n_rungs == 3 && a.rung_epoch[2] == 8);
    ff_sweep_asha_rungs(&a, 8); /* the final epoch is no rung */
    CHECK(a.n_rungs == 2 && a.rung_epoch[1] == 4);
    a = (ff_asha){.min_epochs = 5, .eta = 3};
    ff_sweep_asha_rungs(&a, 5);
    CHECK(a.n_rungs == 0);
}

static void blank(ff_asha_run *r, int n)
{
    for (int i = 0; i < n; i++) {
        r[i] = (ff_asha_run){0};
        for (int k = 0; k < FF_ASHA_MAX_RUNGS; k++)
            r[i].metric[k] = NAN;
    }
}

/* Runs arrive at rung 0 one after another; after each arrival every possible
 * promotion is made (as the sweep does). Asynchronous: a run goes on when it
 * is among the best floor(n/3) of the n that have arrived so far. */
static void test_asha_asynchronous_promotions(void)
{
    ff_asha a = {.min_epochs = 1, .eta = 3};
    ff_sweep_asha_rungs(&a, 3); /* one rung, at epoch 1 */
    const double m[9] = {5, 4, 3, 9, 8, 7, 1, 6, 2};
    ff_asha_run r[9];
    blank(r, 9);
    int order[9], n_promoted = 0, after[9];
    for (int i = 0; i < 9; i++) {
        r[i].reached = 1;
        r[i].metric[0] = m[i];
        int k, p;
        while ((p = ff_sweep_asha_next_promotion(&a, r, 9, &k)) >= 0) {
            CHECK(k == 0);
            r[p].promoted = 1;
            r[p].busy = 1; /* training on */
            order[n_promoted] = p;
            after[n_promoted++] = i + 1;
        }
    }
    /* 3 arrived: the best of 3 (metric 3); 6: the best 2 include metric 4 (a
     * synchronous halving would never promote it); 7: metric 1 is among the best
     * 2 at once; 9: the best 3 add metric 2 */
    CHECK(n_promoted == 4);
    CHECK(order[0] == 2 && after[0] == 3);
    CHECK(order[1] == 1 && after[1] == 6);
    CHECK(order[2] == 6 && after[2] == 7);
    CHECK(order[3] == 8 && after[3] == 9);
    /* the rest (5, 9, 8, 7, 6) wait: the sweep stops them when nothing else can run */
    for (int i = 0; i < 9; i++)
        CHECK(r[i].promoted == (i == 1 || i == 2 || i == 6 || i == 8));
}

static void test_asha_higher_rung_first_busy_nan_ties(void)
{
    ff_asha a = {.min_epochs = 1, .eta = 2};
    ff_sweep_asha_rungs(&a, 4); /* rungs at 1 and 2 */
    ff_asha_run r[4];
    blank(r, 4);
    const double m0[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        r[i].reached = 1, r[i].metric[0] = m0[i];
    r[0].promoted = r[1].promoted = 1; /* both went on and reached rung 1 */
    r[0].reached = r[1].reached = 2;
    r[0].metric[1] = 10, r[1].metric[1] = 5;
    r[2].busy = r[3].busy = 0;
    int k = -1;
    CHECK(ff_sweep_asha_next_promotion(&a, r, 4, &k) == 1 && k == 1); /* rung 1's best of 2 */
    r[1].busy = 1;
    CHECK(ff_sweep_asha_next_promotion(&a, r, 4, &k) == -1); /* run 0 is not in rung 1's best 1;
                                                          rung 0's best 2 went on already */
    /* a missing metric ranks last; equal metrics: the lower index */
    blank(r, 2);
    r[0].reached = r[1].reached = 1;
    r[1].metric[0] = 3;
    CHECK(ff_sweep_asha_next_promotion(&a, r, 2, &k) == 1 && k == 0);
    r[0].metric[0] = 3;
    CHECK(ff_sweep_asha_next_promotion(&a, r, 2, &k) == 0);
    /* fewer than eta runs at a rung: nobody goes on yet */
    CHECK(ff_sweep_asha_next_promotion(&a, r, 1, &k) == -1);
}

static int load_text(ff_sweep *sw, const char *text, ff_err *err)
{
    char path[] = "/tmp/test_sweep_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -100;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    memset(sw, 0, sizeof *sw);
    int rc = ff_sweep_load(&sw->spec, path, err);
    if (!rc)
        rc = ff_sweep_expand(sw, err);
    unlink(path);
    return rc;
}

static void test_asha_keys(void)
{
    ff_sweep sw;
    ff_err err = {0};
    CHECK(load_text(&sw, "config: configs/quick.yaml\naxes:\n  optimizer.lr: [0.001, 0.002]\n"
                         "scheduler: asha\nasha: {min_epochs: 2, eta: 2}\n", &err) == FF_OK);
    CHECK(sw.spec.asha && sw.spec.sched.eta == 2 && sw.spec.sched.n_rungs == 2 &&
          sw.spec.sched.rung_epoch[1] == 4); /* quick.yaml: 6 epochs */
    CHECK(!strcmp(sw.spec.sched.metric, "test/error_goodness")); /* supervised's main metric */
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nscheduler: asha\n"
                         "asha:\n  min_epochs: 1\n  metrc: loss/total\n", &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, ":6:3: asha: unknown key 'metrc'; did you mean 'metric'?") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nscheduler: asha\n"
                         "asha: {min_epochs: 6}\n", &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, ":3:1: scheduler asha: min_epochs 6 is not below the runs' 6 epochs") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nscheduler: asha\n"
                         "set: {eval.softmax: false}\nasha: {metric: clf/loss}\n", &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "clf/loss (the softmax head's loss) needs eval.softmax: true") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nscheduler: asha\n"
                         "asha: {metric: clf/loss}\n", &err) == FF_OK); /* the head's loss */
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\n"
                         "set: {eval.every: 2}\nscheduler: asha\n", &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "the rung at epoch 1 is not evaluated (eval.every 2)") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nasha: {eta: 2}\n", &err) ==
          FF_ERR_USAGE);
    CHECK(strstr(err.msg, "asha: parameters without scheduler: asha") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nscheduler: hyperband\n", &err) ==
          FF_ERR_USAGE);
    CHECK(strstr(err.msg, ":3:12: scheduler: expected asha or none, got 'hyperband'") != NULL);
    ff_sweep_free(&sw);
}

/* With data.validation the validation error is asha's default metric; a val/ metric
 * without a split and a test/ metric read only at the end are refused; a test/ metric
 * read every epoch (eval.test every) is allowed with a warning naming the bias. */
static void test_asha_validation(void)
{
    ff_sweep sw;
    ff_err err = {0};
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nset: {data.validation: 0.1}\n"
                         "scheduler: asha\n", &err) == FF_OK);
    CHECK(!strcmp(sw.spec.sched.metric, "val/error_goodness") && !sw.warning[0]);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nset: {data.validation: 0.1}\n"
                         "scheduler: asha\nasha: {metric: val/error_softmax}\n", &err) == FF_OK);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nscheduler: asha\n"
                         "asha: {metric: val/error_goodness}\n", &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "val/ errors need a validation split (data.validation)") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\nset: {data.validation: 500}\n"
                         "scheduler: asha\nasha: {metric: test/error_goodness}\n", &err) ==
          FF_ERR_USAGE);
    CHECK(strstr(err.msg, "the test set is read only at the end of a run") != NULL);
    ff_sweep_free(&sw);
    CHECK(load_text(&sw, "config: configs/quick.yaml\nseeds: 2\n"
                         "set: {data.validation: 500, eval.test: every}\n"
                         "scheduler: asha\nasha: {metric: test/error_goodness}\n", &err) == FF_OK);
    CHECK(strstr(sw.warning, "ranks by test/error_goodness although the runs hold out a "
                             "validation split") != NULL &&
          strstr(sw.warning, "rank by val/error_goodness") != NULL);
    char *text = NULL;
    CHECK(ff_sweep_describe(&sw, &text, &err) == FF_OK && text &&
          strstr(text, "warning: scheduler asha ranks by test/error_goodness") != NULL);
    free(text);
    ff_sweep_free(&sw);
}

/* The summary ranks by the validation error when the runs wrote one, although the test
 * error orders the points the other way, and says which metric chose the best point;
 * without validation errors it ranks by the test error and says that it is biased. */
static void test_summary_ranks_by_validation(void)
{
    const char *axes[] = {"optimizer.lr=0.001,0.002"};
    ff_sweep sw;
    ff_err err = {0};
    CHECK(expand(&sw, axes, 1, 0, &err) == FF_OK && sw.n_runs == 2);
    char dir[] = "/tmp/ff_sweep_summaryXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sw.dir, sizeof sw.dir, "%s", dir);
    snprintf(sw.prog, sizeof sw.prog, "build/ffrun"); /* argv[0] as invoked */
    for (int i = 0; i < 2; i++)
        sw.runs[i].state = FF_SWEEP_DONE;
    /* point 0 (lr 0.001): val 3, test 1; point 1 (lr 0.002): val 2, test 4 */
    sw.runs[0].metric[2] = 1.0, sw.runs[1].metric[2] = 4.0;          /* test/error_goodness */
    sw.runs[0].metric[0] = 3.0, sw.runs[1].metric[0] = 2.0;          /* val/error_goodness */
    CHECK(!strcmp(ff_sweep_metric_names[0], "val/error_goodness") &&
          !strcmp(ff_sweep_metric_names[2], "test/error_goodness"));
    char *text = NULL;
    CHECK(ff_sweep_summarize(&sw, &text, &err) == FF_OK && text);
    const char *best = text ? strstr(text, "Best point (by val/error_goodness): **lr=0.002**") : NULL;
    CHECK(best != NULL && strstr(text, "Sorted by the mean of val/error_goodness") != NULL);
    CHECK(text && !strstr(text, "Chosen on the test set"));
    /* the command to run the best point alone calls ffrun as the sweep was called */
    CHECK(text && strstr(text, "    build/ffrun configs/quick.yaml --set 'optimizer.lr=0.002'") != NULL);
    free(text);
    sw.runs[0].metric[0] = sw.runs[1].metric[0] = NAN; /* no validation split */
    CHECK(ff_sweep_summarize(&sw, &text, &err) == FF_OK && text);
    CHECK(text && strstr(text, "Best point (by test/error_goodness): **lr=0.001**") != NULL &&
          strstr(text, "Chosen on the test set") != NULL);
    free(text);
    char path[256];
    snprintf(path, sizeof path, "%s/SUMMARY.md", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    unlink(path);
    rmdir(dir);
    ff_sweep_free(&sw);
}

int main(void)
{
    RUN(test_grid_names_and_configs);
    RUN(test_all_problems_at_once);
    RUN(test_random_reproducible);
    RUN(test_asha_rungs);
    RUN(test_asha_asynchronous_promotions);
    RUN(test_asha_higher_rung_first_busy_nan_ties);
    RUN(test_asha_keys);
    RUN(test_asha_validation);
    RUN(test_summary_ranks_by_validation);
    TEST_MAIN_END();
}
