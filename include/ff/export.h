/* export.h - a trained model as a NumPy .npz (npz.h): every array the forward pass and
 * the readouts need, in PyTorch's layouts, and a manifest.json member that describes
 * how to put them together, so that the file alone rebuilds the net
 * (tools/ffm_torch.py does, in PyTorch).
 *
 * Arrays (float32; l counts trainable layers from 0, pools not counted):
 *   input_mean, input_std [C]       data.normalize channel: x = (pixel / 255 - mean) / std
 *   layer<l>_weight  fc [out, in] (nn.Linear); conv [out, in / groups, k, k]
 *                    (nn.Conv2d; label planes are input channels too, see below);
 *                    local [oh, ow, out, in, k, k]: output location (oy, ox) has its own
 *                    conv-shaped kernel [out, in, k, k]
 *   layer<l>_bias    fc, conv [out]; local [out, oh, ow] (one per output unit)
 *   layer<l>_bn_scale, layer<l>_bn_shift [C]   train.competition_norm affine
 *   layer<l>_bn_mean, layer<l>_bn_var [C]      competition_norm batch / affine: the
 *                    evaluation statistics (recomputed on the training split at export, as
 *                    `ffrun eval` does)
 *   head_weight [10, F], head_bias [10]         the softmax head, if the model has one
 *   embed_pattern [11, 6, 6]                    label_embedding pattern: the tile of each
 *                    label, then the neutral label's (index 10)
 *   layer<l>_topdown [out, units of layer l + 1] model.recurrent (fc layers): the top-down
 *                    weights from the layer above, the top layer's from the 10 label values
 * manifest.json (format "ffrun-npz", version 1; 2 for a recurrent net, whose "recurrent"
 * entry gives iterations, damping, the readout's window and readout_iteration: a reader
 * that knows only version 1 must refuse it) says what the model takes (image shape,
 * normalisation, class names), the label embedding, the layers in order (type, shapes,
 * kernel, stride, padding, groups, label planes, the pools before and after each, the
 * layer's arrays, whether the goodness readout reads it) and the readouts, with the
 * formulas in words (README "Using a trained model"). */
#ifndef FF_EXPORT_H
#define FF_EXPORT_H

#include "ff/err.h"
#include "ff/model.h"

/* Writes m to path (.npz, atomically); model_path is recorded in the manifest.
 * Errors: FF_ERR_IO, FF_ERR_NOMEM, FF_ERR_USAGE (over zip's 4 GiB; a recurrent net with
 * other than fc layers). */
int ff_export_npz(const ff_model *m, const char *model_path, const char *path,
                        ff_err *err);

#endif
