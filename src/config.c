/* config.c - reading ff_config from YAML (libyaml documents) and --set overrides, and validating it. */
#include "ff/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_schema.h" // defines: ff_config_keys, ff_layer_keys, ff_key_set_text, ...
#include "yaml_depth.h"
#include "ff/fs.h"   // defines: ff_fs_read_file

#define MAX_KEYS 96                      /* capacity of pctx.at; checked against the table */
#define MAX_FILE_BYTES (16u << 20)       /* a config file larger than this is a mistake */
#define MAX_DEPTH 64                     /* nested lists and mappings: a config needs 4 */

typedef struct pos {
    int line, col; /* 1-based; line 0 = unknown */
} pos;

/* One parse or override: where values go, where they come from, where errors point. */
typedef struct pctx {
    const char *origin;     /* file name: messages read "origin:line:col: ..." */
    const char *assignment; /* else the --set text: messages read "--set assignment: ..." */
    yaml_document_t *doc;   /* the document being applied */
    ff_config *cfg;         /* the config being filled (a scratch copy) */
    ff_err *err;
    pos at[MAX_KEYS];       /* where each ff_config_keys entry was given, for cross-field messages */
} pctx;

static const pos nowhere = {0, 0};

/* "an" before fc, "a" before conv and local */
static const char *article(ff_layer_kind k)
{
    return k == FF_LAYER_FC ? "an" : "a";
}

// ----------------------------------------------------------------------------
// messages

static pos mark_pos(yaml_mark_t m)
{
    return (pos){(int)m.line + 1, (int)m.column + 1};
}

/* Prefixes the message already in c->err with where it happened; returns code. */
static int locate(const pctx *c, pos p, int code)
{
    if (c->origin && p.line > 0)
        ff_err_prefix(c->err, "%s:%d:%d", c->origin, p.line, p.col);
    else if (c->origin)
        ff_err_prefix(c->err, "%s", c->origin);
    else if (c->assignment && !ff_text_problem(c->assignment, (char[80]){0}, 80))
        ff_err_prefix(c->err, "--set %s", c->assignment);
    else if (c->assignment) /* not echoed: the message stays printable text */
        ff_err_prefix(c->err, "--set %.*s=...", (int)strcspn(c->assignment, "="), c->assignment);
    return code;
}

__attribute__((format(printf, 3, 4))) static int fail(const pctx *c, pos p, const char *fmt, ...)
{
    char msg[FF_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ff_err_set(c->err, FF_ERR_USAGE, "%s", msg);
    return locate(c, p, FF_ERR_USAGE);
}

static int unknown_key(const pctx *c, pos p, const char *path)
{
    char hint[FF_NAME_MAX];
    if (ff_key_suggest(path, 0, hint, sizeof hint))
        return fail(c, p, "unknown key '%.80s'; did you mean '%s'?", path, hint);
    return fail(c, p, "unknown key '%.80s'", path);
}

static int unknown_layer_key(const pctx *c, pos p, const char *layer, const char *name)
{
    char hint[FF_NAME_MAX];
    if (ff_key_suggest(name, 1, hint, sizeof hint))
        return fail(c, p, "unknown key '%s.%.60s'; did you mean '%s.%s'?", layer, name, layer, hint);
    return fail(c, p, "unknown key '%s.%.60s'", layer, name);
}

// ----------------------------------------------------------------------------
// nodes

static yaml_node_t *node(const pctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static const char *text_of(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = text_of(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* "a mapping", "a list", "nothing" or the quoted scalar, for "got ..." */
static const char *describe(const yaml_node_t *n, char *buf, size_t cap)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    const char *s = text_of(n);
    if (!*s)
        return "nothing";
    snprintf(buf, cap, "'%.60s%s'", s, strlen(s) > 60 ? "..." : "");
    return buf;
}

static int expected(const pctx *c, const ff_key *k, const char *path, const yaml_node_t *n)
{
    char want[160], got[80];
    ff_key_expected(k, want, sizeof want);
    return fail(c, mark_pos(n->start_mark), "expected %s for %s, got %s", want, path, describe(n, got, sizeof got));
}

/* Every key of map is a scalar and none repeats. */
static int check_keys(const pctx *c, const yaml_node_t *map, const char *prefix)
{
    const char *dot = prefix ? "." : "";
    prefix = prefix ? prefix : "";
    for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top; a++) {
        const yaml_node_t *ka = node(c, a->key);
        if (ka->type != YAML_SCALAR_NODE)
            return fail(c, mark_pos(ka->start_mark), "expected a plain key in %s, got %s",
                        *prefix ? prefix : "the top-level mapping", ka->type == YAML_MAPPING_NODE ? "a mapping" : "a list");
        for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++) {
            const yaml_node_t *kb = node(c, b->key);
            if (kb->type == YAML_SCALAR_NODE && !strcmp(text_of(ka), text_of(kb)))
                return fail(c, mark_pos(ka->start_mark), "duplicate key '%s%s%.60s' (first given at line %d)",
                            prefix, dot, text_of(ka), (int)kb->start_mark.line + 1);
        }
    }
    return FF_OK;
}

// ----------------------------------------------------------------------------
// applying nodes to the config

/* Converts scalar node n for key k and stores it in base. */
static int apply_scalar(const pctx *c, const ff_key *k, void *base, const char *path, const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE)
        return expected(c, k, path, n);
    if (strlen(text_of(n)) != n->data.scalar.length)
        return fail(c, mark_pos(n->start_mark), "%s contains a NUL character", path);
    int rc = ff_key_set_text(k, base, text_of(n), path, c->err);
    return rc ? locate(c, mark_pos(n->start_mark), rc) : FF_OK;
}

static void clear_list(const pctx *c, const ff_key *k)
{
    memset((char *)c->cfg + k->offset, 0, k->size);
    if (k->type == FF_KEY_LAYERS)
        c->cfg->model.n_layers = 0;
    else
        *(int *)((char *)c->cfg + k->count_offset) = 0;
}

/* A list node for k: NULL-equivalent (cleared, returns 0 items), a sequence, or an error. */
static int list_items(const pctx *c, const ff_key *k, const yaml_node_t *n, size_t cap, int *count)
{
    clear_list(c, k);
    *count = 0;
    if (is_null(n))
        return FF_OK;
    if (n->type != YAML_SEQUENCE_NODE)
        return expected(c, k, k->path, n);
    size_t items = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (items > cap)
        return fail(c, mark_pos(node(c, n->data.sequence.items.start[cap])->start_mark),
                    "%s has %zu entries; at most %zu are supported", k->path, items, cap);
    *count = (int)items;
    return FF_OK;
}

static const yaml_node_pair_t *find_pair(const pctx *c, const yaml_node_t *map, const char *name)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
        if (!strcmp(text_of(node(c, p->key)), name))
            return p;
    return NULL;
}

/* Fields of layer l other than type, once its kind is known. */
static int apply_layer_fields(const pctx *c, ff_layer_cfg *l, const char *lpath, const yaml_node_t *map)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = node(c, p->key);
        const ff_key *k = ff_layer_key_find(text_of(kn));
        if (k->offset == offsetof(ff_layer_cfg, kind))
            continue;
        char path[96];
        snprintf(path, sizeof path, "%s.%s", lpath, k->path);
        if (!ff_layer_key_applies(k, l->kind))
            return fail(c, mark_pos(kn->start_mark), "%s does not apply to %s %s layer", path,
                        article(l->kind), ff_config_layer_kind_name(l->kind));
        int rc = apply_scalar(c, k, l, path, node(c, p->value));
        if (rc)
            return rc;
    }
    return FF_OK;
}

static int apply_layer(const pctx *c, int i, const yaml_node_t *map)
{
    char lpath[32];
    snprintf(lpath, sizeof lpath, "model.layers.%d", i);
    pos at = mark_pos(map->start_mark);
    if (map->type != YAML_MAPPING_NODE) {
        char got[80];
        return fail(c, at, "expected a mapping for %s, got %s", lpath, describe(map, got, sizeof got));
    }
    int rc = check_keys(c, map, lpath);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; !rc && p < map->data.mapping.pairs.top; p++)
        if (!ff_layer_key_find(text_of(node(c, p->key))))
            rc = unknown_layer_key(c, mark_pos(node(c, p->key)->start_mark), lpath, text_of(node(c, p->key)));
    if (rc)
        return rc;
    ff_layer_cfg *l = &c->cfg->model.layers[i];
    ff_layer_defaults(l);
    if (c->origin)
        l->line = at.line, l->col = at.col;
    const ff_key *type = ff_layer_key_find("type");
    const yaml_node_pair_t *tp = find_pair(c, map, "type");
    if (!tp) {
        char want[64];
        ff_key_expected(type, want, sizeof want);
        return fail(c, at, "%s is missing required key 'type' (%s)", lpath, want);
    }
    char tpath[48];
    snprintf(tpath, sizeof tpath, "%s.type", lpath);
    if ((rc = apply_scalar(c, type, l, tpath, node(c, tp->value))) || (rc = apply_layer_fields(c, l, lpath, map)))
        return rc;
    for (size_t j = 0; j < ff_layer_n_keys; j++)
        if (ff_layer_key_required(&ff_layer_keys[j], l->kind) && !find_pair(c, map, ff_layer_keys[j].path))
            return fail(c, at, "%s (%s) is missing required key '%s'", lpath, ff_config_layer_kind_name(l->kind),
                        ff_layer_keys[j].path);
    return FF_OK;
}

static int apply_layers(const pctx *c, const ff_key *k, const yaml_node_t *n)
{
    int count, rc = list_items(c, k, n, FF_MAX_LAYERS, &count);
    for (int i = 0; !rc && i < count; i++)
        rc = apply_layer(c, i, node(c, n->data.sequence.items.start[i]));
    if (!rc)
        c->cfg->model.n_layers = count;
    return rc;
}

static int apply_intlist(const pctx *c, const ff_key *k, const yaml_node_t *n)
{
    int *v = (int *)((char *)c->cfg + k->offset);
    int count, rc = list_items(c, k, n, k->size / sizeof *v, &count);
    ff_key elem = {.path = k->path, .type = FF_KEY_INT, .size = sizeof *v, .min = k->min, .max = k->max};
    for (int i = 0; !rc && i < count; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s.%d", k->path, i);
        rc = apply_scalar(c, &elem, &v[i], path, node(c, n->data.sequence.items.start[i]));
    }
    if (!rc)
        *(int *)((char *)c->cfg + k->count_offset) = count;
    return rc;
}

static int apply_value(pctx *c, const ff_key *k, const yaml_node_t *n)
{
    int rc;
    if (k->type == FF_KEY_LAYERS)
        rc = apply_layers(c, k, n);
    else if (k->type == FF_KEY_INTLIST)
        rc = apply_intlist(c, k, n);
    else
        rc = apply_scalar(c, k, c->cfg, k->path, n);
    if (!rc)
        c->at[k - ff_config_keys] = mark_pos(n->start_mark);
    return rc;
}

static int apply_mapping(pctx *c, const yaml_node_t *map, const char *prefix);

static int apply_section(pctx *c, const yaml_node_t *n, const char *path)
{
    if (is_null(n))
        return FF_OK;
    if (n->type != YAML_MAPPING_NODE) {
        char got[80];
        return fail(c, mark_pos(n->start_mark), "expected a mapping for %s, got %s", path, describe(n, got, sizeof got));
    }
    return apply_mapping(c, n, path);
}

/* Applies every key of map; prefix is the dotted path of map ("" at the top). */
static int apply_mapping(pctx *c, const yaml_node_t *map, const char *prefix)
{
    int rc = check_keys(c, map, *prefix ? prefix : NULL);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; !rc && p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        char path[128];
        int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", text_of(kn));
        const ff_key *k = n < (int)sizeof path ? ff_key_find(path) : NULL;
        if (k)
            rc = apply_value(c, k, vn);
        else if (n < (int)sizeof path && ff_key_is_section(path))
            rc = apply_section(c, vn, path);
        else
            rc = unknown_key(c, mark_pos(kn->start_mark), path);
    }
    return rc;
}

// ----------------------------------------------------------------------------
// documents

static pos offset_pos(const char *text, size_t len, size_t offset)
{
    pos p = {1, 1};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n')
            p.line++, p.col = 1;
        else
            p.col++;
    }
    return p;
}

/* 1 if the leading whitespace of 1-based `line` contains a tab. */
static int indented_with_tab(const char *text, size_t len, int line)
{
    size_t i = 0;
    for (int l = 1; l < line && i < len; i++)
        if (text[i] == '\n')
            l++;
    for (; i < len && (text[i] == ' ' || text[i] == '\t'); i++)
        if (text[i] == '\t')
            return 1;
    return 0;
}

static int syntax_error(const pctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return ff_err_set(c->err, FF_ERR_NOMEM, "%s: out of memory while reading YAML",
                          c->origin ? c->origin : "--set");
    if (p->error == YAML_READER_ERROR) {
        ff_err_set(c->err, FF_ERR_USAGE, "YAML syntax error: %s", p->problem ? p->problem : "unreadable input");
        return locate(c, offset_pos(text, len, p->problem_offset), FF_ERR_USAGE);
    }
    char context[128] = "";
    if (p->context)
        snprintf(context, sizeof context, " (%s at line %d, column %d)", p->context,
                 (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    pos at = mark_pos(p->problem_mark);
    ff_err_set(c->err, FF_ERR_USAGE, "YAML syntax error: %s%s%s", p->problem ? p->problem : "invalid YAML", context,
               indented_with_tab(text, len, at.line) ? "; YAML indentation must use spaces, not tabs" : "");
    return locate(c, at, FF_ERR_USAGE);
}

/* After the first document: anything but the end of the stream is an error. */
static int check_single_document(const pctx *c, yaml_parser_t *p, const char *text, size_t len)
{
    yaml_document_t extra;
    if (!yaml_parser_load(p, &extra))
        return syntax_error(c, p, text, len);
    yaml_node_t *root = yaml_document_get_root_node(&extra);
    pos at = root ? mark_pos(root->start_mark) : nowhere;
    yaml_document_delete(&extra);
    return root ? fail(c, at, "only one YAML document is allowed") : FF_OK;
}

/* A list or mapping nested deeper than MAX_DEPTH fails before a document is built
 * (src/yaml_depth.h). */
static int check_depth(const pctx *c, const char *text, size_t len)
{
    pos at;
    const int deep = ff_yaml_too_deep(text, len, MAX_DEPTH, &at.line, &at.col);
    if (deep < 0)
        return ff_err_set(c->err, FF_ERR_NOMEM, "out of memory");
    return deep ? fail(c, at, "lists and mappings nested deeper than %d levels; a config "
                       "needs at most 4", MAX_DEPTH)
                : FF_OK;
}

typedef int (*root_fn)(pctx *c, const yaml_node_t *root, const void *arg);

/* Loads text as one YAML document and calls fn with its root node (NULL if empty). */
static int with_document(pctx *c, const char *text, size_t len, root_fn fn, const void *arg)
{
    yaml_parser_t p;
    yaml_document_t doc;
    int rc = check_depth(c, text, len);
    if (rc)
        return rc;
    if (!yaml_parser_initialize(&p))
        return ff_err_set(c->err, FF_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = syntax_error(c, &p, text, len);
    } else {
        c->doc = &doc;
        rc = fn(c, yaml_document_get_root_node(&doc), arg);
        if (!rc)
            rc = check_single_document(c, &p, text, len);
        c->doc = NULL;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return rc;
}

static int apply_root(pctx *c, const yaml_node_t *root, const void *arg)
{
    (void)arg;
    if (!root || is_null(root))
        return FF_OK;
    if (root->type != YAML_MAPPING_NODE) {
        char got[80];
        return fail(c, mark_pos(root->start_mark), "expected a mapping of config keys at the top level, got %s",
                    describe(root, got, sizeof got));
    }
    return apply_mapping(c, root, "");
}

// ----------------------------------------------------------------------------
// validation

static pos key_pos(const pctx *c, const char *path)
{
    const ff_key *k = ff_key_find(path);
    return k ? c->at[k - ff_config_keys] : nowhere;
}

static int validate_layer(const pctx *c, const ff_layer_cfg *l, int i)
{
    pos at = {l->line, l->col};
    char path[64];
    snprintf(path, sizeof path, "model.layers.%d.type", i);
    int rc = ff_key_check_stored(ff_layer_key_find("type"), l, path, c->err);
    if (rc)
        return locate(c, at, rc);
    for (size_t j = 0; j < ff_layer_n_keys; j++) {
        const ff_key *k = &ff_layer_keys[j];
        if (!ff_layer_key_applies(k, l->kind) || k->type != FF_KEY_INT)
            continue;
        int v = *(const int *)((const char *)l + k->offset);
        if (ff_layer_key_required(k, l->kind) && v == 0)
            return fail(c, at, "model.layers.%d: %s %s layer needs %s > 0", i, article(l->kind),
                        ff_config_layer_kind_name(l->kind), k->path);
        snprintf(path, sizeof path, "model.layers.%d.%s", i, k->path);
        if ((rc = ff_key_check_stored(k, l, path, c->err)))
            return locate(c, at, rc);
    }
    const ff_key *th = ff_layer_key_find("threshold");
    snprintf(path, sizeof path, "model.layers.%d.threshold", i);
    rc = ff_key_check_stored(th, l, path, c->err);
    return rc ? locate(c, at, rc) : FF_OK;
}

static int validate_layers(const pctx *c, const ff_config *cfg)
{
    pos at = key_pos(c, "model.layers");
    if (cfg->model.n_layers < 1 && cfg->mode != FF_MODE_UNSUP_CLF) /* clf: from the backbone */
        return fail(c, at, "model.layers: at least one layer is required");
    if (cfg->model.n_layers > FF_MAX_LAYERS)
        return fail(c, at, "model.layers has %d entries; at most %d are supported", cfg->model.n_layers, FF_MAX_LAYERS);
    for (int i = 0; i < cfg->model.n_layers; i++) {
        int rc = validate_layer(c, &cfg->model.layers[i], i);
        if (rc)
            return rc;
    }
    return FF_OK;
}

/* eval.layers: distinct indices of trainable layers */
static int validate_eval_layers(const pctx *c, const ff_config *cfg)
{
    const pos at = key_pos(c, "eval.layers");
    int trainable = 0;
    for (int i = 0; i < cfg->model.n_layers; i++)
        trainable += cfg->model.layers[i].kind != FF_LAYER_POOL;
    for (int i = 0; i < cfg->eval.n_layers; i++) {
        if (cfg->eval.layers[i] >= trainable)
            return fail(c, at, "eval.layers.%d is %d, but model.layers has %d trainable layer%s "
                        "(0-based, pools not counted)", i, cfg->eval.layers[i], trainable,
                        trainable == 1 ? "" : "s");
        for (int j = 0; j < i; j++)
            if (cfg->eval.layers[j] == cfg->eval.layers[i])
                return fail(c, at, "eval.layers lists layer %d twice", cfg->eval.layers[i]);
    }
    return FF_OK;
}

static int validate_clf(const pctx *c, const ff_config *cfg)
{
    pos at = key_pos(c, "clf.layers");
    int n = cfg->clf.n_layers;
    if (n < 0 || n > FF_MAX_LAYERS)
        return fail(c, at, "clf.layers has %d entries; at most %d are supported", n, FF_MAX_LAYERS);
    for (int i = 0; i < n; i++) {
        int v = cfg->clf.layers[i];
        if (v < 0 || v >= FF_MAX_LAYERS)
            return fail(c, at, "clf.layers.%d must be between 0 and %d, got %d", i, FF_MAX_LAYERS - 1, v);
        if (cfg->mode != FF_MODE_UNSUP_CLF && v >= cfg->model.n_layers)
            return fail(c, at, "clf.layers.%d is %d, but model.layers has only %d layer%s (0-based indices)", i, v,
                        cfg->model.n_layers, cfg->model.n_layers == 1 ? "" : "s");
        for (int j = 0; j < i; j++)
            if (cfg->clf.layers[j] == v)
                return fail(c, at, "clf.layers lists layer %d twice", v);
    }
    /* a schedule-following head only exists beside an FF net that trains one */
    if (cfg->clf.lr_schedule && cfg->mode == FF_MODE_UNSUP_CLF)
        return fail(c, key_pos(c, "clf.lr_schedule"),
                    "clf.lr_schedule applies to the softmax head trained beside an FF net; "
                    "unsupervised_clf always decays clf.lr over clf.epochs");
    if (cfg->clf.lr_schedule && !cfg->eval.softmax)
        return fail(c, key_pos(c, "clf.lr_schedule"),
                    "clf.lr_schedule needs eval.softmax true (the head it schedules)");
    return FF_OK;
}

/* the net reads the label back from the embedded input: overlay or channels, supervised */
static int validate_label_every_layer(const pctx *c, const ff_config *cfg)
{
    if (!cfg->model.label_every_layer)
        return FF_OK;
    pos at = key_pos(c, "model.label_every_layer");
    if (cfg->mode != FF_MODE_SUPERVISED)
        return fail(c, at, "model.label_every_layer needs mode supervised (unsupervised nets see no "
                           "labels)");
    if (cfg->model.label_embedding == FF_EMBED_PATTERN ||
        cfg->model.label_embedding == FF_EMBED_NONE)
        return fail(c, at, "model.label_every_layer needs model.label_embedding overlay or channels, "
                           "got %s", cfg->model.label_embedding == FF_EMBED_NONE ? "none" : "pattern");
    return FF_OK;
}

/* model.recurrent (include/ff/recurrent.h): what the recurrent net supports. Each
 * message points at the key that conflicts (or, when that key was not written, at
 * model.recurrent.iterations). */
static pos recurrent_pos(const pctx *c, const char *key)
{
    const pos p = key_pos(c, key);
    return p.line > 0 ? p : key_pos(c, "model.recurrent.iterations");
}

static int validate_recurrent(const pctx *c, const ff_config *cfg)
{
    const int T = cfg->model.recurrent.iterations;
    if (T == 0)
        return FF_OK;
    const pos at = key_pos(c, "model.recurrent.iterations");
    if (cfg->mode != FF_MODE_SUPERVISED)
        return fail(c, recurrent_pos(c, "mode"),
                    "model.recurrent needs mode supervised (the label is clamped at the top of "
                    "the net), got mode %s", ff_config_mode_name(cfg->mode));
    for (int i = 0; i < cfg->model.n_layers; i++) {
        const ff_layer_cfg *l = &cfg->model.layers[i];
        if (l->kind != FF_LAYER_FC && l->kind != FF_LAYER_LOCAL)
            return fail(c, l->line > 0 ? (pos){l->line, l->col} : at,
                        "model.layers.%d: model.recurrent supports fc and local layers only, got "
                        "%s (shared-weight conv and pools have no recurrent form yet)", i,
                        ff_config_layer_kind_name(l->kind));
        if (l->train_epochs > 0)
            return fail(c, l->line > 0 ? (pos){l->line, l->col} : at,
                        "model.layers.%d.train_epochs: layers that stop learning are not "
                        "supported with model.recurrent", i);
    }
    if (cfg->model.label_embedding != FF_EMBED_NONE)
        return fail(c, recurrent_pos(c, "model.label_embedding"),
                    "model.recurrent clamps the label at the top of the net: it needs "
                    "model.label_embedding none (no label in the image), got %s",
                    cfg->model.label_embedding == FF_EMBED_OVERLAY    ? "overlay"
                    : cfg->model.label_embedding == FF_EMBED_CHANNELS ? "channels"
                                                                      : "pattern");
    const struct {
        int set;
        const char *key, *what;
    } no[] = {
        {cfg->model.label_every_layer, "model.label_every_layer",
         "model.label_every_layer (the top-down connections carry the label)"},
        {cfg->train.loss == FF_LOSS_COMPETITION, "train.loss",
         "train.loss competition (use threshold or pairwise)"},
        {cfg->train.peer_norm > 0.0f, "train.peer_norm", "train.peer_norm (not built yet)"},
        {cfg->train.hard_candidates > 0, "train.hard_candidates",
         "train.hard_candidates (score all nine wrong labels: the recurrent goodness readout)"},
        {cfg->parallel.mode == FF_PAR_PIPELINE, "parallel.mode",
         "parallel.mode pipeline (every layer reads the one above: use parallel.mode data)"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (no[i].set)
            return fail(c, recurrent_pos(c, no[i].key), "model.recurrent cannot be used with %s",
                        no[i].what);
    const int a = cfg->model.recurrent.eval_first, b = cfg->model.recurrent.eval_last;
    if (a > b || b > T)
        return fail(c, recurrent_pos(c, a > b ? "model.recurrent.eval_first"
                                              : "model.recurrent.eval_last"),
                    "model.recurrent: the readout's iterations eval_first %d to eval_last %d must "
                    "lie within the %d iteration%s (1 <= eval_first <= eval_last <= iterations)", a,
                    b, T, T == 1 ? "" : "s");
    if (cfg->model.recurrent.readout_iteration > T)
        return fail(c, recurrent_pos(c, "model.recurrent.readout_iteration"),
                    "model.recurrent.readout_iteration %d is past the %d iteration%s",
                    cfg->model.recurrent.readout_iteration, T, T == 1 ? "" : "s");
    return FF_OK;
}

/* the pairwise loss pairs positive row i with negative row i of the same step; the
 * competition loss reads the class from the true label of the image alone, and a
 * supervised net without a label in its input can only be read out by competition */
static int validate_loss(const pctx *c, const ff_config *cfg)
{
    if (cfg->train.loss == FF_LOSS_PAIRWISE && cfg->train.passes != FF_PASS_JOINT)
        return fail(c, key_pos(c, "train.loss"),
                    "train.loss pairwise needs train.passes joint (a positive and its negative in "
                    "one step)");
    const int competition = cfg->train.loss == FF_LOSS_COMPETITION;
    if (!competition && cfg->train.competition_norm != FF_COMP_SAMPLE)
        return fail(c, key_pos(c, "train.competition_norm"),
                    "train.competition_norm only applies with train.loss competition");
    if (cfg->model.hand_on == FF_HAND_BATCH &&
        (!competition || cfg->train.competition_norm == FF_COMP_SAMPLE))
        return fail(c, key_pos(c, "model.hand_on"),
                    "model.hand_on batch hands on the competition loss's batch statistics: it needs "
                    "train.loss competition with train.competition_norm batch or affine");
    if (cfg->clf.norm == FF_CLF_NORM_BATCH && cfg->model.hand_on != FF_HAND_BATCH)
        return fail(c, key_pos(c, "clf.norm"),
                    "clf.norm batch reads the competition loss's channel statistics: it needs "
                    "model.hand_on batch (with train.loss competition and "
                    "train.competition_norm batch or affine)");
    if (cfg->model.loss_after_pool && cfg->model.hand_on != FF_HAND_BATCH)
        return fail(c, key_pos(c, "model.loss_after_pool"),
                    "model.loss_after_pool needs model.hand_on batch (with train.loss competition "
                    "and train.competition_norm batch or affine)");
    if (cfg->model.hand_on == FF_HAND_BATCH && cfg->parallel.mode == FF_PAR_PIPELINE)
        return fail(c, key_pos(c, "model.hand_on"),
                    "model.hand_on batch cannot be used with parallel.mode pipeline (a stage would "
                    "need the statistics of the stage before); use parallel.mode data");
    if (competition && cfg->mode != FF_MODE_SUPERVISED)
        return fail(c, key_pos(c, "train.loss"),
                    "train.loss competition needs mode supervised (it trains on the labels)");
    pos emb = key_pos(c, "model.label_embedding");
    if (emb.line == 0) /* the embedding left at its default: point at the loss */
        emb = key_pos(c, "train.loss");
    if (competition && cfg->model.label_embedding != FF_EMBED_NONE)
        return fail(c, emb,
                    "train.loss competition needs model.label_embedding none (the class is read "
                    "from the channel groups, not put into the image)");
    if (competition && cfg->train.logit_scale <= 0.0f)
        return fail(c, key_pos(c, "train.loss"),
                    "train.loss competition needs train.logit_scale > 0 (the slope 1 of "
                    "logit_scale 0 saturates the softmax over the class groups); 10 makes the "
                    "logits ten times each group's share of the goodness, configs/"
                    "supervised_competition.yaml uses 30");
    if (competition && cfg->train.negatives == FF_NEG_HARD)
        return fail(c, key_pos(c, "train.negatives"),
                    "train.loss competition uses no negative data: drop train.negatives hard");
    if (!competition && cfg->mode == FF_MODE_SUPERVISED &&
        cfg->model.label_embedding == FF_EMBED_NONE && cfg->model.recurrent.iterations == 0)
        return fail(c, key_pos(c, "model.label_embedding"),
                    "model.label_embedding none (no label in the input) needs train.loss "
                    "competition (or model.recurrent, the label at the top) in mode supervised");
    return FF_OK;
}

/* the options that change how hard negatives are scored: both only mean something with
 * train.negatives hard (a silently ignored setting would mislead), and both read the
 * softmax head */
static int validate_hard_options(const pctx *c, const ff_config *cfg)
{
    const struct {
        int set;
        const char *key, *what, *head_role;
    } opt[] = {
        {cfg->train.hard_scores == FF_HARD_SOFTMAX, "train.hard_scores", "train.hard_scores softmax",
         "the head whose logits score the labels"},
        {cfg->train.hard_candidates > 0, "train.hard_candidates", "train.hard_candidates",
         "the head that picks the candidates"},
    };
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        if (!opt[i].set)
            continue;
        if (cfg->train.negatives != FF_NEG_HARD)
            return fail(c, key_pos(c, opt[i].key),
                        "%s only applies with train.negatives hard (random negatives are not "
                        "scored)", opt[i].what);
        if (!cfg->eval.softmax)
            return fail(c, key_pos(c, opt[i].key), "%s needs eval.softmax true (%s)", opt[i].what,
                        opt[i].head_role);
    }
    return FF_OK;
}

/* parallel.mode: settings the mode cannot split (the rank count is checked at start) */
static int validate_parallel(const pctx *c, const ff_config *cfg)
{
    if (cfg->parallel.mode != FF_PAR_NONE && cfg->mode == FF_MODE_UNSUP_CLF)
        return fail(c, key_pos(c, "parallel.mode"),
                    "parallel.mode applies to the FF modes; unsupervised_clf trains alone (none)");
    if (cfg->parallel.mode != FF_PAR_PIPELINE)
        return FF_OK;
    for (int i = 0; i < cfg->model.n_layers; i++)
        if (cfg->model.layers[i].train_epochs > 0)
            return fail(c, (pos){cfg->model.layers[i].line, cfg->model.layers[i].col},
                        "model.layers.%d.train_epochs: layers that stop learning are not "
                        "supported with parallel.mode pipeline (a stage steps all its layers); "
                        "remove train_epochs or use parallel.mode data or none", i);
    const char *why = cfg->train.negatives == FF_NEG_HARD ? "train.negatives hard (scores need the whole net)"
                      : cfg->eval.softmax ? "eval.softmax (the per-batch head step needs the whole net)"
                      : cfg->model.label_every_layer ? "model.label_every_layer"
                      : NULL;
    if (why)
        return fail(c, key_pos(c, "parallel.mode"),
                    "parallel.mode pipeline cannot be used with %s; use parallel.mode data", why);
    return FF_OK;
}

/* data.validation: a fraction below 1 or a whole count */
static int validate_validation(const pctx *c, const ff_config *cfg)
{
    const float v = cfg->data.validation;
    if (v >= 1.0f && v != floorf(v))
        return fail(c, key_pos(c, "data.validation"),
                    "data.validation: %g is neither a fraction (below 1) nor a whole number of "
                    "images", v);
    return FF_OK;
}

static int validate_at(const pctx *c, const ff_config *cfg)
{
    for (size_t i = 0; i < ff_config_n_keys; i++) {
        int rc = ff_key_check_stored(&ff_config_keys[i], cfg, ff_config_keys[i].path, c->err);
        if (rc)
            return locate(c, c->at[i], rc);
    }
    int rc = validate_layers(c, cfg);
    if (!rc)
        rc = validate_recurrent(c, cfg);
    if (!rc)
        rc = validate_label_every_layer(c, cfg);
    if (!rc)
        rc = validate_loss(c, cfg);
    if (!rc)
        rc = validate_hard_options(c, cfg);
    if (!rc)
        rc = validate_parallel(c, cfg);
    if (!rc)
        rc = validate_eval_layers(c, cfg);
    if (!rc)
        rc = validate_validation(c, cfg);
    return rc ? rc : validate_clf(c, cfg);
}

int ff_config_validate(const ff_config *cfg, ff_err *err)
{
    pctx c = {.err = err};
    return validate_at(&c, cfg);
}

// ----------------------------------------------------------------------------
// files and strings

int ff_config_parse(ff_config *cfg, const char *yaml, size_t len, const char *origin, ff_err *err)
{
    FF_ASSERT(ff_config_n_keys <= MAX_KEYS);
    ff_config tmp;
    ff_config_defaults(&tmp);
    pctx c = {.origin = origin ? origin : "<config>", .cfg = &tmp, .err = err};
    int rc = with_document(&c, yaml, len, apply_root, NULL);
    if (!rc)
        rc = validate_at(&c, &tmp);
    snprintf(tmp.origin, sizeof tmp.origin, "%s", c.origin);
    if (!rc)
        memcpy(cfg, &tmp, sizeof tmp);
    return rc;
}

int ff_config_load(ff_config *cfg, const char *path, ff_err *err)
{
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = ff_fs_read_file(path, MAX_FILE_BYTES, &text, &len, err);
    if (rc == FF_ERR_FORMAT && err) { /* not a regular file, or too large: a usage error */
        char msg[FF_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return ff_err_set(err, FF_ERR_USAGE, "%s; not a config file?", msg);
    }
    if (rc == FF_ERR_FORMAT)
        return FF_ERR_USAGE;
    if (rc)
        return rc;
    rc = ff_config_parse(cfg, (const char *)text, len, path, err);
    free(text);
    return rc;
}

// ----------------------------------------------------------------------------
// --set

static int apply_set_list(pctx *c, const yaml_node_t *root, const void *arg)
{
    const ff_key *k = arg;
    if (!root) {
        clear_list(c, k);
        return FF_OK;
    }
    return apply_value(c, k, root);
}

/* Lists are YAML flow text; "0,1,2" is read as "[0,1,2]". */
static int set_list(pctx *c, const ff_key *k, const char *value)
{
    size_t n = strlen(value);
    char *text = malloc(n + 3);
    if (!text)
        return ff_err_set(c->err, FF_ERR_NOMEM, "out of memory");
    if (n && value[0] != '[')
        snprintf(text, n + 3, "[%s]", value);
    else
        memcpy(text, value, n + 1);
    int rc = with_document(c, text, strlen(text), apply_set_list, k);
    free(text);
    return rc;
}

/* Resets the fields a layer of its (new) kind does not use to their defaults. */
static void reset_unused_fields(ff_layer_cfg *l)
{
    ff_layer_cfg d;
    ff_layer_defaults(&d);
    for (size_t j = 0; j < ff_layer_n_keys; j++) {
        const ff_key *k = &ff_layer_keys[j];
        if (!ff_layer_key_applies(k, l->kind))
            memcpy((char *)l + k->offset, (char *)&d + k->offset, k->size);
    }
}

/* key is "model.layers.N.field"; rest points at "N.field". */
static int set_layer_field(pctx *c, const char *key, const char *rest, const char *value)
{
    char *end;
    long i = isdigit((unsigned char)*rest) ? strtol(rest, &end, 10) : -1;
    if (i < 0 || *end != '.' || !end[1])
        return fail(c, nowhere, "expected model.layers.N.field (N a 0-based layer index), got '%.80s'", key);
    int n = c->cfg->model.n_layers;
    if (i >= n)
        return fail(c, nowhere, "model.layers.%ld does not exist (the config has %d layer%s)", i, n, n == 1 ? "" : "s");
    char lpath[32];
    snprintf(lpath, sizeof lpath, "model.layers.%ld", i);
    const ff_key *k = ff_layer_key_find(end + 1);
    if (!k)
        return unknown_layer_key(c, nowhere, lpath, end + 1);
    ff_layer_cfg *l = &c->cfg->model.layers[i];
    if (!ff_layer_key_applies(k, l->kind))
        return fail(c, nowhere, "%s does not apply to %s %s layer", key, article(l->kind),
                    ff_config_layer_kind_name(l->kind));
    int rc = ff_key_set_text(k, l, value, key, c->err);
    if (rc)
        return locate(c, nowhere, rc);
    reset_unused_fields(l);
    return FF_OK;
}

static int set_key(pctx *c, const char *key, const char *value)
{
    static const char layers[] = "model.layers.";
    if (!strncmp(key, layers, sizeof layers - 1))
        return set_layer_field(c, key, key + sizeof layers - 1, value);
    const ff_key *k = ff_key_find(key);
    if (!k && ff_key_is_section(key))
        return fail(c, nowhere, "'%s' is a section; set one of its keys (%s.<key>)", key, key);
    if (!k)
        return unknown_key(c, nowhere, key);
    if (k->type == FF_KEY_LAYERS || k->type == FF_KEY_INTLIST)
        return set_list(c, k, value);
    int rc = ff_key_set_text(k, c->cfg, value, key, c->err);
    return rc ? locate(c, nowhere, rc) : FF_OK;
}

int ff_config_set(ff_config *cfg, const char *assignment, ff_err *err)
{
    ff_config tmp;
    memcpy(&tmp, cfg, sizeof tmp);
    pctx c = {.assignment = assignment, .cfg = &tmp, .err = err};
    const char *eq = strchr(assignment, '=');
    char key[128];
    if (!eq || eq == assignment)
        return fail(&c, nowhere, "expected key.path=value");
    if ((size_t)(eq - assignment) >= sizeof key)
        return fail(&c, nowhere, "unknown key '%.60s...'", assignment);
    memcpy(key, assignment, (size_t)(eq - assignment));
    key[eq - assignment] = '\0';
    int rc = set_key(&c, key, eq + 1);
    if (!rc)
        memcpy(cfg, &tmp, sizeof tmp);
    return rc;
}
