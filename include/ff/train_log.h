/* train_log.h - the TensorBoard views of a training run beyond scalars:
 * histograms (weights, biases, per-sample goodness of positive vs negative
 * data) and images (sample inputs with their label embedding, the first
 * layer's receptive fields). Called at epoch ends, not per batch. */
#ifndef FF_TRAIN_LOG_H
#define FF_TRAIN_LOG_H

#include <stdint.h>

#include "ff/net.h"
#include "ff/summary.h"

/* layer<l>/weights and layer<l>/biases */
int ff_log_param_histograms(ff_summary_writer *tb, const ff_net *net, int64_t step, ff_err *err);

/* layer<l>/goodness_pos_hist and layer<l>/goodness_neg_hist: per-sample
 * goodness of the n rows of x_pos and of x_neg (n <= net->max_batch). Runs
 * forward passes, so it overwrites the net's activation buffers. */
int ff_log_goodness_histograms(ff_summary_writer *tb, ff_net *net, const float *x_pos,
                               const float *x_neg, int n, int64_t step, ff_err *err);

/* A grid image (tag) of the first channel of up to 32 inputs of shape `shape`,
 * values 0..1 mapped to black..white. */
int ff_log_input_grid(ff_summary_writer *tb, const char *tag, const float *x, int n,
                      ff_shape shape, int64_t step, ff_err *err);

/* layer0/receptive_fields: the first layer's weights into input channel 0 of
 * up to 64 units (fc: a full input image per unit; conv/local: the kernel, at
 * the first location for local layers), each scaled to its own range. */
int ff_log_receptive_fields(ff_summary_writer *tb, const ff_net *net, int64_t step, ff_err *err);

#endif
