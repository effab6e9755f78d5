/* run_loop.c - the one training loop (src/run_loop.h): batches from a trainer until
 * its planned epochs are done or a stop is requested, an evaluation where due, and
 * the observers' hooks around them. */
#include "run_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ff_loop_observe(ff_loop *l, ff_loop_observer o)
{
    if (l->n_obs >= FF_LOOP_MAX_OBSERVERS) {
        fprintf(stderr, "ffrun: internal error: more than %d observers\n", FF_LOOP_MAX_OBSERVERS);
        abort();
    }
    l->obs[l->n_obs++] = o;
}

void ff_loop_report(const ff_loop *l, const ff_progress *p)
{
    if (l->opts && l->opts->progress)
        l->opts->progress(l->opts->progress_ctx, p);
}

static int runs_here(const ff_loop *l, const ff_loop_observer *o)
{
    return o->all_ranks || l->writer;
}

int ff_loop_diverged(ff_loop *l, const char *what, ff_err *err)
{
    l->diverged = 1;
    const ff_train_result *res = l->res;
    const char *last = l->autosave[0]      ? l->autosave
                       : res->model_path[0] ? res->model_path
                                            : res->best_path;
    if (!last[0] && l->opts && l->opts->resume && l->opts->resume_path)
        last = l->opts->resume_path; /* a resumed run: the model it started from */
    const long long step = (long long)l->tr.position(l->tr.self).step;
    if (last[0])
        return ff_err_set(err, FF_ERR_RUNTIME,
                          "training diverged by step %lld: %s (lower optimizer.lr?); nothing "
                          "more is saved, the last good model is %s", step, what, last);
    return ff_err_set(err, FF_ERR_RUNTIME,
                      "training diverged by step %lld: %s (lower optimizer.lr?); no model was "
                      "saved before it", step, what);
}

/* The trainer's whole state is checked every log.every steps and at every epoch's end
 * (a pass over the parameters, too slow for every batch), where it has a check. */
static int check_finite(ff_loop *l, ff_err *err)
{
    if (!l->tr.finite || l->tr.finite(l->tr.self))
        return FF_OK;
    return ff_loop_diverged(l, "the weights or optimiser state hold NaN or infinite values", err);
}

/* With several processes they agree (any rank's signal stops all): before every
 * batch in data parallel, every log.every steps in a pipeline (which must not wait). */
static int stop_requested(const ff_loop *l, const ff_loop_position *pos)
{
    const ff_train_opts *o = l->opts;
    if (!o)
        return 0;
    if (o->max_steps > 0 && pos->step >= o->max_steps)
        return 1;
    if (o->stop_epoch > 0 && pos->epoch >= o->stop_epoch)
        return 1; /* the same on every rank: no agreement needed */
    const int flag = o->stop && *o->stop;
    if (!l->par)
        return flag;
    if (ff_parallel_is_pipeline(l->par) && pos->step % l->cfg->log.every != 0)
        return 0;
    return ff_parallel_any(l->par, flag);
}

/* The batches of one epoch from the trainer's position; FF_ERR_INTERRUPTED if
 * stopped before its end. */
static int epoch_batches(ff_loop *l, int64_t *images, ff_err *err)
{
    for (int done = 0; !done;) {
        ff_loop_position pos = l->tr.position(l->tr.self);
        if (stop_requested(l, &pos))
            return FF_ERR_INTERRUPTED;
        ff_loop_batch b = {.loss = -1.0f, .head_loss = -1.0f};
        int diverged = 0;
        int rc = l->tr.next(l->tr.self, &b, &diverged, err);
        if (rc && diverged) {
            char what[FF_ERR_MSG_MAX];
            snprintf(what, sizeof what, "%s", err->msg);
            return ff_loop_diverged(l, what, err);
        }
        if (rc)
            return rc;
        done = b.epoch_done;
        *images += b.images;
        pos = l->tr.position(l->tr.self);
        if (pos.step % l->cfg->log.every == 0 && (rc = check_finite(l, err)))
            return rc;
        for (int i = 0; i < l->n_obs && !rc; i++)
            if (l->obs[i].on_step && runs_here(l, &l->obs[i]))
                rc = l->obs[i].on_step(l->obs[i].self, l, &b, err);
        if (rc)
            return rc;
    }
    return FF_OK;
}

/* The batches of one epoch, timed (also when stopped early), and the result's counts. */
static int run_epoch(ff_loop *l, ff_loop_epoch *e, ff_err *err)
{
    const ff_loop_position pos = l->tr.position(l->tr.self);
    l->epoch_t0 = ff_run_now_seconds();
    l->epoch_first = e->first_batch = pos.batch_in_epoch;
    int64_t images = 0;
    int rc = epoch_batches(l, &images, err);
    const ff_loop_position now = l->tr.position(l->tr.self);
    const double seconds = ff_run_now_seconds() - l->epoch_t0;
    l->res->train_seconds += seconds;
    l->res->train_images += images;
    l->res->epochs_trained += (double)(now.step - pos.step) / pos.n_batches;
    e->seconds = seconds;
    e->images = images;
    return rc;
}

/* An epoch's evaluation: with a validation split its images every time (they choose
 * the best model) and the test set at the end (eval.test every: every time as well);
 * without one the test set, which then chooses. */
static int evaluate(ff_loop *l, ff_loop_epoch *e, const ff_loop_position *pos, ff_err *err)
{
    ff_train_result *res = l->res;
    const int has_val = l->tr.has_validation(l->tr.self);
    e->read_val = has_val;
    e->read_test = !has_val || l->cfg->eval.test == FF_EVAL_TEST_EVERY || e->epoch == pos->epochs;
    int rc = l->tr.evaluate(l->tr.self, e->epoch,
                            (has_val ? FF_EVAL_VAL : 0) | (e->read_test ? FF_EVAL_TEST : 0),
                            &e->ev, err);
    if (rc)
        return rc;
    const ff_set_errors *pick = has_val ? &e->ev.val : &e->ev.test;
    e->choosing_error = pick->main_error;
    e->evaluated = pick->main_error >= 0;
    e->improved = e->evaluated && (res->best_error < 0 || pick->main_error < res->best_error);
    if (e->read_test) {
        res->final_error = e->ev.test.main_error;
        res->final_error_softmax = e->ev.test.error_softmax;
    }
    if (has_val) {
        res->val_final_error = e->ev.val.main_error;
        res->val_final_error_softmax = e->ev.val.error_softmax;
    }
    return FF_OK;
}

/* After an epoch: the state checked, the evaluation if due, the observers. */
static int end_epoch(ff_loop *l, ff_loop_epoch *e, ff_err *err)
{
    l->epoch_end_t0 = ff_run_now_seconds();
    const ff_loop_position pos = l->tr.position(l->tr.self);
    e->ev.val = e->ev.test = (ff_set_errors){.error_goodness = -1.0, .error_softmax = -1.0,
                                             .main_error = -1.0};
    e->choosing_error = -1.0;
    int rc = check_finite(l, err);
    if (rc)
        return rc;
    l->res->epochs_done = e->epoch;
    ff_parallel_sync_state(l->par); /* a pipeline's layers, all in every rank */
    if (e->epoch % pos.eval_every == 0 || e->epoch == pos.epochs)
        rc = evaluate(l, e, &pos, err);
    for (int i = 0; i < l->n_obs && !rc; i++)
        if (l->obs[i].on_epoch && runs_here(l, &l->obs[i]))
            rc = l->obs[i].on_epoch(l->obs[i].self, l, e, err);
    return rc;
}

int ff_loop_run(ff_loop *l, ff_err *err)
{
    ff_train_result *res = l->res;
    l->cfg = l->tr.cfg;
    int rc = FF_OK;
    for (int i = 0; i < l->n_obs && !rc; i++)
        if (l->obs[i].on_start && runs_here(l, &l->obs[i]))
            rc = l->obs[i].on_start(l->obs[i].self, l, err);
    ff_loop_position pos = l->tr.position(l->tr.self);
    res->epochs_done = pos.epoch;
    res->started = !rc;
    while (!rc && pos.epoch < pos.epochs) {
        ff_loop_epoch e = {.epoch = pos.epoch + 1};
        rc = run_epoch(l, &e, err);
        if (!rc)
            rc = end_epoch(l, &e, err);
        pos = l->tr.position(l->tr.self);
    }
    if (rc == FF_ERR_INTERRUPTED)
        res->interrupted = 1;
    if (rc == FF_ERR_INTERRUPTED && res->started && l->par) /* the ranks stopped together */
        ff_parallel_sync_state(l->par);                    /* whole state on every rank */
    for (int i = l->n_obs - 1; i >= 0; i--) /* also after a failed start: files close */
        if (l->obs[i].on_stop && runs_here(l, &l->obs[i]))
            rc = l->obs[i].on_stop(l->obs[i].self, l, rc, err);
    return rc;
}
