/* summary_reader.h - decoding serialized TensorBoard Events back into flat,
 * checked records: what tools/tfevents-dump and the tests read event files
 * with (records come from tfrecord.h's reader). Independent of the writer
 * (summary.h) except for the shared .proto files. */
#ifndef FF_SUMMARY_READER_H
#define FF_SUMMARY_READER_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"

/* One Summary.Value of a decoded Event, flattened. */
typedef struct ff_summary_value_info {
    char *tag;          /* malloc'ed */
    char plugin[64];    /* metadata plugin name, else the legacy kind's plugin ("scalars",
                         * "histograms", "images", "audio"); "" for a tensor without metadata */
    int has_metadata;   /* metadata.plugin_data.plugin_name is set */
    int is_tensor;      /* value is a TensorProto (needs metadata on first occurrence) */
    double number;      /* scalar value; histogram count; NAN otherwise */
    int end_status;     /* an hparams session_end_info's Status (0 unknown, 1 success,
                         * 2 failure, 3 running); -1 for every other value */
    char text[160];     /* one-line rendering of the value */
} ff_summary_value_info;

typedef struct ff_summary_event_info {
    double wall_time;
    int64_t step;
    const char *what;        /* "file_version", "summary", "session_log", ..., or "none" */
    char file_version[64];   /* the version string of a file_version event, else "" */
    int session_status;      /* SessionLog status of a session_log event (1 START, 2 STOP,
                              * 3 CHECKPOINT), else 0 */
    int n_values;
    ff_summary_value_info *values; /* malloc'ed array of n_values */
} ff_summary_event_info;

/* Decodes one serialized Event and checks every value it holds: histogram
 * bucket/bucket_limit lengths equal and counts summing to num, image bytes a
 * PNG whose header matches width/height/colorspace (JPEG/GIF accepted
 * unchecked), text a DT_STRING tensor with a shape, hparams content an
 * HParamsPluginData of version 0, custom_scalars a DT_STRING tensor holding a
 * Layout. FF_ERR_FORMAT with a message on the first problem (out is then empty).
 * The caller frees out with ff_summary_reader_event_info_destroy. */
int ff_summary_reader_event_decode(const uint8_t *data, size_t len, ff_summary_event_info *out,
                            ff_err *err);
/* Frees what decode allocated; safe on a zeroed struct and twice. */
void ff_summary_reader_event_info_destroy(ff_summary_event_info *ev);

/* The HParams end record TensorBoard shows for the run in run_dir: of every
 * _hparams_/session_end_info in its event files the earliest written (TensorBoard keeps
 * the first one it reads), its status (1 success, 2 failure, 3 running, 0 unknown) and
 * wall time. Returns 1 if there is one, else 0 (*status -1; also when the directory
 * cannot be read). Records that do not decode are skipped. */
int ff_summary_reader_run_end(const char *run_dir, int *status, double *wall_time);

#endif
