/* run.c - the plumbing every training mode shares (include/ff/run.h): run
 * directories, model names claimed per run, the epoch's order, the clock and
 * the floating-point mode. */
#include "ff/run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "ff/checkpoint.h"
#include "ff/fs.h"

double ff_run_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ff_run_fp_fast_mode(void)
{
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) + DAZ (bit 6) */
#endif
}

void ff_run_order_draw(ff_rng *rng, int *order, int n, int shuffle)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (shuffle)
        ff_rng_shuffle(rng, order, n);
}

int ff_run_dir_create(const ff_config *cfg, char *out, size_t cap, ff_err *err)
{
    char root[FF_PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/%s", cfg->log.dir, ff_config_mode_name(cfg->mode));
    return ff_fs_make_run_dir(root, cfg->name, time(NULL), out, cap, err);
}

int ff_run_dir_open(const ff_config *cfg, const char *exact, char *out, size_t cap, ff_err *err)
{
    if (!exact)
        return ff_run_dir_create(cfg, out, cap, err);
    if (!exact[0] || (size_t)snprintf(out, cap, "%s", exact) >= cap)
        return ff_err_set(err, FF_ERR_USAGE, "run directory '%.200s': empty or too long", exact);
    return ff_fs_mkdir_p(out, err);
}

/* 1 if the claim file at path names run_dir (a claim this run already holds). */
static int claim_is_ours(const char *path, const char *run_dir)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ff_err err;
    if (ff_fs_read_file(path, 4096, &buf, &len, &err) != FF_OK)
        return 0;
    char *text = (char *)buf, *nl = strchr(text, '\n'); /* ff_fs_read_file ends it with a NUL */
    if (nl)
        *nl = '\0';
    int ours = strcmp(text, run_dir) == 0;
    free(buf);
    return ours;
}

int ff_run_claim_prefix(const ff_config *cfg, const char *run_dir, char *prefix, size_t cap,
                        ff_err *err)
{
    int rc = ff_fs_mkdir_p(cfg->checkpoint.dir, err);
    if (rc)
        return ff_err_prefix(err, "checkpoint.dir");
    const char *run = strrchr(run_dir, '/');
    run = run ? run + 1 : run_dir;
    for (int n = 1; n < 1000; n++) {
        char suffix[16] = "", path[FF_PATH_MAX + 1200];
        if (n > 1)
            snprintf(suffix, sizeof suffix, "-%d", n);
        int len = snprintf(prefix, cap, "%s_%s%s", ff_config_mode_name(cfg->mode), run, suffix);
        if (len < 0 || (size_t)len >= cap ||
            snprintf(path, sizeof path, "%s/%s.run", cfg->checkpoint.dir, prefix) >=
                (int)sizeof path)
            return ff_err_set(err, FF_ERR_USAGE, "model names too long under %s",
                              cfg->checkpoint.dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            int bad = ff_fs_write_all(fd, run_dir, strlen(run_dir)) || ff_fs_write_all(fd, "\n", 1);
            int e = errno;
            if (close(fd) != 0 && !bad) {
                bad = 1;
                e = errno;
            }
            if (bad) {
                unlink(path);
                return ff_err_set(err, FF_ERR_IO, "cannot write %s: %s", path, strerror(e));
            }
            return FF_OK;
        }
        if (errno != EEXIST)
            return ff_err_set(err, FF_ERR_IO, "cannot create %s (checkpoint.dir): %s", path,
                              strerror(errno));
        if (claim_is_ours(path, run_dir))
            return FF_OK;
    }
    return ff_err_set(err, FF_ERR_IO, "too many runs named %s in %s", run, cfg->checkpoint.dir);
}

/* 1 if s (length n) is `word` followed by at least `digits` decimal digits */
static int is_word_digits(const char *s, size_t n, const char *word, size_t digits)
{
    size_t w = strlen(word);
    if (n < w + digits || strncmp(s, word, w) != 0)
        return 0;
    for (size_t i = w; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int ff_run_prefix_of_model(const char *model_path, char *prefix, size_t cap, ff_err *err)
{
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    size_t len = strlen(base);
    const char *us = NULL;
    if (len > 4 && !strcmp(base + len - 4, ".ffm")) {
        for (const char *p = base + len - 4; p > base; p--)
            if (p[-1] == '_') {
                us = p - 1;
                break;
            }
    }
    if (us) {
        const char *what = us + 1;
        size_t n = (size_t)(base + len - 4 - what);
        if (!(n == 4 && !strncmp(what, "best", 4)) && !is_word_digits(what, n, "epoch", 3) &&
            !is_word_digits(what, n, "step", 7))
            us = NULL;
    }
    if (!us || us == base)
        return ff_err_set(err, FF_ERR_USAGE,
                          "%s: not a model name ffrun writes (<prefix>_best.ffm, "
                          "_epochNNN.ffm or _stepNNNNNNN.ffm); cannot tell which run it continues",
                          model_path);
    if ((size_t)(us - base) >= cap)
        return ff_err_set(err, FF_ERR_USAGE, "%s: name too long", model_path);
    memcpy(prefix, base, (size_t)(us - base));
    prefix[us - base] = '\0';
    return FF_OK;
}

int ff_run_model_path(const ff_config *cfg, const char *prefix, const char *what, char *out,
                      size_t cap, ff_err *err)
{
    int len = snprintf(out, cap, "%s/%s_%s.ffm", cfg->checkpoint.dir, prefix, what);
    if (len < 0 || (size_t)len >= cap)
        return ff_err_set(err, FF_ERR_USAGE, "model path too long under %s", cfg->checkpoint.dir);
    return FF_OK;
}

void ff_run_clean_stale(const ff_config *cfg, void (*info)(void *ctx, const char *msg),
                        void *ctx)
{
    int removed = 0;
    ff_err err;
    if (ff_fs_clean_stale_tmp(cfg->checkpoint.dir, &removed, &err) != FF_OK) {
        if (info)
            info(ctx, err.msg);
        return;
    }
    if (removed > 0 && info) {
        char msg[FF_PATH_MAX + 160];
        snprintf(msg, sizeof msg, "removed %d temporary model file(s) left in %s by killed runs",
                 removed, cfg->checkpoint.dir);
        info(ctx, msg);
    }
}

int ff_run_open(ff_run_files *f, const ff_config *cfg, const ff_checkpoint *resume,
                const char *resume_path, const char *exact_run_dir,
                void (*info)(void *ctx, const char *msg), void *ctx, ff_err *err)
{
    int rc;
    if (resume) {
        snprintf(f->run_dir, sizeof f->run_dir, "%s", resume->run_dir);
        /* the prefix in the model's name; a renamed model gets the run's claim back
         * (or a new one) */
        ff_err perr;
        rc = ff_fs_mkdir_p(cfg->checkpoint.dir, err);
        if (!rc && ff_run_prefix_of_model(resume_path ? resume_path : "", f->prefix,
                                          sizeof f->prefix, &perr) != FF_OK)
            rc = ff_run_claim_prefix(cfg, f->run_dir, f->prefix, sizeof f->prefix, err);
        if (!rc)
            rc = ff_summary_open(&f->tb, f->run_dir, err);
        if (!rc)
            rc = ff_summary_session_resume(f->tb, resume->step, err);
    } else {
        rc = ff_run_dir_open(cfg, exact_run_dir, f->run_dir, sizeof f->run_dir, err);
        if (!rc)
            rc = ff_run_claim_prefix(cfg, f->run_dir, f->prefix, sizeof f->prefix, err);
        if (!rc)
            rc = ff_summary_open(&f->tb, f->run_dir, err);
        if (!rc) /* the run's first START: a resume's later START purges what it redoes */
            rc = ff_summary_session_start(f->tb, 0, err);
    }
    if (!rc)
        ff_run_clean_stale(cfg, info, ctx);
    return rc;
}
