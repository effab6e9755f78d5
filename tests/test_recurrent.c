/* test_recurrent.c - the recurrent net (model.recurrent, include/ff/recurrent.h):
 * finite-difference checks of one step's bottom-up, top-down and bias gradients per
 * layer (threshold and pairwise losses), the bottom-up pass, the damped synchronous step
 * and the normalisation against naive per-sample loops, the readout's iteration window
 * against a naive loop, a 1-iteration net with zero top-down weights against the
 * feed-forward net (states, goodness, loss and gradients), and the config refusals; for
 * locally connected layers (all local, and local under fc) a step against naive per-unit
 * loops over two 64-row chunks, finite-difference W, b and top-down gradients (threshold
 * and pairwise), gradients over chunks equal to their parts' sum, 1 iteration with zero
 * top-down weights equal to the feed-forward local net (and the top-down layout and
 * scale), and the top-down geometry refusals with file:line:col. */
#include <stdlib.h>
#include <string.h>

#include "ff/config.h"
#include "ff/net.h"
#include "ff/objective.h"
#include "ff/recurrent.h"
#include "ff/rng.h"
#include "test.h"

enum { IN = 7, ROWS = 40 };
static const int UNITS[3] = {6, 5, 4};

static ff_config rec_config(int n_layers, int iterations, float damping, ff_loss_kind loss)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.model.label_embedding = FF_EMBED_NONE;
    cfg.model.n_layers = n_layers;
    for (int l = 0; l < n_layers; l++)
        cfg.model.layers[l] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = UNITS[l]};
    cfg.model.recurrent.iterations = iterations;
    cfg.model.recurrent.damping = damping;
    cfg.model.recurrent.eval_first = 1;
    cfg.model.recurrent.eval_last = iterations;
    cfg.train.loss = loss;
    cfg.train.passes = FF_PASS_JOINT;
    return cfg;
}

/* a net and its recurrent states for cfg, every parameter random (biases too) */
static void build(const ff_config *cfg, ff_net *net, ff_recurrent *r, uint64_t seed)
{
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    ff_err err = {0};
    CHECK(ff_net_build(net, cfg, (ff_shape){IN, 1, 1}, ROWS, &rng, &err) == FF_OK);
    CHECK(ff_recurrent_init(r, net, cfg, &err) == FF_OK);
    for (int l = 0; l < net->n_layers; l++)
        for (size_t i = 0; i < net->layers[l].n_bias; i++)
            net->layers[l].b[i] = 0.3f * ff_rng_normal(&rng);
}

static void fill(float *p, size_t n, ff_rng *rng, int nonneg)
{
    for (size_t i = 0; i < n; i++) {
        const float v = ff_rng_normal(rng);
        p[i] = nonneg ? (v > 0.0f ? v : 0.0f) : v;
    }
}

static double sq(double v) { return v * v; }

/* the units of layer l's output */
static int dim_of(const ff_net *net, int l) { return ff_shape_dim(net->layers[l].out); }

/* naive n(v) of one vector */
static void naive_norm(const float *v, int d, float eps, double *out)
{
    double m = 0.0;
    for (int j = 0; j < d; j++)
        m += sq(v[j]);
    m = m / d;
    for (int j = 0; j < d; j++)
        out[j] = v[j] / sqrt(m + eps);
}

/* ---- the step and the bottom-up pass against per-sample scalar loops ---- */

static void test_step_matches_naive_loop(void)
{
    const ff_config cfg = rec_config(3, 2, 0.3f, FF_LOSS_THRESHOLD);
    ff_net net;
    ff_recurrent r;
    build(&cfg, &net, &r, 11);
    ff_rng rng;
    ff_rng_seed(&rng, 12);
    enum { N = 5 };
    float x[N * IN];
    fill(x, N * IN, &rng, 0);
    uint8_t lab[N] = {0, 3, 9, 3, 5};
    ff_recurrent_clamp(&r, lab, N);
    ff_recurrent_bottom_up(&r, &net, x, N);
    const float eps = net.norm_eps;
    /* the bottom-up pass: relu(W n(below) + b), no top-down */
    double below[N][8], prev[3][N][8];
    for (int i = 0; i < N; i++) {
        naive_norm(x + i * IN, IN, eps, below[i]);
        int din = IN;
        for (int l = 0; l < 3; l++) {
            const ff_layer *L = &net.layers[l];
            double next[8];
            for (int j = 0; j < UNITS[l]; j++) {
                double a = L->b[j];
                for (int q = 0; q < din; q++)
                    a += (double)L->W[j * din + q] * below[i][q];
                prev[l][i][j] = a > 0 ? a : 0;
                CHECK_NEAR(r.h[l][i * UNITS[l] + j], prev[l][i][j], 1e-5);
            }
            float tmp[8];
            for (int j = 0; j < UNITS[l]; j++)
                tmp[j] = (float)prev[l][i][j];
            naive_norm(tmp, UNITS[l], eps, next);
            memcpy(below[i], next, sizeof next);
            din = UNITS[l];
        }
    }
    /* one step from states of our own (not the bottom-up pass's), damping 0.3 */
    for (int l = 0; l < 3; l++)
        fill(r.h[l], (size_t)N * UNITS[l], &rng, 1);
    float h0[3][N * 8];
    for (int l = 0; l < 3; l++)
        memcpy(h0[l], r.h[l], sizeof(float) * N * UNITS[l]);
    ff_recurrent_step(&r, &net, N);
    for (int i = 0; i < N; i++)
        for (int l = 0; l < 3; l++) {
            const ff_layer *L = &net.layers[l];
            double bn[8], an[10];
            int din = l ? UNITS[l - 1] : IN, dab = l < 2 ? UNITS[l + 1] : 10;
            if (l)
                naive_norm(h0[l - 1] + i * din, din, eps, bn);
            else
                naive_norm(x + i * IN, IN, eps, bn);
            if (l < 2) {
                naive_norm(h0[l + 1] + i * dab, dab, eps, an);
            } else { /* the clamped one-hot, normalised: sqrt(10) at the label */
                for (int k = 0; k < 10; k++)
                    an[k] = k == lab[i] ? sqrt(10.0) : 0.0;
            }
            CHECK(L->td_dim == dab);
            for (int j = 0; j < UNITS[l]; j++) {
                double a = L->b[j];
                for (int q = 0; q < din; q++)
                    a += (double)L->W[j * din + q] * bn[q];
                for (int q = 0; q < dab; q++)
                    a += (double)L->Wtd[j * dab + q] * an[q];
                const double y = a > 0 ? a : 0;
                const double h = 0.3 * h0[l][i * UNITS[l] + j] + 0.7 * y;
                CHECK_NEAR(r.y[l][i * UNITS[l] + j], y, 1e-5);
                CHECK_NEAR(r.h[l][i * UNITS[l] + j], h, 1e-5);
            }
        }
    /* the neutral label: n(0.1, ..., 0.1) = all ones */
    ff_recurrent_clamp(&r, NULL, 1);
    for (int k = 0; k < 10; k++)
        CHECK_NEAR(r.c[k], 1.0, 1e-6);
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

/* ---- finite differences of one step's gradients, per layer ---- */

#define FD_ATOL 2e-3
#define FD_RTOL 3e-2

/* layer l's loss after the bottom-up pass of x and one step of `rows` rows from the saved
 * states h0 (the step takes layer 0's bottom-up term from that pass, with the parameters
 * as they are now); mask given: *mask_changed set if a ReLU of layer l flipped */
static double step_loss(ff_recurrent *r, ff_net *net, const ff_objective *obj, const float *x,
                        float *h0[3], int l, int npos, int nneg, float scale, int *mask_changed,
                        const unsigned char *mask)
{
    const int rows = npos + nneg, d = dim_of(net, l);
    ff_recurrent_bottom_up(r, net, x, rows);
    for (int k = 0; k < net->n_layers; k++)
        memcpy(r->h[k], h0[k], sizeof(float) * rows * dim_of(net, k));
    ff_recurrent_step(r, net, rows);
    for (int q = 0; mask && q < rows * d; q++)
        *mask_changed |= (r->y[l][q] > 0.0f) != mask[q];
    ff_layer_loss res = {0};
    ff_objective_layer_loss(obj, r->h[l], NULL, npos, nneg, d, net->layers[l].threshold, scale,
                            NULL, r->g, r->dpre, &res);
    return (double)res.loss_pos + res.loss_neg;
}

/* how much of each parameter block a gradient check covers: every `stride`-th entry; at
 * least n / checked_div of the block away from a ReLU kink; more than n / nonzero_div
 * (nonzero_div 0: more than none) analytic gradients not trivially 0 */
typedef struct fd_plan {
    int stride, checked_div, nonzero_div;
} fd_plan;

/* finite differences of every W, b and Wtd gradient of one step of the 3-layer net (built
 * from cfg, its recurrent states r) against ff_recurrent_step_grads, per layer; inputs
 * of xd floats an image from data_seed; frees net and r */
static void check_step_gradients_of(const ff_config *cfg, ff_net *net, ff_recurrent *r,
                                    int xd, uint64_t data_seed, fd_plan plan, const char *what)
{
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, cfg, NULL) == FF_OK);
    for (int l = 0; l < 3; l++) /* thresholds about E[g]: the sigmoids not saturated */
        net->layers[l].threshold = 0.5f * dim_of(net, l);
    ff_rng rng;
    ff_rng_seed(&rng, data_seed);
    enum { NP = 3, NN = 3, RW = NP + NN };
    float *x = malloc(sizeof(float) * RW * (size_t)xd), *h0[3];
    fill(x, (size_t)RW * xd, &rng, 0);
    uint8_t lab[RW] = {1, 2, 3, 4, 5, 6};
    ff_recurrent_clamp(r, lab, RW);
    ff_recurrent_bottom_up(r, net, x, RW); /* sets x0 */
    int max_d = 0;
    for (int l = 0; l < 3; l++) {
        h0[l] = malloc(sizeof(float) * RW * dim_of(net, l));
        fill(h0[l], (size_t)RW * dim_of(net, l), &rng, 1);
        memcpy(r->h[l], h0[l], sizeof(float) * RW * dim_of(net, l));
        max_d = dim_of(net, l) > max_d ? dim_of(net, l) : max_d;
    }
    const float scale = 1.0f / NP;
    ff_recurrent_step(r, net, RW);
    ff_layer_loss res[3];
    ff_recurrent_step_grads(r, net, &obj, NP, NN, scale, 0.0f, res);
    float *an = malloc(sizeof(float) * net->n_params);
    memcpy(an, net->grads, sizeof(float) * net->n_params);
    unsigned char *mask = malloc((size_t)RW * max_d);
    for (int l = 0; l < 3; l++) {
        ff_layer *L = &net->layers[l];
        for (int q = 0; q < RW * dim_of(net, l); q++)
            mask[q] = r->y[l][q] > 0.0f;
        const struct {
            const char *what;
            float *p;
            size_t n, off;
        } parts[3] = {
            {"W", L->W, L->n_weights, L->param_off},
            {"b", L->b, L->n_bias, L->param_off + L->n_weights},
            {"Wtd", L->Wtd, L->n_topdown, L->param_off + L->n_weights + L->n_bias},
        };
        for (int k = 0; k < 3; k++) {
            int checked = 0, failed = 0, nonzero = 0;
            for (size_t i = 0; i < parts[k].n; i += (size_t)plan.stride) {
                const float keep = parts[k].p[i], h = 1e-2f;
                int changed = 0;
                parts[k].p[i] = keep + h;
                const double lp = step_loss(r, net, &obj, x, h0, l, NP, NN, scale, &changed, mask);
                parts[k].p[i] = keep - h;
                const double lm = step_loss(r, net, &obj, x, h0, l, NP, NN, scale, &changed, mask);
                parts[k].p[i] = keep;
                if (changed) /* a ReLU kink inside the difference */
                    continue;
                const double fd = (lp - lm) / (2.0 * h), a = an[parts[k].off + i];
                checked++;
                nonzero += fabs(a) > 1e-4;
                if (fabs(a - fd) > FD_ATOL + FD_RTOL * fmax(fabs(a), fabs(fd)) && failed++ < 3)
                    fprintf(stderr, "  %slayer %d %s[%zu]: analytic %.6g, fd %.6g\n", what, l,
                            parts[k].what, i, a, fd);
            }
            CHECK(failed == 0);
            CHECK(checked >= (int)parts[k].n / plan.checked_div); /* most away from a kink */
            CHECK(nonzero > (plan.nonzero_div ? (int)parts[k].n / plan.nonzero_div : 0));
        }
    }
    /* the loss the step reported is the loss the finite differences differentiate */
    for (int l = 0; l < 3; l++)
        CHECK_NEAR(res[l].loss_pos + res[l].loss_neg,
                   step_loss(r, net, &obj, x, h0, l, NP, NN, scale, &(int){0}, NULL), 1e-5);
    free(an);
    free(mask);
    free(x);
    for (int l = 0; l < 3; l++)
        free(h0[l]);
    ff_recurrent_free(r);
    ff_net_free(net);
}

/* the fc net: every entry, at least half away from a kink */
static void check_step_gradients(ff_loss_kind loss)
{
    const ff_config cfg = rec_config(3, 1, 0.3f, loss);
    ff_net net;
    ff_recurrent r;
    build(&cfg, &net, &r, 21 + loss);
    check_step_gradients_of(&cfg, &net, &r, IN, 22, (fd_plan){1, 2, 0}, "");
}

static void test_step_gradients_threshold(void) { check_step_gradients(FF_LOSS_THRESHOLD); }
static void test_step_gradients_pairwise(void) { check_step_gradients(FF_LOSS_PAIRWISE); }

/* ff_recurrent_ff_grads over T steps is the mean of the steps' gradients */
static void test_pass_is_mean_over_steps(void)
{
    enum { T = 3, NP = 4, NN = 4, RW = NP + NN };
    const ff_config cfg = rec_config(2, T, 0.3f, FF_LOSS_THRESHOLD);
    ff_net net;
    ff_recurrent r;
    build(&cfg, &net, &r, 31);
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, &cfg, NULL) == FF_OK);
    ff_rng rng;
    ff_rng_seed(&rng, 32);
    float x[RW * IN];
    fill(x, RW * IN, &rng, 0);
    uint8_t top[RW] = {0, 1, 2, 3, 4, 5, 6, 7};
    static ff_layer_loss iters[FF_MAX_ITERS + 1][FF_MAX_LAYERS];
    ff_layer_loss out[FF_MAX_LAYERS];
    ff_recurrent_ff_grads(&r, &net, &obj, x, top, NP, NN, 0.5f, iters, out);
    float *whole = malloc(sizeof(float) * net.n_params), *sum = calloc(net.n_params, sizeof(float));
    memcpy(whole, net.grads, sizeof(float) * net.n_params);
    /* by hand: the bottom-up pass, then each step's gradient, averaged */
    ff_recurrent_clamp(&r, top, RW);
    ff_recurrent_bottom_up(&r, &net, x, RW);
    double loss = 0.0, out_loss = 0.0;
    for (int t = 1; t <= T; t++) {
        ff_layer_loss res[FF_MAX_LAYERS];
        ff_recurrent_step(&r, &net, RW);
        ff_recurrent_step_grads(&r, &net, &obj, NP, NN, 0.5f, 0.0f, res);
        for (size_t i = 0; i < net.n_params; i++)
            sum[i] += net.grads[i] / T;
        for (int l = 0; l < 2; l++) {
            loss += (res[l].loss_pos + res[l].loss_neg) / T;
            CHECK_NEAR(iters[t][l].g_pos, res[l].g_pos, 1e-4);
            CHECK_NEAR(iters[t][l].g_neg, res[l].g_neg, 1e-4);
        }
    }
    for (int l = 0; l < 2; l++)
        out_loss += out[l].loss_pos + out[l].loss_neg;
    CHECK_NEAR(out_loss, loss, 1e-5);
    double worst = 0.0;
    for (size_t i = 0; i < net.n_params; i++)
        worst = fmax(worst, fabs(whole[i] - sum[i]) / (1e-6 + fabs(sum[i])));
    CHECK(worst < 1e-4);
    free(whole);
    free(sum);
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

/* ---- the readout's iteration window against a naive loop ---- */

static void test_readout_window(void)
{
    enum { T = 6, M = 3 };
    ff_config cfg = rec_config(3, T, 0.3f, FF_LOSS_THRESHOLD);
    cfg.model.recurrent.eval_first = 3;
    cfg.model.recurrent.eval_last = 5;
    cfg.eval.layers[0] = 1, cfg.eval.layers[1] = 2, cfg.eval.n_layers = 2; /* not layer 0 */
    ff_net net;
    ff_recurrent r;
    build(&cfg, &net, &r, 41);
    CHECK(r.eval_first == 3 && r.eval_last == 5);
    ff_rng rng;
    ff_rng_seed(&rng, 42);
    float x[M * IN], scores[M * 10], layers[3 * M * 10], sums[10][M * 10];
    fill(x, M * IN, &rng, 0);
    ff_recurrent_scores(&r, &net, x, M, 0, scores, layers);
    /* naive: each label on its own, goodness after every step */
    for (int k = 0; k < 10; k++) {
        uint8_t lab[M] = {(uint8_t)k, (uint8_t)k, (uint8_t)k};
        ff_recurrent_clamp(&r, lab, M);
        ff_recurrent_bottom_up(&r, &net, x, M);
        double win[M] = {0}, lay[3][M] = {{0}};
        for (int t = 1; t <= T; t++) {
            ff_recurrent_step(&r, &net, M);
            for (int i = 0; i < M; i++) {
                double all = 0.0;
                for (int l = 0; l < 3; l++) {
                    double g = 0.0;
                    for (int j = 0; j < UNITS[l]; j++)
                        g += sq(r.h[l][i * UNITS[l] + j]);
                    if (l > 0)
                        all += g;
                    if (t >= 3 && t <= 5)
                        lay[l][i] += g / 3.0;
                }
                if (t >= 3 && t <= 5)
                    win[i] += all / 3.0;
                sums[t][i * 10 + k] = (float)all; /* (t < 10) each step's sum */
            }
        }
        for (int i = 0; i < M; i++) {
            CHECK_NEAR(scores[i * 10 + k], win[i], 1e-4 * (1 + fabs(win[i])));
            for (int l = 0; l < 3; l++)
                CHECK_NEAR(layers[(l * M + i) * 10 + k], lay[l][i], 1e-4 * (1 + lay[l][i]));
        }
    }
    /* the window matters: step 1 alone differs from the mean over steps 3..5 */
    ff_recurrent r1 = r;
    r1.eval_first = r1.eval_last = 1;
    float s1[M * 10];
    ff_recurrent_scores(&r1, &net, x, M, 0, s1, NULL);
    double diff = 0.0;
    for (int q = 0; q < M * 10; q++) {
        CHECK_NEAR(s1[q], sums[1][q], 1e-4 * (1 + fabs(sums[1][q])));
        diff += fabs(s1[q] - scores[q]);
    }
    CHECK(diff > 1e-3);
    /* the error counts argmaxes: with these labels it is what the scores say */
    uint8_t truth[M] = {0, 4, 7};
    int wrong = 0;
    for (int i = 0; i < M; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            best = scores[i * 10 + k] > scores[i * 10 + best] ? k : best;
        wrong += best != truth[i];
    }
    int64_t conf[100] = {0};
    double lerr[FF_MAX_LAYERS];
    CHECK_NEAR(ff_recurrent_error(&r, &net, x, truth, M, lerr, conf), (double)wrong / M, 1e-12);
    int64_t total = 0;
    for (int q = 0; q < 100; q++)
        total += conf[q];
    CHECK(total == M);
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

/* ---- one iteration, zero top-down weights: the feed-forward net ---- */

/* A 1-iteration recurrent net rnet (top-down weights 0, damping d) against the
 * feed-forward net fnet with its W and b on 4 positive and 4 negative rows x: the same
 * states, losses and goodness, gradients times 1 - d, and every label's readout score
 * the feed-forward goodness; frees r, rnet and fnet */
static void check_matches_feed_forward(ff_recurrent *r, ff_net *rnet, ff_net *fnet,
                                       const ff_config *rc, const float *x, float d)
{
    enum { NP = 4, NN = 4, RW = NP + NN };
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, rc, NULL) == FF_OK);
    uint8_t top[RW] = {3, 1, 4, 1, 5, 9, 2, 6};
    static ff_layer_loss iters[FF_MAX_ITERS + 1][FF_MAX_LAYERS];
    ff_layer_loss rout[FF_MAX_LAYERS], fout[FF_MAX_LAYERS];
    ff_recurrent_ff_grads(r, rnet, &obj, x, top, NP, NN, 1.0f / NP, iters, rout);
    ff_net_ff_grads(fnet, &obj, x, NULL, NP, NN, 1.0f / NP, fout);
    for (int l = 0; l < rnet->n_layers; l++) {
        ff_layer *A = &rnet->layers[l], *B = &fnet->layers[l];
        for (int q = 0; q < RW * ff_shape_dim(A->out); q++) /* the state stays the FF activity */
            CHECK_NEAR(r->h[l][q], fnet->out[l][q], 1e-6 * (1 + fabs(fnet->out[l][q])));
        CHECK_NEAR(rout[l].loss_pos, fout[l].loss_pos, 1e-5);
        CHECK_NEAR(rout[l].loss_neg, fout[l].loss_neg, 1e-5);
        CHECK_NEAR(rout[l].g_pos, fout[l].g_pos, 1e-4);
        CHECK_NEAR(iters[0][l].g_neg, fout[l].g_neg, 1e-4);
        /* d h / d pre = 1 - damping: the FF gradient times that */
        double gw = 0.0;
        for (size_t i = 0; i < A->n_weights; i++) {
            CHECK_NEAR(A->gW[i], (1 - d) * B->gW[i], 1e-6 + 1e-4 * fabs(B->gW[i]));
            gw += fabs(B->gW[i]);
        }
        CHECK(gw > 1e-3);
        for (size_t i = 0; i < A->n_bias; i++)
            CHECK_NEAR(A->gb[i], (1 - d) * B->gb[i], 1e-6 + 1e-4 * fabs(B->gb[i]));
    }
    /* the readout: every label scores the FF net's goodness of the evaluated layers */
    float scores[RW * 10], fsum[RW];
    ff_net_forward_goodness(fnet, x, RW, 0, fsum);
    ff_recurrent_scores(r, rnet, x, RW, 0, scores, NULL);
    for (int i = 0; i < RW; i++)
        for (int k = 0; k < 10; k++)
            CHECK_NEAR(scores[i * 10 + k], fsum[i], 1e-5 * (1 + fsum[i]));
    ff_recurrent_free(r);
    ff_net_free(rnet);
    ff_net_free(fnet);
}

static void test_one_iteration_is_feed_forward(void)
{
    for (int damped = 0; damped < 2; damped++) {
        const float d = damped ? 0.3f : 0.0f;
        ff_config rc = rec_config(3, 1, d, FF_LOSS_THRESHOLD);
        rc.eval.layers[0] = 1, rc.eval.layers[1] = 2, rc.eval.n_layers = 2;
        ff_config fc = rc;
        fc.model.recurrent.iterations = 0;
        ff_net rnet, fnet;
        ff_recurrent r;
        build(&rc, &rnet, &r, 51);
        ff_rng rng;
        ff_rng_seed(&rng, 52);
        ff_err err = {0};
        CHECK(ff_net_build(&fnet, &fc, (ff_shape){IN, 1, 1}, ROWS, &rng, &err) == FF_OK);
        CHECK(fnet.n_params < rnet.n_params);
        for (int l = 0; l < 3; l++) { /* the same W and b; top-down 0 */
            ff_layer *A = &rnet.layers[l], *B = &fnet.layers[l];
            memcpy(B->W, A->W, sizeof(float) * A->n_weights);
            memcpy(B->b, A->b, sizeof(float) * A->n_bias);
            memset(A->Wtd, 0, sizeof(float) * A->n_topdown);
            A->threshold = B->threshold = 0.5f * UNITS[l];
        }
        float x[8 * IN];
        fill(x, 8 * IN, &rng, 0);
        check_matches_feed_forward(&r, &rnet, &fnet, &rc, x, d);
    }
}

/* ff_net_forward on a recurrent net (eval, predict, the head, the logs all call it) runs
 * the recurrent forward through the net's hook: the states at the readout's iteration,
 * not the plain layer stack */
static void test_net_forward_is_recurrent(void)
{
    enum { RW = 6 };
    ff_config cfg = rec_config(3, 4, 0.3f, FF_LOSS_THRESHOLD);
    cfg.model.recurrent.readout_iteration = 3;
    ff_net net;
    ff_recurrent r;
    build(&cfg, &net, &r, 61);
    ff_rng rng;
    ff_rng_seed(&rng, 62);
    float x[RW * IN];
    fill(x, RW * IN, &rng, 0);
    static float hook[RW * 64], stack[RW * 64];
    enum { top = 2 }; /* the 3-layer net's top layer */
    const int d = UNITS[top];
    CHECK(net.n_layers == 3);
    ff_net_forward(&net, x, RW);
    memcpy(hook, net.out[top], sizeof(float) * RW * d);
    ff_net_forward_to(&net, x, RW, net.n_layers); /* the layer stack alone */
    memcpy(stack, net.out[top], sizeof(float) * RW * d);
    ff_recurrent_forward(&r, &net, x, RW); /* called directly */
    double differs = 0.0;
    for (int q = 0; q < RW * d; q++) {
        CHECK(hook[q] == net.out[top][q]);
        differs += fabs(hook[q] - stack[q]);
    }
    CHECK(differs > 1e-3); /* the top-down weights changed the states */
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

/* ---- the flat buffer: top-down weights in each layer's slice after b ---- */

static void test_layout(void)
{
    const ff_config cfg = rec_config(3, 2, 0.3f, FF_LOSS_THRESHOLD);
    ff_net net;
    ff_recurrent r;
    build(&cfg, &net, &r, 61);
    size_t off = 0;
    for (int l = 0; l < 3; l++) {
        const ff_layer *L = &net.layers[l];
        CHECK(L->param_off == off);
        CHECK(L->n_topdown == (size_t)UNITS[l] * (l < 2 ? UNITS[l + 1] : 10));
        CHECK(L->Wtd == net.params + off + L->n_weights + L->n_bias);
        CHECK(L->gWtd == net.grads + off + L->n_weights + L->n_bias);
        off += ff_layer_n_params(L);
        double m = 0.0; /* randn / sqrt(td_dim): mean square about 1 / td_dim */
        for (size_t i = 0; i < L->n_topdown; i++)
            m += sq(L->Wtd[i]);
        CHECK(m / L->n_topdown > 0.2 / L->td_dim && m / L->n_topdown < 5.0 / L->td_dim);
        CHECK(net.evaluated[l]); /* default readout: every hidden layer */
    }
    CHECK(net.n_params == off);
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

/* ---- what the config refuses, each with file:line:col ---- */

static void test_config_refusals(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"model: {label_embedding: none, layers: [{type: conv, channels: 4, kernel: 3}],\n"
         "  recurrent: {iterations: 2, eval_first: 1, eval_last: 2}}",
         "inline:1:41: model.layers.0: model.recurrent supports fc and local layers only, got conv"},
        {"model: {layers: [{type: fc, units: 8}], recurrent: {iterations: 8}}",
         "inline:1:65: model.recurrent clamps the label at the top of the net: it needs "
         "model.label_embedding none"},
        {"mode: unsupervised_backbone\nmodel: {layers: [{type: fc, units: 8}], recurrent: "
         "{iterations: 8}}",
         "inline:1:7: model.recurrent needs mode supervised"},
        {"model: {label_embedding: none, layers: [{type: fc, units: 8}], recurrent: {iterations: "
         "4}}",
         "inline:1:88: model.recurrent: the readout's iterations eval_first 3 to eval_last 5 "
         "must lie within the 4 iterations"},
        {"model: {label_embedding: none, layers: [{type: fc, units: 8}], recurrent: {iterations: "
         "8, readout_iteration: 9}}\n",
         "inline:1:110: model.recurrent.readout_iteration 9 is past the 8 iterations"},
        {"model: {label_embedding: none, layers: [{type: fc, units: 8}], recurrent: {iterations: "
         "8}}\ntrain: {negatives: hard, hard_candidates: 3}\neval: {softmax: true}",
         "inline:2:43: model.recurrent cannot be used with train.hard_candidates"},
        {"model: {label_embedding: none, layers: [{type: fc, units: 8}], recurrent: {iterations: "
         "8}}\nparallel: {mode: pipeline}",
         "inline:2:18: model.recurrent cannot be used with parallel.mode pipeline"},
        {"model: {label_embedding: none, layers: [{type: fc, units: 8}], recurrent: {iterations: "
         "8}}\ntrain: {loss: competition, logit_scale: 10}",
         "inline:2:15: model.recurrent cannot be used with train.loss competition"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ff_config cfg;
        ff_err err = {0};
        const int rc = ff_config_parse(&cfg, cases[i].yaml, strlen(cases[i].yaml), "inline", &err);
        CHECK(rc == FF_ERR_USAGE);
        if (strncmp(err.msg, cases[i].want, strlen(cases[i].want)) != 0) {
            fprintf(stderr, "  case %zu: got '%s'\n", i, err.msg);
            CHECK(0);
        }
    }
    /* accepted, and the resolved YAML reads back the same */
    const char *ok = "model: {label_embedding: none, layers: [{type: fc, units: 8}],\n"
                     "  recurrent: {iterations: 6, damping: 0.25, eval_first: 2, eval_last: 4}}";
    ff_config a, b;
    ff_err err = {0};
    CHECK(ff_config_parse(&a, ok, strlen(ok), "inline", &err) == FF_OK);
    CHECK(a.model.recurrent.iterations == 6 && a.model.recurrent.damping == 0.25f &&
          a.model.recurrent.eval_first == 2 && a.model.recurrent.eval_last == 4);
    char yaml[16384];
    const size_t n = ff_config_to_yaml(&a, yaml, sizeof yaml);
    CHECK(n < sizeof yaml);
    CHECK(ff_config_parse(&b, yaml, n, "yaml", &err) == FF_OK);
    CHECK(memcmp(&a.model.recurrent, &b.model.recurrent, sizeof a.model.recurrent) == 0);
    CHECK(ff_config_set(&a, "model.recurrent.iterations=5", &err) == FF_OK);
    CHECK(a.model.recurrent.iterations == 5);
    CHECK(ff_config_validate(&a, &err) == FF_OK);
    CHECK(ff_config_set(&a, "model.recurrent.iterations=2", &err) == FF_OK);
    CHECK(ff_config_validate(&a, &err) == FF_ERR_USAGE); /* eval_last 4 > 2 */
}

/* ---- locally connected recurrent layers (model.layers type local) ---- */

enum { LROWS = 150 }; /* more than a 64-row im2col chunk */
static const ff_shape LIN = {2, 6, 6};
static const int LCH[3] = {2, 3, 2};

/* a net of local layers (kernel k, padding (k - 1) / 2: 6x6 grids) on a 2x6x6 input;
 * mixed: the top layer fc (5 units), so layer 1 takes a dense top-down map from it */
static ff_config local_config_k(int iterations, float damping, ff_loss_kind loss, int mixed,
                                int k)
{
    ff_config cfg = rec_config(3, iterations, damping, loss);
    for (int l = 0; l < 3; l++)
        cfg.model.layers[l] = (ff_layer_cfg){.kind = FF_LAYER_LOCAL, .channels = LCH[l],
                                             .kernel = k, .stride = 1, .padding = (k - 1) / 2};
    if (mixed)
        cfg.model.layers[2] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 5};
    return cfg;
}

/* local_config_k with kernel 3 */
static ff_config local_config(int iterations, float damping, ff_loss_kind loss, int mixed)
{
    return local_config_k(iterations, damping, loss, mixed, 3);
}

static void build_local(const ff_config *cfg, ff_net *net, ff_recurrent *r, uint64_t seed)
{
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    ff_err err = {0};
    CHECK(ff_net_build(net, cfg, LIN, LROWS, &rng, &err) == FF_OK);
    CHECK(ff_recurrent_init(r, net, cfg, &err) == FF_OK);
    for (int l = 0; l < net->n_layers; l++)
        for (size_t i = 0; i < net->layers[l].n_bias; i++)
            net->layers[l].b[i] = 0.3f * ff_rng_normal(&rng);
}


/* naive: the contribution of input v (shape s, normalised already) through a locally
 * connected map (kernel k, stride 1 here or the layer's, padding pad) with weights W
 * [P][C, s.c * k * k] to output unit (c, oy, ox) of an out-shaped map */
static double naive_local(const double *v, ff_shape s, ff_shape out, int k, int stride, int pad,
                          const float *W, int c, int oy, int ox)
{
    const int K = s.c * k * k, p = oy * out.w + ox;
    const float *w = W + ((size_t)p * out.c + c) * K;
    double a = 0.0;
    for (int ci = 0; ci < s.c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const int y = oy * stride + ki - pad, x = ox * stride + kj - pad;
                if (y >= 0 && y < s.h && x >= 0 && x < s.w)
                    a += (double)w[(ci * k + ki) * k + kj] * v[(ci * s.h + y) * s.w + x];
            }
    return a;
}

/* naive: pre-activation of unit j of layer l for one row from the normalised input below
 * bn and what comes down an (layer l + 1 normalised, or the clamped label) */
static double naive_pre(const ff_net *net, int l, const double *bn, const double *an, int j)
{
    const ff_layer *L = &net->layers[l];
    double a = L->b[j];
    const int din = ff_shape_dim(L->in), P = L->out.h * L->out.w;
    const int c = j / P, oy = (j % P) / L->out.w, ox = j % L->out.w;
    if (L->kind == FF_LAYER_LOCAL)
        a += naive_local(bn, L->in, L->out, L->kernel, L->stride, L->pad, L->W, c, oy, ox);
    else
        for (int q = 0; q < din; q++)
            a += (double)L->W[(size_t)j * din + q] * bn[q];
    if (L->td_local)
        a += naive_local(an, net->layers[l + 1].out, L->out, L->kernel, 1, L->td_pad, L->Wtd, c,
                         oy, ox);
    else
        for (int q = 0; q < L->td_dim; q++)
            a += (double)L->Wtd[(size_t)j * L->td_dim + q] * an[q];
    return a;
}

/* one synchronous step of a local (or mixed) net of kernel k on N rows (two im2col chunks)
 * from random states against naive per-unit loops */
static void check_local_step_naive(int mixed, int k)
{
    enum { N = 70 };
    const ff_config cfg = local_config_k(2, 0.3f, FF_LOSS_THRESHOLD, mixed, k);
    ff_net net;
    ff_recurrent r;
    build_local(&cfg, &net, &r, 71 + mixed);
    CHECK(net.layers[0].td_local && net.layers[1].td_local == !mixed && !net.layers[2].td_local);
    ff_rng rng;
    ff_rng_seed(&rng, 72);
    const int xd = ff_shape_dim(LIN);
    float *x = malloc(sizeof(float) * N * xd), *h0[3];
    fill(x, (size_t)N * xd, &rng, 0);
    uint8_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)(i * 7 % 10);
    ff_recurrent_clamp(&r, lab, N);
    ff_recurrent_bottom_up(&r, &net, x, N);
    for (int l = 0; l < 3; l++) {
        h0[l] = malloc(sizeof(float) * N * dim_of(&net, l));
        fill(h0[l], (size_t)N * dim_of(&net, l), &rng, 1);
        memcpy(r.h[l], h0[l], sizeof(float) * N * dim_of(&net, l));
    }
    ff_recurrent_step(&r, &net, N);
    double bn[128], an[128], worst = 0.0;
    int active = 0;
    for (int i = 0; i < N; i++)
        for (int l = 0; l < 3; l++) {
            const int d = dim_of(&net, l), din = ff_shape_dim(net.layers[l].in);
            naive_norm(l ? h0[l - 1] + (size_t)i * din : x + (size_t)i * xd, din, net.norm_eps, bn);
            if (l < 2)
                naive_norm(h0[l + 1] + (size_t)i * net.layers[l].td_dim, net.layers[l].td_dim,
                           net.norm_eps, an);
            for (int q = 0; l == 2 && q < 10; q++)
                an[q] = q == lab[i] ? sqrt(10.0) : 0.0;
            for (int j = 0; j < d; j++) {
                const double a = naive_pre(&net, l, bn, an, j), y = a > 0 ? a : 0;
                const double h = 0.3 * h0[l][(size_t)i * d + j] + 0.7 * y;
                worst = fmax(worst, fabs(r.y[l][(size_t)i * d + j] - y) / (1 + fabs(y)));
                worst = fmax(worst, fabs(r.h[l][(size_t)i * d + j] - h) / (1 + fabs(h)));
                active += y > 0;
            }
        }
    CHECK(worst < 1e-5);
    CHECK(active > N * 50); /* most units on: the pre-activations were compared, not zeros */
    free(x);
    for (int l = 0; l < 3; l++)
        free(h0[l]);
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

static void test_local_step_matches_naive_loop(void)
{
    check_local_step_naive(0, 3);
    check_local_step_naive(1, 3);
    check_local_step_naive(0, 9); /* windows of 9 or more: im2col copies rows, no gather */
}

/* the same for a local (or mixed) net: every other entry (seconds), a quarter away from a
 * kink, more than a twentieth not trivially 0 */
static void check_local_step_gradients(ff_loss_kind loss, int mixed)
{
    const ff_config cfg = local_config(1, 0.3f, loss, mixed);
    ff_net net;
    ff_recurrent r;
    build_local(&cfg, &net, &r, 81 + loss + 2 * mixed);
    check_step_gradients_of(&cfg, &net, &r, ff_shape_dim(LIN), 82, (fd_plan){2, 4, 20},
                            mixed ? "local (mixed) " : "local ");
}

static void test_local_step_gradients_threshold(void)
{
    check_local_step_gradients(FF_LOSS_THRESHOLD, 0);
    check_local_step_gradients(FF_LOSS_THRESHOLD, 1);
}

static void test_local_step_gradients_pairwise(void)
{
    check_local_step_gradients(FF_LOSS_PAIRWISE, 0);
    check_local_step_gradients(FF_LOSS_PAIRWISE, 1);
}

/* the gradients of 140 rows (three im2col chunks) are those of its positive and negative
 * halves (one chunk each) added: the chunks' sums carry over */
static void test_local_gradients_over_chunks(void)
{
    enum { H = 70, RW = 2 * H };
    const ff_config cfg = local_config(1, 0.3f, FF_LOSS_THRESHOLD, 0);
    ff_net net;
    ff_recurrent r;
    build_local(&cfg, &net, &r, 91);
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, &cfg, NULL) == FF_OK);
    ff_rng rng;
    ff_rng_seed(&rng, 92);
    const int xd = ff_shape_dim(LIN);
    float *x = malloc(sizeof(float) * RW * xd), *h0[3];
    fill(x, (size_t)RW * xd, &rng, 0);
    uint8_t lab[RW];
    for (int i = 0; i < RW; i++)
        lab[i] = (uint8_t)(i * 3 % 10);
    for (int l = 0; l < 3; l++) {
        h0[l] = malloc(sizeof(float) * RW * dim_of(&net, l));
        fill(h0[l], (size_t)RW * dim_of(&net, l), &rng, 1);
    }
    ff_layer_loss res[3];
    float *whole = malloc(sizeof(float) * net.n_params);
    for (int part = 0; part < 3; part++) { /* 0: every row; 1: positives; 2: negatives */
        const int r0 = part == 2 ? H : 0, n = part ? H : RW;
        ff_recurrent_clamp(&r, lab + r0, n);
        ff_recurrent_bottom_up(&r, &net, x + (size_t)r0 * xd, n);
        for (int l = 0; l < 3; l++)
            memcpy(r.h[l], h0[l] + (size_t)r0 * dim_of(&net, l), sizeof(float) * n * dim_of(&net, l));
        ff_recurrent_step(&r, &net, n);
        ff_recurrent_step_grads(&r, &net, &obj, part == 2 ? 0 : H, part == 1 ? 0 : H, 0.1f,
                                part == 2 ? 1.0f : 0.0f, res);
        if (part == 0)
            memcpy(whole, net.grads, sizeof(float) * net.n_params);
    }
    double worst = 0.0, mass = 0.0;
    for (size_t i = 0; i < net.n_params; i++) {
        worst = fmax(worst, fabs(whole[i] - net.grads[i]) / (1e-5 + fabs(whole[i])));
        mass += fabs(whole[i]);
    }
    CHECK(worst < 1e-3);
    CHECK(mass > 1e-2);
    free(whole);
    free(x);
    for (int l = 0; l < 3; l++)
        free(h0[l]);
    ff_recurrent_free(&r);
    ff_net_free(&net);
}

/* one iteration with zero top-down weights: the feed-forward local net (states, losses,
 * gradients times 1 - damping, the readout); and the top-down weights' layout and scale */
static void test_local_one_iteration_is_feed_forward(void)
{
    for (int damped = 0; damped < 2; damped++) {
        const float d = damped ? 0.3f : 0.0f;
        ff_config rc = local_config(1, d, FF_LOSS_THRESHOLD, 0);
        rc.eval.layers[0] = 1, rc.eval.layers[1] = 2, rc.eval.n_layers = 2;
        ff_config fc = rc;
        fc.model.recurrent.iterations = 0;
        ff_net rnet, fnet;
        ff_recurrent r;
        build_local(&rc, &rnet, &r, 101);
        ff_rng rng;
        ff_rng_seed(&rng, 102);
        ff_err err = {0};
        CHECK(ff_net_build(&fnet, &fc, LIN, LROWS, &rng, &err) == FF_OK);
        size_t off = 0;
        for (int l = 0; l < 3; l++) {
            ff_layer *A = &rnet.layers[l], *B = &fnet.layers[l];
            const size_t K = l < 2 ? (size_t)LCH[l + 1] * 9 : 10; /* the top-down fan-in */
            CHECK(A->n_topdown == (size_t)dim_of(&rnet, l) * K && A->param_off == off);
            CHECK(A->Wtd == A->b + A->n_bias && A->td_pad == (l < 2));
            double m = 0.0; /* randn / sqrt(fan-in) */
            for (size_t i = 0; i < A->n_topdown; i++)
                m += sq(A->Wtd[i]);
            CHECK(m / A->n_topdown > 0.5 / K && m / A->n_topdown < 2.0 / K);
            off += ff_layer_n_params(A);
            CHECK(A->n_weights == B->n_weights && A->n_bias == B->n_bias);
            memcpy(B->W, A->W, sizeof(float) * A->n_weights);
            memcpy(B->b, A->b, sizeof(float) * A->n_bias);
            memset(A->Wtd, 0, sizeof(float) * A->n_topdown);
            A->threshold = B->threshold = 0.5f * dim_of(&rnet, l);
        }
        CHECK(rnet.n_params == off);
        float x[8 * 72];
        fill(x, 8 * 72, &rng, 0);
        check_matches_feed_forward(&r, &rnet, &fnet, &rc, x, d);
    }
}

/* what the net refuses of local recurrent layers: the top-down map must come through the
 * layer's own kernel with stride 1 and same padding onto its grid (file:line:col) */
static void test_local_geometry_refusals(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"model:\n  label_embedding: none\n  layers:\n"
         "    - {type: local, channels: 2, kernel: 3, padding: 1}\n"
         "    - {type: local, channels: 2, kernel: 3}\n"
         "  recurrent: {iterations: 2, eval_first: 1, eval_last: 2}\n",
         "inline:5:7: layer 1: model.recurrent: local layer 0's top-down input comes from this "
         "layer's output 2x4x4 through layer 0's 3x3 kernel with stride 1 and same padding, so "
         "its grid must be layer 0's 6x6"},
        {"model:\n  label_embedding: none\n  layers:\n"
         "    - {type: local, channels: 2, kernel: 2, stride: 1}\n"
         "    - {type: local, channels: 2, kernel: 3, padding: 1}\n"
         "  recurrent: {iterations: 2, eval_first: 1, eval_last: 2}\n",
         "inline:4:7: layer 0: model.recurrent: the top-down input of a local layer comes through "
         "its own kernel with stride 1 and same padding, which needs an odd kernel, got 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ff_config cfg;
        ff_err err = {0};
        CHECK(ff_config_parse(&cfg, cases[i].yaml, strlen(cases[i].yaml), "inline", &err) == FF_OK);
        ff_net net;
        ff_rng rng;
        ff_rng_seed(&rng, 1);
        CHECK(ff_net_build(&net, &cfg, LIN, 10, &rng, &err) == FF_ERR_USAGE);
        if (strncmp(err.msg, cases[i].want, strlen(cases[i].want)) != 0) {
            fprintf(stderr, "  case %zu: got '%s'\n", i, err.msg);
            CHECK(0);
        }
    }
    /* the same nets without model.recurrent build: the refusal is the top-down map's */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ff_config cfg;
        ff_err err = {0};
        CHECK(ff_config_parse(&cfg, cases[i].yaml, strlen(cases[i].yaml), "inline", &err) == FF_OK);
        cfg.model.recurrent.iterations = 0;
        ff_net net;
        ff_rng rng;
        ff_rng_seed(&rng, 1);
        CHECK(ff_net_build(&net, &cfg, LIN, 10, &rng, &err) == FF_OK);
        ff_net_free(&net);
    }
}

int main(void)
{
    RUN(test_step_matches_naive_loop);
    RUN(test_step_gradients_threshold);
    RUN(test_step_gradients_pairwise);
    RUN(test_pass_is_mean_over_steps);
    RUN(test_readout_window);
    RUN(test_one_iteration_is_feed_forward);
    RUN(test_net_forward_is_recurrent);
    RUN(test_layout);
    RUN(test_local_step_matches_naive_loop);
    RUN(test_local_step_gradients_threshold);
    RUN(test_local_step_gradients_pairwise);
    RUN(test_local_gradients_over_chunks);
    RUN(test_local_one_iteration_is_feed_forward);
    RUN(test_local_geometry_refusals);
    RUN(test_config_refusals);
    TEST_MAIN_END();
}
