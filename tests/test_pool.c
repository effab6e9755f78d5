/* test_pool.c - the thread pool (src/pool.c): every index runs exactly once, for n
 * below, at and above the thread count, n = 0, nested calls and resizing; and every
 * kernel split over it gives bit-identical results on 1, 2 and 3 threads (im2col,
 * the conv / local / fc forward and backward passes with their epilogues and bias
 * gradients, the blocked conv stack, normalisation, goodness, both losses, Adam
 * and SGD, the embedding). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ff/config.h"
#include "ff/embed.h"
#include "ff/im2col.h"
#include "ff/net.h"
#include "ff/objective.h"
#include "ff/optim.h"
#include "ff/pool.h"
#include "ff/rng.h"
#include "test.h"

/* ---------------------------------------------------------------- the pool itself */

typedef struct count_ctx {
    atomic_int *hits;
    atomic_int calls, bad_range;
    size_t n, grain;
} count_ctx;

static void count_fn(void *ctx, size_t b, size_t e)
{
    count_ctx *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    if (b >= e || e > c->n || (e - b > c->grain && (b != 0 || e != c->n)))
        atomic_fetch_add(&c->bad_range, 1); /* a chunk longer than grain: only the inline call */
    for (size_t i = b; i < e && i < c->n; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

/* runs ff_pool_for(n, grain) and checks every index was run exactly once */
static void check_once(size_t n, size_t grain)
{
    count_ctx c = {.n = n, .grain = grain ? grain : 1};
    c.hits = calloc(n ? n : 1, sizeof *c.hits);
    atomic_init(&c.calls, 0);
    atomic_init(&c.bad_range, 0);
    ff_pool_for(n, grain, count_fn, &c);
    int wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += atomic_load(&c.hits[i]) != 1;
    CHECK(wrong == 0);
    CHECK(atomic_load(&c.bad_range) == 0);
    const size_t g = grain ? grain : 1;
    if (n == 0)
        CHECK(atomic_load(&c.calls) == 0);
    else if (n <= g || ff_pool_threads() == 1)
        CHECK(atomic_load(&c.calls) == 1); /* one call on the caller's thread */
    else
        CHECK((size_t)atomic_load(&c.calls) == (n + g - 1) / g);
    free(c.hits);
}

static void test_every_index_once(void)
{
    static const int sizes[] = {1, 2, 3, 4};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        CHECK(ff_pool_set_threads(sizes[s]) == sizes[s]);
        CHECK(ff_pool_threads() == sizes[s]);
        check_once(0, 1);          /* nothing to run */
        check_once(1, 1);          /* n smaller than the threads */
        check_once(2, 1);
        check_once(3, 1);
        check_once(5, 0);          /* grain 0 counts as 1 */
        check_once(100, 7);        /* a short last chunk */
        check_once(100, 100);      /* one chunk */
        check_once(100, 1000);     /* grain above n */
        check_once(100003, 64);
        for (int rep = 0; rep < 200; rep++) /* back-to-back jobs: no chunk of one runs in another */
            check_once(37, 2);
    }
    CHECK(ff_pool_set_threads(0) == 1); /* clamped */
    CHECK(ff_pool_set_threads(FF_POOL_MAX_THREADS + 5) == FF_POOL_MAX_THREADS);
    check_once(1000, 3);
    CHECK(ff_pool_set_threads(2) == 2);
}

typedef struct nest_ctx {
    atomic_int inner_hits[64];
} nest_ctx;

static void inner_fn(void *ctx, size_t b, size_t e)
{
    nest_ctx *c = ctx;
    for (size_t i = b; i < e; i++)
        atomic_fetch_add(&c->inner_hits[i], 1);
}

static void outer_fn(void *ctx, size_t b, size_t e)
{
    for (size_t i = b; i < e; i++) /* a loop inside a task runs inline */
        ff_pool_for(64, 4, inner_fn, ctx);
}

static void test_nested_calls_run_inline(void)
{
    ff_pool_set_threads(2);
    nest_ctx c;
    for (int i = 0; i < 64; i++)
        atomic_init(&c.inner_hits[i], 0);
    ff_pool_for(8, 1, outer_fn, &c);
    int wrong = 0;
    for (int i = 0; i < 64; i++)
        wrong += atomic_load(&c.inner_hits[i]) != 8;
    CHECK(wrong == 0);
}

/* ---------------------------------------------------------------- kernels, 1 vs 2 vs 3 threads */

static const int thread_counts[] = {1, 2, 3};
#define N_TC 3

static void fill(float *p, size_t n, uint64_t seed, float lo)
{
    ff_rng r;
    ff_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = lo + ff_rng_normal(&r);
}

/* im2col of every geometry kind (k = 2 rows, k = 10 stride 6, padding with and
 * without the gather index), the runs layout and the per-sample transpose */
static void test_im2col_bit_identical(void)
{
    struct { ff_shape in; int k, s, pad, use_index; } g[] = {
        {{1, 28, 28}, 10, 6, 0, 1}, {{128, 4, 4}, 2, 1, 0, 1}, {{3, 9, 7}, 3, 2, 1, 1},
        {{3, 9, 7}, 3, 2, 1, 0}, {{5, 6, 6}, 1, 1, 0, 0}};
    const int batch = 37;
    for (size_t t = 0; t < sizeof g / sizeof g[0]; t++) {
        const int pad = g[t].pad;
        const ff_shape in = g[t].in, out = {1, (in.h + 2 * pad - g[t].k) / g[t].s + 1,
                                            (in.w + 2 * pad - g[t].k) / g[t].s + 1};
        const size_t dim = (size_t)ff_shape_dim(in);
        const size_t n = (size_t)out.h * out.w * in.c * g[t].k * g[t].k;
        float *x = malloc(sizeof(float) * batch * dim), *col[N_TC];
        int32_t *index = malloc(sizeof(int32_t) * n);
        fill(x, batch * dim, 3 + t, 0.0f);
        for (int k = 0; k < N_TC; k++) {
            col[k] = malloc(sizeof(float) * n * batch);
            memset(col[k], 0x7f, sizeof(float) * n * batch);
            ff_pool_set_threads(thread_counts[k]);
            ff_im2col(x, batch, dim, in, g[t].k, g[t].s, pad, out, col[k],
                      g[t].use_index ? index : NULL);
        }
        CHECK(memcmp(col[0], col[1], sizeof(float) * n * batch) == 0);
        CHECK(memcmp(col[0], col[2], sizeof(float) * n * batch) == 0);
        /* and the values: sample 36, window 0, first column */
        CHECK(col[1][36 * n] == (pad ? 0.0f : x[36 * dim]));
        for (int k = 0; k < N_TC; k++)
            free(col[k]);
        free(x), free(index);
    }
    /* the layout changes: [batch][C][P] <-> [C][batch * P] and per-sample transposes */
    const int C = 23, P = 9;
    float *src = malloc(sizeof(float) * batch * C * P), *d[N_TC], *tr[N_TC];
    fill(src, (size_t)batch * C * P, 11, 0.0f);
    for (int k = 0; k < N_TC; k++) {
        ff_pool_set_threads(thread_counts[k]);
        d[k] = malloc(sizeof(float) * batch * C * P);
        tr[k] = malloc(sizeof(float) * batch * C * P);
        ff_im2col_channels_to_rows(src, d[k], batch, C, P);
        ff_im2col_transpose_batch(src, tr[k], batch, C, P);
    }
    CHECK(memcmp(d[0], d[1], sizeof(float) * batch * C * P) == 0);
    CHECK(memcmp(d[0], d[2], sizeof(float) * batch * C * P) == 0);
    CHECK(memcmp(tr[0], tr[1], sizeof(float) * batch * C * P) == 0);
    CHECK(d[1][5 * batch * P + 7 * P + 3] == src[(7 * C + 5) * P + 3]); /* c 5, sample 7, p 3 */
    CHECK(tr[1][(7 * P + 3) * C + 5] == src[(7 * C + 5) * P + 3]);
    for (int k = 0; k < N_TC; k++)
        free(d[k]), free(tr[k]);
    free(src);
}

/* a net's forward pass and FF gradients (loss, goodness, dpre, gW, gb) on each
 * thread count: everything the trainer's step computes between its GEMMs */
typedef struct net_run {
    float *out, *grads;
    ff_layer_loss loss[FF_MAX_LAYERS];
    size_t n_out;
} net_run;

static void run_net(const ff_config *cfg, ff_shape in, int npos, int nneg, net_run *r)
{
    ff_rng rng;
    ff_rng_seed(&rng, 77);
    ff_net net;
    ff_err err = {0};
    const int rows = npos + nneg;
    memset(r->loss, 0, sizeof r->loss);
    CHECK(ff_net_build(&net, cfg, in, rows, &rng, &err) == FF_OK);
    ff_objective obj;
    CHECK(ff_objective_from_config(&obj, cfg, &err) == FF_OK);
    const size_t dim = (size_t)ff_shape_dim(in);
    float *x = malloc(sizeof(float) * rows * dim);
    fill(x, rows * dim, 5, 0.3f);
    ff_net_ff_grads(&net, &obj, x, NULL, npos, nneg, 1.0f / (float)rows, r->loss);
    r->n_out = 0;
    for (int l = 0; l < net.n_layers; l++)
        r->n_out += (size_t)rows * ff_shape_dim(net.layers[l].out);
    r->out = malloc(sizeof(float) * (r->n_out + net.n_params));
    r->grads = r->out + r->n_out;
    size_t off = 0;
    for (int l = 0; l < net.n_layers; l++) {
        const size_t n = (size_t)rows * ff_shape_dim(net.layers[l].out);
        memcpy(r->out + off, net.out[l], sizeof(float) * n);
        off += n;
    }
    memcpy(r->grads, net.grads, sizeof(float) * net.n_params);
    r->n_out += net.n_params;
    free(x);
    ff_net_free(&net);
}

static void check_net_bit_identical(const ff_config *cfg, ff_shape in, int npos, int nneg)
{
    net_run r[N_TC];
    for (int k = 0; k < N_TC; k++) {
        ff_pool_set_threads(thread_counts[k]);
        run_net(cfg, in, npos, nneg, &r[k]);
    }
    for (int k = 1; k < N_TC; k++) {
        CHECK(r[k].n_out == r[0].n_out);
        CHECK(memcmp(r[0].out, r[k].out, sizeof(float) * r[0].n_out) == 0);
        CHECK(memcmp(r[0].loss, r[k].loss, sizeof r[0].loss) == 0);
    }
    double gsum = 0.0;
    for (size_t i = 0; i < r[0].n_out; i++)
        gsum += fabs(r[0].out[i]);
    CHECK(gsum > 0.0); /* the passes did something */
    for (int k = 0; k < N_TC; k++)
        free(r[k].out);
}

static ff_config base_config(int n_layers, ff_loss_kind loss)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.mode = FF_MODE_SUPERVISED;
    cfg.model.n_layers = n_layers;
    cfg.train.loss = loss;
    cfg.train.logit_scale = 30.0f;
    return cfg;
}

static void test_nets_bit_identical(void)
{
    /* the paper's conv stack (blocked forward: 150 rows = 64 + 64 + 22), pairwise */
    ff_config cfg = base_config(3, FF_LOSS_PAIRWISE);
    cfg.model.label_embedding = FF_EMBED_PATTERN;
    static const int ch[3] = {128, 220, 512}, k[3] = {10, 2, 2}, s[3] = {6, 1, 1};
    for (int l = 0; l < 3; l++)
        cfg.model.layers[l] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = ch[l],
                                             .kernel = k[l], .stride = s[l]};
    check_net_bit_identical(&cfg, (ff_shape){1, 28, 28}, 75, 75);
    /* conv with label planes (a per-sample plane term), threshold loss, peer norm */
    cfg = base_config(2, FF_LOSS_THRESHOLD);
    cfg.model.label_embedding = FF_EMBED_CHANNELS;
    cfg.train.peer_norm = 0.03f;
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 16, .kernel = 3,
                                         .stride = 1, .padding = 1};
    cfg.model.layers[1] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 12, .kernel = 2,
                                         .stride = 1};
    check_net_bit_identical(&cfg, (ff_shape){11, 8, 8}, 40, 30);
    /* local receptive fields */
    cfg = base_config(2, FF_LOSS_PAIRWISE);
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_LOCAL, .channels = 8, .kernel = 3,
                                         .stride = 2};
    cfg.model.layers[1] = (ff_layer_cfg){.kind = FF_LAYER_LOCAL, .channels = 6, .kernel = 2,
                                         .stride = 1};
    check_net_bit_identical(&cfg, (ff_shape){1, 14, 14}, 33, 33);
    /* fully connected (bias rows, ReLU over the flat batch, bias gradient by units) */
    cfg = base_config(2, FF_LOSS_PAIRWISE);
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 700};
    cfg.model.layers[1] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 300};
    check_net_bit_identical(&cfg, (ff_shape){1, 28, 28}, 50, 50);
}

/* the blocked conv forward (rows in blocks of FF_CONV_CHUNK) gives every row what a
 * forward pass of that row's block alone gives (the same sgemm rounds: a GEMM's
 * tail columns may sum in another order, so the blocks are the chunk-aligned ones) */
static void test_blocked_forward_matches_rows(void)
{
    ff_pool_set_threads(2);
    ff_config cfg = base_config(2, FF_LOSS_PAIRWISE);
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 16, .kernel = 5,
                                         .stride = 2};
    cfg.model.layers[1] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 24, .kernel = 2,
                                         .stride = 1};
    const int rows = 2 * FF_CONV_CHUNK + 9;
    ff_rng rng;
    ff_rng_seed(&rng, 3);
    ff_net net;
    ff_err err = {0};
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 16, 16}, rows, &rng, &err) == FF_OK);
    float *x = malloc(sizeof(float) * rows * 256);
    fill(x, (size_t)rows * 256, 9, 0.2f);
    ff_net_forward(&net, x, rows);
    const size_t d1 = (size_t)ff_shape_dim(net.layers[1].out);
    float *whole = malloc(sizeof(float) * rows * d1);
    memcpy(whole, net.out[1], sizeof(float) * rows * d1);
    int wrong = 0;
    for (int r0 = 0; r0 < rows; r0 += FF_CONV_CHUNK) {
        const int n = rows - r0 < FF_CONV_CHUNK ? rows - r0 : FF_CONV_CHUNK;
        ff_net_forward(&net, x + (size_t)r0 * 256, n);
        wrong += memcmp(whole + (size_t)r0 * d1, net.out[1], sizeof(float) * n * d1) != 0;
    }
    CHECK(wrong == 0);
    free(x), free(whole);
    ff_net_free(&net);
}

/* ff_net_forward_goodness (conv stack: blocks in the first rows of the buffers) gives
 * the sums of ff_objective_goodness over the layers after a whole ff_net_forward */
static void test_forward_goodness_matches_forward(void)
{
    for (int kind = 0; kind < 2; kind++) {
        ff_config cfg = base_config(3, FF_LOSS_PAIRWISE);
        for (int l = 0; l < 3; l++)
            cfg.model.layers[l] =
                kind ? (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 40 + 10 * l}
                     : (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 8 + 4 * l,
                                      .kernel = l ? 2 : 5, .stride = l ? 1 : 2};
        const int rows = 2 * FF_CONV_CHUNK + 21;
        ff_rng rng;
        ff_rng_seed(&rng, 13);
        ff_net net;
        ff_err err = {0};
        CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 16, 16}, rows, &rng, &err) == FF_OK);
        float *x = malloc(sizeof(float) * rows * 256), want[rows], got[rows], g[rows];
        fill(x, (size_t)rows * 256, 19, 0.2f);
        for (int as_logits = 0; as_logits < 2; as_logits++) {
            ff_pool_set_threads(1 + as_logits);
            ff_net_forward(&net, x, rows);
            for (int i = 0; i < rows; i++)
                want[i] = 0.0f;
            for (int l = 1; l < 3; l++) {
                ff_objective_goodness(net.out[l], rows, ff_shape_dim(net.layers[l].out), g);
                const float w = as_logits ? net.layers[l].slope : 1.0f;
                for (int i = 0; i < rows; i++)
                    want[i] += w * g[i];
            }
            ff_net_forward_goodness(&net, x, rows, as_logits, got);
            CHECK(memcmp(want, got, sizeof want) == 0);
            CHECK(want[rows - 1] > 0.0f);
        }
        free(x);
        ff_net_free(&net);
    }
}

/* normalisation, goodness and both losses on their own (rows split over the pool) */
static void test_row_kernels_bit_identical(void)
{
    const int B = 203, D = 517;
    float *y = malloc(sizeof(float) * 2 * B * D);
    fill(y, (size_t)2 * B * D, 21, 0.1f);
    for (size_t i = 0; i < (size_t)2 * B * D; i++)
        y[i] = y[i] > 0.0f ? y[i] : 0.0f; /* ReLU outputs */
    float *o[N_TC], loss[N_TC][3];
    const size_t per = (size_t)2 * B * D * 3 + 4 * B;
    for (int k = 0; k < N_TC; k++) {
        ff_pool_set_threads(thread_counts[k]);
        o[k] = calloc(per, sizeof(float));
        float *norm = o[k], *dpre = norm + 2 * B * D, *dpair = dpre + 2 * B * D;
        float *g = dpair + 2 * B * D, *gp = g + 2 * B, *gn = gp + B;
        ff_objective_normalize(y, norm, 2 * B, D, 1e-8f);
        ff_objective_goodness(y, 2 * B, D, g);
        loss[k][0] = ff_objective_loss(y, B, D, 40.0f, 0.05f, +1, 0.01f, g, dpre);
        loss[k][1] = ff_objective_loss(y + B * D, B, D, 40.0f, 0.05f, -1, 0.01f, g + B, dpre + B * D);
        loss[k][2] = ff_objective_pair_loss(y, y + B * D, B, D, 0.05f, 0.01f, gp, gn, dpair,
                                     dpair + B * D);
    }
    for (int k = 1; k < N_TC; k++) {
        CHECK(memcmp(o[0], o[k], sizeof(float) * per) == 0);
        CHECK(memcmp(loss[0], loss[k], sizeof loss[0]) == 0);
    }
    /* the pooled losses are the row-by-row ones (g NULL: the serial path) */
    ff_pool_set_threads(2);
    CHECK(ff_objective_loss(y, B, D, 40.0f, 0.05f, +1, 0.01f, NULL, NULL) == loss[0][0]);
    CHECK(ff_objective_pair_loss(y, y + B * D, B, D, 0.05f, 0.01f, NULL, NULL, NULL, NULL) ==
          loss[0][2]);
    for (int k = 0; k < N_TC; k++)
        free(o[k]);
    free(y);
}

/* Adam and SGD over more parameters than one chunk, a few steps each */
static void test_optim_bit_identical(void)
{
    const size_t n = 100003;
    for (int kind = 0; kind < 2; kind++) {
        float *p[N_TC], *st[N_TC];
        float *g = malloc(sizeof(float) * n);
        fill(g, n, 31, 0.0f);
        for (int k = 0; k < N_TC; k++) {
            ff_pool_set_threads(thread_counts[k]);
            ff_optim o;
            ff_optim_params prm = {.kind = kind ? FF_OPT_SGD : FF_OPT_ADAM, .momentum = 0.9f,
                                   .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                   .weight_decay = 1e-4f};
            CHECK(ff_optim_init(&o, &prm, n, NULL) == FF_OK);
            p[k] = malloc(sizeof(float) * n);
            fill(p[k], n, 41, 0.0f);
            for (int s = 0; s < 3; s++)
                ff_optim_step(&o, p[k], g, 1e-3f);
            ff_optim_step_range(&o, p[k], g, 1e-3f, 17, n - 40);
            st[k] = malloc(sizeof(float) * ff_optim_state_len(&o));
            memcpy(st[k], o.state, sizeof(float) * ff_optim_state_len(&o));
            CHECK(st[k][5] != 0.0f);
            ff_optim_free(&o);
        }
        const size_t sl = kind ? n : 2 * n;
        for (int k = 1; k < N_TC; k++) {
            CHECK(memcmp(p[0], p[k], sizeof(float) * n) == 0);
            CHECK(memcmp(st[0], st[k], sizeof(float) * sl) == 0);
        }
        for (int k = 0; k < N_TC; k++)
            free(p[k]), free(st[k]);
        free(g);
    }
}

/* the embedding of a batch (pattern labels, shifts), rows split over the pool */
static void test_embed_bit_identical(void)
{
    const int n_img = 50, B = 120;
    float *images = malloc(sizeof(float) * n_img * 784), *out[N_TC];
    fill(images, (size_t)n_img * 784, 51, 0.5f);
    int idx[B];
    uint8_t labels[B];
    ff_aug aug[B];
    for (int i = 0; i < B; i++) {
        idx[i] = (i * 7) % n_img;
        labels[i] = (uint8_t)(i % 11 == 10 ? FF_LABEL_NEUTRAL : i % 10);
        aug[i] = (ff_aug){(int8_t)(i % 3 - 1), (int8_t)((i / 3) % 3 - 1), (uint8_t)(i % 2)};
    }
    for (int kind = 0; kind < FF_EMBED_COUNT; kind++) {
        const size_t dim = (size_t)ff_shape_dim(ff_embed_shape((ff_embed_kind)kind, (ff_shape){1, 28, 28}));
        for (int k = 0; k < N_TC; k++) {
            ff_pool_set_threads(thread_counts[k]);
            out[k] = malloc(sizeof(float) * B * dim);
            ff_embed_batch_aug((ff_embed_kind)kind, images, (ff_shape){1, 28, 28}, idx, labels,
                               aug, B, out[k]);
        }
        for (int k = 1; k < N_TC; k++)
            CHECK(memcmp(out[0], out[k], sizeof(float) * B * dim) == 0);
        /* one row alone is the same row */
        float *one = malloc(sizeof(float) * dim);
        ff_embed_batch_aug((ff_embed_kind)kind, images, (ff_shape){1, 28, 28}, idx + 77,
                           labels + 77, aug + 77, 1, one);
        CHECK(memcmp(one, out[0] + 77 * dim, sizeof(float) * dim) == 0);
        free(one);
        for (int k = 0; k < N_TC; k++)
            free(out[k]);
    }
    free(images);
}

int main(void)
{
    RUN(test_every_index_once);
    RUN(test_nested_calls_run_inline);
    RUN(test_im2col_bit_identical);
    RUN(test_nets_bit_identical);
    RUN(test_blocked_forward_matches_rows);
    RUN(test_forward_goodness_matches_forward);
    RUN(test_row_kernels_bit_identical);
    RUN(test_optim_bit_identical);
    RUN(test_embed_bit_identical);
    ff_pool_set_threads(1); /* joins the workers */
    TEST_MAIN_END();
}
