/* net.h - a stack of FF layers with its flat parameter and gradient buffers
 * and the activation buffers of one forward pass.
 *
 * Memory: ff_net_build allocates everything once (parameters, gradients,
 * activations for up to max_batch samples, layer workspace, the receptive
 * fields conv/local layers keep between forward and backward); nothing is
 * allocated per batch. params and grads are each ONE contiguous buffer, layer
 * after layer (W then b), so an optimiser step or an allreduce takes the whole
 * net in one call. ff_net_free releases it all (safe on a zeroed struct). */
#ifndef FF_NET_H
#define FF_NET_H

#include "ff/config.h"
#include "ff/err.h"
#include "ff/layer.h"
#include "ff/objective.h"

struct ff_rng;

/* Hooks for a net whose batch is split over several processes (src/parallel.c
 * sets them; a net alone has none: ff_net.peers NULL). */
typedef struct ff_net_peers {
    void *ctx;
    void (*grads_ready)(void *ctx, int layer); /* layer's slice of grads is complete */
    void (*sum)(void *ctx, float *v, int n);   /* v summed over the processes, in place */
    int total_pos;                             /* positive rows over all processes */
} ff_net_peers;

typedef struct ff_net {
    int n_layers;                  /* trainable layers only: pool entries are folded in */
    ff_layer layers[FF_MAX_LAYERS];
    ff_layer pool[FF_MAX_LAYERS];  /* pool[l]: the pool entry of model.layers just before
                                      layer l (kind FF_LAYER_POOL; see ff_net_pooled): layer
                                      l's input is normalise(pool(output of layer l - 1, or
                                      the image for l = 0)), label planes added after it */
    float *pooled;                 /* [max_batch, largest pool output] scratch, or NULL */
    ff_shape input;
    int label_every_layer;         /* layers after the first get 10 label planes too */
    ff_embed_kind label_embedding; /* where the label sits in the input (overlay, channels) */
    float norm_eps;
    int max_batch;
    size_t n_params;
    float *params;                 /* all weights and biases */
    float *grads;                  /* same layout as params */
    float *in[FF_MAX_LAYERS];      /* normalised input of layer l: [max_batch, in dim]; with
                                      label_every_layer, for l > 0 the normalised output of
                                      layer l - 1 followed by 10 label planes (CHW channels) */
    float *out[FF_MAX_LAYERS];     /* ReLU output of layer l: [max_batch, out dim] */
    float *post[FF_MAX_LAYERS];    /* model.loss_after_pool, a pool after layer l (pool[l + 1],
                                      the last layer's too): [max_batch, pooled dim], out[l]
                                      pooled, what layer l's loss, statistics, readout and
                                      head read and what layer l + 1's input is made of;
                                      else NULL (see ff_net_loss_out) */
    float *dpost;                  /* [max_batch, largest post dim] scratch, or NULL */
    float *dpre;                   /* [max_batch, max out dim] scratch for gradients */
    float *goodness;               /* scratch: ff_objective_scratch of max_batch rows (at least max_batch) */
    float *ws;                     /* layer workspace */
    float *patches[FF_MAX_LAYERS]; /* conv/local: [max_batch, patch floats] the training
                                      forward pass keeps for the backward pass; NULL for fc */
    float *patch_mem;              /* the single allocation behind patches */
    size_t n_aux;                  /* floats of training state outside the parameters */
    float *aux;                    /* the objective's running statistics, stored here (sizes,
                                      start and updates: objective.h): peer normalisation's
                                      means and the competition loss's channel statistics
                                      (checkpointed) */
    float *peer_mean[FF_MAX_LAYERS]; /* views into aux: [out dim of layer l] */
    float *comp_stats[FF_MAX_LAYERS]; /* train.competition_norm batch: views into aux, [2 *
                                      out channels of layer l + 1] running mean and variance
                                      of each channel, batches seen (objective.h); else NULL */
    float *comp_scratch;           /* competition_norm batch: [4 * largest channel count] */
    float *ones;                   /* [max_batch] of 1.0 for column sums by GEMV */
    float *act_mem;                /* the single allocation behind in/out/dpre/goodness */
    const ff_net_peers *peers;     /* NULL: the whole batch is here */
    struct ff_recurrent *recurrent; /* model.recurrent (set by ff_recurrent_init); NULL
                                      otherwise */
    void (*forward_hook)(struct ff_recurrent *r, struct ff_net *net, const float *x, int batch);
                                   /* set with recurrent (ff_recurrent_forward, the states at
                                      the readout's iteration with the neutral label): what
                                      ff_net_forward runs instead of the layer stack. A hook,
                                      so the layer stack does not import the net built on it */
    int hand_on_batch;             /* model.hand_on batch: in[l] (l > 0) is out[l - 1] (pooled)
                                      standardised per channel: with the batch's statistics
                                      in a training pass, with comp_stats otherwise */
    int head_norm_batch;           /* clf.norm batch: the softmax head sees a layer that is not
                                      handed on (the last) standardised per channel with its
                                      evaluation statistics (comp_stats), scaled and shifted */
    unsigned char evaluated[FF_MAX_LAYERS]; /* 1: the goodness readout sums layer l's goodness
                                      (eval.layers; default every layer but the first) */
    unsigned char frozen[FF_MAX_LAYERS]; /* 1: layer l is past its train_epochs: the FF pass
                                      runs its forward only (no loss, statistics or
                                      gradients); set by the trainer for each step */
} ff_net;

/* 1 if a pool entry of model.layers precedes trainable layer l (net->pool[l]; l =
 * n_layers: a pool at the end of model.layers, model.loss_after_pool only). */
static inline int ff_net_pooled(const ff_net *net, int l)
{
    return l < FF_MAX_LAYERS && net->pool[l].kind == FF_LAYER_POOL;
}

/* The rows layer l's loss, channel statistics, goodness readout and softmax-head
 * features read: its pooled output (model.loss_after_pool with a pool after it), else
 * its ReLU output; and their shape. */
static inline float *ff_net_loss_out(const ff_net *net, int l)
{
    return net->post[l] ? net->post[l] : net->out[l];
}
static inline ff_shape ff_net_loss_shape(const ff_net *net, int l)
{
    return net->post[l] ? net->pool[l + 1].out : net->layers[l].out;
}

/* What a net is built from: its layer list and how the layers hand on, nothing else of
 * a config (ff_net_spec_of takes them from one). */
typedef struct ff_net_spec {
    const char *origin;            /* where the layers were written, for messages ("" none) */
    const ff_layer_cfg *layers;    /* model.layers, pools included */
    int n_layers;
    ff_shape input;                /* what the net is fed: the embedded image */
    int max_batch;                 /* rows of every buffer */
    int label_input;               /* the label is in the input (supervised): checked against
                                      the embedding, label planes where it makes them */
    ff_embed_kind label_embedding;
    int label_every_layer;         /* model.label_every_layer */
    int hand_on_batch;             /* model.hand_on batch */
    int head_norm_batch;           /* clf.norm batch */
    int loss_after_pool;           /* model.loss_after_pool */
    float norm_eps;                /* model.norm_eps */
    const int *eval_layers;        /* eval.layers (n_eval_layers 0: every layer but the first;
                                      recurrent: every layer) */
    int n_eval_layers;
    int recurrent;                 /* model.recurrent: each layer also has top-down weights
                                      from the layer above (the top one from the 10 label
                                      values), in its slice of the flat buffers after b
                                      (ff_layer.Wtd; include/ff/recurrent.h) */
} ff_net_spec;

/* The spec of cfg's model for inputs of `input` shape and batches of up to max_batch. */
ff_net_spec ff_net_spec_of(const ff_config *cfg, ff_shape input, int max_batch);

/* Builds the spec's layers, allocates for batches of up to spec->max_batch and
 * initialises parameters from rng. What the objective needs of the net comes from obj:
 * each layer's slope (ff_objective_slope: eval's as_logits weight), its affine floats
 * and running statistics (competition_norm), the loss's scratch. Geometry and size
 * errors are FF_ERR_USAGE naming the layer and its YAML line. Pool entries (input stages)
 * become net->pool[] of the next trainable layer, so net->layers, n_layers and every
 * per-layer index (logs "layer<i>", clf.layers, the evaluated and read-out layers) count
 * trainable layers only; a pool must be followed by a trainable layer and not by another
 * pool. */
int ff_net_build_spec(ff_net *net, const ff_net_spec *spec, const ff_objective *obj,
                      struct ff_rng *rng, ff_err *err);

/* ff_net_build_spec of cfg's model (ff_net_spec_of) with cfg's objective. */
int ff_net_build(ff_net *net, const ff_config *cfg, ff_shape input, int max_batch,
                 struct ff_rng *rng, ff_err *err);
void ff_net_free(ff_net *net);

/* Points the net (params, grads and every layer's W, b, gW, gb views) at other
 * buffers of n_params floats each, the same layout, and returns nothing: the
 * caller copies the values it needs and must point the net back at its own
 * buffers (the ones ff_net_free releases) before freeing it. Data parallel on one
 * node keeps the weights in memory shared by every process (src/parallel.c). */
void ff_net_use_buffers(ff_net *net, float *params, float *grads);

/* Forward pass of `batch` samples x ([batch, input dim], not normalised):
 * fills net->in[l] and net->out[l] for every layer. With label_every_layer the
 * label values are read back from each embedded sample of x. A recurrent net
 * (net->forward_hook): ff_recurrent_forward (include/ff/recurrent.h). */
void ff_net_forward(ff_net *net, const float *x, int batch);

/* ff_net_forward of layers [0, l_end) only (out[l] of later layers untouched). */
void ff_net_forward_to(ff_net *net, const float *x, int batch, int l_end);

/* Layer l's loss rows of the last forward pass (ff_net_loss_out) with each channel
 * standardised by the layer's evaluation statistics (comp_stats), then scaled and shifted
 * by its affine part if it has one: what model.hand_on batch hands on outside a training
 * pass, and the softmax head's features with clf.norm batch. Row i goes to
 * out + i * out_stride. Needs batch-norm statistics (competition_norm batch or affine). */
void ff_net_standardise_eval(const ff_net *net, int l, int batch, float *out, size_t out_stride);

/* The forward pass for goodness alone: sum[r] = the sum over the evaluated layers,
 * in layer order from 0, of w_l * (goodness of row r at layer l), w_l = the layer's
 * slope if as_logits, else 1 (the same floats as summing ff_objective_goodness of each
 * net->out[l] after ff_net_forward). A stack of conv layers runs in blocks of
 * FF_CONV_CHUNK rows that all use the first rows of the net's buffers (they stay in
 * cache), so afterwards net->in / net->out hold only the last block's rows. */
void ff_net_forward_goodness(ff_net *net, const float *x, int batch, int as_logits, float *sum);

/* ff_net_forward_goodness, and if layers is not NULL also every trainable layer's own
 * goodness: layers[l * batch + r] for row r at layer l (unweighted; every layer, evaluated
 * or not), the same floats the sum adds. */
void ff_net_forward_goodness_layers(ff_net *net, const float *x, int batch, int as_logits,
                                    float *sum, float *layers);

/* One FF pass: forward rows x[0, npos) as positive and x[npos, npos + nneg) as
 * negative data, then every layer's own loss (obj, with the layer's threshold)
 * and parameter gradients, written (not accumulated) into net->grads. labels:
 * the classes of the positive rows (train.loss competition; NULL for the others,
 * which see the label in the input). Loss and
 * gradients are multiplied by `scale` (1 / batch for batch means). out[l]
 * (if not NULL) receives layer l's terms (ff_layer_loss, objective.h).
 * With obj->peer_strength > 0, the positive rows also update each unit's running
 * mean activity m_j <- decay m_j + (1 - decay) mean_i y_ij and add the gradient
 * of strength * mean_j (mean_k m_k - m_j)^2 (the pull of every unit's mean
 * toward the layer's average; reported in out[l].peer_loss). A frozen layer
 * (net->frozen[l]) only passes its output on: out[l] is zero and its gradients
 * are left as they were. */
void ff_net_ff_grads(ff_net *net, const ff_objective *obj, const float *x, const uint8_t *labels,
                     int npos, int nneg, float scale, ff_layer_loss *out);

/* ff_net_ff_grads on layers [l0, l1) only: for l0 > 0, net->in[l0] already holds
 * the normalised input of layer l0 (a layer pipeline's received block) and x is
 * ignored. Grads outside the layers are not written. */
void ff_net_ff_grads_layers(ff_net *net, const ff_objective *obj, const float *x,
                            const uint8_t *labels, int l0, int l1, int npos, int nneg, float scale,
                            ff_layer_loss *out);

/* net->in[l] (0 < l < n_layers) = the normalised out[l - 1] of `batch` rows: what
 * layer l - 1 hands on (without label planes). */
void ff_net_hand_on(ff_net *net, int l, int batch);

/* Total multiply-adds per sample of a forward pass. */
double ff_net_flops(const ff_net *net);

#endif
