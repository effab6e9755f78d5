/* summary_internal.h - what the summary modules share and callers must not use:
 * the wall clock of every record and tensor values with plugin metadata, written
 * by summary.c for summary_hparams.c. Only src/summary*.c include it (it needs
 * the protobuf-c types of build/gen). */
#ifndef FF_SUMMARY_INTERNAL_H
#define FF_SUMMARY_INTERNAL_H

#include "event.pb-c.h"
#include "ff/summary.h"

/* Unix time in seconds (CLOCK_REALTIME), the wall_time of every record. */
double ff_summary_now(void);

/* Writes Event{now, step, Summary{value{tag, tensor t, metadata{plugin_name
 * plugin, content, data_class}}}}. The metadata is on every occurrence, so the
 * first occurrence of every tag has it. t is borrowed. */
int ff_summary_write_tensor(ff_summary_writer *w, const char *tag, int64_t step, const char *plugin,
                            ProtobufCBinaryData content, Tensorboard__DataClass data_class,
                            Tensorboard__TensorProto *t, ff_err *err);

/* A DT_STRING rank-0 tensor (shape present, no dims) holding len bytes, data
 * class TENSOR. */
int ff_summary_write_string_tensor(ff_summary_writer *w, const char *tag, int64_t step,
                                   const char *plugin, ProtobufCBinaryData content,
                                   const void *bytes, size_t len, ff_err *err);

#endif
