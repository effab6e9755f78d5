/* main.c - the ffrun command line: argument parsing, progress display, signal
 * handling and exit codes. The only file that prints errors or exits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ff/checkpoint.h"
#include "ff/config.h"
#include "ff/data.h"
#include "ff/eval.h"
#include "ff/readout.h"
#include "ff/embed.h"
#include "ff/net.h"
#include "ff/rng.h"
#include "ff/train.h"

#define FF_VERSION "0.1.0"
#define MAX_SETS 64

static const char usage_text[] =
    "usage: ffrun [OPTIONS] CONFIG.yaml\n"
    "       ffrun [OPTIONS] --resume [MODEL.ffm]\n"
    "       ffrun eval MODEL.ffm [--data DIR] [--softmax-epochs N]\n"
    "\n"
    "Trains a Forward-Forward network described by a YAML experiment file, logs\n"
    "TensorBoard event files under <log.dir>/<mode>/<YYYYmmdd-HHMMSS>[_NAME]/ and\n"
    "saves the model under <checkpoint.dir>/ (defaults: runs/, models/).\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE  override a config key, e.g. --set train.epochs=3\n"
    "                   (repeatable; validated like file values)\n"
    "  --name NAME      suffix of the run directory (same as --set name=NAME)\n"
    "  --resume [MODEL] continue the run saved in MODEL (default: the newest .ffm in\n"
    "                   models/): same run directory, RNG stream and step counter;\n"
    "                   the config comes from the model (--set may change it)\n"
    "  --max-steps N    stop after global step N as if interrupted (checkpoint, exit 130)\n"
    "  --dry-run        print the resolved config and the model summary, then exit\n"
    "  --quiet          print only errors and the final summary\n"
    "  --verbose        print a line per progress update even on a terminal\n"
    "  --help-config    list every config key with its type, default and meaning\n"
    "  --version        print the version\n"
    "  -h, --help       this text\n"
    "\n"
    "ffrun eval MODEL.ffm prints the test error of a saved model and a confusion matrix,\n"
    "using the MNIST files in DIR (default: the data.dir of the model's config).\n"
    "Supervised models: the goodness readout, and the softmax readout: the model's\n"
    "own head if training had eval.softmax on, else a head trained now for one epoch\n"
    "on the frozen net. --softmax-epochs N trains a new head for N epochs instead\n"
    "(0 skips the softmax readout).\n"
    "Classifier models (unsupervised_clf): their softmax readout.\n"
    "\n"
    "exit status: 0 success, 1 runtime failure, 2 usage or config error,\n"
    "130 interrupted (the model and event files are still written).\n";

typedef struct cli {
    const char *config_path;
    int resume;
    const char *resume_path;  /* NULL: the newest model in models/ */
    const char *sets[MAX_SETS];
    int n_sets;
    const char *name;
    int dry_run, quiet, verbose;
    long long max_steps;
} cli;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    if (stop_flag)
        _exit(128 + sig); /* second signal: leave at once */
    stop_flag = 1;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "ffrun: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'ffrun --help'.\n");
    return 2;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, cli *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("ffrun %s\n", FF_VERSION);
            return 0;
        } else if (!strcmp(a, "--help-config")) {
            ff_config_print_help(stdout);
            return 0;
        } else if (!strcmp(a, "--set") || !strcmp(a, "--name")) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", a);
            if (!strcmp(a, "--name"))
                c->name = argv[++i];
            else if (c->n_sets == MAX_SETS)
                return usage_error("too many --set options (max %s)", "64");
            else
                c->sets[c->n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            if (c->n_sets == MAX_SETS)
                return usage_error("too many --set options (max %s)", "64");
            c->sets[c->n_sets++] = a + 6;
        } else if (!strcmp(a, "--resume")) {
            c->resume = 1;
            if (i + 1 < argc && argv[i + 1][0] != '-')
                c->resume_path = argv[++i];
        } else if (!strcmp(a, "--max-steps")) {
            char *end;
            if (i + 1 >= argc)
                return usage_error("%s needs a value", a);
            c->max_steps = strtoll(argv[++i], &end, 10);
            if (*end || c->max_steps <= 0)
                return usage_error("--max-steps needs a positive integer, got '%s'", argv[i]);
        } else if (!strcmp(a, "--dry-run")) {
            c->dry_run = 1;
        } else if (!strcmp(a, "--quiet")) {
            c->quiet = 1;
        } else if (!strcmp(a, "--verbose")) {
            c->verbose = 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (c->config_path) {
            return usage_error("only one config file may be given (extra: '%s')", a);
        } else {
            c->config_path = a;
        }
    }
    if (c->resume && c->config_path)
        return usage_error("--resume takes its config from the model; drop '%s' (use --set)",
                           c->config_path);
    if (!c->config_path && !c->resume)
        return usage_error("%s", "no config file given");
    return -1;
}

/* Config from the file, or from the model being resumed (loaded into ck). */
static int load_config(const cli *c, ff_config *cfg, ff_checkpoint *ck, ff_err *err)
{
    int rc;
    if (c->resume) {
        char path[4096];
        if (c->resume_path)
            snprintf(path, sizeof path, "%s", c->resume_path);
        else if ((rc = ff_checkpoint_find_newest("models", NULL, path, sizeof path, err)))
            return rc;
        if ((rc = ff_checkpoint_load(path, ck, err)))
            return rc;
        if (!ck->run_dir[0])
            return ff_err_set(err, FF_ERR_USAGE, "%s: no run directory recorded; cannot resume",
                              path);
        fprintf(stderr, "ffrun: resuming %s (epoch %d, batch %d, step %lld)\n", path, ck->epoch,
                ck->batch, (long long)ck->step);
        *cfg = ck->cfg;
    } else if ((rc = ff_config_load(cfg, c->config_path, err)) == FF_ERR_IO) {
        rc = FF_ERR_USAGE; /* a config that cannot be read is a config error: exit 2 */
    }
    for (int i = 0; !rc && i < c->n_sets; i++)
        rc = ff_config_set(cfg, c->sets[i], err);
    if (!rc && c->name && strlen(c->name) >= sizeof cfg->name)
        rc = ff_err_set(err, FF_ERR_USAGE, "--name is too long (%zu characters, at most %zu)",
                        strlen(c->name), sizeof cfg->name - 1);
    if (!rc && c->name)
        snprintf(cfg->name, sizeof cfg->name, "%s", c->name);
    if (!rc)
        rc = ff_config_validate(cfg, err);
    return rc;
}

static int dry_run(const ff_config *cfg, ff_err *err)
{
    if (cfg->mode == FF_MODE_UNSUP_CLF && cfg->model.n_layers == 0) {
        char *yaml = malloc(1 << 16);
        if (!yaml)
            return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
        ff_config_to_yaml(cfg, yaml, 1 << 16);
        printf("# resolved config\n%s\n# model: the layers of the backbone (%s)\n", yaml,
               cfg->checkpoint.backbone[0] ? cfg->checkpoint.backbone
                                           : "the newest unsupervised_backbone_*.ffm");
        free(yaml);
        return FF_OK;
    }
    char *yaml = malloc(1 << 16);
    if (!yaml)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    ff_config_to_yaml(cfg, yaml, 1 << 16);
    printf("# resolved config\n%s\n", yaml);
    free(yaml);
    ff_rng rng;
    ff_rng_seed(&rng, cfg->seed);
    ff_net net;
    ff_shape in = ff_embed_shape(cfg->model.label_embedding, 28, 28);
    int rc = ff_net_build(&net, cfg, in, cfg->train.batch_size, &rng, err);
    if (rc)
        return rc;
    printf("# model (input %dx%dx%d)\n", in.c, in.h, in.w);
    printf("%-5s %-6s %-14s %12s %14s %14s\n", "layer", "kind", "output", "params",
           "MACs/image", "threshold");
    for (int l = 0; l < net.n_layers; l++) {
        const ff_layer *L = &net.layers[l];
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        printf("%-5d %-6s %-14s %12zu %14.0f %14g\n", l, ff_layer_kind_name(L->kind), shape,
               L->n_weights + L->n_bias, ff_layer_flops(L), L->threshold);
    }
    double acts = 0.0;
    for (int l = 0; l < net.n_layers; l++)
        acts += ff_shape_dim(net.layers[l].in) + ff_shape_dim(net.layers[l].out) +
                (double)ff_layer_patch_floats(&net.layers[l]);
    printf("total parameters %zu (%.1f MiB; with gradients and Adam state %.1f MiB), "
           "%.1f MFLOP per image per pass, activations (with kept receptive fields) %.1f MiB "
           "at batch %d\n",
           net.n_params, net.n_params * 4.0 / (1 << 20), net.n_params * 16.0 / (1 << 20),
           2e-6 * ff_net_flops(&net), (double)net.max_batch * 4.0 * acts / (1 << 20),
           net.max_batch);
    ff_net_free(&net);
    return FF_OK;
}

typedef struct progress_ui {
    int quiet, verbose, tty;
} progress_ui;

static void show_progress(void *ctx, const ff_progress *p)
{
    const progress_ui *ui = ctx;
    if (ui->quiet)
        return;
    if (!p->epoch_done) {
        if (!ui->tty && !ui->verbose)
            return;
        double eta = p->images_per_sec > 0
                         ? (p->n_batches - p->batch) * (p->epoch_seconds / p->batch)
                         : 0;
        int width = 30, fill = p->n_batches ? width * p->batch / p->n_batches : 0;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "%sepoch %d/%d [%s] %d/%d  %.0f img/s  loss %.4f  ETA %.0fs%s",
                ui->tty ? "\r" : "", p->epoch, p->epochs, bar, p->batch, p->n_batches,
                p->images_per_sec, p->loss, eta, ui->tty ? "\033[K" : "\n");
        return;
    }
    fprintf(stderr, "%sepoch %d/%d  %.1fs  %.0f img/s  loss %.4f", ui->tty ? "\r\033[K" : "",
            p->epoch, p->epochs, p->epoch_seconds, p->images_per_sec, p->loss);
    if (p->evaluated && p->test_error >= 0)
        fprintf(stderr, "  test error %.2f%%", 100.0 * p->test_error);
    if (p->evaluated && p->test_error_softmax >= 0)
        fprintf(stderr, "  softmax %.2f%%", 100.0 * p->test_error_softmax);
    fprintf(stderr, "\n");
}

static void show_info(void *ctx, const char *msg)
{
    const progress_ui *ui = ctx;
    if (!ui->quiet)
        fprintf(stderr, "ffrun: %s\n", msg);
}

static void print_summary(const ff_train_result *r)
{
    printf("\n%s after %d epoch(s) in %.1fs (%.2fs per epoch of training)\n",
           r->interrupted ? "interrupted" : "finished", r->epochs_done, r->seconds,
           r->epochs_done ? r->train_seconds / r->epochs_done : 0.0);
    if (r->best_error >= 0)
        printf("test error (%s readout): final %.2f%%, best %.2f%% at epoch %d\n", r->readout,
               100.0 * r->final_error, 100.0 * r->best_error, r->best_epoch);
    if (r->final_error_softmax >= 0 && strcmp(r->readout, "softmax") != 0)
        printf("test error (softmax readout): final %.2f%%\n", 100.0 * r->final_error_softmax);
    if (r->model_path[0])
        printf("model:       %s\n", r->model_path);
    if (r->best_path[0])
        printf("best model:  %s\n", r->best_path);
    if (r->run_dir[0]) {
        printf("event file:  %s\n", r->event_file);
        char root[1024];
        snprintf(root, sizeof root, "%s", r->run_dir);
        char *slash = strrchr(root, '/');
        if (slash)
            *slash = '\0';
        printf("tensorboard: tensorboard --logdir %s\n", root);
    }
}

static void print_confusion(const int64_t conf[100])
{
    printf("confusion matrix (rows: true label, columns: predicted)\n      ");
    for (int k = 0; k < 10; k++)
        printf("%6d", k);
    printf("\n");
    for (int t = 0; t < 10; t++) {
        printf("%6d", t);
        for (int k = 0; k < 10; k++)
            printf("%6lld", (long long)conf[t * 10 + k]);
        printf("\n");
    }
}

/* An unsupervised_clf model: backbone parameters, then the head's W and b. */
static int eval_classifier(const ff_checkpoint *ck, ff_net *net, const ff_dataset *test, float *x,
                           int64_t conf[100], ff_err *err)
{
    int layers[FF_MAX_LAYERS], n_layers;
    ff_readout ro = {0};
    int rc = ff_readout_layers(&ck->cfg, net, layers, &n_layers, err);
    if (!rc)
        rc = ff_readout_init(&ro, ff_readout_feature_dim(net, layers, n_layers), FF_NUM_CLASSES,
                             net->max_batch, err);
    if (!rc && ck->n_params != net->n_params + ro.n_params)
        rc = ff_err_set(err, FF_ERR_FORMAT, "classifier model: %llu parameters, expected %zu",
                        (unsigned long long)ck->n_params, net->n_params + ro.n_params);
    if (!rc) {
        memcpy(ro.params, ck->params + net->n_params, sizeof(float) * ro.n_params);
        ff_readout_input in = {.ds = test, .neutral = 0};
        double e = ff_readout_error(&ro, net, layers, n_layers, &in, 0, x, conf);
        printf("test error (softmax readout, %d images): %.2f%%\n", test->n, 100.0 * e);
    }
    ff_readout_free(&ro);
    return rc;
}

/* The softmax readout of a supervised model, a linear head on the normalised activities
 * (neutral label): the model's own head (ck->head) when epochs < 0, else a new head
 * trained here on the training set for `epochs` epochs with the net frozen. */
static int eval_supervised_softmax(const ff_checkpoint *ck, ff_net *net, const char *dir,
                                   const ff_dataset *test, int epochs, float *x, ff_err *err)
{
    const ff_config *cfg = &ck->cfg;
    ff_dataset train = {0};
    ff_readout ro = {0};
    int layers[FF_MAX_LAYERS], n_layers;
    int rc = epochs < 0 ? FF_OK : ff_dataset_load(&train, dir, "train", 0, err);
    if (!rc && epochs >= 0)
        rc = ff_dataset_check_same_shape(test, &train, err);
    if (!rc)
        rc = ff_readout_layers(cfg, net, layers, &n_layers, err);
    if (!rc)
        rc = ff_readout_init(&ro, ff_readout_feature_dim(net, layers, n_layers), FF_NUM_CLASSES,
                             net->max_batch, err);
    if (!rc && epochs < 0) {
        if (ck->n_head != ro.n_params)
            rc = ff_err_set(err, FF_ERR_FORMAT,
                            "the model's softmax head has %llu weights, its config builds %zu",
                            (unsigned long long)ck->n_head, ro.n_params);
        else {
            memcpy(ro.params, ck->head, sizeof(float) * ro.n_params);
            ff_readout_input te = {.ds = test, .neutral = 1, .embed = cfg->model.label_embedding};
            double e = ff_readout_error(&ro, net, layers, n_layers, &te, 0, x, NULL);
            printf("test error (softmax readout, the model's head): %.2f%%\n", 100.0 * e);
        }
        ff_readout_free(&ro);
        return rc;
    }
    int *order = rc ? NULL : malloc(sizeof(int) * (size_t)train.n);
    if (!rc && !order)
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    if (!rc) {
        ff_rng rng;
        ff_rng_seed(&rng, cfg->seed);
        ff_readout_input tr = {.ds = &train, .neutral = 1, .embed = cfg->model.label_embedding};
        for (int e = 0; e < epochs; e++) {
            for (int i = 0; i < train.n; i++)
                order[i] = i;
            ff_rng_shuffle(&rng, order, train.n);
            ff_readout_train_epoch(&ro, net, layers, n_layers, &tr, order, train.n, 100,
                                   cfg->clf.lr, x);
        }
        ff_readout_input te = tr;
        te.ds = test;
        double e = ff_readout_error(&ro, net, layers, n_layers, &te, 0, x, NULL);
        printf("test error (softmax readout, head trained %d epoch(s) now): %.2f%%\n", epochs,
               100.0 * e);
    }
    free(order);
    ff_readout_free(&ro);
    ff_dataset_free(&train);
    return rc;
}

/* ffrun eval MODEL [--data DIR] [--softmax-epochs N] */
static int eval_main(int argc, char **argv)
{
    const char *model = NULL, *data = NULL;
    int softmax_epochs = -1; /* not given: the model's own head, else one epoch */
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--softmax-epochs") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || v < 0 || v > 1000)
                return usage_error("eval: --softmax-epochs needs an integer from 0 to 1000, got '%s'",
                                   argv[i]);
            softmax_epochs = (int)v;
        }
        else if (argv[i][0] == '-')
            return usage_error("eval: unknown option '%s'", argv[i]);
        else if (model)
            return usage_error("eval: only one model may be given (extra: '%s')", argv[i]);
        else
            model = argv[i];
    }
    if (!model)
        return usage_error("%s", "eval: no model file given");
    ff_err err = {0};
    ff_checkpoint ck;
    ff_dataset test = {0};
    ff_net net = {0};
    float *x = NULL, *scores = NULL;
    int rc = ff_checkpoint_load(model, &ck, &err);
    if (rc)
        goto done;
    ff_rng rng;
    ff_rng_seed(&rng, ck.cfg.seed);
    ff_embed_kind kind = ck.cfg.model.label_embedding;
    if ((rc = ff_dataset_load(&test, data ? data : ck.cfg.data.dir, "t10k", 0, &err)) ||
        (rc = ff_net_build(&net, &ck.cfg, ff_embed_shape(kind, test.rows, test.cols), 1000, &rng,
                           &err)))
        goto done;
    if (net.n_params != ck.n_params && ck.cfg.mode != FF_MODE_UNSUP_CLF) {
        rc = ff_err_set(&err, FF_ERR_FORMAT, "%s: %llu parameters, its config builds %zu", model,
                        (unsigned long long)ck.n_params, net.n_params);
        goto done;
    }
    memcpy(net.params, ck.params, sizeof(float) * net.n_params);
    x = malloc(sizeof(float) * 1000 * (size_t)ff_shape_dim(net.input));
    scores = malloc(sizeof(float) * 1000 * 10);
    if (!x || !scores) {
        rc = ff_err_set(&err, FF_ERR_NOMEM, "out of memory");
        goto done;
    }
    int64_t conf[100];
    printf("model %s: %s, epoch %d, step %lld\n", model, ff_mode_name(ck.cfg.mode), ck.epoch,
           (long long)ck.step);
    if (ck.cfg.mode == FF_MODE_SUPERVISED) {
        double e = ff_eval_error(&net, kind, &test, 0, x, scores, conf);
        printf("test error (goodness readout, %d images): %.2f%%\n", test.n, 100.0 * e);
        if (softmax_epochs < 0 && ck.n_head == 0)
            softmax_epochs = 1;
        if (softmax_epochs != 0 &&
            (rc = eval_supervised_softmax(&ck, &net, data ? data : ck.cfg.data.dir, &test,
                                          softmax_epochs, x, &err)))
            goto done;
    } else if (ck.cfg.mode == FF_MODE_UNSUP_CLF) {
        if ((rc = eval_classifier(&ck, &net, &test, x, conf, &err)))
            goto done;
    } else {
        rc = ff_err_set(&err, FF_ERR_USAGE,
                        "%s is an unsupervised backbone: it has no classifier; train "
                        "configs/unsupervised_clf.yaml on it, then evaluate that model",
                        model);
        goto done;
    }
    print_confusion(conf);
done:
    if (rc)
        fprintf(stderr, "ffrun: %s\n", err.msg);
    free(x);
    free(scores);
    ff_net_free(&net);
    ff_dataset_free(&test);
    ff_checkpoint_free(&ck);
    return ff_err_exit_status(rc);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "eval"))
        return eval_main(argc, argv);
    cli c = {0};
    int status = parse_args(argc, argv, &c);
    if (status >= 0)
        return status;
    ff_err err = {0};
    ff_config cfg;
    ff_checkpoint ck = {0};
    int rc = load_config(&c, &cfg, &ck, &err);
    if (!rc && c.dry_run)
        rc = dry_run(&cfg, &err);
    if (rc || c.dry_run) {
        if (rc)
            fprintf(stderr, "ffrun: %s\n", err.msg);
        ff_checkpoint_free(&ck);
        return ff_err_exit_status(rc);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    progress_ui ui = {.quiet = c.quiet, .verbose = c.verbose, .tty = isatty(2) && !c.verbose};
    ff_train_opts opts = {.resume = c.resume ? &ck : NULL, .stop = &stop_flag, .info = show_info,
                          .max_steps = c.max_steps, .progress = show_progress, .progress_ctx = &ui,
                          .progress_every = ui.tty ? 10 : 100};
    ff_train_result res;
    rc = ff_train(&cfg, &opts, &res, &err);
    print_summary(&res);
    if (rc)
        fprintf(stderr, "ffrun: %s\n", err.msg);
    ff_checkpoint_free(&ck);
    return ff_err_exit_status(rc);
}
