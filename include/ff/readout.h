/* readout.h - the linear softmax readout on a frozen FF net's normalised activities.
 *
 * Two uses: (a) supervised nets, a second readout beside goodness-per-label:
 * one pass with the NEUTRAL label embedded, features = the normalised
 * activities of every layer except the first; (b) mode unsupervised_clf, a
 * classifier on a frozen unsupervised backbone (raw images in), features = the
 * normalised activities of clf.layers (default: the last three layers).
 *
 * Features of one sample are the concatenation, layer by layer in the order
 * given, of normalize(net->out[l]) over layer l's whole vector:
 * x / sqrt(mean(x^2) + net->norm_eps), so each layer block has mean square ~1;
 * a layer the next one reads as it is (not pooled first) gives what it hands on
 * (net->in[l + 1]: with model.hand_on batch, standardised per channel). With
 * clf.norm batch (net->head_norm_batch) the last layer too is standardised per
 * channel, by its evaluation statistics (net->comp_stats, the running averages
 * during training), then scaled and shifted (competition_norm affine): CwComp's
 * head on the batch-norm output. The head never sees raw ReLU outputs.
 *
 * The classifier: logits = x W^T + b, softmax cross-entropy (batch mean), and
 * an optimiser of its own (clf.optimizer, clf.lr, clf.momentum, clf.weight_decay;
 * by default Adam, no weight decay). W [classes, features] and b [classes] are
 * one contiguous buffer (params, W then b), the gradients another (grads, same
 * layout), and the optimiser state one more (opt.state: Adam's m then v, or
 * SGD's one vector). ff_readout_init allocates everything,
 * including per-batch scratch for up to max_batch rows; nothing is allocated
 * per batch. ff_readout_free releases it all (safe on a zeroed struct). */
#ifndef FF_READOUT_H
#define FF_READOUT_H

#include <stddef.h>
#include <stdint.h>

#include "ff/config.h"
#include "ff/data.h"
#include "ff/embed.h"
#include "ff/err.h"
#include "ff/net.h"
#include "ff/optim.h"

typedef struct ff_readout {
    int features, classes, max_batch;
    size_t n_params;     /* classes * features + classes */
    float *params;       /* W [classes, features], then b [classes] */
    float *grads;        /* same layout as params */
    ff_optim opt;        /* the head's optimiser (default Adam: beta1 0.9, beta2 0.999,
                            eps 1e-8, no weight decay) */
    float *logits;       /* [max_batch, classes] scratch: logits (predict) or their gradient (training) */
    float *feat;         /* [max_batch, features] scratch for the epoch helpers */
    uint8_t *labels;     /* [2 * max_batch] scratch: true labels, then FF_LABEL_NEUTRAL */
    float *mem;          /* the single allocation behind params, grads, logits, feat */
} ff_readout;

/* The head's optimiser as cfg's clf.* keys give it (Adam's betas and eps fixed at
 * 0.9, 0.999, 1e-8). */
ff_optim_params ff_readout_optim_params(const ff_config *cfg);

/* Zero-initialised weights and biases, fresh optimiser state; opt (copied) is the
 * optimiser, NULL for the default (Adam, no weight decay). Errors: FF_ERR_USAGE
 * (features, classes or max_batch < 1, classes > 255), FF_ERR_NOMEM. */
int ff_readout_init(ff_readout *ro, int features, int classes, int max_batch,
                    const ff_optim_params *opt, ff_err *err);
void ff_readout_free(ff_readout *ro);

/* Back to zero weights and a fresh optimiser state (to retrain from scratch). */
void ff_readout_reset(ff_readout *ro);

/* logits[i, k] = x[i, :] . W[k, :] + b[k] for a [batch, features] x; logits may be ro->logits. */
void ff_readout_logits(const ff_readout *ro, const float *x, int batch, float *logits);

/* Mean softmax cross-entropy over the batch; writes its gradient with respect
 * to W and b into ro->grads (overwriting) and leaves d(loss)/d(logits) =
 * (softmax - onehot) / batch in ro->logits. labels are in [0, classes). */
float ff_readout_loss_grad(ff_readout *ro, const float *x, const uint8_t *labels, int batch);

/* ff_readout_loss_grad, then one optimiser step with learning rate lr. Returns the
 * mean loss before the step. */
float ff_readout_train_batch(ff_readout *ro, const float *x, const uint8_t *labels, int batch,
                             float lr);

/* pred[i] = argmax_k logits[i, k] (first on ties); the logits stay in ro->logits. */
void ff_readout_predict(ff_readout *ro, const float *x, int batch, uint8_t *pred);

/* ---------------------------------------------------------------- features */

/* Sum of the output dims of the chosen layers. */
int ff_readout_feature_dim(const ff_net *net, const int *layers, int n_layers);

/* After ff_net_forward of `batch` rows: out[i, :] = concatenation over the
 * chosen layers of sample i's normalised activity vector ([batch, feature_dim]).
 * For a layer the next one reads unpooled (or pooled already: loss_after_pool) this
 * is net->in[l + 1] (already normalised by the forward pass); the others (the last
 * layer) are normalised here: with net->norm_eps, or standardised per channel
 * (clf.norm batch: net->head_norm_batch; see the top of this file). */
void ff_readout_features(const ff_net *net, const int *layers, int n_layers, int batch,
                         float *out);

/* The layers the readout reads: cfg->clf.layers if given; else for mode
 * supervised every layer except the first (layer 0 alone for a one-layer net),
 * for the others the last three layers (all, if fewer). FF_ERR_USAGE
 * if a clf layer does not exist in net (the backbone may come from a model file). */
int ff_readout_layers(const ff_config *cfg, const ff_net *net, int layers[FF_MAX_LAYERS],
                      int *n_layers, ff_err *err);

/* ---------------------------------------------------------------- epochs */

/* What the net is fed for an image of ds. */
typedef struct ff_readout_input {
    const ff_dataset *ds;
    int neutral;            /* 1: image with FF_LABEL_NEUTRAL embedded by `embed` (supervised nets);
                               0: the raw image (unsupervised nets, input shape [1, rows, cols]) */
    ff_embed_kind embed;
    const ff_aug *aug;      /* NULL, or train.jitter / train.flip: aug[j] augments the image
                               at position j of the image order */
} ff_readout_input;

/* FF_OK if the images of in->ds (embedded as `in` says) are the input net was built
 * for and ro reads `layers` of it; else FF_ERR_FORMAT naming the dataset and both
 * shapes. The epoch functions below take only such input (asserted). */
int ff_readout_check_input(const ff_readout *ro, const ff_net *net, const int *layers,
                           int n_layers, const ff_readout_input *in, ff_err *err);

/* Net inputs of images idx[0..batch) (idx NULL: 0..batch) into x
 * ([batch, ff_shape_dim(net->input)]). */
void ff_readout_make_input(ff_readout *ro, const ff_readout_input *in, const int *idx, int batch,
                           float *x);

/* One epoch of head training with the net frozen: batches of `batch` images
 * taken in `order` (n indices; NULL: 0..n), forward, features, one optimiser step
 * each (a last partial batch included). xbuf holds net->max_batch net inputs.
 * batch must be <= ro->max_batch and net->max_batch; the net's input size must
 * match `in`, and ro->features must equal the feature dim of `layers`.
 * Returns the mean training loss. */
float ff_readout_train_epoch(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                             const ff_readout_input *in, const int *order, int n, int batch,
                             float lr, float *xbuf);

/* scores[i, k] = the head's logit k for image idx[i] (idx NULL: i), for batch images
 * (batch <= ro->max_batch and net->max_batch): one forward pass of the net. Hard
 * negatives can be drawn from these (train.hard_scores: softmax). */
void ff_readout_scores(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                       const ff_readout_input *in, const int *idx, int batch, float *xbuf,
                       float *scores);

/* Error (fraction in [0, 1]) of the readout on the first n images of in->ds
 * (n <= 0: all), in chunks of min(ro->max_batch, net->max_batch). confusion
 * ([true][pred], classes x classes) is filled if not NULL. */
double ff_readout_error(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                        const ff_readout_input *in, int n, float *xbuf, int64_t *confusion);

/* The wrong predictions of the head for the m rows of the net's last forward pass (its
 * features read from net as ff_readout_features does) against labels[0, m); confusion
 * ([classes, classes], [true][pred]) counted into if not NULL, not cleared. */
int64_t ff_readout_wrong_in_net(ff_readout *ro, const ff_net *net, const int *layers,
                                int n_layers, const uint8_t *labels, int m, int64_t *confusion);

/* ff_readout_error from features computed before: n rows of ro->features floats (as
 * ff_readout_features gives them) and their labels. */
double ff_readout_error_features(ff_readout *ro, const float *feat, const uint8_t *labels, int n,
                                 int64_t *confusion);

#endif
