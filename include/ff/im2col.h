/* im2col.h - receptive-field geometry, patch extraction and per-sample transposes
 * shared by the conv and local layers (src/im2col.c).
 *
 * Geometry: square kernel k, stride s, zero padding p (0 <= p < k) on each side;
 * oh = (in.h + 2p - k) / s + 1 and ow = (in.w + 2p - k) / s + 1 (floor: trailing
 * rows/columns that do not fill a whole window are ignored); window (oy, ox) starts
 * at input row oy * s - p, column ox * s - p, and values outside the input are 0. A receptive field is K = in.c * k * k floats in (c, ki, kj)
 * order, which is the CHW order of the window, so a conv whose kernel covers the
 * whole input sees exactly the fc input vector. Nothing here allocates. */
#ifndef FF_IM2COL_H
#define FF_IM2COL_H

#include <stdint.h>

#include "ff/layer.h"

/* Validates cfg's channels/kernel/stride/padding against `in` and fills l->in,
 * l->kernel, l->stride, l->pad and l->out = {cfg->channels, oh, ow}. On bad geometry returns
 * FF_ERR_USAGE with a message naming the layer index, its YAML line/col and the
 * input shape, e.g. "layer 2 (line 14, col 7): conv kernel 10 does not fit input
 * 1x4x4". `kind` ("conv" / "local") is used in messages only. */
int ff_im2col_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index,
                   const char *kind, ff_err *err);

/* Floats per receptive field K = in.c * k * k. */
static inline int ff_im2col_patch_size(const ff_layer *l) { return l->in.c * l->kernel * l->kernel; }

/* Floats per receptive field that go through im2col: the channels before the
 * l->const_c constant planes, Kv = (in.c - const_c) * k * k. */
static inline int ff_im2col_patch_size_varying(const ff_layer *l)
{
    return (l->in.c - l->const_c) * l->kernel * l->kernel;
}

/* Output locations per sample P = oh * ow. */
static inline int ff_im2col_patch_count(const ff_layer *l) { return l->out.h * l->out.w; }

/* Floats per sample of the varying channels' receptive fields, P * Kv: what
 * a conv or local layer keeps from its forward pass (ff_layer_patch_floats). */
size_t ff_im2col_floats(const ff_layer *l);

/* Extracts every receptive field of a batch as one row each: col is
 * [batch * P, K] row-major, row i * P + oy * ow + ox, column (c * k + ki) * k + kj
 * holding x[i][c][oy * s + ki - pad][ox * s + kj - pad] (0 outside the input),
 * K = in.c * k * k. Sample i starts at
 * x + i * x_stride (x_stride >= in.c * in.h * in.w: `in` may be the first channels
 * of a larger input). Without padding every window row is copied directly (k = 2,
 * the paper's later layers, unrolled); with padding and `index` (scratch for P * K
 * int32) the offsets are computed once per call and every sample is a flat gather
 * (-1 marks padding); index NULL tests bounds per value. All give the same col.
 * Samples are split over the pool (include/ff/pool.h). */
void ff_im2col(const float *x, int batch, size_t x_stride, ff_shape in, int k, int stride,
               int pad, ff_shape out, float *col, int32_t *index);

/* The same receptive fields with K rows instead (the conv layer's layout): col is
 * [K, ldc] row-major, row (c * k + ki) * k + kj, column i * P + oy * ow + ox
 * holding x[i][c][oy * s + ki - pad][ox * s + kj - pad] (0 outside the input), for
 * batch samples (ldc >= batch * P). Every (row, sample, oy) is one run of ow values:
 * zeros where the window lies in the padding, a copy (stride 1) or a strided read
 * between. Rows are split over the pool. */
void ff_im2col_rows(const float *x, int batch, size_t x_stride, ff_shape in, int k,
                    int stride, int pad, ff_shape out, float *col, size_t ldc);

/* Constant planes (l->const_c = nc > 0): a window's dot product with them is
 * sum_j v_j S[c][j], v_j the value of plane j and S[c][j] the sum of output
 * channel c's kernel weights on plane j, so the layers add them as a per-sample
 * bias. V[i][j] = the value of plane j of sample i ([batch, nc]). */
void ff_im2col_planes_read(const ff_layer *l, const float *x, int batch, float *V);

/* S[c][j] ([C, nc]) from a [C, K] weight matrix W. */
void ff_im2col_planes_weight_sums(const ff_layer *l, const float *W, float *S);

/* The planes' weight gradients from G[c][j] = d loss / d S[c][j] ([C, nc]):
 * gW[c][Kv + j * k * k + q] = beta * gW[...] + G[c][j] for every q < k * k. */
void ff_im2col_planes_scatter_grad(const ff_layer *l, const float *G, float beta, float *gW);

/* dst[i][c][r] = src[i][r][c] for i < batch: transposes each sample's [rows, cols]
 * block into [cols, rows]. src and dst must not overlap. */
void ff_im2col_transpose_batch(const float *src, float *dst, int batch, int rows, int cols);

/* dst[c][i * P + p] = src[i][c][p] for i < batch: a batch of CHW samples ([C, P]
 * each) as one [C, batch * P] matrix (runs of P floats). src and dst must not
 * overlap. */
void ff_im2col_channels_to_rows(const float *src, float *dst, int batch, int C, int P);

#endif
