/* test_run_loop.c - the one training loop (src/run_loop.h) with a scripted trainer and
 * recording observers: the hooks' order (on_stop in reverse), evaluation at
 * eval_every and the last epoch, which sets are read (validation every time, the
 * test set at the end or with eval.test every), the best error chosen by the set that
 * chooses, the stops (--max-steps, --stop-epoch, a signal flag), divergence (named by
 * the trainer or found by the state check) naming the last good model, a resumed
 * mid-epoch position, the result's counts, and the writer-only gating of observers. */
#include <stdio.h>
#include <string.h>

#include "../src/run_loop.h"
#include "ff/config.h"
#include "test.h"

/* ---------------------------------------------------------------- a scripted trainer */

typedef struct fake {
    ff_config cfg;
    int64_t step;
    int epoch, epochs, batch_in_epoch, n_batches, eval_every, images;
    int has_val;
    double val_err[16], test_err[16]; /* per epoch (1-based) */
    int64_t diverge_at;               /* next() reports divergence at this step (0: never) */
    int64_t nonfinite_from;           /* finite() false from this step on (0: never) */
    int evaluated_sets[16];           /* the sets asked for at each epoch */
} fake;

static int fake_next(void *self, ff_loop_batch *b, int *diverged, ff_err *err)
{
    fake *f = self;
    f->step++;
    if (f->diverge_at && f->step == f->diverge_at) {
        *diverged = 1;
        return ff_err_set(err, FF_ERR_RUNTIME, "layer 1's loss is not finite");
    }
    b->images = f->images;
    b->loss = 0.5f;
    if (++f->batch_in_epoch == f->n_batches) {
        f->batch_in_epoch = 0;
        f->epoch++;
        b->epoch_done = 1;
    }
    return FF_OK;
}

static ff_set_errors errs(double e)
{
    return (ff_set_errors){.error_goodness = e, .error_softmax = -1.0, .main_error = e};
}

static int fake_evaluate(void *self, int epoch, unsigned sets, ff_eval_result *ev, ff_err *err)
{
    (void)err;
    fake *f = self;
    f->evaluated_sets[epoch] = (int)sets;
    ev->val = errs(sets & FF_EVAL_VAL ? f->val_err[epoch] : -1.0);
    ev->test = errs(sets & FF_EVAL_TEST ? f->test_err[epoch] : -1.0);
    return FF_OK;
}

static int fake_save(void *self, const char *path, const char *run_dir, ff_err *err)
{
    (void)self, (void)path, (void)run_dir;
    return ff_err_set(err, FF_ERR_IO, "the fake trainer writes no files");
}

static ff_loop_position fake_position(const void *self)
{
    const fake *f = self;
    return (ff_loop_position){.step = f->step, .epoch = f->epoch, .epochs = f->epochs,
                              .batch_in_epoch = f->batch_in_epoch, .n_batches = f->n_batches,
                              .eval_every = f->eval_every};
}

static int fake_has_val(const void *self) { return ((const fake *)self)->has_val; }

static int fake_finite(const void *self)
{
    const fake *f = self;
    return !f->nonfinite_from || f->step < f->nonfinite_from;
}

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    ff_config_defaults(&f->cfg);
    f->cfg.log.every = 2;
    f->epochs = 3;
    f->n_batches = 4;
    f->eval_every = 2;
    f->images = 10;
    for (int e = 0; e < 16; e++)
        f->val_err[e] = f->test_err[e] = 0.5;
}

/* ---------------------------------------------------------------- a recording observer */

typedef struct recorder {
    char name;
    char *log;     /* shared by all recorders */
    size_t cap;
    int stop_rc;   /* the rc its on_stop saw */
    int steps, epochs;
    int last_read_val, last_read_test;
} recorder;

static void say(recorder *r, const char *what, long long v)
{
    size_t n = strlen(r->log);
    snprintf(r->log + n, r->cap - n, "%c:%s%lld ", r->name, what, v);
}

static int rec_start(void *self, ff_loop *l, ff_err *err)
{
    (void)l, (void)err;
    say(self, "start", 0);
    return FF_OK;
}

static int rec_step(void *self, ff_loop *l, const ff_loop_batch *b, ff_err *err)
{
    (void)b, (void)err;
    recorder *r = self;
    r->steps++;
    if (r->name == 'A')
        say(r, "step", (long long)l->tr.position(l->tr.self).step);
    return FF_OK;
}

static int rec_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    (void)l, (void)err;
    recorder *r = self;
    r->epochs++;
    r->last_read_val = e->read_val;
    r->last_read_test = e->read_test;
    say(r, e->evaluated ? "eval" : "epoch", e->epoch);
    return FF_OK;
}

static int rec_stop(void *self, ff_loop *l, int rc, ff_err *err)
{
    (void)l, (void)err;
    recorder *r = self;
    r->stop_rc = rc;
    say(r, "stop", rc);
    return rc;
}

static ff_loop_observer recording(recorder *r, int all_ranks)
{
    return (ff_loop_observer){.name = "recorder", .self = r, .all_ranks = all_ranks,
                              .on_start = rec_start, .on_step = rec_step,
                              .on_epoch = rec_epoch, .on_stop = rec_stop};
}

/* ---------------------------------------------------------------- the set-up */

typedef struct harness {
    fake f;
    ff_loop l;
    ff_train_opts opts;
    ff_train_result res;
    char log[4096];
    recorder a, b;
    ff_obs_models models;
} harness;

/* A loop over the fake trainer with recorders A and B (B writer-only) and the models
 * observer (on a process that writes nothing: the best is tracked, no file written). */
static void harness_init(harness *h, int writer)
{
    memset(h, 0, sizeof *h);
    fake_init(&h->f);
    h->res.best_error = h->res.final_error = h->res.final_error_softmax = -1.0;
    h->res.val_final_error = h->res.val_final_error_softmax = -1.0;
    h->a = (recorder){.name = 'A', .log = h->log, .cap = sizeof h->log};
    h->b = (recorder){.name = 'B', .log = h->log, .cap = sizeof h->log};
    h->l = (ff_loop){.tr = {.self = &h->f, .next = fake_next, .evaluate = fake_evaluate,
                            .save = fake_save, .position = fake_position,
                            .has_validation = fake_has_val, .finite = fake_finite,
                            .cfg = &h->f.cfg},
                     .opts = &h->opts, .res = &h->res, .writer = writer};
    h->models = (ff_obs_models){.best = 1};
}

static int harness_run(harness *h, ff_err *err)
{
    ff_loop_observe(&h->l, recording(&h->a, 1));
    ff_loop_observe(&h->l, recording(&h->b, 0));
    ff_loop_observe(&h->l, ff_obs_models_observer(&h->models));
    return ff_loop_run(&h->l, err);
}

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* ---------------------------------------------------------------- tests */

static void test_order_and_evaluation(void)
{
    static harness h;
    harness_init(&h, 0);
    h.f.test_err[2] = 0.30, h.f.test_err[3] = 0.40;
    ff_err err = {0};
    CHECK(harness_run(&h, &err) == FF_OK);
    /* starts in list order, 12 steps, epochs 1 (not due), 2 (eval_every), 3 (last) */
    CHECK(!strncmp(h.log, "A:start0 A:step1 ", 17)); /* B is writer-only: not here */
    CHECK(!has(h.log, "B:"));
    CHECK(has(h.log, "A:step4 A:epoch1 A:step5"));
    CHECK(has(h.log, "A:step8 A:eval2 A:step9"));
    CHECK(has(h.log, "A:step12 A:eval3 A:stop0 "));
    CHECK(h.a.steps == 12 && h.a.epochs == 3 && h.b.steps == 0);
    CHECK(h.f.evaluated_sets[1] == 0);
    CHECK(h.f.evaluated_sets[2] == FF_EVAL_TEST && h.f.evaluated_sets[3] == FF_EVAL_TEST);
    /* no validation split: the test set chooses; the best is epoch 2's */
    CHECK_NEAR(h.res.best_error, 0.30, 1e-12);
    CHECK(h.res.best_epoch == 2);
    CHECK_NEAR(h.res.final_error, 0.40, 1e-12);
    CHECK(h.res.epochs_done == 3 && h.res.started && !h.res.interrupted);
    CHECK(h.res.train_images == 120);
    CHECK_NEAR(h.res.epochs_trained, 3.0, 1e-12);
}

static void test_writer_runs_every_observer_and_stops_in_reverse(void)
{
    static harness h;
    harness_init(&h, 1);
    h.f.epochs = 1;
    h.models.best = 0; /* nothing to write on the writer either */
    h.f.cfg.checkpoint.every = 0;
    /* the models observer would write the last epoch's model: leave it out here */
    ff_loop_observe(&h.l, recording(&h.a, 1));
    ff_loop_observe(&h.l, recording(&h.b, 0));
    ff_err err = {0};
    CHECK(ff_loop_run(&h.l, &err) == FF_OK);
    CHECK(!strncmp(h.log, "A:start0 B:start0 ", 18));
    CHECK(has(h.log, "A:eval1 B:eval1 B:stop0 A:stop0 "));
    CHECK(h.b.steps == 4);
}

static void test_validation_chooses_and_test_read_once(void)
{
    static harness h;
    harness_init(&h, 0);
    h.f.has_val = 1;
    h.f.eval_every = 1;
    h.f.val_err[1] = 0.6, h.f.val_err[2] = 0.2, h.f.val_err[3] = 0.3;
    h.f.test_err[1] = 0.1, h.f.test_err[2] = 0.9, h.f.test_err[3] = 0.35;
    ff_err err = {0};
    CHECK(harness_run(&h, &err) == FF_OK);
    CHECK(h.f.evaluated_sets[1] == FF_EVAL_VAL && h.f.evaluated_sets[2] == FF_EVAL_VAL);
    CHECK(h.f.evaluated_sets[3] == (FF_EVAL_VAL | FF_EVAL_TEST));
    CHECK_NEAR(h.res.best_error, 0.2, 1e-12); /* validation's, never the test set's 0.1 */
    CHECK(h.res.best_epoch == 2);
    CHECK_NEAR(h.res.final_error, 0.35, 1e-12);
    CHECK_NEAR(h.res.val_final_error, 0.3, 1e-12);

    harness_init(&h, 0);
    h.f.has_val = 1;
    h.f.eval_every = 1;
    h.f.cfg.eval.test = FF_EVAL_TEST_EVERY;
    CHECK(harness_run(&h, &err) == FF_OK);
    for (int e = 1; e <= 3; e++)
        CHECK(h.f.evaluated_sets[e] == (FF_EVAL_VAL | FF_EVAL_TEST));
}

static void test_stops(void)
{
    static harness h;
    ff_err err = {0};
    harness_init(&h, 0);
    h.opts.max_steps = 6;
    CHECK(harness_run(&h, &err) == FF_ERR_INTERRUPTED);
    CHECK(h.f.step == 6 && h.res.interrupted && h.a.stop_rc == FF_ERR_INTERRUPTED);
    CHECK(h.res.epochs_done == 1);
    CHECK_NEAR(h.res.epochs_trained, 1.5, 1e-12);

    harness_init(&h, 0);
    h.opts.stop_epoch = 2; /* after epoch 2, evaluated */
    CHECK(harness_run(&h, &err) == FF_ERR_INTERRUPTED);
    CHECK(h.f.step == 8 && h.f.epoch == 2 && has(h.log, "A:eval2 A:stop-5 "));

    harness_init(&h, 0);
    volatile sig_atomic_t flag = 1; /* a signal before the first batch */
    h.opts.stop = &flag;
    CHECK(harness_run(&h, &err) == FF_ERR_INTERRUPTED);
    CHECK(h.f.step == 0 && h.res.started);
}

static void test_divergence(void)
{
    static harness h;
    ff_err err = {0};
    harness_init(&h, 0);
    h.f.diverge_at = 5;
    CHECK(harness_run(&h, &err) == FF_ERR_RUNTIME);
    CHECK(h.l.diverged && !h.res.interrupted);
    CHECK(has(err.msg, "training diverged by step 5: layer 1's loss is not finite"));
    CHECK(has(err.msg, "no model was saved before it"));

    harness_init(&h, 0);
    h.f.nonfinite_from = 3; /* found by the check every log.every (2) steps: at step 4 */
    snprintf(h.l.autosave, sizeof h.l.autosave, "models/x_step0000002.ffm");
    CHECK(harness_run(&h, &err) == FF_ERR_RUNTIME);
    CHECK(h.f.step == 4);
    CHECK(has(err.msg, "training diverged by step 4: the weights or optimiser state hold NaN"));
    CHECK(has(err.msg, "the last good model is models/x_step0000002.ffm"));
    CHECK(!h.l.resumable);
}

static void test_resumed_mid_epoch(void)
{
    static harness h;
    ff_err err = {0};
    harness_init(&h, 0);
    h.f.step = 6, h.f.epoch = 1, h.f.batch_in_epoch = 2; /* resumed at epoch 2, batch 2 */
    CHECK(harness_run(&h, &err) == FF_OK);
    CHECK(h.a.steps == 6 && h.f.step == 12);
    CHECK(!has(h.log, "epoch1"));
    CHECK(h.res.train_images == 60);
    CHECK_NEAR(h.res.epochs_trained, 1.5, 1e-12);
}

int main(void)
{
    RUN(test_order_and_evaluation);
    RUN(test_writer_runs_every_observer_and_stops_in_reverse);
    RUN(test_validation_chooses_and_test_read_once);
    RUN(test_stops);
    RUN(test_divergence);
    RUN(test_resumed_mid_epoch);
    TEST_MAIN_END();
}
