/* train_log.c - histogram and image summaries of a run (include/ff/train_log.h). */
#include "ff/train_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/objective.h"
#include "ff/png.h"

int ff_log_param_histograms(ff_summary_writer *tb, const ff_net *net, int64_t step, ff_err *err)
{
    char tag[64];
    for (int l = 0; l < net->n_layers; l++) {
        const ff_layer *L = &net->layers[l];
        snprintf(tag, sizeof tag, "layer%d/weights", l);
        int rc = ff_summary_histogram(tb, tag, step, L->W, L->n_weights, err);
        snprintf(tag, sizeof tag, "layer%d/biases", l);
        if (!rc)
            rc = ff_summary_histogram(tb, tag, step, L->b, L->n_bias, err);
        if (rc)
            return rc;
    }
    return FF_OK;
}

/* goodness of every layer for the n rows of x: g[l * n + i] */
static void goodness_all_layers(ff_net *net, const float *x, int n, float *g)
{
    ff_net_forward(net, x, n);
    for (int l = 0; l < net->n_layers; l++)
        ff_goodness(ff_net_loss_out(net, l), n, ff_shape_dim(ff_net_loss_shape(net, l)),
                    g + (size_t)l * n);
}

int ff_log_goodness_histograms(ff_summary_writer *tb, ff_net *net, const float *x_pos,
                               const float *x_neg, int n, int64_t step, ff_err *err)
{
    if (n > net->max_batch)
        n = net->max_batch;
    float *g = malloc(sizeof(float) * (size_t)n * net->n_layers * 2);
    if (!g)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for goodness histograms");
    float *gp = g, *gn = g + (size_t)n * net->n_layers;
    goodness_all_layers(net, x_pos, n, gp);
    goodness_all_layers(net, x_neg, n, gn);
    int rc = FF_OK;
    char tag[64];
    for (int l = 0; l < net->n_layers && !rc; l++) {
        snprintf(tag, sizeof tag, "layer%d/goodness_pos_hist", l);
        rc = ff_summary_histogram(tb, tag, step, gp + (size_t)l * n, (size_t)n, err);
        snprintf(tag, sizeof tag, "layer%d/goodness_neg_hist", l);
        if (!rc)
            rc = ff_summary_histogram(tb, tag, step, gn + (size_t)l * n, (size_t)n, err);
    }
    free(g);
    return rc;
}

static int log_grid(ff_summary_writer *tb, const char *tag, const float *tiles, int n, int h,
                    int w, float lo, float hi, int64_t step, ff_err *err)
{
    uint8_t *pix;
    int gh, gw;
    int cols = n < 8 ? n : 8;
    int rc = ff_image_grid(tiles, n, h, w, cols, lo, hi, &pix, &gh, &gw, err);
    if (rc)
        return rc;
    rc = ff_summary_image(tb, tag, step, pix, gh, gw, 1, err);
    free(pix);
    return rc;
}

int ff_log_input_grid(ff_summary_writer *tb, const char *tag, const float *x, int n,
                      ff_shape shape, int64_t step, ff_err *err)
{
    if (n > 32)
        n = 32;
    const size_t hw = (size_t)shape.h * shape.w, dim = (size_t)ff_shape_dim(shape);
    float *tiles = malloc(sizeof(float) * hw * (size_t)n);
    if (!tiles)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for an image grid");
    for (int i = 0; i < n; i++)
        memcpy(tiles + i * hw, x + i * dim, sizeof(float) * hw); /* channel 0 */
    int rc = log_grid(tb, tag, tiles, n, shape.h, shape.w, 0.0f, 1.0f, step, err);
    free(tiles);
    return rc;
}

int ff_log_receptive_fields(ff_summary_writer *tb, const ff_net *net, int64_t step, ff_err *err)
{
    const ff_layer *L = &net->layers[0];
    int n = L->out.c < 64 ? L->out.c : 64;
    const int windowed = ff_layer_ops_of(L->kind)->receptive_fields;
    int h = windowed ? L->kernel : L->in.h;
    int w = windowed ? L->kernel : L->in.w;
    /* per unit, W holds in.c / groups * h * w weights (channel-major); take its
     * group's first channel */
    const size_t per_unit = (size_t)(L->in.c / L->groups) * h * w;
    float *tiles = malloc(sizeof(float) * (size_t)h * w * (size_t)n);
    if (!tiles)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for receptive fields");
    for (int u = 0; u < n; u++)
        memcpy(tiles + (size_t)u * h * w, L->W + (size_t)u * per_unit,
               sizeof(float) * (size_t)h * w);
    int rc = log_grid(tb, "layer0/receptive_fields", tiles, n, h, w, 0.0f, 0.0f, step, err);
    free(tiles);
    return rc;
}
