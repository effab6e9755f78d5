/* train_clf.c - the classifier trainer of mode unsupervised_clf (include/ff/clf_trainer.h)
 * in the run loop (src/run_loop.h): its side of the loop's trainer interface and its
 * curves, clf/loss (mean over the images since the last log) and clf/lr every log.every
 * steps and at each epoch's end. Its run gets what the FF modes get from the shared
 * observers: the run's files, val/ and test/ errors, the best, epoch, periodic and stop
 * models, the progress line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/clf_trainer.h"
#include "ff/summary.h"
#include "modes.h"
#include "run_loop.h"

typedef struct clf_run {
    ff_clf_trainer tr;
    ff_config record;             /* config.yaml names the backbone, so it re-runs as it is */
    char note[sizeof(((ff_clf_trainer *)0)->backbone_path) + 16]; /* "backbone: `...`" */
    double loss_sum;              /* image-weighted loss since the last log */
    long long loss_images;
    float lr;                     /* the last batch's learning rate */
    double epoch_loss_sum;        /* image-weighted loss of the epoch so far */
    long long epoch_images;
    ff_run_record rec;            /* what this process is (run.json; every model file) */
    char record_json[8192];       /* rec as JSON */
} clf_run;

/* ---------------------------------------------------------------- the trainer's side */

static int clf_next(void *self, ff_loop_batch *b, int *diverged, ff_err *err)
{
    (void)diverged, (void)err;
    clf_run *c = self;
    c->lr = ff_clf_trainer_lr(&c->tr, c->tr.epoch);
    int images, done;
    const float loss = ff_clf_trainer_next(&c->tr, &images, &done);
    c->loss_sum += (double)loss * images;
    c->loss_images += images;
    c->epoch_loss_sum += (double)loss * images;
    c->epoch_images += images;
    b->epoch_done = done;
    b->images = images;
    b->loss = (float)(c->epoch_loss_sum / (double)c->epoch_images); /* the epoch's so far */
    if (done)
        c->epoch_loss_sum = 0.0, c->epoch_images = 0;
    return FF_OK;
}

static ff_set_errors softmax_errors(double e)
{
    return (ff_set_errors){.error_goodness = -1.0, .error_softmax = e, .main_error = e};
}

static int clf_evaluate(void *self, int epoch, unsigned sets, ff_eval_result *ev, ff_err *err)
{
    (void)epoch, (void)err;
    clf_run *c = self;
    ev->val = softmax_errors(sets & FF_EVAL_VAL ? ff_clf_trainer_evaluate(&c->tr, FF_SET_VAL, NULL)
                                                : -1.0);
    ev->test = softmax_errors(sets & FF_EVAL_TEST ? ff_clf_trainer_evaluate(&c->tr, FF_SET_TEST,
                                                                            NULL)
                                                  : -1.0);
    return FF_OK;
}

static int clf_save(void *self, const char *path, const char *run_dir, ff_err *err)
{
    return ff_clf_trainer_save(&((clf_run *)self)->tr, path, run_dir, err);
}

static ff_loop_position clf_position(const void *self)
{
    const ff_clf_trainer *t = &((const clf_run *)self)->tr;
    return (ff_loop_position){.step = t->step, .epoch = t->epoch, .epochs = t->cfg.clf.epochs,
                              .batch_in_epoch = t->batch_in_epoch, .n_batches = t->n_batches,
                              .eval_every = 1};
}

static int clf_has_validation(const void *self)
{
    return ((const clf_run *)self)->tr.val.n > 0;
}

/* ---------------------------------------------------------------- its curves */

static int log_scalars(clf_run *c, ff_summary_writer *tb, ff_err *err)
{
    if (!c->loss_images || !tb)
        return FF_OK;
    int rc = ff_summary_scalar(tb, "clf/loss", c->tr.step,
                               (float)(c->loss_sum / (double)c->loss_images), err);
    if (!rc)
        rc = ff_summary_scalar(tb, "clf/lr", c->tr.step, c->lr, err);
    c->loss_sum = 0.0;
    c->loss_images = 0;
    return rc;
}

static int scalars_step(void *self, ff_loop *l, const ff_loop_batch *b, ff_err *err)
{
    (void)b;
    clf_run *c = self;
    return c->tr.step % l->cfg->log.every == 0 ? log_scalars(c, l->files.tb, err) : FF_OK;
}

static int scalars_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    (void)e;
    return log_scalars(self, l->files.tb, err);
}

static int scalars_stop(void *self, ff_loop *l, int rc, ff_err *err)
{
    (void)err;
    ff_err lerr;
    if (rc && l->res->started && log_scalars(self, l->files.tb, &lerr) == FF_OK && l->files.tb)
        ff_summary_flush(l->files.tb, &lerr);
    return rc;
}

/* ---------------------------------------------------------------- the run */

int ff_train_clf(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                 ff_err *err)
{
    clf_run *c = calloc(1, sizeof *c);
    ff_loop *l = calloc(1, sizeof *l);
    if (!c || !l) {
        free(c);
        free(l);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    }
    const double start = ff_run_now_seconds();
    int rc = ff_clf_trainer_create(&c->tr, cfg, opts ? opts->resume : NULL,
                                   opts ? opts->info : NULL, opts ? opts->progress_ctx : NULL,
                                   err);
    if (!rc) {
        ff_train_record(opts, &c->tr.split, opts && opts->resume ? opts->resume->record : NULL,
                        &c->rec, c->record_json, sizeof c->record_json);
        c->tr.record = c->record_json;
        c->record = c->tr.cfg;
        snprintf(c->record.checkpoint.backbone, sizeof c->record.checkpoint.backbone, "%.*s",
                 (int)sizeof c->record.checkpoint.backbone - 1, c->tr.backbone_path);
        snprintf(c->note, sizeof c->note, "backbone: `%s`", c->tr.backbone_path);
        *l = (ff_loop){.tr = {.self = c, .next = clf_next, .evaluate = clf_evaluate,
                              .save = clf_save, .position = clf_position,
                              .has_validation = clf_has_validation, .cfg = &c->tr.cfg,
                              .record_cfg = &c->record, .config_note = c->note},
                       .opts = opts, .res = res, .rec = &c->rec,
                       .writer = ff_parallel_rank() == 0};
        ff_obs_models models = {.best = 1, .every = c->tr.cfg.checkpoint.every,
                                .minutes = c->tr.cfg.checkpoint.minutes};
        ff_obs_progress progress = {.every = opts ? opts->progress_every : 0};
        ff_loop_observe(l, ff_obs_files_observer());
        /* its curves before the errors of the same step, as it always logged them */
        ff_loop_observe(l, (ff_loop_observer){.name = "clf scalars", .self = c,
                                              .on_step = scalars_step, .on_epoch = scalars_epoch,
                                              .on_stop = scalars_stop});
        ff_loop_observe(l, ff_obs_errors_observer());
        ff_loop_observe(l, ff_obs_models_observer(&models));
        ff_loop_observe(l, ff_obs_progress_observer(&progress));
        rc = ff_loop_run(l, err);
    }
    res->seconds = ff_run_now_seconds() - start;
    ff_clf_trainer_free(&c->tr);
    free(c);
    free(l);
    return rc;
}
