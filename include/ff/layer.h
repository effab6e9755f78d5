/* layer.h - one trainable FF layer: shape inference, forward and parameter
 * gradients, dispatched by kind (ff_layer_ops) to layer_fc.c / layer_conv.c / layer_local.c;
 * and the parameter-free pool (layer_pool.c), an input stage the net folds into the
 * next trainable layer's input (ff_layer_ops.input_stage, net.h).
 *
 * Activations are [batch, dim] row-major, each sample's vector in CHW order
 * (channel-major). A layer does not own its parameters: W, b, gW, gb are views
 * into the network's flat buffers (net.h), laid out W then b, contiguously (then,
 * with train.competition_norm affine, the loss's per-channel scale and shift). */
#ifndef FF_LAYER_H
#define FF_LAYER_H

#include <limits.h>
#include <stddef.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/shape.h"

typedef struct ff_layer {
    ff_layer_kind kind;
    ff_shape in, out;
    int kernel, stride;     /* conv / local / pool */
    int pad;                /* conv / local: zero padding on each side */
    int groups;             /* conv: G channel groups (1 for every other kind): W is
                               [out.c, in.c / G * k * k], output block g of out.c / G channels
                               sees input block g of in.c / G; G > 1 needs const_c = 0 */
    int direct;             /* conv: 1 if its geometry suits the direct loops (set up by
                               src/conv_direct.c's rule; used while const_c = 0), 0: im2col +
                               GEMM (tests clear it to run the same layer on both) */
    ff_pool_kind pool;      /* pool: max or average */
    int const_c;            /* conv / local: the last const_c input channels are planes with
                               one value each (label planes); they enter as a per-sample
                               bias, not through im2col (0 = none); padding does not
                               touch them: a plane has its value in every window */
    float threshold;        /* goodness threshold theta */
    float slope;            /* FF logistic slope: p(positive) = sigmoid(slope * (g - theta)) */
    int train_epochs;       /* learns during the first train_epochs epochs only (0 = always) */
    size_t n_weights;       /* number of floats in W */
    size_t n_bias;          /* number of floats in b */
    size_t n_affine;        /* train.competition_norm affine: 2 * out.c (the scale of each
                               channel, then its shift); 0 otherwise. Set by the net. */
    size_t n_topdown;       /* model.recurrent: the floats of top-down weights from the layer
                               above (the top layer: from the 10 label values); 0 otherwise.
                               Dense: out dim x td_dim ([out, td_dim] row-major, as fc's W);
                               td_local: [P][out.c, above.c * k * k] as a local layer's W.
                               Set by the net. */
    int td_dim;             /* model.recurrent: the dim of what comes down (0 without) */
    int td_local;           /* model.recurrent: 1 if the top-down map is locally connected (a
                               local layer under a local layer with the same grid: this layer's
                               kernel, stride 1, padding td_pad = (kernel - 1) / 2, from the
                               layer above's output to this one's); 0: dense */
    int td_pad;             /* model.recurrent, td_local: the top-down map's padding */
    size_t param_off;       /* offset of W in the net's flat buffers; b follows W, then
                               the affine floats, then the top-down weights */
    float *W, *b, *affine;  /* views into net params (affine NULL without) */
    float *gW, *gb, *gaffine; /* views into net grads */
    float *Wtd, *gWtd;      /* model.recurrent: the top-down weights and their gradient (NULL
                               without) */
} ff_layer;

/* The floats of a layer's parameters in the net's buffers: W, b, affine and top-down. */
static inline size_t ff_layer_n_params(const ff_layer *l)
{
    return l->n_weights + l->n_bias + l->n_affine + l->n_topdown;
}

/* Samples per im2col + sgemm round of a conv layer (layer_conv.c); the net runs a
 * stack of conv layers in blocks of this many rows (net.c), so the rounds, and the
 * sgemm calls, are the same either way. */
#ifndef FF_CONV_CHUNK
#define FF_CONV_CHUNK 64
#endif

/* What one layer kind provides. Each src/layer_<kind>.c defines its ops
 * (ff_fc_ops, ...) and layer.c's table maps ff_layer_kind to them: a new kind is
 * its enum value (config.h), its file, and one line in that table. The
 * ff_layer_* functions below dispatch through it. */
typedef struct ff_layer_ops {
    const char *name;       /* its model.layers[].type in the config: "fc" */
    const char *keys;       /* the model.layers[] keys it takes besides type, space-separated */
    const char *required;   /* those of `keys` a config must give */
    int receptive_fields;   /* 1: each output sees a kernel x kernel window of the input
                               (conv, local): label planes enter as a per-sample bias
                               (ff_layer.const_c); layer 0's filters are kernel-sized images */
    int input_stage;        /* 1: no parameters, goodness or loss (pool): the net applies it
                               to the output of the layer below (or the image) to make the
                               next trainable layer's input, and never lists it as a layer */
    /* fills l->out, n_weights, n_bias (l->kind, in, kernel, stride are set) */
    int (*setup)(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err);
    size_t (*fan_in)(const ff_layer *l);                /* weights per output unit */
    size_t (*workspace)(const ff_layer *l, int batch);
    size_t (*patch_floats)(const ff_layer *l);          /* NULL: keeps no patches */
    void (*forward)(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                    float *patches);
    void (*backward)(const ff_layer *l, const float *x, const float *patches, const float *dpre,
                     int batch, float beta, float *ws);
    double (*flops)(const ff_layer *l);
} ff_layer_ops;

/* The ops of `kind`; NULL if it is not a layer kind. */
const ff_layer_ops *ff_layer_ops_of(ff_layer_kind kind);

extern const ff_layer_ops ff_fc_ops, ff_conv_ops, ff_local_ops, ff_pool_ops;

/* A layer's input, output and weights stay within this many floats, so
 * ff_shape_dim (an int) and per-layer float counts cannot overflow. */
#define FF_LAYER_MAX_FLOATS ((long long)INT_MAX / (long long)sizeof(float))

/* Fills l->out, n_weights, n_bias from cfg and the input shape; FF_ERR_USAGE
 * if the kind is unknown, the geometry does not fit, or the input, output or
 * weights exceed FF_LAYER_MAX_FLOATS (messages name the layer index; ff_net_build
 * adds the YAML position). */
int ff_layer_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err);

/* Initial weights randn / sqrt(fan_in), biases 0; affine scales 1, shifts 0. */
struct ff_rng;
void ff_layer_init_params(ff_layer *l, struct ff_rng *rng);

/* Floats of scratch space forward/backward need for a batch of `batch`. */
size_t ff_layer_workspace(const ff_layer *l, int batch);

/* Floats per sample of the receptive fields (im2col patches) a conv or local
 * layer can keep from its forward pass for the backward pass (0 for fc). */
size_t ff_layer_patch_floats(const ff_layer *l);

/* y = relu(layer(x)) for a batch; x is [batch, in dim], y [batch, out dim].
 * `patches`: NULL, or room for batch * ff_layer_patch_floats(l) floats where a
 * conv / local layer leaves the patches of x for ff_layer_backward. */
void ff_layer_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                      float *patches);

/* Parameter gradients from dL/d(pre-activation) `dpre` ([batch, out dim]):
 * gW (beta = 0: overwrite, 1: accumulate) and gb likewise. `patches`: what
 * ff_layer_forward left from this same x, or NULL to extract them again (x may
 * then be NULL, unless the layer has constant planes). */
void ff_layer_backward(const ff_layer *l, const float *x, const float *patches,
                       const float *dpre, int batch, float beta, float *ws);

/* For layer kinds whose bias is one value per output (fc, local):
 * l->gb[q] (beta = 0: overwrite, else accumulate) += sum over the batch of
 * dpre[i][q], q < out dim, each sum in sample order; split over the pool by
 * outputs, so the result does not depend on the thread count. */
void ff_layer_bias_grad_per_output(const ff_layer *l, const float *dpre, int batch,
                                   float beta);

/* model.loss_after_pool: dx ([batch, pool->in dim], overwritten) = the gradient dy
 * ([batch, pool->out dim]) of a loss on pool(x) taken back through the pool to the
 * pre-activations of the ReLU output x: max pool, each window's dy to the first
 * position holding its maximum (as the forward pass picks it); average, dy / k^2 to
 * every position of the window; then 0 wherever x is 0 (the ReLU). Overlapping windows
 * add up. Split over the pool by samples. */
void ff_layer_pool_backward_relu(const ff_layer *pool, const float *x, const float *dy, float *dx,
                           int batch);

/* Multiply-adds per image of the forward pass (for summaries/benchmarks). */
double ff_layer_flops(const ff_layer *l);

#endif
