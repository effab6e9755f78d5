/* train.c - the FF training loop (include/ff/train.h).
 *
 * Reads top to bottom: set-up (data, net, optimiser, or the state of a run
 * being resumed), the run directory and event file, then per epoch: shuffle,
 * per batch the positive and negative passes with per-layer FF steps,
 * periodic scalar logging, evaluation, histograms and images, checkpoints;
 * at the end (or on SIGINT/SIGTERM after the current batch) the model file
 * and the HParams end record. */
#include "ff/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>

#include "ff/checkpoint.h"
#include "ff/data.h"
#include "ff/embed.h"
#include "ff/eval.h"
#include "ff/fsutil.h"
#include "ff/hybrid.h"
#include "ff/net.h"
#include "ff/optim.h"
#include "ff/readout.h"
#include "ff/rng.h"
#include "ff/summary.h"
#include "ff/train_log.h"

/* running sums between two scalar logs */
typedef struct layer_stats {
    double loss_pos, loss_neg, g_pos, g_neg;
} layer_stats;

typedef struct trainer {
    const ff_config *cfg;
    const ff_train_opts *opts;
    ff_dataset train, test;
    ff_net net;
    ff_objective obj;
    ff_optim opt;
    ff_rng rng;
    ff_summary_writer *tb;
    int unsupervised;              /* unsupervised_backbone: hybrid negatives, no labels */
    ff_hybrid_set hybrids;         /* negatives of the unsupervised backbone */
    ff_readout ro;                 /* softmax readout (eval.softmax) */
    int ro_layers[FF_MAX_LAYERS], ro_n;
    ff_shape in_shape;
    int in_dim, batch, n_batches;
    int64_t step, total_steps;
    int start_epoch, start_batch;  /* where this process begins (resume) */
    int batch_in_epoch;            /* batches done in the current epoch */
    float *x;            /* [max_batch, in_dim] embedded inputs (pos then neg for joint) */
    float *scores;       /* [max_batch * 10] goodness scores for eval / hard negatives */
    int *order;          /* the epoch's sample order */
    uint8_t *labels;     /* labels of the rows of x */
    uint8_t *candidates; /* [batch, hard_candidates] wrong labels to score (hard negatives) */
    int8_t *shifts;      /* [2 * batch] jitter shifts of the batch (NULL: no jitter) */
    layer_stats stats[FF_MAX_LAYERS];
    int stats_batches;
} trainer;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- set-up */

static int alloc_buffers(trainer *t, ff_err *err)
{
    const size_t rows = (size_t)t->net.max_batch;
    t->x = malloc(sizeof(float) * rows * (size_t)t->in_dim);
    t->scores = malloc(sizeof(float) * rows * FF_NUM_CLASSES);
    t->order = malloc(sizeof(int) * (size_t)t->train.n);
    t->labels = malloc(rows);
    t->candidates = malloc((size_t)t->batch * (FF_NUM_CLASSES - 1));
    if (t->cfg->train.jitter > 0)
        t->shifts = malloc(2 * rows);
    if (!t->x || !t->scores || !t->order || !t->labels || !t->candidates ||
        (t->cfg->train.jitter > 0 && !t->shifts))
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for training buffers");
    return FF_OK;
}

static void info(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(trainer *t, const char *fmt, ...)
{
    if (!t->opts || !t->opts->info)
        return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->opts->info(t->opts->progress_ctx, msg);
}

/* The unsupervised negatives: one hybrid per training image, made once and
 * cached on disk under data.cache (keyed by the data and the settings). */
static int load_hybrids(trainer *t, ff_err *err)
{
    const ff_config *cfg = t->cfg;
    ff_hybrid_origin origin;
    char path[1024] = "";
    int rc = ff_hybrid_load_or_make(&t->hybrids, &t->train, t->train.n, cfg->seed,
                                    cfg->data.hybrid_blur, cfg->data.cache, &origin, path,
                                    sizeof path, err);
    if (!rc)
        info(t, "negatives: %d hybrid images %s (%s)", t->hybrids.n,
             ff_hybrid_origin_name(origin), path[0] ? path : "not cached");
    return rc;
}

static int setup(trainer *t, ff_err *err)
{
    const ff_config *cfg = t->cfg;
    int rc;
    _mm_setcsr(_mm_getcsr() | 0x8040); /* flush-to-zero + denormals-are-zero: Adam's moments */
    ff_rng_seed(&t->rng, cfg->seed);
    if ((rc = ff_dataset_load(&t->train, cfg->data.dir, "train", cfg->data.train_limit, err)) ||
        (rc = ff_dataset_load(&t->test, cfg->data.dir, "t10k", cfg->data.test_limit, err)))
        return rc;
    t->batch = cfg->train.batch_size < t->train.n ? cfg->train.batch_size : t->train.n;
    t->n_batches = t->train.n / t->batch;
    t->total_steps = (int64_t)t->n_batches * cfg->train.epochs;
    t->unsupervised = cfg->mode == FF_MODE_UNSUP_BACKBONE;
    t->in_shape = t->unsupervised
                      ? (ff_shape){1, t->train.rows, t->train.cols}
                      : ff_embed_shape(cfg->model.label_embedding, t->train.rows, t->train.cols);
    t->in_dim = ff_shape_dim(t->in_shape);
    /* room for a joint pos+neg batch and for 10 labelled copies of eval chunks */
    int max_batch = 2 * t->batch;
    if (max_batch < 1000)
        max_batch = 1000;
    if ((rc = ff_net_build(&t->net, cfg, t->in_shape, max_batch, &t->rng, err)) ||
        (rc = ff_objective_from_config(&t->obj, cfg, err)) ||
        (rc = ff_optim_init(&t->opt, cfg, t->net.n_params, err)) ||
        (rc = alloc_buffers(t, err)))
        return rc;
    if (t->unsupervised && (rc = load_hybrids(t, err)))
        return rc;
    if (cfg->eval.softmax &&
        ((rc = ff_readout_layers(cfg, &t->net, t->ro_layers, &t->ro_n, err)) ||
         (rc = ff_readout_init(&t->ro, ff_readout_feature_dim(&t->net, t->ro_layers, t->ro_n),
                               FF_NUM_CLASSES, t->net.max_batch, err))))
        return rc;
    t->start_epoch = 1;
    return FF_OK;
}

/* The softmax head goes on from the model's, or starts fresh (and says so) if the
 * model has none of this shape: eval.softmax was off, or a version 1 model file. */
static void restore_head(trainer *t, const ff_checkpoint *ck)
{
    if (ck->n_head != t->ro.n_params || ck->n_head_state != ff_optim_state_len(&t->ro.opt)) {
        info(t, "softmax readout: the model holds no head of %zu weights; a new head starts "
                "from zero", t->ro.n_params);
        return;
    }
    memcpy(t->ro.params, ck->head, sizeof(float) * ck->n_head);
    memcpy(t->ro.opt.state, ck->head_state, sizeof(float) * ck->n_head_state);
    t->ro.opt.t = ck->head_t;
}

/* Puts the trainer where the checkpoint left off. */
static int restore(trainer *t, const ff_checkpoint *ck, ff_err *err)
{
    if (ck->n_params != t->net.n_params || ck->n_state != ff_optim_state_len(&t->opt) ||
        ck->n_aux != t->net.n_aux)
        return ff_err_set(err, FF_ERR_USAGE,
                          "cannot resume: the model has %llu parameters and %llu optimiser "
                          "values, the config builds %zu and %zu",
                          (unsigned long long)ck->n_params, (unsigned long long)ck->n_state,
                          t->net.n_params, ff_optim_state_len(&t->opt));
    if (ck->batch > 0 && (ck->n_order != t->train.n || ck->batch >= t->n_batches))
        return ff_err_set(err, FF_ERR_USAGE,
                          "cannot resume mid-epoch: the training set or batch size changed");
    memcpy(t->net.params, ck->params, sizeof(float) * t->net.n_params);
    memcpy(t->opt.state, ck->state, sizeof(float) * ck->n_state);
    memcpy(t->net.aux, ck->aux, sizeof(float) * ck->n_aux);
    if (ck->n_order == t->train.n)
        memcpy(t->order, ck->order, sizeof(int) * (size_t)t->train.n);
    t->opt.t = ck->opt_t;
    if (t->cfg->eval.softmax)
        restore_head(t, ck);
    t->rng = ck->rng;
    t->step = ck->step;
    t->start_epoch = ck->epoch + 1;
    t->start_batch = ck->batch;
    return FF_OK;
}

static void teardown(trainer *t)
{
    free(t->x);
    free(t->scores);
    free(t->order);
    free(t->labels);
    free(t->candidates);
    free(t->shifts);
    ff_hybrid_free(&t->hybrids);
    ff_readout_free(&t->ro);
    ff_optim_free(&t->opt);
    ff_net_free(&t->net);
    ff_dataset_free(&t->train);
    ff_dataset_free(&t->test);
}

/* ---------------------------------------------------------------- one batch */

/* One FF pass over the rows of t->x; adds the per-layer terms to the running stats. */
static void ff_pass(trainer *t, int npos, int nneg)
{
    ff_layer_loss r[FF_MAX_LAYERS];
    ff_net_ff_grads(&t->net, &t->obj, t->x, npos, nneg, 1.0f / (float)t->batch, r);
    for (int l = 0; l < t->net.n_layers; l++) {
        t->stats[l].loss_pos += r[l].loss_pos;
        t->stats[l].loss_neg += r[l].loss_neg;
        t->stats[l].g_pos += r[l].g_pos;
        t->stats[l].g_neg += r[l].g_neg;
    }
}

static ff_readout_input readout_input(const trainer *t, const ff_dataset *ds);

/* scores[i, k] = the softmax head's logit k for image idx[i]: one neutral-label pass */
static void head_logits(trainer *t, const int *idx)
{
    const ff_readout_input in = readout_input(t, &t->train);
    ff_readout_scores(&t->ro, &t->net, t->ro_layers, t->ro_n, &in, idx, t->batch, t->x,
                      t->scores);
}

/* scores[i, k] = summed layer logits with label k for the train.hard_candidates wrong
 * labels the softmax head ranks highest, -INFINITY for the other labels */
static void candidate_scores(trainer *t, const int *idx, const uint8_t *truth)
{
    const int B = t->batch, m = t->cfg->train.hard_candidates;
    float *g = t->scores + (size_t)B * FF_NUM_CLASSES; /* [B, m]; scores holds 20 B floats */
    head_logits(t, idx);
    ff_top_wrong_labels(truth, t->scores, B, m, t->candidates);
    ff_eval_goodness_scores_of(&t->net, t->cfg->model.label_embedding, &t->train, idx, B,
                               t->candidates, m, 1, t->x, g);
    for (int i = 0; i < B * FF_NUM_CLASSES; i++)
        t->scores[i] = -INFINITY;
    for (int i = 0; i < B; i++)
        for (int q = 0; q < m; q++)
            t->scores[(size_t)i * FF_NUM_CLASSES + t->candidates[(size_t)i * m + q]] =
                g[(size_t)i * m + q];
}

static void choose_negative_labels(trainer *t, const int *idx, const uint8_t *truth, uint8_t *neg)
{
    if (t->cfg->train.negatives == FF_NEG_HARD) {
        if (t->cfg->train.hard_scores == FF_HARD_SOFTMAX)
            head_logits(t, idx);
        else if (t->cfg->train.hard_candidates > 0)
            candidate_scores(t, idx, truth);
        else
            ff_eval_goodness_scores(&t->net, t->cfg->model.label_embedding, &t->train, idx,
                                    t->batch, 1, t->x, t->scores);
        ff_negative_labels_hard(&t->rng, truth, t->scores, t->batch, t->cfg->train.hard_temperature,
                                neg);
    } else {
        ff_negative_labels_random(&t->rng, truth, t->batch, neg);
    }
}

/* The batch's images with labels embedded (supervised), or the images alone
 * (unsupervised: labels NULL; `negative` picks the hybrids instead). */
static void embed(trainer *t, const int *idx, const uint8_t *labels, int negative, float *out)
{
    const ff_dataset *ds = &t->train;
    const float *images = negative && t->unsupervised ? t->hybrids.images : ds->images;
    ff_embed_batch_shifted(t->cfg->model.label_embedding, images, ds->rows, ds->cols, idx,
                           t->unsupervised ? NULL : labels, t->shifts, t->batch, out);
}

static void train_batch(trainer *t, const int *idx)
{
    const ff_config *cfg = t->cfg;
    const float lr = ff_schedule_lr(cfg, t->step, t->total_steps);
    const int B = t->batch;
    uint8_t *pos = t->labels, *neg = t->labels + B;
    for (int i = 0; i < B; i++)
        pos[i] = t->train.labels[idx[i]];
    if (!t->unsupervised)
        choose_negative_labels(t, idx, pos, neg);
    if (t->shifts) /* one shift per image, shared by its positive and negative copy */
        ff_draw_shifts(&t->rng, cfg->train.jitter, B, t->shifts);
    if (cfg->train.passes == FF_PASS_JOINT) {
        embed(t, idx, pos, 0, t->x);
        embed(t, idx, neg, 1, t->x + (size_t)B * t->in_dim);
        ff_pass(t, B, B);
        ff_optim_step(&t->opt, t->net.params, t->net.grads, lr);
    } else {
        embed(t, idx, pos, 0, t->x);
        ff_pass(t, B, 0);
        ff_optim_step(&t->opt, t->net.params, t->net.grads, lr);
        embed(t, idx, neg, 1, t->x);
        ff_pass(t, 0, B);
        ff_optim_step(&t->opt, t->net.params, t->net.grads, lr);
    }
    t->stats_batches++;
}

/* ---------------------------------------------------------------- logging */

static float stats_total_loss(const trainer *t)
{
    double total = 0.0;
    for (int l = 0; l < t->net.n_layers; l++)
        total += t->stats[l].loss_pos + t->stats[l].loss_neg;
    return t->stats_batches ? (float)(total / t->stats_batches) : 0.0f;
}

static int log_scalars(trainer *t, ff_err *err)
{
    if (!t->stats_batches)
        return FF_OK;
    const double nb = t->stats_batches;
    char tag[64];
    int rc = FF_OK;
    for (int l = 0; l < t->net.n_layers && !rc; l++) {
        const layer_stats *s = &t->stats[l];
        snprintf(tag, sizeof tag, "layer%d/loss", l);
        rc = ff_summary_scalar(t->tb, tag, t->step, (float)((s->loss_pos + s->loss_neg) / nb), err);
        snprintf(tag, sizeof tag, "layer%d/goodness_pos", l);
        if (!rc)
            rc = ff_summary_scalar(t->tb, tag, t->step, (float)(s->g_pos / nb), err);
        snprintf(tag, sizeof tag, "layer%d/goodness_neg", l);
        if (!rc)
            rc = ff_summary_scalar(t->tb, tag, t->step, (float)(s->g_neg / nb), err);
    }
    if (!rc)
        rc = ff_summary_scalar(t->tb, "loss/total", t->step, stats_total_loss(t), err);
    if (!rc)
        rc = ff_summary_scalar(t->tb, "train/learning_rate", t->step,
                               ff_schedule_lr(t->cfg, t->step - 1, t->total_steps), err);
    memset(t->stats, 0, sizeof t->stats);
    t->stats_batches = 0;
    return rc;
}

/* inputs/masks: fresh hybrid masks (the cached set keeps only the images) */
static int log_masks(trainer *t, ff_rng *rng, ff_err *err)
{
    const int n = 16, hw = t->train.rows * t->train.cols;
    float *m = malloc(sizeof(float) * (size_t)hw * (n + 1));
    if (!m)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for masks");
    for (int i = 0; i < n; i++)
        ff_hybrid_mask(rng, t->train.rows, t->train.cols, t->cfg->data.hybrid_blur,
                       m + (size_t)i * hw, m + (size_t)n * hw);
    int rc = ff_log_input_grid(t->tb, "inputs/masks", m, n,
                               (ff_shape){1, t->train.rows, t->train.cols}, t->step, err);
    free(m);
    return rc;
}

/* Histograms and images at the end of an epoch, on a fixed sample of the
 * training set (its first images with true and with wrong labels). */
static int log_epoch_views(trainer *t, int epoch, ff_err *err)
{
    const ff_config *cfg = t->cfg;
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
    ff_rng view_rng; /* its own stream: logging must not change the training run */
    ff_rng_seed(&view_rng, cfg->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)epoch));
    ff_negative_labels_random(&view_rng, pos, n, neg);
    float *xp = t->x, *xn = t->x + (size_t)n * t->in_dim;
    const uint8_t *lp = t->unsupervised ? NULL : pos, *ln = t->unsupervised ? NULL : neg;
    ff_embed_batch_shifted(kind, ds->images, ds->rows, ds->cols, NULL, lp, NULL, n, xp);
    ff_embed_batch_shifted(kind, t->unsupervised ? t->hybrids.images : ds->images, ds->rows,
                           ds->cols, NULL, ln, NULL, n, xn);
    int rc = FF_OK;
    if (imgs) {
        rc = ff_log_input_grid(t->tb, "inputs/positive", xp, n, t->in_shape, t->step, err);
        if (!rc)
            rc = ff_log_input_grid(t->tb, "inputs/negative", xn, n, t->in_shape, t->step, err);
        if (!rc && t->unsupervised)
            rc = log_masks(t, &view_rng, err);
        if (!rc)
            rc = ff_log_receptive_fields(t->tb, &t->net, t->step, err);
    }
    if (!rc && hist)
        rc = ff_log_param_histograms(t->tb, &t->net, t->step, err);
    if (!rc && hist)
        rc = ff_log_goodness_histograms(t->tb, &t->net, xp, xn, n, t->step, err);
    return rc;
}

static void report(trainer *t, ff_progress *p)
{
    if (t->opts && t->opts->progress)
        t->opts->progress(t->opts->progress_ctx, p);
}

/* ---------------------------------------------------------------- models */

/* Writes <checkpoint.dir>/<mode>_<run>_<what>.ffm with the trainer's state. */
static int save_model(trainer *t, int epochs_done, const char *what, const char *run_dir,
                      char *path, size_t cap, ff_err *err)
{
    const ff_config *cfg = t->cfg;
    int rc = ff_mkdir_p(cfg->checkpoint.dir, err);
    if (rc)
        return rc;
    const char *run = strrchr(run_dir, '/');
    run = run ? run + 1 : run_dir;
    snprintf(path, cap, "%s/%s_%s_%s.ffm", cfg->checkpoint.dir, ff_mode_name(cfg->mode), run,
             what);
    ff_checkpoint_state st = {.cfg = cfg, .net = &t->net, .opt = &t->opt, .rng = &t->rng,
                              .epoch = epochs_done, .batch = t->batch_in_epoch,
                              .step = t->step, .run_dir = run_dir, .order = t->order,
                              .n_order = t->train.n, .head = cfg->eval.softmax ? &t->ro : NULL};
    return ff_checkpoint_save(path, &st, err);
}

static int save_epoch_model(trainer *t, int epoch, ff_train_result *res, ff_err *err)
{
    char what[32];
    snprintf(what, sizeof what, "epoch%03d", epoch);
    return save_model(t, epoch, what, res->run_dir, res->model_path, sizeof res->model_path, err);
}

/* ---------------------------------------------------------------- epochs */

static void readout_step(trainer *t, const int *idx);

static int stop_requested(const trainer *t)
{
    if (!t->opts)
        return 0;
    return (t->opts->stop && *t->opts->stop) ||
           (t->opts->max_steps > 0 && t->step >= t->opts->max_steps);
}

static int run_epoch(trainer *t, int epoch, int first_batch, ff_progress *p,
                     double *train_seconds, ff_err *err)
{
    const ff_config *cfg = t->cfg;
    t->batch_in_epoch = first_batch;
    if (stop_requested(t))
        return FF_ERR_INTERRUPTED;
    if (first_batch == 0) {
        /* the order depends only on the RNG state, so a resumed run repeats it */
        for (int i = 0; i < t->train.n; i++)
            t->order[i] = i;
        if (cfg->train.shuffle)
            ff_rng_shuffle(&t->rng, t->order, t->train.n);
    }
    const int every = t->opts && t->opts->progress_every > 0 ? t->opts->progress_every : 10;
    const double t0 = now_seconds();
    int rc = FF_OK;
    for (int b = first_batch; b < t->n_batches; b++) {
        t->batch_in_epoch = b;
        if (b > first_batch && stop_requested(t)) {
            rc = FF_ERR_INTERRUPTED;
            break;
        }
        train_batch(t, t->order + (size_t)b * t->batch);
        if (cfg->eval.softmax)
            readout_step(t, t->order + (size_t)b * t->batch);
        t->step++;
        const float loss = stats_total_loss(t);
        if (t->step % cfg->log.every == 0 && (rc = log_scalars(t, err)))
            break;
        if ((b + 1) % every == 0 && b + 1 < t->n_batches) {
            double el = now_seconds() - t0;
            *p = (ff_progress){.epoch = epoch, .epochs = cfg->train.epochs, .batch = b + 1,
                               .n_batches = t->n_batches, .step = t->step, .loss = loss,
                               .images_per_sec = el > 0 ? (b + 1 - first_batch) * (double)t->batch / el : 0,
                               .epoch_seconds = el};
            report(t, p);
        }
        p->loss = loss;
    }
    const double el = now_seconds() - t0;
    *train_seconds += el;
    *p = (ff_progress){.epoch = epoch, .epochs = cfg->train.epochs, .batch = t->n_batches,
                       .n_batches = t->n_batches, .step = t->step, .loss = p->loss,
                       .images_per_sec = el > 0 ? (t->n_batches - first_batch) * (double)t->batch / el : 0,
                       .epoch_seconds = el, .epoch_done = 1};
    if (!rc)
        t->batch_in_epoch = 0;
    return rc;
}

/* What the softmax readout sees: the neutral label (supervised) or the image alone. */
static ff_readout_input readout_input(const trainer *t, const ff_dataset *ds)
{
    return (ff_readout_input){.ds = ds, .neutral = !t->unsupervised,
                              .embed = t->cfg->model.label_embedding};
}

/* One step of the softmax head on the batch's images (after the FF step, the
 * net unchanged by it): a neutral-label forward pass, then the head's Adam step
 * on the normalised activities. The head uses no RNG, so it never changes the
 * FF training run. */
static void readout_step(trainer *t, const int *idx)
{
    ff_readout_input tr = readout_input(t, &t->train);
    ff_readout_train_epoch(&t->ro, &t->net, t->ro_layers, t->ro_n, &tr, idx, t->batch, t->batch,
                           t->cfg->clf.lr, t->x);
}

/* Softmax readout test error, after eval.readout_epochs extra epochs of head
 * training on the frozen net (own RNG stream; the FF run is unaffected). */
static double softmax_error(trainer *t, int epoch)
{
    const ff_config *cfg = t->cfg;
    ff_readout_input tr = readout_input(t, &t->train), te = readout_input(t, &t->test);
    ff_rng rng;
    ff_rng_seed(&rng, cfg->seed ^ (0xd1b54a32d192ed03ull * (uint64_t)epoch));
    for (int e = 0; e < cfg->eval.readout_epochs; e++) {
        for (int i = 0; i < t->train.n; i++)
            t->order[i] = i;
        ff_rng_shuffle(&rng, t->order, t->train.n);
        ff_readout_train_epoch(&t->ro, &t->net, t->ro_layers, t->ro_n, &tr, t->order,
                               t->train.n, t->batch, cfg->clf.lr, t->x);
    }
    return ff_readout_error(&t->ro, &t->net, t->ro_layers, t->ro_n, &te, 0, t->x, NULL);
}

/* Test error of each readout that applies; *main_error is the one that picks
 * the best model (goodness for supervised nets, softmax otherwise). */
static int evaluate(trainer *t, int epoch, ff_progress *p, double *main_error, ff_err *err)
{
    int rc = FF_OK;
    p->test_error = p->test_error_softmax = *main_error = -1.0;
    if (!t->unsupervised) {
        p->test_error = ff_eval_error(&t->net, t->cfg->model.label_embedding, &t->test, 0, t->x,
                                      t->scores, NULL);
        *main_error = p->test_error;
        rc = ff_summary_scalar(t->tb, "test/error_goodness", t->step,
                               (float)(p->test_error * 100.0), err);
    }
    if (!rc && t->cfg->eval.softmax) {
        p->test_error_softmax = softmax_error(t, epoch);
        if (*main_error < 0)
            *main_error = p->test_error_softmax;
        rc = ff_summary_scalar(t->tb, "test/error_softmax", t->step,
                               (float)(p->test_error_softmax * 100.0), err);
    }
    p->evaluated = *main_error >= 0;
    return rc;
}

/* After an epoch: evaluation, logs, checkpoints. */
static int end_epoch(trainer *t, int epoch, ff_progress *p, ff_train_result *res, ff_err *err)
{
    const ff_config *cfg = t->cfg;
    int rc = FF_OK;
    res->epochs_done = epoch;
    if (epoch % cfg->eval.every == 0 || epoch == cfg->train.epochs) {
        rc = evaluate(t, epoch, p, &res->final_error, err);
        res->final_error_softmax = p->test_error_softmax;
        if (!rc && p->evaluated &&
            (res->best_error < 0 || res->final_error < res->best_error)) {
            res->best_error = res->final_error;
            res->best_epoch = epoch;
            rc = save_model(t, epoch, "best", res->run_dir, res->best_path,
                            sizeof res->best_path, err);
        }
    }
    if (!rc)
        rc = log_scalars(t, err);
    if (!rc)
        rc = log_epoch_views(t, epoch, err);
    if (!rc && (epoch == cfg->train.epochs ||
                (cfg->checkpoint.every > 0 && epoch % cfg->checkpoint.every == 0)))
        rc = save_epoch_model(t, epoch, res, err);
    if (!rc)
        rc = ff_summary_flush(t->tb, err);
    return rc;
}

/* The run directory and event file: new, or the resumed run's own. */
static int open_run(trainer *t, ff_train_result *res, ff_err *err)
{
    const ff_config *cfg = t->cfg;
    const ff_checkpoint *ck = t->opts ? t->opts->resume : NULL;
    int rc;
    if (ck) {
        snprintf(res->run_dir, sizeof res->run_dir, "%s", ck->run_dir);
        rc = ff_summary_open(&t->tb, res->run_dir, err);
        if (!rc)
            rc = ff_summary_session_start(t->tb, t->step, err);
    } else {
        char root[FF_PATH_MAX + 64];
        snprintf(root, sizeof root, "%s/%s", cfg->log.dir, ff_mode_name(cfg->mode));
        rc = ff_make_run_dir(root, cfg->name, time(NULL), res->run_dir, sizeof res->run_dir, err);
        if (!rc)
            rc = ff_summary_open(&t->tb, res->run_dir, err);
    }
    if (rc)
        return rc;
    snprintf(res->event_file, sizeof res->event_file, "%s", ff_summary_path(t->tb));
    if (ck)
        return ff_summary_flush(t->tb, err);
    const char *metrics[3] = {"loss/total"};
    int n_metrics = 1;
    if (!t->unsupervised)
        metrics[n_metrics++] = "test/error_goodness";
    if (cfg->eval.softmax)
        metrics[n_metrics++] = "test/error_softmax";
    char *md = malloc(1 << 16);
    if (!md)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    ff_config_to_markdown(cfg, md, 1 << 16);
    rc = ff_summary_text(t->tb, "config", 0, md, err);
    free(md);
    if (!rc)
        rc = ff_summary_hparams_experiment(t->tb, cfg, metrics, n_metrics, err);
    if (!rc)
        rc = ff_summary_hparams_start(t->tb, cfg, (double)time(NULL), err);
    if (!rc)
        rc = ff_summary_goodness_layout(t->tb, t->net.n_layers, err);
    if (!rc)
        rc = ff_summary_flush(t->tb, err);
    return rc;
}

/* On interruption: a checkpoint of exactly where training stopped. */
static int save_interrupted(trainer *t, int epoch, ff_train_result *res, ff_err *err)
{
    char what[48];
    snprintf(what, sizeof what, "step%07lld", (long long)t->step);
    return save_model(t, epoch - 1, what, res->run_dir, res->model_path, sizeof res->model_path,
                      err);
}

static int close_run(trainer *t, int rc, ff_err *err)
{
    if (!t->tb)
        return rc;
    ff_err cerr;
    int erc = ff_summary_hparams_end(t->tb, rc ? 2 : 1, t->step, &cerr);
    int crc = ff_summary_close(t->tb, erc ? NULL : &cerr);
    t->tb = NULL;
    if (!rc && (erc || crc)) {
        *err = cerr;
        rc = erc ? erc : crc;
    }
    return rc;
}

int ff_train(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res, ff_err *err)
{
    trainer t = {.cfg = cfg, .opts = opts};
    memset(res, 0, sizeof *res);
    res->final_error = res->best_error = res->final_error_softmax = -1.0;
    res->readout = cfg->mode == FF_MODE_SUPERVISED ? "goodness" : "softmax";
    if (cfg->mode == FF_MODE_UNSUP_CLF)
        return ff_train_clf(cfg, opts, res, err);
    const double start = now_seconds();
    int rc = setup(&t, err);
    if (!rc && opts && opts->resume)
        rc = restore(&t, opts->resume, err);
    if (!rc)
        rc = open_run(&t, res, err);
    int epoch = t.start_epoch;
    res->epochs_done = epoch - 1;
    while (!rc && epoch <= cfg->train.epochs) {
        ff_progress p = {0};
        int first = epoch == t.start_epoch ? t.start_batch : 0;
        rc = run_epoch(&t, epoch, first, &p, &res->train_seconds, err);
        if (!rc)
            rc = end_epoch(&t, epoch, &p, res, err);
        if (!rc) {
            report(&t, &p);
            epoch++;
        }
    }
    if (rc == FF_ERR_INTERRUPTED) {
        res->interrupted = 1;
        ff_err serr;
        if (save_interrupted(&t, epoch, res, &serr)) {
            *err = serr;
            rc = serr.code;
        } else {
            ff_err_set(err, FF_ERR_INTERRUPTED,
                       "interrupted at step %lld (epoch %d, batch %d); resume with "
                       "ffrun --resume %s",
                       (long long)t.step, epoch, t.batch_in_epoch, res->model_path);
        }
    }
    rc = close_run(&t, rc, err);
    res->seconds = now_seconds() - start;
    teardown(&t);
    return rc;
}
