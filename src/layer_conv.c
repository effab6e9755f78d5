/* layer_conv.c - weight-shared convolution + ReLU on im2col and OpenBLAS sgemm, or on
 * direct loops where each output channel sees few inputs (src/conv_direct.c).
 *
 * W is [out_c, K] row-major with K = in_c * k * k in (c, ki, kj) order, b is
 * [out_c]. Grouped (l->groups = G > 1, as PyTorch's groups): W is [out_c, Kg] with
 * Kg = K / G, the weights of output channel c over input block c / (out_c / G);
 * im2col still takes every input channel once, so group g's patch rows are the
 * contiguous range [g Kg, (g + 1) Kg) of col, and every product below is one sgemm
 * per group on those rows and that group's rows of W and t (or d).
 * Zero padding `padding` (l->pad); geometry in include/ff/im2col.h. Samples are stacked into
 * large sgemms (per-sample GEMMs are small and slow at the paper's 2x2..4x4 output
 * grids), in rounds of n = FF_CONV_CHUNK samples:
 *   forward:  col [K, n*P] = im2col(x) (ff_im2col_rows);  t [out_c, n*P] = W col;
 *             y[i][c][p] = relu(t[c][i*P + p] + b[c]) (bias and ReLU in the same pass)
 *   backward: d [out_c, n*P] = dpre's channel rows side by side;
 *             gW (+)= d col^T (one sgemm per round), gb[c] = sum_{i,p} dpre[i][c][p]
 * col with K rows makes every (row, sample, output row) one run of ow values (a
 * copy for stride 1) and gives OpenBLAS plain row-major operands: in a training run
 * of configs/cifar_deep.yaml (perf, one thread, 2026-12-08) im2col's share fell from
 * 13.4% to 8.8% against the patch-row layout's gather, the sgemms' packing from 15.6%
 * to 11.3%.
 * In training the forward pass writes col for the whole batch into the caller's
 * `patches` buffer and the backward pass reads it there instead of extracting the
 * patches again. Constant planes (l->const_c > 0: label planes) stay out of col
 * (K becomes Kv, the varying channels' share): their part of every window is
 * a[i][c] = sum_j V[i][j] S[c][j] (V: plane values, S: per-plane kernel sums), added
 * with the bias; in backward, d S[c][j] = sum_i V[i][j] sum_p dpre[i][c][p] is
 * copied to each of plane j's k*k weights.
 * Layers whose groups see at most FF_CONV_DIRECT_KG inputs per output (stride 1, no
 * constant planes: l->direct, decided at set-up) skip all of this for the direct
 * loops, which keep no patches.
 * Measured (paper's shapes, batch 100 and 1000): per-sample GEMMs are 2-3x slower on
 * layers 2 and 3; rounds of 64 samples are a few % faster than one whole-batch
 * sgemm and keep the workspace small: min(batch, 64) * P * (K + out_c) floats. */
#include <cblas.h>
#include <string.h>

#include "conv_direct.h"
#include "ff/im2col.h"
#include "ff/layer.h"
#include "ff/pool.h"
#include "vec_runs.h"

static int conv_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index,
                      ff_err *err)
{
    int rc = ff_im2col_setup(l, cfg, in, index, "conv", err);
    if (rc)
        return rc;
    const int G = cfg->groups > 0 ? cfg->groups : 1; /* 0: a config built in code */
    if (l->in.c % G || l->out.c % G)
        return ff_err_set(err, FF_ERR_USAGE,
                          "layer %d: conv groups %d must divide both its input channels (%d) and "
                          "its output channels (%d)",
                          index, G, l->in.c, l->out.c);
    l->groups = G;
    l->direct = ff_conv_direct_fits(l);
    l->n_weights = (size_t)l->out.c * (size_t)(ff_im2col_patch_size(l) / G);
    l->n_bias = (size_t)l->out.c;
    return FF_OK;
}

/* the direct loops (src/conv_direct.c) instead of im2col + GEMM */
static int uses_direct(const ff_layer *l) { return l->direct && l->const_c == 0; }

/* samples per round: at most FF_CONV_CHUNK */
static int chunk(int batch) { return batch < FF_CONV_CHUNK ? batch : FF_CONV_CHUNK; }

/* leading dimension of t ([C, n * P]): padded by 16 floats, so that its rows, read
 * one run per row for each sample, do not fall on the same L1 sets (n * P * 4 bytes
 * is often a multiple of 1 or 4 KB) */
static size_t t_ld(const ff_layer *l, int n) { return (size_t)n * ff_im2col_patch_count(l) + 16; }

/* floats of one round's col and t (or d; t's rows are t_ld apart) */
static size_t rounds_floats(const ff_layer *l, int batch)
{
    return (size_t)chunk(batch) * (size_t)ff_im2col_patch_count(l) *
               ((size_t)ff_im2col_patch_size_varying(l) + (size_t)l->out.c) +
           16 * (size_t)l->out.c;
}

/* floats before the epilogue's tables: the rounds, then for constant planes S (or
 * d S) [C, nc], V [batch, nc] and a (or the row sums) [batch, C] */
static size_t tables_offset(const ff_layer *l, int batch)
{
    const size_t nc = (size_t)l->const_c, C = (size_t)l->out.c;
    return rounds_floats(l, batch) + (nc ? C * nc + (size_t)batch * (nc + C) : 0);
}

/* then the epilogue's bias per output value and t's offset per output value
 * ([C * P] floats and [C * P] int32) */
static size_t conv_workspace(const ff_layer *l, int batch)
{
    const size_t gemm = tables_offset(l, batch) + 2 * (size_t)ff_shape_dim(l->out);
    const size_t direct = l->direct ? ff_conv_direct_workspace(l) : 0;
    return gemm > direct ? gemm : direct;
}

/* y[i][c][p] = relu(t[c][i * P + p] + b[c] + a[i][c]) for n samples: the GEMM's
 * [C, n * P] product put into CHW rows (runs of P floats) with bias and ReLU in the
 * same pass (a NULL: no plane term; a is indexed from the round's first sample);
 * split over the pool by samples */
typedef struct epilogue_job {
    const ff_layer *l;
    const float *t, *a;
    float *y;
    int n;
    const float *bias;    /* short runs: b[c] at every output value c * P + p */
    const int32_t *index; /* short runs: offset c * ld + p of every output value in t */
} epilogue_job;

/* samples [i0, i1): each sample's CHW row written in order from t's rows */
static void bias_relu_range(void *ctx, size_t i0, size_t i1)
{
    const epilogue_job *j = ctx;
    const ff_layer *l = j->l;
    const int P = ff_im2col_patch_count(l), C = l->out.c;
    const size_t ld = t_ld(l, j->n), out_dim = (size_t)C * P;
    const float *a = j->a;
    for (size_t i = i0; i < i1; i++) {
        float *yi = j->y + i * out_dim;
        const float *ti = j->t + i * P;
        if (j->index) { /* runs shorter than a vector: one gather per 16 output values */
            ff_gather_bias_relu(yi, ti, j->index, j->bias, (int)out_dim);
            continue;
        }
        for (int c = 0; c < C; c++) {
            const float add = l->b[c] + (a ? a[i * C + c] : 0.0f);
            ff_run_bias_relu(yi + (size_t)c * P, ti + c * ld, add, P);
        }
    }
}

static void bias_relu(const ff_layer *l, const float *t, float *y, int n, const float *a,
                      float *tables)
{
    epilogue_job j = {l, t, a, y, n, NULL, NULL};
    const int P = ff_im2col_patch_count(l), C = l->out.c;
    if (!a && P < 16) {
        float *bias = tables;
        int32_t *index = (int32_t *)(tables + (size_t)C * P);
        const size_t ld = t_ld(l, n);
        for (int c = 0; c < C; c++)
            for (int p = 0; p < P; p++) {
                bias[c * P + p] = l->b[c] + 0.0f; /* as the run loop: no plane term */
                index[c * P + p] = (int32_t)((size_t)c * ld + (size_t)p);
            }
        j.bias = bias;
        j.index = index;
    }
    ff_pool_for((size_t)n, 4, bias_relu_range, &j);
}

static void conv_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                         float *patches)
{
    const int Kv = ff_im2col_patch_size_varying(l), K = ff_im2col_patch_size(l), P = ff_im2col_patch_count(l);
    const int C = l->out.c, nc = l->const_c, ng = l->groups;
    const int Cg = C / ng, Kg = Kv / ng, ldw = K / ng; /* one group: C, Kv, K */
    const size_t in_dim = (size_t)ff_shape_dim(l->in), out_dim = (size_t)ff_shape_dim(l->out);
    const ff_shape varying = {l->in.c - nc, l->in.h, l->in.w};
    FF_ASSERT(ng == 1 || nc == 0);
    if (uses_direct(l)) {
        ff_conv_direct_forward(l, x, y, batch);
        return;
    }
    float *t = ws + (size_t)chunk(batch) * P * Kv;
    float *a = NULL;
    if (nc) {
        float *S = ws + rounds_floats(l, batch), *V = S + (size_t)C * nc;
        a = V + (size_t)batch * nc;
        ff_im2col_planes_weight_sums(l, l->W, S);
        ff_im2col_planes_read(l, x, batch, V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, C, nc, 1.0f, V, nc, S, nc,
                    0.0f, a, C);
    }
    for (int i0 = 0; i0 < batch; i0 += FF_CONV_CHUNK) {
        const int n = chunk(batch - i0);
        float *col = patches ? patches + (size_t)i0 * P * Kv : ws;
        ff_im2col_rows(x + i0 * in_dim, n, in_dim, varying, l->kernel, l->stride, l->pad, l->out,
                       col, (size_t)n * P);
        const size_t ld = t_ld(l, n);
        for (int g = 0; g < ng; g++) /* t rows of group g = W_g col[group g's rows] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cg, n * P, Kg, 1.0f,
                        l->W + (size_t)g * Cg * ldw, ldw, col + (size_t)g * Kg * n * P, n * P,
                        0.0f, t + (size_t)g * Cg * ld, (int)ld);
        bias_relu(l, t, y + i0 * out_dim, n, a ? a + (size_t)i0 * C : NULL,
                  ws + tables_offset(l, batch));
    }
}

/* r[i][c] = sum_p dpre[i][c][p]; gb[c] (= or +=) sum_i r[i][c], in that order of
 * i for every c; split over the pool by channels */
typedef struct bias_grad_job {
    const ff_layer *l;
    const float *dpre;
    int batch;
    float beta;
    float *r;
} bias_grad_job;

static void bias_grad_range(void *ctx, size_t c0, size_t c1)
{
    const bias_grad_job *j = ctx;
    const ff_layer *l = j->l;
    const int P = ff_im2col_patch_count(l), C = l->out.c;
    float *r = j->r, *gb = l->gb;
    if (j->beta == 0.0f)
        for (size_t c = c0; c < c1; c++)
            gb[c] = 0.0f;
    for (int i = 0; i < j->batch; i++)
        for (size_t c = c0; c < c1; c++) {
            const float *row = j->dpre + ((size_t)i * C + c) * P;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int p = 0; p < P; p++)
                s += row[p];
            gb[c] += s;
            if (r) /* loop-invariant: GCC unswitches it */
                r[(size_t)i * C + c] = s;
        }
}

static void bias_grad(const ff_layer *l, const float *dpre, int batch, float beta, float *r)
{
    bias_grad_job j = {l, dpre, batch, beta, r};
    ff_pool_for((size_t)l->out.c, 16, bias_grad_range, &j);
}

static void conv_backward(const ff_layer *l, const float *x, const float *patches,
                          const float *dpre, int batch, float beta, float *ws)
{
    const int Kv = ff_im2col_patch_size_varying(l), K = ff_im2col_patch_size(l), P = ff_im2col_patch_count(l);
    const int C = l->out.c, nc = l->const_c, ng = l->groups;
    const int Cg = C / ng, Kg = Kv / ng, ldw = K / ng; /* one group: C, Kv, K */
    const size_t in_dim = (size_t)ff_shape_dim(l->in), out_dim = (size_t)ff_shape_dim(l->out);
    const ff_shape varying = {l->in.c - nc, l->in.h, l->in.w};
    FF_ASSERT(ng == 1 || nc == 0);
    if (uses_direct(l)) {
        FF_ASSERT(x != NULL);
        ff_conv_direct_backward(l, x, dpre, batch, beta, ws);
        bias_grad(l, dpre, batch, beta, NULL);
        return;
    }
    float *d = ws + (size_t)chunk(batch) * P * Kv;
    for (int i0 = 0; i0 < batch; i0 += FF_CONV_CHUNK) {
        const int n = chunk(batch - i0);
        const float *col = patches ? patches + (size_t)i0 * P * Kv : ws;
        if (!patches)
            ff_im2col_rows(x + i0 * in_dim, n, in_dim, varying, l->kernel, l->stride, l->pad,
                           l->out, ws, (size_t)n * P);
        ff_im2col_channels_to_rows(dpre + i0 * out_dim, d, n, C, P);
        for (int g = 0; g < ng; g++) /* gW_g (+)= d_g col[group g's rows]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cg, Kg, n * P, 1.0f,
                        d + (size_t)g * Cg * n * P, n * P, col + (size_t)g * Kg * n * P, n * P,
                        i0 ? 1.0f : beta, l->gW + (size_t)g * Cg * ldw, ldw);
    }
    float *G = ws + rounds_floats(l, batch), *V = G + (size_t)C * nc;
    float *r = V + (size_t)batch * nc; /* G [C, nc], V [batch, nc], r [batch, C] */
    bias_grad(l, dpre, batch, beta, nc ? r : NULL);
    if (nc) {
        FF_ASSERT(x != NULL); /* the plane values come from x */
        ff_im2col_planes_read(l, x, batch, V);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, nc, batch, 1.0f, r, C, V, nc,
                    0.0f, G, nc);
        ff_im2col_planes_scatter_grad(l, G, beta, l->gW);
    }
}

/* what the forward pass keeps for the backward pass: the im2col patches, none on
 * the direct loops */
static size_t conv_patch_floats(const ff_layer *l)
{
    return uses_direct(l) ? 0 : ff_im2col_floats(l);
}

static size_t conv_fan_in(const ff_layer *l) { return l->n_weights / (size_t)l->out.c; }

/* im2col channels through the GEMM (each output channel over its group's Kv / G),
 * constant planes as one per-sample bias */
static double conv_flops(const ff_layer *l)
{
    const double P = ff_im2col_patch_count(l), C = l->out.c;
    const double per_location = C * (ff_im2col_patch_size_varying(l) / l->groups + l->const_c);
    return P * per_location - (P - 1) * C * l->const_c;
}

const ff_layer_ops ff_conv_ops = {
    .name = "conv",
    .keys = "channels kernel stride padding groups threshold train_epochs",
    .required = "channels kernel",
    .receptive_fields = 1,
    .setup = conv_setup,
    .fan_in = conv_fan_in,
    .workspace = conv_workspace,
    .patch_floats = conv_patch_floats,
    .forward = conv_forward,
    .backward = conv_backward,
    .flops = conv_flops,
};
