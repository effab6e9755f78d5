/* export.c - a trained model as NumPy arrays and a manifest.json (include/ff/export.h). */
#include "ff/export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/embed.h"
#include "ff/npz.h"
#include "ff/objective.h"
#include "ff/run_record.h" /* FF_VERSION */
#include "ff/text.h"

/* ---------------------------------------------------------------- JSON text */

typedef struct text {
    char *s;
    size_t n, cap;
    int oom;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        const int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (k >= 0 && t->s && t->n + (size_t)k < t->cap) {
            t->n += (size_t)k;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->n + (size_t)k + 1)
            cap *= 2;
        char *ns = realloc(t->s, cap);
        if (!ns)
            t->oom = 1;
        else {
            t->s = ns;
            t->cap = cap;
        }
    }
}

static void put_string(text *t, const char *s)
{
    char *q = ff_text_json_quoted(s);
    if (q)
        put(t, "%s", q);
    else
        t->oom = 1;
    free(q);
}

static void put_shape(text *t, ff_shape s)
{
    put(t, "[%d, %d, %d]", s.c, s.h, s.w);
}

/* ---------------------------------------------------------------- arrays */

static int add(ff_npz *z, const char *name, const float *v, ff_err *err, int ndim, ...)
{
    int64_t shape[FF_NPZ_MAX_DIMS];
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        shape[i] = va_arg(ap, int);
    va_end(ap);
    return ff_npz_add_f32(z, name, v, shape, ndim, err);
}

/* layer l's arrays: weight, bias, and the batch-norm statistics and affine part */
static int add_layer(ff_npz *z, const ff_net *net, int l, ff_err *err)
{
    const ff_layer *L = &net->layers[l];
    const int k = L->kernel, out = L->out.c;
    char w[64], b[64];
    snprintf(w, sizeof w, "layer%d_weight", l);
    snprintf(b, sizeof b, "layer%d_bias", l);
    int rc;
    if (L->kind == FF_LAYER_FC)
        rc = add(z, w, L->W, err, 2, out, ff_shape_dim(L->in)) ||
             add(z, b, L->b, err, 1, out);
    else if (L->kind == FF_LAYER_CONV)
        rc = add(z, w, L->W, err, 4, out, L->in.c / L->groups, k, k) ||
             add(z, b, L->b, err, 1, out);
    else
        rc = add(z, w, L->W, err, 6, L->out.h, L->out.w, out, L->in.c, k, k) ||
             add(z, b, L->b, err, 3, out, L->out.h, L->out.w);
    if (!rc && net->comp_stats[l]) {
        snprintf(w, sizeof w, "layer%d_bn_mean", l);
        snprintf(b, sizeof b, "layer%d_bn_var", l);
        rc = add(z, w, net->comp_stats[l], err, 1, out) ||
             add(z, b, net->comp_stats[l] + out, err, 1, out);
    }
    if (!rc && L->affine) {
        snprintf(w, sizeof w, "layer%d_bn_scale", l);
        snprintf(b, sizeof b, "layer%d_bn_shift", l);
        rc = add(z, w, L->affine, err, 1, out) || add(z, b, L->affine + out, err, 1, out);
    }
    if (!rc && L->n_topdown) { /* model.recurrent: [out, units of the layer above or 10] */
        snprintf(w, sizeof w, "layer%d_topdown", l);
        rc = add(z, w, L->Wtd, err, 2, ff_shape_dim(L->out), L->td_dim);
    }
    return rc ? (err && err->code ? err->code : FF_ERR_RUNTIME) : FF_OK;
}

/* the 6x6 tiles of the pattern embedding, labels 0..9 then the neutral label: what
 * ff_embed_batch mixes into a zero image, times 2 (it adds 0.5 * tile) */
static int add_pattern(ff_npz *z, ff_err *err)
{
    float zero[36] = {0}, tiles[11 * 36];
    uint8_t labels[11];
    for (int k = 0; k < 11; k++)
        labels[k] = k < 10 ? (uint8_t)k : FF_LABEL_NEUTRAL;
    int idx[11] = {0};
    ff_embed_batch(FF_EMBED_PATTERN, zero, (ff_shape){1, 6, 6}, idx, labels, 11, tiles);
    for (int i = 0; i < 11 * 36; i++)
        tiles[i] *= 2.0f;
    return add(z, "embed_pattern", tiles, err, 3, 11, 6, 6);
}

static int add_arrays(ff_npz *z, const ff_model *m, ff_err *err)
{
    int rc = FF_OK;
    if (m->standardize)
        rc = add(z, "input_mean", m->mean, err, 1, m->image.c) ||
             add(z, "input_std", m->std, err, 1, m->image.c);
    for (int l = 0; !rc && l < m->net->n_layers; l++)
        rc = add_layer(z, m->net, l, err);
    if (!rc && m->head)
        rc = add(z, "head_weight", m->head->params, err, 2, m->head->classes,
                 m->head->features) ||
             add(z, "head_bias", m->head->params + (size_t)m->head->classes * m->head->features,
                 err, 1, m->head->classes);
    if (!rc && m->cfg.model.label_embedding == FF_EMBED_PATTERN)
        rc = add_pattern(z, err);
    return rc ? (err && err->code ? err->code : FF_ERR_RUNTIME) : FF_OK;
}

/* ---------------------------------------------------------------- manifest */

static const char *embed_name(ff_embed_kind k)
{
    static const char *const names[] = {"overlay", "channels", "pattern", "none"};
    return k < FF_EMBED_COUNT ? names[k] : "?";
}

static void put_pool(text *t, const ff_layer *p)
{
    put(t, "{\"kind\": \"%s\", \"kernel\": %d, \"stride\": %d, \"in\": ",
        p->pool == FF_POOL_MAX ? "max" : "avg", p->kernel, p->stride);
    put_shape(t, p->in);
    put(t, ", \"out\": ");
    put_shape(t, p->out);
    put(t, "}");
}

static void put_array_name(text *t, const char *key, int l, const char *what, int present)
{
    if (present)
        put(t, ", \"%s\": \"layer%d_%s\"", key, l, what);
    else
        put(t, ", \"%s\": null", key);
}

static void put_layer(text *t, const ff_net *net, int l)
{
    const ff_layer *L = &net->layers[l];
    put(t, "    {\"index\": %d, \"type\": \"%s\", \"in\": ", l, ff_config_layer_kind_name(L->kind));
    put_shape(t, L->in);
    put(t, ", \"out\": ");
    put_shape(t, L->out);
    if (L->kind != FF_LAYER_FC)
        put(t, ", \"kernel\": %d, \"stride\": %d, \"padding\": %d, \"groups\": %d, "
            "\"label_planes\": %d", L->kernel, L->stride, L->pad, L->groups, L->const_c);
    put(t, ", \"pool_before\": ");
    if (ff_net_pooled(net, l) && !(l > 0 && net->post[l - 1]))
        put_pool(t, &net->pool[l]);
    else
        put(t, "null");
    put(t, ", \"pool_after\": ");
    if (net->post[l])
        put_pool(t, &net->pool[l + 1]);
    else
        put(t, "null");
    put(t, ", \"weight\": \"layer%d_weight\", \"bias\": \"layer%d_bias\"", l, l);
    put_array_name(t, "bn_mean", l, "bn_mean", net->comp_stats[l] != NULL);
    put_array_name(t, "bn_var", l, "bn_var", net->comp_stats[l] != NULL);
    put_array_name(t, "bn_scale", l, "bn_scale", L->affine != NULL);
    put_array_name(t, "bn_shift", l, "bn_shift", L->affine != NULL);
    put_array_name(t, "topdown", l, "topdown", L->n_topdown > 0);
    put(t, ", \"evaluated\": %s, \"threshold\": %.9g, \"slope\": %.9g}",
        net->evaluated[l] ? "true" : "false", L->threshold, L->slope);
}

static void put_int_list(text *t, const int *v, int n)
{
    put(t, "[");
    for (int i = 0; i < n; i++)
        put(t, "%s%d", i ? ", " : "", v[i]);
    put(t, "]");
}

static void put_readouts(text *t, const ff_model *m)
{
    const ff_net *net = m->net;
    put(t, "  \"readouts\": {\"default\": \"%s\",\n    \"goodness\": ",
        ff_model_readout_name(ff_model_default_readout(m)));
    if (m->is_clf) {
        put(t, "null");
    } else {
        int ev[FF_MAX_LAYERS], n = 0;
        for (int l = 0; l < net->n_layers; l++)
            if (net->evaluated[l])
                ev[n++] = l;
        const int groups = m->cfg.model.label_embedding == FF_EMBED_NONE;
        put(t, "{\"kind\": \"%s\", \"layers\": ", groups ? "class_groups" : "label");
        put_int_list(t, ev, n);
        put(t, ", \"of\": \"%s\"}", groups ? (net->comp_stats[0] ? "bn" : "rms") : "relu_output");
    }
    put(t, ",\n    \"softmax\": ");
    if (!m->head) {
        put(t, "null}");
        return;
    }
    put(t, "{\"layers\": ");
    put_int_list(t, m->head_layers, m->head_n);
    put(t, ", \"features\": %d, \"input\": \"%s\", \"last_norm\": \"%s\", \"weight\": "
        "\"head_weight\", \"bias\": \"head_bias\"}}", m->head->features,
        m->is_clf ? "image" : "neutral_label", net->head_norm_batch ? "batch" : "rms");
}

static void put_manifest(text *t, const ff_model *m, const char *model_path)
{
    const ff_net *net = m->net;
    const int recurrent = m->cfg.model.recurrent.iterations > 0;
    /* version 2: a recurrent net (a version 1 reader would run it as a feed-forward one) */
    put(t, "{\n  \"format\": \"ffrun-npz\", \"version\": %d, \"ffrun_version\": \"%s\",\n"
        "  \"model\": ", recurrent ? 2 : 1, FF_VERSION);
    put_string(t, model_path);
    put(t, ", \"mode\": \"%s\", \"epoch\": %d, \"step\": %lld,\n  \"image\": {\"shape\": ",
        ff_config_mode_name(m->cfg.mode), m->epoch, (long long)m->step);
    put_shape(t, m->image);
    put(t, ", \"layout\": \"CHW\", \"scale\": 255, \"normalize\": \"%s\"",
        m->standardize ? "channel" : "none");
    if (m->standardize)
        put(t, ", \"mean\": \"input_mean\", \"std\": \"input_std\"");
    put(t, "},\n  \"class_names\": ");
    if (m->class_names[0][0]) {
        put(t, "[");
        for (int k = 0; k < FF_DATA_CLASSES; k++) {
            put(t, "%s", k ? ", " : "");
            put_string(t, m->class_names[k]);
        }
        put(t, "]");
    } else {
        put(t, "null");
    }
    const ff_embed_kind e = m->is_clf ? FF_EMBED_NONE : m->cfg.model.label_embedding;
    put(t, ",\n  \"label_embedding\": {\"kind\": \"%s\", \"neutral\": 0.1%s, \"input\": ",
        embed_name(e), e == FF_EMBED_PATTERN ? ", \"pattern\": \"embed_pattern\", \"mix\": 0.5"
                                             : "");
    put_shape(t, net->input);
    put(t, "},\n  \"label_every_layer\": %s, \"norm_eps\": %.9g, \"hand_on\": \"%s\", "
        "\"bn_eps\": %.9g,\n  \"recurrent\": ", net->label_every_layer ? "true" : "false",
        net->norm_eps, net->hand_on_batch ? "batch" : "rms", FF_COMP_BN_EPS);
    if (recurrent) {
        const ff_config *c = &m->cfg;
        const int ro = c->model.recurrent.readout_iteration > 0 ? c->model.recurrent.readout_iteration
                                                                : c->model.recurrent.eval_last;
        put(t, "{\"iterations\": %d, \"damping\": %.9g, \"eval_first\": %d, \"eval_last\": %d, "
            "\"readout_iteration\": %d}", c->model.recurrent.iterations, c->model.recurrent.damping,
            c->model.recurrent.eval_first, c->model.recurrent.eval_last, ro);
    } else {
        put(t, "null");
    }
    put(t, ",\n  \"layers\": [\n");
    for (int l = 0; l < net->n_layers; l++) {
        put_layer(t, net, l);
        put(t, "%s\n", l + 1 < net->n_layers ? "," : "");
    }
    put(t, "  ],\n");
    put_readouts(t, m);
    put(t, "\n}\n");
}

int ff_export_npz(const ff_model *m, const char *model_path, const char *path,
                        ff_err *err)
{
    for (int l = 0; m->cfg.model.recurrent.iterations > 0 && l < m->net->n_layers; l++)
        if (m->net->layers[l].kind != FF_LAYER_FC) /* no file is written */
            return ff_err_set(err, FF_ERR_USAGE,
                              "%s: export supports recurrent nets (model.recurrent) of fc layers "
                              "only; layer %d is %s: use ffrun predict or ffrun eval", model_path,
                              l, ff_config_layer_kind_name(m->net->layers[l].kind));
    ff_npz z = {0};
    text t = {0};
    int rc = add_arrays(&z, m, err);
    if (!rc) {
        put_manifest(&t, m, model_path);
        rc = t.oom ? ff_err_set(err, FF_ERR_NOMEM, "out of memory for the manifest")
                   : ff_npz_add_bytes(&z, "manifest.json", t.s, t.n, err);
    }
    if (!rc)
        rc = ff_npz_write(&z, path, err);
    free(t.s);
    ff_npz_free(&z);
    return rc;
}
