/* train_clf.c - a training run of mode unsupervised_clf around the classifier
 * trainer (include/ff/clf_trainer.h): run directory and event file, batches
 * with clf/loss and clf/lr logged at batch steps every log.every steps, the
 * test error after every epoch, the model at the end. Like the FF loop it
 * stops after the current batch on a signal or --max-steps and writes a step
 * model that --resume continues. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ff/clf_trainer.h"
#include "ff/run.h"
#include "ff/run_record.h"
#include "ff/summary.h"
#include "ff/summary_hparams.h"
#include "train_internal.h"

typedef struct clf_run {
    ff_clf_trainer tr;
    const ff_train_opts *opts;
    ff_train_result *res;
    ff_summary_writer *tb;
    char prefix[256];
    double loss_sum;              /* image-weighted loss since the last log */
    long long loss_images;
    double epoch_loss_sum;        /* image-weighted loss of the epoch so far */
    long long epoch_images;
    ff_run_record rec;            /* what this process is (run.json; every model file) */
    char record[8192];            /* rec as JSON */
} clf_run;

static int stop_requested(const clf_run *c)
{
    const ff_train_opts *o = c->opts;
    return o && ((o->stop && *o->stop) || (o->max_steps > 0 && c->tr.step >= o->max_steps) ||
                 (o->stop_epoch > 0 && c->tr.epoch >= o->stop_epoch));
}

static int open_run(clf_run *c, ff_err *err)
{
    const ff_config *cfg = &c->tr.cfg;
    ff_run_files files = {0};
    ff_config record = *cfg; /* config.yaml names the backbone, so it re-runs as it is */
    snprintf(record.checkpoint.backbone, sizeof record.checkpoint.backbone, "%.*s",
             (int)sizeof record.checkpoint.backbone - 1, c->tr.backbone_path);
    int rc = ff_train_open_files(&files, &record, &c->rec, c->opts, c->res, err);
    c->tb = files.tb;
    snprintf(c->prefix, sizeof c->prefix, "%s", files.prefix);
    if (rc || (c->opts && c->opts->resume))
        return rc;
    size_t cap = 1 << 16;
    char *md = malloc(cap);
    if (!md)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    size_t n = (size_t)snprintf(md, cap, "backbone: `%s`\n\n", c->tr.backbone_path);
    ff_config_to_markdown(cfg, md + n, cap - n);
    rc = ff_summary_text(c->tb, "config", 0, md, err);
    free(md);
    /* no HParams experiment summary (see src/train.c's open_run) */
    if (!rc)
        rc = ff_summary_hparams_start(c->tb, cfg, (double)time(NULL), err);
    return rc;
}

static int save_model(clf_run *c, const char *what, ff_err *err)
{
    char path[FF_PATH_MAX + 512];
    int rc = ff_run_model_path(&c->tr.cfg, c->prefix, what, path, sizeof path, err);
    if (!rc)
        rc = ff_clf_trainer_save(&c->tr, path, c->res->run_dir, err);
    if (!rc)
        snprintf(c->res->model_path, sizeof c->res->model_path, "%s", path);
    return rc;
}

/* clf/loss (mean over the images since the last log) and clf/lr at the current step. */
static int log_scalars(clf_run *c, float lr, ff_err *err)
{
    if (!c->loss_images)
        return FF_OK;
    int rc = ff_summary_scalar(c->tb, "clf/loss", c->tr.step,
                               (float)(c->loss_sum / (double)c->loss_images), err);
    if (!rc)
        rc = ff_summary_scalar(c->tb, "clf/lr", c->tr.step, lr, err);
    c->loss_sum = 0.0;
    c->loss_images = 0;
    return rc;
}

static int end_epoch(clf_run *c, double seconds, int images, float lr, ff_err *err)
{
    ff_train_result *res = c->res;
    const int epoch = c->tr.epoch;
    const float loss = c->epoch_images ? (float)(c->epoch_loss_sum / c->epoch_images) : 0.0f;
    c->epoch_loss_sum = 0.0;
    c->epoch_images = 0;
    /* with a validation split its error chooses, and the test set is read at the end
     * (eval.test every: every epoch as well); without one the test set's */
    const ff_config *cfg = &c->tr.cfg;
    const int has_val = c->tr.val.n > 0;
    const int read_test = !has_val || cfg->eval.test == FF_EVAL_TEST_EVERY ||
                          epoch == cfg->clf.epochs;
    const double ev = has_val ? ff_clf_trainer_evaluate(&c->tr, FF_SET_VAL, NULL) : -1.0;
    const double et = read_test ? ff_clf_trainer_evaluate(&c->tr, FF_SET_TEST, NULL) : -1.0;
    const double e = has_val ? ev : et;
    if (read_test)
        res->final_error = res->final_error_softmax = et;
    res->val_final_error = res->val_final_error_softmax = ev;
    res->epochs_done = epoch;
    if (res->best_error < 0 || e < res->best_error) {
        res->best_error = e;
        res->best_epoch = epoch;
    }
    int rc = log_scalars(c, lr, err);
    if (!rc && has_val)
        rc = ff_summary_scalar(c->tb, "val/error_softmax", c->tr.step, (float)(ev * 100.0), err);
    if (!rc && read_test)
        rc = ff_summary_scalar(c->tb, "test/error_softmax", c->tr.step, (float)(et * 100.0), err);
    if (!rc)
        rc = ff_summary_flush(c->tb, err);
    if (!rc && c->opts && c->opts->progress) {
        ff_progress p = {.epoch = epoch, .epochs = c->tr.cfg.clf.epochs, .epoch_done = 1,
                         .loss = loss, .head_loss = -1.0f, .epoch_seconds = seconds,
                         .step = c->tr.step,
                         .batch = c->tr.n_batches, .n_batches = c->tr.n_batches,
                         .images_per_sec = seconds > 0 ? images / seconds : 0, .evaluated = 1,
                         .test_error = -1.0, .test_error_softmax = et, .val_error = -1.0,
                         .val_error_softmax = ev};
        c->opts->progress(c->opts->progress_ctx, &p);
    }
    return rc;
}

static int run_batches(clf_run *c, ff_err *err)
{
    const ff_config *cfg = &c->tr.cfg;
    int rc = FF_OK;
    double t0 = ff_now_seconds();
    int images_epoch = 0, first = c->tr.batch_in_epoch; /* resumed mid-epoch: its rest */
    while (!rc && c->tr.epoch < cfg->clf.epochs) {
        if (stop_requested(c))
            return FF_ERR_INTERRUPTED;
        const float lr = ff_clf_trainer_lr(&c->tr, c->tr.epoch);
        int images, done;
        float loss = ff_clf_trainer_next(&c->tr, &images, &done);
        c->loss_sum += (double)loss * images;
        c->loss_images += images;
        c->epoch_loss_sum += (double)loss * images;
        c->epoch_images += images;
        c->res->train_images += images;
        images_epoch += images;
        if (!done && c->tr.step % cfg->log.every == 0)
            rc = log_scalars(c, lr, err);
        if (!rc && done) {
            const double el = ff_now_seconds() - t0;
            c->res->train_seconds += el;
            c->res->epochs_trained += 1.0 - (double)first / c->tr.n_batches;
            first = 0;
            rc = end_epoch(c, el, images_epoch, lr, err);
            t0 = ff_now_seconds();
            images_epoch = 0;
        }
    }
    return rc;
}

int ff_train_clf(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                 ff_err *err)
{
    clf_run *c = calloc(1, sizeof *c);
    if (!c)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    c->opts = opts;
    c->res = res;
    const double start = ff_now_seconds();
    int rc = ff_clf_trainer_create(&c->tr, cfg, opts ? opts->resume : NULL,
                                   opts ? opts->info : NULL, opts ? opts->progress_ctx : NULL,
                                   err);
    if (!rc) {
        ff_train_record(opts, &c->tr.split, opts && opts->resume ? opts->resume->record : NULL,
                        &c->rec, c->record, sizeof c->record);
        c->tr.record = c->record;
    }
    if (!rc)
        rc = open_run(c, err);
    res->started = !rc;
    res->epochs_done = c->tr.epoch;
    if (!rc)
        rc = run_batches(c, err);
    if (rc == FF_ERR_INTERRUPTED)
        res->interrupted = 1;
    int resumable = 0; /* stopped early, with a step model written */
    if (res->started && (rc || c->tr.epoch > 0)) {
        /* the end, or where it stopped: a model --resume continues */
        char what[48];
        if (!rc)
            snprintf(what, sizeof what, "epoch%03d", c->tr.epoch);
        else
            snprintf(what, sizeof what, "step%07lld", (long long)c->tr.step);
        ff_err lerr, serr;
        if (rc && log_scalars(c, ff_clf_trainer_lr(&c->tr, c->tr.epoch), &lerr) == FF_OK)
            ff_summary_flush(c->tb, &lerr);
        if (save_model(c, what, &serr)) {
            if (!rc || rc == FF_ERR_INTERRUPTED) {
                *err = serr;
                rc = serr.code;
            }
        } else if (rc == FF_ERR_INTERRUPTED) {
            resumable = 1;
            ff_err_set(err, FF_ERR_INTERRUPTED,
                       "interrupted at step %lld (classifier epoch %d, batch %d); resume with "
                       "ffrun --resume %s", (long long)c->tr.step, c->tr.epoch + 1,
                       c->tr.batch_in_epoch, res->model_path);
        } else if (rc) {
            resumable = 1;
            char msg[FF_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            ff_err_set(err, rc, "%.600s; the state at step %lld is saved: resume with ffrun "
                       "--resume %s", msg, (long long)c->tr.step, res->model_path);
        }
    }
    if (c->tb) {
        ff_err cerr;
        /* a stopped run that --resume can finish gets its end record from that resume */
        const int status = !rc ? FF_SUMMARY_SUCCESS
                           : resumable ? FF_SUMMARY_INTERRUPTED : FF_SUMMARY_FAILURE;
        int erc = ff_summary_hparams_end(c->tb, status, c->tr.step, &cerr);
        int crc = ff_summary_close(c->tb, erc ? NULL : &cerr);
        if (!rc && (erc || crc)) {
            *err = cerr;
            rc = erc ? erc : crc;
        }
    }
    res->seconds = ff_now_seconds() - start;
    ff_clf_trainer_free(&c->tr);
    free(c);
    return rc;
}
