/* sweep_run.c - running a sweep (include/ff/sweep.h): its directory (found
 * again by its spec, so the same command resumes it) and HParams experiment,
 * one child ffrun process per run (jobs at a time, OPENBLAS_NUM_THREADS each,
 * output to the run's ffrun.log), clean stops, and the per-run final metrics
 * read back from the event files for SUMMARY.md and summary.csv.
 *
 * With scheduler: asha each run's process stops at its next rung (--stop-epoch),
 * the metric there is read back from its event files, and the decisions of
 * src/sweep_asha.c promote it (a new process resumes its step model) or leave it
 * waiting; asha.tsv holds them across invocations. Under mpirun the loop runs on
 * rank 0, which hands runs to the other ranks' job slots by small messages
 * (ff_parallel_send / ff_parallel_poll); they only start and reap processes.
 * Model names are run.c's (ff_run_claim_prefix, ff_run_model_path,
 * ff_run_prefix_of_model). */
#include "ff/sweep.h"

#include <dirent.h>
#include <errno.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ff/checkpoint.h"
#include "ff/fs.h"
#include "ff/parallel.h"
#include "ff/run.h"
#include "ff/summary.h"
#include "ff/summary_hparams.h"
#include "ff/summary_reader.h"
#include "ff/tfrecord.h"

const char *const ff_sweep_metric_names[FF_SWEEP_N_METRICS] = {
    "val/error_goodness", "val/error_softmax", "test/error_goodness", "test/error_softmax",
    "clf/loss", "loss/total", "images/s"};
#define IMAGES_TAG "sweep/images_per_sec"
enum { M_VAL_GOODNESS, M_VAL_SOFTMAX, M_GOODNESS, M_SOFTMAX, M_CLF_LOSS, M_LOSS, M_IMAGES };

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
    if (s->asha && n < cap) /* a sweep without a scheduler keeps the key it always had */
        n += (size_t)snprintf(buf + n, cap - n, "scheduler asha min_epochs %d eta %d metric %s\n",
                              s->sched.min_epochs, s->sched.eta, s->sched.metric);
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
        if (ff_fs_read_file(path, 1 << 22, &text, &len, &err))
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

/* The metric tags any run of the sweep writes, in the dashboard's order: the validation
 * errors (which choose) first. */
static int sweep_metrics(const ff_sweep *sw, const char **tags)
{
    int want[FF_SWEEP_N_METRICS] = {0}, n = 0;
    static const char *const tag_of[FF_SWEEP_N_METRICS] = {
        "val/error_goodness", "val/error_softmax", "test/error_goodness", "test/error_softmax",
        "clf/loss", "loss/total", IMAGES_TAG};
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_config *c = &sw->runs[i].cfg;
        const int val = c->data.validation > 0.0f;
        want[M_VAL_GOODNESS] |= val && c->mode == FF_MODE_SUPERVISED;
        want[M_VAL_SOFTMAX] |= val && (c->mode == FF_MODE_UNSUP_CLF || c->eval.softmax);
        want[M_GOODNESS] |= c->mode == FF_MODE_SUPERVISED;
        want[M_SOFTMAX] |= c->mode == FF_MODE_UNSUP_CLF || c->eval.softmax;
        /* the classifier's loss, and the softmax head's beside an FF net (eval.softmax) */
        want[M_CLF_LOSS] |= c->mode == FF_MODE_UNSUP_CLF || c->eval.softmax;
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

/* ---------------------------------------------------------------- text */

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

/* A number in SUMMARY.md's tables: 4 significant digits (summary.csv keeps 9). */
static void put_num(buf *b, double v)
{
    if (isnan(v))
        put(b, "-");
    else
        put(b, "%.4g", v);
}

/* ---------------------------------------------------------------- messages (mpirun) */

/* Under mpirun -np N, rank 0 runs the sweep's loop and the other ranks start
 * the runs it hands them: DIR (0 -> all: the sweep directory), HELLO (rank ->
 * 0: its free slots), RUN (0 -> rank: a run, the model it resumes, where it
 * pauses), DONE (rank -> 0: a run's exit status), STOP (0 -> all: a signal's
 * level), EXIT (0 -> all: nothing more to do). */
enum { MSG_DIR = 1, MSG_HELLO, MSG_RUN, MSG_DONE, MSG_STOP, MSG_EXIT };

typedef struct sweep_msg {
    int kind, run, value; /* HELLO: slots; RUN: stop epoch; DONE: exit status; STOP: level */
    int threads;          /* HELLO: BLAS threads per run there */
    long long max_steps;  /* RUN */
    char text[FF_PATH_MAX + 1200]; /* DIR: the sweep directory; RUN: the model to resume or "" */
} sweep_msg;

static void send_msg(int to, int kind, int run, int value, const char *text)
{
    sweep_msg m = {.kind = kind, .run = run, .value = value};
    if (text)
        snprintf(m.text, sizeof m.text, "%s", text);
    ff_parallel_send(to, &m, (int)sizeof m);
}

static void send_all(int kind, int value, const char *text)
{
    for (int r = 1; r < ff_parallel_size(); r++)
        send_msg(r, kind, -1, value, text);
}

/* ---------------------------------------------------------------- directory */

/* Every run's log, models directory and model-name prefix under sw->dir. */
static int set_paths(ff_sweep *sw, int claim, ff_err *err)
{
    for (int i = 0; i < sw->n_runs; i++) { /* the models of every run under the sweep */
        ff_sweep_run *r = &sw->runs[i];
        ff_config *c = &r->cfg;
        if ((size_t)snprintf(c->checkpoint.dir, sizeof c->checkpoint.dir, "%s/models", sw->dir) >=
            sizeof c->checkpoint.dir)
            return ff_err_set(err, FF_ERR_USAGE, "%s: path too long", sw->dir);
        snprintf(r->log, sizeof r->log, "%.500s/%.560s/ffrun.log", sw->dir, r->name);
        char run_dir[FF_PATH_MAX + 800];
        snprintf(run_dir, sizeof run_dir, "%s/%s", sw->dir, r->name);
        /* the prefix the run itself claims (run.c): its claim file, made now if new */
        int rc = claim ? ff_run_claim_prefix(c, run_dir, r->prefix, sizeof r->prefix, err) : FF_OK;
        if (rc)
            return rc;
    }
    return FF_OK;
}

/* The holder recorded in a held sweep.lock ("pid P host H since T"), into who; its pid,
 * or 0 when it is not a live process on this host (a killed sweep whose runs still end). */
static pid_t lock_holder(int fd, char *who, size_t cap)
{
    char text[512] = "", host[256] = "", mine[256] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    text[strcspn(text, "\n")] = '\0';
    long pid = 0;
    snprintf(who, cap, "%s", text[0] ? text : "a sweep that did not say who it is");
    if (sscanf(text, "pid %ld host %255s", &pid, host) != 2 || gethostname(mine, sizeof mine) ||
        strcmp(host, mine))
        return 1; /* another host, or unknown: alive as far as we can tell */
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM) ? (pid_t)pid : 0;
}

/* One sweep per directory: an exclusive flock on <dir>/sweep.lock, held by this
 * process and (inherited) by every run it starts. A live holder is named and refused;
 * a dead one's runs (stopping after their parent died) are waited for. */
static int lock_dir(ff_sweep *sw, ff_info_fn info, void *ctx, ff_err *err)
{
    char path[FF_PATH_MAX + 300], who[600];
    snprintf(path, sizeof path, "%s/sweep.lock", sw->dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return ff_err_set(err, FF_ERR_IO, "%s: %s", path, strerror(errno));
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited++) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            ff_err_set(err, FF_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
            close(fd);
            return FF_ERR_IO;
        }
        const pid_t holder = lock_holder(fd, who, sizeof who);
        if (holder || waited == 1200) {
            close(fd);
            return ff_err_set(err, FF_ERR_RUNTIME,
                              "%s is in use by another sweep (%s)%s; wait for it to end or "
                              "stop it (Ctrl-C), then run this again", sw->dir, who,
                              holder ? "" : ", whose runs have not ended in 120 s");
        }
        if (waited == 0 && info) {
            char msg[FF_PATH_MAX + 900];
            snprintf(msg, sizeof msg, "%.600s: the sweep that held it (%.250s) is gone; waiting "
                     "for its runs to stop", sw->dir, who);
            info(ctx, msg);
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char host[256] = "unknown", stamp[32] = "", text[600];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    const time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", &tm);
    const int n = snprintf(text, sizeof text, "pid %ld host %s since %s\n", (long)getpid(), host,
                           stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        ff_err_set(err, FF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        return FF_ERR_IO;
    }
    sw->lock_fd = fd + 1;
    return FF_OK;
}

int ff_sweep_open(ff_sweep *sw, ff_info_fn info, void *ctx, ff_err *err)
{
    if (ff_parallel_rank() > 0) { /* rank 0 opens it and says where */
        for (;;) {
            sweep_msg m;
            int from;
            if (ff_parallel_poll(&m, (int)sizeof m, &from) > 0) {
                if (m.kind == MSG_EXIT)
                    return ff_err_set(err, FF_ERR_USAGE, "rank 0 could not open the sweep");
                if (m.kind == MSG_DIR) {
                    snprintf(sw->dir, sizeof sw->dir, "%.700s", m.text);
                    return set_paths(sw, 0, err);
                }
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    const ff_config *c0 = &sw->runs[0].cfg;
    char root[FF_PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/%s", c0->log.dir, ff_config_mode_name(c0->mode));
    size_t cap = 4096 + (size_t)sw->n_runs * 600;
    char *key = malloc(cap);
    if (!key)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    spec_key(sw, key, cap);
    int rc = FF_OK;
    char msg[FF_PATH_MAX + 300];
    if (find_existing(root, sw->spec.name, key, sw->dir, sizeof sw->dir)) {
        snprintf(msg, sizeof msg, "continuing the sweep in %s", sw->dir);
        rc = lock_dir(sw, info, ctx, err);
    } else {
        rc = ff_fs_mkdir_p(root, err);
        if (!rc)
            rc = ff_fs_make_run_dir(root, sw->spec.name, time(NULL), sw->dir, sizeof sw->dir, err);
        if (!rc) /* before sweep.key: a sweep that finds the directory by it waits for us */
            rc = lock_dir(sw, info, ctx, err);
        char path[FF_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/sweep.key", sw->dir);
        if (!rc)
            rc = ff_fs_write_file_atomic(path, key, strlen(key), err);
        snprintf(msg, sizeof msg, "new sweep directory %s", sw->dir);
    }
    free(key);
    if (!rc && info)
        info(ctx, msg);
    if (!rc && info && sw->warning[0])
        info(ctx, sw->warning);
    if (!rc)
        rc = set_paths(sw, 1, err);
    if (!rc && !has_events(sw->dir))
        rc = write_experiment(sw, err);
    send_all(rc ? MSG_EXIT : MSG_DIR, 0, sw->dir);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------------------- a run's files */

static int final_epochs(const ff_config *c)
{
    return c->mode == FF_MODE_UNSUP_CLF ? c->clf.epochs : c->train.epochs;
}

/* 1 if the run's final model exists; else its newest step model into
 * step_model ("" if none). Names as run.c makes and parses them. */
static int run_files(const ff_sweep_run *r, char *step_model, size_t cap)
{
    char what[32], path[FF_PATH_MAX + 300];
    ff_err e;
    snprintf(what, sizeof what, "epoch%03d", final_epochs(&r->cfg));
    step_model[0] = '\0';
    if (!ff_run_model_path(&r->cfg, r->prefix, what, path, sizeof path, &e) && access(path, F_OK) == 0)
        return 1;
    DIR *d = opendir(r->cfg.checkpoint.dir);
    char best[300] = "";
    for (struct dirent *ent; d && (ent = readdir(d));) {
        char prefix[256];
        const size_t l = strlen(ent->d_name);
        if (l < 5 || strcmp(ent->d_name + l - 4, ".ffm") ||
            ff_run_prefix_of_model(ent->d_name, prefix, sizeof prefix, &e) ||
            strcmp(prefix, r->prefix))
            continue;
        const char *w = ent->d_name + strlen(prefix) + 1; /* stepNNNNNNN.ffm: fixed width */
        if (!strncmp(w, "step", 4) && l < sizeof best && strcmp(ent->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", ent->d_name);
    }
    if (d)
        closedir(d);
    if (best[0])
        snprintf(step_model, cap, "%s/%s", r->cfg.checkpoint.dir, best);
    return 0;
}

/* The event files of a run, sorted by name (their creation order). */
static int event_files(const ff_sweep *sw, const ff_sweep_run *r, char **names, int cap)
{
    char dir[FF_PATH_MAX + 800];
    snprintf(dir, sizeof dir, "%s/%s", sw->dir, r->name);
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && n < cap && (e = readdir(d));)
        if (strstr(e->d_name, "tfevents")) {
            size_t len = strlen(dir) + strlen(e->d_name) + 2;
            if ((names[n] = malloc(len)))
                snprintf(names[n++], len, "%s/%s", dir, e->d_name);
        }
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}


/* Calls fn for every scalar of the run's event files, in the order written. */
static void each_scalar(const ff_sweep *sw, const ff_sweep_run *r,
                        void (*fn)(void *ctx, const char *tag, int64_t step, double v), void *ctx)
{
    char *names[64];
    const int n = event_files(sw, r, names, 64);
    for (int f = 0; f < n; f++) {
        ff_tfrecord_reader rd = {0};
        ff_tfrecord_record rec;
        ff_err err;
        if (ff_tfrecord_reader_open(&rd, names[f], &err) == FF_OK) {
            while (ff_tfrecord_next(&rd, &rec, &err) == 1) {
                ff_summary_event_info ev = {0};
                if (ff_summary_reader_event_decode(rec.data, rec.len, &ev, &err))
                    continue;
                for (int v = 0; v < ev.n_values; v++)
                    if (!strcmp(ev.values[v].plugin, "scalars"))
                        fn(ctx, ev.values[v].tag, ev.step, ev.values[v].number);
                ff_summary_reader_event_info_destroy(&ev);
            }
            ff_tfrecord_reader_destroy(&rd);
        }
        free(names[f]);
    }
}

typedef struct finals {
    ff_sweep_run *r;
    int64_t at[FF_SWEEP_N_METRICS];
} finals;

static void final_of(void *ctx, const char *tag, int64_t step, double v)
{
    finals *f = ctx;
    f->r->last_step = step > f->r->last_step ? step : f->r->last_step;
    for (int m = 0; m < FF_SWEEP_N_METRICS; m++)
        if (!strcmp(tag, m == M_IMAGES ? IMAGES_TAG : ff_sweep_metric_names[m]) && step >= f->at[m]) {
            f->at[m] = step;
            f->r->metric[m] = v;
        }
}

/* The final value (largest step, last written) of each metric tag in the run's
 * event files, and the images/s of its last epoch from its log. */
static void read_metrics(const ff_sweep *sw, ff_sweep_run *r)
{
    finals f = {.r = r};
    for (int m = 0; m < FF_SWEEP_N_METRICS; m++)
        r->metric[m] = NAN, f.at[m] = -1;
    r->last_step = -1;
    each_scalar(sw, r, final_of, &f);
    if (!isnan(r->metric[M_IMAGES]))
        return;
    uint8_t *log;
    size_t len;
    ff_err err;
    if (ff_fs_read_file(r->log, 64 << 20, &log, &len, &err))
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

typedef struct at_step {
    const char *tag;
    int64_t step, best;
    double v;
} at_step;

static void value_at(void *ctx, const char *tag, int64_t step, double v)
{
    at_step *a = ctx;
    if (step <= a->step && step >= a->best && !strcmp(tag, a->tag))
        a->best = step, a->v = v;
}

/* The value of tag last written at or before step (NAN if none). */
static double metric_at(const ff_sweep *sw, const ff_sweep_run *r, const char *tag, int64_t step)
{
    at_step a = {.tag = tag, .step = step, .best = -1, .v = NAN};
    each_scalar(sw, r, value_at, &a);
    return a.v;
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

/* The child of a sweep under mpirun must not join the job: it runs alone. */
static void forget_mpi(void)
{
    static const char *const prefixes[] = {"OMPI_", "PMIX_", "PMI_", "OPAL_"};
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e && !again; e++)
            for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++)
                if (!strncmp(*e, prefixes[p], strlen(prefixes[p]))) {
                    char name[256];
                    size_t l = strcspn(*e, "=");
                    snprintf(name, sizeof name, "%.*s", (int)(l < 255 ? l : 255), *e);
                    unsetenv(name);
                    again = 1;
                    break;
                }
    }
}

static pid_t launch(const ff_sweep *sw, const ff_sweep_run *r, const char *exe, long long max_steps,
                    const char *resume, int stop_epoch, int threads)
{
    char dir[FF_PATH_MAX + 800], models[FF_PATH_MAX + 300], steps[32], th[16], se[16];
    snprintf(dir, sizeof dir, "%s/%s", sw->dir, r->name);
    snprintf(models, sizeof models, "checkpoint.dir=%s", r->cfg.checkpoint.dir);
    snprintf(steps, sizeof steps, "%lld", max_steps);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(se, sizeof se, "%d", stop_epoch);
    const char *argv[2 * (FF_SWEEP_MAX_SETS + FF_SWEEP_MAX_AXES) + 20];
    int n = 0;
    argv[n++] = exe;
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
    if (max_steps > 0) {
        argv[n++] = "--max-steps";
        argv[n++] = steps;
    }
    if (stop_epoch > 0) {
        argv[n++] = "--stop-epoch";
        argv[n++] = se;
    }
    argv[n] = NULL;
    ff_err err;
    if (ff_fs_mkdir_p(dir, &err))
        return -1;
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setpgid(0, 0); /* a terminal's Ctrl-C reaches the sweep only; it stops the runs */
#ifdef __linux__
    /* a run dies with its sweep (kill -9 of the sweep: SIGTERM, a step model, exit 130) */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(130); /* the sweep died before this line: start nothing */
#else
    (void)parent;
#endif
    int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(127);
    if (ff_parallel_size() > 1)
        dprintf(1, "ffrun sweep: rank %d of %d starts this run\n", ff_parallel_rank(),
                ff_parallel_size());
    forget_mpi();
    setenv("OPENBLAS_NUM_THREADS", th, 1);
    setenv("OMP_NUM_THREADS", th, 1);
    execv(exe, (char *const *)argv);
    fprintf(stderr, "ffrun sweep: cannot execute %s: %s\n", exe, strerror(errno));
    _exit(127);
}

static void note(const ff_sweep_opts *o, const char *fmt, const char *a, const char *b, int x)
{
    char msg[4096];
    snprintf(msg, sizeof msg, fmt, a, b, x);
    if (o->info)
        o->info(o->ctx, msg);
}

/* Runs at once and BLAS threads each on this machine: the spec's, else its
 * cores (shared with the other ranks of an mpirun job on this node) filled
 * with one thread per run; never more threads than cores. */
static void slots_here(const ff_sweep_spec *s, int *jobs, int *threads)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const long ranks_here = local && atol(local) > 0 ? atol(local) : 1;
    cores = cores > 0 ? cores / ranks_here : 1;
    cores = cores > 0 ? cores : 1;
    *jobs = s->jobs, *threads = s->threads;
    if (!*jobs)
        *jobs = *threads ? (int)(cores / *threads) : (int)cores;
    *jobs = *jobs < 1 ? 1 : *jobs;
    if (!*threads)
        *threads = (int)(cores / *jobs);
    *threads = *threads < 1 ? 1 : *threads;
}

/* ---------------------------------------------------------------- asha state */

static const char *const state_word[] = {"promoted", "waiting", "stopped"};

/* asha.tsv in the sweep directory: one line per run and rung it reached, with
 * the metric there and what was decided; rewritten after every decision. */
static int write_asha(const ff_sweep *sw, ff_err *err)
{
    buf b = {0};
    const ff_asha *a = &sw->spec.sched;
    put(&b, "# asha: eta %d, metric %s; decision at each rung the run reached "
        "(promoted, waiting, stopped)\nrun\trung\tepoch\tmetric\tdecision\n", a->eta, a->metric);
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_sweep_run *r = &sw->runs[i];
        for (int k = 0; k < r->asha.reached; k++) {
            const int d = k < r->asha.promoted ? 0 : r->state == FF_SWEEP_STOPPED ? 2 : 1;
            put(&b, "%s\t%d\t%d\t%.9g\t%s\n", r->name, k, a->rung_epoch[k], r->asha.metric[k],
                state_word[d]);
        }
    }
    char path[FF_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/asha.tsv", sw->dir);
    int rc = b.p ? ff_fs_write_file_atomic(path, b.p, b.n, err)
                 : ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    free(b.p);
    return rc;
}

/* The decisions of earlier invocations (a missing file: none yet). */
static void read_asha(ff_sweep *sw)
{
    char path[FF_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/asha.tsv", sw->dir);
    uint8_t *text;
    size_t len;
    ff_err err;
    if (ff_fs_read_file(path, 256 << 20, &text, &len, &err))
        return;
    for (char *line = (char *)text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *f[5];
        int n = 0;
        for (char *p = line; n < 5 && p; n++) {
            f[n] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = '\0';
        }
        if (n < 5 || line[0] == '#' || !strcmp(f[0], "run"))
            continue;
        const int k = atoi(f[1]);
        if (k < 0 || k >= sw->spec.sched.n_rungs)
            continue;
        for (int i = 0; i < sw->n_runs; i++) {
            ff_sweep_run *r = &sw->runs[i];
            if (strcmp(r->name, f[0]))
                continue;
            r->asha.metric[k] = strtod(f[3], NULL);
            r->asha.reached = r->asha.reached > k + 1 ? r->asha.reached : k + 1;
            if (!strcmp(f[4], "promoted"))
                r->asha.promoted = r->asha.promoted > k + 1 ? r->asha.promoted : k + 1;
            if (!strcmp(f[4], "stopped"))
                r->state = FF_SWEEP_STOPPED;
            break;
        }
    }
    free(text);
}

/* After its process stopped with a step model: 1 if the run paused at its next
 * rung (the step model is at the end of that rung's epoch), recorded with the
 * metric there. */
static int reached_rung(ff_sweep *sw, ff_sweep_run *r)
{
    const ff_asha *a = &sw->spec.sched;
    const int k = r->asha.reached;
    char step_model[FF_PATH_MAX + 900];
    if (!sw->spec.asha || k >= a->n_rungs || r->asha.promoted != k ||
        run_files(r, step_model, sizeof step_model) || !step_model[0])
        return 0;
    ff_checkpoint ck;
    ff_err err;
    if (ff_checkpoint_load(step_model, &ck, &err))
        return 0;
    const int at = ck.epoch == a->rung_epoch[k] && ck.batch == 0;
    const int64_t step = ck.step;
    ff_checkpoint_free(&ck);
    if (!at)
        return 0;
    r->asha.metric[k] = metric_at(sw, r, a->metric, step);
    r->asha.reached = k + 1;
    return 1;
}

/* ---------------------------------------------------------------- the loop */

typedef struct slot {
    int rank;     /* where it runs */
    int run;      /* -1: free */
    pid_t pid;    /* rank 0's own runs */
    double t0;
} slot;

typedef struct loop {
    ff_sweep *sw;
    const ff_sweep_opts *o;
    slot *slots;
    int n_slots, cap_slots, threads, active, failed, level;
    int *tried;   /* started in this invocation (a failed run is tried once per invocation) */
    ff_asha_run *table;
} loop;

static int add_slots(loop *l, int rank, int n)
{
    if (l->n_slots + n > l->cap_slots) {
        int cap = (l->n_slots + n) * 2;
        slot *s = realloc(l->slots, (size_t)cap * sizeof *s);
        if (!s)
            return -1;
        l->slots = s;
        l->cap_slots = cap;
    }
    for (int i = 0; i < n; i++)
        l->slots[l->n_slots++] = (slot){.rank = rank, .run = -1};
    return 0;
}

/* The next run to start and from where: an asha promotion first (highest rung
 * first), else the next run not started yet (or interrupted). -1: none. */
static int pick(loop *l, char *resume, size_t cap, int *promoted_at)
{
    ff_sweep *sw = l->sw;
    *promoted_at = -1;
    if (sw->spec.asha) {
        for (int i = 0; i < sw->n_runs; i++) {
            l->table[i] = sw->runs[i].asha;
            l->table[i].busy = sw->runs[i].state != FF_SWEEP_WAITING;
        }
        int k, i = ff_sweep_asha_next_promotion(&sw->spec.sched, l->table, sw->n_runs, &k);
        if (i >= 0) {
            sw->runs[i].asha.promoted = k + 1;
            *promoted_at = k;
            run_files(&sw->runs[i], resume, cap);
            return i;
        }
    }
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_sweep_run *r = &sw->runs[i];
        if (!l->tried[i] && (r->state == FF_SWEEP_TODO || r->state == FF_SWEEP_INTERRUPTED ||
                             r->state == FF_SWEEP_FAILED)) {
            run_files(r, resume, cap);
            return i;
        }
    }
    return -1;
}

static void start(loop *l, slot *s, int i, const char *resume, int promoted_at)
{
    ff_sweep *sw = l->sw;
    ff_sweep_run *r = &sw->runs[i];
    const ff_asha *a = &sw->spec.sched;
    r->stop_epoch = sw->spec.asha && r->asha.promoted < a->n_rungs ? a->rung_epoch[r->asha.promoted] : 0;
    l->tried[i] = 1;
    s->run = i;
    s->t0 = (double)time(NULL);
    if (s->rank == 0) {
        s->pid = launch(sw, r, l->o->exe, (long long)l->o->max_steps, resume, r->stop_epoch, l->threads);
    } else {
        sweep_msg m = {.kind = MSG_RUN, .run = i, .value = r->stop_epoch,
                       .max_steps = (long long)l->o->max_steps};
        snprintf(m.text, sizeof m.text, "%s", resume);
        s->pid = ff_parallel_send(s->rank, &m, (int)sizeof m) ? -1 : 1;
    }
    if (s->pid < 0) {
        r->state = FF_SWEEP_FAILED;
        r->exit_status = 127;
        l->failed++;
        s->run = -1;
        return;
    }
    r->state = FF_SWEEP_TODO; /* running */
    l->active++;
    char what[FF_PATH_MAX + 2000];
    int n = snprintf(what, sizeof what, "start  %s", r->name);
    if (ff_parallel_size() > 1)
        n += snprintf(what + n, sizeof what - (size_t)n, " on rank %d", s->rank);
    if (promoted_at >= 0)
        n += snprintf(what + n, sizeof what - (size_t)n, " (promoted past rung %d, epoch %d: resuming %s)",
                      promoted_at, a->rung_epoch[promoted_at], resume);
    else if (resume[0])
        n += snprintf(what + n, sizeof what - (size_t)n, " (resuming %s)", resume);
    if (r->stop_epoch)
        snprintf(what + n, sizeof what - (size_t)n, " until epoch %d", r->stop_epoch);
    note(l->o, "%s%s", what, "", 0);
}

/* A run's process ended with status st (0..255 or 128 + signal). */
static void ended(loop *l, slot *s, int st)
{
    ff_sweep *sw = l->sw;
    ff_sweep_run *r = &sw->runs[s->run];
    const double t0 = s->t0;
    s->run = -1;
    l->active--;
    r->exit_status = st;
    char what[300];
    if (st == 0) {
        r->state = FF_SWEEP_DONE;
        read_metrics(sw, r);
        log_images_per_sec(sw, r);
        read_metrics(sw, r);
        snprintf(what, sizeof what, "finished in %.0fs", (double)time(NULL) - t0);
    } else if (st == 130 && r->stop_epoch > 0 && reached_rung(sw, r)) {
        const int k = r->asha.reached - 1;
        r->state = FF_SWEEP_WAITING;
        read_metrics(sw, r);
        snprintf(what, sizeof what, "reached rung %d (epoch %d) in %.0fs, %s %.4g: waits for asha",
                 k, sw->spec.sched.rung_epoch[k], (double)time(NULL) - t0, sw->spec.sched.metric,
                 r->asha.metric[k]);
    } else {
        r->state = st == 130 ? FF_SWEEP_INTERRUPTED : FF_SWEEP_FAILED;
        l->failed += r->state == FF_SWEEP_FAILED;
        read_metrics(sw, r);
        snprintf(what, sizeof what, "%s (exit %d), log %.200s",
                 r->state == FF_SWEEP_INTERRUPTED ? "interrupted" : "FAILED", st, r->log);
    }
    note(l->o, "done   %s: %s", r->name, what, 0);
    ff_err e;
    if (sw->spec.asha)
        write_asha(sw, &e);
    ff_sweep_summarize(sw, NULL, &e);
}

/* What rank 0 finds before starting: finished runs, asha's earlier decisions,
 * runs that paused at a rung while no sweep was watching. */
static void initial_states(ff_sweep *sw)
{
    char step_model[FF_PATH_MAX + 900];
    for (int i = 0; i < sw->n_runs; i++) {
        ff_sweep_run *r = &sw->runs[i];
        r->state = FF_SWEEP_TODO;
        r->asha = (ff_asha_run){0};
        for (int k = 0; k < FF_ASHA_MAX_RUNGS; k++)
            r->asha.metric[k] = NAN;
    }
    if (sw->spec.asha)
        read_asha(sw);
    for (int i = 0; i < sw->n_runs; i++) {
        ff_sweep_run *r = &sw->runs[i];
        if (run_files(r, step_model, sizeof step_model)) {
            r->state = FF_SWEEP_DONE;
            read_metrics(sw, r);
        } else if (r->state != FF_SWEEP_STOPPED) {
            if (sw->spec.asha)
                reached_rung(sw, r);
            if (r->asha.reached > r->asha.promoted)
                r->state = FF_SWEEP_WAITING;
            else if (step_model[0])
                r->state = FF_SWEEP_INTERRUPTED;
            if (r->state != FF_SWEEP_TODO)
                read_metrics(sw, r);
        }
    }
}

/* A rank other than 0: starts the runs rank 0 sends until told to stop. */
static int worker(ff_sweep *sw, const ff_sweep_opts *o, ff_err *err)
{
    int jobs, threads, level = 0, told = 0;
    slots_here(&sw->spec, &jobs, &threads);
    sweep_msg m = {.kind = MSG_HELLO, .value = jobs, .threads = threads};
    ff_parallel_send(0, &m, (int)sizeof m);
    pid_t *pids = calloc((size_t)sw->n_runs, sizeof *pids);
    if (!pids)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    for (int running = 0, quit = 0; !quit || running;) {
        int from, busy = 0;
        if (ff_parallel_poll(&m, (int)sizeof m, &from) > 0) {
            busy = 1;
            if (m.kind == MSG_EXIT)
                quit = 1;
            else if (m.kind == MSG_STOP && m.value > level)
                level = m.value;
            else if (m.kind == MSG_RUN && m.run >= 0 && m.run < sw->n_runs) {
                pids[m.run] = launch(sw, &sw->runs[m.run], o->exe, m.max_steps, m.text, m.value,
                                     threads);
                if (pids[m.run] < 0)
                    send_msg(0, MSG_DONE, m.run, 127, NULL);
                else
                    running++;
            }
        }
        if (*o->stop > level)
            level = *o->stop;
        if (level > told) { /* forward each signal level once */
            told = level;
            for (int i = 0; i < sw->n_runs; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGINT);
        }
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            busy = 1;
            for (int i = 0; i < sw->n_runs; i++)
                if (pids[i] == pid) {
                    pids[i] = 0;
                    running--;
                    send_msg(0, MSG_DONE, i, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                             NULL);
                }
        }
        if (!busy) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    free(pids);
    return *o->stop ? FF_ERR_INTERRUPTED : FF_OK;
}

int ff_sweep_execute(ff_sweep *sw, const ff_sweep_opts *o, ff_err *err)
{
    if (ff_parallel_rank() > 0)
        return worker(sw, o, err);
    loop l = {.sw = sw, .o = o};
    l.tried = calloc((size_t)sw->n_runs, sizeof *l.tried);
    l.table = calloc((size_t)sw->n_runs, sizeof *l.table);
    int jobs;
    slots_here(&sw->spec, &jobs, &l.threads);
    initial_states(sw);
    int n_done = 0, n_todo = 0, n_stopped = 0;
    for (int i = 0; i < sw->n_runs; i++) {
        n_done += sw->runs[i].state == FF_SWEEP_DONE;
        n_stopped += sw->runs[i].state == FF_SWEEP_STOPPED;
        n_todo += sw->runs[i].state != FF_SWEEP_DONE && sw->runs[i].state != FF_SWEEP_STOPPED;
    }
    if (ff_parallel_size() == 1 && jobs > n_todo && n_todo)
        jobs = n_todo;
    if (!l.tried || !l.table || add_slots(&l, 0, jobs)) {
        free(l.tried), free(l.table), free(l.slots);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    }
    if (n_done)
        note(o, "%s%s%d run(s) already finished: skipped", "", "", n_done);
    if (n_stopped)
        note(o, "%s%s%d run(s) stopped by asha earlier: not resumed", "", "", n_stopped);
    if (n_todo) {
        char m[160];
        snprintf(m, sizeof m, "%d run(s) to go, %d at a time, %d BLAS thread(s) each%s", n_todo,
                 jobs, l.threads, ff_parallel_size() > 1 ? " on rank 0 (and the other ranks' "
                 "runs as they join)" : "");
        note(o, "%s%s", m, "", 0);
    }
    char resume[FF_PATH_MAX + 900];
    for (;;) {
        int busy = 0, from;
        sweep_msg m;
        while (ff_parallel_poll(&m, (int)sizeof m, &from) > 0) {
            busy = 1;
            if (m.kind == MSG_HELLO && m.value > 0) {
                add_slots(&l, from, m.value);
                char t[96];
                snprintf(t, sizeof t, "rank %d joins: %d run(s) at a time, %d thread(s) each", from,
                         m.value, m.threads);
                note(o, "%s%s", t, "", 0);
                if (l.level)
                    send_msg(from, MSG_STOP, -1, l.level, NULL);
            } else if (m.kind == MSG_DONE) {
                for (int s = 0; s < l.n_slots; s++)
                    if (l.slots[s].rank == from && l.slots[s].run == m.run) {
                        ended(&l, &l.slots[s], m.value);
                        break;
                    }
            }
        }
        if (*o->stop > l.level) { /* forward each signal once to every run */
            l.level = *o->stop;
            for (int s = 0; s < l.n_slots; s++)
                if (l.slots[s].run >= 0 && l.slots[s].rank == 0 && l.slots[s].pid > 0)
                    kill(l.slots[s].pid, SIGINT);
            send_all(MSG_STOP, l.level, NULL);
        }
        for (int s = 0; s < l.n_slots && !*o->stop; s++) {
            if (l.slots[s].run >= 0)
                continue;
            int promoted_at, i = pick(&l, resume, sizeof resume, &promoted_at);
            if (i < 0)
                break;
            if (promoted_at >= 0) {
                ff_err e;
                write_asha(sw, &e); /* the promotion is final before the run goes on */
            }
            start(&l, &l.slots[s], i, resume, promoted_at);
            busy = 1;
        }
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            busy = 1;
            for (int s = 0; s < l.n_slots; s++)
                if (l.slots[s].rank == 0 && l.slots[s].run >= 0 && l.slots[s].pid == pid) {
                    ended(&l, &l.slots[s], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
                    break;
                }
        }
        if (!l.active && !busy)
            break; /* nothing running, nothing could start */
        if (!busy) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    send_all(MSG_EXIT, 0, NULL);
    int open = 0, interrupted = 0;
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_sweep_state st = sw->runs[i].state;
        open += st == FF_SWEEP_TODO || st == FF_SWEEP_INTERRUPTED;
        interrupted += st == FF_SWEEP_INTERRUPTED;
    }
    if (sw->spec.asha && !*o->stop && !open) { /* the end: the runs still waiting stop here */
        int stopped = 0;
        for (int i = 0; i < sw->n_runs; i++)
            if (sw->runs[i].state == FF_SWEEP_WAITING) {
                sw->runs[i].state = FF_SWEEP_STOPPED;
                stopped++;
            }
        ff_err e;
        write_asha(sw, &e);
        if (stopped)
            note(o, "asha stopped %s%s%d run(s) at their rung (resumable step models kept)", "", "",
                 stopped);
    }
    free(l.tried), free(l.table), free(l.slots);
    int rc = ff_sweep_summarize(sw, NULL, err);
    if (rc)
        return rc;
    if (*o->stop || interrupted)
        return ff_err_set(err, FF_ERR_INTERRUPTED, "sweep interrupted; run the same command again "
                          "to resume it (%s)", sw->dir);
    if (l.failed)
        return ff_err_set(err, FF_ERR_RUNTIME, "%d run(s) failed; see %s/SUMMARY.md", l.failed, sw->dir);
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

/* The main metric: the validation images' goodness error of supervised runs, else their
 * softmax error (data.validation), else the same on the test set (no validation split),
 * else the final loss. */
static int main_metric(const ff_sweep *sw)
{
    static const int order[] = {M_VAL_GOODNESS, M_VAL_SOFTMAX, M_GOODNESS, M_SOFTMAX,
                                M_CLF_LOSS, M_LOSS};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++)
        for (int i = 0; i < sw->n_runs; i++)
            if (isfinite(sw->runs[i].metric[order[k]]))
                return order[k];
    return M_GOODNESS;
}

/* Where a run is or stopped, in words ("stopped by asha at epoch 3 (rung 1)"). */
static const char *outcome(const ff_sweep *sw, const ff_sweep_run *r, char *out, size_t cap)
{
    const ff_asha *a = &sw->spec.sched;
    const int k = r->asha.reached - 1;
    switch (r->state) {
    case FF_SWEEP_DONE:
        snprintf(out, cap, "finished (epoch %d)", final_epochs(&r->cfg));
        break;
    case FF_SWEEP_STOPPED:
        snprintf(out, cap, "stopped by asha at epoch %d (rung %d)", k >= 0 ? a->rung_epoch[k] : 0, k);
        break;
    case FF_SWEEP_WAITING:
        snprintf(out, cap, "waiting at epoch %d (rung %d)", k >= 0 ? a->rung_epoch[k] : 0, k);
        break;
    case FF_SWEEP_FAILED:
        snprintf(out, cap, "failed (exit %d)", r->exit_status);
        break;
    case FF_SWEEP_INTERRUPTED:
        snprintf(out, cap, "interrupted (resumable)");
        break;
    default:
        snprintf(out, cap, "not run yet");
    }
    return out;
}

/* SUMMARY.md's asha section: the rungs and every run's metric at each rung it
 * reached, with where it stopped. */
static void asha_table(const ff_sweep *sw, buf *md)
{
    const ff_asha *a = &sw->spec.sched;
    put(md, "\n## Early stopping (asha)\n\nRungs at epoch");
    for (int k = 0; k < a->n_rungs; k++)
        put(md, "%s %d", k ? "," : "", a->rung_epoch[k]);
    put(md, " of %d, eta %d, metric %s (lower is better). Asynchronous: a run went on past a "
        "rung as soon as it was among the best floor(n/%d) of the n runs that had reached that "
        "rung so far; the others waited there (a step model to resume from) and were stopped "
        "when nothing else could run.\n\n| run | outcome |",
        sw->n_runs ? final_epochs(&sw->runs[0].cfg) : 0, a->eta, a->metric, a->eta);
    for (int k = 0; k < a->n_rungs; k++)
        put(md, " epoch %d |", a->rung_epoch[k]);
    put(md, "\n|---|---|");
    for (int k = 0; k < a->n_rungs; k++)
        put(md, "---|");
    put(md, "\n");
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_sweep_run *r = &sw->runs[i];
        char o[160];
        put(md, "| %s | %s |", r->name, outcome(sw, r, o, sizeof o));
        for (int k = 0; k < a->n_rungs; k++) {
            put(md, " ");
            if (k < r->asha.reached)
                put_num(md, r->asha.metric[k]);
            put(md, "%s |", k < r->asha.promoted ? " (on)" : "");
        }
        put(md, "\n");
    }
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
    int counts[FF_SWEEP_N_STATES] = {0};
    for (int i = 0; i < sw->n_runs; i++)
        counts[sw->runs[i].state]++;
    buf md = {0}, csv = {0};
    put(&md, "# Sweep %s\n\n%d run(s) of `%s` (%d point(s) x %d seed(s)): %d finished, %d failed, "
        "%d interrupted, %d not run yet", sw->spec.name, sw->n_runs, sw->spec.config, sw->n_points,
        sw->spec.n_seeds ? sw->spec.n_seeds : 1, counts[FF_SWEEP_DONE], counts[FF_SWEEP_FAILED],
        counts[FF_SWEEP_INTERRUPTED], counts[FF_SWEEP_TODO]);
    if (sw->spec.asha)
        put(&md, ", %d stopped by asha, %d waiting at a rung", counts[FF_SWEEP_STOPPED],
            counts[FF_SWEEP_WAITING]);
    put(&md, ". Sweep directory: `%s`\n\n"
        "Sorted by the mean of %s over seeds; std is the sample standard deviation (n-1) over "
        "the finished runs of a point (0 for one run).\n\n| rank | point | runs |",
        sw->dir, ff_sweep_metric_names[main_m]);
    put(&csv, "point");
    for (int a = 0; a < sw->spec.n_axes; a++)
        put(&csv, ",%s", sw->spec.axes[a].key);
    put(&csv, ",runs,finished,failed");
    if (sw->spec.asha)
        put(&csv, ",stopped by asha,asha");
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
        int runs = 0, done = 0, bad = 0, stopped = 0;
        for (int i = 0; i < sw->n_runs; i++)
            if (sw->runs[i].point == p) {
                runs++;
                done += sw->runs[i].state == FF_SWEEP_DONE;
                bad += sw->runs[i].state == FF_SWEEP_FAILED;
                stopped += sw->runs[i].state == FF_SWEEP_STOPPED;
            }
        put(&md, "| %d | %s | %d/%d%s", rank + 1, r0->point_name[0] ? r0->point_name : "(base)",
            done, runs, bad ? " (failed)" : "");
        if (stopped)
            put(&md, " (%d stopped by asha)", stopped);
        put(&md, " |");
        put(&csv, "\"%s\"", r0->point_name);
        for (int a = 0; a < sw->spec.n_axes; a++) { /* the value: the point name's own text */
            const char *set = r0->sets[sw->spec.n_sets + a], *eq = strchr(set, '=');
            put(&csv, ",\"%s\"", eq ? eq + 1 : "");
        }
        put(&csv, ",%d,%d,%d", runs, done, bad);
        if (sw->spec.asha) { /* where each run of the point stopped */
            put(&csv, ",%d,\"", stopped);
            for (int i = 0, first_run = 1; i < sw->n_runs; i++)
                if (sw->runs[i].point == p) {
                    char o[160];
                    put(&csv, "%s%s: %s", first_run ? "" : "; ", sw->runs[i].name,
                        outcome(sw, &sw->runs[i], o, sizeof o));
                    first_run = 0;
                }
            put(&csv, "\"");
        }
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
    if (sw->spec.asha)
        asha_table(sw, &md);
    if (sw->n_points && !isnan(stats_of(sw, order[0], main_m).mean)) {
        const ff_sweep_run *b = &sw->runs[first[order[0]]];
        put(&md, "\nBest point (by %s): **%s**.", ff_sweep_metric_names[main_m],
            b->point_name[0] ? b->point_name : "(base)");
        if (main_m == M_GOODNESS || main_m == M_SOFTMAX)
            put(&md, " Chosen on the test set (the runs hold out no validation split): its test "
                "error is an optimistic estimate; set data.validation to choose on held-out "
                "training images and read the test set once.");
        put(&md, " Run it alone with:\n\n    %s %s", sw->prog[0] ? sw->prog : "ffrun",
            sw->spec.config);
        for (int i = 0; i < b->n_sets; i++)
            put(&md, " --set '%s'", b->sets[i]);
        put(&md, "\n");
    }
    char path[FF_PATH_MAX + 300];
    int rc = md.p && csv.p ? FF_OK : ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/SUMMARY.md", sw->dir);
    if (!rc)
        rc = ff_fs_write_file_atomic(path, md.p, md.n, err);
    snprintf(path, sizeof path, "%s/summary.csv", sw->dir);
    if (!rc)
        rc = ff_fs_write_file_atomic(path, csv.p, csv.n, err);
    if (text && !rc) {
        *text = md.p;
        md.p = NULL;
    }
    free(md.p), free(csv.p), free(order), free(first);
    return rc;
}
