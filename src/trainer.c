/* trainer.c - the FF trainer as a library (include/ff/trainer.h).
 *
 * Reads top to bottom: set-up (data, net, optimiser, negatives, head),
 * restoring a model file's state, one batch (negative labels, jitter, the FF
 * passes and steps, the head's step), the epoch's next batch, evaluation and
 * saving. Nothing here writes logs or prints. */
#include "ff/trainer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/checkpoint.h"
#include "ff/embed.h"
#include "ff/eval.h"
#include "ff/run.h"

/* ---------------------------------------------------------------- set-up */

static void note(ff_info_fn info, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(ff_info_fn info, void *ctx, const char *fmt, ...)
{
    if (!info)
        return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    info(ctx, msg);
}

static int alloc_buffers(ff_trainer *t, ff_err *err)
{
    const size_t rows = (size_t)t->net.max_batch;
    t->x = malloc(sizeof(float) * rows * (size_t)t->in_dim);
    t->scores = malloc(sizeof(float) * rows * FF_NUM_CLASSES);
    t->layer_scores = malloc(sizeof(float) * rows * FF_NUM_CLASSES * (size_t)t->net.n_layers);
    t->order = malloc(sizeof(int) * (size_t)t->train.n);
    t->scratch_order = malloc(sizeof(int) * (size_t)t->train.n);
    t->labels = malloc(rows);
    t->candidates = malloc((size_t)t->batch * (FF_NUM_CLASSES - 1));
    const int augment = t->cfg.train.jitter > 0 || t->cfg.train.flip;
    if (augment)
        t->aug = malloc(sizeof(ff_aug) * rows);
    if (!t->x || !t->scores || !t->layer_scores || !t->order || !t->scratch_order ||
        !t->labels || !t->candidates || (augment && !t->aug))
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for training buffers");
    ff_run_order_draw(&t->rng, t->order, t->train.n, 0); /* identity until the first epoch */
    return FF_OK;
}

/* The unsupervised negatives: one hybrid per training image, made once and
 * cached on disk under data.cache (keyed by the data and the settings). */
static int load_hybrids(ff_trainer *t, ff_info_fn info, void *ctx, ff_err *err)
{
    const ff_config *cfg = &t->cfg;
    ff_hybrid_origin origin;
    char path[1024] = "";
    int rc = ff_hybrid_load_or_make(&t->hybrids, &t->train, t->train.n, cfg->seed,
                                    cfg->data.hybrid_blur, cfg->data.cache, &origin, path,
                                    sizeof path, err);
    if (!rc)
        note(info, ctx, "negatives: %d hybrid images %s (%s)", t->hybrids.n,
             ff_hybrid_origin_name(origin), path[0] ? path : "not cached");
    return rc;
}

int ff_trainer_plan_for(const ff_config *cfg, ff_shape image, int n_train, ff_trainer_plan *plan,
                        ff_err *err)
{
    plan->in_shape = cfg->mode == FF_MODE_UNSUP_BACKBONE
                         ? image
                         : ff_embed_shape(cfg->model.label_embedding, image);
    plan->batch = ff_data_batch_of(cfg->train.batch_size, n_train);
    /* ten labelled copies of an evaluation chunk of 100 images; the competition loss
     * (no label in the input) evaluates each image once: chunks of two batches */
    const int eval_rows = cfg->train.loss == FF_LOSS_COMPETITION ? 0 : 1000;
    plan->max_batch = 2 * plan->batch < eval_rows ? eval_rows : 2 * plan->batch;
    return FF_OK;
}

int ff_trainer_create(ff_trainer *t, const ff_config *cfg, ff_info_fn info, void *info_ctx,
                      ff_err *err)
{
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    cfg = &t->cfg;
    int rc;
    ff_run_fp_fast_mode();
    ff_rng_seed(&t->rng, cfg->seed);
    ff_data_info dinfo;
    if ((rc = ff_data_open(cfg, &t->train, &t->val, &t->test, &dinfo, err)))
        return rc;
    t->split = dinfo.split;
    ff_data_note(cfg, &t->train, &dinfo, info, info_ctx);
    ff_trainer_plan plan = {0};
    if ((rc = ff_trainer_plan_for(cfg, t->train.shape, t->train.n, &plan, err)))
        return rc;
    t->batch = plan.batch;
    t->n_batches = ff_data_batches_per_epoch(t->train.n, t->batch, 0);
    t->total_steps = (int64_t)t->n_batches * cfg->train.epochs;
    t->unsupervised = cfg->mode == FF_MODE_UNSUP_BACKBONE;
    t->in_shape = plan.in_shape;
    t->in_dim = ff_shape_dim(t->in_shape);
    const ff_optim_params opt_params = ff_optim_params_from_config(cfg);
    const ff_net_spec spec = ff_net_spec_of(cfg, t->in_shape, plan.max_batch);
    if ((rc = ff_objective_from_config(&t->objective, cfg, err)) ||
        (rc = ff_net_build_spec(&t->net, &spec, &t->objective, &t->rng, err)) ||
        (rc = ff_recurrent_init(&t->rec, &t->net, cfg, err)) ||
        (rc = ff_optim_init(&t->opt, &opt_params, t->net.n_params, err)) ||
        (rc = alloc_buffers(t, err)))
        return rc;
    if (t->unsupervised && (rc = load_hybrids(t, info, info_ctx, err)))
        return rc;
    const ff_optim_params head_opt = ff_readout_optim_params(cfg);
    if (cfg->eval.softmax &&
        ((rc = ff_readout_layers(cfg, &t->net, t->ro_layers, &t->ro_n, err)) ||
         (rc = ff_readout_init(&t->ro, ff_readout_feature_dim(&t->net, t->ro_layers, t->ro_n),
                               FF_NUM_CLASSES, t->net.max_batch, &head_opt, err))))
        return rc;
    if (cfg->eval.softmax && cfg->clf.cache_features) { /* training, validation, test */
        const size_t rows = (size_t)t->train.n + (size_t)t->val.n + (size_t)t->test.n;
        const size_t F = (size_t)t->ro.features;
        t->feat_cache = malloc(sizeof(float) * rows * F);
        if (t->feat_cache) {
            t->set_feat_cache[FF_SET_VAL] = t->feat_cache + (size_t)t->train.n * F;
            t->set_feat_cache[FF_SET_TEST] = t->set_feat_cache[FF_SET_VAL] + (size_t)t->val.n * F;
        } else
            note(info, info_ctx, "clf.cache_features: no %.1f GB for the head's features; the "
                 "head goes on with a forward pass per step", 4.0 * rows * t->ro.features / 1e9);
    }
    return FF_OK;
}

/* The softmax head goes on from the model's, or starts fresh (and says so) if the
 * model has none of this shape (eval.softmax was off, or a version 1 model file) or
 * its optimiser state is another optimiser's (clf.optimizer changed). */
static void restore_head(ff_trainer *t, const ff_checkpoint *ck, ff_info_fn info, void *ctx)
{
    if (ck->n_head != t->ro.n_params || ck->n_head_state != ff_optim_state_len(&t->ro.opt)) {
        note(info, ctx,
             "softmax readout: the model holds no head of %zu weights; a new head starts "
             "from zero", t->ro.n_params);
        return;
    }
    if (ck->cfg.clf.optimizer != t->cfg.clf.optimizer) {
        note(info, ctx,
             "softmax readout: the model's head was trained with another clf.optimizer; a new "
             "head starts from zero");
        return;
    }
    memcpy(t->ro.params, ck->head, sizeof(float) * ck->n_head);
    memcpy(t->ro.opt.state, ck->head_state, sizeof(float) * ck->n_head_state);
    t->ro.opt.t = ck->head_t;
}

/* 1 if order[0..n) is a permutation of 0..n-1 */
static int is_permutation(const int *order, int n, int *seen)
{
    memset(seen, 0, sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        if (order[i] < 0 || order[i] >= n || seen[order[i]])
            return 0;
        seen[order[i]] = 1;
    }
    return 1;
}

int ff_trainer_restore(ff_trainer *t, const ff_checkpoint *ck, ff_info_fn info, void *info_ctx,
                       ff_err *err)
{
    if (ck->n_params != t->net.n_params || ck->n_state != ff_optim_state_len(&t->opt) ||
        ck->n_aux != t->net.n_aux)
        return ff_err_set(err, FF_ERR_USAGE,
                          "cannot resume: the model has %llu parameters, %llu optimiser values "
                          "and %llu running statistics, the config builds %zu, %zu and %zu",
                          (unsigned long long)ck->n_params, (unsigned long long)ck->n_state,
                          (unsigned long long)ck->n_aux, t->net.n_params,
                          ff_optim_state_len(&t->opt), t->net.n_aux);
    if (ck->epoch < 0 || ck->epoch > t->cfg.train.epochs || ck->step < 0 || ck->opt_t < 0)
        return ff_err_set(err, FF_ERR_USAGE,
                          "cannot resume: the model is at epoch %d, step %lld of a run of %d "
                          "epochs", ck->epoch, (long long)ck->step, t->cfg.train.epochs);
    if (ck->batch < 0 || (ck->batch > 0 && (ck->n_order != t->train.n ||
                                            ck->batch >= t->n_batches)))
        return ff_err_set(err, FF_ERR_USAGE,
                          "cannot resume mid-epoch: the training set or batch size changed");
    if (ck->n_order == t->train.n && ck->n_order > 0 &&
        !is_permutation(ck->order, ck->n_order, t->scratch_order))
        return ff_err_set(err, FF_ERR_USAGE,
                          "cannot resume: the model's sample order is not a permutation of the "
                          "%d training images", t->train.n);
    memcpy(t->net.params, ck->params, sizeof(float) * t->net.n_params);
    memcpy(t->opt.state, ck->state, sizeof(float) * ck->n_state);
    memcpy(t->net.aux, ck->aux, sizeof(float) * ck->n_aux);
    t->n_stats_final = 0; /* the saved statistics may be running averages: computed anew */
    t->feat_cache_valid = 0;
    memset(t->goodness_kept, 0, sizeof t->goodness_kept);
    if (ck->n_order == t->train.n)
        memcpy(t->order, ck->order, sizeof(int) * (size_t)t->train.n);
    t->opt.t = ck->opt_t;
    if (t->cfg.eval.softmax)
        restore_head(t, ck, info, info_ctx);
    t->rng = ck->rng;
    t->step = ck->step;
    t->epoch = ck->epoch;
    t->batch_in_epoch = ck->batch;
    return FF_OK;
}

void ff_trainer_free(ff_trainer *t)
{
    free(t->x);
    free(t->scores);
    free(t->layer_scores);
    free(t->order);
    free(t->scratch_order);
    free(t->labels);
    free(t->candidates);
    free(t->aug);
    free(t->feat_cache);
    ff_hybrid_free(&t->hybrids);
    ff_readout_free(&t->ro);
    ff_optim_free(&t->opt);
    ff_recurrent_free(&t->rec);
    ff_net_free(&t->net);
    ff_dataset_free(&t->train);
    ff_dataset_free(&t->val);
    ff_dataset_free(&t->test);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- one batch */

/* This process's rows of each batch: [*first, *first + return) (all of them alone). */
static int share_of(const ff_trainer *t, int *first)
{
    *first = t->peers ? t->peers->first : 0;
    return t->peers ? t->peers->rows : t->batch;
}

/* model.recurrent: the pass of the recurrent net, the labels top_pos[0, npos) and
 * top_neg[0, nneg) clamped at the top of the rows; its per-layer and per-iteration terms
 * added to st */
static void recurrent_pass(ff_trainer *t, const uint8_t *top_pos, const uint8_t *top_neg,
                           int npos, int nneg, ff_step_stats *st)
{
    ff_layer_loss iters[FF_MAX_ITERS + 1][FF_MAX_LAYERS], r[FF_MAX_LAYERS];
    if (npos)
        memcpy(t->rec.top, top_pos, (size_t)npos);
    if (nneg)
        memcpy(t->rec.top + npos, top_neg, (size_t)nneg);
    ff_recurrent_ff_grads(&t->rec, &t->net, &t->objective, t->x, t->rec.top, npos, nneg,
                          1.0f / (float)t->batch, iters, r);
    st->n_iters = t->rec.iterations + 1;
    for (int l = 0; l < t->net.n_layers; l++) {
        st->loss_pos[l] += r[l].loss_pos;
        st->loss_neg[l] += r[l].loss_neg;
        st->g_pos[l] += r[l].g_pos;
        st->g_neg[l] += r[l].g_neg;
        for (int k = 0; k < st->n_iters; k++) {
            st->iter_g_pos[k][l] += iters[k][l].g_pos;
            st->iter_g_neg[k][l] += iters[k][l].g_neg;
        }
    }
}

/* One FF pass over the rows of t->x (npos + nneg of this process's rows; labels: the
 * classes of the positive rows; top_pos / top_neg: the labels the recurrent net clamps);
 * adds the per-layer terms to st. A pipeline stage takes its first layer's input from
 * the stage before and hands its last layer's input on. */
static void ff_pass(ff_trainer *t, const uint8_t *labels, const uint8_t *top_pos,
                    const uint8_t *top_neg, int npos, int nneg, ff_step_stats *st)
{
    if (t->rec.active) {
        recurrent_pass(t, top_pos, top_neg, npos, nneg, st);
        return;
    }
    ff_layer_loss r[FF_MAX_LAYERS];
    const ff_trainer_peers *P = t->peers;
    int l0 = 0, l1 = t->net.n_layers;
    if (P && P->layer_end > 0) {
        l0 = P->layer_first;
        l1 = P->layer_end;
    }
    const size_t rows = (size_t)(npos + nneg);
    if (l0 > 0)
        P->recv(P->ctx, t->net.in[l0], rows * (size_t)ff_shape_dim(t->net.layers[l0].in));
    if (l0 == 0 && l1 == t->net.n_layers)
        ff_net_ff_grads(&t->net, &t->objective, t->x, labels, npos, nneg,
                        1.0f / (float)t->batch, r);
    else
        ff_net_ff_grads_layers(&t->net, &t->objective, t->x, labels, l0, l1, npos, nneg,
                               1.0f / (float)t->batch, r);
    if (l1 < t->net.n_layers) {
        ff_net_hand_on(&t->net, l1, (int)rows);
        P->send(P->ctx, t->net.in[l1], rows * (size_t)ff_shape_dim(t->net.layers[l1].in));
    }
    for (int l = l0; l < l1; l++) {
        st->loss_pos[l] += r[l].loss_pos;
        st->loss_neg[l] += r[l].loss_neg;
        st->g_pos[l] += r[l].g_pos;
        st->g_neg[l] += r[l].g_neg;
    }
}

int ff_trainer_learning_ranges(const ff_trainer *t, size_t lo, size_t hi,
                               size_t off[FF_MAX_LAYERS], size_t n[FF_MAX_LAYERS])
{
    int runs = 0;
    size_t end = 0; /* of the last run */
    for (int l = 0; l < t->net.n_layers; l++) {
        const ff_layer *L = &t->net.layers[l];
        const size_t a = L->param_off > lo ? L->param_off : lo;
        const size_t b0 = L->param_off + ff_layer_n_params(L), b = b0 < hi ? b0 : hi;
        if (t->net.frozen[l] || a >= b)
            continue;
        if (runs > 0 && end == a) { /* adjacent: one run */
            n[runs - 1] += b - a;
        } else {
            off[runs] = a;
            n[runs++] = b - a;
        }
        end = b;
    }
    return runs;
}

/* The optimiser step after a pass: on the summed gradients (data parallel), on
 * this stage's layers only (pipeline). */
static void update(ff_trainer *t, float lr)
{
    const ff_trainer_peers *P = t->peers;
    if (P && P->update) { /* data parallel on one node: each process steps its shard */
        P->update(P->ctx, lr);
        return;
    }
    if (P && P->before_update)
        P->before_update(P->ctx);
    if (P && P->layer_end > 0) {
        const ff_layer *a = &t->net.layers[P->layer_first], *b = &t->net.layers[P->layer_end - 1];
        ff_optim_step_range(&t->opt, t->net.params, t->net.grads, lr, a->param_off,
                            b->param_off + ff_layer_n_params(b) - a->param_off);
    } else if (t->n_frozen > 0) { /* the runs of layers still learning */
        size_t off[FF_MAX_LAYERS], n[FF_MAX_LAYERS];
        const int runs = ff_trainer_learning_ranges(t, 0, t->net.n_params, off, n);
        ff_optim_step_ranges(&t->opt, t->net.params, t->net.grads, lr, off, n, runs);
    } else {
        ff_optim_step(&t->opt, t->net.params, t->net.grads, lr);
    }
}

/* net.frozen from each layer's train_epochs at the current epoch (t->n_frozen: how many) */
static void freeze_layers(ff_trainer *t)
{
    t->n_frozen = 0;
    for (int l = 0; l < t->net.n_layers; l++) {
        const int n = t->net.layers[l].train_epochs;
        t->net.frozen[l] = n > 0 && t->epoch >= n;
        t->n_frozen += t->net.frozen[l];
    }
}

/* What the softmax readout sees: the neutral label (supervised) or the image alone. */
static ff_readout_input readout_input(const ff_trainer *t, const ff_dataset *ds)
{
    return (ff_readout_input){.ds = ds, .neutral = !t->unsupervised,
                              .embed = t->cfg.model.label_embedding};
}

/* scores[i, k] = the softmax head's logit k for image idx[i], i < n: one neutral-label pass */
static void head_logits(ff_trainer *t, const int *idx, int n, float *scores)
{
    const ff_readout_input in = readout_input(t, &t->train);
    ff_readout_scores(&t->ro, &t->net, t->ro_layers, t->ro_n, &in, idx, n, t->x, scores);
}

/* scores[i, k] = summed layer logits with label k for the train.hard_candidates wrong
 * labels the softmax head ranks highest, -INFINITY for the other labels (i < n) */
static void candidate_scores(ff_trainer *t, const int *idx, const uint8_t *truth, int n,
                             float *scores, uint8_t *candidates)
{
    const int m = t->cfg.train.hard_candidates;
    float *g = t->scores + (size_t)t->batch * FF_NUM_CLASSES; /* [n, m]; scores holds 20 B floats */
    head_logits(t, idx, n, scores);
    ff_embed_top_wrong_labels(truth, scores, n, m, candidates);
    ff_eval_goodness_scores_of(&t->net, t->cfg.model.label_embedding, &t->train, idx, n,
                               candidates, m, 1, t->x, g);
    for (int i = 0; i < n * FF_NUM_CLASSES; i++)
        scores[i] = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int q = 0; q < m; q++)
            scores[(size_t)i * FF_NUM_CLASSES + candidates[(size_t)i * m + q]] = g[(size_t)i * m + q];
}

/* model.recurrent: scores[i, k] = the recurrent goodness readout's logits (slope-weighted,
 * averaged over its iterations) of training image idx[i] with label k, i < n */
static void recurrent_train_scores(ff_trainer *t, const int *idx, int n, float *scores)
{
    const size_t dim = ff_dataset_dim(&t->train);
    for (int i = 0; i < n; i++)
        memcpy(t->x + (size_t)i * dim, t->train.images + (size_t)idx[i] * dim,
               sizeof(float) * dim);
    ff_recurrent_scores(&t->rec, &t->net, t->x, n, 1, scores, NULL);
}

/* The wrong labels of the batch. Hard ones: this process scores its rows, the
 * scores of every process's rows are gathered, then the draw takes the whole batch. */
static void choose_negative_labels(ff_trainer *t, const int *idx, const uint8_t *truth,
                                   uint8_t *neg)
{
    const ff_config *cfg = &t->cfg;
    if (cfg->train.negatives == FF_NEG_HARD) {
        int f;
        const int n = share_of(t, &f);
        float *scores = t->scores + (size_t)f * FF_NUM_CLASSES;
        if (cfg->train.hard_scores == FF_HARD_SOFTMAX)
            head_logits(t, idx + f, n, scores);
        else if (cfg->train.hard_candidates > 0)
            candidate_scores(t, idx + f, truth + f, n, scores,
                             t->candidates + (size_t)f * cfg->train.hard_candidates);
        else if (t->rec.active)
            recurrent_train_scores(t, idx + f, n, scores);
        else
            ff_eval_goodness_scores(&t->net, cfg->model.label_embedding, &t->train, idx + f, n, 1,
                                    t->x, scores);
        if (t->peers && t->peers->gather)
            t->peers->gather(t->peers->ctx, t->scores, FF_NUM_CLASSES);
        ff_embed_negatives_hard(&t->rng, truth, t->scores, t->batch, cfg->train.hard_temperature,
                                neg);
    } else {
        ff_embed_negatives_random(&t->rng, truth, t->batch, neg);
    }
}

/* This process's rows of the batch with labels embedded (supervised), or the images
 * alone (unsupervised: labels NULL; `negative` picks the hybrids instead). */
static void embed(ff_trainer *t, const int *idx, const uint8_t *labels, int negative, float *out)
{
    const ff_dataset *ds = &t->train;
    const float *images = negative && t->unsupervised ? t->hybrids.images : ds->images;
    int f;
    const int n = share_of(t, &f);
    if (t->peers && t->peers->layer_first > 0)
        return; /* a later pipeline stage receives its input */
    ff_embed_batch_aug(t->cfg.model.label_embedding, images, ds->shape, idx + f,
                       t->unsupervised ? NULL : labels + f, t->aug ? t->aug + f : NULL, n, out);
}

/* The head's learning rate now: clf.lr, scaled by the schedule's factor at the net's
 * step with clf.lr_schedule (as optimizer.lr is). */
static float head_lr(const ff_trainer *t)
{
    const ff_config *cfg = &t->cfg;
    return cfg->clf.lr_schedule ? cfg->clf.lr * ff_optim_schedule_scale(cfg, t->step, t->total_steps)
                                : cfg->clf.lr;
}

/* cache = the head's features of every image of ds, in index order, for the net as it is */
static void fill_features(ff_trainer *t, const ff_dataset *ds, float *cache)
{
    const size_t F = (size_t)t->ro.features;
    const ff_readout_input in = readout_input(t, ds);
    const int rows = t->net.max_batch < t->ro.max_batch ? t->net.max_batch : t->ro.max_batch;
    for (int s = 0; s < ds->n; s += rows) {
        const int m = ds->n - s < rows ? ds->n - s : rows;
        for (int i = 0; i < m; i++)
            t->scratch_order[i] = s + i;
        ff_readout_make_input(&t->ro, &in, t->scratch_order, m, t->x);
        ff_net_forward(&t->net, t->x, m);
        ff_readout_features(&t->net, t->ro_layers, t->ro_n, m, cache + (size_t)s * F);
    }
}

static ff_dataset set_share(const ff_trainer *t, ff_eval_set set);

/* clf.cache_features: 1 if the cache holds the head's features of every training image
 * (and of this process's share of the validation and test images, t->set_feat_cache)
 * for the net as it is, filled first if it is stale: every image in index order, in chunks of
 * the net's rows, so its floats depend only on the weights and the evaluation statistics
 * (a resumed run fills it alike); 0: no cache. Only while the net does not learn (every
 * layer frozen, or the extra head epochs of an evaluation). Uses t->scratch_order. */
static int feature_cache_ready(ff_trainer *t)
{
    if (!t->feat_cache)
        return 0;
    if (!t->feat_cache_valid) {
        fill_features(t, &t->train, t->feat_cache);
        for (int s = 0; s < FF_SET_COUNT; s++) {
            const ff_dataset share = set_share(t, (ff_eval_set)s);
            fill_features(t, &share, t->set_feat_cache[s]);
        }
        t->feat_cache_valid = 1;
    }
    return 1;
}

/* ro.feat = the cached features of images idx[0, m) */
static void gather_features(ff_trainer *t, const int *idx, int m)
{
    const size_t F = (size_t)t->ro.features;
    for (int i = 0; i < m; i++)
        memcpy(t->ro.feat + (size_t)i * F, t->feat_cache + (size_t)idx[i] * F, sizeof(float) * F);
}

/* every layer frozen (clf.cache_features): images idx[0, batch)'s features into ro.feat
 * from the cache; 0: no cache (go on without) */
static int cached_features(ff_trainer *t, const int *idx)
{
    if (t->n_frozen < t->net.n_layers || !feature_cache_ready(t))
        return 0;
    gather_features(t, idx, t->batch);
    return 1;
}

/* One step of the softmax head on the batch's images (after the FF step, the
 * net unchanged by it): a neutral-label forward pass, then the head's optimiser
 * step on the normalised activities. The head uses no RNG, so it never changes the
 * FF training run unless its logits draw the negatives (train.hard_scores softmax).
 * Data parallel: every process takes the same whole-batch step. Returns the head's
 * loss on the batch. */
static float readout_step(ff_trainer *t, const int *idx)
{
    if (t->head_reuses_pass) { /* the FF pass's activations: no second forward pass */
        ff_readout_features(&t->net, t->ro_layers, t->ro_n, t->batch, t->ro.feat);
        return ff_readout_train_batch(&t->ro, t->ro.feat, t->labels, t->batch, head_lr(t));
    }
    if (cached_features(t, idx))
        return ff_readout_train_batch(&t->ro, t->ro.feat, t->labels, t->batch, head_lr(t));
    ff_readout_input tr = readout_input(t, &t->train);
    return ff_readout_train_epoch(&t->ro, &t->net, t->ro_layers, t->ro_n, &tr, idx, t->batch,
                                  t->batch, head_lr(t), t->x);
}

/* Data parallel: the step's terms summed over the processes (goodness means
 * weighted by each process's share of the batch). */
static void sum_stats(ff_trainer *t, ff_step_stats *st)
{
    const ff_trainer_peers *P = t->peers;
    if (!P || !P->sum || P->layer_end > 0)
        return;
    const int L = st->n_layers;
    const double w = (double)P->rows / t->batch;
    double v[4 * FF_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        v[l] = st->loss_pos[l];
        v[L + l] = st->loss_neg[l];
        v[2 * L + l] = st->g_pos[l] * w;
        v[3 * L + l] = st->g_neg[l] * w;
    }
    P->sum(P->ctx, v, 4 * L);
    for (int l = 0; l < L; l++) {
        st->loss_pos[l] = v[l];
        st->loss_neg[l] = v[L + l];
        st->g_pos[l] = v[2 * L + l];
        st->g_neg[l] = v[3 * L + l];
    }
    for (int k = 0; k < st->n_iters; k++) { /* model.recurrent: goodness per iteration */
        for (int l = 0; l < L; l++) {
            v[l] = st->iter_g_pos[k][l] * w;
            v[L + l] = st->iter_g_neg[k][l] * w;
        }
        P->sum(P->ctx, v, 2 * L);
        for (int l = 0; l < L; l++) {
            st->iter_g_pos[k][l] = v[l];
            st->iter_g_neg[k][l] = v[L + l];
        }
    }
}

void ff_trainer_step(ff_trainer *t, const int *idx, ff_step_stats *st)
{
    const ff_config *cfg = &t->cfg;
    const float lr = ff_optim_schedule_lr(cfg, t->step, t->total_steps);
    const int B = t->batch;
    memset(st, 0, sizeof *st);
    st->n_layers = t->net.n_layers;
    st->lr = lr;
    st->head_loss = -1.0f;
    uint8_t *pos = t->labels, *neg = t->labels + B;
    for (int i = 0; i < B; i++)
        pos[i] = t->train.labels[idx[i]];
    const int competition = t->objective.loss == FF_LOSS_COMPETITION;
    if (!t->unsupervised && !competition)
        choose_negative_labels(t, idx, pos, neg);
    if (t->aug) /* one shift and flip per image, shared by its positive and negative copy */
        ff_embed_draw_aug(&t->rng, cfg->train.jitter, cfg->train.flip, B, t->aug);
    int f;
    const int n = share_of(t, &f);
    freeze_layers(t);
    t->head_reuses_pass = 0;
    if (t->n_frozen < t->net.n_layers)
        t->feat_cache_valid = 0; /* this step changes the features */
    if (t->n_frozen == t->net.n_layers) {
        /* every layer has stopped learning: only the softmax head below */
    } else if (competition) { /* no negative data: one pass of the images, classes beside them */
        embed(t, idx, pos, 0, t->x);
        ff_pass(t, pos + f, NULL, NULL, n, 0, st);
        update(t, lr);
        /* the pass saw the images as the head does (no label in them) and reached the top
         * layer: the head learns from its activations (before this step's update, as
         * CwComp's classifier does), as one process holding the whole batch */
        t->head_reuses_pass = !t->peers && !t->net.frozen[t->net.n_layers - 1];
    } else if (cfg->train.passes == FF_PASS_JOINT) {
        embed(t, idx, pos, 0, t->x);
        embed(t, idx, neg, 1, t->x + (size_t)n * t->in_dim);
        ff_pass(t, NULL, pos + f, neg + f, n, n, st);
        update(t, lr);
    } else {
        embed(t, idx, pos, 0, t->x);
        ff_pass(t, NULL, pos + f, NULL, n, 0, st);
        update(t, lr);
        embed(t, idx, neg, 1, t->x);
        ff_pass(t, NULL, NULL, neg + f, 0, n, st);
        update(t, lr);
    }
    sum_stats(t, st);
    if (cfg->eval.softmax)
        st->head_loss = readout_step(t, idx);
    t->step++;
}

int ff_trainer_next(ff_trainer *t, ff_step_stats *st)
{
    if (t->batch_in_epoch == 0) /* the order depends only on the RNG: a resumed run repeats it */
        ff_run_order_draw(&t->rng, t->order, t->train.n, t->cfg.train.shuffle);
    ff_trainer_step(t, t->order + (size_t)t->batch_in_epoch * t->batch, st);
    if (++t->batch_in_epoch < t->n_batches)
        return 0;
    t->batch_in_epoch = 0;
    t->epoch++;
    return 1;
}

/* ---------------------------------------------------------------- evaluation */

/* The images of a set this process evaluates: all, or its share (a view, no copy). */
static ff_dataset set_share(const ff_trainer *t, ff_eval_set set)
{
    ff_dataset v = set == FF_SET_VAL ? t->val : t->test;
    const ff_trainer_peers *P = t->peers;
    if (P && P->sum) {
        const int first = set == FF_SET_VAL ? P->val_first : P->test_first;
        v.n = set == FF_SET_VAL ? P->val_rows : P->test_rows;
        v.images += (size_t)first * ff_dataset_dim(&v);
        v.labels += first;
    }
    return v;
}

/* Images of a whole set (every process's share). */
static int set_size(const ff_trainer *t, ff_eval_set set)
{
    return set == FF_SET_VAL ? t->val.n : t->test.n;
}

/* Error fractions e[0, k) on this process's n images into the whole set's (counts
 * summed over the processes). */
static void whole_errors(const ff_trainer *t, double *e, int k, int n)
{
    const ff_trainer_peers *P = t->peers;
    if (!P || !P->sum)
        return;
    double v[FF_MAX_LAYERS + 2];
    FF_ASSERT(k <= FF_MAX_LAYERS + 1);
    for (int i = 0; i < k; i++)
        v[i] = (double)llround(e[i] * n);
    v[k] = (double)n;
    P->sum(P->ctx, v, k + 1);
    for (int i = 0; i < k; i++)
        e[i] = v[k] > 0 ? v[i] / v[k] : 0.0;
}

static double whole_error(const ff_trainer *t, double e, int n)
{
    whole_errors(t, &e, 1, n);
    return e;
}

/* the softmax head's wrong predictions, counted from the goodness readout's passes */
typedef struct head_count {
    ff_trainer *t;
    const uint8_t *labels; /* the share's */
    int64_t wrong;
} head_count;

static void count_head_chunk(void *ctx, ff_net *net, int start, int m)
{
    head_count *h = ctx;
    ff_trainer *t = h->t;
    h->wrong += ff_readout_wrong_in_net(&t->ro, net, t->ro_layers, t->ro_n, h->labels + start, m,
                                        NULL);
}

/* ff_trainer_goodness_errors; with fuse (the class-group readout: one pass an image) the
 * softmax head's wrong predictions counted from the same passes into t->fused_wrong */
static double goodness_errors(ff_trainer *t, ff_eval_set set, ff_set_errors *e,
                              int64_t *confusion, int fuse)
{
    if (set_size(t, set) == 0)
        return e->error_goodness = -1.0;
    const ff_dataset share = set_share(t, set);
    const int L = t->net.n_layers;
    double v[FF_MAX_LAYERS + 1];
    if (t->rec.active)
        v[0] = ff_recurrent_error(&t->rec, &t->net, share.images, share.labels, share.n, v + 1,
                                  confusion);
    else {
        head_count h = {t, share.labels, 0};
        const ff_eval_visit visit = {count_head_chunk, &h};
        v[0] = ff_eval_error_visit(&t->net, t->cfg.model.label_embedding, &share, 0, t->x,
                                   t->scores, t->layer_scores, v + 1, confusion,
                                   fuse ? &visit : NULL);
        t->fused_wrong[set] = h.wrong;
        t->fused_valid[set] = fuse;
    }
    whole_errors(t, v, L + 1, share.n);
    e->n_layers = L;
    memcpy(e->layer_error, v + 1, sizeof(double) * (size_t)L);
    return e->error_goodness = v[0];
}

double ff_trainer_goodness_errors(ff_trainer *t, ff_eval_set set, ff_set_errors *e,
                                  int64_t *confusion)
{
    return goodness_errors(t, set, e, confusion, 0);
}

double ff_trainer_goodness_error(ff_trainer *t, int64_t *confusion)
{
    ff_set_errors e;
    return ff_trainer_goodness_errors(t, FF_SET_TEST, &e, confusion);
}

/* A fresh head's lr (ffrun eval --softmax-epochs) at its step k of `total`: clf.lr, with
 * clf.lr_schedule scaled by the schedule's factor over the head's own steps (the net's
 * schedule squeezed into the head's epochs) */
static float fresh_head_lr(const ff_config *cfg, int64_t k, int64_t total)
{
    return cfg->clf.lr_schedule ? cfg->clf.lr * ff_optim_schedule_scale(cfg, k, total) : cfg->clf.lr;
}

/* The head trains `epochs` more epochs on the frozen net (ff_trainer_softmax_error). */
static void train_head(ff_trainer *t, int epochs, int fresh, uint64_t seed)
{
    const ff_config *cfg = &t->cfg;
    ff_readout_input tr = readout_input(t, &t->train);
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    if (fresh)
        ff_readout_reset(&t->ro);
    /* a fresh head's lr at its own step (fresh_head_lr); the head beside the net: its lr
     * at the net's step */
    const int n = t->train.n, per_epoch = (n + t->batch - 1) / t->batch;
    const int64_t head_steps = (int64_t)epochs * per_epoch;
    const int cached = epochs > 0 && feature_cache_ready(t); /* the net is fixed meanwhile */
    for (int e = 0; e < epochs; e++) {
        const int *order = t->scratch_order;
        ff_run_order_draw(&rng, t->scratch_order, n, 1);
        for (int s = 0; s < n; s += t->batch) {
            const int m = n - s < t->batch ? n - s : t->batch;
            const int64_t k = (int64_t)e * per_epoch + s / t->batch;
            const float lr = fresh ? fresh_head_lr(cfg, k, head_steps) : head_lr(t);
            if (!cached) { /* one batch: features by a forward pass */
                ff_readout_train_epoch(&t->ro, &t->net, t->ro_layers, t->ro_n, &tr, order + s, m,
                                       t->batch, lr, t->x);
                continue;
            }
            gather_features(t, order + s, m);
            for (int i = 0; i < m; i++)
                t->labels[i] = t->train.labels[order[s + i]];
            ff_readout_train_batch(&t->ro, t->ro.feat, t->labels, m, lr);
        }
    }
}

/* The head's error on a set as it is (-1: the set has no images). */
static double softmax_set_error(ff_trainer *t, ff_eval_set set, int64_t *confusion)
{
    if (set_size(t, set) == 0)
        return -1.0;
    const ff_dataset share = set_share(t, set);
    const ff_readout_input in = readout_input(t, &share);
    if (t->fused_valid[set] && !confusion) /* counted in the goodness readout's passes */
        return whole_error(t, share.n ? (double)t->fused_wrong[set] / share.n : 0.0, share.n);
    /* the images' features from the cache while it holds the net as it is */
    double err = t->feat_cache_valid
                     ? ff_readout_error_features(&t->ro, t->set_feat_cache[set], share.labels,
                                                 share.n, confusion)
                     : ff_readout_error(&t->ro, &t->net, t->ro_layers, t->ro_n, &in, 0, t->x,
                                        confusion);
    return whole_error(t, err, share.n);
}

double ff_trainer_softmax_error_on(ff_trainer *t, ff_eval_set set, int epochs, int fresh,
                                   uint64_t seed, int64_t *confusion)
{
    train_head(t, epochs, fresh, seed);
    return softmax_set_error(t, set, confusion);
}

double ff_trainer_softmax_error(ff_trainer *t, int epochs, int fresh, uint64_t seed,
                                int64_t *confusion)
{
    return ff_trainer_softmax_error_on(t, FF_SET_TEST, epochs, fresh, seed, confusion);
}

/* How many bottom layers have finished their train_epochs after `epochs` epochs, each
 * with every layer below it: their weights (and inputs) never change again. */
static int final_layers(const ff_trainer *t, int epochs)
{
    int n = 0;
    while (n < t->net.n_layers && t->net.layers[n].train_epochs > 0 &&
           epochs >= t->net.layers[n].train_epochs)
        n++;
    return n;
}

/* competition_norm batch: every layer's channel statistics computed afresh for the
 * current weights over the first FF_EVAL_STATS_IMAGES training images ("precise batch
 * norm"), so evaluation reads neither averages that lag the weights of a fast-moving
 * run nor those of a layer frozen since (model.layers[].train_epochs). No RNG, the same
 * images every time: a resumed run evaluates as the uninterrupted one. Layers whose
 * statistics were computed once they and every layer below had finished learning
 * (t->n_stats_final) keep them: the same floats a new computation would give (a
 * training pass leaves a frozen layer's statistics alone). */
#define FF_EVAL_STATS_IMAGES 10000
void ff_trainer_refresh_stats(ff_trainer *t)
{
    ff_net *net = &t->net;
    if (!net->comp_stats[0])
        return;
    const int L = net->n_layers, final_now = final_layers(t, t->epoch);
    /* with model.hand_on batch layer by layer from the first not yet final; otherwise
     * one pass for all, unless every layer is final */
    const int a0 = net->hand_on_batch ? t->n_stats_final : t->n_stats_final == L ? L : 0;
    if (a0 == L)
        return;
    size_t total = 0;
    for (int l = 0; l < net->n_layers; l++)
        total += 2 * (size_t)net->layers[l].out.c;
    double *sums = calloc(total, sizeof(double));
    if (!sums)
        return; /* out of memory: the running averages stay */
    FF_ASSERT((size_t)t->in_dim == ff_dataset_dim(&t->train)); /* label_embedding none */
    const int n = t->train.n < FF_EVAL_STATS_IMAGES ? t->train.n : FF_EVAL_STATS_IMAGES;
    /* model.hand_on batch: layer l's input depends on layer l - 1's statistics, so one
     * pass per layer, each through that layer only; otherwise one pass for all */
    const int step = net->hand_on_batch ? 1 : L;
    for (int a = a0; a < L; a += step) {
        const int b = a + step; /* the layers [a, b) whose statistics this pass takes */
        for (int s = 0; s < n; s += net->max_batch) {
            const int m = n - s < net->max_batch ? n - s : net->max_batch;
            memcpy(t->x, t->train.images + (size_t)s * ff_dataset_dim(&t->train),
                   sizeof(float) * m * t->in_dim);
            ff_net_forward_to(net, t->x, m, b);
            double *sl = sums;
            for (int l = 0; l < b; l++) {
                const ff_layer *Ly = &net->layers[l];
                if (l >= a) /* of what the loss reads: pooled with loss_after_pool */
                    ff_objective_comp_stats_add(ff_net_loss_out(net, l), m,
                                      ff_shape_dim(ff_net_loss_shape(net, l)), Ly->out.c,
                                      net->comp_scratch, sl);
                sl += 2 * (size_t)Ly->out.c;
            }
        }
        double *sl = sums;
        for (int l = 0; l < b; l++) {
            const ff_layer *Ly = &net->layers[l];
            const ff_shape s = ff_net_loss_shape(net, l);
            if (l >= a)
                ff_objective_comp_stats_set(net->comp_stats[l], sl, Ly->out.c, (double)n * s.h * s.w);
            sl += 2 * (size_t)Ly->out.c;
        }
    }
    free(sums);
    t->n_stats_final = final_now;
    t->feat_cache_valid = 0; /* the features read the statistics just computed */
}

/* 1 if the net can no longer change: every layer past its train_epochs and, with batch
 * norm, their evaluation statistics computed since (ff_trainer_refresh_stats) */
static int net_fixed(const ff_trainer *t)
{
    const int L = t->net.n_layers;
    return final_layers(t, t->epoch) == L && (!t->net.comp_stats[0] || t->n_stats_final == L);
}

static void clear_errors(ff_set_errors *e)
{
    memset(e, 0, sizeof *e);
    e->error_goodness = e->error_softmax = e->main_error = -1.0;
}

/* The goodness readout's errors on a set; a net that no longer changes has the errors it
 * had: kept, not recomputed */
static void goodness_on(ff_trainer *t, ff_eval_set set, ff_set_errors *e, int fuse)
{
    const int fixed = net_fixed(t);
    if (fixed && t->goodness_kept[set])
        *e = t->goodness_final[set];
    else
        goodness_errors(t, set, e, NULL, fuse);
    t->goodness_final[set] = *e;
    t->goodness_kept[set] = fixed;
}

void ff_trainer_evaluate(ff_trainer *t, int epoch, unsigned sets, ff_eval_result *r)
{
    ff_set_errors *by_set[FF_SET_COUNT] = {&r->val, &r->test};
    ff_trainer_refresh_stats(t);
    for (int s = 0; s < FF_SET_COUNT; s++)
        clear_errors(by_set[s]);
    /* the softmax readout from the goodness readout's passes: one pass an image (class
     * groups, no label in the input), the head as it stands (no extra epochs first), in
     * the same chunks its own passes take, and no feature cache to read instead */
    const int fuse = t->cfg.eval.softmax && t->cfg.eval.readout_epochs == 0 &&
                     t->cfg.model.label_embedding == FF_EMBED_NONE && !t->rec.active &&
                     t->ro.max_batch >= t->net.max_batch && !t->feat_cache_valid;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        t->fused_valid[s] = 0;
        if (!(sets >> s & 1) || set_size(t, (ff_eval_set)s) == 0 || t->unsupervised)
            continue;
        goodness_on(t, (ff_eval_set)s, by_set[s], fuse);
        by_set[s]->main_error = by_set[s]->error_goodness;
    }
    if (!t->cfg.eval.softmax)
        return;
    /* eval.readout_epochs more head epochs first, on a stream of their own */
    train_head(t, t->cfg.eval.readout_epochs, 0,
               t->cfg.seed ^ (0xd1b54a32d192ed03ull * (uint64_t)epoch));
    for (int s = 0; s < FF_SET_COUNT; s++) {
        if (!(sets >> s & 1))
            continue;
        ff_set_errors *e = by_set[s];
        e->error_softmax = softmax_set_error(t, (ff_eval_set)s, NULL);
        if (e->main_error < 0)
            e->main_error = e->error_softmax;
    }
    for (int s = 0; s < FF_SET_COUNT; s++) /* good for this evaluation only */
        t->fused_valid[s] = 0;
}

/* ---------------------------------------------------------------- saving */

int ff_trainer_save(const ff_trainer *t, const char *path, const char *run_dir, ff_err *err)
{
    ff_checkpoint_state st = {.cfg = &t->cfg, .net = &t->net, .opt = &t->opt, .rng = &t->rng,
                              .epoch = t->epoch, .batch = t->batch_in_epoch, .step = t->step,
                              .run_dir = run_dir ? run_dir : "", .order = t->order,
                              .n_order = t->train.n,
                              .head = t->cfg.eval.softmax ? &t->ro : NULL,
                              .record = t->record};
    return ff_checkpoint_save(path, &st, err);
}

static int all_finite(const float *v, size_t n)
{
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += v[i] * 0.0f; /* NaN or inf anywhere makes acc NaN */
    return acc == 0.0f;
}

int ff_trainer_finite(const ff_trainer *t)
{
    return all_finite(t->net.params, t->net.n_params) &&
           all_finite(t->opt.state, ff_optim_state_len(&t->opt)) &&
           all_finite(t->net.aux, t->net.n_aux) &&
           (!t->cfg.eval.softmax || all_finite(t->ro.params, t->ro.n_params));
}
