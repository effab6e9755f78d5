/* run.h - what every training mode shares around its trainer: the run
 * directory, the model files' names, the sample order of an epoch, the clock
 * and the floating-point mode. The run loop (src/run_loop.c) and its observers
 * (src/run_observers.c) use these for every mode.
 *
 * A run's files: <log.dir>/<mode>/<YYYYmmdd-HHMMSS>[_name][-N]/ holds its event
 * files; its models are <checkpoint.dir>/<prefix>_<what>.ffm with a prefix
 * claimed once per run (ff_run_claim_prefix) so that two runs never write the
 * same model file, even when they start in the same second with different
 * log directories and one checkpoint directory. */
#ifndef FF_RUN_H
#define FF_RUN_H

#include <stddef.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/rng.h"
#include "ff/summary.h"

struct ff_checkpoint;

/* Monotonic clock in seconds. */
double ff_run_now_seconds(void);

/* Flush-to-zero and denormals-are-zero for this thread (x86 SSE: Adam's moments
 * decay into denormals, which are 100x slower); a no-op on other CPUs. */
void ff_run_fp_fast_mode(void);

/* The sample order of an epoch: 0..n-1, shuffled from rng when `shuffle`. */
void ff_run_order_draw(ff_rng *rng, int *order, int n, int shuffle);

/* Creates the new run directory <log.dir>/<mode>/<stamp>[_name] (never an
 * existing one) and writes its path to out. */
int ff_run_dir_create(const ff_config *cfg, char *out, size_t cap, ff_err *err);

/* The directory of a new run: exactly `exact` when non-NULL (created with its
 * parents if missing), else a new one from ff_run_dir_create. */
int ff_run_dir_open(const ff_config *cfg, const char *exact, char *out, size_t cap, ff_err *err);

/* Claims the model-name prefix of a new run: "<mode>_<basename of run_dir>",
 * or with -2, -3, ... appended if another run holds it. The claim is the file
 * <checkpoint.dir>/<prefix>.run (created exclusively; it holds run_dir), so the
 * claim is atomic between processes. Creates checkpoint.dir; an unwritable
 * checkpoint.dir fails here, before any training. */
int ff_run_claim_prefix(const ff_config *cfg, const char *run_dir, char *prefix, size_t cap,
                        ff_err *err);

/* The prefix of a model file written by a run ("models/supervised_X_best.ffm" ->
 * "supervised_X"): what a resumed run keeps writing under. FF_ERR_USAGE if the
 * name does not end in _best.ffm, _epochNNN.ffm or _stepNNNNNNN.ffm. */
int ff_run_prefix_of_model(const char *model_path, char *prefix, size_t cap, ff_err *err);

/* Removes from checkpoint.dir the temporary files of model writers that were
 * killed (ff_fs_clean_stale_tmp) and tells info how many, if any. Best effort. */
void ff_run_clean_stale(const ff_config *cfg, void (*info)(void *ctx, const char *msg),
                        void *ctx);

/* <checkpoint.dir>/<prefix>_<what>.ffm into out; FF_ERR_USAGE if it does not fit. */
int ff_run_model_path(const ff_config *cfg, const char *prefix, const char *what, char *out,
                      size_t cap, ff_err *err);

/* Where a run writes, opened once for either training loop. */
typedef struct ff_run_files {
    char run_dir[1024];            /* <log.dir>/<mode>/<stamp>[_name] */
    char prefix[256];              /* model names: <checkpoint.dir>/<prefix>_<what>.ffm */
    ff_summary_writer *tb;         /* the event file */
} ff_run_files;

/* A new run (resume NULL): creates the run directory (exact_run_dir if not NULL,
 * see ff_run_dir_open), claims the model prefix,
 * opens the event file and writes the run's first SessionLog START (step 0).
 * A resumed run: the model's run directory and prefix (from resume_path's name;
 * for a model renamed since, the run's claim, found or made by ff_run_claim_prefix),
 * a new event file there starting with a START at the model's step + 1, so that
 * TensorBoard drops what the stopped process logged after the model. Either way
 * checkpoint.dir exists and killed writers' temporary files are gone from it
 * (info, if not NULL, hears how many). */
int ff_run_open(ff_run_files *f, const ff_config *cfg, const struct ff_checkpoint *resume,
                const char *resume_path, const char *exact_run_dir,
                void (*info)(void *ctx, const char *msg), void *ctx, ff_err *err);

#endif
