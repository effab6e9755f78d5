/* config_schema.c - the one table of config keys, and everything driven by it but the YAML parser. */
#include "config_schema.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ff/layer.h"
#include "ff/summary_hparams.h"

// ----------------------------------------------------------------------------
// the tables

/* enum value names, NULL-terminated, indexed by the enum (layer kinds: their
 * ff_layer_ops names, see layer_kind_name) */
static const char *const mode_names[] = {"supervised", "unsupervised_backbone", "unsupervised_clf", NULL};
static const char *const embed_names[] = {"overlay", "channels", "pattern", "none", NULL};
static const char *const data_format_names[] = {"auto", "idx", "cifar10", NULL};
static const char *const data_norm_names[] = {"none", "channel", NULL};
static const char *const eval_test_names[] = {"end", "every", NULL};
static const char *const pass_names[] = {"alternate", "joint", NULL};
static const char *const neg_names[] = {"random", "hard", NULL};
static const char *const loss_names[] = {"threshold", "pairwise", "competition", NULL};
static const char *const hard_score_names[] = {"goodness", "softmax", NULL};
static const char *const comp_norm_names[] = {"sample", "batch", "affine", NULL};
static const char *const hand_on_names[] = {"rms", "batch", NULL};
static const char *const clf_norm_names[] = {"rms", "batch", NULL};
static const char *const opt_names[] = {"sgd", "adam", "sgd_smooth", NULL};
static const char *const sched_names[] = {"constant", "linear", "cosine", NULL};
static const char *const par_names[] = {"none", "data", "pipeline", NULL};
static const char *const pool_names[] = {"max", "avg", NULL};

/* one name per enum value, then the NULL */
#define N_NAMES(a) (sizeof(a) / sizeof((a)[0]) - 1)
_Static_assert(N_NAMES(mode_names) == FF_MODE_COUNT, "a name per ff_mode");
_Static_assert(N_NAMES(embed_names) == FF_EMBED_COUNT, "a name per ff_embed_kind");
_Static_assert(N_NAMES(data_format_names) == FF_DATA_FORMAT_COUNT, "a name per ff_data_format");
_Static_assert(N_NAMES(data_norm_names) == FF_DATA_NORM_COUNT, "a name per ff_data_norm");
_Static_assert(N_NAMES(eval_test_names) == FF_EVAL_TEST_COUNT, "a name per ff_eval_test");
_Static_assert(N_NAMES(pass_names) == FF_PASS_COUNT, "a name per ff_pass_kind");
_Static_assert(N_NAMES(neg_names) == FF_NEG_COUNT, "a name per ff_neg_kind");
_Static_assert(N_NAMES(loss_names) == FF_LOSS_COUNT, "a name per ff_loss_kind");
_Static_assert(N_NAMES(hard_score_names) == FF_HARD_SCORES_COUNT, "a name per ff_hard_scores");
_Static_assert(N_NAMES(comp_norm_names) == FF_COMP_NORM_COUNT, "a name per ff_comp_norm");
_Static_assert(N_NAMES(hand_on_names) == FF_HAND_COUNT, "a name per ff_hand_on");
_Static_assert(N_NAMES(clf_norm_names) == FF_CLF_NORM_COUNT, "a name per ff_clf_norm");
_Static_assert(N_NAMES(opt_names) == FF_OPT_COUNT, "a name per ff_opt_kind");
_Static_assert(N_NAMES(sched_names) == FF_SCHED_COUNT, "a name per ff_sched_kind");
_Static_assert(N_NAMES(par_names) == FF_PAR_COUNT, "a name per ff_par_mode");
_Static_assert(N_NAMES(pool_names) == FF_POOL_COUNT, "a name per ff_pool_kind");

/* model.layers[].type names come from the layer table (layer.c) */
static const char *layer_kind_name(int k)
{
    const ff_layer_ops *ops = ff_layer_ops_of((ff_layer_kind)k);
    return ops ? ops->name : NULL;
}

/* enum fields are stored through int pointers */
_Static_assert(sizeof(ff_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_layer_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_embed_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_pass_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_hard_scores) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_comp_norm) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_neg_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_opt_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_sched_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_par_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_pool_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_eval_test) == sizeof(int), "enum size");

#define MSIZE(T, m) sizeof(((T *)0)->m)
#define AT(m) .offset = offsetof(ff_config, m), .size = MSIZE(ff_config, m)
#define K_INT(p, m, d, lo, hi, h) \
    {.path = p, .type = FF_KEY_INT, AT(m), .def = d, .min = lo, .max = hi, .help = h}
#define K_U64(p, m, d, h) {.path = p, .type = FF_KEY_U64, AT(m), .def = d, .help = h}
#define K_FLOAT(p, m, d, lo, hi, fl, h) \
    {.path = p, .type = FF_KEY_FLOAT, AT(m), .def = d, .min = lo, .max = hi, .flags = fl, .help = h}
#define K_BOOL(p, m, d, h) {.path = p, .type = FF_KEY_BOOL, AT(m), .def = d, .help = h}
#define K_STR(p, m, d, fl, h) {.path = p, .type = FF_KEY_STRING, AT(m), .def = d, .flags = fl, .help = h}
#define K_ENUM(p, m, n, d, h) {.path = p, .type = FF_KEY_ENUM, AT(m), .names = n, .def = d, .help = h}

#define EXCL_MIN FF_KEY_MIN_EXCL
#define EXCL_MAX FF_KEY_MAX_EXCL

const ff_key ff_config_keys[] = {
    K_STR("name", name, "", FF_KEY_IDENT, "optional run-name suffix (\"\" = none)"),
    K_ENUM("mode", mode, mode_names, "supervised",
           "what to train: FF with labels, an unsupervised backbone, or a classifier on a saved backbone"),
    K_U64("seed", seed, "1", "RNG seed (weights, shuffling, negatives)"),

    K_STR("data.dir", data.dir, "data/mnist", FF_KEY_NONEMPTY,
          "folder with the data set's files (MNIST's four IDX files, CIFAR-10's binary batches)"),
    K_ENUM("data.format", data.format, data_format_names, "auto",
           "the files' format: idx (MNIST), cifar10 (data_batch_1..5.bin, test_batch.bin), or auto: "
           "the one format whose files are in data.dir"),
    K_ENUM("data.normalize", data.normalize, data_norm_names, "none",
           "input scaling: none (pixel / 255) or channel (each channel standardised with the "
           "training split's mean and standard deviation)"),
    K_INT("data.train_limit", data.train_limit, "0", 0, 1e8, "use the first N training images (0 = all)"),
    K_INT("data.test_limit", data.test_limit, "0", 0, 1e8, "use the first N test images (0 = all)"),
    K_FLOAT("data.validation", data.validation, "0", 0, 1e7, 0,
            "images held out of the training split (after data.train_limit) to validate on: a "
            "count (a whole number >= 1) or a fraction (< 1) of it, drawn per class in proportion "
            "(stratified) with data.validation_seed; evaluations report val/ errors, pick the best "
            "model and rank sweeps by them, and the test set is read at the end (eval.test); 0 = "
            "no split (the test set is the held-out set of every evaluation)"),
    K_U64("data.validation_seed", data.validation_seed, "1",
          "seed of the validation split alone (not of training: runs that differ in seed "
          "validate on the same images)"),
    K_STR("data.cache", data.cache, "cache", FF_KEY_NONEMPTY,
          "folder for generated data (unsupervised hybrid negatives), reused while source and settings match"),
    K_INT("data.hybrid_blur", data.hybrid_blur, "6", 1, 64,
          "unsupervised negatives: blur passes of the random mask with [1/4, 1/2, 1/4]"),

    {.path = "model.layers", .type = FF_KEY_LAYERS, AT(model.layers),
     .help = "the layers, in order: {type: fc, units: N}, {type: conv|local, channels: C, kernel: K, "
             "stride: S, padding: P} (conv also groups: G) or {type: pool, kind: max|avg, "
             "kernel: K, stride: S} (no parameters or goodness: it reshapes the next layer's "
             "input); at least one trainable layer (see model.layers[].* below)"},
    K_ENUM("model.label_embedding", model.label_embedding, embed_names, "overlay",
           "how the label enters the input (none: the image alone, for train.loss competition)"),
    K_BOOL("model.label_every_layer", model.label_every_layer, "false",
           "supervised, overlay or channels embedding: every layer after the first also gets the "
           "label as 10 one-hot planes (fc: 10 inputs) beside its normalised input"),
    K_FLOAT("model.norm_eps", model.norm_eps, "1e-8", 0, 1, EXCL_MIN,
            "eps in the layer normalisation x/sqrt(mean(x^2)+eps)"),
    K_ENUM("model.hand_on", model.hand_on, hand_on_names, "rms",
           "what each layer hands the next (pooled after, if a pool follows): rms = its output "
           "scaled to mean square 1 per image (FF's normalisation); batch = every channel "
           "standardised by the competition loss's batch statistics in training and by the "
           "evaluation statistics otherwise (CwComp's batch-norm output; needs train.loss "
           "competition with competition_norm batch or affine; not with parallel.mode pipeline)"),
    K_BOOL("model.loss_after_pool", model.loss_after_pool, "false",
           "a layer followed by a pool takes its loss, its channel statistics, its goodness "
           "readout and its softmax-head features from its pooled output (CwComp's conv, ReLU, "
           "pool, then batch norm and goodness), and model.layers may end with a pool (applied "
           "to the last layer's output); needs model.hand_on batch (so not with parallel.mode "
           "pipeline)"),
    K_INT("model.recurrent.iterations", model.recurrent.iterations, "0", 0, FF_MAX_ITERS,
          "the paper's recurrent net (its section 4): after a bottom-up pass every hidden layer "
          "is updated this many times, synchronously, from the normalised layer below and the "
          "normalised layer above (the top one from the clamped one-hot label) at the step "
          "before, each update trained with the layer's own FF loss; 0 = a feed-forward net "
          "(the default); the paper 8. Needs fc or local layers (a local layer under a local "
          "layer of the same grid takes its top-down input through a local map of its own odd "
          "kernel, stride 1, same padding: the paper's CIFAR-10 nets), mode supervised and "
          "model.label_embedding none (the label is at the top, not in the image)"),
    K_FLOAT("model.recurrent.damping", model.recurrent.damping, "0.3", 0, 1, EXCL_MAX,
            "recurrent: each new state is damping x the old state + (1 - damping) x the "
            "computed one (the paper 0.3)"),
    K_INT("model.recurrent.eval_first", model.recurrent.eval_first, "3", 1, FF_MAX_ITERS,
          "recurrent: the first iteration (1-based) whose goodness the goodness readout sums "
          "for each candidate label (the paper: iterations 3 to 5 of 8)"),
    K_INT("model.recurrent.eval_last", model.recurrent.eval_last, "5", 1, FF_MAX_ITERS,
          "recurrent: the last iteration the goodness readout sums (at most "
          "model.recurrent.iterations)"),
    K_INT("model.recurrent.readout_iteration", model.recurrent.readout_iteration, "0", 0,
          FF_MAX_ITERS,
          "recurrent: the iteration whose states (neutral label clamped: 0.1 for every class) "
          "the softmax head of eval.softmax reads, and the forward pass of histograms and "
          "predict --readout softmax (0 = model.recurrent.eval_last)"),

    K_INT("train.epochs", train.epochs, "10", 1, 1e6, "training epochs"),
    K_INT("train.batch_size", train.batch_size, "100", 1, 65536, "images per minibatch"),
    K_ENUM("train.passes", train.passes, pass_names, "alternate",
           "positive and negative updates in turn, or one update on both"),
    K_ENUM("train.loss", train.loss, loss_names, "threshold",
           "per-layer objective: threshold = the paper's softplus(+-(theta - g)) per sample; pairwise "
           "= softplus(slope (g_neg - g_pos)) per image and its negative (needs passes: joint); "
           "competition = channel-wise competition (CwComp): each layer's channels (fc: units) form "
           "10 class groups, logit_k = slope * goodness of group k of the output scaled to mean "
           "square 1, cross-entropy with the true class; no negatives, no label in the input "
           "(needs label_embedding none)"),
    K_ENUM("train.competition_norm", train.competition_norm, comp_norm_names, "sample",
           "train.loss competition: each class group's goodness from the layer's output scaled "
           "to mean square 1 per image (sample), or with every channel standardised by its mean "
           "and variance over the batch, running averages at evaluation (batch, as CwComp's "
           "batch norm without its affine part), or that times a learned scale plus a learned "
           "shift per channel (affine, CwComp's whole batch norm; both learn with the layer)"),
    K_ENUM("train.negatives", train.negatives, neg_names, "random",
           "wrong labels for negatives: uniformly random, or drawn from the model's own scores (hard)"),
    K_FLOAT("train.hard_temperature", train.hard_temperature, "1", 0, 1e6, EXCL_MIN,
            "hard negatives: the wrong label k is drawn with p ~ exp(z_k / T), z_k = the model's "
            "score for label k (train.hard_scores); small T: the top wrong label, large T: uniform"),
    K_ENUM("train.hard_scores", train.hard_scores, hard_score_names, "goodness",
           "hard negatives: z_k = the sum over the evaluated layers of slope * goodness with label k "
           "(goodness; ten labelled forward passes per image) or the softmax head's logit k "
           "(softmax; one neutral-label pass; needs eval.softmax and train.negatives hard)"),
    K_INT("train.hard_candidates", train.hard_candidates, "0", 0, 9,
          "hard negatives scored by goodness: score only the N wrong labels the softmax head "
          "ranks highest (one neutral pass + N labelled passes per image instead of ten; needs "
          "eval.softmax and train.negatives hard); 0 = all nine"),
    K_INT("train.jitter", train.jitter, "0", 0, 64,
          "max random shift of training images in pixels, zeros shifted in (0 = off; 4 = CIFAR's "
          "random crop from 4-pixel zero padding); a positive and its negatives share the shift"),
    K_BOOL("train.flip", train.flip, "false",
           "mirror training images left-right with probability 1/2 (colour photos; a positive "
           "and its negatives share the flip)"),
    K_FLOAT("train.peer_norm", train.peer_norm, "0", 0, 1e3, 0, "peer normalisation strength (0 = off)"),
    K_FLOAT("train.logit_scale", train.logit_scale, "0", 0, 1e6, 0,
            "slope of the FF logistic per unit of mean goodness: p(positive) = "
            "sigmoid(s * (g - theta) / units); 0 = the paper's sigmoid(g - theta); with "
            "train.loss competition the logits are s times each class group's share of the "
            "layer's goodness (competition_norm sample) or s / 10 times its mean square (batch)"),
    K_FLOAT("train.peer_decay", train.peer_decay, "0.9", 0, 1, EXCL_MAX,
            "decay of the running mean activity used by peer normalisation"),
    K_BOOL("train.shuffle", train.shuffle, "true", "shuffle the training set every epoch"),

    K_ENUM("optimizer.type", optimizer.type, opt_names, "adam",
           "optimiser: sgd (v = momentum v + g, step lr v, weight decay in g), adam, or sgd_smooth "
           "(Hinton's ffcode: d = momentum d + (1 - momentum) g, step lr (d + weight_decay w))"),
    K_FLOAT("optimizer.lr", optimizer.lr, "0.001", 0, 10, EXCL_MIN, "learning rate"),
    K_FLOAT("optimizer.momentum", optimizer.momentum, "0.9", 0, 1, EXCL_MAX, "sgd momentum (0 = plain sgd); sgd_smooth: the gradient smoothing factor"),
    K_FLOAT("optimizer.beta1", optimizer.beta1, "0.9", 0, 1, EXCL_MAX, "adam first-moment decay"),
    K_FLOAT("optimizer.beta2", optimizer.beta2, "0.999", 0, 1, EXCL_MAX, "adam second-moment decay"),
    K_FLOAT("optimizer.eps", optimizer.eps, "1e-8", 0, 1, EXCL_MIN, "adam denominator eps"),
    K_FLOAT("optimizer.weight_decay", optimizer.weight_decay, "0", 0, 1, 0,
            "L2 weight decay (0 = off; sgd, adam: added to the gradient; sgd_smooth: outside the "
            "smoothing)"),

    K_ENUM("schedule.type", schedule.type, sched_names, "constant", "learning-rate schedule"),
    K_FLOAT("schedule.decay_start", schedule.decay_start, "0.5", 0, 1, 0,
            "fraction of training before the decay starts"),
    K_FLOAT("schedule.final_lr_scale", schedule.final_lr_scale, "0", 0, 1, 0,
            "lr multiplier reached at the end of training"),

    K_INT("eval.every", eval.every, "1", 1, 1e6, "evaluate every N epochs (the last epoch always)"),
    K_BOOL("eval.softmax", eval.softmax, "false",
           "also train (a step per batch, neutral label, normalised activities) and evaluate the softmax readout"),
    K_INT("eval.readout_epochs", eval.readout_epochs, "0", 0, 1000,
          "extra epochs of softmax-head training on the frozen net before each evaluation (the head also takes a step on every training batch)"),
    K_ENUM("eval.test", eval.test, eval_test_names, "end",
           "with data.validation: evaluate the test set once, at the end of the run (end), or "
           "at every evaluation as well (every: test/ curves, never used to choose anything); "
           "without a validation split the test set is evaluated at every evaluation"),
    {.path = "eval.layers", .type = FF_KEY_INTLIST, AT(eval.layers),
     .count_offset = offsetof(ff_config, eval.n_layers), .min = 0, .max = FF_MAX_LAYERS - 1,
     .help = "0-based indices of the trainable layers (pools not counted) whose goodness the "
             "goodness readout sums (and hard negatives score with); [] = every layer but the "
             "first (the paper's; the only layer of a one-layer net)"},

    K_STR("log.dir", log.dir, "runs", FF_KEY_NONEMPTY, "root folder of the TensorBoard runs"),
    K_INT("log.every", log.every, "50", 1, 1e9, "log training scalars every N steps"),
    K_INT("log.histograms", log.histograms, "1", 0, 1e6, "log histograms every N epochs (0 = off)"),
    K_INT("log.images", log.images, "1", 0, 1e6, "log images every N epochs (0 = off)"),

    K_STR("checkpoint.dir", checkpoint.dir, "models", FF_KEY_NONEMPTY, "where models are saved"),
    K_INT("checkpoint.every", checkpoint.every, "0", 0, 1e6, "save every N epochs (0 = only at the end)"),
    K_FLOAT("checkpoint.minutes", checkpoint.minutes, "15", 0, 1e6, 0,
            "while FF layers train, a resumable model of the current step at most every N minutes "
            "(<run>_stepNNNNNNN.ffm, replacing the previous one, removed by the next epoch "
            "model): a killed machine loses at most N minutes (0 = off)"),
    K_STR("checkpoint.backbone", checkpoint.backbone, "", 0,
          "backbone model for unsupervised_clf (\"\" = newest in checkpoint.dir)"),

    {.path = "clf.layers", .type = FF_KEY_INTLIST, AT(clf.layers),
     .count_offset = offsetof(ff_config, clf.n_layers), .min = 0, .max = FF_MAX_LAYERS - 1,
     .help = "0-based indices of the trainable layers (pools not counted) the classifier reads "
             "(unsupervised_clf) or the softmax head of eval.softmax reads (supervised); [] = "
             "the last three (unsupervised_clf), every layer but the first (supervised)"},
    K_INT("clf.epochs", clf.epochs, "10", 1, 1e6, "classifier training epochs"),
    K_FLOAT("clf.lr", clf.lr, "0.001", 0, 10, EXCL_MIN,
            "classifier learning rate (unsupervised_clf, and the softmax head of eval.softmax)"),
    K_ENUM("clf.optimizer", clf.optimizer, opt_names, "adam",
           "the classifier's (softmax head's) optimiser, as optimizer.type; adam has beta1 0.9, "
           "beta2 0.999, eps 1e-8"),
    K_FLOAT("clf.momentum", clf.momentum, "0.9", 0, 1, EXCL_MAX,
            "clf.optimizer sgd: momentum; sgd_smooth: the gradient smoothing factor"),
    K_FLOAT("clf.weight_decay", clf.weight_decay, "0", 0, 1, 0,
            "the classifier's L2 weight decay (0 = off): sgd, adam add it to the gradient, "
            "sgd_smooth outside the smoothing"),
    K_BOOL("clf.lr_schedule", clf.lr_schedule, "false",
           "the softmax head trained beside an FF net (eval.softmax): scale clf.lr by the "
           "schedule's factor at the net's step, as optimizer.lr; a new head of ffrun eval "
           "--softmax-epochs N: at its own step of those N epochs (false: constant; "
           "unsupervised_clf always decays clf.lr over clf.epochs)"),
    K_ENUM("clf.norm", clf.norm, clf_norm_names, "rms",
           "how the softmax head sees its last layer (and any layer whose output is not handed "
           "on as it is): rms = scaled to mean square 1 per image; batch = every channel "
           "standardised by the layer's evaluation statistics, then scaled and shifted "
           "(competition_norm affine), as model.hand_on batch hands layers on (CwComp's head "
           "on the batch-norm output; needs model.hand_on batch)"),
    K_BOOL("clf.cache_features", clf.cache_features, "false",
           "once every layer has stopped learning (model.layers[].train_epochs), and for a new "
           "head's epochs on a fixed net (ffrun eval --softmax-epochs), compute the softmax "
           "head's features of every training and test image once and keep them in memory "
           "(images x features x 4 bytes; supervised_deep: 6.6 GB) instead of a forward pass "
           "per head step and per evaluation; without the memory the head goes on uncached"),

    K_ENUM("parallel.mode", parallel.mode, par_names, "none",
           "under mpirun -np N: data = every rank takes a share of each batch (gradients summed), "
           "pipeline = every rank trains a contiguous group of layers; none = one process only "
           "(plain ffrun is always one process)"),
};
const size_t ff_config_n_keys = sizeof ff_config_keys / sizeof ff_config_keys[0];

#define LAT(m) .offset = offsetof(ff_layer_cfg, m), .size = MSIZE(ff_layer_cfg, m)

/* which kinds take (and require) each key: their ff_layer_ops keys / required */
const ff_key ff_layer_keys[] = {
    {.path = "type", .type = FF_KEY_ENUM, LAT(kind), .name_of = layer_kind_name,
     .help = "fc (fully connected), conv (shared weights), local (unshared weights) or pool "
             "(max or average pooling of the layer below's output, folded into the next layer's "
             "input: no parameters, goodness, threshold or log of its own)"},
    {.path = "units", .type = FF_KEY_INT, LAT(units), .min = 1, .max = 1e6, .help = "output units"},
    {.path = "channels", .type = FF_KEY_INT, LAT(channels), .min = 1, .max = 4096,
     .help = "output channels"},
    {.path = "kernel", .type = FF_KEY_INT, LAT(kernel), .min = 1, .max = 1024,
     .help = "square receptive field in input pixels (or grid points)"},
    {.path = "stride", .type = FF_KEY_INT, LAT(stride), .min = 1, .max = 1024, .def = "1",
     .help = "step between receptive fields (pool too: give stride K for non-overlapping windows)"},
    {.path = "padding", .type = FF_KEY_INT, LAT(padding), .min = 0, .max = 1023, .def = "0",
     .help = "zeros added on each side of the input (less than kernel); output side "
             "(in + 2 padding - kernel) / stride + 1"},
    {.path = "groups", .type = FF_KEY_INT, LAT(groups), .min = 1, .max = 4096, .def = "1",
     .help = "conv: grouped convolution (as PyTorch's groups): input and output channels in G "
             "consecutive blocks, output block g sees only input block g; both channel counts "
             "must be multiples of G; no label planes (label_embedding channels, "
             "label_every_layer) with G > 1; with train.loss competition, groups 10 keeps each "
             "class group's channels to one block"},
    {.path = "kind", .type = FF_KEY_ENUM, LAT(pool), .names = pool_names, .def = "max",
     .help = "pool: max or avg (mean) over each kernel x kernel window"},
    {.path = "threshold", .type = FF_KEY_FLOAT, LAT(threshold), .min = 0, .max = 1e9,
     .def = "0", .help = "goodness threshold theta (0 = the number of output units)"},
    {.path = "train_epochs", .type = FF_KEY_INT, LAT(train_epochs), .min = 0, .max = 1e6,
     .def = "0",
     .help = "the layer learns during the first N epochs only, then stays frozen (its forward "
             "pass still feeds the layers above and the readouts; no loss, gradient or update): "
             "early layers can stop while later ones go on; 0 (or N >= train.epochs) = every "
             "epoch; not with parallel.mode pipeline"},
};
const size_t ff_layer_n_keys = sizeof ff_layer_keys / sizeof ff_layer_keys[0];

// ----------------------------------------------------------------------------
// lookup and suggestions

const ff_key *ff_key_find(const char *path)
{
    for (size_t i = 0; i < ff_config_n_keys; i++)
        if (strcmp(ff_config_keys[i].path, path) == 0)
            return &ff_config_keys[i];
    return NULL;
}

const ff_key *ff_layer_key_find(const char *name)
{
    for (size_t i = 0; i < ff_layer_n_keys; i++)
        if (strcmp(ff_layer_keys[i].path, name) == 0)
            return &ff_layer_keys[i];
    return NULL;
}

int ff_key_is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < ff_config_n_keys; i++)
        if (strncmp(ff_config_keys[i].path, prefix, n) == 0 && ff_config_keys[i].path[n] == '.')
            return 1;
    return 0;
}

/* Optimal-string-alignment distance (Levenshtein plus adjacent swaps). */
static int edit_distance(const char *a, const char *b)
{
    enum { N = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= N || m >= N)
        return 1000;
    int d[N][N];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

static const char *last_part(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* Candidate i for suggestions: every key path, then the section of every key
 * (written to buf); NULL past the end. */
static const char *candidate(size_t i, int layer, char *buf, size_t cap)
{
    if (layer)
        return i < ff_layer_n_keys ? ff_layer_keys[i].path : NULL;
    if (i < ff_config_n_keys)
        return ff_config_keys[i].path;
    i -= ff_config_n_keys;
    if (i >= ff_config_n_keys)
        return NULL;
    const char *p = ff_config_keys[i].path, *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : 0;
    if (n >= cap)
        n = 0;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

int ff_key_suggest(const char *name, int layer, char *out, size_t cap)
{
    int best_d = 1000, limit = (int)strlen(name) / 3;
    if (limit < 2)
        limit = 2;
    const char *same_leaf = NULL;
    char cand[FF_NAME_MAX];
    out[0] = '\0';
    for (size_t i = 0;; i++) {
        const char *c = candidate(i, layer, cand, sizeof cand);
        if (!c)
            break;
        if (!*c)
            continue;
        int d = edit_distance(name, c);
        if (d < best_d && d <= limit) {
            best_d = d;
            snprintf(out, cap, "%s", c);
        }
        if (!same_leaf && !layer && i < ff_config_n_keys && strcmp(last_part(c), last_part(name)) == 0)
            same_leaf = c;
    }
    if (!out[0] && same_leaf)
        snprintf(out, cap, "%s", same_leaf);
    return out[0] != '\0';
}

// ----------------------------------------------------------------------------
// text -> value

static void *field(const ff_key *k, void *base) { return (char *)base + k->offset; }
static const void *cfield(const ff_key *k, const void *base) { return (const char *)base + k->offset; }

/* name of value i of enum key k; NULL past the last value */
static const char *enum_name(const ff_key *k, int i)
{
    if (k->name_of)
        return k->name_of(i);
    for (int j = 0; j <= i; j++)
        if (!k->names[j])
            return NULL;
    return k->names[i];
}

static size_t n_names(const ff_key *k)
{
    size_t n = 0;
    while (enum_name(k, (int)n))
        n++;
    return n;
}

void ff_key_expected(const ff_key *k, char *buf, size_t cap)
{
    switch (k->type) {
    case FF_KEY_INT: snprintf(buf, cap, "an integer"); return;
    case FF_KEY_U64: snprintf(buf, cap, "a non-negative integer"); return;
    case FF_KEY_FLOAT: snprintf(buf, cap, "a number"); return;
    case FF_KEY_BOOL: snprintf(buf, cap, "a boolean (true/false, yes/no, on/off)"); return;
    case FF_KEY_STRING: snprintf(buf, cap, "a string"); return;
    case FF_KEY_LAYERS: snprintf(buf, cap, "a list of layers"); return;
    case FF_KEY_INTLIST: snprintf(buf, cap, "a list of integers"); return;
    case FF_KEY_ENUM: break;
    }
    size_t len = (size_t)snprintf(buf, cap, "one of");
    for (int i = 0; enum_name(k, i) && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s %s", i ? "," : "", enum_name(k, i));
}

/* Quotes a user value for messages, cut to a readable length. */
static const char *shown(const char *text, char *buf, size_t cap)
{
    snprintf(buf, cap, "'%.60s%s'", text, strlen(text) > 60 ? "..." : "");
    return buf;
}

static int type_error(const ff_key *k, const char *text, const char *path, ff_err *err)
{
    char want[160], got[80];
    ff_key_expected(k, want, sizeof want);
    return ff_err_set(err, FF_ERR_USAGE, "expected %s for %s, got %s", want, path,
                      *text ? shown(text, got, sizeof got) : "nothing");
}

static void range_text(const ff_key *k, char *buf, size_t cap)
{
    if (!(k->flags & (FF_KEY_MIN_EXCL | FF_KEY_MAX_EXCL)))
        snprintf(buf, cap, "between %.15g and %.15g", k->min, k->max);
    else
        snprintf(buf, cap, "%s %.15g and %s %.15g", k->flags & FF_KEY_MIN_EXCL ? ">" : ">=", k->min,
                 k->flags & FF_KEY_MAX_EXCL ? "<" : "<=", k->max);
}

static int range_error(const ff_key *k, const char *got, const char *path, ff_err *err)
{
    char range[96];
    range_text(k, range, sizeof range);
    return ff_err_set(err, FF_ERR_USAGE, "%s must be %s, got %.60s", path, range, got);
}

static int in_range(const ff_key *k, double v)
{
    int lo = k->flags & FF_KEY_MIN_EXCL ? v > k->min : v >= k->min;
    int hi = k->flags & FF_KEY_MAX_EXCL ? v < k->max : v <= k->max;
    return lo && hi;
}

int ff_key_check_range(const ff_key *k, double v, const char *path, ff_err *err)
{
    if (in_range(k, v))
        return FF_OK;
    char got[32];
    snprintf(got, sizeof got, "%.9g", v);
    return range_error(k, got, path, err);
}

static int set_int(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    char *end;
    if (!isdigit((unsigned char)text[*text == '-' || *text == '+']))
        return type_error(k, text, path, err);
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end)
        return type_error(k, text, path, err);
    if (errno == ERANGE || !in_range(k, (double)v))
        return range_error(k, text, path, err);
    *(int *)field(k, base) = (int)v;
    return FF_OK;
}

static int set_u64(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    char *end;
    if (!isdigit((unsigned char)text[*text == '+']))
        return type_error(k, text, path, err);
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end)
        return type_error(k, text, path, err);
    if (errno == ERANGE)
        return ff_err_set(err, FF_ERR_USAGE, "%s must be at most %" PRIu64 ", got %.60s", path,
                          UINT64_MAX, text);
    *(uint64_t *)field(k, base) = (uint64_t)v;
    return FF_OK;
}

static int set_float(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    char *end;
    const char *p = text + (*text == '-' || *text == '+');
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return type_error(k, text, path, err); /* rejects nan, inf, .inf */
    errno = 0;
    double v = strtod(text, &end);
    if (*end || !isfinite(v))
        return type_error(k, text, path, err);
    if (errno == ERANGE || fabs(v) > FLT_MAX || !in_range(k, v))
        return range_error(k, text, path, err);
    if (v != 0.0 && (float)v == 0.0f) /* would be stored as 0 */
        return ff_err_set(err, FF_ERR_USAGE, "%s: %.60s is too small for a 32-bit float (the "
                          "smallest is about 1.4e-45); give 0 or a larger value", path, text);
    *(float *)field(k, base) = (float)v;
    return FF_OK;
}

static int set_bool(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *(int *)field(k, base) = strcasecmp(text, yes[i]) == 0;
            return FF_OK;
        }
    }
    return type_error(k, text, path, err);
}

/* Length (1..4) of the valid UTF-8 sequence at s (n bytes left) and its code point in
 * *cp, or 0 if the bytes there are not valid UTF-8 (overlong, surrogate, > U+10FFFF). */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (!len || len > n || s[0] > 0xF4)
        return 0;
    uint32_t c = len == 1 ? s[0] : s[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < least[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static int ident_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
            return 0;
    return 1;
}

const char *ff_text_problem(const char *s, char *buf, size_t cap)
{
    for (size_t i = 0; s[i];) {
        const unsigned char c = (unsigned char)s[i];
        uint32_t cp = c;
        int n = 1;
        if (c >= 0xC2 && c <= 0xDF)
            cp = c & 0x1Fu, n = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            cp = c & 0x0Fu, n = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            cp = c & 0x07u, n = 4;
        else if (c >= 0x80)
            n = 0;
        for (int j = 1; j < n; j++) { /* a NUL ends the loop: never reads past the string */
            const unsigned char d = (unsigned char)s[i + j];
            if ((d & 0xC0) != 0x80) {
                n = 0;
                break;
            }
            cp = cp << 6 | (d & 0x3Fu);
        }
        if (n == 0 || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            snprintf(buf, cap, "an invalid UTF-8 byte 0x%02x at byte %zu", c, i + 1);
            return buf;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            snprintf(buf, cap, "the control character U+%04X at byte %zu", (unsigned)cp, i + 1);
            return buf;
        }
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu) {
            snprintf(buf, cap, "the noncharacter U+%04X at byte %zu", (unsigned)cp, i + 1);
            return buf;
        }
        i += (size_t)n;
    }
    return NULL;
}

/* The checks of a string value beyond its length (set_string and ff_key_check_stored). */
static int check_string(const ff_key *k, const char *text, const char *path, ff_err *err)
{
    char what[80];
    if ((k->flags & FF_KEY_NONEMPTY) && !*text)
        return ff_err_set(err, FF_ERR_USAGE, "%s must not be empty (it names a directory; \".\" is the "
                          "current one)", path);
    if (ff_text_problem(text, what, sizeof what))
        return ff_err_set(err, FF_ERR_USAGE, "expected UTF-8 text without control characters or "
                          "noncharacters for %s, got %s", path, what);
    if ((k->flags & FF_KEY_IDENT) && !ident_ok(text))
        return ff_err_set(err, FF_ERR_USAGE, "%s may only contain letters, digits, '.', '_' and '-', got '%.60s'",
                          path, text);
    return FF_OK;
}

static int set_string(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    size_t n = strlen(text);
    if (n >= k->size)
        return ff_err_set(err, FF_ERR_USAGE, "%s is too long (%zu characters, at most %zu)", path, n,
                          k->size - 1);
    int rc = check_string(k, text, path, err);
    if (rc)
        return rc;
    char *dst = field(k, base);
    memset(dst, 0, k->size);
    memcpy(dst, text, n);
    return FF_OK;
}

static int set_enum(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    for (int i = 0; enum_name(k, i); i++) {
        if (strcmp(text, enum_name(k, i)) == 0) {
            *(int *)field(k, base) = i;
            return FF_OK;
        }
    }
    return type_error(k, text, path, err);
}

int ff_key_set_text(const ff_key *k, void *base, const char *text, const char *path, ff_err *err)
{
    switch (k->type) {
    case FF_KEY_INT: return set_int(k, base, text, path, err);
    case FF_KEY_U64: return set_u64(k, base, text, path, err);
    case FF_KEY_FLOAT: return set_float(k, base, text, path, err);
    case FF_KEY_BOOL: return set_bool(k, base, text, path, err);
    case FF_KEY_STRING: return set_string(k, base, text, path, err);
    case FF_KEY_ENUM: return set_enum(k, base, text, path, err);
    case FF_KEY_LAYERS:
    case FF_KEY_INTLIST: break;
    }
    return type_error(k, text, path, err);
}

int ff_key_check_stored(const ff_key *k, const void *base, const char *path, ff_err *err)
{
    const void *p = cfield(k, base);
    switch (k->type) {
    case FF_KEY_INT: return ff_key_check_range(k, *(const int *)p, path, err);
    case FF_KEY_FLOAT:
        if (!isfinite(*(const float *)p))
            return ff_err_set(err, FF_ERR_USAGE, "%s must be a finite number", path);
        return ff_key_check_range(k, *(const float *)p, path, err);
    case FF_KEY_BOOL:
        if (*(const int *)p != 0 && *(const int *)p != 1)
            return ff_err_set(err, FF_ERR_USAGE, "%s must be 0 or 1, got %d", path, *(const int *)p);
        return FF_OK;
    case FF_KEY_ENUM:
        if (*(const int *)p < 0 || (size_t)*(const int *)p >= n_names(k))
            return ff_err_set(err, FF_ERR_USAGE, "%s has no valid value (%d)", path, *(const int *)p);
        return FF_OK;
    case FF_KEY_STRING:
        if (!memchr(p, '\0', k->size))
            return ff_err_set(err, FF_ERR_USAGE, "%s is not terminated", path);
        return check_string(k, p, path, err);
    case FF_KEY_U64:
    case FF_KEY_LAYERS:
    case FF_KEY_INTLIST: return FF_OK;
    }
    return FF_OK;
}

// ----------------------------------------------------------------------------
// value -> text

typedef struct sbuf {
    char *buf;
    size_t cap, len;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n;
}

/* Shortest %g text that reads back as the same float. */
static void sb_float(sbuf *b, float f)
{
    char t[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, (double)f);
        if (strtof(t, NULL) == f)
            break;
    }
    sb_printf(b, "%s", t);
}

static void sb_intlist(sbuf *b, const ff_key *k, const void *base)
{
    const int *v = cfield(k, base);
    int n = *(const int *)((const char *)base + k->count_offset);
    sb_printf(b, "[");
    for (int i = 0; i < n && i < FF_MAX_LAYERS; i++)
        sb_printf(b, "%s%d", i ? ", " : "", v[i]);
    sb_printf(b, "]");
}

static void sb_value(sbuf *b, const ff_key *k, const void *base)
{
    const void *p = cfield(k, base);
    switch (k->type) {
    case FF_KEY_INT: sb_printf(b, "%d", *(const int *)p); break;
    case FF_KEY_U64: sb_printf(b, "%" PRIu64, *(const uint64_t *)p); break;
    case FF_KEY_FLOAT: sb_float(b, *(const float *)p); break;
    case FF_KEY_BOOL: sb_printf(b, "%s", *(const int *)p ? "true" : "false"); break;
    case FF_KEY_STRING: sb_printf(b, "%.*s", (int)k->size, (const char *)p); break;
    case FF_KEY_ENUM: {
        int v = *(const int *)p;
        sb_printf(b, "%s", v >= 0 && (size_t)v < n_names(k) ? enum_name(k, v) : "?");
        break;
    }
    case FF_KEY_INTLIST: sb_intlist(b, k, base); break;
    case FF_KEY_LAYERS: sb_printf(b, "(layers)"); break;
    }
}

int ff_key_format(const ff_key *k, const void *base, char *buf, size_t cap)
{
    sbuf b = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    sb_value(&b, k, base);
    return (int)b.len;
}

/* 1 if YAML reads code point c as itself inside a double-quoted scalar: printable
 * (YAML 1.1), and not a line break (U+0085, U+2028, U+2029: folded) or a BOM. */
static int yaml_plain_char(uint32_t c)
{
    return (c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xD7FF && c != 0x2028 && c != 0x2029) ||
           (c >= 0xE000 && c <= 0xFFFD && c != 0xFEFF) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* YAML double-quoted scalar that reads back as s: '"', '\\' and the characters
 * yaml_plain_char refuses are escaped. */
static void sb_quoted(sbuf *b, const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strnlen(s, max);
    sb_printf(b, "\"");
    for (size_t i = 0, k; i < n; i += k) {
        uint32_t c;
        if (!(k = utf8_char(u + i, n - i, &c)))
            c = u[i], k = 1; /* not UTF-8 (set_string refuses it): as if Latin-1 */
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", (char)c);
        else if (yaml_plain_char(c))
            sb_printf(b, "%.*s", (int)k, s + i);
        else if (c <= 0xFF)
            sb_printf(b, "\\x%02x", (unsigned)c);
        else
            sb_printf(b, "\\u%04x", (unsigned)c);
    }
    sb_printf(b, "\"");
}

// ----------------------------------------------------------------------------
// defaults, names

/* 1 if the space-separated `list` holds `word` */
static int has_word(const char *list, const char *word)
{
    const size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* type: every kind; other keys: the kind's ff_layer_ops keys (or required) */
static int layer_key_in(const ff_key *k, ff_layer_kind kind, int required)
{
    const ff_layer_ops *ops = ff_layer_ops_of(kind);
    if (!ops)
        return 0;
    if (k->offset == offsetof(ff_layer_cfg, kind))
        return 1;
    return has_word(required ? ops->required : ops->keys, k->path);
}

int ff_layer_key_applies(const ff_key *k, ff_layer_kind kind) { return layer_key_in(k, kind, 0); }

int ff_layer_key_required(const ff_key *k, ff_layer_kind kind) { return layer_key_in(k, kind, 1); }

void ff_layer_defaults(ff_layer_cfg *l)
{
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < ff_layer_n_keys; i++)
        if (ff_layer_keys[i].def)
            FF_ASSERT(ff_key_set_text(&ff_layer_keys[i], l, ff_layer_keys[i].def, ff_layer_keys[i].path, NULL) == FF_OK);
}

void ff_config_defaults(ff_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < ff_config_n_keys; i++)
        if (ff_config_keys[i].def)
            FF_ASSERT(ff_key_set_text(&ff_config_keys[i], cfg, ff_config_keys[i].def, ff_config_keys[i].path, NULL) == FF_OK);
}

const char *ff_config_mode_name(ff_mode m)
{
    return m >= 0 && m < FF_MODE_COUNT ? mode_names[m] : "?";
}

const char *ff_config_layer_kind_name(ff_layer_kind k)
{
    const char *name = layer_kind_name(k);
    return name ? name : "?";
}

// ----------------------------------------------------------------------------
// help

static void type_text(const ff_key *k, char *buf, size_t cap)
{
    char range[96];
    range_text(k, range, sizeof range);
    switch (k->type) {
    case FF_KEY_INT: snprintf(buf, cap, "int, %s", range); return;
    case FF_KEY_FLOAT: snprintf(buf, cap, "float, %s", range); return;
    case FF_KEY_U64: snprintf(buf, cap, "uint64"); return;
    case FF_KEY_BOOL: snprintf(buf, cap, "bool"); return;
    case FF_KEY_STRING:
        snprintf(buf, cap, "string%s%s", k->flags & FF_KEY_IDENT ? " of letters, digits, '.', '_', '-'" : "",
                 k->flags & FF_KEY_NONEMPTY ? ", not empty" : "");
        return;
    case FF_KEY_LAYERS: snprintf(buf, cap, "list of layer mappings, at most %d", FF_MAX_LAYERS); return;
    case FF_KEY_INTLIST: snprintf(buf, cap, "list of ints, each %s", range); return;
    case FF_KEY_ENUM: ff_key_expected(k, buf, cap); return;
    }
}

static void print_key(FILE *out, const char *path, const ff_key *k, const char *def, const char *note)
{
    char type[192];
    type_text(k, type, sizeof type);
    fprintf(out, "  %-26s %s; default %s%s\n      %s\n", path, type, def, note, k->help);
}

/* the kinds that take layer key k, and 1 if they all require it */
static int kinds_text(const ff_key *k, char *buf, size_t cap)
{
    size_t len = 0;
    int all_required = 1;
    buf[0] = '\0';
    for (int kind = 0; kind < FF_LAYER_KIND_COUNT && len < cap; kind++)
        if (ff_layer_key_applies(k, kind)) {
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", ff_config_layer_kind_name(kind));
            all_required &= ff_layer_key_required(k, kind);
        }
    return all_required;
}

static void print_layer_keys(FILE *out)
{
    for (size_t i = 0; i < ff_layer_n_keys; i++) {
        const ff_key *k = &ff_layer_keys[i];
        char path[64], kinds[32], note[64];
        snprintf(path, sizeof path, "model.layers[].%s", k->path);
        int required = kinds_text(k, kinds, sizeof kinds);
        snprintf(note, sizeof note, "; %s %s", required ? "required for" : "used by", kinds);
        print_key(out, path, k, k->def ? k->def : "none", note);
    }
}

void ff_config_print_help(FILE *out)
{
    fprintf(out, "Config keys. A YAML file nests them as mappings (train: {epochs: 10}); "
                 "--set takes the dotted path (--set train.epochs=10).\n\n");
    for (size_t i = 0; i < ff_config_n_keys; i++) {
        const ff_key *k = &ff_config_keys[i];
        if (k->type == FF_KEY_LAYERS) {
            print_key(out, k->path, k, "none", "");
            print_layer_keys(out);
        } else if (k->type == FF_KEY_INTLIST) {
            print_key(out, k->path, k, "[]", "");
        } else {
            char def[FF_PATH_MAX + 2];
            snprintf(def, sizeof def, k->type == FF_KEY_STRING ? "\"%s\"" : "%s", k->def);
            print_key(out, k->path, k, def, "");
        }
    }
}

// ----------------------------------------------------------------------------
// YAML

static void yaml_layer(sbuf *b, const ff_layer_cfg *l)
{
    sb_printf(b, "    - {");
    for (size_t i = 0, n = 0; i < ff_layer_n_keys; i++) {
        const ff_key *k = &ff_layer_keys[i];
        if (!ff_layer_key_applies(k, l->kind))
            continue;
        sb_printf(b, "%s%s: ", n++ ? ", " : "", k->path);
        sb_value(b, k, l);
    }
    sb_printf(b, "}\n");
}

static void yaml_value(sbuf *b, const ff_key *k, const ff_config *cfg)
{
    if (k->type != FF_KEY_LAYERS)
        sb_printf(b, " ");
    if (k->type == FF_KEY_STRING) {
        sb_quoted(b, cfield(k, cfg), k->size);
        sb_printf(b, "\n");
    } else if (k->type == FF_KEY_LAYERS) {
        sb_printf(b, cfg->model.n_layers > 0 ? "\n" : " []\n");
        for (int i = 0; i < cfg->model.n_layers && i < FF_MAX_LAYERS; i++)
            yaml_layer(b, &cfg->model.layers[i]);
    } else {
        sb_value(b, k, cfg);
        sb_printf(b, "\n");
    }
}

size_t ff_config_to_yaml(const ff_config *cfg, char *buf, size_t cap)
{
    sbuf b = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    const char *section = "";
    size_t section_len = 0;
    for (size_t i = 0; i < ff_config_n_keys; i++) {
        const ff_key *k = &ff_config_keys[i];
        const char *dot = strchr(k->path, '.');
        size_t len = dot ? (size_t)(dot - k->path) : 0;
        if (len != section_len || strncmp(section, k->path, len) != 0) {
            section = k->path, section_len = len;
            if (len)
                sb_printf(&b, "%.*s:\n", (int)len, k->path);
        }
        sb_printf(&b, "%s%s:", len ? "  " : "", len ? dot + 1 : k->path);
        yaml_value(&b, k, cfg);
    }
    return b.len;
}

// ----------------------------------------------------------------------------
// flat views: markdown and HParams

typedef void (*flat_fn)(void *ctx, const char *key, const ff_key *k, const void *base);

/* Calls fn for every scalar key, with model.layers flattened to model.layers.N.field. */
static void flatten(const ff_config *cfg, flat_fn fn, void *ctx)
{
    for (size_t i = 0; i < ff_config_n_keys; i++) {
        const ff_key *k = &ff_config_keys[i];
        if (k->type != FF_KEY_LAYERS) {
            fn(ctx, k->path, k, cfg);
            continue;
        }
        for (int l = 0; l < cfg->model.n_layers && l < FF_MAX_LAYERS; l++) {
            const ff_layer_cfg *layer = &cfg->model.layers[l];
            for (size_t j = 0; j < ff_layer_n_keys; j++) {
                if (!ff_layer_key_applies(&ff_layer_keys[j], layer->kind))
                    continue;
                char key[64];
                snprintf(key, sizeof key, "%s.%d.%s", k->path, l, ff_layer_keys[j].path);
                fn(ctx, key, &ff_layer_keys[j], layer);
            }
        }
    }
}

static void md_row(void *ctx, const char *key, const ff_key *k, const void *base)
{
    sbuf *b = ctx;
    char v[FF_PATH_MAX + 64];
    ff_key_format(k, base, v, sizeof v);
    sb_printf(b, "| %s | ", key);
    if (k->type == FF_KEY_STRING && !v[0])
        sb_printf(b, "\"\"");
    for (const char *p = v; *p; p++)
        sb_printf(b, *p == '|' ? "\\|" : "%c", *p);
    sb_printf(b, " |\n");
}

size_t ff_config_to_markdown(const ff_config *cfg, char *buf, size_t cap)
{
    sbuf b = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    sb_printf(&b, "| key | value |\n| --- | --- |\n");
    flatten(cfg, md_row, &b);
    return b.len;
}

typedef struct visit_ctx {
    ff_config_visit_fn fn;
    void *ctx;
} visit_ctx;

static void visit_one(void *ctx, const char *key, const ff_key *k, const void *base)
{
    visit_ctx *v = ctx;
    const void *p = cfield(k, base);
    char text[FF_PATH_MAX + 64];
    switch (k->type) {
    case FF_KEY_INT: v->fn(v->ctx, key, FF_HP_NUMBER, *(const int *)p, NULL, 0); return;
    case FF_KEY_U64: v->fn(v->ctx, key, FF_HP_NUMBER, (double)*(const uint64_t *)p, NULL, 0); return;
    case FF_KEY_FLOAT: v->fn(v->ctx, key, FF_HP_NUMBER, *(const float *)p, NULL, 0); return;
    case FF_KEY_BOOL: v->fn(v->ctx, key, FF_HP_BOOL, 0, NULL, *(const int *)p != 0); return;
    case FF_KEY_STRING:
    case FF_KEY_ENUM:
    case FF_KEY_INTLIST:
    case FF_KEY_LAYERS:
        ff_key_format(k, base, text, sizeof text);
        v->fn(v->ctx, key, FF_HP_STRING, 0, text, 0);
        return;
    }
}

void ff_config_visit(const ff_config *cfg, ff_config_visit_fn fn, void *ctx)
{
    visit_ctx v = {fn, ctx};
    flatten(cfg, visit_one, &v);
}
