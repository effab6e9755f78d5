/* eval.h - classifying with a trained FF net.
 *
 * Goodness per label: embed each of the 10 labels, run the net, sum the
 * goodness of every layer except the first (the first alone if the net has
 * one layer), predict the argmax. The 10 labelled copies of a chunk of images
 * go through the net as one batch, so the GEMMs stay large.
 *
 * A net without a label in its input (model.label_embedding none: train.loss
 * competition) is read out in one pass per image instead: the score of label k
 * is the goodness of class group k of each layer's output scaled to mean square 1
 * (ff_objective_class_goodness_add, objective.h), summed over the same layers. */
#ifndef FF_EVAL_H
#define FF_EVAL_H

#include <stdint.h>

#include "ff/config.h"
#include "ff/data.h"
#include "ff/net.h"

/* FF_OK if the images of ds, with labels embedded by `kind`, are the input net was
 * built for; else FF_ERR_FORMAT naming the dataset and both shapes (or the embedding's
 * FF_ERR_USAGE: ff_embed_check_shape). The functions below take only such a dataset
 * (asserted): check one that was loaded separately from the net's, e.g. a test set. */
int ff_eval_check_input(const ff_net *net, ff_embed_kind kind, const ff_dataset *ds, ff_err *err);

/* scores[i * 10 + k] = goodness sum with label k for images idx[0..n) (idx NULL:
 * 0..n) over the evaluated layers. as_logits: each layer's goodness times its
 * FF logistic slope, i.e. the sum of the layers' logits slope * (g - theta) up to
 * a constant per image. xbuf holds net->max_batch embedded inputs. n * 10 may
 * exceed max_batch: the work is chunked. */
void ff_eval_goodness_scores(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, const int *idx,
                             int n, int as_logits, float *xbuf, float *scores);

/* scores[i * m + j] = as ff_eval_goodness_scores, for image idx[i] with label
 * labels[i * m + j] only (m labels per image, 1 <= m <= 10): m labelled passes
 * per image instead of ten. Chunked by net->max_batch / m images. Not for kind
 * none (one pass scores every label there: use ff_eval_goodness_scores). */
void ff_eval_goodness_scores_of(ff_net *net, ff_embed_kind kind, const ff_dataset *ds,
                                const int *idx, int n, const uint8_t *labels, int m,
                                int as_logits, float *xbuf, float *scores);

/* Test error (fraction in [0,1]) of the goodness readout over the first n
 * images of ds (n <= 0: all). confusion (10x10, [true][pred]) is filled if not NULL.
 * scores must hold 10 * net->max_batch floats (the class-group readout, kind
 * FF_EMBED_NONE, scores up to net->max_batch images a chunk; the labelled ones
 * net->max_batch / 10). */
double ff_eval_error(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, int n, float *xbuf,
                     float *scores, int64_t confusion[100]);

/* ff_eval_error, and each trainable layer's own goodness readout error: layer_error[l]
 * (l < net->n_layers) is the error of the readout that reads layer l alone (as
 * eval.layers [l], `ffrun eval --layers l`), from the same forward passes. layer_buf
 * holds 10 * net->n_layers * net->max_batch floats. layer_buf and layer_error: both or
 * neither NULL. */
double ff_eval_error_layers(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, int n,
                            float *xbuf, float *scores, float *layer_buf, double *layer_error,
                            int64_t confusion[100]);

/* Something else to read from the class-group readout's forward passes: chunk(ctx, net,
 * start, m) is called after each, while the net holds it (net->out, net->in of images
 * start .. start + m - 1 of the set; m <= net->max_batch). The trainer takes the softmax
 * head's error from them, so the images go through the net once for both readouts. */
typedef struct ff_eval_visit {
    void (*chunk)(void *ctx, ff_net *net, int start, int m);
    void *ctx;
} ff_eval_visit;

/* ff_eval_error_layers calling visit (NULL: none) after each forward pass; kind must be
 * FF_EMBED_NONE when visit is given (the labelled readouts run ten passes an image). */
double ff_eval_error_visit(ff_net *net, ff_embed_kind kind, const ff_dataset *ds, int n,
                           float *xbuf, float *scores, float *layer_buf, double *layer_error,
                           int64_t confusion[100], const ff_eval_visit *visit);


#endif
