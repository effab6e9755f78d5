/* test_layers.c - conv (also grouped) and local layers (with and without zero padding)
 * and the pool against naive loop references, shapes of the paper's nets, initialisation of every
 * location, geometry errors, flops, workspace. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff/config.h"
#include "ff/im2col.h"
#include "ff/layer.h"
#include "ff/net.h"
#include "ff/rng.h"
#include "test.h"

#define GUARD 64
#define SENTINEL 12345.0f

/* a layer with its own parameter, gradient and workspace buffers */
typedef struct tlayer {
    ff_layer l;
    float *mem;   /* W, b, gW, gb */
    float *ws;    /* workspace followed by GUARD sentinel floats */
    size_t ws_n;
} tlayer;

static int g_pad; /* padding of the layers layer_cfg makes (tests set it and reset it to 0) */
static int g_groups = 1; /* conv groups of the layers layer_cfg makes (tests reset it to 1) */
static int g_gemm_only;    /* 1: tl_build's conv layers run on im2col + GEMM, never direct */
static int g_direct_built; /* conv layers tl_build made that run on the direct loops */

static ff_layer_cfg layer_cfg(ff_layer_kind kind, int out, int k, int s)
{
    ff_layer_cfg c = {0};
    c.kind = kind;
    c.units = out;
    c.channels = out;
    c.kernel = k;
    c.stride = s;
    c.padding = g_pad;
    c.groups = kind == FF_LAYER_CONV ? g_groups : 1;
    c.line = 3;
    c.col = 5;
    return c;
}

static void fill_normal(float *p, size_t n, ff_rng *rng, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = ff_rng_normal(rng) * scale;
}

/* sets up the layer, random W (init) and random b; 0 on success */
static int tl_build(tlayer *t, ff_layer_kind kind, ff_shape in, int out, int k, int s, int batch,
                    ff_rng *rng)
{
    memset(t, 0, sizeof *t);
    ff_layer_cfg cfg = layer_cfg(kind, out, k, s);
    ff_err err = {0};
    if (ff_layer_setup(&t->l, &cfg, in, 0, &err)) {
        fprintf(stderr, "  setup: %s\n", err.msg);
        return -1;
    }
    size_t np = t->l.n_weights + t->l.n_bias;
    t->mem = calloc(2 * np, sizeof(float));
    t->ws_n = ff_layer_workspace(&t->l, batch);
    t->ws = malloc((t->ws_n + GUARD) * sizeof(float));
    if (!t->mem || !t->ws)
        return -1;
    for (int i = 0; i < GUARD; i++)
        t->ws[t->ws_n + i] = SENTINEL;
    t->l.W = t->mem;
    t->l.b = t->l.W + t->l.n_weights;
    t->l.gW = t->l.b + t->l.n_bias;
    t->l.gb = t->l.gW + t->l.n_weights;
    ff_layer_init_params(&t->l, rng);
    fill_normal(t->l.b, t->l.n_bias, rng, 0.3f);
    if (g_gemm_only)
        t->l.direct = 0;
    g_direct_built += t->l.direct;
    return 0;
}

static void tl_free(tlayer *t)
{
    free(t->mem);
    free(t->ws);
}

static int guard_intact(const tlayer *t)
{
    for (int i = 0; i < GUARD; i++)
        if (t->ws[t->ws_n + i] != SENTINEL)
            return 0;
    return 1;
}

static float relu(double v) { return v > 0.0 ? (float)v : 0.0f; }

/* x[i][c][yy][xx], 0 outside the input (zero padding) */
static double xat(const float *x, ff_shape in, int i, int c, int yy, int xx)
{
    if (yy < 0 || yy >= in.h || xx < 0 || xx >= in.w)
        return 0.0;
    return x[(size_t)i * ff_shape_dim(in) + ((size_t)c * in.h + yy) * in.w + xx];
}

/* what layer l's window sees at (c, yy, xx): zero padding around the varying channels;
 * a constant (label) plane has its one value everywhere, the padding included */
static double xin(const ff_layer *l, const float *x, int i, int c, int yy, int xx)
{
    if (c >= l->in.c - l->const_c)
        yy = xx = 0;
    return xat(x, l->in, i, c, yy, xx);
}

/* naive conv; W [co][c - c0][ki][kj] over the input channels c of co's group,
 * [c0, c0 + in.c / G) with c0 = (co / (out.c / G)) * in.c / G (G = 1: all of them) */
static void ref_conv(const ff_layer *l, const float *x, float *y, int batch)
{
    const int G = l->groups, cin = l->in.c / G, k = l->kernel, s = l->stride, K = cin * k * k;
    for (int i = 0; i < batch; i++)
        for (int co = 0; co < l->out.c; co++)
            for (int oy = 0; oy < l->out.h; oy++)
                for (int ox = 0; ox < l->out.w; ox++) {
                    const int c0 = co / (l->out.c / G) * cin;
                    double acc = l->b[co];
                    for (int c = c0; c < c0 + cin; c++)
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++)
                                acc += (double)l->W[(size_t)co * K + ((c - c0) * k + ki) * k + kj] *
                                       xin(l, x, i, c, oy * s + ki - l->pad,
                                           ox * s + kj - l->pad);
                    y[(size_t)i * ff_shape_dim(l->out) + (co * l->out.h + oy) * l->out.w + ox] =
                        relu(acc);
                }
}

/* naive locally connected layer; W [p][co][c][ki][kj], b [co][p] */
static void ref_local(const ff_layer *l, const float *x, float *y, int batch)
{
    const int k = l->kernel, s = l->stride, K = l->in.c * k * k, P = l->out.h * l->out.w;
    for (int i = 0; i < batch; i++)
        for (int co = 0; co < l->out.c; co++)
            for (int oy = 0; oy < l->out.h; oy++)
                for (int ox = 0; ox < l->out.w; ox++) {
                    const int p = oy * l->out.w + ox;
                    const float *Wp = l->W + ((size_t)p * l->out.c + co) * K;
                    double acc = l->b[co * P + p];
                    for (int c = 0; c < l->in.c; c++)
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++)
                                acc += (double)Wp[(c * k + ki) * k + kj] *
                                       xin(l, x, i, c, oy * s + ki - l->pad,
                                           ox * s + kj - l->pad);
                    y[(size_t)i * ff_shape_dim(l->out) + co * P + p] = relu(acc);
                }
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

static size_t count_positive(const float *a, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += a[i] > 0.0f;
    return c;
}

/* forward of a layer kind vs its reference on random data */
static void check_against_ref(ff_layer_kind kind, ff_shape in, int out, int k, int s, int batch,
                              uint64_t seed)
{
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    tlayer t;
    CHECK(tl_build(&t, kind, in, out, k, s, batch, &rng) == 0);
    size_t nx = (size_t)batch * ff_shape_dim(in), ny = (size_t)batch * ff_shape_dim(t.l.out);
    float *x = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float)),
          *r = malloc(ny * sizeof(float));
    fill_normal(x, nx, &rng, 1.0f);
    for (size_t i = 0; i < ny; i++)
        y[i] = -1.0f; /* every output must be written */
    ff_layer_forward(&t.l, x, y, batch, t.ws, NULL);
    if (kind == FF_LAYER_CONV)
        ref_conv(&t.l, x, r, batch);
    else
        ref_local(&t.l, x, r, batch);
    CHECK(max_abs_diff(y, r, ny) < 1e-4);
    /* ReLU really clips: some but not all outputs are active */
    size_t pos = count_positive(r, ny);
    CHECK(pos > 0 && pos < ny);
    CHECK(guard_intact(&t));
    free(x);
    free(y);
    free(r);
    tl_free(&t);
}

static void test_conv_matches_reference(void)
{
    check_against_ref(FF_LAYER_CONV, (ff_shape){1, 28, 28}, 128, 10, 6, 3, 1); /* paper layer 1 */
    check_against_ref(FF_LAYER_CONV, (ff_shape){128, 4, 4}, 20, 2, 1, 2, 2);   /* paper layer 2 */
    check_against_ref(FF_LAYER_CONV, (ff_shape){3, 7, 7}, 4, 3, 2, 5, 3);
    check_against_ref(FF_LAYER_CONV, (ff_shape){2, 9, 6}, 5, 4, 3, 4, 4); /* floor, h != w */
    check_against_ref(FF_LAYER_CONV, (ff_shape){2, 5, 5}, 3, 1, 1, 2, 5); /* 1x1 kernel */
    check_against_ref(FF_LAYER_CONV, (ff_shape){2, 7, 7}, 3, 3, 2, 150, 6); /* several rounds */
}

static void test_local_matches_reference(void)
{
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){1, 28, 28}, 128, 10, 6, 3, 11);
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){128, 4, 4}, 20, 2, 1, 2, 12);
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){3, 7, 7}, 4, 3, 2, 5, 13);
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){2, 9, 6}, 5, 4, 3, 4, 14);
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){2, 7, 7}, 3, 3, 2, 150, 15);
}

/* zero padding: forward against the same references (windows over the border see 0) */
static void test_padded_matches_reference(void)
{
    g_pad = 1;
    check_against_ref(FF_LAYER_CONV, (ff_shape){2, 7, 7}, 3, 3, 1, 5, 21);
    check_against_ref(FF_LAYER_CONV, (ff_shape){3, 6, 5}, 4, 3, 2, 70, 22); /* rounds, floor */
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){2, 7, 7}, 3, 3, 1, 5, 23);
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){3, 6, 5}, 4, 3, 2, 4, 24);
    g_pad = 2;
    check_against_ref(FF_LAYER_CONV, (ff_shape){1, 28, 28}, 8, 5, 1, 2, 25); /* "same" 5x5 */
    check_against_ref(FF_LAYER_LOCAL, (ff_shape){2, 4, 4}, 3, 5, 1, 3, 26);  /* kernel > input */
    g_pad = 0;
    /* shapes: (in + 2 pad - k) / s + 1 */
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_CONV, 6, 3, 1);
    cfg.padding = 1;
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 28, 28}, 0, NULL) == FF_OK);
    CHECK(l.out.c == 6 && l.out.h == 28 && l.out.w == 28 && l.pad == 1);
    cfg.stride = 2;
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 7, 8}, 0, NULL) == FF_OK);
    CHECK(l.out.h == 4 && l.out.w == 4);
}

/* naive parameter gradients: gW[.., kidx] = sum dpre * input under the kernel (a
 * grouped conv: over the input channels of the output channel's group, as ref_conv) */
static void ref_backward(const ff_layer *l, const float *x, const float *dpre, int batch,
                         float *gW, float *gb)
{
    const int G = l->groups, cin = l->in.c / G, k = l->kernel, s = l->stride;
    const int K = cin * k * k, P = l->out.h * l->out.w;
    const int local = l->kind == FF_LAYER_LOCAL;
    memset(gW, 0, l->n_weights * sizeof(float));
    memset(gb, 0, l->n_bias * sizeof(float));
    for (int i = 0; i < batch; i++)
        for (int co = 0; co < l->out.c; co++)
            for (int p = 0; p < P; p++) {
                const int oy = p / l->out.w, ox = p % l->out.w;
                const float d = dpre[(size_t)i * ff_shape_dim(l->out) + co * P + p];
                float *g = gW + ((size_t)(local ? p * l->out.c : 0) + co) * K;
                const int c0 = co / (l->out.c / G) * cin;
                gb[local ? co * P + p : co] += d;
                for (int c = c0; c < c0 + cin; c++)
                    for (int ki = 0; ki < k; ki++)
                        for (int kj = 0; kj < k; kj++)
                            g[((c - c0) * k + ki) * k + kj] +=
                                d * (float)xin(l, x, i, c, oy * s + ki - l->pad,
                                                 ox * s + kj - l->pad);
            }
}

/* backward vs the naive reference, for a batch of several conv rounds (64 samples
 * each, last one partial); beta = 0 overwrites garbage, beta = 1 adds */
static void check_backward_ref(ff_layer_kind kind, ff_shape in, int out, int k, int s, int batch)
{
    ff_rng rng;
    ff_rng_seed(&rng, 71);
    tlayer t;
    CHECK(tl_build(&t, kind, in, out, k, s, batch, &rng) == 0);
    const size_t nx = (size_t)batch * ff_shape_dim(in), ny = (size_t)batch * ff_shape_dim(t.l.out);
    const size_t np = t.l.n_weights + t.l.n_bias;
    float *x = malloc(nx * sizeof(float)), *d = malloc(ny * sizeof(float)),
          *ref = malloc(np * sizeof(float));
    fill_normal(x, nx, &rng, 1.0f);
    fill_normal(d, ny, &rng, 1.0f);
    ref_backward(&t.l, x, d, batch, ref, ref + t.l.n_weights);
    for (size_t i = 0; i < np; i++)
        t.l.gW[i] = 1e30f; /* gW and gb are contiguous */
    ff_layer_backward(&t.l, x, NULL, d, batch, 0.0f, t.ws);
    double scale = 0.0;
    for (size_t i = 0; i < np; i++)
        scale = fmax(scale, fabs(ref[i]));
    CHECK(max_abs_diff(t.l.gW, ref, np) < 1e-5 * scale);
    ff_layer_backward(&t.l, x, NULL, d, batch, 1.0f, t.ws);
    for (size_t i = 0; i < np; i++)
        ref[i] *= 2.0f;
    CHECK(max_abs_diff(t.l.gW, ref, np) < 2e-5 * scale);
    /* training path: the forward pass keeps the patches and backward reuses them,
     * with the same result as extracting them again, to the bit */
    float *patches = malloc((size_t)batch * ff_layer_patch_floats(&t.l) * sizeof(float)),
          *y = malloc(ny * sizeof(float)), *g1 = malloc(np * sizeof(float));
    const size_t kept = (size_t)ff_shape_dim(t.l.out) / t.l.out.c * (size_t)in.c * k * k;
    CHECK(ff_layer_patch_floats(&t.l) == (t.l.direct ? 0 : kept)); /* direct: reads x again */
    ff_layer_backward(&t.l, x, NULL, d, batch, 0.0f, t.ws);
    memcpy(g1, t.l.gW, np * sizeof(float));
    for (size_t i = 0; i < np; i++)
        t.l.gW[i] = 1e30f;
    ff_layer_forward(&t.l, x, y, batch, t.ws, patches);
    for (size_t i = 0; i < t.ws_n; i++)
        t.ws[i] = 1e30f; /* the kept patches must not depend on the scratch space */
    ff_layer_backward(&t.l, t.l.direct ? x : NULL, patches, d, batch, 0.0f, t.ws);
    CHECK(memcmp(g1, t.l.gW, np * sizeof(float)) == 0);
    CHECK(guard_intact(&t));
    free(patches);
    free(y);
    free(g1);
    free(x);
    free(d);
    free(ref);
    tl_free(&t);
}

static void test_backward_matches_reference(void)
{
    check_backward_ref(FF_LAYER_CONV, (ff_shape){2, 7, 7}, 3, 3, 2, 150);
    check_backward_ref(FF_LAYER_CONV, (ff_shape){3, 6, 5}, 4, 2, 1, 5);
    check_backward_ref(FF_LAYER_LOCAL, (ff_shape){2, 7, 7}, 3, 3, 2, 150);
    check_backward_ref(FF_LAYER_LOCAL, (ff_shape){3, 6, 5}, 4, 2, 1, 5);
    g_pad = 1; /* zero padding: the reference's windows read 0 outside the input */
    check_backward_ref(FF_LAYER_CONV, (ff_shape){2, 7, 7}, 3, 3, 2, 150);
    check_backward_ref(FF_LAYER_LOCAL, (ff_shape){3, 6, 5}, 4, 3, 1, 5);
    g_pad = 2;
    check_backward_ref(FF_LAYER_CONV, (ff_shape){2, 5, 6}, 3, 5, 1, 3);
    g_pad = 0;
}

/* grouped convs (groups G: input and output channels in G blocks, output block g
 * over input block g only): forward and parameter gradients against the naive
 * references, with padding and stride, in one round and over several (batch 70) */
static void test_grouped_matches_reference(void)
{
    g_groups = 2;
    check_against_ref(FF_LAYER_CONV, (ff_shape){4, 7, 7}, 6, 3, 1, 5, 31);
    check_backward_ref(FF_LAYER_CONV, (ff_shape){4, 7, 7}, 6, 3, 2, 70);
    g_pad = 1;
    check_against_ref(FF_LAYER_CONV, (ff_shape){4, 6, 5}, 2, 3, 2, 70, 32); /* 1 out per group */
    check_backward_ref(FF_LAYER_CONV, (ff_shape){4, 6, 5}, 4, 3, 1, 5);
    g_groups = 5;
    check_against_ref(FF_LAYER_CONV, (ff_shape){10, 6, 6}, 15, 3, 1, 4, 33);
    check_backward_ref(FF_LAYER_CONV, (ff_shape){10, 6, 6}, 15, 3, 1, 70);
    g_groups = 10; /* the competition loss's class groups (CwComp's CFSE blocks) */
    check_against_ref(FF_LAYER_CONV, (ff_shape){20, 7, 7}, 30, 3, 1, 70, 34);
    check_backward_ref(FF_LAYER_CONV, (ff_shape){20, 7, 7}, 30, 3, 2, 5);
    g_pad = 0;
    check_against_ref(FF_LAYER_CONV, (ff_shape){10, 4, 4}, 20, 2, 1, 3, 35); /* k 2 rows */
    check_backward_ref(FF_LAYER_CONV, (ff_shape){10, 4, 4}, 20, 2, 1, 3);
    g_groups = 4; /* depthwise: one input channel per group */
    check_against_ref(FF_LAYER_CONV, (ff_shape){4, 5, 5}, 8, 3, 1, 3, 36);
    check_backward_ref(FF_LAYER_CONV, (ff_shape){4, 5, 5}, 8, 3, 1, 3);
    g_groups = 1;
}

/* groups G is the ungrouped conv whose weights from output block g to every input
 * block but g are zero: the same outputs; the grouped gW is the ungrouped one's
 * on-block part, gb the same; the sizes: G times fewer weights and multiply-adds,
 * the same patches, init N(0, 1 / fan_in) with fan_in = in.c / G * k * k */
static void test_grouped_is_block_diagonal(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 51);
    const ff_shape in = {6, 7, 7};
    const int G = 3, out = 9, k = 3, batch = 70, Cg = out / G, Kg = in.c / G * k * k,
              K = in.c * k * k;
    tlayer grp, full;
    g_pad = 1;
    g_groups = G;
    CHECK(tl_build(&grp, FF_LAYER_CONV, in, out, k, 1, batch, &rng) == 0);
    g_groups = 1;
    CHECK(tl_build(&full, FF_LAYER_CONV, in, out, k, 1, batch, &rng) == 0);
    g_pad = 0;
    CHECK(grp.l.groups == G && full.l.groups == 1);
    CHECK(grp.l.n_weights == (size_t)out * Kg && grp.l.n_bias == (size_t)out);
    CHECK(full.l.n_weights == (size_t)G * grp.l.n_weights);
    CHECK(ff_layer_flops(&grp.l) == (double)ff_im2col_patch_count(&grp.l) * out * Kg);
    CHECK(ff_layer_flops(&grp.l) * G == ff_layer_flops(&full.l));
    CHECK(grp.l.direct && !full.l.direct); /* Kg = 18, K = 54 */
    CHECK(ff_layer_patch_floats(&grp.l) == 0); /* the direct loops keep no patches */
    CHECK(ff_layer_workspace(&grp.l, batch) == ff_layer_workspace(&full.l, batch));
    for (int co = 0; co < out; co++) /* W of full: block-diagonal copy of grp's */
        for (int j = 0; j < K; j++) {
            const int g = co / Cg, on = j >= g * Kg && j < (g + 1) * Kg;
            full.l.W[(size_t)co * K + j] = on ? grp.l.W[(size_t)co * Kg + j - g * Kg] : 0.0f;
        }
    memcpy(full.l.b, grp.l.b, (size_t)out * sizeof(float));
    const size_t nx = (size_t)batch * ff_shape_dim(in), ny = (size_t)batch * ff_shape_dim(grp.l.out);
    float *x = malloc(nx * sizeof(float)), *y1 = malloc(ny * sizeof(float)),
          *y2 = malloc(ny * sizeof(float)), *d = malloc(ny * sizeof(float));
    fill_normal(x, nx, &rng, 1.0f);
    fill_normal(d, ny, &rng, 1.0f);
    ff_layer_forward(&grp.l, x, y1, batch, grp.ws, NULL);
    ff_layer_forward(&full.l, x, y2, batch, full.ws, NULL);
    CHECK(max_abs_diff(y1, y2, ny) < 1e-5);
    CHECK(count_positive(y1, ny) > ny / 10);
    ff_layer_backward(&grp.l, x, NULL, d, batch, 0.0f, grp.ws);
    ff_layer_backward(&full.l, x, NULL, d, batch, 0.0f, full.ws);
    double scale = 0.0, worst = 0.0, off = 0.0;
    for (int co = 0; co < out; co++)
        for (int j = 0; j < K; j++) {
            const int g = co / Cg;
            const double v = full.l.gW[(size_t)co * K + j];
            scale = fmax(scale, fabs(v));
            if (j >= g * Kg && j < (g + 1) * Kg)
                worst = fmax(worst, fabs(v - grp.l.gW[(size_t)co * Kg + j - g * Kg]));
            else
                off = fmax(off, fabs(v)); /* what the grouped conv must leave out */
        }
    CHECK(worst < 1e-5 * scale);
    CHECK(off > 0.1 * scale);
    CHECK(memcmp(grp.l.gb, full.l.gb, (size_t)out * sizeof(float)) == 0);
    CHECK(guard_intact(&grp) && guard_intact(&full));
    free(x);
    free(y1);
    free(y2);
    free(d);
    tl_free(&grp);
    tl_free(&full);
    /* init scale: 1 / fan_in with the group's fan-in */
    g_groups = 10;
    CHECK(tl_build(&grp, FF_LAYER_CONV, (ff_shape){120, 4, 4}, 400, 2, 1, 1, &rng) == 0);
    g_groups = 1;
    CHECK(ff_layer_ops_of(FF_LAYER_CONV)->fan_in(&grp.l) == 12 * 4);
    double ss = 0.0;
    for (size_t j = 0; j < grp.l.n_weights; j++)
        ss += (double)grp.l.W[j] * grp.l.W[j];
    CHECK(grp.l.n_weights == 400 * 48);
    CHECK_NEAR(ss / grp.l.n_weights * 48.0, 1.0, 0.05);
    tl_free(&grp);
}

/* re-sizes t's workspace after setting const_c (tl_build sized it for none) */
static int tl_set_planes(tlayer *t, int nc, int batch)
{
    t->l.const_c = nc;
    free(t->ws);
    t->ws_n = ff_layer_workspace(&t->l, batch);
    t->ws = malloc((t->ws_n + GUARD) * sizeof(float));
    if (!t->ws)
        return -1;
    for (int i = 0; i < GUARD; i++)
        t->ws[t->ws_n + i] = SENTINEL;
    return 0;
}

/* constant planes (const_c = 3 label-like planes, one value each per sample)
 * taken as a per-sample bias give the same outputs and gradients as the same
 * weights through im2col; also with kept patches (which then hold only the
 * varying channels) and over several conv rounds (batch 70 > 64) */
static void check_const_planes(ff_layer_kind kind, ff_shape in, int out, int k, int s, int batch)
{
    ff_rng rng;
    ff_rng_seed(&rng, 404);
    const int nc = 3;
    tlayer full, fast;
    CHECK(tl_build(&full, kind, in, out, k, s, batch, &rng) == 0);
    CHECK(tl_build(&fast, kind, in, out, k, s, batch, &rng) == 0);
    CHECK(tl_set_planes(&fast, nc, batch) == 0);
    const size_t np = full.l.n_weights + full.l.n_bias;
    memcpy(fast.l.W, full.l.W, np * sizeof(float)); /* W and b */
    const size_t dim = (size_t)ff_shape_dim(in), plane = (size_t)in.h * in.w;
    const size_t ny = (size_t)batch * ff_shape_dim(full.l.out);
    float *x = malloc((size_t)batch * dim * sizeof(float)), *y1 = malloc(ny * sizeof(float)),
          *y2 = malloc(ny * sizeof(float)), *d = malloc(ny * sizeof(float)),
          *patches = malloc((size_t)batch * ff_layer_patch_floats(&fast.l) * sizeof(float));
    fill_normal(x, (size_t)batch * dim, &rng, 1.0f);
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < nc; j++) {
            float v = j == i % nc ? 1.0f : 0.1f * (float)j;
            for (size_t q = 0; q < plane; q++)
                x[(size_t)i * dim + (size_t)(in.c - nc + j) * plane + q] = v;
        }
    fill_normal(d, ny, &rng, 1.0f);
    CHECK(ff_layer_patch_floats(&fast.l) ==
          (size_t)ff_im2col_patch_count(&fast.l) * (size_t)(in.c - nc) * k * k);
    { /* multiply-adds: the varying channels per location, the planes once (conv) */
        const double P = ff_im2col_patch_count(&fast.l), Kv = (in.c - nc) * k * k;
        CHECK(ff_layer_flops(&fast.l) == (kind == FF_LAYER_CONV ? P * out * Kv + out * nc
                                                                : P * out * (Kv + nc)));
    }
    ff_layer_forward(&full.l, x, y1, batch, full.ws, NULL);
    ff_layer_forward(&fast.l, x, y2, batch, fast.ws, NULL);
    CHECK(max_abs_diff(y1, y2, ny) < 1e-4);
    CHECK(count_positive(y1, ny) > ny / 10);
    ff_layer_backward(&full.l, x, NULL, d, batch, 0.0f, full.ws);
    ff_layer_backward(&fast.l, x, NULL, d, batch, 0.0f, fast.ws);
    double scale = 0.0;
    for (size_t i = 0; i < np; i++)
        scale = fmax(scale, fabs(full.l.gW[i]));
    CHECK(max_abs_diff(full.l.gW, fast.l.gW, np) < 1e-5 * scale);
    /* accumulate (beta 1) from the kept patches */
    ff_layer_forward(&fast.l, x, y2, batch, fast.ws, patches);
    CHECK(max_abs_diff(y1, y2, ny) < 1e-4);
    ff_layer_backward(&fast.l, x, patches, d, batch, 1.0f, fast.ws);
    for (size_t i = 0; i < np; i++)
        full.l.gW[i] *= 2.0f;
    CHECK(max_abs_diff(full.l.gW, fast.l.gW, np) < 2e-5 * scale);
    CHECK(guard_intact(&full) && guard_intact(&fast));
    free(x);
    free(y1);
    free(y2);
    free(d);
    free(patches);
    tl_free(&full);
    tl_free(&fast);
}

/* constant planes with zero padding: the planes stay a per-sample bias (their value
 * at every window position, the border included), the varying channels are padded;
 * forward and backward against the naive references */
static void check_padded_planes(ff_layer_kind kind, ff_shape in, int out, int k, int s, int batch)
{
    ff_rng rng;
    ff_rng_seed(&rng, 405);
    const int nc = 3;
    tlayer t;
    g_pad = 1;
    CHECK(tl_build(&t, kind, in, out, k, s, batch, &rng) == 0);
    g_pad = 0;
    CHECK(tl_set_planes(&t, nc, batch) == 0);
    const size_t dim = (size_t)ff_shape_dim(in), plane = (size_t)in.h * in.w;
    const size_t ny = (size_t)batch * ff_shape_dim(t.l.out), np = t.l.n_weights + t.l.n_bias;
    float *x = malloc((size_t)batch * dim * sizeof(float)), *y = malloc(ny * sizeof(float)),
          *r = malloc(ny * sizeof(float)), *d = malloc(ny * sizeof(float)),
          *ref = malloc(np * sizeof(float));
    fill_normal(x, (size_t)batch * dim, &rng, 1.0f);
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < nc; j++)
            for (size_t q = 0; q < plane; q++)
                x[(size_t)i * dim + (size_t)(in.c - nc + j) * plane + q] = j == i % nc ? 1.0f : 0.0f;
    ff_layer_forward(&t.l, x, y, batch, t.ws, NULL);
    if (kind == FF_LAYER_CONV)
        ref_conv(&t.l, x, r, batch);
    else
        ref_local(&t.l, x, r, batch);
    CHECK(max_abs_diff(y, r, ny) < 1e-4);
    fill_normal(d, ny, &rng, 1.0f);
    ref_backward(&t.l, x, d, batch, ref, ref + t.l.n_weights);
    ff_layer_backward(&t.l, x, NULL, d, batch, 0.0f, t.ws);
    double scale = 0.0;
    for (size_t i = 0; i < np; i++)
        scale = fmax(scale, fabs(ref[i]));
    CHECK(max_abs_diff(t.l.gW, ref, np) < 1e-5 * scale);
    CHECK(guard_intact(&t));
    free(x), free(y), free(r), free(d), free(ref);
    tl_free(&t);
}

static void test_const_planes_match_im2col(void)
{
    check_padded_planes(FF_LAYER_CONV, (ff_shape){5, 6, 6}, 4, 3, 1, 70);
    check_padded_planes(FF_LAYER_LOCAL, (ff_shape){4, 5, 6}, 3, 3, 2, 5);
    check_const_planes(FF_LAYER_CONV, (ff_shape){5, 9, 9}, 6, 3, 2, 70);
    check_const_planes(FF_LAYER_CONV, (ff_shape){4, 5, 5}, 3, 2, 1, 5);
    check_const_planes(FF_LAYER_LOCAL, (ff_shape){5, 9, 9}, 6, 3, 2, 7);
    check_const_planes(FF_LAYER_LOCAL, (ff_shape){4, 5, 5}, 3, 2, 1, 5);
}

/* a conv whose kernel covers the whole input is an fc layer with the same W, b */
static void test_conv_full_kernel_is_fc(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 21);
    const ff_shape in = {3, 5, 5};
    const int batch = 6, out = 7, dim = 75;
    tlayer conv, fc;
    CHECK(tl_build(&conv, FF_LAYER_CONV, in, out, 5, 1, batch, &rng) == 0);
    CHECK(tl_build(&fc, FF_LAYER_FC, in, out, 0, 0, batch, &rng) == 0);
    CHECK(conv.l.out.c == out && conv.l.out.h == 1 && conv.l.out.w == 1);
    CHECK(conv.l.n_weights == fc.l.n_weights && conv.l.n_bias == fc.l.n_bias);
    memcpy(fc.l.W, conv.l.W, conv.l.n_weights * sizeof(float));
    memcpy(fc.l.b, conv.l.b, conv.l.n_bias * sizeof(float));
    float x[6 * 75], yc[6 * 7], yf[6 * 7], dpre[6 * 7];
    fill_normal(x, (size_t)batch * dim, &rng, 1.0f);
    fill_normal(dpre, (size_t)batch * out, &rng, 1.0f);
    ff_layer_forward(&conv.l, x, yc, batch, conv.ws, NULL);
    ff_layer_forward(&fc.l, x, yf, batch, fc.ws, NULL);
    CHECK(max_abs_diff(yc, yf, (size_t)batch * out) < 1e-5);
    ff_layer_backward(&conv.l, x, NULL, dpre, batch, 0.0f, conv.ws);
    ff_layer_backward(&fc.l, x, NULL, dpre, batch, 0.0f, fc.ws);
    CHECK(max_abs_diff(conv.l.gW, fc.l.gW, conv.l.n_weights) < 1e-5);
    CHECK(max_abs_diff(conv.l.gb, fc.l.gb, conv.l.n_bias) < 1e-5);
    tl_free(&conv);
    tl_free(&fc);
}

/* a local layer with the same weights at every location is the conv layer */
static void test_local_with_shared_weights_is_conv(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 31);
    const ff_shape in = {2, 8, 8};
    const int batch = 4, out = 3;
    tlayer conv, loc;
    CHECK(tl_build(&conv, FF_LAYER_CONV, in, out, 3, 2, batch, &rng) == 0);
    CHECK(tl_build(&loc, FF_LAYER_LOCAL, in, out, 3, 2, batch, &rng) == 0);
    const int P = loc.l.out.h * loc.l.out.w;
    CHECK(P == 9 && loc.l.n_weights == (size_t)P * conv.l.n_weights);
    for (int p = 0; p < P; p++) {
        memcpy(loc.l.W + (size_t)p * conv.l.n_weights, conv.l.W, conv.l.n_weights * sizeof(float));
        for (int c = 0; c < out; c++)
            loc.l.b[c * P + p] = conv.l.b[c];
    }
    size_t nx = (size_t)batch * 128, ny = (size_t)batch * out * P;
    float x[4 * 128], yc[4 * 27], yl[4 * 27], dpre[4 * 27];
    fill_normal(x, nx, &rng, 1.0f);
    fill_normal(dpre, ny, &rng, 1.0f);
    ff_layer_forward(&conv.l, x, yc, batch, conv.ws, NULL);
    ff_layer_forward(&loc.l, x, yl, batch, loc.ws, NULL);
    CHECK(max_abs_diff(yc, yl, ny) < 1e-5);
    /* the conv gradient is the sum of the per-location gradients */
    ff_layer_backward(&conv.l, x, NULL, dpre, batch, 0.0f, conv.ws);
    ff_layer_backward(&loc.l, x, NULL, dpre, batch, 0.0f, loc.ws);
    float sum[3 * 18] = {0}, bsum[3] = {0};
    for (int p = 0; p < P; p++) {
        for (size_t j = 0; j < conv.l.n_weights; j++)
            sum[j] += loc.l.gW[p * conv.l.n_weights + j];
        for (int c = 0; c < out; c++)
            bsum[c] += loc.l.gb[c * P + p];
    }
    CHECK(max_abs_diff(sum, conv.l.gW, conv.l.n_weights) < 1e-4);
    CHECK(max_abs_diff(bsum, conv.l.gb, 3) < 1e-4);
    CHECK(guard_intact(&conv) && guard_intact(&loc));
    tl_free(&conv);
    tl_free(&loc);
}

static int shape_is(ff_shape s, int c, int h, int w) { return s.c == c && s.h == h && s.w == w; }

/* the paper's nets: 1x28x28 -> 128x4x4 -> 220x3x3 -> 512x2x2 */
static void check_paper_shapes(ff_layer_kind kind)
{
    const int ch[3] = {128, 220, 512}, k[3] = {10, 2, 2}, s[3] = {6, 1, 1}, grid[3] = {4, 3, 2};
    const int fan_in[3] = {100, 128 * 4, 220 * 4};
    ff_shape shape = {1, 28, 28};
    for (int i = 0; i < 3; i++) {
        ff_layer l = {0};
        ff_layer_cfg cfg = layer_cfg(kind, ch[i], k[i], s[i]);
        ff_err err = {0};
        CHECK(ff_layer_setup(&l, &cfg, shape, i, &err) == FF_OK);
        CHECK(shape_is(l.out, ch[i], grid[i], grid[i]));
        size_t P = (size_t)grid[i] * grid[i], per_loc = (size_t)ch[i] * fan_in[i];
        if (kind == FF_LAYER_CONV) {
            CHECK(l.n_weights == per_loc && l.n_bias == (size_t)ch[i]);
            CHECK(ff_layer_flops(&l) == (double)per_loc * P);
        } else {
            CHECK(l.n_weights == per_loc * P && l.n_bias == ch[i] * P);
            CHECK(ff_layer_flops(&l) == (double)per_loc * P);
        }
        CHECK(l.threshold == (float)(ch[i] * P));
        shape = l.out;
    }
}

static void test_paper_shapes(void)
{
    check_paper_shapes(FF_LAYER_CONV);
    check_paper_shapes(FF_LAYER_LOCAL);
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_FC, 2000, 0, 0);
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 28, 28}, 0, NULL) == FF_OK);
    CHECK(ff_layer_flops(&l) == 784.0 * 2000.0);
}

/* darknet's local layer initialised only the first location's weights */
static void check_every_location_initialised(ff_shape in, int out, int k, int s)
{
    ff_rng rng;
    ff_rng_seed(&rng, 41);
    tlayer t;
    CHECK(tl_build(&t, FF_LAYER_LOCAL, in, out, k, s, 1, &rng) == 0);
    ff_layer_init_params(&t.l, &rng); /* again, so biases are the init's */
    const int P = t.l.out.h * t.l.out.w, K = in.c * k * k;
    const size_t per = (size_t)out * K;
    for (int p = 0; p < P; p++) {
        const float *Wp = t.l.W + (size_t)p * per;
        double ss = 0.0;
        size_t zeros = 0;
        for (size_t j = 0; j < per; j++) {
            ss += (double)Wp[j] * Wp[j];
            zeros += Wp[j] == 0.0f;
        }
        /* randn / sqrt(fan_in = K): mean square 1/K */
        CHECK(zeros == 0);
        CHECK_NEAR(ss / per * K, 1.0, 0.1);
    }
    size_t nz = 0;
    for (size_t j = 0; j < t.l.n_bias; j++)
        nz += t.l.b[j] != 0.0f;
    CHECK(nz == 0);
    /* locations are not copies of each other */
    CHECK(memcmp(t.l.W, t.l.W + (P - 1) * per, per * sizeof(float)) != 0);
    tl_free(&t);
}

static void test_every_location_initialised(void)
{
    check_every_location_initialised((ff_shape){1, 28, 28}, 128, 10, 6);
    check_every_location_initialised((ff_shape){128, 4, 4}, 220, 2, 1);
}

static void test_conv_init_scale(void)
{
    ff_rng rng;
    ff_rng_seed(&rng, 43);
    tlayer t;
    CHECK(tl_build(&t, FF_LAYER_CONV, (ff_shape){128, 4, 4}, 220, 2, 1, 1, &rng) == 0);
    double ss = 0.0;
    for (size_t j = 0; j < t.l.n_weights; j++)
        ss += (double)t.l.W[j] * t.l.W[j];
    CHECK_NEAR(ss / t.l.n_weights * 512.0, 1.0, 0.05);
    tl_free(&t);
}

static void check_geometry_error(ff_layer_kind kind, ff_shape in, int out, int k, int s,
                                 const char *expect)
{
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(kind, out, k, s);
    cfg.line = 14;
    cfg.col = 7;
    ff_err err = {0};
    int rc = ff_layer_setup(&l, &cfg, in, 2, &err);
    CHECK(rc == FF_ERR_USAGE && err.code == FF_ERR_USAGE);
    if (!strstr(err.msg, expect)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, expect);
        CHECK(0);
    }
}

static void test_geometry_errors(void)
{
    const ff_shape s4 = {1, 4, 4};
    check_geometry_error(FF_LAYER_CONV, s4, 8, 10, 1,
                         "layer 2: conv kernel 10 does not fit input 1x4x4");
    check_geometry_error(FF_LAYER_LOCAL, s4, 8, 5, 1,
                         "layer 2: local kernel 5 does not fit input 1x4x4");
    check_geometry_error(FF_LAYER_CONV, (ff_shape){3, 10, 4}, 8, 5, 1,
                         "kernel 5 does not fit input 3x10x4");
    check_geometry_error(FF_LAYER_CONV, s4, 8, 0, 1, "conv kernel 0 must be > 0");
    check_geometry_error(FF_LAYER_CONV, s4, 8, 2, 0, "layer 2: conv stride 0");
    check_geometry_error(FF_LAYER_LOCAL, s4, 8, 2, -1, "local stride -1 must be > 0");
    check_geometry_error(FF_LAYER_CONV, s4, 0, 2, 1, "conv channels 0 must be > 0");
    check_geometry_error(FF_LAYER_LOCAL, s4, -3, 2, 1, "local channels -3");
    g_pad = 3; /* padding must stay below the kernel */
    check_geometry_error(FF_LAYER_CONV, s4, 8, 3, 1,
                         "layer 2: conv padding 3 must be >= 0 and less than its kernel 3");
    g_pad = 1; /* 7 > 4 + 2 */
    check_geometry_error(FF_LAYER_LOCAL, s4, 8, 7, 1, "local kernel 7 does not fit input 1x4x4");
    g_pad = 0;
    check_geometry_error(FF_LAYER_POOL, s4, 0, 5, 1, "layer 2: pool kernel 5 does not fit input 1x4x4");
    check_geometry_error(FF_LAYER_POOL, s4, 0, 2, 0, "layer 2: pool stride 0 must be > 0");
    check_geometry_error(FF_LAYER_POOL, s4, 0, 0, 1, "pool kernel 0 must be > 0");
    g_groups = 3; /* both channel counts multiples of the groups */
    check_geometry_error(FF_LAYER_CONV, (ff_shape){4, 4, 4}, 6, 2, 1,
                         "layer 2: conv groups 3 must divide both its input channels (4) and "
                         "its output channels (6)");
    check_geometry_error(FF_LAYER_CONV, (ff_shape){6, 4, 4}, 8, 2, 1,
                         "layer 2: conv groups 3 must divide both its input channels (6) and "
                         "its output channels (8)");
    g_groups = 1;
    /* (in - kernel) not divisible by stride is fine: floor */
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_LOCAL, 2, 4, 3);
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 9, 11}, 0, NULL) == FF_OK);
    CHECK(shape_is(l.out, 2, 2, 3));
    cfg.kernel = 4;
    cfg.stride = 100;
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 4, 4}, 0, NULL) == FF_OK);
    CHECK(shape_is(l.out, 2, 1, 1));
}

/* the layer table: every kind of the config enum has complete ops whose name is
 * the config's, whose keys the config takes for that kind (and requires the
 * required ones), and nothing lies past the last kind */
static void test_layer_table(void)
{
    CHECK(ff_layer_ops_of(FF_LAYER_KIND_COUNT) == NULL && ff_layer_ops_of((ff_layer_kind)-1) == NULL);
    for (int k = 0; k < FF_LAYER_KIND_COUNT; k++) {
        const ff_layer_ops *ops = ff_layer_ops_of(k);
        CHECK(ops != NULL);
        if (!ops)
            continue;
        CHECK(ops->name && strcmp(ops->name, ff_config_layer_kind_name(k)) == 0);
        CHECK(ops->setup && ops->fan_in && ops->workspace && ops->forward && ops->backward &&
              ops->flops && ops->keys && ops->required);
        CHECK(!ops->input_stage || !ops->receptive_fields); /* a pool has no weights */
        CHECK(!ops->receptive_fields || ops->patch_floats); /* windows are kept for backward */
        /* a one-layer config of this kind: each key sets; each required one is required */
        char yaml[256], key[64], set[96], keys[128];
        snprintf(keys, sizeof keys, "%s", ops->keys);
        int n_keys = 0, n_required = 0;
        for (char *w = strtok(keys, " "); w; w = strtok(NULL, " "), n_keys++) {
            ff_config cfg;
            ff_config_defaults(&cfg);
            cfg.model.n_layers = 1;
            cfg.model.layers[0].kind = k;
            snprintf(key, sizeof key, "%s", w);
            snprintf(set, sizeof set, "model.layers.0.%s=%s", key,
                     strcmp(key, "kind") == 0 ? "avg" : "2"); /* kind: an enum */
            ff_err err;
            CHECK(ff_config_set(&cfg, set, &err) == FF_OK);
            /* a required key: a layer without it is refused */
            char req[128];
            snprintf(req, sizeof req, " %s ", ops->required);
            char word[66];
            snprintf(word, sizeof word, " %s ", key);
            if (strstr(req, word)) {
                n_required++;
                snprintf(yaml, sizeof yaml, "model:\n  layers:\n    - {type: %s}\n", ops->name);
                CHECK(ff_config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err) == FF_ERR_USAGE);
                CHECK(strstr(err.msg, "is missing required key") != NULL);
            }
        }
        CHECK(n_keys >= 1 && n_required >= 1);
        /* a key the kind does not take is refused */
        ff_config cfg;
        ff_config_defaults(&cfg);
        cfg.model.n_layers = 1;
        cfg.model.layers[0].kind = k;
        ff_err err;
        const char *other = strstr(ops->keys, "units") ? "model.layers.0.channels=2"
                                                       : "model.layers.0.units=2";
        CHECK(ff_config_set(&cfg, other, &err) == FF_ERR_USAGE);
        CHECK(strstr(err.msg, "does not apply") != NULL);
    }
}

/* shapes whose sizes overflow an int, or weights past FF_LAYER_MAX_FLOATS, are
 * refused at setup (so ff_shape_dim never overflows) naming the layer */
static void test_huge_shapes_refused(void)
{
    ff_layer l = {0};
    ff_err err = {0};
    ff_layer_cfg fc = layer_cfg(FF_LAYER_FC, 10, 0, 1);
    CHECK(ff_layer_setup(&l, &fc, (ff_shape){1, 50000, 50000}, 3, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "layer 3: input 1x50000x50000 has 2500000000 values") != NULL);
    /* 4096 channels over a 1000 x 1000 grid: 4.1e9 outputs */
    ff_layer_cfg conv = layer_cfg(FF_LAYER_CONV, 4096, 1, 1);
    CHECK(ff_layer_setup(&l, &conv, (ff_shape){1, 1000, 1000}, 1, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "layer 1: output 4096x1000x1000 has 4096000000 values") != NULL);
    /* 1024 x 4096 x 4096 local weights (1.7e10) */
    ff_layer_cfg local = layer_cfg(FF_LAYER_LOCAL, 4096, 1, 1);
    CHECK(ff_layer_setup(&l, &local, (ff_shape){4096, 32, 32}, 2, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "layer 2: local needs 17179869184 weights, more than the limit") != NULL);
    /* right at the limit is fine */
    fc.units = 1;
    CHECK(ff_layer_setup(&l, &fc, (ff_shape){1, 1, (int)FF_LAYER_MAX_FLOATS}, 0, &err) == FF_OK);
    CHECK(l.n_weights == (size_t)FF_LAYER_MAX_FLOATS);

    /* a config that parses but whose fc layer would need 3.2e12 weights */
    static const char yaml[] = "model:\n"
                               "  layers:\n"
                               "    - {type: conv, channels: 4096, kernel: 1}\n"
                               "    - {type: fc, units: 1000000}\n";
    ff_config cfg;
    CHECK(ff_config_parse(&cfg, yaml, sizeof yaml - 1, "huge.yaml", &err) == FF_OK);
    ff_rng r;
    ff_rng_seed(&r, 1);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 4, &r, &err) == FF_ERR_USAGE);
    const char *want = "huge.yaml:4:7: layer 1: fc needs 3211264000000 weights, more than the limit "
                       "of 536870911";
    if (strcmp(err.msg, want) != 0) {
        fprintf(stderr, "  message \"%s\", expected \"%s\"\n", err.msg, want);
        CHECK(0);
    }
}

/* samples do not interact: sample 0's output ignores sample 1's input */
/* Every registered layer kind (a new kind by its table line alone): its samples are
 * independent (changing sample 1 leaves sample 0's output bit for bit), forward and
 * backward stay inside the workspace they asked for (guard floats intact) and are
 * deterministic; a trainable kind has weights, a fan-in and multiply-adds; an input stage
 * (pool) has no parameters. */
static void test_every_kind_invariants(void)
{
    for (int kind = 0; kind < FF_LAYER_KIND_COUNT; kind++) {
        const ff_layer_ops *ops = ff_layer_ops_of((ff_layer_kind)kind);
        const int rf = ops->receptive_fields, pool = ops->input_stage;
        ff_rng rng;
        ff_rng_seed(&rng, 51);
        tlayer t;
        const ff_shape in = {2, 6, 6};
        CHECK(tl_build(&t, (ff_layer_kind)kind, in, 4, rf || pool ? 2 + !pool : 0,
                       rf ? 1 : pool ? 2 : 0, 2, &rng) == 0);
        const size_t nx = ff_shape_dim(in), ny = ff_shape_dim(t.l.out);
        float *x = malloc(sizeof(float) * 2 * nx), *y1 = malloc(sizeof(float) * 2 * ny),
              *y2 = malloc(sizeof(float) * 2 * ny), *y3 = malloc(sizeof(float) * 2 * ny);
        fill_normal(x, 2 * nx, &rng, 1.0f);
        ff_layer_forward(&t.l, x, y1, 2, t.ws, NULL);
        ff_layer_forward(&t.l, x, y3, 2, t.ws, NULL);
        CHECK(memcmp(y1, y3, sizeof(float) * 2 * ny) == 0); /* deterministic */
        fill_normal(x + nx, nx, &rng, 3.0f);
        ff_layer_forward(&t.l, x, y2, 2, t.ws, NULL);
        CHECK(memcmp(y1, y2, sizeof(float) * ny) == 0);
        CHECK(memcmp(y1 + ny, y2 + ny, sizeof(float) * ny) != 0);
        if (pool) {
            CHECK(t.l.n_weights == 0 && t.l.n_bias == 0);
        } else {
            CHECK(t.l.n_weights > 0 && ops->fan_in(&t.l) > 0 && ff_layer_flops(&t.l) > 0.0);
            fill_normal(y2, 2 * ny, &rng, 1.0f); /* as the loss's gradient */
            ff_layer_backward(&t.l, x, NULL, y2, 2, 0.0f, t.ws);
            double g = 0.0;
            for (size_t i = 0; i < t.l.n_weights; i++)
                g += fabs(t.l.gW[i]);
            CHECK(g > 0.0 && isfinite(g));
        }
        CHECK(guard_intact(&t));
        free(x), free(y1), free(y2), free(y3);
        tl_free(&t);
    }
}

/* the paper's nets build and run through net.c (workspace sized over layers) */
static void check_paper_net(ff_layer_kind kind)
{
    ff_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model.n_layers = 3;
    cfg.model.norm_eps = 1e-8f;
    cfg.model.layers[0] = layer_cfg(kind, 128, 10, 6);
    cfg.model.layers[1] = layer_cfg(kind, 220, 2, 1);
    cfg.model.layers[2] = layer_cfg(kind, 512, 2, 1);
    ff_rng rng;
    ff_rng_seed(&rng, 61);
    ff_net net;
    ff_err err = {0};
    const int batch = 5;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, batch, &rng, &err) == FF_OK);
    CHECK(shape_is(net.layers[2].out, 512, 2, 2));
    float *x = malloc(sizeof(float) * batch * 784);
    for (int i = 0; i < batch * 784; i++)
        x[i] = ff_rng_uniform(&rng);
    ff_net_forward(&net, x, batch);
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)batch * ff_shape_dim(net.layers[l].out);
        size_t pos = count_positive(net.out[l], n);
        CHECK(pos > n / 10 && pos < n);
    }
    double per_loc = 128.0 * 100 * 16 + 220.0 * 512 * 9 + 512.0 * 880 * 4;
    CHECK(ff_net_flops(&net) == per_loc);
    free(x);
    ff_net_free(&net);
}

static void test_paper_nets_run(void)
{
    check_paper_net(FF_LAYER_CONV);
    check_paper_net(FF_LAYER_LOCAL);
}

/* the gather-index im2col gives exactly the row-copy im2col, and the K-row im2col
 * the same values transposed */
static void test_im2col_index_matches_loops(void)
{
    struct { ff_shape in; int k, s, pad; } g[] = {
        {{1, 28, 28}, 10, 6, 0}, {{128, 4, 4}, 2, 1, 0}, {{3, 9, 7}, 3, 2, 0}, {{5, 6, 6}, 1, 1, 0},
        {{3, 9, 7}, 3, 2, 1}, {{2, 5, 6}, 5, 1, 4}, {{4, 4, 4}, 3, 1, 1}, {{3, 8, 8}, 3, 1, 2},
        {{2, 17, 18}, 3, 1, 1}, {{2, 6, 5}, 4, 3, 2}, {{3, 7, 6}, 5, 1, 2}, {{2, 5, 1}, 3, 1, 1},
        {{1, 2, 3}, 5, 1, 2}};
    for (size_t t = 0; t < sizeof g / sizeof g[0]; t++) {
        const int pad = g[t].pad;
        ff_shape in = g[t].in, out = {1, (in.h + 2 * pad - g[t].k) / g[t].s + 1,
                                      (in.w + 2 * pad - g[t].k) / g[t].s + 1};
        const int batch = 3, dim = ff_shape_dim(in);
        const size_t n = (size_t)out.h * out.w * in.c * g[t].k * g[t].k;
        float *x = malloc(sizeof(float) * (size_t)batch * dim);
        float *a = malloc(sizeof(float) * n * batch), *b = malloc(sizeof(float) * n * batch);
        int32_t *index = malloc(sizeof(int32_t) * n);
        for (int i = 0; i < batch * dim; i++)
            x[i] = (float)i * 0.25f;
        for (size_t j = 0; j < n * batch; j++)
            a[j] = b[j] = -7.0f; /* padding must be written as zeros */
        ff_im2col(x, batch, (size_t)ff_shape_dim(in), in, g[t].k, g[t].s, pad, out, a, NULL);
        ff_im2col(x, batch, (size_t)ff_shape_dim(in), in, g[t].k, g[t].s, pad, out, b, index);
        CHECK(memcmp(a, b, sizeof(float) * n * batch) == 0);
        /* sample 1's first window, column (c 0, ki 0, kj 0): row -pad, column -pad */
        CHECK(a[n] == (pad ? 0.0f : x[dim]));
        size_t zeros = 0;
        for (size_t j = 0; j < n * batch; j++)
            zeros += a[j] == 0.0f;
        CHECK(pad ? zeros > 0 : zeros == 1); /* x[0] is the only 0 of the input */
        /* the K-row layout (the conv layer's): col[r][i * P + p] = a[(i * P + p) * K + r],
         * every value written (ldc > batch * P: the columns past it stay untouched) */
        const int P = out.h * out.w, K = in.c * g[t].k * g[t].k;
        const size_t ldc = (size_t)batch * P + 5;
        float *rows = malloc(sizeof(float) * ldc * K);
        for (size_t j = 0; j < ldc * K; j++)
            rows[j] = -7.0f;
        ff_im2col_rows(x, batch, (size_t)ff_shape_dim(in), in, g[t].k, g[t].s, pad, out, rows,
                       ldc);
        int same = 1;
        for (int r = 0; r < K; r++) {
            for (int q = 0; q < batch * P; q++)
                same &= rows[(size_t)r * ldc + q] == a[(size_t)q * K + r];
            for (size_t q = (size_t)batch * P; q < ldc; q++)
                same &= rows[(size_t)r * ldc + q] == -7.0f;
        }
        CHECK(same);
        free(rows);
        free(x), free(a), free(b), free(index);
    }
}

/* naive pool: y[i][c][oy][ox] = max / mean over the k x k window at (oy s, ox s) */
static void ref_pool(const ff_layer *l, const float *x, float *y, int batch)
{
    const int k = l->kernel, s = l->stride;
    for (int i = 0; i < batch; i++)
        for (int c = 0; c < l->out.c; c++)
            for (int oy = 0; oy < l->out.h; oy++)
                for (int ox = 0; ox < l->out.w; ox++) {
                    double m = -1e300, sum = 0.0;
                    for (int ki = 0; ki < k; ki++)
                        for (int kj = 0; kj < k; kj++) {
                            double v = xat(x, l->in, i, c, oy * s + ki, ox * s + kj);
                            m = v > m ? v : m;
                            sum += v;
                        }
                    y[(size_t)i * ff_shape_dim(l->out) + (c * l->out.h + oy) * l->out.w + ox] =
                        (float)(l->pool == FF_POOL_MAX ? m : sum / (k * k));
                }
}

static void check_pool(ff_pool_kind kind, ff_shape in, int k, int s, int oh, int ow)
{
    ff_rng rng;
    ff_rng_seed(&rng, 900 + (uint64_t)k * 10 + (uint64_t)s);
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_POOL, 0, k, s);
    cfg.pool = kind;
    CHECK(ff_layer_setup(&l, &cfg, in, 0, NULL) == FF_OK);
    CHECK(shape_is(l.out, in.c, oh, ow) && l.n_weights == 0 && l.n_bias == 0);
    CHECK(ff_layer_workspace(&l, 7) == 0 && ff_layer_patch_floats(&l) == 0);
    const int batch = 3;
    const size_t nx = (size_t)batch * ff_shape_dim(in), ny = (size_t)batch * ff_shape_dim(l.out);
    float *x = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float)),
          *r = malloc(ny * sizeof(float));
    fill_normal(x, nx, &rng, 1.0f);
    for (size_t i = 0; i < ny; i++)
        y[i] = 1e30f;
    ff_layer_forward(&l, x, y, batch, NULL, NULL);
    ref_pool(&l, x, r, batch);
    CHECK(max_abs_diff(y, r, ny) < 1e-6);
    free(x);
    free(y);
    free(r);
}

/* max and average pooling against the naive reference, and one hand-computed case */
static void test_pool_matches_reference(void)
{
    check_pool(FF_POOL_MAX, (ff_shape){3, 8, 8}, 2, 2, 4, 4);
    check_pool(FF_POOL_MAX, (ff_shape){2, 17, 34}, 2, 2, 8, 17); /* blocks of 8 and a tail */
    check_pool(FF_POOL_AVG, (ff_shape){3, 8, 8}, 2, 2, 4, 4);
    check_pool(FF_POOL_MAX, (ff_shape){2, 7, 6}, 3, 2, 3, 2); /* floor */
    check_pool(FF_POOL_AVG, (ff_shape){2, 7, 6}, 3, 2, 3, 2);
    check_pool(FF_POOL_MAX, (ff_shape){4, 5, 5}, 3, 1, 3, 3); /* overlapping */
    check_pool(FF_POOL_AVG, (ff_shape){1, 4, 4}, 4, 4, 1, 1); /* global */
    const float x[16] = {1, -2, 3, 4, 5, 6, -7, 8, -1, -2, -3, -4, 0, 9, 2, 1};
    float y[4];
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_POOL, 0, 2, 2);
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 4, 4}, 0, NULL) == FF_OK);
    CHECK(l.pool == FF_POOL_MAX); /* the default kind */
    ff_layer_forward(&l, x, y, 1, NULL, NULL);
    CHECK(y[0] == 6 && y[1] == 8 && y[2] == 9 && y[3] == 2);
    l.pool = FF_POOL_AVG;
    ff_layer_forward(&l, x, y, 1, NULL, NULL);
    CHECK(y[0] == 2.5f && y[1] == 2.0f && y[2] == 1.5f && y[3] == -1.0f);
}

/* sum_o dy_o pool(relu(z))_o */
static double pooled_dot(const ff_layer *l, const float *z, const float *dy, int batch, float *x,
                         float *y)
{
    const size_t nx = (size_t)batch * ff_shape_dim(l->in), ny = (size_t)batch * ff_shape_dim(l->out);
    for (size_t i = 0; i < nx; i++)
        x[i] = z[i] > 0.0f ? z[i] : 0.0f;
    ff_layer_forward(l, x, y, batch, NULL, NULL);
    double s = 0.0;
    for (size_t o = 0; o < ny; o++)
        s += (double)dy[o] * y[o];
    return s;
}

/* model.loss_after_pool: ff_layer_pool_backward_relu is the gradient of sum_o dy_o
 * pool(relu(z))_o with respect to z (finite differences; no ties in random data) */
static void check_pool_backward(ff_pool_kind kind, ff_shape in, int k, int s)
{
    ff_rng rng;
    ff_rng_seed(&rng, 950 + (uint64_t)k * 10 + (uint64_t)s + (uint64_t)kind);
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_POOL, 0, k, s);
    cfg.pool = kind;
    CHECK(ff_layer_setup(&l, &cfg, in, 0, NULL) == FF_OK);
    const int batch = 2;
    const size_t nx = (size_t)batch * ff_shape_dim(in), ny = (size_t)batch * ff_shape_dim(l.out);
    float *z = malloc(nx * sizeof(float)), *x = malloc(nx * sizeof(float)),
          *dx = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float)),
          *dy = malloc(ny * sizeof(float));
    fill_normal(z, nx, &rng, 1.0f);
    fill_normal(dy, ny, &rng, 1.0f);
    for (size_t i = 0; i < nx; i++) /* away from the ReLU's kink and from ties */
        z[i] += z[i] > 0.0f ? 0.05f : -0.05f;
    pooled_dot(&l, z, dy, batch, x, y);
    for (size_t i = 0; i < nx; i++)
        dx[i] = NAN; /* overwritten */
    ff_layer_pool_backward_relu(&l, x, dy, dx, batch);
    const float h = 1e-3f;
    int bad = 0, nonzero = 0;
    for (size_t i = 0; i < nx; i++) {
        const float keep = z[i];
        z[i] = keep + h;
        const double fp = pooled_dot(&l, z, dy, batch, x, y);
        z[i] = keep - h;
        const double fm = pooled_dot(&l, z, dy, batch, x, y);
        z[i] = keep;
        const double want = (fp - fm) / (2.0 * h);
        bad += !(fabs(dx[i] - want) < 2e-3 * (1.0 + fabs(want)));
        nonzero += dx[i] != 0.0f;
    }
    CHECK(bad == 0);
    CHECK(nonzero > 0 && nonzero < (int)nx); /* the ReLU and (max) the unchosen positions */
    free(z), free(x), free(dx), free(y), free(dy);
}

static void test_pool_backward(void)
{
    check_pool_backward(FF_POOL_MAX, (ff_shape){3, 8, 8}, 2, 2);
    check_pool_backward(FF_POOL_MAX, (ff_shape){2, 7, 5}, 2, 2); /* the last row, column unread */
    check_pool_backward(FF_POOL_AVG, (ff_shape){3, 8, 8}, 2, 2);
    check_pool_backward(FF_POOL_MAX, (ff_shape){2, 7, 6}, 3, 2); /* floor: a row unread */
    check_pool_backward(FF_POOL_MAX, (ff_shape){2, 5, 5}, 3, 1); /* overlapping windows add */
    check_pool_backward(FF_POOL_AVG, (ff_shape){2, 5, 5}, 3, 1);
    /* ties: the first maximum in the window, as the forward pass picks it; zeros stay 0 */
    const float x[16] = {6, 6, 0, 0, 6, 1, 0, 0, 2, 0, 5, 5, 0, 1, 5, 5};
    const float dy[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    float dx[16];
    ff_layer l = {0};
    ff_layer_cfg cfg = layer_cfg(FF_LAYER_POOL, 0, 2, 2);
    CHECK(ff_layer_setup(&l, &cfg, (ff_shape){1, 4, 4}, 0, NULL) == FF_OK);
    ff_layer_pool_backward_relu(&l, x, dy, dx, 1);
    const float want[16] = {1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0};
    CHECK(memcmp(dx, want, sizeof dx) == 0); /* window 2 all zero: its 2.0 goes nowhere */
    /* wider rows: the 2x2 pass's blocks of 8 outputs and their tail */
    check_pool_backward(FF_POOL_MAX, (ff_shape){2, 16, 18}, 2, 2);
    check_pool_backward(FF_POOL_MAX, (ff_shape){2, 17, 35}, 2, 2);
    /* and bit for bit the general loop's answer (first maximum, the ReLU) on data full of
     * ties and zeros, planes 34 wide (17 outputs: 2 blocks and a tail) and 17 high */
    ff_rng rng;
    ff_rng_seed(&rng, 977);
    const ff_shape in = {3, 17, 34};
    ff_layer_setup(&l, &cfg, in, 0, NULL);
    enum { B = 2 };
    const int ih = in.h, iw = in.w, oh = l.out.h, ow = l.out.w, P = ih * iw, Q = oh * ow;
    float *xt = malloc(sizeof(float) * B * 3 * P), *dyt = malloc(sizeof(float) * B * 3 * Q),
          *got = malloc(sizeof(float) * B * 3 * P), *ref = calloc((size_t)B * 3 * P, sizeof(float));
    for (int i = 0; i < B * 3 * P; i++) { /* 0, 0.5 or 1: many equal maxima */
        const int v = (int)(ff_rng_uniform(&rng) * 5.0f) - 2;
        xt[i] = v > 0 ? 0.5f * (float)v : 0.0f;
    }
    for (int i = 0; i < B * 3 * Q; i++)
        dyt[i] = i % 7 == 0 ? -0.0f : ff_rng_normal(&rng);
    for (int pl = 0; pl < B * 3; pl++) /* the general loop, written out */
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *w = xt + (size_t)pl * P + (size_t)2 * oy * iw + 2 * ox;
                int arg = 0;
                const int off[4] = {0, 1, iw, iw + 1};
                for (int q = 1; q < 4; q++)
                    arg = w[off[q]] > w[off[arg]] ? q : arg;
                float *r = ref + (size_t)pl * P + (size_t)2 * oy * iw + 2 * ox + off[arg];
                *r += w[off[arg]] > 0.0f ? dyt[(size_t)pl * Q + (size_t)oy * ow + ox] : 0.0f;
            }
    for (int i = 0; i < B * 3 * P; i++)
        got[i] = NAN;
    ff_layer_pool_backward_relu(&l, xt, dyt, got, B);
    CHECK(memcmp(got, ref, sizeof(float) * B * 3 * P) == 0);
    free(xt), free(dyt), free(got), free(ref);
}

/* the conv layer's two paths: every conv reference check above on im2col + GEMM
 * alone (the shapes that suit the direct loops ran on them above: some did), then
 * the first layers of configs/cifar_deep.yaml (3 -> 20, and 20 -> 80 in 10 groups,
 * 3x3 with padding 1 on 32x32: the direct loops, 32 lanes) and a 12x12 map (16 lanes)
 * against their GEMM forms, batch 7 */
static void test_conv_both_paths(void)
{
    g_direct_built = 0;
    test_conv_matches_reference();
    test_padded_matches_reference();
    test_backward_matches_reference();
    test_grouped_matches_reference();
    CHECK(g_direct_built >= 8);
    g_gemm_only = 1;
    g_direct_built = 0;
    test_conv_matches_reference();
    test_padded_matches_reference();
    test_backward_matches_reference();
    test_grouped_matches_reference();
    CHECK(g_direct_built == 0);
    g_gemm_only = 0;
    const struct { ff_shape in; int out, groups; } L[] = {{{3, 32, 32}, 20, 1},
                                                          {{20, 32, 32}, 80, 10},
                                                          {{2, 12, 12}, 8, 1}}; /* 16 lanes */
    for (size_t t = 0; t < sizeof L / sizeof *L; t++) {
        ff_rng rng;
        ff_rng_seed(&rng, 60 + t);
        tlayer a, b;
        const int batch = 7;
        g_pad = 1;
        g_groups = L[t].groups;
        CHECK(tl_build(&a, FF_LAYER_CONV, L[t].in, L[t].out, 3, 1, batch, &rng) == 0);
        ff_rng_seed(&rng, 60 + t);
        CHECK(tl_build(&b, FF_LAYER_CONV, L[t].in, L[t].out, 3, 1, batch, &rng) == 0);
        g_pad = 0;
        g_groups = 1;
        CHECK(a.l.direct == 1);
        b.l.direct = 0;
        CHECK(ff_layer_patch_floats(&a.l) == 0 && ff_layer_patch_floats(&b.l) > 0);
        const size_t nx = (size_t)batch * ff_shape_dim(L[t].in),
                     ny = (size_t)batch * ff_shape_dim(a.l.out), np = a.l.n_weights + a.l.n_bias;
        float *x = malloc(nx * sizeof(float)), *d = malloc(ny * sizeof(float)),
              *ya = malloc(ny * sizeof(float)), *yb = malloc(ny * sizeof(float)),
              *pb = malloc((size_t)batch * ff_layer_patch_floats(&b.l) * sizeof(float));
        fill_normal(x, nx, &rng, 1.0f);
        fill_normal(d, ny, &rng, 1.0f);
        ff_layer_forward(&a.l, x, ya, batch, a.ws, NULL);
        ff_layer_forward(&b.l, x, yb, batch, b.ws, pb);
        double ymax = 0.0;
        for (size_t i = 0; i < ny; i++)
            ymax = fmax(ymax, fabs(yb[i]));
        CHECK(max_abs_diff(ya, yb, ny) < 1e-5 * ymax);
        CHECK(count_positive(ya, ny) > ny / 10);
        ff_layer_backward(&a.l, x, NULL, d, batch, 0.0f, a.ws);
        ff_layer_backward(&b.l, x, pb, d, batch, 0.0f, b.ws);
        double gmax = 0.0;
        for (size_t i = 0; i < np; i++)
            gmax = fmax(gmax, fabs(b.l.gW[i]));
        CHECK(max_abs_diff(a.l.gW, b.l.gW, np) < 1e-5 * gmax); /* gW and gb */
        CHECK(guard_intact(&a) && guard_intact(&b));
        free(x), free(d), free(ya), free(yb), free(pb);
        tl_free(&a);
        tl_free(&b);
    }
}

int main(void)
{
    RUN(test_im2col_index_matches_loops);
    RUN(test_conv_matches_reference);
    RUN(test_local_matches_reference);
    RUN(test_padded_matches_reference);
    RUN(test_pool_matches_reference);
    RUN(test_pool_backward);
    RUN(test_backward_matches_reference);
    RUN(test_grouped_matches_reference);
    RUN(test_grouped_is_block_diagonal);
    RUN(test_conv_both_paths);
    RUN(test_const_planes_match_im2col);
    RUN(test_conv_full_kernel_is_fc);
    RUN(test_local_with_shared_weights_is_conv);
    RUN(test_paper_shapes);
    RUN(test_every_location_initialised);
    RUN(test_conv_init_scale);
    RUN(test_geometry_errors);
    RUN(test_layer_table);
    RUN(test_huge_shapes_refused);
    RUN(test_every_kind_invariants);
    RUN(test_paper_nets_run);
    TEST_MAIN_END();
}
