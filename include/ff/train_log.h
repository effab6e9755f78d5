/* train_log.h - the TensorBoard views of a training run beyond scalars:
 * histograms (weights, biases, per-sample goodness of positive vs negative
 * data) and images (sample inputs with their label embedding, the first
 * layer's receptive fields). Called at epoch ends, not per batch. */
#ifndef FF_TRAIN_LOG_H
#define FF_TRAIN_LOG_H

#include <stdint.h>

#include "ff/net.h"
#include "ff/summary.h"
#include "ff/trainer.h"

/* layer<l>/weights and layer<l>/biases */
int ff_train_log_param_histograms(ff_summary_writer *tb, const ff_net *net, int64_t step, ff_err *err);

/* layer<l>/goodness_pos_hist and layer<l>/goodness_neg_hist: per-sample
 * goodness of the n rows of x_pos and of x_neg (n <= net->max_batch). Runs
 * forward passes, so it overwrites the net's activation buffers. */
int ff_train_log_goodness_histograms(ff_summary_writer *tb, ff_net *net, const float *x_pos,
                               const float *x_neg, int n, int64_t step, ff_err *err);

/* A grid image (tag) of up to 32 inputs of shape `shape` whose first image_c channels
 * are the image: image_c 3, an RGB image of those channels, each tile scaled from its
 * own range (standardised colour inputs); else the first channel in grey, values 0..1
 * mapped to black..white. */
int ff_train_log_input_grid(ff_summary_writer *tb, const char *tag, const float *x, int n,
                      ff_shape shape, int image_c, int64_t step, ff_err *err);

/* layer0/receptive_fields: the first layer's weights into input channel 0 of
 * up to 64 units (fc: a full input image per unit; conv/local: the kernel, at
 * the first location for local layers), each scaled to its own range; for colour
 * images (image_c 3, an ungrouped first layer) the weights into the three colour
 * channels as RGB. */
int ff_train_log_receptive_fields(ff_summary_writer *tb, const ff_net *net, int image_c, int64_t step,
                            ff_err *err);

/* model.recurrent: each layer's mean goodness of positive and of negative rows at every
 * iteration (ff_step_stats.iter_g_pos / iter_g_neg), summed over the batches since the
 * last log. A plain value: zero it to start. */
typedef struct ff_iter_sums {
    int n_iters, n_layers, batches;
    double g_pos[FF_MAX_ITERS + 1][FF_MAX_LAYERS], g_neg[FF_MAX_ITERS + 1][FF_MAX_LAYERS];
} ff_iter_sums;

/* Adds one step's per-iteration goodness (nothing for a feed-forward net: st->n_iters 0). */
void ff_train_log_iter_sums_add(ff_iter_sums *s, const ff_step_stats *st);

/* layer<l>/goodness_pos_iter<t> and layer<l>/goodness_neg_iter<t> (t = 0: the bottom-up
 * pass, 1..T the iterations) = their means over the batches added since the last call,
 * at `step`; then s is cleared. Writes nothing if no batch was added. */
int ff_train_log_iter_goodness(ff_summary_writer *tb, ff_iter_sums *s, int64_t step, ff_err *err);

#endif
