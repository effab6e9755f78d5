/* sweep_run.c - running a sweep (include/ff/sweep.h): its directory (found
 * again by its spec, so the same command resumes it) and HParams experiment,
 * one child ffrun process per run (jobs at a time, OPENBLAS_NUM_THREADS each,
 * output to the run's ffrun.log), clean stops, and the per-run final metrics
 * read back from the event files for SUMMARY.md and summary.csv. */
#include "ff/sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ff/fsutil.h"
#include "ff/summary.h"
#include "ff/summary_hparams.h"
#include "ff/summary_reader.h"
#include "ff/tfrecord.h"

const char *const ff_sweep_metric_names[FF_SWEEP_N_METRICS] = {
    "test/error_goodness", "test/error_softmax", "clf/loss", "loss/total", "images/s"};
#define IMAGES_TAG "sweep/images_per_sec"
enum { M_GOODNESS, M_SOFTMAX, M_CLF_LOSS, M_LOSS, M_IMAGES };

/* ---------------------------------------------------------------- directory */

/* The text that identifies a sweep: what makes its runs. */
static size_t spec_key(const ff_sweep *sw, char *buf, size_t cap)
{
    const ff_sweep_spec *s = &sw->spec;
    size_t n = (size_t)snprintf(buf, cap, "config %s\nmethod %s trials %d search_seed %llu\n",
                                s->config, s->random ? "random" : "grid", s->trials,
                                (unsigned long long)s->search_seed);
    for (int i = 0; i < sw->n_runs && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "run %s\n", sw->runs[i].name);
    for (int i = 0; i < s->n_sets && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "set %s\n", s->sets[i]);
    return n < cap ? n : cap - 1;
}

static int has_events(const char *dir)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        found = strstr(e->d_name, "tfevents") != NULL;
    if (d)
        closedir(d);
    return found;
}

/* The newest <root>/<stamp>_<name> directory whose sweep.key equals key, into out. */
static int find_existing(const char *root, const char *name, const char *key, char *out, size_t cap)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    char best[256] = "";
    size_t nl = strlen(name);
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l <= nl + 1 || strcmp(e->d_name + l - nl, name) || e->d_name[l - nl - 1] != '_' ||
            strcmp(e->d_name, best) <= 0 || l >= sizeof best)
            continue;
        char path[FF_PATH_MAX + 600];
        snprintf(path, sizeof path, "%s/%s/sweep.key", root, e->d_name);
        uint8_t *text;
        size_t len;
        ff_err err;
        if (ff_read_file(path, 1 << 22, &text, &len, &err))
            continue;
        if (len == strlen(key) && !memcmp(text, key, len))
            snprintf(best, sizeof best, "%s", e->d_name);
        free(text);
    }
    closedir(d);
    if (!best[0])
        return 0;
    snprintf(out, cap, "%s/%s", root, best);
    return 1;
}

/* The metric tags any run of the sweep writes, in the dashboard's order. */
static int sweep_metrics(const ff_sweep *sw, const char **tags)
{
    int want[FF_SWEEP_N_METRICS] = {0}, n = 0;
    static const char *const tag_of[FF_SWEEP_N_METRICS] = {
        "test/error_goodness", "test/error_softmax", "clf/loss", "loss/total", IMAGES_TAG};
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_config *c = &sw->runs[i].cfg;
        want[M_GOODNESS] |= c->mode == FF_MODE_SUPERVISED;
        want[M_SOFTMAX] |= c->mode == FF_MODE_UNSUP_CLF || c->eval.softmax;
        want[M_CLF_LOSS] |= c->mode == FF_MODE_UNSUP_CLF;
        want[M_LOSS] |= c->mode != FF_MODE_UNSUP_CLF;
    }
    want[M_IMAGES] = 1;
    for (int m = 0; m < FF_SWEEP_N_METRICS; m++)
        if (want[m])
            tags[n++] = tag_of[m];
    return n;
}

static int write_experiment(ff_sweep *sw, ff_err *err)
{
    const ff_config **cfgs = malloc((size_t)sw->n_runs * sizeof *cfgs);
    if (!cfgs)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < sw->n_runs; i++)
        cfgs[i] = &sw->runs[i].cfg;
    const char *tags[FF_SWEEP_N_METRICS];
    int n_tags = sweep_metrics(sw, tags);
    ff_summary_writer *w = NULL;
    int rc = ff_summary_open(&w, sw->dir, err);
    if (!rc)
        rc = ff_summary_hparams_experiment_of(w, cfgs, sw->n_runs, tags, n_tags, err);
    if (w) {
        int crc = ff_summary_close(w, rc ? NULL : err);
        rc = rc ? rc : crc;
    }
    free(cfgs);
    return rc;
}

int ff_sweep_open(ff_sweep *sw, ff_info_fn info, void *ctx, ff_err *err)
{
    const ff_config *c0 = &sw->runs[0].cfg;
    char root[FF_PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/%s", c0->log.dir, ff_mode_name(c0->mode));
    size_t cap = 4096 + (size_t)sw->n_runs * 600;
    char *key = malloc(cap);
    if (!key)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    spec_key(sw, key, cap);
    int rc = FF_OK;
    char msg[FF_PATH_MAX + 300];
    if (find_existing(root, sw->spec.name, key, sw->dir, sizeof sw->dir)) {
        snprintf(msg, sizeof msg, "continuing the sweep in %s", sw->dir);
    } else {
        rc = ff_mkdir_p(root, err);
        if (!rc)
            rc = ff_make_run_dir(root, sw->spec.name, time(NULL), sw->dir, sizeof sw->dir, err);
        char path[FF_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/sweep.key", sw->dir);
        if (!rc)
            rc = ff_write_file_atomic(path, key, strlen(key), err);
        snprintf(msg, sizeof msg, "new sweep directory %s", sw->dir);
    }
    free(key);
    if (rc)
        return rc;
    if (info)
        info(ctx, msg);
    for (int i = 0; i < sw->n_runs; i++) { /* the models of every run under the sweep */
        ff_config *c = &sw->runs[i].cfg;
        if ((size_t)snprintf(c->checkpoint.dir, sizeof c->checkpoint.dir, "%s/models", sw->dir) >=
            sizeof c->checkpoint.dir)
            return ff_err_set(err, FF_ERR_USAGE, "%s: path too long", sw->dir);
        snprintf(sw->runs[i].log, sizeof sw->runs[i].log, "%.500s/%.560s/ffrun.log", sw->dir,
                 sw->runs[i].name);
    }
    return has_events(sw->dir) ? FF_OK : write_experiment(sw, err);
}

/* ---------------------------------------------------------------- a run's files */

static int final_epochs(const ff_config *c)
{
    return c->mode == FF_MODE_UNSUP_CLF ? c->clf.epochs : c->train.epochs;
}

/* 1 if the run's final model exists; else its newest step model into step_model ("" if none). */
static int run_files(const ff_sweep *sw, const ff_sweep_run *r, char *step_model, size_t cap)
{
    char prefix[700], path[2048];
    snprintf(prefix, sizeof prefix, "%s_%s", ff_mode_name(r->cfg.mode), r->name);
    snprintf(path, sizeof path, "%.700s/models/%.690s_epoch%03d.ffm", sw->dir, prefix, final_epochs(&r->cfg));
    step_model[0] = '\0';
    if (access(path, F_OK) == 0)
        return 1;
    char dir[FF_PATH_MAX + 220];
    snprintf(dir, sizeof dir, "%s/models", sw->dir);
    DIR *d = opendir(dir);
    size_t pl = strlen(prefix);
    char best[800] = "";
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if (l == pl + 16 && !strncmp(n, prefix, pl) && !strncmp(n + pl, "_step", 5) &&
            !strcmp(n + l - 4, ".ffm") && strcmp(n, best) > 0)
            snprintf(best, sizeof best, "%s", n);
    }
    if (d)
        closedir(d);
    if (best[0])
        snprintf(step_model, cap, "%s/%s", dir, best);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The final value (largest step, last written) of each metric tag in the run's
 * event files, and the images/s of its last epoch from its log. */
static void read_metrics(const ff_sweep *sw, ff_sweep_run *r)
{
    static const char *const tags[FF_SWEEP_N_METRICS] = {
        "test/error_goodness", "test/error_softmax", "clf/loss", "loss/total", IMAGES_TAG};
    int64_t at[FF_SWEEP_N_METRICS];
    for (int m = 0; m < FF_SWEEP_N_METRICS; m++)
        r->metric[m] = NAN, at[m] = -1;
    r->last_step = -1;
    char dir[FF_PATH_MAX + 800];
    snprintf(dir, sizeof dir, "%s/%s", sw->dir, r->name);
    DIR *d = opendir(dir);
    char *names[64];
    int n = 0;
    for (struct dirent *e; d && n < 64 && (e = readdir(d));)
        if (strstr(e->d_name, "tfevents"))
            names[n++] = strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int f = 0; f < n; f++) {
        char path[FF_PATH_MAX + 1200];
        snprintf(path, sizeof path, "%s/%s", dir, names[f] ? names[f] : "");
        free(names[f]);
        ff_tfrecord_reader rd = {0};
        ff_tfrecord_record rec;
        ff_err err;
        if (ff_tfrecord_reader_open(&rd, path, &err))
            continue;
        while (ff_tfrecord_next(&rd, &rec, &err) == 1) {
            ff_summary_event_info ev = {0};
            if (ff_summary_event_decode(rec.data, rec.len, &ev, &err))
                continue;
            for (int v = 0; v < ev.n_values; v++) {
                if (strcmp(ev.values[v].plugin, "scalars"))
                    continue;
                r->last_step = ev.step > r->last_step ? ev.step : r->last_step;
                for (int m = 0; m < FF_SWEEP_N_METRICS; m++)
                    if (!strcmp(ev.values[v].tag, tags[m]) && ev.step >= at[m]) {
                        at[m] = ev.step;
                        r->metric[m] = ev.values[v].number;
                    }
            }
            ff_summary_event_info_destroy(&ev);
        }
        ff_tfrecord_reader_destroy(&rd);
    }
    if (!isnan(r->metric[M_IMAGES]))
        return;
    uint8_t *log;
    size_t len;
    ff_err err;
    if (ff_read_file(r->log, 64 << 20, &log, &len, &err))
        return;
    /* the last epoch line: "epoch E/N  12.3s  4567 img/s  loss ..." */
    for (size_t i = len; i-- > 6;) {
        if (memcmp(log + i, " img/s", 6) || (i + 6 < len && log[i + 6] != ' '))
            continue;
        size_t j = i;
        while (j > 0 && log[j - 1] != ' ')
            j--;
        char num[32];
        size_t l = i - j < sizeof num - 1 ? i - j : sizeof num - 1;
        memcpy(num, log + j, l);
        num[l] = '\0';
        r->metric[M_IMAGES] = strtod(num, NULL);
        break;
    }
    free(log);
}

/* images/s as a scalar of the run (its own event file), for the HParams table. */
static void log_images_per_sec(const ff_sweep *sw, const ff_sweep_run *r)
{
    if (isnan(r->metric[M_IMAGES]))
        return;
    char dir[FF_PATH_MAX + 800];
    snprintf(dir, sizeof dir, "%s/%s", sw->dir, r->name);
    ff_summary_writer *w;
    ff_err err;
    if (ff_summary_open(&w, dir, &err))
        return;
    ff_summary_scalar(w, IMAGES_TAG, r->last_step > 0 ? r->last_step : 0,
                      (float)r->metric[M_IMAGES], &err);
    ff_summary_close(w, &err);
}

/* ---------------------------------------------------------------- processes */

static pid_t launch(const ff_sweep *sw, const ff_sweep_run *r, const ff_sweep_opts *o,
                    const char *resume, int threads)
{
    char dir[FF_PATH_MAX + 800], models[FF_PATH_MAX + 300], steps[32], th[16];
    snprintf(dir, sizeof dir, "%s/%s", sw->dir, r->name);
    snprintf(models, sizeof models, "checkpoint.dir=%s", r->cfg.checkpoint.dir);
    snprintf(steps, sizeof steps, "%lld", (long long)o->max_steps);
    snprintf(th, sizeof th, "%d", threads);
    const char *argv[2 * (FF_SWEEP_MAX_SETS + FF_SWEEP_MAX_AXES) + 16];
    int n = 0;
    argv[n++] = o->exe;
    if (resume[0]) {
        argv[n++] = "--resume";
        argv[n++] = resume;
    } else {
        argv[n++] = sw->spec.config;
        for (int i = 0; i < r->n_sets; i++) {
            argv[n++] = "--set";
            argv[n++] = r->sets[i];
        }
        argv[n++] = "--set";
        argv[n++] = models;
    }
    argv[n++] = "--sweep-run";
    argv[n++] = dir;
    if (o->max_steps > 0) {
        argv[n++] = "--max-steps";
        argv[n++] = steps;
    }
    argv[n] = NULL;
    ff_err err;
    if (ff_mkdir_p(dir, &err))
        return -1;
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setpgid(0, 0); /* a terminal's Ctrl-C reaches the sweep only; it stops the runs */
    int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(127);
    setenv("OPENBLAS_NUM_THREADS", th, 1);
    setenv("OMP_NUM_THREADS", th, 1);
    execv(o->exe, (char *const *)argv);
    fprintf(stderr, "ffrun sweep: cannot execute %s: %s\n", o->exe, strerror(errno));
    _exit(127);
}

static void note(const ff_sweep_opts *o, const char *fmt, const char *a, const char *b, int x)
{
    char msg[2048];
    snprintf(msg, sizeof msg, fmt, a, b, x);
    if (o->info)
        o->info(o->ctx, msg);
}

int ff_sweep_execute(ff_sweep *sw, const ff_sweep_opts *o, ff_err *err)
{
    int *todo = malloc((size_t)sw->n_runs * sizeof *todo), n_todo = 0, n_done = 0;
    pid_t *pids = calloc((size_t)sw->n_runs, sizeof *pids);
    double *t0 = calloc((size_t)sw->n_runs, sizeof *t0);
    if (!todo || !pids || !t0) {
        free(todo), free(pids), free(t0);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    }
    char step_model[FF_PATH_MAX + 900];
    for (int i = 0; i < sw->n_runs; i++) {
        if (run_files(sw, &sw->runs[i], step_model, sizeof step_model)) {
            sw->runs[i].state = FF_SWEEP_DONE;
            read_metrics(sw, &sw->runs[i]);
            n_done++;
        } else {
            todo[n_todo++] = i;
        }
    }
    if (n_done)
        note(o, "%s%s%d run(s) already finished: skipped", "", "", n_done);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores > 0 ? cores : 1;
    int jobs = sw->spec.jobs, threads = sw->spec.threads;
    if (!jobs)
        jobs = threads ? (int)(cores / threads) : (int)cores;
    jobs = jobs < 1 ? 1 : jobs > n_todo && n_todo ? n_todo : jobs;
    if (!threads)
        threads = (int)(cores / jobs);
    threads = threads < 1 ? 1 : threads;
    if (n_todo) {
        char m[96];
        snprintf(m, sizeof m, "%d run(s) to go, %d at a time, %d BLAS thread(s) each", n_todo,
                 jobs, threads);
        note(o, "%s%s", m, "", 0);
    }
    int next = 0, active = 0, failed = 0, level = 0;
    while ((next < n_todo && !*o->stop) || active) {
        while (!*o->stop && next < n_todo && active < jobs) {
            ff_sweep_run *r = &sw->runs[todo[next]];
            run_files(sw, r, step_model, sizeof step_model);
            pid_t pid = launch(sw, r, o, step_model, threads);
            if (pid < 0) {
                r->state = FF_SWEEP_FAILED;
                r->exit_status = 127;
                failed++;
            } else {
                pids[todo[next]] = pid;
                t0[todo[next]] = (double)time(NULL);
                active++;
                note(o, step_model[0] ? "start  %s (resuming %s)" : "start  %s%s", r->name,
                     step_model, 0);
            }
            next++;
        }
        if (*o->stop > level) { /* forward each signal once to every run */
            level = *o->stop;
            for (int i = 0; i < sw->n_runs; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGINT);
        }
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        int i = 0;
        while (i < sw->n_runs && pids[i] != pid)
            i++;
        if (i == sw->n_runs)
            continue;
        ff_sweep_run *r = &sw->runs[i];
        pids[i] = 0;
        active--;
        r->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r->state = r->exit_status == 0     ? FF_SWEEP_DONE
                   : r->exit_status == 130 ? FF_SWEEP_INTERRUPTED
                                           : FF_SWEEP_FAILED;
        failed += r->state == FF_SWEEP_FAILED;
        read_metrics(sw, r);
        if (r->state == FF_SWEEP_DONE) {
            log_images_per_sec(sw, r);
            read_metrics(sw, r);
        }
        char what[160];
        if (r->state == FF_SWEEP_DONE)
            snprintf(what, sizeof what, "finished in %.0fs", (double)time(NULL) - t0[i]);
        else
            snprintf(what, sizeof what, "%s (exit %d), log %.100s",
                     r->state == FF_SWEEP_INTERRUPTED ? "interrupted" : "FAILED", r->exit_status,
                     r->log);
        note(o, "done   %s: %s", r->name, what, 0);
        ff_err serr;
        ff_sweep_summarize(sw, NULL, &serr);
    }
    for (int k = next; k < n_todo; k++) /* never started (stopped) */
        sw->runs[todo[k]].state = FF_SWEEP_TODO;
    free(todo), free(pids), free(t0);
    int rc = ff_sweep_summarize(sw, NULL, err);
    if (rc)
        return rc;
    int interrupted = 0;
    for (int i = 0; i < sw->n_runs; i++)
        interrupted += sw->runs[i].state == FF_SWEEP_INTERRUPTED;
    if (*o->stop || interrupted)
        return ff_err_set(err, FF_ERR_INTERRUPTED, "sweep interrupted; run the same command again "
                          "to resume it (%s)", sw->dir);
    if (failed)
        return ff_err_set(err, FF_ERR_RUNTIME, "%d run(s) failed; see %s/SUMMARY.md", failed, sw->dir);
    return FF_OK;
}

/* ---------------------------------------------------------------- summary */

typedef struct stat4 {
    double mean, std, min, max;
    int n;
} stat4;

static stat4 stats_of(const ff_sweep *sw, int point, int m)
{
    stat4 s = {NAN, NAN, NAN, NAN, 0};
    double sum = 0, sq = 0;
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_sweep_run *r = &sw->runs[i];
        double v = r->metric[m];
        if (r->point != point || r->state != FF_SWEEP_DONE || !isfinite(v))
            continue;
        if (!s.n || v < s.min)
            s.min = v;
        if (!s.n || v > s.max)
            s.max = v;
        sum += v;
        s.n++;
    }
    if (!s.n)
        return s;
    s.mean = sum / s.n;
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_sweep_run *r = &sw->runs[i];
        if (r->point == point && r->state == FF_SWEEP_DONE && isfinite(r->metric[m]))
            sq += (r->metric[m] - s.mean) * (r->metric[m] - s.mean);
    }
    s.std = s.n > 1 ? sqrt(sq / (s.n - 1)) : 0.0;
    return s;
}

static const ff_sweep *sort_sw;
static int sort_metric;

static int cmp_points(const void *a, const void *b)
{
    int pa = *(const int *)a, pb = *(const int *)b;
    double ma = stats_of(sort_sw, pa, sort_metric).mean, mb = stats_of(sort_sw, pb, sort_metric).mean;
    if (isnan(ma) != isnan(mb))
        return isnan(ma) ? 1 : -1;
    if (!isnan(ma) && ma != mb)
        return ma < mb ? -1 : 1;
    return pa - pb;
}

/* The main metric: the goodness error of supervised runs, else the softmax
 * error, else the final loss. */
static int main_metric(const ff_sweep *sw)
{
    static const int order[] = {M_GOODNESS, M_SOFTMAX, M_CLF_LOSS, M_LOSS};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++)
        for (int i = 0; i < sw->n_runs; i++)
            if (isfinite(sw->runs[i].metric[order[k]]))
                return order[k];
    return M_GOODNESS;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
}

static void put_num(buf *b, double v)
{
    if (isnan(v))
        put(b, "-");
    else
        put(b, "%.6g", v);
}

int ff_sweep_summarize(ff_sweep *sw, char **text, ff_err *err)
{
    int *order = malloc((size_t)sw->n_points * sizeof *order);
    int *first = malloc((size_t)sw->n_points * sizeof *first);
    if (!order || !first) {
        free(order), free(first);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    }
    for (int p = 0; p < sw->n_points; p++)
        order[p] = p, first[p] = -1;
    for (int i = sw->n_runs - 1; i >= 0; i--)
        first[sw->runs[i].point] = i;
    const int main_m = main_metric(sw);
    int shown[FF_SWEEP_N_METRICS], n_shown = 0;
    shown[n_shown++] = main_m;
    for (int m = 0; m < FF_SWEEP_N_METRICS; m++) {
        int any = 0;
        for (int i = 0; i < sw->n_runs && !any; i++)
            any = isfinite(sw->runs[i].metric[m]);
        if (any && m != main_m)
            shown[n_shown++] = m;
    }
    sort_sw = sw;
    sort_metric = main_m;
    qsort(order, (size_t)sw->n_points, sizeof *order, cmp_points);
    int counts[4] = {0};
    for (int i = 0; i < sw->n_runs; i++)
        counts[sw->runs[i].state]++;
    buf md = {0}, csv = {0};
    put(&md, "# Sweep %s\n\n%d run(s) of `%s` (%d point(s) x %d seed(s)): %d finished, %d failed, "
        "%d interrupted, %d not run yet. Sweep directory: `%s`\n\n"
        "Sorted by the mean of %s over seeds; std is the sample standard deviation (n-1) over "
        "the finished runs of a point (0 for one run).\n\n| rank | point | runs |",
        sw->spec.name, sw->n_runs, sw->spec.config, sw->n_points,
        sw->spec.n_seeds ? sw->spec.n_seeds : 1, counts[FF_SWEEP_DONE], counts[FF_SWEEP_FAILED],
        counts[FF_SWEEP_INTERRUPTED], counts[FF_SWEEP_TODO], sw->dir, ff_sweep_metric_names[main_m]);
    put(&csv, "point");
    for (int a = 0; a < sw->spec.n_axes; a++)
        put(&csv, ",%s", sw->spec.axes[a].key);
    put(&csv, ",runs,finished,failed");
    for (int k = 0; k < n_shown; k++) {
        const char *nm = ff_sweep_metric_names[shown[k]];
        put(&md, " %s mean | std | min | max |", nm);
        put(&csv, ",%s mean,%s std,%s min,%s max", nm, nm, nm, nm);
    }
    put(&md, "\n|---|---|---|");
    put(&csv, "\n");
    for (int k = 0; k < n_shown; k++)
        put(&md, "---|---|---|---|");
    put(&md, "\n");
    for (int rank = 0; rank < sw->n_points; rank++) {
        const int p = order[rank];
        const ff_sweep_run *r0 = &sw->runs[first[p]];
        int runs = 0, done = 0, bad = 0;
        for (int i = 0; i < sw->n_runs; i++)
            if (sw->runs[i].point == p) {
                runs++;
                done += sw->runs[i].state == FF_SWEEP_DONE;
                bad += sw->runs[i].state == FF_SWEEP_FAILED;
            }
        put(&md, "| %d | %s | %d/%d%s |", rank + 1, r0->point_name[0] ? r0->point_name : "(base)",
            done, runs, bad ? " (failed)" : "");
        put(&csv, "\"%s\"", r0->point_name);
        for (int a = 0; a < sw->spec.n_axes; a++) { /* the value: the point name's own text */
            const char *set = r0->sets[sw->spec.n_sets + a], *eq = strchr(set, '=');
            put(&csv, ",\"%s\"", eq ? eq + 1 : "");
        }
        put(&csv, ",%d,%d,%d", runs, done, bad);
        for (int k = 0; k < n_shown; k++) {
            stat4 s = stats_of(sw, p, shown[k]);
            double v[4] = {s.mean, s.std, s.min, s.max};
            for (int j = 0; j < 4; j++) {
                put(&md, " ");
                put_num(&md, v[j]);
                put(&md, " |");
                put(&csv, ",");
                if (!isnan(v[j]))
                    put(&csv, "%.9g", v[j]);
            }
        }
        put(&md, "\n");
        put(&csv, "\n");
    }
    if (counts[FF_SWEEP_FAILED] || counts[FF_SWEEP_INTERRUPTED]) {
        put(&md, "\nRuns that did not finish:\n\n");
        for (int i = 0; i < sw->n_runs; i++)
            if (sw->runs[i].state == FF_SWEEP_FAILED || sw->runs[i].state == FF_SWEEP_INTERRUPTED)
                put(&md, "- %s: %s, exit status %d, log `%s`\n", sw->runs[i].name,
                    sw->runs[i].state == FF_SWEEP_FAILED ? "failed" : "interrupted (resumable)",
                    sw->runs[i].exit_status, sw->runs[i].log);
    }
    if (sw->n_points && !isnan(stats_of(sw, order[0], main_m).mean)) {
        const ff_sweep_run *b = &sw->runs[first[order[0]]];
        put(&md, "\nBest point: **%s**. Run it alone with:\n\n    %s %s", b->point_name,
            sw->prog[0] ? sw->prog : "ffrun", sw->spec.config);
        for (int i = 0; i < b->n_sets; i++)
            put(&md, " --set '%s'", b->sets[i]);
        put(&md, "\n");
    }
    char path[FF_PATH_MAX + 300];
    int rc = md.p && csv.p ? FF_OK : ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/SUMMARY.md", sw->dir);
    if (!rc)
        rc = ff_write_file_atomic(path, md.p, md.n, err);
    snprintf(path, sizeof path, "%s/summary.csv", sw->dir);
    if (!rc)
        rc = ff_write_file_atomic(path, csv.p, csv.n, err);
    if (text && !rc) {
        *text = md.p;
        md.p = NULL;
    }
    free(md.p), free(csv.p), free(order), free(first);
    return rc;
}
