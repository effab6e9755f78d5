/* shape.h - the shape of one sample: channels x height x width. Images, layer inputs
 * and outputs, embedded inputs and data sets carry one; an fc layer's vector is
 * c = dim, h = w = 1. Samples are stored CHW (channel-major). */
#ifndef FF_SHAPE_H
#define FF_SHAPE_H

typedef struct ff_shape {
    int c, h, w;   /* fc vectors are c = dim, h = w = 1 */
} ff_shape;

/* Floats of one sample. */
static inline int ff_shape_dim(ff_shape s) { return s.c * s.h * s.w; }

#endif
