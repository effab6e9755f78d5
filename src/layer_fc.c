/* layer_fc.c - fully connected ReLU layer on OpenBLAS sgemm.
 *
 * W is [out, in] row-major, b is [out]. Forward: y = relu(x W^T + b).
 * Backward: gW = dpre^T x, gb = column sums of dpre. */
#include <cblas.h>
#include <string.h>

#include "ff/layer.h"
#include "ff/pool.h"

static int fc_setup(ff_layer *l, const ff_layer_cfg *cfg, ff_shape in, int index, ff_err *err)
{
    if (cfg->units <= 0)
        return ff_err_set(err, FF_ERR_USAGE, "layer %d: fc needs units > 0", index);
    l->out = (ff_shape){cfg->units, 1, 1};
    l->n_weights = (size_t)cfg->units * (size_t)ff_shape_dim(in);
    l->n_bias = (size_t)cfg->units;
    return FF_OK;
}

static size_t fc_fan_in(const ff_layer *l) { return l->n_weights / (size_t)l->out.c; }

static size_t fc_workspace(const ff_layer *l, int batch) { return 0; }

/* the loops around the forward GEMM, split over the pool by rows (bias) or
 * elements (ReLU); the bias gradient is ff_layer_bias_grad_per_output */
typedef struct fc_job {
    const ff_layer *l;
    float *y;
    int batch, out;
} fc_job;

static void bias_rows(void *ctx, size_t i0, size_t i1)
{
    const fc_job *j = ctx;
    for (size_t i = i0; i < i1; i++)
        memcpy(j->y + i * j->out, j->l->b, sizeof(float) * (size_t)j->out);
}

static void relu_range(void *ctx, size_t q0, size_t q1)
{
    float *restrict y = ((const fc_job *)ctx)->y;
    for (size_t q = q0; q < q1; q++)
        y[q] = y[q] > 0.0f ? y[q] : 0.0f;
}

static void fc_forward(const ff_layer *l, const float *x, float *y, int batch, float *ws,
                       float *patches)
{
    const int in = ff_shape_dim(l->in), out = l->out.c;
    fc_job j = {.l = l, .y = y, .batch = batch, .out = out};
    ff_pool_for((size_t)batch, 16, bias_rows, &j);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x, in, l->W, in,
                1.0f, y, out);
    ff_pool_for((size_t)batch * out, 16384, relu_range, &j);
}

static void fc_backward(const ff_layer *l, const float *x, const float *patches,
                        const float *dpre, int batch, float beta, float *ws)
{
    const int in = ff_shape_dim(l->in), out = l->out.c;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0f, dpre, out, x, in,
                beta, l->gW, in);
    ff_layer_bias_grad_per_output(l, dpre, batch, beta);
}

static double fc_flops(const ff_layer *l) { return (double)l->n_weights; }

const ff_layer_ops ff_fc_ops = {
    .name = "fc",
    .keys = "units threshold train_epochs",
    .required = "units",
    .setup = fc_setup,
    .fan_in = fc_fan_in,
    .workspace = fc_workspace,
    .forward = fc_forward,
    .backward = fc_backward,
    .flops = fc_flops,
};
