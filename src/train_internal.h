/* train_internal.h - what the two training loops share and callers must not use:
 * the loops themselves (ff_train in include/ff/train.h picks one) and their common
 * start. Only src/train.c and src/train_clf.c include it. */
#ifndef FF_TRAIN_INTERNAL_H
#define FF_TRAIN_INTERNAL_H

#include "ff/train.h"

/* The FF trainer's loop (supervised, unsupervised_backbone; src/train.c) and the
 * classifier's (unsupervised_clf; src/train_clf.c). */
int ff_train_ff(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                ff_err *err);
int ff_train_clf(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                 ff_err *err);

struct ff_run_files;
/* Both loops' start: ff_run_open (include/ff/run.h) with opts' resume, run directory and
 * info, and res's run_dir and event_file filled; a new run's record names its validation
 * split (split NULL or split->n 0: none). */
int ff_train_open_files(struct ff_run_files *f, const ff_config *cfg, const ff_split_info *split,
                        const ff_train_opts *opts, ff_train_result *res, ff_err *err);

#endif
