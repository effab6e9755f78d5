/* optim.c - fused SGD-momentum and Adam updates and lr schedules (include/ff/optim.h). */
#include "ff/optim.h"

#include <math.h>
#include <stdlib.h>

int ff_optim_init(ff_optim *o, const ff_config *cfg, size_t n, ff_err *err)
{
    o->kind = cfg->optimizer.type;
    o->momentum = cfg->optimizer.momentum;
    o->beta1 = cfg->optimizer.beta1;
    o->beta2 = cfg->optimizer.beta2;
    o->eps = cfg->optimizer.eps;
    o->weight_decay = cfg->optimizer.weight_decay;
    o->n = n;
    o->t = 0;
    o->state = calloc(ff_optim_state_len(o), sizeof(float));
    if (!o->state)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for optimiser state (%zu floats)",
                          ff_optim_state_len(o));
    return FF_OK;
}

void ff_optim_free(ff_optim *o)
{
    free(o->state);
    o->state = NULL;
}

size_t ff_optim_state_len(const ff_optim *o) { return o->kind == FF_OPT_ADAM ? 2 * o->n : o->n; }

static void sgd_step(ff_optim *o, float *p, const float *g, float lr)
{
    const float mu = o->momentum, wd = o->weight_decay;
    float *v = o->state;
    for (size_t i = 0; i < o->n; i++) {
        float gi = g[i] + wd * p[i];
        v[i] = mu * v[i] + gi;
        p[i] -= lr * v[i];
    }
}

static void adam_step(ff_optim *o, float *p, const float *g, float lr)
{
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps, wd = o->weight_decay;
    float *m = o->state, *v = o->state + o->n;
    const double t = (double)o->t;
    const float c1 = (float)(1.0 / (1.0 - pow(b1, t)));
    const float c2 = (float)(1.0 / (1.0 - pow(b2, t)));
    for (size_t i = 0; i < o->n; i++) {
        float gi = g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
    }
}

void ff_optim_step(ff_optim *o, float *params, const float *grads, float lr)
{
    o->t++;
    if (o->kind == FF_OPT_ADAM)
        adam_step(o, params, grads, lr);
    else
        sgd_step(o, params, grads, lr);
}

float ff_schedule_lr(const ff_config *cfg, int64_t step, int64_t total)
{
    const float lr = cfg->optimizer.lr;
    if (cfg->schedule.type == FF_SCHED_CONSTANT || total <= 0)
        return lr;
    const double start = cfg->schedule.decay_start * (double)total;
    if ((double)step < start)
        return lr;
    double frac = ((double)step - start) / fmax(1.0, (double)total - start);
    if (frac > 1.0)
        frac = 1.0;
    const double lo = cfg->schedule.final_lr_scale;
    double scale = cfg->schedule.type == FF_SCHED_LINEAR
                       ? 1.0 - (1.0 - lo) * frac
                       : lo + (1.0 - lo) * 0.5 * (1.0 + cos(3.14159265358979 * frac));
    return (float)(lr * scale);
}
