/* summary_reader.c - decodes and checks serialized TensorBoard Events (for
 * tools/tfevents-dump and the tests), and finds a run directory's HParams end record
 * (for --resume); the writing side is summary.c. */
#include "ff/summary_reader.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custom_scalars.pb-c.h"
#include "event.pb-c.h"
#include "hparams.pb-c.h"
#include "ff/tfrecord.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* PNG signature, IHDR size and colour type against the Summary.Image fields. */
static int check_image(const Tensorboard__Summary__Image *im, char *text, size_t cap, ff_err *err)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const int colorspace_of[7] = {1, 0, 3, 0, 2, 0, 4}; /* by PNG colour type */
    const uint8_t *p = im->encoded_image_string.data;
    size_t n = im->encoded_image_string.len;
    if (im->width <= 0 || im->height <= 0 || im->colorspace < 1 || im->colorspace > 4)
        return ff_err_set(err, FF_ERR_FORMAT, "image %dx%d colorspace %d out of range",
                          im->width, im->height, im->colorspace);
    snprintf(text, cap, "image %dx%d colorspace %d, %zu bytes", im->width, im->height,
             im->colorspace, n);
    if (n >= 3 && ((p[0] == 0xFF && p[1] == 0xD8) || memcmp(p, "GIF", 3) == 0))
        return FF_OK;
    if (n < 33 || memcmp(p, sig, 8) != 0 || memcmp(p + 12, "IHDR", 4) != 0)
        return ff_err_set(err, FF_ERR_FORMAT, "image bytes are not a PNG, JPEG or GIF");
    uint32_t pw = be32(p + 16), ph = be32(p + 20);
    int ct = p[25];
    if (pw != (uint32_t)im->width || ph != (uint32_t)im->height)
        return ff_err_set(err, FF_ERR_FORMAT, "PNG is %ux%u but the summary says %dx%d", pw, ph,
                          im->width, im->height);
    if (ct > 6 || colorspace_of[ct] != im->colorspace)
        return ff_err_set(err, FF_ERR_FORMAT, "PNG colour type %d does not match colorspace %d",
                          ct, im->colorspace);
    return FF_OK;
}

static int check_histo(const Tensorboard__HistogramProto *h, double *number, char *text,
                       size_t cap, ff_err *err)
{
    if (h->n_bucket != h->n_bucket_limit)
        return ff_err_set(err, FF_ERR_FORMAT, "histogram has %zu buckets but %zu limits",
                          h->n_bucket, h->n_bucket_limit);
    double total = 0;
    for (size_t i = 0; i < h->n_bucket; i++) {
        if (!(h->bucket[i] >= 0) || (i > 0 && !(h->bucket_limit[i] >= h->bucket_limit[i - 1])))
            return ff_err_set(err, FF_ERR_FORMAT, "histogram bucket %zu is invalid", i);
        total += h->bucket[i];
    }
    if (fabs(total - h->num) > 0.5 || (h->num > 0 && !(h->min <= h->max)))
        return ff_err_set(err, FF_ERR_FORMAT, "histogram counts sum to %g but num is %g", total,
                          h->num);
    *number = h->num;
    snprintf(text, cap, "histogram n=%g min=%g max=%g buckets=%zu", h->num, h->min, h->max,
             h->n_bucket);
    return FF_OK;
}

static int tensor_is_string_scalar(const Tensorboard__TensorProto *t)
{
    return t->dtype == TENSORBOARD__DATA_TYPE__DT_STRING && t->tensor_shape &&
           t->tensor_shape->n_dim == 0 && t->n_string_val == 1;
}

static int check_hparams(ProtobufCBinaryData c, ff_summary_value_info *vi, ff_err *err)
{
    char *text = vi->text;
    size_t cap = sizeof vi->text;
    Tensorboard__Hparams__HParamsPluginData *d =
        tensorboard__hparams__hparams_plugin_data__unpack(NULL, c.len, c.data);
    if (!d)
        return ff_err_set(err, FF_ERR_FORMAT, "hparams content does not decode");
    int rc = FF_OK;
    if (d->version != 0)
        rc = ff_err_set(err, FF_ERR_FORMAT, "hparams plugin data version %d (want 0)", d->version);
    else if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT)
        snprintf(text, cap, "experiment: %zu hparams, %zu metrics", d->experiment->n_hparam_infos,
                 d->experiment->n_metric_infos);
    else if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_START_INFO)
        snprintf(text, cap, "session_start_info: %zu hparams",
                 d->session_start_info->n_hparams);
    else if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO) {
        vi->end_status = (int)d->session_end_info->status;
        snprintf(text, cap, "session_end_info: status %d", vi->end_status);
    }
    else
        rc = ff_err_set(err, FF_ERR_FORMAT, "hparams plugin data is empty");
    tensorboard__hparams__hparams_plugin_data__free_unpacked(d, NULL);
    return rc;
}

static int check_layout(const Tensorboard__TensorProto *t, char *text, size_t cap, ff_err *err)
{
    if (!tensor_is_string_scalar(t))
        return ff_err_set(err, FF_ERR_FORMAT, "custom_scalars value is not a DT_STRING scalar");
    Tensorboard__Layout *l =
        tensorboard__layout__unpack(NULL, t->string_val[0].len, t->string_val[0].data);
    if (!l)
        return ff_err_set(err, FF_ERR_FORMAT, "custom_scalars layout does not decode");
    size_t charts = 0;
    for (size_t i = 0; i < l->n_category; i++)
        charts += l->category[i]->n_chart;
    snprintf(text, cap, "layout: %zu categories, %zu charts", l->n_category, charts);
    tensorboard__layout__free_unpacked(l, NULL);
    return FF_OK;
}

static int check_text(const Tensorboard__TensorProto *t, char *text, size_t cap, ff_err *err)
{
    if (t->dtype != TENSORBOARD__DATA_TYPE__DT_STRING || !t->tensor_shape || t->n_string_val == 0)
        return ff_err_set(err, FF_ERR_FORMAT, "text value is not a DT_STRING tensor with a shape");
    const ProtobufCBinaryData *s = &t->string_val[0];
    size_t k = 0, room = cap > 8 ? cap - 8 : 0;
    k += (size_t)snprintf(text, cap, "text \"");
    for (size_t i = 0; i < s->len && k < room; i++)
        text[k++] = s->data[i] >= 0x20 && s->data[i] < 0x7f ? (char)s->data[i] : '.';
    snprintf(text + k, cap - k, "%s\"", s->len > room ? "..." : "");
    return FF_OK;
}

static int check_scalar_tensor(const Tensorboard__TensorProto *t, double *number, char *text,
                               size_t cap, ff_err *err)
{
    if (t->dtype != TENSORBOARD__DATA_TYPE__DT_FLOAT)
        return ff_err_set(err, FF_ERR_FORMAT, "scalars tensor has dtype %d (want DT_FLOAT)",
                          (int)t->dtype);
    float f;
    if (t->n_float_val == 1)
        f = t->float_val[0];
    else if (t->tensor_content.len == 4)
        memcpy(&f, t->tensor_content.data, 4);
    else
        return ff_err_set(err, FF_ERR_FORMAT, "scalars tensor holds no single float");
    *number = f;
    snprintf(text, cap, "%.9g", *number);
    return FF_OK;
}

static int check_tensor(ff_summary_value_info *vi, const Tensorboard__Summary__Value *v,
                        ff_err *err)
{
    const Tensorboard__TensorProto *t = v->tensor;
    const char *pl = vi->plugin;
    if (vi->has_metadata && strcmp(pl, "hparams") == 0)
        return check_hparams(v->metadata->plugin_data->content, vi, err);
    if (strcmp(pl, "custom_scalars") == 0)
        return check_layout(t, vi->text, sizeof vi->text, err);
    if (strcmp(pl, "text") == 0)
        return check_text(t, vi->text, sizeof vi->text, err);
    if (strcmp(pl, "scalars") == 0)
        return check_scalar_tensor(t, &vi->number, vi->text, sizeof vi->text, err);
    snprintf(vi->text, sizeof vi->text, "tensor dtype %d", (int)t->dtype);
    return FF_OK;
}

static int decode_value(ff_summary_value_info *vi, const Tensorboard__Summary__Value *v,
                        ff_err *err)
{
    vi->tag = strdup(v->tag);
    if (!vi->tag)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    vi->number = NAN;
    vi->end_status = -1;
    const Tensorboard__SummaryMetadata *md = v->metadata;
    if (md && md->plugin_data && md->plugin_data->plugin_name[0]) {
        vi->has_metadata = 1;
        snprintf(vi->plugin, sizeof vi->plugin, "%s", md->plugin_data->plugin_name);
    }
    const char *legacy = NULL;
    switch (v->value_case) {
    case TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE:
        legacy = "scalars";
        vi->number = v->simple_value;
        snprintf(vi->text, sizeof vi->text, "%.9g", (double)v->simple_value);
        break;
    case TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO:
        legacy = "histograms";
        if (check_histo(v->histo, &vi->number, vi->text, sizeof vi->text, err))
            return FF_ERR_FORMAT;
        break;
    case TENSORBOARD__SUMMARY__VALUE__VALUE_IMAGE:
        legacy = "images";
        if (check_image(v->image, vi->text, sizeof vi->text, err))
            return FF_ERR_FORMAT;
        break;
    case TENSORBOARD__SUMMARY__VALUE__VALUE_AUDIO:
        legacy = "audio";
        snprintf(vi->text, sizeof vi->text, "audio %zu bytes", v->audio->encoded_audio_string.len);
        break;
    case TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR:
        vi->is_tensor = 1;
        return check_tensor(vi, v, err);
    default:
        if (!vi->has_metadata) /* metadata-only values (hparams) are fine */
            return ff_err_set(err, FF_ERR_FORMAT, "value has neither data nor metadata");
        snprintf(vi->text, sizeof vi->text, "metadata only");
        if (strcmp(vi->plugin, "hparams") == 0)
            return check_hparams(md->plugin_data->content, vi, err);
        return FF_OK;
    }
    if (!vi->has_metadata)
        snprintf(vi->plugin, sizeof vi->plugin, "%s", legacy);
    return FF_OK;
}

static const char *what_name(Tensorboard__Event__WhatCase c)
{
    switch (c) {
    case TENSORBOARD__EVENT__WHAT_FILE_VERSION: return "file_version";
    case TENSORBOARD__EVENT__WHAT_GRAPH_DEF: return "graph_def";
    case TENSORBOARD__EVENT__WHAT_SUMMARY: return "summary";
    case TENSORBOARD__EVENT__WHAT_LOG_MESSAGE: return "log_message";
    case TENSORBOARD__EVENT__WHAT_SESSION_LOG: return "session_log";
    case TENSORBOARD__EVENT__WHAT_TAGGED_RUN_METADATA: return "tagged_run_metadata";
    case TENSORBOARD__EVENT__WHAT_META_GRAPH_DEF: return "meta_graph_def";
    default: return "none";
    }
}

static int decode_summary(ff_summary_event_info *out, const Tensorboard__Summary *s, ff_err *err)
{
    if (s->n_value == 0)
        return FF_OK;
    out->values = calloc(s->n_value, sizeof *out->values);
    if (!out->values)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n_value; i++) {
        out->n_values = (int)i + 1;
        int rc = decode_value(&out->values[i], s->value[i], err);
        if (rc) {
            ff_err_prefix(err, "tag '%s'", s->value[i]->tag);
            return rc;
        }
    }
    return FF_OK;
}

int ff_summary_reader_event_decode(const uint8_t *data, size_t len, ff_summary_event_info *out,
                            ff_err *err)
{
    memset(out, 0, sizeof *out);
    Tensorboard__Event *ev = tensorboard__event__unpack(NULL, len, data);
    if (!ev)
        return ff_err_set(err, FF_ERR_FORMAT, "payload is not a valid Event protobuf");
    out->wall_time = ev->wall_time;
    out->step = ev->step;
    out->what = what_name(ev->what_case);
    int rc = FF_OK;
    if (ev->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION)
        snprintf(out->file_version, sizeof out->file_version, "%s", ev->file_version);
    else if (ev->what_case == TENSORBOARD__EVENT__WHAT_SESSION_LOG)
        out->session_status = (int)ev->session_log->status;
    else if (ev->what_case == TENSORBOARD__EVENT__WHAT_SUMMARY)
        rc = decode_summary(out, ev->summary, err);
    tensorboard__event__free_unpacked(ev, NULL);
    if (rc)
        ff_summary_reader_event_info_destroy(out);
    return rc;
}

void ff_summary_reader_event_info_destroy(ff_summary_event_info *ev)
{
    for (int i = 0; i < ev->n_values; i++)
        free(ev->values[i].tag);
    free(ev->values);
    memset(ev, 0, sizeof *ev);
}

/* ------------------------------------------------------------------------ */
/* a run directory's end record                                              */

/* The first session_end_info of one event file into *status and *when if it was written
 * before *when (or *when < 0); 1 if it was. */
static int file_end(const char *path, int *status, double *when)
{
    ff_tfrecord_reader r;
    ff_err err;
    if (ff_tfrecord_reader_open(&r, path, &err))
        return 0;
    ff_tfrecord_record rec;
    int found = 0;
    while (!found && ff_tfrecord_next(&r, &rec, &err) == 1) {
        ff_summary_event_info ev;
        if (ff_summary_reader_event_decode(rec.data, rec.len, &ev, &err))
            continue;
        for (int i = 0; i < ev.n_values && !found; i++)
            if (ev.values[i].end_status >= 0 && (*when < 0 || ev.wall_time < *when)) {
                *status = ev.values[i].end_status;
                *when = ev.wall_time;
                found = 1;
            }
        ff_summary_reader_event_info_destroy(&ev);
    }
    ff_tfrecord_reader_destroy(&r);
    return found;
}

int ff_summary_reader_run_end(const char *run_dir, int *status, double *wall_time)
{
    *status = -1;
    *wall_time = -1.0;
    DIR *d = opendir(run_dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "events.out.tfevents.", 20) != 0)
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name) >= sizeof path)
            continue;
        found |= file_end(path, status, wall_time);
    }
    closedir(d);
    return found;
}
