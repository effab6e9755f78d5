/* run_observers.c - the observers every training run has (src/run_loop.h): the run's
 * files and TensorBoard's errors, the model files, the progress line; and the run
 * record they write. The trainers' own curves are theirs (src/train.c, train_clf.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ff/summary.h"
#include "ff/summary_hparams.h"
#include "ff/summary_reader.h"
#include "run_loop.h"

/* ---------------------------------------------------------------- the run record */

/* "version 0.1.0, commit abc (modified)" of a run record's JSON (best effort: the
 * fields this ffrun writes; "" for none) */
static void describe_record(const char *json, char *out, size_t cap)
{
    char version[40] = "?", commit[72] = "?";
    const char *v = json ? strstr(json, "\"version\": \"") : NULL;
    const char *c = json ? strstr(json, "\"git_commit\": \"") : NULL;
    if (v)
        sscanf(v + 12, "%39[^\"]", version);
    if (c)
        sscanf(c + 15, "%71[^\"]", commit);
    const int dirty = json && strstr(json, "\"git_dirty\": true") != NULL;
    snprintf(out, cap, "ffrun %s, commit %s%s", version, commit, dirty ? " (modified tree)" : "");
}

void ff_train_record(const ff_train_opts *opts, const ff_split_info *split,
                     const char *resumed_record, ff_run_record *rec, char *json, size_t cap)
{
    ff_run_record_fill(rec, opts ? opts->command_line : NULL, ff_parallel_size());
    rec->val_images = split ? split->n : 0;
    rec->val_split = split ? (unsigned long long)split->digest : 0;
    ff_run_record_json(rec, json, cap);
    if (!resumed_record || !opts || !opts->info)
        return;
    char was[160], now[160], msg[512];
    describe_record(json, now, sizeof now);
    if (!resumed_record[0])
        snprintf(msg, sizeof msg, "warning: the model records no code version (written before "
                 "model format 3); resuming with %s", now);
    else {
        describe_record(resumed_record, was, sizeof was);
        if (!strcmp(was, now) && !strstr(now, "modified") && !strstr(now, "commit ?"))
            return;
        snprintf(msg, sizeof msg, "warning: the model was written by %s and is resumed by %s: "
                 "the rest of the run need not be what either would have done alone", was, now);
    }
    opts->info(opts->progress_ctx, msg);
}

/* ---------------------------------------------------------------- files */

/* config.yaml and run.json in the run directory (include/ff/run_record.h), and the record
 * in TensorBoard's text tab (tag "run") */
static int write_run_record(const ff_run_files *f, const ff_config *cfg,
                            const ff_run_record *rec, ff_err *err)
{
    int rc = ff_run_record_write(f->run_dir, cfg, rec, err);
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "```\n");
    n += ff_run_record_json(rec, text + n, sizeof text - n - 8);
    snprintf(text + n, sizeof text - n, "```\n");
    if (!rc)
        rc = ff_summary_text(f->tb, "run", 0, text, err);
    return rc;
}

/* A resumed run that TensorBoard already shows as ended keeps that end: HParams takes the
 * first session_end_info of a run (docs: README "Outputs"). Said, with the old end. */
static void note_ended(const char *run_dir, const ff_train_opts *opts)
{
    int status;
    double when;
    if (!ff_summary_reader_run_end(run_dir, &status, &when))
        return;
    static const char *const names[] = {"UNKNOWN", "SUCCESS", "FAILURE", "RUNNING"};
    char stamp[32] = "?", msg[1400];
    const time_t t = (time_t)when;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(msg, sizeof msg, "warning: %s already ended (%s at %s): TensorBoard's HParams "
             "tab keeps that first end (status and time) for this run; its curves do show the "
             "resumed steps", run_dir, status >= 0 && status <= 3 ? names[status] : "?", stamp);
    opts->info(opts->progress_ctx, msg);
}

/* The run directory, model-name prefix and event file: new, or the resumed run's own;
 * a new run's record, config text and HParams start. */
static int files_start(void *self, ff_loop *l, ff_err *err)
{
    (void)self;
    const ff_train_opts *opts = l->opts;
    const ff_config *cfg = l->cfg;
    const ff_config *record = l->tr.record_cfg ? l->tr.record_cfg : cfg;
    const int resumed = opts && opts->resume;
    ff_run_files *f = &l->files;
    ff_train_result *res = l->res;
    int rc = ff_run_open(f, record, resumed ? opts->resume : NULL,
                         opts ? opts->resume_path : NULL, opts ? opts->run_dir : NULL,
                         opts ? opts->info : NULL, opts ? opts->progress_ctx : NULL, err);
    snprintf(res->run_dir, sizeof res->run_dir, "%s", f->run_dir);
    if (!rc)
        snprintf(res->event_file, sizeof res->event_file, "%s", ff_summary_path(f->tb));
    if (!rc && f->tb && !resumed) /* a new run: what produced it */
        rc = write_run_record(f, record, l->rec, err);
    if (!rc && resumed && opts->info)
        note_ended(f->run_dir, opts);
    if (rc || resumed)
        return rc ? rc : ff_summary_flush(f->tb, err);
    /* No HParams experiment summary: TensorBoard takes the first one it finds for the
     * whole logdir; without one it derives the view from every run's session_start_info
     * (keys that differ first, every scalar a metric), so runs of any mode and config
     * show their own keys and metrics side by side. A sweep writes one at its root. */
    const size_t cap = 1 << 16;
    char *md = malloc(cap);
    if (!md)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    size_t n = l->tr.config_note ? (size_t)snprintf(md, cap, "%s\n\n", l->tr.config_note) : 0;
    ff_config_to_markdown(cfg, md + n, cap - n);
    rc = ff_summary_text(f->tb, "config", 0, md, err);
    free(md);
    if (!rc)
        rc = ff_summary_hparams_start(f->tb, cfg, (double)time(NULL), err);
    if (!rc && l->tr.goodness_layout_layers > 0) /* one layout record: first-come */
        rc = l->tr.goodness_layout_iters
                 ? ff_summary_hparams_goodness_layout_iters(f->tb, l->tr.goodness_layout_layers,
                                                            err)
                 : ff_summary_hparams_goodness_layout(f->tb, l->tr.goodness_layout_layers, err);
    if (!rc)
        rc = ff_summary_flush(f->tb, err);
    return rc;
}

static int files_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    (void)self, (void)e;
    return l->files.tb ? ff_summary_flush(l->files.tb, err) : FF_OK;
}

/* The HParams end record (a stopped run that --resume can finish gets its end from that
 * resume) and the file closed. */
static int files_stop(void *self, ff_loop *l, int rc, ff_err *err)
{
    (void)self;
    if (!l->files.tb)
        return rc;
    ff_err cerr;
    const int status = !rc ? FF_SUMMARY_SUCCESS
                       : l->resumable ? FF_SUMMARY_INTERRUPTED : FF_SUMMARY_FAILURE;
    int erc = ff_summary_hparams_end(l->files.tb, status, l->tr.position(l->tr.self).step, &cerr);
    int crc = ff_summary_close(l->files.tb, erc ? NULL : &cerr);
    l->files.tb = NULL;
    if (!rc && (erc || crc)) {
        *err = cerr;
        rc = erc ? erc : crc;
    }
    return rc;
}

ff_loop_observer ff_obs_files_observer(void)
{
    return (ff_loop_observer){.name = "files", .on_start = files_start,
                              .on_epoch = files_epoch, .on_stop = files_stop};
}

/* ---------------------------------------------------------------- errors */

/* <set>/error_goodness, <set>/error_softmax and <set>/layer<K>/error (percent) of the
 * errors measured on a set */
static int log_errors(ff_loop *l, const char *set, const ff_set_errors *e, ff_err *err)
{
    ff_summary_writer *tb = l->files.tb;
    if (!tb)
        return FF_OK;
    char tag[64];
    const int64_t step = l->tr.position(l->tr.self).step;
    int rc = FF_OK;
    snprintf(tag, sizeof tag, "%s/error_goodness", set);
    if (e->error_goodness >= 0)
        rc = ff_summary_scalar(tb, tag, step, (float)(e->error_goodness * 100.0), err);
    snprintf(tag, sizeof tag, "%s/error_softmax", set);
    if (!rc && e->error_softmax >= 0)
        rc = ff_summary_scalar(tb, tag, step, (float)(e->error_softmax * 100.0), err);
    for (int k = 0; k < e->n_layers && !rc; k++) {
        snprintf(tag, sizeof tag, "%s/layer%d/error", set, k);
        rc = ff_summary_scalar(tb, tag, step, (float)(e->layer_error[k] * 100.0), err);
    }
    return rc;
}

static int errors_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    (void)self;
    int rc = e->read_val ? log_errors(l, "val", &e->ev.val, err) : FF_OK;
    if (!rc && e->read_test)
        rc = log_errors(l, "test", &e->ev.test, err);
    return rc;
}

ff_loop_observer ff_obs_errors_observer(void)
{
    return (ff_loop_observer){.name = "errors", .on_epoch = errors_epoch};
}

/* ---------------------------------------------------------------- model files */

/* Writes <checkpoint.dir>/<prefix>_<what>.ffm with the trainer's state into path (left
 * unchanged unless the file was written; other ranks write nothing). A model with a
 * non-finite value is never written: it would replace a good one. */
static int save_model(ff_loop *l, const char *what, char *path, size_t cap, ff_err *err)
{
    char p[FF_PATH_MAX + 512];
    if (!l->writer)
        return FF_OK;
    int rc = ff_run_model_path(l->cfg, l->files.prefix, what, p, sizeof p, err);
    if (rc)
        return rc;
    if (l->tr.finite && !l->tr.finite(l->tr.self))
        return ff_err_set(err, FF_ERR_RUNTIME, "not saving %s: the model holds NaN or infinite "
                          "values", p);
    if ((rc = l->tr.save(l->tr.self, p, l->res->run_dir, err)))
        return rc;
    snprintf(path, cap, "%s", p);
    return FF_OK;
}

/* 1 if paths a and b name one file (the same string, or the same inode). */
static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    return !strcmp(a, b) ||
           (stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino);
}

/* A newer resumable model exists: the last periodic step model, or the step model the
 * run was resumed from, goes (never the one just written under the same name), and
 * checkpoint.minutes counts from now. */
static void autosave_superseded(ff_obs_models *o, ff_loop *l, const char *newer)
{
    if (l->autosave[0] && !same_file(l->autosave, newer))
        unlink(l->autosave);
    l->autosave[0] = '\0';
    o->last_save = ff_run_now_seconds();
}

/* A run resumed from one of its own step models (<prefix>_stepNNNNNNN.ffm) treats it as
 * its last periodic one: the next resumable model replaces it (kill -9 and resume cycles
 * used to leave one stale step model each). An epoch or best model is never removed. */
static int models_start(void *self, ff_loop *l, ff_err *err)
{
    (void)self, (void)err;
    const char *path = l->opts && l->opts->resume ? l->opts->resume_path : NULL;
    if (!path || !l->writer)
        return FF_OK;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *prefix = l->files.prefix;
    const size_t np = strlen(prefix), nb = strlen(base);
    if (!np || nb < np + 9 || strncmp(base, prefix, np) || strncmp(base + np, "_step", 5) ||
        strcmp(base + nb - 4, ".ffm") || strlen(path) >= sizeof l->autosave)
        return FF_OK;
    for (const char *d = base + np + 5; d < base + nb - 4; d++)
        if (*d < '0' || *d > '9')
            return FF_OK;
    snprintf(l->autosave, sizeof l->autosave, "%s", path);
    return FF_OK;
}

/* checkpoint.minutes: at most that often a resumable model of the current step
 * (_stepNNNNNNN.ffm, what a signal writes), replacing the previous one, so a killed
 * machine loses at most those minutes. Only at a step whose scalars were just logged:
 * a run resumed from it logs what the uninterrupted run would have. The clock is the
 * writer's; a pipeline, whose layers are spread over the ranks, agrees when the stop
 * does and gathers them. */
static int models_step(void *self, ff_loop *l, const ff_loop_batch *b, ff_err *err)
{
    ff_obs_models *o = self;
    const int64_t step = l->tr.position(l->tr.self).step;
    const double every = o->minutes * 60.0;
    if (b->epoch_done || every <= 0 || step % l->cfg->log.every != 0)
        return FF_OK;
    const int due = l->writer && ff_run_now_seconds() - o->last_save >= every;
    if (!ff_parallel_is_pipeline(l->par) ? !due : !ff_parallel_any(l->par, due))
        return FF_OK;
    ff_parallel_sync_state(l->par);
    char what[48], path[sizeof l->autosave];
    snprintf(what, sizeof what, "step%07lld", (long long)step);
    if (!l->writer)
        return FF_OK;
    int rc = save_model(l, what, path, sizeof path, err); /* checks the weights again */
    if (rc)
        return rc;
    autosave_superseded(o, l, path);
    snprintf(l->autosave, sizeof l->autosave, "%s", path);
    if (l->opts && l->opts->info) {
        char msg[sizeof path + 80];
        snprintf(msg, sizeof msg, "saved %s (checkpoint.minutes %g)", path, o->minutes);
        l->opts->info(l->opts->progress_ctx, msg);
    }
    return FF_OK;
}

/* The best model when the choosing error improved (the summary's best is the model
 * file's: updated only once it is written), then the epoch model when due. */
static int models_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    ff_obs_models *o = self;
    ff_train_result *res = l->res;
    int rc = FF_OK;
    if (e->improved) {
        if (o->best)
            rc = save_model(l, "best", res->best_path, sizeof res->best_path, err);
        if (!rc) {
            res->best_error = e->choosing_error;
            res->best_epoch = e->epoch;
        }
    }
    const int epochs = l->tr.position(l->tr.self).epochs;
    if (!rc && (e->epoch == epochs || (o->every > 0 && e->epoch % o->every == 0))) {
        char what[32];
        snprintf(what, sizeof what, "epoch%03d", e->epoch);
        rc = save_model(l, what, res->model_path, sizeof res->model_path, err);
        if (!rc)
            autosave_superseded(o, l, res->model_path);
    }
    return rc;
}

/* After a signal or a failed write: a step model of exactly where training stopped
 * (the error message says how to resume). Divergence saves nothing. */
static int models_stop(void *self, ff_loop *l, int rc, ff_err *err)
{
    ff_obs_models *o = self;
    ff_train_result *res = l->res;
    if (!rc || !res->started || l->diverged)
        return rc;
    const ff_loop_position pos = l->tr.position(l->tr.self);
    char what[48];
    snprintf(what, sizeof what, "step%07lld", (long long)pos.step);
    ff_err serr;
    char msg[FF_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    if (save_model(l, what, res->model_path, sizeof res->model_path, &serr)) {
        if (rc == FF_ERR_INTERRUPTED) { /* the save's failure is the run's */
            rc = serr.code;
            snprintf(msg, sizeof msg, "interrupted at step %lld", (long long)pos.step);
        }
        if (l->autosave[0])
            return ff_err_set(err, rc, "%.300s (and no model could be saved: %.300s); resume "
                              "from the last periodic model: ffrun --resume %s",
                              msg, serr.msg, l->autosave);
        return ff_err_set(err, rc, "%.500s (and no model could be saved: %.400s)", msg, serr.msg);
    }
    l->resumable = 1;
    autosave_superseded(o, l, res->model_path);
    if (rc == FF_ERR_INTERRUPTED)
        return ff_err_set(err, FF_ERR_INTERRUPTED,
                          "interrupted at step %lld (epoch %d, batch %d); resume with "
                          "ffrun --resume %s",
                          (long long)pos.step, pos.epoch + 1, pos.batch_in_epoch,
                          res->model_path);
    ff_err_set(err, rc, "%.600s; the state at step %lld is saved: resume with ffrun --resume %s",
               msg, (long long)pos.step, res->model_path);
    return rc;
}

ff_loop_observer ff_obs_models_observer(ff_obs_models *o)
{
    o->last_save = ff_run_now_seconds();
    return (ff_loop_observer){.name = "models", .self = o, .all_ranks = 1,
                              .on_start = models_start, .on_step = models_step,
                              .on_epoch = models_epoch, .on_stop = models_stop};
}

/* ---------------------------------------------------------------- progress */

static int progress_step(void *self, ff_loop *l, const ff_loop_batch *b, ff_err *err)
{
    (void)err;
    ff_obs_progress *o = self;
    const ff_loop_position pos = l->tr.position(l->tr.self);
    const int every = o->every > 0 ? o->every : 10;
    l->last_loss = b->loss;
    l->last_head_loss = b->head_loss;
    if (b->epoch_done || pos.batch_in_epoch % every != 0)
        return FF_OK;
    const int n = pos.batch_in_epoch;
    const double el = ff_run_now_seconds() - l->epoch_t0;
    ff_progress p = {.epoch = pos.epoch + 1, .epochs = pos.epochs, .batch = n,
                     .n_batches = pos.n_batches, .step = pos.step, .loss = b->loss,
                     .head_loss = b->head_loss, .epoch_seconds = el,
                     .images_per_sec = el > 0 ? (n - l->epoch_first) * (double)b->images / el : 0};
    ff_loop_report(l, &p);
    return FF_OK;
}

static int progress_epoch(void *self, ff_loop *l, const ff_loop_epoch *e, ff_err *err)
{
    (void)self, (void)err;
    const ff_loop_position pos = l->tr.position(l->tr.self);
    ff_progress p = {.epoch = e->epoch, .epochs = pos.epochs, .batch = pos.n_batches,
                     .n_batches = pos.n_batches, .step = pos.step, .epoch_done = 1,
                     .loss = l->last_loss, .head_loss = l->last_head_loss,
                     .epoch_seconds = e->seconds,
                     .images_per_sec = e->seconds > 0 ? (double)e->images / e->seconds : 0,
                     .evaluated = e->evaluated,
                     .val_error = e->ev.val.error_goodness,
                     .val_error_softmax = e->ev.val.error_softmax,
                     .test_error = e->ev.test.error_goodness,
                     .test_error_softmax = e->ev.test.error_softmax,
                     .after_seconds = ff_run_now_seconds() - l->epoch_end_t0};
    ff_loop_report(l, &p);
    return FF_OK;
}

ff_loop_observer ff_obs_progress_observer(ff_obs_progress *o)
{
    return (ff_loop_observer){.name = "progress", .self = o, .all_ranks = 1,
                              .on_step = progress_step, .on_epoch = progress_epoch};
}
