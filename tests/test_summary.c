/* test_summary.c - event-file writer: every summary kind written, read back and decoded;
 * the session records of a run that crashes and is resumed.
 *
 * `test_summary --write-sample DIR` instead writes a sample log dir with every
 * summary kind (used by tests/t_tensorboard.sh) and prints the event file paths;
 * `test_summary --write-resume-sample DIR` writes the run -> kill -9 at step 80 ->
 * resume from step 50 -> finish run into DIR (tests/t_tb_sessions.sh). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "custom_scalars.pb-c.h"
#include "event.pb-c.h"
#include "ff/config.h"
#include "ff/summary.h"
#include "ff/summary_hparams.h"
#include "ff/summary_reader.h"
#include "ff/tfrecord.h"
#include "ff/train_log.h"
#include "hparams.pb-c.h"
#include "test.h"
#include "text.pb-c.h"

#define MAX_EVENTS 512

typedef struct events {
    Tensorboard__Event *ev[MAX_EVENTS];
    uint8_t *raw[MAX_EVENTS]; /* payload copies, for ff_summary_reader_event_decode */
    size_t raw_len[MAX_EVENTS];
    int n;
    int defect; /* reader defect (0 = clean file) */
} events;

static char tmp_root[256];

static void make_tmp_root(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ff_test_summary_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void rm_rf(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", path);
}

/* Reads every record of path and unpacks each as an Event. */
static void load_events(const char *path, events *e)
{
    memset(e, 0, sizeof *e);
    ff_tfrecord_reader r;
    ff_err err = {0};
    CHECK(ff_tfrecord_reader_open(&r, path, &err) == FF_OK);
    ff_tfrecord_record rec;
    int rc;
    while ((rc = ff_tfrecord_next(&r, &rec, &err)) == 1 && e->n < MAX_EVENTS) {
        e->ev[e->n] = tensorboard__event__unpack(NULL, rec.len, rec.data);
        CHECK(e->ev[e->n] != NULL);
        e->raw[e->n] = malloc(rec.len ? rec.len : 1);
        memcpy(e->raw[e->n], rec.data, rec.len);
        e->raw_len[e->n] = rec.len;
        if (e->ev[e->n])
            e->n++;
    }
    if (rc < 0)
        fprintf(stderr, "  reader: %s\n", err.msg);
    e->defect = rc < 0 ? (int)r.defect : 0;
    ff_tfrecord_reader_destroy(&r);
}

static void free_events(events *e)
{
    for (int i = 0; i < e->n; i++) {
        tensorboard__event__free_unpacked(e->ev[i], NULL);
        free(e->raw[i]);
    }
    e->n = 0;
}

/* The k-th (0-based) value with this tag, and its event in *ev_out. */
static Tensorboard__Summary__Value *find_value(events *e, const char *tag, int k,
                                               Tensorboard__Event **ev_out)
{
    for (int i = 0; i < e->n; i++) {
        Tensorboard__Event *ev = e->ev[i];
        if (ev->what_case != TENSORBOARD__EVENT__WHAT_SUMMARY)
            continue;
        for (size_t j = 0; j < ev->summary->n_value; j++)
            if (strcmp(ev->summary->value[j]->tag, tag) == 0 && k-- == 0) {
                if (ev_out)
                    *ev_out = ev;
                return ev->summary->value[j];
            }
    }
    return NULL;
}

static int count_values(events *e, const char *tag)
{
    int n = 0;
    while (find_value(e, tag, n, NULL))
        n++;
    return n;
}

static void fill_image(uint8_t *px, int h, int w, int c, int seed)
{
    for (int i = 0; i < h * w * c; i++)
        px[i] = (uint8_t)(i * 37 + seed * 11);
}

/* Writes scalars, histograms, images, text, hparams and the layout over
 * `steps` steps into run_dir; returns the event file path in path. */
static int write_sample(const char *run_dir, int steps, char *path, size_t cap, ff_err *err)
{
    ff_summary_writer *w = NULL;
    int rc = ff_summary_open(&w, run_dir, err);
    if (rc)
        return rc;
    snprintf(path, cap, "%s", ff_summary_path(w));
    ff_config cfg;
    ff_config_defaults(&cfg);
    const char *metrics[] = {"loss", "test/accuracy"};
    rc = ff_summary_hparams_experiment(w, &cfg, metrics, 2, err);
    if (!rc)
        rc = ff_summary_hparams_start(w, &cfg, 1700000000.0, err);
    if (!rc)
        rc = ff_summary_hparams_goodness_layout(w, 3, err);
    float vals[257];
    uint8_t grey[6 * 9], rgb[5 * 4 * 3];
    for (int s = 0; s < steps && !rc; s++) {
        for (int i = 0; i < 257; i++)
            vals[i] = (float)((i * 7919 + s * 104729) % 1000) / 250.0f - 2.0f;
        fill_image(grey, 6, 9, 1, s);
        fill_image(rgb, 5, 4, 3, s);
        char tag[64];
        rc = ff_summary_scalar(w, "loss", s, 1.0f / (float)(s + 1), err);
        for (int l = 0; l < 3 && !rc; l++) {
            snprintf(tag, sizeof tag, "layer%d/goodness_pos", l);
            rc = ff_summary_scalar(w, tag, s, 2.0f + (float)l + 0.1f * (float)s, err);
            snprintf(tag, sizeof tag, "layer%d/goodness_neg", l);
            if (!rc)
                rc = ff_summary_scalar(w, tag, s, 1.0f - 0.1f * (float)s, err);
        }
        if (!rc)
            rc = ff_summary_histogram(w, "layer0/weights", s, vals, 257, err);
        if (!rc)
            rc = ff_summary_image(w, "inputs/grey", s, grey, 6, 9, 1, err);
        if (!rc)
            rc = ff_summary_image(w, "inputs/rgb", s, rgb, 5, 4, 3, err);
        if (!rc)
            rc = ff_summary_text(w, "notes", s, s == 0 ? "| key | value |\n| --- | --- |\n| a | 1 |"
                                                        : "step *markdown* text",
                                 err);
        if (!rc && s == steps - 1)
            rc = ff_summary_scalar(w, "test/accuracy", s, 0.9f, err);
    }
    if (!rc)
        rc = ff_summary_hparams_end(w, 1, 5, err);
    int rc2 = ff_summary_close(w, rc ? NULL : err);
    return rc ? rc : rc2;
}

/* A writer on the new run directory <tmp_root>/<name> and its event file's path
 * (NULL after a failed check if it cannot be opened). */
static ff_summary_writer *open_test_writer(const char *name, char path[1024])
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    ff_summary_writer *w = NULL;
    ff_err err = {0};
    CHECK(ff_summary_open(&w, dir, &err) == FF_OK);
    if (w)
        snprintf(path, 1024, "%s", ff_summary_path(w));
    return w;
}

/* ------------------------------------------------------------------ tests */

static void test_open_naming_version(void)
{
    char dir[512], host[256] = "";
    snprintf(dir, sizeof dir, "%s/a/b/run", tmp_root); /* parents are created */
    gethostname(host, sizeof host - 1);
    ff_summary_writer *w1 = NULL, *w2 = NULL;
    ff_err err = {0};
    time_t t0 = time(NULL);
    CHECK(ff_summary_open(&w1, dir, &err) == FF_OK);
    CHECK(ff_summary_open(&w2, dir, &err) == FF_OK);
    if (!w1 || !w2)
        return;
    const char *base = strrchr(ff_summary_path(w1), '/') + 1;
    long long secs = 0;
    char rest[300] = "";
    CHECK(sscanf(base, "events.out.tfevents.%10lld.%299s", &secs, rest) == 2);
    CHECK(secs >= (long long)t0 && secs <= (long long)t0 + 2);
    CHECK(strlen(base) > 31 && base[30] == '.'); /* 10 zero-padded digits */
    char want[300];
    snprintf(want, sizeof want, "%s.%ld.0", host, (long)getpid());
    CHECK(strcmp(rest, want) == 0);
    CHECK(strcmp(ff_summary_path(w1), ff_summary_path(w2)) != 0);
    char p1[1024];
    snprintf(p1, sizeof p1, "%s", ff_summary_path(w1));
    CHECK(ff_summary_flush(w1, &err) == FF_OK);
    CHECK(ff_summary_close(w1, &err) == FF_OK);
    CHECK(ff_summary_close(w2, &err) == FF_OK);
    CHECK(ff_summary_close(NULL, &err) == FF_OK);
    events e;
    load_events(p1, &e);
    CHECK(e.n == 1 && e.defect == 0);
    if (e.n >= 1) {
        CHECK(e.ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION);
        CHECK(e.ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION &&
              strcmp(e.ev[0]->file_version, "brain.Event:2") == 0);
        CHECK(fabs(e.ev[0]->wall_time - (double)t0) < 5.0);
        CHECK(e.ev[0]->step == 0);
    }
    free_events(&e);
}

static void test_open_fails_on_file(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/plainfile", tmp_root);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    ff_summary_writer *w = (ff_summary_writer *)1;
    ff_err err = {0};
    CHECK(ff_summary_open(&w, path, &err) == FF_ERR_IO);
    CHECK(w == NULL);
    CHECK(strstr(err.msg, "plainfile") != NULL);
}

/* One sample written by write_sample, loaded once for the tests below. */
static events sample;
static char sample_path[1024];

static void test_sample_written(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sample", tmp_root);
    ff_err err = {0};
    int rc = write_sample(dir, 4, sample_path, sizeof sample_path, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == FF_OK);
    load_events(sample_path, &sample);
    CHECK(sample.defect == 0);
    CHECK(sample.n > 40);
    CHECK(sample.n > 0 && sample.ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION);
    for (int i = 0; i < sample.n; i++) {
        CHECK(isfinite(sample.ev[i]->wall_time));
        CHECK(i == 0 || sample.ev[i]->what_case == TENSORBOARD__EVENT__WHAT_SUMMARY);
    }
}

static void test_scalars(void)
{
    CHECK(count_values(&sample, "loss") == 4);
    for (int s = 0; s < 4; s++) {
        Tensorboard__Event *ev = NULL;
        Tensorboard__Summary__Value *v = find_value(&sample, "loss", s, &ev);
        CHECK(v != NULL);
        if (!v)
            continue;
        CHECK(ev->step == s);
        CHECK(v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE);
        CHECK(v->simple_value == 1.0f / (float)(s + 1));
    }
    Tensorboard__Summary__Value *v = find_value(&sample, "layer2/goodness_pos", 3, NULL);
    CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE);
    CHECK_NEAR(v ? v->simple_value : 0, 4.3, 1e-6);
}

/* Counts of h checked against a brute-force (limit[i-1], limit[i]] count of x. */
static void check_histogram(const Tensorboard__HistogramProto *h, const float *x, size_t n)
{
    CHECK(h->n_bucket == h->n_bucket_limit);
    CHECK(h->n_bucket >= 1);
    double total = 0, lo = INFINITY, hi = -INFINITY, sum = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            lo = fmin(lo, x[i]);
            hi = fmax(hi, x[i]);
            sum += x[i];
            m++;
        }
    for (size_t b = 0; b < h->n_bucket; b++) {
        double left = b == 0 ? -INFINITY : h->bucket_limit[b - 1];
        double expect = 0;
        for (size_t i = 0; i < n; i++)
            expect += isfinite(x[i]) && x[i] > left && x[i] <= h->bucket_limit[b];
        CHECK(h->bucket[b] == expect);
        CHECK(b == 0 || h->bucket_limit[b] > h->bucket_limit[b - 1]);
        total += h->bucket[b];
    }
    CHECK(total == (double)m);
    CHECK(h->num == (double)m);
    CHECK(h->min == lo && h->max == hi);
    CHECK(h->bucket_limit[h->n_bucket - 1] == hi);
    CHECK_NEAR(h->sum, sum, 1e-6 * (1 + fabs(sum)));
}

static void test_histogram_sample(void)
{
    Tensorboard__Event *ev = NULL;
    Tensorboard__Summary__Value *v = find_value(&sample, "layer0/weights", 2, &ev);
    CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO);
    if (!v || v->value_case != TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO)
        return;
    CHECK(ev->step == 2);
    CHECK(v->histo->n_bucket == 30);
    float vals[257];
    for (int i = 0; i < 257; i++)
        vals[i] = (float)((i * 7919 + 2 * 104729) % 1000) / 250.0f - 2.0f;
    check_histogram(v->histo, vals, 257);
}

/* Writes one histogram of x into a fresh run and returns the loaded events. */
static void histogram_roundtrip(const char *name, const float *x, size_t n, events *e)
{
    char run[300], path[1024];
    snprintf(run, sizeof run, "hist_%s", name);
    ff_summary_writer *w = open_test_writer(run, path);
    ff_err err = {0};
    if (!w) {
        memset(e, 0, sizeof *e);
        return;
    }
    CHECK(ff_summary_histogram(w, "h", 1, x, n, &err) == FF_OK);
    CHECK(ff_summary_close(w, &err) == FF_OK);
    load_events(path, e);
}

static void test_histogram_edge_cases(void)
{
    float equal[10], odd[7] = {NAN, 1.0f, INFINITY, -2.0f, -INFINITY, 3.0f, 1.0f};
    float nans[3] = {NAN, INFINITY, NAN}, big[4] = {-3e38f, 3e38f, 0.0f, 1e-30f};
    for (int i = 0; i < 10; i++)
        equal[i] = 0.25f;
    events e;
    histogram_roundtrip("equal", equal, 10, &e);
    Tensorboard__Summary__Value *v = find_value(&e, "h", 0, NULL);
    CHECK(v && v->histo->n_bucket == 1 && v->histo->bucket[0] == 10);
    CHECK(v && v->histo->min == 0.25 && v->histo->max == 0.25 && v->histo->bucket_limit[0] == 0.25);
    free_events(&e);

    histogram_roundtrip("nonfinite", odd, 7, &e);
    v = find_value(&e, "h", 0, NULL);
    CHECK(v != NULL);
    if (v)
        check_histogram(v->histo, odd, 7); /* only the 4 finite values count */
    CHECK(v && v->histo->num == 4);
    free_events(&e);

    histogram_roundtrip("big", big, 4, &e);
    v = find_value(&e, "h", 0, NULL);
    CHECK(v != NULL);
    if (v)
        check_histogram(v->histo, big, 4);
    free_events(&e);

    histogram_roundtrip("allnan", nans, 3, &e); /* nothing finite: nothing written */
    CHECK(e.n == 1 && count_values(&e, "h") == 0);
    free_events(&e);
    histogram_roundtrip("empty", NULL, 0, &e);
    CHECK(e.n == 1 && count_values(&e, "h") == 0);
    free_events(&e);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_image(const char *tag, int h, int w, int colorspace, int png_type)
{
    Tensorboard__Summary__Value *v = find_value(&sample, tag, 1, NULL);
    CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_IMAGE);
    if (!v || v->value_case != TENSORBOARD__SUMMARY__VALUE__VALUE_IMAGE)
        return;
    const Tensorboard__Summary__Image *im = v->image;
    CHECK(im->height == h && im->width == w && im->colorspace == colorspace);
    const uint8_t *p = im->encoded_image_string.data;
    CHECK(im->encoded_image_string.len > 33);
    if (im->encoded_image_string.len <= 33)
        return;
    CHECK(memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0);
    CHECK(memcmp(p + 12, "IHDR", 4) == 0);
    CHECK(be32(p + 16) == (uint32_t)w && be32(p + 20) == (uint32_t)h);
    CHECK(p[24] == 8 && p[25] == png_type);
    CHECK(v->metadata == NULL); /* legacy value: plugin implied */
}

static void test_images(void)
{
    CHECK(count_values(&sample, "inputs/grey") == 4);
    check_image("inputs/grey", 6, 9, 1, 0);
    check_image("inputs/rgb", 5, 4, 3, 2);
}

static void test_image_bad_args(void)
{
    char path[1024];
    ff_summary_writer *w = open_test_writer("badimg", path);
    ff_err err = {0};
    uint8_t px[16] = {0};
    if (!w)
        return;
    CHECK(ff_summary_image(w, "x", 0, px, 2, 2, 2, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_image(w, "x", 0, px, 0, 2, 1, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_hparams_end(w, 7, 5, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_hparams_goodness_layout(w, 0, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_close(w, &err) == FF_OK);
}

static void check_plugin(const Tensorboard__Summary__Value *v, const char *plugin)
{
    CHECK(v->metadata && v->metadata->plugin_data);
    if (v->metadata && v->metadata->plugin_data)
        CHECK(strcmp(v->metadata->plugin_data->plugin_name, plugin) == 0);
}

static void test_text(void)
{
    CHECK(count_values(&sample, "notes") == 4);
    for (int k = 0; k < 2; k++) {
        Tensorboard__Summary__Value *v = find_value(&sample, "notes", k, NULL);
        CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR);
        if (!v || v->value_case != TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR)
            return;
        check_plugin(v, "text"); /* metadata on the first (and every) occurrence */
        CHECK(v->metadata && v->metadata->data_class == TENSORBOARD__DATA_CLASS__DATA_CLASS_TENSOR);
        const Tensorboard__TensorProto *t = v->tensor;
        CHECK(t->dtype == TENSORBOARD__DATA_TYPE__DT_STRING);
        CHECK(t->tensor_shape != NULL && t->tensor_shape->n_dim == 0);
        CHECK(t->n_string_val == 1);
        const char *want = k == 0 ? "| key | value |\n| --- | --- |\n| a | 1 |" : "step *markdown* text";
        CHECK(t->n_string_val == 1 && t->string_val[0].len == strlen(want) &&
              memcmp(t->string_val[0].data, want, strlen(want)) == 0);
    }
}

/* Unpacks the HParamsPluginData of tag's first value (version must be 0). */
static Tensorboard__Hparams__HParamsPluginData *hparams_of(const char *tag)
{
    Tensorboard__Event *ev = NULL;
    Tensorboard__Summary__Value *v = find_value(&sample, tag, 0, &ev);
    CHECK(v != NULL);
    CHECK(count_values(&sample, tag) == 1);
    if (!v)
        return NULL;
    check_plugin(v, "hparams");
    /* start and experiment records at step 0; the end record at the run's last step */
    CHECK(ev->step == (strcmp(tag, "_hparams_/session_end_info") == 0 ? 5 : 0));
    CHECK(v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR);
    if (v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR) {
        const Tensorboard__TensorProto *t = v->tensor; /* empty DT_FLOAT [0] */
        CHECK(t->dtype == TENSORBOARD__DATA_TYPE__DT_FLOAT);
        CHECK(t->tensor_shape && t->tensor_shape->n_dim == 1 && t->tensor_shape->dim[0]->size == 0);
        CHECK(t->n_float_val == 0 && t->tensor_content.len == 0);
    }
    if (!v->metadata || !v->metadata->plugin_data)
        return NULL;
    ProtobufCBinaryData c = v->metadata->plugin_data->content;
    Tensorboard__Hparams__HParamsPluginData *d =
        tensorboard__hparams__hparams_plugin_data__unpack(NULL, c.len, c.data);
    CHECK(d != NULL);
    CHECK(d && d->version == 0);
    return d;
}

typedef struct visit_count {
    int n, numbers, strings, bools;
    char first_key[128];
    double first_number;
} visit_count;

static void count_keys(void *ctx, const char *key, ff_hp_type type, double number,
                       const char *string, int boolean)
{
    visit_count *c = ctx;
    if (c->n++ == 0)
        snprintf(c->first_key, sizeof c->first_key, "%s", key);
    c->numbers += type == FF_HP_NUMBER;
    c->strings += type == FF_HP_STRING;
    c->bools += type == FF_HP_BOOL;
    if (type == FF_HP_NUMBER && c->numbers == 1)
        c->first_number = number;
}

static void test_hparams_start(void)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    visit_count vc = {0};
    ff_config_visit(&cfg, count_keys, &vc);
    CHECK(vc.n > 5 && vc.numbers > 0 && vc.strings > 0 && vc.bools > 0);
    Tensorboard__Hparams__HParamsPluginData *d = hparams_of("_hparams_/session_start_info");
    if (!d)
        return;
    CHECK(d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_START_INFO);
    if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_START_INFO) {
        const Tensorboard__Hparams__SessionStartInfo *s = d->session_start_info;
        CHECK(s->n_hparams == (size_t)vc.n);
        CHECK(s->start_time_secs == 1700000000.0);
        CHECK(strcmp(s->group_name, "") == 0);
        int numbers = 0, strings = 0, bools = 0, found_first = 0;
        for (size_t i = 0; i < s->n_hparams; i++) {
            const Google__Protobuf__Value *v = s->hparams[i]->value;
            numbers += v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
            strings += v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
            bools += v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
            found_first += strcmp(s->hparams[i]->key, vc.first_key) == 0;
        }
        CHECK(numbers == vc.numbers && strings == vc.strings && bools == vc.bools);
        CHECK(found_first == 1);
        /* float config values are written as their short decimal (0.001, not 0.0010000000475) */
        int lr_found = 0;
        for (size_t i = 0; i < s->n_hparams; i++)
            if (strcmp(s->hparams[i]->key, "optimizer.lr") == 0) {
                lr_found = 1;
                CHECK(s->hparams[i]->value->number_value == 0.001);
            }
        CHECK(lr_found);
    }
    tensorboard__hparams__hparams_plugin_data__free_unpacked(d, NULL);
}

static void test_hparams_experiment(void)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    visit_count vc = {0};
    ff_config_visit(&cfg, count_keys, &vc);
    Tensorboard__Hparams__HParamsPluginData *d = hparams_of("_hparams_/experiment");
    if (!d)
        return;
    CHECK(d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT);
    if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT) {
        const Tensorboard__Hparams__Experiment *x = d->experiment;
        CHECK(x->n_hparam_infos == (size_t)vc.n);
        int bad = 0;
        for (size_t i = 0; i < x->n_hparam_infos; i++) {
            const Tensorboard__Hparams__HParamInfo *h = x->hparam_infos[i];
            if (h->type == TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_BOOL)
                bad += h->domain_case != TENSORBOARD__HPARAMS__HPARAM_INFO__DOMAIN_DOMAIN_DISCRETE ||
                       h->domain_discrete->n_values != 2 ||
                       h->domain_discrete->values[1]->bool_value != 1;
            else if (h->type == TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_STRING)
                bad += h->domain_case != TENSORBOARD__HPARAMS__HPARAM_INFO__DOMAIN__NOT_SET;
            else
                bad += h->type != TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_FLOAT64;
            bad += h->name[0] == '\0';
        }
        CHECK(bad == 0);
        CHECK(x->n_metric_infos == 2);
        if (x->n_metric_infos == 2) {
            CHECK(strcmp(x->metric_infos[0]->name->tag, "loss") == 0);
            CHECK(strcmp(x->metric_infos[1]->name->tag, "test/accuracy") == 0);
            CHECK(strcmp(x->metric_infos[1]->name->group, "") == 0);
        }
        CHECK(x->time_created_secs > 1.6e9);
    }
    tensorboard__hparams__hparams_plugin_data__free_unpacked(d, NULL);
}

static void test_hparams_end(void)
{
    Tensorboard__Hparams__HParamsPluginData *d = hparams_of("_hparams_/session_end_info");
    if (!d)
        return;
    CHECK(d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO);
    if (d->data_case == TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO) {
        CHECK(d->session_end_info->status == TENSORBOARD__HPARAMS__STATUS__STATUS_SUCCESS);
        CHECK(d->session_end_info->end_time_secs > 1.6e9);
    }
    tensorboard__hparams__hparams_plugin_data__free_unpacked(d, NULL);
}

static void test_layout(void)
{
    Tensorboard__Event *ev = NULL;
    Tensorboard__Summary__Value *v = find_value(&sample, "custom_scalars__config__", 0, &ev);
    CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR);
    if (!v || v->value_case != TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR)
        return;
    check_plugin(v, "custom_scalars");
    CHECK(ev->step == 0);
    const Tensorboard__TensorProto *t = v->tensor;
    CHECK(t->dtype == TENSORBOARD__DATA_TYPE__DT_STRING);
    CHECK(t->tensor_shape && t->tensor_shape->n_dim == 0);
    CHECK(t->n_string_val == 1);
    if (t->n_string_val != 1)
        return;
    Tensorboard__Layout *l = tensorboard__layout__unpack(NULL, t->string_val[0].len,
                                                         t->string_val[0].data);
    CHECK(l != NULL);
    if (!l)
        return;
    CHECK(l->version == 0 && l->n_category == 1);
    if (l->n_category == 1) {
        const Tensorboard__Category *c = l->category[0];
        CHECK(strcmp(c->title, "goodness") == 0);
        CHECK(c->n_chart == 3);
        for (size_t i = 0; i < c->n_chart; i++) {
            char want[64];
            snprintf(want, sizeof want, "layer%zu/goodness_(pos|neg)$", i);
            CHECK(c->chart[i]->content_case == TENSORBOARD__CHART__CONTENT_MULTILINE);
            CHECK(c->chart[i]->multiline->n_tag == 1 &&
                  strcmp(c->chart[i]->multiline->tag[0], want) == 0);
        }
    }
    tensorboard__layout__free_unpacked(l, NULL);
}

/* The reading API classifies every written value and rejects broken ones. */
static void test_event_decode(void)
{
    const char *want[][2] = {{"loss", "scalars"},          {"layer0/weights", "histograms"},
                             {"inputs/rgb", "images"},     {"notes", "text"},
                             {"_hparams_/experiment", "hparams"},
                             {"custom_scalars__config__", "custom_scalars"}};
    int found[6] = {0}, failures = 0;
    for (int i = 0; i < sample.n; i++) {
        ff_summary_event_info info;
        ff_err err = {0};
        int rc = ff_summary_reader_event_decode(sample.raw[i], sample.raw_len[i], &info, &err);
        if (rc)
            fprintf(stderr, "  decode: %s\n", err.msg);
        failures += rc != 0;
        CHECK(i > 0 || (strcmp(info.what, "file_version") == 0 &&
                        strcmp(info.file_version, "brain.Event:2") == 0));
        for (int j = 0; j < info.n_values; j++)
            for (int k = 0; k < 6; k++)
                if (strcmp(info.values[j].tag, want[k][0]) == 0) {
                    found[k]++;
                    CHECK(strcmp(info.values[j].plugin, want[k][1]) == 0);
                    if (k == 0)
                        CHECK(info.values[j].number == 1.0f / (float)(info.step + 1));
                }
        ff_summary_reader_event_info_destroy(&info);
        ff_summary_reader_event_info_destroy(&info);
    }
    CHECK(failures == 0);
    for (int k = 0; k < 6; k++)
        CHECK(found[k] > 0);
    ff_summary_event_info info;
    ff_err err = {0};
    CHECK(ff_summary_reader_event_decode((const uint8_t *)"\xff\xff\xff", 3, &info, &err) ==
          FF_ERR_FORMAT);
}

/* Re-packs a sample event after breaking it and expects decode to reject it. */
static void expect_decode_error(Tensorboard__Event *ev, const char *what)
{
    uint8_t *buf = malloc(tensorboard__event__get_packed_size(ev));
    size_t len = tensorboard__event__pack(ev, buf);
    ff_summary_event_info info;
    ff_err err = {0};
    CHECK(ff_summary_reader_event_decode(buf, len, &info, &err) == FF_ERR_FORMAT);
    CHECK(strstr(err.msg, what) != NULL);
    free(buf);
}

static void test_event_decode_rejects(void)
{
    Tensorboard__Event *ev = NULL;
    Tensorboard__Summary__Value *v = find_value(&sample, "inputs/grey", 0, &ev);
    CHECK(v != NULL);
    if (v) {
        v->image->width++;
        expect_decode_error(ev, "PNG is 9x6 but the summary says 10x6");
        v->image->width--;
        v->image->colorspace = 3;
        expect_decode_error(ev, "colour type");
        v->image->colorspace = 1;
    }
    v = find_value(&sample, "layer0/weights", 0, &ev);
    CHECK(v != NULL);
    if (v) {
        v->histo->n_bucket--;
        expect_decode_error(ev, "buckets but");
        v->histo->n_bucket++;
        v->histo->num += 1;
        expect_decode_error(ev, "counts sum");
        v->histo->num -= 1;
    }
    v = find_value(&sample, "_hparams_/session_start_info", 0, &ev);
    CHECK(v != NULL);
    if (v && v->metadata && v->metadata->plugin_data) {
        ProtobufCBinaryData keep = v->metadata->plugin_data->content;
        uint8_t bad[2] = {0x08, 0x01}; /* version 1 */
        v->metadata->plugin_data->content = (ProtobufCBinaryData){2, bad};
        expect_decode_error(ev, "version 1");
        v->metadata->plugin_data->content = keep;
    }
}

/* Disk full (here: file size limit) is FF_ERR_IO naming the path, and the file
 * keeps only whole records. */
static void test_write_error(void)
{
    char path[1024];
    ff_summary_writer *w = open_test_writer("full", path);
    ff_err err = {0};
    if (!w)
        return;
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 1000;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = FF_OK, written = 0;
    for (int s = 0; s < 200 && rc == FF_OK; s++)
        if ((rc = ff_summary_scalar(w, "a_rather_long_tag_name_for_the_test", s, 1.0f, &err)) == 0)
            written++;
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc == FF_ERR_IO);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(written > 5 && written < 200);
    /* the writer cut the partial record away and goes on once there is room */
    CHECK(ff_summary_scalar(w, "a_rather_long_tag_name_for_the_test", 1000, 2.0f, &err) == FF_OK);
    CHECK(ff_summary_close(w, &err) == FF_OK);
    events e;
    load_events(path, &e);
    CHECK(e.defect == 0);
    CHECK(e.n == written + 2);
    free_events(&e);
}

/* SIGKILL at any moment leaves whole records plus at most one truncated one. */
static void test_killed_writer(void)
{
    char path[1024];
    ff_summary_writer *w = open_test_writer("killed", path);
    if (!w)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        float vals[2000];
        for (int i = 0; i < 2000; i++)
            vals[i] = (float)i;
        for (int64_t s = 0;; s++)
            if (ff_summary_scalar(w, "x", s, 1.0f, NULL) ||
                ff_summary_histogram(w, "h", s, vals, 2000, NULL))
                _exit(3);
    }
    CHECK(pid > 0);
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ff_summary_close(w, NULL);
    events e;
    load_events(path, &e);
    CHECK(e.n > 10);
    CHECK(e.defect == 0 || e.defect == FF_TFRECORD_TRUNCATED);
    free_events(&e);
}

/* ------------------------------------------------------------ session records */

/* The payload of a START record after its wall_time: 0x09 <8 bytes double>,
 * then step (field 2, varint; absent for step 0) and session_log (field 7,
 * length 2: status (field 1) = START (1)). */
static void check_start_bytes(const uint8_t *p, size_t len, int64_t step)
{
    uint8_t want[16];
    size_t n = 0;
    if (step != 0) {
        want[n++] = 0x10;
        for (uint64_t v = (uint64_t)step; ; v >>= 7) {
            want[n++] = (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
            if (v <= 0x7f)
                break;
        }
    }
    memcpy(want + n, "\x3a\x02\x08\x01", 4);
    n += 4;
    CHECK(len == 9 + n);
    CHECK(len >= 9 && p[0] == 0x09);
    CHECK(len == 9 + n && memcmp(p + 9, want, n) == 0);
}

static void test_session_start_bytes(void)
{
    char path[1024];
    ff_summary_writer *w = open_test_writer("session_bytes", path);
    ff_err err = {0};
    if (!w)
        return;
    CHECK(ff_summary_session_start(w, 0, &err) == FF_OK);
    CHECK(ff_summary_session_resume(w, 50, &err) == FF_OK);       /* START at 51 */
    CHECK(ff_summary_session_resume(w, 1000000, &err) == FF_OK);  /* START at 1000001 */
    CHECK(ff_summary_session_resume(w, -1, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_close(w, &err) == FF_OK);
    events e;
    load_events(path, &e);
    CHECK(e.n == 4 && e.defect == 0);
    if (e.n == 4) {
        check_start_bytes(e.raw[1], e.raw_len[1], 0);
        check_start_bytes(e.raw[2], e.raw_len[2], 51);
        check_start_bytes(e.raw[3], e.raw_len[3], 1000001);
        ff_summary_event_info info;
        CHECK(ff_summary_reader_event_decode(e.raw[2], e.raw_len[2], &info, &err) == FF_OK);
        CHECK(strcmp(info.what, "session_log") == 0 && info.session_status == 1 && info.step == 51);
        ff_summary_reader_event_info_destroy(&info);
    }
    free_events(&e);
}

/* Statuses: success and failure are written, interrupted writes nothing,
 * unknown/running (which would stick, first-come) are refused. */
static void test_hparams_end_statuses(void)
{
    char path[1024];
    ff_summary_writer *w = open_test_writer("end_status", path);
    ff_err err = {0};
    if (!w)
        return;
    CHECK(ff_summary_hparams_end(w, FF_SUMMARY_INTERRUPTED, 7, &err) == FF_OK);
    CHECK(ff_summary_hparams_end(w, 0, 7, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_hparams_end(w, 3, 7, &err) == FF_ERR_USAGE);
    CHECK(ff_summary_hparams_end(w, FF_SUMMARY_FAILURE, 8, &err) == FF_OK);
    CHECK(ff_summary_hparams_end(w, FF_SUMMARY_SUCCESS, 9, &err) == FF_OK);
    CHECK(ff_summary_close(w, &err) == FF_OK);
    events e;
    load_events(path, &e);
    CHECK(e.n == 3); /* file_version, failure at 8, success at 9: nothing for "interrupted" */
    int want[3] = {-1, 2, 1};
    for (int i = 1; i < e.n && i < 3; i++) {
        ff_summary_event_info info;
        CHECK(ff_summary_reader_event_decode(e.raw[i], e.raw_len[i], &info, &err) == FF_OK);
        CHECK(info.n_values == 1 && info.values[0].end_status == want[i]);
        CHECK(info.step == 7 + i);
        ff_summary_reader_event_info_destroy(&info);
    }
    free_events(&e);
}

static int64_t crash_after = -1; /* new_run: SIGKILL itself after this step */

/* What the trainer logs at one step of the simulated run. */
static int log_step(ff_summary_writer *w, int64_t s, ff_err *err)
{
    float vals[16];
    uint8_t px[4 * 4];
    for (int i = 0; i < 16; i++)
        vals[i] = (float)(i + s);
    fill_image(px, 4, 4, 1, (int)s);
    int rc = ff_summary_scalar(w, "loss/total", s, 1.0f / (float)s, err);
    if (!rc)
        rc = ff_summary_scalar(w, "layer0/goodness_pos", s, 2.0f + (float)s, err);
    if (!rc && s % 10 == 0)
        rc = ff_summary_histogram(w, "layer0/weights", s, vals, 16, err);
    if (!rc && s % 25 == 0)
        rc = ff_summary_image(w, "inputs/positive", s, px, 4, 4, 1, err);
    return rc;
}

/* The record sequence of a new run, as the trainer writes it: START at 0, the
 * step-0 records, then steps 1..last. */
static int new_run(const char *run_dir, int64_t last, ff_err *err)
{
    ff_summary_writer *w = NULL;
    int rc = ff_summary_open(&w, run_dir, err);
    if (rc)
        return rc;
    ff_config cfg;
    ff_config_defaults(&cfg);
    const char *metrics[] = {"loss/total"};
    rc = ff_summary_session_start(w, 0, err);
    if (!rc)
        rc = ff_summary_text(w, "config", 0, "config", err);
    if (!rc)
        rc = ff_summary_hparams_experiment(w, &cfg, metrics, 1, err);
    if (!rc)
        rc = ff_summary_hparams_start(w, &cfg, 1700000000.0, err);
    if (!rc)
        rc = ff_summary_hparams_goodness_layout(w, 1, err);
    for (int64_t s = 1; s <= last && !rc; s++) {
        rc = log_step(w, s, err);
        if (s == crash_after)
            raise(SIGKILL); /* like kill -9: no end record, no close */
    }
    return rc ? rc : ff_summary_close(w, err);
}

/* A resumed process: new file, START after the model step, steps model+1..last,
 * then the outcome. */
static int resumed_run(const char *run_dir, int64_t model_step, int64_t last, int status,
                       ff_err *err)
{
    ff_summary_writer *w = NULL;
    int rc = ff_summary_open(&w, run_dir, err);
    if (rc)
        return rc;
    rc = ff_summary_session_resume(w, model_step, err);
    for (int64_t s = model_step + 1; s <= last && !rc; s++)
        rc = log_step(w, s, err);
    if (!rc)
        rc = ff_summary_hparams_end(w, status, last, err);
    int rc2 = ff_summary_close(w, rc ? NULL : err);
    return rc ? rc : rc2;
}

/* run -> SIGKILL after step 80 -> resume from the model at step 50 -> finish
 * at 100, in run_dir; the two event file paths (name order) in path[2]. */
static int crash_resume_run(const char *run_dir, char path[2][1024])
{
    time_t t0 = time(NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        ff_err err = {0};
        crash_after = 80; /* new_run kills the process after logging step 80 */
        new_run(run_dir, 80, &err);
        _exit(4);
    }
    if (pid < 0)
        return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        return -1;
    while (time(NULL) <= t0) { /* the resumed file's name (unix seconds) sorts later */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ff_err err = {0};
    if (resumed_run(run_dir, 50, 100, FF_SUMMARY_SUCCESS, &err)) {
        fprintf(stderr, "  resumed run: %s\n", err.msg);
        return -1;
    }
    DIR *d = opendir(run_dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strstr(de->d_name, "tfevents") && n < 2)
            snprintf(path[n++], 1024, "%s/%s", run_dir, de->d_name);
    if (d)
        closedir(d);
    if (n == 2 && strcmp(path[0], path[1]) > 0) {
        char t[1024];
        memcpy(t, path[0], sizeof t);
        memcpy(path[0], path[1], sizeof t);
        memcpy(path[1], t, sizeof t);
    }
    return n == 2 ? 0 : -1;
}

/* Points a TensorBoard reader keeps per tag, simulated over the decoded events
 * of a run's files in name order. python: the Python loader (first START
 * purges nothing, a later START at s drops every tag's steps >= s); rust: the
 * data server (SessionLog ignored; a point at step s drops its tag's steps >= s). */
typedef struct kept {
    char tag[8][64];
    int64_t steps[8][256];
    int n[8], n_tags;
    int end_status; /* the first session_end_info's, -1 none */
} kept;

static void keep_point(kept *k, const char *tag, int64_t step, int rust)
{
    int t = 0;
    while (t < k->n_tags && strcmp(k->tag[t], tag) != 0)
        t++;
    if (t == k->n_tags) {
        if (t == 8)
            return;
        snprintf(k->tag[t], sizeof k->tag[t], "%s", tag);
        k->n_tags++;
    }
    while (rust && k->n[t] > 0 && k->steps[t][k->n[t] - 1] >= step)
        k->n[t]--;
    if (k->n[t] < 256)
        k->steps[t][k->n[t]++] = step;
}

static void simulate_reader(events *files, int n_files, int rust, kept *k)
{
    memset(k, 0, sizeof *k);
    k->end_status = -1;
    int seen_start = 0;
    for (int f = 0; f < n_files; f++)
        for (int i = 0; i < files[f].n; i++) {
            ff_summary_event_info info;
            ff_err err = {0};
            CHECK(ff_summary_reader_event_decode(files[f].raw[i], files[f].raw_len[i], &info, &err) == 0);
            if (info.session_status == 1 && !rust && seen_start++)
                for (int t = 0; t < k->n_tags; t++)
                    while (k->n[t] > 0 && k->steps[t][k->n[t] - 1] >= info.step)
                        k->n[t]--;
            for (int v = 0; v < info.n_values; v++) {
                keep_point(k, info.values[v].tag, info.step, rust);
                if (info.values[v].end_status >= 0 && k->end_status < 0)
                    k->end_status = info.values[v].end_status;
            }
            ff_summary_reader_event_info_destroy(&info);
        }
}

/* tag's kept steps are exactly first, first + every, ..., last, each once. */
static int kept_exactly(const kept *k, const char *tag, int64_t first, int64_t every, int64_t last)
{
    for (int t = 0; t < k->n_tags; t++) {
        if (strcmp(k->tag[t], tag) != 0)
            continue;
        int64_t want = first;
        for (int i = 0; i < k->n[t]; i++, want += every)
            if (k->steps[t][i] != want)
                return 0;
        return k->n[t] == (int)((last - first) / every + 1);
    }
    return 0;
}

/* Issue 20 item 12: run -> crash at step 80 -> resume from the model at step 50
 * -> finish. Byte-level record sequence, then both TensorBoard readers keep
 * each step once per tag and show status success. */
static void test_crash_resume(void)
{
    char dir[512], path[2][1024];
    snprintf(dir, sizeof dir, "%s/crash_resume", tmp_root);
    CHECK(crash_resume_run(dir, path) == 0);
    events e[2];
    load_events(path[0], &e[0]);
    load_events(path[1], &e[1]);
    CHECK(e[0].defect == 0 && e[1].defect == 0);
    CHECK(e[0].n == 177 && e[1].n == 110); /* see new_run, log_step, resumed_run */
    if (e[0].n < 2 || e[1].n < 2)
        return;
    /* first file: file_version, START at 0 first; no session_end_info */
    CHECK(e[0].ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION);
    check_start_bytes(e[0].raw[1], e[0].raw_len[1], 0);
    CHECK(count_values(&e[0], "_hparams_/session_end_info") == 0);
    CHECK(count_values(&e[0], "_hparams_/session_start_info") == 1);
    CHECK(count_values(&e[0], "loss/total") == 80);
    /* resumed file: file_version, START at 51, steps 51..100, success at 100 last */
    CHECK(e[1].ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION);
    check_start_bytes(e[1].raw[1], e[1].raw_len[1], 51);
    CHECK(count_values(&e[1], "_hparams_/session_start_info") == 0);
    CHECK(count_values(&e[1], "loss/total") == 50);
    Tensorboard__Event *ev = NULL;
    CHECK(find_value(&e[1], "loss/total", 0, &ev) && ev->step == 51);
    ff_summary_event_info info;
    ff_err err = {0};
    int last = e[1].n - 1;
    CHECK(ff_summary_reader_event_decode(e[1].raw[last], e[1].raw_len[last], &info, &err) == FF_OK);
    CHECK(info.n_values == 1 && strcmp(info.values[0].tag, "_hparams_/session_end_info") == 0);
    CHECK(info.n_values == 1 && info.values[0].end_status == 1 && info.step == 100);
    ff_summary_reader_event_info_destroy(&info);

    for (int rust = 0; rust < 2; rust++) {
        kept k;
        simulate_reader(e, 2, rust, &k);
        CHECK(kept_exactly(&k, "loss/total", 1, 1, 100));
        CHECK(kept_exactly(&k, "layer0/goodness_pos", 1, 1, 100));
        CHECK(kept_exactly(&k, "layer0/weights", 10, 10, 100));
        CHECK(kept_exactly(&k, "inputs/positive", 25, 25, 100));
        CHECK(kept_exactly(&k, "_hparams_/session_start_info", 0, 1, 0));
        CHECK(kept_exactly(&k, "config", 0, 1, 0));
        CHECK(k.end_status == 1);
    }
    /* negative control: without the START at step 0 the resume's START is the
     * run's first and the Python loader keeps loss steps 51..80 twice */
    static events alt[2]; /* shallow copies: the payloads stay e's */
    alt[0] = e[0];
    alt[1] = e[1];
    alt[0].n--;
    memmove(&alt[0].raw[1], &alt[0].raw[2], (size_t)alt[0].n * sizeof alt[0].raw[0]);
    memmove(&alt[0].raw_len[1], &alt[0].raw_len[2], (size_t)alt[0].n * sizeof alt[0].raw_len[0]);
    kept k;
    simulate_reader(alt, 2, 0, &k);
    CHECK(!kept_exactly(&k, "loss/total", 1, 1, 100));
    CHECK(k.n_tags > 0 && strcmp(k.tag[0], "config") == 0);
    int loss = 0;
    while (loss < k.n_tags && strcmp(k.tag[loss], "loss/total") != 0)
        loss++;
    CHECK(loss < k.n_tags && k.n[loss] == 130);
    simulate_reader(alt, 2, 1, &k); /* the data server needs no START */
    CHECK(kept_exactly(&k, "loss/total", 1, 1, 100));
    free_events(&e[0]);
    free_events(&e[1]);
}

/* model.recurrent: per-iteration goodness means since the last log, tagged
 * layer<l>/goodness_(pos|neg)_iter<t>, and the layout's second category of charts */
static void test_iter_goodness(void)
{
    char path[1024];
    ff_summary_writer *w = open_test_writer("iters", path);
    if (!w)
        return;
    ff_err err = {0};
    CHECK(ff_summary_hparams_goodness_layout_iters(w, 2, &err) == FF_OK);
    ff_iter_sums s;
    memset(&s, 0, sizeof s);
    static ff_step_stats st;
    memset(&st, 0, sizeof st);
    ff_train_log_iter_sums_add(&s, &st); /* a feed-forward step: nothing */
    CHECK(s.batches == 0);
    st.n_layers = 2, st.n_iters = 4;
    for (int b = 0; b < 2; b++) {
        for (int t = 0; t < 4; t++)
            for (int l = 0; l < 2; l++) {
                st.iter_g_pos[t][l] = 100.0 * l + 10.0 * t + b;
                st.iter_g_neg[t][l] = -(100.0 * l + 10.0 * t + b);
            }
        ff_train_log_iter_sums_add(&s, &st);
    }
    CHECK(ff_train_log_iter_goodness(w, &s, 7, &err) == FF_OK);
    CHECK(s.batches == 0);
    CHECK(ff_train_log_iter_goodness(w, &s, 8, &err) == FF_OK); /* nothing added: nothing written */
    CHECK(ff_summary_close(w, &err) == FF_OK);
    static events e;
    load_events(path, &e);
    for (int t = 0; t < 4; t++)
        for (int l = 0; l < 2; l++) {
            char tag[64];
            Tensorboard__Event *ev = NULL;
            snprintf(tag, sizeof tag, "layer%d/goodness_pos_iter%d", l, t);
            Tensorboard__Summary__Value *v = find_value(&e, tag, 0, &ev);
            CHECK(v && ev && ev->step == 7 && count_values(&e, tag) == 1);
            if (v)
                CHECK_NEAR(v->simple_value, 100.0 * l + 10.0 * t + 0.5, 1e-4);
            snprintf(tag, sizeof tag, "layer%d/goodness_neg_iter%d", l, t);
            v = find_value(&e, tag, 0, NULL);
            CHECK(v != NULL);
            if (v)
                CHECK_NEAR(v->simple_value, -(100.0 * l + 10.0 * t + 0.5), 1e-4);
        }
    CHECK(find_value(&e, "layer0/goodness_pos_iter4", 0, NULL) == NULL);
    Tensorboard__Summary__Value *v = find_value(&e, "custom_scalars__config__", 0, NULL);
    CHECK(v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR && v->tensor &&
          v->tensor->n_string_val == 1);
    if (v && v->tensor && v->tensor->n_string_val == 1) {
        Tensorboard__Layout *l = tensorboard__layout__unpack(NULL, v->tensor->string_val[0].len,
                                                             v->tensor->string_val[0].data);
        CHECK(l && l->n_category == 2);
        if (l && l->n_category == 2) {
            CHECK(l->category[0]->n_chart == 2 && l->category[1]->n_chart == 2);
            const Tensorboard__Chart *c = l->category[1]->chart[1];
            CHECK(c->content_case == TENSORBOARD__CHART__CONTENT_MULTILINE &&
                  c->multiline->n_tag == 1 &&
                  strcmp(c->multiline->tag[0], "layer1/goodness_(pos|neg)_iter[0-9]+$") == 0);
            CHECK(strcmp(l->category[0]->chart[0]->multiline->tag[0],
                         "layer0/goodness_(pos|neg)$") == 0);
        }
        if (l)
            tensorboard__layout__free_unpacked(l, NULL);
    }
    free_events(&e);
}

static int write_resume_sample_main(const char *dir)
{
    char path[2][1024];
    if (crash_resume_run(dir, path)) {
        fprintf(stderr, "test_summary: crash/resume sample failed\n");
        return 1;
    }
    printf("%s\n%s\n", path[0], path[1]);
    return 0;
}

static int write_sample_main(const char *dir)
{
    char runs[2][600], path[1024];
    snprintf(runs[0], sizeof runs[0], "%s/runA", dir);
    snprintf(runs[1], sizeof runs[1], "%s/group/runB", dir);
    for (int i = 0; i < 2; i++) {
        ff_err err = {0};
        if (write_sample(runs[i], 3 + 2 * i, path, sizeof path, &err)) {
            fprintf(stderr, "test_summary: %s\n", err.msg);
            return 1;
        }
        printf("%s\n", path);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-sample") == 0)
        return write_sample_main(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--write-resume-sample") == 0)
        return write_resume_sample_main(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: test_summary [--write-sample DIR | --write-resume-sample DIR]\n");
        return 2;
    }
    make_tmp_root();
    RUN(test_open_naming_version);
    RUN(test_open_fails_on_file);
    RUN(test_sample_written);
    RUN(test_scalars);
    RUN(test_histogram_sample);
    RUN(test_histogram_edge_cases);
    RUN(test_images);
    RUN(test_image_bad_args);
    RUN(test_text);
    RUN(test_hparams_start);
    RUN(test_hparams_experiment);
    RUN(test_hparams_end);
    RUN(test_layout);
    RUN(test_event_decode);
    RUN(test_event_decode_rejects);
    RUN(test_write_error);
    RUN(test_killed_writer);
    RUN(test_session_start_bytes);
    RUN(test_hparams_end_statuses);
    RUN(test_crash_resume);
    RUN(test_iter_goodness);
    free_events(&sample);
    rm_rf(tmp_root);
    TEST_MAIN_END();
}
