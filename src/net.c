/* net.c - building a layer stack and running its forward pass (include/ff/net.h). */
#include "ff/net.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff/embed.h"
#include "ff/objective.h"
#include "ff/pool.h"
#include "ff/rng.h"

static int alloc_floats(float **p, size_t n, const char *what, ff_err *err)
{
    *p = calloc(n ? n : 1, sizeof(float));
    if (!*p)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for %s (%zu floats)", what, n);
    return FF_OK;
}

/* How many trailing input channels of layer l are label planes (constant over
 * each sample's plane), which layers with receptive fields (conv, local) take as
 * a per-sample bias: the channels embedding's 10 planes at the input,
 * label_every_layer's later. Padding pads the other channels only: a label plane
 * holds its value at every window position, the border included. */
static int label_planes(const ff_net_spec *spec, int l, const ff_layer *L)
{
    if (!ff_layer_ops_of(L->kind)->receptive_fields || !spec->label_input)
        return 0;
    if (l == 0)
        return spec->label_embedding == FF_EMBED_CHANNELS &&
                       L->in.c > FF_NUM_CLASSES ? FF_NUM_CLASSES : 0; /* C image planes first */
    return spec->label_every_layer ? FF_NUM_CLASSES : 0;
}

/* points a layer-setup message at the layer's place in the config:
 * "configs/x.yaml:4:7: layer 1: conv kernel 5 does not fit input 8x4x4" */
static int layer_error_at(const ff_net_spec *spec, int l, ff_err *err)
{
    const ff_layer_cfg *lc = &spec->layers[l];
    const char *origin = spec->origin && spec->origin[0] ? spec->origin : "config";
    if (lc->line > 0)
        return ff_err_prefix(err, "%s:%d:%d", origin, lc->line, lc->col);
    return ff_err_prefix(err, "%s", origin);
}

/* layers entry ci, if it is an input stage (a pool), becomes net->pool[l] of the next
 * trainable layer l and maps *shape to its output (*pooled: the largest pool output so
 * far): returns 1; FF_OK (0) if entry ci is a trainable layer; an error for a bad pool
 * or two pools in a row. */
static int fold_pool(ff_net *net, const ff_net_spec *spec, int ci, int l, ff_shape *shape,
                     size_t *pooled, ff_err *err)
{
    const ff_layer_ops *ops = ff_layer_ops_of(spec->layers[ci].kind);
    if (!ops || !ops->input_stage)
        return FF_OK;
    if (ff_net_pooled(net, l)) {
        ff_err_set(err, FF_ERR_USAGE, "layer %d: two pools in a row (use one with a larger "
                   "kernel or stride)", ci);
        return layer_error_at(spec, ci, err);
    }
    if (ff_layer_setup(&net->pool[l], &spec->layers[ci], *shape, ci, err))
        return layer_error_at(spec, ci, err);
    *shape = net->pool[l].out;
    if ((size_t)ff_shape_dim(*shape) > *pooled)
        *pooled = (size_t)ff_shape_dim(*shape);
    return 1;
}

/* the layer's views into the net's flat parameter and gradient buffers */
static void set_views(ff_layer *L, float *params, float *grads)
{
    L->W = params + L->param_off;
    L->b = L->W + L->n_weights;
    L->affine = L->n_affine ? L->b + L->n_bias : NULL;
    L->gW = grads + L->param_off;
    L->gb = L->gW + L->n_weights;
    L->gaffine = L->n_affine ? L->gb + L->n_bias : NULL;
    L->Wtd = L->n_topdown ? L->b + L->n_bias + L->n_affine : NULL;
    L->gWtd = L->n_topdown ? L->gb + L->n_bias + L->n_affine : NULL;
}

ff_net_spec ff_net_spec_of(const ff_config *cfg, ff_shape input, int max_batch)
{
    return (ff_net_spec){.origin = cfg->origin, .layers = cfg->model.layers,
                         .n_layers = cfg->model.n_layers, .input = input,
                         .max_batch = max_batch,
                         .label_input = cfg->mode == FF_MODE_SUPERVISED,
                         .label_embedding = cfg->model.label_embedding,
                         .label_every_layer = cfg->model.label_every_layer,
                         .hand_on_batch = cfg->model.hand_on == FF_HAND_BATCH,
                         .head_norm_batch = cfg->clf.norm == FF_CLF_NORM_BATCH,
                         .loss_after_pool = cfg->model.loss_after_pool,
                         .norm_eps = cfg->model.norm_eps, .eval_layers = cfg->eval.layers,
                         .n_eval_layers = cfg->eval.n_layers,
                         .recurrent = cfg->model.recurrent.iterations > 0};
}

/* What the layers need beyond their parameters, summed while they are set up. */
typedef struct net_sizes {
    size_t ws, acts, max_out, patches, pooled, max_c;
} net_sizes;

/* Trainable layer ci of the spec as net->layers[l] on input `shape`: its geometry, label
 * planes, what the objective gives it (slope, affine floats, running statistics) and
 * its share of the buffers. */
static int setup_layer(ff_net *net, const ff_net_spec *spec, const ff_objective *obj, int ci,
                       int l, ff_shape shape, net_sizes *z, ff_err *err)
{
    ff_layer *L = &net->layers[l];
    if (l > 0 && net->label_every_layer)
        shape.c += FF_NUM_CLASSES; /* fc outputs are {units, 1, 1}: 10 more inputs */
    if (ff_layer_setup(L, &spec->layers[ci], shape, ci, err))
        return layer_error_at(spec, ci, err);
    if (obj->loss == FF_LOSS_COMPETITION && L->out.c % FF_CLASS_GROUPS) {
        ff_err_set(err, FF_ERR_USAGE, "layer %d: train.loss competition splits the %s of every "
                   "layer into %d class groups, but this layer has %d", ci,
                   L->kind == FF_LAYER_FC ? "units" : "channels", FF_CLASS_GROUPS, L->out.c);
        return layer_error_at(spec, ci, err);
    }
    L->const_c = label_planes(spec, l, L);
    if (L->groups > 1 && L->const_c) {
        ff_err_set(err, FF_ERR_USAGE, "layer %d: conv groups %d cannot take the %d label "
                   "planes of %s (they would fall into the last group only): use groups 1 "
                   "here, or no label planes", ci, L->groups, L->const_c,
                   l == 0 ? "model.label_embedding channels" : "model.label_every_layer");
        return layer_error_at(spec, ci, err);
    }
    const size_t out = (size_t)ff_shape_dim(L->out);
    L->slope = ff_objective_slope(obj, (int)out);
    L->n_affine = obj->comp_norm == FF_COMP_AFFINE ? 2 * (size_t)L->out.c : 0;
    L->param_off = net->n_params;
    net->n_params += ff_layer_n_params(L);
    const size_t w = ff_layer_workspace(L, spec->max_batch);
    z->ws = w > z->ws ? w : z->ws;
    z->acts += (size_t)ff_shape_dim(L->in) + out;
    if (!spec->recurrent) /* the recurrent net keeps no patches (src/recurrent.c) */
        z->patches += ff_layer_patch_floats(L) * (size_t)spec->max_batch;
    net->n_aux += out + ff_objective_channel_stats_floats(obj, L->out); /* the objective's */
    z->max_c = (size_t)L->out.c > z->max_c ? (size_t)L->out.c : z->max_c;
    z->max_out = out > z->max_out ? out : z->max_out;
    return FF_OK;
}

/* the spec's entry of trainable layer l (pools are folded into the next layer) */
static int spec_entry(const ff_net_spec *spec, int l)
{
    int ci = 0;
    for (int k = 0; ci < spec->n_layers; ci++) {
        const ff_layer_ops *ops = ff_layer_ops_of(spec->layers[ci].kind);
        if ((!ops || !ops->input_stage) && k++ == l)
            break;
    }
    return ci;
}

/* model.recurrent: layer l's top-down map from what comes down (layer l + 1's output, or
 * the 10 label values at the top): locally connected when l and l + 1 are local layers
 * (l's kernel, stride 1, "same" padding: l + 1's grid must be l's and the kernel odd),
 * dense otherwise; its floats and its fan-in count go with the layer */
static int topdown_geometry(ff_net *net, const ff_net_spec *spec, int l, ff_err *err)
{
    ff_layer *L = &net->layers[l];
    const ff_layer *A = l + 1 < net->n_layers ? &net->layers[l + 1] : NULL;
    L->td_dim = A ? ff_shape_dim(A->out) : FF_NUM_CLASSES;
    L->td_local = A && L->kind == FF_LAYER_LOCAL && A->kind == FF_LAYER_LOCAL;
    L->n_topdown = (size_t)ff_shape_dim(L->out) * (size_t)L->td_dim;
    if (!L->td_local)
        return FF_OK;
    if (L->kernel % 2 == 0) {
        ff_err_set(err, FF_ERR_USAGE, "layer %d: model.recurrent: the top-down input of a local "
                   "layer comes through its own kernel with stride 1 and same padding, which needs "
                   "an odd kernel, got %d", spec_entry(spec, l), L->kernel);
        return layer_error_at(spec, spec_entry(spec, l), err);
    }
    if (A->out.h != L->out.h || A->out.w != L->out.w) {
        ff_err_set(err, FF_ERR_USAGE, "layer %d: model.recurrent: local layer %d's top-down "
                   "input comes from this layer's output %dx%dx%d through layer %d's %dx%d "
                   "kernel with stride 1 and same padding, so its grid must be layer %d's %dx%d",
                   spec_entry(spec, l + 1), l, A->out.c, A->out.h, A->out.w, l, L->kernel,
                   L->kernel, l, L->out.h, L->out.w);
        return layer_error_at(spec, spec_entry(spec, l + 1), err);
    }
    L->td_pad = (L->kernel - 1) / 2;
    L->n_topdown = (size_t)ff_shape_dim(L->out) * (size_t)A->out.c * (size_t)L->kernel *
                   (size_t)L->kernel;
    return FF_OK;
}

/* model.recurrent: every layer's top-down weights in its slice after b, so the offsets
 * again */
static int topdown_layout(ff_net *net, const ff_net_spec *spec, ff_err *err)
{
    net->n_params = 0;
    for (int k = 0; k < net->n_layers; k++) {
        ff_layer *L = &net->layers[k];
        int rc = topdown_geometry(net, spec, k, err);
        if (rc)
            return rc;
        L->param_off = net->n_params;
        net->n_params += ff_layer_n_params(L);
    }
    return FF_OK;
}

/* The trainable layers (pools folded into the next one's input) and their sizes. */
static int setup_layers(ff_net *net, const ff_net_spec *spec, const ff_objective *obj,
                        net_sizes *z, ff_err *err)
{
    ff_shape shape = spec->input;
    int l = 0, rc; /* trainable layers so far; ci: the spec's entry */
    for (int ci = 0; ci < spec->n_layers; ci++) {
        if ((rc = fold_pool(net, spec, ci, l, &shape, &z->pooled, err)) == 1)
            continue;
        if (rc || (rc = setup_layer(net, spec, obj, ci, l, shape, z, err)))
            return rc;
        shape = net->layers[l].out;
        net->n_layers = ++l;
    }
    if (spec->recurrent && (rc = topdown_layout(net, spec, err)))
        return rc;
    if (spec->n_layers > 0 &&
        (l == 0 || (ff_net_pooled(net, l) && !spec->loss_after_pool))) {
        ff_err_set(err, FF_ERR_USAGE, "layer %d: a pool must be followed by a trainable layer%s",
                   spec->n_layers - 1,
                   l == 0 ? "" : " (or model.loss_after_pool must be true: the last layer's loss "
                                 "on its pooled output)");
        return layer_error_at(spec, spec->n_layers - 1, err);
    }
    return FF_OK;
}

/* eval.layers: the goodness readout's layers (default every one but the first) */
static int set_evaluated(ff_net *net, const ff_net_spec *spec, ff_err *err)
{
    const int l = net->n_layers;
    for (int k = 0; k < l; k++)
        net->evaluated[k] = spec->n_eval_layers == 0 && (k > 0 || l == 1 || spec->recurrent);
    for (int i = 0; i < spec->n_eval_layers; i++) {
        const int k = spec->eval_layers[i];
        if (k < 0 || k >= l) /* a config built in code (ff_config_validate checks it) */
            return ff_err_set(err, FF_ERR_USAGE, "eval.layers.%d is %d, but the net has %d "
                              "trainable layer%s (0-based, pools not counted)", i, k, l,
                              l == 1 ? "" : "s");
        net->evaluated[k] = 1;
    }
    return FF_OK;
}

/* Points every buffer view into the allocations and initialises the parameters. */
static void lay_out(ff_net *net, const ff_net_spec *spec, const ff_objective *obj,
                    size_t max_out, size_t max_post, size_t scratch, ff_rng *rng)
{
    const int max_batch = spec->max_batch;
    float *p = net->act_mem, *pp = net->patch_mem;
    for (int l = 0; l < net->n_layers; l++) {
        ff_layer *L = &net->layers[l];
        if (ff_layer_patch_floats(L) && net->patch_mem) {
            net->patches[l] = pp;
            pp += ff_layer_patch_floats(L) * (size_t)max_batch;
        }
        net->in[l] = p;
        p += (size_t)ff_shape_dim(L->in) * max_batch;
        net->out[l] = p;
        p += (size_t)ff_shape_dim(L->out) * max_batch;
        if (spec->loss_after_pool && ff_net_pooled(net, l + 1)) {
            net->post[l] = p;
            p += (size_t)ff_shape_dim(net->pool[l + 1].out) * max_batch;
        }
        set_views(L, net->params, net->grads);
        ff_layer_init_params(L, rng);
        const size_t td_fan_in = L->n_topdown / (size_t)ff_shape_dim(L->out); /* td_dim if dense */
        const float td_scale = L->n_topdown ? 1.0f / sqrtf((float)td_fan_in) : 0.0f;
        for (size_t i = 0; i < L->n_topdown; i++) /* model.recurrent: randn / sqrt(fan-in) */
            L->Wtd[i] = ff_rng_normal(rng) * td_scale;
    }
    net->dpre = p;
    p += max_out * (size_t)max_batch;
    if (max_post) {
        net->dpost = p;
        p += max_post * (size_t)max_batch;
    }
    net->goodness = p;
    p += scratch;
    net->ones = p;
    for (int i = 0; i < max_batch; i++)
        net->ones[i] = 1.0f;
    p += max_batch;
    net->aux = p; /* the objective's running statistics: every layer's peer means, then
                     every layer's channel statistics (if it keeps them) */
    for (int l = 0; l < net->n_layers; l++) {
        net->peer_mean[l] = p;
        p += ff_shape_dim(net->layers[l].out);
    }
    for (int l = 0; l < net->n_layers; l++) {
        const size_t n = ff_objective_channel_stats_floats(obj, net->layers[l].out);
        if (n) {
            net->comp_stats[l] = p;
            ff_objective_channel_stats_init(obj, net->layers[l].out, p);
            p += n;
        }
    }
    if (ff_objective_batch_norm(obj))
        net->comp_scratch = p;
}

int ff_net_build_spec(ff_net *net, const ff_net_spec *spec, const ff_objective *obj,
                      ff_rng *rng, ff_err *err)
{
    memset(net, 0, sizeof *net);
    if (spec->label_input) { /* the label goes into every input */
        int rc = ff_embed_check_shape(spec->label_embedding, spec->input, err);
        if (rc)
            return rc;
    }
    net->input = spec->input;
    net->label_every_layer = spec->label_every_layer;
    net->hand_on_batch = spec->hand_on_batch;
    net->head_norm_batch = spec->head_norm_batch;
    net->label_embedding = spec->label_embedding;
    net->norm_eps = spec->norm_eps;
    const int max_batch = net->max_batch = spec->max_batch;
    net_sizes z = {0};
    int rc = setup_layers(net, spec, obj, &z, err);
    if (!rc)
        rc = set_evaluated(net, spec, err);
    if (rc)
        return rc;
    /* model.loss_after_pool: each pooled output its own rows */
    size_t post_total = 0, max_post = 0;
    for (int k = 0; spec->loss_after_pool && k < net->n_layers; k++)
        if (ff_net_pooled(net, k + 1)) {
            const size_t d = (size_t)ff_shape_dim(net->pool[k + 1].out);
            post_total += d;
            max_post = d > max_post ? d : max_post;
        }
    /* net->goodness is the loss's scratch, which peer normalisation reuses for max_batch
     * column means */
    size_t scratch = ff_objective_scratch(obj, max_batch);
    scratch = scratch > (size_t)max_batch ? scratch : (size_t)max_batch;
    const size_t act_total = (z.acts + z.max_out + 1 + post_total + max_post) * (size_t)max_batch +
                             scratch + net->n_aux + ff_objective_channel_scratch(obj, (int)z.max_c);
    if ((rc = alloc_floats(&net->params, net->n_params, "parameters", err)) ||
        (rc = alloc_floats(&net->grads, net->n_params, "gradients", err)) ||
        (rc = alloc_floats(&net->act_mem, act_total, "activations", err)) ||
        (rc = alloc_floats(&net->ws, z.ws, "layer workspace", err)) ||
        (z.patches && (rc = alloc_floats(&net->patch_mem, z.patches, "receptive fields", err))) ||
        (z.pooled &&
         (rc = alloc_floats(&net->pooled, z.pooled * (size_t)max_batch, "pooling", err)))) {
        ff_net_free(net);
        return rc;
    }
    lay_out(net, spec, obj, z.max_out, max_post, scratch, rng);
    return FF_OK;
}

int ff_net_build(ff_net *net, const ff_config *cfg, ff_shape input, int max_batch, ff_rng *rng,
                 ff_err *err)
{
    ff_objective obj; /* what the loss needs of the net: slopes, statistics, scratch */
    int rc = ff_objective_from_config(&obj, cfg, err);
    if (rc) {
        memset(net, 0, sizeof *net);
        return rc;
    }
    const ff_net_spec spec = ff_net_spec_of(cfg, input, max_batch);
    return ff_net_build_spec(net, &spec, &obj, rng, err);
}

void ff_net_use_buffers(ff_net *net, float *params, float *grads)
{
    net->params = params;
    net->grads = grads;
    for (int l = 0; l < net->n_layers; l++)
        set_views(&net->layers[l], params, grads);
}

void ff_net_free(ff_net *net)
{
    free(net->params);
    free(net->grads);
    free(net->act_mem);
    free(net->ws);
    free(net->patch_mem);
    free(net->pooled);
    net->params = net->grads = net->act_mem = net->ws = net->patch_mem = net->pooled = NULL;
}

/* in[l] (l > 0) with label planes: each row is the normalised row of src (the
 * output of layer l - 1, pooled if a pool precedes l; prev_dim floats a row), then
 * the 10 label values of the same row of x, each over one plane */
static void input_with_labels(ff_net *net, int l, const float *src, int prev_dim,
                              const float *x, int batch)
{
    const ff_layer *L = &net->layers[l];
    const int in_dim = ff_shape_dim(L->in), plane = L->in.h * L->in.w;
    const int x_dim = ff_shape_dim(net->input);
    ff_shape image = net->input; /* the image's shape: the input less the label planes */
    if (net->label_embedding == FF_EMBED_CHANNELS)
        image.c -= FF_NUM_CLASSES;
    FF_ASSERT(prev_dim + FF_NUM_CLASSES * plane == in_dim);
    for (int i = 0; i < batch; i++) {
        float *row = net->in[l] + (size_t)i * in_dim, value[FF_NUM_CLASSES];
        ff_objective_normalize(src + (size_t)i * prev_dim, row, 1, prev_dim, net->norm_eps);
        ff_embed_read_label(net->label_embedding, x + (size_t)i * x_dim, image, value);
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            for (int p = 0; p < plane; p++)
                row[prev_dim + k * plane + p] = value[k];
    }
}

/* model.hand_on batch: out[i][c][p] = (src[i][c][p] - mu[c]) * inv[c] for `batch` rows
 * of C channels of hw values (out's rows out_stride floats apart); with affine
 * (competition_norm affine) that times affine[c] plus affine[C + c] */
typedef struct standardise_job {
    const float *src, *mu, *inv, *affine;
    float *out;
    size_t out_stride;
    int C, hw;
} standardise_job;

static void standardise_range(void *ctx, size_t i0, size_t i1)
{
    const standardise_job *j = ctx;
    const size_t dim = (size_t)j->C * (size_t)j->hw;
    for (size_t i = i0; i < i1; i++)
        for (int c = 0; c < j->C; c++) {
            const float *s = j->src + i * dim + (size_t)c * j->hw;
            float *o = j->out + i * j->out_stride + (size_t)c * j->hw;
            const float m = j->mu[c], v = j->inv[c];
            /* without the affine part 1 and 0: 1 * d + 0 is d exactly */
            const float a = j->affine ? j->affine[c] : 1.0f;
            const float b = j->affine ? j->affine[j->C + c] : 0.0f;
#pragma omp simd
            for (int p = 0; p < j->hw; p++)
                o[p] = a * ((s[p] - m) * v) + b;
        }
}

/* dst (rows of in[l]) = src (the output of layer l - 1, pooled if a pool precedes l)
 * standardised per channel with mean mu and 1 / sqrt(var + eps) inv of layer l - 1's
 * channels (a pool keeps the channels), then with layer l - 1's affine part if it has
 * one (as CwComp's pool, then batch norm) */
static void standardise_input(ff_net *net, int l, const float *src, float *dst, int batch,
                              const float *mu, const float *inv)
{
    const ff_shape s = ff_net_pooled(net, l) ? net->pool[l].out : net->layers[l - 1].out;
    FF_ASSERT(ff_shape_dim(s) == ff_shape_dim(net->layers[l].in));
    standardise_job j = {.src = src, .mu = mu, .inv = inv, .affine = net->layers[l - 1].affine,
                         .out = dst, .out_stride = (size_t)ff_shape_dim(s), .C = s.c,
                         .hw = s.h * s.w};
    ff_pool_for((size_t)batch, 4, standardise_range, &j);
}

/* mu and inv (net->comp_scratch[0, C) and [C, 2C)) of layer l's channels from its
 * evaluation statistics (comp_stats) */
static void running_mu_inv(const ff_net *net, int l)
{
    const int C = net->layers[l].out.c;
    const float *run = net->comp_stats[l];
    float *mu = net->comp_scratch, *inv = net->comp_scratch + C;
    for (int c = 0; c < C; c++) {
        mu[c] = run[c];
        inv[c] = 1.0f / sqrtf(run[C + c] + FF_COMP_BN_EPS);
    }
}

void ff_net_standardise_eval(const ff_net *net, int l, int batch, float *out, size_t out_stride)
{
    const ff_shape s = ff_net_loss_shape(net, l);
    const int C = s.c;
    FF_ASSERT(net->comp_stats[l] && C == net->layers[l].out.c);
    running_mu_inv(net, l);
    standardise_job j = {.src = ff_net_loss_out(net, l), .mu = net->comp_scratch,
                         .inv = net->comp_scratch + C, .affine = net->layers[l].affine,
                         .out = out, .out_stride = out_stride, .C = C, .hw = s.h * s.w};
    ff_pool_for((size_t)batch, 4, standardise_range, &j);
}

/* the forward pass of layers [l0, l1) on rows [r0, r0 + batch) of the net's buffers
 * (x: those rows' inputs); with keep, conv/local layers leave their patches in
 * net->patches; for l0 > 0, in[l0] is given */
static void forward_rows(ff_net *net, const float *x, int l0, int l1, int r0, int batch, int keep)
{
    FF_ASSERT(l0 >= 0 && r0 + batch <= net->max_batch);
    const float *src = l0 > 0 ? NULL : x;
    for (int l = l0; l < l1; l++) {
        ff_layer *L = &net->layers[l];
        const size_t in_dim = (size_t)ff_shape_dim(L->in), out_dim = (size_t)ff_shape_dim(L->out);
        float *in = net->in[l] + (size_t)r0 * in_dim;
        if (l > l0 || l0 == 0) { /* l0 > 0: a pipeline stage was handed in[l0] */
            int src_dim = ff_shape_dim(l ? net->layers[l - 1].out : net->input);
            const int pooled = ff_net_pooled(net, l);
            if (pooled && l > 0 && net->post[l - 1]) { /* pooled already (loss_after_pool) */
                src = net->post[l - 1] + (size_t)r0 * ff_shape_dim(net->pool[l].out);
                src_dim = ff_shape_dim(net->pool[l].out);
            } else if (pooled) {
                ff_layer_forward(&net->pool[l], src, net->pooled, batch, NULL, NULL);
                src = net->pooled;
                src_dim = ff_shape_dim(net->pool[l].out);
            }
            if (l > 0 && net->label_every_layer) {
                input_with_labels(net, l, src, src_dim, x, batch);
            } else if (l > 0 && net->hand_on_batch) {
                running_mu_inv(net, l - 1);
                const int C = net->layers[l - 1].out.c;
                standardise_input(net, l, src, in, batch, net->comp_scratch,
                                  net->comp_scratch + C);
            } else {
                ff_objective_normalize(src, in, batch, src_dim, net->norm_eps);
            }
        }
        float *patches = keep && net->patches[l]
                             ? net->patches[l] + (size_t)r0 * ff_layer_patch_floats(L)
                             : NULL;
        ff_layer_forward(L, in, net->out[l] + (size_t)r0 * out_dim, batch, net->ws, patches);
        src = net->out[l] + (size_t)r0 * out_dim;
        if (net->post[l]) /* model.loss_after_pool */
            ff_layer_forward(&net->pool[l + 1], src,
                             net->post[l] + (size_t)r0 * ff_shape_dim(net->pool[l + 1].out), batch,
                             NULL, NULL);
    }
}

/* 1 if layers [l0, l1) are conv layers without label planes or pools: each row's
 * pass through them then needs only that row, and a block of FF_CONV_CHUNK rows is
 * exactly one round (the same sgemm calls) of every layer */
static int row_blockable(const ff_net *net, int l0, int l1)
{
    for (int l = l0; l < l1; l++)
        if (net->layers[l].kind != FF_LAYER_CONV || net->layers[l].const_c ||
            ff_net_pooled(net, l) || (l > 0 && net->label_every_layer))
            return 0;
    return 1;
}

/* the forward pass of layers [l0, l1); a stack of conv layers goes through in blocks
 * of FF_CONV_CHUNK rows, so a block's activations are still in cache for the next
 * layer's normalisation and im2col (the same values: every step is per row) */
static void forward_layers(ff_net *net, const float *x, int l0, int l1, int batch, int keep)
{
    FF_ASSERT(batch <= net->max_batch);
    if (batch <= FF_CONV_CHUNK || !row_blockable(net, l0, l1)) {
        forward_rows(net, x, l0, l1, 0, batch, keep);
        return;
    }
    const size_t x_dim = (size_t)ff_shape_dim(net->input);
    for (int r0 = 0; r0 < batch; r0 += FF_CONV_CHUNK) {
        const int n = batch - r0 < FF_CONV_CHUNK ? batch - r0 : FF_CONV_CHUNK;
        forward_rows(net, x ? x + (size_t)r0 * x_dim : NULL, l0, l1, r0, n, keep);
    }
}

/* sum[r] += w_l * goodness of row r of net->out[l] (rows [r0, r0 + n) of the buffer),
 * for the evaluated layers l in order; layers (if not NULL) gets every layer's goodness,
 * layer l's row r at layers[l * stride + r] */
static void add_goodness(ff_net *net, int r0, int n, int as_logits, float *sum, float *layers,
                         int stride)
{
    for (int l = 0; l < net->n_layers; l++) {
        if (!net->evaluated[l] && !layers)
            continue;
        float *g = layers ? layers + (size_t)l * stride : net->goodness;
        const int dim = ff_shape_dim(net->layers[l].out);
        ff_objective_goodness(net->out[l] + (size_t)r0 * dim, n, dim, g);
        if (!net->evaluated[l])
            continue;
        const float w = as_logits ? net->layers[l].slope : 1.0f;
        for (int i = 0; i < n; i++)
            sum[i] += w * g[i];
    }
}

void ff_net_forward_goodness_layers(ff_net *net, const float *x, int batch, int as_logits,
                                    float *sum, float *layers)
{
    FF_ASSERT(batch <= net->max_batch);
    for (int i = 0; i < batch; i++)
        sum[i] = 0.0f;
    if (batch <= FF_CONV_CHUNK || !row_blockable(net, 0, net->n_layers)) {
        forward_rows(net, x, 0, net->n_layers, 0, batch, 0);
        add_goodness(net, 0, batch, as_logits, sum, layers, batch);
        return;
    }
    const size_t x_dim = (size_t)ff_shape_dim(net->input);
    for (int r0 = 0; r0 < batch; r0 += FF_CONV_CHUNK) { /* every block in rows [0, 64) */
        const int n = batch - r0 < FF_CONV_CHUNK ? batch - r0 : FF_CONV_CHUNK;
        forward_rows(net, x + (size_t)r0 * x_dim, 0, net->n_layers, 0, n, 0);
        add_goodness(net, 0, n, as_logits, sum + r0, layers ? layers + r0 : NULL, batch);
    }
}

void ff_net_forward_goodness(ff_net *net, const float *x, int batch, int as_logits, float *sum)
{
    ff_net_forward_goodness_layers(net, x, batch, as_logits, sum, NULL);
}

static void forward(ff_net *net, const float *x, int batch, int keep)
{
    forward_layers(net, x, 0, net->n_layers, batch, keep);
}

void ff_net_hand_on(ff_net *net, int l, int batch)
{
    FF_ASSERT(l > 0 && l < net->n_layers && !net->label_every_layer && !net->hand_on_batch);
    const float *src = net->out[l - 1];
    if (ff_net_pooled(net, l)) { /* a pool between the stages goes with the input */
        ff_layer_forward(&net->pool[l], src, net->pooled, batch, NULL, NULL);
        src = net->pooled;
    }
    ff_objective_normalize(src, net->in[l], batch, ff_shape_dim(net->layers[l].in), net->norm_eps);
}

void ff_net_forward(ff_net *net, const float *x, int batch)
{
    if (net->forward_hook)
        net->forward_hook(net->recurrent, net, x, batch);
    else
        forward(net, x, batch, 0);
}

void ff_net_forward_to(ff_net *net, const float *x, int batch, int l_end)
{
    FF_ASSERT(l_end >= 0 && l_end <= net->n_layers);
    forward_layers(net, x, 0, l_end, batch, 0);
}

void ff_net_ff_grads_layers(ff_net *net, const ff_objective *obj, const float *x,
                            const uint8_t *labels, int l0, int l1, int npos, int nneg, float scale,
                            ff_layer_loss *out)
{
    const int rows = npos + nneg;
    int l_end = l1; /* frozen layers at the top need no forward pass here */
    while (!net->peers && l1 == net->n_layers && l_end > l0 && net->frozen[l_end - 1])
        l_end--;
    /* model.hand_on batch: layer by layer, each layer's input standardised with the
     * batch statistics its predecessor's loss just computed (in net->comp_scratch) */
    const int by_layer = net->hand_on_batch;
    FF_ASSERT(!by_layer || l0 == 0);
    if (!by_layer)
        forward_layers(net, x, l0, l_end, rows, 1);
    for (int l = l0; l < l1; l++) {
        ff_layer *L = &net->layers[l];
        ff_layer_loss r = {0};
        if (out)
            out[l] = r;
        const ff_net_peers *P = net->peers;
        const ff_loss_layer ly = {.channels = L->out.c, .running = net->comp_stats[l],
                                  .scratch = net->comp_stats[l] ? net->comp_scratch : NULL,
                                  .affine = L->affine, .gaffine = L->gaffine,
                                  .sum = P ? P->sum : NULL, .sum_ctx = P ? P->ctx : NULL,
                                  .total_rows = P ? P->total_pos : npos};
        if (by_layer && l < l_end) {
            if (l > 0) {
                const float *src = net->out[l - 1];
                if (net->post[l - 1]) { /* pooled by layer l - 1's pass */
                    src = net->post[l - 1];
                } else if (ff_net_pooled(net, l)) {
                    ff_layer_forward(&net->pool[l], src, net->pooled, rows, NULL, NULL);
                    src = net->pooled;
                }
                const int C = net->layers[l - 1].out.c;
                standardise_input(net, l, src, net->in[l], rows, net->comp_scratch,
                                  net->comp_scratch + C);
            }
            forward_rows(net, x, l, l + 1, 0, rows, 1);
        }
        const int loss_dim = ff_shape_dim(ff_net_loss_shape(net, l));
        if (l >= l_end || net->frozen[l]) {
            if (by_layer && l + 1 < l_end) /* the statistics the next layer's input needs */
                ff_objective_comp_batch_stats(ff_net_loss_out(net, l), rows, loss_dim, &ly);
            continue;
        }
        ff_objective_layer_loss(obj, ff_net_loss_out(net, l), labels, npos, nneg, loss_dim,
                                L->threshold, scale, &ly, net->goodness,
                                net->post[l] ? net->dpost : net->dpre, &r);
        if (net->post[l]) /* through the pool to the pre-activations of out[l] */
            ff_layer_pool_backward_relu(&net->pool[l + 1], net->out[l], net->dpost, net->dpre, rows);
        /* after the loss: net->goodness is free scratch for the column means */
        if (npos && obj->peer_strength > 0.0f)
            r.peer_loss = ff_objective_peer_norm(obj, net->peer_mean[l], net->out[l], npos,
                                                 ff_shape_dim(L->out), &ly, net->goodness,
                                                 net->ones, net->max_batch, net->dpre);
        ff_layer_backward(L, net->in[l], net->patches[l], net->dpre, rows, 0.0f, net->ws);
        if (net->peers && net->peers->grads_ready)
            net->peers->grads_ready(net->peers->ctx, l);
        if (out)
            out[l] = r;
    }
}

void ff_net_ff_grads(ff_net *net, const ff_objective *obj, const float *x, const uint8_t *labels,
                     int npos, int nneg, float scale, ff_layer_loss *out)
{
    ff_net_ff_grads_layers(net, obj, x, labels, 0, net->n_layers, npos, nneg, scale, out);
}

double ff_net_flops(const ff_net *net)
{
    double f = 0.0;
    for (int l = 0; l < net->n_layers; l++)
        f += ff_layer_flops(&net->layers[l]);
    return f;
}
