/* im2col.c - receptive-field geometry (with zero padding), patch extraction and
 * per-sample transposes for the conv and local layers (see include/ff/im2col.h). */
#include "ff/im2col.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ff/pool.h"
#include "vec_runs.h"

static int geometry_error(const ff_layer_cfg *cfg, ff_shape in, int index, const char *kind,
                          const char *what, int value, ff_err *err)
{
    return ff_err_set(err, FF_ERR_USAGE,
                      "layer %d: %s %s %d %s input %dx%dx%d", index, kind, what, value,
                      value > 0 ? "does not fit" : "must be > 0 for", in.c, in.h, in.w);
}

int ff_im2col_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index,
                   const char *kind, ff_err *err)
{
    if (in.c <= 0 || in.h <= 0 || in.w <= 0)
        return ff_err_set(err, FF_ERR_USAGE,
                          "layer %d: %s has an empty input %dx%dx%d", index, kind, in.c,
                          in.h, in.w);
    if (cfg->channels <= 0)
        return geometry_error(cfg, in, index, kind, "channels", cfg->channels, err);
    if (cfg->stride <= 0)
        return geometry_error(cfg, in, index, kind, "stride", cfg->stride, err);
    const int pad = cfg->padding;
    if (pad < 0 || (pad > 0 && pad >= cfg->kernel))
        return ff_err_set(err, FF_ERR_USAGE,
                          "layer %d: %s padding %d must be >= 0 and less than its kernel %d",
                          index, kind, pad, cfg->kernel);
    if (cfg->kernel <= 0 || cfg->kernel > in.h + 2 * pad || cfg->kernel > in.w + 2 * pad)
        return geometry_error(cfg, in, index, kind, "kernel", cfg->kernel, err);
    l->in = in;
    l->kernel = cfg->kernel;
    l->stride = cfg->stride;
    l->pad = pad;
    l->out = (ff_shape){cfg->channels, (in.h + 2 * pad - cfg->kernel) / cfg->stride + 1,
                        (in.w + 2 * pad - cfg->kernel) / cfg->stride + 1};
    return FF_OK;
}

size_t ff_im2col_floats(const ff_layer *l)
{
    return (size_t)ff_im2col_patch_count(l) * (size_t)ff_im2col_patch_size_varying(l);
}

/* copies the k x k window of every channel whose top-left corner is `corner`
 * (k = 2, the paper's later layers: two rows of two floats per channel) */
static float *copy_patch(const float *restrict corner, ff_shape in, int k, float *restrict col)
{
    const size_t plane = (size_t)in.h * (size_t)in.w, w = (size_t)in.w;
    if (k == 2) {
        for (int c = 0; c < in.c; c++, col += 4) {
            const float *src = corner + c * plane;
            col[0] = src[0];
            col[1] = src[1];
            col[2] = src[w];
            col[3] = src[w + 1];
        }
        return col;
    }
    for (int c = 0; c < in.c; c++)
        for (int ki = 0; ki < k; ki++) {
            const float *src = corner + c * plane + (size_t)ki * w;
            for (int kj = 0; kj < k; kj++)
                *col++ = src[kj];
        }
    return col;
}

/* like copy_patch for a window whose top-left corner (y0, x0) may lie in the
 * zero padding: values outside the input are 0 */
static float *copy_patch_padded(const float *xi, ff_shape in, int k, int y0, int x0, float *col)
{
    for (int c = 0; c < in.c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const int yy = y0 + ki, xx = x0 + kj;
                *col++ = yy >= 0 && yy < in.h && xx >= 0 && xx < in.w
                             ? xi[((size_t)c * in.h + (size_t)yy) * in.w + (size_t)xx]
                             : 0.0f;
            }
    return col;
}

/* index[p * K + (c * k + ki) * k + kj] = offset of that value in one sample, or
 * -1 where the window lies in the zero padding */
static void patch_index(ff_shape in, int k, int stride, int pad, ff_shape out, int32_t *index)
{
    for (int oy = 0; oy < out.h; oy++)
        for (int ox = 0; ox < out.w; ox++)
            for (int c = 0; c < in.c; c++)
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++) {
                        const int yy = oy * stride + ki - pad, xx = ox * stride + kj - pad;
                        *index++ = yy < 0 || yy >= in.h || xx < 0 || xx >= in.w
                                       ? -1
                                       : (int32_t)(((size_t)c * in.h + (size_t)yy) * in.w +
                                                   (size_t)xx);
                    }
}

/* one ff_im2col call, split over the pool by samples */
typedef struct im2col_job {
    const float *x;
    size_t x_stride, n; /* n = P * K floats of col per sample */
    ff_shape in, out;
    int k, stride, pad;
    float *col;
    const int32_t *index; /* padded windows: the gather index, or NULL */
} im2col_job;

static void im2col_range(void *ctx, size_t i0, size_t i1)
{
    const im2col_job *j = ctx;
    const ff_shape in = j->in, out = j->out;
    const int k = j->k, s = j->stride;
    for (size_t i = i0; i < i1; i++) {
        const float *xi = j->x + i * j->x_stride;
        float *ci = j->col + i * j->n;
        if (j->index && j->pad == 0) {
            ff_gather(ci, xi, j->index, (int)j->n);
        } else if (j->index) {
            const int32_t *index = j->index;
            for (size_t q = 0; q < j->n; q++)
                ci[q] = index[q] >= 0 ? xi[index[q]] : 0.0f;
        } else if (j->pad > 0) {
            for (int oy = 0; oy < out.h; oy++)
                for (int ox = 0; ox < out.w; ox++)
                    ci = copy_patch_padded(xi, in, k, oy * s - j->pad, ox * s - j->pad, ci);
        } else {
            for (int oy = 0; oy < out.h; oy++)
                for (int ox = 0; ox < out.w; ox++)
                    ci = copy_patch(xi + (size_t)oy * s * in.w + (size_t)ox * s, in, k, ci);
        }
    }
}

void ff_im2col(const float *x, int batch, size_t x_stride, ff_shape in, int k, int stride,
               int pad, ff_shape out, float *col, int32_t *index)
{
    im2col_job j = {.x = x, .x_stride = x_stride, .n = (size_t)out.h * out.w * in.c * k * k,
                    .in = in, .out = out, .k = k, .stride = stride, .pad = pad, .col = col};
    /* short window rows (k < 8) and padding: a gather through offsets computed once
     * per call (AVX-512 gathers without padding; with it, -1 marks zeros); longer
     * rows are copied as they are */
    if (index && (pad > 0 || k < 8)) {
        patch_index(in, k, stride, pad, out, index);
        j.index = index;
    }
    ff_pool_for((size_t)batch, 4, im2col_range, &j);
}

typedef struct rows_job {
    const float *x;
    size_t x_stride, ldc;
    ff_shape in, out;
    int batch, k, stride, pad;
    float *col;
} rows_job;

/* One sample's part of one col row for stride 1 and ow = in.w (padding (k - 1) / 2,
 * the deep nets' 3x3 convs): output rows oy whose input row oy + ki - pad exists read
 * a contiguous stretch of the plane shifted by `shift` = kj - pad columns, so they are
 * one copy, after which the values that wrapped round a row edge (the window's column
 * in the padding) are set to 0; the other output rows are 0. */
static void same_rows(const float *xc, ff_shape in, int oh, int ki, int shift, int pad,
                      float *dst)
{
    const int ow = in.w, edge = abs(shift) < ow ? abs(shift) : ow; /* zeros per row */
    const int y0 = pad - ki > 0 ? pad - ki : 0, y1 = in.h + pad - ki < oh ? in.h + pad - ki : oh;
    for (size_t q = 0; q < (size_t)(y0 < oh ? y0 : oh) * ow; q++)
        dst[q] = 0.0f;
    for (size_t q = (size_t)(y1 > y0 ? y1 : y0) * ow; q < (size_t)oh * ow; q++)
        dst[q] = 0.0f;
    if (y1 <= y0)
        return;
    const int n = (y1 - y0) * ow;
    const int q0 = shift < 0 ? -shift : 0, q1 = shift > 0 ? n - shift : n;
    float *d = dst + (size_t)y0 * ow;
    const float *src = xc + (ptrdiff_t)(y0 + ki - pad) * in.w + shift;
    if (q1 > q0)
        memcpy(d + q0, src + q0, sizeof(float) * (size_t)(q1 - q0));
    if (edge == 1) /* 3x3 windows: one value per row (no memset call for it) */
        for (int y = 0; y < y1 - y0; y++, d += ow)
            d[shift < 0 ? 0 : ow - 1] = 0.0f;
    else if (edge > 1)
        for (int y = 0; y < y1 - y0; y++, d += ow)
            memset(shift < 0 ? d : d + ow - edge, 0, sizeof(float) * (size_t)edge);
}

/* rows [r0, r1) of col: each row's runs for every sample and output row */
static void im2col_rows_range(void *ctx, size_t r0, size_t r1)
{
    const rows_job *j = ctx;
    const ff_shape in = j->in, out = j->out;
    const int k = j->k, s = j->stride, pad = j->pad, ow = out.w;
    const size_t plane = (size_t)in.h * (size_t)in.w, P = (size_t)out.h * (size_t)ow;
    for (size_t r = r0; r < r1; r++) {
        const int c = (int)(r / ((size_t)k * k)), ki = (int)(r / k % k), kj = (int)(r % k);
        /* ox in [lo, hi) reads inside the input: 0 <= ox * s + kj - pad < in.w */
        int lo = 0, hi = ow;
        while (lo < ow && lo * s + kj - pad < 0)
            lo++;
        while (hi > lo && (hi - 1) * s + kj - pad >= in.w)
            hi--;
        float *row = j->col + r * j->ldc;
        if (s == 1 && in.w == ow) { /* "same" windows: one copy per sample, see below */
            for (int i = 0; i < j->batch; i++)
                same_rows(j->x + (size_t)i * j->x_stride + (size_t)c * plane, in, out.h, ki,
                          kj - pad, pad, row + (size_t)i * P);
            continue;
        }
        for (int i = 0; i < j->batch; i++) {
            const float *xc = j->x + (size_t)i * j->x_stride + (size_t)c * plane;
            float *dst = row + (size_t)i * P;
            for (int oy = 0; oy < out.h; oy++, dst += ow) {
                const int yy = oy * s + ki - pad;
                if (yy < 0 || yy >= in.h || lo >= hi) {
                    for (int ox = 0; ox < ow; ox++)
                        dst[ox] = 0.0f;
                    continue;
                }
                const float *src = xc + (size_t)yy * in.w + (lo * s + kj - pad);
                for (int ox = 0; ox < lo; ox++)
                    dst[ox] = 0.0f;
                if (s == 1)
                    ff_run_copy(dst + lo, src, hi - lo);
                else
                    for (int ox = lo; ox < hi; ox++)
                        dst[ox] = src[(size_t)(ox - lo) * s];
                for (int ox = hi; ox < ow; ox++)
                    dst[ox] = 0.0f;
            }
        }
    }
}

void ff_im2col_rows(const float *x, int batch, size_t x_stride, ff_shape in, int k,
                    int stride, int pad, ff_shape out, float *col, size_t ldc)
{
    rows_job j = {x, x_stride, ldc, in, out, batch, k, stride, pad, col};
    ff_pool_for((size_t)in.c * k * k, 4, im2col_rows_range, &j);
}

typedef struct transpose_job {
    const float *src;
    float *dst;
    int rows, cols;
} transpose_job;

static void transpose_range(void *ctx, size_t i0, size_t i1)
{
    const transpose_job *j = ctx;
    const int rows = j->rows, cols = j->cols;
    const size_t block = (size_t)rows * (size_t)cols;
    for (size_t i = i0; i < i1; i++) {
        const float *restrict s = j->src + i * block;
        float *restrict d = j->dst + i * block;
        /* contiguous writes, reads strided by `cols` within one block (in L1) */
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++)
                d[(size_t)c * rows + r] = s[(size_t)r * cols + c];
    }
}

void ff_im2col_transpose_batch(const float *src, float *dst, int batch, int rows, int cols)
{
    transpose_job j = {src, dst, rows, cols};
    ff_pool_for((size_t)batch, 4, transpose_range, &j);
}

typedef struct runs_job {
    const float *src;
    float *dst;
    int batch, C, P;
} runs_job;

/* channels [c0, c1): each dst row written in order from the samples' runs */
static void channels_to_rows_range(void *ctx, size_t c0, size_t c1)
{
    const runs_job *j = ctx;
    const int C = j->C, P = j->P, n = j->batch;
    const size_t ld = (size_t)n * P, in_dim = (size_t)C * P;
    for (size_t c = c0; c < c1; c++) {
        float *dc = j->dst + c * ld;
        const float *sc = j->src + c * P;
        for (int i = 0; i < n; i++)
            ff_run_copy(dc + (size_t)i * P, sc + i * in_dim, P);
    }
}

void ff_im2col_channels_to_rows(const float *src, float *dst, int batch, int C, int P)
{
    runs_job j = {src, dst, batch, C, P};
    ff_pool_for((size_t)C, 8, channels_to_rows_range, &j);
}

void ff_im2col_planes_read(const ff_layer *l, const float *x, int batch, float *V)
{
    const int nc = l->const_c, first = l->in.c - nc;
    const size_t plane = (size_t)l->in.h * l->in.w, dim = (size_t)ff_shape_dim(l->in);
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < nc; j++)
            V[(size_t)i * nc + j] = x[(size_t)i * dim + (size_t)(first + j) * plane];
}

void ff_im2col_planes_weight_sums(const ff_layer *l, const float *W, float *S)
{
    const int nc = l->const_c, K = ff_im2col_patch_size(l), Kv = ff_im2col_patch_size_varying(l);
    const int kk = l->kernel * l->kernel;
    for (int c = 0; c < l->out.c; c++)
        for (int j = 0; j < nc; j++) {
            const float *w = W + (size_t)c * K + Kv + (size_t)j * kk;
            float s = 0.0f;
            for (int q = 0; q < kk; q++)
                s += w[q];
            S[(size_t)c * nc + j] = s;
        }
}

void ff_im2col_planes_scatter_grad(const ff_layer *l, const float *G, float beta, float *gW)
{
    const int nc = l->const_c, K = ff_im2col_patch_size(l), Kv = ff_im2col_patch_size_varying(l);
    const int kk = l->kernel * l->kernel;
    for (int c = 0; c < l->out.c; c++)
        for (int j = 0; j < nc; j++) {
            float *g = gW + (size_t)c * K + Kv + (size_t)j * kk;
            const float v = G[(size_t)c * nc + j];
            for (int q = 0; q < kk; q++)
                g[q] = (beta == 0.0f ? 0.0f : beta * g[q]) + v;
        }
}
