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

#endif
