/* readout.c - linear softmax readout on normalised FF activities (include/ff/readout.h). */
#include "ff/readout.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff/embed.h"
#include "ff/objective.h"

/* ---------------------------------------------------------------- classifier */

/* Adam with PyTorch's defaults, no weight decay (the defaults of the clf.* keys). */
static const ff_optim_params readout_adam = {
    .kind = FF_OPT_ADAM, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};

ff_optim_params ff_readout_optim_params(const ff_config *cfg)
{
    ff_optim_params p = readout_adam;
    p.kind = cfg->clf.optimizer;
    p.momentum = cfg->clf.momentum;
    p.weight_decay = cfg->clf.weight_decay;
    return p;
}

int ff_readout_init(ff_readout *ro, int features, int classes, int max_batch,
                    const ff_optim_params *opt, ff_err *err)
{
    memset(ro, 0, sizeof *ro);
    if (features < 1 || classes < 1 || classes > 255 || max_batch < 1)
        return ff_err_set(err, FF_ERR_USAGE, "readout: bad sizes (features %d, classes %d, "
                          "max batch %d)", features, classes, max_batch);
    ro->features = features;
    ro->classes = classes;
    ro->max_batch = max_batch;
    ro->n_params = (size_t)classes * (size_t)features + (size_t)classes;
    const size_t rows = (size_t)max_batch;
    const size_t total = 2 * ro->n_params + rows * (size_t)classes + rows * (size_t)features;
    ro->mem = calloc(total, sizeof(float));
    ro->labels = malloc(2 * rows);
    if (!ro->mem || !ro->labels) {
        ff_readout_free(ro);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for the readout (%zu floats)", total);
    }
    ro->params = ro->mem;
    ro->grads = ro->params + ro->n_params;
    ro->logits = ro->grads + ro->n_params;
    ro->feat = ro->logits + rows * (size_t)classes;
    memset(ro->labels + rows, FF_LABEL_NEUTRAL, rows);
    int rc = ff_optim_init(&ro->opt, opt ? opt : &readout_adam, ro->n_params, err);
    if (rc)
        ff_readout_free(ro);
    return rc;
}

void ff_readout_free(ff_readout *ro)
{
    ff_optim_free(&ro->opt);
    free(ro->mem);
    free(ro->labels);
    memset(ro, 0, sizeof *ro);
}

void ff_readout_reset(ff_readout *ro)
{
    memset(ro->params, 0, sizeof(float) * 2 * ro->n_params);
    memset(ro->opt.state, 0, sizeof(float) * ff_optim_state_len(&ro->opt));
    ro->opt.t = 0;
}

void ff_readout_logits(const ff_readout *ro, const float *x, int batch, float *logits)
{
    const int F = ro->features, C = ro->classes;
    const float *W = ro->params, *b = ro->params + (size_t)C * F;
    FF_ASSERT(batch >= 0 && batch <= ro->max_batch);
    for (int i = 0; i < batch; i++)
        memcpy(logits + (size_t)i * C, b, sizeof(float) * (size_t)C);
    if (batch)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, C, F, 1.0f, x, F, W, F, 1.0f,
                    logits, C);
}

/* Turns row z (C logits) into d(loss_i)/dz scaled by `scale`; returns loss_i. */
static double softmax_xent_row(float *z, int C, int label, float scale)
{
    float mx = z[0];
    for (int k = 1; k < C; k++)
        mx = z[k] > mx ? z[k] : mx;
    double sum = 0.0;
    for (int k = 0; k < C; k++)
        sum += exp((double)(z[k] - mx));
    const double loss = log(sum) - (double)(z[label] - mx);
    for (int k = 0; k < C; k++)
        z[k] = scale * ((float)(exp((double)(z[k] - mx)) / sum) - (k == label ? 1.0f : 0.0f));
    return loss;
}

float ff_readout_loss_grad(ff_readout *ro, const float *x, const uint8_t *labels, int batch)
{
    const int F = ro->features, C = ro->classes;
    float *dz = ro->logits, *gW = ro->grads, *gb = ro->grads + (size_t)C * F;
    if (batch < 1) {
        memset(ro->grads, 0, sizeof(float) * ro->n_params);
        return 0.0f;
    }
    ff_readout_logits(ro, x, batch, dz);
    const float scale = 1.0f / (float)batch;
    double loss = 0.0;
    for (int i = 0; i < batch; i++) {
        FF_ASSERT(labels[i] < C);
        loss += softmax_xent_row(dz + (size_t)i * C, C, labels[i], scale);
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, F, batch, 1.0f, dz, C, x, F, 0.0f, gW,
                F);
    memset(gb, 0, sizeof(float) * (size_t)C);
    for (int i = 0; i < batch; i++)
        for (int k = 0; k < C; k++)
            gb[k] += dz[(size_t)i * C + k];
    return (float)(loss / batch);
}

float ff_readout_train_batch(ff_readout *ro, const float *x, const uint8_t *labels, int batch,
                             float lr)
{
    float loss = ff_readout_loss_grad(ro, x, labels, batch);
    ff_optim_step(&ro->opt, ro->params, ro->grads, lr);
    return loss;
}

static int argmax(const float *z, int C)
{
    int best = 0;
    for (int k = 1; k < C; k++)
        if (z[k] > z[best])
            best = k;
    return best;
}

void ff_readout_predict(ff_readout *ro, const float *x, int batch, uint8_t *pred)
{
    ff_readout_logits(ro, x, batch, ro->logits);
    for (int i = 0; i < batch; i++)
        pred[i] = (uint8_t)argmax(ro->logits + (size_t)i * ro->classes, ro->classes);
}

/* ---------------------------------------------------------------- features */

int ff_readout_feature_dim(const ff_net *net, const int *layers, int n_layers)
{
    int dim = 0;
    for (int j = 0; j < n_layers; j++) {
        FF_ASSERT(layers[j] >= 0 && layers[j] < net->n_layers);
        dim += ff_shape_dim(ff_net_loss_shape(net, layers[j]));
    }
    return dim;
}

void ff_readout_features(const ff_net *net, const int *layers, int n_layers, int batch,
                         float *out)
{
    const size_t F = (size_t)ff_readout_feature_dim(net, layers, n_layers);
    size_t off = 0;
    for (int j = 0; j < n_layers; j++) {
        const int l = layers[j];
        const size_t dim = (size_t)ff_shape_dim(ff_net_loss_shape(net, l));
        if (l + 1 < net->n_layers && (!ff_net_pooled(net, l + 1) || net->post[l])) {
            /* the next layer's input starts with it (label planes may follow) */
            const size_t next = (size_t)ff_shape_dim(net->layers[l + 1].in);
            FF_ASSERT(next >= dim);
            for (int i = 0; i < batch; i++)
                memcpy(out + i * F + off, net->in[l + 1] + i * next, sizeof(float) * dim);
        } else if (net->head_norm_batch) {
            ff_net_standardise_eval(net, l, batch, out + off, F);
        } else {
            for (int i = 0; i < batch; i++)
                ff_objective_normalize(ff_net_loss_out(net, l) + i * dim, out + i * F + off, 1, (int)dim,
                             net->norm_eps);
        }
        off += dim;
    }
}

int ff_readout_layers(const ff_config *cfg, const ff_net *net, int layers[FF_MAX_LAYERS],
                      int *n_layers, ff_err *err)
{
    const int L = net->n_layers;
    int n = 0;
    if (cfg->mode == FF_MODE_SUPERVISED && cfg->clf.n_layers == 0) {
        for (int l = L > 1 ? 1 : 0; l < L; l++)
            layers[n++] = l;
    } else if (cfg->clf.n_layers > 0) {
        for (int j = 0; j < cfg->clf.n_layers; j++) {
            if (cfg->clf.layers[j] < 0 || cfg->clf.layers[j] >= L)
                return ff_err_set(err, FF_ERR_USAGE, "clf.layers.%d is %d, but the %s has "
                                  "only %d trainable layer%s (0-based indices, pools not counted)",
                                  j, cfg->clf.layers[j],
                                  cfg->mode == FF_MODE_SUPERVISED ? "net" : "backbone", L,
                                  L == 1 ? "" : "s");
            layers[n++] = cfg->clf.layers[j];
        }
    } else {
        for (int l = L > 3 ? L - 3 : 0; l < L; l++)
            layers[n++] = l;
    }
    *n_layers = n;
    return FF_OK;
}

/* ---------------------------------------------------------------- epochs */

/* Net inputs and true labels (into ro->labels) of images order[start + i]
 * (order NULL: start + i) for i < m. */
static void fill_inputs(ff_readout *ro, const ff_readout_input *in, const int *order, int start,
                        int m, float *x)
{
    const ff_dataset *ds = in->ds;
    const size_t dim = ff_dataset_dim(ds);
    const uint8_t *neutral = ro->labels + ro->max_batch;
    FF_ASSERT(m <= ro->max_batch);
    const ff_aug *aug = in->aug ? in->aug + start : NULL;
    for (int i = 0; i < m; i++)
        ro->labels[i] = ds->labels[order ? order[start + i] : start + i];
    /* the image alone (unsupervised) or with the neutral label, shifted if asked */
    const ff_embed_kind kind = in->neutral ? in->embed : FF_EMBED_OVERLAY;
    const uint8_t *labels = in->neutral ? neutral : NULL;
    if (order)
        ff_embed_batch_aug(kind, ds->images, ds->shape, order + start, labels, aug, m, x);
    else /* idx NULL reads images 0..m: start the array at image `start` */
        ff_embed_batch_aug(kind, ds->images + (size_t)start * dim, ds->shape, NULL, labels, aug,
                           m, x);
}

void ff_readout_make_input(ff_readout *ro, const ff_readout_input *in, const int *idx, int batch,
                           float *x)
{
    fill_inputs(ro, in, idx, 0, batch, x);
}

int ff_readout_check_input(const ff_readout *ro, const ff_net *net, const int *layers,
                           int n_layers, const ff_readout_input *in, ff_err *err)
{
    const ff_dataset *ds = in->ds;
    int rc = in->neutral ? ff_embed_check_shape(in->embed, ds->shape, err) : FF_OK;
    if (rc)
        return rc;
    const ff_shape s = in->neutral ? ff_embed_shape(in->embed, ds->shape) : ds->shape;
    const ff_shape w = net->input;
    if (s.c != w.c || s.h != w.h || s.w != w.w)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: %dx%dx%d images (inputs %dx%dx%d), but the net "
                          "takes %dx%dx%d inputs", ds->source[0] ? ds->source : "dataset",
                          ds->shape.c, ds->shape.h, ds->shape.w, s.c, s.h, s.w, w.c, w.h, w.w);
    if (ff_readout_feature_dim(net, layers, n_layers) != ro->features)
        return ff_err_set(err, FF_ERR_FORMAT, "readout: the head reads %d features, the layers "
                          "give %d", ro->features, ff_readout_feature_dim(net, layers, n_layers));
    return FF_OK;
}

static void check_input(const ff_readout *ro, const ff_net *net, const int *layers, int n_layers,
                        const ff_readout_input *in)
{
    FF_ASSERT(ff_readout_check_input(ro, net, layers, n_layers, in, NULL) == FF_OK);
}

/* Forward m rows of x and extract their features into ro->feat. */
static void forward_features(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                             const float *x, int m)
{
    ff_net_forward(net, x, m);
    ff_readout_features(net, layers, n_layers, m, ro->feat);
}

float ff_readout_train_epoch(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                             const ff_readout_input *in, const int *order, int n, int batch,
                             float lr, float *xbuf)
{
    check_input(ro, net, layers, n_layers, in);
    FF_ASSERT(batch >= 1 && batch <= ro->max_batch && batch <= net->max_batch);
    double total = 0.0;
    for (int start = 0; start < n; start += batch) {
        const int m = n - start < batch ? n - start : batch;
        fill_inputs(ro, in, order, start, m, xbuf);
        forward_features(ro, net, layers, n_layers, xbuf, m);
        total += (double)ff_readout_train_batch(ro, ro->feat, ro->labels, m, lr) * m;
    }
    return n > 0 ? (float)(total / n) : 0.0f;
}

void ff_readout_scores(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                       const ff_readout_input *in, const int *idx, int batch, float *xbuf,
                       float *scores)
{
    check_input(ro, net, layers, n_layers, in);
    FF_ASSERT(batch <= ro->max_batch && batch <= net->max_batch);
    fill_inputs(ro, in, idx, 0, batch, xbuf);
    forward_features(ro, net, layers, n_layers, xbuf, batch);
    ff_readout_logits(ro, ro->feat, batch, scores);
}

/* wrong predictions among m rows of ro->logits against labels; confusion counted if not
 * NULL */
static int64_t count_wrong(const ff_readout *ro, const uint8_t *labels, int m, int64_t *confusion)
{
    const int C = ro->classes;
    int64_t wrong = 0;
    for (int i = 0; i < m; i++) {
        const int truth = labels[i];
        const int pred = argmax(ro->logits + (size_t)i * C, C);
        wrong += pred != truth;
        if (confusion && truth < C)
            confusion[(size_t)truth * C + pred]++;
    }
    return wrong;
}

double ff_readout_error(ff_readout *ro, ff_net *net, const int *layers, int n_layers,
                        const ff_readout_input *in, int n, float *xbuf, int64_t *confusion)
{
    check_input(ro, net, layers, n_layers, in);
    const int C = ro->classes;
    if (n <= 0 || n > in->ds->n)
        n = in->ds->n;
    if (confusion)
        memset(confusion, 0, sizeof(int64_t) * (size_t)C * (size_t)C);
    const int chunk = ro->max_batch < net->max_batch ? ro->max_batch : net->max_batch;
    int64_t wrong = 0;
    for (int start = 0; start < n; start += chunk) {
        const int m = n - start < chunk ? n - start : chunk;
        fill_inputs(ro, in, NULL, start, m, xbuf);
        forward_features(ro, net, layers, n_layers, xbuf, m);
        ff_readout_logits(ro, ro->feat, m, ro->logits);
        wrong += count_wrong(ro, ro->labels, m, confusion);
    }
    return n > 0 ? (double)wrong / n : 0.0;
}

int64_t ff_readout_wrong_in_net(ff_readout *ro, const ff_net *net, const int *layers,
                                int n_layers, const uint8_t *labels, int m, int64_t *confusion)
{
    FF_ASSERT(m <= ro->max_batch && m <= net->max_batch);
    ff_readout_features(net, layers, n_layers, m, ro->feat);
    ff_readout_logits(ro, ro->feat, m, ro->logits);
    return count_wrong(ro, labels, m, confusion);
}

double ff_readout_error_features(ff_readout *ro, const float *feat, const uint8_t *labels, int n,
                                 int64_t *confusion)
{
    const int C = ro->classes;
    if (confusion)
        memset(confusion, 0, sizeof(int64_t) * (size_t)C * (size_t)C);
    int64_t wrong = 0;
    for (int start = 0; start < n; start += ro->max_batch) {
        const int m = n - start < ro->max_batch ? n - start : ro->max_batch;
        ff_readout_logits(ro, feat + (size_t)start * (size_t)ro->features, m, ro->logits);
        wrong += count_wrong(ro, labels + start, m, confusion);
    }
    return n > 0 ? (double)wrong / n : 0.0;
}
