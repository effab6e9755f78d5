/* eval.c - goodness-per-label classification (include/ff/eval.h). */
#include "ff/eval.h"

#include <string.h>

#include "ff/embed.h"
#include "ff/objective.h"

int ff_eval_check_input(const ff_net *net, ff_embed_kind kind, const ff_dataset *ds, ff_err *err)
{
    int rc = ff_embed_check_shape(kind, ds->shape, err);
    if (rc)
        return rc;
    const ff_shape in = ff_embed_shape(kind, ds->shape), want = net->input;
    if (in.c == want.c && in.h == want.h && in.w == want.w)
        return FF_OK;
    return ff_err_set(err, FF_ERR_FORMAT, "%s: %dx%dx%d images (inputs %dx%dx%d), but the net "
                      "takes %dx%dx%d inputs", ds->source[0] ? ds->source : "dataset", ds->shape.c,
                      ds->shape.h, ds->shape.w, in.c, in.h, in.w, want.c, want.h, want.w);
}

/* Rows in G label-major blocks of per_group images (row k * per_group + j) into out
 * image-major (out[j * G + k]). */
static void to_image_major(const float *rows, int groups, int per_group, float *out)
{
    for (int k = 0; k < groups; k++)
        for (int j = 0; j < per_group; j++)
            out[(size_t)j * groups + k] = rows[(size_t)k * per_group + j];
}

/* The forward pass of `rows` rows and the goodness of each row summed over the
 * evaluated layers (each times its slope if as_logits). groups 1: row r into out[r];
 * groups G > 1: the rows are G label-major blocks of rows / G images, and row
 * k * (rows / G) + j goes to out[j * G + k] (image-major). layers (NULL: none): every
 * trainable layer's own goodness, in the same order as out, layer l's at
 * layers[l * rows]. */
static void summed_goodness(ff_net *net, const float *x, int rows, int as_logits, int groups,
                            float *out, float *layers)
{
    const int per_group = rows / groups;
    float sum[rows];
    ff_net_forward_goodness_layers(net, x, rows, as_logits, groups == 1 ? out : sum, layers);
    if (groups == 1)
        return;
    to_image_major(sum, groups, per_group, out);
    for (int l = 0; layers && l < net->n_layers; l++) { /* each layer's block in place */
        float *block = layers + (size_t)l * rows;
        memcpy(sum, block, sizeof(float) * (size_t)rows);
        to_image_major(sum, groups, per_group, block);
    }
}

/* The competition readout (no label in the input): one pass of each image, and
 * scores[i * 10 + k] = the sum over the evaluated layers of (slope times, if
 * as_logits) the goodness of class group k of the layer's output scaled to mean square 1. */
static void class_group_scores(ff_net *net, const ff_dataset *ds, const int *idx, int n,
                               int as_logits, float *xbuf, float *scores, float *layers,
                               const ff_eval_visit *visit)
{
    const int per_chunk = net->max_batch;
    const size_t per_layer = (size_t)n * FF_NUM_CLASSES;
    memset(scores, 0, sizeof(float) * per_layer);
    if (layers)
        memset(layers, 0, sizeof(float) * per_layer * (size_t)net->n_layers);
    for (int start = 0; start < n; start += per_chunk) {
        const int m = n - start < per_chunk ? n - start : per_chunk;
        const float *images = idx ? ds->images : ds->images + (size_t)start * ff_dataset_dim(ds);
        ff_embed_batch(FF_EMBED_NONE, images, ds->shape, idx ? idx + start : NULL, NULL, m, xbuf);
        ff_net_forward(net, xbuf, m);
        for (int l = 0; l < net->n_layers; l++) {
            const ff_layer *L = &net->layers[l];
            const float *out = ff_net_loss_out(net, l);
            const int dim = ff_shape_dim(ff_net_loss_shape(net, l));
            if (net->evaluated[l])
                ff_objective_class_goodness_add(out, m, dim, L->out.c, net->comp_stats[l], L->affine,
                                      net->comp_scratch, as_logits ? L->slope : 1.0f,
                                      scores + (size_t)start * FF_NUM_CLASSES);
            if (layers) /* the layer alone, as with eval.layers [l] */
                ff_objective_class_goodness_add(out, m, dim, L->out.c, net->comp_stats[l], L->affine,
                                      net->comp_scratch, 1.0f,
                                      layers + (size_t)l * per_layer +
                                          (size_t)start * FF_NUM_CLASSES);
        }
        if (visit) /* the chunk's forward pass, still in the net */
            visit->chunk(visit->ctx, net, idx ? idx[start] : start, m);
    }
}

/* ff_eval_goodness_scores, and with layers (n * 10 <= net->max_batch) every layer's own
 * scores, layer l's image i with label k at layers[(l * n + i) * 10 + k] */
static void goodness_scores(ff_net *net, ff_embed_kind kind, const ff_dataset *ds,
                            const int *idx, int n, int as_logits, float *xbuf, float *scores,
                            float *layers, const ff_eval_visit *visit)
{
    FF_ASSERT(!visit || kind == FF_EMBED_NONE);
    if (kind == FF_EMBED_NONE) { /* one pass per image: up to max_batch images a chunk */
        FF_ASSERT(ff_eval_check_input(net, kind, ds, NULL) == FF_OK);
        class_group_scores(net, ds, idx, n, as_logits, xbuf, scores, layers, visit);
        return;
    }
    FF_ASSERT(!layers || (size_t)n * FF_NUM_CLASSES <= (size_t)net->max_batch);
    const int per_chunk = net->max_batch / FF_NUM_CLASSES;
    FF_ASSERT(per_chunk >= 1);
    FF_ASSERT(ff_eval_check_input(net, kind, ds, NULL) == FF_OK);
    for (int start = 0; start < n; start += per_chunk) {
        const int m = n - start < per_chunk ? n - start : per_chunk;
        /* sample row k * m + j holds image start + j with label k (one embedding call:
         * its rows are split over the pool) */
        const int rows = m * FF_NUM_CLASSES;
        int src[rows];
        uint8_t label[rows];
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            for (int j = 0; j < m; j++) {
                src[k * m + j] = idx ? idx[start + j] : start + j;
                label[k * m + j] = (uint8_t)k;
            }
        ff_embed_batch(kind, ds->images, ds->shape, src, label, rows, xbuf);
        summed_goodness(net, xbuf, rows, as_logits, FF_NUM_CLASSES,
                        scores + (size_t)start * FF_NUM_CLASSES, layers); /* one chunk */
    }
}

void ff_eval_goodness_scores(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, const int *idx,
                             int n, int as_logits, float *xbuf, float *scores)
{
    goodness_scores(net, kind, ds, idx, n, as_logits, xbuf, scores, NULL, NULL);
}

void ff_eval_goodness_scores_of(ff_net *net, ff_embed_kind kind, const ff_dataset *ds,
                                const int *idx, int n, const uint8_t *labels, int m,
                                int as_logits, float *xbuf, float *scores)
{
    FF_ASSERT(m >= 1 && m <= FF_NUM_CLASSES && kind != FF_EMBED_NONE);
    const int per_chunk = net->max_batch / m;
    FF_ASSERT(per_chunk >= 1);
    FF_ASSERT(ff_eval_check_input(net, kind, ds, NULL) == FF_OK);
    for (int start = 0; start < n; start += per_chunk) {
        const int c = n - start < per_chunk ? n - start : per_chunk;
        const int rows = c * m; /* row j * m + q: image start + j with its q-th label */
        int src[rows];
        for (int j = 0; j < c; j++)
            for (int q = 0; q < m; q++)
                src[j * m + q] = idx ? idx[start + j] : start + j;
        ff_embed_batch(kind, ds->images, ds->shape, src, labels + (size_t)start * m,
                       rows, xbuf);
        summed_goodness(net, xbuf, rows, as_logits, 1, scores + (size_t)start * m, NULL);
    }
}

double ff_eval_error_layers(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, int n,
                            float *xbuf, float *scores, float *layer_buf, double *layer_error,
                            int64_t confusion[100])
{
    return ff_eval_error_visit(net, kind, ds, n, xbuf, scores, layer_buf, layer_error, confusion,
                               NULL);
}

double ff_eval_error_visit(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, int n,
                           float *xbuf, float *scores, float *layer_buf, double *layer_error,
                           int64_t confusion[100], const ff_eval_visit *visit)
{
    FF_ASSERT(!visit || kind == FF_EMBED_NONE);
    FF_ASSERT(ff_eval_check_input(net, kind, ds, NULL) == FF_OK);
    FF_ASSERT(!layer_buf == !layer_error);
    if (n <= 0 || n > ds->n)
        n = ds->n;
    if (confusion)
        memset(confusion, 0, sizeof(int64_t) * 100);
    /* images a chunk: the class groups read one pass of each, the labelled readout ten */
    const int chunk = kind == FF_EMBED_NONE ? net->max_batch : net->max_batch / FF_NUM_CLASSES;
    const int L = net->n_layers;
    int64_t wrong = 0, layer_wrong[FF_MAX_LAYERS] = {0};
    for (int start = 0; start < n; start += chunk) {
        const int m = n - start < chunk ? n - start : chunk;
        int idx[chunk];
        for (int j = 0; j < m; j++)
            idx[j] = start + j;
        goodness_scores(net, kind, ds, idx, m, 0, xbuf, scores, layer_buf, visit);
        for (int j = 0; j < m; j++) {
            int pred = ff_objective_argmax10(scores + (size_t)j * FF_NUM_CLASSES);
            int truth = ds->labels[start + j];
            wrong += pred != truth;
            if (confusion)
                confusion[truth * FF_NUM_CLASSES + pred]++;
            for (int l = 0; layer_buf && l < L; l++)
                layer_wrong[l] +=
                    ff_objective_argmax10(layer_buf + ((size_t)l * m + j) * FF_NUM_CLASSES) != truth;
        }
    }
    for (int l = 0; layer_error && l < L; l++)
        layer_error[l] = n ? (double)layer_wrong[l] / n : 0.0;
    return n ? (double)wrong / n : 0.0;
}

double ff_eval_error(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, int n, float *xbuf,
                     float *scores, int64_t confusion[100])
{
    return ff_eval_error_layers(net, kind, ds, n, xbuf, scores, NULL, NULL, confusion);
}
