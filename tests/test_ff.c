/* test_ff.c - the FF training core: label embedding and negatives (pitfalls),
 * alternating vs joint passes, optimiser settings, schedules, evaluation
 * readout and model files. */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ff/checkpoint.h"
#include "ff/crc32c.h"
#include "ff/data.h"
#include "ff/embed.h"
#include "ff/eval.h"
#include "ff/net.h"
#include "ff/objective.h"
#include "ff/optim.h"
#include "ff/rng.h"
#include "test.h"

static ff_config small_config(int n_layers, int units)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.model.n_layers = n_layers;
    for (int l = 0; l < n_layers; l++)
        cfg.model.layers[l] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = units};
    return cfg;
}

static void fill_images(ff_rng *r, float *img, int n, int dim)
{
    for (int i = 0; i < n * dim; i++)
        img[i] = ff_rng_uniform(r) < 0.7f ? 0.0f : ff_rng_uniform(r);
    for (int i = 0; i < n; i++)
        memset(img + (size_t)i * dim, 0, 10 * sizeof(float)); /* MNIST's row 0 is blank */
}

/* pitfall: a negative label must never equal the true label */
static void test_negative_labels_never_true(void)
{
    ff_rng r;
    ff_rng_seed(&r, 3);
    enum { N = 90000 };
    static uint8_t truth[N], neg[N];
    int count[10][10] = {{0}};
    for (int i = 0; i < N; i++)
        truth[i] = (uint8_t)(i % 10);
    ff_embed_negatives_random(&r, truth, N, neg);
    int same = 0;
    for (int i = 0; i < N; i++) {
        same += neg[i] == truth[i];
        CHECK(neg[i] < 10);
        count[truth[i]][neg[i]]++;
    }
    CHECK(same == 0);
    /* uniform over the 9 wrong labels: 1000 expected per cell */
    for (int t = 0; t < 10; t++)
        for (int k = 0; k < 10; k++)
            if (k != t)
                CHECK(count[t][k] > 850 && count[t][k] < 1150);
}

static void test_hard_negatives_never_true(void)
{
    ff_rng r;
    ff_rng_seed(&r, 4);
    enum { N = 2000 };
    static uint8_t truth[N], neg[N];
    static float scores[N * 10];
    for (int i = 0; i < N; i++) {
        truth[i] = (uint8_t)(i % 10);
        for (int k = 0; k < 10; k++)
            scores[i * 10 + k] = 0.0f;
        scores[i * 10 + truth[i]] = 100.0f;           /* the true label scores highest */
        scores[i * 10 + (truth[i] + 3) % 10] = 5.0f;  /* the most confusable wrong label */
    }
    /* temperature T: p(confusable) = e^(5/T) / (e^(5/T) + 8) */
    const float temps[3] = {1.0f, 5.0f, 0.05f};
    const double lo[3] = {0.92, 0.22, 0.999}, hi[3] = {0.975, 0.29, 1.0};
    for (int t = 0; t < 3; t++) {
        ff_embed_negatives_hard(&r, truth, scores, N, temps[t], neg);
        int same = 0, confusable = 0;
        for (int i = 0; i < N; i++) {
            same += neg[i] == truth[i];
            confusable += neg[i] == (truth[i] + 3) % 10;
        }
        CHECK(same == 0);
        CHECK(confusable >= N * lo[t] && confusable <= N * hi[t]);
    }
}

/* candidates for hard negatives: the m best-scored wrong labels, best first; the draw
 * never picks a label scored -INFINITY */
static void test_hard_negative_candidates(void)
{
    const uint8_t truth[2] = {3, 0};
    const float scores[20] = {0.5f, 0.1f, 0.9f, 9.0f, 0.2f, 0.9f, -1.0f, 0.3f, 0.0f, 0.4f,
                              7.0f, 2.0f, 1.0f, 3.0f, 3.0f, 0.0f, 0.0f, 0.0f, 0.0f, 5.0f};
    uint8_t top[6];
    ff_embed_top_wrong_labels(truth, scores, 2, 3, top);
    /* image 0 (true 3): 0.9 at labels 2 and 5 (tie: smaller first), then 0.5 at 0 */
    CHECK(top[0] == 2 && top[1] == 5 && top[2] == 0);
    /* image 1 (true 0, its 7.0 skipped): 5.0 at 9, then the 3.0 tie at 3 and 4 */
    CHECK(top[3] == 9 && top[4] == 3 && top[5] == 4);

    ff_rng r;
    ff_rng_seed(&r, 12);
    enum { N = 3000 };
    static uint8_t t[N], neg[N];
    static float s[N * 10];
    int count[10] = {0};
    for (int i = 0; i < N; i++) {
        t[i] = (uint8_t)(i % 10);
        for (int k = 0; k < 10; k++)
            s[i * 10 + k] = -INFINITY;
        s[i * 10 + (t[i] + 1) % 10] = 0.0f; /* two candidates, equally likely at T = 1 */
        s[i * 10 + (t[i] + 5) % 10] = 0.0f;
    }
    ff_embed_negatives_hard(&r, t, s, N, 1.0f, neg);
    int outside = 0;
    for (int i = 0; i < N; i++) {
        const int d = (neg[i] + 10 - t[i]) % 10;
        outside += d != 1 && d != 5;
        count[d]++;
    }
    CHECK(outside == 0);
    CHECK(count[1] > N * 0.45 && count[5] > N * 0.45);
}

/* pitfall: positives and negatives must be encoded identically (same range),
 * differing only in which label pixel is on */
static void test_positive_negative_same_range(void)
{
    ff_rng r;
    ff_rng_seed(&r, 5);
    enum { N = 64, DIM = 784 };
    static float img[N * DIM], pos[N * DIM], neg[N * DIM];
    uint8_t t[N], n[N];
    fill_images(&r, img, N, DIM);
    for (int i = 0; i < N; i++)
        t[i] = (uint8_t)(i % 10);
    ff_embed_negatives_random(&r, t, N, n);
    ff_embed_batch(FF_EMBED_OVERLAY, img, (ff_shape){1, 28, 28}, NULL, t, N, pos);
    ff_embed_batch(FF_EMBED_OVERLAY, img, (ff_shape){1, 28, 28}, NULL, n, N, neg);
    int differing = 0;
    float pmin = 1, pmax = 0, nmin = 1, nmax = 0;
    for (int i = 0; i < N * DIM; i++) {
        differing += pos[i] != neg[i];
        pmin = fminf(pmin, pos[i]), pmax = fmaxf(pmax, pos[i]);
        nmin = fminf(nmin, neg[i]), nmax = fmaxf(nmax, neg[i]);
    }
    CHECK(differing == 2 * N);  /* exactly the true and the wrong label pixel */
    CHECK(pmin == 0.0f && nmin == 0.0f && pmax == 1.0f && nmax == 1.0f);
    for (int i = 0; i < N; i++) {
        CHECK(pos[i * DIM + t[i]] == 1.0f && neg[i * DIM + n[i]] == 1.0f);
        CHECK(pos[i * DIM + n[i]] == 0.0f && neg[i * DIM + t[i]] == 0.0f);
    }
    /* after the layer-input normalisation both have mean square 1 */
    ff_objective_normalize(pos, pos, N, DIM, 1e-8f);
    ff_objective_normalize(neg, neg, N, DIM, 1e-8f);
    for (int i = 0; i < N; i++) {
        float gp, gn;
        ff_objective_goodness(pos + i * DIM, 1, DIM, &gp);
        ff_objective_goodness(neg + i * DIM, 1, DIM, &gn);
        CHECK_NEAR(gp / DIM, 1.0, 1e-4);
        CHECK_NEAR(gn / DIM, 1.0, 1e-4);
    }
}

static void test_neutral_and_channels_embedding(void)
{
    float img[784], out[11 * 784];
    for (int i = 0; i < 784; i++)
        img[i] = (float)(i % 7) / 7.0f;
    uint8_t neutral = FF_LABEL_NEUTRAL, three = 3;
    ff_embed_batch(FF_EMBED_OVERLAY, img, (ff_shape){1, 28, 28}, NULL, &neutral, 1, out);
    for (int k = 0; k < 10; k++)
        CHECK(out[k] == 0.1f);
    CHECK(memcmp(out + 10, img + 10, sizeof(float) * 774) == 0);
    ff_shape s = ff_embed_shape(FF_EMBED_CHANNELS, (ff_shape){1, 28, 28});
    CHECK(s.c == 11 && s.h == 28 && s.w == 28);
    ff_embed_batch(FF_EMBED_CHANNELS, img, (ff_shape){1, 28, 28}, NULL, &three, 1, out);
    CHECK(memcmp(out, img, sizeof img) == 0); /* the image itself is untouched */
    for (int k = 0; k < 10; k++)
        for (int p = 0; p < 784; p += 97)
            CHECK(out[(1 + k) * 784 + p] == (k == 3 ? 1.0f : 0.0f));
}

static void test_jitter_shifts_image_not_label(void)
{
    float img[28 * 28], out[28 * 28];
    for (int i = 0; i < 28 * 28; i++)
        img[i] = (float)(i % 13) / 13.0f;
    uint8_t label = 4;
    ff_aug shift = {2, -1, 0}; /* right 2, up 1 */
    ff_embed_batch_aug(FF_EMBED_OVERLAY, img, (ff_shape){1, 28, 28}, NULL, &label, &shift, 1, out);
    for (int k = 0; k < 10; k++)
        CHECK(out[k] == (k == 4 ? 1.0f : 0.0f)); /* the label stays in place */
    /* rows 0..26 hold image rows 1..27 moved right by 2 (row 0's first 10 pixels: the label) */
    int checked = 0;
    for (int r = 0; r < 27; r++)
        for (int c = 0; c < 28; c++) {
            float want = c - 2 >= 0 ? img[(r + 1) * 28 + c - 2] : 0.0f;
            if (r > 0 || c >= 10) {
                CHECK(out[r * 28 + c] == want);
                checked++;
            }
        }
    CHECK(checked == 27 * 28 - 10);
    CHECK(out[10] == img[28 + 8] && out[10] != 0.0f); /* row 0 is really checked: non-zero */
    for (int c = 0; c < 28; c++)
        CHECK(out[27 * 28 + c] == 0.0f); /* vacated bottom row */
    ff_rng r;
    ff_rng_seed(&r, 12);
    ff_aug a[1000];
    int seen[5] = {0};
    ff_embed_draw_aug(&r, 2, 0, 1000, a);
    for (int i = 0; i < 1000; i++) {
        CHECK(a[i].dx >= -2 && a[i].dx <= 2 && a[i].dy >= -2 && a[i].dy <= 2 && a[i].flip == 0);
        seen[a[i].dx + 2]++;
        seen[a[i].dy + 2]++;
    }
    for (int v = 0; v < 5; v++)
        CHECK(seen[v] > 300);
}

/* Colour images (C = 3): every embedding against a naive loop over (channel, row,
 * column), with shifts and flips; the label never moves with the image, a positive
 * and its negative share the augmentation, and the label is read back. */
static float naive_aug_pixel(const float *img, ff_shape s, ff_aug a, int c, int r, int x)
{
    int sr = r - a.dy, sx = x - a.dx;
    if (a.flip)
        sx = s.w - 1 - sx;
    if (sr < 0 || sr >= s.h || sx < 0 || sx >= s.w)
        return 0.0f;
    return img[((size_t)c * s.h + sr) * s.w + sx];
}

static void test_colour_embeddings_naive(void)
{
    const ff_shape s = {3, 5, 7};
    const int dim = ff_shape_dim(s), N = 6;
    float img[3 * 5 * 7 * 2];
    ff_rng r;
    ff_rng_seed(&r, 5);
    fill_images(&r, img, 2, dim);
    const int idx[6] = {0, 1, 1, 0, 1, 0};
    const uint8_t labels[6] = {3, 7, FF_LABEL_NEUTRAL, 0, 9, 5};
    const ff_aug aug[6] = {{0, 0, 0}, {1, 0, 0}, {0, 0, 1}, {-2, 1, 1}, {3, -1, 0}, {1, 2, 1}};
    int bad = 0, checked = 0;
    for (int kind = 0; kind < FF_EMBED_COUNT; kind++) {
        const ff_shape es = ff_embed_shape((ff_embed_kind)kind, s);
        CHECK(es.h == 5 && es.w == 7 && es.c == (kind == FF_EMBED_CHANNELS ? 13 : 3));
        const int edim = ff_shape_dim(es);
        float *out = malloc(sizeof(float) * (size_t)N * edim);
        ff_embed_batch_aug((ff_embed_kind)kind, img, s, idx, labels, aug, N, out);
        for (int i = 0; i < N; i++) {
            const float *o = out + (size_t)i * edim, *src = img + (size_t)idx[i] * dim;
            for (int c = 0; c < es.c; c++)
                for (int y = 0; y < 5; y++)
                    for (int x = 0; x < 7; x++) {
                        const float v = o[((size_t)c * 5 + y) * 7 + x];
                        const int k = y * 7 + x; /* pixel index within a plane */
                        float onehot_k = labels[i] == FF_LABEL_NEUTRAL ? 0.1f
                                         : (k == labels[i] ? 1.0f : 0.0f);
                        float want;
                        if (c >= 3) /* channels: plane 3 + j is label j's */
                            want = labels[i] == FF_LABEL_NEUTRAL ? 0.1f
                                   : (c - 3 == labels[i] ? 1.0f : 0.0f);
                        else if (kind == FF_EMBED_OVERLAY && k < 10)
                            want = onehot_k; /* every channel's first 10 pixels */
                        else {
                            want = naive_aug_pixel(src, s, aug[i], c, y, x);
                            if (kind == FF_EMBED_PATTERN) { /* the same tile in every channel */
                                float tile[36];
                                ff_embed_batch(FF_EMBED_PATTERN, (const float[36]){0}, (ff_shape){1, 6, 6},
                                               NULL, &labels[i], 1, tile); /* 0.5 * P on black */
                                want = 0.5f * want + tile[(y % 6) * 6 + x % 6];
                            }
                        }
                        bad += fabsf(v - want) > 1e-6f;
                        checked++;
                    }
            if (kind == FF_EMBED_OVERLAY || kind == FF_EMBED_CHANNELS) {
                float back[FF_NUM_CLASSES];
                ff_embed_read_label((ff_embed_kind)kind, o, s, back);
                for (int j = 0; j < FF_NUM_CLASSES; j++)
                    bad += back[j] != (labels[i] == FF_LABEL_NEUTRAL ? 0.1f
                                       : (j == labels[i] ? 1.0f : 0.0f));
            }
        }
        free(out);
    }
    CHECK(bad == 0);
    CHECK(checked == N * dim * 3 + N * 13 * 35);
    /* the flip draws: about half flipped, shifts unchanged by asking for flips */
    ff_aug a[2000], b[2000];
    ff_rng r1, r2;
    ff_rng_seed(&r1, 9);
    ff_rng_seed(&r2, 9);
    ff_embed_draw_aug(&r1, 4, 1, 2000, a);
    ff_embed_draw_aug(&r2, 4, 0, 1000, b);
    int flips = 0, range = 0;
    for (int i = 0; i < 2000; i++) {
        flips += a[i].flip;
        range += a[i].dx < -4 || a[i].dx > 4 || a[i].dy < -4 || a[i].dy > 4 || a[i].flip > 1;
    }
    CHECK(range == 0 && flips > 900 && flips < 1100);
    CHECK(a[0].dx == b[0].dx && a[0].dy == b[0].dy && b[0].flip == 0);
}

static void test_pattern_embedding(void)
{
    float img[28 * 28], a[28 * 28], b[28 * 28], n[28 * 28];
    for (int i = 0; i < 28 * 28; i++)
        img[i] = (float)(i % 5) / 4.0f;
    uint8_t la = 2, lb = 7, neutral = FF_LABEL_NEUTRAL;
    ff_embed_batch(FF_EMBED_PATTERN, img, (ff_shape){1, 28, 28}, NULL, &la, 1, a);
    ff_embed_batch(FF_EMBED_PATTERN, img, (ff_shape){1, 28, 28}, NULL, &lb, 1, b);
    ff_embed_batch(FF_EMBED_PATTERN, img, (ff_shape){1, 28, 28}, NULL, &neutral, 1, n);
    int differ = 0, over_image = 0;
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++) {
            int i = r * 28 + c;
            CHECK(a[i] >= 0.0f && a[i] <= 1.0f && b[i] >= 0.0f && b[i] <= 1.0f);
            float pa = 2 * a[i] - img[i]; /* the pattern bit */
            CHECK(fabsf(pa) < 1e-6f || fabsf(pa - 1.0f) < 1e-6f);
            if (r >= 6 && c >= 6) /* a 6x6 tile repeated */
                CHECK(a[i] - 0.5f * img[i] == a[(r - 6) * 28 + c - 6] - 0.5f * img[(r - 6) * 28 + c - 6]);
            differ += a[i] != b[i];
            over_image += a[i] != b[i] && r >= 14 && c >= 14;
            CHECK(n[i] > 0.5f * img[i] - 1e-6f && n[i] < 0.5f * img[i] + 0.5f + 1e-6f);
        }
    CHECK(differ > 100);
    CHECK(over_image > 25); /* the label reaches the far corner, unlike the overlay */
    /* the neutral label's pattern is the mean of the ten label patterns */
    static float all[10][28 * 28];
    for (int k = 0; k < 10; k++) {
        uint8_t lk = (uint8_t)k;
        ff_embed_batch(FF_EMBED_PATTERN, img, (ff_shape){1, 28, 28}, NULL, &lk, 1, all[k]);
    }
    for (int i = 0; i < 28 * 28; i++) {
        float mean = 0.0f;
        for (int k = 0; k < 10; k++)
            mean += all[k][i] - 0.5f * img[i];
        CHECK_NEAR(n[i] - 0.5f * img[i], mean / 10.0f, 1e-6);
    }
}

/* ff_objective: a table entry for every train.loss kind of the config enum
 * (each reachable from the schema's name and back), none past the end */
static void test_objective_covers_every_loss(void)
{
    const float y[2 * 3] = {1, 2, 0, 1, 1, 0}; /* one positive row, one negative row */
    for (int k = 0; k < FF_LOSS_COUNT; k++) {
        ff_config cfg, back;
        ff_config_defaults(&cfg);
        cfg.model.n_layers = 1;
        cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 3};
        cfg.train.passes = FF_PASS_JOINT; /* the pairwise loss needs it */
        cfg.train.loss = (ff_loss_kind)k;
        if (k == FF_LOSS_COMPETITION) { /* no label in the input: classes from the groups */
            cfg.model.label_embedding = FF_EMBED_NONE;
            cfg.train.logit_scale = 10.0f;
        }
        ff_objective o;
        CHECK(ff_objective_from_config(&o, &cfg, NULL) == FF_OK && o.loss == (ff_loss_kind)k);
        char yaml[8192];
        CHECK(ff_config_to_yaml(&cfg, yaml, sizeof yaml) < sizeof yaml);
        ff_err err;
        CHECK(ff_config_parse(&back, yaml, strlen(yaml), "roundtrip", &err) == FF_OK);
        CHECK(back.train.loss == (ff_loss_kind)k);
        ff_layer_loss r = {0};
        if (k == FF_LOSS_COMPETITION) { /* one image of class 2, one unit per class group */
            const float y10[10] = {1, 1, 1, 1, 0, 1, 1, 1, 1, 1};
            const uint8_t label = 2;
            float g[FF_CLASS_GROUPS], dpre[10];
            CHECK(ff_objective_scratch(&o, 3) == 3 * FF_CLASS_GROUPS);
            ff_objective_layer_loss(&o, y10, &label, 1, 0, 10, 0.0f, 1.0f, NULL, g, dpre, &r);
            CHECK(isfinite(r.loss_pos) && r.loss_pos > 0.0f && r.loss_neg == 0.0f);
            CHECK(dpre[2] < 0.0f && dpre[0] > 0.0f); /* its class up, the others down */
            CHECK(dpre[4] == 0.0f);                  /* ReLU mask */
            continue;
        }
        float g[2], dpre[6];
        CHECK(ff_objective_scratch(&o, 2) == 2);
        ff_objective_layer_loss(&o, y, NULL, 1, 1, 3, 4.0f, 1.0f, NULL, g, dpre, &r);
        CHECK(isfinite(r.loss_pos + r.loss_neg) && r.loss_pos + r.loss_neg > 0.0f);
        CHECK(dpre[0] < 0.0f && dpre[3] > 0.0f); /* positives pulled up, negatives down */
        CHECK(dpre[2] == 0.0f && dpre[5] == 0.0f); /* ReLU mask */
    }
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.train.loss = FF_LOSS_COUNT;
    ff_objective o;
    ff_err err;
    CHECK(ff_objective_from_config(&o, &cfg, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "train.loss") != NULL);
}

/* threshold and pairwise on a hand-computed case: positive row y = (1, 2, 0)
 * (g = 5), negative row (1, 1, 0) (g = 2), theta 4, slope 1, scale 1 */
static void test_objective_hand_computed(void)
{
    const float y[2 * 3] = {1, 2, 0, 1, 1, 0};
    ff_config cfg;
    ff_config_defaults(&cfg);
    ff_objective o;
    CHECK(ff_objective_from_config(&o, &cfg, NULL) == FF_OK);
    CHECK(o.loss == FF_LOSS_THRESHOLD && ff_objective_slope(&o, 3) == 1.0f);
    float g[2], dpre[6];
    ff_layer_loss r = {0};
    ff_objective_layer_loss(&o, y, NULL, 1, 1, 3, 4.0f, 1.0f, NULL, g, dpre, &r);
    /* softplus(4 - 5) = log(1 + e^-1); softplus(2 - 4) = log(1 + e^-2) */
    CHECK_NEAR(r.loss_pos, 0.31326169, 1e-6);
    CHECK_NEAR(r.loss_neg, 0.12692801, 1e-6);
    CHECK(r.g_pos == 5.0f && r.g_neg == 2.0f && r.peer_loss == 0.0f);
    /* dpre = -2 sigmoid(-1) y for the positive, +2 sigmoid(-2) y for the negative */
    CHECK_NEAR(dpre[0], -0.53788284, 1e-6);
    CHECK_NEAR(dpre[1], -1.07576569, 1e-6);
    CHECK_NEAR(dpre[3], 0.23840584, 1e-6);
    CHECK_NEAR(dpre[4], 0.23840584, 1e-6);
    CHECK(dpre[2] == 0.0f && dpre[5] == 0.0f);

    /* pairwise: softplus(g_neg - g_pos) = log(1 + e^-3), all in loss_pos; no threshold */
    cfg.train.loss = FF_LOSS_PAIRWISE;
    CHECK(ff_objective_from_config(&o, &cfg, NULL) == FF_OK);
    r = (ff_layer_loss){0};
    ff_objective_layer_loss(&o, y, NULL, 1, 1, 3, 4.0f, 1.0f, NULL, g, dpre, &r);
    CHECK_NEAR(r.loss_pos, 0.04858735, 1e-6);
    CHECK(r.loss_neg == 0.0f && r.g_pos == 5.0f && r.g_neg == 2.0f);
    CHECK_NEAR(dpre[0], -0.09485175, 1e-6); /* -2 sigmoid(-3) y */
    CHECK_NEAR(dpre[1], -0.18970349, 1e-6);
    CHECK_NEAR(dpre[3], 0.09485175, 1e-6);
    CHECK_NEAR(dpre[4], 0.09485175, 1e-6);
    ff_objective_layer_loss(&o, y, NULL, 1, 1, 3, 100.0f, 1.0f, NULL, g, dpre, &r);
    CHECK_NEAR(r.loss_pos, 0.04858735, 1e-6); /* theta plays no part */

    /* train.logit_scale 6 on 3 units: slope 2, softplus(2 (g_neg - g_pos)) */
    cfg.train.logit_scale = 6.0f;
    CHECK(ff_objective_from_config(&o, &cfg, NULL) == FF_OK);
    CHECK(ff_objective_slope(&o, 3) == 2.0f);
    ff_objective_layer_loss(&o, y, NULL, 1, 1, 3, 4.0f, 0.5f, NULL, g, dpre, &r);
    CHECK_NEAR(r.loss_pos, 0.5 * log1p(exp(-6.0)), 1e-6);

    /* competition, 20 units in 10 groups of 2, class 1, logit_scale 10 (slope 1/2):
     * G = (0, 8, 2, 0, ...), E = 10, z_k = slope * 20 * G_k / E = G_k,
     * loss = log(e^8 + e^2 + 8) - 8; g_pos = 8, g_neg = 2 / 9 */
    float yc[20] = {0};
    yc[2] = 2.0f, yc[3] = 2.0f; /* group 1 */
    yc[4] = 1.0f, yc[5] = 1.0f; /* group 2 */
    const uint8_t cls = 1;
    cfg.train.loss = FF_LOSS_COMPETITION;
    cfg.train.logit_scale = 10.0f;
    CHECK(ff_objective_from_config(&o, &cfg, NULL) == FF_OK);
    float gc[FF_CLASS_GROUPS], dc[20];
    r = (ff_layer_loss){0};
    ff_objective_layer_loss(&o, yc, &cls, 1, 0, 20, 0.0f, 1.0f, NULL, gc, dc, &r);
    const double Z = exp(8.0) + exp(2.0) + 8.0;
    CHECK_NEAR(r.loss_pos, log(Z) - 8.0, 1e-5);
    CHECK_NEAR(r.g_pos, 8.0, 1e-6);
    CHECK_NEAR(r.g_neg, 2.0 / 9.0, 1e-6);
    /* dL/dy_u = 2 slope dim y_u / E ((p_k - [k = 1]) - sum_j (p_j - [j = 1]) G_j / E) */
    const double p1 = exp(8.0) / Z, p2 = exp(2.0) / Z;
    const double dot = (p1 - 1.0) * 0.8 + p2 * 0.2;
    CHECK_NEAR(dc[2], 2.0 * 0.5 * 20 * 2.0 / 10.0 * ((p1 - 1.0) - dot), 1e-5);
    CHECK_NEAR(dc[4], 2.0 * 0.5 * 20 * 1.0 / 10.0 * (p2 - dot), 1e-5);
    CHECK(dc[0] == 0.0f && dc[19] == 0.0f); /* inactive units */
    /* scale invariance: twice the activity, the same loss */
    for (int i = 0; i < 20; i++)
        yc[i] *= 2.0f;
    ff_layer_loss r2 = {0};
    ff_objective_layer_loss(&o, yc, &cls, 1, 0, 20, 0.0f, 1.0f, NULL, gc, dc, &r2);
    CHECK_NEAR(r2.loss_pos, r.loss_pos, 1e-6);
}

/* the objective a trainer would build from cfg */
static ff_objective objective_of(const ff_config *cfg)
{
    ff_objective o;
    CHECK(ff_objective_from_config(&o, cfg, NULL) == FF_OK);
    return o;
}

/* positive and negative passed separately give the same gradient as one joint
 * pass when the weights are not changed in between */
static void test_alternate_equals_joint(void)
{
    ff_config cfg = small_config(3, 32);
    ff_rng r;
    ff_rng_seed(&r, 6);
    ff_net net;
    ff_err err;
    enum { B = 16, DIM = 784 };
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 2 * B, &r, &err) == FF_OK);
    static float x[2 * B * DIM];
    fill_images(&r, x, 2 * B, DIM);
    float *sum = calloc(net.n_params, sizeof(float));
    ff_layer_loss lp[FF_MAX_LAYERS], ln[FF_MAX_LAYERS], lj[FF_MAX_LAYERS];
    const ff_objective obj = objective_of(&cfg);
    ff_net_ff_grads(&net, &obj, x, NULL, B, 0, 1.0f / B, lp);
    memcpy(sum, net.grads, net.n_params * sizeof(float));
    ff_net_ff_grads(&net, &obj, x + B * DIM, NULL, 0, B, 1.0f / B, ln);
    for (size_t i = 0; i < net.n_params; i++)
        sum[i] += net.grads[i];
    ff_net_ff_grads(&net, &obj, x, NULL, B, B, 1.0f / B, lj);
    double maxdiff = 0, maxabs = 0;
    for (size_t i = 0; i < net.n_params; i++) {
        maxdiff = fmax(maxdiff, fabs(sum[i] - net.grads[i]));
        maxabs = fmax(maxabs, fabs(net.grads[i]));
    }
    CHECK(maxabs > 0);
    CHECK(maxdiff <= 1e-5 * maxabs + 1e-7);
    for (int l = 0; l < 3; l++) {
        CHECK_NEAR(lp[l].loss_pos, lj[l].loss_pos, 1e-5);
        CHECK_NEAR(ln[l].loss_neg, lj[l].loss_neg, 1e-5);
        CHECK(lp[l].loss_neg == 0.0f && ln[l].loss_pos == 0.0f);
    }
    free(sum);
    ff_net_free(&net);
}

/* ff_net_use_buffers: the net reads its weights from and writes its gradients to the
 * given buffers (what data parallel's shared memory needs), bit for bit as from its
 * own; its own buffers are untouched meanwhile and serve again once pointed back */
static void test_net_use_buffers(void)
{
    ff_config cfg = small_config(3, 32);
    ff_rng r;
    ff_rng_seed(&r, 7);
    ff_net net;
    enum { B = 8, DIM = 784 };
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 2 * B, &r, NULL) == FF_OK);
    static float x[2 * B * DIM];
    fill_images(&r, x, 2 * B, DIM);
    const ff_objective obj = objective_of(&cfg);
    const size_t n = net.n_params;
    float *g0 = malloc(n * sizeof(float)), *p = malloc(n * sizeof(float)),
          *g = malloc(n * sizeof(float));
    ff_layer_loss a[FF_MAX_LAYERS], b[FF_MAX_LAYERS];
    ff_net_ff_grads(&net, &obj, x, NULL, B, B, 1.0f / B, a);
    memcpy(g0, net.grads, n * sizeof(float));
    float *own_p = net.params, *own_g = net.grads;
    memcpy(p, own_p, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        own_g[i] = -7.0f; /* must stay: the net writes g now */
    ff_net_use_buffers(&net, p, g);
    CHECK(net.layers[2].W == p + net.layers[2].param_off && net.layers[1].gb == g + net.layers[1].param_off + net.layers[1].n_weights);
    ff_net_ff_grads(&net, &obj, x, NULL, B, B, 1.0f / B, b);
    CHECK(memcmp(g, g0, n * sizeof(float)) == 0);
    int untouched = 1;
    for (size_t i = 0; i < n; i++)
        untouched &= own_g[i] == -7.0f;
    CHECK(untouched);
    for (int l = 0; l < 3; l++)
        CHECK(a[l].loss_pos == b[l].loss_pos && a[l].loss_neg == b[l].loss_neg);
    for (size_t i = 0; i < net.layers[0].n_weights; i++) /* the net reads the new weights */
        p[i] *= 1.5f;
    ff_net_ff_grads(&net, &obj, x, NULL, B, B, 1.0f / B, b);
    CHECK(memcmp(g, g0, n * sizeof(float)) != 0);
    ff_net_use_buffers(&net, own_p, own_g);
    ff_net_ff_grads(&net, &obj, x, NULL, B, B, 1.0f / B, b);
    CHECK(memcmp(own_g, g0, n * sizeof(float)) == 0);
    free(g0);
    free(p);
    free(g);
    ff_net_free(&net);
}

/* the loss a pass reports is the batch mean of the per-sample softplus */
static void test_pass_loss_is_mean_of_per_sample(void)
{
    ff_config cfg = small_config(1, 20);
    cfg.model.layers[0].threshold = 15.0f;
    ff_rng r;
    ff_rng_seed(&r, 8);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 8, &r, NULL) == FF_OK);
    static float x[8 * 784];
    fill_images(&r, x, 8, 784);
    ff_layer_loss lj;
    ff_objective obj = objective_of(&cfg);
    ff_net_ff_grads(&net, &obj, x, NULL, 5, 3, 1.0f / 5, &lj);
    double lp = 0, ln = 0;
    for (int i = 0; i < 8; i++) {
        float g;
        ff_objective_goodness(net.out[0] + i * 20, 1, 20, &g);
        if (i < 5)
            lp += log1p(exp(15.0 - g));
        else
            ln += log1p(exp(g - 15.0));
    }
    CHECK(net.layers[0].threshold == 15.0f);
    CHECK_NEAR(lj.loss_pos, lp / 5, 1e-4);
    CHECK_NEAR(lj.loss_neg, ln / 5, 1e-4);
    ff_net_free(&net);

    /* train.logit_scale s: softplus(s (theta - g) / units), from the same weights */
    cfg.train.logit_scale = 4.0f;
    ff_rng_seed(&r, 8);
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 8, &r, NULL) == FF_OK);
    CHECK_NEAR(net.layers[0].slope, 4.0 / 20, 1e-7);
    obj = objective_of(&cfg);
    ff_net_ff_grads(&net, &obj, x, NULL, 5, 3, 1.0f / 5, &lj);
    lp = ln = 0;
    for (int i = 0; i < 8; i++) {
        float g;
        ff_objective_goodness(net.out[0] + i * 20, 1, 20, &g);
        if (i < 5)
            lp += log1p(exp(0.2 * (15.0 - g)));
        else
            ln += log1p(exp(0.2 * (g - 15.0)));
    }
    CHECK_NEAR(lj.loss_pos, lp / 5, 1e-4);
    CHECK_NEAR(lj.loss_neg, ln / 5, 1e-4);
    ff_net_free(&net);

    /* train.loss pairwise: softplus(0.2 (g_neg_i - g_pos_i)) over the pairs (row i, row 4 + i),
     * no threshold */
    cfg.train.loss = FF_LOSS_PAIRWISE;
    ff_rng_seed(&r, 8);
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 8, &r, NULL) == FF_OK);
    obj = objective_of(&cfg);
    CHECK(obj.loss == FF_LOSS_PAIRWISE);
    ff_net_ff_grads(&net, &obj, x, NULL, 4, 4, 1.0f / 4, &lj);
    double lpair = 0.0, gpos = 0.0, gneg = 0.0;
    for (int i = 0; i < 4; i++) {
        float gp, gn;
        ff_objective_goodness(net.out[0] + i * 20, 1, 20, &gp);
        ff_objective_goodness(net.out[0] + (4 + i) * 20, 1, 20, &gn);
        lpair += log1p(exp(0.2 * ((double)gn - gp)));
        gpos += gp / 4.0, gneg += gn / 4.0;
    }
    CHECK_NEAR(lj.loss_pos + lj.loss_neg, lpair / 4, 1e-4);
    CHECK_NEAR(lj.g_pos, gpos, 1e-3 * gpos);
    CHECK_NEAR(lj.g_neg, gneg, 1e-3 * gneg);
    ff_net_free(&net);
}

/* model.label_every_layer: layer l > 0 reads the normalised output of layer
 * l - 1 followed by 10 planes holding each row's own label (pitfalls: the
 * negative rows' planes carry their wrong label, never the true one; the
 * normalisation covers the previous layer's whole vector, not the planes), and
 * layer 1's gradients, label-plane weights included, match finite differences
 * of its own loss */
static void test_label_every_layer(void)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.model.label_embedding = FF_EMBED_CHANNELS;
    cfg.model.label_every_layer = 1;
    cfg.model.n_layers = 2;
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 3, .kernel = 4, .stride = 2};
    cfg.model.layers[1] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 4, .kernel = 2, .stride = 1};
    cfg.train.logit_scale = 2.0f; /* keep the logistic out of saturation */
    ff_rng r;
    ff_rng_seed(&r, 17);
    enum { N = 6, S = 8 };
    const ff_shape in = ff_embed_shape(FF_EMBED_CHANNELS, (ff_shape){1, S, S});
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, in, N, &r, NULL) == FF_OK);
    CHECK(net.layers[0].in.c == 11 && net.layers[0].out.h == 3);
    CHECK(net.layers[1].in.c == 3 + 10 && net.layers[1].in.h == 3);
    float img[N * S * S], x[N * 11 * S * S];
    fill_images(&r, img, N, S * S);
    uint8_t truth[N] = {0, 1, 2, 3, 4, 5}, labels[N];
    for (int i = 0; i < 3; i++)
        labels[i] = truth[i];                               /* positive rows */
    ff_embed_negatives_random(&r, truth + 3, 3, labels + 3); /* negative rows */
    ff_embed_batch(FF_EMBED_CHANNELS, img, (ff_shape){1, S, S}, NULL, labels, N, x);
    ff_layer_loss loss[2];
    const ff_objective obj = objective_of(&cfg);
    ff_net_ff_grads(&net, &obj, x, NULL, 3, 3, 1.0f / 3, loss);
    const int prev = 3 * 3 * 3, plane = 9, dim = prev + 10 * plane;
    for (int i = 0; i < N; i++) {
        const float *row = net.in[1] + (size_t)i * dim;
        double ms = 0;
        for (int j = 0; j < prev; j++)
            ms += (double)row[j] * row[j];
        CHECK_NEAR(ms / prev, 1.0, 1e-4);
        for (int k = 0; k < 10; k++)
            for (int p = 0; p < plane; p++)
                CHECK(row[prev + k * plane + p] == (k == labels[i] ? 1.0f : 0.0f));
        if (i >= 3)
            CHECK(row[prev + truth[i] * plane] == 0.0f);
    }
    /* the neutral label: 0.1 in every plane */
    uint8_t neutral = FF_LABEL_NEUTRAL;
    ff_embed_batch(FF_EMBED_CHANNELS, img, (ff_shape){1, S, S}, NULL, &neutral, 1, x);
    ff_net_forward(&net, x, 1);
    for (int j = prev; j < dim; j++)
        CHECK(net.in[1][j] == 0.1f);
    /* gradient check of layer 1 (its loss alone: no backprop between layers) */
    ff_embed_batch(FF_EMBED_CHANNELS, img, (ff_shape){1, S, S}, NULL, labels, N, x);
    ff_net_ff_grads(&net, &obj, x, NULL, 3, 3, 1.0f / 3, loss);
    const ff_layer *L = &net.layers[1];
    const size_t n1 = L->n_weights + L->n_bias;
    float *g = malloc(sizeof(float) * n1);
    memcpy(g, L->gW, sizeof(float) * n1);
    int checked = 0, on_planes = 0;
    const int K = L->in.c * 4;
    for (size_t k = 0; k < n1; k += 3) {
        const float h = 1e-2f, p0 = L->W[k];
        L->W[k] = p0 + h;
        ff_net_ff_grads(&net, &obj, x, NULL, 3, 3, 1.0f / 3, loss);
        double lp = (double)loss[1].loss_pos + loss[1].loss_neg;
        L->W[k] = p0 - h;
        ff_net_ff_grads(&net, &obj, x, NULL, 3, 3, 1.0f / 3, loss);
        double lm = (double)loss[1].loss_pos + loss[1].loss_neg;
        L->W[k] = p0;
        double fd = (lp - lm) / (2 * h);
        CHECK_NEAR(g[k], fd, 2e-3 + 3e-2 * fabs(fd));
        checked++;
        if (k < L->n_weights && (int)(k % (size_t)K) >= 3 * 4 && g[k] != 0.0f)
            on_planes++; /* a weight reading a label plane, with a gradient */
    }
    CHECK(checked > 40);
    CHECK(on_planes > 5);
    free(g);
    ff_net_free(&net);
}

/* peer loss of one positive pass, the running means reset to m0 first */
static double peer_loss_at(ff_net *net, const ff_objective *obj, const float *x, int n,
                           const float *m0)
{
    memcpy(net->aux, m0, sizeof(float) * net->n_aux);
    ff_layer_loss r;
    ff_net_ff_grads(net, obj, x, NULL, n, 0, 1.0f / n, &r);
    return (double)r.peer_loss;
}

/* peer normalisation: the running means follow the positive activities, and
 * the gradient it adds (with - without) matches finite differences of
 * strength * peer loss */
static void test_peer_normalisation_gradient(void)
{
    ff_config cfg = small_config(1, 6);
    cfg.train.peer_norm = 1.0f;
    cfg.train.peer_decay = 0.5f;
    ff_rng r;
    ff_rng_seed(&r, 11);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 3, 4}, 8, &r, NULL) == FF_OK);
    CHECK(net.n_aux == 6);
    ff_objective obj = objective_of(&cfg);
    float x[8 * 12], m0[6];
    for (int i = 0; i < 8 * 12; i++)
        x[i] = ff_rng_uniform(&r);
    for (int j = 0; j < 6; j++)
        m0[j] = 0.3f * (float)j;
    float *with = malloc(sizeof(float) * net.n_params);
    peer_loss_at(&net, &obj, x, 8, m0);
    memcpy(with, net.grads, sizeof(float) * net.n_params);
    for (int j = 0; j < 6; j++) { /* running mean: decay * old + (1 - decay) * batch mean */
        double col = 0;
        for (int i = 0; i < 8; i++)
            col += net.out[0][i * 6 + j];
        CHECK_NEAR(net.aux[j], 0.5 * m0[j] + 0.5 * col / 8, 1e-5);
    }
    obj.peer_strength = 0.0f;
    peer_loss_at(&net, &obj, x, 8, m0);
    obj.peer_strength = 1.0f;
    for (size_t k = 0; k < net.n_params; k++)
        with[k] -= net.grads[k]; /* with - without: the peer term's gradient */
    double maxg = 0;
    int checked = 0;
    for (size_t k = 0; k < net.n_params; k++) {
        double gpeer = with[k];
        maxg = fmax(maxg, fabs(gpeer));
        if (k % 3)
            continue;
        const float h = 1e-2f, p0 = net.params[k];
        net.params[k] = p0 + h;
        double lp = peer_loss_at(&net, &obj, x, 8, m0);
        net.params[k] = p0 - h;
        double lm = peer_loss_at(&net, &obj, x, 8, m0);
        net.params[k] = p0;
        double fd = (lp - lm) / (2 * h); /* strength 1 */
        CHECK_NEAR(gpeer, fd, 1e-4 + 3e-2 * fabs(fd));
        checked++;
    }
    CHECK(checked > 20);
    CHECK(maxg > 1e-3); /* the term is applied and not negligible here */
    free(with);
    ff_net_free(&net);
}

/* the objective's running statistics: its sizes and start for each loss, the net's aux
 * laid out from them, and ff_objective_peer_norm in blocks of columns against one block
 * and naive column means */
static void test_objective_running_statistics(void)
{
    const ff_shape out = {20, 4, 4};
    ff_objective o = {.loss = FF_LOSS_PAIRWISE, .comp_norm = FF_COMP_SAMPLE};
    CHECK(!ff_objective_batch_norm(&o) && ff_objective_channel_stats_floats(&o, out) == 0 &&
          ff_objective_channel_scratch(&o, 20) == 0);
    o.loss = FF_LOSS_COMPETITION;
    CHECK(!ff_objective_batch_norm(&o)); /* competition_norm sample: no statistics */
    for (int k = 0; k < 2; k++) {
        o.comp_norm = k ? FF_COMP_AFFINE : FF_COMP_BATCH;
        CHECK(ff_objective_batch_norm(&o) && ff_objective_channel_stats_floats(&o, out) == 41 &&
              ff_objective_channel_scratch(&o, 20) == 80);
        float st[41];
        memset(st, 0x7f, sizeof st);
        ff_objective_channel_stats_init(&o, out, st);
        for (int i = 0; i < 41; i++) /* means 0, variances 1, batches seen 0 */
            CHECK(st[i] == (i >= 20 && i < 40 ? 1.0f : 0.0f));
    }
    /* a competition net's aux: every layer's peer means, then its channel statistics */
    ff_config cfg = small_config(2, 20);
    cfg.train.loss = FF_LOSS_COMPETITION;
    cfg.train.competition_norm = FF_COMP_BATCH;
    cfg.model.label_embedding = FF_EMBED_NONE;
    cfg.mode = FF_MODE_SUPERVISED;
    ff_rng r;
    ff_rng_seed(&r, 3);
    ff_net net;
    ff_err err = {0};
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 3, 4}, 8, &r, &err) == FF_OK);
    CHECK(net.n_aux == 2 * 20 + 2 * 41);
    CHECK(net.peer_mean[1] == net.aux + 20 && net.comp_stats[0] == net.aux + 40 &&
          net.comp_stats[1] == net.aux + 81 && net.comp_scratch == net.aux + 122);
    CHECK(net.comp_stats[1][20] == 1.0f && net.comp_stats[1][40] == 0.0f);
    ff_net_free(&net);
    /* peer normalisation: 5 positive rows of 7 columns in blocks of 3 and of 7 */
    enum { N = 5, D = 7 };
    o = (ff_objective){.loss = FF_LOSS_THRESHOLD, .peer_strength = 0.5f, .peer_decay = 0.75f};
    float y[N * D], m3[D], m7[D], d3[N * D] = {0}, d7[N * D] = {0}, col[D], ones[D];
    for (int i = 0; i < N * D; i++)
        y[i] = ff_rng_normal(&r) > 0.0f ? ff_rng_uniform(&r) : 0.0f;
    for (int j = 0; j < D; j++)
        m3[j] = m7[j] = 0.1f * (float)j, ones[j] = 1.0f;
    const float l3 = ff_objective_peer_norm(&o, m3, y, N, D, NULL, col, ones, 3, d3);
    const float l7 = ff_objective_peer_norm(&o, m7, y, N, D, NULL, col, ones, 7, d7);
    double avg = 0.0, loss = 0.0;
    for (int j = 0; j < D; j++) {
        double c = 0.0;
        for (int i = 0; i < N; i++)
            c += y[i * D + j];
        const double m = 0.75 * 0.1 * j + 0.25 * c / N;
        CHECK_NEAR(m3[j], m, 1e-6);
        CHECK_NEAR(m3[j], m7[j], 1e-7);
        avg += m / D;
    }
    for (int j = 0; j < D; j++)
        loss += (m3[j] - avg) * (m3[j] - avg) / D;
    CHECK_NEAR(l3, loss, 1e-6);
    CHECK_NEAR(l3, l7, 1e-7);
    for (int i = 0; i < N * D; i++) { /* only active units, 0.5 * 2/D * (1 - decay)/N * (m - avg) */
        const double want = y[i] > 0.0f ? 0.5 * 2.0 / D * 0.25 / N * (m3[i % D] - avg) : 0.0;
        CHECK_NEAR(d3[i], want, 1e-7);
        CHECK_NEAR(d3[i], d7[i], 1e-8);
    }
}

static void run_optim(ff_config *cfg, int steps, float *p, int n)
{
    ff_optim o;
    const ff_optim_params op = ff_optim_params_from_config(cfg);
    CHECK(ff_optim_init(&o, &op, (size_t)n, NULL) == FF_OK);
    float g[64];
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < n; i++)
            g[i] = 0.5f + 0.01f * i - 0.1f * s;
        ff_optim_step(&o, p, g, cfg->optimizer.lr);
    }
    ff_optim_free(&o);
}

/* pitfall: every optimiser setting from the config must change the update,
 * and every parameter must be updated */
static void test_optimizer_settings_applied(void)
{
    enum { N = 64 };
    float base[N], p[N];
    for (int i = 0; i < N; i++)
        base[i] = 0.1f * (float)(i - 30);
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.optimizer.type = FF_OPT_SGD;
    cfg.optimizer.lr = 0.1f;
    cfg.optimizer.momentum = 0.0f;
    cfg.optimizer.weight_decay = 0.0f;
    memcpy(p, base, sizeof p);
    run_optim(&cfg, 1, p, N);
    for (int i = 0; i < N; i++)
        CHECK_NEAR(p[i], base[i] - 0.1f * (0.5f + 0.01f * i), 1e-6);
    /* each setting, changed alone, must change the result after 3 steps */
    float ref[N];
    memcpy(ref, base, sizeof ref);
    run_optim(&cfg, 3, ref, N);
    struct { const char *name; float *field; float value; ff_opt_kind kind; } knobs[] = {
        {"sgd lr", &cfg.optimizer.lr, 0.05f, FF_OPT_SGD},
        {"sgd momentum", &cfg.optimizer.momentum, 0.9f, FF_OPT_SGD},
        {"sgd weight_decay", &cfg.optimizer.weight_decay, 0.01f, FF_OPT_SGD},
        {"adam lr", &cfg.optimizer.lr, 0.05f, FF_OPT_ADAM},
        {"adam beta1", &cfg.optimizer.beta1, 0.5f, FF_OPT_ADAM},
        {"adam beta2", &cfg.optimizer.beta2, 0.9f, FF_OPT_ADAM},
        {"adam eps", &cfg.optimizer.eps, 0.5f, FF_OPT_ADAM},
        {"adam weight_decay", &cfg.optimizer.weight_decay, 0.3f, FF_OPT_ADAM},
        {"sgd_smooth lr", &cfg.optimizer.lr, 0.05f, FF_OPT_SGD_SMOOTH},
        {"sgd_smooth smoothing", &cfg.optimizer.momentum, 0.9f, FF_OPT_SGD_SMOOTH},
        {"sgd_smooth weight_decay", &cfg.optimizer.weight_decay, 0.01f, FF_OPT_SGD_SMOOTH},
    };
    for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++) {
        ff_config c0 = cfg;
        c0.optimizer.type = knobs[k].kind;
        float a[N], b[N];
        memcpy(a, base, sizeof a);
        memcpy(b, base, sizeof b);
        run_optim(&c0, 3, a, N);
        float saved = *knobs[k].field;
        *knobs[k].field = knobs[k].value;
        ff_config c1 = cfg;
        c1.optimizer.type = knobs[k].kind;
        *knobs[k].field = saved;
        run_optim(&c1, 3, b, N);
        int all_changed = 1, all_moved = 1;
        for (int i = 0; i < N; i++) {
            all_changed &= a[i] != b[i];
            all_moved &= a[i] != base[i];
        }
        if (!all_changed || !all_moved)
            fprintf(stderr, "  setting %s not applied to every parameter\n", knobs[k].name);
        CHECK(all_changed && all_moved);
    }
    /* Adam's first step moves each parameter by about lr (bias-corrected) */
    cfg.optimizer.type = FF_OPT_ADAM;
    cfg.optimizer.lr = 0.01f;
    cfg.optimizer.weight_decay = 0.0f;
    memcpy(p, base, sizeof p);
    run_optim(&cfg, 1, p, N);
    for (int i = 0; i < N; i++)
        CHECK_NEAR(base[i] - p[i], 0.01, 1e-5);
}

/* sgd_smooth, ffcode's update: d = s d + (1 - s) g, p -= lr (d + wd p), by hand.
 * p0 = [1, -2, 0.5], g1 = [0.4, -0.2, 1], g2 = [-0.6, 0.3, 0.2], s 0.9, wd 0.1, lr 0.5:
 * d1 = 0.1 g1 = [0.04, -0.02, 0.1]; p1 = p0 - 0.5 [0.14, -0.22, 0.15] = [0.93, -1.89, 0.425];
 * d2 = 0.9 d1 + 0.1 g2 = [-0.024, 0.012, 0.11];
 * p2 = p1 - 0.5 [0.069, -0.177, 0.1525] = [0.8955, -1.8015, 0.34875]. */
static void test_sgd_smooth_hand_computed(void)
{
    const ff_optim_params op = {.kind = FF_OPT_SGD_SMOOTH, .momentum = 0.9f, .weight_decay = 0.1f};
    const float g1[3] = {0.4f, -0.2f, 1.0f}, g2[3] = {-0.6f, 0.3f, 0.2f};
    const double p1[3] = {0.93, -1.89, 0.425}, p2[3] = {0.8955, -1.8015, 0.34875};
    const double d2[3] = {-0.024, 0.012, 0.11};
    ff_optim o, r;
    CHECK(ff_optim_init(&o, &op, 3, NULL) == FF_OK);
    CHECK(ff_optim_init(&r, &op, 3, NULL) == FF_OK);
    CHECK(ff_optim_state_len(&o) == 3);
    float p[3] = {1.0f, -2.0f, 0.5f}, q[3] = {1.0f, -2.0f, 0.5f};
    ff_optim_step(&o, p, g1, 0.5f);
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(p[i], p1[i], 1e-6);
    ff_optim_step(&o, p, g2, 0.5f);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(p[i], p2[i], 1e-6);
        CHECK_NEAR(o.state[i], d2[i], 1e-6);
    }
    CHECK(o.t == 2);
    /* a range step moves that range exactly so and nothing else */
    ff_optim_step_range(&r, q, g1, 0.5f, 1, 2);
    ff_optim_step_range(&r, q, g2, 0.5f, 1, 2);
    CHECK(q[0] == 1.0f && r.state[0] == 0.0f && q[1] == p[1] && q[2] == p[2]);
    ff_optim_free(&o);
    ff_optim_free(&r);
}

static void test_schedules(void)
{
    ff_config cfg;
    ff_config_defaults(&cfg);
    cfg.optimizer.lr = 1.0f;
    cfg.schedule.type = FF_SCHED_CONSTANT;
    CHECK(ff_optim_schedule_lr(&cfg, 999, 1000) == 1.0f);
    cfg.schedule.type = FF_SCHED_LINEAR;
    cfg.schedule.decay_start = 0.5f;
    cfg.schedule.final_lr_scale = 0.0f;
    CHECK(ff_optim_schedule_lr(&cfg, 0, 1000) == 1.0f);
    CHECK(ff_optim_schedule_lr(&cfg, 499, 1000) == 1.0f);
    CHECK_NEAR(ff_optim_schedule_lr(&cfg, 750, 1000), 0.5, 1e-6);
    CHECK_NEAR(ff_optim_schedule_lr(&cfg, 1000, 1000), 0.0, 1e-6);
    cfg.schedule.type = FF_SCHED_COSINE;
    CHECK_NEAR(ff_optim_schedule_lr(&cfg, 750, 1000), 0.5, 1e-6);
    CHECK(ff_optim_schedule_lr(&cfg, 600, 1000) > 0.9f);
    CHECK_NEAR(ff_optim_schedule_lr(&cfg, 1000, 1000), 0.0, 1e-6);
    /* the factor alone (the classifier scales clf.lr by it), independent of optimizer.lr */
    cfg.schedule.type = FF_SCHED_LINEAR;
    cfg.optimizer.lr = 0.25f;
    CHECK(ff_optim_schedule_scale(&cfg, 9, 20) == 1.0f);
    CHECK_NEAR(ff_optim_schedule_scale(&cfg, 15, 20), 0.5, 1e-6);
    CHECK_NEAR(ff_optim_schedule_lr(&cfg, 15, 20), 0.125, 1e-6);
}

/* eval.layers naming a layer the net does not have: an error, not a read past the end */
static void check_bad_eval_layers(const ff_config *cfg)
{
    ff_config c3 = *cfg;
    c3.eval.n_layers = 1;
    c3.eval.layers[0] = 3; /* a 3-layer net */
    ff_net n3;
    ff_rng r3;
    ff_rng_seed(&r3, 1);
    ff_err err = {0};
    CHECK(ff_net_build(&n3, &c3, (ff_shape){1, 28, 28}, 100, &r3, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "eval.layers.0 is 3, but the net has 3 trainable layers") != NULL);
}

/* pitfall: evaluation sums goodness over all layers but the first */
static void test_eval_skips_first_layer(void)
{
    ff_config cfg = small_config(3, 16);
    ff_rng r;
    ff_rng_seed(&r, 9);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 100, &r, NULL) == FF_OK);
    CHECK(!net.evaluated[0] && net.evaluated[1] && net.evaluated[2]);
    ff_dataset ds = {.n = 4, .shape = {1, 28, 28}};
    ds.images = malloc(sizeof(float) * 4 * 784);
    ds.labels = calloc(4, 1);
    fill_images(&r, ds.images, 4, 784);
    static float xbuf[100 * 784], scores[40], x1[784];
    int idx[4] = {2, 0, 3, 1};
    static float logits[40];
    net.layers[1].slope = 0.5f; /* as_logits weighs each layer's goodness by its slope */
    net.layers[2].slope = 2.0f;
    ff_eval_goodness_scores(&net, FF_EMBED_OVERLAY, &ds, idx, 4, 1, xbuf, logits);
    ff_eval_goodness_scores(&net, FF_EMBED_OVERLAY, &ds, idx, 4, 0, xbuf, scores);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 10; k += 3) {
            uint8_t lab = (uint8_t)k;
            ff_embed_batch(FF_EMBED_OVERLAY, ds.images, (ff_shape){1, 28, 28}, &idx[i], &lab, 1, x1);
            ff_net_forward(&net, x1, 1);
            float g1, g2, g0;
            ff_objective_goodness(net.out[0], 1, 16, &g0);
            ff_objective_goodness(net.out[1], 1, 16, &g1);
            ff_objective_goodness(net.out[2], 1, 16, &g2);
            CHECK_NEAR(scores[i * 10 + k], g1 + g2, 1e-3 * (g1 + g2) + 1e-5);
            CHECK_NEAR(logits[i * 10 + k], 0.5f * g1 + 2.0f * g2, 1e-3 * (g1 + g2) + 1e-5);
            CHECK(fabs(scores[i * 10 + k] - (g0 + g1 + g2)) > 1e-6 || g0 == 0.0f);
        }
    /* eval.layers picks the summed layers: [2] the last alone, [2, 0] the first and last */
    const int picks[2][2] = {{2, -1}, {2, 0}};
    for (int p = 0; p < 2; p++) {
        ff_config c2 = cfg;
        c2.eval.n_layers = picks[p][1] < 0 ? 1 : 2;
        c2.eval.layers[0] = picks[p][0];
        c2.eval.layers[1] = picks[p][1];
        ff_net n2;
        ff_rng r2;
        ff_rng_seed(&r2, 9);
        CHECK(ff_net_build(&n2, &c2, (ff_shape){1, 28, 28}, 100, &r2, NULL) == FF_OK);
        CHECK(n2.evaluated[0] == (p == 1) && !n2.evaluated[1] && n2.evaluated[2]);
        memcpy(n2.params, net.params, sizeof(float) * net.n_params);
        float picked[40];
        ff_eval_goodness_scores(&n2, FF_EMBED_OVERLAY, &ds, idx, 4, 0, xbuf, picked);
        for (int i = 0; i < 4; i++) {
            uint8_t lab = 5;
            ff_embed_batch(FF_EMBED_OVERLAY, ds.images, (ff_shape){1, 28, 28}, &idx[i], &lab, 1, x1);
            ff_net_forward(&n2, x1, 1);
            float g0, g2;
            ff_objective_goodness(n2.out[0], 1, 16, &g0);
            ff_objective_goodness(n2.out[2], 1, 16, &g2);
            const float want = p == 1 ? g0 + g2 : g2;
            CHECK_NEAR(picked[i * 10 + 5], want, 1e-3 * want + 1e-5);
        }
        ff_net_free(&n2);
    }
    check_bad_eval_layers(&cfg);
    /* the same scores for chosen labels only: two per image, in any order */
    const uint8_t chosen[8] = {7, 1, 0, 9, 4, 4, 2, 8};
    float some[8];
    ff_eval_goodness_scores_of(&net, FF_EMBED_OVERLAY, &ds, idx, 4, chosen, 2, 1, xbuf, some);
    for (int i = 0; i < 4; i++)
        for (int q = 0; q < 2; q++) {
            const float want = logits[i * 10 + chosen[i * 2 + q]];
            CHECK_NEAR(some[i * 2 + q], want, 1e-4 * fabsf(want) + 1e-5);
        }
    free(ds.images);
    free(ds.labels);
    ff_net_free(&net);
}

/* model.label_embedding none (train.loss competition): one pass of the image alone, the
 * score of label k the goodness of class group k summed over the evaluated layers; fc
 * groups are runs of units, conv groups whole channels */
static void test_competition_readout(void)
{
    ff_config cfg = small_config(3, 20);
    cfg.model.layers[1] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 10, .kernel = 3,
                                         .stride = 1};
    cfg.model.label_embedding = FF_EMBED_NONE;
    cfg.train.loss = FF_LOSS_COMPETITION;
    ff_rng r;
    ff_rng_seed(&r, 11);
    ff_net net;
    ff_err err;
    /* layer 0 fc 20 -> {20,1,1}; a conv on it needs a map: use a conv-first net instead */
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_CONV, .channels = 20, .kernel = 5,
                                         .stride = 2};
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 100, &r, &err) == FF_OK);
    ff_dataset ds = {.n = 5, .shape = {1, 28, 28}};
    ds.images = malloc(sizeof(float) * 5 * 784);
    ds.labels = calloc(5, 1);
    fill_images(&r, ds.images, 5, 784);
    static float xbuf[100 * 784], x1[784];
    float scores[50], logits[50];
    int idx[5] = {4, 2, 0, 3, 1};
    net.layers[1].slope = 0.5f;
    net.layers[2].slope = 3.0f;
    ff_eval_goodness_scores(&net, FF_EMBED_NONE, &ds, idx, 5, 0, xbuf, scores);
    ff_eval_goodness_scores(&net, FF_EMBED_NONE, &ds, idx, 5, 1, xbuf, logits);
    const int hw1 = ff_shape_dim(net.layers[1].out) / 10; /* one channel per group */
    double spread = 0.0;
    for (int i = 0; i < 5; i++) {
        ff_embed_batch(FF_EMBED_NONE, ds.images, (ff_shape){1, 28, 28}, &idx[i], NULL, 1, x1);
        ff_net_forward(&net, x1, 1);
        float e1, e2; /* each layer's groups are read from its output scaled to mean square 1 */
        ff_objective_goodness(net.out[1], 1, 10 * hw1, &e1);
        ff_objective_goodness(net.out[2], 1, 20, &e2);
        CHECK(e1 > 0.0f && e2 > 0.0f);
        for (int k = 0; k < 10; k++) {
            float g1, g2;
            ff_objective_goodness(net.out[1] + (size_t)k * hw1, 1, hw1, &g1);
            ff_objective_goodness(net.out[2] + (size_t)k * 2, 1, 2, &g2);
            g1 *= 10 * hw1 / e1;
            g2 *= 20 / e2;
            CHECK_NEAR(scores[i * 10 + k], g1 + g2, 1e-4 * (g1 + g2) + 1e-6);
            CHECK_NEAR(logits[i * 10 + k], 0.5f * g1 + 3.0f * g2, 1e-4 * (g1 + g2) + 1e-6);
            spread += fabs(scores[i * 10 + k] - scores[i * 10]);
        }
    }
    CHECK(spread > 0.0); /* the groups differ: the check above is not vacuous */
    /* the labels play no part in the input: an embedded label changes nothing */
    uint8_t lab = 7;
    float with_label[784];
    ff_embed_batch(FF_EMBED_NONE, ds.images, (ff_shape){1, 28, 28}, &idx[0], &lab, 1, with_label);
    ff_embed_batch(FF_EMBED_NONE, ds.images, (ff_shape){1, 28, 28}, &idx[0], NULL, 1, x1);
    CHECK(memcmp(with_label, x1, sizeof x1) == 0);
    CHECK(memcmp(x1, ds.images + (size_t)idx[0] * 784, sizeof x1) == 0);
    /* the readout error: labels 0..4 for the five images */
    for (int i = 0; i < 5; i++)
        ds.labels[i] = (uint8_t)i;
    int64_t confusion[100];
    const double e = ff_eval_error(&net, FF_EMBED_NONE, &ds, 5, xbuf, scores, confusion);
    int wrong = 0;
    for (int i = 0; i < 5; i++) {
        ff_eval_goodness_scores(&net, FF_EMBED_NONE, &ds, &i, 1, 0, xbuf, logits);
        wrong += ff_objective_argmax10(logits) != i;
    }
    CHECK_NEAR(e, wrong / 5.0, 1e-12);
    ff_net_free(&net);

    /* a layer whose channels do not split into 10 groups: the error names it */
    cfg.model.layers[2].units = 25;
    cfg.model.layers[2].line = 9;
    cfg.model.layers[2].col = 7;
    snprintf(cfg.origin, sizeof cfg.origin, "c.yaml");
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 100, &r, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "c.yaml:9:7") && strstr(err.msg, "10 class groups") &&
          strstr(err.msg, "25"));
    free(ds.images);
    free(ds.labels);
}

static const char *tmp_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/ff_test_model_%d.ffm", (int)getpid());
    return buf;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len)
        *len = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

/* writes a model file's bytes with a correct CRC-32C trailer (a crafted, valid file) */
static void spit_with_crc(const char *path, uint8_t *b, size_t len)
{
    uint32_t crc = ff_crc32c(0, b, len - 4);
    for (int i = 0; i < 4; i++)
        b[len - 4 + i] = (uint8_t)(crc >> (8 * i));
    spit(path, b, len);
}

static void test_checkpoint_roundtrip_and_corruption(void)
{
    ff_config cfg = small_config(2, 12);
    cfg.optimizer.type = FF_OPT_ADAM;
    cfg.train.batch_size = 1; /* batch 3 of an epoch of 5 images exists (the loader checks) */
    snprintf(cfg.name, sizeof cfg.name, "ckpt");
    ff_rng r;
    ff_rng_seed(&r, 10);
    ff_net net;
    ff_optim opt;
    ff_err err;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 4, &r, &err) == FF_OK);
    const ff_optim_params op = ff_optim_params_from_config(&cfg);
    CHECK(ff_optim_init(&opt, &op, net.n_params, &err) == FF_OK);
    for (size_t i = 0; i < net.n_params; i++)
        net.grads[i] = ff_rng_normal(&r);
    for (size_t i = 0; i < net.n_aux; i++)
        net.aux[i] = (float)i * 0.5f;
    ff_optim_step(&opt, net.params, net.grads, 0.01f);
    /* a softmax head of 6 features: 60 weights + 10 biases, Adam state 140, 3 steps */
    ff_readout head;
    CHECK(ff_readout_init(&head, 6, 10, 4, NULL, &err) == FF_OK);
    for (size_t i = 0; i < head.n_params; i++)
        head.params[i] = 0.25f * (float)i - 3.0f;
    for (size_t i = 0; i < ff_optim_state_len(&head.opt); i++)
        head.opt.state[i] = 1e-3f * (float)i;
    head.opt.t = 3;
    const size_t n_head = head.n_params, n_head_state = ff_optim_state_len(&head.opt);
    CHECK(n_head == 70 && n_head_state == 140);
    char path[256];
    tmp_model(path, sizeof path);
    int order[5] = {4, 2, 0, 1, 3};
    ff_checkpoint_state st = {.cfg = &cfg, .net = &net, .opt = &opt, .rng = &r, .epoch = 7,
                              .batch = 3, .step = 1234, .run_dir = "runs/supervised/x",
                              .order = order, .n_order = 5, .head = &head,
                              .record = "{\"version\": \"9.9\"}"};
    CHECK(ff_checkpoint_save(path, &st, &err) == FF_OK);
    char tmp[300];
    glob_t g;
    snprintf(tmp, sizeof tmp, "%s.tmp*", path);
    int grc = glob(tmp, 0, NULL, &g);
    CHECK(grc == GLOB_NOMATCH); /* the temporary file was renamed away */
    if (grc == 0)
        globfree(&g);
    size_t len = 0;
    uint8_t *b = slurp(path, &len);
    CHECK(b && len > FF_CHECKPOINT_HEADER);
    if (!b || len <= FF_CHECKPOINT_HEADER)
        return;
    /* byte-level header */
    CHECK(memcmp(b, "FFRUNMDL", 8) == 0);
    CHECK(b[8] == 3 && b[9] == 0 && b[10] == 0 && b[11] == 0);
    CHECK(FF_CHECKPOINT_HEADER == 136);
    CHECK(b[128] == 18 && b[129] == 0 && b[130] == 0 && b[131] == 0); /* record_len */
    CHECK(b[132] == 0 && b[133] == 0 && b[134] == 0 && b[135] == 0); /* reserved */
    CHECK(b[104] == 70 && b[105] == 0 && b[112] == 140 && b[113] == 0 && b[120] == 3);
    uint32_t cfg_len = b[12] | b[13] << 8 | b[14] << 16 | (uint32_t)b[15] << 24;
    uint64_t np = 0;
    for (int i = 7; i >= 0; i--)
        np = np << 8 | b[16 + i];
    CHECK(np == net.n_params);
    CHECK(b[32] == 7 && b[40] == (1234 & 0xff) && b[41] == (1234 >> 8));
    CHECK(b[36] == 3 && b[88] == 17 && b[92] == 5 && b[96] == 24 && b[97] == 0);
    CHECK(memcmp(b + FF_CHECKPOINT_HEADER + cfg_len, "runs/supervised/x", 17) == 0);
    CHECK(memcmp(b + FF_CHECKPOINT_HEADER + cfg_len + 17, "{\"version\": \"9.9\"}", 18) == 0);
    CHECK(len == FF_CHECKPOINT_HEADER + cfg_len + 17 + 18 +
                     4 * (net.n_params * 3 + 24 + n_head + n_head_state + 5) + 4);
    float first, head0;
    memcpy(&first, b + FF_CHECKPOINT_HEADER + cfg_len + 17 + 18, 4);
    CHECK(first == net.params[0]);
    /* the head follows params, optimiser state and aux */
    memcpy(&head0, b + FF_CHECKPOINT_HEADER + cfg_len + 17 + 18 + 4 * (net.n_params * 3 + 24), 4);
    CHECK(head0 == -3.0f);

    ff_checkpoint ck;
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_OK);
    CHECK(ck.epoch == 7 && ck.batch == 3 && ck.step == 1234 && ck.opt_t == 1);
    CHECK(strcmp(ck.run_dir, "runs/supervised/x") == 0);
    CHECK(ck.record && strcmp(ck.record, "{\"version\": \"9.9\"}") == 0);
    CHECK(ck.n_order == 5 && ck.order && memcmp(ck.order, order, sizeof order) == 0);
    CHECK(ck.n_aux == 24 && ck.aux && memcmp(ck.aux, net.aux, 24 * sizeof(float)) == 0);
    CHECK(ck.n_head == n_head && ck.n_head_state == n_head_state && ck.head_t == 3);
    CHECK(ck.head && memcmp(ck.head, head.params, n_head * sizeof(float)) == 0);
    CHECK(ck.head_state && memcmp(ck.head_state, head.opt.state, n_head_state * 4) == 0);
    CHECK(ck.n_params == net.n_params && ck.n_state == 2 * net.n_params);
    CHECK(ck.params && memcmp(ck.params, net.params, net.n_params * 4) == 0);
    CHECK(ck.state && memcmp(ck.state, opt.state, ck.n_state * 4) == 0);
    CHECK(memcmp(&ck.rng, &r, sizeof r) == 0);
    CHECK(ck.cfg.model.n_layers == 2 && ck.cfg.model.layers[1].units == 12);
    CHECK(strcmp(ck.cfg.name, "ckpt") == 0 && ck.cfg.optimizer.type == FF_OPT_ADAM);
    char origin[300];
    snprintf(origin, sizeof origin, "%s (embedded config)", path);
    CHECK(strcmp(ck.cfg.origin, origin) == 0); /* messages about it point into the model file */
    ff_checkpoint_free(&ck);

    /* a flipped bit anywhere is a checksum error */
    b[len / 2] ^= 0x10;
    spit(path, b, len);
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_ERR_FORMAT);
    CHECK(strstr(err.msg, "checksum") != NULL && strstr(err.msg, path) != NULL);
    b[len / 2] ^= 0x10;
    /* truncated */
    spit(path, b, len - 100);
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_ERR_FORMAT);
    CHECK(strstr(err.msg, "truncated") != NULL);
    /* bad magic */
    b[0] = 'X';
    spit(path, b, len);
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_ERR_FORMAT);
    CHECK(strstr(err.msg, "magic") != NULL);
    b[0] = 'F';

    /* a version 2 file (no record: header of 128 bytes) still loads, with an empty record */
    st.head = NULL;
    st.record = NULL;
    CHECK(ff_checkpoint_save(path, &st, &err) == FF_OK);
    free(b);
    b = slurp(path, &len);
    CHECK(b && len > FF_CHECKPOINT_HEADER);
    if (b && len > FF_CHECKPOINT_HEADER) {
        CHECK(b[128] == 0); /* no record: zero length */
        memmove(b + FF_CHECKPOINT_HEADER_V2, b + FF_CHECKPOINT_HEADER, len - FF_CHECKPOINT_HEADER);
        len -= FF_CHECKPOINT_HEADER - FF_CHECKPOINT_HEADER_V2;
        b[8] = 2;
        spit_with_crc(path, b, len);
        CHECK(ff_checkpoint_load(path, &ck, &err) == FF_OK);
        CHECK(ck.version == 2 && ck.record && ck.record[0] == '\0' && ck.epoch == 7);
        CHECK(ck.params && memcmp(ck.params, net.params, net.n_params * 4) == 0);
        ff_checkpoint_free(&ck);
        /* a record length past the file is refused before anything is read */
        b[8] = 3;
        spit_with_crc(path, b, len);
        CHECK(ff_checkpoint_load(path, &ck, &err) == FF_ERR_FORMAT);
        /* back to version 2, on to version 1 */
        b[8] = 2;
    }
    /* a version 1 file (no head fields, header of 104 bytes) still loads */
    if (b && len > FF_CHECKPOINT_HEADER_V2) {
        CHECK(b[104] == 0 && b[112] == 0 && b[120] == 0); /* no head: zero sizes */
        memmove(b + FF_CHECKPOINT_HEADER_V1, b + FF_CHECKPOINT_HEADER_V2, len - FF_CHECKPOINT_HEADER_V2);
        len -= FF_CHECKPOINT_HEADER_V2 - FF_CHECKPOINT_HEADER_V1;
        b[8] = 1;
        spit_with_crc(path, b, len);
        CHECK(ff_checkpoint_load(path, &ck, &err) == FF_OK);
        CHECK(ck.version == 1 && ck.n_head == 0 && ck.n_head_state == 0 && ck.epoch == 7);
        CHECK(ck.params && memcmp(ck.params, net.params, net.n_params * 4) == 0);
        CHECK(ck.n_order == 5 && ck.order && memcmp(ck.order, order, sizeof order) == 0);
        ff_checkpoint_free(&ck);
        /* an unknown version is refused by number */
        b[8] = 9;
        spit(path, b, len);
        CHECK(ff_checkpoint_load(path, &ck, &err) == FF_ERR_FORMAT);
        CHECK(strstr(err.msg, "version 9") != NULL);
    }
    unlink(path);
    CHECK(ff_checkpoint_load(path, &ck, &err) == FF_ERR_IO);
    free(b);
    ff_readout_free(&head);
    ff_optim_free(&opt);
    ff_net_free(&net);
}

/* a layer that does not fit its input: the message names the file, the layer's line
 * and column, the layer and the shapes */
static void test_layer_error_points_into_config(void)
{
    static const char yaml[] = "model:\n"
                               "  layers:\n"
                               "    - {type: conv, channels: 8, kernel: 10, stride: 6}\n"
                               "    - {type: conv, channels: 8, kernel: 5, stride: 1}\n";
    ff_config cfg;
    ff_err err = {0};
    CHECK(ff_config_parse(&cfg, yaml, sizeof yaml - 1, "geom.yaml", &err) == FF_OK);
    CHECK(strcmp(cfg.origin, "geom.yaml") == 0);
    ff_rng r;
    ff_rng_seed(&r, 1);
    ff_net net;
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 4, &r, &err) == FF_ERR_USAGE);
    const char *want = "geom.yaml:4:7: layer 1: conv kernel 5 does not fit input 8x4x4";
    if (strcmp(err.msg, want) != 0) {
        fprintf(stderr, "  message \"%s\", expected \"%s\"\n", err.msg, want);
        CHECK(0);
    }
    /* no file: the message still says which layer */
    ff_config_defaults(&cfg);
    cfg.model.n_layers = 1;
    cfg.model.layers[0] = (ff_layer_cfg){.kind = FF_LAYER_FC, .units = 0};
    CHECK(ff_net_build(&net, &cfg, (ff_shape){1, 28, 28}, 4, &r, &err) == FF_ERR_USAGE);
    CHECK(strcmp(err.msg, "config: layer 0: fc needs units > 0") == 0);
}

int main(void)
{
    RUN(test_negative_labels_never_true);
    RUN(test_hard_negatives_never_true);
    RUN(test_hard_negative_candidates);
    RUN(test_positive_negative_same_range);
    RUN(test_neutral_and_channels_embedding);
    RUN(test_jitter_shifts_image_not_label);
    RUN(test_pattern_embedding);
    RUN(test_colour_embeddings_naive);
    RUN(test_objective_covers_every_loss);
    RUN(test_objective_hand_computed);
    RUN(test_alternate_equals_joint);
    RUN(test_net_use_buffers);
    RUN(test_pass_loss_is_mean_of_per_sample);
    RUN(test_label_every_layer);
    RUN(test_peer_normalisation_gradient);
    RUN(test_objective_running_statistics);
    RUN(test_optimizer_settings_applied);
    RUN(test_sgd_smooth_hand_computed);
    RUN(test_schedules);
    RUN(test_eval_skips_first_layer);
    RUN(test_competition_readout);
    RUN(test_checkpoint_roundtrip_and_corruption);
    RUN(test_layer_error_points_into_config);
    TEST_MAIN_END();
}
