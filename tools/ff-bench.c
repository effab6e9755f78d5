/* ff-bench.c - speed benchmark of ffrun's training and evaluation (make bench-speed).
 *
 * Times the library's own trainer (include/ff/trainer.h: ff_trainer_next, the batch
 * step `ffrun` runs; nothing of the step is copied here) on the first MNIST
 * training images, for a config file (--config: a shipped config's real path, e.g.
 * joint passes, the pairwise loss and hard negatives with their ten labelled
 * scoring passes) or for one of the paper's nets as a config made here (--net, the
 * same work bench/ff_ref.py does in PyTorch):
 *   fc     784-2000-2000-2000-2000
 *   cnn    conv 1->128 k10 s6, 128->220 k2 s1, 220->512 k2 s1 (28x28 input)
 *   local  the same geometry with unshared weights per output location
 * those with label overlay in the first 10 pixels, Adam lr 1e-3, thresholds = units
 * per layer, alternate passes and random negatives.
 *
 * What `run` measures (one JSON object on stdout):
 *   - training batches, ff_trainer_next; one image = its positive and its negative
 *     pass, updates, negative-label scoring and the softmax head's step included;
 *   - goodness-per-label evaluation (ff_eval_goodness_scores) with the trainer's
 *     net size max_batch = max(2B, 1000), i.e. chunks of max_batch/10 images whose
 *     10 labelled copies go through the net as one batch;
 *   - where the time goes: the library's calls are wrapped at link time
 *     (-Wl,--wrap=..., see the Makefile line for this tool) and timed in place:
 *     sgemm, im2col and per-sample transposes, the rest of each layer (bias,
 *     ReLU, bias gradients), normalisation, FF loss, goodness, optimiser, embedding;
 *   - the GEMM-only bound: the sgemm calls of one batch (shapes, transposes,
 *     strides recorded in place, hard negatives' scoring passes included) replayed
 *     on plain OpenBLAS cblas_sgemm. Conv layers on the direct loops (ff_layer.direct:
 *     no sgemm) are recorded on their im2col + GEMM path for it, so the bound, the
 *     FLOP count and the GEMM calls are those of the same work as sgemms whatever
 *     path ffrun takes ("direct_layers" says how many layers took the other).
 * Timed loops run with the wrappers switched off (one predictable branch per call).
 *
 * `ref` writes the reference file bench/ff_ref.py checks PyTorch against: a JSON
 * header line, then float32 arrays (see write_ref), captured from a trainer batch
 * by wrapping ff_net_ff_grads and ff_optim_step.
 *
 * Usage:
 *   ff-bench run (--net fc|cnn|local|deep | --config FILE) [--batch B] [--seconds S]
 *                [--threads T] [--pool P] [--data DIR] [--images N] [--seed S] [--verbose 1]
 *                (--config: the config's batch_size and data set unless --batch or --data
 *                is given, e.g. configs/cifar_deep.yaml on data/cifar10; --pool: the
 *                threads of the loops between the GEMMs, include/ff/pool.h, default T)
 *   ff-bench gemm (--net fc|cnn|local|deep | --config FILE) [--batch B] [--threads T]
 *                only the GEMM-only bound, with every recorded sgemm call and its time
 *   ff-bench ref --net fc|cnn|local|deep --batch B --out FILE [--warm N] [--data DIR]
 *   ff-bench ref --config FILE --out FILE [--warm N]   (train.loss competition configs)
 *   ff-bench core   the OpenBLAS kernel set in use (what a peer on the same OpenBLAS
 *                must be given as OPENBLAS_CORETYPE to run the same kernels)
 *   ff-bench peak [--size N] [--seconds S] [--threads T]
 *                the fastest sgemm of this machine, as the report's yardstick: square
 *                N x N x N products (default 4096), best time over S seconds
 *   ff-bench stream [--size N] [--seconds S] [--pool P]
 *                memory bandwidth on the pool's threads: a copy of N*N floats and the
 *                Adam step on N*N parameters (--size 3685: the fc net's 13.6M), GB/s
 * Exit status: 0 ok, 1 runtime error, 2 usage. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ff/blas.h"
#include "ff/config.h"
#include "ff/data.h"
#include "ff/embed.h"
#include "ff/eval.h"
#include "ff/im2col.h"
#include "ff/net.h"
#include "ff/objective.h"
#include "ff/optim.h"
#include "ff/pool.h"
#include "ff/rng.h"
#include "ff/run.h"
#include "ff/trainer.h"

/* every wrapped function's __real_ and __wrap_ with its own type (tools/ff-bench-wraps.h) */
#include "ff-bench-wraps.h"
#define FF_BENCH_WRAP(name) __typeof__(name) __real_##name, __wrap_##name;
FF_BENCH_WRAPS
#undef FF_BENCH_WRAP

/* ---------------------------------------------------------------- timing */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (every thread): on a shared machine, what a batch
 * costs regardless of the time other processes take from its cores */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---------------------------------------------------------------- in-place timers
 * Each wrapped library call adds its wall time to one bucket while `tracing` is
 * on. Buckets nest: layer forward/backward include their sgemms. */

enum { T_GEMM, T_LAYER, T_IM2COL, T_NORM, T_LOSS, T_GOOD, T_OPTIM, T_EMBED, T_COUNT };

static int tracing;
static double bucket[T_COUNT];

/* the same buckets per layer of the benched net (a call inside ff_layer_forward or
 * ff_layer_backward counts for that layer too; the loss and the rest for none) */
static const ff_layer *layer_base; /* the benched net's layers, layer_count of them */
static int layer_count, cur_layer = -1;
static double layer_bucket[FF_MAX_LAYERS][T_COUNT];

static int layer_index(const ff_layer *l)
{
    return layer_base && l >= layer_base && l < layer_base + layer_count ? (int)(l - layer_base)
                                                                           : -1;
}

/* recorded sgemm calls (shapes for the GEMM-only bound) */
typedef struct gemm_call {
    enum CBLAS_ORDER order;
    enum CBLAS_TRANSPOSE ta, tb;
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    double t_inplace, t_replay; /* seconds: in the traced batch, mean over replays */
} gemm_call;

#define MAX_CALLS 4096
typedef struct call_list {
    int n;
    gemm_call c[MAX_CALLS];
} call_list;
static call_list *recording; /* where traced sgemm calls are appended (NULL: nowhere) */
static call_list train_calls, eval_calls;

void __wrap_cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                        blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda,
                        const float *b, blasint ldb, float beta, float *c, blasint ldc)
{
    if (!tracing) {
        __real_cblas_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    double t0 = now();
    __real_cblas_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double dt = now() - t0;
    bucket[T_GEMM] += dt;
    if (cur_layer >= 0)
        layer_bucket[cur_layer][T_GEMM] += dt;
    if (recording && recording->n < MAX_CALLS)
        recording->c[recording->n++] =
            (gemm_call){o, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c, dt, 0.0};
}

#define TIMED(slot, call)                   \
    do {                                    \
        if (!tracing) {                     \
            call;                           \
        } else {                            \
            double t0_ = now();             \
            call;                           \
            const double dt_ = now() - t0_; \
            bucket[slot] += dt_;            \
            if (cur_layer >= 0)             \
                layer_bucket[cur_layer][slot] += dt_; \
        }                                   \
    } while (0)

void __wrap_ff_layer_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                             float *patches)
{
    const int outer = cur_layer;
    cur_layer = layer_index(l);
    TIMED(T_LAYER, __real_ff_layer_forward(l, x, y, batch, ws, patches));
    cur_layer = outer;
}

void __wrap_ff_layer_backward(const ff_layer *l, const float *x, const float *patches,
                              const float *dpre, int batch, float beta, float *ws)
{
    const int outer = cur_layer;
    cur_layer = layer_index(l);
    TIMED(T_LAYER, __real_ff_layer_backward(l, x, patches, dpre, batch, beta, ws));
    cur_layer = outer;
}

void __wrap_ff_im2col(const float *x, int batch, size_t x_stride, ff_shape in, int k, int stride,
                      int pad, ff_shape out, float *col, int32_t *index)
{
    TIMED(T_IM2COL, __real_ff_im2col(x, batch, x_stride, in, k, stride, pad, out, col, index));
}

void __wrap_ff_im2col_rows(const float *x, int batch, size_t x_stride, ff_shape in, int k,
                           int stride, int pad, ff_shape out, float *col, size_t ldc)
{
    TIMED(T_IM2COL, __real_ff_im2col_rows(x, batch, x_stride, in, k, stride, pad, out, col, ldc));
}

void __wrap_ff_im2col_transpose_batch(const float *src, float *dst, int batch, int rows, int cols)
{
    TIMED(T_IM2COL, __real_ff_im2col_transpose_batch(src, dst, batch, rows, cols));
}

void __wrap_ff_objective_normalize(const float *x, float *out, int batch, int dim, float eps)
{
    TIMED(T_NORM, __real_ff_objective_normalize(x, out, batch, dim, eps));
}

void __wrap_ff_objective_layer_loss(const ff_objective *o, const float *y, const uint8_t *labels,
                                    int npos, int nneg, int dim, float theta, float scale,
                                    const ff_loss_layer *ly, float *g, float *dpre,
                                    ff_layer_loss *r)
{
    TIMED(T_LOSS, __real_ff_objective_layer_loss(o, y, labels, npos, nneg, dim, theta, scale, ly,
                                                 g, dpre, r));
}

void __wrap_ff_objective_goodness(const float *y, int batch, int dim, float *g)
{
    TIMED(T_GOOD, __real_ff_objective_goodness(y, batch, dim, g));
}

void __wrap_ff_im2col_channels_to_rows(const float *src, float *dst, int batch, int C, int P)
{
    TIMED(T_IM2COL, __real_ff_im2col_channels_to_rows(src, dst, batch, C, P));
}

/* `ref` capture: while on, the first two FF passes of a training batch (positive,
 * then negative: alternate passes) leave copies of their inputs and layer losses,
 * and the optimiser steps after them their gradients and the parameters after. */
typedef struct ref_capture {
    int on, passes, steps, in_dim;
    size_t n, rows;
    float *x[2], *grads[2], *params[2];
    uint8_t labels[2][4096]; /* the competition loss's labels of each pass (rows <= 4096) */
    size_t head_n;           /* the softmax head's parameter count: its step's gradients */
    float *head_grads;
    int head_steps;
    ff_layer_loss loss[2][FF_MAX_LAYERS];
} ref_capture;
static ref_capture cap;

void __wrap_ff_net_ff_grads(ff_net *net, const ff_objective *obj, const float *x,
                            const uint8_t *labels, int npos, int nneg, float scale,
                            ff_layer_loss *out)
{
    const int k = cap.passes;
    if (cap.on && k < 2 && (size_t)(npos + nneg) == cap.rows) {
        memcpy(cap.x[k], x, sizeof(float) * cap.rows * (size_t)cap.in_dim);
        if (labels && cap.rows <= sizeof cap.labels[k])
            memcpy(cap.labels[k], labels, cap.rows);
    }
    __real_ff_net_ff_grads(net, obj, x, labels, npos, nneg, scale, out);
    if (cap.on && k < 2) {
        memcpy(cap.loss[k], out, sizeof(ff_layer_loss) * (size_t)net->n_layers);
        cap.passes++;
    }
}

void __wrap_ff_optim_step(ff_optim *o, float *params, const float *grads, float lr)
{
    const int k = cap.steps;
    if (cap.on && k < 2 && o->n == cap.n)
        memcpy(cap.grads[k], grads, sizeof(float) * cap.n);
    if (cap.on && cap.head_grads && o->n == cap.head_n && o->n != cap.n && !cap.head_steps++)
        memcpy(cap.head_grads, grads, sizeof(float) * cap.head_n);
    TIMED(T_OPTIM, __real_ff_optim_step(o, params, grads, lr));
    if (cap.on && k < 2 && o->n == cap.n) {
        memcpy(cap.params[k], params, sizeof(float) * cap.n);
        cap.steps++;
    }
}

void __wrap_ff_embed_batch_aug(ff_embed_kind kind, const float *images, ff_shape image,
                               const int *idx, const uint8_t *labels, const ff_aug *aug, int batch,
                               float *out)
{
    TIMED(T_EMBED, __real_ff_embed_batch_aug(kind, images, image, idx, labels, aug, batch, out));
}

void __wrap_ff_embed_batch(ff_embed_kind kind, const float *images, ff_shape image, const int *idx,
                           const uint8_t *labels, int batch, float *out)
{
    TIMED(T_EMBED, __real_ff_embed_batch(kind, images, image, idx, labels, batch, out));
}

/* ---------------------------------------------------------------- options */

typedef struct opts {
    const char *cmd, *net, *data, *out, *config;
    int batch, threads, images, warm, verbose, size;
    int pool;             /* --pool: threads of the loops between the GEMMs (0: as BLAS) */
    int batch_given;      /* --batch given (with --config: else the config's batch_size) */
    double seconds;
    uint64_t seed;
} opts;

static int usage(void)
{
    fprintf(stderr,
            "usage: ff-bench run (--net fc|cnn|local|deep | --config FILE) [--batch B] [--seconds S]\n"
            "                    [--threads T] [--pool P]  (--config: the config's batch_size and data\n"
            "                    unless --batch / --data)\n"
            "                    [--data DIR] [--images N] [--seed S] [--verbose 1]\n"
            "       ff-bench gemm (--net fc|cnn|local|deep | --config FILE) --batch B [--threads T]\n"
            "       ff-bench ref --net fc|cnn|local|deep --batch B --out FILE [--warm N] [--data DIR]\n"
            "       ff-bench peak [--size N] [--seconds S] [--threads T]\n"
            "       ff-bench stream [--size N] [--seconds S] [--pool P]\n"
            "       ff-bench core\n");
    return 2;
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.net = "fc", .data = NULL, .batch = 100, .threads = 2, .images = 10000,
                .warm = 3, .seconds = 3.0, .seed = 1, .size = 4096};
    if (argc < 2)
        return -1;
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (!strcmp(a, "--net"))
            o->net = v;
        else if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--config"))
            o->config = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--batch"))
            o->batch = atoi(v), o->batch_given = 1;
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--images"))
            o->images = atoi(v);
        else if (!strcmp(a, "--warm"))
            o->warm = atoi(v);
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--verbose"))
            o->verbose = atoi(v);
        else if (!strcmp(a, "--pool"))
            o->pool = atoi(v);
        else if (!strcmp(a, "--size"))
            o->size = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else
            return -1;
        i++;
    }
    if (strcmp(o->cmd, "run") && strcmp(o->cmd, "gemm") && strcmp(o->cmd, "ref") &&
        strcmp(o->cmd, "peak") && strcmp(o->cmd, "core") && strcmp(o->cmd, "stream"))
        return -1;
    if (o->batch < 1 || o->threads < 1 || o->images < o->batch || o->warm < 0)
        return -1;
    if (o->size < 64 || o->size > 16384) /* peak's operands: 48 KB to 3 GB */
        return -1;
    if (!strcmp(o->cmd, "ref") && !o->out)
        return -1;
    return 0;
}

/* The benchmark nets; returns 0 for an unknown name. */
static int make_config(const char *net, ff_config *cfg)
{
    ff_config_defaults(cfg);
    cfg->mode = FF_MODE_SUPERVISED;
    cfg->model.label_embedding = FF_EMBED_OVERLAY;
    cfg->optimizer.type = FF_OPT_ADAM;
    cfg->optimizer.lr = 1e-3f;
    cfg->optimizer.weight_decay = 0.0f;
    cfg->schedule.type = FF_SCHED_CONSTANT;
    cfg->train.passes = FF_PASS_ALTERNATE;
    cfg->train.negatives = FF_NEG_RANDOM;
    if (!strcmp(net, "fc")) {
        cfg->model.n_layers = 4;
        for (int l = 0; l < 4; l++)
            cfg->model.layers[l] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 2000};
        return 1;
    }
    if (!strcmp(net, "deep")) { /* padded 3x3 convs with 2x2 max pools between them */
        static const int dch[3] = {32, 64, 128};
        cfg->model.n_layers = 5;
        for (int l = 0; l < 5; l++)
            cfg->model.layers[l] =
                l % 2 ? (ff_layer_cfg){.kind = FF_LAYER_POOL, .pool = FF_POOL_MAX, .kernel = 2,
                                       .stride = 2}
                      : (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = dch[l / 2], .kernel = 3,
                                       .stride = 1, .padding = 1, .groups = 1};
        return 1;
    }
    ff_layer_kind kind;
    if (!strcmp(net, "cnn"))
        kind = FF_LAYER_CONV;
    else if (!strcmp(net, "local"))
        kind = FF_LAYER_LOCAL;
    else
        return 0;
    static const int ch[3] = {128, 220, 512}, k[3] = {10, 2, 2}, s[3] = {6, 1, 1};
    cfg->model.n_layers = 3;
    for (int l = 0; l < 3; l++)
        cfg->model.layers[l] =
            (ff_layer_cfg){.kind = kind, .channels = ch[l], .kernel = k[l], .stride = s[l],
                           .groups = 1}; /* the schema's defaults (validated below) */
    return 1;
}

/* ---------------------------------------------------------------- bench state */

/* The benchmark drives the library's trainer (include/ff/trainer.h) exactly as
 * `ffrun` does: ff_trainer_next per batch. Nothing of the batch step lives here. */
typedef struct bench {
    const opts *o;
    ff_trainer tr;
    int cursor;                  /* eval chunks: position in the trainer's order */
    ff_step_stats last;          /* the last batch's per-layer terms */
} bench;

/* The config: a same-work net (make_config) or a config file as users run it,
 * with the benchmark's batch, data and image count. */
static int bench_config(const opts *o, ff_config *cfg, ff_err *err)
{
    int rc;
    if (o->config) {
        if ((rc = ff_config_load(cfg, o->config, err)))
            return rc;
    } else if (!make_config(o->net, cfg)) {
        return ff_err_set(err, FF_ERR_USAGE, "unknown net '%s' (fc, cnn, local, deep)", o->net);
    }
    cfg->seed = o->seed;
    if (!o->config || o->batch_given)
        cfg->train.batch_size = o->batch;
    cfg->data.train_limit = o->images;
    cfg->data.test_limit = 1000;
    if (o->data || !o->config) /* --data, else the config's data set (MNIST for --net) */
        snprintf(cfg->data.dir, sizeof cfg->data.dir, "%s", o->data ? o->data : "data/mnist");
    return ff_config_validate(cfg, err);
}

static int bench_setup(bench *b, const opts *o, ff_err *err)
{
    memset(b, 0, sizeof *b);
    b->o = o;
    ff_config cfg;
    int rc = bench_config(o, &cfg, err);
    if (!rc)
        rc = ff_trainer_create(&b->tr, &cfg, NULL, NULL, err);
    if (!rc && b->tr.batch < b->tr.cfg.train.batch_size)
        rc = ff_err_set(err, FF_ERR_USAGE, "%d images < batch %d", b->tr.train.n,
                        b->tr.cfg.train.batch_size);
    return rc;
}

static void bench_free(bench *b) { ff_trainer_free(&b->tr); }

/* One training batch as ffrun runs it (wraps into the next epoch). */
static void train_batch(bench *b) { ff_trainer_next(&b->tr, &b->last); }

/* images per eval chunk, as ff_eval_goodness_scores chunks them */
static int eval_chunk(const bench *b) { return b->tr.net.max_batch / FF_NUM_CLASSES; }

static void eval_chunk_run(bench *b)
{
    ff_trainer *t = &b->tr;
    const int m = eval_chunk(b);
    if (b->cursor + m > t->train.n)
        b->cursor = 0;
    ff_eval_goodness_scores(&t->net, t->cfg.model.label_embedding, &t->train,
                            t->order + b->cursor, m, 0, t->x, t->scores);
    b->cursor += m;
}

/* Runs fn until `seconds` have passed and at least min_iters timed iterations
 * (after `warm` untimed ones); returns the median seconds per iteration. */
static double time_loop(bench *b, void (*fn)(bench *), int warm, int min_iters, double seconds,
                        int *iters, double *cpu)
{
    for (int i = 0; i < warm; i++)
        fn(b);
    int room = 64, n = 0;
    double *t = malloc(sizeof(double) * (size_t)room), *c = malloc(sizeof(double) * (size_t)room);
    const double start = now();
    while (t && c && (n < min_iters || now() - start < seconds)) {
        double t0 = now(), c0 = cpu_now();
        fn(b);
        if (n == room) {
            room *= 2;
            double *nt = realloc(t, sizeof(double) * (size_t)room);
            if (nt)
                t = nt;
            double *nc = realloc(c, sizeof(double) * (size_t)room);
            if (nc)
                c = nc;
            if (!nt || !nc)
                break;
        }
        c[n] = cpu_now() - c0;
        t[n++] = now() - t0;
    }
    double med = t && n ? median(t, n) : NAN;
    *cpu = c && n ? median(c, n) : NAN;
    free(t);
    free(c);
    *iters = n;
    return med;
}

/* ---------------------------------------------------------------- GEMM-only bound */

/* Replays calls[0..n) back to back on plain sgemm, on the very operands they had
 * (the net's buffers: same sizes, strides and cache behaviour, nothing else in
 * between); median seconds per replay of the whole list. Overwrites the outputs. */
static double gemm_replay(gemm_call *cl, int n, double seconds, double *cpu)
{
    double ts[256], cs[256];
    int reps = 0;
    const double start = now();
    for (int r = -1; r < 256 && (r < 3 || now() - start < seconds); r++) {
        double t0 = now(), c0 = cpu_now();
        for (int i = 0; i < n; i++) {
            gemm_call *g = &cl[i];
            double t1 = now();
            __real_cblas_sgemm(g->order, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->lda,
                               g->b, g->ldb, g->beta, g->c, g->ldc);
            if (r >= 0)
                g->t_replay += now() - t1;
        }
        if (r >= 0) { /* r = -1 warms up */
            cs[reps] = cpu_now() - c0;
            ts[reps++] = now() - t0;
        }
    }
    for (int i = 0; i < n; i++)
        cl[i].t_replay /= reps ? reps : 1;
    *cpu = reps ? median(cs, reps) : NAN;
    return reps ? median(ts, reps) : NAN;
}

/* --verbose: every recorded call with its time in place and in the replay */
static void print_calls(const char *what, const gemm_call *cl, int n)
{
    for (int i = 0; i < n; i++) {
        const gemm_call *g = &cl[i];
        fprintf(stderr, "%s gemm %3d: %c%c M=%-6d N=%-6d K=%-6d lda=%-6d beta=%g  "
                        "in place %8.3f ms  replay %8.3f ms  (%.0f GFLOP/s)\n",
                what, i, g->ta == CblasNoTrans ? 'N' : 'T', g->tb == CblasNoTrans ? 'N' : 'T',
                g->m, g->n, g->k, g->lda, g->beta, 1e3 * g->t_inplace, 1e3 * g->t_replay,
                2e-9 * g->m * (double)g->n * g->k / g->t_replay);
    }
}

static double gemm_flops(const gemm_call *cl, int n)
{
    double f = 0.0;
    for (int i = 0; i < n; i++)
        f += 2.0 * cl[i].m * (double)cl[i].n * cl[i].k;
    return f;
}

/* ---------------------------------------------------------------- run */

/* Runs `iters` traced training batches (or eval chunks), the first one recording
 * its sgemm calls into *rec; fills bk with the per-batch bucket times (seconds)
 * and returns the per-batch wall time. */
static double trace(bench *b, int eval, int iters, call_list *rec, double bk[T_COUNT],
                    double lbk[FF_MAX_LAYERS][T_COUNT])
{
    tracing = 1;
    memset(bucket, 0, sizeof bucket);
    memset(layer_bucket, 0, sizeof layer_bucket);
    rec->n = 0;
    const double t0 = now();
    for (int i = 0; i < iters; i++) {
        recording = i == 0 ? rec : NULL;
        if (eval)
            eval_chunk_run(b);
        else
            train_batch(b);
    }
    const double total = now() - t0;
    recording = NULL;
    tracing = 0;
    for (int k = 0; k < T_COUNT; k++) {
        bk[k] = bucket[k] / iters;
        for (int l = 0; lbk && l < FF_MAX_LAYERS; l++)
            lbk[l][k] = layer_bucket[l][k] / iters;
    }
    return total / iters;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static void print_breakdown(const char *name, const double *bk, double total)
{
    const double other = bk[T_LAYER] - bk[T_GEMM] - bk[T_IM2COL];
    const double known = bk[T_LAYER] + bk[T_NORM] + bk[T_LOSS] + bk[T_GOOD] + bk[T_OPTIM] +
                         bk[T_EMBED];
    printf(",\"%s\":{\"total_ms\":%.3f,\"gemm_ms\":%.3f,\"im2col_ms\":%.3f,"
           "\"layer_other_ms\":%.3f,\"normalize_ms\":%.3f,\"loss_ms\":%.3f,"
           "\"goodness_ms\":%.3f,\"optim_ms\":%.3f,\"data_ms\":%.3f,\"rest_ms\":%.3f}",
           name, 1e3 * total, 1e3 * bk[T_GEMM], 1e3 * bk[T_IM2COL], 1e3 * other,
           1e3 * bk[T_NORM], 1e3 * bk[T_LOSS], 1e3 * bk[T_GOOD], 1e3 * bk[T_OPTIM],
           1e3 * bk[T_EMBED], 1e3 * (total - known));
}

/* each layer's forward + backward time and its sgemm and im2col share, ms per batch */
static void print_layers(const char *name, const ff_net *net, double lbk[FF_MAX_LAYERS][T_COUNT])
{
    printf(",\"%s\":[", name);
    for (int l = 0; l < net->n_layers; l++) {
        const ff_layer *L = &net->layers[l];
        printf("%s{\"layer\":%d,\"kind\":\"%s\",\"direct\":%d,\"ms\":%.3f,\"gemm_ms\":%.3f,"
               "\"im2col_ms\":%.3f}",
               l ? "," : "", l, ff_config_layer_kind_name(L->kind), L->direct && !L->const_c,
               1e3 * lbk[l][T_LAYER], 1e3 * lbk[l][T_GEMM], 1e3 * lbk[l][T_IM2COL]);
    }
    printf("]");
}

/* The sgemm calls of one training batch and one evaluation chunk with every conv
 * layer on its im2col + GEMM path (the direct loops switched off meanwhile) into
 * train_calls and eval_calls; returns how many layers run on the direct loops. */
static int record_as_gemms(bench *b)
{
    ff_net *net = &b->tr.net;
    int direct[FF_MAX_LAYERS], n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        direct[l] = net->layers[l].direct;
        n += direct[l] && net->layers[l].const_c == 0;
    }
    if (!n)
        return 0;
    for (int l = 0; l < net->n_layers; l++)
        net->layers[l].direct = 0;
    double bk[T_COUNT];
    trace(b, 0, 1, &train_calls, bk, NULL);
    trace(b, 1, 1, &eval_calls, bk, NULL);
    for (int l = 0; l < net->n_layers; l++)
        net->layers[l].direct = direct[l];
    return n;
}

/* `run` (throughput, breakdown and GEMM-only bound) and `gemm` (only the bound,
 * with every recorded call on stdout). */
static int cmd_run(const opts *o, int gemm_only, ff_err *err)
{
    bench b;
    int rc = bench_setup(&b, o, err);
    if (rc) {
        bench_free(&b);
        return rc;
    }
    const int B = b.tr.batch, chunk = eval_chunk(&b);
    const double rss_setup = peak_rss_mb();

    /* throughput, wrappers off */
    int n_train = 0, n_eval = 0;
    double t_train = NAN, t_eval = NAN, c_train = NAN, c_eval = NAN;
    if (!gemm_only) {
        t_train = time_loop(&b, train_batch, 2, 3, o->seconds, &n_train, &c_train);
        t_eval = time_loop(&b, eval_chunk_run, 1, 3, o->seconds * 0.5, &n_eval, &c_eval);
    }
    const double rss = peak_rss_mb();

    /* breakdown, wrappers on (a warm-up batch first when nothing ran yet) */
    const int nbd = gemm_only ? 1 : B >= 1000 ? 2 : 6;
    double bk_train[T_COUNT], bk_eval[T_COUNT];
    if (gemm_only) {
        train_batch(&b);
        eval_chunk_run(&b);
    }
    double lbk_train[FF_MAX_LAYERS][T_COUNT], lbk_eval[FF_MAX_LAYERS][T_COUNT];
    layer_base = b.tr.net.layers;
    layer_count = b.tr.net.n_layers;
    const double total_train = trace(&b, 0, nbd, &train_calls, bk_train, lbk_train);
    const double total_eval = trace(&b, 1, nbd, &eval_calls, bk_eval, lbk_eval);
    const int direct = record_as_gemms(&b);

    /* GEMM-only bound */
    double gc_train, gc_eval;
    const double g_train = gemm_replay(train_calls.c, train_calls.n, 1.5, &gc_train);
    const double g_eval = gemm_replay(eval_calls.c, eval_calls.n, 1.0, &gc_eval);
    const double flop_train = gemm_flops(train_calls.c, train_calls.n) / B;
    const double flop_eval = gemm_flops(eval_calls.c, eval_calls.n) / chunk;

    printf("{\"impl\":\"ffrun\",\"net\":\"%s\",\"config\":\"%s\",\"batch\":%d,\"threads\":%d,\"pool\":%d,\"params\":%zu,"
           "\"blas\":\"OpenBLAS %s\",\"eval_chunk\":%d,"
           "\"train_flop_per_img\":%.6g,\"eval_flop_per_img\":%.6g,"
           "\"gemm_bound_train_ips\":%.2f,\"gemm_bound_eval_ips\":%.2f,"
           "\"gemm_calls_train\":%d,\"gemm_calls_eval\":%d,\"direct_layers\":%d",
           o->config ? "" : o->net, o->config ? o->config : "", B, o->threads, ff_pool_threads(), b.tr.net.n_params, openblas_get_corename(), chunk, flop_train,
           flop_eval, B / g_train, chunk / g_eval, train_calls.n, eval_calls.n, direct);
    if (gemm_only) {
        const call_list *lists[2] = {&train_calls, &eval_calls};
        for (int k = 0; k < 2; k++) {
            printf(",\"%s_calls\":[", k ? "eval" : "train");
            for (int i = 0; i < lists[k]->n; i++) {
                const gemm_call *g = &lists[k]->c[i];
                printf("%s{\"trans\":\"%c%c\",\"m\":%d,\"n\":%d,\"k\":%d,\"lda\":%d,"
                       "\"ldb\":%d,\"ldc\":%d,\"beta\":%g,\"ms\":%.4f}",
                       i ? "," : "", g->ta == CblasNoTrans ? 'N' : 'T',
                       g->tb == CblasNoTrans ? 'N' : 'T', g->m, g->n, g->k, g->lda, g->ldb,
                       g->ldc, g->beta, 1e3 * g->t_replay);
            }
            printf("]");
        }
        printf("}\n");
        bench_free(&b);
        return FF_OK;
    }
    printf(",\"train_ips\":%.2f,\"train_batches\":%d,\"eval_ips\":%.2f,\"eval_chunks\":%d,"
           "\"rss_setup_mb\":%.1f,\"peak_rss_mb\":%.1f",
           B / t_train, n_train, chunk / t_eval, n_eval, rss_setup, rss);
    /* CPU time per batch (all threads): on a busy machine the 1-thread ratio of these
     * is what the wall-time ratio would be on a quiet one */
    printf(",\"train_cpu_ms\":%.3f,\"gemm_bound_train_cpu_ms\":%.3f,\"eval_cpu_ms\":%.3f,"
           "\"gemm_bound_eval_cpu_ms\":%.3f",
           1e3 * c_train, 1e3 * gc_train, 1e3 * c_eval, 1e3 * gc_eval);
    print_breakdown("bd_train", bk_train, total_train);
    print_breakdown("bd_eval", bk_eval, total_eval);
    print_layers("layers_train", &b.tr.net, lbk_train);
    print_layers("layers_eval", &b.tr.net, lbk_eval);
    printf(",\"loss_last\":[");
    for (int l = 0; l < b.last.n_layers; l++)
        printf("%s%.5f", l ? "," : "", b.last.loss_pos[l] + b.last.loss_neg[l]);
    printf("]}\n");
    if (o->verbose) {
        print_calls("train", train_calls.c, train_calls.n);
        print_calls("eval", eval_calls.c, eval_calls.n);
    }
    bench_free(&b);
    return FF_OK;
}

/* ---------------------------------------------------------------- reference file */

static int write_floats(FILE *f, const float *v, size_t n)
{
    return fwrite(v, sizeof(float), n, f) == n ? 0 : -1;
}

/* Layout after the JSON header line (all float32, little-endian):
 *   params[n] m[n] v[n]                    state after `warm` training batches
 *   x_pos[B*in_dim] x_neg[B*in_dim]        the embedded inputs of the next batch
 *   for the positive then the negative pass:
 *     loss[n_layers] grads[n] params[n]    layer losses, gradients, params after the step */
/* ref --config FILE for a train.loss competition config (bench/ff_ref.py check, its
 * CwcNet): after the JSON header line (format ffrun-ref-cwc), float32 arrays
 *   params[n] m[n] v[n]          the net's state after `warm` training batches
 *   stats[sum over layers of 2 C + 1]   each layer's running mean, variance, batches seen
 *   head[head_n]                 the softmax head's parameters (W [10, F], b [10])
 *   x[B*in_dim] labels[B]        the next batch's inputs and labels (as floats)
 *   loss[n_layers] grads[n] params[n]   layer losses, gradients, params after the step
 *   head_loss[1] head_grads[head_n]     the head's loss and gradients of that step */
static int write_ref_competition(const opts *o, bench *b, ff_err *err)
{
    const ff_trainer *t = &b->tr;
    int rc = FF_OK;
    for (int i = 0; i < o->warm; i++)
        train_batch(b);
    const size_t n = t->net.n_params, xn = (size_t)t->batch * t->in_dim;
    if ((size_t)t->batch > sizeof cap.labels[0])
        return ff_err_set(err, FF_ERR_USAGE, "ref: batch %d > %zu", t->batch, sizeof cap.labels[0]);
    const size_t head_n = t->ro.n_params;
    float *mem = malloc(sizeof(float) * (xn + 2 * n + (size_t)t->batch + head_n));
    FILE *f = mem ? fopen(o->out, "wb") : NULL;
    if (!f) {
        free(mem);
        return ff_err_set(err, mem ? FF_ERR_IO : FF_ERR_NOMEM, "%s: cannot write", o->out);
    }
    fprintf(f, "{\"format\":\"ffrun-ref-cwc\",\"version\":1,\"config\":\"%s\",\"batch\":%d,"
               "\"input\":[%d,%d,%d],\"n_params\":%zu,\"lr\":%.9g,\"beta1\":%.9g,"
               "\"beta2\":%.9g,\"eps\":%.9g,\"norm_eps\":%.9g,\"t\":%lld,\"head_n\":%zu,"
               "\"head_lr\":%.9g,\"head_t\":%lld,\"layers\":[",
            o->config, t->batch, t->in_shape.c, t->in_shape.h, t->in_shape.w, n,
            ff_optim_schedule_lr(&t->cfg, t->step, t->total_steps), t->opt.beta1, t->opt.beta2,
            t->opt.eps, t->net.norm_eps, (long long)t->opt.t, head_n, t->cfg.clf.lr,
            (long long)t->ro.opt.t);
    for (int l = 0; l < t->net.n_layers; l++) {
        const ff_layer *L = &t->net.layers[l];
        fprintf(f, "%s{\"in\":[%d,%d,%d],\"out\":[%d,%d,%d],\"n_weights\":%zu,\"n_bias\":%zu,"
                   "\"n_affine\":%zu}", l ? "," : "", L->in.c, L->in.h, L->in.w, L->out.c,
                L->out.h, L->out.w, L->n_weights, L->n_bias, L->n_affine);
    }
    fprintf(f, "]}\n");
    int bad = write_floats(f, t->net.params, n) || write_floats(f, t->opt.state, 2 * n);
    for (int l = 0; l < t->net.n_layers && !bad; l++) {
        if (!t->net.comp_stats[l]) {
            rc = ff_err_set(err, FF_ERR_USAGE, "ref --config: no batch statistics (competition_norm)");
            break;
        }
        bad = write_floats(f, t->net.comp_stats[l], 2 * (size_t)t->net.layers[l].out.c + 1);
    }
    bad = bad || write_floats(f, t->ro.params, head_n);
    cap = (ref_capture){.on = 1, .in_dim = t->in_dim, .n = n, .rows = (size_t)t->batch,
                        .x = {mem}, .grads = {mem + xn}, .params = {mem + xn + n},
                        .head_n = head_n, .head_grads = mem + xn + 2 * n + (size_t)t->batch};
    if (!rc)
        train_batch(b);
    cap.on = 0;
    if (rc) {
    } else if (cap.passes != 1 || cap.steps != 1 || cap.head_steps != 1) {
        rc = ff_err_set(err, FF_ERR_RUNTIME, "ref: captured %d passes, %d steps and %d head "
                        "steps, expected 1", cap.passes, cap.steps, cap.head_steps);
    } else {
        float loss[FF_MAX_LAYERS], *lab = mem + xn + 2 * n;
        for (int i = 0; i < t->batch; i++)
            lab[i] = cap.labels[0][i];
        for (int l = 0; l < t->net.n_layers; l++)
            loss[l] = cap.loss[0][l].loss_pos;
        bad = bad || write_floats(f, cap.x[0], xn) || write_floats(f, lab, (size_t)t->batch) ||
              write_floats(f, loss, (size_t)t->net.n_layers) || write_floats(f, cap.grads[0], n) ||
              write_floats(f, cap.params[0], n) || write_floats(f, &b->last.head_loss, 1) ||
              write_floats(f, cap.head_grads, head_n);
        if (bad)
            rc = ff_err_set(err, FF_ERR_IO, "%s: write failed", o->out);
    }
    if (fclose(f) && !rc)
        rc = ff_err_set(err, FF_ERR_IO, "%s: write failed", o->out);
    free(mem);
    return rc;
}

static int write_ref(const opts *o, ff_err *err)
{
    if (o->config) {
        bench cb;
        int crc = bench_setup(&cb, o, err);
        if (!crc && cb.tr.objective.loss != FF_LOSS_COMPETITION)
            crc = ff_err_set(err, FF_ERR_USAGE, "ref --config: train.loss competition configs "
                             "only (the others: --net)");
        if (!crc)
            crc = write_ref_competition(o, &cb, err);
        bench_free(&cb);
        return crc;
    }
    bench b;
    int rc = bench_setup(&b, o, err);
    FILE *f = NULL;
    float *mem = NULL;
    const ff_trainer *t = &b.tr;
    if (rc)
        goto done;
    for (int i = 0; i < o->warm; i++)
        train_batch(&b);
    const size_t n = t->net.n_params, xn = (size_t)t->batch * t->in_dim;
    mem = malloc(sizeof(float) * (2 * xn + 4 * n));
    if (!mem) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory");
        goto done;
    }
    f = fopen(o->out, "wb");
    if (!f) {
        rc = ff_err_set(err, FF_ERR_IO, "%s: cannot open for writing", o->out);
        goto done;
    }
    fprintf(f, "{\"format\":\"ffrun-ref\",\"version\":1,\"net\":\"%s\",\"batch\":%d,"
               "\"input\":[%d,%d,%d],\"n_params\":%zu,\"lr\":%.9g,\"beta1\":%.9g,"
               "\"beta2\":%.9g,\"eps\":%.9g,\"norm_eps\":%.9g,\"t\":%lld,\"layers\":[",
            o->net, t->batch, t->in_shape.c, t->in_shape.h, t->in_shape.w, n,
            t->cfg.optimizer.lr, t->opt.beta1, t->opt.beta2, t->opt.eps, t->net.norm_eps,
            (long long)t->opt.t);
    for (int l = 0; l < t->net.n_layers; l++) {
        const ff_layer *L = &t->net.layers[l];
        const ff_layer *P = ff_net_pooled(&t->net, l) ? &t->net.pool[l] : NULL;
        fprintf(f, "%s{\"kind\":\"%s\",\"in\":[%d,%d,%d],\"out\":[%d,%d,%d],\"kernel\":%d,"
                   "\"stride\":%d,\"pad\":%d,\"threshold\":%.9g,\"n_weights\":%zu,"
                   "\"n_bias\":%zu",
                l ? "," : "", ff_config_layer_kind_name(L->kind), L->in.c, L->in.h, L->in.w, L->out.c,
                L->out.h, L->out.w, L->kernel, L->stride, L->pad, L->threshold, L->n_weights,
                L->n_bias);
        if (P) /* the pool folded into this layer's input */
            fprintf(f, ",\"pool\":{\"kind\":\"%s\",\"kernel\":%d,\"stride\":%d}",
                    P->pool == FF_POOL_MAX ? "max" : "avg", P->kernel, P->stride);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
    int bad = write_floats(f, t->net.params, n) || write_floats(f, t->opt.state, 2 * n);
    /* the next batch, exactly as the trainer takes it, with its passes captured */
    cap = (ref_capture){.on = 1, .in_dim = t->in_dim, .n = n, .rows = (size_t)t->batch,
                        .x = {mem, mem + xn}, .grads = {mem + 2 * xn, mem + 2 * xn + n},
                        .params = {mem + 2 * xn + 2 * n, mem + 2 * xn + 3 * n}};
    train_batch(&b);
    cap.on = 0;
    if (cap.passes != 2 || cap.steps != 2) {
        rc = ff_err_set(err, FF_ERR_RUNTIME, "ref: captured %d passes and %d steps, expected 2",
                        cap.passes, cap.steps);
        goto done;
    }
    bad = bad || write_floats(f, cap.x[0], xn) || write_floats(f, cap.x[1], xn);
    for (int pass = 0; pass < 2 && !bad; pass++) {
        float loss[FF_MAX_LAYERS];
        for (int l = 0; l < t->net.n_layers; l++)
            loss[l] = pass ? cap.loss[1][l].loss_neg : cap.loss[0][l].loss_pos;
        bad = write_floats(f, loss, (size_t)t->net.n_layers) ||
              write_floats(f, cap.grads[pass], n) || write_floats(f, cap.params[pass], n);
    }
    if (bad || fclose(f)) {
        f = NULL;
        rc = ff_err_set(err, FF_ERR_IO, "%s: write failed", o->out);
        goto done;
    }
    f = NULL;
done:
    if (f)
        fclose(f);
    free(mem);
    bench_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- peak */

/* The best rate of square size^3 sgemm products over o->seconds (at least 3 timed,
 * after one untimed): the yardstick for "how close to the machine" the nets' own
 * calls run, since the cores may boost above the clock /proc/cpuinfo reports. */
static int cmd_peak(const opts *o, ff_err *err)
{
    const size_t n = (size_t)o->size;
    float *a = malloc(sizeof(float) * n * n * 3);
    if (!a)
        return ff_err_set(err, FF_ERR_NOMEM, "peak: %zu MB for the operands", 12 * n * n >> 20);
    float *bm = a + n * n, *c = bm + n * n;
    for (size_t i = 0; i < 2 * n * n; i++)
        a[i] = (float)((uint32_t)(i * 2654435761u) >> 24) / 256.0f - 0.5f;
    double best = INFINITY;
    const double start = now();
    for (int r = -1; r < 3 || now() - start < o->seconds; r++) {
        const double t0 = now();
        __real_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o->size, o->size, o->size,
                           1.0f, a, o->size, bm, o->size, 0.0f, c, o->size);
        const double t = now() - t0;
        if (r >= 0 && t < best)
            best = t;
    }
    printf("{\"peak_sgemm\": {\"size\": %d, \"threads\": %d, \"gflops\": %.2f}}\n", o->size,
           o->threads, 2e-9 * (double)n * n * n / best);
    free(a);
    return 0;
}

/* ---------------------------------------------------------------- stream */

typedef struct copy_job {
    const float *a;
    float *b;
} copy_job;

static void copy_chunk(void *ctx, size_t b, size_t e)
{
    const copy_job *j = ctx;
    memcpy(j->b + b, j->a + b, sizeof(float) * (e - b));
}

/* Memory bandwidth as the optimiser sees it, on the pool's threads (--pool, default
 * --threads): a copy of `size` floats (8 bytes a float: one read, one write) and
 * the Adam step itself (ff_optim_step on `size` parameters: p, g, m, v read, p, m, v
 * written, 28 bytes a parameter); best time over S seconds, GB/s. */
static int cmd_stream(const opts *o, ff_err *err)
{
    const size_t n = (size_t)o->size * (size_t)o->size; /* --size 3685: 13.6M, the fc net */
    float *a = malloc(sizeof(float) * n * 2), *g = malloc(sizeof(float) * n);
    ff_optim opt;
    const ff_optim_params prm = {.kind = FF_OPT_ADAM, .beta1 = 0.9f, .beta2 = 0.999f,
                                 .eps = 1e-8f};
    if (!a || !g || ff_optim_init(&opt, &prm, n, err)) {
        free(a), free(g);
        return err->code ? err->code : ff_err_set(err, FF_ERR_NOMEM, "stream: out of memory");
    }
    for (size_t i = 0; i < 2 * n; i++)
        a[i] = (float)(i & 1023) * 1e-3f;
    for (size_t i = 0; i < n; i++)
        g[i] = (float)(i & 511) * 1e-4f;
    copy_job cj = {a, a + n};
    double best_copy = INFINITY, best_adam = INFINITY;
    const double start = now();
    for (int r = -1; r < 3 || now() - start < o->seconds; r++) {
        double t0 = now();
        ff_pool_for(n, 16384, copy_chunk, &cj);
        double t1 = now();
        ff_optim_step(&opt, a, g, 1e-3f);
        double t2 = now();
        if (r >= 0) {
            best_copy = t1 - t0 < best_copy ? t1 - t0 : best_copy;
            best_adam = t2 - t1 < best_adam ? t2 - t1 : best_adam;
        }
    }
    printf("{\"stream\": {\"floats\": %zu, \"pool\": %d, \"copy_gbs\": %.2f, "
           "\"adam_ms\": %.3f, \"adam_gbs\": %.2f}}\n",
           n, ff_pool_threads(), 8e-9 * (double)n / best_copy, 1e3 * best_adam,
           28e-9 * (double)n / best_adam);
    ff_optim_free(&opt);
    free(a), free(g);
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    ff_blas_ensure_fast_core(argv); /* may re-execute with OPENBLAS_CORETYPE set */
    opts o;
    if (parse_args(argc, argv, &o))
        return usage();
    ff_run_fp_fast_mode(); /* FTZ + DAZ, as the trainer */
    openblas_set_num_threads(o.threads);
    if (o.pool > 0)
        ff_pool_set_threads(o.pool);
    else
        ff_pool_follow_blas();
    ff_err err = {0};
    if (!strcmp(o.cmd, "core")) { /* the kernel set OpenBLAS runs here (after ff_blas_...) */
        printf("%s\n", openblas_get_corename());
        return 0;
    }
    int rc = !strcmp(o.cmd, "ref")      ? write_ref(&o, &err)
             : !strcmp(o.cmd, "peak")   ? cmd_peak(&o, &err)
             : !strcmp(o.cmd, "stream") ? cmd_stream(&o, &err)
                                      : cmd_run(&o, !strcmp(o.cmd, "gemm"), &err);
    if (rc) {
        fprintf(stderr, "ff-bench: %s\n", err.msg);
        return ff_err_exit_status(rc);
    }
    return 0;
}
