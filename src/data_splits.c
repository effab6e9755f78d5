/* data_splits.c - the sets a run uses (include/ff/data.h): the training split, the
 * validation images held out of it (data.validation, class-stratified and seeded), the
 * test split, and the per-channel standardisation all three get from the training
 * images. What every trainer and `ffrun eval` open. */
#include "ff/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff/rng.h"

/* ------------------------------------------------------------------------ */
/* per-channel statistics                                                    */

void ff_dataset_channel_stats(const ff_dataset *ds, float *mean, float *std)
{
    const int C = ds->shape.c;
    const size_t hw = (size_t)ds->shape.h * ds->shape.w, dim = ff_dataset_dim(ds);
    FF_ASSERT(C >= 1 && C <= FF_MAX_CHANNELS);
    for (int c = 0; c < C; c++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < ds->n; i++) {
            const float *p = ds->images + (size_t)i * dim + (size_t)c * hw;
            double a = 0.0, a2 = 0.0; /* per image first: fewer large-sum roundings */
            for (size_t k = 0; k < hw; k++) {
                a += p[k];
                a2 += (double)p[k] * p[k];
            }
            s += a;
            s2 += a2;
        }
        const double count = (double)ds->n * (double)hw, m = count > 0 ? s / count : 0.0;
        const double var = count > 0 ? s2 / count - m * m : 0.0;
        mean[c] = (float)m;
        std[c] = (float)sqrt(var > 0.0 ? var : 0.0);
    }
}

void ff_dataset_standardize(ff_dataset *ds, const float *mean, const float *std)
{
    const int C = ds->shape.c;
    const size_t hw = (size_t)ds->shape.h * ds->shape.w, dim = ff_dataset_dim(ds);
    for (int i = 0; i < ds->n; i++)
        for (int c = 0; c < C; c++) {
            float *p = ds->images + (size_t)i * dim + (size_t)c * hw;
            const float m = mean[c], inv = std[c] > 0.0f ? 1.0f / std[c] : 1.0f;
            for (size_t k = 0; k < hw; k++)
                p[k] = (p[k] - m) * inv;
        }
}

/* ------------------------------------------------------------------------ */
/* the validation split                                                      */

int ff_data_validation_count(float validation, int n)
{
    if (!(validation > 0.0f))
        return 0;
    if (validation < 1.0f)
        return (int)llround((double)validation * n);
    return validation >= (float)n ? n : (int)validation;
}

/* quota[c]: class c's share of `count` in proportion to its images per[c] of n, by the
 * largest remainders (ties: the lower class), so the quotas sum to count exactly */
static void class_quotas(const int per[FF_DATA_CLASSES], int n, int count,
                         int quota[FF_DATA_CLASSES])
{
    int64_t rem[FF_DATA_CLASSES];
    int left = count;
    for (int c = 0; c < FF_DATA_CLASSES; c++) {
        quota[c] = (int)((int64_t)count * per[c] / n);
        rem[c] = (int64_t)count * per[c] % n;
        left -= quota[c];
    }
    for (; left > 0; left--) {
        int best = -1;
        for (int c = 0; c < FF_DATA_CLASSES; c++)
            if (rem[c] >= 0 && (best < 0 || rem[c] > rem[best]))
                best = c;
        quota[best]++;
        rem[best] = -1;
    }
}

/* chosen[i] = 1 for the images drawn: per class, quota[c] of its images (in index order)
 * by a partial Fisher-Yates shuffle, class after class from one stream */
static void draw_validation(const ff_dataset *ds, const int quota[FF_DATA_CLASSES],
                            uint64_t seed, int *scratch, uint8_t *chosen)
{
    ff_rng rng;
    ff_rng_seed(&rng, seed);
    for (int c = 0; c < FF_DATA_CLASSES; c++) {
        int m = 0;
        for (int i = 0; i < ds->n; i++)
            if (ds->labels[i] == c)
                scratch[m++] = i;
        for (int j = 0; j < quota[c]; j++) {
            const int k = j + (int)ff_rng_below(&rng, (uint32_t)(m - j));
            const int v = scratch[k];
            scratch[k] = scratch[j];
            scratch[j] = v;
            chosen[v] = 1;
        }
    }
}

/* FNV-1a of the chosen indices, ascending: names the split in run records */
static uint64_t split_digest(const uint8_t *chosen, int n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++)
        if (chosen[i])
            for (int b = 0; b < 4; b++) {
                h ^= (uint8_t)((uint32_t)i >> (8 * b));
                h *= 0x100000001b3ull;
            }
    return h;
}

/* The chosen images into val (index order), the others moved down in ds (index order). */
static void move_chosen(ff_dataset *ds, const uint8_t *chosen, ff_dataset *val)
{
    const size_t dim = ff_dataset_dim(ds);
    int t = 0, v = 0;
    for (int i = 0; i < ds->n; i++) {
        float *src = ds->images + (size_t)i * dim;
        if (chosen[i]) {
            memcpy(val->images + (size_t)v * dim, src, sizeof(float) * dim);
            val->labels[v++] = ds->labels[i];
            continue;
        }
        if (t != i)
            memcpy(ds->images + (size_t)t * dim, src, sizeof(float) * dim);
        ds->labels[t++] = ds->labels[i];
    }
    ds->n = t;
}

/* FF_ERR_USAGE unless 1 <= count < n (source, if not "", names the images) */
static int check_count(int count, int n, const char *source, ff_err *err)
{
    if (count >= 1 && count < n)
        return FF_OK;
    return ff_err_set(err, FF_ERR_USAGE, "data.validation: %d of the %d training images%s%s%s %s",
                      count, n, source[0] ? " (" : "", source, source[0] ? ")" : "",
                      count < 1 ? "is no image to validate on" : "leaves none to train on");
}

int ff_data_validation_plan(float validation, int n, const char *source, int *count, ff_err *err)
{
    *count = ff_data_validation_count(validation, n);
    return validation > 0.0f ? check_count(*count, n, source, err) : FF_OK;
}

int ff_dataset_split_validation(ff_dataset *ds, int count, uint64_t seed, ff_dataset *val,
                                ff_split_info *info, ff_err *err)
{
    memset(val, 0, sizeof *val);
    int rc = check_count(count, ds->n, ds->source[0] ? ds->source : "dataset", err);
    if (rc)
        return rc;
    int per[FF_DATA_CLASSES] = {0}, quota[FF_DATA_CLASSES];
    for (int i = 0; i < ds->n; i++)
        per[ds->labels[i]]++;
    class_quotas(per, ds->n, count, quota);
    const size_t dim = ff_dataset_dim(ds);
    int *scratch = malloc(sizeof(int) * (size_t)ds->n);
    uint8_t *chosen = calloc((size_t)ds->n, 1);
    val->images = malloc(sizeof(float) * (size_t)count * dim);
    val->labels = malloc((size_t)count);
    if (!scratch || !chosen || !val->images || !val->labels) {
        free(scratch);
        free(chosen);
        ff_dataset_free(val);
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for %d validation images", count);
    }
    draw_validation(ds, quota, seed, scratch, chosen);
    if (info) {
        info->n = count;
        info->digest = split_digest(chosen, ds->n);
        memcpy(info->per_class, quota, sizeof quota);
    }
    val->n = count;
    val->shape = ds->shape;
    val->format = ds->format;
    memcpy(val->class_names, ds->class_names, sizeof val->class_names);
    snprintf(val->source, sizeof val->source, "%s", ds->source);
    move_chosen(ds, chosen, val);
    free(scratch);
    free(chosen);
    float *shrunk = realloc(ds->images, sizeof(float) * (size_t)ds->n * dim);
    if (shrunk)
        ds->images = shrunk;
    return FF_OK;
}

/* ------------------------------------------------------------------------ */
/* the sets a run uses                                                       */

int ff_data_open(const ff_config *cfg, ff_dataset *train, ff_dataset *val, ff_dataset *test,
                 ff_data_info *info, ff_err *err)
{
    ff_data_format format = cfg->data.format;
    ff_dataset held = {0};
    ff_data_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    int rc = format == FF_DATA_AUTO ? ff_data_detect(cfg->data.dir, &format, err) : FF_OK;
    memset(test, 0, sizeof *test);
    if (val)
        memset(val, 0, sizeof *val);
    if (!rc)
        rc = ff_dataset_open(train, cfg->data.dir, format, FF_SPLIT_TRAIN, cfg->data.train_limit,
                             err);
    if (!rc)
        rc = ff_dataset_open(test, cfg->data.dir, format, FF_SPLIT_TEST, cfg->data.test_limit,
                             err);
    if (!rc)
        rc = ff_dataset_check_same_shape(train, test, err);
    if (!rc && train->shape.c > FF_MAX_CHANNELS)
        rc = ff_err_set(err, FF_ERR_FORMAT, "%s: images with %d channels (at most %d)",
                        train->source, train->shape.c, FF_MAX_CHANNELS);
    int n_val = 0;
    if (!rc)
        rc = ff_data_validation_plan(cfg->data.validation, train->n, train->source, &n_val, err);
    if (!rc && n_val > 0)
        rc = ff_dataset_split_validation(train, n_val, cfg->data.validation_seed, &held,
                                         &info->split, err);
    if (!rc && cfg->data.normalize == FF_DATA_NORM_CHANNEL) {
        ff_dataset_channel_stats(train, info->mean, info->std);
        ff_dataset_standardize(train, info->mean, info->std);
        ff_dataset_standardize(&held, info->mean, info->std);
        ff_dataset_standardize(test, info->mean, info->std);
    }
    if (!rc && val)
        *val = held;
    else
        ff_dataset_free(&held);
    if (rc) {
        ff_dataset_free(train);
        ff_dataset_free(test);
    }
    return rc;
}

void ff_data_note(const ff_config *cfg, const ff_dataset *train, const ff_data_info *info,
                  void (*note)(void *ctx, const char *msg), void *ctx)
{
    if (!note)
        return;
    char msg[600];
    const int C = train->shape.c;
    if (info->split.n > 0) {
        int lo = info->split.per_class[0], hi = lo;
        for (int c = 1; c < FF_DATA_CLASSES; c++) {
            lo = info->split.per_class[c] < lo ? info->split.per_class[c] : lo;
            hi = info->split.per_class[c] > hi ? info->split.per_class[c] : hi;
        }
        snprintf(msg, sizeof msg, "validation: %d images held out of the training split "
                 "(%d-%d per class, data.validation_seed %llu, split %016llx); %d train",
                 info->split.n, lo, hi, (unsigned long long)cfg->data.validation_seed,
                 (unsigned long long)info->split.digest, train->n);
        note(ctx, msg);
    }
    if (cfg->data.normalize != FF_DATA_NORM_CHANNEL)
        return;
    int n = snprintf(msg, sizeof msg, "data.normalize channel: training images' means");
    for (int c = 0; c < C && n < (int)sizeof msg - 40; c++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, " %.4f", info->mean[c]);
    n += snprintf(msg + n, sizeof msg - (size_t)n, ", standard deviations");
    for (int c = 0; c < C && n < (int)sizeof msg - 20; c++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, " %.4f", info->std[c]);
    note(ctx, msg);
}
