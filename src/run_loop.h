/* run_loop.h - the one training loop of `ffrun`, over a small trainer interface,
 * with everything around the batches done by observers.
 *
 * A trainer (the FF trainer of src/train.c, the classifier's of src/train_clf.c)
 * offers: the next batch, an evaluation, a model file, its position and, where it
 * has them, a check of its state and a hand-over of a pipeline's layers. The loop
 * (ff_loop_run) asks for batches until the planned epochs are done or a stop is
 * requested (a signal, --max-steps, --stop-epoch: with several processes they
 * agree), evaluates at the epochs the trainer names, keeps the result's errors and
 * calls its observers' hooks:
 *
 *   on_start  once, in list order, before the first batch (the run's files)
 *   on_step   after every batch, in list order
 *   on_epoch  after every epoch's evaluation, in list order
 *   on_stop   once, in reverse list order, with the loop's status: an observer
 *             may replace it (a model that could not be saved) and sees
 *             loop->diverged
 *
 * The observers (src/run_observers.c and the trainers' own scalar loggers) are
 * TensorBoard's run files and errors, the model files (epoch, best, periodic and
 * stop models), the progress line and the trainers' curves. An observer with
 * all_ranks 0 runs on the writing process only (rank 0 under MPI); one that takes
 * part in collective calls (pipeline sums, agreement on saving) sets all_ranks
 * and gates its own writes on loop->writer. Mode dispatch (which trainer, which
 * observers) is src/modes.c's. */
#ifndef FF_RUN_LOOP_H
#define FF_RUN_LOOP_H

#include <stdint.h>

#include "ff/parallel.h"
#include "ff/run.h"
#include "ff/run_record.h"
#include "ff/train.h"
#include "ff/trainer.h"

/* Where a trainer stands. */
typedef struct ff_loop_position {
    int64_t step;        /* batches done in the run */
    int epoch;           /* epochs completed */
    int epochs;          /* planned */
    int batch_in_epoch;  /* batches done in epoch `epoch + 1` */
    int n_batches;       /* batches per epoch */
    int eval_every;      /* evaluate after every eval_every-th epoch and the last */
} ff_loop_position;

/* What one batch did, as the loop and the observers see it. */
typedef struct ff_loop_batch {
    int epoch_done;      /* the batch completed its epoch */
    int images;          /* training images of the batch (the whole batch under MPI) */
    float loss;          /* for the progress line: the trainer's recent loss (-1: none) */
    float head_loss;     /* the softmax head's (-1: none) */
    const void *stats;   /* the trainer's own statistics (its scalar logger reads them) */
} ff_loop_batch;

typedef struct ff_loop_trainer {
    void *self;
    /* One batch; divergence is FF_ERR_RUNTIME with *diverged set and err naming what */
    int (*next)(void *self, ff_loop_batch *b, int *diverged, ff_err *err);
    /* The errors on the sets FF_EVAL_VAL | FF_EVAL_TEST asks for (-1 where not read) */
    int (*evaluate)(void *self, int epoch, unsigned sets, ff_eval_result *ev, ff_err *err);
    /* The model file at path (run_dir recorded in it) */
    int (*save)(void *self, const char *path, const char *run_dir, ff_err *err);
    ff_loop_position (*position)(const void *self);
    int (*has_validation)(const void *self);
    int (*finite)(const void *self);   /* NULL: not checked; else 0 if a value is not finite */
    const ff_config *cfg;              /* the trainer's config */
    const ff_config *record_cfg;       /* what config.yaml records (the classifier names its
                                          backbone); NULL: cfg */
    const char *config_note;           /* a line before the config's text in TensorBoard
                                          ("backbone: ..."), NULL none */
    int goodness_layout_layers;        /* > 0: the custom-scalars layout of that many layers */
    int goodness_layout_iters;         /* ... with each layer's goodness per iteration
                                          (model.recurrent) */
} ff_loop_trainer;

/* What an epoch's end hands its observers. */
typedef struct ff_loop_epoch {
    int epoch;
    int evaluated;           /* the errors that choose were just measured */
    int improved;            /* ... and beat the best so far */
    double choosing_error;   /* that error (validation's with a split, else test's) */
    ff_eval_result ev;       /* what was measured (-1 where not read) */
    int read_val, read_test; /* which sets were read */
    double seconds;          /* training time of the epoch */
    int64_t images;          /* images trained in the epoch (this process, since a resume) */
    int first_batch;         /* the batch it started from (a resumed epoch: not 0) */
} ff_loop_epoch;

typedef struct ff_loop ff_loop;

typedef struct ff_loop_observer {
    const char *name;
    void *self;
    int all_ranks;
    int (*on_start)(void *self, ff_loop *l, ff_err *err);
    int (*on_step)(void *self, ff_loop *l, const ff_loop_batch *b, ff_err *err);
    int (*on_epoch)(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err);
    int (*on_stop)(void *self, ff_loop *l, int rc, ff_err *err);
} ff_loop_observer;

#define FF_LOOP_MAX_OBSERVERS 8

struct ff_loop {
    ff_loop_trainer tr;
    const ff_config *cfg;           /* = tr.cfg */
    const ff_train_opts *opts;      /* may be NULL */
    ff_train_result *res;
    ff_parallel *par;               /* NULL: one process */
    int writer;                     /* this process writes files (rank 0) */
    ff_run_files files;             /* the run directory, model prefix and event file (tb
                                       NULL on other ranks and before on_start) */
    char autosave[1024];            /* the periodic or resumed step model ("" none): what a
                                       divergence names as the last good model */
    int diverged;                   /* the state went non-finite: nothing more is saved */
    int resumable;                  /* stopped early with a step model written */
    double epoch_end_t0;            /* when this epoch's end began (the progress line) */
    double epoch_t0;                /* when this epoch's batches (re)started */
    int epoch_first;                /* its first batch */
    float last_loss, last_head_loss; /* the last batch's, for the progress line */
    const ff_run_record *rec;       /* what this process is (run.json) */
    ff_loop_observer obs[FF_LOOP_MAX_OBSERVERS];
    int n_obs;
};

/* Adds an observer (at most FF_LOOP_MAX_OBSERVERS; a programming error aborts). */
void ff_loop_observe(ff_loop *l, ff_loop_observer o);

/* Runs the loop from the trainer's position to its planned epochs; res->started says
 * whether every on_start succeeded. */
int ff_loop_run(ff_loop *l, ff_err *err);

/* Stops the run as diverged at the current step: "training diverged by step N: what";
 * names the last good model (loop->autosave, res->model_path, res->best_path or the
 * model resumed from). Returns FF_ERR_RUNTIME. */
int ff_loop_diverged(ff_loop *l, const char *what, ff_err *err);

/* Reports p to opts->progress, if any. */
void ff_loop_report(const ff_loop *l, const ff_progress *p);

/* The shared observers (src/run_observers.c). The files and errors observers keep their
 * state in the loop (loop->files); the others in `self`, which the caller provides and
 * which must outlive the loop. */
typedef struct ff_obs_models {
    int best;              /* write _best.ffm when the choosing error improves */
    int every;             /* epoch models: every `every` epochs (0: the last only) */
    double minutes;        /* periodic step models (checkpoint.minutes; 0: none) */
    double last_save;      /* when the last resumable model was written (or the start) */
} ff_obs_models;
typedef struct ff_obs_progress { int every; /* batches between progress calls */ } ff_obs_progress;

/* The run directory, event file and run record (new, or the resumed run's own); the
 * config's text and HParams start for a new run; the event file flushed after every
 * epoch; at the stop the HParams end (SUCCESS, INTERRUPTED if resumable, else
 * FAILURE) and the file closed. Writer only. */
ff_loop_observer ff_obs_files_observer(void);
/* <set>/error_goodness, <set>/error_softmax, <set>/layer<K>/error of each set read */
ff_loop_observer ff_obs_errors_observer(void);
/* Model files: _best, _epochNNN, _stepNNNNNNN (checkpoint.minutes, and at a stop after
 * a signal or a failed write: the error names it; a divergence saves nothing). Sets
 * res->best_error/best_epoch when the best model is written (or without best). */
ff_loop_observer ff_obs_models_observer(ff_obs_models *o);
/* The progress line: every `every` batches and at each epoch's end (last in the list:
 * its time after the epoch includes everyone's work) */
ff_loop_observer ff_obs_progress_observer(ff_obs_progress *o);

/* This process's run record (include/ff/run_record.h; split NULL or split->n 0: no
 * validation split) into rec and as JSON into json: what run.json and every model file it
 * writes say. A resumed run from a model written by another code version gets a note
 * (opts->info) naming both. */
void ff_train_record(const ff_train_opts *opts, const ff_split_info *split,
                     const char *resumed_record, ff_run_record *rec, char *json, size_t cap);

#endif
