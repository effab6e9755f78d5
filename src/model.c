/* model.c - a trained model opened for inference (include/ff/model.h): the FF trainer
 * (or the classifier trainer) restored from the model file, the training split's
 * statistics, and the readouts' scores for images from outside the data set. */
#include "ff/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff/checkpoint.h"
#include "ff/embed.h"
#include "ff/eval.h"
#include "ff/objective.h"

#define MODEL_BATCH 100 /* images per internal batch (fewer if the net's buffers are
                           smaller); the goodness readout chunks them further as it needs */

/* data.normalize channel: the per-channel means and standard deviations of the model's
 * training split, computed as the run computed them (ff_data_open, data.train_limit). */
static int read_channel_stats(ff_model *m, ff_err *err)
{
    ff_config cfg = m->cfg;
    cfg.data.test_limit = 1;
    ff_dataset train, test;
    ff_data_info info; /* of the training images less data.validation's, as the run's */
    int rc = ff_data_open(&cfg, &train, NULL, &test, &info, err);
    if (rc)
        return rc;
    for (int c = 0; c < train.shape.c; c++) {
        m->mean[c] = info.mean[c];
        m->std[c] = info.std[c];
    }
    ff_dataset_free(&train);
    ff_dataset_free(&test);
    return FF_OK;
}

/* The config the trainer is created from: no test split, no feature cache, and unless
 * batch-norm statistics must be computed from the training split (the first 10,000
 * images), only one batch of training images: the image shape, the class names and the
 * buffer sizes of the run come from them, nothing else. */
static ff_config inference_config(const ff_config *model_cfg)
{
    ff_config cfg = *model_cfg;
    cfg.data.test_limit = 1;
    cfg.clf.cache_features = 0;
    const int batch_norm = cfg.train.loss == FF_LOSS_COMPETITION &&
                           cfg.train.competition_norm != FF_COMP_SAMPLE;
    const int batch = cfg.train.batch_size > 0 ? cfg.train.batch_size : 1;
    if (!batch_norm && (cfg.data.train_limit <= 0 || cfg.data.train_limit > batch)) {
        cfg.data.train_limit = batch;
        cfg.data.validation = 0.0f; /* those images give shapes and names only */
    }
    return cfg;
}

/* A supervised model through the FF trainer, as `ffrun eval` restores it. */
static int open_supervised(ff_model *m, const ff_checkpoint *ck, ff_err *err)
{
    const ff_config cfg = inference_config(&m->cfg);
    int rc = ff_trainer_create(&m->tr, &cfg, NULL, NULL, err);
    if (!rc)
        rc = ff_trainer_restore(&m->tr, ck, NULL, NULL, err);
    if (rc)
        return rc;
    ff_trainer_refresh_stats(&m->tr);
    m->net = &m->tr.net;
    m->x = m->tr.x;
    m->image = m->tr.train.shape;
    memcpy(m->class_names, m->tr.train.class_names, sizeof m->class_names);
    /* the head counts only if the file holds it (restore_head keeps a fresh one else) */
    if (cfg.eval.softmax && ck->n_head == m->tr.ro.n_params && ck->n_head > 0) {
        m->head = &m->tr.ro;
        m->head_layers = m->tr.ro_layers;
        m->head_n = m->tr.ro_n;
    }
    return FF_OK;
}

static int open_classifier(ff_model *m, const ff_checkpoint *ck, ff_err *err)
{
    const ff_config cfg = inference_config(&m->cfg);
    int rc = ff_clf_trainer_create(&m->clf, &cfg, ck, NULL, NULL, err);
    if (rc)
        return rc;
    m->net = &m->clf.net;
    m->x = m->clf.x;
    m->image = m->clf.train.shape;
    memcpy(m->class_names, m->clf.train.class_names, sizeof m->class_names);
    m->head = &m->clf.ro;
    m->head_layers = m->clf.layers;
    m->head_n = m->clf.n_layers;
    return FF_OK;
}

int ff_model_open(ff_model *m, const char *path, const char *data_dir, ff_err *err)
{
    memset(m, 0, sizeof *m);
    ff_checkpoint ck = {0};
    int rc = ff_checkpoint_load(path, &ck, err);
    if (rc)
        return rc;
    m->cfg = ck.cfg;
    m->epoch = ck.epoch;
    m->step = ck.step;
    ck.batch = 0; /* where in an epoch it stopped does not matter here */
    if (data_dir && data_dir[0])
        snprintf(m->cfg.data.dir, sizeof m->cfg.data.dir, "%s", data_dir);
    if (ck.cfg.mode == FF_MODE_UNSUP_BACKBONE)
        rc = ff_err_set(err, FF_ERR_USAGE,
                        "%s is an unsupervised backbone: it has no classifier; train "
                        "configs/unsupervised_clf.yaml on it and use that model", path);
    m->is_clf = ck.cfg.mode == FF_MODE_UNSUP_CLF;
    if (!rc && (rc = m->is_clf ? open_classifier(m, &ck, err) : open_supervised(m, &ck, err)) &&
        rc != FF_ERR_NOMEM)
        ff_err_prefix(err, "%s: its training data (data.dir %s)", path, m->cfg.data.dir);
    m->standardize = m->cfg.data.normalize == FF_DATA_NORM_CHANNEL;
    for (int c = 0; c < FF_MAX_CHANNELS; c++) {
        m->mean[c] = 0.0f;
        m->std[c] = 1.0f;
    }
    if (!rc && m->standardize && (rc = read_channel_stats(m, err)))
        ff_err_prefix(err, "%s: its training data (data.dir %s)", path, m->cfg.data.dir);
    /* images per pass: at most what the net's and the head's buffers hold */
    m->max_images = MODEL_BATCH;
    if (!rc && m->net->max_batch < m->max_images)
        m->max_images = m->net->max_batch;
    if (!rc && m->head && m->head->max_batch < m->max_images)
        m->max_images = m->head->max_batch;
    ff_checkpoint_free(&ck);
    if (rc)
        ff_model_free(m);
    return rc;
}

ff_model_readout ff_model_default_readout(const ff_model *m)
{
    return m->is_clf ? FF_MODEL_READOUT_SOFTMAX : FF_MODEL_READOUT_GOODNESS;
}

const char *ff_model_readout_name(ff_model_readout r)
{
    return r == FF_MODEL_READOUT_SOFTMAX ? "softmax" : "goodness";
}

int ff_model_check_readout(const ff_model *m, ff_model_readout r, ff_err *err)
{
    if (r == FF_MODEL_READOUT_GOODNESS && m->is_clf)
        return ff_err_set(err, FF_ERR_USAGE, "an unsupervised_clf model has no goodness "
                          "readout (no label in its input): use the softmax readout");
    if (r == FF_MODEL_READOUT_SOFTMAX && !m->head)
        return ff_err_set(err, FF_ERR_USAGE, "the model has no softmax head (trained without "
                          "eval.softmax): use the goodness readout");
    return FF_OK;
}

int ff_model_argmax(const float *scores)
{
    return ff_objective_argmax10(scores);
}

static void standardize(const ff_model *m, float *images, int n)
{
    const size_t hw = (size_t)m->image.h * (size_t)m->image.w;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < m->image.c; c++) {
            float *p = images + ((size_t)i * m->image.c + (size_t)c) * hw;
            const float mu = m->mean[c], inv = m->std[c] > 0.0f ? 1.0f / m->std[c] : 1.0f;
            for (size_t k = 0; k < hw; k++)
                p[k] = (p[k] - mu) * inv;
        }
}

/* In-place softmax of each row of 10 logits. */
static void softmax_rows(float *s, int n)
{
    for (int i = 0; i < n; i++, s += FF_NUM_CLASSES) {
        float mx = s[0];
        for (int k = 1; k < FF_NUM_CLASSES; k++)
            mx = s[k] > mx ? s[k] : mx;
        double sum = 0.0;
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            sum += exp((double)s[k] - mx);
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            s[k] = (float)(exp((double)s[k] - mx) / sum);
    }
}

void ff_model_scores(ff_model *m, ff_model_readout r, float *images, int n, float *scores)
{
    FF_ASSERT(ff_model_check_readout(m, r, NULL) == FF_OK);
    if (m->standardize)
        standardize(m, images, n);
    const size_t dim = (size_t)ff_shape_dim(m->image);
    for (int s = 0; s < n; s += m->max_images) {
        const int b = n - s < m->max_images ? n - s : m->max_images;
        ff_dataset ds = {.n = b, .shape = m->image, .images = images + (size_t)s * dim,
                         .labels = m->labels};
        float *out = scores + (size_t)s * FF_NUM_CLASSES;
        if (r == FF_MODEL_READOUT_GOODNESS && m->tr.rec.active) { /* model.recurrent */
            ff_recurrent_scores(&m->tr.rec, m->net, ds.images, b, 0, out, NULL);
        } else if (r == FF_MODEL_READOUT_GOODNESS) {
            ff_eval_goodness_scores(m->net, m->cfg.model.label_embedding, &ds, NULL, b, 0, m->x,
                                    out);
        } else {
            ff_readout_input in = {.ds = &ds, .neutral = !m->is_clf,
                                   .embed = m->cfg.model.label_embedding};
            ff_readout_scores(m->head, m->net, m->head_layers, m->head_n, &in, NULL, b, m->x,
                              out);
            softmax_rows(out, b);
        }
    }
}

void ff_model_free(ff_model *m)
{
    if (!m)
        return;
    ff_trainer_free(&m->tr);
    ff_clf_trainer_free(&m->clf);
    memset(m, 0, sizeof *m);
}
