/* train_log.c - histogram and image summaries of a run (include/ff/train_log.h). */
#include "ff/train_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/objective.h"
#include "ff/png.h"

int ff_train_log_param_histograms(ff_summary_writer *tb, const ff_net *net, int64_t step, ff_err *err)
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
        ff_objective_goodness(ff_net_loss_out(net, l), n, ff_shape_dim(ff_net_loss_shape(net, l)),
                    g + (size_t)l * n);
}

int ff_train_log_goodness_histograms(ff_summary_writer *tb, ff_net *net, const float *x_pos,
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
    int rc = ff_png_grid(tiles, n, h, w, cols, lo, hi, &pix, &gh, &gw, err);
    if (rc)
        return rc;
    rc = ff_summary_image(tb, tag, step, pix, gh, gw, 1, err);
    free(pix);
    return rc;
}

/* An RGB grid of n tiles of 3 x h x w floats (CHW): each tile mapped from its own range
 * over its three channels (so colours keep their balance) to 0..255, the three channel
 * grids interleaved. */
static int log_rgb_grid(ff_summary_writer *tb, const char *tag, float *tiles, int n, int h,
                        int w, int64_t step, ff_err *err)
{
    const size_t hw = (size_t)h * w, tile = 3 * hw;
    const int cols = n < 8 ? n : 8;
    for (int i = 0; i < n; i++) { /* each tile to [0, 1] in place */
        float *t = tiles + (size_t)i * tile, a = t[0], b = t[0];
        for (size_t k = 1; k < tile; k++) {
            a = t[k] < a ? t[k] : a;
            b = t[k] > b ? t[k] : b;
        }
        const float scale = b > a ? 1.0f / (b - a) : 0.0f;
        for (size_t k = 0; k < tile; k++)
            t[k] = (t[k] - a) * scale;
    }
    float *plane = malloc(sizeof(float) * hw * (size_t)n);
    uint8_t *grey[3] = {NULL, NULL, NULL}, *rgb = NULL;
    int gh = 0, gw = 0, rc = plane ? FF_OK : ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    for (int c = 0; c < 3 && !rc; c++) {
        for (int i = 0; i < n; i++)
            memcpy(plane + (size_t)i * hw, tiles + (size_t)i * tile + (size_t)c * hw,
                   sizeof(float) * hw);
        rc = ff_png_grid(plane, n, h, w, cols, 0.0f, 1.0f, &grey[c], &gh, &gw, err);
    }
    if (!rc && !(rgb = malloc((size_t)gh * gw * 3)))
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for an image grid");
    if (!rc) {
        for (size_t p = 0; p < (size_t)gh * gw; p++)
            for (int c = 0; c < 3; c++)
                rgb[3 * p + c] = grey[c][p];
        rc = ff_summary_image(tb, tag, step, rgb, gh, gw, 3, err);
    }
    free(rgb);
    for (int c = 0; c < 3; c++)
        free(grey[c]);
    free(plane);
    return rc;
}

int ff_train_log_input_grid(ff_summary_writer *tb, const char *tag, const float *x, int n,
                      ff_shape shape, int image_c, int64_t step, ff_err *err)
{
    if (n > 32)
        n = 32;
    const int rgb = image_c == 3;
    const size_t hw = (size_t)shape.h * shape.w, dim = (size_t)ff_shape_dim(shape);
    const size_t per = rgb ? 3 * hw : hw;
    float *tiles = malloc(sizeof(float) * per * (size_t)n);
    if (!tiles)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for an image grid");
    for (int i = 0; i < n; i++)
        memcpy(tiles + i * per, x + i * dim, sizeof(float) * per); /* the image's channels */
    int rc = rgb ? log_rgb_grid(tb, tag, tiles, n, shape.h, shape.w, step, err)
                 : log_grid(tb, tag, tiles, n, shape.h, shape.w, 0.0f, 1.0f, step, err);
    free(tiles);
    return rc;
}

int ff_train_log_receptive_fields(ff_summary_writer *tb, const ff_net *net, int image_c, int64_t step,
                            ff_err *err)
{
    const ff_layer *L = &net->layers[0];
    int n = L->out.c < 64 ? L->out.c : 64;
    const int windowed = ff_layer_ops_of(L->kind)->receptive_fields;
    int h = windowed ? L->kernel : L->in.h;
    int w = windowed ? L->kernel : L->in.w;
    /* per unit, W holds in.c / groups * h * w weights (channel-major); take its
     * group's first channel */
    const size_t per_unit = (size_t)(L->in.c / L->groups) * h * w;
    /* colour: the weights into the three colour channels as one RGB tile */
    const int rgb = image_c == 3 && L->groups == 1 && L->in.c >= 3;
    const size_t per = (size_t)(rgb ? 3 : 1) * h * w;
    float *tiles = malloc(sizeof(float) * per * (size_t)n);
    if (!tiles)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for receptive fields");
    for (int u = 0; u < n; u++)
        memcpy(tiles + (size_t)u * per, L->W + (size_t)u * per_unit, sizeof(float) * per);
    int rc = rgb ? log_rgb_grid(tb, "layer0/receptive_fields", tiles, n, h, w, step, err)
                 : log_grid(tb, "layer0/receptive_fields", tiles, n, h, w, 0.0f, 0.0f, step, err);
    free(tiles);
    return rc;
}

void ff_train_log_iter_sums_add(ff_iter_sums *s, const ff_step_stats *st)
{
    if (st->n_iters <= 0)
        return;
    s->n_iters = st->n_iters;
    s->n_layers = st->n_layers;
    for (int t = 0; t < st->n_iters; t++)
        for (int l = 0; l < st->n_layers; l++) {
            s->g_pos[t][l] += st->iter_g_pos[t][l];
            s->g_neg[t][l] += st->iter_g_neg[t][l];
        }
    s->batches++;
}

int ff_train_log_iter_goodness(ff_summary_writer *tb, ff_iter_sums *s, int64_t step, ff_err *err)
{
    int rc = FF_OK;
    char tag[64];
    for (int l = 0; s->batches > 0 && l < s->n_layers && !rc; l++)
        for (int t = 0; t < s->n_iters && !rc; t++) {
            snprintf(tag, sizeof tag, "layer%d/goodness_pos_iter%d", l, t);
            rc = ff_summary_scalar(tb, tag, step, (float)(s->g_pos[t][l] / s->batches), err);
            snprintf(tag, sizeof tag, "layer%d/goodness_neg_iter%d", l, t);
            if (!rc)
                rc = ff_summary_scalar(tb, tag, step, (float)(s->g_neg[t][l] / s->batches), err);
        }
    memset(s, 0, sizeof *s);
    return rc;
}
