/* summary_hparams.h - the run-level records TensorBoard's dashboards read once,
 * written into an open event file (summary.h): the hparams plugin's experiment,
 * session_start_info and session_end_info (plugin "hparams", version 0, an empty
 * DT_FLOAT [0] tensor carrying the data in its metadata) and the custom-scalars
 * layout (tag custom_scalars__config__). TensorBoard takes a tag's metadata from
 * its first occurrence in the run, so each of these counts only the first time
 * it is written (docs: tensorboard-format.md sections 6, 8 and 9). Nothing here
 * allocates beyond the call; the writer stays the caller's. */
#ifndef FF_SUMMARY_HPARAMS_H
#define FF_SUMMARY_HPARAMS_H

#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"

typedef struct ff_summary_writer ff_summary_writer; /* summary.h */

/* How a session ended, for ff_summary_hparams_end: TensorBoard's hparams
 * Status values plus ffrun's own FF_SUMMARY_INTERRUPTED. TensorBoard shows the
 * run's FIRST session_end_info and ignores later ones (first-come metadata, in
 * both its loaders), so only a final outcome may be written: a run stopped
 * with a model it can resume from writes none, and the resumed process writes
 * the real outcome. STATUS_UNKNOWN and STATUS_RUNNING are refused for the same
 * reason (they would stick). */
typedef enum ff_summary_status {
    FF_SUMMARY_SUCCESS = 1,     /* STATUS_SUCCESS: the run finished */
    FF_SUMMARY_FAILURE = 2,     /* STATUS_FAILURE: the run ended for good (an error, no
                                 * resumable model) */
    FF_SUMMARY_INTERRUPTED = 4, /* stopped (signal, --max-steps) with a resumable model:
                                 * nothing is written, the session stays open */
} ff_summary_status;

/* HParams: session_start_info with every scalar key of cfg (ff_config_visit),
 * group_name "" and start_time, at step 0 (new runs only, not on resume);
 * experiment declares the hparams and the given metric tags, at step 0;
 * session_end_info with status (an ff_summary_status) at `step`, the run's
 * last step. ff_summary_hparams_end with FF_SUMMARY_INTERRUPTED writes nothing
 * and returns FF_OK; a status other than the three above is FF_ERR_USAGE. */
int ff_summary_hparams_start(ff_summary_writer *w, const ff_config *cfg, double start_time,
                             ff_err *err);
int ff_summary_hparams_experiment(ff_summary_writer *w, const ff_config *cfg,
                                  const char *const *metric_tags, int n_metrics, ff_err *err);
int ff_summary_hparams_end(ff_summary_writer *w, int status, int64_t step, ff_err *err);

/* The one experiment of a set of runs (a sweep, written once at its root):
 * every scalar key of any of the n configs; the keys whose value differs
 * between them (or that some lack) first, in first-seen order, with differs
 * true. Strings and bools list their values (domain_discrete), numbers too
 * when they take at most 64 values, else the interval [min, max]. The metric
 * tags as in ff_summary_hparams_experiment. */
int ff_summary_hparams_experiment_of(ff_summary_writer *w, const ff_config *const *cfgs, int n,
                                     const char *const *metric_tags, int n_metrics, ff_err *err);

/* Custom scalars layout: one category "goodness" with one multiline chart per
 * layer putting layer<i>/goodness_pos and layer<i>/goodness_neg together. */
int ff_summary_hparams_goodness_layout(ff_summary_writer *w, int n_layers, ff_err *err);

/* The same plus a second category for a recurrent net (model.recurrent): one chart per
 * layer putting every layer<i>/goodness_pos_iter<t> and layer<i>/goodness_neg_iter<t>
 * together (ff_train_log_iter_goodness): how the layer settles over the iterations. Write it
 * instead of ff_summary_hparams_goodness_layout (the layout is one record, first-come). */
int ff_summary_hparams_goodness_layout_iters(ff_summary_writer *w, int n_layers, ff_err *err);


#endif
