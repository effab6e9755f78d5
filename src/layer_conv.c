/* layer_conv.c - weight-shared convolution + ReLU on im2col and OpenBLAS sgemm.
 *
 * W is [out_c, K] row-major with K = in_c * k * k in (c, ki, kj) order, b is
 * [out_c]. No padding; geometry in include/ff/im2col.h. Samples are stacked into
 * large sgemms (per-sample GEMMs are small and slow at the paper's 2x2..4x4 output
 * grids), in rounds of n = FF_CONV_CHUNK samples:
 *   forward:  col [n*P, K] = im2col(x);  t [n*P, out_c] = col W^T;
 *             y[i][c][p] = relu(t[i][p][c] + b[c])
 *   backward: d [n*P, out_c] = dpre transposed per sample;
 *             gW (+)= d^T col (one sgemm per round), gb[c] = sum_{i,p} dpre[i][c][p]
 * In training the forward pass writes col for the whole batch into the caller's
 * `patches` buffer and the backward pass reads it there instead of extracting the
 * patches again.
 * Measured (paper's shapes, batch 100 and 1000): per-sample GEMMs are 2-3x slower on
 * layers 2 and 3; rounds of 64 samples are a few % faster than one whole-batch
 * sgemm and keep the workspace small: (min(batch, 64) + 1) * P * (K + out_c) floats. */
#include <cblas.h>
#include <string.h>

#include "ff/im2col.h"
#include "ff/layer.h"

#ifndef FF_CONV_CHUNK
#define FF_CONV_CHUNK 64 /* samples per im2col + sgemm round */
#endif

int ff_conv_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err)
{
    int rc = ff_patch_setup(l, cfg, in, index, "conv", err);
    if (rc)
        return rc;
    l->n_weights = (size_t)l->out.c * (size_t)ff_patch_size(l);
    l->n_bias = (size_t)l->out.c;
    return FF_OK;
}

/* samples per round: at most FF_CONV_CHUNK */
static int chunk(int batch) { return batch < FF_CONV_CHUNK ? batch : FF_CONV_CHUNK; }

size_t ff_conv_workspace(const ff_layer *l, int batch)
{
    /* col and t (or d) for one round, then the gather index (P * K int32) */
    return (size_t)(chunk(batch) + 1) * (size_t)ff_patch_count(l) *
               ((size_t)ff_patch_size(l) + (size_t)l->out.c);
}

/* y[i][c][p] = relu(y[i][c][p] + b[c]) */
static void bias_relu(const ff_layer *l, float *y, int batch)
{
    const int P = ff_patch_count(l);
    for (int i = 0; i < batch; i++)
        for (int c = 0; c < l->out.c; c++) {
            float *row = y + ((size_t)i * l->out.c + c) * P;
            for (int p = 0; p < P; p++) {
                float v = row[p] + l->b[c];
                row[p] = v > 0.0f ? v : 0.0f;
            }
        }
}

void ff_conv_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                     float *patches)
{
    const int K = ff_patch_size(l), P = ff_patch_count(l), C = l->out.c;
    const size_t in_dim = (size_t)ff_shape_dim(l->in), out_dim = (size_t)ff_shape_dim(l->out);
    float *t = ws + (size_t)chunk(batch) * P * K;
    int32_t *index = (int32_t *)(t + (size_t)chunk(batch) * P * C);
    for (int i0 = 0; i0 < batch; i0 += FF_CONV_CHUNK) {
        const int n = chunk(batch - i0);
        float *col = patches ? patches + (size_t)i0 * P * K : ws;
        ff_im2col(x + i0 * in_dim, n, l->in, l->kernel, l->stride, l->out, col, index);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n * P, C, K, 1.0f, col, K, l->W, K,
                    0.0f, t, C);
        ff_transpose_batch(t, y + i0 * out_dim, n, P, C);
    }
    bias_relu(l, y, batch);
}

/* gb[c] (= or +=) sum over samples and locations of dpre[i][c][p] */
static void bias_grad(const ff_layer *l, const float *dpre, int batch, float beta)
{
    const int P = ff_patch_count(l), C = l->out.c;
    if (beta == 0.0f)
        memset(l->gb, 0, sizeof(float) * (size_t)C);
    for (int i = 0; i < batch; i++)
        for (int c = 0; c < C; c++) {
            const float *row = dpre + ((size_t)i * C + c) * P;
            float s = 0.0f;
            for (int p = 0; p < P; p++)
                s += row[p];
            l->gb[c] += s;
        }
}

void ff_conv_backward(const ff_layer *l, const float *x, const float *patches, const float *dpre,
                      int batch, float beta, float *ws)
{
    const int K = ff_patch_size(l), P = ff_patch_count(l), C = l->out.c;
    const size_t in_dim = (size_t)ff_shape_dim(l->in), out_dim = (size_t)ff_shape_dim(l->out);
    float *d = ws + (size_t)chunk(batch) * P * K;
    int32_t *index = (int32_t *)(d + (size_t)chunk(batch) * P * C);
    for (int i0 = 0; i0 < batch; i0 += FF_CONV_CHUNK) {
        const int n = chunk(batch - i0);
        const float *col = patches ? patches + (size_t)i0 * P * K : ws;
        if (!patches)
            ff_im2col(x + i0 * in_dim, n, l->in, l->kernel, l->stride, l->out, ws, index);
        ff_transpose_batch(dpre + i0 * out_dim, d, n, C, P);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, K, n * P, 1.0f, d, C, col, K,
                    i0 ? 1.0f : beta, l->gW, K);
    }
    bias_grad(l, dpre, batch, beta);
}
