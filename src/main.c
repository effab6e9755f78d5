/* main.c - the ffrun command line: argument parsing, progress display, signal
 * handling and exit codes. With the subcommands of src/cmd_*.c (cmd.h), the only
 * files that print errors or exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ff/blas.h"
#include "ff/checkpoint.h"
#include "ff/clf_trainer.h"
#include "ff/config.h"
#include "ff/data.h"
#include "ff/embed.h"
#include "ff/net.h"
#include "ff/parallel.h"
#include "ff/rng.h"
#include "ff/sweep.h"
#include "ff/train.h"
#include "ff/trainer.h"

#include "cmd.h"
#include "ff/run_record.h" /* FF_VERSION */
#define MAX_SETS 64

static const char usage_text[] =
    "usage: ffrun [OPTIONS] CONFIG.yaml\n"
    "       ffrun [OPTIONS] --resume [MODEL.ffm]\n"
    "       ffrun eval MODEL.ffm [--data DIR] [--softmax-epochs N] [--layers I,J,...]\n"
    "             [--set clf.KEY=VALUE ...] [--on test|validation]\n"
    "       ffrun predict MODEL.ffm INPUT... [--json] [--top K] [--readout R] [--data DIR]\n"
    "       ffrun export MODEL.ffm OUT.npz [--data DIR]\n"
    "       ffrun sweep SWEEP.yaml [--dry-run] [--max-steps N] [--jobs N] [--threads N]\n"
    "       ffrun CONFIG.yaml --sweep KEY=V1,V2,... [--sweep ...] [--seeds N] [--jobs N]\n"
    "             [--threads N] [--set ...]\n"
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
    "  --stop-epoch N   stop after epoch N (evaluated) as if interrupted (ffrun sweep's\n"
    "                   asha rungs: a step model to resume from, exit 130)\n"
    "  --sweep KEY=V1,V2,...  a grid sweep over the values of KEY (repeatable)\n"
    "  --seeds N        run every sweep point with seeds 1..N\n"
    "  --jobs N, --threads N  sweeps: runs at once, BLAS threads per run (default:\n"
    "                   one run per core, one thread each)\n"
    "  --sweep-run DIR  (used by ffrun sweep for its runs) log into exactly DIR\n"
    "  --dry-run        print the resolved config and the model summary, then exit\n"
    "  --quiet          print only errors and the final summary\n"
    "  --verbose        print a line per progress update even on a terminal\n"
    "  --help-config    list every config key with its type, default and meaning\n"
    "  --version        print the version\n"
    "  -h, --help       this text\n"
    "\n"
    "ffrun sweep runs every point of a sweep file (README.md, \"Sweeps\") as its own\n"
    "ffrun process under <log.dir>/<mode>/<stamp>_<name>/<point>/, validating them all\n"
    "first, and writes SUMMARY.md and summary.csv there; the same command again skips\n"
    "finished runs and resumes interrupted ones. `scheduler: asha` stops unpromising\n"
    "runs early; under mpirun -np N the runs are spread over the N ranks.\n"
    "\n"
    "ffrun eval MODEL.ffm prints the test error of a saved model and a confusion matrix,\n"
    "using the MNIST files in DIR (default: the data.dir of the model's config).\n"
    "Supervised models: the goodness readout, and the softmax readout: the model's\n"
    "own head if training had eval.softmax on, else a head trained now for one epoch\n"
    "on the frozen net. --softmax-epochs N trains a new head for N epochs instead\n"
    "(0 skips the softmax readout). --layers I,J,... sums the goodness of those\n"
    "trainable layers (0-based) instead of the model's eval.layers. --set clf.KEY=VALUE\n"
    "(repeatable; clf.* keys only) trains the new head with other settings, e.g.\n"
    "--set clf.norm=batch --set clf.lr=0.0003 (one epoch unless --softmax-epochs).\n"
    "With clf.lr_schedule true the new head's lr follows the config's schedule over\n"
    "its own epochs. --on validation reads the model's validation images (its\n"
    "data.validation split) instead of the test set: choose head settings there.\n"
    "Classifier models (unsupervised_clf): their softmax readout.\n"
    "\n"
    "ffrun predict MODEL.ffm INPUT... classifies image files (PNG, PGM/PPM, IDX,\n"
    "CIFAR-10 batches, - for a list of paths on standard input): one line per image with\n"
    "the predicted class and the readout's scores (ffrun predict --help).\n"
    "ffrun export MODEL.ffm OUT.npz writes the weights, statistics and a manifest.json\n"
    "for NumPy / PyTorch (tools/ffm_torch.py rebuilds the net; ffrun export --help).\n"
    "\n"
    "Nothing is lost on a crash: Ctrl-C, SIGTERM or a hang-up (unless under nohup)\n"
    "finishes the batch and saves a step model; against a killed machine, a step model\n"
    "every checkpoint.minutes (default 15) while FF layers train. --resume (no MODEL)\n"
    "takes the newest.\n"
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
    const char *sweeps[FF_SWEEP_MAX_AXES]; /* --sweep KEY=V1,V2 */
    int n_sweeps, seeds;
    int jobs, threads;                    /* --jobs N, --threads N (with --sweep/--seeds) */
    const char *sweep_run;                /* --sweep-run DIR */
    int stop_epoch;                       /* --stop-epoch N */
    char error[FF_ERR_MSG_MAX];           /* a usage error of the command line */
} cli;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    if (stop_flag) /* second signal: leave at once (SIGUSR1: a second stop from
                    * tools/ffmpirun, a second Ctrl-C: 130 as for SIGINT) */
        _exit(sig == SIGUSR1 ? 128 + SIGINT : 128 + sig);
    stop_flag = 1;
}

/* Ctrl-C, SIGTERM, SIGUSR1 (what mpirun forwards to the ranks, tools/ffmpirun) and a
 * hang-up of the terminal stop the run with a model saved; a hang-up only if the run
 * was not started to survive it (nohup: SIGHUP ignored, and kept so). */
static void catch_stop_signals(void (*handler)(int))
{
    struct sigaction sa = {0}, hup;
    sa.sa_handler = handler;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
}

/* A whole positive decimal integer ("3x", "", "0" and "-1" are not). */
static int parse_count(const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return end != s && !*end && !errno && *out > 0;
}

/* Under mpirun every rank calls this once at start-up, before any allocation or other
 * collective: rc is its start-up status (message in err), text its view of the run
 * ("key=value" lines; NULL: nothing to compare). Returns the status all ranks agree on
 * (alone: rc); a failure is printed once, by rank 0, and no rank waits for another. */
static int agree_or_report(int rc, const char *text, ff_err *err)
{
    rc = ff_parallel_agree(rc, text, err);
    if (rc && ff_parallel_rank() == 0)
        fprintf(stderr, "ffrun: %s\n", err->msg);
    return rc;
}

/* A usage error of `ffrun eval` or `ffrun sweep` (before their start-up handshake):
 * printed once, exit status 2. */
static int usage_error(const char *fmt, const char *arg)
{
    ff_err err;
    int n = snprintf(err.msg, sizeof err.msg, fmt, arg);
    if (n >= 0 && (size_t)n < sizeof err.msg)
        snprintf(err.msg + n, sizeof err.msg - (size_t)n, "\nTry 'ffrun --help'.");
    err.code = FF_ERR_USAGE;
    agree_or_report(FF_ERR_USAGE, NULL, &err);
    return 2;
}

/* A growing text of "key=value" lines (what the ranks compare at start-up). */
typedef struct kv_text {
    char *buf;
    size_t n, cap;
    int failed; /* out of memory */
} kv_text;

static void kv_add(kv_text *t, const char *key, const char *value)
{
    const size_t need = strlen(key) + strlen(value) + 3;
    if (t->failed)
        return;
    if (t->n + need > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8192;
        while (cap < t->n + need)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
    for (const char *k = key; *k; k++) /* one line per key, whatever the value holds */
        t->buf[t->n++] = *k == '\n' || *k == '=' ? ' ' : *k;
    t->buf[t->n++] = '=';
    for (const char *v = value; *v; v++)
        t->buf[t->n++] = *v == '\n' ? ' ' : *v;
    t->buf[t->n++] = '\n';
    t->buf[t->n] = '\0';
}

static void kv_add_config_key(void *ctx, const char *key, ff_hp_type type, double number,
                              const char *string, int boolean)
{
    char v[64];
    if (type == FF_HP_NUMBER)
        snprintf(v, sizeof v, "%.17g", number);
    else if (type == FF_HP_BOOL)
        snprintf(v, sizeof v, "%s", boolean ? "true" : "false");
    kv_add(ctx, key, type == FF_HP_STRING ? string : v);
}

/* The command, then the arguments after the program's name, one line each
 * ("argument N=..."). */
static void kv_add_args(kv_text *t, const char *command, int argc, char **argv)
{
    char key[32];
    kv_add(t, "command", command);
    kv_add(t, "ffrun", FF_VERSION);
    for (int i = 1; i < argc; i++) {
        snprintf(key, sizeof key, "argument %d", i);
        kv_add(t, key, argv[i]);
    }
}

/* The start-up handshake of a command whose ranks compare their arguments (ffrun eval,
 * ffrun sweep, --sweep, --help): rc this rank's status so far. Every rank passes a text
 * or none at all (out of memory is a failure of its own), so no rank waits for another. */
static int agree_on_args(int rc, const char *command, int argc, char **argv, ff_err *err)
{
    kv_text t = {0};
    kv_add_args(&t, command, argc, argv);
    if (!rc && t.failed)
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    rc = ff_parallel_agree(rc, rc ? NULL : t.buf, err);
    free(t.buf);
    return rc;
}

/* What a training run's ranks must agree on: the binary's version, the resolved
 * config and the options that change the run. */
static int run_text(const cli *c, const ff_config *cfg, const ff_checkpoint *ck, kv_text *t,
                    ff_err *err)
{
    char v[96];
    kv_add(t, "command", "train");
    kv_add(t, "ffrun", FF_VERSION);
    ff_config_visit(cfg, kv_add_config_key, t);
    if (c->resume)
        snprintf(v, sizeof v, "step %lld (epoch %d, batch %d)", (long long)ck->step, ck->epoch,
                 ck->batch);
    kv_add(t, "--resume", c->resume ? v : "no");
    snprintf(v, sizeof v, "%lld", c->max_steps);
    kv_add(t, "--max-steps", c->max_steps ? v : "none");
    snprintf(v, sizeof v, "%d", c->stop_epoch);
    kv_add(t, "--stop-epoch", c->stop_epoch ? v : "none");
    kv_add(t, "--sweep-run", c->sweep_run ? c->sweep_run : "none");
    kv_add(t, "--dry-run", c->dry_run ? "yes" : "no");
    return t->failed ? ff_err_set(err, FF_ERR_NOMEM, "out of memory") : FF_OK;
}

/* A usage error of the command line into c->error (printed after the ranks agree);
 * returns exit status 2. */
static int cli_error(cli *c, const char *fmt, const char *arg)
{
    int n = snprintf(c->error, sizeof c->error, fmt, arg);
    if (n >= 0 && (size_t)n < sizeof c->error)
        snprintf(c->error + n, sizeof c->error - (size_t)n, "\nTry 'ffrun --help'.");
    return 2;
}

/* The command line for the run record: the arguments joined by spaces, one holding a
 * space or a quote single-quoted as a shell would need it (truncated to cap). */
static void command_line(int argc, char **argv, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < argc && n + 1 < cap; i++) {
        const char *a = argv[i];
        const int quote = !a[0] || strpbrk(a, " \t\n'\"\\$`*?[]{}();&|<>~#") != NULL;
        if (i)
            out[n++] = ' ';
        if (quote && n + 1 < cap)
            out[n++] = '\'';
        for (; *a && n + 5 < cap; a++) {
            if (quote && *a == '\'') { /* ' -> '\'' */
                memcpy(out + n, "'\\''", 4);
                n += 4;
            } else {
                out[n++] = *a;
            }
        }
        if (quote && n + 1 < cap)
            out[n++] = '\'';
        out[n < cap ? n : cap - 1] = '\0';
    }
}

/* Returns -1 to go on, or an exit status (2: the message in c->error). */
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
                return cli_error(c, "%s needs a value", a);
            if (!strcmp(a, "--name"))
                c->name = argv[++i];
            else if (c->n_sets == MAX_SETS)
                return cli_error(c, "too many --set options (max %s)", "64");
            else
                c->sets[c->n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            if (c->n_sets == MAX_SETS)
                return cli_error(c, "too many --set options (max %s)", "64");
            c->sets[c->n_sets++] = a + 6;
        } else if (!strcmp(a, "--resume")) {
            c->resume = 1;
            if (i + 1 < argc && argv[i + 1][0] != '-')
                c->resume_path = argv[++i];
        } else if (!strcmp(a, "--max-steps")) {
            char *end;
            if (i + 1 >= argc)
                return cli_error(c, "%s needs a value", a);
            c->max_steps = strtoll(argv[++i], &end, 10);
            if (*end || c->max_steps <= 0)
                return cli_error(c, "--max-steps needs a positive integer, got '%s'", argv[i]);
        } else if (!strcmp(a, "--stop-epoch")) {
            char *end;
            if (i + 1 >= argc)
                return cli_error(c, "%s needs a value", a);
            long v = strtol(argv[++i], &end, 10);
            if (*end || v <= 0 || v > 1000000)
                return cli_error(c, "--stop-epoch needs a positive integer, got '%s'", argv[i]);
            c->stop_epoch = (int)v;
        } else if (!strcmp(a, "--jobs") || !strcmp(a, "--threads")) {
            long long v;
            if (i + 1 >= argc || !parse_count(argv[i + 1], &v) || v > 4096)
                return cli_error(c, "%s needs a positive integer", a);
            i++;
            *(!strcmp(a, "--jobs") ? &c->jobs : &c->threads) = (int)v;
        } else if (!strcmp(a, "--sweep") || !strcmp(a, "--seeds") || !strcmp(a, "--sweep-run")) {
            if (i + 1 >= argc)
                return cli_error(c, "%s needs a value", a);
            if (!strcmp(a, "--sweep-run"))
                c->sweep_run = argv[++i];
            else if (!strcmp(a, "--seeds") && (c->seeds = atoi(argv[++i])) <= 0)
                return cli_error(c, "--seeds needs a positive integer, got '%s'", argv[i]);
            else if (!strcmp(a, "--sweep") && c->n_sweeps == FF_SWEEP_MAX_AXES)
                return cli_error(c, "too many --sweep options (max %s)", "16");
            else if (!strcmp(a, "--sweep"))
                c->sweeps[c->n_sweeps++] = argv[++i];
        } else if (!strcmp(a, "--dry-run")) {
            c->dry_run = 1;
        } else if (!strcmp(a, "--quiet")) {
            c->quiet = 1;
        } else if (!strcmp(a, "--verbose")) {
            c->verbose = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_error(c, "unknown option '%s'", a);
        } else if (c->config_path) {
            return cli_error(c, "only one config file may be given (extra: '%s')", a);
        } else {
            c->config_path = a;
        }
    }
    if ((c->jobs || c->threads) && !c->n_sweeps && !c->seeds)
        return cli_error(c, "%s", "--jobs and --threads go with --sweep or --seeds (a single run "
                           "takes its threads from OPENBLAS_NUM_THREADS)");
    if (c->resume && c->config_path)
        return cli_error(c, "--resume takes its config from the model; drop '%s' (use --set)",
                           c->config_path);
    if (!c->config_path && !c->resume)
        return cli_error(c, "%s", "no config file given");
    return -1;
}

/* Config from the file, or from the model being resumed (loaded into ck). */
static int load_config(const cli *c, ff_config *cfg, ff_checkpoint *ck, char *path, size_t cap,
                       ff_err *err)
{
    int rc;
    if (c->resume) {
        if (c->resume_path)
            snprintf(path, cap, "%s", c->resume_path);
        else if ((rc = ff_checkpoint_find_newest("models", NULL, path, cap, err)))
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
    /* the shapes and buffer rows the trainer would use, from the real data */
    ff_dataset train = {0};
    ff_trainer_plan plan;
    int rc = ff_dataset_open(&train, cfg->data.dir, cfg->data.format, FF_SPLIT_TRAIN,
                             cfg->data.train_limit, err);
    if (!rc)
        rc = ff_trainer_plan_for(cfg, train.shape, train.n, &plan, err);
    const ff_data_format format = train.format;
    const ff_shape image = train.shape;
    int n_val = 0;
    if (!rc)
        rc = ff_data_validation_plan(cfg->data.validation, train.n, "", &n_val, err);
    const int n_train = train.n - n_val;
    ff_dataset_free(&train);
    if (!rc && n_val > 0)
        rc = ff_trainer_plan_for(cfg, image, n_train, &plan, err);
    if (rc)
        return rc;
    char held[96] = "";
    if (n_val > 0)
        snprintf(held, sizeof held, " (%d more held out for validation, data.validation_seed %llu)",
                 n_val, (unsigned long long)cfg->data.validation_seed);
    printf("# data: %s, format %s%s, %d training images%s of %dx%dx%d (channels x height x "
           "width)%s\n", cfg->data.dir, ff_data_format_name(format),
           cfg->data.format == FF_DATA_AUTO ? " (detected)" : "", n_train, held, image.c,
           image.h, image.w, cfg->data.normalize == FF_DATA_NORM_CHANNEL
                                 ? ", standardised per channel with the training images' "
                                   "statistics"
                                 : "");
    ff_rng rng;
    ff_rng_seed(&rng, cfg->seed);
    ff_net net;
    const ff_shape in = plan.in_shape;
    rc = ff_net_build(&net, cfg, in, plan.max_batch, &rng, err);
    if (rc)
        return rc;
    printf("# model (input %dx%dx%d)\n", in.c, in.h, in.w);
    printf("%-5s %-6s %-14s %12s %14s %14s\n", "layer", "kind", "output", "params",
           "MACs/image", "threshold");
    for (int l = 0; l <= net.n_layers; l++) {
        char shape[32];
        if (ff_net_pooled(&net, l)) { /* folded into layer l's input: no index of its own */
            const ff_layer *P = &net.pool[l];
            snprintf(shape, sizeof shape, "%dx%dx%d", P->out.c, P->out.h, P->out.w);
            char reader[48] = "";
            if (l > 0 && net.post[l - 1])
                snprintf(reader, sizeof reader, "; layer %d's loss reads it", l - 1);
            printf("%-5s %-6s %-14s %12d %14s %14s  (%s %d, stride %d%s)\n", "", "pool", shape, 0,
                   "-", "-", P->pool == FF_POOL_MAX ? "max" : "avg", P->kernel, P->stride, reader);
        }
        if (l == net.n_layers) /* a pool at the end (model.loss_after_pool) */
            break;
        const ff_layer *L = &net.layers[l];
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        char theta[32] = "-"; /* only the threshold loss has one */
        if (cfg->train.loss == FF_LOSS_THRESHOLD)
            snprintf(theta, sizeof theta, "%g", L->threshold);
        char groups[48] = ""; /* grouped conv; summed directly (src/conv_direct.c) */
        const int direct = L->kind == FF_LAYER_CONV && L->direct && !L->const_c;
        if (L->groups > 1 && direct)
            snprintf(groups, sizeof groups, "  (groups %d; direct loops)", L->groups);
        else if (L->groups > 1)
            snprintf(groups, sizeof groups, "  (groups %d)", L->groups);
        else if (direct)
            snprintf(groups, sizeof groups, "  (direct loops)");
        printf("%-5d %-6s %-14s %12zu %14.0f %14s%s\n", l, ff_config_layer_kind_name(L->kind), shape,
               ff_layer_n_params(L), ff_layer_flops(L), theta, groups);
    }
    double acts = 0.0;
    for (int l = 0; l < net.n_layers; l++)
        acts += ff_shape_dim(net.layers[l].in) + ff_shape_dim(net.layers[l].out) +
                (net.recurrent || cfg->model.recurrent.iterations > 0
                     ? 0.0 /* the recurrent net keeps none */
                     : (double)ff_layer_patch_floats(&net.layers[l])) +
                (net.post[l] ? (double)ff_shape_dim(net.pool[l + 1].out) : 0.0); /* pooled */
    printf("total parameters %zu (%.1f MiB; with gradients and Adam state %.1f MiB), "
           "%.1f MFLOP per image per pass, activations (with kept receptive fields) %.1f MiB "
           "(%d buffer rows for batch %d)\n",
           net.n_params, net.n_params * 4.0 / (1 << 20), net.n_params * 16.0 / (1 << 20),
           2e-6 * ff_net_flops(&net), (double)net.max_batch * 4.0 * acts / (1 << 20),
           net.max_batch, plan.batch);
    char rec[2048]; /* model.recurrent: the iterations, top-down weights and readout */
    if (ff_recurrent_describe(&net, cfg, rec, sizeof rec))
        fputs(rec, stdout);
    /* what each mode moves per batch: data parallel sums every gradient once per
     * optimiser step (two steps per batch with alternate passes); a pipeline hands
     * the normalised input of each later stage's first layer on, for the batch's
     * positive and negative rows */
    const double rows = 2.0 * plan.batch;
    const int steps = cfg->train.passes == FF_PASS_JOINT ? 1 : 2;
    if (cfg->parallel.mode == FF_PAR_DATA)
        printf("data parallel: %.1f MB of gradients summed per batch (%d optimiser step%s)\n",
               steps * net.n_params * 4e-6, steps, steps > 1 ? "s" : "");
    if (cfg->parallel.mode == FF_PAR_PIPELINE) { /* the ranks' layers, balanced by MACs */
        const int n0 = ff_parallel_size() > 1 ? ff_parallel_size() : 2;
        const int n1 = ff_parallel_size() > 1 ? ff_parallel_size() : net.n_layers;
        for (int n = n0; n <= n1 && n <= net.n_layers; n++) {
            int first[FF_MAX_LAYERS + 1];
            ff_parallel_stages(&net, n, first);
            printf("pipeline on %d ranks:", n);
            for (int r = 0; r < n; r++) {
                double macs = 0.0;
                for (int l = first[r]; l < first[r + 1]; l++)
                    macs += ff_layer_flops(&net.layers[l]);
                printf("%s rank %d layers %d-%d (%.2f M MACs)", r ? "," : "", r, first[r],
                       first[r + 1] - 1, macs * 1e-6);
            }
            double moved = 0.0;
            for (int r = 1; r < n; r++)
                moved += rows * ff_shape_dim(net.layers[first[r]].in) * 4e-6;
            printf("; %.2f MB handed on per batch\n", moved);
        }
    }
    ff_net_free(&net);
    return FF_OK;
}

typedef struct progress_ui {
    int quiet, verbose, tty;
} progress_ui;

/* "loss L" (the FF layers'), "head H" (the softmax head's): those that learn */
static void format_losses(const ff_progress *p, char *buf, size_t size)
{
    int n = 0;
    buf[0] = '\0';
    if (p->loss >= 0)
        n = snprintf(buf, size, "  loss %.4f", p->loss);
    if (p->head_loss >= 0 && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - n, "  head %.4f", p->head_loss);
}

static void show_progress(void *ctx, const ff_progress *p)
{
    const progress_ui *ui = ctx;
    if (ui->quiet)
        return;
    char losses[64];
    format_losses(p, losses, sizeof losses);
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
        fprintf(stderr, "%sepoch %d/%d [%s] %d/%d  %.0f img/s%s  ETA %.0fs%s",
                ui->tty ? "\r" : "", p->epoch, p->epochs, bar, p->batch, p->n_batches,
                p->images_per_sec, losses, eta, ui->tty ? "\033[K" : "\n");
        return;
    }
    fprintf(stderr, "%sepoch %d/%d  %.1fs  %.0f img/s%s", ui->tty ? "\r\033[K" : "",
            p->epoch, p->epochs, p->epoch_seconds, p->images_per_sec, losses);
    if (p->val_error >= 0)
        fprintf(stderr, "  val error %.2f%%", 100.0 * p->val_error);
    if (p->val_error_softmax >= 0)
        fprintf(stderr, "  val softmax %.2f%%", 100.0 * p->val_error_softmax);
    if (p->test_error >= 0)
        fprintf(stderr, "  test error %.2f%%", 100.0 * p->test_error);
    if (p->test_error_softmax >= 0)
        fprintf(stderr, "  softmax %.2f%%", 100.0 * p->test_error_softmax);
    fprintf(stderr, "  (+%.1fs %s)\n", p->after_seconds,
            p->evaluated ? "evaluation, logs, files" : "logs, files");
}

static void show_info(void *ctx, const char *msg)
{
    const progress_ui *ui = ctx;
    if (!ui->quiet) /* on a terminal, in place of the progress bar (redrawn next) */
        fprintf(stderr, "%sffrun: %s\n", ui->tty ? "\r\033[K" : "", msg);
}

static void print_summary(const ff_train_result *r, int failed)
{
    printf("\n%s after %d epoch(s) in %.1fs (%.2fs per epoch of training)\n",
           r->interrupted ? "interrupted" : failed ? "failed" : "finished", r->epochs_done,
           r->seconds,
           r->epochs_trained > 0 ? r->train_seconds / r->epochs_trained : 0.0);
    if (r->train_images > 0 && r->train_seconds > 0)
        printf("training:    %lld images in %.1fs, %.0f images/s\n", (long long)r->train_images,
               r->train_seconds, r->train_images / r->train_seconds);
    const int soft_too = strcmp(r->readout, "softmax") != 0; /* goodness first, softmax too */
    if (r->val_final_error >= 0) { /* the validation images chose; the test set read once */
        printf("validation error (%s readout): final %.2f%%, best %.2f%% at epoch %d%s\n",
               r->readout, 100.0 * r->val_final_error, 100.0 * r->best_error, r->best_epoch,
               r->best_path[0] ? " (chose the best model)" : "");
        if (r->val_final_error_softmax >= 0 && soft_too)
            printf("validation error (softmax readout): final %.2f%%\n",
                   100.0 * r->val_final_error_softmax);
        if (r->final_error >= 0)
            printf("test error (%s readout): final %.2f%% (the last epoch's model)\n",
                   r->readout, 100.0 * r->final_error);
    } else if (r->best_error >= 0) {
        printf("test error (%s readout): final %.2f%%, best %.2f%% at epoch %d (chosen on the "
               "test set: no data.validation)\n", r->readout, 100.0 * r->final_error,
               100.0 * r->best_error, r->best_epoch);
    }
    if (r->final_error_softmax >= 0 && soft_too)
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

static const char *const set_names[FF_SET_COUNT] = {"validation", "test"};

/* FF_ERR_USAGE if the set has no images (a model trained without data.validation) */
static int need_images(int n, ff_eval_set set, ff_err *err)
{
    if (n > 0)
        return FF_OK;
    return ff_err_set(err, FF_ERR_USAGE, "eval --on %s: the model holds out no validation "
                      "images (its data.validation is 0)", set_names[set]);
}

/* An unsupervised_clf model through the classifier trainer: its head's error. */
static int eval_classifier(const ff_checkpoint *ck, const ff_config *cfg, ff_eval_set set,
                           int64_t conf[100], ff_err *err)
{
    ff_clf_trainer t;
    int rc = ff_clf_trainer_create(&t, cfg, ck, NULL, NULL, err);
    const int n = set == FF_SET_VAL ? t.val.n : t.test.n;
    if (!rc)
        rc = need_images(n, set, err);
    if (!rc) {
        double e = ff_clf_trainer_evaluate(&t, set, conf);
        printf("%s error (softmax readout, %d images): %.2f%%\n", set_names[set], n, 100.0 * e);
    }
    ff_clf_trainer_free(&t);
    return rc;
}

/* A supervised model through the trainer: the goodness readout, then the softmax
 * readout (a linear head on the normalised activities, neutral label): the model's
 * own head when softmax_epochs < 0 and it has one, else a new head trained here for
 * softmax_epochs epochs (1 if not given) on the frozen net; 0 skips it. */
static int eval_supervised(const ff_checkpoint *ck, ff_config *cfg, int softmax_epochs,
                           ff_eval_set set, int64_t conf[100], ff_err *err)
{
    const int own_head = softmax_epochs < 0 && ck->n_head > 0;
    if (softmax_epochs < 0 && !own_head)
        softmax_epochs = 1;
    cfg->eval.softmax = 1; /* the trainer builds a head; restore fills it if the model has one */
    ff_trainer t;
    int rc = ff_trainer_create(&t, cfg, NULL, NULL, err);
    if (!rc)
        rc = ff_trainer_restore(&t, ck, NULL, NULL, err);
    if (!rc && own_head && ck->n_head != t.ro.n_params)
        rc = ff_err_set(err, FF_ERR_FORMAT,
                        "the model's softmax head has %llu weights, its config builds %zu",
                        (unsigned long long)ck->n_head, t.ro.n_params);
    const int n = set == FF_SET_VAL ? t.val.n : t.test.n;
    if (!rc)
        rc = need_images(n, set, err);
    if (!rc) {
        const char *on = set_names[set];
        ff_trainer_refresh_stats(&t); /* a model saved mid-epoch holds running averages */
        ff_set_errors es;
        double e = ff_trainer_goodness_errors(&t, set, &es, conf);
        printf("%s error (goodness readout, %d images): %.2f%%\n", on, n, 100.0 * e);
        if (own_head) {
            e = ff_trainer_softmax_error_on(&t, set, 0, 0, cfg->seed, NULL);
            printf("%s error (softmax readout, the model's head): %.2f%%\n", on, 100.0 * e);
        } else if (softmax_epochs > 0) {
            e = ff_trainer_softmax_error_on(&t, set, softmax_epochs, 1, cfg->seed, NULL);
            printf("%s error (softmax readout, head trained %d epoch(s) now): %.2f%%\n", on,
                   softmax_epochs, 100.0 * e);
        }
    }
    ff_trainer_free(&t);
    return rc;
}

/* The trainers' restore messages speak of resuming ("cannot resume: the model has ...");
 * ffrun eval says what it could not do, and with which model: a model file whose weights
 * do not fit its own config is a defective file (exit 1), not a usage error. */
static int as_eval_error(int rc, ff_err *err, const char *model)
{
    static const char resume[] = "cannot resume";
    if (rc && !strncmp(err->msg, resume, sizeof resume - 1)) {
        char rest[FF_ERR_MSG_MAX];
        snprintf(rest, sizeof rest, "%s", err->msg + sizeof resume - 1);
        rc = ff_err_set(err, FF_ERR_FORMAT, "%.300s: cannot evaluate%.700s", model, rest);
    }
    return rc;
}

/* "1,3" into layers (at most FF_MAX_LAYERS distinct indices from 0); the count, or -1 */
static int parse_layer_list(const char *s, int layers[FF_MAX_LAYERS])
{
    int n = 0;
    while (*s) {
        char *end;
        const long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= FF_MAX_LAYERS || n == FF_MAX_LAYERS ||
            (*end && *end != ','))
            return -1;
        for (int k = 0; k < n; k++)
            if (layers[k] == v)
                return -1;
        layers[n++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end && !*s)
            return -1; /* a trailing comma */
    }
    return n;
}

/* ffrun eval MODEL [--data DIR] [--softmax-epochs N] [--layers I,J,...] [--set clf.K=V ...] */
static int eval_main(int argc, char **argv)
{
    const char *model = NULL, *data = NULL;
    int softmax_epochs = -1; /* not given: the model's own head, else one epoch */
    int layers[FF_MAX_LAYERS], n_layers = -1; /* -1: the model's eval.layers */
    ff_eval_set on = FF_SET_TEST;
    const char *sets[64];
    int n_sets = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            if (strncmp(argv[++i], "clf.", 4) != 0)
                return usage_error("eval: --set takes the new softmax head's clf.* keys only "
                                   "(the net is the model's), got '%s'", argv[i]);
            if (n_sets == (int)(sizeof sets / sizeof *sets))
                return usage_error("eval: at most 64 --set options (extra: '%s')", argv[i]);
            sets[n_sets++] = argv[i];
        }
        else if (!strcmp(argv[i], "--on") && i + 1 < argc) {
            ++i;
            if (!strcmp(argv[i], "validation") || !strcmp(argv[i], "val"))
                on = FF_SET_VAL;
            else if (!strcmp(argv[i], "test"))
                on = FF_SET_TEST;
            else
                return usage_error("eval: --on takes test or validation, got '%s'", argv[i]);
        }
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) {
            if ((n_layers = parse_layer_list(argv[++i], layers)) < 1)
                return usage_error("eval: --layers needs distinct trainable-layer indices "
                                   "(0-based), comma-separated, got '%s'", argv[i]);
        }
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
    if (data && !data[0]) /* "" would read /train-images-idx3-ubyte.gz */
        return usage_error("%s", "eval: --data needs a directory, got ''");
    ff_err err = {0};
    if (agree_on_args(FF_OK, "eval", argc, argv, &err)) {
        if (ff_parallel_rank() == 0)
            fprintf(stderr, "ffrun: %s\n", err.msg);
        return 2;
    }
    ff_checkpoint ck = {0};
    int64_t conf[100];
    int rc = ff_checkpoint_load(model, &ck, &err);
    if (rc)
        goto done;
    /* the model's config, evaluated on the whole test set of its data (or DIR) */
    ff_config cfg = ck.cfg;
    cfg.data.test_limit = 0;
    if (data)
        snprintf(cfg.data.dir, sizeof cfg.data.dir, "%s", data);
    if (n_layers > 0) {
        cfg.eval.n_layers = n_layers;
        memcpy(cfg.eval.layers, layers, sizeof(int) * (size_t)n_layers);
    }
    for (int i = 0; i < n_sets && !rc; i++)
        rc = ff_config_set(&cfg, sets[i], &err);
    if (!rc && n_sets)
        rc = ff_config_validate(&cfg, &err);
    if (rc)
        goto done;
    if (n_sets && softmax_epochs < 0)
        softmax_epochs = 1; /* a new head: the model's was trained with other settings */
    ck.batch = 0; /* where in an epoch it stopped does not matter here */
    printf("model %s: %s, epoch %d, step %lld\n", model, ff_config_mode_name(ck.cfg.mode), ck.epoch,
           (long long)ck.step);
    if (ck.cfg.mode == FF_MODE_SUPERVISED)
        rc = as_eval_error(eval_supervised(&ck, &cfg, softmax_epochs, on, conf, &err), &err,
                           model);
    else if (ck.cfg.mode == FF_MODE_UNSUP_CLF)
        rc = as_eval_error(eval_classifier(&ck, &cfg, on, conf, &err), &err, model);
    else
        rc = ff_err_set(&err, FF_ERR_USAGE,
                        "%s is an unsupervised backbone: it has no classifier; train "
                        "configs/unsupervised_clf.yaml on it, then evaluate that model",
                        model);
    if (!rc)
        print_confusion(conf);
done:
    if (rc)
        fprintf(stderr, "ffrun: %s\n", err.msg);
    ff_checkpoint_free(&ck);
    return ff_err_exit_status(rc);
}

/* ---------------------------------------------------------------- sweeps */

static volatile sig_atomic_t sweep_stop;

static void on_sweep_signal(int sig)
{
    (void)sig;
    if (sweep_stop < 2)
        sweep_stop++; /* 1: the runs checkpoint and stop; 2: they leave at once */
}

static void show_sweep_info(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "ffrun sweep: %s\n", msg);
}

/* Validates every run, then lists them (--dry-run) or runs them. */
static int run_sweep(ff_sweep *sw, const char *prog, int dry, long long max_steps, ff_err *err)
{
    snprintf(sw->prog, sizeof sw->prog, "%s", prog);
    int rc = ff_sweep_expand(sw, err);
    char *text = NULL;
    if (!rc && dry) {
        rc = ff_sweep_describe(sw, &text, err);
        if (!rc)
            fputs(text, stdout);
        free(text);
        return rc;
    }
    if (!rc)
        rc = ff_sweep_open(sw, show_sweep_info, NULL, err);
    if (rc)
        return rc;
    catch_stop_signals(on_sweep_signal);
    ff_sweep_opts o = {.exe = "/proc/self/exe", .stop = &sweep_stop, .max_steps = max_steps,
                       .info = show_sweep_info};
    rc = ff_sweep_execute(sw, &o, err);
    if (ff_parallel_rank() > 0)
        return rc; /* rank 0 alone summarizes */
    ff_err serr;
    if (ff_sweep_summarize(sw, &text, &serr) == FF_OK)
        printf("\n%s\nsummary: %s/SUMMARY.md, %s/summary.csv\ntensorboard: tensorboard --logdir %s\n",
               text, sw->dir, sw->dir, sw->dir);
    free(text);
    return rc;
}

/* ffrun sweep SWEEP.yaml [--dry-run] [--max-steps N] [--jobs N] [--threads N] */
static int sweep_main(int argc, char **argv)
{
    const char *file = NULL;
    int dry = 0, jobs = 0, threads = 0;
    long long max_steps = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run"))
            dry = 1;
        else if ((!strcmp(a, "--max-steps") || !strcmp(a, "--jobs") || !strcmp(a, "--threads")) &&
                 i + 1 < argc) {
            long long v;
            if (!parse_count(argv[++i], &v) || (a[2] != 'm' && v > 4096))
                return usage_error("sweep: %s needs a positive integer", a);
            if (a[2] == 'm')
                max_steps = v;
            else if (a[2] == 'j')
                jobs = (int)v;
            else
                threads = (int)v;
        } else if (a[0] == '-')
            return usage_error("sweep: unknown option '%s'", a);
        else if (file)
            return usage_error("sweep: only one sweep file may be given (extra: '%s')", a);
        else
            file = a;
    }
    if (!file)
        return usage_error("%s", "sweep: no sweep file given");
    ff_err err = {0};
    ff_sweep sw = {0};
    int rc = ff_sweep_load(&sw.spec, file, &err);
    rc = agree_on_args(rc, "sweep", argc, argv, &err); /* before the sweep */
    if (!rc && jobs)
        sw.spec.jobs = jobs;
    if (!rc && threads)
        sw.spec.threads = threads;
    if (!rc)
        rc = run_sweep(&sw, argv[0], dry, max_steps, &err);
    if (rc && (ff_parallel_rank() == 0 || (rc != FF_ERR_USAGE && rc != FF_ERR_INTERRUPTED)))
        fprintf(stderr, "ffrun: %s\n", err.msg); /* under mpirun: rank 0 speaks for all */
    ff_sweep_free(&sw);
    return ff_err_exit_status(rc);
}

/* ffrun CONFIG --sweep KEY=V1,V2 ... [--seeds N]: --set values are fixed for all runs. */
static int sweep_args_main(const cli *c, int argc, char **argv)
{
    const char *prog = argv[0];
    ff_err err = {0};
    ff_sweep sw = {0};
    int rc = c->resume ? ff_err_set(&err, FF_ERR_USAGE, "--sweep cannot be combined with --resume "
                                    "(run the same sweep command again to resume it)")
                       : ff_sweep_from_args(&sw.spec, c->config_path, c->sweeps, c->n_sweeps,
                                            c->seeds, &err);
    rc = agree_on_args(rc, "sweep (--sweep, --seeds)", argc, argv, &err); /* before the sweep */
    if (!rc && c->jobs)
        sw.spec.jobs = c->jobs;
    if (!rc && c->threads)
        sw.spec.threads = c->threads;
    for (int i = 0; !rc && i < c->n_sets; i++) {
        if (sw.spec.n_sets == FF_SWEEP_MAX_SETS)
            rc = ff_err_set(&err, FF_ERR_USAGE, "--sweep: at most 32 --set options");
        else
            snprintf(sw.spec.sets[sw.spec.n_sets++], sizeof sw.spec.sets[0], "%s", c->sets[i]);
    }
    if (!rc)
        rc = run_sweep(&sw, prog, c->dry_run, c->max_steps, &err);
    if (rc && (ff_parallel_rank() == 0 || (rc != FF_ERR_USAGE && rc != FF_ERR_INTERRUPTED)))
        fprintf(stderr, "ffrun: %s\n", err.msg);
    ff_sweep_free(&sw);
    return ff_err_exit_status(rc);
}

/* Under mpirun: rank 0 alone prints results; usage errors and interruptions are the
 * same on every rank and reported once; any other error names its rank and ends
 * the whole job at once (no rank waits forever for a dead peer). */
static int finish_rank(int rc, const char *msg)
{
    const int rank = ff_parallel_rank();
    if (rc && (rank == 0 || (rc != FF_ERR_USAGE && rc != FF_ERR_INTERRUPTED))) {
        if (ff_parallel_size() > 1 && rank > 0)
            fprintf(stderr, "ffrun: rank %d: %s\n", rank, msg);
        else
            fprintf(stderr, "ffrun: %s\n", msg);
    }
    if (rc && rc != FF_ERR_USAGE && rc != FF_ERR_INTERRUPTED) {
        fflush(stderr);
        ff_parallel_abort(ff_err_exit_status(rc));
    }
    return ff_err_exit_status(rc);
}

/* The command line's outcome before any run (help, version, a usage error), agreed
 * by the ranks like a run's start. */
static int finish_args(int status, int argc, char **argv, const cli *c)
{
    ff_err err = {.code = status ? FF_ERR_USAGE : FF_OK};
    snprintf(err.msg, sizeof err.msg, "%s", c->error);
    int rc = agree_on_args(status ? FF_ERR_USAGE : FF_OK, "help", argc, argv, &err);
    if (rc && ff_parallel_rank() == 0)
        fprintf(stderr, "ffrun: %s\n", err.msg);
    return rc ? ff_err_exit_status(rc) : status;
}

/* --resume of a run's final model: nothing left to train (unsupervised_clf counts the
 * classifier's epochs, clf.epochs; the FF modes train.epochs). */
static int finished(const cli *c, const ff_config *cfg, const ff_checkpoint *ck,
                    const char *path)
{
    const int clf = cfg->mode == FF_MODE_UNSUP_CLF;
    const int epochs = clf ? cfg->clf.epochs : cfg->train.epochs;
    if (!c->resume || ck->batch != 0 || ck->epoch < epochs)
        return 0;
    if (ff_parallel_rank() == 0)
        fprintf(stderr, "ffrun: %s is the final model of a finished run (epoch %d of %d): "
                "nothing to resume, nothing changed (--set %s=%d continues it)\n", path,
                ck->epoch, epochs, clf ? "clf.epochs" : "train.epochs", ck->epoch + 1);
    return 1;
}

int main(int argc, char **argv)
{
    ff_blas_ensure_fast_core(argv); /* may re-execute with OPENBLAS_CORETYPE set */
    ff_parallel_init(&argc, &argv); /* MPI only when mpirun started us */
    if (ff_parallel_rank() > 0 && !freopen("/dev/null", "w", stdout))
        return 1; /* rank 0 alone prints results */
    if (argc > 1 && !strcmp(argv[1], "eval"))
        return eval_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "sweep"))
        return sweep_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "predict"))
        return ff_cmd_predict(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "export"))
        return ff_cmd_export(argc, argv);
    cli c = {0};
    int status = parse_args(argc, argv, &c);
    if (status >= 0)
        return finish_args(status, argc, argv, &c);
    if (c.n_sweeps || c.seeds)
        return sweep_args_main(&c, argc, argv);
    ff_err err = {0};
    ff_config cfg;
    ff_checkpoint ck = {0};
    char resume_path[4096] = "";
    kv_text text = {0};
    /* every rank reads its own config; all agree on it before anything else */
    int rc = load_config(&c, &cfg, &ck, resume_path, sizeof resume_path, &err);
    if (!rc)
        rc = run_text(&c, &cfg, &ck, &text, &err);
    rc = agree_or_report(rc, rc ? NULL : text.buf, &err);
    free(text.buf);
    if (rc || finished(&c, &cfg, &ck, resume_path)) {
        ff_checkpoint_free(&ck);
        return ff_err_exit_status(rc);
    }
    if (c.dry_run) {
        rc = dry_run(&cfg, &err);
        ff_checkpoint_free(&ck);
        return finish_rank(rc, err.msg);
    }
    catch_stop_signals(on_signal);
    progress_ui ui = {.quiet = c.quiet || ff_parallel_rank() > 0, .verbose = c.verbose, .tty = isatty(2) && !c.verbose};
    char command[2048];
    command_line(argc, argv, command, sizeof command);
    ff_train_opts opts = {.resume = c.resume ? &ck : NULL, .resume_path = resume_path,
                          .command_line = command,
                          .stop = &stop_flag, .info = show_info,
                          .max_steps = c.max_steps, .progress = show_progress, .progress_ctx = &ui,
                          .progress_every = ui.tty ? 10 : 100,
                          .run_dir = c.sweep_run, .stop_epoch = c.stop_epoch};
    ff_train_result res;
    rc = ff_train(&cfg, &opts, &res, &err);
    if (res.started)
        print_summary(&res, rc != FF_OK);
    ff_checkpoint_free(&ck);
    return finish_rank(rc, err.msg);
}
