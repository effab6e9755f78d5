/* trainer.h - the Forward-Forward trainer as a library: one batch at a time.
 *
 * An ff_trainer holds everything one FF training run needs in memory (data,
 * net, optimiser, RNG, negatives, the softmax readout's head, batch buffers)
 * and nothing it writes to disk: no event file, no progress, no model path.
 * Whoever drives it (`ffrun`'s run loop through src/train.c, tools/ff-bench.c,
 * tests, MPI ranks) calls ff_trainer_next or ff_trainer_step batch by batch,
 * ff_trainer_evaluate when it wants test errors and ff_trainer_save when it
 * wants a model file, and does the logging itself from the statistics each
 * step returns.
 *
 * Modes: supervised and unsupervised_backbone (the classifier on a frozen
 * backbone has its own trainer, include/ff/clf_trainer.h).
 *
 * One batch (ff_trainer_step): the images' labels, the negative labels
 * (random, or hard: drawn from the model's own scores, never the true label),
 * the augmentation (jitter shift and flip, one per image, shared by its positive and
 * negative copies),
 * then with train.passes = joint one FF pass over positives and negatives and
 * one optimiser step, with alternate a positive pass and step, then a negative
 * pass and step; each layer's gradient stops at its own input. With
 * eval.softmax the head then takes one step of its own optimiser (clf.*) on the
 * same images (neutral label), the FF weights untouched; with train.loss
 * competition (no label in the input) it learns from the FF pass's own
 * activations, before that pass's update, unless the top layer is frozen
 * (model.layers[].train_epochs) or the batch is split over processes. Layers past
 * their train_epochs run forward only. The RNG is used in exactly this order, so
 * a run is determined by its seed, and a restored trainer continues the stream.
 *
 * Ownership: ff_trainer_create fills a caller-provided struct and allocates
 * its members; ff_trainer_free releases them (safe on a zeroed struct). The
 * struct's fields are readable by callers (loggers read net, train, step...);
 * only the functions here change them. */
#ifndef FF_TRAINER_H
#define FF_TRAINER_H

#include <stdint.h>

#include "ff/config.h"
#include "ff/data.h"
#include "ff/err.h"
#include "ff/hybrid.h"
#include "ff/net.h"
#include "ff/optim.h"
#include "ff/readout.h"
#include "ff/recurrent.h"
#include "ff/rng.h"

struct ff_checkpoint;

/* one-line notes for the user ("negatives: loaded from cache ...") */
typedef void (*ff_info_fn)(void *ctx, const char *message);

/* What one batch did: each layer's FF terms, summed over the batch's passes
 * (alternate: the positive pass's loss_pos/g_pos plus the negative pass's
 * loss_neg/g_neg). Doubles so that a logger summing many batches loses nothing. */
typedef struct ff_step_stats {
    int n_layers;
    double loss_pos[FF_MAX_LAYERS], loss_neg[FF_MAX_LAYERS];
    double g_pos[FF_MAX_LAYERS], g_neg[FF_MAX_LAYERS];
    int n_iters;          /* model.recurrent: iterations + 1 rows of iter_g_pos / iter_g_neg
                             (0: a feed-forward net); loss_* above are then the sums and g_*
                             the means over the iterations 1..T */
    double iter_g_pos[FF_MAX_ITERS + 1][FF_MAX_LAYERS]; /* [t][l]: layer l's mean goodness */
    double iter_g_neg[FF_MAX_ITERS + 1][FF_MAX_LAYERS]; /* at iteration t (0: bottom-up pass) */
    float lr;             /* the learning rate the FF step used */
    float head_loss;      /* eval.softmax: the head's mean cross-entropy on the batch before
                             its step; -1 without a head */
} ff_step_stats;

/* The errors on one held-out set (fractions in [0, 1]; -1 where the readout does not
 * apply or the set was not evaluated). */
typedef struct ff_set_errors {
    double error_goodness;   /* supervised: goodness per label */
    double error_softmax;    /* eval.softmax: the linear head on the normalised activities */
    double main_error;       /* the one that picks the best model: goodness if supervised,
                                else softmax; -1 if neither applies */
    int n_layers;            /* supervised: the trainable layers of layer_error (0: none) */
    double layer_error[FF_MAX_LAYERS]; /* each layer's own goodness readout (eval.layers [l]) */
} ff_set_errors;

/* What ff_trainer_evaluate measured on the validation images and the test set. */
typedef struct ff_eval_result {
    ff_set_errors val, test;
} ff_eval_result;

/* How a trainer shares its work with other processes (src/parallel.c fills it;
 * a trainer alone has none: ff_trainer.peers NULL, and runs as documented above).
 * Data parallel: every process draws the whole batch's labels, negatives and
 * shifts from the shared RNG, trains on its rows [first, first + rows) with the
 * loss scale 1 / batch, and before each optimiser step before_update sums the
 * gradients; hard-negative scores of the shares are gathered before the draw;
 * step statistics and test-error counts are summed. Layer pipeline: the process
 * trains layers [layer_first, layer_end), receiving the first one's normalised
 * input (recv) and handing on the last one's (send); only its layers' statistics
 * are set. */
typedef struct ff_trainer_peers {
    void *ctx;
    int first, rows;             /* this process's rows of each batch (data) */
    int test_first, test_rows;   /* its images of the test set */
    int val_first, val_rows;     /* its validation images */
    int layer_first, layer_end;  /* the layers it trains (pipeline; else all) */
    void (*sum)(void *ctx, double *v, int n);           /* summed over processes, in place */
    void (*gather)(void *ctx, float *v, int row_floats); /* every process's rows of a batch */
    void (*before_update)(void *ctx);                   /* gradients summed (data) */
    void (*update)(void *ctx, float lr); /* data: sums and optimiser step in one (replaces
                                            before_update and the trainer's whole step) */
    void (*recv)(void *ctx, float *v, size_t n);        /* pipeline: input of layer_first */
    void (*send)(void *ctx, const float *v, size_t n);  /* pipeline: input of layer_end */
} ff_trainer_peers;

typedef struct ff_trainer {
    ff_config cfg;                 /* the trainer's own copy */
    ff_dataset train, val, test;   /* val: data.validation's images, held out of train
                                      (n 0: no split) */
    ff_split_info split;           /* how val was drawn */
    ff_shape in_shape;             /* what the net is fed: the embedded image */
    int in_dim;
    ff_net net;
    ff_objective objective;        /* the per-layer loss, chosen once from cfg */
    ff_recurrent rec;              /* model.recurrent: the states of the recurrent net (rec.active
                                      0: a feed-forward net); every pass, evaluation and
                                      hard-negative score goes through it */
    ff_optim opt;
    ff_rng rng;                    /* the run's one random stream */
    int unsupervised;              /* unsupervised_backbone: hybrid negatives, no labels */
    ff_hybrid_set hybrids;         /* negatives of the unsupervised backbone */
    ff_readout ro;                 /* softmax readout head (eval.softmax) */
    int ro_layers[FF_MAX_LAYERS], ro_n;
    int batch, n_batches;          /* images per batch, full batches per epoch */
    int64_t step, total_steps;     /* batches done in the run / planned */
    int epoch;                     /* epochs completed */
    int batch_in_epoch;            /* batches done in epoch `epoch + 1` */
    int n_frozen;                  /* layers past their train_epochs this step (net.frozen) */
    int n_stats_final;             /* the bottom layers whose evaluation statistics were
                                      computed after each of them (and every layer below)
                                      had finished its train_epochs: still exact, never
                                      computed again (ff_trainer_refresh_stats) */
    int head_reuses_pass;          /* this step's softmax head learns from the FF pass's
                                      activations (train.loss competition) */
    float *feat_cache;             /* clf.cache_features: [train.n, ro.features] the head's
                                      features of the training images, or NULL */
    float *set_feat_cache[FF_SET_COUNT]; /* then those of this process's share of the
                                      validation and the test images (the same allocation) */
    int feat_cache_valid;          /* 1: both hold them for the current weights and
                                      statistics (only once every layer is frozen) */
    int goodness_kept[FF_SET_COUNT]; /* 1: goodness_final[set] holds the goodness readout's
                                      errors on the set of the net as it stays (every layer
                                      past its train_epochs, their statistics final):
                                      evaluation reuses them instead of a pass over it */
    ff_set_errors goodness_final[FF_SET_COUNT];
    int64_t fused_wrong[FF_SET_COUNT]; /* the softmax head's wrong predictions on this
                                      process's share of the set, counted in the goodness
                                      readout's forward passes of the evaluation under way */
    int fused_valid[FF_SET_COUNT]; /* 1: fused_wrong[set] holds them (ff_trainer_evaluate) */
    float *x;            /* [net.max_batch, in_dim] embedded inputs (pos then neg for joint) */
    float *scores;       /* [net.max_batch * 10] goodness scores for eval / hard negatives */
    float *layer_scores; /* [net.n_layers * net.max_batch * 10] each layer's own (evaluation) */
    int *order;          /* the current epoch's sample order */
    int *scratch_order;  /* [train.n] orders of the readout's extra epochs */
    uint8_t *labels;     /* labels of the rows of x */
    uint8_t *candidates; /* [batch, hard_candidates] wrong labels to score (hard negatives) */
    ff_aug *aug;         /* [max_batch] the batch's jitter shifts and flips (NULL: neither) */
    const ff_trainer_peers *peers; /* NULL: alone */
    const char *record;  /* borrowed: the run record (JSON) its model files carry, NULL none */
} ff_trainer;

/* What a trainer allocates for cfg on training images of shape `image`, n_train of
 * them: the net's input shape (the embedded image), images per batch and the
 * rows of every activation buffer (a joint pos+neg batch, or ten labelled copies
 * of an evaluation chunk of 100 images; train.loss competition: two batches).
 * --dry-run reports memory from this. FF_ERR_USAGE if the images do not suit the
 * config. */
typedef struct ff_trainer_plan {
    ff_shape in_shape;
    int batch, max_batch;
} ff_trainer_plan;
int ff_trainer_plan_for(const ff_config *cfg, ff_shape image, int n_train, ff_trainer_plan *plan,
                        ff_err *err);

/* Loads the data, builds the net (initialised from cfg->seed), the optimiser,
 * the negatives (unsupervised: hybrids, made once and cached under data.cache)
 * and the head; cfg must be validated. info (may be NULL) gets one-line notes.
 * Errors: FF_ERR_USAGE (geometry, data that does not fit the config), FF_ERR_IO,
 * FF_ERR_FORMAT, FF_ERR_NOMEM. */
int ff_trainer_create(ff_trainer *t, const ff_config *cfg, ff_info_fn info, void *info_ctx,
                      ff_err *err);

/* Puts a created trainer where a model file left off: weights, optimiser, peer
 * means, head, RNG, step, epoch and position in the epoch (with its sample
 * order). Every count and index of the file is checked against the trainer
 * (FF_ERR_USAGE if the config builds another net or the data changed). */
int ff_trainer_restore(ff_trainer *t, const struct ff_checkpoint *ck, ff_info_fn info,
                       void *info_ctx, ff_err *err);

/* One batch on the training images idx[0..t->batch): the FF step and, with
 * eval.softmax, the head's step; t->step + 1. Does not move the epoch position. */
void ff_trainer_step(ff_trainer *t, const int *idx, ff_step_stats *st);

/* The next batch of the epoch: at its first batch the epoch's order is drawn
 * (shuffled from the RNG with train.shuffle), then ff_trainer_step on the
 * batch's images. Returns 1 if this batch completed the epoch (t->epoch + 1,
 * position back to 0), else 0. */
int ff_trainer_next(ff_trainer *t, ff_step_stats *st);

/* The parameters this step's optimiser step changes, clipped to [lo, hi): the runs of
 * adjacent layers that are not frozen (model.layers[].train_epochs), as off[i], n[i];
 * returns how many (0 to t->net.n_layers). Data parallel: each process's shard. */
int ff_trainer_learning_ranges(const ff_trainer *t, size_t lo, size_t hi,
                               size_t off[FF_MAX_LAYERS], size_t n[FF_MAX_LAYERS]);

/* Which sets ff_trainer_evaluate reads (bits). */
#define FF_EVAL_VAL (1 << FF_SET_VAL)
#define FF_EVAL_TEST (1 << FF_SET_TEST)

/* The errors of the readouts that apply on the sets asked (a set without images, e.g.
 * the validation set without data.validation, stays -1), after
 * ff_trainer_refresh_stats; supervised, also each trainable layer's own goodness
 * readout. The softmax readout first trains the head eval.readout_epochs more epochs on
 * the frozen net with its own RNG (seeded from the seed and `epoch`), once for every set
 * asked, so evaluating never changes the training run. */
void ff_trainer_evaluate(ff_trainer *t, int epoch, unsigned sets, ff_eval_result *r);

/* train.competition_norm batch: every layer's evaluation statistics (net.comp_stats)
 * computed afresh for the current weights over the first 10,000 training images, layer
 * after layer with model.hand_on batch; no RNG. Nothing for the other losses. */
void ff_trainer_refresh_stats(ff_trainer *t);

/* The goodness readout's test error over the whole test set; confusion (10x10,
 * [true][pred]) filled if not NULL. */
double ff_trainer_goodness_error(ff_trainer *t, int64_t *confusion);

/* The same on one set (-1 if it has no images), with every trainable layer's own error
 * into e->layer_error (e->error_goodness = the return value). */
double ff_trainer_goodness_errors(ff_trainer *t, ff_eval_set set, ff_set_errors *e,
                                  int64_t *confusion);

/* The softmax readout's test error (needs eval.softmax: the head). First the head
 * trains `epochs` more epochs on the frozen net (batches of t->batch, its own RNG
 * seeded with `seed`), from zero if `fresh`, else from where it is. Its lr: clf.lr,
 * with clf.lr_schedule scaled by the schedule's factor at the net's step, or for a
 * fresh head at its own step of its epochs x batches (the schedule over its epochs).
 * The FF weights and the run's RNG are untouched. */
double ff_trainer_softmax_error(ff_trainer *t, int epochs, int fresh, uint64_t seed,
                                int64_t *confusion);

/* The same on one set (-1 if it has no images). */
double ff_trainer_softmax_error_on(ff_trainer *t, ff_eval_set set, int epochs, int fresh,
                                   uint64_t seed, int64_t *confusion);

/* Writes a model file of the trainer's whole state (atomically) to path;
 * run_dir ("" if none) is recorded for --resume. */
int ff_trainer_save(const ff_trainer *t, const char *path, const char *run_dir, ff_err *err);

/* 1 if every parameter, optimiser value and peer mean is finite. */
int ff_trainer_finite(const ff_trainer *t);

void ff_trainer_free(ff_trainer *t);

#endif
