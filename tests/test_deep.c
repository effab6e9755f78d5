/* test_deep.c - nets with zero padding and pool entries: a pool is folded into the
 * next trainable layer's input (normalise(pool(output below)), label planes after it),
 * never listed as a layer; its config errors point into the YAML; label planes stay a
 * per-sample bias with padding; the parameter gradients of layers after a pool, through the
 * whole net's FF pass, agree with finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff/config.h"
#include "ff/embed.h"
#include "ff/net.h"
#include "ff/objective.h"
#include "ff/readout.h"
#include "ff/rng.h"
#include "test.h"

static const char deep_yaml[] = "mode: supervised\n"
                                "model:\n"
                                "  label_every_layer: true\n"
                                "  layers:\n"
                                "    - {type: conv, channels: 4, kernel: 3, padding: 1}\n"
                                "    - {type: pool, kind: max, kernel: 2, stride: 2}\n"
                                "    - {type: conv, channels: 5, kernel: 3, padding: 1}\n"
                                "    - {type: pool, kind: avg, kernel: 2, stride: 2}\n"
                                "    - {type: fc, units: 6}\n";

static int shape_is(ff_shape s, int c, int h, int w) { return s.c == c && s.h == h && s.w == w; }

static int build(ff_net *net, const char *yaml, ff_shape in, int max_batch, ff_err *err)
{
    ff_config cfg;
    int rc = ff_config_parse(&cfg, yaml, strlen(yaml), "p.yaml", err);
    if (rc)
        return rc;
    ff_rng r;
    ff_rng_seed(&r, 3);
    return ff_net_build(net, &cfg, in, max_batch, &r, err);
}

/* naive max / mean pool of one sample's [c, h, w] block */
static void ref_pool(const float *x, ff_shape in, int k, int s, int is_max, float *y)
{
    const int oh = (in.h - k) / s + 1, ow = (in.w - k) / s + 1;
    for (int c = 0; c < in.c; c++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float m = -INFINITY, sum = 0.0f;
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++) {
                        float v = x[((size_t)c * in.h + oy * s + ki) * in.w + ox * s + kj];
                        m = v > m ? v : m;
                        sum += v;
                    }
                y[((size_t)c * oh + oy) * ow + ox] = is_max ? m : sum / (float)(k * k);
            }
}

/* layer l's input row i: the normalised pooled output of layer l - 1, then 10 label planes */
static void check_pooled_input(const ff_net *net, int l, const float *x, int i, int is_max)
{
    const ff_layer *P = &net->pool[l], *L = &net->layers[l];
    const int pd = ff_shape_dim(P->out), in_dim = ff_shape_dim(L->in), plane = L->in.h * L->in.w;
    float *want = malloc(sizeof(float) * (size_t)pd);
    ref_pool(net->out[l - 1] + (size_t)i * ff_shape_dim(P->in), P->in, 2, 2, is_max, want);
    ff_objective_normalize(want, want, 1, pd, net->norm_eps);
    const float *row = net->in[l] + (size_t)i * in_dim;
    double diff = 0.0;
    for (int j = 0; j < pd; j++)
        diff = fmax(diff, fabs((double)row[j] - want[j]));
    CHECK(diff < 1e-5);
    float label[FF_NUM_CLASSES];
    ff_shape image = net->input;
    if (net->label_embedding == FF_EMBED_CHANNELS)
        image.c -= FF_NUM_CLASSES;
    ff_embed_read_label(net->label_embedding, x + (size_t)i * ff_shape_dim(net->input), image,
                        label);
    int planes_ok = 1;
    for (int k = 0; k < FF_NUM_CLASSES; k++)
        for (int p = 0; p < plane; p++)
            planes_ok &= row[pd + k * plane + p] == label[k];
    CHECK(planes_ok);
    free(want);
}

static void test_pool_folded_into_next_layer(void)
{
    ff_net net;
    ff_err err = {0};
    CHECK(build(&net, deep_yaml, (ff_shape){1, 8, 8}, 4, &err) == FF_OK);
    if (err.msg[0])
        fprintf(stderr, "  %s\n", err.msg);
    /* three trainable layers; the pools sit before layers 1 and 2 */
    CHECK(net.n_layers == 3);
    CHECK(!ff_net_pooled(&net, 0) && ff_net_pooled(&net, 1) && ff_net_pooled(&net, 2));
    CHECK(!ff_net_pooled(&net, 3) && !ff_net_pooled(&net, FF_MAX_LAYERS));
    CHECK(net.layers[0].kind == FF_LAYER_CONV && net.layers[2].kind == FF_LAYER_FC);
    CHECK(shape_is(net.layers[0].out, 4, 8, 8));                       /* padding 1: same size */
    CHECK(shape_is(net.pool[1].in, 4, 8, 8) && shape_is(net.pool[1].out, 4, 4, 4));
    CHECK(shape_is(net.layers[1].in, 4 + 10, 4, 4));                    /* pooled, then labels */
    CHECK(net.layers[1].const_c == 10); /* padded too, the label planes are a bias */
    CHECK(shape_is(net.pool[2].out, 5, 2, 2) && net.pool[2].pool == FF_POOL_AVG);
    CHECK(shape_is(net.layers[2].in, 5 + 10, 2, 2)); /* the fc sees 10 planes of 2x2 too */
    size_t np = 0;
    for (int l = 0; l < net.n_layers; l++)
        np += net.layers[l].n_weights + net.layers[l].n_bias;
    CHECK(np == net.n_params && np == 4 * 9 + 4 + 5 * 14 * 9 + 5 + 6 * 60 + 6);
    /* the forward pass: each layer's input is the normalised pooled output below */
    ff_rng r;
    ff_rng_seed(&r, 5);
    float x[3 * 64];
    for (int i = 0; i < 3 * 64; i++)
        x[i] = ff_rng_uniform(&r);
    ff_net_forward(&net, x, 3);
    for (int i = 0; i < 3; i++) {
        check_pooled_input(&net, 1, x, i, 1);
        check_pooled_input(&net, 2, x, i, 0);
    }
    /* the readout reads each layer's whole normalised output, not the pooled one */
    const int layers[2] = {1, 2};
    const int F = ff_readout_feature_dim(&net, layers, 2);
    CHECK(F == 5 * 4 * 4 + 6);
    float *feat = malloc(sizeof(float) * 3 * (size_t)F), want[80];
    ff_readout_features(&net, layers, 2, 3, feat);
    ff_objective_normalize(net.out[1] + 80, want, 1, 80, net.norm_eps); /* sample 1 */
    double diff = 0.0;
    for (int j = 0; j < 80; j++)
        diff = fmax(diff, fabs((double)feat[F + j] - want[j]));
    CHECK(diff < 1e-6);
    free(feat);
    ff_net_free(&net);
}

/* a pool before the first layer pools the image itself */
static void test_pool_first(void)
{
    static const char yaml[] = "model:\n"
                               "  layers:\n"
                               "    - {type: pool, kind: avg, kernel: 2, stride: 2}\n"
                               "    - {type: fc, units: 3}\n";
    ff_net net;
    ff_err err = {0};
    CHECK(build(&net, yaml, (ff_shape){1, 4, 4}, 2, &err) == FF_OK);
    CHECK(net.n_layers == 1 && ff_net_pooled(&net, 0) && shape_is(net.layers[0].in, 1, 2, 2));
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    ff_net_forward(&net, x, 1);
    float want[4] = {2.5f, 4.5f, 10.5f, 12.5f};
    ff_objective_normalize(want, want, 1, 4, net.norm_eps);
    for (int j = 0; j < 4; j++)
        CHECK_NEAR(net.in[0][j], want[j], 1e-6);
    ff_net_free(&net);
}

static void expect_error(const char *yaml, ff_shape in, const char *want)
{
    ff_net net;
    ff_err err = {0};
    int rc = build(&net, yaml, in, 2, &err);
    CHECK(rc == FF_ERR_USAGE);
    if (rc == FF_OK)
        ff_net_free(&net);
    if (!strstr(err.msg, want)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, want);
        CHECK(0);
    }
}

/* pool, padding and groups errors name the file, the layer's line and column, and the
 * layer */
static void test_errors_point_into_config(void)
{
    const ff_shape img = {1, 8, 8};
    expect_error("model:\n  layers:\n    - {type: conv, channels: 4, kernel: 3}\n"
                 "    - {type: pool, kernel: 2, stride: 2}\n",
                 img, "p.yaml:4:7: layer 1: a pool must be followed by a trainable layer");
    expect_error("model:\n  layers:\n    - {type: pool, kernel: 2, stride: 2}\n",
                 img, "p.yaml:3:7: layer 0: a pool must be followed by a trainable layer");
    expect_error("model:\n  layers:\n    - {type: conv, channels: 4, kernel: 3}\n"
                 "    - {type: pool, kernel: 2, stride: 2}\n"
                 "    - {type: pool, kernel: 2, stride: 1}\n    - {type: fc, units: 3}\n",
                 img, "p.yaml:5:7: layer 2: two pools in a row");
    expect_error("model:\n  layers:\n    - {type: conv, channels: 4, kernel: 3}\n"
                 "    - {type: pool, kernel: 7, stride: 2}\n    - {type: fc, units: 3}\n",
                 img, "p.yaml:4:7: layer 1: pool kernel 7 does not fit input 4x6x6");
    expect_error("model:\n  layers:\n    - {type: fc, units: 3}\n"
                 "    - {type: conv, channels: 4, kernel: 3, padding: 3}\n",
                 img, "p.yaml:4:7: layer 1: conv padding 3 must be >= 0 and less than its kernel 3");
    /* grouped convs: both channel counts multiples of the groups; no label planes */
    expect_error("model:\n  layers:\n    - {type: conv, channels: 4, kernel: 3}\n"
                 "    - {type: conv, channels: 6, kernel: 3, groups: 3}\n",
                 img, "p.yaml:4:7: layer 1: conv groups 3 must divide both its input channels "
                      "(4) and its output channels (6)");
    expect_error("model:\n  layers:\n    - {type: conv, channels: 2, kernel: 3, groups: 2}\n",
                 img, "p.yaml:3:7: layer 0: conv groups 2 must divide both its input channels "
                      "(1) and its output channels (2)");
    expect_error("model:\n  label_every_layer: true\n  layers:\n"
                 "    - {type: conv, channels: 10, kernel: 3}\n"
                 "    - {type: conv, channels: 10, kernel: 3, groups: 10}\n",
                 img, "p.yaml:5:7: layer 1: conv groups 10 cannot take the 10 label planes of "
                      "model.label_every_layer");
    expect_error("model:\n  label_embedding: channels\n  layers:\n"
                 "    - {type: conv, channels: 11, kernel: 3, groups: 11}\n",
                 (ff_shape){11, 8, 8}, "p.yaml:4:7: layer 0: conv groups 11 cannot take the 10 label planes of "
                      "model.label_embedding channels");
    /* parse-time: padding range, a key a kind does not take, an unknown pool kind */
    const char *bad[][2] = {
        {"model:\n  layers:\n    - {type: conv, channels: 4, kernel: 3, padding: -1}\n", "p.yaml:3:"},
        {"model:\n  layers:\n    - {type: fc, units: 4, padding: 1}\n", "padding"},
        {"model:\n  layers:\n    - {type: pool, kind: min, kernel: 2}\n    - {type: fc, units: 2}\n",
         "expected one of max, avg"},
        {"model:\n  layers:\n    - {type: pool, kernel: 2, channels: 3}\n    - {type: fc, units: 2}\n",
         "channels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ff_config cfg;
        ff_err err = {0};
        CHECK(ff_config_parse(&cfg, bad[i][0], strlen(bad[i][0]), "p.yaml", &err) == FF_ERR_USAGE);
        if (!strstr(err.msg, bad[i][1]) || !strstr(err.msg, "p.yaml:")) {
            fprintf(stderr, "  case %zu: message \"%s\" lacks \"%s\"\n", i, err.msg, bad[i][1]);
            CHECK(0);
        }
    }
}

/* the channels embedding's planes are a per-sample bias, with padding too (they are
 * not padded: tests/test_layers.c checks that against the naive reference) */
static void test_padding_and_label_planes(void)
{
    static const char plain[] = "model:\n  label_embedding: channels\n  layers:\n"
                                "    - {type: conv, channels: 4, kernel: 3}\n";
    static const char padded[] = "model:\n  label_embedding: channels\n  layers:\n"
                                 "    - {type: conv, channels: 4, kernel: 3, padding: 1}\n";
    ff_net net;
    ff_err err = {0};
    CHECK(build(&net, plain, (ff_shape){11, 6, 6}, 2, &err) == FF_OK);
    CHECK(net.layers[0].const_c == 10);
    ff_net_free(&net);
    CHECK(build(&net, padded, (ff_shape){11, 6, 6}, 2, &err) == FF_OK);
    CHECK(net.layers[0].const_c == 10 && shape_is(net.layers[0].out, 4, 6, 6));
    ff_net_free(&net);
}

/* one FF pass of a test: npos positive rows (with labels, or NULL) then nneg negative */
typedef struct fd_pass {
    const ff_objective *obj;
    const float *x;
    const uint8_t *labels;
    int npos, nneg;
} fd_pass;

/* sum of layer l's FF loss terms after a full FF pass (the gradients into net->grads) */
static double pass_loss(ff_net *net, const fd_pass *p, int l)
{
    ff_layer_loss out[FF_MAX_LAYERS];
    ff_net_ff_grads(net, p->obj, p->x, p->labels, p->npos, p->nneg, 1.0f / (p->npos + p->nneg),
                    out);
    return (double)out[l].loss_pos + out[l].loss_neg;
}

/* the gradients of one pass against central differences of each layer's own loss, for
 * `samples` parameters of every layer from l0 (the last `last` of each layer's
 * parameters among them, the rest drawn at random), skipping steps across a ReLU
 * kink; *checked counts the comparisons, *affine those of scales and shifts */
static int check_layer_grads(ff_net *net, const fd_pass *p, int l0, int samples, int last,
                             ff_rng *r, int *checked, int *affine)
{
    pass_loss(net, p, l0);
    float *g = malloc(sizeof(float) * net->n_params);
    memcpy(g, net->grads, sizeof(float) * net->n_params);
    const int rows = p->npos + p->nneg;
    int failed = 0;
    for (int l = l0; l < net->n_layers; l++) {
        const ff_layer *L = &net->layers[l];
        const size_t n = ff_layer_n_params(L), dim = (size_t)ff_shape_dim(L->out) * rows;
        float *before = malloc(sizeof(float) * dim);
        pass_loss(net, p, l);
        memcpy(before, net->out[l], sizeof(float) * dim);
        for (int s = 0; s < samples; s++) {
            const size_t i = L->param_off + (s < last ? n - 1 - (size_t)s : ff_rng_below(r, (uint32_t)n));
            const float keep = net->params[i], h = 1e-3f;
            net->params[i] = keep + h;
            const double lp = pass_loss(net, p, l);
            int same = 1;
            for (size_t j = 0; j < dim; j++)
                same &= (net->out[l][j] > 0.0f) == (before[j] > 0.0f);
            net->params[i] = keep - h;
            const double lm = pass_loss(net, p, l);
            for (size_t j = 0; j < dim; j++)
                same &= (net->out[l][j] > 0.0f) == (before[j] > 0.0f);
            net->params[i] = keep;
            if (!same)
                continue; /* across a ReLU kink */
            const double fd = (lp - lm) / (2.0 * h), an = g[i];
            (*checked)++;
            *affine += i >= L->param_off + L->n_weights + L->n_bias;
            if (fabs(fd - an) > 1e-3 + 2e-2 * fmax(fabs(fd), fabs(an)) && ++failed <= 5)
                fprintf(stderr, "  layer %d param %zu: analytic %g, finite difference %g\n", l,
                        i - L->param_off, an, fd);
        }
        free(before);
    }
    free(g);
    return failed;
}

/* the parameter gradients of the layers after a pool (max before layer 1, average
 * and label planes before the fc layer 2) against central differences of their own
 * loss through the whole net */
static void test_gradient_after_pool(void)
{
    ff_config cfg;
    ff_err err = {0};
    CHECK(ff_config_parse(&cfg, deep_yaml, strlen(deep_yaml), "p.yaml", &err) == FF_OK);
    ff_rng r;
    ff_rng_seed(&r, 11);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 8, 8}, 4, &r, &err) == FF_OK);
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, &cfg, &err) == FF_OK);
    for (size_t i = 0; i < net.n_params; i++) /* biases too */
        if (net.params[i] == 0.0f)
            net.params[i] = 0.1f * ff_rng_normal(&r);
    float x[4 * 64];
    for (int i = 0; i < 4 * 64; i++)
        x[i] = ff_rng_uniform(&r);
    const fd_pass pass = {&obj, x, NULL, 2, 2};
    int checked = 0, affine = 0;
    CHECK(check_layer_grads(&net, &pass, 1, 40, 5, &r, &checked, &affine) == 0);
    CHECK(checked >= 60 && affine == 0);
    ff_net_free(&net);
}

/* model.loss_after_pool with the competition loss (affine): every layer's parameters,
 * its scales and shifts included, against central differences of that layer's own loss
 * on its pooled output (max pool after layer 0, average pool at the end) */
static const char lap_yaml[] = "mode: supervised\n"
                               "model:\n"
                               "  label_embedding: none\n"
                               "  hand_on: batch\n"
                               "  loss_after_pool: true\n"
                               "  layers:\n"
                               "    - {type: conv, channels: 10, kernel: 3, padding: 1}\n"
                               "    - {type: pool, kind: max, kernel: 2, stride: 2}\n"
                               "    - {type: conv, channels: 20, kernel: 3, padding: 1, groups: 10}\n"
                               "    - {type: pool, kind: avg, kernel: 2, stride: 2}\n"
                               "train: {loss: competition, competition_norm: affine, logit_scale: 10}\n";

static void test_gradient_loss_after_pool(void)
{
    ff_config cfg;
    ff_err err = {0};
    CHECK(ff_config_parse(&cfg, lap_yaml, strlen(lap_yaml), "p.yaml", &err) == FF_OK);
    ff_rng r;
    ff_rng_seed(&r, 23);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 8, 8}, 4, &r, &err) == FF_OK);
    CHECK(net.post[0] && net.post[1] && shape_is(ff_net_loss_shape(&net, 1), 20, 2, 2));
    CHECK(net.layers[0].n_affine == 20 && net.layers[1].n_affine == 40);
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, &cfg, &err) == FF_OK);
    for (size_t i = 0; i < net.n_params; i++) /* biases, scales and shifts too */
        net.params[i] += 0.2f * ff_rng_normal(&r);
    float x[4 * 64];
    for (int i = 0; i < 4 * 64; i++)
        x[i] = ff_rng_uniform(&r);
    const uint8_t labels[4] = {3, 7, 0, 3};
    const fd_pass pass = {&obj, x, labels, 4, 0};
    int checked = 0, affine = 0;
    /* the last 20 parameters of each layer: scales and shifts */
    CHECK(check_layer_grads(&net, &pass, 0, 60, 20, &r, &checked, &affine) == 0);
    CHECK(checked >= 80 && affine >= 20);
    ff_net_free(&net);
}

/* a pooled net trains: plain gradient steps on one batch of positive (true label) and
 * negative (wrong label) images lower every layer's FF loss */
static void test_pooled_net_trains(void)
{
    ff_config cfg;
    ff_err err = {0};
    CHECK(ff_config_parse(&cfg, deep_yaml, strlen(deep_yaml), "p.yaml", &err) == FF_OK);
    CHECK(ff_config_set(&cfg, "train.logit_scale=10", &err) == FF_OK); /* as the configs */
    ff_rng r;
    ff_rng_seed(&r, 17);
    ff_net net;
    enum { N = 8, D = 12 * 12 };
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 12, 12}, 2 * N, &r, &err) == FF_OK);
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, &cfg, &err) == FF_OK);
    float images[N * D], x[2 * N * D];
    int idx[N];
    uint8_t pos[N], neg[N];
    for (int i = 0; i < N * D; i++)
        images[i] = ff_rng_uniform(&r) < 0.3f ? ff_rng_uniform(&r) : 0.0f;
    for (int i = 0; i < N; i++) {
        idx[i] = i;
        pos[i] = (uint8_t)(i % FF_NUM_CLASSES);
        neg[i] = (uint8_t)((i + 1 + ff_rng_below(&r, 9)) % FF_NUM_CLASSES);
    }
    ff_embed_batch(FF_EMBED_OVERLAY, images, (ff_shape){1, 12, 12}, idx, pos, N, x);
    ff_embed_batch(FF_EMBED_OVERLAY, images, (ff_shape){1, 12, 12}, idx, neg, N, x + N * D);
    ff_layer_loss first[FF_MAX_LAYERS], out[FF_MAX_LAYERS];
    ff_net_ff_grads(&net, &obj, x, NULL, N, N, 1.0f / N, first);
    for (int step = 0; step < 60; step++) {
        ff_net_ff_grads(&net, &obj, x, NULL, N, N, 1.0f / N, out);
        for (size_t i = 0; i < net.n_params; i++)
            net.params[i] -= 0.01f * net.grads[i];
    }
    ff_net_ff_grads(&net, &obj, x, NULL, N, N, 1.0f / N, out);
    for (int l = 0; l < net.n_layers; l++) {
        const float a = first[l].loss_pos + first[l].loss_neg, b = out[l].loss_pos + out[l].loss_neg;
        if (!(b < 0.9f * a) || getenv("FF_TEST_VERBOSE"))
            fprintf(stderr, "  layer %d: loss %g -> %g\n", l, a, b);
        CHECK(b < 0.9f * a);
    }
    ff_net_free(&net);
}

int main(void)
{
    RUN(test_pool_folded_into_next_layer);
    RUN(test_pool_first);
    RUN(test_errors_point_into_config);
    RUN(test_padding_and_label_planes);
    RUN(test_gradient_after_pool);
    RUN(test_gradient_loss_after_pool);
    RUN(test_pooled_net_trains);
    TEST_MAIN_END();
}
