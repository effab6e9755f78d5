/* recurrent.c - the paper's recurrent FF net (include/ff/recurrent.h): the bottom-up
 * pass, the synchronous damped steps with the label clamped at the top, each layer's
 * FF loss and gradients at every step, and the goodness readout over a window of steps.
 * Every product is a GEMM with the rows (images x labels) as the batch: one for an fc
 * layer's or a dense top-down map, one per location for a locally connected map (local
 * layers, bottom-up and top-down) on im2col patches of 64 rows at a time. */
#include "ff/recurrent.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/im2col.h"
#include "ff/objective.h"

/* Rows per im2col round of a local layer's maps: the patches of this many rows at a time */
#define REC_CHUNK 64

/* The geometry of a locally connected map: a local layer's bottom-up map, or the top-down
 * map of a local layer under a local layer (the same code runs both) */
typedef struct local_map {
    ff_shape in, out;
    int k, stride, pad;
} local_map;

/* layer L's bottom-up map */
static local_map bottom_up_map(const ff_layer *L)
{
    return (local_map){L->in, L->out, L->kernel, L->stride, L->pad};
}

/* layer l's top-down map (td_local): layer l + 1's output to layer l's, l's kernel,
 * stride 1, "same" padding */
static local_map top_down_map(const ff_net *net, int l)
{
    const ff_layer *L = &net->layers[l];
    return (local_map){net->layers[l + 1].out, L->out, L->kernel, 1, L->td_pad};
}

/* floats of one row's patches of map m (P * K) */
static size_t map_patch_floats(const local_map *m)
{
    return (size_t)m->out.h * m->out.w * (size_t)m->in.c * m->k * m->k;
}

/* the largest of f(map) over every local map of the net (f: floats per row) */
static size_t max_over_maps(const ff_net *net, size_t (*f)(const local_map *))
{
    size_t most = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const ff_layer *L = &net->layers[l];
        if (L->kind != FF_LAYER_LOCAL)
            continue;
        local_map m = bottom_up_map(L);
        most = f(&m) > most ? f(&m) : most;
        if (L->td_local) {
            m = top_down_map(net, l);
            most = f(&m) > most ? f(&m) : most;
        }
    }
    return most;
}

/* the largest patches (P * K) of a row over every local map of the net */
static size_t max_patch_floats(const ff_net *net) { return max_over_maps(net, map_patch_floats); }

/* floats of one row's input of map m inside its zero border (0 without padding) */
static size_t map_padded_floats(const local_map *m)
{
    return m->pad ? (size_t)m->in.c * (m->in.h + 2 * m->pad) * (size_t)(m->in.w + 2 * m->pad) : 0;
}

/* 1 if the recurrent net can run layer L: fc, or local without label planes; with top-down
 * weights and no pool below */
static int supported_layer(const ff_net *net, int l)
{
    const ff_layer *L = &net->layers[l];
    const int kind_ok = L->kind == FF_LAYER_FC || (L->kind == FF_LAYER_LOCAL && !L->const_c);
    return kind_ok && L->Wtd && !ff_net_pooled(net, l);
}

int ff_recurrent_init(ff_recurrent *r, ff_net *net, const ff_config *cfg, ff_err *err)
{
    memset(r, 0, sizeof *r);
    if (cfg->model.recurrent.iterations <= 0)
        return FF_OK;
    ff_objective obj;
    int rc = ff_objective_from_config(&obj, cfg, err);
    if (rc)
        return rc;
    const int L = net->n_layers;
    const size_t rows = (size_t)net->max_batch;
    size_t total = rows * (size_t)ff_shape_dim(net->input) + rows * FF_NUM_CLASSES;
    total += L > 0 ? rows * (size_t)ff_shape_dim(net->layers[0].out) : 0; /* u0 */
    size_t max_d = 0;
    for (int l = 0; l < L; l++) {
        if (!supported_layer(net, l))
            return ff_err_set(err, FF_ERR_USAGE, "model.recurrent: layer %d is not a fully "
                              "connected or locally connected layer with top-down weights", l);
        const size_t d = (size_t)ff_shape_dim(net->layers[l].out);
        total += 3 * rows * d;
        max_d = d > max_d ? d : max_d;
    }
    const size_t scratch = ff_objective_scratch(&obj, (int)rows);
    total += rows * max_d + scratch + 3 * rows + 2 * (size_t)L * rows;
    const size_t patches = max_patch_floats(net); /* local layers: a chunk's patches */
    const size_t padded = max_over_maps(net, map_padded_floats);
    if (patches) /* col, the chunk's [rows, P, C], the gather index (int32), padded inputs */
        total += REC_CHUNK * patches + REC_CHUNK * max_d + patches + REC_CHUNK * padded;
    r->mem = malloc(sizeof(float) * total);
    r->top = malloc(rows);
    if (!r->mem || !r->top) {
        ff_recurrent_free(r);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for the recurrent net's states "
                          "(%.1f MB)", total * 4.0 / 1e6);
    }
    float *p = r->mem;
    r->x0 = p, p += rows * (size_t)ff_shape_dim(net->input);
    r->c = p, p += rows * FF_NUM_CLASSES;
    r->u0 = p, p += rows * (size_t)ff_shape_dim(net->layers[0].out);
    for (int l = 0; l < L; l++) {
        const size_t d = (size_t)ff_shape_dim(net->layers[l].out);
        r->h[l] = p, p += rows * d;
        r->hn[l] = p, p += rows * d;
        r->y[l] = p, p += rows * d;
    }
    r->dpre = p, p += rows * max_d;
    r->g = p, p += scratch;
    r->sum = p, p += rows;
    r->score = p, p += rows;
    r->gl = p, p += (size_t)L * rows;
    r->lscore = p, p += (size_t)L * rows;
    if (patches) {
        r->col = p, p += REC_CHUNK * patches;
        r->t = p, p += REC_CHUNK * max_d;
        r->index = (int32_t *)p, p += patches;
        r->xpad = p, p += REC_CHUNK * padded;
    }
    r->active = 1;
    r->iterations = cfg->model.recurrent.iterations;
    r->damping = cfg->model.recurrent.damping;
    r->eps = cfg->model.norm_eps;
    r->eval_first = cfg->model.recurrent.eval_first;
    r->eval_last = cfg->model.recurrent.eval_last;
    r->readout_iteration = cfg->model.recurrent.readout_iteration > 0
                               ? cfg->model.recurrent.readout_iteration
                               : r->eval_last;
    r->max_rows = (int)rows;
    net->recurrent = r;
    net->forward_hook = ff_recurrent_forward;
    return FF_OK;
}

void ff_recurrent_free(ff_recurrent *r)
{
    free(r->mem);
    free(r->top);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- the passes */

/* the padded shape of map m's input: the zero border as part of the input */
static ff_shape padded_shape(const local_map *m)
{
    return (ff_shape){m->in.c, m->in.h + 2 * m->pad, m->in.w + 2 * m->pad};
}

/* r->col = the patches of n rows x of map m: with padding, the rows are first copied into
 * r->xpad inside a zero border, so im2col copies whole window rows (the same values as
 * its per-value padded gather, faster) */
static void map_patches(ff_recurrent *r, const local_map *m, const float *x, int n)
{
    const size_t dim = (size_t)ff_shape_dim(m->in);
    if (m->pad == 0) {
        ff_im2col(x, n, dim, m->in, m->k, m->stride, 0, m->out, r->col, r->index);
        return;
    }
    const ff_shape ps = padded_shape(m);
    const size_t pdim = (size_t)ff_shape_dim(ps);
    memset(r->xpad, 0, sizeof(float) * pdim * (size_t)n);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < m->in.c; c++)
            for (int y = 0; y < m->in.h; y++)
                memcpy(r->xpad + i * pdim + ((size_t)c * ps.h + y + m->pad) * ps.w + m->pad,
                       x + i * dim + ((size_t)c * m->in.h + y) * m->in.w,
                       sizeof(float) * (size_t)m->in.w);
    ff_im2col(r->xpad, n, pdim, ps, m->k, m->stride, 0, m->out, r->col, r->index);
}

/* t[i][p][:] = beta t[i][p][:] + patch_p(x_i) W_p^T for n rows x of map m ([n, P, C];
 * W: [P][C, K] as a local layer's): one im2col of the rows, one GEMM per location */
static void map_forward(ff_recurrent *r, const local_map *m, const float *W, const float *x,
                        int n, float beta, float *t)
{
    const int P = m->out.h * m->out.w, C = m->out.c, K = m->in.c * m->k * m->k;
    map_patches(r, m, x, n);
    for (int p = 0; p < P; p++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, C, K, 1.0f, r->col + (size_t)p * K,
                    P * K, W + (size_t)p * C * K, K, beta, t + (size_t)p * C, P * C);
}

/* gW_p = beta gW_p + d[:, p, :]^T patch_p(x) for n rows x of map m (d: [n, P, C]) */
static void map_grad(ff_recurrent *r, const local_map *m, const float *d, const float *x, int n,
                     float beta, float *gW)
{
    const int P = m->out.h * m->out.w, C = m->out.c, K = m->in.c * m->k * m->k;
    map_patches(r, m, x, n);
    for (int p = 0; p < P; p++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, K, n, 1.0f, d + (size_t)p * C,
                    P * C, r->col + (size_t)p * K, P * K, beta, gW + (size_t)p * C * K, K);
}

/* local layer l: y = the bottom-up map of in + b, [rows, d] in CHW order; REC_CHUNK rows
 * per im2col round */
static void local_bottom_up(ff_recurrent *r, const ff_net *net, int l, const float *in, float *y,
                            int rows)
{
    const ff_layer *L = &net->layers[l];
    const local_map bu = bottom_up_map(L);
    const int d = ff_shape_dim(L->out), din = ff_shape_dim(L->in), P = L->out.h * L->out.w;
    for (int r0 = 0; r0 < rows; r0 += REC_CHUNK) {
        const int n = rows - r0 < REC_CHUNK ? rows - r0 : REC_CHUNK;
        map_forward(r, &bu, L->W, in + (size_t)r0 * din, n, 0.0f, r->t);
        ff_im2col_transpose_batch(r->t, y + (size_t)r0 * d, n, P, L->out.c); /* to CHW */
    }
    for (int i = 0; i < rows; i++) {
        float *restrict yi = y + (size_t)i * d;
        const float *restrict b = L->b;
        for (int q = 0; q < d; q++)
            yi[q] += b[q];
    }
}

/* local layer l with a local top-down map (td_local): y += that map of above, [rows, d] */
static void local_add_top_down(ff_recurrent *r, const ff_net *net, int l, const float *above,
                               float *y, int rows)
{
    const ff_layer *L = &net->layers[l];
    const local_map td = top_down_map(net, l);
    const int d = ff_shape_dim(L->out), P = L->out.h * L->out.w, C = L->out.c;
    for (int r0 = 0; r0 < rows; r0 += REC_CHUNK) {
        const int n = rows - r0 < REC_CHUNK ? rows - r0 : REC_CHUNK;
        map_forward(r, &td, L->Wtd, above + (size_t)r0 * L->td_dim, n, 0.0f, r->t);
        for (int i = 0; i < n; i++) { /* [P, C] per row onto CHW */
            const float *restrict ti = r->t + (size_t)i * P * C;
            float *restrict yi = y + (size_t)(r0 + i) * d;
            for (int c = 0; c < C; c++)
                for (int p = 0; p < P; p++)
                    yi[(size_t)c * P + p] += ti[(size_t)p * C + c];
        }
    }
}

/* layer l's bottom-up pre-activation y = W in + b, [rows, d]: fc as a GEMM onto the bias,
 * local through its locally connected map */
static void bottom_up_pre(ff_recurrent *r, const ff_net *net, int l, const float *in, float *y,
                          int rows)
{
    const ff_layer *L = &net->layers[l];
    const int d = ff_shape_dim(L->out), din = ff_shape_dim(L->in);
    if (L->kind == FF_LAYER_LOCAL) {
        local_bottom_up(r, net, l, in, y, rows);
        return;
    }
    for (int i = 0; i < rows; i++)
        memcpy(y + (size_t)i * d, L->b, sizeof(float) * (size_t)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, d, din, 1.0f, in, din, L->W, din,
                1.0f, y, d);
}

/* y += Wtd above, [rows, d]: a dense map (fc, the label, an fc layer above a local one) as
 * one GEMM, a local one (td_local) through its locally connected map */
static void add_top_down(ff_recurrent *r, const ff_net *net, int l, const float *above, float *y,
                         int rows)
{
    const ff_layer *L = &net->layers[l];
    const int d = ff_shape_dim(L->out);
    if (L->td_local)
        local_add_top_down(r, net, l, above, y, rows);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, d, L->td_dim, 1.0f, above,
                    L->td_dim, L->Wtd, L->td_dim, 1.0f, y, d);
}

void ff_recurrent_bottom_up(ff_recurrent *r, ff_net *net, const float *x, int rows)
{
    FF_ASSERT(r->active && rows <= r->max_rows);
    ff_objective_normalize(x, r->x0, rows, ff_shape_dim(net->input), net->norm_eps);
    for (int l = 0; l < net->n_layers; l++) {
        const ff_layer *L = &net->layers[l];
        const size_t n = (size_t)rows * (size_t)ff_shape_dim(L->out);
        if (l > 0) /* the normalised layer below as the next one's input */
            ff_objective_normalize(r->h[l - 1], r->hn[l - 1], rows, ff_shape_dim(L->in), net->norm_eps);
        /* layer 0's pre-activation kept in u0: the image is the same at every step */
        bottom_up_pre(r, net, l, l ? r->hn[l - 1] : r->x0, l ? r->h[l] : r->u0, rows);
        const float *restrict u = l ? r->h[l] : r->u0;
        float *restrict h = r->h[l];
        for (size_t q = 0; q < n; q++)
            h[q] = u[q] > 0.0f ? u[q] : 0.0f;
    }
}

void ff_recurrent_clamp(ff_recurrent *r, const uint8_t *labels, int rows)
{
    FF_ASSERT(rows <= r->max_rows);
    for (int i = 0; i < rows; i++) {
        float *c = r->c + (size_t)i * FF_NUM_CLASSES;
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            c[k] = labels ? (float)(labels[i] == k) : 1.0f / FF_NUM_CLASSES;
    }
    ff_objective_normalize(r->c, r->c, rows, FF_NUM_CLASSES, r->eps); /* handed on as any layer is */
}

void ff_recurrent_step(ff_recurrent *r, ff_net *net, int rows)
{
    const int L = net->n_layers;
    for (int l = 0; l < L; l++) /* every input is a state of the step before */
        ff_objective_normalize(r->h[l], r->hn[l], rows, ff_shape_dim(net->layers[l].out), net->norm_eps);
    const float d = r->damping, e = 1.0f - d;
    for (int l = 0; l < L; l++) {
        const ff_layer *Ly = &net->layers[l];
        const size_t n = (size_t)rows * (size_t)ff_shape_dim(Ly->out);
        if (l == 0) /* the bottom-up pass's W_0 x0 + b_0 */
            memcpy(r->y[0], r->u0, sizeof(float) * n);
        else
            bottom_up_pre(r, net, l, r->hn[l - 1], r->y[l], rows);
        add_top_down(r, net, l, l + 1 < L ? r->hn[l + 1] : r->c, r->y[l], rows);
        float *restrict y = r->y[l], *restrict h = r->h[l];
        for (size_t q = 0; q < n; q++) {
            y[q] = y[q] > 0.0f ? y[q] : 0.0f;
            h[q] = d * h[q] + e * y[q];
        }
    }
}

void ff_recurrent_forward(ff_recurrent *r, ff_net *net, const float *x, int rows)
{
    const int L = net->n_layers;
    ff_recurrent_clamp(r, NULL, rows);
    ff_recurrent_bottom_up(r, net, x, rows);
    for (int t = 1; t <= r->readout_iteration; t++)
        ff_recurrent_step(r, net, rows);
    memcpy(net->in[0], r->x0, sizeof(float) * rows * (size_t)ff_shape_dim(net->input));
    for (int l = 0; l < L; l++) {
        const int d = ff_shape_dim(net->layers[l].out);
        memcpy(net->out[l], r->h[l], sizeof(float) * rows * (size_t)d);
        if (l + 1 < L)
            ff_objective_normalize(r->h[l], net->in[l + 1], rows, d, net->norm_eps);
    }
}

/* local layer l's W gradient (and Wtd's if td_local) from r->dpre ([rows, d], CHW),
 * written (beta 0) or added (beta 1): each chunk's dpre per location, then its patches */
static void local_weight_grads(ff_recurrent *r, const ff_net *net, int l, const float *below,
                               const float *above, int rows, float beta)
{
    const ff_layer *L = &net->layers[l];
    const local_map bu = bottom_up_map(L);
    const int d = ff_shape_dim(L->out), din = ff_shape_dim(L->in), P = L->out.h * L->out.w;
    if (rows == 0 && beta == 0.0f) { /* no rows: nothing to add, but the sums are 0 */
        memset(L->gW, 0, sizeof(float) * L->n_weights);
        if (L->td_local)
            memset(L->gWtd, 0, sizeof(float) * L->n_topdown);
    }
    for (int r0 = 0; r0 < rows; r0 += REC_CHUNK) {
        const int n = rows - r0 < REC_CHUNK ? rows - r0 : REC_CHUNK;
        const float b = r0 ? 1.0f : beta;
        ff_im2col_transpose_batch(r->dpre + (size_t)r0 * d, r->t, n, L->out.c, P); /* [n, P, C] */
        map_grad(r, &bu, r->t, below + (size_t)r0 * din, n, b, L->gW);
        if (L->td_local) {
            const local_map td = top_down_map(net, l);
            map_grad(r, &td, r->t, above + (size_t)r0 * L->td_dim, n, b, L->gWtd);
        }
    }
}

/* layer l's loss on h_t[l] and its gradients at this step, added to (beta 1) or written
 * into (beta 0) the layer's slice of net->grads */
static void layer_grads(ff_recurrent *r, ff_net *net, const ff_objective *obj, int l, int npos,
                        int nneg, float scale, float beta, ff_layer_loss *res)
{
    const ff_layer *Ly = &net->layers[l];
    const int L = net->n_layers, rows = npos + nneg, d = ff_shape_dim(Ly->out);
    const int din = ff_shape_dim(Ly->in);
    memset(res, 0, sizeof *res);
    /* d loss / d h_t, masked where h_t > 0 */
    ff_objective_layer_loss(obj, r->h[l], NULL, npos, nneg, d, Ly->threshold, scale, NULL, r->g,
                            r->dpre, res);
    const size_t n = (size_t)rows * (size_t)d;
    const float e = 1.0f - r->damping;
    float *restrict dp = r->dpre;
    const float *restrict y = r->y[l];
    for (size_t q = 0; q < n; q++) /* d h_t / d pre = (1 - d) where y_t > 0 */
        dp[q] = y[q] > 0.0f ? e * dp[q] : 0.0f;
    const float *below = l ? r->hn[l - 1] : r->x0, *above = l + 1 < L ? r->hn[l + 1] : r->c;
    if (Ly->kind == FF_LAYER_LOCAL)
        local_weight_grads(r, net, l, below, above, rows, beta);
    else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, din, rows, 1.0f, dp, d, below,
                    din, beta, Ly->gW, din);
    if (!Ly->td_local)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, Ly->td_dim, rows, 1.0f, dp, d,
                    above, Ly->td_dim, beta, Ly->gWtd, Ly->td_dim);
    ff_layer_bias_grad_per_output(Ly, dp, rows, beta);
}

/* mean goodness of rows [0, npos) and [npos, npos + nneg) of h[l] into res */
static void goodness_means(ff_recurrent *r, const ff_net *net, int l, int npos, int nneg,
                           ff_layer_loss *res)
{
    const int d = ff_shape_dim(net->layers[l].out);
    memset(res, 0, sizeof *res);
    ff_objective_goodness(r->h[l], npos + nneg, d, r->g);
    double a = 0.0, b = 0.0;
    for (int i = 0; i < npos; i++)
        a += r->g[i];
    for (int i = npos; i < npos + nneg; i++)
        b += r->g[i];
    res->g_pos = npos ? (float)(a / npos) : 0.0f;
    res->g_neg = nneg ? (float)(b / nneg) : 0.0f;
}

void ff_recurrent_step_grads(ff_recurrent *r, ff_net *net, const ff_objective *obj, int npos,
                             int nneg, float scale, float beta, ff_layer_loss *res)
{
    for (int l = 0; l < net->n_layers; l++)
        layer_grads(r, net, obj, l, npos, nneg, scale, beta, &res[l]);
}

void ff_recurrent_ff_grads(ff_recurrent *r, ff_net *net, const ff_objective *obj, const float *x,
                           const uint8_t *top, int npos, int nneg, float scale,
                           ff_layer_loss iters[FF_MAX_ITERS + 1][FF_MAX_LAYERS],
                           ff_layer_loss *out)
{
    const int L = net->n_layers, rows = npos + nneg, T = r->iterations;
    ff_recurrent_clamp(r, top, rows);
    ff_recurrent_bottom_up(r, net, x, rows);
    for (int l = 0; l < L; l++)
        goodness_means(r, net, l, npos, nneg, &iters[0][l]);
    if (out)
        memset(out, 0, sizeof(ff_layer_loss) * (size_t)L);
    for (int t = 1; t <= T; t++) {
        ff_recurrent_step(r, net, rows);
        for (int l = 0; l < L; l++) {
            ff_layer_loss *res = &iters[t][l];
            layer_grads(r, net, obj, l, npos, nneg, scale / (float)T, t == 1 ? 0.0f : 1.0f, res);
            if (t == T && net->peers && net->peers->grads_ready)
                net->peers->grads_ready(net->peers->ctx, l);
            if (out) {
                out[l].loss_pos += res->loss_pos;
                out[l].loss_neg += res->loss_neg;
                out[l].g_pos += res->g_pos / (float)T;
                out[l].g_neg += res->g_neg / (float)T;
            }
        }
    }
}

/* ---------------------------------------------------------------- the readout */

/* scores of m images (m * 10 <= max_rows): rows k * m + i = image i with label k */
static void score_chunk(ff_recurrent *r, ff_net *net, const float *x, int m, int as_logits,
                        float *scores, float *layers)
{
    const int L = net->n_layers, rows = m * FF_NUM_CLASSES;
    FF_ASSERT(rows <= r->max_rows);
    /* the bottom-up pass does not see the label: once, then copied to every label's block */
    ff_recurrent_bottom_up(r, net, x, m);
    const size_t xd = (size_t)ff_shape_dim(net->input) * (size_t)m;
    const size_t ud = (size_t)ff_shape_dim(net->layers[0].out) * (size_t)m;
    for (int k = 1; k < FF_NUM_CLASSES; k++) {
        memcpy(r->x0 + k * xd, r->x0, sizeof(float) * xd);
        memcpy(r->u0 + k * ud, r->u0, sizeof(float) * ud);
        for (int l = 0; l < L; l++) {
            const size_t hd = (size_t)ff_shape_dim(net->layers[l].out) * (size_t)m;
            memcpy(r->h[l] + k * hd, r->h[l], sizeof(float) * hd);
        }
    }
    for (int k = 0; k < FF_NUM_CLASSES; k++)
        memset(r->top + (size_t)k * m, k, (size_t)m);
    ff_recurrent_clamp(r, r->top, rows);
    for (int q = 0; q < rows; q++)
        r->sum[q] = 0.0f;
    if (layers)
        for (size_t q = 0; q < (size_t)L * rows; q++)
            r->gl[q] = 0.0f;
    const float w_window = 1.0f / (float)(r->eval_last - r->eval_first + 1);
    for (int t = 1; t <= r->eval_last; t++) {
        ff_recurrent_step(r, net, rows);
        if (t < r->eval_first)
            continue;
        for (int l = 0; l < L; l++) {
            if (!net->evaluated[l] && !layers)
                continue;
            const float w = as_logits ? net->layers[l].slope : 1.0f;
            ff_objective_goodness(r->h[l], rows, ff_shape_dim(net->layers[l].out), r->g);
            for (int q = 0; q < rows; q++) {
                if (net->evaluated[l])
                    r->sum[q] += w * r->g[q];
                if (layers)
                    r->gl[(size_t)l * rows + q] += r->g[q];
            }
        }
    }
    for (int i = 0; i < m; i++)
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            const size_t row = (size_t)k * m + i, to = (size_t)i * FF_NUM_CLASSES + k;
            scores[to] = r->sum[row] * w_window;
            for (int l = 0; layers && l < L; l++)
                layers[(size_t)l * rows + to] = r->gl[(size_t)l * rows + row] * w_window;
        }
}

void ff_recurrent_scores(ff_recurrent *r, ff_net *net, const float *x, int n, int as_logits,
                         float *scores, float *layers)
{
    const int chunk = r->max_rows / FF_NUM_CLASSES, L = net->n_layers;
    const size_t xd = (size_t)ff_shape_dim(net->input);
    FF_ASSERT(chunk > 0);
    for (int s = 0; s < n; s += chunk) {
        const int m = n - s < chunk ? n - s : chunk;
        float *ls = layers ? r->lscore : NULL;
        score_chunk(r, net, x + (size_t)s * xd, m, as_logits, scores + (size_t)s * FF_NUM_CLASSES,
                    ls);
        for (int l = 0; layers && l < L; l++) /* [l][n * 10] from the chunk's [l][m * 10] */
            memcpy(layers + ((size_t)l * n + s) * FF_NUM_CLASSES,
                   ls + (size_t)l * m * FF_NUM_CLASSES, sizeof(float) * m * FF_NUM_CLASSES);
    }
}

double ff_recurrent_error(ff_recurrent *r, ff_net *net, const float *x, const uint8_t *labels,
                          int n, double *layer_error, int64_t *confusion)
{
    const int chunk = r->max_rows / FF_NUM_CLASSES, L = net->n_layers;
    const size_t xd = (size_t)ff_shape_dim(net->input);
    int64_t wrong = 0, lwrong[FF_MAX_LAYERS] = {0};
    for (int s = 0; s < n; s += chunk) {
        const int m = n - s < chunk ? n - s : chunk;
        score_chunk(r, net, x + (size_t)s * xd, m, 0, r->score, layer_error ? r->lscore : NULL);
        for (int i = 0; i < m; i++) {
            const int truth = labels[s + i], pred = ff_objective_argmax10(r->score + (size_t)i * 10);
            wrong += pred != truth;
            if (confusion)
                confusion[truth * FF_NUM_CLASSES + pred]++;
            for (int l = 0; layer_error && l < L; l++)
                lwrong[l] += ff_objective_argmax10(r->lscore + ((size_t)l * m + i) * 10) != truth;
        }
    }
    for (int l = 0; layer_error && l < L; l++)
        layer_error[l] = n ? (double)lwrong[l] / n : 0.0;
    return n ? (double)wrong / n : 0.0;
}

double ff_recurrent_step_flops(const ff_net *net)
{
    double f = 0.0;
    for (int l = 0; l < net->n_layers; l++)
        f += (double)net->layers[l].n_weights + (double)net->layers[l].n_topdown;
    return f;
}

size_t ff_recurrent_describe(const ff_net *net, const ff_config *cfg, char *buf, size_t cap)
{
    const int T = cfg->model.recurrent.iterations;
    if (T <= 0) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0, __VA_ARGS__))
    const float d = cfg->model.recurrent.damping;
    PUT("# recurrent (model.recurrent): a bottom-up pass, then %d synchronous iteration%s; "
        "each hidden layer's new state = %g x its old state + %g x relu(W n(layer below) + "
        "Wtd n(layer above) + b), all from the step before; the label clamped above the top "
        "layer (one-hot, normalised)\n", T, T == 1 ? "" : "s", d, 1.0 - d);
    PUT("# top-down weights (in the params above):");
    for (int l = 0; l < net->n_layers; l++) {
        const ff_layer *L = &net->layers[l];
        const ff_shape a = l + 1 < net->n_layers ? net->layers[l + 1].out : (ff_shape){0};
        if (L->td_local)
            PUT(" layer %d <- layer %d [local %dx%d, padding %d: %dx%dx%d -> %dx%dx%d];", l, l + 1,
                L->kernel, L->kernel, L->td_pad, a.c, a.h, a.w, L->out.c, L->out.h, L->out.w);
        else if (l + 1 < net->n_layers)
            PUT(" layer %d <- layer %d [%d x %d];", l, l + 1, ff_shape_dim(L->out), L->td_dim);
        else
            PUT(" layer %d <- label [%d x %d]", l, ff_shape_dim(L->out), L->td_dim);
    }
    PUT("\n# training: every iteration each layer's own FF loss (no backpropagation through "
        "time), gradients averaged over the %d iterations; goodness readout: for each of the "
        "10 labels the mean over iterations %d-%d of the summed goodness of layers",
        T, cfg->model.recurrent.eval_first, cfg->model.recurrent.eval_last);
    for (int l = 0, k = 0; l < net->n_layers; l++)
        if (net->evaluated[l])
            PUT("%s%d", k++ ? "," : " ", l);
    const double step = ff_recurrent_step_flops(net), up = ff_net_flops(net);
    PUT("\n# per image: %.1f MFLOP per iteration (bottom-up + top-down); a training pass "
        "(positive + negative, forward and gradients) about %.0f MFLOP, the readout (10 "
        "labels x %d iterations) about %.0f MFLOP\n",
        2e-6 * step, 2.0 * 2e-6 * (up + 3.0 * T * step), cfg->model.recurrent.eval_last,
        2e-6 * (up + 10.0 * cfg->model.recurrent.eval_last * step));
    if (cfg->eval.softmax)
        PUT("# softmax head: the normalised states at iteration %d with the neutral label "
            "clamped\n", cfg->model.recurrent.readout_iteration > 0
                              ? cfg->model.recurrent.readout_iteration
                              : cfg->model.recurrent.eval_last);
    double states = 0.0; /* h, n(h), y of every layer, for every buffer row */
    for (int l = 0; l < net->n_layers; l++)
        states += 3.0 * ff_shape_dim(net->layers[l].out);
    PUT("# recurrent states: %.1f MiB (%d buffer rows)", states * net->max_batch * 4.0 / (1 << 20),
        net->max_batch);
    const double patches = (double)max_patch_floats(net);
    const double padded = (double)max_over_maps(net, map_padded_floats);
    if (patches > 0) /* local layers: one chunk's patches (and padded inputs) at a time */
        PUT("; local layers' receptive fields: %.1f MiB (%d rows at a time)",
            ((REC_CHUNK + 1.0) * patches + REC_CHUNK * padded) * 4.0 / (1 << 20), REC_CHUNK);
    PUT("\n");
#undef PUT
    return n;
}
