/* test_readout.c - the linear softmax readout: cross-entropy gradients against
 * finite differences, a separable toy problem, argmax prediction, normalised
 * features from the right layers, layer choice per mode, frozen-net epochs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff/embed.h"
#include "ff/net.h"
#include "ff/objective.h"
#include "ff/readout.h"
#include "ff/rng.h"
#include "test.h"

static void fill_normal(ff_rng *r, float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = scale * ff_rng_normal(r);
}

static void test_gradients_match_finite_differences(void)
{
    enum { F = 7, C = 4, B = 5 };
    ff_readout ro;
    CHECK(ff_readout_init(&ro, F, C, B, NULL, NULL) == FF_OK);
    CHECK(ro.n_params == C * F + C);
    ff_rng r;
    ff_rng_seed(&r, 21);
    float x[B * F], analytic[C * F + C];
    uint8_t labels[B] = {0, 3, 1, 3, 2};
    fill_normal(&r, x, B * F, 1.0f);
    fill_normal(&r, ro.params, ro.n_params, 0.5f);
    ff_readout_loss_grad(&ro, x, labels, B);
    memcpy(analytic, ro.grads, sizeof analytic);
    const float h = 1e-3f;
    double worst = 0.0;
    for (size_t p = 0; p < ro.n_params; p++) {
        const float keep = ro.params[p];
        ro.params[p] = keep + h;
        const double up = ff_readout_loss_grad(&ro, x, labels, B);
        ro.params[p] = keep - h;
        const double down = ff_readout_loss_grad(&ro, x, labels, B);
        ro.params[p] = keep;
        const double numeric = (up - down) / (2.0 * h);
        const double diff = fabs(numeric - analytic[p]) / fmax(1e-2, fabs(numeric));
        worst = fmax(worst, diff);
    }
    CHECK(worst < 2e-2);
    /* the loss is the mean cross-entropy: uniform logits give log(C) */
    memset(ro.params, 0, sizeof(float) * ro.n_params);
    CHECK_NEAR(ff_readout_loss_grad(&ro, x, labels, B), log(C), 1e-5);
    ff_readout_free(&ro);
}

/* 4 Gaussian blobs in 10-d, well apart: the head must reach ~100% */
static void make_blobs(ff_rng *r, float *x, uint8_t *y, int n, const float *centres)
{
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % 4);
        for (int j = 0; j < 10; j++)
            x[i * 10 + j] = centres[y[i] * 10 + j] + 0.3f * ff_rng_normal(r);
    }
}

static void test_separable_toy_problem(void)
{
    enum { N = 400, F = 10, C = 4 };
    ff_rng r;
    ff_rng_seed(&r, 22);
    float centres[C * F];
    fill_normal(&r, centres, C * F, 1.5f);
    static float x[N * F], xt[N * F];
    uint8_t y[N], yt[N], pred[N];
    make_blobs(&r, x, y, N, centres);
    make_blobs(&r, xt, yt, N, centres);
    ff_readout ro;
    CHECK(ff_readout_init(&ro, F, C, 100, NULL, NULL) == FF_OK);
    float first = 0.0f, last = 0.0f;
    for (int epoch = 0; epoch < 60; epoch++)
        for (int b = 0; b < N / 100; b++) {
            last = ff_readout_train_batch(&ro, x + b * 100 * F, y + b * 100, 100, 0.05f);
            if (epoch == 0 && b == 0)
                first = last;
        }
    CHECK(last < 0.1f * first);
    int wrong = 0;
    for (int b = 0; b < N / 100; b++) {
        ff_readout_predict(&ro, xt + b * 100 * F, 100, pred + b * 100);
        for (int i = 0; i < 100; i++)
            wrong += pred[b * 100 + i] != yt[b * 100 + i];
    }
    CHECK(wrong <= 2);
    /* reset: back to zero weights and a fresh optimiser */
    ff_readout_reset(&ro);
    CHECK(ro.opt.t == 0 && ro.params[0] == 0.0f && ro.params[ro.n_params - 1] == 0.0f);
    CHECK_NEAR(ff_readout_loss_grad(&ro, x, y, 100), log(C), 1e-5);
    /* the head's optimiser: Adam with PyTorch's defaults, no weight decay */
    CHECK(ro.opt.kind == FF_OPT_ADAM && ro.opt.beta1 == 0.9f && ro.opt.beta2 == 0.999f);
    CHECK(ro.opt.eps == 1e-8f && ro.opt.weight_decay == 0.0f);
    CHECK(ff_optim_state_len(&ro.opt) == 2 * ro.n_params);
    ff_readout_free(&ro);
}

/* clf.optimizer sgd_smooth (ffcode's head): two steps on one sample, hand-computed.
 * F 2, C 2, x = [1, 2], label 0, lr 0.5, smoothing 0.9, weight decay 0.2.
 * Step 1 from zero weights: logits 0, p = [1/2, 1/2], dz = [-1/2, 1/2];
 * g(W) = dz x^T = [[-0.5, -1], [0.5, 1]], g(b) = [-0.5, 0.5]; d = 0.1 g; W = 0, so
 * the step is lr d: W1 = [[0.025, 0.05], [-0.025, -0.05]], b1 = [0.025, -0.025].
 * Step 2: z0 = 0.025 + 0.1 + 0.025 = 0.15 = -z1, p0 = 1 / (1 + e^-0.3); g2 = dz2 x^T
 * with dz2 = [p0 - 1, 1 - p0]; d2 = 0.9 d1 + 0.1 g2; w2 = w1 - lr (d2 + 0.2 w1). */
static void test_head_sgd_smooth_hand_computed(void)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    /* the default head is today's: Adam 0.9 / 0.999 / 1e-8, no decay */
    const ff_optim_params def = ff_readout_optim_params(&cfg);
    CHECK(def.kind == FF_OPT_ADAM && def.beta1 == 0.9f && def.beta2 == 0.999f &&
          def.eps == 1e-8f && def.weight_decay == 0.0f && !cfg.clf.lr_schedule);
    ff_err err;
    CHECK(ff_config_set(&cfg, "clf.optimizer=sgd_smooth", &err) == FF_OK);
    CHECK(ff_config_set(&cfg, "clf.momentum=0.9", &err) == FF_OK);
    CHECK(ff_config_set(&cfg, "clf.weight_decay=0.2", &err) == FF_OK);
    const ff_optim_params op = ff_readout_optim_params(&cfg);
    ff_readout ro;
    CHECK(ff_readout_init(&ro, 2, 2, 4, &op, &err) == FF_OK);
    CHECK(ro.opt.kind == FF_OPT_SGD_SMOOTH && ff_optim_state_len(&ro.opt) == ro.n_params);
    const float x[2] = {1.0f, 2.0f};
    const uint8_t y[1] = {0};
    CHECK_NEAR(ff_readout_train_batch(&ro, x, y, 1, 0.5f), log(2.0), 1e-6);
    const double w1[6] = {0.025, 0.05, -0.025, -0.05, 0.025, -0.025}; /* W row-major, b */
    const double d1[6] = {-0.05, -0.1, 0.05, 0.1, -0.05, 0.05};
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(ro.params[i], w1[i], 1e-7);
        CHECK_NEAR(ro.opt.state[i], d1[i], 1e-7);
    }
    ff_readout_train_batch(&ro, x, y, 1, 0.5f);
    const double p0 = 1.0 / (1.0 + exp(-0.3)), dz[2] = {p0 - 1.0, 1.0 - p0};
    const double g2[6] = {dz[0] * x[0], dz[0] * x[1], dz[1] * x[0], dz[1] * x[1], dz[0], dz[1]};
    for (int i = 0; i < 6; i++) {
        const double d2 = 0.9 * d1[i] + 0.1 * g2[i];
        const double want = w1[i] - 0.5 * (d2 + 0.2 * w1[i]);
        /* ffrun's sgd form (decay inside the smoothed gradient) would land elsewhere */
        const double inside = w1[i] - 0.5 * (0.9 * d1[i] + 0.1 * (g2[i] + 0.2 * w1[i]));
        CHECK(fabs(want - inside) > 1e-3);
        CHECK_NEAR(ro.opt.state[i], d2, 1e-6);
        CHECK_NEAR(ro.params[i], want, 1e-6);
    }
    /* reset clears the smoothed gradient too */
    ff_readout_reset(&ro);
    CHECK(ro.opt.t == 0 && ro.opt.state[0] == 0.0f && ro.params[0] == 0.0f);
    ff_readout_free(&ro);
}

/* the default clf.* keys build the head ff_readout_init(NULL) always built: bit-identical
 * training */
static void test_head_default_unchanged(void)
{
    enum { F = 5, C = 3, B = 8 };
    ff_config cfg;
    ff_config_defaults(&cfg);
    const ff_optim_params op = ff_readout_optim_params(&cfg);
    ff_readout a, b;
    CHECK(ff_readout_init(&a, F, C, B, NULL, NULL) == FF_OK);
    CHECK(ff_readout_init(&b, F, C, B, &op, NULL) == FF_OK);
    ff_rng r;
    ff_rng_seed(&r, 23);
    float x[B * F];
    uint8_t y[B];
    for (int step = 0; step < 20; step++) {
        fill_normal(&r, x, B * F, 1.0f);
        for (int i = 0; i < B; i++)
            y[i] = (uint8_t)((step + i) % C);
        ff_readout_train_batch(&a, x, y, B, cfg.clf.lr);
        ff_readout_train_batch(&b, x, y, B, cfg.clf.lr);
    }
    CHECK(a.params[0] != 0.0f);
    CHECK(memcmp(a.params, b.params, sizeof(float) * a.n_params) == 0);
    CHECK(memcmp(a.opt.state, b.opt.state, sizeof(float) * 2 * a.n_params) == 0);
    ff_readout_free(&a);
    ff_readout_free(&b);
}

static void test_argmax_prediction(void)
{
    ff_readout ro;
    CHECK(ff_readout_init(&ro, 2, 3, 4, NULL, NULL) == FF_OK);
    /* W = [[1,0],[0,1],[-1,-1]], b = [0, 0, 0.5] */
    const float p[] = {1, 0, 0, 1, -1, -1, 0, 0, 0.5f};
    memcpy(ro.params, p, sizeof p);
    const float x[] = {2, 1, 1, 3, -2, -2, 0, 0};
    uint8_t pred[4];
    ff_readout_predict(&ro, x, 4, pred);
    CHECK(pred[0] == 0 && pred[1] == 1 && pred[2] == 2 && pred[3] == 2);
    CHECK_NEAR(ro.logits[0], 2.0, 1e-6);
    CHECK_NEAR(ro.logits[5], -3.5, 1e-6);
    memset(ro.params, 0, sizeof p);
    ff_readout_predict(&ro, x, 4, pred);
    CHECK(pred[0] == 0 && pred[3] == 0); /* ties: the first class */
    ff_readout_free(&ro);
}

/* ---------------------------------------------------------------- features */

static ff_config fc_config(int n_layers, const int *units)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.model.n_layers = n_layers;
    for (int l = 0; l < n_layers; l++)
        cfg.model.layers[l] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = units[l]};
    return cfg;
}

static double mean_square(const float *v, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return s / n;
}

static void check_block(const ff_net *net, int l, const float *feat, int F, int off, int batch)
{
    const int dim = ff_shape_dim(net->layers[l].out);
    float want[64];
    for (int i = 0; i < batch; i++) {
        const float *raw = net->out[l] + (size_t)i * dim;
        const float *got = feat + (size_t)i * F + off;
        ff_objective_normalize(raw, want, 1, dim, net->norm_eps);
        CHECK_NEAR(mean_square(got, dim), 1.0, 1e-4);
        CHECK(fabs(mean_square(raw, dim) - 1.0) > 0.05); /* raw activities are not normalised */
        for (int j = 0; j < dim; j++)
            CHECK_NEAR(got[j], want[j], 1e-5);
    }
}

static void test_features_normalised_from_chosen_layers(void)
{
    const int units[] = {48, 40, 32};
    ff_config cfg = fc_config(3, units);
    ff_rng r;
    ff_rng_seed(&r, 23);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 6, 6}, 8, &r, NULL) == FF_OK);
    float x[8 * 36];
    for (int i = 0; i < 8 * 36; i++)
        x[i] = 3.0f * ff_rng_uniform(&r);
    ff_net_forward(&net, x, 8);

    const int l12[] = {1, 2}, l20[] = {2, 0};
    CHECK(ff_readout_feature_dim(&net, l12, 2) == 72);
    CHECK(ff_readout_feature_dim(&net, l20, 2) == 80);
    float feat[8 * 80];
    ff_readout_features(&net, l12, 2, 8, feat);
    check_block(&net, 1, feat, 72, 0, 8);
    check_block(&net, 2, feat, 72, 40, 8); /* the last layer: normalised here */
    ff_readout_features(&net, l20, 2, 8, feat);
    check_block(&net, 2, feat, 80, 0, 8);
    check_block(&net, 0, feat, 80, 32, 8);
    ff_net_free(&net);
}

static void test_layer_choice_per_mode(void)
{
    const int units[] = {8, 8, 8, 8, 8};
    ff_rng r;
    ff_rng_seed(&r, 24);
    int layers[FF_MAX_LAYERS], n = -1;
    ff_net net;

    ff_config cfg = fc_config(5, units);
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 4, 4}, 2, &r, NULL) == FF_OK);
    CHECK(ff_readout_layers(&cfg, &net, layers, &n, NULL) == FF_OK); /* supervised: all but the first */
    CHECK(n == 4 && layers[0] == 1 && layers[1] == 2 && layers[2] == 3 && layers[3] == 4);
    cfg.mode = FF_MODE_UNSUP_CLF;                                  /* default: the last three */
    CHECK(ff_readout_layers(&cfg, &net, layers, &n, NULL) == FF_OK);
    CHECK(n == 3 && layers[0] == 2 && layers[1] == 3 && layers[2] == 4);
    cfg.clf.n_layers = 2, cfg.clf.layers[0] = 3, cfg.clf.layers[1] = 0;
    CHECK(ff_readout_layers(&cfg, &net, layers, &n, NULL) == FF_OK);
    CHECK(n == 2 && layers[0] == 3 && layers[1] == 0);
    cfg.clf.layers[1] = 5;
    ff_err err = {0};
    CHECK(ff_readout_layers(&cfg, &net, layers, &n, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "clf.layers.1") != NULL);
    ff_net_free(&net);

    cfg = fc_config(2, units);
    cfg.mode = FF_MODE_UNSUP_CLF;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 4, 4}, 2, &r, NULL) == FF_OK);
    CHECK(ff_readout_layers(&cfg, &net, layers, &n, NULL) == FF_OK);
    CHECK(n == 2 && layers[0] == 0 && layers[1] == 1);
    ff_net_free(&net);

    cfg = fc_config(1, units);
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 4, 4}, 2, &r, NULL) == FF_OK);
    CHECK(ff_readout_layers(&cfg, &net, layers, &n, NULL) == FF_OK);
    CHECK(n == 1 && layers[0] == 0);
    ff_net_free(&net);
}

/* ---------------------------------------------------------------- epochs on a frozen net */

/* 8x8 images; class k (0..3) lights a 3x3 block in the lower half at column 2k;
 * rows 0..1 stay dark (the overlay label goes there) */
static ff_dataset make_blocks(int n, ff_rng *r)
{
    ff_dataset ds = {.n = n, .shape = {1, 8, 8}};
    ds.images = calloc((size_t)n * 64, sizeof(float));
    ds.labels = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        const int k = (int)ff_rng_below(r, 4);
        float *img = ds.images + (size_t)i * 64;
        ds.labels[i] = (uint8_t)k;
        for (int p = 16; p < 64; p++)
            img[p] = 0.2f * ff_rng_uniform(r);
        for (int y = 4; y < 7; y++)
            for (int x = 2 * k; x < 2 * k + 2; x++)
                img[y * 8 + x] = 0.8f + 0.2f * ff_rng_uniform(r);
    }
    return ds;
}

static void run_frozen(int neutral)
{
    const int units[] = {64, 64, 64};
    ff_config cfg = fc_config(3, units);
    cfg.mode = neutral ? FF_MODE_SUPERVISED : FF_MODE_UNSUP_CLF;
    ff_rng r;
    ff_rng_seed(&r, 25);
    ff_dataset train = make_blocks(600, &r), test = make_blocks(200, &r);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, ff_embed_shape(FF_EMBED_OVERLAY, (ff_shape){1, 8, 8}), 64, &r, NULL) == FF_OK);
    int layers[FF_MAX_LAYERS], nl;
    CHECK(ff_readout_layers(&cfg, &net, layers, &nl, NULL) == FF_OK);
    ff_readout ro;
    CHECK(ff_readout_init(&ro, ff_readout_feature_dim(&net, layers, nl), FF_NUM_CLASSES, 64,
                          NULL, NULL) == FF_OK);
    float *frozen = malloc(sizeof(float) * net.n_params);
    memcpy(frozen, net.params, sizeof(float) * net.n_params);
    float *xbuf = malloc(sizeof(float) * 64 * 64);
    int order[600];
    for (int i = 0; i < 600; i++)
        order[i] = i;

    /* make_input: neutral label pixels, or the raw image */
    ff_readout_input in = {.ds = &train, .neutral = neutral, .embed = FF_EMBED_OVERLAY};
    int idx[2] = {5, 9};
    ff_readout_make_input(&ro, &in, idx, 2, xbuf);
    CHECK(ro.labels[0] == train.labels[5] && ro.labels[1] == train.labels[9]);
    CHECK(xbuf[64 + 3] == (neutral ? 0.1f : train.images[9 * 64 + 3]));
    CHECK(xbuf[64 + 40] == train.images[9 * 64 + 40]);
    /* jitter: image 5 one pixel right, image 9 one pixel down; label pixels stay put */
    const ff_aug aug[2] = {{1, 0, 0}, {0, 1, 0}};
    in.aug = aug;
    ff_readout_make_input(&ro, &in, idx, 2, xbuf);
    CHECK(xbuf[5 * 8 + 3] == train.images[5 * 64 + 5 * 8 + 2]);
    CHECK(xbuf[5 * 8 + 0] == 0.0f);
    CHECK(xbuf[64 + 3 * 8 + 5] == train.images[9 * 64 + 2 * 8 + 5]);
    CHECK(xbuf[64 + 3] == (neutral ? 0.1f : 0.0f));
    CHECK(ro.labels[0] == train.labels[5] && ro.labels[1] == train.labels[9]);
    in.aug = NULL;

    const double before = ff_readout_error(&ro, &net, layers, nl, &in, 0, xbuf, NULL);
    float loss0 = 0.0f, loss = 0.0f;
    for (int e = 0; e < 30; e++) {
        ff_rng_shuffle(&r, order, 600);
        loss = ff_readout_train_epoch(&ro, &net, layers, nl, &in, order, 600, 50, 0.01f, xbuf);
        if (e == 0)
            loss0 = loss;
    }
    CHECK(loss < 0.5f * loss0);
    ff_readout_input tin = {.ds = &test, .neutral = neutral, .embed = FF_EMBED_OVERLAY};
    int64_t conf[100];
    const double err = ff_readout_error(&ro, &net, layers, nl, &tin, 0, xbuf, conf);
    int64_t total = 0;
    for (int i = 0; i < 100; i++)
        total += conf[i];
    CHECK(total == 200);
    CHECK(before > 0.5 && err < 0.05);
    /* ff_readout_scores gives the logits behind those predictions, for images named by
     * index (here each batch of 50 in reverse order) */
    float sc[50 * FF_NUM_CLASSES];
    int tidx[50], wrong = 0;
    for (int start = 0; start < 200; start += 50) {
        for (int i = 0; i < 50; i++)
            tidx[i] = start + 49 - i;
        ff_readout_scores(&ro, &net, layers, nl, &tin, tidx, 50, xbuf, sc);
        for (int i = 0; i < 50; i++) {
            int best = 0;
            for (int k = 1; k < FF_NUM_CLASSES; k++)
                if (sc[i * FF_NUM_CLASSES + k] > sc[i * FF_NUM_CLASSES + best])
                    best = k;
            wrong += best != test.labels[tidx[i]];
        }
    }
    CHECK(wrong == (int)(err * 200.0 + 0.5));
    CHECK(memcmp(frozen, net.params, sizeof(float) * net.n_params) == 0); /* backbone untouched */
    free(xbuf);
    free(frozen);
    ff_readout_free(&ro);
    ff_net_free(&net);
    ff_dataset_free(&train);
    ff_dataset_free(&test);
}

static void test_frozen_net_unsupervised_inputs(void) { run_frozen(0); }
static void test_frozen_net_neutral_label(void) { run_frozen(1); }

int main(void)
{
    RUN(test_gradients_match_finite_differences);
    RUN(test_separable_toy_problem);
    RUN(test_head_sgd_smooth_hand_computed);
    RUN(test_head_default_unchanged);
    RUN(test_argmax_prediction);
    RUN(test_features_normalised_from_chosen_layers);
    RUN(test_layer_choice_per_mode);
    RUN(test_frozen_net_unsupervised_inputs);
    RUN(test_frozen_net_neutral_label);
    TEST_MAIN_END();
}
