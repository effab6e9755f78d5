/* summary.c - TensorBoard event files: Event protos via protobuf-c, framed by tfrecord.c. */
#include "ff/summary.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "custom_scalars.pb-c.h"
#include "event.pb-c.h"
#include "ff/fsutil.h"
#include "ff/png.h"
#include "ff/tfrecord.h"
#include "hparams.pb-c.h"
#include "text.pb-c.h"

#define FILE_VERSION "brain.Event:2"
#define HIST_BUCKETS 30
#define TAG_EXPERIMENT "_hparams_/experiment"
#define TAG_SESSION_START "_hparams_/session_start_info"
#define TAG_SESSION_END "_hparams_/session_end_info"
#define TAG_LAYOUT "custom_scalars__config__"

struct ff_summary_writer {
    int fd;
    int broken;       /* a failed write could not be cut back: the file is unusable */
    off_t good_size;  /* bytes of whole records written so far */
    uint8_t *buf;     /* framing buffer, grown on demand and reused */
    size_t cap;
    char path[FF_PATH_MAX + 256];
};

/* ---------------------------------------------------------------- writing */

static double now_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int grow(ff_summary_writer *w, size_t need, ff_err *err)
{
    if (need <= w->cap)
        return FF_OK;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *b = realloc(w->buf, cap);
    if (!b)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory for a %zu-byte record", w->path,
                          need);
    w->buf = b;
    w->cap = cap;
    return FF_OK;
}

/* Writes n bytes (normally in one write()). On failure cuts the file back to
 * the last whole record so later records never follow a partial one. */
static int write_record(ff_summary_writer *w, const uint8_t *p, size_t n, ff_err *err)
{
    if (w->broken)
        return ff_err_set(err, FF_ERR_IO, "%s: unusable after an earlier failed write", w->path);
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(w->fd, p + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            if (ftruncate(w->fd, w->good_size) != 0)
                w->broken = 1;
            return ff_err_set(err, FF_ERR_IO, "%s: write failed: %s", w->path, strerror(e));
        }
        done += (size_t)k;
    }
    w->good_size += (off_t)n;
    return FF_OK;
}

static int write_event(ff_summary_writer *w, Tensorboard__Event *ev, ff_err *err)
{
    size_t len = tensorboard__event__get_packed_size(ev);
    int rc = grow(w, ff_tfrecord_size(len), err);
    if (rc)
        return rc;
    tensorboard__event__pack(ev, w->buf + FF_TFRECORD_HEADER);
    ff_tfrecord_frame(w->buf, len);
    return write_record(w, w->buf, ff_tfrecord_size(len), err);
}

/* Writes Event{now, step, Summary{value}}. */
static int write_value(ff_summary_writer *w, int64_t step, Tensorboard__Summary__Value *v,
                       ff_err *err)
{
    Tensorboard__Summary sum = TENSORBOARD__SUMMARY__INIT;
    sum.n_value = 1;
    sum.value = &v;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = now_secs();
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    return write_event(w, &ev, err);
}

static int open_unique(ff_summary_writer *w, const char *run_dir, ff_err *err)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/')
            *c = '_';
    long long secs = (long long)time(NULL);
    for (int n = 0; n < 1000; n++) {
        int len = snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010lld.%s.%ld.%d",
                           run_dir, secs, host, (long)getpid(), n);
        if (len < 0 || (size_t)len >= sizeof w->path)
            return ff_err_set(err, FF_ERR_USAGE, "%s: run directory path too long", run_dir);
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (w->fd >= 0)
            return FF_OK;
        if (errno != EEXIST)
            return ff_err_set(err, FF_ERR_IO, "%s: cannot create: %s", w->path, strerror(errno));
    }
    return ff_err_set(err, FF_ERR_IO, "%s: too many event files for this second", run_dir);
}

int ff_summary_open(ff_summary_writer **out, const char *run_dir, ff_err *err)
{
    *out = NULL;
    ff_summary_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for the summary writer");
    w->fd = -1;
    int rc = ff_mkdir_p(run_dir, err);
    if (!rc)
        rc = open_unique(w, run_dir, err);
    if (!rc) {
        Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
        ev.wall_time = now_secs();
        ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
        ev.file_version = (char *)FILE_VERSION;
        rc = write_event(w, &ev, err);
    }
    if (rc) {
        ff_summary_close(w, NULL);
        return rc;
    }
    *out = w;
    return FF_OK;
}

int ff_summary_session_start(ff_summary_writer *w, int64_t step, ff_err *err)
{
    Tensorboard__SessionLog log = TENSORBOARD__SESSION_LOG__INIT;
    log.status = TENSORBOARD__SESSION_LOG__SESSION_STATUS__START;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = now_secs();
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SESSION_LOG;
    ev.session_log = &log;
    return write_event(w, &ev, err);
}

const char *ff_summary_path(const ff_summary_writer *w)
{
    return w->path;
}

int ff_summary_scalar(ff_summary_writer *w, const char *tag, int64_t step, float value, ff_err *err)
{
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = value;
    return write_value(w, step, &v, err);
}

/* Bucket i holds (limit[i-1], limit[i]]; bucket 0 also holds min. */
static int bucket_index(double x, double lo, double width, const double *limit, int k)
{
    int i = (int)ceil((x - lo) / width) - 1;
    i = i < 0 ? 0 : i > k - 1 ? k - 1 : i;
    while (i > 0 && x <= limit[i - 1])
        i--;
    while (i < k - 1 && x > limit[i])
        i++;
    return i;
}

/* Fills h (limits/counts point at caller arrays of HIST_BUCKETS) from the
 * finite values; returns how many values were finite. */
static size_t histogram_fill(Tensorboard__HistogramProto *h, const float *x, size_t n,
                             double *limit, double *count)
{
    double lo = INFINITY, hi = -INFINITY, sum = 0, sumsq = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (!isfinite(v))
            continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
        sumsq += v * v;
        m++;
    }
    if (m == 0)
        return 0;
    int k = lo == hi ? 1 : HIST_BUCKETS;
    double width = (hi - lo) / k;
    for (int i = 0; i < k; i++) {
        limit[i] = i == k - 1 ? hi : lo + (i + 1) * width;
        count[i] = 0;
    }
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            count[k == 1 ? 0 : bucket_index(x[i], lo, width, limit, k)] += 1;
    h->min = lo;
    h->max = hi;
    h->num = (double)m;
    h->sum = sum;
    h->sum_squares = sumsq;
    h->n_bucket_limit = h->n_bucket = (size_t)k;
    h->bucket_limit = limit;
    h->bucket = count;
    return m;
}

int ff_summary_histogram(ff_summary_writer *w, const char *tag, int64_t step,
                         const float *values, size_t n, ff_err *err)
{
    double limit[HIST_BUCKETS], count[HIST_BUCKETS];
    Tensorboard__HistogramProto h = TENSORBOARD__HISTOGRAM_PROTO__INIT;
    if (histogram_fill(&h, values, n, limit, count) == 0)
        return FF_OK; /* nothing finite to show */
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO;
    v.histo = &h;
    return write_value(w, step, &v, err);
}

int ff_summary_image(ff_summary_writer *w, const char *tag, int64_t step, const uint8_t *pixels,
                     int height, int width, int channels, ff_err *err)
{
    if (!pixels || (channels != 1 && channels != 3) || height <= 0 || width <= 0)
        return ff_err_set(err, FF_ERR_USAGE, "image %s: bad shape %dx%dx%d (channels 1 or 3)", tag,
                          height, width, channels);
    uint8_t *png = NULL;
    size_t png_len = 0;
    int rc = ff_png_encode(pixels, height, width, channels, &png, &png_len, err);
    if (rc)
        return rc;
    Tensorboard__Summary__Image img = TENSORBOARD__SUMMARY__IMAGE__INIT;
    img.height = height;
    img.width = width;
    img.colorspace = channels; /* 1 grey, 3 RGB */
    img.encoded_image_string.data = png;
    img.encoded_image_string.len = png_len;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_IMAGE;
    v.image = &img;
    rc = write_value(w, step, &v, err);
    free(png);
    return rc;
}

/* Writes a tensor value with plugin metadata (always present, so the first
 * occurrence of every tag has it). */
static int write_tensor(ff_summary_writer *w, const char *tag, int64_t step, const char *plugin,
                        ProtobufCBinaryData content, Tensorboard__DataClass data_class,
                        Tensorboard__TensorProto *t, ff_err *err)
{
    Tensorboard__SummaryMetadata__PluginData pd = TENSORBOARD__SUMMARY_METADATA__PLUGIN_DATA__INIT;
    pd.plugin_name = (char *)plugin;
    pd.content = content;
    Tensorboard__SummaryMetadata md = TENSORBOARD__SUMMARY_METADATA__INIT;
    md.plugin_data = &pd;
    md.data_class = data_class;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.metadata = &md;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR;
    v.tensor = t;
    return write_value(w, step, &v, err);
}

/* DT_STRING rank-0 tensor (shape present, no dims) holding bytes. */
static int write_string_tensor(ff_summary_writer *w, const char *tag, int64_t step,
                               const char *plugin, ProtobufCBinaryData content,
                               const void *bytes, size_t len, ff_err *err)
{
    Tensorboard__TensorShapeProto shape = TENSORBOARD__TENSOR_SHAPE_PROTO__INIT;
    ProtobufCBinaryData s = {len, (uint8_t *)bytes};
    Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
    t.dtype = TENSORBOARD__DATA_TYPE__DT_STRING;
    t.tensor_shape = &shape;
    t.n_string_val = 1;
    t.string_val = &s;
    return write_tensor(w, tag, step, plugin, content, TENSORBOARD__DATA_CLASS__DATA_CLASS_TENSOR,
                        &t, err);
}

int ff_summary_text(ff_summary_writer *w, const char *tag, int64_t step, const char *markdown,
                    ff_err *err)
{
    Tensorboard__TextPluginData tpd = TENSORBOARD__TEXT_PLUGIN_DATA__INIT; /* version 0 */
    uint8_t content[16];
    ProtobufCBinaryData c = {tensorboard__text_plugin_data__pack(&tpd, content), content};
    return write_string_tensor(w, tag, step, "text", c, markdown, strlen(markdown), err);
}

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
    int rc = write_tensor(w, tag, step, "hparams", content, TENSORBOARD__DATA_CLASS__DATA_CLASS_UNKNOWN,
                          &t, err);
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
    ex.time_created_secs = now_secs();
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

int ff_summary_hparams_end(ff_summary_writer *w, int status, int64_t step, ff_err *err)
{
    if (status < 0 || status > 3)
        return ff_err_set(err, FF_ERR_USAGE, "hparams end: bad status %d (0..3)", status);
    Tensorboard__Hparams__SessionEndInfo sei = TENSORBOARD__HPARAMS__SESSION_END_INFO__INIT;
    sei.status = (Tensorboard__Hparams__Status)status;
    sei.end_time_secs = now_secs();
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

static void layout_chart(layout_build *b, int i)
{
    snprintf(b->titles[i], sizeof b->titles[i], "layer%d goodness (pos, neg)", i);
    snprintf(b->regex[i], sizeof b->regex[i], "layer%d/goodness_(pos|neg)$", i);
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

int ff_summary_goodness_layout(ff_summary_writer *w, int n_layers, ff_err *err)
{
    if (n_layers <= 0 || n_layers > 1000)
        return ff_err_set(err, FF_ERR_USAGE, "goodness layout: bad layer count %d", n_layers);
    layout_build b = {0};
    uint8_t *buf = NULL;
    int rc;
    if (!layout_alloc(&b, (size_t)n_layers)) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the goodness layout");
        goto done;
    }
    for (int i = 0; i < n_layers; i++)
        layout_chart(&b, i);
    Tensorboard__Category cat = TENSORBOARD__CATEGORY__INIT;
    Tensorboard__Category *cats = &cat;
    cat.title = (char *)"goodness";
    cat.n_chart = (size_t)n_layers;
    cat.chart = b.chart_ptrs;
    Tensorboard__Layout layout = TENSORBOARD__LAYOUT__INIT;
    layout.n_category = 1;
    layout.category = &cats;
    size_t len = tensorboard__layout__get_packed_size(&layout);
    buf = malloc(len ? len : 1);
    if (!buf) {
        rc = ff_err_set(err, FF_ERR_NOMEM, "out of memory for the goodness layout");
        goto done;
    }
    len = tensorboard__layout__pack(&layout, buf);
    ProtobufCBinaryData none = {0, NULL};
    rc = write_string_tensor(w, TAG_LAYOUT, 0, "custom_scalars", none, buf, len, err);
done:
    free(buf);
    layout_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- flush / close */

int ff_summary_flush(ff_summary_writer *w, ff_err *err)
{
    if (w->broken)
        return ff_err_set(err, FF_ERR_IO, "%s: unusable after an earlier failed write", w->path);
    return FF_OK;
}

int ff_summary_close(ff_summary_writer *w, ff_err *err)
{
    if (!w)
        return FF_OK;
    int rc = FF_OK;
    if (w->broken)
        rc = ff_err_set(err, FF_ERR_IO, "%s: unusable after an earlier failed write", w->path);
    if (w->fd >= 0 && close(w->fd) != 0 && !rc)
        rc = ff_err_set(err, FF_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    free(w->buf);
    free(w);
    return rc;
}

/* ---------------------------------------------------------------- reading */

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

static int check_hparams(ProtobufCBinaryData c, char *text, size_t cap, ff_err *err)
{
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
    else if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO)
        snprintf(text, cap, "session_end_info: status %d", (int)d->session_end_info->status);
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
        return check_hparams(v->metadata->plugin_data->content, vi->text, sizeof vi->text, err);
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
            return check_hparams(md->plugin_data->content, vi->text, sizeof vi->text, err);
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

int ff_summary_event_decode(const uint8_t *data, size_t len, ff_summary_event_info *out,
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
    else if (ev->what_case == TENSORBOARD__EVENT__WHAT_SUMMARY)
        rc = decode_summary(out, ev->summary, err);
    tensorboard__event__free_unpacked(ev, NULL);
    if (rc)
        ff_summary_event_info_destroy(out);
    return rc;
}

void ff_summary_event_info_destroy(ff_summary_event_info *ev)
{
    for (int i = 0; i < ev->n_values; i++)
        free(ev->values[i].tag);
    free(ev->values);
    memset(ev, 0, sizeof *ev);
}
