/* train.c - a training run of the FF modes (supervised, unsupervised_backbone)
 * around the batch-by-batch trainer (include/ff/train.h, include/ff/trainer.h),
 * and ff_train, which picks the loop for a config's mode.
 *
 * Reads top to bottom: the run directory and event file (new, or the resumed
 * run's own), per batch the trainer's step and the running sums of its
 * per-layer terms (logged every log.every steps), per epoch evaluation,
 * histograms and images, checkpoints; at the end, or on a signal, a failed
 * write or divergence, the model file and the HParams end record. */
#include "train_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ff/checkpoint.h"
#include "ff/embed.h"
#include "ff/hybrid.h"
#include "ff/parallel.h"
#include "ff/run.h"
#include "ff/run_record.h"
#include "ff/summary.h"
#include "ff/summary_hparams.h"
#include "ff/summary_reader.h"
#include "ff/train_log.h"

/* running sums of the trainer's step statistics between two scalar logs */
typedef struct layer_sums {
    double loss_pos, loss_neg, g_pos, g_neg;
} layer_sums;

typedef struct ff_run {
    ff_trainer tr;
    const ff_config *cfg;          /* = &tr.cfg */
    const ff_train_opts *opts;
    ff_train_result *res;
    ff_summary_writer *tb;
    char prefix[256];              /* model names: <checkpoint.dir>/<prefix>_<what>.ffm */
    layer_sums sums[FF_MAX_LAYERS];
    int sum_batches;               /* batches summed since the last log */
    int ff_batches;                /* of them, those in which some FF layer learned */
    double head_sum;               /* the softmax head's losses summed since the last log */
    int head_batches;
    float last_lr;
    float recent_loss;             /* mean total loss of the batches up to the last one,
                                      since the log before it (what progress shows; -1
                                      once every layer has stopped learning) */
    float recent_head_loss;        /* the same for the softmax head (-1: no head) */
    int diverged;                  /* the weights went non-finite: save nothing more */
    int resumable;                 /* stopped early with a step model written */
    ff_parallel *par;              /* NULL: one process */
    int writer;                    /* 1 on the process that writes files (rank 0) */
    double last_save;              /* when the last resumable model was written (or the start) */
    char autosave[1024];           /* the step model checkpoint.minutes wrote last ("" = none) */
    ff_run_record rec;             /* what this process is (run.json; every model file) */
    char record[8192];             /* rec as JSON */
} ff_run;

static void report(const ff_run *r, const ff_progress *p)
{
    if (r->opts && r->opts->progress)
        r->opts->progress(r->opts->progress_ctx, p);
}

/* With several processes they agree (any rank's signal stops all): before every
 * batch in data parallel, every log.every steps in a pipeline (which must not wait). */
static int stop_requested(const ff_run *r)
{
    if (!r->opts)
        return 0;
    if (r->opts->max_steps > 0 && r->tr.step >= r->opts->max_steps)
        return 1;
    if (r->opts->stop_epoch > 0 && r->tr.epoch >= r->opts->stop_epoch)
        return 1; /* the same on every rank: no agreement needed */
    const int flag = r->opts->stop && *r->opts->stop;
    if (!r->par)
        return flag;
    if (ff_parallel_is_pipeline(r->par) && r->tr.step % r->cfg->log.every != 0)
        return 0;
    return ff_parallel_any(r->par, flag);
}

/* ---------------------------------------------------------------- scalars */

static void add_step(ff_run *r, const ff_step_stats *st)
{
    for (int l = 0; l < st->n_layers; l++) {
        r->sums[l].loss_pos += st->loss_pos[l];
        r->sums[l].loss_neg += st->loss_neg[l];
        r->sums[l].g_pos += st->g_pos[l];
        r->sums[l].g_neg += st->g_neg[l];
    }
    r->sum_batches++;
    r->ff_batches += r->tr.n_frozen < r->tr.net.n_layers;
    if (st->head_loss >= 0) {
        r->head_sum += st->head_loss;
        r->head_batches++;
    }
    r->last_lr = st->lr;
}

/* The sums since the last log start again. */
static void clear_sums(ff_run *r)
{
    memset(r->sums, 0, sizeof r->sums);
    r->sum_batches = r->ff_batches = r->head_batches = 0;
    r->head_sum = 0.0;
}

/* -1 if no FF layer learned since the last log */
static float mean_total_loss(const ff_run *r)
{
    double total = 0.0;
    for (int l = 0; l < r->tr.net.n_layers; l++)
        total += r->sums[l].loss_pos + r->sums[l].loss_neg;
    return r->ff_batches ? (float)(total / r->ff_batches) : -1.0f;
}

/* -1 if the head took no step since the last log */
static float mean_head_loss(const ff_run *r)
{
    return r->head_batches ? (float)(r->head_sum / r->head_batches) : -1.0f;
}

/* The mean of each layer's terms since the last log, at the current step. */
static int log_scalars(ff_run *r, ff_err *err)
{
    if (ff_parallel_is_pipeline(r->par)) /* each rank summed its own layers */
        ff_parallel_sum(r->par, (double *)r->sums, 4 * FF_MAX_LAYERS);
    if (!r->sum_batches || !r->tb) {
        clear_sums(r);
        return FF_OK;
    }
    const double nb = r->sum_batches;
    const int64_t step = r->tr.step;
    char tag[64];
    int rc = FF_OK;
    for (int l = 0; l < r->tr.net.n_layers && !rc; l++) {
        const layer_sums *s = &r->sums[l];
        if (r->tr.net.frozen[l]) /* past its train_epochs: no loss to show */
            continue;
        snprintf(tag, sizeof tag, "layer%d/loss", l);
        rc = ff_summary_scalar(r->tb, tag, step, (float)((s->loss_pos + s->loss_neg) / nb), err);
        snprintf(tag, sizeof tag, "layer%d/goodness_pos", l);
        if (!rc)
            rc = ff_summary_scalar(r->tb, tag, step, (float)(s->g_pos / nb), err);
        snprintf(tag, sizeof tag, "layer%d/goodness_neg", l);
        if (!rc)
            rc = ff_summary_scalar(r->tb, tag, step, (float)(s->g_neg / nb), err);
    }
    if (!rc && r->ff_batches) /* none once every layer has stopped learning */
        rc = ff_summary_scalar(r->tb, "loss/total", step, mean_total_loss(r), err);
    if (!rc)
        rc = ff_summary_scalar(r->tb, "train/learning_rate", step, r->last_lr, err);
    if (!rc && r->head_batches)
        rc = ff_summary_scalar(r->tb, "clf/loss", step, mean_head_loss(r), err);
    clear_sums(r);
    return rc;
}

/* ---------------------------------------------------------------- epoch views */

/* inputs/masks: fresh hybrid masks (the cached set keeps only the images) */
static int log_masks(ff_run *r, ff_rng *rng, ff_err *err)
{
    const ff_dataset *ds = &r->tr.train;
    const int n = 16, hw = ds->shape.h * ds->shape.w;
    float *m = malloc(sizeof(float) * (size_t)hw * (n + 1));
    if (!m)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for masks");
    for (int i = 0; i < n; i++)
        ff_hybrid_mask(rng, ds->shape, r->cfg->data.hybrid_blur, m + (size_t)i * hw,
                       m + (size_t)n * hw);
    const ff_shape mask = {1, ds->shape.h, ds->shape.w};
    int rc = ff_log_input_grid(r->tb, "inputs/masks", m, n, mask, 1, r->tr.step, err);
    free(m);
    return rc;
}

/* Histograms and images at the end of an epoch, on a fixed sample of the
 * training set (its first images with true and with wrong labels). Uses the
 * trainer's input buffers, not its RNG: logging never changes the run. */
static int log_epoch_views(ff_run *r, int epoch, ff_err *err)
{
    const ff_config *cfg = r->cfg;
    ff_trainer *t = &r->tr;
    const int hist = cfg->log.histograms > 0 && epoch % cfg->log.histograms == 0;
    const int imgs = cfg->log.images > 0 && epoch % cfg->log.images == 0;
    if (!hist && !imgs)
        return FF_OK;
    const int n = t->batch < 100 ? t->batch : 100;
    const ff_embed_kind kind = cfg->model.label_embedding;
    const ff_dataset *ds = &t->train;
    uint8_t *pos = t->labels, *neg = t->labels + n;
    for (int i = 0; i < n; i++)
        pos[i] = ds->labels[i];
    ff_rng view_rng; /* its own stream */
    ff_rng_seed(&view_rng, cfg->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)epoch));
    ff_negative_labels_random(&view_rng, pos, n, neg);
    float *xp = t->x, *xn = t->x + (size_t)n * t->in_dim;
    const uint8_t *lp = t->unsupervised ? NULL : pos, *ln = t->unsupervised ? NULL : neg;
    ff_embed_batch(kind, ds->images, ds->shape, NULL, lp, n, xp);
    ff_embed_batch(kind, t->unsupervised ? t->hybrids.images : ds->images, ds->shape, NULL, ln, n,
                   xn);
    int rc = FF_OK;
    const int image_c = ds->shape.c;
    if (imgs) {
        rc = ff_log_input_grid(r->tb, "inputs/positive", xp, n, t->in_shape, image_c, t->step, err);
        if (!rc)
            rc = ff_log_input_grid(r->tb, "inputs/negative", xn, n, t->in_shape, image_c, t->step,
                                   err);
        if (!rc && t->unsupervised)
            rc = log_masks(r, &view_rng, err);
        if (!rc)
            rc = ff_log_receptive_fields(r->tb, &t->net, image_c, t->step, err);
    }
    if (!rc && hist)
        rc = ff_log_param_histograms(r->tb, &t->net, t->step, err);
    if (!rc && hist)
        rc = ff_log_goodness_histograms(r->tb, &t->net, xp, xn, n, t->step, err);
    return rc;
}

/* ---------------------------------------------------------------- models */

/* Writes <checkpoint.dir>/<prefix>_<what>.ffm with the trainer's state into
 * path (left "" unless the file was written). A model with a non-finite value is
 * never written: it would replace a good one. */
static int save_model(ff_run *r, const char *what, char *path, size_t cap, ff_err *err)
{
    char p[FF_PATH_MAX + 512];
    if (!r->writer)
        return FF_OK;
    int rc = ff_run_model_path(r->cfg, r->prefix, what, p, sizeof p, err);
    if (rc)
        return rc;
    if (!ff_trainer_finite(&r->tr))
        return ff_err_set(err, FF_ERR_RUNTIME, "not saving %s: the model holds NaN or infinite "
                          "values", p);
    if ((rc = ff_trainer_save(&r->tr, p, r->res->run_dir, err)))
        return rc;
    snprintf(path, cap, "%s", p);
    return FF_OK;
}

/* The first layer whose terms of this batch are not finite, or -1. */
static int diverged_layer(const ff_step_stats *st)
{
    for (int l = 0; l < st->n_layers; l++)
        if (!isfinite(st->loss_pos[l] + st->loss_neg[l] + st->g_pos[l] + st->g_neg[l]))
            return l;
    return -1;
}

/* Stops the run: nothing more is saved, the message names the last good model. */
static int diverged(ff_run *r, const char *what, ff_err *err)
{
    r->diverged = 1;
    const char *last = r->autosave[0]      ? r->autosave
                       : r->res->model_path[0] ? r->res->model_path
                                               : r->res->best_path;
    if (!last[0] && r->opts && r->opts->resume && r->opts->resume_path)
        last = r->opts->resume_path; /* a resumed run: the model it started from */
    if (last[0])
        return ff_err_set(err, FF_ERR_RUNTIME,
                          "training diverged by step %lld: %s (lower optimizer.lr?); nothing "
                          "more is saved, the last good model is %s",
                          (long long)r->tr.step, what, last);
    return ff_err_set(err, FF_ERR_RUNTIME,
                      "training diverged by step %lld: %s (lower optimizer.lr?); no model was "
                      "saved before it", (long long)r->tr.step, what);
}

/* The whole state is checked every log.every steps and before every save (a
 * pass over the parameters, too slow for every batch); the losses every batch. */
static int check_finite(ff_run *r, ff_err *err)
{
    return ff_trainer_finite(&r->tr)
               ? FF_OK
               : diverged(r, "the weights or optimiser state hold NaN or infinite values", err);
}

/* 1 if paths a and b name one file (the same string, or the same inode). */
static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    return !strcmp(a, b) ||
           (stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino);
}

/* A newer resumable model exists: the last periodic step model, or the step model the
 * run was resumed from, goes (never the one just written under the same name), and
 * checkpoint.minutes counts from now. */
static void autosave_superseded(ff_run *r, const char *newer)
{
    if (r->autosave[0] && !same_file(r->autosave, newer))
        unlink(r->autosave);
    r->autosave[0] = '\0';
    r->last_save = ff_now_seconds();
}

/* checkpoint.minutes: at most that often a resumable model of the current step
 * (_stepNNNNNNN.ffm, what a signal writes), replacing the previous one, so a killed
 * machine loses at most those minutes. Only at a step whose scalars were just logged:
 * a run resumed from it logs what the uninterrupted run would have. The clock is the
 * writer's; a pipeline, whose layers are spread over the ranks, agrees when
 * stop_requested does and gathers them. */
static int autosave_if_due(ff_run *r, ff_err *err)
{
    const double every = r->cfg->checkpoint.minutes * 60.0;
    if (every <= 0 || r->tr.step % r->cfg->log.every != 0)
        return FF_OK;
    const int due = r->writer && ff_now_seconds() - r->last_save >= every;
    if (!ff_parallel_is_pipeline(r->par) ? !due : !ff_parallel_any(r->par, due))
        return FF_OK;
    ff_parallel_sync_state(r->par);
    char what[48], path[sizeof r->autosave];
    snprintf(what, sizeof what, "step%07lld", (long long)r->tr.step);
    if (!r->writer)
        return FF_OK;
    int rc = save_model(r, what, path, sizeof path, err); /* checks the weights again */
    if (rc)
        return rc;
    autosave_superseded(r, path);
    snprintf(r->autosave, sizeof r->autosave, "%s", path);
    if (r->opts && r->opts->info) {
        char msg[sizeof path + 80];
        snprintf(msg, sizeof msg, "saved %s (checkpoint.minutes %g)", path,
                 r->cfg->checkpoint.minutes);
        r->opts->info(r->opts->progress_ctx, msg);
    }
    return FF_OK;
}

/* ---------------------------------------------------------------- epochs */

/* The batches of one epoch from the trainer's position; FF_ERR_INTERRUPTED if
 * stopped before its end. */
static int epoch_batches(ff_run *r, int epoch, double t0, ff_err *err)
{
    ff_trainer *t = &r->tr;
    const ff_config *cfg = r->cfg;
    const int first = t->batch_in_epoch;
    const int every = r->opts && r->opts->progress_every > 0 ? r->opts->progress_every : 10;
    for (int done = 0; !done;) {
        if (stop_requested(r))
            return FF_ERR_INTERRUPTED;
        ff_step_stats st;
        done = ff_trainer_next(t, &st);
        int rc = ff_parallel_check_replicas(r->par, err);
        if (rc)
            return rc;
        add_step(r, &st);
        r->recent_loss = mean_total_loss(r);
        r->recent_head_loss = mean_head_loss(r);
        int bad = diverged_layer(&st);
        if (bad >= 0) {
            char what[64];
            snprintf(what, sizeof what, "layer %d's loss is not finite", bad);
            return diverged(r, what, err);
        }
        if (t->step % cfg->log.every == 0 &&
            ((rc = check_finite(r, err)) || (rc = log_scalars(r, err))))
            return rc;
        if (!done && (rc = autosave_if_due(r, err)))
            return rc;
        const int b = done ? t->n_batches : t->batch_in_epoch;
        if (!done && b % every == 0) {
            double el = ff_now_seconds() - t0;
            ff_progress p = {.epoch = epoch, .epochs = cfg->train.epochs, .batch = b,
                             .n_batches = t->n_batches, .step = t->step,
                             .loss = r->recent_loss, .head_loss = r->recent_head_loss,
                             .epoch_seconds = el,
                             .images_per_sec = el > 0 ? (b - first) * (double)t->batch / el : 0};
            report(r, &p);
        }
    }
    return FF_OK;
}

/* The batches of one epoch from the trainer's position, timed (also when stopped
 * early); FF_ERR_INTERRUPTED if stopped before its end. */
static int run_epoch(ff_run *r, int epoch, ff_err *err)
{
    const double t0 = ff_now_seconds();
    const int64_t step0 = r->tr.step;
    int rc = epoch_batches(r, epoch, t0, err);
    r->res->train_seconds += ff_now_seconds() - t0;
    r->res->train_images += (r->tr.step - step0) * (int64_t)r->tr.batch;
    r->res->epochs_trained += (double)(r->tr.step - step0) / r->tr.n_batches;
    return rc;
}

/* <set>/error_goodness, <set>/error_softmax and <set>/layer<K>/error (percent) of the
 * errors measured on a set */
static int log_errors(ff_run *r, const char *set, const ff_set_errors *e, ff_err *err)
{
    if (!r->tb)
        return FF_OK;
    char tag[64];
    const int64_t step = r->tr.step;
    int rc = FF_OK;
    snprintf(tag, sizeof tag, "%s/error_goodness", set);
    if (e->error_goodness >= 0)
        rc = ff_summary_scalar(r->tb, tag, step, (float)(e->error_goodness * 100.0), err);
    snprintf(tag, sizeof tag, "%s/error_softmax", set);
    if (!rc && e->error_softmax >= 0)
        rc = ff_summary_scalar(r->tb, tag, step, (float)(e->error_softmax * 100.0), err);
    for (int l = 0; l < e->n_layers && !rc; l++) {
        snprintf(tag, sizeof tag, "%s/layer%d/error", set, l);
        rc = ff_summary_scalar(r->tb, tag, step, (float)(e->layer_error[l] * 100.0), err);
    }
    return rc;
}

/* An epoch's evaluation: with a validation split its images every time (they choose
 * the best model) and the test set at the end (eval.test every: every time as well);
 * without one the test set, which then chooses. */
static int evaluate(ff_run *r, int epoch, ff_progress *p, ff_err *err)
{
    const ff_config *cfg = r->cfg;
    ff_trainer *t = &r->tr;
    ff_train_result *res = r->res;
    const int has_val = t->val.n > 0;
    const int read_test = !has_val || cfg->eval.test == FF_EVAL_TEST_EVERY ||
                          epoch == cfg->train.epochs;
    ff_eval_result ev;
    ff_trainer_evaluate(t, epoch, (has_val ? FF_EVAL_VAL : 0) | (read_test ? FF_EVAL_TEST : 0),
                        &ev);
    const ff_set_errors *pick = has_val ? &ev.val : &ev.test;
    p->val_error = ev.val.error_goodness;
    p->val_error_softmax = ev.val.error_softmax;
    p->test_error = ev.test.error_goodness;
    p->test_error_softmax = ev.test.error_softmax;
    p->evaluated = pick->main_error >= 0;
    if (read_test) {
        res->final_error = ev.test.main_error;
        res->final_error_softmax = ev.test.error_softmax;
    }
    if (has_val) {
        res->val_final_error = ev.val.main_error;
        res->val_final_error_softmax = ev.val.error_softmax;
    }
    int rc = has_val ? log_errors(r, "val", &ev.val, err) : FF_OK;
    if (!rc && read_test)
        rc = log_errors(r, "test", &ev.test, err);
    if (!rc && p->evaluated && (res->best_error < 0 || pick->main_error < res->best_error)) {
        /* the summary's best is the model file's: updated only once it is written */
        rc = save_model(r, "best", res->best_path, sizeof res->best_path, err);
        if (!rc) {
            res->best_error = pick->main_error;
            res->best_epoch = epoch;
        }
    }
    return rc;
}

/* After an epoch: evaluation, logs, checkpoints, progress. */
static int end_epoch(ff_run *r, int epoch, double epoch_seconds, int first_batch, ff_err *err)
{
    const double t0 = ff_now_seconds();
    const ff_config *cfg = r->cfg;
    ff_trainer *t = &r->tr;
    ff_train_result *res = r->res;
    ff_progress p = {.epoch = epoch, .epochs = cfg->train.epochs, .batch = t->n_batches,
                     .n_batches = t->n_batches, .step = t->step, .epoch_done = 1,
                     .loss = r->recent_loss, .head_loss = r->recent_head_loss,
                     .epoch_seconds = epoch_seconds,
                     .images_per_sec = epoch_seconds > 0 ? (t->n_batches - first_batch) *
                                                               (double)t->batch / epoch_seconds
                                                         : 0,
                     .test_error = -1.0, .test_error_softmax = -1.0, .val_error = -1.0,
                     .val_error_softmax = -1.0};
    int rc = check_finite(r, err);
    if (rc)
        return rc;
    res->epochs_done = epoch;
    ff_parallel_sync_state(r->par); /* a pipeline's layers, all in every rank */
    if (epoch % cfg->eval.every == 0 || epoch == cfg->train.epochs)
        rc = evaluate(r, epoch, &p, err);
    if (!rc)
        rc = log_scalars(r, err);
    if (!rc && r->tb)
        rc = log_epoch_views(r, epoch, err);
    if (!rc && (epoch == cfg->train.epochs ||
                (cfg->checkpoint.every > 0 && epoch % cfg->checkpoint.every == 0))) {
        char what[32];
        snprintf(what, sizeof what, "epoch%03d", epoch);
        rc = save_model(r, what, res->model_path, sizeof res->model_path, err);
        if (!rc)
            autosave_superseded(r, res->model_path);
    }
    if (!rc && r->tb)
        rc = ff_summary_flush(r->tb, err);
    p.after_seconds = ff_now_seconds() - t0;
    if (!rc)
        report(r, &p);
    return rc;
}

/* ---------------------------------------------------------------- the run */

/* "version 0.1.0, commit abc (modified)" of a run record's JSON (best effort: the
 * fields this ffrun writes; "" for none) */
static void describe_record(const char *json, char *out, size_t cap)
{
    char version[40] = "?", commit[72] = "?";
    const char *v = json ? strstr(json, "\"version\": \"") : NULL;
    const char *c = json ? strstr(json, "\"git_commit\": \"") : NULL;
    if (v)
        sscanf(v + 12, "%39[^\"]", version);
    if (c)
        sscanf(c + 15, "%71[^\"]", commit);
    const int dirty = json && strstr(json, "\"git_dirty\": true") != NULL;
    snprintf(out, cap, "ffrun %s, commit %s%s", version, commit, dirty ? " (modified tree)" : "");
}

void ff_train_record(const ff_train_opts *opts, const ff_split_info *split,
                     const char *resumed_record, ff_run_record *rec, char *json, size_t cap)
{
    ff_run_record_fill(rec, opts ? opts->command_line : NULL, ff_parallel_size());
    rec->val_images = split ? split->n : 0;
    rec->val_split = split ? (unsigned long long)split->digest : 0;
    ff_run_record_json(rec, json, cap);
    if (!resumed_record || !opts || !opts->info)
        return;
    char was[160], now[160], msg[512];
    describe_record(json, now, sizeof now);
    if (!resumed_record[0])
        snprintf(msg, sizeof msg, "warning: the model records no code version (written before "
                 "model format 3); resuming with %s", now);
    else {
        describe_record(resumed_record, was, sizeof was);
        if (!strcmp(was, now) && !strstr(now, "modified") && !strstr(now, "commit ?"))
            return;
        snprintf(msg, sizeof msg, "warning: the model was written by %s and is resumed by %s: "
                 "the rest of the run need not be what either would have done alone", was, now);
    }
    opts->info(opts->progress_ctx, msg);
}

/* config.yaml and run.json in the run directory (include/ff/run_record.h), and the record
 * in TensorBoard's text tab (tag "run") */
static int write_run_record(const ff_run_files *f, const ff_config *cfg,
                            const ff_run_record *rec, ff_err *err)
{
    int rc = ff_run_record_write(f->run_dir, cfg, rec, err);
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "```\n");
    n += ff_run_record_json(rec, text + n, sizeof text - n - 8);
    snprintf(text + n, sizeof text - n, "```\n");
    if (!rc)
        rc = ff_summary_text(f->tb, "run", 0, text, err);
    return rc;
}

/* A resumed run that TensorBoard already shows as ended keeps that end: HParams takes the
 * first session_end_info of a run (docs: README "Outputs"). Said, with the old end. */
static void note_ended(const char *run_dir, const ff_train_opts *opts)
{
    int status;
    double when;
    if (!ff_summary_run_end(run_dir, &status, &when))
        return;
    static const char *const names[] = {"UNKNOWN", "SUCCESS", "FAILURE", "RUNNING"};
    char stamp[32] = "?", msg[1400];
    const time_t t = (time_t)when;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(msg, sizeof msg, "warning: %s already ended (%s at %s): TensorBoard's HParams "
             "tab keeps that first end (status and time) for this run; its curves do show the "
             "resumed steps", run_dir, status >= 0 && status <= 3 ? names[status] : "?", stamp);
    opts->info(opts->progress_ctx, msg);
}

int ff_train_open_files(ff_run_files *f, const ff_config *cfg, const ff_run_record *rec,
                        const ff_train_opts *opts, ff_train_result *res, ff_err *err)
{
    int rc = ff_run_open(f, cfg, opts ? opts->resume : NULL, opts ? opts->resume_path : NULL,
                         opts ? opts->run_dir : NULL, opts ? opts->info : NULL,
                         opts ? opts->progress_ctx : NULL, err);
    snprintf(res->run_dir, sizeof res->run_dir, "%s", f->run_dir);
    if (!rc)
        snprintf(res->event_file, sizeof res->event_file, "%s", ff_summary_path(f->tb));
    if (!rc && f->tb && !(opts && opts->resume)) /* a new run: what produced it */
        rc = write_run_record(f, cfg, rec, err);
    if (!rc && opts && opts->resume && opts->info)
        note_ended(f->run_dir, opts);
    return rc;
}

/* The run directory, model-name prefix and event file: new, or the resumed run's own. */
static int open_run(ff_run *r, ff_err *err)
{
    const ff_config *cfg = r->cfg;
    ff_run_files files = {0};
    int rc = ff_train_open_files(&files, cfg, &r->rec, r->opts, r->res, err);
    r->tb = files.tb;
    snprintf(r->prefix, sizeof r->prefix, "%s", files.prefix);
    if (rc)
        return rc;
    if (r->opts && r->opts->resume)
        return ff_summary_flush(r->tb, err);
    /* No HParams experiment summary: TensorBoard takes the first one it finds for the
     * whole logdir; without one it derives the view from every run's session_start_info
     * (keys that differ first, every scalar a metric), so runs of any mode and config
     * show their own keys and metrics side by side. A sweep writes one at its root. */
    char *md = malloc(1 << 16);
    if (!md)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    ff_config_to_markdown(cfg, md, 1 << 16);
    rc = ff_summary_text(r->tb, "config", 0, md, err);
    free(md);
    if (!rc)
        rc = ff_summary_hparams_start(r->tb, cfg, (double)time(NULL), err);
    if (!rc)
        rc = ff_summary_goodness_layout(r->tb, r->tr.net.n_layers, err);
    if (!rc)
        rc = ff_summary_flush(r->tb, err);
    return rc;
}

/* After a signal or a failed write: the scalars of the batches since the last
 * log (best effort), then a step model of exactly where training stopped. The
 * error message says how to resume. Divergence saves nothing (see diverged). */
static int save_stopped(ff_run *r, int rc, ff_err *err)
{
    ff_train_result *res = r->res;
    ff_err lerr;
    if (rc == FF_ERR_INTERRUPTED && r->par) { /* the ranks stopped together: whole state */
        ff_parallel_sync_state(r->par);
        if (log_scalars(r, &lerr) == FF_OK && r->tb)
            ff_summary_flush(r->tb, &lerr);
    } else if (r->tb && log_scalars(r, &lerr) == FF_OK) {
        ff_summary_flush(r->tb, &lerr);
    }
    char what[48];
    snprintf(what, sizeof what, "step%07lld", (long long)r->tr.step);
    ff_err serr;
    char msg[FF_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    if (save_model(r, what, res->model_path, sizeof res->model_path, &serr)) {
        if (rc == FF_ERR_INTERRUPTED) { /* the save's failure is the run's */
            rc = serr.code;
            snprintf(msg, sizeof msg, "interrupted at step %lld", (long long)r->tr.step);
        }
        if (r->autosave[0])
            return ff_err_set(err, rc, "%.300s (and no model could be saved: %.300s); resume "
                              "from the last periodic model: ffrun --resume %s",
                              msg, serr.msg, r->autosave);
        return ff_err_set(err, rc, "%.500s (and no model could be saved: %.400s)", msg, serr.msg);
    }
    r->resumable = 1;
    autosave_superseded(r, res->model_path);
    if (rc == FF_ERR_INTERRUPTED)
        return ff_err_set(err, FF_ERR_INTERRUPTED,
                          "interrupted at step %lld (epoch %d, batch %d); resume with "
                          "ffrun --resume %s",
                          (long long)r->tr.step, r->tr.epoch + 1, r->tr.batch_in_epoch,
                          res->model_path);
    ff_err_set(err, rc, "%.600s; the state at step %lld is saved: resume with ffrun --resume %s", msg,
               (long long)r->tr.step, res->model_path);
    return rc;
}

static int close_run(ff_run *r, int rc, ff_err *err)
{
    if (!r->tb)
        return rc;
    ff_err cerr;
    /* a stopped run that --resume can finish gets its end record from that resume */
    const int status = !rc ? FF_SUMMARY_SUCCESS
                       : r->resumable ? FF_SUMMARY_INTERRUPTED : FF_SUMMARY_FAILURE;
    int erc = ff_summary_hparams_end(r->tb, status, r->tr.step, &cerr);
    int crc = ff_summary_close(r->tb, erc ? NULL : &cerr);
    r->tb = NULL;
    if (!rc && (erc || crc)) {
        *err = cerr;
        rc = erc ? erc : crc;
    }
    return rc;
}

/* A run resumed from one of its own step models (<prefix>_stepNNNNNNN.ffm) treats it as
 * its last periodic one: the next resumable model replaces it (kill -9 and resume cycles
 * used to leave one stale step model each). An epoch or best model is never removed. */
static void adopt_resumed_step_model(ff_run *r, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const size_t np = strlen(r->prefix), nb = strlen(base);
    if (!np || nb < np + 9 || strncmp(base, r->prefix, np) || strncmp(base + np, "_step", 5) ||
        strcmp(base + nb - 4, ".ffm") || strlen(path) >= sizeof r->autosave)
        return;
    for (const char *d = base + np + 5; d < base + nb - 4; d++)
        if (*d < '0' || *d > '9')
            return;
    snprintf(r->autosave, sizeof r->autosave, "%s", path);
}

int ff_train_ff(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                ff_err *err)
{
    ff_run *r = calloc(1, sizeof *r);
    if (!r)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    r->opts = opts;
    r->res = res;
    r->cfg = &r->tr.cfg;
    const double start = ff_now_seconds();
    ff_info_fn note = opts ? opts->info : NULL;
    void *ctx = opts ? opts->progress_ctx : NULL;
    r->writer = ff_parallel_rank() == 0;
    r->last_save = start;
    int rc = ff_trainer_create(&r->tr, cfg, note, ctx, err);
    rc = ff_parallel_agree(rc, NULL, err); /* a rank without its data ends all of them */
    if (!rc)
        rc = ff_parallel_attach(&r->par, &r->tr, err);
    if (!rc && opts && opts->resume)
        rc = ff_trainer_restore(&r->tr, opts->resume, note, ctx, err);
    if (!rc) {
        ff_train_record(opts, &r->tr.split, opts && opts->resume ? opts->resume->record : NULL,
                        &r->rec, r->record, sizeof r->record);
        r->tr.record = r->record;
    }
    if (!rc && r->writer)
        rc = open_run(r, err);
    if (!rc && r->writer && opts && opts->resume && opts->resume_path)
        adopt_resumed_step_model(r, opts->resume_path);
    res->epochs_done = r->tr.epoch;
    res->started = !rc;
    while (!rc && r->tr.epoch < r->cfg->train.epochs) {
        const int epoch = r->tr.epoch + 1, first = r->tr.batch_in_epoch;
        const double before = res->train_seconds;
        rc = run_epoch(r, epoch, err);
        if (!rc)
            rc = end_epoch(r, epoch, res->train_seconds - before, first, err);
    }
    if (rc == FF_ERR_INTERRUPTED)
        res->interrupted = 1;
    if (rc && res->started && !r->diverged)
        rc = save_stopped(r, rc, err);
    rc = close_run(r, rc, err);
    res->seconds = ff_now_seconds() - start;
    ff_parallel_free(r->par);
    ff_trainer_free(&r->tr);
    free(r);
    return rc;
}

int ff_train(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res, ff_err *err)
{
    memset(res, 0, sizeof *res);
    res->final_error = res->best_error = res->final_error_softmax = -1.0;
    res->val_final_error = res->val_final_error_softmax = -1.0;
    res->readout = cfg->mode == FF_MODE_SUPERVISED ? "goodness" : "softmax";
    if (cfg->mode == FF_MODE_UNSUP_CLF)
        return ff_train_clf(cfg, opts, res, err);
    return ff_train_ff(cfg, opts, res, err);
}
