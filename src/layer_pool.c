/* layer_pool.c - the parameter-free pool (max or average over kernel x kernel
 * windows, stride s, no padding: out = {in.c, (in.h - k) / s + 1, (in.w - k) / s + 1},
 * every channel on its own).
 *
 * A pool is an input stage (ff_layer_ops.input_stage), not an FF layer: it has no
 * weights, goodness, threshold or loss. ff_net_build folds it into the next trainable
 * layer (net.h: ff_net.pool): that layer's input is normalise(pool(out of the layer
 * below)), or of the image for a pool before the first layer; label planes
 * (label_every_layer) are added after it at the pooled size. Pooling commutes with
 * the positive per-sample scale of the normalisation, so this equals pooling the
 * normalised output and normalising again. FF gradients stop at each layer's input,
 * so nothing flows back through a pool to the layer below: its backward has nothing to
 * do. With model.loss_after_pool a layer's own loss is on its pooled output, and
 * ff_layer_pool_backward_relu takes that loss's gradient back to the layer's pre-activations. */
#include <string.h>

#include "ff/layer.h"
#include "ff/pool.h"

static int pool_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err)
{
    if (in.c <= 0 || in.h <= 0 || in.w <= 0)
        return ff_err_set(err, FF_ERR_USAGE, "layer %d: pool has an empty input %dx%dx%d",
                          index, in.c, in.h, in.w);
    if (cfg->stride <= 0)
        return ff_err_set(err, FF_ERR_USAGE, "layer %d: pool stride %d must be > 0 for input "
                          "%dx%dx%d", index, cfg->stride, in.c, in.h, in.w);
    if (cfg->kernel <= 0 || cfg->kernel > in.h || cfg->kernel > in.w)
        return ff_err_set(err, FF_ERR_USAGE, "layer %d: pool kernel %d %s input %dx%dx%d", index,
                          cfg->kernel, cfg->kernel > 0 ? "does not fit" : "must be > 0 for",
                          in.c, in.h, in.w);
    if ((int)cfg->pool < 0 || cfg->pool >= FF_POOL_COUNT)
        return ff_err_set(err, FF_ERR_USAGE, "layer %d: unknown pool kind %d", index,
                          (int)cfg->pool);
    l->pad = 0;
    l->out = (ff_shape){in.c, (in.h - cfg->kernel) / cfg->stride + 1,
                        (in.w - cfg->kernel) / cfg->stride + 1};
    l->n_weights = l->n_bias = 0;
    return FF_OK;
}

static size_t pool_fan_in(const ff_layer *l)
{
    (void)l;
    return 1; /* no weights to initialise */
}

static size_t pool_workspace(const ff_layer *l, int batch)
{
    (void)l, (void)batch;
    return 0;
}

typedef struct pool_job {
    const ff_layer *l;
    const float *x, *dy;
    float *y; /* forward: the output; backward: dx */
} pool_job;

/* y[i][c][oy][ox] = max or mean of x[i][c][oy * s + ki][ox * s + kj], ki, kj < k,
 * for samples [i0, i1); the max is taken in (ki, kj) order from the window's first
 * value (as the backward pass's first maximum); 2x2 windows at stride 2 (every
 * shipped pool) in one pass per output row that GCC vectorises */
static void pool_forward_range(void *ctx, size_t i0, size_t i1)
{
    const pool_job *j = ctx;
    const ff_layer *l = j->l;
    const int k = l->kernel, s = l->stride, is_max = l->pool == FF_POOL_MAX;
    const int iw = l->in.w, ow = l->out.w;
    const size_t plane = (size_t)l->in.h * iw, oplane = (size_t)l->out.h * ow;
    const float inv = 1.0f / (float)(k * k);
    for (size_t i = i0; i < i1; i++)
        for (int c = 0; c < l->in.c; c++) {
            const float *xc = j->x + (i * l->in.c + c) * plane;
            float *yc = j->y + (i * l->out.c + c) * oplane;
            for (int oy = 0; oy < l->out.h; oy++, yc += ow) {
                const float *r0 = xc + (size_t)oy * s * iw;
                if (is_max && k == 2 && s == 2) {
                    const float *r1 = r0 + iw;
                    for (int ox = 0; ox < ow; ox++) {
                        float m = r0[2 * ox];
                        m = r0[2 * ox + 1] > m ? r0[2 * ox + 1] : m;
                        m = r1[2 * ox] > m ? r1[2 * ox] : m;
                        yc[ox] = r1[2 * ox + 1] > m ? r1[2 * ox + 1] : m;
                    }
                    continue;
                }
                for (int ox = 0; ox < ow; ox++) {
                    const float *w = r0 + (size_t)ox * s;
                    float acc = is_max ? w[0] : 0.0f;
                    for (int ki = 0; ki < k; ki++)
                        for (int kj = 0; kj < k; kj++) {
                            const float v = w[(size_t)ki * iw + kj];
                            acc = is_max ? (v > acc ? v : acc) : acc + v;
                        }
                    yc[ox] = is_max ? acc : acc * inv;
                }
            }
        }
}

static void pool_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                         float *patches)
{
    (void)ws, (void)patches;
    pool_job j = {l, x, NULL, y};
    ff_pool_for((size_t)batch, 1, pool_forward_range, &j);
}

/* no parameters: nothing to do (FF gradients never pass through a pool) */
static void pool_backward(const ff_layer *l, const float *x, const float *patches,
                          const float *dpre, int batch, float beta, float *ws)
{
    (void)l, (void)x, (void)patches, (void)dpre, (void)batch, (void)beta, (void)ws;
}

static void pool_back_range(void *ctx, size_t i0, size_t i1)
{
    const pool_job *j = ctx;
    const ff_layer *l = j->l;
    const int k = l->kernel, s = l->stride, is_max = l->pool == FF_POOL_MAX;
    const size_t plane = (size_t)l->in.h * l->in.w, oplane = (size_t)l->out.h * l->out.w;
    const float inv = 1.0f / (float)(k * k);
    for (size_t i = i0; i < i1; i++)
        for (int c = 0; c < l->in.c; c++) {
            const float *xc = j->x + (i * l->in.c + c) * plane;
            const float *dyc = j->dy + (i * l->out.c + c) * oplane;
            float *dxc = j->y + (i * l->in.c + c) * plane;
            memset(dxc, 0, sizeof(float) * plane);
            for (int oy = 0; oy < l->out.h; oy++)
                for (int ox = 0; ox < l->out.w; ox++) {
                    const size_t base = (size_t)oy * s * l->in.w + (size_t)ox * s;
                    const float g = dyc[(size_t)oy * l->out.w + ox];
                    if (is_max) { /* the forward pass's choice: the first maximum */
                        size_t arg = base;
                        float best = xc[base];
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++) {
                                const size_t q = base + (size_t)ki * l->in.w + kj;
                                if (xc[q] > best)
                                    best = xc[q], arg = q;
                            }
                        dxc[arg] += g;
                    } else {
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++)
                                dxc[base + (size_t)ki * l->in.w + kj] += g * inv;
                    }
                }
            for (size_t q = 0; q < plane; q++) /* the ReLU */
                dxc[q] = xc[q] > 0.0f ? dxc[q] : 0.0f;
        }
}

void ff_layer_pool_backward_relu(const ff_layer *pool, const float *x, const float *dy, float *dx,
                           int batch)
{
    pool_job j = {pool, x, dy, dx};
    ff_pool_for((size_t)batch, 1, pool_back_range, &j);
}

/* no multiply-adds; counted as one operation per value read */
static double pool_flops(const ff_layer *l)
{
    return (double)ff_shape_dim(l->out) * l->kernel * l->kernel;
}

const ff_layer_ops ff_pool_ops = {
    .name = "pool",
    .keys = "kind kernel stride",
    .required = "kernel",
    .input_stage = 1,
    .setup = pool_setup,
    .fan_in = pool_fan_in,
    .workspace = pool_workspace,
    .forward = pool_forward,
    .backward = pool_backward,
    .flops = pool_flops,
};
