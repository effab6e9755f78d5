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
 * backward pass reads it there. */
#include <cblas.h>
#include <string.h>

#include "ff/im2col.h"
#include "ff/layer.h"

int ff_local_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err)
{
    int rc = ff_patch_setup(l, cfg, in, index, "local", err);
    if (rc)
        return rc;
    /* fan_in in ff_layer_init_params = n_weights / out dim = K, as required */
    l->n_weights = (size_t)ff_patch_count(l) * (size_t)l->out.c * (size_t)ff_patch_size(l);
    l->n_bias = (size_t)ff_shape_dim(l->out);
    return FF_OK;
}

size_t ff_local_workspace(const ff_layer *l, int batch)
{
    /* col and t (or d) for the batch, then the gather index (P * K int32) */
    return (size_t)(batch + 1) * (size_t)ff_patch_count(l) *
           ((size_t)ff_patch_size(l) + (size_t)l->out.c);
}

/* y[i][j] = relu(y[i][j] + b[j]) */
static void bias_relu(const ff_layer *l, float *y, int batch)
{
    const int n = ff_shape_dim(l->out);
    for (int i = 0; i < batch; i++) {
        float *row = y + (size_t)i * n;
        for (int j = 0; j < n; j++) {
            float v = row[j] + l->b[j];
            row[j] = v > 0.0f ? v : 0.0f;
        }
    }
}

void ff_local_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                      float *patches)
{
    const int K = ff_patch_size(l), P = ff_patch_count(l), C = l->out.c;
    float *col = patches ? patches : ws, *t = ws + (size_t)batch * P * K;
    int32_t *index = (int32_t *)(t + (size_t)batch * P * C);
    ff_im2col(x, batch, l->in, l->kernel, l->stride, l->out, col, index);
    for (int p = 0; p < P; p++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, C, K, 1.0f,
                    col + (size_t)p * K, P * K, l->W + (size_t)p * C * K, K, 0.0f,
                    t + (size_t)p * C, P * C);
    ff_transpose_batch(t, y, batch, P, C);
    bias_relu(l, y, batch);
}

/* gb[j] (= or +=) sum over samples of dpre[i][j] */
static void bias_grad(const ff_layer *l, const float *dpre, int batch, float beta)
{
    const int n = ff_shape_dim(l->out);
    if (beta == 0.0f)
        memset(l->gb, 0, sizeof(float) * (size_t)n);
    for (int i = 0; i < batch; i++) {
        const float *row = dpre + (size_t)i * n;
        for (int j = 0; j < n; j++)
            l->gb[j] += row[j];
    }
}

void ff_local_backward(const ff_layer *l, const float *x, const float *patches, const float *dpre,
                       int batch, float beta, float *ws)
{
    const int K = ff_patch_size(l), P = ff_patch_count(l), C = l->out.c;
    const float *col = patches ? patches : ws;
    float *d = ws + (size_t)batch * P * K;
    int32_t *index = (int32_t *)(d + (size_t)batch * P * C);
    if (!patches)
        ff_im2col(x, batch, l->in, l->kernel, l->stride, l->out, ws, index);
    ff_transpose_batch(dpre, d, batch, C, P);
    for (int p = 0; p < P; p++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, K, batch, 1.0f,
                    d + (size_t)p * C, P * C, col + (size_t)p * K, P * K, beta,
                    l->gW + (size_t)p * C * K, K);
    bias_grad(l, dpre, batch, beta);
}
