/* embed.h - putting a label into an image (supervised FF) and choosing the
 * labels of negative data.
 *
 * Embeddings (config model.label_embedding):
 * Images are C x h x w (C = 1 for digits, 3 for colour photos):
 *   overlay  - the one-hot label replaces the first 10 pixels (row 0, columns
 *              0..9) of every channel, as the paper replaces pixels of the image
 *              with the label; input shape [C, h, w]. Default for fc/local nets.
 *   channels - 10 extra planes after the image's C, plane C + label all ones;
 *              input [C + 10, h, w].
 *   pattern  - a label pattern over the whole image: 0.5 * image + 0.5 * P_label in
 *              every channel, P_k a fixed binary 6x6 tile (hashed from k) repeated
 *              over the image, so every receptive field of a strided CNN sees the
 *              label; input [C, h, w] (after Scodellaro et al. 2023).
 *   none     - no label: the image alone, input [C, h, w], whatever the
 *              label (train.loss competition reads the class from the output).
 * Label 255 (FF_LABEL_NEUTRAL) embeds the neutral label: 0.1 in every label slot.
 * Negative labels are never the true label. */
#ifndef FF_EMBED_H
#define FF_EMBED_H

#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/config.h"
#include "ff/shape.h"

#define FF_LABEL_NEUTRAL 255
#define FF_LABEL_NONE 254      /* the image alone (unsupervised nets; kind overlay) */
#define FF_NUM_CLASSES 10

struct ff_rng;

/* Shape of an embedded input for images of shape `image` (C x h x w). */
ff_shape ff_embed_shape(ff_embed_kind kind, ff_shape image);

/* FF_OK if a label fits images of `image` with embedding `kind`, else FF_ERR_USAGE
 * saying why: overlay needs h * w >= 10 (the label takes the first 10 pixels);
 * channels and pattern fit any size. ff_net_build checks it for supervised nets. */
int ff_embed_check_shape(ff_embed_kind kind, ff_shape image, ff_err *err);

/* One image's augmentation (train.jitter, train.flip): mirrored left-right if flip,
 * then shifted dx pixels right and dy down, zeros shifted in; every channel alike. */
typedef struct ff_aug {
    int8_t dx, dy;
    uint8_t flip;
} ff_aug;

/* out[i] = embed(images[idx[i]], labels[i]) for i < batch; idx NULL means i.
 * out has ff_shape_dim(ff_embed_shape(...)) floats per sample. With labels, the
 * label must fit the images (ff_embed_check_shape; asserted). */
void ff_embed_batch(ff_embed_kind kind, const float *images, ff_shape image, const int *idx,
                    const uint8_t *labels, int batch, float *out);

/* As ff_embed_batch with sample i's image augmented by aug[i] before the label goes
 * in, so the label pixels never move. aug NULL: none. labels NULL: no label at all
 * (the image alone, for unsupervised nets; use kind FF_EMBED_OVERLAY). */
void ff_embed_batch_aug(ff_embed_kind kind, const float *images, ff_shape image, const int *idx,
                        const uint8_t *labels, const ff_aug *aug, int batch, float *out);

/* The 10 label values an overlay or channels embedding put into one embedded
 * sample x (images of shape `image`): 1 at the label, 0 elsewhere; 0.1 each for the
 * neutral label. */
void ff_embed_read_label(ff_embed_kind kind, const float *x, ff_shape image,
                         float out[FF_NUM_CLASSES]);

/* Draws each of n images' augmentation: a shift in [-max_shift, max_shift]^2 (jitter)
 * and, with flip, a mirror with probability 1/2. */
void ff_embed_draw_aug(struct ff_rng *rng, int max_shift, int flip, int n, ff_aug *aug);

/* A uniformly drawn wrong label for each true label. */
void ff_embed_negatives_random(struct ff_rng *rng, const uint8_t *labels, int n, uint8_t *out);

/* out[i * m + 0..m) = the m wrong labels with the highest scores[i, :] (scores
 * [n, 10]), best first (ties: the smaller label); 1 <= m <= 9. */
void ff_embed_top_wrong_labels(const uint8_t *labels, const float *scores, int n, int m, uint8_t *out);

/* A wrong label drawn in proportion to softmax(scores[i, :] / temperature) with
 * the true label excluded; scores is [n, 10] (e.g. the model's logit per label;
 * -INFINITY: never drawn, but at least one wrong label's score must be finite).
 * temperature > 0: near 0 always the top wrong label, large: nearly uniform. */
void ff_embed_negatives_hard(struct ff_rng *rng, const uint8_t *labels, const float *scores, int n,
                             float temperature, uint8_t *out);

#endif
