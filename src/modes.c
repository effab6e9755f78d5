/* modes.c - ff_train (include/ff/train.h): the result's defaults, then the trainer of
 * the config's mode (src/modes.h). */
#include <string.h>

#include "modes.h"

int ff_train(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res, ff_err *err)
{
    memset(res, 0, sizeof *res);
    res->final_error = res->best_error = res->final_error_softmax = -1.0;
    res->val_final_error = res->val_final_error_softmax = -1.0;
    res->readout = cfg->mode == FF_MODE_SUPERVISED ? "goodness" : "softmax";
    if (cfg->mode == FF_MODE_UNSUP_CLF)
        return ff_train_clf(cfg, opts, res, err);
    return ff_train_ff(cfg, opts, res, err);
}
