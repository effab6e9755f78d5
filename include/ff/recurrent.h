/* recurrent.h - the paper's recurrent FF net (Hinton 2022, section 4): a static image
 * as a video of repeated frames, every hidden layer updated from the layer below and
 * the layer above at the step before, the label clamped at the top (model.recurrent).
 *
 * The net is an ff_net of fc and local layers built with ff_net_spec.recurrent: layer l
 * has its bottom-up W and b as in a feed-forward net (fc: W [d_l, d_{l-1}]; local: one
 * [C_l, K] matrix per location, its kernel, stride and padding), and top-down weights Wtd
 * in the same slice of the flat parameter buffer, after b. So the optimiser, checkpoints,
 * resume and data parallelism see one buffer, as for any net. Wtd is dense, [d_l, d_{l+1}]
 * (the top layer: [d_top, 10], from the label), unless layers l and l + 1 are both local
 * (ff_layer.td_local): then it is a locally connected map from layer l + 1's output to
 * layer l's, with l's kernel k, stride 1 and "same" padding (k - 1) / 2, [P_l][C_l,
 * C_{l+1} k k] as a local layer's W (the paper's CIFAR-10 nets: 11x11, 363 top-down inputs
 * per unit); the net refuses (FF_ERR_USAGE, the config's file:line:col) an even kernel or
 * a layer above on another grid. Local maps run as im2col + one GEMM per location on
 * chunks of 64 rows (ff_recurrent.col / t / index); the net keeps no patches for them.
 *
 * With n(v) = v / sqrt(mean(v^2) + eps) (model.norm_eps), x the image, c the clamped
 * one-hot label and d = model.recurrent.damping:
 *   bottom-up pass: h_0[l] = relu(W_l n(h_0[l - 1]) + b_l), h_0[-1] = x (no top-down);
 *   step t = 1..T:  y_t[l] = relu(W_l n(h_{t-1}[l - 1]) + Wtd_l n(h_{t-1}[l + 1]) + b_l),
 *                   h_t[l] = d h_{t-1}[l] + (1 - d) y_t[l],
 *   with h[-1] = x and h[L] = c (so the top layer reads n(c), sqrt(10) at the label):
 *   every layer from the states of step t - 1 (synchronous updates).
 * Training: at every step t each layer's own FF loss (train.loss threshold or pairwise,
 * on the goodness of h_t[l]) with positives (the true label clamped) and negatives (a
 * wrong one); its gradient stays in its layer and its step: d h_t / d pre = (1 - d) where
 * y_t > 0, and its inputs n(h_{t-1}[.]) are constants (no backpropagation through time).
 * Each parameter gradient is the mean over the T steps, one optimiser step per pass.
 * Evaluation: for each of the 10 labels the same bottom-up pass and steps; the score of
 * a label is the mean over steps eval_first..eval_last of the goodness summed over the
 * evaluated layers (eval.layers; default every hidden layer); the argmax wins.
 *
 * Everything is allocated by ff_recurrent_init for up to max_rows rows; the passes
 * allocate nothing. Ownership: ff_recurrent_init fills a caller's struct, ff_recurrent_free
 * releases it (safe on a zeroed struct). */
#ifndef FF_RECURRENT_H
#define FF_RECURRENT_H

#include <stdint.h>

#include "ff/config.h"
#include "ff/embed.h"
#include "ff/err.h"
#include "ff/net.h"
#include "ff/objective.h"

typedef struct ff_recurrent {
    int active;                    /* 1: model.recurrent (iterations > 0) */
    int iterations;                /* T */
    float damping;                 /* d */
    float eps;                     /* model.norm_eps */
    int eval_first, eval_last;     /* the readout's steps, 1-based, inclusive */
    int readout_iteration;         /* the step ff_recurrent_forward stops at (>= 1) */
    int max_rows;                  /* rows of every buffer (the net's max_batch) */
    uint8_t *top;                  /* [max_rows] the label clamped at the top of each row */
    float *x0;                     /* [max_rows, input dim] the normalised image */
    float *c;                      /* [max_rows, 10] the clamped one-hot labels */
    float *u0;                     /* [max_rows, d_0] layer 0's W_0 n(x) + b_0 from the
                                      bottom-up pass: the same at every step */
    float *h[FF_MAX_LAYERS];       /* [max_rows, d_l] the states h_t */
    float *hn[FF_MAX_LAYERS];      /* [max_rows, d_l] n(h_{t-1}): this step's inputs */
    float *y[FF_MAX_LAYERS];       /* [max_rows, d_l] y_t, the computed (undamped) state */
    float *dpre;                   /* [max_rows, largest d_l] the gradient scratch */
    float *g;                      /* objective scratch (ff_objective_scratch rows) */
    float *gl;                     /* [FF_MAX_LAYERS, max_rows] goodness of each layer */
    float *sum;                    /* [max_rows] the readout's window sum */
    float *score;                  /* [max_rows] scores of a chunk (ff_recurrent_error) */
    float *lscore;                 /* [FF_MAX_LAYERS, max_rows] each layer's, likewise */
    float *col;                    /* local layers: [64 rows, P * K] the patches of a chunk of
                                      rows (the largest map's), NULL without local layers */
    float *t;                      /* local layers: [64 rows, largest d_l] a chunk per location */
    int32_t *index;                /* local layers: [largest P * K] im2col's gather index */
    float *xpad;                   /* local layers: [64 rows, largest padded input] the rows
                                      of a padded map's input inside their zero border */
    float *mem;                    /* the single allocation behind the buffers */
} ff_recurrent;

/* Sets r up for net (built with ff_net_spec.recurrent from cfg) if cfg has
 * model.recurrent, and points net->recurrent at r (so r must stay where it is while net
 * is used); otherwise leaves r zeroed (r->active 0) and net as it is. FF_ERR_USAGE if a
 * layer is neither fc nor local (or has label planes or a pool), FF_ERR_NOMEM. */
int ff_recurrent_init(ff_recurrent *r, ff_net *net, const ff_config *cfg, ff_err *err);
void ff_recurrent_free(ff_recurrent *r);

/* The bottom-up pass of `rows` images x ([rows, input dim]) into h_0 (labels not read). */
void ff_recurrent_bottom_up(ff_recurrent *r, ff_net *net, const float *x, int rows);

/* r->c = n(the one-hot of labels[0, rows)); labels NULL: n(the neutral label, 0.1 each),
 * all ones. */
void ff_recurrent_clamp(ff_recurrent *r, const uint8_t *labels, int rows);

/* One synchronous step t-1 -> t of every layer on `rows` rows (hn, y, h); after
 * ff_recurrent_bottom_up of these rows' images (layer 0's bottom-up term is kept from it,
 * u0), the states h may be set in between. */
void ff_recurrent_step(ff_recurrent *r, ff_net *net, int rows);

/* What ff_net_forward does for a recurrent net (the softmax head's features, histograms):
 * the neutral label clamped, the bottom-up pass and steps up to readout_iteration; then
 * net->out[l] = h[l] and net->in[l + 1] = n(h[l]) (in[0] = n(x)), as a feed-forward
 * pass leaves them. */
void ff_recurrent_forward(ff_recurrent *r, ff_net *net, const float *x, int rows);

/* After ff_recurrent_step: every layer's loss on its state h_t (obj, its threshold; rows
 * [0, npos) positive, [npos, npos + nneg) negative; loss and gradient times scale) into
 * res[l], and its parameter gradients through this step alone (the inputs n(h_{t-1}) held
 * fixed) written (beta 0) or added (beta 1) into the layer's W, b and Wtd gradients. */
void ff_recurrent_step_grads(ff_recurrent *r, ff_net *net, const ff_objective *obj, int npos,
                             int nneg, float scale, float beta, ff_layer_loss *res);

/* The FF pass of the recurrent net: rows x[0, npos) positive with the labels
 * top[0, npos) clamped, x[npos, npos + nneg) negative with top[npos, ...) clamped;
 * the bottom-up pass, then T steps, each layer's loss (obj, its threshold) at every step
 * and its parameter gradients (W, b, Wtd) written into net->grads as the mean over the
 * steps, loss and gradient times `scale`. iters[t][l] (t = 0..T; 0: the bottom-up pass,
 * goodness only) receives layer l's terms at step t (loss scaled by scale / T); out[l]
 * (if not NULL) their sums over t = 1..T (losses) and their means (goodness). Data
 * parallel: net->peers->grads_ready(l) once layer l's gradient is complete. */
void ff_recurrent_ff_grads(ff_recurrent *r, ff_net *net, const ff_objective *obj, const float *x,
                           const uint8_t *top, int npos, int nneg, float scale,
                           ff_layer_loss iters[FF_MAX_ITERS + 1][FF_MAX_LAYERS],
                           ff_layer_loss *out);

/* The goodness readout of n images x ([n, input dim], no label in them): scores[i * 10 +
 * k] = the mean over steps eval_first..eval_last of the sum over the evaluated layers of
 * w_l * goodness with label k clamped (w_l = the layer's slope if as_logits, else 1);
 * layers (if not NULL) [l * n * 10 + i * 10 + k] each layer's own (unweighted). Any n:
 * chunks of max_rows / 10 images. */
void ff_recurrent_scores(ff_recurrent *r, ff_net *net, const float *x, int n, int as_logits,
                         float *scores, float *layers);

/* The readout's error on n images x with their labels: the fraction of images whose
 * argmax score is not their label; confusion (10x10, [true][pred], may be NULL) added to;
 * layer_error[l] (may be NULL) each layer's own readout's error. */
double ff_recurrent_error(ff_recurrent *r, ff_net *net, const float *x, const uint8_t *labels,
                          int n, double *layer_error, int64_t *confusion);

/* Multiply-adds per image of one step (bottom-up and top-down products). */
double ff_recurrent_step_flops(const ff_net *net);

/* What --dry-run says of the recurrent net of cfg (built as net): "# ..." lines into buf
 * (as snprintf: returns the length it needs; "" without model.recurrent). */
size_t ff_recurrent_describe(const ff_net *net, const ff_config *cfg, char *buf, size_t cap);

#endif
