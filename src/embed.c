/* embed.c - label embeddings and negative-label choice (include/ff/embed.h). */
#include "ff/embed.h"

#include <math.h>
#include <string.h>

#include "ff/rng.h"

ff_shape ff_embed_shape(ff_embed_kind kind, int rows, int cols)
{
    if (kind == FF_EMBED_CHANNELS)
        return (ff_shape){1 + FF_NUM_CLASSES, rows, cols};
    return (ff_shape){1, rows, cols};
}

static void embed_one(ff_embed_kind kind, const float *img, int rows, int cols, uint8_t label,
                      float *out)
{
    const int hw = rows * cols;
    memcpy(out, img, sizeof(float) * (size_t)hw);
    if (kind == FF_EMBED_CHANNELS) {
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            float v = label == FF_LABEL_NEUTRAL ? 0.1f : (k == label ? 1.0f : 0.0f);
            float *ch = out + (size_t)(1 + k) * hw;
            for (int p = 0; p < hw; p++)
                ch[p] = v;
        }
        return;
    }
    for (int k = 0; k < FF_NUM_CLASSES; k++)
        out[k] = label == FF_LABEL_NEUTRAL ? 0.1f : (k == label ? 1.0f : 0.0f);
}

void ff_embed_batch(ff_embed_kind kind, const float *images, int rows, int cols, const int *idx,
                    const uint8_t *labels, int batch, float *out)
{
    const int hw = rows * cols;
    const int dim = ff_shape_dim(ff_embed_shape(kind, rows, cols));
    for (int i = 0; i < batch; i++) {
        int src = idx ? idx[i] : i;
        embed_one(kind, images + (size_t)src * hw, rows, cols, labels[i], out + (size_t)i * dim);
    }
}

void ff_negative_labels_random(ff_rng *rng, const uint8_t *labels, int n, uint8_t *out)
{
    for (int i = 0; i < n; i++) {
        /* draw from the 9 others: k in [0, 9), skip over the true label */
        uint8_t k = (uint8_t)ff_rng_below(rng, FF_NUM_CLASSES - 1);
        out[i] = k >= labels[i] ? (uint8_t)(k + 1) : k;
    }
}

void ff_negative_labels_hard(ff_rng *rng, const uint8_t *labels, const float *scores, int n,
                             uint8_t *out)
{
    for (int i = 0; i < n; i++) {
        const float *s = scores + (size_t)i * FF_NUM_CLASSES;
        float mx = -INFINITY;
        for (int k = 0; k < FF_NUM_CLASSES; k++)
            if (k != labels[i] && s[k] > mx)
                mx = s[k];
        double p[FF_NUM_CLASSES], total = 0.0;
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            p[k] = k == labels[i] ? 0.0 : exp((double)(s[k] - mx));
            total += p[k];
        }
        double u = (double)ff_rng_uniform(rng) * total;
        int pick = labels[i] == 0 ? 1 : 0;
        for (int k = 0; k < FF_NUM_CLASSES; k++) {
            if (k == labels[i])
                continue;
            pick = k;
            if (u < p[k])
                break;
            u -= p[k];
        }
        out[i] = (uint8_t)pick;
    }
}
