/* optim.h - SGD with momentum, smoothed SGD (Hinton's ffcode) and Adam over one flat
 * parameter buffer, plus learning-rate schedules.
 *
 * The optimiser state (momentum, the smoothed gradient, or Adam's m and v) is one
 * contiguous buffer (state[0..n) and, for Adam, state[n..2n)) so checkpoints and a
 * future allreduce can take it whole. ff_optim_init allocates it; ff_optim_free
 * releases it (safe on a zeroed struct). Weight decay wd is applied to every
 * parameter w. The steps, g the gradient:
 *   sgd:        v = momentum v + (g + wd w);           w -= lr v
 *   sgd_smooth: d = momentum d + (1 - momentum) g;     w -= lr (d + wd w)
 *   adam:       g' = g + wd w; m, v the usual moments of g'; w -= lr m^ / (sqrt(v^) + eps)
 * sgd_smooth is ffnew.m's update (its "delay" is momentum, its weight cost wd): the
 * decay is outside the smoothing, so it acts at once and at full strength. */
#ifndef FF_OPTIM_H
#define FF_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"

typedef struct ff_optim {
    ff_opt_kind kind;
    float momentum, beta1, beta2, eps, weight_decay;
    size_t n;         /* number of parameters */
    float *state;     /* sgd: n floats (velocity); sgd_smooth: n (smoothed gradient);
                         adam: 2n floats (m then v) */
    int64_t t;        /* steps taken (Adam bias correction) */
} ff_optim;

/* What an optimiser is, apart from its learning rate (which each step takes). */
typedef struct ff_optim_params {
    ff_opt_kind kind;
    float momentum;           /* sgd momentum, sgd_smooth smoothing */
    float beta1, beta2, eps;  /* adam */
    float weight_decay;       /* all: L2 weight decay (see above for where it enters) */
} ff_optim_params;

/* The optimizer.* settings of cfg. */
ff_optim_params ff_optim_params_from_config(const ff_config *cfg);

/* Sets o up for n parameters with p (copied) and zeroed state. FF_ERR_NOMEM. */
int ff_optim_init(ff_optim *o, const ff_optim_params *p, size_t n, ff_err *err);
void ff_optim_free(ff_optim *o);
size_t ff_optim_state_len(const ff_optim *o);

/* One fused pass over params[0..n): params -= lr * update(grads). */
void ff_optim_step(ff_optim *o, float *params, const float *grads, float lr);

/* The same step on parameters [off, off + n) only (a layer pipeline's own layers):
 * those values change exactly as in ff_optim_step; the step count advances. */
void ff_optim_step_range(ff_optim *o, float *params, const float *grads, float lr, size_t off,
                         size_t n);

/* One step on the `count` ranges [off[i], off[i] + n[i]) (the layers still learning
 * while others are frozen): each range changes exactly as in ff_optim_step, the
 * others not at all; the step count advances once. */
void ff_optim_step_ranges(ff_optim *o, float *params, const float *grads, float lr,
                          const size_t *off, const size_t *n, int count);

/* The factor cfg->schedule applies to the base learning rate at `step` (0-based)
 * of `total` steps: 1 before the decay starts, down to schedule.final_lr_scale. */
float ff_optim_schedule_scale(const ff_config *cfg, int64_t step, int64_t total);

/* Learning rate at `step` of `total` steps: optimizer.lr * ff_optim_schedule_scale. */
float ff_optim_schedule_lr(const ff_config *cfg, int64_t step, int64_t total);

#endif
