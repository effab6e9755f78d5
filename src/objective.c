/* objective.c - per-sample goodness, the FF logistic loss and its gradient,
 * the table of loss kinds behind ff_objective, and whole-vector length
 * normalisation (see include/ff/objective.h). */
#include "ff/objective.h"

#include "ff/err.h"
#include "ff/pool.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>

float ff_objective_softplus(float x) { return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

float ff_objective_sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* sum of squares; `omp simd reduction` lets it vectorise (partial sums in
 * vector lanes: a different summation order than a serial loop, ~1e-7 relative).
 * One out-of-line copy, so every caller sums a row in the same order. */
__attribute__((noinline)) static float sum_squares(const float *x, int n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++)
        s += x[j] * x[j];
    return s;
}

/* d[j] = coef * y[j] where y[j] > 0, else 0 (y is a ReLU output, so never NaN).
 * Written as a multiply by a 0/1 mask: GCC 12 does not vectorise the select
 * `y > 0 ? v : 0`, and the scalar loop was 4x slower than this one. */
static void masked_scale(const float *restrict y, int dim, float coef, float *restrict d)
{
    for (int j = 0; j < dim; j++) {
        const float on = y[j] > 0.0f ? 1.0f : 0.0f;
        d[j] = coef * y[j] * on;
    }
}

/* The row loops below are split over the pool (include/ff/pool.h) by rows: every
 * row is summed whole by sum_squares, and the loss terms, a reduction over rows,
 * are added afterwards on the caller's thread in row order. */
typedef struct rows_job {
    const float *y, *yneg, *x;
    float *g, *gn, *out, *dpre, *dneg;
    int dim, sign;
    float theta, slope, scale, eps;
} rows_job;

static void goodness_rows(void *ctx, size_t i0, size_t i1)
{
    const rows_job *j = ctx;
    for (size_t i = i0; i < i1; i++)
        j->g[i] = sum_squares(j->y + i * (size_t)j->dim, j->dim);
}

void ff_objective_goodness(const float *y, int batch, int dim, float *g)
{
    rows_job j = {.y = y, .g = g, .dim = dim};
    ff_pool_for((size_t)batch, 16, goodness_rows, &j);
}

/* loss_i = softplus(z_i) of ff_objective_loss's row i with goodness gi */
static float ff_loss_z(float gi, float theta, float slope, int sign)
{
    return (float)sign * slope * (theta - gi);
}

static void ff_loss_rows(void *ctx, size_t i0, size_t i1)
{
    const rows_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        const float *row = j->y + i * (size_t)j->dim;
        const float gi = sum_squares(row, j->dim);
        j->g[i] = gi;
        if (j->dpre) {
            /* dloss/dg = -sign * slope * sigmoid(z); dg/dy = 2y; relu mask is y > 0 */
            const float z = ff_loss_z(gi, j->theta, j->slope, j->sign);
            float coef = j->scale * -(float)j->sign * j->slope * ff_objective_sigmoid(z) * 2.0f;
            masked_scale(row, j->dim, coef, j->dpre + i * (size_t)j->dim);
        }
    }
}

float ff_objective_loss(const float *y, int batch, int dim, float theta, float slope, int sign,
                 float scale, float *g, float *dpre)
{
    double loss = 0.0;
    if (g) { /* goodness and dpre by rows on the pool, then the loss in row order */
        rows_job j = {.y = y, .g = g, .dpre = dpre, .dim = dim, .sign = sign, .theta = theta,
                      .slope = slope, .scale = scale};
        ff_pool_for((size_t)batch, 8, ff_loss_rows, &j);
        for (int i = 0; i < batch; i++)
            loss += ff_objective_softplus(ff_loss_z(g[i], theta, slope, sign));
        return (float)(loss * scale);
    }
    for (int i = 0; i < batch; i++) {
        const float *row = y + (size_t)i * dim;
        float gi = sum_squares(row, dim);
        float z = ff_loss_z(gi, theta, slope, sign); /* loss_i = softplus(z) */
        loss += ff_objective_softplus(z);
        if (dpre) {
            float coef = scale * -(float)sign * slope * ff_objective_sigmoid(z) * 2.0f;
            masked_scale(row, dim, coef, dpre + (size_t)i * dim);
        }
    }
    return (float)(loss * scale);
}

static void pair_rows(void *ctx, size_t i0, size_t i1)
{
    const rows_job *j = ctx;
    const size_t dim = (size_t)j->dim;
    for (size_t i = i0; i < i1; i++) {
        const float *rp = j->y + i * dim, *rn = j->yneg + i * dim;
        const float gpi = sum_squares(rp, j->dim), gni = sum_squares(rn, j->dim);
        j->g[i] = gpi;
        j->gn[i] = gni;
        const float z = j->slope * (gni - gpi);
        /* dloss/dgn = slope * sigmoid(z) = -dloss/dgp; dg/dy = 2y */
        const float coef = j->scale * j->slope * ff_objective_sigmoid(z) * 2.0f;
        if (j->dpre)
            masked_scale(rp, j->dim, -coef, j->dpre + i * dim);
        if (j->dneg)
            masked_scale(rn, j->dim, coef, j->dneg + i * dim);
    }
}

float ff_objective_pair_loss(const float *ypos, const float *yneg, int batch, int dim, float slope,
                      float scale, float *gp, float *gn, float *dpre_pos, float *dpre_neg)
{
    double loss = 0.0;
    if (gp && gn) { /* goodness and dpre by pairs on the pool, then the loss in order */
        rows_job j = {.y = ypos, .yneg = yneg, .g = gp, .gn = gn, .dpre = dpre_pos,
                      .dneg = dpre_neg, .dim = dim, .slope = slope, .scale = scale};
        ff_pool_for((size_t)batch, 4, pair_rows, &j);
        for (int i = 0; i < batch; i++)
            loss += ff_objective_softplus(slope * (gn[i] - gp[i]));
        return (float)(loss * scale);
    }
    for (int i = 0; i < batch; i++) {
        const float *rp = ypos + (size_t)i * dim, *rn = yneg + (size_t)i * dim;
        const float gpi = sum_squares(rp, dim), gni = sum_squares(rn, dim);
        if (gp)
            gp[i] = gpi;
        if (gn)
            gn[i] = gni;
        const float z = slope * (gni - gpi); /* loss_i = softplus(z) */
        loss += ff_objective_softplus(z);
        /* dloss/dgn = slope * sigmoid(z) = -dloss/dgp; dg/dy = 2y */
        const float coef = scale * slope * ff_objective_sigmoid(z) * 2.0f;
        if (dpre_pos)
            masked_scale(rp, dim, -coef, dpre_pos + (size_t)i * dim);
        if (dpre_neg)
            masked_scale(rn, dim, coef, dpre_neg + (size_t)i * dim);
    }
    return (float)(loss * scale);
}

// ----------------------------------------------------------------------------
// the loss kinds (train.loss)

static float mean(const float *v, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return n ? (float)(s / n) : 0.0f;
}

/* One loss kind: r's loss and goodness terms and dpre for the positive rows
 * y[0, npos) (classes labels[0, npos)) and the negative rows y[npos, npos + nneg)
 * of one layer. */
typedef void loss_fn(const float *y, const uint8_t *labels, int npos, int nneg, int dim,
                     float theta, float slope, float scale, const ff_loss_layer *ly, float *g,
                     float *dpre, ff_layer_loss *r);

/* the paper's: softplus(theta - g) per positive row, softplus(g - theta) per negative */
static void threshold_loss(const float *y, const uint8_t *labels, int npos, int nneg, int dim,
                           float theta, float slope, float scale, const ff_loss_layer *ly,
                           float *g, float *dpre, ff_layer_loss *r)
{
    (void)labels;
    (void)ly;
    const size_t off = (size_t)npos * dim;
    if (npos) {
        r->loss_pos = ff_objective_loss(y, npos, dim, theta, slope, +1, scale, g, dpre);
        r->g_pos = mean(g, npos);
    }
    if (nneg) {
        r->loss_neg = ff_objective_loss(y + off, nneg, dim, theta, slope, -1, scale, g, dpre + off);
        r->g_neg = mean(g, nneg);
    }
}

/* softplus(slope (g_neg_i - g_pos_i)) over the pairs (positive row i, negative row i) */
static void pairwise_loss(const float *y, const uint8_t *labels, int npos, int nneg, int dim,
                          float theta, float slope, float scale, const ff_loss_layer *ly,
                          float *g, float *dpre, ff_layer_loss *r)
{
    if (!npos) { /* a negative-only pass has no pairs */
        threshold_loss(y, labels, npos, nneg, dim, theta, slope, scale, ly, g, dpre, r);
        return;
    }
    FF_ASSERT(nneg == npos);
    const size_t off = (size_t)npos * dim;
    float *gp = g, *gn = g + npos;
    r->loss_pos = ff_objective_pair_loss(y, y + off, npos, dim, slope, scale, gp, gn, dpre, dpre + off);
    r->g_pos = mean(gp, npos);
    r->g_neg = mean(gn, nneg);
}

int ff_objective_argmax10(const float *s)
{
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (s[k] > s[best])
            best = k;
    return best;
}

/* ---- channel-wise competition (CwComp, Papachristodoulou et al., AAAI 2024) ----
 * Row i's units split into FF_CLASS_GROUPS contiguous groups (conv/local: whole
 * channels of a CHW map; fc: units); G_ik = sum of y^2 over group k, E_i = sum_k G_ik;
 * logits z_ik = slope * dim * G_ik / E_i (the goodness of group k once the row is
 * scaled to mean square 1, as the next layer sees it: the loss does not change with
 * the row's scale); loss_i = log sum_k exp(z_ik) - z_i,label. With p = softmax(z_i),
 * for u in group m: d loss_i / d y_u = 2 slope dim y_u / E_i ((p_m - [m = label]) -
 * sum_k (p_k - [k = label]) G_ik / E_i). */

/* gk[k] = the goodness of each class group of one row */
static void class_goodness_row(const float *row, int dim, float gk[FF_CLASS_GROUPS])
{
    const int gs = dim / FF_CLASS_GROUPS;
    for (int k = 0; k < FF_CLASS_GROUPS; k++)
        gk[k] = sum_squares(row + (size_t)k * gs, gs);
}

/* z[k] = slope * dim * G_k / E, E = sum_k G_k (+ a tiny floor): the goodness of group
 * k of the row scaled to mean square 1 (what the next layer sees); returns E */
static double class_logits(const float gk[FF_CLASS_GROUPS], int dim, float slope,
                           float z[FF_CLASS_GROUPS])
{
    double E = 1e-30;
    for (int k = 0; k < FF_CLASS_GROUPS; k++)
        E += gk[k];
    for (int k = 0; k < FF_CLASS_GROUPS; k++)
        z[k] = (float)((double)slope * dim * gk[k] / E);
    return E;
}

/* p = softmax(z) (if p); returns log sum_k exp(z[k]) */
static double class_softmax(const float z[FF_CLASS_GROUPS], float p[FF_CLASS_GROUPS])
{
    double mx = -INFINITY, e[FF_CLASS_GROUPS], total = 0.0;
    for (int k = 0; k < FF_CLASS_GROUPS; k++)
        if (z[k] > mx)
            mx = z[k];
    for (int k = 0; k < FF_CLASS_GROUPS; k++) {
        e[k] = exp((double)z[k] - mx);
        total += e[k];
    }
    for (int k = 0; k < FF_CLASS_GROUPS; k++)
        if (p)
            p[k] = (float)(e[k] / total);
    return mx + log(total);
}

typedef struct class_job {
    const float *y;
    const uint8_t *labels;
    float *g, *dpre, *scores;
    int dim;
    float slope, scale, w;
} class_job;

static void competition_rows(void *ctx, size_t i0, size_t i1)
{
    const class_job *j = ctx;
    const size_t dim = (size_t)j->dim, gs = dim / FF_CLASS_GROUPS;
    for (size_t i = i0; i < i1; i++) {
        const float *row = j->y + i * dim;
        float *gk = j->g + i * FF_CLASS_GROUPS, p[FF_CLASS_GROUPS], z[FF_CLASS_GROUPS];
        class_goodness_row(row, j->dim, gk);
        if (!j->dpre)
            continue;
        const double E = class_logits(gk, j->dim, j->slope, z);
        class_softmax(z, p);
        /* z_k = c G_k / E, c = slope dim, E = sum_k G_k: dz_k/dy_u = 2 c y_u ([u in k] - G_k / E) / E */
        double dot = 0.0;
        for (int k = 0; k < FF_CLASS_GROUPS; k++)
            dot += (p[k] - (k == j->labels[i] ? 1.0 : 0.0)) * gk[k] / E;
        const double c = 2.0 * (double)j->slope * j->dim / E;
        for (int k = 0; k < FF_CLASS_GROUPS; k++) {
            const float coef = (float)(j->scale * c *
                                       ((p[k] - (k == j->labels[i] ? 1.0 : 0.0)) - dot));
            masked_scale(row + k * gs, (int)gs, coef, j->dpre + i * dim + k * gs);
        }
    }
}

/* the loss, g_pos and g_neg of the rows from their group goodness g ([n, 10]) and
 * logits z_k = slope * dim * G_k / E (sample) or slope * G_k (batch), in row order */
static void competition_terms(const float *g, const uint8_t *labels, int n, int dim, int batch_norm,
                              float slope, float scale, ff_layer_loss *r)
{
    double loss = 0.0, gt = 0.0, gw = 0.0;
    for (int i = 0; i < n; i++) {
        const float *gk = g + (size_t)i * FF_CLASS_GROUPS;
        float z[FF_CLASS_GROUPS];
        if (batch_norm)
            for (int k = 0; k < FF_CLASS_GROUPS; k++)
                z[k] = slope * gk[k];
        else
            class_logits(gk, dim, slope, z);
        loss += class_softmax(z, NULL) - z[labels[i]];
        for (int k = 0; k < FF_CLASS_GROUPS; k++)
            if (k == labels[i])
                gt += gk[k];
            else
                gw += gk[k] / (FF_CLASS_GROUPS - 1);
    }
    r->loss_pos = (float)(loss * scale);
    r->g_pos = n ? (float)(gt / n) : 0.0f;
    r->g_neg = n ? (float)(gw / n) : 0.0f;
}

/* ---- competition_norm batch and affine ----
 * Channel c of the n rows standardised over the batch (n x hw values): yh = (y -
 * mu_c) inv_c, inv_c = 1 / sqrt(var_c + eps) (the biased variance), as CwComp's batch
 * norm without its affine part (batch), or o = a_c yh + b_c with the learned scale a
 * and shift b (affine; batch: a = 1, b = 0); G_ik = sum of o^2 over group k; z_ik =
 * slope G_ik. Backward: go_u = d loss / d o_u = scale (p_k - [k = label]) slope 2 o_u;
 * d loss / d a_c = sum_c(go yh), d loss / d b_c = sum_c(go); then through the
 * standardisation d loss / d y_u = a_c inv_c (go_u - mean_c(go) - yh_u mean_c(go yh))
 * (sums and means over channel c's n x hw values), masked by y_u > 0. Each channel's
 * sums are taken by one thread in row order: the result does not depend on the
 * thread count. */
typedef struct bn_job {
    const float *y;
    const uint8_t *labels;
    float *g, *dpre, *mu, *inv, *sums, *scores;
    const float *gamma, *beta; /* affine: the scale and shift of each channel; else NULL */
    int n, dim, C, hw;
    float slope, scale, w;
} bn_job;

/* sums[c], sums[C + c] = this process's sum of y and of y^2 over channel c */
static void bn_sums_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    const size_t dim = (size_t)j->dim, hw = (size_t)j->hw, C = (size_t)j->C;
    for (size_t c = c0; c < c1; c++) {
        double s1 = 0.0, s2 = 0.0;
        for (int i = 0; i < j->n; i++) {
            const float *x = j->y + (size_t)i * dim + c * hw;
            float t1 = 0.0f, t2 = 0.0f;
#pragma omp simd reduction(+ : t1, t2)
            for (size_t q = 0; q < hw; q++) {
                t1 += x[q];
                t2 += x[q] * x[q];
            }
            s1 += t1;
            s2 += t2;
        }
        j->sums[c] = (float)s1;
        j->sums[C + c] = (float)s2;
    }
}

/* the batch's mean and 1 / sqrt(var + eps) of every channel from the (summed) sums;
 * the running averages follow them when `running` is given */
static void bn_stats(const bn_job *j, double count, float *running)
{
    const int C = j->C;
    /* running[2C] counts the batches seen: their plain average until 1 / (1 - decay) of
     * them, so the first evaluations do not read the initial mean 0 and variance 1 */
    float d = FF_COMP_BN_DECAY;
    if (running) {
        const float seen = running[2 * C];
        if (seen / (seen + 1.0f) < d)
            d = seen / (seen + 1.0f);
        running[2 * C] = seen + 1.0f < 1e6f ? seen + 1.0f : 1e6f;
    }
    for (int c = 0; c < C; c++) {
        const double mean = j->sums[c] / count;
        const double var = fmax(j->sums[C + c] / count - mean * mean, 0.0);
        j->mu[c] = (float)mean;
        j->inv[c] = (float)(1.0 / sqrt(var + FF_COMP_BN_EPS));
        if (running) {
            running[c] = d * running[c] + (1.0f - d) * (float)mean;
            running[C + c] = d * running[C + c] + (1.0f - d) * (float)var;
        }
    }
}

void ff_objective_comp_stats_add(const float *y, int n, int dim, int channels, float *scratch,
                       double *sums)
{
    bn_job j = {.y = y, .sums = scratch, .n = n, .dim = dim, .C = channels, .hw = dim / channels};
    ff_pool_for((size_t)channels, 1, bn_sums_range, &j);
    for (int k = 0; k < 2 * channels; k++)
        sums[k] += scratch[k];
}

void ff_objective_comp_stats_set(float *running, const double *sums, int channels, double count)
{
    const int C = channels;
    for (int c = 0; c < C; c++) {
        const double mean = sums[c] / count;
        running[c] = (float)mean;
        running[C + c] = (float)fmax(sums[C + c] / count - mean * mean, 0.0);
    }
    /* later training batches update them with the full decay */
    const float settled = ceilf(1.0f / (1.0f - FF_COMP_BN_DECAY) - 1e-3f);
    if (running[2 * C] < settled)
        running[2 * C] = settled;
}

/* gk[k] = sum over group k of ((row - mu_c) inv_c)^2, or with the affine part
 * (gamma non-NULL) of (gamma_c (row - mu_c) inv_c + beta_c)^2 */
static void bn_group_goodness(const float *row, int C, int hw, const float *mu, const float *inv,
                              const float *gamma, const float *beta, float gk[FF_CLASS_GROUPS])
{
    const int cg = C / FF_CLASS_GROUPS;
    for (int k = 0; k < FF_CLASS_GROUPS; k++) {
        double s = 0.0;
        for (int c = k * cg; c < (k + 1) * cg; c++) {
            const float *x = row + (size_t)c * hw, m = mu[c], iv = inv[c];
            /* without the affine part 1 and 0: 1 * d + 0 is d exactly */
            const float a = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
            float t = 0.0f;
#pragma omp simd reduction(+ : t)
            for (int q = 0; q < hw; q++) {
                const float o = a * ((x[q] - m) * iv) + b;
                t += o * o;
            }
            s += t;
        }
        gk[k] = (float)s;
    }
}

/* rows: the group goodness into g and go = d loss / d o into dpre (batch: o = yh) */
static void bn_rows(void *ctx, size_t i0, size_t i1)
{
    const bn_job *j = ctx;
    const size_t dim = (size_t)j->dim, hw = (size_t)j->hw;
    const int cg = j->C / FF_CLASS_GROUPS;
    for (size_t i = i0; i < i1; i++) {
        const float *row = j->y + i * dim;
        float *gk = j->g + i * FF_CLASS_GROUPS, z[FF_CLASS_GROUPS], p[FF_CLASS_GROUPS];
        bn_group_goodness(row, j->C, j->hw, j->mu, j->inv, j->gamma, j->beta, gk);
        for (int k = 0; k < FF_CLASS_GROUPS; k++)
            z[k] = j->slope * gk[k];
        class_softmax(z, p);
        for (int k = 0; k < FF_CLASS_GROUPS; k++) {
            const float coef =
                j->scale * (p[k] - (k == j->labels[i] ? 1.0f : 0.0f)) * j->slope * 2.0f;
            for (int c = k * cg; c < (k + 1) * cg; c++) {
                const float *x = row + (size_t)c * hw, m = j->mu[c], iv = j->inv[c];
                float *d = j->dpre + i * dim + (size_t)c * hw;
                if (j->gamma) {
                    const float a = j->gamma[c], b = j->beta[c];
#pragma omp simd
                    for (size_t q = 0; q < hw; q++)
                        d[q] = coef * (a * ((x[q] - m) * iv) + b);
                } else {
#pragma omp simd
                    for (size_t q = 0; q < hw; q++)
                        d[q] = coef * (x[q] - m) * iv;
                }
            }
        }
    }
}

/* sums[c], sums[C + c] = this process's sum over channel c of go and of go yh */
static void bn_back_sums_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    const size_t dim = (size_t)j->dim, hw = (size_t)j->hw, C = (size_t)j->C;
    for (size_t c = c0; c < c1; c++) {
        const float m = j->mu[c], iv = j->inv[c];
        double A = 0.0, B = 0.0;
        for (int i = 0; i < j->n; i++) {
            const float *x = j->y + (size_t)i * dim + c * hw, *d = j->dpre + (size_t)i * dim + c * hw;
            float ta = 0.0f, tb = 0.0f;
#pragma omp simd reduction(+ : ta, tb)
            for (size_t q = 0; q < hw; q++) {
                ta += d[q];
                tb += d[q] * (x[q] - m) * iv;
            }
            A += ta;
            B += tb;
        }
        j->sums[c] = (float)A;
        j->sums[C + c] = (float)B;
    }
}

/* channels: go in dpre turned into d loss / d pre-activation; sums holds the batch's
 * means of go and go yh */
static void bn_back_range(void *ctx, size_t c0, size_t c1)
{
    const bn_job *j = ctx;
    const size_t dim = (size_t)j->dim, hw = (size_t)j->hw, C = (size_t)j->C;
    for (size_t c = c0; c < c1; c++) {
        const float m = j->mu[c], iv = j->inv[c], a = j->sums[c], b = j->sums[C + c];
        const float iv_scaled = iv * (j->gamma ? j->gamma[c] : 1.0f); /* d o / d y: a_c inv_c */
        for (int i = 0; i < j->n; i++) {
            const float *x = j->y + (size_t)i * dim + c * hw;
            float *d = j->dpre + (size_t)i * dim + c * hw;
            for (size_t q = 0; q < hw; q++) {
                const float on = x[q] > 0.0f ? 1.0f : 0.0f;
                d[q] = on * iv_scaled * (d[q] - a - (x[q] - m) * iv * b);
            }
        }
    }
}

void ff_objective_comp_batch_stats(const float *y, int n, int dim, const ff_loss_layer *ly)
{
    const int C = ly->channels;
    bn_job j = {.y = y, .mu = ly->scratch, .inv = ly->scratch + C, .sums = ly->scratch + 2 * C,
                .n = n, .dim = dim, .C = C, .hw = dim / C};
    const double count = (double)(ly->sum ? ly->total_rows : n) * (double)j.hw;
    ff_pool_for((size_t)C, 1, bn_sums_range, &j);
    if (ly->sum)
        ly->sum(ly->sum_ctx, j.sums, 2 * C);
    if (count > 0.0)
        bn_stats(&j, count, NULL);
}

static void competition_batch(const float *y, const uint8_t *labels, int n, int dim, float slope,
                              float scale, const ff_loss_layer *ly, float *g, float *dpre,
                              ff_layer_loss *r)
{
    FF_ASSERT(ly && ly->scratch && dpre && dim % ly->channels == 0);
    const int C = ly->channels;
    bn_job j = {.y = y, .labels = labels, .g = g, .dpre = dpre, .mu = ly->scratch,
                .inv = ly->scratch + C, .sums = ly->scratch + 2 * C, .n = n, .dim = dim, .C = C,
                .hw = dim / C, .slope = slope, .scale = scale, .gamma = ly->affine,
                .beta = ly->affine ? ly->affine + C : NULL};
    const double count = (double)(ly->sum ? ly->total_rows : n) * (double)j.hw;
    if (count == 0.0)
        return;
    ff_pool_for((size_t)C, 1, bn_sums_range, &j);
    if (ly->sum)
        ly->sum(ly->sum_ctx, j.sums, 2 * C);
    bn_stats(&j, count, ly->running);
    ff_pool_for((size_t)n, 4, bn_rows, &j);
    ff_pool_for((size_t)C, 1, bn_back_sums_range, &j);
    if (ly->affine && ly->gaffine) /* this process's rows' share: the gradients are summed */
        for (int c = 0; c < C; c++) {
            ly->gaffine[c] = j.sums[C + c]; /* d loss / d scale_c = sum_c(go yh) */
            ly->gaffine[C + c] = j.sums[c]; /* d loss / d shift_c = sum_c(go) */
        }
    if (ly->sum)
        ly->sum(ly->sum_ctx, j.sums, 2 * C);
    for (int k = 0; k < 2 * C; k++)
        j.sums[k] = (float)(j.sums[k] / count);
    ff_pool_for((size_t)C, 1, bn_back_range, &j);
    competition_terms(g, labels, n, dim, 1, slope, scale, r);
}

static void competition_loss(const float *y, const uint8_t *labels, int npos, int nneg, int dim,
                             float theta, float slope, float scale, const ff_loss_layer *ly,
                             float *g, float *dpre, ff_layer_loss *r)
{
    (void)theta;
    FF_ASSERT(nneg == 0 && dim % FF_CLASS_GROUPS == 0 && (npos == 0 || labels));
    FF_ASSERT(!ly || ly->channels % FF_CLASS_GROUPS == 0);
    if (ly && ly->scratch) { /* competition_norm batch */
        competition_batch(y, labels, npos, dim, slope, scale, ly, g, dpre, r);
        return;
    }
    class_job j = {.y = y, .labels = labels, .g = g, .dpre = dpre, .dim = dim, .slope = slope,
                   .scale = scale};
    ff_pool_for((size_t)npos, 4, competition_rows, &j);
    competition_terms(g, labels, npos, dim, 0, slope, scale, r);
}

static void class_goodness_rows(void *ctx, size_t i0, size_t i1)
{
    const class_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        float gk[FF_CLASS_GROUPS], z[FF_CLASS_GROUPS];
        class_goodness_row(j->y + i * (size_t)j->dim, j->dim, gk);
        class_logits(gk, j->dim, j->w, z);
        for (int k = 0; k < FF_CLASS_GROUPS; k++)
            j->scores[i * FF_CLASS_GROUPS + k] += z[k];
    }
}

/* rows of scores with the running statistics (mu, inv computed from them) */
static void bn_score_rows(void *ctx, size_t i0, size_t i1)
{
    const bn_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        float gk[FF_CLASS_GROUPS];
        bn_group_goodness(j->y + i * (size_t)j->dim, j->C, j->hw, j->mu, j->inv, j->gamma,
                          j->beta, gk);
        for (int k = 0; k < FF_CLASS_GROUPS; k++)
            j->scores[i * FF_CLASS_GROUPS + k] += j->w * gk[k];
    }
}

void ff_objective_class_goodness_add(const float *y, int batch, int dim, int channels,
                           const float *running, const float *affine, float *scratch, float w,
                           float *scores)
{
    FF_ASSERT(channels % FF_CLASS_GROUPS == 0 && dim % channels == 0);
    if (!running) {
        class_job j = {.y = y, .scores = scores, .dim = dim, .w = w};
        ff_pool_for((size_t)batch, 8, class_goodness_rows, &j);
        return;
    }
    FF_ASSERT(scratch);
    for (int c = 0; c < channels; c++) {
        scratch[c] = running[c];
        scratch[channels + c] = 1.0f / sqrtf(running[channels + c] + FF_COMP_BN_EPS);
    }
    bn_job j = {.y = y, .scores = scores, .mu = scratch, .inv = scratch + channels, .dim = dim,
                .C = channels, .hw = dim / channels, .w = w, .gamma = affine,
                .beta = affine ? affine + channels : NULL};
    ff_pool_for((size_t)batch, 8, bn_score_rows, &j);
}

/* indexed by ff_loss_kind; the names are the config schema's (train.loss) */
static loss_fn *const losses[] = {
    [FF_LOSS_THRESHOLD] = threshold_loss,
    [FF_LOSS_PAIRWISE] = pairwise_loss,
    [FF_LOSS_COMPETITION] = competition_loss,
};
_Static_assert(sizeof losses / sizeof losses[0] == FF_LOSS_COUNT,
               "one entry in losses[] per ff_loss_kind");

int ff_objective_from_config(ff_objective *o, const ff_config *cfg, ff_err *err)
{
    const ff_loss_kind k = cfg->train.loss;
    if ((int)k < 0 || k >= FF_LOSS_COUNT || !losses[k])
        return ff_err_set(err, FF_ERR_USAGE, "train.loss: unknown loss kind %d", (int)k);
    *o = (ff_objective){.loss = k,
                        .logit_scale = cfg->train.logit_scale,
                        .peer_strength = cfg->train.peer_norm,
                        .peer_decay = cfg->train.peer_decay,
                        .comp_norm = cfg->train.competition_norm};
    return FF_OK;
}

float ff_objective_slope(const ff_objective *o, int units)
{
    return o->logit_scale > 0.0f ? o->logit_scale / (float)units : 1.0f;
}

void ff_objective_layer_loss(const ff_objective *o, const float *y, const uint8_t *labels,
                             int npos, int nneg, int dim, float theta, float scale,
                             const ff_loss_layer *ly, float *g, float *dpre, ff_layer_loss *r)
{
    losses[o->loss](y, labels, npos, nneg, dim, theta, ff_objective_slope(o, dim), scale, ly, g,
                    dpre, r);
}

size_t ff_objective_scratch(const ff_objective *o, int rows)
{
    return (size_t)rows * (o->loss == FF_LOSS_COMPETITION ? FF_CLASS_GROUPS : 1);
}

// ----------------------------------------------------------------------------
// the running statistics

int ff_objective_batch_norm(const ff_objective *o)
{
    return o->loss == FF_LOSS_COMPETITION && o->comp_norm != FF_COMP_SAMPLE;
}

size_t ff_objective_channel_stats_floats(const ff_objective *o, ff_shape out)
{
    return ff_objective_batch_norm(o) ? 2 * (size_t)out.c + 1 : 0;
}

void ff_objective_channel_stats_init(const ff_objective *o, ff_shape out, float *stats)
{
    const size_t n = ff_objective_channel_stats_floats(o, out);
    for (size_t i = 0; i < n; i++) /* means 0, variances 1, batches seen 0 */
        stats[i] = i >= (size_t)out.c && i < 2 * (size_t)out.c ? 1.0f : 0.0f;
}

size_t ff_objective_channel_scratch(const ff_objective *o, int max_channels)
{
    return ff_objective_batch_norm(o) ? 4 * (size_t)max_channels : 0;
}

float ff_objective_peer_norm(const ff_objective *o, float *mean, const float *y, int npos,
                             int dim, const ff_loss_layer *ly, float *col, const float *ones,
                             int block, float *dpre)
{
    const int rows = npos, total = ly && ly->sum ? ly->total_rows : npos;
    const float decay = o->peer_decay;
    double avg = 0.0, loss = 0.0;
    for (int j0 = 0; j0 < dim; j0 += block) {
        /* column means of y over the positive rows, a block of columns at a time */
        const int n = dim - j0 < block ? dim - j0 : block;
        cblas_sgemv(CblasRowMajor, CblasTrans, rows, n, 1.0f / (float)total, y + j0, dim, ones, 1,
                    0.0f, col, 1);
        if (ly && ly->sum)
            ly->sum(ly->sum_ctx, col, n);
        for (int j = 0; j < n; j++) {
            mean[j0 + j] = decay * mean[j0 + j] + (1.0f - decay) * col[j];
            avg += mean[j0 + j];
        }
    }
    avg /= dim;
    /* d/dy_ij of strength * mean_k (avg - m_k)^2 = strength * 2/dim * (m_j - avg) * (1 - decay) / total */
    const float c = o->peer_strength * 2.0f / (float)dim * (1.0f - decay) / (float)total;
    for (int j = 0; j < dim; j++)
        loss += ((double)mean[j] - avg) * ((double)mean[j] - avg);
    const float *restrict mj = mean;
    const float mu = (float)avg;
    for (int i = 0; i < rows; i++) {
        const float *restrict row = y + (size_t)i * dim;
        float *restrict d = dpre + (size_t)i * dim;
        for (int j = 0; j < dim; j++) { /* c or 0 by a select, not a branch: it vectorises */
            const float cj = row[j] > 0.0f ? c : 0.0f;
            d[j] += cj * (mj[j] - mu);
        }
    }
    return (float)(loss / dim);
}

// ----------------------------------------------------------------------------
// normalisation

static void normalize_rows(void *ctx, size_t i0, size_t i1)
{
    const rows_job *j = ctx;
    const int dim = j->dim;
    for (size_t i = i0; i < i1; i++) {
        const float *row = j->x + i * (size_t)dim;
        float *o = j->out + i * (size_t)dim;
        float inv = 1.0f / sqrtf(sum_squares(row, dim) / (float)dim + j->eps);
#pragma omp simd
        for (int q = 0; q < dim; q++)
            o[q] = row[q] * inv;
    }
}

void ff_objective_normalize(const float *x, float *out, int batch, int dim, float eps)
{
    rows_job j = {.x = x, .out = out, .dim = dim, .eps = eps};
    ff_pool_for((size_t)batch, 8, normalize_rows, &j);
}

void ff_objective_normalize_backward(const float *x, const float *dout, float *dx, int batch, int dim,
                           float eps)
{
    /* out_j = x_j * r, r = (m + eps)^-1/2, m = mean(x^2):
     * dx_j = r * dout_j - r^3 / dim * x_j * sum_k dout_k x_k */
    for (int i = 0; i < batch; i++) {
        const float *row = x + (size_t)i * dim;
        const float *d = dout + (size_t)i * dim;
        float *o = dx + (size_t)i * dim;
        float s = 0.0f, dot = 0.0f;
        for (int j = 0; j < dim; j++) {
            s += row[j] * row[j];
            dot += d[j] * row[j];
        }
        float r = 1.0f / sqrtf(s / (float)dim + eps);
        float c = r * r * r * dot / (float)dim;
        for (int j = 0; j < dim; j++)
            o[j] = r * d[j] - c * row[j];
    }
}
