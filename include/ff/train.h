/* train.h - a whole training run as `ffrun` does it: a trainer (trainer.h or
 * clf_trainer.h) driven batch by batch by the one run loop (src/run_loop.h), with
 * the run directory, TensorBoard curves, evaluation, checkpoints and progress
 * around it as the loop's observers (src/run_observers.c).
 *
 * Nothing is printed: progress and notes go to the caller's callbacks. */
#ifndef FF_TRAIN_H
#define FF_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/trainer.h"

typedef struct ff_progress {
    int epoch, epochs;          /* 1-based current epoch */
    int batch, n_batches;       /* batches done in this epoch */
    int64_t step;               /* global step (one per batch) */
    double images_per_sec;      /* training images (pos + neg pass) per second this epoch */
    float loss;                 /* mean total FF loss of the batches since the last log
                                   (-1: every layer has stopped learning); unsupervised_clf:
                                   the classifier's loss over the epoch */
    float head_loss;            /* the softmax head's, the same way (-1: no head) */
    double epoch_seconds;       /* time spent in this epoch so far (training) */
    double after_seconds;       /* at the end of an epoch: its evaluation, logs and model
                                   files (0 before) */
    int epoch_done;             /* 1 at the end of an epoch */
    int evaluated;              /* 1 if the errors that choose (validation's with a split,
                                   else test's) were just computed */
    double val_error;           /* validation images: fraction, goodness readout (-1 if none
                                   or not evaluated) */
    double val_error_softmax;   /* validation images: softmax readout (-1 likewise) */
    double test_error;          /* test set: fraction, goodness readout (-1 likewise; with a
                                   validation split only at the end or with eval.test every) */
    double test_error_softmax;  /* test set: softmax readout (-1 likewise) */
} ff_progress;

typedef void (*ff_progress_fn)(void *ctx, const ff_progress *p);

struct ff_checkpoint;

typedef struct ff_train_opts {
    const struct ff_checkpoint *resume; /* continue this run (NULL: a new run); cfg must be
                                           the checkpoint's config (plus overrides) */
    const char *resume_path;       /* the model file resume came from: its name gives the
                                      model-name prefix the run keeps writing under */
    volatile sig_atomic_t *stop;   /* if non-NULL and set, stop after the current batch */
    int64_t max_steps;             /* > 0: stop the same way once the global step reaches it */
    int stop_epoch;                /* > 0: stop the same way after epoch stop_epoch (its
                                      evaluation and logs done): `ffrun sweep`'s asha rungs */
    ff_progress_fn progress;       /* called every few batches and at each epoch end */
    void *progress_ctx;            /* passed to progress and info */
    ff_info_fn info;
    int progress_every;            /* batches between progress calls (default 10) */
    const char *run_dir;           /* non-NULL: a new run logs into exactly this directory
                                      (created if missing; `ffrun sweep` names its runs so) */
    const char *command_line;      /* for the run record (run.json); NULL: none */
} ff_train_opts;

typedef struct ff_train_result {
    char run_dir[1024];
    char event_file[1024];
    char model_path[1024];          /* the last model written */
    char best_path[1024];           /* the model with the lowest error so far on the validation
                                       images (data.validation), else on the test set */
    double final_error;             /* main readout (goodness; softmax for unsupervised modes)
                                       on the test set the last time it was read, fraction;
                                       -1 if never */
    double best_error;              /* the best model's main-readout error on the set that
                                       chooses (validation's if any, else test's); -1 if none */
    double final_error_softmax;     /* softmax readout on the test set, -1 if not evaluated */
    double val_final_error;         /* the last evaluation's main-readout error on the
                                       validation images, -1 without them */
    double val_final_error_softmax; /* its softmax readout, -1 if none */
    const char *readout;            /* "goodness" or "softmax" */
    int best_epoch, epochs_done;
    int started;                    /* 1 once set-up succeeded and the run directory exists */
    double seconds, train_seconds;  /* wall time total / spent in training batches */
    double epochs_trained;          /* epochs' worth of batches this process trained (less
                                       than epochs_done after a resume) */
    int64_t train_images;           /* images this process trained on (the whole batch's
                                       count under data parallel) */
    int interrupted;
} ff_train_result;

/* Runs the experiment cfg describes: picks the trainer for cfg->mode (src/modes.c:
 * the FF trainer for supervised and unsupervised_backbone, the classifier for
 * unsupervised_clf) and runs the loop. Every mode writes the same model files: the
 * best (chosen on validation, else the test set), epoch (checkpoint.every and the
 * last), periodic (checkpoint.minutes) and stop models. res is always filled (res->started says whether training
 * began). Once training has started, a fatal error (a failed write, divergence,
 * a signal) leaves a resumable model when one can be written: a step model of
 * the current state, or for divergence the last good model, named in err. */
int ff_train(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res, ff_err *err);

#endif
