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

/* HParams: session_start_info with every scalar key of cfg (ff_config_visit),
 * group_name "" and start_time; experiment declares the hparams and the given
 * metric tags; session_end_info with status (1 success, 2 failure) at `step`
 * (the run's last step, so a resumed run's end record follows the first one). */
int ff_summary_hparams_start(ff_summary_writer *w, const ff_config *cfg, double start_time,
                             ff_err *err);
int ff_summary_hparams_experiment(ff_summary_writer *w, const ff_config *cfg,
                                  const char *const *metric_tags, int n_metrics, ff_err *err);
int ff_summary_hparams_end(ff_summary_writer *w, int status, int64_t step, ff_err *err);

/* Custom scalars layout: one category "goodness" with one multiline chart per
 * layer putting layer<i>/goodness_pos and layer<i>/goodness_neg together. */
int ff_summary_goodness_layout(ff_summary_writer *w, int n_layers, ff_err *err);


#endif
