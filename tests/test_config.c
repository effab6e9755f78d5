/* test_config.c - config parsing, errors, defaults, --set, round-trips and dumps (run from the repo root). */
#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ff/config.h"
#include "ff/summary_hparams.h"
#include "test.h"

#define FIX "tests/fixtures/config/"

/* Every key the header documents; the help text must mention each. */
static const char *const documented_keys[] = {
    "name", "mode", "seed", "data.dir", "data.format", "data.normalize", "data.train_limit", "data.test_limit", "data.validation", "data.validation_seed", "data.cache", "data.hybrid_blur", "model.layers",
    "model.layers[].type", "model.layers[].units", "model.layers[].channels", "model.layers[].kernel",
    "model.layers[].stride", "model.layers[].padding", "model.layers[].groups", "model.layers[].kind", "model.layers[].threshold",
    "model.layers[].train_epochs",
    "model.label_embedding",
    "model.label_every_layer", "model.norm_eps", "model.hand_on", "model.loss_after_pool",
    "model.recurrent.iterations", "model.recurrent.damping", "model.recurrent.eval_first",
    "model.recurrent.eval_last", "model.recurrent.readout_iteration",
    "train.epochs", "train.batch_size", "train.passes", "train.negatives", "train.jitter", "train.flip", "train.peer_norm",
    "train.peer_decay", "train.logit_scale", "train.hard_temperature", "train.hard_scores", "train.hard_candidates", "train.loss", "train.competition_norm", "train.shuffle", "optimizer.type", "optimizer.lr", "optimizer.momentum",
    "optimizer.beta1", "optimizer.beta2", "optimizer.eps", "optimizer.weight_decay", "schedule.type",
    "schedule.decay_start", "schedule.final_lr_scale", "eval.every", "eval.softmax", "eval.readout_epochs", "eval.test", "eval.layers",
    "log.dir", "log.every", "log.histograms", "log.images", "checkpoint.dir", "checkpoint.every", "checkpoint.minutes",
    "checkpoint.backbone", "clf.layers", "clf.epochs", "clf.lr", "clf.optimizer", "clf.momentum",
    "clf.weight_decay", "clf.lr_schedule", "clf.norm", "clf.cache_features", "parallel.mode",
};
#define N_DOCUMENTED (sizeof documented_keys / sizeof documented_keys[0])

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* clears where the config came from: the file (origin) and the layers' positions */
static void zero_positions(ff_config *c)
{
    memset(c->origin, 0, sizeof c->origin);
    for (int i = 0; i < FF_MAX_LAYERS; i++)
        c->model.layers[i].line = c->model.layers[i].col = 0;
}

/* to_yaml, then parse: the same struct (positions aside). */
static void check_roundtrip(const ff_config *a, const char *what)
{
    size_t n = ff_config_to_yaml(a, NULL, 0);
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK(ff_config_to_yaml(a, text, n + 1) == n);
    CHECK(strlen(text) == n);
    ff_config b, x;
    ff_err e = {0};
    int rc = ff_config_parse(&b, text, n, "roundtrip", &e);
    if (rc)
        fprintf(stderr, "  %s: %s\n--- yaml:\n%s---\n", what, e.msg, text);
    CHECK(rc == FF_OK);
    memcpy(&x, a, sizeof x);
    zero_positions(&x);
    zero_positions(&b);
    if (!rc && memcmp(&x, &b, sizeof x) != 0)
        fprintf(stderr, "  %s: round-trip differs\n--- yaml:\n%s---\n", what, text);
    CHECK(rc || memcmp(&x, &b, sizeof x) == 0);
    free(text);
}

static int load_ok(ff_config *c, const char *path)
{
    ff_err e = {0};
    int rc = ff_config_load(c, path, &e);
    if (rc)
        fprintf(stderr, "  %s: %s\n", path, e.msg);
    return rc == FF_OK;
}

// ----------------------------------------------------------------------------

static void test_defaults(void)
{
    ff_config c;
    memset(&c, 0xab, sizeof c);
    ff_config_defaults(&c);
    CHECK(c.name[0] == '\0');
    CHECK(c.mode == FF_MODE_SUPERVISED);
    CHECK(c.seed == 1);
    CHECK(strcmp(c.data.dir, "data/mnist") == 0);
    CHECK(c.data.train_limit == 0 && c.data.test_limit == 0);
    CHECK(c.model.n_layers == 0);
    CHECK(c.model.label_embedding == FF_EMBED_OVERLAY);
    CHECK(c.model.norm_eps == 1e-8f);
    CHECK(c.train.epochs == 10 && c.train.batch_size == 100);
    CHECK(c.train.passes == FF_PASS_ALTERNATE && c.train.negatives == FF_NEG_RANDOM);
    CHECK(c.train.jitter == 0 && c.train.peer_norm == 0.0f && c.train.peer_decay == 0.9f);
    CHECK(c.train.shuffle == 1);
    CHECK(c.optimizer.type == FF_OPT_ADAM && c.optimizer.lr == 0.001f && c.optimizer.momentum == 0.9f);
    CHECK(c.optimizer.beta1 == 0.9f && c.optimizer.beta2 == 0.999f && c.optimizer.eps == 1e-8f);
    CHECK(c.optimizer.weight_decay == 0.0f);
    CHECK(c.schedule.type == FF_SCHED_CONSTANT && c.schedule.decay_start == 0.5f);
    CHECK(c.schedule.final_lr_scale == 0.0f);
    CHECK(c.eval.every == 1 && c.eval.softmax == 0 && c.eval.readout_epochs == 0);
    CHECK(strcmp(c.log.dir, "runs") == 0 && c.log.every == 50 && c.log.histograms == 1 && c.log.images == 1);
    CHECK(strcmp(c.checkpoint.dir, "models") == 0 && c.checkpoint.every == 0 && c.checkpoint.backbone[0] == '\0');
    CHECK(c.clf.n_layers == 0 && c.clf.epochs == 10 && c.clf.lr == 0.001f);
    CHECK(strcmp(ff_config_mode_name(FF_MODE_UNSUP_CLF), "unsupervised_clf") == 0);
    CHECK(strcmp(ff_config_layer_kind_name(FF_LAYER_LOCAL), "local") == 0);

    ff_err e = {0};
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE);
    CHECK(contains(e.msg, "model.layers: at least one layer is required"));
    c.model.n_layers = 1;
    c.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 10, .stride = 1};
    CHECK(ff_config_validate(&c, &e) == FF_OK);
}

/* Every YAML file the team puts in configs/ must load, validate and round-trip. */
static void test_configs_dir(void)
{
    glob_t g;
    int rc = glob("configs/*.yaml", 0, NULL, &g);
    CHECK(rc == 0); /* GLOB_NOMATCH: run from the wrong directory, or configs/ is gone */
    size_t n = rc == 0 ? g.gl_pathc : 0;
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++) {
        ff_config c;
        ff_err e = {0};
        CHECK(load_ok(&c, g.gl_pathv[i]));
        CHECK(ff_config_validate(&c, &e) == FF_OK);
        check_roundtrip(&c, g.gl_pathv[i]);
    }
    printf("     (%zu file%s in configs/)\n", n, n == 1 ? "" : "s");
    if (rc == 0)
        globfree(&g);
}

static void test_full_file(void)
{
    ff_config c;
    CHECK(load_ok(&c, FIX "full.yaml"));
    CHECK(strcmp(c.name, "full-test_1.0") == 0);
    CHECK(c.mode == FF_MODE_UNSUP_BACKBONE);
    CHECK(c.seed == UINT64_MAX);
    CHECK(strcmp(c.data.dir, "/tmp/mnist data") == 0);
    CHECK(c.data.train_limit == 1000 && c.data.test_limit == 500);
    CHECK(strcmp(c.data.cache, "/tmp/ffcache") == 0 && c.data.hybrid_blur == 8);
    CHECK(c.model.n_layers == 3);
    const ff_layer_cfg *l = c.model.layers;
    CHECK(l[0].kind == FF_LAYER_CONV && l[0].channels == 32 && l[0].kernel == 5 && l[0].stride == 2);
    CHECK(l[0].threshold == 12.5f && l[0].line == 13 && l[0].col == 7);
    CHECK(l[1].kind == FF_LAYER_LOCAL && l[1].channels == 16 && l[1].kernel == 3 && l[1].stride == 1);
    CHECK(l[1].threshold == 0.0f && l[1].line == 18 && l[1].col == 7);
    CHECK(l[2].kind == FF_LAYER_FC && l[2].units == 500 && l[2].line == 19 && l[2].col == 7);
    CHECK(c.model.label_embedding == FF_EMBED_PATTERN && c.model.norm_eps == 1e-6f);
    CHECK(c.train.epochs == 3 && c.train.batch_size == 64 && c.train.passes == FF_PASS_JOINT);
    CHECK(c.train.negatives == FF_NEG_HARD && c.train.hard_temperature == 2.5f && c.train.jitter == 2 && c.train.peer_norm == 0.03f);
    CHECK(c.train.peer_decay == 0.95f && c.train.shuffle == 0);
    CHECK(c.optimizer.type == FF_OPT_SGD && c.optimizer.lr == 3e-2f && c.optimizer.momentum == 0.5f);
    CHECK(c.optimizer.beta1 == 0.8f && c.optimizer.beta2 == 0.99f && c.optimizer.eps == 1e-6f);
    CHECK(c.optimizer.weight_decay == 0.0001f);
    CHECK(c.schedule.type == FF_SCHED_COSINE && c.schedule.decay_start == 0.25f);
    CHECK(c.schedule.final_lr_scale == 0.1f);
    CHECK(c.eval.every == 2 && c.eval.softmax == 1 && c.eval.readout_epochs == 3);
    CHECK(strcmp(c.log.dir, "runs/test #1") == 0 && c.log.every == 10);
    CHECK(c.log.histograms == 0 && c.log.images == 5);
    CHECK(strcmp(c.checkpoint.dir, "models/x") == 0 && c.checkpoint.every == 1);
    CHECK(strcmp(c.checkpoint.backbone, "models/a \"b\".ffm") == 0);
    CHECK(c.clf.n_layers == 2 && c.clf.layers[0] == 0 && c.clf.layers[1] == 2);
    CHECK(c.clf.epochs == 4 && c.clf.lr == 0.01f);
    CHECK(c.clf.optimizer == FF_OPT_SGD_SMOOTH && c.clf.momentum == 0.8f);
    CHECK(c.clf.weight_decay == 0.003f && c.clf.lr_schedule == 1);
}

static void test_roundtrip(void)
{
    ff_config c;
    CHECK(load_ok(&c, FIX "full.yaml"));
    check_roundtrip(&c, "full.yaml");
    CHECK(load_ok(&c, FIX "minimal.yaml"));
    check_roundtrip(&c, "minimal.yaml");

    /* odd but valid values survive too */
    ff_err e = {0};
    CHECK(ff_config_set(&c, "name=", &e) == FF_OK);
    CHECK(ff_config_set(&c, "data.dir=a\\b \"c\": #d|", &e) == FF_OK);
    CHECK(ff_config_set(&c, "optimizer.lr=0.1", &e) == FF_OK);
    CHECK(ff_config_set(&c, "model.norm_eps=1.17549435e-38", &e) == FF_OK);
    CHECK(ff_config_set(&c, "model.layers.0.threshold=3.14159265", &e) == FF_OK);
    check_roundtrip(&c, "odd values");

    /* tricky but valid strings read back unchanged: quotes, colons, '#', leading and
     * trailing spaces, YAML indicators, non-ASCII text, U+2028/U+2029 (YAML 1.1 line
     * breaks), U+FEFF, a 4-byte character */
    static const char *const tricky[] = {
        "  lead and trail  ", "'single' \"double\"", "key: value # not a comment", "#x", "- [a, b]",
        "{x: 1}", "&anchor *alias !tag %", "@`|>?", "Zürich/données/日本語", "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c",
        "\xef\xbb\xbf" "bom", "emoji \xf0\x9f\x98\x80", "~", "null", "true", "0x10", "\\\\server\\share",
        "\xee\x80\x80 private use", "\xef\xbf\xbd replacement",
    };
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        char set[FF_PATH_MAX + 16];
        snprintf(set, sizeof set, "log.dir=%s", tricky[i]);
        CHECK(ff_config_set(&c, set, &e) == FF_OK && strcmp(c.log.dir, tricky[i]) == 0);
        snprintf(set, sizeof set, "checkpoint.backbone=%s", tricky[i]);
        CHECK(ff_config_set(&c, set, &e) == FF_OK);
        check_roundtrip(&c, tricky[i]);
    }

    /* snprintf-like: the needed length, a terminated prefix */
    char small[8];
    size_t n = ff_config_to_yaml(&c, small, sizeof small);
    CHECK(n > sizeof small && strlen(small) == sizeof small - 1);
}

// ----------------------------------------------------------------------------
// errors

typedef struct err_case {
    const char *file;  /* under FIX */
    const char *where; /* what follows the path: ":line:col: " or ": " */
    const char *text;  /* expected part of the message */
} err_case;

static const err_case err_cases[] = {
    {"unknown_key.yaml", ":6:3: ", "unknown key 'train.epohcs'; did you mean 'train.epochs'?"},
    {"unknown_section.yaml", ":4:1: ", "unknown key 'trian'; did you mean 'train'?"},
    {"unknown_layer_key.yaml", ":4:18: ", "unknown key 'model.layers.1.unit'; did you mean 'model.layers.1.units'?"},
    {"wrong_type.yaml", ":5:11: ", "expected an integer for train.epochs, got 'ten'"},
    {"int_garbage.yaml", ":4:17: ", "expected an integer for train.epochs, got '10x'"},
    {"int_overflow.yaml", ":5:11: ", "train.epochs must be between 1 and 1000000, got 99999999999999999999"},
    {"out_of_range.yaml", ":5:15: ", "train.batch_size must be between 1 and 65536, got 0"},
    {"bad_enum.yaml", ":5:9: ", "expected one of sgd, adam, sgd_smooth for optimizer.type, got 'adamw'"},
    {"bad_bool.yaml", ":5:12: ", "expected a boolean (true/false, yes/no, on/off) for train.shuffle, got 'maybe'"},
    {"bad_float.yaml", ":5:7: ", "expected a number for optimizer.lr, got '0.001x'"},
    {"bad_name.yaml", ":1:7: ", "name may only contain letters, digits, '.', '_' and '-', got 'my/run'"},
    {"duplicate_key.yaml", ":7:3: ", "duplicate key 'train.epochs' (first given at line 5)"},
    {"not_mapping.yaml", ":4:8: ", "expected a mapping for train, got '5'"},
    {"top_not_mapping.yaml", ":1:1: ", "expected a mapping of config keys at the top level, got a list"},
    {"layers_not_list.yaml", ":2:11: ", "expected a list of layers for model.layers, got 'fc'"},
    {"too_many_layers.yaml", ":11:7: ", "model.layers has 9 entries; at most 8 are supported"},
    {"missing_layer_key.yaml", ":3:7: ", "model.layers.0 (conv) is missing required key 'kernel'"},
    {"layer_missing_type.yaml", ":3:7: ", "model.layers.0 is missing required key 'type' (one of fc, conv, local, pool)"},
    {"layer_key_not_applicable.yaml", ":6:7: ", "model.layers.0.units does not apply to a conv layer"},
    {"syntax_error.yaml", ":6:13: ", "YAML syntax error: mapping values are not allowed in this context"},
    {"two_documents.yaml", ":5:1: ", "only one YAML document is allowed"},
    {"no_layers.yaml", ": ", "model.layers: at least one layer is required"},
    {"clf_out_of_range.yaml", ":6:11: ", "clf.layers.1 is 5, but model.layers has only 2 layers"},
};

static void test_error_fixtures(void)
{
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const err_case *t = &err_cases[i];
        char path[256], prefix[300];
        snprintf(path, sizeof path, FIX "%s", t->file);
        snprintf(prefix, sizeof prefix, "%s%s", path, t->where);
        ff_config c, before;
        ff_config_defaults(&c);
        c.train.epochs = 777;
        memcpy(&before, &c, sizeof c);
        ff_err e = {0};
        int rc = ff_config_load(&c, path, &e);
        int ok = rc == FF_ERR_USAGE && e.code == FF_ERR_USAGE && starts_with(e.msg, prefix) && contains(e.msg, t->text);
        if (!ok)
            fprintf(stderr, "  %s: rc %d, got \"%s\"\n      want \"%s...%s\"\n", t->file, rc, e.msg, prefix, t->text);
        CHECK(ok);
        CHECK(memcmp(&c, &before, sizeof c) == 0); /* untouched on failure */
    }
}

typedef struct inline_case {
    const char *yaml;
    const char *text; /* expected message, after "inline:" */
} inline_case;

#define L1 "model: {layers: [{type: fc, units: 10}]}\n"
static const inline_case inline_cases[] = {
    {L1 "seed: -1\n", "inline:2:7: expected a non-negative integer for seed, got '-1'"},
    {L1 "seed: 18446744073709551616\n", "inline:2:7: seed must be at most 18446744073709551615"},
    {L1 "train: {epochs: 1.5}\n", "expected an integer for train.epochs, got '1.5'"},
    {L1 "train: {epochs: 0x10}\n", "expected an integer for train.epochs, got '0x10'"},
    {L1 "train: {epochs: ' 3'}\n", "expected an integer for train.epochs, got ' 3'"},
    {L1 "train: {epochs: }\n", "expected an integer for train.epochs, got nothing"},
    {L1 "train: {epochs: [1]}\n", "inline:2:17: expected an integer for train.epochs, got a list"},
    {L1 "train: {peer_norm: 1e40}\n", "train.peer_norm must be between 0 and 1000, got 1e40"},
    {L1 "optimizer: {lr: .nan}\n", "expected a number for optimizer.lr, got '.nan'"},
    {L1 "data: {validation: 2.5}\n", "inline:2:20: data.validation: 2.5 is neither a fraction (below 1) nor a whole number"},
    {L1 "data: {validation: -0.1}\n", "data.validation must be between 0 and 10000000"},
    {L1 "eval: {test: never}\n", "eval.test"},
    {L1 "optimizer: {lr: 0}\n", "optimizer.lr must be > 0 and <= 10, got 0"},
    {L1 "optimizer: {beta2: 1}\n", "optimizer.beta2 must be >= 0 and < 1, got 1"},
    {L1 "schedule: {type: Cosine}\n", "expected one of constant, linear, cosine for schedule.type, got 'Cosine'"},
    {L1 "train: {shuffle: 2}\n", "expected a boolean (true/false, yes/no, on/off) for train.shuffle, got '2'"},
    {L1 "model: {norm_eps: 1e-9}\n", "inline:2:1: duplicate key 'model' (first given at line 1)"},
    {"model: {layers: [{type: fc, units: 10, units: 3}]}\n", "inline:1:40: duplicate key 'model.layers.0.units'"},
    {"model: {layers: [{type: dense, units: 10}]}\n", "expected one of fc, conv, local, pool for model.layers.0.type, got 'dense'"},
    {"model: {layers: [{type: fc, units: 0}]}\n", "model.layers.0.units must be between 1 and 1000000, got 0"},
    {"model: {layers: [{type: fc}]}\n", "inline:1:18: model.layers.0 (fc) is missing required key 'units'"},
    {"model: {layers: [{type: fc, units: 10, groups: 2}]}\n",
     "inline:1:40: model.layers.0.groups does not apply to an fc layer"},
    {"model: {layers: [{type: local, channels: 4, kernel: 3, groups: 2}]}\n",
     "model.layers.0.groups does not apply to a local layer"},
    {"model: {layers: [{type: pool, kernel: 2, groups: 2}, {type: fc, units: 10}]}\n",
     "model.layers.0.groups does not apply to a pool layer"},
    {"model: {layers: [{type: conv, channels: 4, kernel: 3, groups: 0}]}\n",
     "inline:1:63: model.layers.0.groups must be between 1 and 4096, got 0"},
    {"model: {layers: [{type: conv, channels: 4, kernel: 3, groups: 1.5}]}\n",
     "expected an integer for model.layers.0.groups, got '1.5'"},
    {"model: {layers: [fc]}\n", "inline:1:18: expected a mapping for model.layers.0, got 'fc'"},
    {"model: {layers: [{type: fc, units: 10}], {a: 1}: 2}\n", "inline:1:42: expected a plain key in model, got a mapping"},
    {L1 "clf: {layers: [0, 0]}\n", "clf.layers lists layer 0 twice"},
    {L1 "eval: {layers: [0, 0]}\n", "inline:2:16: eval.layers lists layer 0 twice"},
    {"model: {layers: [{type: conv, channels: 4, kernel: 3}, {type: pool, kernel: 2},"
     " {type: fc, units: 10}]}\neval: {layers: [2]}\n",
     "inline:2:16: eval.layers.0 is 2, but model.layers has 2 trainable layers"},
    {"model: {layers: [{type: fc, units: 10, train_epochs: -1}]}\n",
     "model.layers.0.train_epochs must be between 0 and 1000000, got -1"},
    {"model: {layers: [{type: pool, kernel: 2, train_epochs: 3}, {type: fc, units: 10}]}\n",
     "inline:1:42: model.layers.0.train_epochs does not apply to a pool layer"},
    {"model: {layers: [{type: fc, units: 10}, {type: fc, units: 10, train_epochs: 2}]}\n"
     "parallel: {mode: pipeline}\n",
     "inline:1:41: model.layers.1.train_epochs: layers that stop learning are not supported "
     "with parallel.mode pipeline"},
    {"model: {layers: [{type: fc, units: 10}], label_embedding: pattern, label_every_layer: true}\n",
     "inline:1:87: model.label_every_layer needs model.label_embedding overlay or channels, got pattern"},
    {"mode: unsupervised_backbone\nmodel: {layers: [{type: fc, units: 10}], label_every_layer: yes}\n",
     "inline:2:61: model.label_every_layer needs mode supervised"},
    {L1 "train: {passes: alternate, loss: pairwise}\n",
     "inline:2:34: train.loss pairwise needs train.passes joint"},
    {"model: {layers: [{type: fc, units: 10}], hand_on: batch}\n",
     "inline:1:51: model.hand_on batch hands on the competition loss's batch statistics: it needs "
     "train.loss competition with train.competition_norm batch"},
    {"model: {layers: [{type: fc, units: 10}], label_embedding: none, hand_on: batch}\n"
     "train: {loss: competition, logit_scale: 10, competition_norm: batch}\n"
     "parallel: {mode: pipeline}\n",
     "model.hand_on batch cannot be used with parallel.mode pipeline"},
    {L1 "train: {competition_norm: batch}\n",
     "inline:2:27: train.competition_norm only applies with train.loss competition"},
    {L1 "clf: {norm: batch}\n",
     "inline:2:13: clf.norm batch reads the competition loss's channel statistics: it needs "
     "model.hand_on batch"},
    {L1 "clf: {norm: layer}\n", "inline:2:13: expected one of rms, batch for clf.norm, got 'layer'"},
    {"model: {layers: [{type: fc, units: 10}], loss_after_pool: true}\n",
     "inline:1:59: model.loss_after_pool needs model.hand_on batch"},
    {L1 "train: {loss: competition}\n",
     "inline:2:15: train.loss competition needs model.label_embedding none"},
    {"model: {layers: [{type: fc, units: 10}], label_embedding: none}\n",
     "inline:1:59: model.label_embedding none (no label in the input) needs train.loss competition"},
    {"model: {layers: [{type: fc, units: 10}], label_embedding: none}\n"
     "train: {loss: competition}\n",
     "inline:2:15: train.loss competition needs train.logit_scale > 0"},
    {"model: {layers: [{type: fc, units: 10}], label_embedding: none}\n"
     "train: {loss: competition, negatives: hard, logit_scale: 10}\n",
     "inline:2:39: train.loss competition uses no negative data"},
    {"mode: unsupervised_backbone\nmodel: {layers: [{type: fc, units: 10}], label_embedding: none}\n"
     "train: {loss: competition}\n",
     "inline:3:15: train.loss competition needs mode supervised"},
    {"model: {layers: [{type: fc, units: 10}], label_embedding: none, label_every_layer: true}\n"
     "train: {loss: competition, logit_scale: 10}\n",
     "model.label_every_layer needs model.label_embedding overlay or channels, got none"},
    {L1 "train: {negatives: hard, hard_scores: softmax}\n",
     "inline:2:39: train.hard_scores softmax needs eval.softmax true"},
    {L1 "train: {negatives: hard, hard_candidates: 3}\n",
     "inline:2:43: train.hard_candidates needs eval.softmax true"},
    {L1 "train: {hard_scores: softmax}\neval: {softmax: true}\n",
     "inline:2:22: train.hard_scores softmax only applies with train.negatives hard"},
    {L1 "train: {negatives: random, hard_candidates: 2}\neval: {softmax: true}\n",
     "inline:2:45: train.hard_candidates only applies with train.negatives hard"},
    {L1 "train: {hard_candidates: 10}\n", "train.hard_candidates must be between 0 and 9, got 10"},
    {L1 "train: {hard_scores: head}\n",
     "inline:2:22: expected one of goodness, softmax for train.hard_scores, got 'head'"},
    {L1 "clf: {layers: [8]}\n", "clf.layers.0 must be between 0 and 7, got 8"},
    {L1 "clf: {optimizer: sgd_smoothed}\n",
     "inline:2:18: expected one of sgd, adam, sgd_smooth for clf.optimizer, got 'sgd_smoothed'"},
    {L1 "clf: {momentum: 1}\n", "clf.momentum must be >= 0 and < 1, got 1"},
    {L1 "clf: {weight_decay: -0.1}\n", "clf.weight_decay must be between 0 and 1, got -0.1"},
    {L1 "clf: {lr_schedule: true}\n", "inline:2:20: clf.lr_schedule needs eval.softmax true"},
    {"mode: unsupervised_clf\nclf: {lr_schedule: true}\n",
     "inline:2:20: clf.lr_schedule applies to the softmax head trained beside an FF net"},
    {L1 "clf: {momentm: 0.5}\n", "unknown key 'clf.momentm'; did you mean 'clf.momentum'?"},
    {L1 "clf: {layers: 0}\n", "expected a list of integers for clf.layers, got '0'"},
    {L1 "data: {dir: \"a\\0b\"}\n", "inline:2:13: data.dir contains a NUL character"},
    {L1 "train:\n\tepochs: 3\n", "inline:3:1: YAML syntax error: found character that cannot start any token"},
    {L1 "train: {epochs: \"3}\n", "YAML syntax error: found unexpected end of stream"},
    {L1 "name: \"\xff\"\n", "inline:2:8: YAML syntax error: invalid leading UTF-8 octet"},
    {L1 "epochs: 3\n", "unknown key 'epochs'; did you mean 'train.epochs'?"},
    {L1 "train: {lr: 3}\n", "unknown key 'train.lr'; did you mean 'optimizer.lr'?"},
    {L1 "zzzzzzzzzz: 3\n", "inline:2:1: unknown key 'zzzzzzzzzz'"},
    /* strings: UTF-8 text without control characters or noncharacters; no empty dirs */
    {L1 "log: {dir: \"runs\\x85\"}\n",
     "inline:2:12: expected UTF-8 text without control characters or noncharacters for log.dir, "
     "got the control character U+0085 at byte 5"},
    {L1 "data: {dir: \"a\\tb\"}\n", "inline:2:13: expected UTF-8 text without control characters or "
     "noncharacters for data.dir, got the control character U+0009 at byte 2"},
    {L1 "checkpoint: {dir: \"m\\uFDD0\"}\n", "got the noncharacter U+FDD0 at byte 2"},
    {L1 "log: {dir: \"\"}\n", "inline:2:12: log.dir must not be empty"},
    {L1 "checkpoint: {dir: }\n", "checkpoint.dir must not be empty"},
    {L1 "data: {cache: ''}\n", "data.cache must not be empty"},
    {L1 "optimizer: {lr: 1e-50}\n", "inline:2:17: optimizer.lr: 1e-50 is too small for a 32-bit float"},
    /* nesting is bounded while parsing, before libyaml builds a document */
    {L1 "x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]\n",
     "inline:2:67: lists and mappings nested deeper than 64 levels"},
};

static void test_error_inline(void)
{
    for (size_t i = 0; i < sizeof inline_cases / sizeof inline_cases[0]; i++) {
        const inline_case *t = &inline_cases[i];
        ff_config c;
        ff_err e = {0};
        int rc = ff_config_parse(&c, t->yaml, strlen(t->yaml), "inline", &e);
        int ok = rc == FF_ERR_USAGE && starts_with(e.msg, "inline:") && contains(e.msg, t->text);
        if (!ok)
            fprintf(stderr, "  case %zu: rc %d, got \"%s\"\n      want \"%s\"\n", i, rc, e.msg, t->text);
        CHECK(ok);
    }
    /* no suggestion when nothing is close */
    ff_config c;
    ff_err e = {0};
    const char *y = L1 "zzzzzzzzzz: 3\n";
    CHECK(ff_config_parse(&c, y, strlen(y), "inline", &e) == FF_ERR_USAGE && !contains(e.msg, "did you mean"));
    /* a too-long string */
    char big[700];
    int n = snprintf(big, sizeof big, L1 "log: {dir: ");
    memset(big + n, 'x', 600);
    strcpy(big + n + 600, "}\n");
    CHECK(ff_config_parse(&c, big, strlen(big), "inline", &e) == FF_ERR_USAGE);
    CHECK(contains(e.msg, "inline:2:12: log.dir is too long (600 characters, at most 511)"));
    /* empty input is the defaults, which lack layers */
    CHECK(ff_config_parse(&c, "", 0, "empty", &e) == FF_ERR_USAGE);
    CHECK(strcmp(e.msg, "empty: model.layers: at least one layer is required") == 0);
    /* err may be NULL */
    CHECK(ff_config_parse(&c, "seed: x", 7, "inline", NULL) == FF_ERR_USAGE);
}

static void test_io_errors(void)
{
    ff_config c;
    ff_err e = {0};
    CHECK(ff_config_load(&c, FIX "does_not_exist.yaml", &e) == FF_ERR_IO);
    CHECK(e.code == FF_ERR_IO && contains(e.msg, FIX "does_not_exist.yaml") && contains(e.msg, "No such file"));
    /* not a regular file: a usage error (exit 2), naming the file and what it is */
    CHECK(ff_config_load(&c, FIX, &e) == FF_ERR_USAGE);
    CHECK(contains(e.msg, FIX) && contains(e.msg, "not a regular file (a directory)"));
}

static void test_nulls_and_styles(void)
{
    const char *y = "model:\n  layers:\n    - type: fc\n      units: 10\ntrain:\nclf:\n  layers:\n"
                    "name: 'quoted'\nseed: \"7\"\noptimizer: {lr: 1E-2, type: \"sgd\"}\neval: {softmax: ON}\n";
    ff_config c;
    ff_err e = {0};
    int rc = ff_config_parse(&c, y, strlen(y), "styles", &e);
    if (rc)
        fprintf(stderr, "  %s\n", e.msg);
    CHECK(rc == FF_OK);
    CHECK(c.train.epochs == 10 && c.clf.n_layers == 0 && strcmp(c.name, "quoted") == 0 && c.seed == 7);
    CHECK(c.optimizer.lr == 0.01f && c.optimizer.type == FF_OPT_SGD && c.eval.softmax == 1);
    CHECK(c.model.layers[0].line == 3 && c.model.layers[0].col == 7);
}

// ----------------------------------------------------------------------------
// --set

static void set_ok(ff_config *c, const char *a)
{
    ff_err e = {0};
    int rc = ff_config_set(c, a, &e);
    if (rc)
        fprintf(stderr, "  --set %s: %s\n", a, e.msg);
    CHECK(rc == FF_OK);
}

static void test_set_valid(void)
{
    ff_config c;
    CHECK(load_ok(&c, FIX "minimal.yaml"));
    set_ok(&c, "train.epochs=3");
    set_ok(&c, "optimizer.type=sgd");
    set_ok(&c, "optimizer.lr=1e-3");
    set_ok(&c, "model.layers.0.units=500");
    set_ok(&c, "model.layers.0.threshold=2.5");
    set_ok(&c, "train.shuffle=off");
    set_ok(&c, "name=abc");
    set_ok(&c, "seed=42");
    set_ok(&c, "data.dir=/data/with=equals");
    set_ok(&c, "mode=unsupervised_clf");
    CHECK(c.train.epochs == 3 && c.optimizer.type == FF_OPT_SGD && c.optimizer.lr == 0.001f);
    CHECK(c.model.layers[0].units == 500 && c.model.layers[0].threshold == 2.5f && c.train.shuffle == 0);
    CHECK(strcmp(c.name, "abc") == 0 && c.seed == 42 && strcmp(c.data.dir, "/data/with=equals") == 0);
    CHECK(c.mode == FF_MODE_UNSUP_CLF);

    set_ok(&c, "clf.layers=0");
    CHECK(c.clf.n_layers == 1 && c.clf.layers[0] == 0);
    set_ok(&c, "clf.layers=[2, 1]");
    CHECK(c.clf.n_layers == 2 && c.clf.layers[0] == 2 && c.clf.layers[1] == 1);
    set_ok(&c, "clf.layers=");
    CHECK(c.clf.n_layers == 0);
    set_ok(&c, "clf.layers=[]");
    CHECK(c.clf.n_layers == 0);

    set_ok(&c, "model.layers=[{type: conv, channels: 4, kernel: 3}, {type: fc, units: 10}]");
    CHECK(c.model.n_layers == 2 && c.model.layers[0].kind == FF_LAYER_CONV && c.model.layers[0].stride == 1);
    CHECK(c.model.layers[0].line == 0 && c.model.layers[1].units == 10);
    set_ok(&c, "model.layers={type: fc, units: 7}");
    CHECK(c.model.n_layers == 1 && c.model.layers[0].units == 7);

    /* a conv's groups: default 1, set, round-trips */
    set_ok(&c, "model.layers=[{type: conv, channels: 20, kernel: 3}, {type: conv, channels: 40, kernel: 3, groups: 10}]");
    CHECK(c.model.layers[0].groups == 1 && c.model.layers[1].groups == 10);
    set_ok(&c, "model.layers.0.groups=5");
    CHECK(c.model.layers[0].groups == 5);
    check_roundtrip(&c, "groups");
    set_ok(&c, "model.layers={type: fc, units: 7}");

    /* changing a layer's type resets the fields the new kind does not use */
    set_ok(&c, "model.layers=[{type: conv, channels: 4, kernel: 3, groups: 2}]");
    set_ok(&c, "model.layers.0.type=local");
    CHECK(c.model.layers[0].groups == 1);
    set_ok(&c, "model.layers.0.type=fc");
    set_ok(&c, "model.layers.0.units=7");
    set_ok(&c, "model.layers.0.type=local");
    CHECK(c.model.layers[0].kind == FF_LAYER_LOCAL && c.model.layers[0].units == 0 && c.model.layers[0].stride == 1);
    ff_err e = {0};
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE);
    CHECK(strcmp(e.msg, "model.layers.0: a local layer needs channels > 0") == 0);
    set_ok(&c, "model.layers.0.channels=8");
    set_ok(&c, "model.layers.0.kernel=4");
    set_ok(&c, "model.layers.0.stride=2");
    CHECK(ff_config_validate(&c, &e) == FF_OK);
    check_roundtrip(&c, "after --set");
}

typedef struct set_case {
    const char *assignment;
    const char *text; /* expected message after "--set <assignment>: " */
} set_case;

static const set_case set_cases[] = {
    {"train.epochs=abc", "expected an integer for train.epochs, got 'abc'"},
    /* found by tests/fuzz/fuzz_config_set: YAML cannot hold such a string, so the config
     * would not read back from a model file */
    {"data.dir=a\xff", "for data.dir, got an invalid UTF-8 byte 0xff at byte 2"},
    {"data.cache=\xc0\xaf", "for data.cache, got an invalid UTF-8 byte 0xc0 at byte 1"},
    {"log.dir=\xed\xa0\x80", "for log.dir, got an invalid UTF-8 byte 0xed at byte 1"},
    {"checkpoint.backbone=x\xfa\x98\x9e\x81", "got an invalid UTF-8 byte 0xfa at byte 2"},
    {"train.epochs=", "expected an integer for train.epochs, got nothing"},
    {"train.epochs=0", "train.epochs must be between 1 and 1000000, got 0"},
    {"train.epohcs=3", "unknown key 'train.epohcs'; did you mean 'train.epochs'?"},
    {"optimizer.type=adamw", "expected one of sgd, adam, sgd_smooth for optimizer.type, got 'adamw'"},
    {"train.shuffle=maybe", "expected a boolean (true/false, yes/no, on/off) for train.shuffle, got 'maybe'"},
    {"train=3", "'train' is a section; set one of its keys (train.<key>)"},
    {"train.epochs", "expected key.path=value"},
    {"=3", "expected key.path=value"},
    {"model.layers.1.units=3", "model.layers.1 does not exist (the config has 1 layer)"},
    {"model.layers.x.units=3", "expected model.layers.N.field (N a 0-based layer index), got 'model.layers.x.units'"},
    {"model.layers.0=3", "expected model.layers.N.field"},
    {"model.layers.0.unit=3", "unknown key 'model.layers.0.unit'; did you mean 'model.layers.0.units'?"},
    {"model.layers.0.kernel=3", "model.layers.0.kernel does not apply to an fc layer"},
    {"model.layers.0.groups=2", "model.layers.0.groups does not apply to an fc layer"},
    {"model.layers.0.grups=2", "did you mean 'model.layers.0.groups'?"},
    {"model.layers.0.type=dense", "expected one of fc, conv, local, pool for model.layers.0.type, got 'dense'"},
    {"model.layers=[{type: fc}]", "model.layers.0 (fc) is missing required key 'units'"},
    {"model.layers=[1, 2", "YAML syntax error"},
    {"clf.layers=0,9", "clf.layers.1 must be between 0 and 7, got 9"},
    {"clf.layers=a", "expected an integer for clf.layers.0, got 'a'"},
    {"name=a b", "name may only contain letters, digits, '.', '_' and '-', got 'a b'"},
    {"log.dir=runs\xe2\x80\xa8\x7f", "got the control character U+007F at byte 8"},
    {"data.dir=\xef\xbf\xbe", "got the noncharacter U+FFFE at byte 1"},
    {"data.dir=\xf4\x8f\xbf\xbf", "got the noncharacter U+10FFFF at byte 1"},
    {"data.dir=a\xc0\xaf" "b", "got an invalid UTF-8 byte 0xc0 at byte 2"},            /* overlong */
    {"data.dir=a\xed\xa0\x80", "got an invalid UTF-8 byte 0xed at byte 2"},         /* surrogate */
    {"data.dir=a\xe2\x82", "got an invalid UTF-8 byte 0xe2 at byte 2"},              /* cut short */
    {"log.dir=", "log.dir must not be empty"},
    {"checkpoint.dir=", "checkpoint.dir must not be empty"},
    {"optimizer.lr=1e-50", "optimizer.lr: 1e-50 is too small for a 32-bit float"},
};

static void test_set_invalid(void)
{
    ff_config c, before;
    CHECK(load_ok(&c, FIX "minimal.yaml"));
    memcpy(&before, &c, sizeof c);
    for (size_t i = 0; i < sizeof set_cases / sizeof set_cases[0]; i++) {
        const set_case *t = &set_cases[i];
        char prefix[256];
        snprintf(prefix, sizeof prefix, "--set %s: ", t->assignment);
        for (const char *p = t->assignment; *p; p++) /* not echoed unless printable text */
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                snprintf(prefix, sizeof prefix, "--set %.*s=...: ", (int)strcspn(t->assignment, "="),
                         t->assignment);
        ff_err e = {0};
        int rc = ff_config_set(&c, t->assignment, &e);
        int ok = rc == FF_ERR_USAGE && starts_with(e.msg, prefix) && contains(e.msg, t->text);
        if (!ok)
            fprintf(stderr, "  rc %d, got \"%s\"\n      want \"%s%s\"\n", rc, e.msg, prefix, t->text);
        CHECK(ok);
        CHECK(memcmp(&c, &before, sizeof c) == 0); /* untouched on failure */
    }
}

// ----------------------------------------------------------------------------
// validation of configs built in code

static void test_validate(void)
{
    ff_config c, good;
    ff_err e = {0};
    CHECK(load_ok(&good, FIX "full.yaml"));
    CHECK(ff_config_validate(&good, &e) == FF_OK);

    memcpy(&c, &good, sizeof c);
    c.model.layers[2].units = 0;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && strcmp(e.msg, "model.layers.2: an fc layer needs units > 0") == 0);
    memcpy(&c, &good, sizeof c);
    c.model.layers[0].stride = 0;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "model.layers.0.stride must be between 1 and"));
    memcpy(&c, &good, sizeof c);
    c.model.layers[1].kind = (ff_layer_kind)7;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "model.layers.1.type"));
    memcpy(&c, &good, sizeof c);
    c.model.n_layers = FF_MAX_LAYERS + 1;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "at most 8"));
    memcpy(&c, &good, sizeof c);
    c.eval.every = 0;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "eval.every must be between 1 and"));
    memcpy(&c, &good, sizeof c);
    c.optimizer.lr = 0;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "optimizer.lr must be > 0"));
    memcpy(&c, &good, sizeof c);
    c.clf.lr = NAN;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "clf.lr must be a finite number"));
    memcpy(&c, &good, sizeof c);
    c.optimizer.type = (ff_opt_kind)9;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "optimizer.type"));
    memcpy(&c, &good, sizeof c);
    c.clf.optimizer = FF_OPT_COUNT;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "clf.optimizer"));
    memcpy(&c, &good, sizeof c);
    c.eval.softmax = 0;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE &&
          contains(e.msg, "clf.lr_schedule needs eval.softmax true"));
    memcpy(&c, &good, sizeof c);
    c.train.shuffle = 2;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "train.shuffle must be 0 or 1"));

    /* clf.layers: in range of the model, except for unsupervised_clf (the backbone comes from a file) */
    memcpy(&c, &good, sizeof c);
    c.clf.n_layers = 1;
    c.clf.layers[0] = 5;
    c.mode = FF_MODE_SUPERVISED;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "clf.layers.0 is 5, but model.layers has only 3 layers"));
    c.mode = FF_MODE_UNSUP_CLF;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE &&
          contains(e.msg, "clf.lr_schedule applies to the softmax head trained beside an FF net"));
    c.clf.lr_schedule = 0; /* unsupervised_clf schedules clf.lr by itself */
    CHECK(ff_config_validate(&c, &e) == FF_OK);
    c.clf.layers[0] = -1;
    CHECK(ff_config_validate(&c, &e) == FF_ERR_USAGE && contains(e.msg, "clf.layers.0 must be between 0 and 7, got -1"));
}

// ----------------------------------------------------------------------------
// help, markdown, visit

typedef struct visited {
    int n;
    char keys[128][64];
    ff_hp_type types[128];
    double numbers[128];
    char strings[128][64];
    int bools[128];
} visited;

static void collect(void *ctx, const char *key, ff_hp_type type, double number, const char *string, int boolean)
{
    visited *v = ctx;
    if (v->n >= 128)
        return;
    snprintf(v->keys[v->n], sizeof v->keys[0], "%s", key);
    v->types[v->n] = type;
    v->numbers[v->n] = number;
    snprintf(v->strings[v->n], sizeof v->strings[0], "%s", type == FF_HP_STRING && string ? string : "");
    v->bools[v->n] = boolean;
    v->n++;
}

static int find_key(const visited *v, const char *key)
{
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return i;
    return -1;
}

/* "model.layers.3.units" -> "model.layers[].units" */
static void generic_key(const char *key, char *out, size_t cap)
{
    const char *p = "model.layers.";
    if (strncmp(key, p, strlen(p)) != 0) {
        snprintf(out, cap, "%s", key);
        return;
    }
    const char *rest = strchr(key + strlen(p), '.');
    snprintf(out, cap, "model.layers[]%s", rest ? rest : "");
}

static void test_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    if (!f)
        return;
    ff_config_print_help(f);
    fclose(f);
    /* every documented key: on a line with its type and default, with the meaning below */
    for (size_t i = 0; i < N_DOCUMENTED; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "  %s ", documented_keys[i]);
        const char *at = strstr(text, needle);
        const char *eol = at ? strchr(at, '\n') : NULL;
        const char *def = at ? strstr(at, "default ") : NULL;
        int ok = at && eol && def && def < eol && eol[1] == ' ' && eol[2] != '\n';
        if (!ok)
            fprintf(stderr, "  help lacks a proper entry for %s\n", documented_keys[i]);
        CHECK(ok);
    }
    CHECK(contains(text, "train.batch_size") && contains(text, "int, between 1 and 65536; default 100"));
    CHECK(contains(text, "one of sgd, adam, sgd_smooth; default adam"));
    CHECK(contains(text, "default \"data/mnist\""));
    CHECK(contains(text, "float, > 0 and <= 10; default 0.001"));

    /* every key the config actually has (as visited) is in the help, and documented here */
    ff_config c;
    CHECK(load_ok(&c, FIX "full.yaml"));
    visited *v = calloc(1, sizeof *v);
    ff_config_visit(&c, collect, v);
    for (int i = 0; i < v->n; i++) {
        char g[80], needle[90];
        generic_key(v->keys[i], g, sizeof g);
        snprintf(needle, sizeof needle, "  %s ", g);
        int documented = 0;
        for (size_t j = 0; j < N_DOCUMENTED; j++)
            documented |= strcmp(documented_keys[j], g) == 0;
        if (!contains(text, needle) || !documented)
            fprintf(stderr, "  key %s missing from help or from documented_keys\n", v->keys[i]);
        CHECK(contains(text, needle) && documented);
    }
    free(v);
    free(text);
}

static void test_markdown(void)
{
    ff_config c;
    CHECK(load_ok(&c, FIX "full.yaml"));
    size_t n = ff_config_to_markdown(&c, NULL, 0);
    char *md = malloc(n + 1);
    CHECK(md && ff_config_to_markdown(&c, md, n + 1) == n && strlen(md) == n);
    CHECK(starts_with(md, "| key | value |\n| --- | --- |\n"));
    CHECK(contains(md, "| name | full-test_1.0 |\n"));
    CHECK(contains(md, "| train.epochs | 3 |\n"));
    CHECK(contains(md, "| optimizer.type | sgd |\n"));
    CHECK(contains(md, "| optimizer.lr | 0.03 |\n"));
    CHECK(contains(md, "| train.shuffle | false |\n"));
    CHECK(contains(md, "| seed | 18446744073709551615 |\n"));
    CHECK(contains(md, "| model.layers.0.type | conv |\n"));
    CHECK(contains(md, "| model.layers.0.kernel | 5 |\n"));
    CHECK(contains(md, "| model.layers.2.units | 500 |\n"));
    CHECK(contains(md, "| clf.layers | [0, 2] |\n"));
    CHECK(contains(md, "| log.dir | runs/test #1 |\n"));
    CHECK(!contains(md, "model.layers.2.kernel"));
    /* one row per visited key */
    visited *v = calloc(1, sizeof *v);
    ff_config_visit(&c, collect, v);
    int rows = 0;
    for (const char *p = md; (p = strchr(p, '\n')); p++)
        rows++;
    CHECK(rows == v->n + 2);
    free(v);
    /* a '|' in a value is escaped */
    set_ok(&c, "data.dir=a|b");
    n = ff_config_to_markdown(&c, md, n + 1);
    CHECK(contains(md, "| data.dir | a\\|b |\n"));
    free(md);
}

static void test_visit(void)
{
    ff_config c;
    CHECK(load_ok(&c, FIX "full.yaml"));
    visited *v = calloc(1, sizeof *v);
    ff_config_visit(&c, collect, v);
    int i;
    CHECK((i = find_key(v, "model.layers.0.type")) >= 0 && v->types[i] == FF_HP_STRING && !strcmp(v->strings[i], "conv"));
    CHECK((i = find_key(v, "model.layers.0.channels")) >= 0 && v->types[i] == FF_HP_NUMBER && v->numbers[i] == 32);
    CHECK((i = find_key(v, "model.layers.0.stride")) >= 0 && v->numbers[i] == 2);
    CHECK((i = find_key(v, "model.layers.1.type")) >= 0 && !strcmp(v->strings[i], "local"));
    CHECK((i = find_key(v, "model.layers.2.units")) >= 0 && v->numbers[i] == 500);
    CHECK((i = find_key(v, "model.layers.2.threshold")) >= 0 && v->types[i] == FF_HP_NUMBER);
    CHECK(find_key(v, "model.layers.2.kernel") < 0 && find_key(v, "model.layers.0.units") < 0);
    CHECK(find_key(v, "model.layers.3.type") < 0 && find_key(v, "model.layers") < 0);
    CHECK((i = find_key(v, "train.shuffle")) >= 0 && v->types[i] == FF_HP_BOOL && v->bools[i] == 0);
    CHECK((i = find_key(v, "eval.softmax")) >= 0 && v->types[i] == FF_HP_BOOL && v->bools[i] == 1);
    CHECK((i = find_key(v, "optimizer.lr")) >= 0 && v->types[i] == FF_HP_NUMBER);
    if (i >= 0)
        CHECK_NEAR(v->numbers[i], 0.03, 1e-7);
    CHECK((i = find_key(v, "mode")) >= 0 && v->types[i] == FF_HP_STRING && !strcmp(v->strings[i], "unsupervised_backbone"));
    CHECK((i = find_key(v, "data.dir")) >= 0 && !strcmp(v->strings[i], "/tmp/mnist data"));
    CHECK((i = find_key(v, "train.epochs")) >= 0 && v->numbers[i] == 3);
    CHECK((i = find_key(v, "clf.layers")) >= 0 && v->types[i] == FF_HP_STRING && !strcmp(v->strings[i], "[0, 2]"));
    /* keys are unique: the documented keys but model.layers and its 10 fields, + 8 conv + 7 local + 4 fc */
    for (int a = 0; a < v->n; a++)
        for (int b = 0; b < a; b++)
            CHECK(strcmp(v->keys[a], v->keys[b]) != 0);
    CHECK(v->n == (int)N_DOCUMENTED - 11 + 8 + 7 + 4);
    free(v);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_configs_dir);
    RUN(test_full_file);
    RUN(test_roundtrip);
    RUN(test_error_fixtures);
    RUN(test_error_inline);
    RUN(test_io_errors);
    RUN(test_nulls_and_styles);
    RUN(test_set_valid);
    RUN(test_set_invalid);
    RUN(test_validate);
    RUN(test_help);
    RUN(test_markdown);
    RUN(test_visit);
    TEST_MAIN_END();
}
