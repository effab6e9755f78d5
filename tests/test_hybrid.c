/* test_hybrid.c - hybrid-image negatives: masks, mixing, class pairs,
 * determinism, encoding, and the checksummed on-disk cache. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ff/hybrid.h"
#include "ff/rng.h"
#include "test.h"

enum { ROWS = 28, COLS = 28, DIM = ROWS * COLS };

/* n random images in [0, 1] (distinct float values, not multiples of 1/255), labels i % 10 */
static ff_dataset make_dataset(int n, uint64_t seed)
{
    ff_dataset ds = {.n = n, .shape = {1, ROWS, COLS}};
    ds.images = malloc(sizeof(float) * (size_t)n * DIM);
    ds.labels = malloc((size_t)n);
    ff_rng r;
    ff_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * DIM; i++)
        ds.images[i] = ff_rng_uniform(&r);
    for (int i = 0; i < n; i++)
        ds.labels[i] = (uint8_t)(i % 10);
    return ds;
}

/* fraction of pixels equal to their right neighbour */
static double right_agreement(const float *m)
{
    int same = 0;
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c + 1 < COLS; c++)
            same += m[r * COLS + c] == m[r * COLS + c + 1];
    return (double)same / (ROWS * (COLS - 1));
}

static double mean_agreement(int passes, int masks, double *ones_frac, int *constant)
{
    ff_rng r;
    ff_rng_seed(&r, 11);
    float m[DIM], scratch[DIM];
    double agree = 0.0, ones = 0.0;
    *constant = 0;
    for (int k = 0; k < masks; k++) {
        ff_hybrid_mask(&r, (ff_shape){1, ROWS, COLS}, passes, m, scratch);
        int n1 = 0, binary = 1;
        for (int j = 0; j < DIM; j++) {
            binary &= m[j] == 0.0f || m[j] == 1.0f;
            n1 += m[j] == 1.0f;
        }
        CHECK(binary);
        *constant += n1 == 0 || n1 == DIM;
        ones += (double)n1 / DIM;
        agree += right_agreement(m);
    }
    *ones_frac = ones / masks;
    return agree / masks;
}

static void test_mask_binary_with_large_regions(void)
{
    double ones, ones0;
    int constant, constant0;
    const double blurred = mean_agreement(FF_HYBRID_DEFAULT_BLUR, 500, &ones, &constant);
    const double raw = mean_agreement(0, 500, &ones0, &constant0);
    CHECK(constant == 0);          /* both values in every mask */
    CHECK(ones > 0.4 && ones < 0.6);
    CHECK(blurred > 0.85);         /* large regions: most pixels match their neighbour */
    CHECK(raw > 0.45 && raw < 0.55); /* unblurred: independent bits */
    int c2, c10;
    double o2, o10;
    CHECK(mean_agreement(10, 200, &o10, &c10) > mean_agreement(2, 200, &o2, &c2));
}

/* tiny, heavily blurred masks are often constant: they are redrawn */
static void test_constant_masks_redrawn(void)
{
    ff_rng r;
    ff_rng_seed(&r, 13);
    float m[9], scratch[9];
    int constant = 0;
    for (int k = 0; k < 1000; k++) {
        ff_hybrid_mask(&r, (ff_shape){1, 3, 3}, 4, m, scratch);
        int ones = 0;
        for (int j = 0; j < 9; j++)
            ones += m[j] == 1.0f;
        constant += ones == 0 || ones == 9;
    }
    CHECK(constant <= 5);
}

static void test_mix_follows_mask(void)
{
    ff_rng r;
    ff_rng_seed(&r, 12);
    float m[DIM], scratch[DIM], a[DIM], b[DIM], out[DIM];
    for (int j = 0; j < DIM; j++) {
        a[j] = ff_rng_uniform(&r);
        b[j] = ff_rng_uniform(&r);
    }
    ff_hybrid_mask(&r, (ff_shape){1, ROWS, COLS}, 6, m, scratch);
    ff_hybrid_mix(m, a, b, (ff_shape){1, ROWS, COLS}, out);
    int from_a = 0, from_b = 0;
    for (int j = 0; j < DIM; j++) {
        CHECK(out[j] == (m[j] == 1.0f ? a[j] : b[j]));
        from_a += m[j] == 1.0f;
        from_b += m[j] == 0.0f;
    }
    CHECK(from_a > 0 && from_b > 0);
}

/* every hybrid: sources of different classes, each pixel exactly a's or b's, both used */
static void test_set_pixels_and_classes(void)
{
    ff_dataset ds = make_dataset(300, 1);
    ff_hybrid_set set;
    ff_err err;
    CHECK(ff_hybrid_make(&set, &ds, 1000, 7, FF_HYBRID_DEFAULT_BLUR, &err) == FF_OK);
    CHECK(set.n == 1000 && set.shape.c == 1 && set.shape.h == ROWS && set.shape.w == COLS);
    int same_class = 0, stray = 0, one_source = 0, out_of_range = 0;
    for (int i = 0; i < set.n; i++) {
        const int a = set.src[2 * i], b = set.src[2 * i + 1];
        CHECK(a >= 0 && a < ds.n && b >= 0 && b < ds.n);
        same_class += ds.labels[a] == ds.labels[b];
        const float *h = set.images + (size_t)i * DIM;
        const float *pa = ds.images + (size_t)a * DIM, *pb = ds.images + (size_t)b * DIM;
        int na = 0, nb = 0;
        for (int j = 0; j < DIM; j++) {
            stray += h[j] != pa[j] && h[j] != pb[j];
            out_of_range += !(h[j] >= 0.0f && h[j] <= 1.0f);
            na += h[j] == pa[j];
            nb += h[j] == pb[j];
        }
        one_source += na == 0 || nb == 0;
    }
    CHECK(same_class == 0);
    CHECK(stray == 0);          /* same float encoding as the positives: no 8-bit cast */
    CHECK(out_of_range == 0);
    CHECK(one_source == 0);     /* never just a real digit */
    ff_hybrid_free(&set);
    ff_dataset_free(&ds);
}

/* 99% of one class: pairs must still differ (rejection sampling must not give up wrongly) */
static void test_pairs_differ_on_skewed_data(void)
{
    ff_dataset ds = make_dataset(1000, 2);
    for (int i = 0; i < ds.n; i++)
        ds.labels[i] = i % 100 == 37 ? 4 : 0;
    ff_rng r;
    ff_rng_seed(&r, 3);
    int same = 0;
    for (int k = 0; k < 5000; k++) {
        int a, b;
        ff_hybrid_pick_pair(&r, &ds, &a, &b);
        same += ds.labels[a] == ds.labels[b];
    }
    CHECK(same == 0);
    ff_dataset_free(&ds);
}

static void test_one_class_rejected(void)
{
    ff_dataset ds = make_dataset(50, 3);
    memset(ds.labels, 6, (size_t)ds.n);
    ff_hybrid_set set;
    ff_err err = {0};
    CHECK(ff_hybrid_make(&set, &ds, 10, 1, 6, &err) == FF_ERR_USAGE);
    CHECK(strstr(err.msg, "two classes") != NULL);
    CHECK(set.images == NULL);
    ff_dataset_free(&ds);
}

static void test_deterministic_for_a_seed(void)
{
    ff_dataset ds = make_dataset(100, 4);
    ff_hybrid_set s1, s2, s3;
    CHECK(ff_hybrid_make(&s1, &ds, 200, 42, 6, NULL) == FF_OK);
    CHECK(ff_hybrid_make(&s2, &ds, 200, 42, 6, NULL) == FF_OK);
    CHECK(ff_hybrid_make(&s3, &ds, 200, 43, 6, NULL) == FF_OK);
    const size_t bytes = sizeof(float) * 200 * DIM;
    CHECK(memcmp(s1.images, s2.images, bytes) == 0);
    CHECK(memcmp(s1.src, s2.src, sizeof(int32_t) * 400) == 0);
    CHECK(memcmp(s1.images, s3.images, bytes) != 0);
    ff_hybrid_free(&s1);
    ff_hybrid_free(&s2);
    ff_hybrid_free(&s3);
    ff_dataset_free(&ds);
}

/* ---------------------------------------------------------------- cache */

static int same_set(const ff_hybrid_set *x, const ff_hybrid_set *y)
{
    const size_t dim = (size_t)ff_shape_dim(x->shape);
    return x->n == y->n && dim == (size_t)ff_shape_dim(y->shape) &&
           memcmp(x->images, y->images, sizeof(float) * (size_t)x->n * dim) == 0 &&
           memcmp(x->src, y->src, sizeof(int32_t) * 2 * (size_t)x->n) == 0;
}

static ff_hybrid_origin load_or_make(ff_hybrid_set *s, const ff_dataset *ds, uint64_t seed,
                                     const char *dir, char *path)
{
    ff_hybrid_origin o = (ff_hybrid_origin)-1;
    ff_err err = {0};
    int rc = ff_hybrid_load_or_make(s, ds, 120, seed, 6, dir, &o, path, 1024, &err);
    CHECK(rc == FF_OK);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    return o;
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x10, f);
    fclose(f);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_cache_load_and_invalidate(void)
{
    char dir[] = "/tmp/ff_hybrid_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[256], path[1024], path2[1024], path3[1024];
    snprintf(sub, sizeof sub, "%s/cache/hybrids", dir); /* created on demand */
    ff_dataset ds = make_dataset(100, 5);
    ff_hybrid_set fresh, a, b;
    CHECK(ff_hybrid_make(&fresh, &ds, 120, 9, 6, NULL) == FF_OK);

    /* no cache dir: generated, nothing written */
    CHECK(load_or_make(&a, &ds, 9, NULL, path) == FF_HYBRID_GENERATED);
    CHECK(same_set(&a, &fresh) && path[0] == '\0');
    ff_hybrid_free(&a);

    /* first call writes, second loads the same bytes */
    CHECK(load_or_make(&a, &ds, 9, sub, path) == FF_HYBRID_CACHED);
    CHECK(strstr(path, "/hybrid-") != NULL);
    CHECK(file_size(path) == FF_HYBRID_HEADER + 120 * 8 + 120 * DIM * 4 + 4);
    CHECK(load_or_make(&b, &ds, 9, sub, path2) == FF_HYBRID_LOADED);
    CHECK(strcmp(path, path2) == 0);
    CHECK(same_set(&a, &fresh) && same_set(&b, &fresh));
    ff_hybrid_free(&a);
    ff_hybrid_free(&b);

    /* another seed: another key, another file */
    CHECK(load_or_make(&a, &ds, 10, sub, path2) == FF_HYBRID_CACHED);
    CHECK(strcmp(path, path2) != 0 && !same_set(&a, &fresh));
    ff_hybrid_free(&a);

    /* changed source data: regenerated under a new key */
    ds.images[5 * DIM + 300] = 0.5f;
    CHECK(load_or_make(&a, &ds, 9, sub, path3) == FF_HYBRID_CACHED);
    CHECK(strcmp(path, path3) != 0);
    ds.labels[3] = (uint8_t)((ds.labels[3] + 1) % 10);
    CHECK(load_or_make(&b, &ds, 9, sub, path3) == FF_HYBRID_CACHED);
    ff_hybrid_free(&a);
    ff_hybrid_free(&b);
    ff_dataset_free(&ds);
    ds = make_dataset(100, 5);

    /* a corrupted payload byte: not trusted, regenerated and rewritten */
    flip_byte(path, FF_HYBRID_HEADER + 120 * 8 + 4000);
    CHECK(load_or_make(&a, &ds, 9, sub, path2) == FF_HYBRID_REBUILT);
    CHECK(same_set(&a, &fresh));
    ff_hybrid_free(&a);
    CHECK(load_or_make(&a, &ds, 9, sub, path2) == FF_HYBRID_LOADED);
    ff_hybrid_free(&a);

    /* corrupted checksum, truncated file, trailing bytes */
    flip_byte(path, -2);
    CHECK(load_or_make(&a, &ds, 9, sub, path2) == FF_HYBRID_REBUILT);
    ff_hybrid_free(&a);
    CHECK(truncate(path, file_size(path) - 100) == 0);
    CHECK(load_or_make(&a, &ds, 9, sub, path2) == FF_HYBRID_REBUILT);
    ff_hybrid_free(&a);
    FILE *f = fopen(path, "ab");
    fputc(0, f);
    fclose(f);
    CHECK(load_or_make(&a, &ds, 9, sub, path2) == FF_HYBRID_REBUILT);
    CHECK(same_set(&a, &fresh));
    ff_hybrid_free(&a);

    /* a valid file for another key under this name: the header key is checked */
    uint8_t key[32], other[32];
    ff_hybrid_key(&ds, 120, 9, 6, key);
    memcpy(other, key, 32);
    other[31] ^= 1;
    CHECK(ff_hybrid_save(&fresh, other, ds.n, 6, 9, path, NULL) == FF_OK);
    ff_err err = {0};
    CHECK(ff_hybrid_load(&a, path, key, (ff_shape){1, ROWS, COLS}, 120, &err) == FF_ERR_FORMAT);
    CHECK(strstr(err.msg, "key differs") != NULL && a.images == NULL);
    CHECK(load_or_make(&a, &ds, 9, sub, path2) == FF_HYBRID_REBUILT);
    ff_hybrid_free(&a);
    CHECK(ff_hybrid_load(&a, path, key, (ff_shape){1, ROWS, COLS}, 120, &err) == FF_OK);
    CHECK(same_set(&a, &fresh));
    ff_hybrid_free(&a);

    /* no tmp files are left behind */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", sub);
    CHECK(system(cmd) != 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    ff_hybrid_free(&fresh);
    ff_dataset_free(&ds);
}

/* colour images: one mask per pixel over all three channels (every channel of a pixel
 * from the same source), against a naive loop; the cache records the shape and
 * refuses a file of another shape */
static void test_colour_hybrids(void)
{
    const ff_shape s = {3, 8, 9};
    const int n = 40, dim = ff_shape_dim(s), hw = 8 * 9;
    ff_dataset ds = {.n = n, .shape = s};
    ds.images = malloc(sizeof(float) * (size_t)n * dim);
    ds.labels = malloc((size_t)n);
    ff_rng r;
    ff_rng_seed(&r, 3);
    for (size_t i = 0; i < (size_t)n * dim; i++)
        ds.images[i] = ff_rng_uniform(&r);
    for (int i = 0; i < n; i++)
        ds.labels[i] = (uint8_t)(i % 10);
    ff_hybrid_set set;
    ff_err err = {0};
    CHECK(ff_hybrid_make(&set, &ds, 50, 11, 2, &err) == FF_OK);
    CHECK(set.shape.c == 3 && set.shape.h == 8 && set.shape.w == 9);
    /* the same draws by hand: pair, then mask, then the mix over every channel */
    ff_rng_seed(&r, 11);
    float m[72], scratch[72];
    int bad = 0, both = 0;
    for (int i = 0; i < 50; i++) {
        int a, b;
        ff_hybrid_pick_pair(&r, &ds, &a, &b);
        ff_hybrid_mask(&r, s, 2, m, scratch);
        bad += a != set.src[2 * i] || b != set.src[2 * i + 1] || ds.labels[a] == ds.labels[b];
        int from_a = 0, from_b = 0;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < hw; p++) {
                const size_t k = (size_t)c * hw + p;
                const float want = m[p] == 1.0f ? ds.images[(size_t)a * dim + k]
                                                : ds.images[(size_t)b * dim + k];
                bad += set.images[(size_t)i * dim + k] != want;
                from_a += m[p] == 1.0f;
                from_b += m[p] == 0.0f;
            }
        both += from_a > 0 && from_b > 0;
    }
    CHECK(bad == 0 && both == 50);
    /* the cache: saved with its shape; the same bytes under another shape are refused */
    char dir[] = "/tmp/ff_hyb_colour_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/h.bin", dir);
    uint8_t key[32];
    ff_hybrid_key(&ds, 50, 11, 2, key);
    CHECK(ff_hybrid_save(&set, key, ds.n, 2, 11, path, &err) == FF_OK);
    ff_hybrid_set back;
    CHECK(ff_hybrid_load(&back, path, key, s, 50, &err) == FF_OK);
    CHECK(back.shape.c == 3 &&
          memcmp(back.images, set.images, sizeof(float) * 50 * (size_t)dim) == 0);
    ff_hybrid_free(&back);
    CHECK(ff_hybrid_load(&back, path, key, (ff_shape){1, 8, 27}, 50, &err) == FF_ERR_FORMAT);
    CHECK(strstr(err.msg, "3x8x9") != NULL && strstr(err.msg, "1x8x27") != NULL);
    /* the grey data of the same bytes has another key: no file of one set serves the other */
    ff_dataset grey = ds;
    grey.shape = (ff_shape){1, 24, 9};
    uint8_t key2[32];
    ff_hybrid_key(&grey, 50, 11, 2, key2);
    CHECK(memcmp(key, key2, 32) != 0);
    remove(path);
    rmdir(dir);
    ff_hybrid_free(&set);
    ff_dataset_free(&ds);
}

int main(void)
{
    RUN(test_mask_binary_with_large_regions);
    RUN(test_constant_masks_redrawn);
    RUN(test_mix_follows_mask);
    RUN(test_set_pixels_and_classes);
    RUN(test_pairs_differ_on_skewed_data);
    RUN(test_one_class_rejected);
    RUN(test_deterministic_for_a_seed);
    RUN(test_colour_hybrids);
    RUN(test_cache_load_and_invalidate);
    TEST_MAIN_END();
}
