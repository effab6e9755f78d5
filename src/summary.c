/* summary.c - TensorBoard event-file writer: opens the file, frames Event protos
 * (protobuf-c) with tfrecord.c, writes scalars, histograms, images, text and the
 * SessionLog START records. hparams and the custom-scalars layout are in
 * summary_hparams.c (on top of the tensor helpers exported by summary_internal.h);
 * reading events back is summary_reader.c. */
#include "ff/summary.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "event.pb-c.h"
#include "ff/fs.h"
#include "ff/png.h"
#include "ff/tfrecord.h"
#include "summary_internal.h"
#include "text.pb-c.h"

#define FILE_VERSION "brain.Event:2"
#define HIST_BUCKETS 30

struct ff_summary_writer {
    int fd;
    int broken;       /* a failed write could not be cut back: the file is unusable */
    off_t good_size;  /* bytes of whole records written so far */
    uint8_t *buf;     /* framing buffer, grown on demand and reused */
    size_t cap;
    char path[768];   /* <run_dir>/events.out.tfevents.<secs>.<host>.<pid>.<n>: run
                         directories of config paths (FF_PATH_MAX 512) and a file name */
};

/* ---------------------------------------------------------------- writing */

double ff_summary_now(void)
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
    ev.wall_time = ff_summary_now();
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
    int rc = ff_fs_mkdir_p(run_dir, err);
    if (!rc)
        rc = open_unique(w, run_dir, err);
    if (!rc) {
        Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
        ev.wall_time = ff_summary_now();
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
    ev.wall_time = ff_summary_now();
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SESSION_LOG;
    ev.session_log = &log;
    return write_event(w, &ev, err);
}

int ff_summary_session_resume(ff_summary_writer *w, int64_t model_step, ff_err *err)
{
    if (model_step < 0 || model_step == INT64_MAX)
        return ff_err_set(err, FF_ERR_USAGE, "%s: resume from step %lld", w->path,
                          (long long)model_step);
    return ff_summary_session_start(w, model_step + 1, err);
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

int ff_summary_write_tensor(ff_summary_writer *w, const char *tag, int64_t step, const char *plugin,
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

int ff_summary_write_string_tensor(ff_summary_writer *w, const char *tag, int64_t step,
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
    return ff_summary_write_tensor(w, tag, step, plugin, content,
                                   TENSORBOARD__DATA_CLASS__DATA_CLASS_TENSOR, &t, err);
}

int ff_summary_text(ff_summary_writer *w, const char *tag, int64_t step, const char *markdown,
                    ff_err *err)
{
    Tensorboard__TextPluginData tpd = TENSORBOARD__TEXT_PLUGIN_DATA__INIT; /* version 0 */
    uint8_t content[16];
    ProtobufCBinaryData c = {tensorboard__text_plugin_data__pack(&tpd, content), content};
    return ff_summary_write_string_tensor(w, tag, step, "text", c, markdown, strlen(markdown), err);
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

