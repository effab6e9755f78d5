/* summary.h - TensorBoard event-file writer: the file, scalars, histograms,
 * images, text and SessionLog START records, on top of tfrecord.h. The hparams
 * records and the custom-scalars layout (which need the config) are
 * summary_hparams.h; reading events back is summary_reader.h.
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

#include "ff/err.h"

typedef struct ff_summary_writer ff_summary_writer;

int ff_summary_open(ff_summary_writer **out, const char *run_dir, ff_err *err);

/* Session records (docs/tensorboard-format.md section 9). TensorBoard's Python
 * loader treats the run's first SessionLog START as the session start and every
 * later START at step s as a restart: it drops the points of every tag at steps
 * >= s. The Rust data server ignores SessionLog but drops a tag's points at
 * steps >= s when that tag gets a point at step s, so the resumed run's own
 * points replace the crashed run's there. What the trainer calls:
 *   new run:  ff_summary_open, then ff_summary_session_start(w, 0) before any
 *             other record (so that any resume's START is a later START);
 *   resume:   ff_summary_open (a new file in the run's directory), then
 *             ff_summary_session_resume(w, model_step), then log from step
 *             model_step + 1 on (nothing at steps <= model_step).
 * ff_summary_session_start writes Event{step, session_log{status START}}.
 * ff_summary_session_resume writes that START at model_step + 1: the points the
 * interrupted process logged after the model (steps > model_step) are purged,
 * the model step's own evaluation, images and histograms survive, and step 0
 * (config text, hparams, layout) is never purged. FF_ERR_USAGE if model_step < 0. */
int ff_summary_session_start(ff_summary_writer *w, int64_t step, ff_err *err);
int ff_summary_session_resume(ff_summary_writer *w, int64_t model_step, ff_err *err);

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

/* Records reach the kernel with one write() each (no user-space buffer), so a
 * killed process leaves whole records plus at most one truncated last record.
 * flush reports a pending write failure (FF_ERR_IO) and otherwise does nothing. */
int ff_summary_flush(ff_summary_writer *w, ff_err *err);
/* Flushes and closes; returns FF_ERR_IO if the final flush/close failed. */
int ff_summary_close(ff_summary_writer *w, ff_err *err);

#endif
