/* checkpoint.h - model files (.ffm): the resolved config, weights, optimiser
 * state, RNG state and counters, with a header and a CRC32C.
 *
 * Format version 3, all integers little-endian:
 *   offset  size  field
 *   0       8     magic "FFRUNMDL"
 *   8       4     version (3, FF_CHECKPOINT_VERSION; versions 1 and 2 still load, below)
 *   12      4     config_len: bytes of resolved-config YAML
 *   16      8     n_params: floats of parameters (layer after layer, W then b)
 *   24      8     n_state: floats of optimiser state (sgd: velocity; adam: m then v)
 *   32      4     epoch: epochs completed
 *   36      4     batch: batches done in the epoch after that (0 at an epoch boundary)
 *   40      8     step: global step
 *   48      8     optimiser step count t
 *   56      32    RNG state (4 x u64)
 *   88      4     run_dir_len: bytes of the run directory path
 *   92      4     n_order: entries of the epoch's sample order (0 if none)
 *   96      8     n_aux: floats of other training state (peer-normalisation means)
 *   104     8     n_head: floats of the softmax readout head's parameters (W then b;
 *                 0 if the run trains no head, i.e. eval.softmax is off)
 *   112     8     n_head_state: floats of the head's optimiser state (clf.optimizer
 *                 adam: m then v, 2 n_head; sgd, sgd_smooth: one vector, n_head)
 *   120     8     head_t: the head's optimiser step count
 *   128     4     record_len: bytes of the run record (0: none)
 *   132     4     reserved, 0
 *   136     ...   config YAML (config_len bytes), run directory (run_dir_len bytes),
 *                 run record (record_len bytes: the JSON object of run.json, include/ff/
 *                 run_record.h, of the process that wrote the file),
 *                 params (4 * n_params bytes, IEEE float32), optimiser state
 *                 (4 * n_state bytes), aux state (4 * n_aux bytes), head parameters
 *                 (4 * n_head bytes), head state (4 * n_head_state bytes), sample
 *                 order (4 * n_order bytes, u32)
 *   end-4   4     CRC-32C of every byte before it
 * Version 2 files (written before the run record) still load: their header ends at
 * offset 128 and they hold no record. Version 1 files (written before the head was
 * saved) still load: their header ends at offset 104 and they hold no head. unsupervised_clf models keep their classifier
 * in params, after the backbone's parameters (n_head 0).
 * Files are written with ff_fs_write_file_atomic (include/ff/fs.h): to
 * "<path>.tmp.<pid>.<n>", fsync'ed, renamed over <path> and the directory fsync'ed: a
 * crash never leaves a torn model under <path>, and two processes saving one path
 * never share a temporary file. ff_fs_clean_stale_tmp removes what a killed save left. */
#ifndef FF_CHECKPOINT_H
#define FF_CHECKPOINT_H

#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/net.h"
#include "ff/optim.h"
#include "ff/readout.h"
#include "ff/rng.h"

#define FF_CHECKPOINT_MAGIC "FFRUNMDL"
#define FF_CHECKPOINT_VERSION 3
#define FF_CHECKPOINT_HEADER 136    /* version 3; version 2: 128; version 1: 104 */
#define FF_CHECKPOINT_HEADER_V2 128
#define FF_CHECKPOINT_HEADER_V1 104
#define FF_CHECKPOINT_RECORD_MAX 65536

/* What a checkpoint holds, borrowed from the trainer (nothing is owned). */
typedef struct ff_checkpoint_state {
    const ff_config *cfg;
    const ff_net *net;
    const ff_optim *opt;
    const ff_rng *rng;
    int epoch;             /* epochs completed */
    int batch;             /* batches done in the current epoch */
    int64_t step;
    const char *run_dir;   /* "" if none */
    const int *order;      /* the current epoch's sample order (n_order entries) or NULL */
    int n_order;
    const ff_readout *head; /* the softmax readout head (eval.softmax) or NULL */
    const char *record;    /* the run record (JSON) of the writing process, NULL: none */
} ff_checkpoint_state;

int ff_checkpoint_save(const char *path, const ff_checkpoint_state *st, ff_err *err);

/* A loaded model file. ff_checkpoint_load fills it (the arrays are malloc'ed);
 * ff_checkpoint_free releases them (safe on a zeroed struct). */
typedef struct ff_checkpoint {
    ff_config cfg;
    uint32_t version;
    int epoch, batch;
    int64_t step, opt_t;
    ff_rng rng;
    char run_dir[1024];
    char *record;                  /* the run record (JSON, NUL-terminated), "" if the file
                                      holds none (versions 1 and 2) */
    uint64_t n_params, n_state, n_aux;
    float *params;
    float *state;
    float *aux;
    uint64_t n_head, n_head_state; /* 0 if the file holds no readout head */
    int64_t head_t;
    float *head;                   /* n_head floats: W then b */
    float *head_state;             /* n_head_state floats: Adam m then v */
    int n_order;
    int *order;
} ff_checkpoint;

/* Errors: FF_ERR_IO (missing/unreadable), FF_ERR_FORMAT (bad magic, unknown
 * version, truncated, checksum mismatch, config that no longer parses). */
int ff_checkpoint_load(const char *path, ff_checkpoint *ck, ff_err *err);
void ff_checkpoint_free(ff_checkpoint *ck);

/* Writes into out the path of the newest "<prefix>*.ffm" file in dir by
 * modification time (ties: the greater name); prefix NULL or "" matches any.
 * FF_ERR_IO if dir has none. */
int ff_checkpoint_find_newest(const char *dir, const char *prefix, char *out, size_t cap,
                              ff_err *err);

#endif
