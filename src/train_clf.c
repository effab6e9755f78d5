/* train_clf.c - mode unsupervised_clf: a linear softmax classifier trained on
 * the normalised activities of a frozen, pretrained backbone (include/ff/train.h).
 *
 * The backbone is checkpoint.backbone, or the newest unsupervised_backbone_*.ffm
 * in checkpoint.dir by modification time. Its architecture travels inside its
 * model file, so the classifier config names no layers. The saved classifier
 * model holds the resolved config (with the backbone's layers copied in) and
 * the backbone parameters followed by the head's W [10, features] and b [10]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>

#include "ff/checkpoint.h"
#include "ff/data.h"
#include "ff/embed.h"
#include "ff/fsutil.h"
#include "ff/net.h"
#include "ff/optim.h"
#include "ff/readout.h"
#include "ff/rng.h"
#include "ff/summary.h"
#include "ff/train.h"

typedef struct clf_run {
    ff_config cfg;                /* the clf config with the backbone's layers */
    ff_checkpoint backbone;
    char backbone_path[1024];
    ff_dataset train, test;
    ff_net net;
    ff_readout ro;
    int layers[FF_MAX_LAYERS], n_layers;
    ff_rng rng;
    int *order;
    int8_t *shifts;               /* [2 * train.n] jitter shifts of an epoch (NULL: no jitter) */
    float *x;
    ff_summary_writer *tb;
} clf_run;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int load_backbone(clf_run *c, const ff_config *cfg, ff_err *err)
{
    int rc;
    if (cfg->checkpoint.backbone[0])
        snprintf(c->backbone_path, sizeof c->backbone_path, "%s", cfg->checkpoint.backbone);
    else if ((rc = ff_checkpoint_find_newest(cfg->checkpoint.dir, "unsupervised_backbone_",
                                             c->backbone_path, sizeof c->backbone_path, err)))
        return ff_err_prefix(err, "unsupervised_clf needs a trained backbone (set "
                                  "checkpoint.backbone or train configs/unsupervised_backbone.yaml)");
    if ((rc = ff_checkpoint_load(c->backbone_path, &c->backbone, err)))
        return rc;
    if (c->backbone.cfg.mode != FF_MODE_UNSUP_BACKBONE)
        return ff_err_set(err, FF_ERR_USAGE, "%s is a %s model, not an unsupervised_backbone",
                          c->backbone_path, ff_mode_name(c->backbone.cfg.mode));
    c->cfg = *cfg;
    c->cfg.model = c->backbone.cfg.model;
    return FF_OK;
}

static int setup(clf_run *c, const ff_config *cfg, const ff_train_opts *opts, ff_err *err)
{
    int rc = load_backbone(c, cfg, err);
    if (rc)
        return rc;
    if (opts && opts->info) {
        char msg[1200];
        snprintf(msg, sizeof msg, "backbone: %s (epoch %d, %d layers)", c->backbone_path,
                 c->backbone.epoch, c->cfg.model.n_layers);
        opts->info(opts->progress_ctx, msg);
    }
    ff_rng_seed(&c->rng, cfg->seed);
    if ((rc = ff_dataset_load(&c->train, cfg->data.dir, "train", cfg->data.train_limit, err)) ||
        (rc = ff_dataset_load(&c->test, cfg->data.dir, "t10k", cfg->data.test_limit, err)))
        return rc;
    const int max_batch = cfg->train.batch_size > 1000 ? cfg->train.batch_size : 1000;
    if ((rc = ff_net_build(&c->net, &c->cfg, (ff_shape){1, c->train.rows, c->train.cols},
                           max_batch, &c->rng, err)))
        return rc;
    if (c->net.n_params != c->backbone.n_params)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: %llu parameters, its config builds %zu",
                          c->backbone_path, (unsigned long long)c->backbone.n_params,
                          c->net.n_params);
    memcpy(c->net.params, c->backbone.params, sizeof(float) * c->net.n_params);
    if ((rc = ff_readout_layers(&c->cfg, &c->net, c->layers, &c->n_layers, err)) ||
        (rc = ff_readout_init(&c->ro, ff_readout_feature_dim(&c->net, c->layers, c->n_layers),
                              FF_NUM_CLASSES, max_batch, err)))
        return rc;
    c->order = malloc(sizeof(int) * (size_t)c->train.n);
    c->x = malloc(sizeof(float) * (size_t)max_batch * (size_t)ff_shape_dim(c->net.input));
    if (cfg->train.jitter > 0)
        c->shifts = malloc(2 * (size_t)c->train.n);
    if (!c->order || !c->x || (cfg->train.jitter > 0 && !c->shifts))
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for the classifier run");
    return FF_OK;
}

static void teardown(clf_run *c)
{
    free(c->order);
    free(c->shifts);
    free(c->x);
    ff_readout_free(&c->ro);
    ff_net_free(&c->net);
    ff_dataset_free(&c->train);
    ff_dataset_free(&c->test);
    ff_checkpoint_free(&c->backbone);
}

static int open_run(clf_run *c, ff_train_result *res, ff_err *err)
{
    char root[FF_PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/%s", c->cfg.log.dir, ff_mode_name(c->cfg.mode));
    int rc = ff_make_run_dir(root, c->cfg.name, time(NULL), res->run_dir, sizeof res->run_dir,
                             err);
    if (!rc)
        rc = ff_summary_open(&c->tb, res->run_dir, err);
    if (rc)
        return rc;
    snprintf(res->event_file, sizeof res->event_file, "%s", ff_summary_path(c->tb));
    size_t cap = 1 << 16;
    char *md = malloc(cap);
    if (!md)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    size_t n = (size_t)snprintf(md, cap, "backbone: `%s`\n\n", c->backbone_path);
    ff_config_to_markdown(&c->cfg, md + n, cap - n);
    rc = ff_summary_text(c->tb, "config", 0, md, err);
    free(md);
    static const char *const metrics[] = {"test/error_softmax", "clf/loss"};
    if (!rc)
        rc = ff_summary_hparams_experiment(c->tb, &c->cfg, metrics, 2, err);
    if (!rc)
        rc = ff_summary_hparams_start(c->tb, &c->cfg, (double)time(NULL), err);
    return rc;
}

/* The classifier's learning rate in epoch `epoch` (1-based): clf.lr under the
 * config's schedule, counted in classifier epochs. */
static float clf_lr(const ff_config *cfg, int epoch)
{
    return cfg->clf.lr * ff_schedule_scale(cfg, epoch - 1, cfg->clf.epochs);
}

/* The classifier model: backbone parameters then the head's W and b. */
static int save_model(clf_run *c, ff_train_result *res, int epoch, ff_err *err)
{
    int rc = ff_mkdir_p(c->cfg.checkpoint.dir, err);
    if (rc)
        return rc;
    const char *run = strrchr(res->run_dir, '/');
    run = run ? run + 1 : res->run_dir;
    if ((size_t)snprintf(res->model_path, sizeof res->model_path, "%s/%s_%s_epoch%03d.ffm",
                         c->cfg.checkpoint.dir, ff_mode_name(c->cfg.mode), run, epoch) >=
        sizeof res->model_path)
        return ff_err_set(err, FF_ERR_USAGE, "model path too long under %s", c->cfg.checkpoint.dir);
    const size_t n = c->net.n_params + c->ro.n_params;
    float *all = malloc(sizeof(float) * n);
    if (!all)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory saving the classifier");
    memcpy(all, c->net.params, sizeof(float) * c->net.n_params);
    memcpy(all + c->net.n_params, c->ro.params, sizeof(float) * c->ro.n_params);
    ff_net whole = {.n_params = n, .params = all};  /* parameters only, no aux state */
    ff_checkpoint_state st = {.cfg = &c->cfg, .net = &whole, .opt = &c->ro.opt, .rng = &c->rng,
                              .epoch = epoch, .step = epoch, .run_dir = res->run_dir};
    rc = ff_checkpoint_save(res->model_path, &st, err);
    free(all);
    return rc;
}

static int run_epochs(clf_run *c, const ff_train_opts *opts, ff_train_result *res, ff_err *err)
{
    const ff_config *cfg = &c->cfg;
    ff_readout_input tr = {.ds = &c->train, .neutral = 0}, te = {.ds = &c->test, .neutral = 0};
    int rc = FF_OK;
    for (int epoch = 1; epoch <= cfg->clf.epochs && !rc; epoch++) {
        if (opts && opts->stop && *opts->stop)
            return FF_ERR_INTERRUPTED;
        const double t0 = now_seconds();
        for (int i = 0; i < c->train.n; i++)
            c->order[i] = i;
        ff_rng_shuffle(&c->rng, c->order, c->train.n);
        if (c->shifts) /* train.jitter: the images shifted afresh each epoch */
            ff_draw_shifts(&c->rng, cfg->train.jitter, c->train.n, c->shifts);
        tr.shifts = c->shifts;
        const float lr = clf_lr(cfg, epoch);
        float loss = ff_readout_train_epoch(&c->ro, &c->net, c->layers, c->n_layers, &tr,
                                            c->order, c->train.n, cfg->train.batch_size,
                                            lr, c->x);
        res->train_seconds += now_seconds() - t0;
        double e = ff_readout_error(&c->ro, &c->net, c->layers, c->n_layers, &te, 0, c->x, NULL);
        res->final_error = res->final_error_softmax = e;
        res->epochs_done = epoch;
        if (res->best_error < 0 || e < res->best_error) {
            res->best_error = e;
            res->best_epoch = epoch;
        }
        rc = ff_summary_scalar(c->tb, "clf/loss", epoch, loss, err);
        if (!rc)
            rc = ff_summary_scalar(c->tb, "clf/lr", epoch, lr, err);
        if (!rc)
            rc = ff_summary_scalar(c->tb, "test/error_softmax", epoch, (float)(e * 100.0), err);
        if (!rc)
            rc = ff_summary_flush(c->tb, err);
        if (opts && opts->progress) {
            double el = now_seconds() - t0;
            ff_progress p = {.epoch = epoch, .epochs = cfg->clf.epochs, .epoch_done = 1,
                             .loss = loss, .epoch_seconds = el, .step = epoch,
                             .images_per_sec = el > 0 ? c->train.n / el : 0, .evaluated = 1,
                             .test_error = -1.0, .test_error_softmax = e};
            opts->progress(opts->progress_ctx, &p);
        }
    }
    return rc;
}

int ff_train_clf(const ff_config *cfg, const ff_train_opts *opts, ff_train_result *res,
                 ff_err *err)
{
    clf_run *c = calloc(1, sizeof *c);
    if (!c)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    const double start = now_seconds();
    _mm_setcsr(_mm_getcsr() | 0x8040);
    int rc = setup(c, cfg, opts, err);
    if (!rc)
        rc = open_run(c, res, err);
    if (!rc)
        rc = run_epochs(c, opts, res, err);
    if (rc == FF_ERR_INTERRUPTED) {
        res->interrupted = 1;
        ff_err_set(err, FF_ERR_INTERRUPTED, "interrupted after %d classifier epoch(s)",
                   res->epochs_done);
    }
    if ((!rc || rc == FF_ERR_INTERRUPTED) && res->epochs_done > 0) {
        ff_err serr;
        if (save_model(c, res, res->epochs_done, &serr)) {
            *err = serr;
            rc = serr.code;
        }
    }
    if (c->tb) {
        ff_err cerr;
        int erc = ff_summary_hparams_end(c->tb, rc ? 2 : 1, res->epochs_done, &cerr);
        int crc = ff_summary_close(c->tb, erc ? NULL : &cerr);
        if (!rc && (erc || crc)) {
            *err = cerr;
            rc = erc ? erc : crc;
        }
    }
    res->seconds = now_seconds() - start;
    teardown(c);
    free(c);
    return rc;
}
