/* layer.c - the table of layer kinds, dispatch through it, and the parts every
 * layer kind shares (size limits, threshold, initialisation). */
#include "ff/layer.h"

#include <math.h>
#include <string.h>

#include "ff/pool.h"
#include "ff/rng.h"

/* indexed by ff_layer_kind */
static const ff_layer_ops *const kinds[] = {
    [FF_LAYER_FC] = &ff_fc_ops,
    [FF_LAYER_CONV] = &ff_conv_ops,
    [FF_LAYER_LOCAL] = &ff_local_ops,
    [FF_LAYER_POOL] = &ff_pool_ops,
};
_Static_assert(sizeof kinds / sizeof kinds[0] == FF_LAYER_KIND_COUNT,
               "one entry in kinds[] per ff_layer_kind");

const ff_layer_ops *ff_layer_ops_of(ff_layer_kind kind)
{
    return (int)kind >= 0 && kind < FF_LAYER_KIND_COUNT ? kinds[kind] : NULL;
}

static long long floats_of(ff_shape s) { return (long long)s.c * s.h * s.w; }

/* FF_ERR_USAGE if shape s (`what` of layer index) is too large for int sizes */
static int check_shape(ff_shape s, const char *what, int index, ff_err *err)
{
    if (floats_of(s) <= FF_LAYER_MAX_FLOATS)
        return FF_OK;
    return ff_err_set(err, FF_ERR_USAGE,
                      "layer %d: %s %dx%dx%d has %lld values, more than the limit of %lld", index,
                      what, s.c, s.h, s.w, floats_of(s), FF_LAYER_MAX_FLOATS);
}

int ff_layer_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err)
{
    const ff_layer_ops *ops = ff_layer_ops_of(cfg->kind);
    if (!ops)
        return ff_err_set(err, FF_ERR_USAGE, "layer %d: unknown kind", index);
    int rc = check_shape(in, "input", index, err);
    if (rc)
        return rc;
    l->kind = cfg->kind;
    l->in = in;
    l->kernel = cfg->kernel;
    l->stride = cfg->stride;
    l->pad = cfg->padding;
    l->groups = 1; /* conv's setup takes cfg->groups */
    l->pool = cfg->pool;
    if ((rc = ops->setup(l, cfg, in, index, err)) ||
        (rc = check_shape(l->out, "output", index, err)))
        return rc;
    if (l->n_weights > (size_t)FF_LAYER_MAX_FLOATS)
        return ff_err_set(err, FF_ERR_USAGE,
                          "layer %d: %s needs %zu weights, more than the limit of %lld", index,
                          ops->name, l->n_weights, FF_LAYER_MAX_FLOATS);
    l->threshold = cfg->threshold > 0 ? cfg->threshold : (float)ff_shape_dim(l->out);
    l->slope = 1.0f;
    l->train_epochs = cfg->train_epochs;
    return FF_OK;
}

void ff_layer_init_params(ff_layer *l, ff_rng *rng)
{
    float scale = 1.0f / sqrtf((float)ff_layer_ops_of(l->kind)->fan_in(l));
    for (size_t i = 0; i < l->n_weights; i++)
        l->W[i] = ff_rng_normal(rng) * scale;
    for (size_t i = 0; i < l->n_bias; i++)
        l->b[i] = 0.0f;
    for (size_t i = 0; i < l->n_affine; i++)
        l->affine[i] = i < l->n_affine / 2 ? 1.0f : 0.0f;
}

size_t ff_layer_workspace(const ff_layer *l, int batch)
{
    return ff_layer_ops_of(l->kind)->workspace(l, batch);
}

size_t ff_layer_patch_floats(const ff_layer *l)
{
    const ff_layer_ops *ops = ff_layer_ops_of(l->kind);
    return ops->patch_floats ? ops->patch_floats(l) : 0;
}

void ff_layer_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                      float *patches)
{
    ff_layer_ops_of(l->kind)->forward(l, x, y, batch, ws, patches);
}

void ff_layer_backward(const ff_layer *l, const float *x, const float *patches,
                       const float *dpre, int batch, float beta, float *ws)
{
    ff_layer_ops_of(l->kind)->backward(l, x, patches, dpre, batch, beta, ws);
}

double ff_layer_flops(const ff_layer *l) { return ff_layer_ops_of(l->kind)->flops(l); }

typedef struct bias_grad_job {
    const float *dpre;
    float *gb;
    size_t n;
    int batch;
    float beta;
} bias_grad_job;

static void bias_grad_range(void *ctx, size_t q0, size_t q1)
{
    const bias_grad_job *j = ctx;
    float *restrict gb = j->gb;
    if (j->beta == 0.0f)
        memset(gb + q0, 0, sizeof(float) * (q1 - q0));
    for (int i = 0; i < j->batch; i++) {
        const float *restrict row = j->dpre + (size_t)i * j->n;
        for (size_t q = q0; q < q1; q++)
            gb[q] += row[q];
    }
}

void ff_layer_bias_grad_per_output(const ff_layer *l, const float *dpre, int batch, float beta)
{
    bias_grad_job j = {dpre, l->gb, (size_t)ff_shape_dim(l->out), batch, beta};
    ff_pool_for(j.n, 256, bias_grad_range, &j);
}
