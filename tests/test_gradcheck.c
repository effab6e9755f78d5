/* test_gradcheck.c - finite-difference checks of the FF loss gradient, the
 * normalisation gradient and the fc/conv/local parameter gradients (also zero-padded, and
 * grouped convs), plus the
 * per-sample-goodness and whole-vector-normalisation pitfalls. */
#include <stdlib.h>
#include <string.h>

#include "ff/layer.h"
#include "ff/objective.h"
#include "ff/rng.h"
#include "test.h"

/* |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) */
#define FD_ATOL 1e-3
#define FD_RTOL 2e-2

typedef struct fd_stats {
    int checked, failed, skipped;
    double worst; /* largest error / allowed error seen */
} fd_stats;

static void fd_compare(fd_stats *st, const char *what, size_t index, double an, double fd)
{
    double err = fabs(an - fd);
    double allowed = FD_ATOL + FD_RTOL * fmax(fabs(an), fabs(fd));
    st->checked++;
    if (err / allowed > st->worst)
        st->worst = err / allowed;
    if (err > allowed) {
        st->failed++;
        if (st->failed <= 5)
            fprintf(stderr, "  %s[%zu]: analytic %.6g, finite difference %.6g\n", what, index,
                    an, fd);
    }
}

static void fill_normal(float *p, size_t n, ff_rng *rng, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = ff_rng_normal(rng) * scale;
}

static void relu_into(const float *z, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

/* ---- (a) FF loss: dpre against d(loss)/d(pre-activation) ---- */

enum { LB = 4, LD = 12 };

static float loss_of_pre(const float *z, float theta, float slope, int sign)
{
    float y[LB * LD];
    relu_into(z, y, LB * LD);
    return ff_objective_loss(y, LB, LD, theta, slope, sign, 1.0f / LB, NULL, NULL);
}

static void check_loss_grad(int sign, float slope)
{
    ff_rng rng;
    ff_rng_seed(&rng, 100 + sign);
    float z[LB * LD], y[LB * LD], dpre[LB * LD], g[LB];
    for (int i = 0; i < LB * LD; i++) {
        do /* away from the ReLU kink: |z| >= 0.2 > h */
            z[i] = ff_rng_normal(&rng);
        while (fabsf(z[i]) < 0.2f);
    }
    relu_into(z, y, LB * LD);
    const float theta = 6.0f; /* about E[g], so the sigmoid is not saturated */
    ff_objective_loss(y, LB, LD, theta, slope, sign, 1.0f / LB, g, dpre);
    const float h = 1e-2f;
    fd_stats st = {0};
    for (int i = 0; i < LB * LD; i++) {
        float keep = z[i];
        z[i] = keep + h;
        float lp = loss_of_pre(z, theta, slope, sign);
        z[i] = keep - h;
        float lm = loss_of_pre(z, theta, slope, sign);
        z[i] = keep;
        fd_compare(&st, sign > 0 ? "dpre(pos)" : "dpre(neg)", (size_t)i, dpre[i],
                   ((double)lp - lm) / (2.0 * h));
    }
    CHECK(st.failed == 0);
    CHECK(st.checked == LB * LD);
    /* the gradient pushes goodness up for positive data, down for negative */
    double dot = 0.0;
    for (int i = 0; i < LB * LD; i++)
        dot += (double)dpre[i] * y[i];
    CHECK(sign > 0 ? dot < 0.0 : dot > 0.0);
}

static void test_loss_gradient(void)
{
    check_loss_grad(+1, 1.0f);
    check_loss_grad(-1, 1.0f);
    /* train.logit_scale 10 on this LD-unit layer: slope 10 / LD */
    check_loss_grad(+1, 10.0f / LD);
    check_loss_grad(-1, 10.0f / LD);
}

/* pairwise loss: positive rows z[0..LB), negative rows z[LB..2 LB) */
static float pair_loss_of_pre(const float *z, float slope)
{
    float y[2 * LB * LD];
    relu_into(z, y, 2 * LB * LD);
    return ff_objective_pair_loss(y, y + LB * LD, LB, LD, slope, 1.0f / LB, NULL, NULL, NULL, NULL);
}

static void check_pair_loss_grad(float slope)
{
    ff_rng rng;
    ff_rng_seed(&rng, 300);
    float z[2 * LB * LD], y[2 * LB * LD], dpre[2 * LB * LD], gp[LB], gn[LB];
    for (int i = 0; i < 2 * LB * LD; i++) {
        do
            z[i] = ff_rng_normal(&rng);
        while (fabsf(z[i]) < 0.2f);
    }
    relu_into(z, y, 2 * LB * LD);
    ff_objective_pair_loss(y, y + LB * LD, LB, LD, slope, 1.0f / LB, gp, gn, dpre, dpre + LB * LD);
    const float h = 1e-2f;
    fd_stats st = {0};
    for (int i = 0; i < 2 * LB * LD; i++) {
        float keep = z[i];
        z[i] = keep + h;
        float lp = pair_loss_of_pre(z, slope);
        z[i] = keep - h;
        float lm = pair_loss_of_pre(z, slope);
        z[i] = keep;
        fd_compare(&st, i < LB * LD ? "dpre(pair pos)" : "dpre(pair neg)", (size_t)i, dpre[i],
                   ((double)lp - lm) / (2.0 * h));
    }
    CHECK(st.failed == 0);
    CHECK(st.checked == 2 * LB * LD);
    /* it pushes the positive's goodness up and the negative's down */
    double dot_pos = 0.0, dot_neg = 0.0;
    for (int i = 0; i < LB * LD; i++) {
        dot_pos += (double)dpre[i] * y[i];
        dot_neg += (double)dpre[LB * LD + i] * y[LB * LD + i];
    }
    CHECK(dot_pos < 0.0 && dot_neg > 0.0);
}

static void test_pair_loss_gradient(void)
{
    check_pair_loss_grad(1.0f / LD);
    check_pair_loss_grad(10.0f / LD);
}

/* ---- (b) normalisation backward against a random linear function of its output ---- */

enum { NB = 3, ND = 10 };

static double linear_of_norm(const float *x, const float *c, float eps)
{
    float out[NB * ND];
    ff_objective_normalize(x, out, NB, ND, eps);
    double s = 0.0;
    for (int i = 0; i < NB * ND; i++)
        s += (double)c[i] * out[i];
    return s;
}

static void check_normalize_grad(float eps, uint64_t seed)
{
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    float x[NB * ND], c[NB * ND], dx[NB * ND];
    fill_normal(x, NB * ND, &rng, 1.0f);
    fill_normal(c, NB * ND, &rng, 1.0f);
    ff_objective_normalize_backward(x, c, dx, NB, ND, eps);
    const float h = 5e-3f;
    fd_stats st = {0};
    for (int i = 0; i < NB * ND; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double fp = linear_of_norm(x, c, eps);
        x[i] = keep - h;
        double fm = linear_of_norm(x, c, eps);
        x[i] = keep;
        fd_compare(&st, "dx", (size_t)i, dx[i], (fp - fm) / (2.0 * h));
    }
    CHECK(st.failed == 0);
}

/* competition loss (channel-wise, CwComp): CB rows of CD units in 10 groups of 3,
 * the class of each row in labels */
enum { CB = 4, CD = 30 };

/* ly: NULL (competition_norm sample) or the batch variant's channels and scratch */
static float competition_loss_of_pre(const ff_objective *o, const float *z, const uint8_t *labels,
                                     const ff_loss_layer *ly)
{
    float y[CB * CD], g[CB * FF_CLASS_GROUPS], d[CB * CD];
    relu_into(z, y, CB * CD);
    ff_layer_loss r = {0};
    ff_objective_layer_loss(o, y, labels, CB, 0, CD, 0.0f, 1.0f / CB, ly, g, d, &r);
    return r.loss_pos;
}

/* norm: competition_norm sample, batch or affine (random scales of both signs and
 * shifts; their gradients checked too) */
static void check_competition_grad(float logit_scale, ff_comp_norm norm)
{
    ff_rng rng;
    ff_rng_seed(&rng, 500 + (uint64_t)norm);
    const ff_objective o = {.loss = FF_LOSS_COMPETITION, .logit_scale = logit_scale,
                            .comp_norm = norm};
    const uint8_t labels[CB] = {3, 0, 9, 3};
    float scratch[4 * 10], affine[20], gaffine[20];
    for (int c = 0; c < 10; c++) {
        affine[c] = (c % 3 == 0 ? -1.0f : 1.0f) * (0.5f + ff_rng_uniform(&rng));
        affine[10 + c] = 0.5f * ff_rng_normal(&rng);
        gaffine[c] = gaffine[10 + c] = NAN; /* overwritten */
    }
    const int with_affine = norm == FF_COMP_AFFINE;
    /* 10 channels of 3; the gradient pass writes gaffine, the loss-only passes do not */
    const ff_loss_layer bn = {.channels = 10, .scratch = scratch,
                              .affine = with_affine ? affine : NULL,
                              .gaffine = with_affine ? gaffine : NULL};
    const ff_loss_layer bn_loss = {.channels = 10, .scratch = scratch, .affine = bn.affine};
    const ff_loss_layer *ly = norm == FF_COMP_SAMPLE ? NULL : &bn;
    const ff_loss_layer *ly_loss = norm == FF_COMP_SAMPLE ? NULL : &bn_loss;
    float z[CB * CD], y[CB * CD], dpre[CB * CD], g[CB * FF_CLASS_GROUPS];
    for (int i = 0; i < CB * CD; i++) {
        do
            z[i] = ff_rng_normal(&rng);
        while (fabsf(z[i]) < 0.2f);
    }
    relu_into(z, y, CB * CD);
    ff_layer_loss r = {0};
    ff_objective_layer_loss(&o, y, labels, CB, 0, CD, 0.0f, 1.0f / CB, ly, g, dpre, &r);
    CHECK(r.loss_pos > 0.0f && r.loss_neg == 0.0f);
    const float h = 1e-2f;
    fd_stats st = {0};
    static const char *const what[] = {"dpre(competition)", "dpre(competition, batch)",
                                       "dpre(competition, affine)"};
    /* the pre-activations, then (affine) the scales and shifts */
    const int n_affine = with_affine ? 20 : 0;
    for (int i = 0; i < CB * CD + n_affine; i++) {
        float *v = i < CB * CD ? &z[i] : &affine[i - CB * CD];
        const float keep = *v;
        *v = keep + h;
        float lp = competition_loss_of_pre(&o, z, labels, ly_loss);
        *v = keep - h;
        float lm = competition_loss_of_pre(&o, z, labels, ly_loss);
        *v = keep;
        const float an = i < CB * CD ? dpre[i] : gaffine[i - CB * CD];
        fd_compare(&st, i < CB * CD ? what[norm] : i < CB * CD + 10 ? "d scale" : "d shift",
                   (size_t)i, an, ((double)lp - lm) / (2.0 * h));
    }
    CHECK(st.failed == 0);
    CHECK(st.checked == CB * CD + n_affine);
    for (int i = 0; i < CB * CD; i++)
        CHECK(y[i] > 0.0f || dpre[i] == 0.0f); /* ReLU mask */
    if (norm != FF_COMP_SAMPLE)
        return; /* the pulls below hold for the per-sample variant */
    /* the true class's group is pushed up (where active); the loss depends only on each
     * group's share of the row's goodness, so d loss / d (row scale) = sum y dpre = 0 */
    for (int i = 0; i < CB; i++) {
        double along = 0.0, size = 0.0;
        for (int u = 0; u < CD; u++) {
            const float d = dpre[i * CD + u], yv = y[i * CD + u];
            along += (double)d * yv;
            size += fabs((double)d * yv);
            if (yv > 0.0f && u / (CD / FF_CLASS_GROUPS) == labels[i])
                CHECK(d < 0.0f);
        }
        CHECK(size > 0.0 && fabs(along) < 1e-5 * size);
    }
}

/* competition_norm batch: the running statistics move toward the batch's, and a
 * channel shifted by a constant in every row (still positive) scores the same */
static void test_competition_batch_statistics(void)
{
    const ff_objective o = {.loss = FF_LOSS_COMPETITION, .logit_scale = 10.0f,
                            .comp_norm = FF_COMP_BATCH};
    const uint8_t labels[CB] = {1, 2, 3, 4};
    float y[CB * CD], g[CB * FF_CLASS_GROUPS], d[CB * CD], scratch[40], running[21];
    ff_rng rng;
    ff_rng_seed(&rng, 77);
    for (int i = 0; i < CB * CD; i++)
        y[i] = 1.0f + ff_rng_uniform(&rng); /* all active */
    for (int c = 0; c < 10; c++)
        running[c] = 0.0f, running[10 + c] = 1.0f;
    running[20] = 30.0f; /* batches seen: past the plain average, the decay applies */
    const ff_loss_layer ly = {.channels = 10, .running = running, .scratch = scratch};
    ff_layer_loss r = {0};
    ff_objective_layer_loss(&o, y, labels, CB, 0, CD, 0.0f, 1.0f / CB, &ly, g, d, &r);
    CHECK(running[20] == 31.0f);
    for (int c = 0; c < 10; c++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < CB; i++)
            for (int q = 0; q < 3; q++) {
                const double v = y[i * CD + c * 3 + q];
                s += v;
                s2 += v * v;
            }
        const double mean = s / (CB * 3), var = s2 / (CB * 3) - mean * mean;
        CHECK_NEAR(running[c], 0.1 * mean, 1e-5);
        CHECK_NEAR(running[10 + c], 0.9 + 0.1 * var, 1e-5);
    }
    float shifted[CB * CD];
    memcpy(shifted, y, sizeof y);
    for (int i = 0; i < CB; i++)
        for (int q = 0; q < 3; q++)
            shifted[i * CD + 4 * 3 + q] += 5.0f; /* channel 4 */
    const ff_loss_layer fixed = {.channels = 10, .scratch = scratch}; /* running untouched */
    ff_layer_loss r2 = {0};
    ff_objective_layer_loss(&o, shifted, labels, CB, 0, CD, 0.0f, 1.0f / CB, &fixed, g, d, &r2);
    CHECK_NEAR(r2.loss_pos, r.loss_pos, 1e-4); /* float rounding of the shifted values */
    /* the first batches: their plain average (no pull toward the initial 0 and 1) */
    float fresh[21] = {0};
    const ff_loss_layer first = {.channels = 10, .running = fresh, .scratch = scratch};
    ff_objective_layer_loss(&o, y, labels, CB, 0, CD, 0.0f, 1.0f / CB, &first, g, d, &r2);
    const float mean4 = scratch[4], var4 = 1.0f / (scratch[14] * scratch[14]) - FF_COMP_BN_EPS;
    CHECK(fresh[20] == 1.0f && fresh[4] == mean4);
    CHECK_NEAR(fresh[14], var4, 1e-4);
    ff_objective_layer_loss(&o, shifted, labels, CB, 0, CD, 0.0f, 1.0f / CB, &first, g, d, &r2);
    CHECK(fresh[20] == 2.0f);
    CHECK_NEAR(fresh[4], mean4 + 2.5f, 1e-5); /* the average of the two batches' means */
    /* evaluation reads the running statistics: with mean 0 and variance 1 - eps it is
     * the plain goodness of each group */
    for (int c = 0; c < 10; c++)
        running[c] = 0.0f, running[10 + c] = 1.0f - FF_COMP_BN_EPS;
    float scores[CB * 10] = {0};
    ff_objective_class_goodness_add(y, CB, CD, 10, running, NULL, scratch, 2.0f, scores);
    for (int i = 0; i < CB; i++)
        for (int k = 0; k < 10; k++) {
            const float *x = y + i * CD + k * 3;
            CHECK_NEAR(scores[i * 10 + k], 2.0f * (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]), 1e-4);
        }
}

/* competition_norm affine: scale 1 and shift 0 are the batch variant, and evaluation's
 * scores with the affine part are the naive sums of (a yh + b)^2 (its gradients:
 * check_competition_grad) */
static void test_competition_affine(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 510);
    const ff_objective o = {.loss = FF_LOSS_COMPETITION, .logit_scale = 3.0f,
                            .comp_norm = FF_COMP_AFFINE};
    const uint8_t labels[CB] = {2, 7, 2, 5};
    float scratch[4 * 10], affine[20], gaffine[20];
    const ff_loss_layer ly = {.channels = 10, .scratch = scratch, .affine = affine,
                              .gaffine = gaffine};
    float y[CB * CD], dpre[CB * CD], g[CB * FF_CLASS_GROUPS];
    for (int i = 0; i < CB * CD; i++) {
        const float v = ff_rng_normal(&rng);
        y[i] = v > 0.0f ? v : 0.0f;
    }
    ff_layer_loss r = {0};
    /* scale 1 and shift 0 are the batch variant (up to rounding: a product's order, then
     * the mean subtractions of the standardisation's backward pass) */
    for (int c = 0; c < 10; c++)
        affine[c] = 1.0f, affine[10 + c] = 0.0f;
    float d_batch[CB * CD];
    ff_layer_loss rb = {0};
    const ff_objective ob = {.loss = FF_LOSS_COMPETITION, .logit_scale = 3.0f,
                             .comp_norm = FF_COMP_BATCH};
    const ff_loss_layer plain = {.channels = 10, .scratch = scratch};
    ff_objective_layer_loss(&o, y, labels, CB, 0, CD, 0.0f, 1.0f / CB, &ly, g, dpre, &r);
    ff_objective_layer_loss(&ob, y, labels, CB, 0, CD, 0.0f, 1.0f / CB, &plain, g, d_batch, &rb);
    CHECK_NEAR(r.loss_pos, rb.loss_pos, 1e-6 * rb.loss_pos);
    float dmax = 0.0f;
    for (int i = 0; i < CB * CD; i++)
        dmax = fmaxf(dmax, fabsf(d_batch[i]));
    CHECK(dmax > 0.0f);
    for (int i = 0; i < CB * CD; i++)
        CHECK_NEAR(dpre[i], d_batch[i], 1e-4 * dmax);
    /* evaluation's scores with the affine part: the naive sum of (a yh + b)^2 */
    float running[21], scores[CB * 10] = {0};
    for (int c = 0; c < 10; c++) {
        running[c] = 0.3f * c;
        running[10 + c] = 0.5f + 0.1f * c;
        affine[c] = 2.0f - 0.3f * c;
        affine[10 + c] = 0.1f * c - 0.4f;
    }
    running[20] = 100.0f;
    ff_objective_class_goodness_add(y, CB, CD, 10, running, affine, scratch, 2.0f, scores);
    for (int i = 0; i < CB; i++)
        for (int k = 0; k < 10; k++) {
            double want = 0.0;
            for (int q = 0; q < 3; q++) {
                const double yh = (y[i * CD + k * 3 + q] - running[k]) /
                                  sqrt(running[10 + k] + FF_COMP_BN_EPS);
                const double ov = affine[k] * yh + affine[10 + k];
                want += ov * ov;
            }
            CHECK_NEAR(scores[i * 10 + k], 2.0 * want, 1e-4 * (1.0 + 2.0 * want));
        }
}

static void test_competition_gradient(void)
{
    check_competition_grad(0.0f, FF_COMP_SAMPLE);  /* slope 1 */
    check_competition_grad(10.0f, FF_COMP_SAMPLE); /* slope 10 / CD: logits 10 times each group's share */
    check_competition_grad(10.0f, FF_COMP_BATCH); /* batch-standardised channels, logits the group means */
    check_competition_grad(3.0f, FF_COMP_BATCH);
    check_competition_grad(3.0f, FF_COMP_AFFINE); /* then scaled and shifted */
    check_competition_grad(10.0f, FF_COMP_AFFINE);
}

static void test_normalize_gradient(void)
{
    check_normalize_grad(1e-8f, 7);
    check_normalize_grad(0.5f, 8); /* eps large enough to matter */
}

/* ---- (c) layer parameter gradients ---- */

typedef struct gc_layer {
    ff_layer l;
    float *mem, *ws, *x, *y, *dpre, *mask;
    int batch;
    float theta;
    int sign;
} gc_layer;

static int gc_groups = 1; /* conv groups of the layers gc_build makes (tests reset it to 1) */
static int gc_gemm_only;   /* 1: gc_build's conv layers run on im2col + GEMM, never direct */
static int gc_direct;      /* conv layers gc_build made that run on the direct loops */

static int gc_build(gc_layer *t, ff_layer_kind kind, ff_shape in, int out, int k, int s, int pad,
                    int batch, ff_rng *rng)
{
    memset(t, 0, sizeof *t);
    ff_layer_cfg cfg = {.kind = kind, .units = out, .channels = out, .kernel = k, .stride = s,
                        .padding = pad, .groups = gc_groups};
    ff_err err = {0};
    if (ff_layer_setup(&t->l, &cfg, in, 0, &err)) {
        fprintf(stderr, "  setup: %s\n", err.msg);
        return -1;
    }
    if (gc_gemm_only)
        t->l.direct = 0;
    gc_direct += t->l.direct;
    const size_t np = t->l.n_weights + t->l.n_bias, ws = ff_layer_workspace(&t->l, batch);
    const size_t nx = (size_t)batch * ff_shape_dim(in), ny = (size_t)batch * ff_shape_dim(t->l.out);
    t->batch = batch;
    t->mem = calloc(2 * np, sizeof(float));
    t->ws = calloc(ws ? ws : 1, sizeof(float));
    t->x = calloc(nx, sizeof(float));
    t->y = calloc(ny, sizeof(float));
    t->dpre = calloc(ny, sizeof(float));
    t->mask = calloc(ny, sizeof(float));
    if (!t->mem || !t->ws || !t->x || !t->y || !t->dpre || !t->mask)
        return -1;
    t->l.W = t->mem;
    t->l.b = t->l.W + t->l.n_weights;
    t->l.gW = t->l.b + t->l.n_bias;
    t->l.gb = t->l.gW + t->l.n_weights;
    ff_layer_init_params(&t->l, rng);
    fill_normal(t->l.b, t->l.n_bias, rng, 0.2f);
    fill_normal(t->x, nx, rng, 1.0f);
    return 0;
}

static void gc_free(gc_layer *t)
{
    free(t->mem);
    free(t->ws);
    free(t->x);
    free(t->y);
    free(t->dpre);
    free(t->mask);
}

static size_t gc_ny(const gc_layer *t) { return (size_t)t->batch * ff_shape_dim(t->l.out); }

/* forward + FF loss (batch mean); fills dpre if want_grad */
static float gc_loss(gc_layer *t, int want_grad)
{
    ff_layer_forward(&t->l, t->x, t->y, t->batch, t->ws, NULL);
    return ff_objective_loss(t->y, t->batch, ff_shape_dim(t->l.out), t->theta, 1.0f, t->sign,
                      1.0f / t->batch, NULL, want_grad ? t->dpre : NULL);
}

/* theta = mean goodness of the current output, so the sigmoid is not saturated */
static void gc_set_theta(gc_layer *t)
{
    float g[16];
    ff_layer_forward(&t->l, t->x, t->y, t->batch, t->ws, NULL);
    ff_objective_goodness(t->y, t->batch, ff_shape_dim(t->l.out), g);
    double s = 0.0;
    for (int i = 0; i < t->batch; i++)
        s += g[i];
    t->theta = (float)(s / t->batch);
}

static int same_active_set(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((a[i] > 0.0f) != (b[i] > 0.0f))
            return 0;
    return 1;
}

/* central difference of the loss w.r.t. *p; returns 0 (and skips) if the step
 * moves a pre-activation across the ReLU kink */
static int gc_fd(gc_layer *t, float *p, float h, double *fd)
{
    float keep = *p;
    *p = keep + h;
    float lp = gc_loss(t, 0);
    memcpy(t->mask, t->y, gc_ny(t) * sizeof(float));
    *p = keep - h;
    float lm = gc_loss(t, 0);
    *p = keep;
    *fd = ((double)lp - lm) / (2.0 * h);
    return same_active_set(t->mask, t->y, gc_ny(t));
}

/* checks n random entries of p (analytic gradient g) against finite differences */
static void gc_check_params(gc_layer *t, float *p, const float *g, size_t n, int samples,
                            const char *what, ff_rng *rng, fd_stats *st)
{
    const float h = 1e-3f;
    for (int s = 0; s < samples; s++) {
        size_t i = (size_t)samples >= n ? (size_t)s % n : ff_rng_below(rng, (uint32_t)n);
        double fd;
        if (!gc_fd(t, p + i, h, &fd)) {
            st->skipped++;
            continue;
        }
        fd_compare(st, what, i, g[i], fd);
    }
}

static void check_layer_grad_pad(ff_layer_kind kind, ff_shape in, int out, int k, int s, int pad,
                                 int sign, uint64_t seed)
{
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    gc_layer t;
    CHECK(gc_build(&t, kind, in, out, k, s, pad, 3, &rng) == 0);
    t.sign = sign;
    gc_set_theta(&t);
    gc_loss(&t, 1);
    ff_layer_backward(&t.l, t.x, NULL, t.dpre, t.batch, 0.0f, t.ws);
    /* copy: the finite-difference forwards reuse the workspace */
    float *gW = malloc(t.l.n_weights * sizeof(float)), *gb = malloc(t.l.n_bias * sizeof(float));
    memcpy(gW, t.l.gW, t.l.n_weights * sizeof(float));
    memcpy(gb, t.l.gb, t.l.n_bias * sizeof(float));
    fd_stats st = {0};
    gc_check_params(&t, t.l.W, gW, t.l.n_weights, 60, "gW", &rng, &st);
    gc_check_params(&t, t.l.b, gb, t.l.n_bias, 20, "gb", &rng, &st);
    if (getenv("FF_GRADCHECK_VERBOSE") || st.failed || st.skipped > st.checked / 4)
        fprintf(stderr, "  %s pad %d groups %d sign %+d: %d checked, %d failed, %d skipped "
                "(kink), worst %.2f\n", ff_layer_ops_of(kind)->name, pad, t.l.groups, sign, st.checked,
                st.failed, st.skipped, st.worst);
    CHECK(st.failed == 0);
    CHECK(st.checked >= 60);
    free(gW);
    free(gb);
    gc_free(&t);
}

static void check_layer_grad(ff_layer_kind kind, ff_shape in, int out, int k, int s, int sign,
                             uint64_t seed)
{
    check_layer_grad_pad(kind, in, out, k, s, 0, sign, seed);
}

static void test_fc_gradient(void)
{
    check_layer_grad(FF_LAYER_FC, (ff_shape){3, 2, 2}, 5, 0, 0, +1, 201);
    check_layer_grad(FF_LAYER_FC, (ff_shape){3, 2, 2}, 5, 0, 0, -1, 202);
}

static void test_conv_gradient(void)
{
    check_layer_grad(FF_LAYER_CONV, (ff_shape){2, 6, 5}, 3, 3, 1, +1, 301);
    check_layer_grad(FF_LAYER_CONV, (ff_shape){2, 6, 5}, 3, 3, 1, -1, 302);
    check_layer_grad(FF_LAYER_CONV, (ff_shape){2, 8, 7}, 3, 3, 2, +1, 303); /* floor */
}

/* zero padding: the border windows' weights see zeros, the gradient agrees */
static void test_padded_gradient(void)
{
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){2, 5, 5}, 3, 3, 1, 1, +1, 311);
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){2, 6, 5}, 3, 3, 2, 2, -1, 312);
    check_layer_grad_pad(FF_LAYER_LOCAL, (ff_shape){2, 5, 4}, 3, 3, 1, 1, +1, 411);
    check_layer_grad_pad(FF_LAYER_LOCAL, (ff_shape){2, 4, 4}, 2, 3, 2, 2, -1, 412);
}

/* grouped convs (2, 5 and 10 groups; padded, strided): each weight of W [out, in / G
 * * k * k] and each bias against finite differences of the FF loss */
static void test_grouped_gradient(void)
{
    /* outputs kept below about 100 per sample, as the other checks: a larger goodness
     * loses the float loss's finite differences in rounding */
    gc_groups = 2;
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){4, 4, 4}, 4, 3, 1, 1, +1, 321);
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){4, 5, 4}, 4, 3, 1, 1, -1, 322);
    gc_groups = 5;
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){10, 5, 5}, 10, 3, 2, 1, +1, 323);
    gc_groups = 10;
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){10, 3, 3}, 10, 3, 1, 1, -1, 324);
    check_layer_grad_pad(FF_LAYER_CONV, (ff_shape){20, 3, 3}, 10, 2, 1, 0, +1, 325);
    gc_groups = 1;
}

/* the conv checks above on both of the conv layer's paths: those with stride 1 ran on
 * the direct loops (src/conv_direct.c), now all of them on im2col + GEMM */
static void test_conv_gradient_both_paths(void)
{
    gc_direct = 0;
    test_conv_gradient();
    test_padded_gradient();
    test_grouped_gradient();
    CHECK(gc_direct >= 5);
    gc_gemm_only = 1;
    gc_direct = 0;
    test_conv_gradient();
    test_padded_gradient();
    test_grouped_gradient();
    CHECK(gc_direct == 0);
    gc_gemm_only = 0;
}

static void test_local_gradient(void)
{
    check_layer_grad(FF_LAYER_LOCAL, (ff_shape){2, 7, 6}, 3, 3, 2, +1, 401);
    check_layer_grad(FF_LAYER_LOCAL, (ff_shape){2, 7, 6}, 3, 3, 2, -1, 402);
    check_layer_grad(FF_LAYER_LOCAL, (ff_shape){3, 5, 5}, 2, 2, 1, +1, 403);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        m = d > m ? d : m;
    }
    return m;
}

/* beta = 0 overwrites whatever was in gW/gb; beta = 1 adds to it */
static void check_beta(ff_layer_kind kind, ff_shape in, int out, int k, int s)
{
    ff_rng rng;
    ff_rng_seed(&rng, 500 + kind);
    gc_layer t;
    CHECK(gc_build(&t, kind, in, out, k, s, 0, 3, &rng) == 0);
    const size_t ny = gc_ny(&t), np = t.l.n_weights + t.l.n_bias;
    float *d1 = malloc(ny * sizeof(float)), *d2 = malloc(ny * sizeof(float)),
          *g1 = malloc(np * sizeof(float)), *g12 = malloc(np * sizeof(float));
    fill_normal(d1, ny, &rng, 1.0f);
    fill_normal(d2, ny, &rng, 1.0f);
    float *grads = t.l.gW; /* gW then gb, contiguous */
    for (size_t i = 0; i < np; i++)
        grads[i] = 1e30f;
    ff_layer_backward(&t.l, t.x, NULL, d1, t.batch, 0.0f, t.ws);
    memcpy(g1, grads, np * sizeof(float));
    for (size_t i = 0; i < ny; i++)
        t.dpre[i] = d1[i] + d2[i];
    ff_layer_backward(&t.l, t.x, NULL, t.dpre, t.batch, 0.0f, t.ws);
    memcpy(g12, grads, np * sizeof(float));
    ff_layer_backward(&t.l, t.x, NULL, d1, t.batch, 0.0f, t.ws);
    CHECK(max_abs_diff(grads, g1, np) == 0.0); /* overwrite, deterministic */
    ff_layer_backward(&t.l, t.x, NULL, d2, t.batch, 1.0f, t.ws);
    CHECK(max_abs_diff(grads, g12, np) < 1e-4);
    double mx = 0.0;
    for (size_t i = 0; i < np; i++)
        mx = fmax(mx, fabs(g1[i]));
    CHECK(mx < 1e3 && mx > 0.0);
    free(d1);
    free(d2);
    free(g1);
    free(g12);
    gc_free(&t);
}

/* Every registered layer kind (layer.c's table), whatever its file: a new kind is checked
 * here by its table line alone. A trainable kind: its weight and bias gradients against
 * finite differences of the FF loss on grey and colour inputs, unpadded and (with
 * receptive fields) padded and strided, for positive and negative data, grouped where
 * it takes groups; beta 0 overwrites and beta 1 accumulates. An input stage (pool): no
 * parameters to learn. */
static void test_every_kind(void)
{
    int visited = 0, trainable = 0;
    for (int kind = 0; kind < FF_LAYER_KIND_COUNT; kind++) {
        const ff_layer_ops *ops = ff_layer_ops_of((ff_layer_kind)kind);
        CHECK(ops && ops->name && ops->setup && ops->forward && ops->backward);
        if (!ops)
            continue;
        visited++;
        const int rf = ops->receptive_fields, k = rf ? 3 : 0, st = rf ? 1 : 0;
        const uint64_t seed = 700 + 20 * (uint64_t)kind;
        if (ops->input_stage) { /* pools: no parameters (test_pool.c checks their backward) */
            ff_layer_cfg cfg = {.kind = (ff_layer_kind)kind, .kernel = 2, .stride = 2,
                                .groups = 1};
            ff_layer l;
            ff_err err;
            CHECK(ff_layer_setup(&l, &cfg, (ff_shape){3, 6, 6}, 0, &err) == FF_OK &&
                  l.n_weights == 0 && l.n_bias == 0);
            continue;
        }
        trainable++;
        check_layer_grad_pad((ff_layer_kind)kind, (ff_shape){2, 6, 5}, 3, k, st, 0, +1, seed);
        check_layer_grad_pad((ff_layer_kind)kind, (ff_shape){2, 6, 5}, 3, k, st, 0, -1, seed + 1);
        check_layer_grad_pad((ff_layer_kind)kind, (ff_shape){3, 6, 6}, 4, k, st, rf, +1, seed + 2);
        check_layer_grad_pad((ff_layer_kind)kind, (ff_shape){3, 5, 6}, 3, k, rf ? 2 : 0, 0, -1,
                             seed + 3);
        if (strstr(ops->keys, "groups")) { /* 2 groups, padded */
            gc_groups = 2;
            check_layer_grad_pad((ff_layer_kind)kind, (ff_shape){4, 5, 4}, 4, k, st, rf, +1,
                                 seed + 4);
            gc_groups = 1;
        }
        check_beta((ff_layer_kind)kind, (ff_shape){2, 6, 5}, 3, k, st);
    }
    CHECK(visited == FF_LAYER_KIND_COUNT && trainable >= 3); /* fc, conv, local at least */
}

/* ---- pitfalls ---- */

/* goodness is per sample: changing sample 1 leaves sample 0's goodness and
 * gradient alone, and the batch loss is the sum of per-sample losses */
static void test_goodness_per_sample(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 600);
    enum { B = 3, D = 8 };
    float y[B * D], g1[B], g2[B], d1[B * D], d2[B * D];
    for (int i = 0; i < B * D; i++)
        y[i] = fabsf(ff_rng_normal(&rng));
    const float theta = 5.0f;
    for (int sign = -1; sign <= 1; sign += 2) {
        float l1 = ff_objective_loss(y, B, D, theta, 1.0f, sign, 1.0f, g1, d1);
        for (int i = 0; i < B; i++) {
            double gi = 0.0;
            for (int j = 0; j < D; j++)
                gi += (double)y[i * D + j] * y[i * D + j];
            CHECK_NEAR(g1[i], gi, 1e-5);
        }
        double sum = 0.0;
        for (int i = 0; i < B; i++)
            sum += ff_objective_loss(y + i * D, 1, D, theta, 1.0f, sign, 1.0f, NULL, NULL);
        CHECK_NEAR(l1, sum, 1e-5);
        float keep[D];
        memcpy(keep, y + D, sizeof keep);
        for (int j = 0; j < D; j++)
            y[D + j] *= 3.0f;
        ff_objective_loss(y, B, D, theta, 1.0f, sign, 1.0f, g2, d2);
        memcpy(y + D, keep, sizeof keep);
        CHECK(g1[0] == g2[0] && g1[2] == g2[2] && g1[1] != g2[1]);
        CHECK(memcmp(d1, d2, D * sizeof(float)) == 0);
        CHECK(memcmp(d1 + 2 * D, d2 + 2 * D, D * sizeof(float)) == 0);
        CHECK(memcmp(d1 + D, d2 + D, D * sizeof(float)) != 0);
    }
}

/* normalisation is over each sample's whole vector (all channels and locations) */
static void test_normalize_whole_vector(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 700);
    enum { C = 3, H = 2, W = 2, D = C * H * W };
    const float chan_scale[C] = {10.0f, 1.0f, 0.1f};
    float x[2 * D], out[2 * D], out5[2 * D];
    for (int i = 0; i < 2 * D; i++)
        x[i] = ff_rng_normal(&rng) * chan_scale[(i % D) / (H * W)];
    ff_objective_normalize(x, out, 2, D, 1e-8f);
    for (int s = 0; s < 2; s++) {
        double ms = 0.0, chan[C] = {0}, loc[H * W] = {0};
        for (int j = 0; j < D; j++) {
            double v = (double)out[s * D + j] * out[s * D + j];
            ms += v / D;
            chan[j / (H * W)] += v / (H * W);
            loc[j % (H * W)] += v / C;
        }
        CHECK_NEAR(ms, 1.0, 1e-5);
        CHECK(chan[0] > 2.0 && chan[2] < 0.1); /* channels keep their relative scale */
        int loc_not_one = 0;
        for (int p = 0; p < H * W; p++)
            loc_not_one += fabs(loc[p] - 1.0) > 0.05;
        CHECK(loc_not_one > 0);
    }
    /* direction only: a sample scaled by 5 gives the same output; the
     * other sample does not matter */
    memcpy(out5, x, sizeof x);
    for (int j = 0; j < D; j++)
        out5[j] *= 5.0f;
    for (int j = D; j < 2 * D; j++)
        out5[j] = ff_rng_normal(&rng);
    ff_objective_normalize(out5, out5, 2, D, 1e-8f);
    for (int j = 0; j < D; j++)
        CHECK_NEAR(out5[j], out[j], 1e-5 * (1.0 + fabs(out[j])));
    /* a one-channel image keeps its grey levels (per-pixel normalisation would binarise it) */
    float img[4] = {0.1f, 0.5f, 0.9f, 0.0f}, n[4];
    ff_objective_normalize(img, n, 1, 4, 1e-8f);
    CHECK_NEAR(n[1] / n[0], 5.0, 1e-4);
    CHECK_NEAR(n[2] / n[0], 9.0, 1e-4);
    CHECK(n[3] == 0.0f);
}

int main(void)
{
    RUN(test_loss_gradient);
    RUN(test_pair_loss_gradient);
    RUN(test_competition_gradient);
    RUN(test_competition_batch_statistics);
    RUN(test_competition_affine);
    RUN(test_normalize_gradient);
    RUN(test_fc_gradient);
    RUN(test_conv_gradient);
    RUN(test_local_gradient);
    RUN(test_padded_gradient);
    RUN(test_conv_gradient_both_paths);
    RUN(test_every_kind);
    RUN(test_goodness_per_sample);
    RUN(test_normalize_whole_vector);
    TEST_MAIN_END();
}
