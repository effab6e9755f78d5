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

/* the max of the 2x2 window at column ox of the row pair r0, r1, in the general loop's
 * order */
static inline float max_2x2(const float *restrict r0, const float *restrict r1, int ox)
{
    float m = r0[2 * ox];
    m = r0[2 * ox + 1] > m ? r0[2 * ox + 1] : m;
    m = r1[2 * ox] > m ? r1[2 * ox] : m;
    return r1[2 * ox + 1] > m ? r1[2 * ox + 1] : m;
}

/* y[i][c][oy][ox] = max or mean of x[i][c][oy * s + ki][ox * s + kj], ki, kj < k,
 * for samples [i0, i1); the max is taken in (ki, kj) order from the window's first
 * value (as the backward pass's first maximum); 2x2 windows at stride 2 (every
 * shipped pool) in one pass per output row that GCC vectorises (in blocks of 8 outputs:
 * a fixed trip count it vectorises on rows of only 8) */
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
                    int ox = 0;
                    for (; ox + 8 <= ow; ox += 8) /* blocks of 8 vectorise on short rows too */
                        for (int v = 0; v < 8; v++)
                            yc[ox + v] = max_2x2(r0, r0 + iw, ox + v);
                    for (; ox < ow; ox++)
                        yc[ox] = max_2x2(r0, r0 + iw, ox);
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

/* One output of a 2x2 max window at its column ox: its gradient g to the window's first
 * maximum (as the forward pass chose it) where that is > 0 (the ReLU), 0 to the others;
 * branch-free, so a loop over ox vectorises. 0 + g: as the general loop's 0 += g (-0 to +0). */
static inline void back_2x2_one(const float *restrict r0, const float *restrict r1,
                                const float *restrict g, float *restrict d0, float *restrict d1,
                                int ox)
{
    const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
    float m = a;
    m = b > m ? b : m;
    m = c > m ? c : m;
    m = d > m ? d : m;
    const int ta = a == m, tb = !ta & (b == m), tc = !ta & !tb & (c == m), td = !ta & !tb & !tc;
    const float v = m > 0.0f ? 0.0f + g[ox] : 0.0f;
    d0[2 * ox] = ta ? v : 0.0f;
    d0[2 * ox + 1] = tb ? v : 0.0f;
    d1[2 * ox] = tc ? v : 0.0f;
    d1[2 * ox + 1] = td ? v : 0.0f;
}

/* The 2x2 stride-2 max pool's backward through the ReLU on one plane (every shipped
 * pool) with rows of 8 outputs or more: a row pair per output row, each element written
 * once; the columns in blocks of 8 (a fixed trip count GCC vectorises even where a row has
 * only 8 outputs, as 16x16 planes do); a last odd row or column, outside every window,
 * gets 0. Narrower rows (7x7 outputs) would run only the scalar tail, slower than the
 * general loop (100 x 480 planes of 14x14: 34 against 23 ms), so they take that. */
static void back_2x2_plane(const float *xc, const float *dyc, float *dxc, int ih, int iw, int oh,
                           int ow)
{
    for (int oy = 0; oy < oh; oy++) {
        const float *r0 = xc + (size_t)2 * oy * iw, *r1 = r0 + iw, *g = dyc + (size_t)oy * ow;
        float *d0 = dxc + (size_t)2 * oy * iw, *d1 = d0 + iw;
        int ox = 0;
        for (; ox + 8 <= ow; ox += 8)
            for (int v = 0; v < 8; v++)
                back_2x2_one(r0, r1, g, d0, d1, ox + v);
        for (; ox < ow; ox++)
            back_2x2_one(r0, r1, g, d0, d1, ox);
        if (iw > 2 * ow)
            d0[iw - 1] = d1[iw - 1] = 0.0f;
    }
    if (ih > 2 * oh)
        memset(dxc + (size_t)(ih - 1) * iw, 0, sizeof(float) * (size_t)iw);
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
            if (is_max && k == 2 && s == 2 && l->out.w >= 8) { /* a block of 8 at least */
                back_2x2_plane(xc, dyc, dxc, l->in.h, l->in.w, l->out.h, l->out.w);
                continue;
            }
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
