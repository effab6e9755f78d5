/* checkpoint.c - writing and reading .ffm model files (include/ff/checkpoint.h). */
#include "ff/checkpoint.h"

#include <errno.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ff/crc32c.h"
#include "ff/endian.h"
#include "ff/fs.h"

static void put_floats(uint8_t *p, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        ff_endian_put_u32le(p + 4 * i, u);
    }
}

static void get_floats(const uint8_t *p, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ff_get_u32le(p + 4 * i);
        memcpy(&v[i], &u, 4);
    }
}

/* Serialises st into a malloc'ed buffer. */
static int encode(const ff_checkpoint_state *st, uint8_t **out, size_t *len, ff_err *err)
{
    size_t cfg_len = ff_config_to_yaml(st->cfg, NULL, 0);
    const uint64_t n_params = st->net->n_params;
    const uint64_t n_state = ff_optim_state_len(st->opt);
    const char *run_dir = st->run_dir ? st->run_dir : "";
    const size_t dir_len = strlen(run_dir);
    const char *record = st->record ? st->record : "";
    const size_t rec_len = strlen(record);
    if (rec_len > FF_CHECKPOINT_RECORD_MAX)
        return ff_err_set(err, FF_ERR_USAGE, "run record of %zu bytes (at most %d)", rec_len,
                          FF_CHECKPOINT_RECORD_MAX);
    const uint64_t n_order = st->order ? (uint64_t)st->n_order : 0;
    const uint64_t n_aux = st->net->n_aux;
    const uint64_t n_head = st->head ? st->head->n_params : 0;
    const uint64_t n_head_state = st->head ? ff_optim_state_len(&st->head->opt) : 0;
    size_t total = FF_CHECKPOINT_HEADER + cfg_len + dir_len + rec_len +
                   4 * (n_params + n_state + n_aux + n_head + n_head_state + n_order) + 4;
    uint8_t *b = calloc(1, total + 1);
    if (!b)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for a %zu-byte checkpoint", total);
    memcpy(b, FF_CHECKPOINT_MAGIC, 8);
    ff_endian_put_u32le(b + 8, FF_CHECKPOINT_VERSION);
    ff_endian_put_u32le(b + 12, (uint32_t)cfg_len);
    ff_endian_put_u64le(b + 16, n_params);
    ff_endian_put_u64le(b + 24, n_state);
    ff_endian_put_u32le(b + 32, (uint32_t)st->epoch);
    ff_endian_put_u32le(b + 36, (uint32_t)st->batch);
    ff_endian_put_u64le(b + 40, (uint64_t)st->step);
    ff_endian_put_u64le(b + 48, (uint64_t)st->opt->t);
    for (int i = 0; i < 4; i++)
        ff_endian_put_u64le(b + 56 + 8 * i, st->rng->s[i]);
    ff_endian_put_u32le(b + 88, (uint32_t)dir_len);
    ff_endian_put_u32le(b + 92, (uint32_t)n_order);
    ff_endian_put_u64le(b + 96, n_aux);
    ff_endian_put_u64le(b + 104, n_head);
    ff_endian_put_u64le(b + 112, n_head_state);
    ff_endian_put_u64le(b + 120, st->head ? (uint64_t)st->head->opt.t : 0);
    ff_endian_put_u32le(b + 128, (uint32_t)rec_len);
    uint8_t *p = b + FF_CHECKPOINT_HEADER;
    ff_config_to_yaml(st->cfg, (char *)p, cfg_len + 1); /* writes a NUL we overwrite next */
    p += cfg_len;
    memcpy(p, run_dir, dir_len);
    p += dir_len;
    memcpy(p, record, rec_len);
    p += rec_len;
    put_floats(p, st->net->params, n_params);
    p += 4 * n_params;
    put_floats(p, st->opt->state, n_state);
    p += 4 * n_state;
    put_floats(p, st->net->aux, n_aux);
    p += 4 * n_aux;
    if (st->head) {
        put_floats(p, st->head->params, n_head);
        p += 4 * n_head;
        put_floats(p, st->head->opt.state, n_head_state);
        p += 4 * n_head_state;
    }
    for (uint64_t i = 0; i < n_order; i++, p += 4)
        ff_endian_put_u32le(p, (uint32_t)st->order[i]);
    ff_endian_put_u32le(p, ff_crc32c(0, b, total - 4));
    *out = b;
    *len = total;
    return FF_OK;
}

int ff_checkpoint_save(const char *path, const ff_checkpoint_state *st, ff_err *err)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = encode(st, &b, &len, err);
    if (rc)
        return rc;
    rc = ff_fs_write_file_atomic(path, b, len, err);
    free(b);
    return rc;
}

#define MAX_EPOCHS 1000000           /* the largest train.epochs and clf.epochs */
#define MAX_COUNT (1ll << 53)        /* steps: exact as doubles (TensorBoard), far from overflow */

static int bad_field(ff_err *err, const char *path, const char *field, long long got,
                     const char *want)
{
    return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt model file: %s is %lld, %s", path, field,
                      got, want);
}

/* The counters and state read from a CRC-valid header, checked like any untrusted input:
 * a resumed run indexes the training set with them. cfg is the embedded config. */
static int check_counters(const uint8_t *b, const ff_checkpoint *ck, uint64_t n_order,
                          uint64_t dir_len, const char *path, ff_err *err)
{
    const uint32_t epoch = ff_get_u32le(b + 32), batch = ff_get_u32le(b + 36);
    const int64_t step = (int64_t)ff_get_u64le(b + 40), opt_t = (int64_t)ff_get_u64le(b + 48);
    if (epoch > MAX_EPOCHS)
        return bad_field(err, path, "epoch", (int32_t)epoch, "must be 0 to 1000000");
    if (step < 0 || step > MAX_COUNT)
        return bad_field(err, path, "step", step, "must be 0 to 2^53");
    if (opt_t < 0 || opt_t > MAX_COUNT)
        return bad_field(err, path, "optimiser step count", opt_t, "must be 0 to 2^53");
    if (ck->head_t < 0 || ck->head_t > MAX_COUNT)
        return bad_field(err, path, "head step count", ck->head_t, "must be 0 to 2^53");
    if (n_order > INT32_MAX)
        return bad_field(err, path, "n_order", (long long)n_order, "must be at most 2^31 - 1");
    if (ck->cfg.data.train_limit > 0 && n_order > (uint64_t)ck->cfg.data.train_limit)
        return bad_field(err, path, "n_order", (long long)n_order,
                         "more than its config's data.train_limit");
    if (batch > INT32_MAX)
        return bad_field(err, path, "batch", (int32_t)batch, "must be >= 0");
    /* batch b of an epoch of n_order images in batches of min(batch_size, n_order) */
    const uint64_t bs = (uint64_t)ff_data_batch_of(ck->cfg.train.batch_size, (int)n_order);
    if (batch > 0 && (uint64_t)batch * bs >= n_order)
        return bad_field(err, path, "batch", batch, "past the end of an epoch of n_order images "
                         "in batches of train.batch_size");
    if (ck->cfg.clf.optimizer == FF_OPT_ADAM ? ck->n_head_state != 2 * ck->n_head
                                             : ck->n_head_state != ck->n_head)
        return bad_field(err, path, "n_head_state", (long long)ck->n_head_state,
                         ck->cfg.clf.optimizer == FF_OPT_ADAM
                             ? "must be twice n_head (clf.optimizer adam: m and v)"
                             : "must be n_head (clf.optimizer sgd or sgd_smooth: one vector)");
    if (!(ck->rng.s[0] | ck->rng.s[1] | ck->rng.s[2] | ck->rng.s[3]))
        return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt model file: the RNG state is all zero",
                          path);
    if (strlen(ck->run_dir) != dir_len)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt model file: the run directory holds a "
                          "NUL byte", path);
    return FF_OK;
}

/* The sample order must be a permutation of 0..n-1 (entries index the training set). */
static int check_order(const int *order, uint64_t n, const char *path, ff_err *err)
{
    uint8_t *seen = calloc(n ? n : 1, 1);
    if (!seen)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory loading %s", path);
    int rc = FF_OK;
    for (uint64_t i = 0; i < n && !rc; i++) {
        const uint32_t v = (uint32_t)order[i];
        if (v >= n || seen[v]) {
            char field[48];
            snprintf(field, sizeof field, "sample order entry %llu", (unsigned long long)i);
            rc = bad_field(err, path, field, order[i],
                           v >= n ? "past the training set (n_order entries)"
                                  : "given twice (the order must be a permutation)");
        }
        else
            seen[v] = 1;
    }
    free(seen);
    return rc;
}

static int decode(const uint8_t *b, size_t len, const char *path, ff_checkpoint *ck, ff_err *err)
{
    if (len < 8 || memcmp(b, FF_CHECKPOINT_MAGIC, 8) != 0)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: not an ffrun model file (bad magic)", path);
    if (len < FF_CHECKPOINT_HEADER_V1 + 4)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: truncated model file (%zu bytes)", path, len);
    ck->version = ff_get_u32le(b + 8);
    if (ck->version < 1 || ck->version > FF_CHECKPOINT_VERSION)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: model format version %u, this ffrun reads 1 to %d", path,
                          ck->version, FF_CHECKPOINT_VERSION);
    const size_t header = ck->version == 1   ? FF_CHECKPOINT_HEADER_V1
                          : ck->version == 2 ? FF_CHECKPOINT_HEADER_V2
                                             : FF_CHECKPOINT_HEADER;
    if (len < header + 4)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: truncated model file (%zu bytes)", path, len);
    const uint64_t cfg_len = ff_get_u32le(b + 12);
    ck->n_params = ff_get_u64le(b + 16);
    ck->n_state = ff_get_u64le(b + 24);
    if (ck->n_params > (1ull << 34) || ck->n_state > (1ull << 35))
        return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt header (sizes)", path);
    const uint64_t dir_len = ff_get_u32le(b + 88), n_order = ff_get_u32le(b + 92);
    const uint64_t rec_len = ck->version > 2 ? ff_get_u32le(b + 128) : 0;
    if (rec_len > FF_CHECKPOINT_RECORD_MAX)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt header (run record length)", path);
    ck->n_aux = ff_get_u64le(b + 96);
    if (ck->version > 1) {
        ck->n_head = ff_get_u64le(b + 104);
        ck->n_head_state = ff_get_u64le(b + 112);
        ck->head_t = (int64_t)ff_get_u64le(b + 120);
    }
    if (ck->n_aux > (1ull << 34) || ck->n_head > (1ull << 34) || ck->n_head_state > (1ull << 35))
        return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt header (sizes)", path);
    if (dir_len >= sizeof ck->run_dir)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt header (run directory length)", path);
    const uint64_t want = header + cfg_len + dir_len + rec_len +
                          4 * (ck->n_params + ck->n_state + ck->n_aux + ck->n_head +
                               ck->n_head_state + n_order) + 4;
    if (len != want)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: %s model file (%zu bytes, header says %llu)",
                          path, len < want ? "truncated" : "oversized", len,
                          (unsigned long long)want);
    uint32_t stored = ff_get_u32le(b + len - 4), actual = ff_crc32c(0, b, len - 4);
    if (stored != actual)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: checksum mismatch (stored %08x, computed %08x): corrupt model file",
                          path, stored, actual);
    ck->epoch = (int)ff_get_u32le(b + 32);
    ck->batch = (int)ff_get_u32le(b + 36);
    ck->step = (int64_t)ff_get_u64le(b + 40);
    ck->opt_t = (int64_t)ff_get_u64le(b + 48);
    for (int i = 0; i < 4; i++)
        ck->rng.s[i] = ff_get_u64le(b + 56 + 8 * i);
    const uint8_t *p = b + header;
    ff_err perr;
    char origin[FF_PATH_MAX];
    snprintf(origin, sizeof origin, "%s (embedded config)", path);
    if (ff_config_parse(&ck->cfg, (const char *)p, cfg_len, origin, &perr))
        return ff_err_set(err, FF_ERR_FORMAT, "%s: embedded config: %s", path, perr.msg);
    p += cfg_len;
    memcpy(ck->run_dir, p, dir_len);
    ck->run_dir[dir_len] = '\0';
    p += dir_len;
    if (!(ck->record = malloc(rec_len + 1)))
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory loading %s", path);
    memcpy(ck->record, p, rec_len);
    ck->record[rec_len] = '\0';
    p += rec_len;
    ck->n_order = (int)n_order;
    ck->params = malloc(4 * ck->n_params + 4);
    ck->state = malloc(4 * ck->n_state + 4);
    ck->order = malloc(4 * n_order + 4);
    ck->aux = malloc(4 * ck->n_aux + 4);
    ck->head = malloc(4 * ck->n_head + 4);
    ck->head_state = malloc(4 * ck->n_head_state + 4);
    if (!ck->params || !ck->state || !ck->order || !ck->aux || !ck->head || !ck->head_state)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory loading %s", path);
    get_floats(p, ck->params, ck->n_params);
    p += 4 * ck->n_params;
    get_floats(p, ck->state, ck->n_state);
    p += 4 * ck->n_state;
    get_floats(p, ck->aux, ck->n_aux);
    p += 4 * ck->n_aux;
    get_floats(p, ck->head, ck->n_head);
    p += 4 * ck->n_head;
    get_floats(p, ck->head_state, ck->n_head_state);
    p += 4 * ck->n_head_state;
    for (uint64_t i = 0; i < n_order; i++, p += 4)
        ck->order[i] = (int)ff_get_u32le(p);
    int rc = check_counters(b, ck, n_order, dir_len, path, err);
    return rc ? rc : check_order(ck->order, n_order, path, err);
}

int ff_checkpoint_load(const char *path, ff_checkpoint *ck, ff_err *err)
{
    memset(ck, 0, sizeof *ck);
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = ff_fs_read_file(path, SIZE_MAX, &b, &len, err);
    if (rc)
        return rc;
    rc = decode(b, len, path, ck, err);
    free(b);
    if (rc)
        ff_checkpoint_free(ck);
    return rc;
}

void ff_checkpoint_free(ff_checkpoint *ck)
{
    free(ck->params);
    free(ck->state);
    free(ck->order);
    free(ck->aux);
    free(ck->head);
    free(ck->head_state);
    free(ck->record);
    ck->record = NULL;
    ck->params = ck->state = ck->aux = ck->head = ck->head_state = NULL;
    ck->order = NULL;
}

int ff_checkpoint_find_newest(const char *dir, const char *prefix, char *out, size_t cap,
                              ff_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ff_err_set(err, FF_ERR_IO, "cannot open model directory %s: %s", dir,
                          strerror(errno));
    struct timespec best = {0, 0};
    char best_name[512] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".ffm") != 0 || n >= sizeof best_name ||
            (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        struct timespec m = st.st_mtim;
        int newer = m.tv_sec > best.tv_sec || (m.tv_sec == best.tv_sec && m.tv_nsec > best.tv_nsec) ||
                    (m.tv_sec == best.tv_sec && m.tv_nsec == best.tv_nsec &&
                     strcmp(e->d_name, best_name) > 0);
        if (!best_name[0] || newer) {
            best = m;
            snprintf(best_name, sizeof best_name, "%s", e->d_name);
        }
    }
    closedir(d);
    if (!best_name[0])
        return ff_err_set(err, FF_ERR_IO, "no model files (%s*.ffm) in %s", prefix ? prefix : "",
                          dir);
    if ((size_t)snprintf(out, cap, "%s/%s", dir, best_name) >= cap)
        return ff_err_set(err, FF_ERR_USAGE, "model path too long in %s", dir);
    return FF_OK;
}
