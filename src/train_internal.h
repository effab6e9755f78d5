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
struct ff_run_record;
/* This process's run record (include/ff/run_record.h; split NULL or split->n 0: no
 * validation split) into rec and as JSON into json: what run.json and every model file it
 * writes say. A resumed run from a model written by another code version gets a note
 * (opts->info) naming both. */
void ff_train_record(const ff_train_opts *opts, const ff_split_info *split,
                     const char *resumed_record, struct ff_run_record *rec, char *json,
                     size_t cap);

/* Both loops' start: ff_run_open (include/ff/run.h) with opts' resume, run directory and
 * info, and res's run_dir and event_file filled; a new run writes rec (run.json, the
 * text tab). */
int ff_train_open_files(struct ff_run_files *f, const ff_config *cfg,
                        const struct ff_run_record *rec, const ff_train_opts *opts,
                        ff_train_result *res, ff_err *err);

#endif
