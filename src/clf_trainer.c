/* clf_trainer.c - the classifier on a frozen backbone, batch by batch
 * (include/ff/clf_trainer.h). */
#include "ff/clf_trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/embed.h"
#include "ff/optim.h"
#include "ff/run.h"

/* Loads the backbone model and copies its layers into t->cfg. */
static int load_backbone(ff_clf_trainer *t, ff_checkpoint *bb, ff_err *err)
{
    const ff_config *cfg = &t->cfg;
    int rc;
    if (cfg->checkpoint.backbone[0])
        snprintf(t->backbone_path, sizeof t->backbone_path, "%s", cfg->checkpoint.backbone);
    else if ((rc = ff_checkpoint_find_newest(cfg->checkpoint.dir, "unsupervised_backbone_",
                                             t->backbone_path, sizeof t->backbone_path, err)))
        return ff_err_prefix(err, "unsupervised_clf needs a trained backbone (set "
                                  "checkpoint.backbone or train configs/unsupervised_backbone.yaml)");
    if ((rc = ff_checkpoint_load(t->backbone_path, bb, err)))
        return rc;
    if (bb->cfg.mode != FF_MODE_UNSUP_BACKBONE)
        return ff_err_set(err, FF_ERR_USAGE, "%s is a %s model, not an unsupervised_backbone",
                          t->backbone_path, ff_config_mode_name(bb->cfg.mode));
    t->cfg.model = bb->cfg.model;
    /* what the backbone's inputs mean: its data format and input scaling (data.dir and
     * the limits stay the classifier config's) */
    t->cfg.data.format = bb->cfg.data.format;
    t->cfg.data.normalize = bb->cfg.data.normalize;
    t->backbone_epoch = bb->epoch;
    return FF_OK;
}

static int alloc_buffers(ff_clf_trainer *t, int max_batch, ff_err *err)
{
    t->order = malloc(sizeof(int) * (size_t)t->train.n);
    t->x = malloc(sizeof(float) * (size_t)max_batch * (size_t)ff_shape_dim(t->net.input));
    const int augment = t->cfg.train.jitter > 0 || t->cfg.train.flip;
    if (augment)
        t->aug = malloc(sizeof(ff_aug) * (size_t)t->batch);
    if (!t->order || !t->x || (augment && !t->aug))
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for the classifier run");
    ff_run_order_draw(&t->rng, t->order, t->train.n, 0);
    return FF_OK;
}

/* Puts the trainer where a classifier model left off. */
static int restore(ff_clf_trainer *t, const ff_checkpoint *ck, ff_err *err)
{
    if (ck->n_state != ff_optim_state_len(&t->ro.opt))
        return ff_err_set(err, FF_ERR_USAGE, "cannot resume: the model's classifier has %llu "
                          "optimiser values, the config builds %zu",
                          (unsigned long long)ck->n_state, ff_optim_state_len(&t->ro.opt));
    if (ck->epoch < 0 || ck->epoch > t->cfg.clf.epochs || ck->step < 0 || ck->opt_t < 0 ||
        ck->batch < 0 || (ck->batch > 0 && (ck->n_order != t->train.n || ck->batch >= t->n_batches)))
        return ff_err_set(err, FF_ERR_USAGE, "cannot resume: the model is at epoch %d, batch %d "
                          "of a classifier run of %d epochs of %d batches over %d images",
                          ck->epoch, ck->batch, t->cfg.clf.epochs, t->n_batches, t->train.n);
    if (ck->n_order == t->train.n) {
        for (int i = 0; i < t->train.n; i++)
            if (ck->order[i] < 0 || ck->order[i] >= t->train.n)
                return ff_err_set(err, FF_ERR_USAGE, "cannot resume: sample order entry %d is "
                                  "out of range", ck->order[i]);
        memcpy(t->order, ck->order, sizeof(int) * (size_t)t->train.n);
    }
    memcpy(t->ro.params, ck->params + t->net.n_params, sizeof(float) * t->ro.n_params);
    memcpy(t->ro.opt.state, ck->state, sizeof(float) * ck->n_state);
    t->ro.opt.t = ck->opt_t;
    t->rng = ck->rng;
    t->step = ck->step;
    t->epoch = ck->epoch;
    t->batch_in_epoch = ck->batch;
    return FF_OK;
}

int ff_clf_trainer_create(ff_clf_trainer *t, const ff_config *cfg, const ff_checkpoint *resume,
                          ff_info_fn info, void *info_ctx, ff_err *err)
{
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    ff_checkpoint bb = {0};
    const float *backbone_params;
    uint64_t n_backbone;
    int rc = FF_OK;
    ff_run_fp_fast_mode();
    if (resume) { /* the model file holds the backbone's layers and parameters */
        backbone_params = resume->params;
        n_backbone = resume->n_params;
    } else {
        if ((rc = load_backbone(t, &bb, err)))
            goto done;
        backbone_params = bb.params;
        n_backbone = bb.n_params;
        if (info) {
            char msg[1200];
            snprintf(msg, sizeof msg, "backbone: %s (epoch %d, %d layers)", t->backbone_path,
                     t->backbone_epoch, t->cfg.model.n_layers);
            info(info_ctx, msg);
        }
    }
    cfg = &t->cfg;
    ff_rng_seed(&t->rng, cfg->seed);
    ff_data_info dinfo;
    if ((rc = ff_data_open(cfg, &t->train, &t->val, &t->test, &dinfo, err)))
        goto done;
    t->split = dinfo.split;
    ff_data_note(cfg, &t->train, &dinfo, info, info_ctx);
    t->batch = ff_data_batch_of(cfg->train.batch_size, t->train.n);
    t->n_batches = ff_data_batches_per_epoch(t->train.n, t->batch, 1);
    t->total_steps = (int64_t)t->n_batches * cfg->clf.epochs;
    const int max_batch = t->batch > 1000 ? t->batch : 1000;
    if ((rc = ff_net_build(&t->net, cfg, t->train.shape, max_batch, &t->rng, err)))
        goto done;
    const ff_optim_params head_opt = ff_readout_optim_params(cfg);
    if ((rc = ff_readout_layers(cfg, &t->net, t->layers, &t->n_layers, err)) ||
        (rc = ff_readout_init(&t->ro, ff_readout_feature_dim(&t->net, t->layers, t->n_layers),
                              FF_NUM_CLASSES, max_batch, &head_opt, err)) ||
        (rc = alloc_buffers(t, max_batch, err)))
        goto done;
    const uint64_t expect = resume ? t->net.n_params + t->ro.n_params : t->net.n_params;
    if (n_backbone != expect) {
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: %llu parameters, its config builds %llu",
                        resume ? "the classifier model" : t->backbone_path,
                        (unsigned long long)n_backbone, (unsigned long long)expect);
        goto done;
    }
    memcpy(t->net.params, backbone_params, sizeof(float) * t->net.n_params);
    if (resume)
        rc = restore(t, resume, err);
done:
    ff_checkpoint_free(&bb);
    return rc;
}

float ff_clf_trainer_lr(const ff_clf_trainer *t, int epoch)
{
    return t->cfg.clf.lr * ff_optim_schedule_scale(&t->cfg, epoch, t->cfg.clf.epochs);
}

float ff_clf_trainer_next(ff_clf_trainer *t, int *images, int *epoch_done)
{
    if (t->batch_in_epoch == 0)
        ff_run_order_draw(&t->rng, t->order, t->train.n, 1);
    const int start = t->batch_in_epoch * t->batch;
    const int m = t->train.n - start < t->batch ? t->train.n - start : t->batch;
    if (t->aug) /* train.jitter, train.flip: the batch's images augmented afresh */
        ff_embed_draw_aug(&t->rng, t->cfg.train.jitter, t->cfg.train.flip, m, t->aug);
    ff_readout_input in = {.ds = &t->train, .neutral = 0, .aug = t->aug};
    float loss = ff_readout_train_epoch(&t->ro, &t->net, t->layers, t->n_layers, &in,
                                        t->order + start, m, t->batch,
                                        ff_clf_trainer_lr(t, t->epoch), t->x);
    t->step++;
    *images = m;
    *epoch_done = ++t->batch_in_epoch == t->n_batches;
    if (*epoch_done) {
        t->batch_in_epoch = 0;
        t->epoch++;
    }
    return loss;
}

double ff_clf_trainer_evaluate(ff_clf_trainer *t, ff_eval_set set, int64_t *confusion)
{
    const ff_dataset *ds = set == FF_SET_VAL ? &t->val : &t->test;
    if (ds->n == 0)
        return -1.0;
    ff_readout_input te = {.ds = ds, .neutral = 0};
    return ff_readout_error(&t->ro, &t->net, t->layers, t->n_layers, &te, 0, t->x, confusion);
}

int ff_clf_trainer_save(const ff_clf_trainer *t, const char *path, const char *run_dir,
                        ff_err *err)
{
    const size_t n = t->net.n_params + t->ro.n_params;
    float *all = malloc(sizeof(float) * n);
    if (!all)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory saving the classifier");
    memcpy(all, t->net.params, sizeof(float) * t->net.n_params);
    memcpy(all + t->net.n_params, t->ro.params, sizeof(float) * t->ro.n_params);
    ff_net whole = {.n_params = n, .params = all}; /* parameters only, no aux state */
    ff_checkpoint_state st = {.cfg = &t->cfg, .net = &whole, .opt = &t->ro.opt, .rng = &t->rng,
                              .epoch = t->epoch, .batch = t->batch_in_epoch, .step = t->step,
                              .run_dir = run_dir ? run_dir : "", .order = t->order,
                              .n_order = t->train.n, .record = t->record};
    int rc = ff_checkpoint_save(path, &st, err);
    free(all);
    return rc;
}

void ff_clf_trainer_free(ff_clf_trainer *t)
{
    free(t->order);
    free(t->aug);
    free(t->x);
    ff_readout_free(&t->ro);
    ff_net_free(&t->net);
    ff_dataset_free(&t->train);
    ff_dataset_free(&t->val);
    ff_dataset_free(&t->test);
    memset(t, 0, sizeof *t);
}
