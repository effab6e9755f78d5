/* modes.h - which trainer runs a config's mode: ff_train (include/ff/train.h, in
 * src/modes.c) picks one of these; each sets up its trainer and runs the one loop
 * (src/run_loop.h) with the shared observers and its own curves. Only src/modes.c,
 * src/train.c and src/train_clf.c include it. */
#ifndef FF_MODES_H
#define FF_MODES_H

#include "ff/train.h"

/* supervised and unsupervised_backbone: the FF trainer (src/train.c) */
int ff_train_ff(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                ff_err *err);
/* unsupervised_clf: the classifier on a frozen backbone (src/train_clf.c) */
int ff_train_clf(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                 ff_err *err);

#endif
