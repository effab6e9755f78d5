/* run_record.h - what produced a run, written beside its event files: config.yaml (the
 * resolved config, which `ffrun config.yaml` runs again as it is) and run.json (code
 * version with its git commit and dirty flag, compiler and flags, BLAS and its kernel,
 * threads, ranks, CPU, host, command line, start time). The same record goes to
 * TensorBoard's text tab (tag "run"). */
#ifndef FF_RUN_RECORD_H
#define FF_RUN_RECORD_H

#include <stddef.h>

#include "ff/config.h"
#include "ff/err.h"

#define FF_VERSION "0.1.0"

typedef struct ff_run_record {
    char version[32];
    char commit[64];     /* git commit of the tree that built ffrun, "unknown" outside git */
    int dirty;           /* 1: the tree differed from that commit; 0: it did not; -1: unknown */
    char compiler[160];
    char cflags[1024];
    char blas[256];      /* OpenBLAS's configuration string */
    char blas_kernel[64];
    int threads;         /* OpenBLAS threads */
    int ranks;           /* processes of the job (1 alone) */
    char cpu[160];
    char host[128];
    char command[2048];  /* the command line, arguments separated by spaces */
    char start_time[32]; /* UTC, ISO 8601 */
    int val_images;      /* data.validation's images held out of training (0: none) */
    unsigned long long val_split; /* their digest (ff_split_info.digest) */
} ff_run_record;

/* Fills r for this process now; command may be NULL ("" then). */
void ff_run_record_fill(ff_run_record *r, const char *command, int ranks);

/* r as one JSON object (strings escaped); returns the length written (truncated to
 * cap - 1 if longer). */
size_t ff_run_record_json(const ff_run_record *r, char *out, size_t cap);

/* Writes <run_dir>/config.yaml (cfg resolved) and <run_dir>/run.json, each atomically. */
int ff_run_record_write(const char *run_dir, const ff_config *cfg, const ff_run_record *r,
                        ff_err *err);

#endif
