/* sweep.c - what a sweep is (include/ff/sweep.h): the sweep file read with
 * libyaml, the short command-line form, the expansion into points x seeds with
 * every run's config validated up front, and the --dry-run listing. Running
 * the runs and summarizing them is src/sweep_run.c. */
#include "ff/sweep.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "ff/data.h"
#include "ff/fs.h"
#include "ff/net.h"
#include "ff/rng.h"
#include "ff/text.h"
#include "yaml_depth.h"

/* ---------------------------------------------------------------- the sweep file */

typedef struct sctx {
    yaml_document_t doc;
    const char *path;
    ff_err *err;
} sctx;

static int at(const sctx *c, const yaml_node_t *n, const char *fmt, const char *a, const char *b)
{
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a, b);
    return ff_err_set(c->err, FF_ERR_USAGE, "%s:%d:%d: %s", c->path, n ? (int)n->start_mark.line + 1 : 0,
                      n ? (int)n->start_mark.column + 1 : 0, msg);
}

static yaml_node_t *get(const sctx *c, int id) { return yaml_document_get_node((yaml_document_t *)&c->doc, id); }

static int scalar(const sctx *c, const yaml_node_t *n, const char *what, char *out, size_t cap)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return at(c, n, "%s: expected a single value%s", what, "");
    if (n->data.scalar.length >= cap)
        return at(c, n, "%s: value too long%s", what, "");
    memcpy(out, n->data.scalar.value, n->data.scalar.length);
    out[n->data.scalar.length] = '\0';
    return FF_OK;
}

static int integer(const sctx *c, const yaml_node_t *n, const char *what, long lo, long hi, long *v)
{
    char buf[64], *end;
    int rc = scalar(c, n, what, buf, sizeof buf);
    if (rc)
        return rc;
    *v = strtol(buf, &end, 10);
    if (!buf[0] || *end || *v < lo || *v > hi) {
        char range[64];
        snprintf(range, sizeof range, "an integer in [%ld, %ld]", lo, hi);
        return at(c, n, "%s: expected %s", what, range);
    }
    return FF_OK;
}

static int number(const sctx *c, const yaml_node_t *n, const char *what, double *v)
{
    char buf[64], *end;
    int rc = scalar(c, n, what, buf, sizeof buf);
    if (rc)
        return rc;
    *v = strtod(buf, &end);
    if (!buf[0] || *end || !isfinite(*v))
        return at(c, n, "%s: expected a number, got '%s'", what, buf);
    return FF_OK;
}

static int values_of(const sctx *c, const yaml_node_t *seq, ff_sweep_axis *a)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE || seq->data.sequence.items.top == seq->data.sequence.items.start)
        return at(c, seq, "axis %s: expected a non-empty list of values%s", a->key, "");
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
        const yaml_node_t *v = get(c, *i);
        if (a->n_values == FF_SWEEP_MAX_VALUES)
            return at(c, v, "axis %s: too many values (max 64)%s", a->key, "");
        int rc = scalar(c, v, a->key, a->values[a->n_values], FF_SWEEP_TEXT);
        if (rc)
            return rc;
        a->value_line[a->n_values] = (int)v->start_mark.line + 1;
        a->value_col[a->n_values] = (int)v->start_mark.column + 1;
        a->n_values++;
    }
    return FF_OK;
}

/* {uniform: [lo, hi]} | {log_uniform: [lo, hi]} | {choice: [...]} | [v1, v2, ...] */
static int parse_axis(const sctx *c, const yaml_node_t *k, const yaml_node_t *v, ff_sweep_axis *a)
{
    int rc = scalar(c, k, "axes", a->key, sizeof a->key);
    if (rc)
        return rc;
    a->line = (int)k->start_mark.line + 1;
    a->col = (int)k->start_mark.column + 1;
    if (v->type == YAML_SEQUENCE_NODE) {
        a->kind = FF_AXIS_LIST;
        return values_of(c, v, a);
    }
    if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.top - v->data.mapping.pairs.start != 1)
        return at(c, v, "axis %s: expected a list of values or one of {uniform: [lo, hi]}, "
                  "{log_uniform: [lo, hi]}, {choice: [...]}%s", a->key, "");
    const yaml_node_pair_t *p = v->data.mapping.pairs.start;
    char kind[32];
    if ((rc = scalar(c, get(c, p->key), a->key, kind, sizeof kind)))
        return rc;
    const yaml_node_t *arg = get(c, p->value);
    if (!strcmp(kind, "choice")) {
        a->kind = FF_AXIS_CHOICE;
        return values_of(c, arg, a);
    }
    if (strcmp(kind, "uniform") && strcmp(kind, "log_uniform") && strcmp(kind, "log-uniform"))
        return at(c, get(c, p->key), "axis %s: unknown distribution '%s' (uniform, log_uniform, choice)",
                  a->key, kind);
    a->kind = kind[0] == 'u' ? FF_AXIS_UNIFORM : FF_AXIS_LOG_UNIFORM;
    if (!arg || arg->type != YAML_SEQUENCE_NODE || arg->data.sequence.items.top - arg->data.sequence.items.start != 2)
        return at(c, arg, "axis %s: %s needs [lo, hi]", a->key, kind);
    if ((rc = number(c, get(c, arg->data.sequence.items.start[0]), a->key, &a->lo)) ||
        (rc = number(c, get(c, arg->data.sequence.items.start[1]), a->key, &a->hi)))
        return rc;
    if (!(a->lo < a->hi) || (a->kind == FF_AXIS_LOG_UNIFORM && a->lo <= 0))
        return at(c, arg, "axis %s: %s needs lo < hi (and lo > 0 for log_uniform)", a->key, kind);
    return FF_OK;
}

static int parse_seeds(const sctx *c, const yaml_node_t *v, ff_sweep_spec *s)
{
    if (v->type == YAML_SCALAR_NODE) {
        long n;
        int rc = integer(c, v, "seeds", 1, FF_SWEEP_MAX_SEEDS, &n);
        s->n_seeds = (int)n;
        for (int i = 0; !rc && i < s->n_seeds; i++)
            s->seeds[i] = (uint64_t)i + 1;
        return rc;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return at(c, v, "seeds: expected a count or a list of seeds%s%s", "", "");
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        long n;
        if (s->n_seeds == FF_SWEEP_MAX_SEEDS)
            return at(c, get(c, *i), "seeds: at most 64%s%s", "", "");
        int rc = integer(c, get(c, *i), "seeds", 0, 2147483647L, &n);
        if (rc)
            return rc;
        s->seeds[s->n_seeds++] = (uint64_t)n;
    }
    return FF_OK;
}

static const char *const top_keys[] = {"config", "name", "set", "axes", "method", "trials",
                                       "search_seed", "seeds", "jobs", "threads", "scheduler",
                                       "asha"};

/* The metrics asha can rank by (all lower-is-better scalars the runs write). */
static const char *const asha_metrics[] = {"val/error_goodness", "val/error_softmax",
                                           "test/error_goodness", "test/error_softmax", "clf/loss",
                                           "loss/total"};

/* asha: {min_epochs: R, eta: E, metric: TAG} */
static int parse_asha(const sctx *c, const yaml_node_t *k, const yaml_node_t *v, ff_sweep_spec *s)
{
    if (v->type != YAML_MAPPING_NODE)
        return at(c, v, "asha: expected a mapping {min_epochs: R, eta: E, metric: TAG}%s%s", "", "");
    if (!s->asha_line) {
        s->asha_line = (int)k->start_mark.line + 1;
        s->asha_col = (int)k->start_mark.column + 1;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const yaml_node_t *pk = get(c, p->key), *pv = get(c, p->value);
        char key[32];
        long n;
        int rc = scalar(c, pk, "asha", key, sizeof key);
        if (rc)
            return rc;
        if (!strcmp(key, "min_epochs")) {
            rc = integer(c, pv, "asha.min_epochs", 1, 100000, &n);
            s->sched.min_epochs = (int)n;
        } else if (!strcmp(key, "eta")) {
            rc = integer(c, pv, "asha.eta", 2, 100, &n);
            s->sched.eta = (int)n;
        } else if (!strcmp(key, "metric")) {
            if ((rc = scalar(c, pv, "asha.metric", s->sched.metric, sizeof s->sched.metric)))
                return rc;
            size_t i = 0;
            while (i < sizeof asha_metrics / sizeof *asha_metrics && strcmp(asha_metrics[i], s->sched.metric))
                i++;
            if (i == sizeof asha_metrics / sizeof *asha_metrics)
                return at(c, pv, "asha.metric: unknown metric '%s' (val/error_goodness, "
                          "val/error_softmax, test/error_goodness, test/error_softmax, clf/loss, "
                          "loss/total)%s", s->sched.metric, "");
        } else {
            const char *best = key[0] == 'm' && key[1] == 'i' ? "min_epochs"
                               : key[0] == 'e'                ? "eta"
                               : key[0] == 'm'                ? "metric"
                                                              : NULL;
            if (best)
                return at(c, pk, "asha: unknown key '%s'; did you mean '%s'?", key, best);
            return at(c, pk, "asha: unknown key '%s' (min_epochs, eta, metric)%s", key, "");
        }
        if (rc)
            return rc;
    }
    return FF_OK;
}

/* A sweep's name is the suffix of its directory: one path component of safe characters. */
static int plain_name(const char *name)
{
    if (!name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-=,+", *p))
            return 0;
    return 1;
}

static int parse_top(sctx *c, const yaml_node_t *k, const yaml_node_t *v, ff_sweep_spec *s)
{
    char key[64];
    int rc = scalar(c, k, "sweep file", key, sizeof key);
    long n;
    if (rc)
        return rc;
    if (!strcmp(key, "config")) {
        s->config_line = (int)v->start_mark.line + 1;
        s->config_col = (int)v->start_mark.column + 1;
        return scalar(c, v, key, s->config, sizeof s->config);
    }
    if (!strcmp(key, "name")) {
        if ((rc = scalar(c, v, key, s->name, sizeof s->name)))
            return rc;
        if (!plain_name(s->name)) {
            char shown[4 * FF_NAME_MAX];
            ff_text_escape(s->name, strlen(s->name), shown, sizeof shown);
            return at(c, v, "name: expected one plain directory name (letters, digits, '.', "
                      "'_', '-', '=', ',', '+'; not . or ..), got '%s'%s", shown, "");
        }
        return FF_OK;
    }
    if (!strcmp(key, "method")) {
        char m[16];
        if ((rc = scalar(c, v, key, m, sizeof m)))
            return rc;
        if (strcmp(m, "grid") && strcmp(m, "random"))
            return at(c, v, "method: expected grid or random, got '%s'%s", m, "");
        s->random = m[0] == 'r';
        return FF_OK;
    }
    if (!strcmp(key, "trials")) {
        rc = integer(c, v, key, 1, 10000, &n);
        s->trials = (int)n;
        return rc;
    }
    if (!strcmp(key, "search_seed")) {
        rc = integer(c, v, key, 0, 2147483647L, &n);
        s->search_seed = (uint64_t)n;
        return rc;
    }
    if (!strcmp(key, "jobs") || !strcmp(key, "threads")) {
        rc = integer(c, v, key, 1, 1024, &n);
        *(key[0] == 'j' ? &s->jobs : &s->threads) = (int)n;
        return rc;
    }
    if (!strcmp(key, "seeds"))
        return parse_seeds(c, v, s);
    if (!strcmp(key, "scheduler")) {
        char m[16];
        if ((rc = scalar(c, v, key, m, sizeof m)))
            return rc;
        if (strcmp(m, "asha") && strcmp(m, "none"))
            return at(c, v, "scheduler: expected asha or none, got '%s'%s", m, "");
        s->asha = m[0] == 'a';
        s->asha_line = (int)k->start_mark.line + 1;
        s->asha_col = (int)k->start_mark.column + 1;
        return FF_OK;
    }
    if (!strcmp(key, "asha"))
        return parse_asha(c, k, v, s);
    if (!strcmp(key, "set") || !strcmp(key, "axes")) {
        if (v->type != YAML_MAPPING_NODE)
            return at(c, v, "%s: expected a mapping of config keys%s", key, "");
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
            const yaml_node_t *pk = get(c, p->key), *pv = get(c, p->value);
            if (key[0] == 'a') {
                if (s->n_axes == FF_SWEEP_MAX_AXES)
                    return at(c, pk, "axes: at most 16%s%s", "", "");
                if ((rc = parse_axis(c, pk, pv, &s->axes[s->n_axes++])))
                    return rc;
                continue;
            }
            char sk[FF_SWEEP_TEXT], sv[FF_SWEEP_TEXT];
            if (s->n_sets == FF_SWEEP_MAX_SETS)
                return at(c, pk, "set: at most 32 keys%s%s", "", "");
            if ((rc = scalar(c, pk, "set", sk, sizeof sk)) || (rc = scalar(c, pv, sk, sv, sizeof sv)))
                return rc;
            snprintf(s->sets[s->n_sets], sizeof s->sets[0], "%s=%s", sk, sv);
            s->set_line[s->n_sets] = (int)pv->start_mark.line + 1;
            s->set_col[s->n_sets] = (int)pv->start_mark.column + 1;
            s->n_sets++;
        }
        return FF_OK;
    }
    /* did you mean: the top key with the longest common prefix */
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof top_keys / sizeof *top_keys; i++) {
        size_t l = 0;
        while (key[l] && key[l] == top_keys[i][l])
            l++;
        if (l > best_len)
            best = top_keys[i], best_len = l;
    }
    if (best && best_len >= 2)
        return at(c, k, "unknown key '%s'; did you mean '%s'?", key, best);
    return at(c, k, "unknown key '%s' (config, name, set, axes, method, trials, search_seed, "
              "seeds, jobs, threads, scheduler, asha)%s", key, "");
}

/* An axis key given twice (--sweep KEY twice, or the same key spelled apart), or an
 * axis on seed beside seeds: runs that would be the same run twice. */
static int check_axes(const ff_sweep_spec *s, const char *origin, ff_err *err)
{
    char shown[4 * sizeof s->axes[0].key], where[FF_PATH_MAX + 64];
    for (int i = 0; i < s->n_axes; i++) {
        const ff_sweep_axis *a = &s->axes[i];
        ff_text_escape(a->key, strlen(a->key), shown, sizeof shown);
        if (a->line) /* a file's axis: where; --sweep: the option */
            snprintf(where, sizeof where, "%s:%d:%d", origin, a->line, a->col);
        else
            snprintf(where, sizeof where, "%s", origin);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->axes[j].key, a->key))
                return ff_err_set(err, FF_ERR_USAGE, "%s: axis %s is given twice; give each "
                                  "axis once", where, shown);
        if (s->n_seeds && !strcmp(a->key, "seed"))
            return ff_err_set(err, FF_ERR_USAGE, "%s: an axis on seed and seeds: %d both set "
                              "the seed (runs would repeat); keep one", where, s->n_seeds);
    }
    return FF_OK;
}

static int finish_spec(ff_sweep_spec *s, const char *origin, ff_err *err)
{
    int rc = check_axes(s, origin, err);
    if (rc)
        return rc;
    if (!s->config[0])
        return ff_err_set(err, FF_ERR_USAGE, "%s: no base config (config: FILE.yaml)", origin);
    if (!s->n_axes && !s->n_seeds)
        return ff_err_set(err, FF_ERR_USAGE, "%s: nothing to sweep (no axes, no seeds)", origin);
    if (s->random && !s->trials)
        return ff_err_set(err, FF_ERR_USAGE, "%s: method random needs trials: N", origin);
    for (int i = 0; !s->random && i < s->n_axes; i++)
        if (s->axes[i].kind == FF_AXIS_UNIFORM || s->axes[i].kind == FF_AXIS_LOG_UNIFORM)
            return ff_err_set(err, FF_ERR_USAGE, "%s:%d:%d: axis %s: a distribution needs "
                              "method: random", origin, s->axes[i].line, s->axes[i].col,
                              s->axes[i].key);
    if ((s->sched.min_epochs || s->sched.eta || s->sched.metric[0]) && !s->asha)
        return ff_err_set(err, FF_ERR_USAGE, "%s:%d:%d: asha: parameters without scheduler: asha",
                          origin, s->asha_line, s->asha_col);
    if (!s->sched.min_epochs)
        s->sched.min_epochs = 1;
    if (!s->sched.eta)
        s->sched.eta = 3;
    if (!s->name[0]) { /* the file's (or config's) base name without .yaml */
        const char *b = strrchr(origin[0] == '-' ? s->config : origin, '/');
        b = b ? b + 1 : (origin[0] == '-' ? s->config : origin);
        snprintf(s->name, sizeof s->name, "%.63s", b);
        char *dot = strrchr(s->name, '.');
        if (dot && dot != s->name)
            *dot = '\0';
    }
    return FF_OK;
}

#define MAX_DEPTH 64

/* A list or mapping nested deeper than MAX_DEPTH fails before a document is built
 * (src/yaml_depth.h). */
static int check_depth(const char *path, const char *text, size_t len, ff_err *err)
{
    int line, col;
    const int deep = ff_yaml_too_deep(text, len, MAX_DEPTH, &line, &col);
    if (deep < 0)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    if (deep)
        return ff_err_set(err, FF_ERR_USAGE, "%s:%d:%d: lists and mappings nested deeper than "
                          "%d levels; a sweep file needs at most 4", path, line, col, MAX_DEPTH);
    return FF_OK;
}

static int cmp_scalar_nodes(const void *a, const void *b)
{
    const yaml_node_t *x = *(const yaml_node_t *const *)a, *y = *(const yaml_node_t *const *)b;
    const size_t lx = x->data.scalar.length, ly = y->data.scalar.length;
    const int c = memcmp(x->data.scalar.value, y->data.scalar.value, lx < ly ? lx : ly);
    if (c || lx != ly)
        return c ? c : lx < ly ? -1 : 1;
    return x->start_mark.index < y->start_mark.index ? -1 : 1; /* the first one first */
}

/* A key given twice in any mapping of the document (as config files refuse them). */
static int check_duplicates(const sctx *c)
{
    const yaml_document_t *d = &c->doc;
    int rc = FF_OK;
    for (const yaml_node_t *n = d->nodes.start; !rc && n < d->nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        const size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        const yaml_node_t **keys = malloc(sizeof *keys * (np ? np : 1));
        if (!keys)
            return ff_err_set(c->err, FF_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (const yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
            const yaml_node_t *key = get(c, q->key);
            if (key && key->type == YAML_SCALAR_NODE)
                keys[k++] = key;
        }
        qsort(keys, k, sizeof *keys, cmp_scalar_nodes);
        for (size_t i = 1; !rc && i < k; i++)
            if (keys[i]->data.scalar.length == keys[i - 1]->data.scalar.length &&
                !memcmp(keys[i]->data.scalar.value, keys[i - 1]->data.scalar.value,
                        keys[i]->data.scalar.length)) {
                char first[32];
                snprintf(first, sizeof first, "%d:%d", (int)keys[i - 1]->start_mark.line + 1,
                         (int)keys[i - 1]->start_mark.column + 1);
                char name[FF_SWEEP_TEXT];
                ff_text_escape((const char *)keys[i]->data.scalar.value,
                               keys[i]->data.scalar.length, name, sizeof name);
                rc = at(c, keys[i], "duplicate key '%s' (first at %s); give each key once",
                        name, first);
            }
        free(keys);
    }
    return rc;
}

int ff_sweep_parse(ff_sweep_spec *s, const char *text, size_t len, const char *origin,
                   ff_err *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->origin, sizeof s->origin, "%s", origin);
    int rc = check_depth(origin, text, len, err);
    if (rc)
        return rc;
    yaml_parser_t p;
    sctx c = {.path = origin, .err = err};
    if (!yaml_parser_initialize(&p))
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &c.doc)) {
        rc = ff_err_set(err, FF_ERR_USAGE, "%s:%d:%d: YAML: %s", origin,
                        (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1,
                        p.problem ? p.problem : "syntax error");
        yaml_parser_delete(&p);
        return rc;
    }
    const yaml_node_t *root = yaml_document_get_root_node(&c.doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        rc = ff_err_set(err, FF_ERR_USAGE, "%s: expected a mapping (config:, axes:, ...)", origin);
    if (!rc)
        rc = check_duplicates(&c);
    for (yaml_node_pair_t *q = root && !rc ? root->data.mapping.pairs.start : NULL;
         q && q < root->data.mapping.pairs.top && !rc; q++)
        rc = parse_top(&c, get(&c, q->key), get(&c, q->value), s);
    yaml_document_delete(&c.doc);
    yaml_parser_delete(&p);
    return rc ? rc : finish_spec(s, origin, err);
}

int ff_sweep_load(ff_sweep_spec *s, const char *path, ff_err *err)
{
    memset(s, 0, sizeof *s);
    uint8_t *text;
    size_t len;
    int rc = ff_fs_read_file(path, 1 << 20, &text, &len, err);
    if (rc) /* missing, unreadable, a directory, too large: as a config file, exit 2 */
        return rc == FF_ERR_IO || rc == FF_ERR_FORMAT ? (err ? (err->code = FF_ERR_USAGE) : FF_ERR_USAGE) : rc;
    rc = ff_sweep_parse(s, (const char *)text, len, path, err);
    free(text);
    return rc;
}

int ff_sweep_from_args(ff_sweep_spec *s, const char *config, const char *const *axes, int n_axes,
                       int n_seeds, ff_err *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->origin, sizeof s->origin, "--sweep");
    snprintf(s->config, sizeof s->config, "%s", config);
    if (n_axes > FF_SWEEP_MAX_AXES || n_seeds < 0 || n_seeds > FF_SWEEP_MAX_SEEDS)
        return ff_err_set(err, FF_ERR_USAGE, "--sweep: at most 16 axes and 64 seeds");
    for (int i = 0; i < n_axes; i++) {
        ff_sweep_axis *a = &s->axes[s->n_axes++];
        const char *eq = strchr(axes[i], '=');
        char shown[512];
        ff_text_escape(axes[i], strlen(axes[i]), shown, sizeof shown);
        if (!eq || eq == axes[i] || !eq[1] || (size_t)(eq - axes[i]) >= sizeof a->key)
            return ff_err_set(err, FF_ERR_USAGE, "--sweep %s: expected KEY=V1,V2,...", shown);
        memcpy(a->key, axes[i], (size_t)(eq - axes[i]));
        for (const char *v = eq + 1; *v;) {
            size_t l = strcspn(v, ",");
            if (!l || l >= FF_SWEEP_TEXT || a->n_values == FF_SWEEP_MAX_VALUES)
                return ff_err_set(err, FF_ERR_USAGE, "--sweep %s: empty, too long or too many values",
                                  shown);
            memcpy(a->values[a->n_values++], v, l);
            v += l + (v[l] == ',');
        }
    }
    s->n_seeds = n_seeds;
    for (int i = 0; i < n_seeds; i++)
        s->seeds[i] = (uint64_t)i + 1;
    return finish_spec(s, "--sweep", err);
}

/* ---------------------------------------------------------------- expansion */

/* The short name of axis i in run names: the key's last component, unless
 * another axis shares it. */
static const char *short_key(const ff_sweep_spec *s, int i)
{
    const char *k = s->axes[i].key, *d = strrchr(k, '.');
    const char *sk = d ? d + 1 : k;
    for (int j = 0; j < s->n_axes; j++) {
        const char *o = strrchr(s->axes[j].key, '.');
        if (j != i && !strcmp(o ? o + 1 : s->axes[j].key, sk))
            return k;
    }
    return sk;
}

/* Appends "key=value" to a run name, '/' replaced (a directory name). */
static void name_append(char *name, size_t cap, const char *key, const char *value)
{
    size_t n = strlen(name);
    snprintf(name + n, cap - n, "%s%s=%s", n ? "," : "", key, value);
    for (char *p = name + n; *p; p++)
        if (*p == '/')
            *p = '_';
}

/* The message of a failed ff_config_set without its "--set k=v: " prefix. */
static const char *bare(const ff_err *e, const char *assignment)
{
    size_t n = strlen(assignment);
    if (!strncmp(e->msg, "--set ", 6) && !strncmp(e->msg + 6, assignment, n) &&
        !strncmp(e->msg + 6 + n, ": ", 2))
        return e->msg + 8 + n;
    return e->msg;
}

typedef struct problems {
    char text[FF_ERR_MSG_MAX];
    int n;
} problems;

static void add_problem(problems *p, const char *raw)
{
    char msg[FF_ERR_MSG_MAX]; /* raw bytes of the input (--sweep values) escaped */
    ff_text_escape(raw, strlen(raw), msg, sizeof msg);
    if (strstr(p->text, msg))
        return; /* the same error for many points: once */
    size_t n = strlen(p->text);
    if (n + strlen(msg) + 2 < sizeof p->text)
        snprintf(p->text + n, sizeof p->text - n, "%s%s", n ? "\n" : "", msg);
    p->n++;
}

static int apply(const ff_sweep_spec *s, ff_sweep_run *r, ff_config *cfg, const char *set,
                 int line, int col, const char *key_hint, problems *pr)
{
    ff_err e = {0};
    snprintf(r->sets[r->n_sets++], sizeof r->sets[0], "%s", set);
    if (!ff_config_set(cfg, set, &e))
        return 0;
    char msg[FF_ERR_MSG_MAX];
    if (line > 0)
        snprintf(msg, sizeof msg, "%.200s:%d:%d: %.150s: %.500s", s->origin, line, col, key_hint, bare(&e, set));
    else
        snprintf(msg, sizeof msg, "%.200s %.200s: %.500s", s->origin, /* a bad key: once */
                 strstr(e.msg, "unknown key") ? key_hint : set, bare(&e, set));
    add_problem(pr, msg);
    return 1;
}

/* The value of axis a for random point p (drawn in order from the search seed). */
static void draw(const ff_sweep_axis *a, ff_rng *rng, char *out, size_t cap)
{
    double u = ff_rng_uniform(rng);
    if (a->kind == FF_AXIS_CHOICE || a->kind == FF_AXIS_LIST) {
        int i = (int)(u * a->n_values);
        snprintf(out, cap, "%s", a->values[i < a->n_values ? i : a->n_values - 1]);
    } else if (a->kind == FF_AXIS_UNIFORM) {
        snprintf(out, cap, "%.4g", a->lo + u * (a->hi - a->lo));
    } else {
        snprintf(out, cap, "%.4g", exp(log(a->lo) + u * (log(a->hi) - log(a->lo))));
    }
}

static int final_epochs(const ff_config *c)
{
    return c->mode == FF_MODE_UNSUP_CLF ? c->clf.epochs : c->train.epochs;
}

/* scheduler: asha: the default metric, the rungs, and that every run reaches
 * them alike and writes the metric at each rung. */
static void check_asha(ff_sweep *sw, problems *pr)
{
    ff_asha *a = &sw->spec.sched;
    char msg[FF_ERR_MSG_MAX];
    const char *at_asha = sw->spec.origin;
    char where[FF_PATH_MAX + 32];
    snprintf(where, sizeof where, "%.4000s:%d:%d", at_asha, sw->spec.asha_line, sw->spec.asha_col);
    const ff_config *c0 = &sw->runs[0].cfg;
    const char *set = c0->data.validation > 0.0f ? "val" : "test"; /* validation chooses */
    if (!a->metric[0])
        snprintf(a->metric, sizeof a->metric, "%s%s", c0->mode == FF_MODE_SUPERVISED ? set : "",
                 c0->mode == FF_MODE_SUPERVISED                      ? "/error_goodness"
                 : c0->mode == FF_MODE_UNSUP_CLF || c0->eval.softmax ? ""
                                                                     : "loss/total");
    if (!a->metric[0])
        snprintf(a->metric, sizeof a->metric, "%s/error_softmax", set);
    sw->warning[0] = '\0';
    if (!strncmp(a->metric, "test/", 5) && c0->data.validation > 0.0f)
        snprintf(sw->warning, sizeof sw->warning,
                 "scheduler asha ranks by %s although the runs hold out a validation split "
                 "(data.validation): runs chosen on the test set report an optimistic test "
                 "error; rank by val/%s", a->metric, a->metric + 5);
    const int epochs = final_epochs(c0);
    ff_sweep_asha_rungs(a, epochs);
    if (!a->n_rungs) {
        snprintf(msg, sizeof msg, "%.4100s: scheduler asha: min_epochs %d is not below the runs' "
                 "%d epochs: no rung to stop at", where, a->min_epochs, epochs);
        add_problem(pr, msg);
        return;
    }
    for (int i = 0; i < sw->n_runs; i++) {
        const ff_config *c = &sw->runs[i].cfg;
        const char *m = a->metric, *why = NULL;
        const int errors = !strncmp(m, "test/", 5) || !strncmp(m, "val/", 4);
        const int has_val = c->data.validation > 0.0f;
        if (final_epochs(c) != epochs)
            why = "every run needs the same number of epochs (an axis changes them)";
        else if (strstr(m, "/error_goodness") && c->mode != FF_MODE_SUPERVISED)
            why = "error_goodness is written by supervised runs only";
        else if (strstr(m, "/error_softmax") && c->mode != FF_MODE_UNSUP_CLF && !c->eval.softmax)
            why = "error_softmax needs eval.softmax: true";
        else if (!strncmp(m, "val/", 4) && !has_val)
            why = "val/ errors need a validation split (data.validation)";
        else if (!strncmp(m, "test/", 5) && has_val && c->eval.test != FF_EVAL_TEST_EVERY)
            why = "with data.validation the test set is read only at the end of a run "
                  "(eval.test end): rank by the val/ error (or set eval.test every)";
        else if (!strcmp(m, "clf/loss") && c->mode != FF_MODE_UNSUP_CLF && !c->eval.softmax)
            why = "clf/loss (the softmax head's loss) needs eval.softmax: true";
        else if (!strcmp(m, "loss/total") && c->mode == FF_MODE_UNSUP_CLF)
            why = "loss/total is not written by unsupervised_clf runs (use clf/loss)";
        for (int k = 0; !why && k < a->n_rungs && c->mode != FF_MODE_UNSUP_CLF; k++)
            if (errors && a->rung_epoch[k] % c->eval.every) {
                snprintf(msg, sizeof msg, "%.4100s: scheduler asha: the rung at epoch %d is not "
                         "evaluated (eval.every %d): choose min_epochs and eta so that every rung "
                         "is a multiple of eval.every, or set eval.every", where,
                         a->rung_epoch[k], c->eval.every);
                add_problem(pr, msg);
                return;
            }
        if (why) {
            snprintf(msg, sizeof msg, "%.4100s: scheduler asha (metric %s): %s", where, m, why);
            add_problem(pr, msg);
            return;
        }
    }
}

int ff_sweep_expand(ff_sweep *sw, ff_err *err)
{
    const ff_sweep_spec *s = &sw->spec;
    ff_config base;
    int rc = ff_config_load(&base, s->config, err);
    if (rc) {
        if (s->config_line && rc == FF_ERR_IO)
            ff_err_prefix(err, "%s:%d:%d: config", s->origin, s->config_line, s->config_col);
        return rc == FF_ERR_IO ? FF_ERR_USAGE : rc;
    }
    long n_points = 1;
    for (int i = 0; i < s->n_axes && !s->random; i++)
        n_points *= s->axes[i].n_values;
    if (s->random)
        n_points = s->trials;
    const int n_seeds = s->n_seeds ? s->n_seeds : 1;
    if (n_points * n_seeds > 10000)
        return ff_err_set(err, FF_ERR_USAGE, "%s: %ld runs; at most 10000", s->origin,
                          n_points * n_seeds);
    sw->runs = calloc((size_t)(n_points * n_seeds), sizeof *sw->runs);
    if (!sw->runs)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for %ld runs", n_points * n_seeds);
    sw->n_points = (int)n_points;
    sw->n_runs = (int)(n_points * n_seeds);
    problems pr = {{0}, 0};
    ff_rng rng;
    ff_rng_seed(&rng, s->search_seed ^ 0x5eed5eedULL);
    for (long p = 0; p < n_points; p++) {
        char values[FF_SWEEP_MAX_AXES][FF_SWEEP_TEXT];
        int vi[FF_SWEEP_MAX_AXES];
        long rest = p;
        for (int i = s->n_axes - 1; i >= 0; i--) { /* grid: the first axis varies slowest */
            const ff_sweep_axis *a = &s->axes[i];
            vi[i] = s->random ? -1 : (int)(rest % a->n_values);
            if (!s->random) {
                rest /= a->n_values;
                snprintf(values[i], sizeof values[i], "%s", a->values[vi[i]]);
            }
        }
        for (int i = 0; s->random && i < s->n_axes; i++)
            draw(&s->axes[i], &rng, values[i], sizeof values[i]);
        for (int k = 0; k < n_seeds; k++) {
            ff_sweep_run *r = &sw->runs[p * n_seeds + k];
            r->point = (int)p;
            ff_config cfg = base;
            int bad = 0;
            for (int i = 0; i < s->n_sets; i++)
                bad |= apply(s, r, &cfg, s->sets[i], s->set_line[i], s->set_col[i], "set", &pr);
            for (int i = 0; i < s->n_axes; i++) {
                const ff_sweep_axis *a = &s->axes[i];
                char set[2 * FF_SWEEP_TEXT];
                snprintf(set, sizeof set, "%s=%s", a->key, values[i]);
                ff_err e = {0};
                ff_config probe = base; /* a key error points at the key, a value error at the value */
                const int key_bad = ff_config_set(&probe, set, &e) && strstr(e.msg, "unknown key");
                const int line = vi[i] >= 0 && !key_bad ? a->value_line[vi[i]] : a->line;
                const int col = vi[i] >= 0 && !key_bad ? a->value_col[vi[i]] : a->col;
                char hint[FF_SWEEP_TEXT + 16];
                snprintf(hint, sizeof hint, "axis %s", a->key);
                bad |= apply(s, r, &cfg, set, line, col, hint, &pr);
                name_append(r->point_name, sizeof r->point_name, short_key(s, i), values[i]);
            }
            snprintf(r->name, sizeof r->name, "%s", r->point_name);
            if (s->n_seeds) {
                char set[64], v[32];
                snprintf(v, sizeof v, "%llu", (unsigned long long)s->seeds[k]);
                snprintf(set, sizeof set, "seed=%s", v);
                bad |= apply(s, r, &cfg, set, 0, 0, "seeds", &pr);
                name_append(r->name, sizeof r->name, "seed", v);
            }
            if (!r->name[0])
                snprintf(r->name, sizeof r->name, "run");
            if (!bad) {
                ff_err e = {0};
                if (ff_config_validate(&cfg, &e)) {
                    char msg[FF_ERR_MSG_MAX];
                    snprintf(msg, sizeof msg, "%.200s: point %.200s: %.500s", s->origin, r->name, e.msg);
                    add_problem(&pr, msg);
                }
            }
            r->cfg = cfg;
            for (int i = 0; i < FF_SWEEP_N_METRICS; i++)
                r->metric[i] = NAN;
        }
    }
    for (int i = 0; i < sw->n_runs && !pr.n; i++)
        for (int j = i + 1; j < sw->n_runs && !pr.n; j++)
            if (!strcmp(sw->runs[i].name, sw->runs[j].name))
                add_problem(&pr, "two points have the same values (random search: a repeated draw; "
                                 "use more digits or other axes)");
    if (!pr.n && s->asha)
        check_asha(sw, &pr);
    if (pr.n)
        return ff_err_set(err, FF_ERR_USAGE, "%s", pr.text);
    return FF_OK;
}

/* ---------------------------------------------------------------- --dry-run */

/* Multiply-adds of one run: MACs per image per pass x 4 (positive and negative
 * pass, forward and weight gradient) x training images x epochs. 0 if unknown. */
static double run_macs(const ff_config *cfg, const ff_dataset *train)
{
    if (cfg->mode == FF_MODE_UNSUP_CLF || !train->n)
        return 0;
    int n = cfg->data.train_limit > 0 && cfg->data.train_limit < train->n ? cfg->data.train_limit
                                                                           : train->n;
    ff_trainer_plan plan;
    ff_err e;
    if (ff_trainer_plan_for(cfg, train->shape, n, &plan, &e))
        return 0;
    ff_rng rng;
    ff_rng_seed(&rng, cfg->seed);
    ff_net net;
    if (ff_net_build(&net, cfg, plan.in_shape, 1, &rng, &e))
        return 0;
    double macs = ff_net_flops(&net) * 4.0 * n * cfg->train.epochs;
    ff_net_free(&net);
    return macs;
}

int ff_sweep_describe(const ff_sweep *sw, char **out, ff_err *err)
{
    size_t cap = 4096 + (size_t)sw->n_runs * 1400;
    char *t = malloc(cap);
    if (!t)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    ff_dataset train = {0};
    ff_err e;
    if (sw->n_runs && sw->runs[0].cfg.mode != FF_MODE_UNSUP_CLF)
        ff_dataset_open(&train, sw->runs[0].cfg.data.dir, sw->runs[0].cfg.data.format,
                        FF_SPLIT_TRAIN, 0, &e);
    size_t n = (size_t)snprintf(t, cap, "sweep %s: %d point(s) x %d seed(s) = %d run(s) of %s (%s)\n",
                                sw->spec.name, sw->n_points, sw->spec.n_seeds ? sw->spec.n_seeds : 1,
                                sw->n_runs, sw->spec.config, sw->spec.random ? "random" : "grid");
    n += (size_t)snprintf(t + n, cap - n, "%-5s %-14s %s\n", "point", "mult-adds/run", "run (directory name)");
    double total = 0;
    for (int i = 0; i < sw->n_runs && n < cap; i++) {
        double m = run_macs(&sw->runs[i].cfg, &train);
        total += m;
        char ms[32] = "-";
        if (m > 0)
            snprintf(ms, sizeof ms, "%.3g", m);
        n += (size_t)snprintf(t + n, cap - n, "%-5d %-14s %s\n", sw->runs[i].point, ms, sw->runs[i].name);
    }
    if (n < cap)
        n += (size_t)snprintf(t + n, cap - n, "total about %.3g multiply-adds (4 x MACs per image x "
                              "training images x epochs per run; evaluation not counted)\n", total);
    if (n < cap) {
        char j[32] = "one per core", th[32] = "cores / jobs";
        if (sw->spec.jobs)
            snprintf(j, sizeof j, "%d", sw->spec.jobs);
        if (sw->spec.threads)
            snprintf(th, sizeof th, "%d", sw->spec.threads);
        n += (size_t)snprintf(t + n, cap - n, "runs at once: %s; BLAS threads per run: %s\n", j, th);
    }
    const ff_asha *a = &sw->spec.sched;
    if (sw->spec.asha && n < cap && sw->n_runs) {
        if (sw->warning[0])
            n += (size_t)snprintf(t + n, cap - n, "warning: %s\n", sw->warning);
        n += (size_t)snprintf(t + n, cap - n, "scheduler asha: eta %d, metric %s (lower is better); "
                              "rungs at epoch", a->eta, a->metric);
        for (int k = 0; k < a->n_rungs && n < cap; k++)
            n += (size_t)snprintf(t + n, cap - n, "%s %d", k ? "," : "", a->rung_epoch[k]);
        if (n < cap)
            n += (size_t)snprintf(t + n, cap - n, " of %d\n", final_epochs(&sw->runs[0].cfg));
        int left = sw->n_runs;
        for (int k = 0; k < a->n_rungs && n < cap; k++) {
            n += (size_t)snprintf(t + n, cap - n, "  rung %d (epoch %d): of the runs that reach it, "
                                  "the best 1/%d go on (all %d: %d)\n", k, a->rung_epoch[k], a->eta,
                                  left, left / a->eta);
            left /= a->eta;
        }
        if (n < cap)
            snprintf(t + n, cap - n, "  asynchronous: a run goes on as soon as it is among the best "
                     "floor(n/%d) of the n runs at its rung so far; the others wait there with a "
                     "step model and are stopped when nothing else can run\n", a->eta);
    }
    ff_dataset_free(&train);
    *out = t;
    return FF_OK;
}

void ff_sweep_free(ff_sweep *sw)
{
    if (sw->lock_fd > 0)
        close(sw->lock_fd - 1); /* the lock goes with the last descriptor (runs hold copies) */
    sw->lock_fd = 0;
    free(sw->runs);
    sw->runs = NULL;
    sw->n_runs = 0;
}
