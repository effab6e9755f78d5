/* config.h - the resolved experiment configuration (what a YAML file describes).
 *
 * One schema table in src/config.c drives parsing (libyaml), validation,
 * defaults, `ffrun --help-config`, `--set key.path=value` overrides and the
 * markdown dump logged to TensorBoard. ff_config is a plain value: no heap
 * pointers, so it can be copied with `=` and stored verbatim in checkpoints
 * (the YAML text is stored too; see ff_config_to_yaml). */
#ifndef FF_CONFIG_H
#define FF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"

#define FF_MAX_LAYERS 8
#define FF_PATH_MAX 512
#define FF_NAME_MAX 64
#define FF_MAX_ITERS 32 /* model.recurrent.iterations at most */

/* Each enum ends with its count; the name tables (config_schema.c, layer.c,
 * objective.c) assert at compile time that they have exactly that many entries. */
typedef enum { FF_MODE_SUPERVISED, FF_MODE_UNSUP_BACKBONE, FF_MODE_UNSUP_CLF, FF_MODE_COUNT } ff_mode;
typedef enum { FF_LAYER_FC, FF_LAYER_CONV, FF_LAYER_LOCAL, FF_LAYER_POOL, FF_LAYER_KIND_COUNT } ff_layer_kind;
typedef enum { FF_POOL_MAX, FF_POOL_AVG, FF_POOL_COUNT } ff_pool_kind;
/* sgd: v = momentum v + g, params -= lr v (weight decay inside g); adam; sgd_smooth:
 * ffcode's smoothed gradient, d = momentum d + (1 - momentum) g, params -= lr (d +
 * weight_decay params) (weight decay outside the smoothing). include/ff/optim.h. */
typedef enum { FF_OPT_SGD, FF_OPT_ADAM, FF_OPT_SGD_SMOOTH, FF_OPT_COUNT } ff_opt_kind;
typedef enum { FF_SCHED_CONSTANT, FF_SCHED_LINEAR, FF_SCHED_COSINE, FF_SCHED_COUNT } ff_sched_kind;
typedef enum { FF_PASS_ALTERNATE, FF_PASS_JOINT, FF_PASS_COUNT } ff_pass_kind;
typedef enum { FF_NEG_RANDOM, FF_NEG_HARD, FF_NEG_COUNT } ff_neg_kind;
typedef enum { FF_LOSS_THRESHOLD, FF_LOSS_PAIRWISE, FF_LOSS_COMPETITION, FF_LOSS_COUNT } ff_loss_kind;
typedef enum { FF_HARD_GOODNESS, FF_HARD_SOFTMAX, FF_HARD_SCORES_COUNT } ff_hard_scores;
/* train.competition_norm: each group's goodness from the row scaled to mean square 1
 * (sample), from every channel standardised over the batch (batch; objective.h), or
 * from that times a learned per-channel scale plus shift (affine: CwComp's whole batch
 * norm) */
typedef enum { FF_COMP_SAMPLE, FF_COMP_BATCH, FF_COMP_AFFINE, FF_COMP_NORM_COUNT } ff_comp_norm;
/* model.hand_on: what a layer hands the next: its output scaled to mean square 1 per
 * image (rms, FF's normalisation), or every channel standardised with the competition
 * loss's batch statistics (batch: CwComp's batch-norm output; net.h) */
typedef enum { FF_HAND_RMS, FF_HAND_BATCH, FF_HAND_COUNT } ff_hand_on;
/* clf.norm: how the softmax head sees a layer no later layer is handed (the last one):
 * scaled to mean square 1 per image (rms), or standardised per channel with its
 * evaluation statistics, then scaled and shifted (batch: as model.hand_on batch hands a
 * layer on; readout.h) */
typedef enum { FF_CLF_NORM_RMS, FF_CLF_NORM_BATCH, FF_CLF_NORM_COUNT } ff_clf_norm;
typedef enum { FF_EMBED_OVERLAY, FF_EMBED_CHANNELS, FF_EMBED_PATTERN, FF_EMBED_NONE, FF_EMBED_COUNT } ff_embed_kind;
typedef enum { FF_PAR_NONE, FF_PAR_DATA, FF_PAR_PIPELINE, FF_PAR_COUNT } ff_par_mode;
/* data.format: auto (detected from data.dir's files) | idx (MNIST) | cifar10 (CIFAR-10's
 * binary batches); readers in src/data_<format>.c (include/ff/data.h) */
typedef enum { FF_DATA_AUTO, FF_DATA_IDX, FF_DATA_CIFAR10, FF_DATA_FORMAT_COUNT } ff_data_format;
/* data.normalize: none (pixels / 255) | channel (each channel standardised with the
 * training split's mean and standard deviation) */
typedef enum { FF_DATA_NORM_NONE, FF_DATA_NORM_CHANNEL, FF_DATA_NORM_COUNT } ff_data_norm;
/* eval.test: with a validation split, evaluate the test set at the end of the run only
 * (end) or at every evaluation (every); without one it is the held-out set of every
 * evaluation */
typedef enum { FF_EVAL_TEST_END, FF_EVAL_TEST_EVERY, FF_EVAL_TEST_COUNT } ff_eval_test;

typedef struct ff_layer_cfg {
    ff_layer_kind kind;
    int units;        /* fc: output units */
    int channels;     /* conv/local: output channels */
    int kernel;       /* conv/local/pool: square receptive field (pixels or grid points) */
    int stride;       /* conv/local/pool */
    int padding;      /* conv/local: zero padding on each side (default 0) */
    int groups;       /* conv: grouped convolution, G blocks of in/G input and out/G output
                         channels, output block g sees input block g (default 1; 0, in a
                         config built in code, is taken as 1) */
    ff_pool_kind pool; /* pool: max | avg (its `kind` key) */
    float threshold;  /* goodness threshold theta; 0 = default (number of output units) */
    int train_epochs; /* trainable layers: trains during the first N epochs, then frozen
                         (forward pass only); 0 = every epoch */
    int line, col;    /* 1-based position of the layer in the YAML (0 if not from a file) */
} ff_layer_cfg;

typedef struct ff_config {
    /* top level */
    char origin[FF_PATH_MAX];     /* where it was read from, for messages that point into it
                                     ("configs/x.yaml", "m.ffm (embedded config)"; "" = defaults);
                                     not a key: never written back to YAML */
    char name[FF_NAME_MAX];       /* optional run-name suffix ("" = none) */
    ff_mode mode;                 /* mode: supervised | unsupervised_backbone | unsupervised_clf */
    uint64_t seed;                /* seed: RNG seed (default 1) */

    struct {
        char dir[FF_PATH_MAX];    /* data.dir: folder with the data set's files (default data/mnist) */
        ff_data_format format;    /* data.format: auto | idx | cifar10 */
        ff_data_norm normalize;   /* data.normalize: none | channel */
        int train_limit;          /* data.train_limit: use the first N training images (0 = all) */
        int test_limit;           /* data.test_limit: use the first N test images (0 = all) */
        float validation;         /* data.validation: images held out of the training split
                                     for validation, a count (>= 1, whole) or a fraction
                                     (< 1); 0 = none (default) */
        uint64_t validation_seed; /* data.validation_seed: the split's own seed (default 1) */
        char cache[FF_PATH_MAX];  /* data.cache: folder for generated data (default cache) */
        int hybrid_blur;          /* data.hybrid_blur: mask blur passes (default 6) */
    } data;

    struct {
        int n_layers;
        ff_layer_cfg layers[FF_MAX_LAYERS]; /* model.layers: list of {type, units|channels, kernel, stride, padding, groups, threshold} */
        ff_embed_kind label_embedding;      /* model.label_embedding: overlay | channels | pattern */
        int label_every_layer;              /* model.label_every_layer: the label also goes to
                                               every later layer as 10 one-hot planes (bool) */
        float norm_eps;                     /* model.norm_eps: eps in x/sqrt(mean(x^2)+eps) (default 1e-8) */
        ff_hand_on hand_on;                 /* model.hand_on: rms | batch */
        int loss_after_pool;                /* model.loss_after_pool: a layer followed by a
                                               pool has its loss, statistics, readout and
                                               head features on the pooled output (bool) */
        struct {                            /* model.recurrent: the paper's recurrent net
                                               (section 4; include/ff/recurrent.h) */
            int iterations;                 /* model.recurrent.iterations: synchronous updates
                                               after the bottom-up pass (0 = a feed-forward
                                               net, the default; the paper 8) */
            float damping;                  /* model.recurrent.damping: the share of the old
                                               state kept (the paper 0.3) */
            int eval_first, eval_last;      /* model.recurrent.eval_first / eval_last: the
                                               iterations (1-based) whose goodness the readout
                                               sums (the paper 3 to 5) */
            int readout_iteration;          /* model.recurrent.readout_iteration: the states the
                                               softmax head reads, with the neutral label
                                               clamped (0 = eval_last) */
        } recurrent;
    } model;

    struct {
        int epochs;               /* train.epochs (default 10) */
        int batch_size;           /* train.batch_size (default 100) */
        ff_pass_kind passes;      /* train.passes: alternate | joint */
        ff_loss_kind loss;        /* train.loss: threshold (the paper's) | pairwise (joint only) |
                                     competition (label_embedding none) */
        ff_comp_norm competition_norm; /* train.competition_norm: sample | batch */
        ff_neg_kind negatives;    /* train.negatives: random | hard */
        float hard_temperature;   /* train.hard_temperature: T of the hard draw (default 1) */
        ff_hard_scores hard_scores; /* train.hard_scores: goodness (10 labelled passes per
                                       image) | softmax (the head's logits, one neutral pass) */
        int hard_candidates;      /* train.hard_candidates: goodness scores of only the m wrong
                                     labels the softmax head ranks highest (0 = all nine) */
        int jitter;               /* train.jitter: max shift in pixels (0 = off); 4 is CIFAR's
                                     standard random crop from 4 pixels of zero padding */
        int flip;                 /* train.flip: mirror each training image left-right with
                                     probability 1/2 (bool; off for digits) */
        float peer_norm;          /* train.peer_norm: strength (0 = off) */
        float peer_decay;         /* train.peer_decay: running-mean decay (default 0.9) */
        float logit_scale;        /* train.logit_scale: slope s of sigmoid(s (g - theta) / units),
                                     0 = the paper's sigmoid(g - theta) */
        int shuffle;              /* train.shuffle: bool (default true) */
    } train;

    struct {
        ff_opt_kind type;         /* optimizer.type: sgd | adam | sgd_smooth (default adam) */
        float lr;                 /* optimizer.lr (default 0.001) */
        float momentum;           /* optimizer.momentum (sgd, default 0.9) */
        float beta1, beta2, eps;  /* optimizer.beta1/beta2/eps (adam: 0.9, 0.999, 1e-8) */
        float weight_decay;       /* optimizer.weight_decay (default 0) */
    } optimizer;

    struct {
        ff_sched_kind type;       /* schedule.type: constant | linear | cosine */
        float decay_start;        /* schedule.decay_start: fraction of training before decay (default 0.5) */
        float final_lr_scale;     /* schedule.final_lr_scale: lr multiplier at the end (default 0) */
    } schedule;

    struct {
        int every;                /* eval.every: evaluate every N epochs (default 1; the last epoch always) */
        int softmax;              /* eval.softmax: also train/eval the softmax readout (bool, default false) */
        int readout_epochs;       /* eval.readout_epochs: extra head epochs before each evaluation (default 0) */
        ff_eval_test test;        /* eval.test: end | every (with data.validation) */
        int layers[FF_MAX_LAYERS]; /* eval.layers: trainable layers the goodness readout sums
                                      (default none listed: every layer but the first) */
        int n_layers;
    } eval;

    struct {
        char dir[FF_PATH_MAX];    /* log.dir: root of TensorBoard runs (default runs) */
        int every;                /* log.every: log training scalars every N steps (default 50) */
        int histograms;           /* log.histograms: log histograms every N epochs (0 = off, default 1) */
        int images;               /* log.images: log images every N epochs (0 = off, default 1) */
    } log;

    struct {
        char dir[FF_PATH_MAX];    /* checkpoint.dir: where models go (default models) */
        int every;                /* checkpoint.every: save every N epochs (0 = only at the end) */
        float minutes;            /* checkpoint.minutes: a resumable step model at most this often
                                     (replacing the previous one; 0 = off) */
        char backbone[FF_PATH_MAX]; /* checkpoint.backbone: model for unsupervised_clf ("" = newest in dir) */
    } checkpoint;

    struct {
        int layers[FF_MAX_LAYERS]; /* clf.layers: 0-based layer indices the classifier reads (default: last three) */
        int n_layers;
        int epochs;                /* clf.epochs (default 10) */
        float lr;                  /* clf.lr (default 0.001) */
        ff_opt_kind optimizer;     /* clf.optimizer: the head's optimiser (default adam: beta1 0.9,
                                      beta2 0.999, eps 1e-8) */
        float momentum;            /* clf.momentum: sgd momentum / sgd_smooth smoothing (default 0.9) */
        float weight_decay;        /* clf.weight_decay: the head's L2 weight decay (default 0) */
        int lr_schedule;           /* clf.lr_schedule: the head beside an FF net scales clf.lr by the
                                      schedule's factor of the net's step (bool, default false) */
        ff_clf_norm norm;          /* clf.norm: rms | batch (default rms) */
        int cache_features;        /* clf.cache_features: while the net is fixed (every layer
                                      frozen; a new head's evaluation epochs), the head's features
                                      of the training images computed once and kept in memory
                                      (bool, default false) */
    } clf;

    struct {
        ff_par_mode mode;          /* parallel.mode: none | data | pipeline (under mpirun;
                                      include/ff/parallel.h) */
    } parallel;
} ff_config;

/* Fills cfg with every default. Cannot fail. */
void ff_config_defaults(ff_config *cfg);

/* Parses a YAML file over the defaults, validates it, and resolves it.
 * Errors (FF_ERR_USAGE) read "path:line:col: message", e.g. unknown key with
 * the closest valid key suggested, wrong type, out-of-range value, YAML syntax
 * error. FF_ERR_IO if the file cannot be read. */
int ff_config_load(ff_config *cfg, const char *path, ff_err *err);

/* Same, from a string in memory; `origin` names it in error messages. */
int ff_config_parse(ff_config *cfg, const char *yaml, size_t len, const char *origin, ff_err *err);

/* Applies one "--set key.path=value" override, e.g. "train.epochs=3",
 * "optimizer.type=sgd", "model.layers.1.units=500". Same validation and
 * messages as file values (origin "--set"). */
int ff_config_set(ff_config *cfg, const char *assignment, ff_err *err);

/* Cross-field checks after all overrides (e.g. unsupervised_clf needs clf layers
 * in range). Geometry checks of layers against their input live in net.c. */
int ff_config_validate(const ff_config *cfg, ff_err *err);

/* Writes the resolved config as YAML (loadable again by ff_config_parse) into buf.
 * Returns the number of bytes needed (like snprintf). */
size_t ff_config_to_yaml(const ff_config *cfg, char *buf, size_t cap);

/* Writes the resolved config as a markdown table (key | value) for TensorBoard. */
size_t ff_config_to_markdown(const ff_config *cfg, char *buf, size_t cap);

/* Prints every key with type, default and meaning (for --help-config). */
void ff_config_print_help(FILE *out);

/* Flat key/value view for the HParams dashboard: calls fn once per scalar key
 * (numbers as double, strings, bools) with its dotted path. */
typedef enum { FF_HP_NUMBER, FF_HP_STRING, FF_HP_BOOL } ff_hp_type;
typedef void (*ff_config_visit_fn)(void *ctx, const char *key, ff_hp_type type, double number,
                                   const char *string, int boolean);
void ff_config_visit(const ff_config *cfg, ff_config_visit_fn fn, void *ctx);

/* Names for enums ("supervised", "fc", "adam", ...). */
const char *ff_config_mode_name(ff_mode m);
const char *ff_config_layer_kind_name(ff_layer_kind k);

#endif
