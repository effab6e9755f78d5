/* train.c - the FF trainer (include/ff/trainer.h) in the run loop (src/run_loop.h):
 * its side of the loop's trainer interface (batches with divergence and replica
 * checks, evaluation, model files, position) and its own curves as observers: the
 * per-layer FF terms summed between logs (every log.every steps and at each epoch's
 * end), and at epoch ends the histograms and images. ff_train_ff sets up the trainer
 * (with its processes under MPI) and runs the loop with the shared observers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/checkpoint.h"
#include "ff/embed.h"
#include "ff/hybrid.h"
#include "ff/parallel.h"
#include "ff/summary.h"
#include "ff/train_log.h"
#include "modes.h"
#include "run_loop.h"

/* running sums of the trainer's step statistics between two scalar logs */
typedef struct layer_sums {
    double loss_pos, loss_neg, g_pos, g_neg;
} layer_sums;

typedef struct ff_run {
    ff_trainer tr;
    const ff_config *cfg;          /* = &tr.cfg */
    ff_parallel *par;              /* NULL: one process */
    ff_summary_writer *tb;         /* the loop's event file (NULL on other ranks) */
    layer_sums sums[FF_MAX_LAYERS];
    int sum_batches;               /* batches summed since the last log */
    int ff_batches;                /* of them, those in which some FF layer learned */
    double head_sum;               /* the softmax head's losses summed since the last log */
    int head_batches;
    float last_lr;
    ff_iter_sums iters;            /* model.recurrent: per-iteration goodness since the last log */
    ff_run_record rec;             /* what this process is (run.json; every model file) */
    char record[8192];             /* rec as JSON */
} ff_run;

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
    ff_train_log_iter_sums_add(&r->iters, st);
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
        memset(&r->iters, 0, sizeof r->iters);
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
    if (!rc) /* model.recurrent: how each layer settles (nothing for a feed-forward net) */
        rc = ff_train_log_iter_goodness(r->tb, &r->iters, step, err);
    memset(&r->iters, 0, sizeof r->iters);
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
    int rc = ff_train_log_input_grid(r->tb, "inputs/masks", m, n, mask, 1, r->tr.step, err);
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
    ff_embed_negatives_random(&view_rng, pos, n, neg);
    float *xp = t->x, *xn = t->x + (size_t)n * t->in_dim;
    const uint8_t *lp = t->unsupervised ? NULL : pos, *ln = t->unsupervised ? NULL : neg;
    ff_embed_batch(kind, ds->images, ds->shape, NULL, lp, n, xp);
    ff_embed_batch(kind, t->unsupervised ? t->hybrids.images : ds->images, ds->shape, NULL, ln, n,
                   xn);
    int rc = FF_OK;
    const int image_c = ds->shape.c;
    /* model.recurrent: the label is clamped at the top, not in the image, so a negative's
     * input is its positive's and its goodness (neutral label) the same: not shown twice */
    const int label_in_input = !t->rec.active;
    if (imgs) {
        rc = ff_train_log_input_grid(r->tb, "inputs/positive", xp, n, t->in_shape, image_c,
                                     t->step, err);
        if (!rc && label_in_input)
            rc = ff_train_log_input_grid(r->tb, "inputs/negative", xn, n, t->in_shape, image_c,
                                         t->step, err);
        if (!rc && t->unsupervised)
            rc = log_masks(r, &view_rng, err);
        if (!rc)
            rc = ff_train_log_receptive_fields(r->tb, &t->net, image_c, t->step, err);
    }
    if (!rc && hist)
        rc = ff_train_log_param_histograms(r->tb, &t->net, t->step, err);
    if (!rc && hist && label_in_input)
        rc = ff_train_log_goodness_histograms(r->tb, &t->net, xp, xn, n, t->step, err);
    return rc;
}

/* ---------------------------------------------------------------- the trainer's side */

/* The first layer whose terms of this batch are not finite, or -1. */
static int diverged_layer(const ff_step_stats *st)
{
    for (int l = 0; l < st->n_layers; l++)
        if (!isfinite(st->loss_pos[l] + st->loss_neg[l] + st->g_pos[l] + st->g_neg[l]))
            return l;
    return -1;
}

static int ff_next(void *self, ff_loop_batch *b, int *diverged, ff_err *err)
{
    ff_run *r = self;
    ff_step_stats st;
    b->epoch_done = ff_trainer_next(&r->tr, &st);
    int rc = ff_parallel_check_replicas(r->par, err);
    if (rc)
        return rc;
    add_step(r, &st);
    b->images = r->tr.batch;
    b->loss = mean_total_loss(r);
    b->head_loss = mean_head_loss(r);
    const int bad = diverged_layer(&st);
    if (bad >= 0) {
        *diverged = 1;
        return ff_err_set(err, FF_ERR_RUNTIME, "layer %d's loss is not finite", bad);
    }
    return FF_OK;
}

static int ff_evaluate(void *self, int epoch, unsigned sets, ff_eval_result *ev, ff_err *err)
{
    (void)err;
    ff_trainer_evaluate(&((ff_run *)self)->tr, epoch, sets, ev);
    return FF_OK;
}

static int ff_save(void *self, const char *path, const char *run_dir, ff_err *err)
{
    return ff_trainer_save(&((ff_run *)self)->tr, path, run_dir, err);
}

static ff_loop_position ff_position(const void *self)
{
    const ff_trainer *t = &((const ff_run *)self)->tr;
    return (ff_loop_position){.step = t->step, .epoch = t->epoch, .epochs = t->cfg.train.epochs,
                              .batch_in_epoch = t->batch_in_epoch, .n_batches = t->n_batches,
                              .eval_every = t->cfg.eval.every};
}

static int ff_has_validation(const void *self)
{
    return ((const ff_run *)self)->tr.val.n > 0;
}

static int ff_finite(const void *self)
{
    return ff_trainer_finite(&((const ff_run *)self)->tr);
}

/* ---------------------------------------------------------------- its curves */

/* The sums every log.every steps (every rank: a pipeline sums its ranks' layers). */
static int scalars_step(void *self, ff_loop *l, const ff_loop_batch *b, ff_err *err)
{
    (void)b;
    ff_run *r = self;
    r->tb = l->files.tb;
    return r->tr.step % l->cfg->log.every == 0 ? log_scalars(r, err) : FF_OK;
}

static int scalars_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    (void)e;
    ff_run *r = self;
    r->tb = l->files.tb;
    return log_scalars(r, err);
}

/* After a signal or a failed write: the scalars of the batches since the last log, best
 * effort (a divergence logs nothing more). */
static int scalars_stop(void *self, ff_loop *l, int rc, ff_err *err)
{
    (void)err;
    ff_run *r = self;
    r->tb = l->files.tb;
    ff_err lerr;
    if (!rc || !l->res->started || l->diverged)
        return rc;
    if ((rc == FF_ERR_INTERRUPTED && r->par) || r->tb) /* a pipeline's ranks sum together */
        if (log_scalars(r, &lerr) == FF_OK && r->tb)
            ff_summary_flush(r->tb, &lerr);
    return rc;
}

static int views_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    ff_run *r = self;
    r->tb = l->files.tb;
    return r->tb ? log_epoch_views(r, e->epoch, err) : FF_OK;
}

/* ---------------------------------------------------------------- the run */

int ff_train_ff(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                ff_err *err)
{
    ff_run *r = calloc(1, sizeof *r);
    ff_loop *l = calloc(1, sizeof *l);
    if (!r || !l) {
        free(r);
        free(l);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    }
    r->cfg = &r->tr.cfg;
    const double start = ff_run_now_seconds();
    ff_info_fn note = opts ? opts->info : NULL;
    void *ctx = opts ? opts->progress_ctx : NULL;
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
        *l = (ff_loop){.tr = {.self = r, .next = ff_next, .evaluate = ff_evaluate, .save = ff_save,
                              .position = ff_position, .has_validation = ff_has_validation,
                              .finite = ff_finite, .cfg = r->cfg,
                              .goodness_layout_layers = r->tr.net.n_layers,
                              .goodness_layout_iters = r->tr.rec.active},
                       .opts = opts, .res = res, .par = r->par, .rec = &r->rec,
                       .writer = ff_parallel_rank() == 0};
        ff_obs_models models = {.best = 1, .every = r->cfg->checkpoint.every,
                                .minutes = r->cfg->checkpoint.minutes};
        ff_obs_progress progress = {.every = opts ? opts->progress_every : 0};
        ff_loop_observe(l, ff_obs_files_observer());
        ff_loop_observe(l, ff_obs_errors_observer());
        ff_loop_observe(l, (ff_loop_observer){.name = "ff scalars", .self = r, .all_ranks = 1,
                                              .on_step = scalars_step, .on_epoch = scalars_epoch,
                                              .on_stop = scalars_stop});
        ff_loop_observe(l, (ff_loop_observer){.name = "ff views", .self = r,
                                              .on_epoch = views_epoch});
        ff_loop_observe(l, ff_obs_models_observer(&models));
        ff_loop_observe(l, ff_obs_progress_observer(&progress));
        rc = ff_loop_run(l, err);
    }
    res->seconds = ff_run_now_seconds() - start;
    ff_parallel_free(r->par);
    ff_trainer_free(&r->tr);
    free(r);
    free(l);
    return rc;
}
