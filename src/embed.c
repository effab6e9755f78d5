/* embed.c - label embeddings and negative-label choice (include/ff/embed.h). */
#include "ff/embed.h"

#include <math.h>
#include <string.h>

#include "ff/pool.h"
#include "ff/rng.h"

ff_shape ff_embed_shape(ff_embed_kind kind, ff_shape image)
{
    if (kind == FF_EMBED_CHANNELS)
        image.c += FF_NUM_CLASSES;
    return image;
}

int ff_embed_check_shape(ff_embed_kind kind, ff_shape image, ff_err *err)
{
    if (kind != FF_EMBED_OVERLAY || (int64_t)image.h * image.w >= FF_NUM_CLASSES)
        return FF_OK;
    return ff_err_set(err, FF_ERR_USAGE, "model.label_embedding overlay writes the label into the "
                      "first %d pixels, but the images are %dx%d; use channels or pattern",
                      FF_NUM_CLASSES, image.h, image.w);
}

/* P_k(r, c) of the pattern embedding: one bit of a hash of (k, r mod 6, c mod 6) */
static float pattern_bit(int k, int r, int c)
{
    uint32_t h = (uint32_t)(k * 36 + (r % 6) * 6 + (c % 6)) * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return (float)((h >> 7) & 1u);
}

/* the 6x6 tile of `label` (the neutral label: the mean of the ten patterns) */
static void pattern_tile(uint8_t label, float tile[36])
{
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 6; c++) {
            float s = 0.0f;
            if (label != FF_LABEL_NEUTRAL)
                s = pattern_bit(label, r, c);
            else {
                for (int k = 0; k < FF_NUM_CLASSES; k++)
                    s += pattern_bit(k, r, c);
                s /= FF_NUM_CLASSES;
            }
            tile[r * 6 + c] = s;
        }
}

/* copies every channel of img (C x h x w) mirrored left-right (flip) and then shifted by
 * (dx, dy), zeros shifted in: out(c, r, x) = img(c, r - dy, x') with x' = x - dx, or
 * w - 1 - (x - dx) when flipped */
static void augmented_copy(const float *img, ff_shape s, ff_aug a, float *out)
{
    const size_t hw = (size_t)s.h * s.w;
    if (!a.dx && !a.dy && !a.flip) {
        memcpy(out, img, sizeof(float) * hw * (size_t)s.c);
        return;
    }
    for (int ch = 0; ch < s.c; ch++)
        for (int r = 0; r < s.h; r++) {
            const int sr = r - a.dy;
            float *o = out + (size_t)ch * hw + (size_t)r * s.w;
            if (sr < 0 || sr >= s.h) {
                memset(o, 0, sizeof(float) * (size_t)s.w);
                continue;
            }
            const float *in = img + (size_t)ch * hw + (size_t)sr * s.w;
            for (int c = 0; c < s.w; c++) {
                int sc = c - a.dx;
                if (a.flip)
                    sc = s.w - 1 - sc;
                o[c] = sc >= 0 && sc < s.w ? in[sc] : 0.0f;
            }
        }
}

/* embeds one image of shape s: the label goes in after the augmentation, so the
 * label's pixels and planes never move */
static void embed_one(ff_embed_kind kind, const float *img, ff_shape s, uint8_t label, ff_aug a,
                      float *out)
{
    const size_t hw = (size_t)s.h * s.w;
    augmented_copy(img, s, a, out);
    if (label == FF_LABEL_NONE)
        return;
    switch (kind) {
    case FF_EMBED_CHANNELS: /* 10 planes after the image's C */
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            float v = label == FF_LABEL_NEUTRAL ? 0.1f : (k == label ? 1.0f : 0.0f);
            float *ch = out + (size_t)(s.c + k) * hw;
            for (size_t p = 0; p < hw; p++)
                ch[p] = v;
        }
        break;
    case FF_EMBED_PATTERN: { /* the same tile over every channel */
        float tile[36];
        pattern_tile(label, tile);
        for (int ch = 0; ch < s.c; ch++)
            for (int r = 0; r < s.h; r++) {
                const float *t = tile + (r % 6) * 6;
                float *o = out + (size_t)ch * hw + (size_t)r * s.w;
                for (int c = 0, tc = 0; c < s.w; c++, tc = tc == 5 ? 0 : tc + 1)
                    o[c] = 0.5f * o[c] + 0.5f * t[tc];
            }
        break;
    }
    case FF_EMBED_OVERLAY: /* the first 10 pixels of every channel */
        for (int ch = 0; ch < s.c; ch++)
            for (int k = 0; k < FF_NUM_CLASSES; k++)
                out[(size_t)ch * hw + (size_t)k] =
                    label == FF_LABEL_NEUTRAL ? 0.1f : (k == label ? 1.0f : 0.0f);
        break;
    case FF_EMBED_NONE: /* the image alone whatever the label */
    case FF_EMBED_COUNT: break;
    }
}

typedef struct embed_job {
    ff_embed_kind kind;
    const float *images;
    ff_shape image;
    int dim; /* floats of an embedded sample */
    const int *idx;
    const uint8_t *labels;
    const ff_aug *aug;
    float *out;
} embed_job;

static void embed_rows(void *ctx, size_t i0, size_t i1)
{
    const embed_job *j = ctx;
    const size_t image_dim = (size_t)ff_shape_dim(j->image);
    for (size_t i = i0; i < i1; i++) {
        int src = j->idx ? j->idx[i] : (int)i;
        ff_aug a = j->aug ? j->aug[i] : (ff_aug){0, 0, 0};
        embed_one(j->kind, j->images + (size_t)src * image_dim, j->image,
                  j->labels ? j->labels[i] : FF_LABEL_NONE, a, j->out + i * (size_t)j->dim);
    }
}

void ff_embed_batch_aug(ff_embed_kind kind, const float *images, ff_shape image, const int *idx,
                        const uint8_t *labels, const ff_aug *aug, int batch, float *out)
{
    FF_ASSERT(!labels || ff_embed_check_shape(kind, image, NULL) == FF_OK);
    embed_job j = {kind, images, image, ff_shape_dim(ff_embed_shape(kind, image)), idx, labels,
                   aug, out};
    ff_pool_for((size_t)batch, 8, embed_rows, &j); /* rows split over the pool */
}

void ff_embed_batch(ff_embed_kind kind, const float *images, ff_shape image, const int *idx,
                    const uint8_t *labels, int batch, float *out)
{
    ff_embed_batch_aug(kind, images, image, idx, labels, NULL, batch, out);
}

void ff_embed_read_label(ff_embed_kind kind, const float *x, ff_shape image,
                         float out[FF_NUM_CLASSES])
{
    FF_ASSERT(kind == FF_EMBED_OVERLAY || kind == FF_EMBED_CHANNELS);
    FF_ASSERT(ff_embed_check_shape(kind, image, NULL) == FF_OK);
    const size_t hw = (size_t)image.h * image.w;
    for (int k = 0; k < FF_NUM_CLASSES; k++)
        out[k] = kind == FF_EMBED_CHANNELS ? x[(size_t)(image.c + k) * hw] : x[k];
}

void ff_embed_draw_aug(ff_rng *rng, int max_shift, int flip, int n, ff_aug *aug)
{
    /* per image dx, dy, then the flip: the draws of a run without flip are unchanged */
    for (int i = 0; i < n; i++) {
        aug[i].dx = (int8_t)((int)ff_rng_below(rng, (uint32_t)(2 * max_shift + 1)) - max_shift);
        aug[i].dy = (int8_t)((int)ff_rng_below(rng, (uint32_t)(2 * max_shift + 1)) - max_shift);
        aug[i].flip = flip ? (uint8_t)ff_rng_below(rng, 2) : 0;
    }
}
void ff_embed_negatives_random(ff_rng *rng, const uint8_t *labels, int n, uint8_t *out)
{
    for (int i = 0; i < n; i++) {
        /* draw from the 9 others: k in [0, 9), skip over the true label */
        uint8_t k = (uint8_t)ff_rng_below(rng, FF_NUM_CLASSES - 1);
        out[i] = k >= labels[i] ? (uint8_t)(k + 1) : k;
    }
}

void ff_embed_top_wrong_labels(const uint8_t *labels, const float *scores, int n, int m, uint8_t *out)
{
    FF_ASSERT(m >= 1 && m < FF_NUM_CLASSES);
    for (int i = 0; i < n; i++) {
        const float *s = scores + (size_t)i * FF_NUM_CLASSES;
        int taken = 1 << labels[i]; /* bit k: label k is the true one or already chosen */
        for (int q = 0; q < m; q++) {
            int best = -1;
            for (int k = 0; k < FF_NUM_CLASSES; k++)
                if (!(taken >> k & 1) && (best < 0 || s[k] > s[best]))
                    best = k;
            taken |= 1 << best;
            out[(size_t)i * m + q] = (uint8_t)best;
        }
    }
}

void ff_embed_negatives_hard(ff_rng *rng, const uint8_t *labels, const float *scores, int n,
                             float temperature, uint8_t *out)
{
    FF_ASSERT(temperature > 0.0f);
    for (int i = 0; i < n; i++) {
        const float *s = scores + (size_t)i * FF_NUM_CLASSES;
        float mx = -INFINITY;
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            if (k != labels[i] && s[k] > mx)
                mx = s[k];
        double p[FF_NUM_CLASSES], total = 0.0;
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            p[k] = k == labels[i] ? 0.0 : exp((double)(s[k] - mx) / temperature);
            total += p[k];
        }
        double u = (double)ff_rng_uniform(rng) * total;
        int pick = labels[i] == 0 ? 1 : 0;
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            if (k == labels[i] || p[k] == 0.0) /* never a label of probability 0 */
                continue;
            pick = k;
            if (u < p[k])
                break;
            u -= p[k];
        }
        out[i] = (uint8_t)pick;
    }
}
