/* objective.h - the Forward-Forward objective and the normalisation between layers.
 *
 * ff_objective is the per-layer loss of a training run (train.loss, its slope,
 * peer normalisation), chosen once from the config and handed to the net's
 * gradient pass (ff_net_ff_grads). The loss kinds are a table in objective.c:
 * a new kind is one entry there, its name in the config schema, and a test.
 *
 * Goodness of one sample is g = sum_j y_j^2 over the layer's whole activity
 * vector (never averaged over the batch). Loss per sample is the logistic
 * log-likelihood: softplus(theta - g) for positive data, softplus(g - theta)
 * for negative data. Normalisation divides each sample's whole vector (all
 * locations and channels) by sqrt(mean(x^2) + eps), without mean subtraction.
 *
 * train.loss competition (channel-wise competition, after CwComp) has no negative
 * data and no label in the input: a layer's output units (conv/local: whole
 * channels of the CHW map; fc: units) fall into FF_CLASS_GROUPS contiguous groups,
 * G_k = the goodness of group k of the output scaled to mean square 1 (or, with
 * competition_norm batch, of the output with every channel standardised over the
 * batch: CwComp's batch norm without its affine part; affine: with it, each
 * standardised channel times a learned scale plus a learned shift), and each image's
 * loss is the cross-entropy of softmax(slope * G) with its true class.
 * Read out (eval.h): argmax_k of the summed goodness of group k over the layers. */
#ifndef FF_OBJECTIVE_H
#define FF_OBJECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/shape.h"

/* train.loss competition: a layer's output falls into this many class groups */
#define FF_CLASS_GROUPS 10

/* Per-layer FF loss terms of one pass (batch means, goodness means). */
typedef struct ff_layer_loss {
    float loss_pos, loss_neg;   /* scale * sum of softplus over positive / negative rows */
    float g_pos, g_neg;         /* mean goodness of positive / negative rows (0 if none) */
    float peer_loss;            /* peer normalisation term (unscaled by strength) */
} ff_layer_loss;

/* The objective of a run. A plain value: copy it freely. */
typedef struct ff_objective {
    ff_loss_kind loss;          /* train.loss: threshold | pairwise | competition */
    float logit_scale;          /* train.logit_scale: slope = logit_scale / units (0: slope 1) */
    float peer_strength;        /* train.peer_norm: peer normalisation strength (0 = off) */
    float peer_decay;           /* train.peer_decay: decay of the running mean activities */
    ff_comp_norm comp_norm;     /* train.competition_norm: sample | batch | affine */
} ff_objective;

/* What a loss may need to know of the layer beyond its output rows. */
typedef struct ff_loss_layer {
    int channels;               /* output channels of the CHW map (fc: units) */
    float *running;             /* competition_norm batch: [2 * channels + 1] running mean,
                                   then running variance of each channel, then the number of
                                   batches they have seen (updated by a training pass; NULL:
                                   not updated); NULL otherwise */
    float *scratch;             /* competition_norm batch: [4 * channels] floats */
    const float *affine;        /* competition_norm affine: [2 * channels], the scale of each
                                   standardised channel, then its shift; NULL otherwise */
    float *gaffine;             /* with affine: d loss / d affine written here, of this
                                   process's rows (data parallel: summed over the processes
                                   with the weights' gradients); NULL: not written */
    /* competition_norm batch with the batch split over processes (data parallel): the
     * channel sums of every process added up (sum(ctx, v, n): v summed in place), and
     * the rows of the whole batch; sum NULL: the rows here are the batch */
    void (*sum)(void *ctx, float *v, int n);
    void *sum_ctx;
    int total_rows;
} ff_loss_layer;

/* competition_norm batch: eps in (y - mean) / sqrt(var + eps), the running
 * averages' decay (m <- decay m + (1 - decay) batch value; the plain average of the
 * batches seen while there are fewer than 1 / (1 - decay)) */
#define FF_COMP_BN_EPS 1e-4f
#define FF_COMP_BN_DECAY 0.9f

/* Fills o from cfg->train. FF_ERR_USAGE if train.loss is not a known kind
 * (cannot happen for a validated config). */
int ff_objective_from_config(ff_objective *o, const ff_config *cfg, ff_err *err);

/* The FF logistic slope of a layer of `units` output units: p(positive) =
 * sigmoid(slope * (g - theta)); 1 (the paper's) unless train.logit_scale > 0. */
float ff_objective_slope(const ff_objective *o, int units);

/* One layer's loss on its ReLU output y ([npos + nneg, dim]): rows [0, npos)
 * are positive, rows [npos, npos + nneg) negative data; labels[0, npos) the
 * classes of the positive rows (read by competition only; may be NULL otherwise).
 * Fills r's loss and goodness terms (peer_loss untouched) and dpre ([npos + nneg,
 * dim]) = d(loss)/d(pre-activation); theta is the layer's threshold, the slope is
 * ff_objective_slope(o, dim), loss and gradient are multiplied by scale.
 * g: scratch of ff_objective_scratch(o, npos + nneg) floats. A paired loss without
 * positive rows (a negative-only pass) scores the negatives as threshold does.
 * ly: the layer's channels and, for competition_norm batch, its running statistics
 * and scratch (may be NULL for the other losses).
 * Competition: nneg must be 0 and ly->channels a multiple of FF_CLASS_GROUPS; r->g_pos
 * is the mean goodness of the true class's group, r->g_neg of the other groups. */
void ff_objective_layer_loss(const ff_objective *o, const float *y, const uint8_t *labels,
                             int npos, int nneg, int dim, float theta, float scale,
                             const ff_loss_layer *ly, float *g, float *dpre, ff_layer_loss *r);

/* Floats of scratch ff_objective_layer_loss needs for `rows` rows. */
size_t ff_objective_scratch(const ff_objective *o, int rows);

/* ---- the running statistics: the objective's state beside the parameters ----
 * The objective says what it keeps per layer, what it starts at and how a training batch
 * moves it; the net only stores it (ff_net.aux, checkpointed, gathered with the model,
 * read by the evaluation forward). Per layer:
 * - peer normalisation's running mean of each output unit, [out dim] (always kept, so a
 *   model's aux length does not hang on train.peer_norm), updated by ff_objective_peer_norm;
 * - with ff_objective_batch_norm: each channel's running mean and variance, then the
 *   batches seen, [2 * channels + 1] (ff_loss_layer.running), updated by the loss and by
 *   ff_objective_comp_stats_set, read by ff_objective_class_goodness_add. */

/* 1 if the objective standardises channels over the batch (train.loss competition with
 * competition_norm batch or affine): it keeps channel statistics and needs their scratch. */
int ff_objective_batch_norm(const ff_objective *o);

/* Floats of channel statistics a layer with output shape `out` keeps (0 without batch
 * norm), and their start: mean 0, variance 1, no batches seen. */
size_t ff_objective_channel_stats_floats(const ff_objective *o, ff_shape out);
void ff_objective_channel_stats_init(const ff_objective *o, ff_shape out, float *stats);

/* Floats of scratch the channel statistics need for a net whose widest layer has
 * max_channels channels (ff_loss_layer.scratch; 0 without batch norm). */
size_t ff_objective_channel_scratch(const ff_objective *o, int max_channels);

/* Peer normalisation (train.peer_norm) of one layer: moves its running means mean
 * ([dim]) towards the column means of y's npos positive rows ([npos, dim] ReLU outputs)
 * and adds the strength-weighted gradient of mean_k (mean - mean_k)^2 to their dpre; returns
 * that term unweighted. With ly->sum (a batch split over processes) the column means are
 * summed over them and total_pos is the whole batch's positive rows (else npos). col:
 * scratch of `block` floats, ones: `block` floats of 1.0 (column sums by GEMV, a block of
 * columns at a time). */
float ff_objective_peer_norm(const ff_objective *o, float *mean, const float *y, int npos,
                             int dim, const ff_loss_layer *ly, float *col, const float *ones,
                             int block, float *dpre);

/* The class with the highest of 10 scores (the first of equal ones): the prediction
 * of every readout (goodness per label, class groups, the softmax head). */
int ff_objective_argmax10(const float *s);

/* scores[i * 10 + k] += w * (the goodness of class group k of row i) for a [batch,
 * dim] matrix of ReLU outputs with `channels` channels (a multiple of FF_CLASS_GROUPS):
 * running NULL (competition_norm sample): of the row scaled to mean square 1, dim G_k /
 * sum_j G_j; else ([2 * channels + 1], competition_norm batch): of every channel standardised
 * by the running mean and variance (scratch: [2 * channels] floats), then, with affine
 * ([2 * channels] or NULL, competition_norm affine), times its scale plus its shift.
 * w = the slope gives the competition loss's logits. */
void ff_objective_class_goodness_add(const float *y, int batch, int dim, int channels,
                           const float *running, const float *affine, float *scratch, float w,
                           float *scores);

/* competition_norm batch: the batch's mean and 1 / sqrt(var + eps) of each channel of y
 * (n rows of dim; summed over processes as in the loss) into ly->scratch[0, C) and
 * [C, 2C), as a training pass's loss leaves them, without a loss or running update
 * (model.hand_on batch below a frozen layer). */
void ff_objective_comp_batch_stats(const float *y, int n, int dim, const ff_loss_layer *ly);

/* competition_norm batch, the statistics evaluation reads computed afresh for the
 * current weights: ff_objective_comp_stats_add adds each channel's sum of y and of y^2 over n
 * [n, dim] ReLU-output rows into sums ([2 * channels]: sums of y, then of y^2;
 * scratch: [2 * channels] floats); ff_objective_comp_stats_set writes their mean and (biased)
 * variance over `count` values per channel into running ([2 * channels + 1]) and
 * marks it as having seen enough batches for the full decay. */
void ff_objective_comp_stats_add(const float *y, int n, int dim, int channels, float *scratch,
                       double *sums);
void ff_objective_comp_stats_set(float *running, const double *sums, int channels, double count);

/* numerically stable log(1 + exp(x)) and 1 / (1 + exp(-x)) */
float ff_objective_softplus(float x);
float ff_objective_sigmoid(float x);

/* g[i] = sum_j y[i, j]^2 for a [batch, dim] matrix. */
void ff_objective_goodness(const float *y, int batch, int dim, float *g);

/* FF loss of a batch of ReLU outputs y ([batch, dim]) as positive (sign = +1)
 * or negative (sign = -1) data: returns
 * scale * sum_i softplus(sign * slope * (theta - g_i)) (slope 1 is the paper's
 * logistic), fills g (if not NULL) and dpre = d(returned loss)/d(pre-activation)
 * = scale * dsoftplus * (-2 sign slope y) masked by y > 0 (if dpre not NULL).
 * Use scale = 1/batch for the batch mean. */
float ff_objective_loss(const float *y, int batch, int dim, float theta, float slope, int sign,
                 float scale, float *g, float *dpre);

/* Pairwise FF loss (train.loss: pairwise, "SymBa"): positive row i and negative
 * row i are the same image with the true and a wrong label. Returns
 * scale * sum_i softplus(slope * (gn_i - gp_i)), fills gp, gn (if not NULL) and
 * dpre_pos, dpre_neg = d(returned loss)/d(pre-activation), masked by y > 0 (if
 * not NULL). No threshold: only the gap between the pair's goodness counts. */
float ff_objective_pair_loss(const float *ypos, const float *yneg, int batch, int dim, float slope,
                      float scale, float *gp, float *gn, float *dpre_pos, float *dpre_neg);

/* out[i, :] = x[i, :] / sqrt(mean_j x[i, j]^2 + eps); out may equal x. */
void ff_objective_normalize(const float *x, float *out, int batch, int dim, float eps);

/* Gradient of the normalisation: dx from dout (x is the un-normalised input). */
void ff_objective_normalize_backward(const float *x, const float *dout, float *dx, int batch, int dim,
                           float eps);

#endif
