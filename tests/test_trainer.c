/* test_trainer.c - the trainer library (include/ff/trainer.h, clf_trainer.h, run.h)
 * driven batch by batch agrees bit for bit with a whole run (ff_train, what `ffrun`
 * calls), with itself across save and restore, and with explicit-index steps; a
 * diverging run stops and never saves a non-finite model; two runs never share
 * model names. Runs from the project root (data/mnist). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ff/checkpoint.h"
#include "ff/clf_trainer.h"
#include "ff/run.h"
#include "ff/train.h"
#include "ff/trainer.h"
#include "test.h"

static char tmpdir[256];

/* configs/quick.yaml, small and on the shipped headline path (joint, pairwise, hard
 * negatives, jitter), writing under tmpdir/<tag> */
static void quick_config(ff_config *cfg, const char *tag)
{
    ff_err err;
    CHECK(ff_config_load(cfg, "configs/quick.yaml", &err) == FF_OK);
    const char *sets[] = {"data.train_limit=500", "data.test_limit=200", "train.epochs=2",
                          "train.passes=joint", "train.loss=pairwise", "train.negatives=hard",
                          "train.jitter=1", "log.histograms=0", "log.images=0"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(cfg, sets[i], &err) == FF_OK);
    snprintf(cfg->log.dir, sizeof cfg->log.dir, "%s/%s/runs", tmpdir, tag);
    snprintf(cfg->checkpoint.dir, sizeof cfg->checkpoint.dir, "%s/%s/models", tmpdir, tag);
    snprintf(cfg->data.cache, sizeof cfg->data.cache, "%s/cache", tmpdir);
    CHECK(ff_config_validate(cfg, &err) == FF_OK);
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, sizeof(float) * n) == 0;
}

/* t saved as <tmpdir>/<name>.ffm and loaded back into ck */
static void save_and_load(const ff_trainer *t, const char *name, ff_checkpoint *ck)
{
    char path[512];
    ff_err err;
    snprintf(path, sizeof path, "%s/%s.ffm", tmpdir, name);
    CHECK(ff_trainer_save(t, path, "somewhere", &err) == FF_OK);
    CHECK(ff_checkpoint_load(path, ck, &err) == FF_OK);
}

/* a trainer made from ck's config and restored from it (ffrun --resume) */
static void create_restored(ff_trainer *b, const ff_checkpoint *ck)
{
    ff_err err;
    CHECK(ff_trainer_create(b, &ck->cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_restore(b, ck, NULL, NULL, &err) == FF_OK);
}

static void check_same_state(const ff_trainer *t, const ff_checkpoint *ck)
{
    CHECK(ck->n_params == t->net.n_params);
    CHECK(ck->n_params == t->net.n_params && same_floats(ck->params, t->net.params, t->net.n_params));
    CHECK(ck->n_state == ff_optim_state_len(&t->opt) &&
          same_floats(ck->state, t->opt.state, ff_optim_state_len(&t->opt)));
    CHECK(ck->n_head == t->ro.n_params && same_floats(ck->head, t->ro.params, t->ro.n_params));
    CHECK(memcmp(&ck->rng, &t->rng, sizeof t->rng) == 0);
    CHECK(ck->step == t->step);
    CHECK(ck->epoch == t->epoch);
}

/* ff_trainer_next to the end, evaluating after each epoch as ffrun does */
static void run_to_end(ff_trainer *t)
{
    ff_step_stats st;
    while (t->epoch < t->cfg.train.epochs)
        if (ff_trainer_next(t, &st)) {
            ff_eval_result ev;
            ff_trainer_evaluate(t, t->epoch, FF_EVAL_TEST, &ev);
            CHECK(ev.test.error_goodness >= 0.0 && ev.test.error_goodness <= 1.0);
        }
}

static void test_api_matches_whole_run(void)
{
    ff_config cfg;
    quick_config(&cfg, "whole");
    ff_train_result res;
    ff_err err;
    CHECK(ff_train(&cfg, NULL, &res, &err) == FF_OK);
    CHECK(res.started && res.epochs_done == 2);
    ff_checkpoint ck = {0};
    CHECK(ff_checkpoint_load(res.model_path, &ck, &err) == FF_OK);

    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(t.n_batches == 500 / 50);
    run_to_end(&t);
    CHECK(t.step == 2 * t.n_batches);
    check_same_state(&t, &ck);
    ff_eval_result ev;
    ff_trainer_evaluate(&t, t.epoch, FF_EVAL_TEST, &ev);
    CHECK_NEAR(ev.test.error_goodness, res.final_error, 1e-12);
    CHECK_NEAR(ev.test.error_softmax, res.final_error_softmax, 1e-12);
    ff_trainer_free(&t);
    ff_checkpoint_free(&ck);
}

/* ff_trainer_next is ff_trainer_step over the epoch's order */
static void test_next_is_step_over_order(void)
{
    ff_config cfg;
    quick_config(&cfg, "steps");
    ff_err err;
    ff_trainer a, b;
    CHECK(ff_trainer_create(&a, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_create(&b, &cfg, NULL, NULL, &err) == FF_OK);
    ff_step_stats sa, sb;
    int ends = 0;
    for (int i = 0; i < a.n_batches; i++)
        ends += ff_trainer_next(&a, &sa);
    CHECK(ends == 1 && a.epoch == 1 && a.batch_in_epoch == 0);
    int *order = malloc(sizeof(int) * (size_t)b.train.n);
    ff_run_order_draw(&b.rng, order, b.train.n, 1);
    CHECK(memcmp(order, a.order, sizeof(int) * (size_t)b.train.n) == 0);
    for (int i = 0; i < b.n_batches; i++)
        ff_trainer_step(&b, order + (size_t)i * b.batch, &sb);
    CHECK(b.step == a.step);
    CHECK(same_floats(a.net.params, b.net.params, a.net.n_params));
    CHECK(sa.n_layers == 2 && memcmp(sa.loss_pos, sb.loss_pos, sizeof sa.loss_pos) == 0);
    CHECK(isfinite(sa.loss_pos[0]) && sa.loss_pos[0] > 0.0);
    free(order);
    ff_trainer_free(&a);
    ff_trainer_free(&b);
}

/* save mid-epoch, restore into a new trainer: both end bit-identical. With `head`, the
 * softmax head has ffcode's optimiser (sgd_smooth, weight decay, its lr on the schedule)
 * and draws the negatives, so its state (n floats, not Adam's 2n) steers the FF run. */
static void restore_continues(const char *tag, int head)
{
    ff_config cfg;
    quick_config(&cfg, tag);
    ff_err err;
    if (head) {
        const char *sets[] = {"clf.optimizer=sgd_smooth", "clf.lr=0.1", "clf.momentum=0.9",
                              "clf.weight_decay=0.003", "clf.lr_schedule=true",
                              "schedule.type=linear", "schedule.decay_start=0.25",
                              "train.hard_scores=softmax"};
        for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
            CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
        CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    }
    ff_trainer a, b;
    CHECK(ff_trainer_create(&a, &cfg, NULL, NULL, &err) == FF_OK);
    ff_step_stats st;
    for (int i = 0; i < a.n_batches + 3; i++)
        ff_trainer_next(&a, &st);
    CHECK(a.epoch == 1 && a.batch_in_epoch == 3);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.ffm", tmpdir, tag);
    CHECK(ff_trainer_save(&a, path, "somewhere", &err) == FF_OK);
    ff_checkpoint ck = {0};
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_OK);
    const size_t n_head_state = ff_optim_state_len(&a.ro.opt);
    CHECK(n_head_state == (head ? 1 : 2) * a.ro.n_params);
    CHECK(ck.n_head_state == n_head_state && ck.head_t == a.ro.opt.t && ck.head_t > 0);
    CHECK(same_floats(ck.head_state, a.ro.opt.state, n_head_state));
    CHECK(ff_trainer_create(&b, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_restore(&b, &ck, NULL, NULL, &err) == FF_OK);
    CHECK(b.epoch == 1 && b.batch_in_epoch == 3 && b.step == a.step);
    run_to_end(&a);
    run_to_end(&b);
    CHECK(same_floats(a.net.params, b.net.params, a.net.n_params));
    CHECK(same_floats(a.ro.params, b.ro.params, a.ro.n_params));
    CHECK(same_floats(a.ro.opt.state, b.ro.opt.state, n_head_state) && a.ro.opt.t == b.ro.opt.t);
    CHECK(memcmp(&a.rng, &b.rng, sizeof a.rng) == 0);
    if (head) {
        /* the same state length under another clf.optimizer is not carried over */
        ff_config other = cfg;
        CHECK(ff_config_set(&other, "clf.optimizer=sgd", &err) == FF_OK);
        ff_trainer c;
        CHECK(ff_trainer_create(&c, &other, NULL, NULL, &err) == FF_OK);
        CHECK(ff_trainer_restore(&c, &ck, NULL, NULL, &err) == FF_OK);
        CHECK(same_floats(c.net.params, ck.params, c.net.n_params));
        CHECK(c.ro.opt.t == 0 && c.ro.params[0] == 0.0f && ck.head[0] != 0.0f);
        ff_trainer_free(&c);
    }

    /* a model that does not fit the run is refused, not trusted */
    ck.batch = -1;
    CHECK(ff_trainer_restore(&b, &ck, NULL, NULL, &err) == FF_ERR_USAGE);
    ck.batch = 3;
    ck.order[0] = 100000;
    CHECK(ff_trainer_restore(&b, &ck, NULL, NULL, &err) == FF_ERR_USAGE);
    ck.order[0] = ck.order[1];
    CHECK(ff_trainer_restore(&b, &ck, NULL, NULL, &err) == FF_ERR_USAGE);
    ck.epoch = 1 << 30;
    CHECK(ff_trainer_restore(&b, &ck, NULL, NULL, &err) == FF_ERR_USAGE);
    ff_checkpoint_free(&ck);
    ff_trainer_free(&a);
    ff_trainer_free(&b);
}

static void test_restore_continues(void) { restore_continues("restore", 0); }
static void test_restore_continues_sgd_head(void) { restore_continues("restore_head", 1); }

/* clf.lr_schedule: the head's step uses clf.lr times the schedule's factor at the net's
 * step (a fresh head's: at its own step). Halfway through a linear decay from 0 to 0 the
 * factor is 1/2, so a head with clf.lr 0.1 on the schedule steps exactly as one with a
 * constant 0.05, and not as one with a constant 0.1. */
static void test_head_lr_follows_schedule(void)
{
    const struct { const char *lr, *sched; } runs[3] = {
        {"clf.lr=0.1", "clf.lr_schedule=true"},
        {"clf.lr=0.05", "clf.lr_schedule=false"},
        {"clf.lr=0.1", "clf.lr_schedule=false"}};
    ff_trainer t[3];
    ff_err err;
    for (int k = 0; k < 3; k++) {
        ff_config cfg;
        quick_config(&cfg, "head_lr");
        const char *sets[] = {"clf.optimizer=sgd", "schedule.type=linear",
                              "schedule.decay_start=0", "schedule.final_lr_scale=0", runs[k].lr,
                              runs[k].sched};
        for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
            CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
        CHECK(ff_config_validate(&cfg, &err) == FF_OK);
        CHECK(ff_trainer_create(&t[k], &cfg, NULL, NULL, &err) == FF_OK);
        t[k].step = t[k].total_steps / 2;
        CHECK(t[k].total_steps == 20);
        ff_step_stats st;
        ff_trainer_step(&t[k], t[k].order, &st);
        CHECK_NEAR(st.lr, 0.5 * cfg.optimizer.lr, 1e-9); /* the net's lr: the same factor */
    }
    const size_t n = t[0].ro.n_params;
    CHECK(same_floats(t[0].net.params, t[2].net.params, t[0].net.n_params));
    CHECK(same_floats(t[0].ro.params, t[1].ro.params, n));
    CHECK(!same_floats(t[0].ro.params, t[2].ro.params, n));
    /* the fresh head of `ffrun eval` follows the schedule over its own steps, not the
     * net's: with the net's decay over (factor 0) it still learns, with the same first
     * factor as a constant 0.1 (decay from the first step) but not the same head; with
     * the decay never starting it is the constant head bit for bit */
    t[0].step = t[2].step = t[0].total_steps;
    const double e_sched = ff_trainer_softmax_error(&t[0], 1, 1, 5, NULL);
    const double e_const = ff_trainer_softmax_error(&t[2], 1, 1, 5, NULL);
    CHECK(e_sched < 0.5 && e_const < 0.5);
    CHECK(!same_floats(t[0].ro.params, t[2].ro.params, n));
    t[0].cfg.schedule.decay_start = 1.0f;
    CHECK(ff_trainer_softmax_error(&t[0], 1, 1, 5, NULL) == e_const);
    CHECK(same_floats(t[0].ro.params, t[2].ro.params, n));
    for (int k = 0; k < 3; k++)
        ff_trainer_free(&t[k]);
}

/* every model file in dir loads and holds finite parameters; returns how many */
/* train.loss competition (no negatives, no label in the input) through the library:
 * the loss falls, the goodness readout beats chance on held-out images, and a step
 * draws nothing from the RNG for negatives (two trainers stay bit-identical) */
static void test_competition_learns(void)
{
    ff_config cfg;
    quick_config(&cfg, "competition");
    ff_err err;
    const char *sets[] = {"train.loss=competition", "model.label_embedding=none",
                          "train.negatives=random", "train.passes=alternate", "train.jitter=0",
                          "train.logit_scale=10", "data.train_limit=1000", "train.epochs=3"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    ff_eval_result before;
    ff_trainer_evaluate(&t, 0, FF_EVAL_TEST, &before);
    ff_step_stats st;
    double first = 0.0, last = 0.0;
    int steps = 0;
    while (t.epoch < cfg.train.epochs) {
        ff_trainer_next(&t, &st);
        const double loss = st.loss_pos[0] + st.loss_pos[1];
        CHECK(st.loss_neg[0] == 0.0 && st.loss_neg[1] == 0.0); /* no negative data */
        if (steps++ < 5)
            first += loss / 5;
        last = loss;
    }
    CHECK(isfinite(last) && last < 0.5 * first);
    ff_eval_result after;
    ff_trainer_evaluate(&t, t.epoch, FF_EVAL_TEST, &after);
    CHECK(after.test.error_goodness < 0.3 && after.test.error_goodness < before.test.error_goodness);
    CHECK(after.test.error_softmax >= 0.0 && after.test.error_softmax < 0.5);
    ff_trainer_free(&t);
}

/* model.layers[].train_epochs (CwComp's early-layer stop): the first epoch is the
 * unfrozen run's bit for bit; then a layer past its epochs keeps its weights and
 * optimiser state and reports no loss while the others go on; with every layer
 * frozen only the softmax head learns, and its loss (reported every step: the
 * cross-entropy before the step, ln 10 for the zero head at the first) falls.
 * clf.layers picks the head's layers. */
static void test_train_epochs_freeze(void)
{
    ff_config base, cfg;
    quick_config(&base, "freeze");
    ff_err err;
    const char *sets[] = {"data.train_limit=500", "train.epochs=3", "clf.layers=[0, 1]"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&base, sets[i], &err) == FF_OK);
    cfg = base;
    CHECK(ff_config_set(&cfg, "model.layers.0.train_epochs=1", &err) == FF_OK);
    CHECK(ff_config_set(&cfg, "model.layers.1.train_epochs=2", &err) == FF_OK);
    CHECK(ff_config_validate(&base, &err) == FF_OK && ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer a, b;
    CHECK(ff_trainer_create(&a, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_create(&b, &base, NULL, NULL, &err) == FF_OK);
    CHECK(a.ro_n == 2 && a.ro_layers[0] == 0 && a.ro_layers[1] == 1);
    const ff_layer *L0 = &a.net.layers[0], *L1 = &a.net.layers[1];
    const size_t n0 = L0->n_weights + L0->n_bias, n1 = L1->n_weights + L1->n_bias;
    const size_t ns = ff_optim_state_len(&a.opt) / a.net.n_params; /* Adam: m then v */
    CHECK(ns == 2);
    float *snap = malloc(sizeof(float) * a.net.n_params), *head = malloc(sizeof(float) * a.ro.n_params);
    float *m0 = malloc(sizeof(float) * n0);
    CHECK(snap && head && m0);
    ff_step_stats st;
    double head_first = -1.0, head_last = 0.0;
    while (a.epoch < 1) {
        ff_trainer_next(&a, &st);
        if (head_first < 0)
            head_first = st.head_loss;
        CHECK(isfinite(st.head_loss) && st.head_loss >= 0.0f);
        ff_trainer_next(&b, &st);
    }
    CHECK_NEAR(head_first, log(10.0), 1e-5);
    CHECK(same_floats(a.net.params, b.net.params, a.net.n_params)); /* nothing frozen yet */
    memcpy(snap, a.net.params, sizeof(float) * a.net.n_params);
    memcpy(m0, a.opt.state + L0->param_off, sizeof(float) * n0);
    const int64_t t0 = a.opt.t;
    int steps = 0;
    while (a.epoch < 2) { /* layer 0 frozen, layer 1 learning */
        ff_trainer_next(&a, &st);
        CHECK(st.loss_pos[0] == 0.0 && st.loss_neg[0] == 0.0);
        CHECK(st.loss_pos[1] + st.loss_neg[1] > 0.0);
        steps++;
    }
    CHECK(a.opt.t == t0 + steps);
    CHECK(same_floats(a.net.params + L0->param_off, snap + L0->param_off, n0));
    CHECK(same_floats(a.opt.state + L0->param_off, m0, n0));
    CHECK(!same_floats(a.net.params + L1->param_off, snap + L1->param_off, n1));
    memcpy(snap, a.net.params, sizeof(float) * a.net.n_params);
    memcpy(head, a.ro.params, sizeof(float) * a.ro.n_params);
    steps = 0;
    while (a.epoch < 3) { /* all frozen: the head alone */
        ff_trainer_next(&a, &st);
        CHECK(st.loss_pos[1] == 0.0 && st.loss_neg[1] == 0.0);
        CHECK(isfinite(st.head_loss) && st.head_loss >= 0.0f);
        head_last += st.head_loss;
        steps++;
    }
    head_last /= steps;
    fprintf(stderr, "  head loss: first step %.4f, last epoch %.4f\n", head_first, head_last);
    CHECK(head_last < 0.7 * head_first);
    CHECK(same_floats(a.net.params, snap, a.net.n_params));
    CHECK(!same_floats(a.ro.params, head, a.ro.n_params));
    ff_eval_result r;
    ff_trainer_evaluate(&a, a.epoch, FF_EVAL_TEST, &r);
    CHECK(r.test.error_goodness < 0.8 && r.test.error_softmax < 0.5); /* chance: 0.9 */
    free(snap);
    free(head);
    free(m0);
    ff_trainer_free(&a);
    ff_trainer_free(&b);
    /* without a head, no head loss */
    CHECK(ff_config_set(&base, "eval.softmax=false", &err) == FF_OK);
    CHECK(ff_config_validate(&base, &err) == FF_OK);
    CHECK(ff_trainer_create(&b, &base, NULL, NULL, &err) == FF_OK);
    ff_trainer_next(&b, &st);
    CHECK(st.head_loss == -1.0f);
    ff_trainer_free(&b);
}

/* a competition-loss conv net with grouped convs (groups 10: each class group's channels
 * see only the same class group's channels below, as CwComp's CFSE blocks) trains: the
 * loss falls and the goodness readout beats chance; its model file keeps the groups, and
 * a trainer made from the file's config and restored from it (ffrun --resume) ends
 * bit-identical to the run that saved it */
static void test_grouped_competition(void)
{
    ff_config cfg;
    quick_config(&cfg, "grouped");
    ff_err err;
    const char *sets[] = {
        "train.loss=competition", "model.label_embedding=none", "train.negatives=random",
        "train.passes=alternate", "train.jitter=0", "train.competition_norm=batch",
        "train.logit_scale=30", "data.train_limit=1000", "train.epochs=3", "optimizer.lr=0.01",
        "model.layers=[{type: conv, channels: 20, kernel: 3, padding: 1},"
        " {type: pool, kind: max, kernel: 2, stride: 2},"
        " {type: conv, channels: 40, kernel: 3, padding: 1, groups: 10},"
        " {type: pool, kind: max, kernel: 2, stride: 2},"
        " {type: conv, channels: 40, kernel: 3, padding: 1, groups: 10}]"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer a, b;
    CHECK(ff_trainer_create(&a, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(a.net.n_layers == 3 && a.net.layers[0].groups == 1 && a.net.layers[1].groups == 10 &&
          a.net.layers[2].groups == 10);
    CHECK(a.net.layers[1].n_weights == 40 * 2 * 9 && a.net.layers[2].n_weights == 40 * 4 * 9);
    ff_eval_result before;
    ff_trainer_evaluate(&a, 0, FF_EVAL_TEST, &before);
    ff_step_stats st;
    double first = 0.0, last = 0.0;
    int steps = 0;
    for (int i = 0; i < a.n_batches + 3; i++, steps++) {
        ff_trainer_next(&a, &st);
        const double loss = st.loss_pos[0] + st.loss_pos[1] + st.loss_pos[2];
        if (steps < 5)
            first += loss / 5;
    }
    ff_checkpoint ck = {0};
    save_and_load(&a, "grouped", &ck);
    CHECK(ck.cfg.model.layers[0].groups == 1 && ck.cfg.model.layers[2].groups == 10 &&
          ck.cfg.model.layers[4].groups == 10);
    CHECK(ck.n_params == a.net.n_params && same_floats(ck.params, a.net.params, a.net.n_params));
    create_restored(&b, &ck);
    double recent[5] = {0};
    while (a.epoch < cfg.train.epochs) {
        ff_trainer_next(&a, &st);
        recent[steps++ % 5] = st.loss_pos[0] + st.loss_pos[1] + st.loss_pos[2];
        CHECK(st.loss_neg[0] == 0.0 && st.loss_neg[2] == 0.0); /* no negative data */
    }
    for (int i = 0; i < 5; i++)
        last += recent[i] / 5;
    CHECK(isfinite(last) && last < 0.8 * first); /* measured: 7.15 -> 4.21 */
    ff_eval_result after;
    ff_trainer_evaluate(&a, a.epoch, FF_EVAL_TEST, &after);
    if (getenv("FF_TEST_VERBOSE"))
        fprintf(stderr, "  grouped: loss %.4f -> %.4f, error %.3f -> %.3f (softmax %.3f)\n",
                first, last, before.test.error_goodness, after.test.error_goodness, after.test.error_softmax);
    /* measured: 92% -> 66% (4% for the softmax head) after 3 epochs of 1000 images */
    CHECK(after.test.error_goodness < 0.8 && after.test.error_goodness < before.test.error_goodness - 0.1);
    CHECK(after.test.error_softmax < 0.3);
    run_to_end(&b);
    CHECK(same_floats(a.net.params, b.net.params, a.net.n_params));
    ff_checkpoint_free(&ck);
    ff_trainer_free(&a);
    ff_trainer_free(&b);
}

/* train.loss competition: the softmax head's step learns from the FF pass's own
 * activations (no second forward pass), i.e. exactly the step a head takes on the
 * features of a forward pass of the net before the FF update */
static void test_competition_head_reuses_pass(void)
{
    ff_config cfg;
    quick_config(&cfg, "head_reuse");
    ff_err err;
    const char *sets[] = {"train.loss=competition", "model.label_embedding=none",
                          "train.negatives=random", "train.passes=alternate", "train.jitter=0",
                          "train.logit_scale=10", "data.train_limit=200"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer a, b;
    CHECK(ff_trainer_create(&a, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_create(&b, &cfg, NULL, NULL, &err) == FF_OK);
    ff_step_stats st;
    for (int s = 0; s < 3; s++) {
        int idx[50];
        for (int i = 0; i < a.batch; i++)
            idx[i] = (s * 37 + i * 3) % a.train.n;
        CHECK(a.batch <= 50);
        /* b: the head's step on a forward pass of the net before the FF update */
        uint8_t labels[50];
        for (int i = 0; i < b.batch; i++)
            labels[i] = b.train.labels[idx[i]];
        const ff_readout_input in = {.ds = &b.train, .neutral = 1, .embed = FF_EMBED_NONE};
        ff_readout_make_input(&b.ro, &in, idx, b.batch, b.x);
        ff_net_forward(&b.net, b.x, b.batch);
        ff_readout_features(&b.net, b.ro_layers, b.ro_n, b.batch, b.ro.feat);
        ff_readout_train_batch(&b.ro, b.ro.feat, labels, b.batch, cfg.clf.lr);
        ff_trainer_step(&a, idx, &st);
        CHECK(a.head_reuses_pass == 1);
        CHECK(same_floats(a.ro.params, b.ro.params, a.ro.n_params));
        memcpy(b.net.params, a.net.params, sizeof(float) * a.net.n_params); /* FF step as a's */
    }
    ff_trainer_free(&a);
    ff_trainer_free(&b);
}

/* competition_norm batch: evaluation first computes every layer's channel mean and
 * variance afresh for the current weights over the training images (at most 10,000),
 * checked against a naive loop over forward passes one image at a time; evaluating
 * twice gives the same errors */
static void competition_eval_stats(const char *hand_on)
{
    ff_config cfg;
    quick_config(&cfg, "eval_stats");
    ff_err err;
    const char *sets[] = {"train.loss=competition", "model.label_embedding=none",
                          "train.negatives=random", "train.passes=alternate", "train.jitter=0",
                          "train.logit_scale=10", "train.competition_norm=batch",
                          "data.train_limit=300", "data.test_limit=100", hand_on};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    ff_step_stats st;
    for (int s = 0; s < 4; s++) /* the running averages now lag the weights */
        ff_trainer_next(&t, &st);
    ff_eval_result r1, r2;
    ff_trainer_evaluate(&t, 1, FF_EVAL_TEST, &r1);
    const int L = t.net.n_layers, n = t.train.n;
    for (int l = 0; l < L; l++) {
        const ff_layer *Ly = &t.net.layers[l];
        const int C = Ly->out.c, P = Ly->out.h * Ly->out.w, dim = C * P;
        double *s1 = calloc((size_t)C, sizeof(double)), *s2 = calloc((size_t)C, sizeof(double));
        CHECK(s1 && s2);
        for (int i = 0; i < n; i++) { /* one image at a time */
            memcpy(t.x, t.train.images + (size_t)i * ff_dataset_dim(&t.train), sizeof(float) * t.in_dim);
            ff_net_forward(&t.net, t.x, 1);
            for (int c = 0; c < C; c++)
                for (int p = 0; p < P; p++) {
                    const double v = t.net.out[l][(size_t)c * P + p];
                    s1[c] += v;
                    s2[c] += v * v;
                }
        }
        const float *run = t.net.comp_stats[l];
        int bad = 0;
        for (int c = 0; c < C; c++) {
            const double cnt = (double)n * P, mean = s1[c] / cnt, var = s2[c] / cnt - mean * mean;
            bad += fabs(run[c] - mean) > 1e-4 * (1.0 + fabs(mean)) ||
                   fabs(run[C + c] - var) > 1e-3 * (1e-3 + var);
        }
        CHECK(bad == 0 && run[2 * C] >= 10.0f);
        (void)dim;
        free(s1);
        free(s2);
    }
    ff_trainer_evaluate(&t, 1, FF_EVAL_TEST, &r2);
    CHECK(r1.test.error_goodness == r2.test.error_goodness && r1.test.error_softmax == r2.test.error_softmax);
    CHECK(r1.test.error_goodness >= 0.0 && r1.test.error_goodness < 0.9);
    ff_trainer_free(&t);
}

/* with model.hand_on batch the statistics of layer l depend on layer l - 1's: each
 * layer's are computed after those below it (the naive loop runs the evaluation
 * forward pass, which reads them) */
static void test_competition_eval_stats(void)
{
    competition_eval_stats("model.hand_on=rms");
    competition_eval_stats("model.hand_on=batch");
}

/* the largest |in[l] - (maxpool2(out[l - 1]) - mu) inv| over `rows` rows, with mu and var
 * of out[l - 1]'s channels (given, or over these rows, biased: NULL), that times the
 * scales plus the shifts in affine ([2 C], competition_norm affine; NULL: none) */
static double hand_on_gap(const ff_net *net, int l, int rows, const float *run,
                          const float *affine)
{
    const ff_layer *P = &net->layers[l - 1];
    const int C = P->out.c, H = P->out.h, W = P->out.w, hw = H * W, h2 = H / 2, w2 = W / 2;
    double gap = 0.0;
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (run) {
            mu = run[c];
            var = run[C + c];
        } else {
            double s1 = 0.0, s2 = 0.0;
            for (int i = 0; i < rows; i++)
                for (int p = 0; p < hw; p++) {
                    const double v = net->out[l - 1][((size_t)i * C + c) * hw + p];
                    s1 += v;
                    s2 += v * v;
                }
            mu = s1 / ((double)rows * hw);
            var = s2 / ((double)rows * hw) - mu * mu;
        }
        const double inv = 1.0 / sqrt(var + FF_COMP_BN_EPS);
        for (int i = 0; i < rows; i++)
            for (int y = 0; y < h2; y++)
                for (int x = 0; x < w2; x++) {
                    const float *o = net->out[l - 1] + ((size_t)i * C + c) * hw;
                    float m = o[2 * y * W + 2 * x];
                    m = fmaxf(m, o[2 * y * W + 2 * x + 1]);
                    m = fmaxf(m, o[(2 * y + 1) * W + 2 * x]);
                    m = fmaxf(m, o[(2 * y + 1) * W + 2 * x + 1]);
                    double want = (m - mu) * inv;
                    if (affine)
                        want = affine[c] * want + affine[C + c];
                    const double got = net->in[l][((size_t)i * C + c) * h2 * w2 + y * w2 + x];
                    gap = fmax(gap, fabs(got - want) / (1.0 + fabs(want)));
                }
    }
    return gap;
}

/* model.hand_on batch: a training pass hands each layer its predecessor's (max-pooled)
 * output standardised with the batch's channel statistics (competition_norm affine:
 * then scaled and shifted), also below a frozen layer; the evaluation pass with the
 * evaluation statistics; the net learns (affine: its scales and shifts too, and a
 * restored run continues bit for bit) */
static void hand_on_batch(const char *norm)
{
    const int affine = strcmp(norm, "train.competition_norm=affine") == 0;
    ff_config cfg;
    quick_config(&cfg, affine ? "hand_on_affine" : "hand_on");
    ff_err err;
    const char *sets[] = {
        "train.loss=competition", "model.label_embedding=none", "train.negatives=random",
        "train.passes=alternate", "train.jitter=0", norm,
        "model.hand_on=batch", "train.logit_scale=30", "data.train_limit=1000",
        "data.test_limit=300", "train.epochs=2", "optimizer.lr=0.01",
        "model.layers=[{type: conv, channels: 20, kernel: 3, padding: 1, train_epochs: 1},"
        " {type: pool, kind: max, kernel: 2, stride: 2},"
        " {type: conv, channels: 40, kernel: 3, padding: 1, groups: 10}]"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(t.net.hand_on_batch == 1);
    const ff_layer *L0 = &t.net.layers[0], *L1 = &t.net.layers[1];
    CHECK(affine ? L0->n_affine == 40 && L1->n_affine == 80 && L0->affine[0] == 1.0f &&
                       L0->affine[20] == 0.0f && L1->affine == L1->b + 40
                 : L0->n_affine == 0 && L0->affine == NULL);
    CHECK(t.net.n_params == ff_layer_n_params(L0) + ff_layer_n_params(L1));
    ff_eval_result before, after;
    ff_trainer_evaluate(&t, 0, FF_EVAL_TEST, &before);
    ff_step_stats st;
    float pre_step[40]; /* the scales and shifts the step hands on with (it updates them) */
    const float *pre = affine ? pre_step : NULL;
    if (affine)
        memcpy(pre_step, L0->affine, sizeof pre_step);
    ff_trainer_next(&t, &st); /* layer 0 learning: the statistics of its loss */
    CHECK(hand_on_gap(&t.net, 1, t.batch, NULL, pre) < 1e-4);
    while (t.epoch < 1)
        ff_trainer_next(&t, &st);
    float affine0[40];
    if (affine) {
        memcpy(affine0, L0->affine, sizeof affine0);
        int moved = 0;
        for (int c = 0; c < 40; c++)
            moved += affine0[c] != (c < 20 ? 1.0f : 0.0f);
        CHECK(moved == 40); /* every scale and shift learned in epoch 1 */
    }
    if (affine)
        memcpy(pre_step, L0->affine, sizeof pre_step);
    ff_trainer_next(&t, &st); /* layer 0 frozen: statistics without a loss */
    CHECK(t.net.frozen[0] && st.loss_pos[0] == 0.0 && st.loss_pos[1] > 0.0);
    CHECK(hand_on_gap(&t.net, 1, t.batch, NULL, pre) < 1e-4);
    ff_trainer b;
    ff_checkpoint ck = {0};
    if (affine) { /* save here, restore, and both runs end the same */
        save_and_load(&t, "hand_on_affine", &ck);
        CHECK(ck.cfg.train.competition_norm == FF_COMP_AFFINE && ck.n_params == t.net.n_params);
        create_restored(&b, &ck);
    }
    while (t.epoch < 2)
        ff_trainer_next(&t, &st);
    if (affine) /* frozen: layer 0's scales and shifts with it */
        CHECK(memcmp(affine0, L0->affine, sizeof affine0) == 0);
    ff_trainer_evaluate(&t, 2, FF_EVAL_TEST, &after);
    memcpy(t.x, t.test.images, sizeof(float) * 7 * t.in_dim);
    ff_net_forward(&t.net, t.x, 7);
    CHECK(hand_on_gap(&t.net, 1, 7, t.net.comp_stats[0], L0->affine) < 1e-4);
    if (getenv("FF_TEST_VERBOSE"))
        fprintf(stderr, "  %s: error %.3f -> %.3f (softmax %.3f)\n", norm,
                before.test.error_goodness, after.test.error_goodness, after.test.error_softmax);
    /* measured: 92% -> 51% (softmax head 7%) */
    CHECK(after.test.error_goodness < 0.7 && after.test.error_goodness < before.test.error_goodness - 0.2);
    CHECK(after.test.error_softmax < 0.3);
    if (affine) {
        run_to_end(&b);
        CHECK(same_floats(t.net.params, b.net.params, t.net.n_params));
        ff_checkpoint_free(&ck);
        ff_trainer_free(&b);
    }
    ff_trainer_free(&t);
}

/* the largest relative gap between post (rows of pooled C x hw maps) standardised by
 * the given mean and variance of each channel, then scaled and shifted (affine), and
 * `in` (the next layer's input) */
static double standardised_gap(const float *post, const float *in, int rows, int C, int hw,
                               const double *mu, const double *var, const float *affine)
{
    double gap = 0.0;
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < hw; p++) {
                const size_t u = ((size_t)i * C + c) * hw + p;
                const double want = affine[c] * (post[u] - mu[c]) / sqrt(var[c] + FF_COMP_BN_EPS) +
                                    affine[C + c];
                gap = fmax(gap, fabs(in[u] - want) / (1.0 + fabs(want)));
            }
    return gap;
}

/* each channel's mean and (biased) variance over rows of C x hw maps */
static void channel_stats(const float *y, int rows, int C, int hw, double *mu, double *var)
{
    for (int c = 0; c < C; c++) {
        double s1 = 0.0, s2 = 0.0;
        for (int i = 0; i < rows; i++)
            for (int p = 0; p < hw; p++) {
                const double v = y[((size_t)i * C + c) * hw + p];
                s1 += v;
                s2 += v * v;
            }
        mu[c] = s1 / ((double)rows * hw);
        var[c] = s2 / ((double)rows * hw) - mu[c] * mu[c];
    }
}

/* model.loss_after_pool: a layer followed by a pool (the last one too) has its pooled
 * output in post, the next layer's input is that standardised with its batch
 * statistics (then scaled and shifted), evaluation's statistics are of the pooled
 * maps, the softmax head reads the pooled last layer standardised by them, scaled and
 * shifted (clf.norm batch); the net learns and a restored run continues bit for bit */
static void test_loss_after_pool(void)
{
    ff_config cfg;
    quick_config(&cfg, "loss_after_pool");
    ff_err err;
    const char *sets[] = {
        "train.loss=competition", "model.label_embedding=none", "train.negatives=random",
        "train.passes=alternate", "train.jitter=0", "train.competition_norm=affine",
        "model.hand_on=batch", "model.loss_after_pool=true", "train.logit_scale=10",
        "data.train_limit=1000", "data.test_limit=300", "train.epochs=2", "optimizer.lr=0.01",
        "clf.layers=[1]", "clf.norm=batch",
        "model.layers=[{type: conv, channels: 20, kernel: 3, padding: 1},"
        " {type: pool, kind: max, kernel: 2, stride: 2},"
        " {type: conv, channels: 40, kernel: 3, padding: 1, groups: 10},"
        " {type: pool, kind: max, kernel: 2, stride: 2}]"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer t, b;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    const ff_net *net = &t.net;
    CHECK(net->n_layers == 2 && net->post[0] && net->post[1] && net->dpost);
    const ff_shape s0 = ff_net_loss_shape(net, 0), s1 = ff_net_loss_shape(net, 1);
    CHECK(s0.c == 20 && s0.h == 14 && s0.w == 14 && s1.c == 40 && s1.h == 7 && s1.w == 7);
    CHECK(t.ro.features == 40 * 7 * 7); /* the head reads the pooled last layer */
    ff_eval_result before, after;
    ff_trainer_evaluate(&t, 0, FF_EVAL_TEST, &before);
    float pre[40];
    memcpy(pre, net->layers[0].affine, sizeof pre);
    ff_step_stats st;
    ff_trainer_next(&t, &st);
    CHECK(st.loss_pos[0] > 0.0 && st.loss_pos[1] > 0.0);
    /* post = maxpool2(out), and layer 1's input its standardised, scaled, shifted self */
    double pool_gap = 0.0, mu[20], var[20];
    for (int i = 0; i < t.batch; i++)
        for (int c = 0; c < 20; c++)
            for (int y = 0; y < 14; y++)
                for (int x = 0; x < 14; x++) {
                    const float *o = net->out[0] + ((size_t)i * 20 + c) * 784;
                    const float m = fmaxf(fmaxf(o[2 * y * 28 + 2 * x], o[2 * y * 28 + 2 * x + 1]),
                                          fmaxf(o[(2 * y + 1) * 28 + 2 * x],
                                                o[(2 * y + 1) * 28 + 2 * x + 1]));
                    pool_gap = fmax(pool_gap, fabs(net->post[0][((size_t)i * 20 + c) * 196 +
                                                                 y * 14 + x] - m));
                }
    CHECK(pool_gap == 0.0);
    channel_stats(net->post[0], t.batch, 20, 196, mu, var);
    CHECK(standardised_gap(net->post[0], net->in[1], t.batch, 20, 196, mu, var, pre) < 1e-4);
    ff_checkpoint ck = {0};
    save_and_load(&t, "loss_after_pool", &ck);
    CHECK(ck.cfg.model.loss_after_pool == 1);
    create_restored(&b, &ck);
    while (t.epoch < 2)
        ff_trainer_next(&t, &st);
    ff_trainer_evaluate(&t, 2, FF_EVAL_TEST, &after);
    /* evaluation's statistics of layer 1: of its pooled maps over the training images */
    double mu1[40], var1[40], s1sum[80] = {0};
    for (int s = 0; s < t.train.n; s += t.batch) {
        const int m = t.train.n - s < t.batch ? t.train.n - s : t.batch;
        memcpy(t.x, t.train.images + (size_t)s * ff_dataset_dim(&t.train), sizeof(float) * m * t.in_dim);
        ff_net_forward(&t.net, t.x, m);
        channel_stats(net->post[1], m, 40, 49, mu1, var1);
        for (int c = 0; c < 40; c++) {
            s1sum[c] += mu1[c] * m;
            s1sum[40 + c] += (var1[c] + mu1[c] * mu1[c]) * m;
        }
    }
    double stat_gap = 0.0;
    for (int c = 0; c < 40; c++) {
        const double mean = s1sum[c] / t.train.n, v = s1sum[40 + c] / t.train.n - mean * mean;
        stat_gap = fmax(stat_gap, fabs(net->comp_stats[1][c] - mean) / (1.0 + fabs(mean)));
        stat_gap = fmax(stat_gap, fabs(net->comp_stats[1][40 + c] - v) / (1.0 + v));
    }
    CHECK(stat_gap < 1e-4);
    /* the head's features of the last chunk: its pooled maps standardised by those
     * statistics, scaled and shifted */
    const int last = (t.train.n - 1) % t.batch + 1;
    ff_readout_features(&t.net, t.ro_layers, t.ro_n, last, t.ro.feat);
    for (int c = 0; c < 40; c++) {
        mu1[c] = net->comp_stats[1][c];
        var1[c] = net->comp_stats[1][40 + c];
    }
    CHECK(standardised_gap(net->post[1], t.ro.feat, last, 40, 49, mu1, var1,
                           net->layers[1].affine) < 1e-5);
    if (getenv("FF_TEST_VERBOSE"))
        fprintf(stderr, "  loss_after_pool: error %.3f -> %.3f (softmax %.3f)\n",
                before.test.error_goodness, after.test.error_goodness, after.test.error_softmax);
    CHECK(after.test.error_goodness < 0.7 && after.test.error_goodness < before.test.error_goodness - 0.2);
    CHECK(after.test.error_softmax < 0.3);
    run_to_end(&b);
    CHECK(same_floats(t.net.params, b.net.params, t.net.n_params));
    ff_checkpoint_free(&ck);
    ff_trainer_free(&b);
    ff_trainer_free(&t);
}

/* a small CwComp-style net (competition loss, affine batch norm handed on) on 300
 * training and 100 test images for 3 epochs; layers: model.layers' value */
static void small_cwcomp_config(ff_config *cfg, const char *tag, const char *layers)
{
    quick_config(cfg, tag);
    ff_err err;
    const char *sets[] = {
        "train.loss=competition", "model.label_embedding=none", "train.negatives=random",
        "train.passes=alternate", "train.jitter=0", "train.competition_norm=affine",
        "model.hand_on=batch", "train.logit_scale=10", "data.train_limit=300",
        "data.test_limit=100", "train.epochs=3", "optimizer.lr=0.01"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(cfg, sets[i], &err) == FF_OK);
    char set[512];
    snprintf(set, sizeof set, "model.layers=%s", layers);
    CHECK(ff_config_set(cfg, set, &err) == FF_OK);
}

/* the softmax readout from the goodness readout's passes (class groups, one pass an
 * image): ff_trainer_evaluate's softmax errors are the ones the head's own passes give,
 * on validation and test, and the count came from the fused passes */
static void test_softmax_from_goodness_passes(void)
{
    ff_config cfg;
    small_cwcomp_config(&cfg, "fused",
                        "[{type: conv, channels: 10, kernel: 3, padding: 1},"
                        " {type: pool, kind: max, kernel: 2, stride: 2},"
                        " {type: conv, channels: 20, kernel: 3, padding: 1, groups: 10}]");
    ff_err err;
    CHECK(ff_config_set(&cfg, "eval.softmax=true", &err) == FF_OK);
    CHECK(ff_config_set(&cfg, "data.validation=60", &err) == FF_OK);
    CHECK(ff_config_set(&cfg, "data.test_limit=130", &err) == FF_OK); /* a chunk and a part */
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    ff_step_stats st;
    while (t.epoch < 1)
        ff_trainer_next(&t, &st);
    ff_eval_result r;
    ff_trainer_evaluate(&t, 1, FF_EVAL_TEST | FF_EVAL_VAL, &r);
    CHECK(!t.fused_valid[FF_SET_TEST] && !t.fused_valid[FF_SET_VAL]); /* this evaluation only */
    CHECK(r.test.error_softmax > 0.0 && r.test.error_softmax < 0.9);
    CHECK(r.test.error_softmax == (double)t.fused_wrong[FF_SET_TEST] / 130.0);
    CHECK(r.val.error_softmax == (double)t.fused_wrong[FF_SET_VAL] / 60.0);
    /* the head's own passes (a confusion matrix asked for: never the fused count) */
    int64_t confusion[100];
    for (int s = 0; s < 2; s++) {
        const ff_eval_set set = s ? FF_SET_VAL : FF_SET_TEST;
        const double own = ff_trainer_softmax_error_on(&t, set, 0, 0, 1, confusion);
        CHECK(own == (s ? r.val.error_softmax : r.test.error_softmax));
    }
    ff_trainer_free(&t);
}

/* evaluation statistics of layers that have finished learning (each with every layer
 * below) are computed once and kept: after every epoch they are the floats a net with
 * the same weights and no train_epochs computes for every layer */
static void test_final_stats_kept(void)
{
    ff_config cfg, plain;
    small_cwcomp_config(&cfg, "final_stats",
                        "[{type: conv, channels: 10, kernel: 3, padding: 1, train_epochs: 1},"
                        " {type: conv, channels: 20, kernel: 3, padding: 1, groups: 10,"
                        " train_epochs: 2}, {type: pool, kind: max, kernel: 2, stride: 2},"
                        " {type: conv, channels: 20, kernel: 3, padding: 1}]");
    ff_err err;
    plain = cfg;
    CHECK(ff_config_set(&plain, "model.layers.0.train_epochs=0", &err) == FF_OK);
    CHECK(ff_config_set(&plain, "model.layers.1.train_epochs=0", &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK && ff_config_validate(&plain, &err) == FF_OK);
    ff_trainer t, ref;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_create(&ref, &plain, NULL, NULL, &err) == FF_OK);
    CHECK(ref.net.n_params == t.net.n_params && ref.net.n_aux == t.net.n_aux);
    ff_step_stats st;
    for (int epoch = 1; epoch <= 3; epoch++) {
        while (t.epoch < epoch)
            ff_trainer_next(&t, &st);
        ff_eval_result r;
        ff_trainer_evaluate(&t, epoch, FF_EVAL_TEST, &r);
        CHECK(t.n_stats_final == (epoch < 2 ? epoch : 2)); /* layer 2 never finishes */
        memcpy(ref.net.params, t.net.params, sizeof(float) * t.net.n_params);
        memcpy(ref.net.aux, t.net.aux, sizeof(float) * t.net.n_aux);
        ff_trainer_refresh_stats(&ref); /* every layer's afresh */
        CHECK(ref.n_stats_final == 0);
        CHECK(same_floats(ref.net.aux, t.net.aux, t.net.n_aux));
    }
    ff_trainer_free(&ref);
    ff_trainer_free(&t);
}

/* once every layer has finished learning (and its statistics are final) evaluation keeps
 * the goodness readout's error instead of a pass over the test set: right (a new pass
 * over the unchanged net agrees), and kept (a tampered net still reports it), while a
 * net with a layer still learning is evaluated anew */
static void test_goodness_kept(void)
{
    ff_config cfg;
    small_cwcomp_config(&cfg, "goodness_kept",
                        "[{type: conv, channels: 10, kernel: 3, padding: 1, train_epochs: 1},"
                        " {type: pool, kind: max, kernel: 2, stride: 2},"
                        " {type: conv, channels: 20, kernel: 3, padding: 1, groups: 10,"
                        " train_epochs: 2}]");
    ff_err err;
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    ff_step_stats st;
    ff_eval_result r[4];
    for (int epoch = 1; epoch <= 3; epoch++) {
        while (t.epoch < epoch)
            ff_trainer_next(&t, &st);
        ff_trainer_evaluate(&t, epoch, FF_EVAL_TEST, &r[epoch]);
        CHECK(t.goodness_kept[FF_SET_TEST] == (epoch >= 2));
        CHECK(r[epoch].test.error_goodness == ff_trainer_goodness_error(&t, NULL));
    }
    CHECK(r[3].test.error_goodness == r[2].test.error_goodness);
    for (size_t i = 0; i < t.net.n_params; i++)
        t.net.params[i] = 0.0f; /* every goodness 0: a new pass predicts class 0 throughout */
    ff_eval_result tampered;
    ff_trainer_evaluate(&t, 4, FF_EVAL_TEST, &tampered);
    CHECK(tampered.test.error_goodness == r[3].test.error_goodness);
    const double blank = ff_trainer_goodness_error(&t, NULL);
    CHECK(blank != r[3].test.error_goodness && blank > 0.85);
    ff_trainer_free(&t);
}

/* clf.cache_features: once every layer is frozen the head reads each image's features
 * from a cache filled once, the same (up to the sums' order) as a forward pass gives
 * them, and filled again once evaluation has computed new statistics; the head learns
 * as without it (also a fresh head's epochs on the finished net), and a run restored in
 * the head-only epochs fills the cache again and ends bit for bit as the uninterrupted
 * one */
static void test_feature_cache(void)
{
    ff_config cfg, plain;
    small_cwcomp_config(&cfg, "feature_cache",
                        "[{type: conv, channels: 10, kernel: 3, padding: 1, train_epochs: 1},"
                        " {type: pool, kind: max, kernel: 2, stride: 2},"
                        " {type: conv, channels: 20, kernel: 3, padding: 1, groups: 10,"
                        " train_epochs: 1}]");
    ff_err err;
    CHECK(ff_config_set(&cfg, "clf.norm=batch", &err) == FF_OK);
    plain = cfg;
    CHECK(ff_config_set(&cfg, "clf.cache_features=true", &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_trainer a, b, r;
    CHECK(ff_trainer_create(&a, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(ff_trainer_create(&b, &plain, NULL, NULL, &err) == FF_OK);
    CHECK(a.feat_cache != NULL && b.feat_cache == NULL);
    ff_step_stats st;
    ff_eval_result ea, eb;
    { /* a head's evaluation epochs fill the cache; a learning step makes it stale */
        ff_trainer c;
        CHECK(ff_trainer_create(&c, &cfg, NULL, NULL, &err) == FF_OK);
        ff_trainer_next(&c, &st);
        ff_trainer_softmax_error(&c, 1, 1, 5, NULL);
        CHECK(c.feat_cache_valid);
        ff_trainer_next(&c, &st);
        CHECK(!c.feat_cache_valid);
        ff_trainer_free(&c);
    }
    while (a.epoch < 1) {
        ff_trainer_next(&a, &st);
        ff_trainer_next(&b, &st);
    }
    CHECK(!a.feat_cache_valid); /* layers learning: no cache */
    for (int i = 0; i < 2; i++) { /* two head-only steps on the running statistics, then save */
        ff_trainer_next(&a, &st);
        ff_trainer_next(&b, &st);
    }
    CHECK(a.feat_cache_valid);
    ff_checkpoint ck = {0};
    save_and_load(&a, "feature_cache", &ck);
    CHECK(ck.cfg.clf.cache_features == 1);
    create_restored(&r, &ck);
    /* evaluation's statistics replace the running ones: the next step fills the cache anew */
    ff_trainer_evaluate(&a, 1, FF_EVAL_TEST, &ea);
    ff_trainer_evaluate(&b, 1, FF_EVAL_TEST, &eb);
    ff_trainer_evaluate(&r, 1, FF_EVAL_TEST, &eb);
    CHECK(!a.feat_cache_valid);
    ff_trainer_next(&a, &st);
    ff_trainer_next(&b, &st);
    ff_trainer_next(&r, &st);
    CHECK(a.feat_cache_valid);
    /* the cache against a forward pass of the first rows */
    const size_t F = (size_t)a.ro.features;
    memcpy(a.x, a.train.images, sizeof(float) * 7 * a.in_dim);
    ff_net_forward(&a.net, a.x, 7);
    ff_readout_features(&a.net, a.ro_layers, a.ro_n, 7, a.ro.feat);
    double gap = 0.0;
    for (size_t j = 0; j < 7 * F; j++)
        gap = fmax(gap, fabs(a.feat_cache[j] - a.ro.feat[j]) / (1.0 + fabs(a.ro.feat[j])));
    CHECK(gap < 1e-5);
    run_to_end(&a);
    run_to_end(&b);
    run_to_end(&r);
    CHECK(same_floats(a.ro.params, r.ro.params, a.ro.n_params)); /* restored: bit for bit */
    double head_gap = 0.0;
    for (size_t j = 0; j < a.ro.n_params; j++)
        head_gap = fmax(head_gap, fabs(a.ro.params[j] - b.ro.params[j]) /
                                      (1e-3 + fabs(b.ro.params[j])));
    CHECK(head_gap < 1e-2);
    CHECK(!same_floats(a.ro.params, ck.head, a.ro.n_params)); /* it learned after the save */
    ff_trainer_evaluate(&a, 3, FF_EVAL_TEST, &ea);
    ff_trainer_evaluate(&b, 3, FF_EVAL_TEST, &eb);
    CHECK(fabs(ea.test.error_softmax - eb.test.error_softmax) <= 0.02 && ea.test.error_softmax < 0.5);
    /* a fresh head's epochs on the fixed net (ffrun eval --softmax-epochs) read the cache */
    const double fa = ff_trainer_softmax_error(&a, 2, 1, 5, NULL);
    const double fb = ff_trainer_softmax_error(&b, 2, 1, 5, NULL);
    double fresh_gap = 0.0;
    for (size_t j = 0; j < a.ro.n_params; j++)
        fresh_gap = fmax(fresh_gap, fabs(a.ro.params[j] - b.ro.params[j]) /
                                        (1e-3 + fabs(b.ro.params[j])));
    CHECK(a.feat_cache_valid && fresh_gap < 1e-2 && fabs(fa - fb) <= 0.02 && fa < 0.5);
    /* the test error reads the test images' features from the cache too: the same as a
     * forward pass gives, and blanked (every logit the bias) it says so */
    int64_t conf_cache[100], conf_fwd[100];
    const double e_cache = ff_trainer_softmax_error(&a, 0, 0, 5, conf_cache);
    a.feat_cache_valid = 0; /* no epochs: nothing refills it, the test pass is a forward one */
    const double e_fwd = ff_trainer_softmax_error(&a, 0, 0, 5, conf_fwd);
    CHECK(e_cache == e_fwd && memcmp(conf_cache, conf_fwd, sizeof conf_fwd) == 0);
    a.feat_cache_valid = 1; /* its contents are still the net's */
    memset(a.set_feat_cache[FF_SET_TEST], 0, sizeof(float) * (size_t)a.test.n * F);
    const double e_blank = ff_trainer_softmax_error(&a, 0, 0, 5, NULL);
    CHECK(e_blank > 0.5 && e_blank != e_cache);
    a.feat_cache_valid = 0; /* filled again by the next head epochs: the same floats */
    CHECK(ff_trainer_softmax_error(&a, 2, 1, 5, NULL) == fa && a.feat_cache_valid);
    /* and it is the cache they read: blanked, it leaves the head nothing to learn from */
    memset(a.feat_cache, 0, sizeof(float) * (size_t)a.train.n * F);
    CHECK(ff_trainer_softmax_error(&a, 2, 1, 5, NULL) > 0.5);
    if (getenv("FF_TEST_VERBOSE"))
        fprintf(stderr, "  feature cache: features %.1e, head %.1e, softmax %.3f / %.3f, fresh "
                "head %.1e, %.3f / %.3f\n", gap, head_gap, ea.test.error_softmax, eb.test.error_softmax,
                fresh_gap, fa, fb);
    ff_checkpoint_free(&ck);
    ff_trainer_free(&r);
    ff_trainer_free(&b);
    ff_trainer_free(&a);
}

static void test_hand_on_batch(void) { hand_on_batch("train.competition_norm=batch"); }
static void test_hand_on_affine(void) { hand_on_batch("train.competition_norm=affine"); }

static int count_finite_models(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".ffm"))
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ff_checkpoint ck = {0};
        ff_err err;
        CHECK(ff_checkpoint_load(path, &ck, &err) == FF_OK);
        for (uint64_t i = 0; i < ck.n_params; i++)
            if (!isfinite(ck.params[i])) {
                CHECK(!"a saved model holds a non-finite parameter");
                break;
            }
        ff_checkpoint_free(&ck);
        n++;
    }
    closedir(d);
    return n;
}

/* issue 20 item 4: divergence stops the run with a clear error and saves no NaN */
static void test_divergence_stops(void)
{
    ff_config cfg;
    ff_err err;
    CHECK(ff_config_load(&cfg, "configs/quick.yaml", &err) == FF_OK);
    const char *sets[] = {"data.train_limit=2000", "data.test_limit=200", "train.epochs=3",
                          "optimizer.lr=10", "optimizer.eps=1.2e-38", "optimizer.beta2=0",
                          "checkpoint.every=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    snprintf(cfg.log.dir, sizeof cfg.log.dir, "%s/nan/runs", tmpdir);
    snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s/nan/models", tmpdir);
    ff_train_result res;
    int rc = ff_train(&cfg, NULL, &res, &err);
    CHECK(rc == FF_ERR_RUNTIME);
    CHECK(strstr(err.msg, "diverged") != NULL);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/nan/models", tmpdir);
    count_finite_models(dir); /* whatever was saved before is finite */
}

/* issue 20 item 1: runs with one checkpoint.dir never share model names */
static void test_model_prefix_claims(void)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s/claims", tmpdir);
    char a[256], b[256], a2[256];
    ff_err err;
    CHECK(ff_run_claim_prefix(&cfg, "logA/supervised/20261201-101010", a, sizeof a, &err) == FF_OK);
    CHECK(ff_run_claim_prefix(&cfg, "logB/supervised/20261201-101010", b, sizeof b, &err) == FF_OK);
    CHECK(ff_run_claim_prefix(&cfg, "logA/supervised/20261201-101010", a2, sizeof a2, &err) ==
          FF_OK);
    CHECK(!strcmp(a, "supervised_20261201-101010"));
    CHECK(!strcmp(b, "supervised_20261201-101010-2"));
    CHECK(!strcmp(a2, a)); /* the same run keeps its claim */

    char p[256];
    CHECK(ff_run_prefix_of_model("m/supervised_20261201-101010-2_best.ffm", p, sizeof p, &err) ==
          FF_OK && !strcmp(p, "supervised_20261201-101010-2"));
    CHECK(ff_run_prefix_of_model("supervised_x_y_epoch012.ffm", p, sizeof p, &err) == FF_OK &&
          !strcmp(p, "supervised_x_y"));
    CHECK(ff_run_prefix_of_model("a/unsupervised_clf_z_step0000123.ffm", p, sizeof p, &err) ==
          FF_OK && !strcmp(p, "unsupervised_clf_z"));
    CHECK(ff_run_prefix_of_model("m/mymodel.ffm", p, sizeof p, &err) == FF_ERR_USAGE);
    CHECK(ff_run_prefix_of_model("m/x_epochs.ffm", p, sizeof p, &err) == FF_ERR_USAGE);

    /* an unwritable checkpoint.dir fails at the claim, before any training */
    snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "/proc/ffrun-no-such-dir");
    CHECK(ff_run_claim_prefix(&cfg, "x/20261201-101010", a, sizeof a, &err) == FF_ERR_IO);
}

/* the classifier trainer: resumed mid-epoch from its own model file, it ends
 * bit-identical to an uninterrupted run */
static void test_clf_resume(void)
{
    ff_config bcfg;
    quick_config(&bcfg, "backbone");
    ff_err err;
    CHECK(ff_config_set(&bcfg, "mode=unsupervised_backbone", &err) == FF_OK);
    CHECK(ff_config_set(&bcfg, "train.epochs=1", &err) == FF_OK);
    CHECK(ff_config_set(&bcfg, "train.negatives=random", &err) == FF_OK);
    CHECK(ff_config_set(&bcfg, "train.loss=threshold", &err) == FF_OK);
    CHECK(ff_config_set(&bcfg, "eval.softmax=false", &err) == FF_OK);
    CHECK(ff_config_validate(&bcfg, &err) == FF_OK);
    ff_train_result res;
    CHECK(ff_train(&bcfg, NULL, &res, &err) == FF_OK);

    ff_config cfg;
    CHECK(ff_config_load(&cfg, "configs/unsupervised_clf.yaml", &err) == FF_OK);
    snprintf(cfg.checkpoint.backbone, sizeof cfg.checkpoint.backbone, "%.500s", res.model_path);
    const char *sets[] = {"data.train_limit=500", "data.test_limit=200", "clf.epochs=2",
                          "train.batch_size=64", "train.jitter=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    CHECK(ff_config_validate(&cfg, &err) == FF_OK);
    ff_clf_trainer a, b;
    CHECK(ff_clf_trainer_create(&a, &cfg, NULL, NULL, NULL, &err) == FF_OK);
    CHECK(a.n_batches == 8); /* 7 of 64 and a last one of 52 */
    int images, done, total = 0;
    for (int i = 0; i < 5; i++) {
        float loss = ff_clf_trainer_next(&a, &images, &done);
        CHECK(isfinite(loss) && loss > 0.0f);
        total += images;
    }
    CHECK(total == 5 * 64 && !done && a.batch_in_epoch == 5);
    char path[512];
    snprintf(path, sizeof path, "%s/clf_step.ffm", tmpdir);
    CHECK(ff_clf_trainer_save(&a, path, "r", &err) == FF_OK);
    ff_checkpoint ck = {0};
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_OK);
    CHECK(ff_clf_trainer_create(&b, &ck.cfg, &ck, NULL, NULL, &err) == FF_OK);
    CHECK(b.step == 5 && b.batch_in_epoch == 5);
    while (a.epoch < 2)
        ff_clf_trainer_next(&a, &images, &done);
    while (b.epoch < 2)
        ff_clf_trainer_next(&b, &images, &done);
    CHECK(images == 500 - 7 * 64 && done);
    CHECK(a.step == 16 && b.step == 16);
    CHECK(same_floats(a.ro.params, b.ro.params, a.ro.n_params));
    CHECK(ff_clf_trainer_evaluate(&a, FF_SET_TEST, NULL) == ff_clf_trainer_evaluate(&b, FF_SET_TEST, NULL));
    ff_checkpoint_free(&ck);
    ff_clf_trainer_free(&a);
    ff_clf_trainer_free(&b);
}

/* Colour data with jitter 4 and flips (CIFAR's augmentation) in joint passes: a positive
 * and its negative hold the same augmented image (only the label planes differ), and that
 * image is the source image mirrored and shifted as the batch's draw says (naive loop) */
static void test_colour_augmentation_shared(void)
{
    char dir[400], cmd[600];
    snprintf(dir, sizeof dir, "%s/colour_data", tmpdir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/make_cifar_fixture.py %s 20 20", dir);
    CHECK(system(cmd) == 0);
    ff_config cfg;
    ff_err err;
    quick_config(&cfg, "colour");
    const char *sets[] = {"model.label_embedding=channels", "train.jitter=4", "train.flip=true",
                          "train.negatives=random", "data.normalize=channel",
                          "data.train_limit=0", "data.test_limit=0",
                          "eval.softmax=false"}; /* the head would reuse t.x */
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        CHECK(ff_config_set(&cfg, sets[i], &err) == FF_OK);
    snprintf(cfg.data.dir, sizeof cfg.data.dir, "%s", dir);
    ff_trainer t;
    CHECK(ff_trainer_create(&t, &cfg, NULL, NULL, &err) == FF_OK);
    CHECK(t.train.shape.c == 3 && t.in_shape.c == 13 && t.aug != NULL);
    int idx[50];
    for (int i = 0; i < 50; i++)
        idx[i] = (i * 7) % t.train.n;
    ff_step_stats st;
    ff_trainer_step(&t, idx, &st);
    const int n = t.batch, hw = 32 * 32, img = 3 * hw;
    int same = 1, naive = 1, flips = 0, shifted = 0, label_differs = 0;
    for (int i = 0; i < n; i++) {
        const float *pos = t.x + (size_t)i * t.in_dim, *neg = t.x + (size_t)(n + i) * t.in_dim;
        const float *src = t.train.images + (size_t)idx[i] * img;
        const ff_aug a = t.aug[i];
        same &= memcmp(pos, neg, sizeof(float) * (size_t)img) == 0;
        label_differs += memcmp(pos + img, neg + img, sizeof(float) * 10 * (size_t)hw) != 0;
        flips += a.flip;
        shifted += a.dx != 0 || a.dy != 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    int sy = y - a.dy, sx = x - a.dx;
                    if (a.flip)
                        sx = 31 - sx;
                    float want = sy < 0 || sy > 31 || sx < 0 || sx > 31 ? 0.0f
                                 : src[(size_t)c * hw + (size_t)sy * 32 + (size_t)sx];
                    naive &= pos[(size_t)c * hw + (size_t)y * 32 + (size_t)x] == want;
                }
    }
    CHECK(n == 50);
    CHECK(same);
    CHECK(naive);
    CHECK(label_differs == n);                /* negatives carry another label */
    CHECK(flips > 10 && flips < 40 && shifted > 40);
    ff_trainer_free(&t);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ff_test_trainer.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_api_matches_whole_run);
    RUN(test_colour_augmentation_shared);
    RUN(test_next_is_step_over_order);
    RUN(test_restore_continues);
    RUN(test_restore_continues_sgd_head);
    RUN(test_head_lr_follows_schedule);
    RUN(test_divergence_stops);
    RUN(test_model_prefix_claims);
    RUN(test_clf_resume);
    RUN(test_competition_learns);
    RUN(test_train_epochs_freeze);
    RUN(test_competition_head_reuses_pass);
    RUN(test_competition_eval_stats);
    RUN(test_hand_on_batch);
    RUN(test_hand_on_affine);
    RUN(test_loss_after_pool);
    RUN(test_final_stats_kept);
    RUN(test_goodness_kept);
    RUN(test_softmax_from_goodness_passes);
    RUN(test_feature_cache);
    RUN(test_grouped_competition);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
