/* layer.c - per-kind dispatch and the parts every layer kind shares. */
#include "ff/layer.h"

#include <math.h>

#include "ff/im2col.h"
#include "ff/rng.h"

int ff_layer_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err)
{
    l->kind = cfg->kind;
    l->in = in;
    l->kernel = cfg->kernel;
    l->stride = cfg->stride;
    int rc;
    switch (cfg->kind) {
    case FF_LAYER_FC: rc = ff_fc_setup(l, cfg, in, index, err); break;
    case FF_LAYER_CONV: rc = ff_conv_setup(l, cfg, in, index, err); break;
    case FF_LAYER_LOCAL: rc = ff_local_setup(l, cfg, in, index, err); break;
    default: return ff_err_set(err, FF_ERR_USAGE, "layer %d: unknown kind", index);
    }
    if (rc)
        return rc;
    l->threshold = cfg->threshold > 0 ? cfg->threshold : (float)ff_shape_dim(l->out);
    l->slope = 1.0f;
    return FF_OK;
}

void ff_layer_init_params(ff_layer *l, ff_rng *rng)
{
    /* fan_in = weights per output unit (same formula for fc, conv and local) */
    size_t per_unit = l->n_weights / (l->kind == FF_LAYER_LOCAL
                                          ? (size_t)ff_shape_dim(l->out)
                                          : (size_t)l->out.c);
    float scale = 1.0f / sqrtf((float)per_unit);
    for (size_t i = 0; i < l->n_weights; i++)
        l->W[i] = ff_rng_normal(rng) * scale;
    for (size_t i = 0; i < l->n_bias; i++)
        l->b[i] = 0.0f;
}

size_t ff_layer_workspace(const ff_layer *l, int batch)
{
    switch (l->kind) {
    case FF_LAYER_FC: return ff_fc_workspace(l, batch);
    case FF_LAYER_CONV: return ff_conv_workspace(l, batch);
    case FF_LAYER_LOCAL: return ff_local_workspace(l, batch);
    }
    return 0;
}

size_t ff_layer_patch_floats(const ff_layer *l)
{
    if (l->kind == FF_LAYER_FC)
        return 0;
    return (size_t)ff_patch_count(l) * (size_t)ff_patch_size_varying(l);
}

void ff_layer_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                      float *patches)
{
    switch (l->kind) {
    case FF_LAYER_FC: ff_fc_forward(l, x, y, batch, ws); break;
    case FF_LAYER_CONV: ff_conv_forward(l, x, y, batch, ws, patches); break;
    case FF_LAYER_LOCAL: ff_local_forward(l, x, y, batch, ws, patches); break;
    }
}

void ff_layer_backward(const ff_layer *l, const float *x, const float *patches,
                       const float *dpre, int batch, float beta, float *ws)
{
    switch (l->kind) {
    case FF_LAYER_FC: ff_fc_backward(l, x, dpre, batch, beta, ws); break;
    case FF_LAYER_CONV: ff_conv_backward(l, x, patches, dpre, batch, beta, ws); break;
    case FF_LAYER_LOCAL: ff_local_backward(l, x, patches, dpre, batch, beta, ws); break;
    }
}

double ff_layer_flops(const ff_layer *l)
{
    if (l->kind == FF_LAYER_FC)
        return (double)l->n_weights;
    /* im2col channels through the GEMM, constant planes as a per-sample bias */
    const double P = ff_patch_count(l), C = l->out.c;
    const double per_location = C * (ff_patch_size_varying(l) + l->const_c);
    return l->kind == FF_LAYER_CONV ? P * per_location - (P - 1) * C * l->const_c
                                    : P * per_location;
}
