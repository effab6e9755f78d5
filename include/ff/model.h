/* model.h - a trained model (.ffm) opened for inference: classify images with the
 * readout it was trained for, the way `ffrun eval` does.
 *
 * What a model file does not hold is taken from its training data (data.dir of the
 * model's config, or another folder of the same data set): the image shape and the
 * class names (from one batch of training images); with data.normalize channel the
 * per-channel means and standard deviations of the training split (data.train_limit
 * images, as the run computed them); with train.competition_norm batch/affine the
 * evaluation statistics of every layer (computed afresh over the first 10,000 training
 * images, as `ffrun eval` and the run's evaluation do: ff_trainer_refresh_stats). So
 * opening a model reads training data (the data files are read whole, and the
 * training split kept in memory while the model is open when the statistics need
 * it); classifying reads nothing.
 *
 * Readouts: goodness (supervised models: for each label, the sum over the evaluated
 * layers (eval.layers) of the goodness with that label in the input; with no label in
 * the input, train.loss competition, the summed goodness of each class group) and
 * softmax (the linear head's probabilities: supervised models trained with
 * eval.softmax, and unsupervised_clf models, whose only readout it is). The predicted
 * class is the argmax of the scores (the first on ties).
 *
 * ff_model_open fills a caller-provided struct; ff_model_free releases it (safe on a
 * zeroed struct). Not thread-safe: one ff_model_scores call at a time per model. */
#ifndef FF_MODEL_H
#define FF_MODEL_H

#include <stdint.h>

#include "ff/clf_trainer.h"
#include "ff/data.h"
#include "ff/err.h"
#include "ff/net.h"
#include "ff/readout.h"
#include "ff/trainer.h"

typedef enum { FF_MODEL_READOUT_GOODNESS, FF_MODEL_READOUT_SOFTMAX } ff_model_readout;

typedef struct ff_model {
    ff_config cfg;               /* the model's config (data.dir as opened) */
    int epoch;                   /* epochs completed when it was saved */
    int64_t step;
    int is_clf;                  /* unsupervised_clf: clf holds it, else tr */
    ff_trainer tr;
    ff_clf_trainer clf;
    ff_net *net;                 /* tr.net or clf.net */
    ff_readout *head;            /* the softmax head, or NULL if the model has none */
    const int *head_layers;      /* the layers the head reads */
    int head_n;
    ff_shape image;              /* the images it classifies: C x H x W */
    int standardize;             /* data.normalize channel: (x - mean[c]) / std[c] */
    float mean[FF_MAX_CHANNELS], std[FF_MAX_CHANNELS];
    char class_names[FF_DATA_CLASSES][FF_CLASS_NAME_MAX]; /* "" where the data set has none */
    int max_images;              /* images per internal batch */
    float *x;                    /* the trainer's input buffer */
    uint8_t labels[100];         /* zeros: the dataset view's labels (never read as truth) */
} ff_model;

/* Opens the model file at path; data_dir NULL or "": the data.dir of its config.
 * Errors: FF_ERR_IO / FF_ERR_FORMAT (the model file or the data), FF_ERR_USAGE (an
 * unsupervised_backbone model: it has no classifier; data that does not fit the
 * model), FF_ERR_NOMEM. */
int ff_model_open(ff_model *m, const char *path, const char *data_dir, ff_err *err);

/* The readout a model is read out with by default: goodness for supervised models,
 * softmax for unsupervised_clf. */
ff_model_readout ff_model_default_readout(const ff_model *m);

/* FF_OK if the model has that readout, else FF_ERR_USAGE saying why not. */
int ff_model_check_readout(const ff_model *m, ff_model_readout r, ff_err *err);

/* "goodness" or "softmax". */
const char *ff_model_readout_name(ff_model_readout r);

/* scores[i * 10 + k] = the readout's score of class k for image i < n. images: n
 * images of m->image, CHW, pixel / 255 (as ff_image_file_read gives them); they are
 * standardised IN PLACE when the model was trained with data.normalize channel. Any
 * n >= 0 (batched internally). The readout must be one the model has (asserted). */
void ff_model_scores(ff_model *m, ff_model_readout r, float *images, int n, float *scores);

/* argmax_k scores[k] over 10 scores. */
int ff_model_argmax(const float *scores);

void ff_model_free(ff_model *m);

#endif
