/* layer_local.c - locally connected layer + ReLU (unshared weights per output
 * location: the paper's local receptive fields) on im2col and OpenBLAS sgemm.
 *
 * W is [P][out_c, K]: one row-major weight matrix per output location p = oy*ow + ox,
 * K = in_c * k * k in (c, ki, kj) order; b is [out_c * P] in CHW order (one bias per
 * output unit). One sgemm per location over the whole batch: with
 * col [batch, P, K] = im2col(x), location p's patches are the [batch, K] matrix at
 * col + p*K with row stride P*K, so no gather copy is needed:
 *   forward:  t[:, p, :] = col[:, p, :] W_p^T  (t is [batch, P, out_c]);
 *             y[i][c][p] = relu(t[i][p][c] + b[c*P + p])
 *   backward: d = dpre transposed per sample to [batch, P, out_c];
 *             gW_p = d[:, p, :]^T col[:, p, :], gb[j] = sum_i dpre[i][j]
 * Workspace: col and t (or d), batch * P * (K + out_c) floats. In training the
 * forward pass writes col into the caller's `patches` buffer instead and the
 * backward pass reads it there. Constant planes (l->const_c > 0: label planes)
 * stay out of col (K becomes Kv): location p adds V S_p^T to t[:, p, :] (V: plane
 * values [batch, nc], S_p: per-plane kernel sums of W_p) and its backward takes
 * d S_p = d_p^T V, copied to each of plane j's k*k weights. */
#include <cblas.h>
#include <string.h>

#include "ff/im2col.h"
#include "ff/layer.h"
#include "ff/pool.h"

static int local_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index,
                       ff_err *err)
{
    int rc = ff_im2col_setup(l, cfg, in, index, "local", err);
    if (rc)
        return rc;
    /* fan_in in ff_layer_init_params = n_weights / out dim = K, as required */
    l->n_weights = (size_t)ff_im2col_patch_count(l) * (size_t)l->out.c * (size_t)ff_im2col_patch_size(l);
    l->n_bias = (size_t)ff_shape_dim(l->out);
    return FF_OK;
}

/* floats of col and t (or d) for the batch, then the gather index (P * Kv int32) */
static size_t patch_floats(const ff_layer *l, int batch)
{
    return (size_t)(batch + 1) * (size_t)ff_im2col_patch_count(l) *
           ((size_t)ff_im2col_patch_size_varying(l) + (size_t)l->out.c);
}

static size_t local_workspace(const ff_layer *l, int batch)
{
    /* after them, for constant planes: V [batch, nc] and S_p (or d S_p) [C, nc] */
    const size_t nc = (size_t)l->const_c;
    return patch_floats(l, batch) + (nc ? nc * ((size_t)batch + (size_t)l->out.c) : 0);
}

/* y[i][c][p] = relu(t[i][p][c] + b[c * P + p]): the [P, C] blocks transposed to
 * CHW with bias and ReLU in the same pass; split over the pool by samples */
typedef struct local_job {
    const ff_layer *l;
    const float *t;
    float *y;
    int batch;
} local_job;

static void transpose_bias_relu_range(void *ctx, size_t i0, size_t i1)
{
    const local_job *j = ctx;
    const ff_layer *l = j->l;
    const int P = ff_im2col_patch_count(l), C = l->out.c;
    for (size_t i = i0; i < i1; i++) {
        const float *restrict ti = j->t + i * P * C;
        float *restrict yi = j->y + i * P * C;
        for (int c = 0; c < C; c++) {
            const float *b = l->b + (size_t)c * P;
            float *row = yi + (size_t)c * P;
            for (int p = 0; p < P; p++) {
                float v = ti[(size_t)p * C + c] + b[p];
                row[p] = v > 0.0f ? v : 0.0f;
            }
        }
    }
}

static void transpose_bias_relu(const ff_layer *l, const float *t, float *y, int batch)
{
    local_job j = {.l = l, .t = t, .y = y};
    ff_pool_for((size_t)batch, 4, transpose_bias_relu_range, &j);
}

/* W_p, the [C, K] weight matrix of location p */
static const float *weights_at(const ff_layer *l, int p)
{
    return l->W + (size_t)p * l->out.c * ff_im2col_patch_size(l);
}

static void local_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                          float *patches)
{
    const int Kv = ff_im2col_patch_size_varying(l), K = ff_im2col_patch_size(l), P = ff_im2col_patch_count(l);
    const int C = l->out.c, nc = l->const_c;
    const ff_shape varying = {l->in.c - nc, l->in.h, l->in.w};
    float *col = patches ? patches : ws, *t = ws + (size_t)batch * P * Kv;
    int32_t *index = (int32_t *)(t + (size_t)batch * P * C);
    float *V = ws + patch_floats(l, batch), *S = V + (size_t)batch * nc;
    ff_im2col(x, batch, (size_t)ff_shape_dim(l->in), varying, l->kernel, l->stride, l->pad,
              l->out, col, index);
    if (nc)
        ff_im2col_planes_read(l, x, batch, V);
    for (int p = 0; p < P; p++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, C, Kv, 1.0f,
                    col + (size_t)p * Kv, P * Kv, weights_at(l, p), K, 0.0f,
                    t + (size_t)p * C, P * C);
        if (nc) {
            ff_im2col_planes_weight_sums(l, weights_at(l, p), S);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, C, nc, 1.0f, V, nc, S,
                        nc, 1.0f, t + (size_t)p * C, P * C);
        }
    }
    transpose_bias_relu(l, t, y, batch);
}

static void local_backward(const ff_layer *l, const float *x, const float *patches,
                           const float *dpre, int batch, float beta, float *ws)
{
    const int Kv = ff_im2col_patch_size_varying(l), K = ff_im2col_patch_size(l), P = ff_im2col_patch_count(l);
    const int C = l->out.c, nc = l->const_c;
    const ff_shape varying = {l->in.c - nc, l->in.h, l->in.w};
    const float *col = patches ? patches : ws;
    float *d = ws + (size_t)batch * P * Kv;
    int32_t *index = (int32_t *)(d + (size_t)batch * P * C);
    float *V = ws + patch_floats(l, batch), *G = V + (size_t)batch * nc;
    if (!patches)
        ff_im2col(x, batch, (size_t)ff_shape_dim(l->in), varying, l->kernel, l->stride, l->pad,
                  l->out, ws, index);
    if (nc) {
        FF_ASSERT(x != NULL); /* the plane values come from x */
        ff_im2col_planes_read(l, x, batch, V);
    }
    ff_im2col_transpose_batch(dpre, d, batch, C, P);
    for (int p = 0; p < P; p++) {
        float *gW = l->gW + (size_t)p * C * K;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, Kv, batch, 1.0f,
                    d + (size_t)p * C, P * C, col + (size_t)p * Kv, P * Kv, beta, gW, K);
        if (nc) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, nc, batch, 1.0f,
                        d + (size_t)p * C, P * C, V, nc, 0.0f, G, nc);
            ff_im2col_planes_scatter_grad(l, G, beta, gW);
        }
    }
    ff_layer_bias_grad_per_output(l, dpre, batch, beta);
}

static size_t local_fan_in(const ff_layer *l) { return l->n_weights / (size_t)ff_shape_dim(l->out); }

/* im2col channels through the GEMMs, constant planes at every location */
static double local_flops(const ff_layer *l)
{
    const double P = ff_im2col_patch_count(l), C = l->out.c;
    const double per_location = C * (ff_im2col_patch_size_varying(l) + l->const_c);
    return P * per_location;
}

const ff_layer_ops ff_local_ops = {
    .name = "local",
    .keys = "channels kernel stride padding threshold train_epochs",
    .required = "channels kernel",
    .receptive_fields = 1,
    .setup = local_setup,
    .fan_in = local_fan_in,
    .workspace = local_workspace,
    .patch_floats = ff_im2col_floats,
    .forward = local_forward,
    .backward = local_backward,
    .flops = local_flops,
};
