/* clf_trainer.h - mode unsupervised_clf as a library: a linear softmax
 * classifier trained batch by batch on the normalised activities of a frozen,
 * pretrained backbone.
 *
 * The backbone is checkpoint.backbone, or the newest unsupervised_backbone_*.ffm
 * in checkpoint.dir by modification time. Its architecture travels inside its
 * model file, so the classifier config names no layers: the trainer's config is
 * the classifier config with the backbone's layers copied in. A classifier
 * model file holds that config, the backbone parameters followed by the head's
 * W [10, features] and b [10], the head's Adam state, the RNG and the position
 * in the epoch, so a run can be resumed from it.
 *
 * An epoch is ceil(n / train.batch_size) batches in a shuffled order (the last
 * one partial); each batch draws its jitter shifts (train.jitter) from the RNG
 * and takes one Adam step at clf.lr under the schedule, counted in classifier
 * epochs. Like the FF trainer (trainer.h) it writes nothing; the run loop drives it
 * (src/train_clf.c, src/run_loop.h). ff_clf_trainer_free releases what create allocated (safe on a
 * zeroed struct). */
#ifndef FF_CLF_TRAINER_H
#define FF_CLF_TRAINER_H

#include <stdint.h>

#include "ff/checkpoint.h"
#include "ff/config.h"
#include "ff/data.h"
#include "ff/err.h"
#include "ff/net.h"
#include "ff/readout.h"
#include "ff/rng.h"
#include "ff/trainer.h"

typedef struct ff_clf_trainer {
    ff_config cfg;                /* the clf config with the backbone's layers */
    char backbone_path[1024];     /* where the backbone came from ("" when resumed) */
    int backbone_epoch;
    ff_dataset train, val, test;  /* val: data.validation's images (n 0: none) */
    ff_split_info split;          /* how val was drawn */
    const char *record;           /* borrowed: the run record (JSON) its model files carry */
    ff_net net;                   /* the frozen backbone */
    ff_readout ro;                /* the classifier */
    int layers[FF_MAX_LAYERS], n_layers;
    ff_rng rng;
    int batch, n_batches;         /* images per batch; batches per epoch (last one partial) */
    int64_t step, total_steps;
    int epoch, batch_in_epoch;    /* epochs completed; batches done in the next one */
    int *order;                   /* the epoch's image order */
    ff_aug *aug;                  /* [batch] the batch's jitter shifts and flips (NULL: none) */
    float *x;                     /* [net.max_batch, input dim] net inputs */
} ff_clf_trainer;

/* A fresh classifier on the backbone cfg names (resume NULL), or the state of
 * a classifier model file being resumed (its backbone comes from the file). */
int ff_clf_trainer_create(ff_clf_trainer *t, const ff_config *cfg, const ff_checkpoint *resume,
                          ff_info_fn info, void *info_ctx, ff_err *err);

/* The classifier's learning rate in classifier epoch `epoch` (0-based). */
float ff_clf_trainer_lr(const ff_clf_trainer *t, int epoch);

/* The next batch of the epoch (its order drawn at the first batch): one Adam
 * step. Returns the batch's mean loss; *images gets its size and *epoch_done 1
 * if the batch completed the epoch. */
float ff_clf_trainer_next(ff_clf_trainer *t, int *images, int *epoch_done);

/* The classifier's error (fraction) on the validation images or the test set (-1: the
 * set is empty, e.g. no data.validation); confusion (10x10, [true][pred]) filled if not
 * NULL. */
double ff_clf_trainer_evaluate(ff_clf_trainer *t, ff_eval_set set, int64_t *confusion);

/* Writes the classifier model (atomically). */
int ff_clf_trainer_save(const ff_clf_trainer *t, const char *path, const char *run_dir,
                        ff_err *err);

void ff_clf_trainer_free(ff_clf_trainer *t);

#endif
