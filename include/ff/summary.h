/* summary.h - TensorBoard event-file writer (scalars, histograms, images, text,
 * hparams, custom-scalar layout) on top of tfrecord.h.
 *
 * ff_summary_open creates <run_dir> (and parents) if needed and the file
 * <run_dir>/events.out.tfevents.<10-digit unix secs>.<host>.<pid>.0 (.1, ...
 * if that name exists), and writes Event{wall_time, file_version
 * "brain.Event:2"} first. Each record is built
 * in memory and written with one write(2), unbuffered, so it is in the kernel
 * as soon as the call returns (a SIGKILL leaves whole records plus at most one
 * truncated last one; a failed write is cut back off the file). Steps must strictly
 * increase per tag: that is the caller's job (TensorBoard drops repeated steps).
 * The writer owns its file; ff_summary_close flushes, closes and frees it
 * (safe on NULL). Any failed write (disk full) is returned as FF_ERR_IO. */
#ifndef FF_SUMMARY_H
#define FF_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"

typedef struct ff_summary_writer ff_summary_writer;

int ff_summary_open(ff_summary_writer **out, const char *run_dir, ff_err *err);
/* SessionLog START at `step`: written when a run resumes from a checkpoint, so
 * both TensorBoard readers discard points the interrupted process logged at
 * steps >= step (they are replaced by the resumed run's). */
int ff_summary_session_start(ff_summary_writer *w, int64_t step, ff_err *err);

/* Path of the event file (valid until close). */
const char *ff_summary_path(const ff_summary_writer *w);

/* float32 simple_value */
int ff_summary_scalar(ff_summary_writer *w, const char *tag, int64_t step, float value, ff_err *err);

/* Legacy HistogramProto over n values (bucket and bucket_limit of equal length,
 * about 30 buckets spanning [min, max]). n == 0 writes nothing. */
int ff_summary_histogram(ff_summary_writer *w, const char *tag, int64_t step,
                         const float *values, size_t n, ff_err *err);

/* PNG image; channels 1 (grey) or 3 (RGB), pixels row-major interleaved. */
int ff_summary_image(ff_summary_writer *w, const char *tag, int64_t step, const uint8_t *pixels,
                     int height, int width, int channels, ff_err *err);

/* Markdown text as a DT_STRING rank-0 tensor with plugin "text" metadata. */
int ff_summary_text(ff_summary_writer *w, const char *tag, int64_t step, const char *markdown,
                    ff_err *err);

/* HParams: session_start_info with every scalar key of cfg (ff_config_visit),
 * group_name "" and start_time; experiment declares the hparams and the given
 * metric tags; session_end_info with status (1 success, 2 failure) at `step`
 * (the run's last step, so a resumed run's end record follows the first one). */
int ff_summary_hparams_start(ff_summary_writer *w, const ff_config *cfg, double start_time,
                             ff_err *err);
int ff_summary_hparams_experiment(ff_summary_writer *w, const ff_config *cfg,
                                  const char *const *metric_tags, int n_metrics, ff_err *err);
int ff_summary_hparams_end(ff_summary_writer *w, int status, int64_t step, ff_err *err);

/* Custom scalars layout: one category "goodness" with one multiline chart per
 * layer putting layer<i>/goodness_pos and layer<i>/goodness_neg together. */
int ff_summary_goodness_layout(ff_summary_writer *w, int n_layers, ff_err *err);

/* Records reach the kernel with one write() each (no user-space buffer), so a
 * killed process leaves whole records plus at most one truncated last record.
 * flush reports a pending write failure (FF_ERR_IO) and otherwise does nothing. */
int ff_summary_flush(ff_summary_writer *w, ff_err *err);
/* Flushes and closes; returns FF_ERR_IO if the final flush/close failed. */
int ff_summary_close(ff_summary_writer *w, ff_err *err);

/* ---- Reading (for tools/tfevents-dump and tests) ---- */

/* One Summary.Value of a decoded Event, flattened. */
typedef struct ff_summary_value_info {
    char *tag;          /* malloc'ed */
    char plugin[64];    /* metadata plugin name, else the legacy kind's plugin ("scalars",
                         * "histograms", "images", "audio"); "" for a tensor without metadata */
    int has_metadata;   /* metadata.plugin_data.plugin_name is set */
    int is_tensor;      /* value is a TensorProto (needs metadata on first occurrence) */
    double number;      /* scalar value; histogram count; NAN otherwise */
    char text[160];     /* one-line rendering of the value */
} ff_summary_value_info;

typedef struct ff_summary_event_info {
    double wall_time;
    int64_t step;
    const char *what;        /* "file_version", "summary", "session_log", ..., or "none" */
    char file_version[64];   /* the version string of a file_version event, else "" */
    int n_values;
    ff_summary_value_info *values; /* malloc'ed array of n_values */
} ff_summary_event_info;

/* Decodes one serialized Event and checks every value it holds: histogram
 * bucket/bucket_limit lengths equal and counts summing to num, image bytes a
 * PNG whose header matches width/height/colorspace (JPEG/GIF accepted
 * unchecked), text a DT_STRING tensor with a shape, hparams content an
 * HParamsPluginData of version 0, custom_scalars a DT_STRING tensor holding a
 * Layout. FF_ERR_FORMAT with a message on the first problem (out is then empty).
 * The caller frees out with ff_summary_event_info_destroy. */
int ff_summary_event_decode(const uint8_t *data, size_t len, ff_summary_event_info *out,
                            ff_err *err);
/* Frees what decode allocated; safe on a zeroed struct and twice. */
void ff_summary_event_info_destroy(ff_summary_event_info *ev);

#endif
