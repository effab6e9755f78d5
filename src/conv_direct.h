/* conv_direct.h - the conv layer's direct loops for groups with few inputs
 * (src/conv_direct.c); used by src/layer_conv.c only. */
#ifndef FF_CONV_DIRECT_H
#define FF_CONV_DIRECT_H

#include "ff/layer.h"

/* the largest inputs per output channel, (in.c / groups) * kernel^2, summed directly */
#ifndef FF_CONV_DIRECT_KG
#define FF_CONV_DIRECT_KG 32
#endif

/* 1 if the layer's geometry (in, out, kernel, stride, groups set up) suits the
 * direct loops: stride 1, (in.c / groups) * kernel^2 <= FF_CONV_DIRECT_KG, and its
 * rows fit the stack tables; the conv layer also needs no constant planes */
int ff_conv_direct_fits(const ff_layer *l);

/* y = relu(conv(x) + b) for a batch, as the conv layer's forward pass */
void ff_conv_direct_forward(const ff_layer *l, const float *x, float *y, int batch);

/* floats of ff_conv_direct_backward's workspace */
size_t ff_conv_direct_workspace(const ff_layer *l);

/* gW (= or, beta != 0, beta * gW +) the weight gradient from dpre (d loss / d
 * pre-activation, [batch, out]); the bias gradient is the caller's; groups over the
 * pool */
void ff_conv_direct_backward(const ff_layer *l, const float *x, const float *dpre, int batch,
                             float beta, float *ws);

#endif
