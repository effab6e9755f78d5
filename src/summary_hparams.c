/* summary_hparams.c - the run-level records TensorBoard's dashboards read once:
 * hparams (experiment, session_start_info, session_end_info) and the
 * custom-scalars layout. Written through the tensor helpers of summary.c. */
#include "ff/summary_hparams.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custom_scalars.pb-c.h"
#include "hparams.pb-c.h"
#include "summary_internal.h"

#define TAG_EXPERIMENT "_hparams_/experiment"
#define TAG_SESSION_START "_hparams_/session_start_info"
#define TAG_SESSION_END "_hparams_/session_end_info"
#define TAG_LAYOUT "custom_scalars__config__"

/* ---------------------------------------------------------------- hparams */

typedef struct hp_item {
    char *key;
    ff_hp_type type;
    double number;
    char *string;
    int boolean;
} hp_item;

typedef struct hp_list {
    hp_item *items;
    size_t n, cap;
    int oom;
} hp_list;

static void hp_list_free(hp_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].string);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static void hp_collect(void *ctx, const char *key, ff_hp_type type, double number,
                       const char *string, int boolean)
{
    hp_list *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        hp_item *it = realloc(l->items, cap * sizeof *it);
        if (!it) {
            l->oom = 1;
            return;
        }
        l->items = it;
        l->cap = cap;
    }
    hp_item *it = &l->items[l->n];
    memset(it, 0, sizeof *it);
    it->key = strdup(key);
    it->type = type;
    it->number = number;
    it->boolean = boolean;
    it->string = type == FF_HP_STRING ? strdup(string ? string : "") : NULL;
    if (!it->key || (type == FF_HP_STRING && !it->string)) {
        free(it->key);
        free(it->string);
        l->oom = 1;
        return;
    }
    l->n++;
}

static int hp_gather(hp_list *l, const ff_config *cfg, ff_err *err)
{
    memset(l, 0, sizeof *l);
    ff_config_visit(cfg, hp_collect, l);
    if (l->oom) {
        hp_list_free(l);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory collecting hparams");
    }
    return FF_OK;
}

/* Config floats reach us widened to double (0.999f -> 0.99900001287...). A
 * non-integer that is exactly a float becomes the shortest decimal that reads
 * back as the same float, so the dashboard shows 0.999. */
static double tidy_number(double x)
{
    if (!isfinite(x) || x == floor(x) || fabs(x) > FLT_MAX || (double)(float)x != x)
        return x;
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        double y = strtod(buf, NULL);
        if ((float)y == (float)x)
            return y;
    }
    return x;
}

static void hp_value(Google__Protobuf__Value *v, const hp_item *it)
{
    google__protobuf__value__init(v);
    switch (it->type) {
    case FF_HP_NUMBER:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        v->number_value = tidy_number(it->number);
        break;
    case FF_HP_STRING:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        v->string_value = it->string;
        break;
    case FF_HP_BOOL:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        v->bool_value = it->boolean != 0;
        break;
    }
}

/* Serializes d (version 0) and writes it as an hparams summary at step 0 with
 * the empty DT_FLOAT [0] tensor. */
static int write_hparams(ff_summary_writer *w, const char *tag, int64_t step,
                         Tensorboard__Hparams__HParamsPluginData *d, ff_err *err)
{
    size_t len = tensorboard__hparams__hparams_plugin_data__get_packed_size(d);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for hparams (%zu bytes)", len);
    ProtobufCBinaryData content = {tensorboard__hparams__hparams_plugin_data__pack(d, buf), buf};
    Tensorboard__TensorShapeProto__Dim dim = TENSORBOARD__TENSOR_SHAPE_PROTO__DIM__INIT; /* size 0 */
    Tensorboard__TensorShapeProto__Dim *dims = &dim;
    Tensorboard__TensorShapeProto shape = TENSORBOARD__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = 1;
    shape.dim = &dims;
    Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
    t.dtype = TENSORBOARD__DATA_TYPE__DT_FLOAT;
    t.tensor_shape = &shape;
    int rc = ff_summary_write_tensor(w, tag, step, "hparams", content,
                                     TENSORBOARD__DATA_CLASS__DATA_CLASS_UNKNOWN, &t, err);
    free(buf);
    return rc;
}

int ff_summary_hparams_start(ff_summary_writer *w, const ff_config *cfg, double start_time,
                             ff_err *err)
{
    hp_list l;
    int rc = hp_gather(&l, cfg, err);
    if (rc)
        return rc;
    size_t n = l.n ? l.n : 1;
    Google__Protobuf__Value *vals = calloc(n, sizeof *vals);
    Tensorboard__Hparams__SessionStartInfo__HparamsEntry *ents = calloc(n, sizeof *ents);
    Tensorboard__Hparams__SessionStartInfo__HparamsEntry **ptrs = calloc(n, sizeof *ptrs);
    if (!vals || !ents || !ptrs) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for hparams");
        goto done;
    }
    for (size_t i = 0; i < l.n; i++) {
        hp_value(&vals[i], &l.items[i]);
        tensorboard__hparams__session_start_info__hparams_entry__init(&ents[i]);
        ents[i].key = l.items[i].key;
        ents[i].value = &vals[i];
        ptrs[i] = &ents[i];
    }
    Tensorboard__Hparams__SessionStartInfo ssi = TENSORBOARD__HPARAMS__SESSION_START_INFO__INIT;
    ssi.n_hparams = l.n;
    ssi.hparams = ptrs;
    ssi.start_time_secs = start_time;
    Tensorboard__Hparams__HParamsPluginData d = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
    d.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_START_INFO;
    d.session_start_info = &ssi;
    rc = write_hparams(w, TAG_SESSION_START, 0, &d, err);
done:
    free(vals);
    free(ents);
    free(ptrs);
    hp_list_free(&l);
    return rc;
}

/* Storage for an Experiment's hparam_infos and metric_infos. */
typedef struct exp_build {
    Tensorboard__Hparams__HParamInfo *infos, **info_ptrs;
    Google__Protobuf__ListValue *lists;
    Google__Protobuf__Value *dom, **dom_ptrs; /* two slots per hparam */
    Tensorboard__Hparams__MetricInfo *metrics, **metric_ptrs;
    Tensorboard__Hparams__MetricName *names;
} exp_build;

static void exp_build_free(exp_build *b)
{
    free(b->infos);
    free(b->info_ptrs);
    free(b->lists);
    free(b->dom);
    free(b->dom_ptrs);
    free(b->metrics);
    free(b->metric_ptrs);
    free(b->names);
}

static int exp_build_alloc(exp_build *b, size_t n, size_t m)
{
    n = n ? n : 1;
    m = m ? m : 1;
    b->infos = calloc(n, sizeof *b->infos);
    b->info_ptrs = calloc(n, sizeof *b->info_ptrs);
    b->lists = calloc(n, sizeof *b->lists);
    b->dom = calloc(2 * n, sizeof *b->dom);
    b->dom_ptrs = calloc(2 * n, sizeof *b->dom_ptrs);
    b->metrics = calloc(m, sizeof *b->metrics);
    b->metric_ptrs = calloc(m, sizeof *b->metric_ptrs);
    b->names = calloc(m, sizeof *b->names);
    return b->infos && b->info_ptrs && b->lists && b->dom && b->dom_ptrs && b->metrics &&
           b->metric_ptrs && b->names;
}

/* HParamInfo for item i: numbers FLOAT64 and strings STRING without a domain
 * (a one-value discrete domain would make the dashboard filter out runs of the
 * same log root with other values), bools the domain {false, true}. */
static void exp_hparam(exp_build *b, size_t i, const hp_item *it)
{
    Tensorboard__Hparams__HParamInfo *h = &b->infos[i];
    tensorboard__hparams__hparam_info__init(h);
    h->name = it->key;
    b->info_ptrs[i] = h;
    if (it->type == FF_HP_NUMBER) {
        h->type = TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_FLOAT64;
        return;
    }
    if (it->type == FF_HP_STRING) {
        h->type = TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_STRING;
        return;
    }
    Google__Protobuf__ListValue *lv = &b->lists[i];
    google__protobuf__list_value__init(lv);
    lv->values = &b->dom_ptrs[2 * i];
    for (int k = 0; k < 2; k++) {
        b->dom_ptrs[2 * i + k] = &b->dom[2 * i + k];
        google__protobuf__value__init(&b->dom[2 * i + k]);
    }
    h->type = TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_BOOL;
    for (int k = 0; k < 2; k++) {
        b->dom[2 * i + k].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        b->dom[2 * i + k].bool_value = k;
    }
    lv->n_values = 2;
    h->domain_case = TENSORBOARD__HPARAMS__HPARAM_INFO__DOMAIN_DOMAIN_DISCRETE;
    h->domain_discrete = lv;
}

static void exp_metric(exp_build *b, size_t i, const char *tag)
{
    tensorboard__hparams__metric_name__init(&b->names[i]);
    b->names[i].tag = (char *)tag; /* group "": the session run itself */
    tensorboard__hparams__metric_info__init(&b->metrics[i]);
    b->metrics[i].name = &b->names[i];
    b->metric_ptrs[i] = &b->metrics[i];
}

int ff_summary_hparams_experiment(ff_summary_writer *w, const ff_config *cfg,
                                  const char *const *metric_tags, int n_metrics, ff_err *err)
{
    if (n_metrics < 0 || (n_metrics > 0 && !metric_tags))
        return ff_err_set(err, FF_ERR_USAGE, "hparams experiment: bad metric list");
    hp_list l;
    int rc = hp_gather(&l, cfg, err);
    if (rc)
        return rc;
    exp_build b = {0};
    if (!exp_build_alloc(&b, l.n, (size_t)n_metrics)) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the hparams experiment");
        goto done;
    }
    for (size_t i = 0; i < l.n; i++)
        exp_hparam(&b, i, &l.items[i]);
    for (int i = 0; i < n_metrics; i++)
        exp_metric(&b, (size_t)i, metric_tags[i]);
    Tensorboard__Hparams__Experiment ex = TENSORBOARD__HPARAMS__EXPERIMENT__INIT;
    ex.time_created_secs = ff_summary_now();
    ex.n_hparam_infos = l.n;
    ex.hparam_infos = b.info_ptrs;
    ex.n_metric_infos = (size_t)n_metrics;
    ex.metric_infos = b.metric_ptrs;
    Tensorboard__Hparams__HParamsPluginData d = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
    d.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT;
    d.experiment = &ex;
    rc = write_hparams(w, TAG_EXPERIMENT, 0, &d, err);
done:
    exp_build_free(&b);
    hp_list_free(&l);
    return rc;
}

/* ---------------------------------------------------------------- a sweep's experiment */

typedef struct hp_key {
    const hp_item *first;     /* where the key was first seen */
    const hp_item **vals;     /* distinct values (n_cfgs slots) */
    int n_vals, n_present;
} hp_key;

static int hp_same(const hp_item *a, const hp_item *b)
{
    if (a->type != b->type)
        return 0;
    if (a->type == FF_HP_STRING)
        return strcmp(a->string, b->string) == 0;
    if (a->type == FF_HP_BOOL)
        return (a->boolean != 0) == (b->boolean != 0);
    return tidy_number(a->number) == tidy_number(b->number);
}

/* Index of key in keys[0..n), or -1. */
static int hp_key_find(const hp_key *keys, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i].first->key, key))
            return i;
    return -1;
}

int ff_summary_hparams_experiment_of(ff_summary_writer *w, const ff_config *const *cfgs, int n,
                                     const char *const *metric_tags, int n_metrics, ff_err *err)
{
    if (n <= 0 || n_metrics < 0 || (n_metrics > 0 && !metric_tags))
        return ff_err_set(err, FF_ERR_USAGE, "hparams experiment: bad config or metric list");
    hp_list *lists = calloc((size_t)n, sizeof *lists);
    size_t total = 0;
    int rc = lists ? FF_OK : ff_err_set(err, FF_ERR_NOMEM, "out of memory for hparams");
    for (int c = 0; !rc && c < n; c++)
        if (!(rc = hp_gather(&lists[c], cfgs[c], err)))
            total += lists[c].n;
    hp_key *keys = NULL;
    const hp_item **slots = NULL;
    Google__Protobuf__Value *vals = NULL, **val_ptrs = NULL;
    exp_build b = {0};
    int n_keys = 0;
    if (!rc) {
        keys = calloc(total + 1, sizeof *keys);
        slots = calloc((total + 1) * (size_t)n, sizeof *slots);
        vals = calloc((total + 1) * (size_t)n, sizeof *vals);
        val_ptrs = calloc((total + 1) * (size_t)n, sizeof *val_ptrs);
        if (!keys || !slots || !vals || !val_ptrs || !exp_build_alloc(&b, total, (size_t)n_metrics))
            rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the hparams experiment");
    }
    for (int c = 0; !rc && c < n; c++)
        for (size_t i = 0; i < lists[c].n; i++) {
            const hp_item *it = &lists[c].items[i];
            int k = hp_key_find(keys, n_keys, it->key);
            if (k < 0) {
                k = n_keys++;
                keys[k].first = it;
                keys[k].vals = slots + (size_t)k * n;
            }
            hp_key *key = &keys[k];
            key->n_present++;
            int seen = 0;
            for (int v = 0; v < key->n_vals && !seen; v++)
                seen = hp_same(key->vals[v], it);
            if (!seen && key->n_vals < n)
                key->vals[key->n_vals++] = it;
        }
    size_t out = 0;
    for (int pass = 0; !rc && pass < 2; pass++)
        for (int k = 0; k < n_keys; k++) {
            const hp_key *key = &keys[k];
            const int differs = key->n_vals > 1 || key->n_present < n;
            if (differs != (pass == 0))
                continue;
            Tensorboard__Hparams__HParamInfo *h = &b.infos[out];
            tensorboard__hparams__hparam_info__init(h);
            h->name = key->first->key;
            h->differs = differs;
            b.info_ptrs[out] = h;
            const ff_hp_type t = key->first->type;
            h->type = t == FF_HP_NUMBER   ? TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_FLOAT64
                      : t == FF_HP_STRING ? TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_STRING
                                          : TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_BOOL;
            if (t == FF_HP_NUMBER && key->n_vals > 64) {
                double lo = INFINITY, hi = -INFINITY;
                for (int v = 0; v < key->n_vals; v++) {
                    double x = tidy_number(key->vals[v]->number);
                    lo = x < lo ? x : lo;
                    hi = x > hi ? x : hi;
                }
                h->domain_case = TENSORBOARD__HPARAMS__HPARAM_INFO__DOMAIN_DOMAIN_INTERVAL;
                h->domain_interval = malloc(sizeof *h->domain_interval);
                if (!h->domain_interval) {
                    rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the hparams experiment");
                    break;
                }
                tensorboard__hparams__interval__init(h->domain_interval);
                h->domain_interval->min_value = lo;
                h->domain_interval->max_value = hi;
            } else {
                Google__Protobuf__ListValue *lv = &b.lists[out];
                google__protobuf__list_value__init(lv);
                lv->values = val_ptrs + (size_t)k * n;
                for (int v = 0; v < key->n_vals; v++) {
                    Google__Protobuf__Value *gv = &vals[(size_t)k * n + v];
                    hp_value(gv, key->vals[v]);
                    lv->values[v] = gv;
                }
                lv->n_values = (size_t)key->n_vals;
                h->domain_case = TENSORBOARD__HPARAMS__HPARAM_INFO__DOMAIN_DOMAIN_DISCRETE;
                h->domain_discrete = lv;
            }
            out++;
        }
    for (int i = 0; !rc && i < n_metrics; i++)
        exp_metric(&b, (size_t)i, metric_tags[i]);
    if (!rc) {
        Tensorboard__Hparams__Experiment ex = TENSORBOARD__HPARAMS__EXPERIMENT__INIT;
        ex.time_created_secs = ff_summary_now();
        ex.n_hparam_infos = out;
        ex.hparam_infos = b.info_ptrs;
        ex.n_metric_infos = (size_t)n_metrics;
        ex.metric_infos = b.metric_ptrs;
        Tensorboard__Hparams__HParamsPluginData d = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
        d.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT;
        d.experiment = &ex;
        rc = write_hparams(w, TAG_EXPERIMENT, 0, &d, err);
    }
    for (size_t i = 0; b.infos && i < out; i++)
        if (b.infos[i].domain_case == TENSORBOARD__HPARAMS__HPARAM_INFO__DOMAIN_DOMAIN_INTERVAL)
            free(b.infos[i].domain_interval);
    exp_build_free(&b);
    free(keys);
    free(slots);
    free(vals);
    free(val_ptrs);
    for (int c = 0; lists && c < n; c++)
        hp_list_free(&lists[c]);
    free(lists);
    return rc;
}

int ff_summary_hparams_end(ff_summary_writer *w, int status, int64_t step, ff_err *err)
{
    if (status == FF_SUMMARY_INTERRUPTED)
        return FF_OK; /* resumable: the resumed process writes the outcome */
    if (status != FF_SUMMARY_SUCCESS && status != FF_SUMMARY_FAILURE)
        return ff_err_set(err, FF_ERR_USAGE, "hparams end: bad status %d (1 success, 2 failure, "
                          "4 interrupted)", status);
    Tensorboard__Hparams__SessionEndInfo sei = TENSORBOARD__HPARAMS__SESSION_END_INFO__INIT;
    sei.status = (Tensorboard__Hparams__Status)status;
    sei.end_time_secs = ff_summary_now();
    Tensorboard__Hparams__HParamsPluginData d = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
    d.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO;
    d.session_end_info = &sei;
    return write_hparams(w, TAG_SESSION_END, step, &d, err);
}

/* ---------------------------------------------------------------- custom scalars */

typedef struct layout_build {
    Tensorboard__Chart *charts, **chart_ptrs;
    Tensorboard__MultilineChartContent *lines;
    char (*titles)[48], (*regex)[48], **regex_ptrs;
} layout_build;

static void layout_free(layout_build *b)
{
    free(b->charts);
    free(b->chart_ptrs);
    free(b->lines);
    free(b->titles);
    free(b->regex);
    free(b->regex_ptrs);
}

static int layout_alloc(layout_build *b, size_t n)
{
    n = n ? n : 1;
    b->charts = calloc(n, sizeof *b->charts);
    b->chart_ptrs = calloc(n, sizeof *b->chart_ptrs);
    b->lines = calloc(n, sizeof *b->lines);
    b->titles = calloc(n, sizeof *b->titles);
    b->regex = calloc(n, sizeof *b->regex);
    b->regex_ptrs = calloc(n, sizeof *b->regex_ptrs);
    return b->charts && b->chart_ptrs && b->lines && b->titles && b->regex && b->regex_ptrs;
}

/* chart i: layer l's goodness (iters 0) or its goodness at every iteration (iters 1) */
static void layout_chart(layout_build *b, int i, int l, int iters)
{
    if (iters) {
        snprintf(b->titles[i], sizeof b->titles[i], "layer%d goodness per iteration", l);
        snprintf(b->regex[i], sizeof b->regex[i], "layer%d/goodness_(pos|neg)_iter[0-9]+$", l);
    } else {
        snprintf(b->titles[i], sizeof b->titles[i], "layer%d goodness (pos, neg)", l);
        snprintf(b->regex[i], sizeof b->regex[i], "layer%d/goodness_(pos|neg)$", l);
    }
    b->regex_ptrs[i] = b->regex[i];
    tensorboard__multiline_chart_content__init(&b->lines[i]);
    b->lines[i].n_tag = 1;
    b->lines[i].tag = &b->regex_ptrs[i];
    tensorboard__chart__init(&b->charts[i]);
    b->charts[i].title = b->titles[i];
    b->charts[i].content_case = TENSORBOARD__CHART__CONTENT_MULTILINE;
    b->charts[i].multiline = &b->lines[i];
    b->chart_ptrs[i] = &b->charts[i];
}

static int goodness_layout(ff_summary_writer *w, int n_layers, int with_iters, ff_err *err)
{
    if (n_layers <= 0 || n_layers > 1000)
        return ff_err_set(err, FF_ERR_USAGE, "goodness layout: bad layer count %d", n_layers);
    layout_build b = {0};
    uint8_t *buf = NULL;
    int rc;
    const int n_cats = with_iters ? 2 : 1;
    if (!layout_alloc(&b, (size_t)n_layers * (size_t)n_cats)) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the goodness layout");
        goto done;
    }
    for (int c = 0; c < n_cats; c++)
        for (int i = 0; i < n_layers; i++)
            layout_chart(&b, c * n_layers + i, i, c);
    Tensorboard__Category cat[2] = {TENSORBOARD__CATEGORY__INIT, TENSORBOARD__CATEGORY__INIT};
    Tensorboard__Category *cats[2] = {&cat[0], &cat[1]};
    cat[0].title = (char *)"goodness";
    cat[1].title = (char *)"goodness per iteration (recurrent: how the net settles)";
    for (int c = 0; c < n_cats; c++) {
        cat[c].n_chart = (size_t)n_layers;
        cat[c].chart = b.chart_ptrs + (size_t)c * n_layers;
    }
    Tensorboard__Layout layout = TENSORBOARD__LAYOUT__INIT;
    layout.n_category = (size_t)n_cats;
    layout.category = cats;
    size_t len = tensorboard__layout__get_packed_size(&layout);
    buf = malloc(len ? len : 1);
    if (!buf) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the goodness layout");
        goto done;
    }
    len = tensorboard__layout__pack(&layout, buf);
    ProtobufCBinaryData none = {0, NULL};
    rc = ff_summary_write_string_tensor(w, TAG_LAYOUT, 0, "custom_scalars", none, buf, len, err);
done:
    free(buf);
    layout_free(&b);
    return rc;
}

int ff_summary_hparams_goodness_layout(ff_summary_writer *w, int n_layers, ff_err *err)
{
    return goodness_layout(w, n_layers, 0, err);
}

int ff_summary_hparams_goodness_layout_iters(ff_summary_writer *w, int n_layers, ff_err *err)
{
    return goodness_layout(w, n_layers, 1, err);
}

