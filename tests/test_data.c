/* test_data.c - the data set readers (IDX/gzip, CIFAR-10 binary batches), format detection,
 * SHA256SUMS, per-channel statistics and SHA-256 vectors (run from the repo root). */
#include "ff/data.h"
#include "ff/sha256.h"
#include "ff/fs.h"
#include "test.h"

#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MNIST_DIR "data/mnist"

static char tmp_root[64];

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

static int has(const char *s, const char *sub) { return s && sub && strstr(s, sub) != NULL; }

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A fresh sub-directory of the temp root; returns a static-lifetime copy. */
static const char *case_dir(const char *name)
{
    static char paths[64][256];
    static int used;
    char *p = paths[used++ % 64];
    snprintf(p, 256, "%s/%s", tmp_root, name);
    if (mkdir(p, 0700) != 0)
        fprintf(stderr, "  cannot create %s\n", p);
    return p;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return w == len && rc == 0 ? 0 : -1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Deterministic pseudo-random pixel for image i, offset j. */
static uint8_t pixel_at(size_t i, size_t j)
{
    uint32_t x = (uint32_t)(i * 2654435761u) ^ (uint32_t)(j * 40503u + 17u);
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return (uint8_t)x;
}

static buf make_images(uint32_t n, uint32_t rows, uint32_t cols)
{
    size_t dim = (size_t)rows * cols;
    buf b = {malloc(16 + n * dim), 16 + n * dim};
    put_be32(b.p, 0x00000803u);
    put_be32(b.p + 4, n);
    put_be32(b.p + 8, rows);
    put_be32(b.p + 12, cols);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++)
            b.p[16 + i * dim + j] = pixel_at(i, j);
    return b;
}

static buf make_labels(uint32_t n)
{
    buf b = {malloc(8 + n), 8 + n};
    put_be32(b.p, 0x00000801u);
    put_be32(b.p + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b.p[8 + i] = (uint8_t)((i * 7 + 3) % 10);
    return b;
}

/* gzip (level 6) of b, via zlib's gzip wrapper. */
static buf gzip_buf(buf b)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    buf out = {NULL, 0};
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return out;
    size_t cap = deflateBound(&zs, b.n);
    out.p = malloc(cap);
    zs.next_in = b.p;
    zs.avail_in = (uInt)b.n;
    zs.next_out = out.p;
    zs.avail_out = (uInt)cap;
    int zr = deflate(&zs, Z_FINISH);
    out.n = zr == Z_STREAM_END ? cap - zs.avail_out : 0;
    deflateEnd(&zs);
    return out;
}

/* Writes the pair as <prefix>-images-idx3-ubyte[.gz] / -labels-idx1-ubyte[.gz]. */
static void write_pair(const char *dir, const char *prefix, buf img, buf lab, int gz)
{
    char ni[128], nl[128];
    snprintf(ni, sizeof ni, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    snprintf(nl, sizeof nl, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    buf gi = gz ? gzip_buf(img) : img, gl = gz ? gzip_buf(lab) : lab;
    CHECK(write_file(dir, ni, gi.p, gi.n) == 0);
    CHECK(write_file(dir, nl, gl.p, gl.n) == 0);
    if (gz) {
        free(gi.p);
        free(gl.p);
    }
}

static void sha_hex(buf b, char hex[65])
{
    uint8_t d[32];
    ff_sha256(b.p, b.n, d);
    ff_sha256_hex(d, hex);
}

/* Loads dir/train, checks the failure contract (zeroed ds, filled err) and
 * returns the status; the dataset is freed again. */
static int try_load(const char *dir, int limit, ff_err *err)
{
    ff_dataset ds;
    memset(&ds, 0xAB, sizeof ds); /* garbage: load must overwrite it */
    memset(err, 0, sizeof *err);
    int rc = ff_dataset_open(&ds, dir, FF_DATA_IDX, FF_SPLIT_TRAIN, limit, err);
    if (rc) {
        CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0);
        CHECK(err->code == rc);
        CHECK(err->msg[0] != '\0');
    }
    ff_dataset_free(&ds);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* SHA-256                                                                   */

static int sha_is(const void *data, size_t len, const char *want)
{
    uint8_t d[32];
    char hex[65];
    ff_sha256(data, len, d);
    ff_sha256_hex(d, hex);
    if (strcmp(hex, want) != 0)
        fprintf(stderr, "  sha256 of %zu bytes: got %s\n", len, hex);
    return strcmp(hex, want) == 0;
}

static void test_sha256_vectors(void)
{
    CHECK(sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(sha_is(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(sha_is(m448, strlen(m448),
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    CHECK(sha_is(m896, strlen(m896),
                 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    CHECK(sha_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    /* padding boundaries (values from Python's hashlib) */
    CHECK(sha_is(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"));
    CHECK(sha_is(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"));
    CHECK(sha_is(a, 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"));
    CHECK(sha_is(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"));
    CHECK(sha_is(a, 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"));
    CHECK(sha_is(a, 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"));
    free(a);
}

/* ------------------------------------------------------------------------ */
/* the real MNIST files                                                      */

static void check_real(ff_split split, int want_n, const int want_counts[10],
                       const uint8_t first_labels[10], double want_mean)
{
    ff_dataset ds = {0};
    ff_err err = {0};
    double t0 = now_sec();
    int rc = ff_dataset_open(&ds, MNIST_DIR, FF_DATA_AUTO, split, 0, &err);
    double dt = now_sec() - t0;
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == FF_OK);
    printf("     loaded %s split %d (%d images) in %.3f s\n", MNIST_DIR, (int)split, ds.n, dt);
    CHECK(ds.format == FF_DATA_IDX);
    CHECK(ds.n == want_n);
    CHECK(ds.shape.c == 1 && ds.shape.h == 28 && ds.shape.w == 28 && ff_dataset_dim(&ds) == 784);
    if (rc || ds.n != want_n) {
        ff_dataset_free(&ds);
        return;
    }
    int counts[10] = {0};
    for (int i = 0; i < ds.n; i++)
        counts[ds.labels[i] < 10 ? ds.labels[i] : 0] += ds.labels[i] < 10;
    for (int c = 0; c < 10; c++)
        CHECK(counts[c] == want_counts[c]);
    CHECK(memcmp(ds.labels, first_labels, 10) == 0);
    size_t total = (size_t)ds.n * 784, in_range = 0, zeros = 0, ones = 0;
    double sum = 0;
    for (size_t i = 0; i < total; i++) {
        float v = ds.images[i];
        in_range += v >= 0.0f && v <= 1.0f;
        zeros += v == 0.0f;
        ones += v == 1.0f;
        sum += v;
    }
    CHECK(in_range == total);
    CHECK(zeros > total / 2 && ones > 0);
    CHECK_NEAR(sum / (double)total, want_mean, 5e-4);
    ff_dataset_free(&ds);
}

static void test_real_train(void)
{
    static const int counts[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    static const uint8_t first[10] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4};
    check_real(FF_SPLIT_TRAIN, 60000, counts, first, 0.1307);
}

static void test_real_t10k(void)
{
    static const int counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    static const uint8_t first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    check_real(FF_SPLIT_TEST, 10000, counts, first, 0.1325);
}

static void test_real_limit(void)
{
    ff_dataset ds = {0};
    ff_err err = {0};
    CHECK(ff_dataset_open(&ds, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TEST, 25, &err) == FF_OK);
    CHECK(ds.n == 25 && ff_dataset_dim(&ds) == 784);
    static const uint8_t first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    CHECK(ds.labels && memcmp(ds.labels, first, 10) == 0);
    ff_dataset_free(&ds);
}

/* ------------------------------------------------------------------------ */
/* ff_data_read_maybe_gz                                                     */

static void test_read_maybe_gz(void)
{
    const char *dir = case_dir("read");
    buf img = make_images(20, 6, 5), gz = gzip_buf(img);
    CHECK(write_file(dir, "raw.bin", img.p, img.n) == 0);
    CHECK(write_file(dir, "x.gz", gz.p, gz.n) == 0);
    CHECK(write_file(dir, "empty", "", 0) == 0);
    char path[512];
    uint8_t *out = NULL;
    size_t len = 0;
    ff_err err = {0};

    snprintf(path, sizeof path, "%s/raw.bin", dir);
    CHECK(ff_data_read_maybe_gz(path, &out, &len, &err) == FF_OK);
    CHECK(len == img.n && out && memcmp(out, img.p, img.n) == 0);
    free(out);

    snprintf(path, sizeof path, "%s/x.gz", dir);
    CHECK(gz.n > 0 && gz.n != img.n);
    CHECK(ff_data_read_maybe_gz(path, &out, &len, &err) == FF_OK);
    CHECK(len == img.n && out && memcmp(out, img.p, img.n) == 0);
    free(out);

    snprintf(path, sizeof path, "%s/empty", dir);
    CHECK(ff_data_read_maybe_gz(path, &out, &len, &err) == FF_OK && len == 0);
    free(out);

    snprintf(path, sizeof path, "%s/nope.gz", dir);
    CHECK(ff_data_read_maybe_gz(path, &out, &len, &err) == FF_ERR_IO);
    CHECK(has(err.msg, path) && out == NULL);
    CHECK(ff_data_read_maybe_gz(dir, &out, &len, &err) == FF_ERR_FORMAT && has(err.msg, dir));
    CHECK(has(err.msg, "not a regular file (a directory)"));
    free(img.p);
    free(gz.p);
}

/* ------------------------------------------------------------------------ */
/* synthetic datasets                                                        */

static void check_synthetic(const ff_dataset *ds, int n, buf img, buf lab)
{
    CHECK(ds->n == n && ds->shape.c == 1 && ds->shape.h == 5 && ds->shape.w == 7);
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)n * 35 && ds->images; i++)
        bad += ds->images[i] != (float)img.p[16 + i] / 255.0f;
    CHECK(ds->images && bad == 0);
    CHECK(ds->labels && memcmp(ds->labels, lab.p + 8, (size_t)n) == 0);
}

static void test_raw_and_gz_load(void)
{
    buf img = make_images(12, 5, 7), lab = make_labels(12);
    const char *raw = case_dir("raw"), *gz = case_dir("gz");
    write_pair(raw, "train", img, lab, 0);
    write_pair(gz, "train", img, lab, 1);
    ff_dataset a = {0}, b = {0};
    ff_err err = {0};
    CHECK(ff_dataset_open(&a, raw, FF_DATA_IDX, FF_SPLIT_TRAIN, 0, &err) == FF_OK);
    check_synthetic(&a, 12, img, lab);
    CHECK(ff_dataset_open(&b, gz, FF_DATA_IDX, FF_SPLIT_TRAIN, 0, &err) == FF_OK);
    check_synthetic(&b, 12, img, lab);
    /* the .gz name wins when both exist: make the raw copy in gz/ invalid */
    uint8_t junk[4] = {1, 2, 3, 4};
    CHECK(write_file(gz, "train-images-idx3-ubyte", junk, 4) == 0);
    CHECK(try_load(gz, 0, &err) == FF_OK);
    ff_dataset_free(&a);
    ff_dataset_free(&b);
    free(img.p);
    free(lab.p);
}

static void test_limit(void)
{
    buf img = make_images(12, 5, 7), lab = make_labels(12);
    const char *dir = case_dir("limit");
    write_pair(dir, "train", img, lab, 1);
    ff_dataset ds = {0};
    ff_err err = {0};
    CHECK(ff_dataset_open(&ds, dir, FF_DATA_IDX, FF_SPLIT_TRAIN, 3, &err) == FF_OK);
    check_synthetic(&ds, 3, img, lab);
    ff_dataset_free(&ds);
    const int all[] = {0, -1, 12, 100};
    for (int i = 0; i < 4; i++) {
        CHECK(ff_dataset_open(&ds, dir, FF_DATA_IDX, FF_SPLIT_TRAIN, all[i], &err) == FF_OK);
        check_synthetic(&ds, 12, img, lab);
        ff_dataset_free(&ds);
    }
    free(img.p);
    free(lab.p);
}

static void test_missing_files(void)
{
    ff_err err;
    const char *empty = case_dir("empty");
    char want[512];
    CHECK(try_load(empty, 0, &err) == FF_ERR_IO);
    snprintf(want, sizeof want, "%s/train-images-idx3-ubyte.gz", empty);
    CHECK(has(err.msg, want));
    snprintf(want, sizeof want, "%s/train-images-idx3-ubyte", empty);
    CHECK(has(err.msg, want));

    buf img = make_images(4, 5, 7);
    const char *nolab = case_dir("nolabels");
    CHECK(write_file(nolab, "train-images-idx3-ubyte", img.p, img.n) == 0);
    CHECK(try_load(nolab, 0, &err) == FF_ERR_IO);
    snprintf(want, sizeof want, "%s/train-labels-idx1-ubyte", nolab);
    CHECK(has(err.msg, want));
    CHECK(try_load("/nonexistent-ffrun-dir", 0, &err) == FF_ERR_IO);
    CHECK(has(err.msg, "/nonexistent-ffrun-dir/train-images-idx3-ubyte"));
    free(img.p);
}

static void test_bad_magic(void)
{
    ff_err err;
    buf img = make_images(4, 5, 7), lab = make_labels(4);
    const char *d1 = case_dir("magic_img"), *d2 = case_dir("magic_lab");
    put_be32(img.p, 0x00000801u);
    write_pair(d1, "train", img, lab, 1);
    CHECK(try_load(d1, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "bad magic 0x00000801") && has(err.msg, "train-images-idx3-ubyte.gz"));
    put_be32(img.p, 0x00000803u);
    put_be32(lab.p, 0x00000803u);
    write_pair(d2, "train", img, lab, 0);
    CHECK(try_load(d2, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "bad magic") && has(err.msg, "train-labels-idx1-ubyte"));
    free(img.p);
    free(lab.p);
}

static void test_truncated_and_extra(void)
{
    ff_err err;
    buf img = make_images(4, 5, 7), lab = make_labels(4);
    const char *d1 = case_dir("trunc_img"), *d2 = case_dir("trunc_lab"), *d3 = case_dir("extra"),
               *d4 = case_dir("trunc_hdr");
    buf short_img = {img.p, img.n - 1};
    write_pair(d1, "train", short_img, lab, 1);
    CHECK(try_load(d1, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "truncated") && has(err.msg, "train-images-idx3-ubyte.gz"));
    CHECK(has(err.msg, "139 bytes follow"));

    buf short_lab = {lab.p, lab.n - 2};
    write_pair(d2, "train", img, short_lab, 0);
    CHECK(try_load(d2, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "truncated") && has(err.msg, "train-labels-idx1-ubyte"));

    buf big = {malloc(img.n + 3), img.n + 3};
    memcpy(big.p, img.p, img.n);
    memset(big.p + img.n, 0, 3);
    write_pair(d3, "train", big, lab, 1);
    CHECK(try_load(d3, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "3 unexpected bytes") && has(err.msg, "train-images-idx3-ubyte.gz"));

    buf hdr = {img.p, 10};
    write_pair(d4, "train", hdr, lab, 0);
    CHECK(try_load(d4, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "truncated IDX header"));
    free(big.p);
    free(img.p);
    free(lab.p);
}

static void test_count_and_label_range(void)
{
    ff_err err;
    buf img = make_images(12, 5, 7), lab11 = make_labels(11), lab = make_labels(12);
    const char *d1 = case_dir("count"), *d2 = case_dir("label10"), *d3 = case_dir("zero");
    write_pair(d1, "train", img, lab11, 1);
    CHECK(try_load(d1, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "12 images") && has(err.msg, "11 labels"));

    lab.p[8 + 7] = 10;
    write_pair(d2, "train", img, lab, 0);
    CHECK(try_load(d2, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "label 10 at index 7") && has(err.msg, "train-labels-idx1-ubyte"));
    /* a bad label beyond the limit is still an error: the file is corrupt */
    CHECK(try_load(d2, 3, &err) == FF_ERR_FORMAT);

    buf img0 = make_images(0, 5, 7), lab0 = make_labels(0);
    write_pair(d3, "train", img0, lab0, 0);
    CHECK(try_load(d3, 0, &err) == FF_ERR_FORMAT && has(err.msg, "no images"));
    free(img0.p);
    free(lab0.p);
    free(img.p);
    free(lab11.p);
    free(lab.p);
}

/* Writes gz-compressed images (edited by `edit`) and labels into a new dir. */
static const char *gz_case(const char *name, buf img, buf lab, buf (*edit)(buf))
{
    const char *dir = case_dir(name);
    buf gi = gzip_buf(img), gl = gzip_buf(lab), e = edit(gi);
    CHECK(write_file(dir, "train-images-idx3-ubyte.gz", e.p, e.n) == 0);
    CHECK(write_file(dir, "train-labels-idx1-ubyte.gz", gl.p, gl.n) == 0);
    if (e.p != gi.p)
        free(e.p);
    free(gi.p);
    free(gl.p);
    return dir;
}

static buf flip_middle(buf b)
{
    b.p[b.n / 2] ^= 0x55;
    return b;
}
static buf cut_half(buf b) { return (buf){b.p, b.n / 2}; }
static buf cut_trailer(buf b) { return (buf){b.p, b.n - 3}; }
static buf cut_header(buf b) { return (buf){b.p, 5}; }
static buf add_junk(buf b)
{
    buf o = {malloc(b.n + 4), b.n + 4};
    memcpy(o.p, b.p, b.n);
    memcpy(o.p + b.n, "junk", 4);
    return o;
}
static buf add_member(buf b)
{
    buf o = {malloc(2 * b.n), 2 * b.n};
    memcpy(o.p, b.p, b.n);
    memcpy(o.p + b.n, b.p, b.n);
    return o;
}

static void test_bad_gzip(void)
{
    ff_err err;
    buf img = make_images(200, 8, 8), lab = make_labels(200);
    const char *d = gz_case("gz_flip", img, lab, flip_middle);
    CHECK(try_load(d, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "corrupt gzip stream") && has(err.msg, "train-images-idx3-ubyte.gz"));

    d = gz_case("gz_half", img, lab, cut_half);
    CHECK(try_load(d, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "truncated gzip stream") && has(err.msg, "train-images-idx3-ubyte.gz"));
    d = gz_case("gz_trailer", img, lab, cut_trailer);
    CHECK(try_load(d, 0, &err) == FF_ERR_FORMAT && has(err.msg, "truncated gzip stream"));
    d = gz_case("gz_header", img, lab, cut_header);
    CHECK(try_load(d, 0, &err) == FF_ERR_FORMAT && has(err.msg, "truncated gzip stream"));

    d = gz_case("gz_junk", img, lab, add_junk);
    CHECK(try_load(d, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "4 bytes of trailing data") && has(err.msg, "train-images-idx3-ubyte.gz"));
    d = gz_case("gz_member", img, lab, add_member);
    CHECK(try_load(d, 0, &err) == FF_ERR_FORMAT && has(err.msg, "multi-member"));
    free(img.p);
    free(lab.p);
}

/* ------------------------------------------------------------------------ */
/* SHA256SUMS                                                                */

static void write_sums(const char *dir, const char *text)
{
    CHECK(write_file(dir, "SHA256SUMS", text, strlen(text)) == 0);
}

static void test_checksums(void)
{
    ff_err err;
    buf img = make_images(12, 5, 7), lab = make_labels(12);
    char hi[65], hl[65], sums[512], bad[65];
    sha_hex(img, hi);
    sha_hex(lab, hl);
    const char *dir = case_dir("sums");
    write_pair(dir, "train", img, lab, 1);

    /* sums of the decompressed bytes match; '*' (binary mode) and CRLF accepted */
    snprintf(sums, sizeof sums, "%s  train-images-idx3-ubyte\r\n%s *train-labels-idx1-ubyte\n", hi,
             hl);
    write_sums(dir, sums);
    CHECK(try_load(dir, 0, &err) == FF_OK);

    memcpy(bad, hi, sizeof bad);
    bad[10] = bad[10] == '0' ? '1' : '0';
    snprintf(sums, sizeof sums,
             "# comment\n\n%s  train-images-idx3-ubyte\n%s  train-labels-idx1-ubyte\n", bad, hl);
    write_sums(dir, sums);
    CHECK(try_load(dir, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "checksum mismatch") && has(err.msg, "train-images-idx3-ubyte.gz"));
    CHECK(has(err.msg, bad) && has(err.msg, hi) && has(err.msg, "decompressed"));

    /* labels wrong, images right */
    snprintf(sums, sizeof sums, "%s  train-images-idx3-ubyte\n%s  train-labels-idx1-ubyte\n", hi,
             hi);
    write_sums(dir, sums);
    CHECK(try_load(dir, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "checksum mismatch") && has(err.msg, "train-labels-idx1-ubyte.gz"));

    /* files that are not listed are not checked */
    snprintf(sums, sizeof sums, "%s  t10k-images-idx3-ubyte\n", bad);
    write_sums(dir, sums);
    CHECK(try_load(dir, 0, &err) == FF_OK);

    /* a malformed SHA256SUMS is an error, naming file and line */
    snprintf(sums, sizeof sums, "%s  train-images-idx3-ubyte\nnot a checksum line\n", hi);
    write_sums(dir, sums);
    CHECK(try_load(dir, 0, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "SHA256SUMS:2"));
    free(img.p);
    free(lab.p);
}

/* ------------------------------------------------------------------------ */
/* direct parser calls and ff_dataset_free                                   */

static void test_parse_direct(void)
{
    ff_err err = {0};
    int n = -1, r = -1, c = -1;
    const uint8_t *px = NULL;
    buf ok = make_images(1, 4096, 1);
    CHECK(ff_data_idx_parse_images(ok.p, ok.n, "x", &n, &r, &c, &px, &err) == FF_OK);
    CHECK(n == 1 && r == 4096 && c == 1 && px == ok.p + 16);
    put_be32(ok.p + 8, 4097);
    CHECK(ff_data_idx_parse_images(ok.p, ok.n, "x", &n, &r, &c, &px, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "4097x1") && has(err.msg, "out of range"));
    put_be32(ok.p + 8, 0);
    CHECK(ff_data_idx_parse_images(ok.p, ok.n, "x", &n, &r, &c, &px, &err) == FF_ERR_FORMAT);
    put_be32(ok.p + 8, 4096);
    put_be32(ok.p + 4, 0xFFFFFFFFu);
    CHECK(ff_data_idx_parse_images(ok.p, ok.n, "x", &n, &r, &c, &px, &err) == FF_ERR_FORMAT);
    CHECK(ff_data_idx_parse_images(ok.p, 3, NULL, &n, &r, &c, &px, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "truncated IDX header"));

    buf lab = make_labels(5);
    const uint8_t *lp = NULL;
    CHECK(ff_data_idx_parse_labels(lab.p, lab.n, "l", &n, &lp, &err) == FF_OK);
    CHECK(n == 5 && lp == lab.p + 8);
    CHECK(ff_data_idx_parse_images(lab.p, lab.n, "l", &n, &r, &c, &px, &err) == FF_ERR_FORMAT);
    CHECK(has(err.msg, "l: bad magic 0x00000801, expected 0x00000803"));
    CHECK(ff_data_idx_parse_labels(lab.p, lab.n - 1, "l", &n, &lp, &err) == FF_ERR_FORMAT);
    free(ok.p);
    free(lab.p);
}

static void test_dataset_free(void)
{
    ff_dataset ds = {0};
    ff_dataset_free(&ds);
    ff_dataset_free(&ds);
    ff_dataset_free(NULL);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0);
    ff_err err = {0};
    CHECK(ff_dataset_open(&ds, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TEST, 2, &err) == FF_OK && ds.n == 2);
    ff_dataset_free(&ds);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0 && ff_dataset_dim(&ds) == 0);
    ff_dataset_free(&ds);
}

/* ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* a net built for one set must not be fed the other: the message names both files */
static void test_same_shape(void)
{
    ff_dataset a = {.n = 1, .shape = {1, 28, 28}, .source = "d/train-images"};
    ff_dataset b = {.n = 1, .shape = {1, 20, 28}, .source = "d/t10k-images"};
    ff_dataset c = {.n = 1, .shape = {3, 28, 28}, .source = "d/colour"};
    ff_err e = {0};
    CHECK(ff_dataset_check_same_shape(&a, &a, &e) == FF_OK);
    CHECK(ff_dataset_check_same_shape(&a, &b, &e) == FF_ERR_FORMAT);
    CHECK(strcmp(e.msg, "d/train-images has 1x28x28 images but d/t10k-images has 1x20x28; both "
                        "sets must hold images of one shape (channels x height x width)") == 0);
    CHECK(ff_dataset_check_same_shape(&a, &c, &e) == FF_ERR_FORMAT); /* channels differ */
    ff_dataset real = {0};
    CHECK(ff_dataset_open(&real, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TEST, 5, &e) == FF_OK);
    CHECK(strcmp(real.source, MNIST_DIR "/t10k-images-idx3-ubyte.gz") == 0);
    ff_dataset_free(&real);
}

/* "" is no directory (the loop in ff_fs_mkdir_p used to start past its terminator) */
static void test_mkdir_p_empty(void)
{
    ff_err e = {0};
    CHECK(ff_fs_mkdir_p("", &e) == FF_ERR_USAGE);
    CHECK(strstr(e.msg, "empty") != NULL);
}

/* ------------------------------------------------------------------------ */
/* CIFAR-10 binary batches                                                   */

#define CIFAR_REC 3073

/* m records of image ids first..first+m: label (id * 7) % 10, pixel bytes pixel_at */
static buf make_cifar_batch(int first, int m)
{
    buf b = {malloc((size_t)m * CIFAR_REC), (size_t)m * CIFAR_REC};
    for (int i = 0; i < m; i++) {
        uint8_t *r = b.p + (size_t)i * CIFAR_REC;
        r[0] = (uint8_t)(((first + i) * 7) % 10);
        for (int j = 0; j < 3072; j++)
            r[1 + j] = pixel_at((size_t)(first + i), (size_t)j);
    }
    return b;
}

/* a CIFAR-10 folder: five training batches of per_batch records, a test batch of
 * n_test; returns the directory */
static const char *make_cifar_dir(const char *name, int per_batch, int n_test)
{
    const char *dir = case_dir(name);
    for (int k = 1; k <= 5; k++) {
        char f[32];
        snprintf(f, sizeof f, "data_batch_%d.bin", k);
        buf b = make_cifar_batch((k - 1) * per_batch, per_batch);
        CHECK(write_file(dir, f, b.p, b.n) == 0);
        free(b.p);
    }
    buf t = make_cifar_batch(100000, n_test);
    CHECK(write_file(dir, "test_batch.bin", t.p, t.n) == 0);
    free(t.p);
    return dir;
}

/* the five batches in order, CHW planes exactly as the record holds them, pixel / 255 */
static void test_cifar_read(void)
{
    const char *dir = make_cifar_dir("cifar_ok", 6, 4);
    const char *names = "plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    CHECK(write_file(dir, "batches.meta.txt", names, strlen(names)) == 0);
    ff_dataset ds;
    ff_err err = {0};
    CHECK(ff_dataset_open(&ds, dir, FF_DATA_AUTO, FF_SPLIT_TRAIN, 0, &err) == FF_OK);
    CHECK(ds.n == 30 && ds.format == FF_DATA_CIFAR10);
    CHECK(ds.shape.c == 3 && ds.shape.h == 32 && ds.shape.w == 32 && ff_dataset_dim(&ds) == 3072);
    int bad = 0;
    for (int i = 0; i < ds.n; i++) {
        bad += ds.labels[i] != (uint8_t)((i * 7) % 10);
        for (int j = 0; j < 3072; j++) /* record byte 1 + c*1024 + y*32 + x is (c, y, x) */
            bad += ds.images[(size_t)i * 3072 + j] != (float)pixel_at((size_t)i, (size_t)j) / 255.0f;
    }
    CHECK(bad == 0);
    CHECK(strcmp(ds.class_names[0], "plane") == 0 && strcmp(ds.class_names[9], "truck") == 0);
    CHECK(has(ds.source, "data_batch_1.bin"));
    ff_dataset_free(&ds);
    CHECK(ff_dataset_open(&ds, dir, FF_DATA_CIFAR10, FF_SPLIT_TEST, 3, &err) == FF_OK);
    CHECK(ds.n == 3 && ds.labels[1] == (uint8_t)((100001 * 7) % 10));
    CHECK(ds.images[2 * 3072 + 5] == (float)pixel_at(100002, 5) / 255.0f);
    ff_dataset_free(&ds);
    /* no batches.meta.txt: CIFAR-10's own names */
    const char *plain = make_cifar_dir("cifar_plain", 2, 2);
    CHECK(ff_dataset_open(&ds, plain, FF_DATA_CIFAR10, FF_SPLIT_TEST, 0, &err) == FF_OK);
    CHECK(strcmp(ds.class_names[1], "automobile") == 0);
    ff_dataset_free(&ds);
}

/* every bad folder: exit status 2 (FF_ERR_USAGE) and the file named */
static void test_cifar_errors(void)
{
    ff_dataset ds;
    ff_err err = {0};
    /* a truncated batch */
    const char *d = make_cifar_dir("cifar_trunc", 3, 2);
    buf b = make_cifar_batch(0, 3);
    CHECK(write_file(d, "data_batch_3.bin", b.p, b.n - 100) == 0);
    CHECK(ff_dataset_open(&ds, d, FF_DATA_AUTO, FF_SPLIT_TRAIN, 0, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "data_batch_3.bin") && has(err.msg, "3073-byte records"));
    CHECK(ds.images == NULL && ds.n == 0);
    /* a label byte over 9 */
    d = make_cifar_dir("cifar_label", 3, 2);
    b.p[CIFAR_REC * 2] = 10;
    CHECK(write_file(d, "data_batch_4.bin", b.p, b.n) == 0);
    CHECK(ff_dataset_open(&ds, d, FF_DATA_CIFAR10, FF_SPLIT_TRAIN, 0, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "data_batch_4.bin") && has(err.msg, "record 2") && has(err.msg, "label 10"));
    free(b.p);
    /* a missing batch file */
    d = make_cifar_dir("cifar_missing", 3, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/data_batch_5.bin", d);
    CHECK(remove(path) == 0);
    CHECK(ff_dataset_open(&ds, d, FF_DATA_AUTO, FF_SPLIT_TRAIN, 0, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "data_batch_5.bin") && has(err.msg, "no such file"));
    CHECK(ff_dataset_open(&ds, d, FF_DATA_AUTO, FF_SPLIT_TEST, 0, &err) == FF_OK); /* test alone */
    ff_dataset_free(&ds);
    /* a mix of formats: IDX files beside CIFAR batches */
    d = make_cifar_dir("cifar_mix", 3, 2);
    buf img = make_images(2, 2, 3);
    CHECK(write_file(d, "train-images-idx3-ubyte", img.p, img.n) == 0);
    free(img.p);
    ff_data_format f;
    CHECK(ff_data_detect(d, &f, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "two data set formats") && has(err.msg, "idx") && has(err.msg, "cifar10"));
    CHECK(ff_dataset_open(&ds, d, FF_DATA_AUTO, FF_SPLIT_TRAIN, 0, &err) == FF_ERR_USAGE);
    /* asked for by name, the other format's files are not read */
    CHECK(ff_dataset_open(&ds, d, FF_DATA_CIFAR10, FF_SPLIT_TRAIN, 0, &err) == FF_OK);
    ff_dataset_free(&ds);
    /* an empty folder: no format */
    d = case_dir("cifar_none");
    CHECK(ff_data_detect(d, &f, &err) == FF_ERR_USAGE && has(err.msg, "holds no data set"));
    CHECK(ff_data_detect(MNIST_DIR, &f, &err) == FF_OK && f == FF_DATA_IDX);
    /* a bad class names file */
    d = make_cifar_dir("cifar_names", 2, 2);
    CHECK(write_file(d, "batches.meta.txt", "a\nb\n", 4) == 0);
    CHECK(ff_dataset_open(&ds, d, FF_DATA_CIFAR10, FF_SPLIT_TEST, 0, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "batches.meta.txt") && has(err.msg, "line 3"));
    /* an empty one (read back as no buffer at all; the fuzzer's find): line 1 */
    CHECK(write_file(d, "batches.meta.txt", "", 0) == 0);
    CHECK(ff_dataset_open(&ds, d, FF_DATA_CIFAR10, FF_SPLIT_TEST, 0, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "batches.meta.txt") && has(err.msg, "line 1"));
}

/* SHA256SUMS lists a batch: a changed byte is a mismatch naming the file */
static void test_cifar_checksums(void)
{
    const char *d = make_cifar_dir("cifar_sums", 2, 2);
    buf t = make_cifar_batch(100000, 2);
    uint8_t digest[32];
    char hex[65], sums[200];
    ff_sha256(t.p, t.n, digest);
    ff_sha256_hex(digest, hex);
    snprintf(sums, sizeof sums, "%s  test_batch.bin\n", hex);
    CHECK(write_file(d, "SHA256SUMS", sums, strlen(sums)) == 0);
    ff_dataset ds;
    ff_err err = {0};
    CHECK(ff_dataset_open(&ds, d, FF_DATA_AUTO, FF_SPLIT_TEST, 0, &err) == FF_OK);
    ff_dataset_free(&ds);
    t.p[500] ^= 1;
    CHECK(write_file(d, "test_batch.bin", t.p, t.n) == 0);
    CHECK(ff_dataset_open(&ds, d, FF_DATA_AUTO, FF_SPLIT_TEST, 0, &err) == FF_ERR_USAGE);
    CHECK(has(err.msg, "test_batch.bin") && has(err.msg, "checksum mismatch"));
    free(t.p);
}

/* The validation split (data.validation): disjoint from the training images and together
 * exactly the originals (each image found by its pixels), stratified (every class within
 * one image of its proportional share), index order kept, the same for the same seed and
 * another for another seed, counts and fractions, and the errors. */
static int find_image(const ff_dataset *orig, const float *img, int *used)
{
    const size_t dim = ff_dataset_dim(orig);
    for (int i = 0; i < orig->n; i++)
        if (!used[i] && memcmp(orig->images + (size_t)i * dim, img, sizeof(float) * dim) == 0) {
            used[i] = 1;
            return i;
        }
    return -1;
}

static void test_validation_split(void)
{
    ff_err err;
    ff_dataset orig, ds, val, ds2, val2;
    CHECK(ff_dataset_open(&orig, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TRAIN, 1000, &err) == FF_OK);
    CHECK(ff_dataset_open(&ds, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TRAIN, 1000, &err) == FF_OK);
    CHECK(ff_data_validation_count(0.1f, 1000) == 100 && ff_data_validation_count(250.0f, 1000) == 250 &&
          ff_data_validation_count(0.0f, 1000) == 0 && ff_data_validation_count(0.0004f, 1000) == 0);
    ff_split_info info;
    CHECK(ff_dataset_split_validation(&ds, 100, 7, &val, &info, &err) == FF_OK);
    CHECK(ds.n == 900 && val.n == 100 && info.n == 100);
    CHECK(val.shape.c == 1 && val.shape.h == 28 && val.shape.w == 28 && val.format == FF_DATA_IDX);
    /* every image once, in one of the two sets, each set in index order */
    int *used = calloc((size_t)orig.n, sizeof(int));
    int last = -1, ok_order = 1, found = 1, per[10] = {0}, all[10] = {0};
    for (int i = 0; i < val.n; i++) {
        int k = find_image(&orig, val.images + (size_t)i * 784, used);
        found &= k >= 0 && orig.labels[k] == val.labels[i];
        ok_order &= k > last;
        last = k;
        per[val.labels[i]]++;
    }
    last = -1;
    for (int i = 0; i < ds.n; i++) {
        int k = find_image(&orig, ds.images + (size_t)i * 784, used);
        found &= k >= 0 && orig.labels[k] == ds.labels[i];
        ok_order &= k > last;
        last = k;
    }
    CHECK(found && ok_order);
    for (int i = 0; i < orig.n; i++)
        all[orig.labels[i]]++;
    int strat = 1, sum = 0;
    for (int c = 0; c < 10; c++) {
        const double share = 100.0 * all[c] / orig.n;
        strat &= per[c] >= (int)share && per[c] <= (int)share + 1 && per[c] == info.per_class[c];
        sum += per[c];
    }
    CHECK(strat && sum == 100);
    /* the same seed: the same split; another seed: another */
    CHECK(ff_dataset_open(&ds2, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TRAIN, 1000, &err) == FF_OK);
    ff_split_info info2;
    CHECK(ff_dataset_split_validation(&ds2, 100, 7, &val2, &info2, &err) == FF_OK);
    CHECK(info2.digest == info.digest && memcmp(val2.images, val.images, sizeof(float) * 100 * 784) == 0 &&
          memcmp(ds2.labels, ds.labels, 900) == 0);
    ff_dataset_free(&ds2);
    ff_dataset_free(&val2);
    CHECK(ff_dataset_open(&ds2, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TRAIN, 1000, &err) == FF_OK);
    CHECK(ff_dataset_split_validation(&ds2, 100, 8, &val2, &info2, &err) == FF_OK);
    CHECK(info2.digest != info.digest && memcmp(val2.images, val.images, sizeof(float) * 100 * 784) != 0);
    ff_dataset_free(&ds2);
    ff_dataset_free(&val2);
    /* errors: nothing left to train on, nothing to validate on */
    CHECK(ff_dataset_open(&ds2, MNIST_DIR, FF_DATA_IDX, FF_SPLIT_TRAIN, 50, &err) == FF_OK);
    CHECK(ff_dataset_split_validation(&ds2, 50, 1, &val2, NULL, &err) == FF_ERR_USAGE &&
          strstr(err.msg, "leaves none to train on") && val2.n == 0 && ds2.n == 50);
    CHECK(ff_dataset_split_validation(&ds2, 0, 1, &val2, NULL, &err) == FF_ERR_USAGE &&
          strstr(err.msg, "no image to validate on"));
    ff_dataset_free(&ds2);
    free(used);
    ff_dataset_free(&orig);
    ff_dataset_free(&ds);
    ff_dataset_free(&val);
}

/* per-channel statistics and standardisation against a naive double loop */
static void test_channel_stats(void)
{
    const char *d = make_cifar_dir("cifar_stats", 4, 3);
    ff_dataset ds;
    ff_err err = {0};
    CHECK(ff_dataset_open(&ds, d, FF_DATA_CIFAR10, FF_SPLIT_TRAIN, 0, &err) == FF_OK);
    float mean[FF_MAX_CHANNELS], sd[FF_MAX_CHANNELS];
    ff_dataset_channel_stats(&ds, mean, sd);
    for (int c = 0; c < 3; c++) {
        double s = 0, s2 = 0, n = 0;
        for (int i = 0; i < ds.n; i++)
            for (int k = 0; k < 1024; k++) {
                double v = ds.images[(size_t)i * 3072 + (size_t)c * 1024 + k];
                s += v;
                n += 1;
            }
        double m = s / n;
        for (int i = 0; i < ds.n; i++)
            for (int k = 0; k < 1024; k++) {
                double v = ds.images[(size_t)i * 3072 + (size_t)c * 1024 + k] - m;
                s2 += v * v;
            }
        CHECK_NEAR(mean[c], m, 1e-6);
        CHECK_NEAR(sd[c], sqrt(s2 / n), 1e-5);
    }
    CHECK(mean[0] != mean[1] || sd[0] != sd[1]); /* three channels, not one repeated */
    const float x = ds.images[3072 + 1024 + 7]; /* image 1, green, pixel 7 */
    ff_dataset_standardize(&ds, mean, sd);
    CHECK_NEAR(ds.images[3072 + 1024 + 7], (x - mean[1]) / sd[1], 1e-6);
    ff_dataset_channel_stats(&ds, mean, sd);
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(mean[c], 0.0, 1e-5);
        CHECK_NEAR(sd[c], 1.0, 1e-4);
    }
    ff_dataset_free(&ds);
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ff_test_data_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_sha256_vectors);
    RUN(test_real_train);
    RUN(test_real_t10k);
    RUN(test_real_limit);
    RUN(test_read_maybe_gz);
    RUN(test_raw_and_gz_load);
    RUN(test_limit);
    RUN(test_missing_files);
    RUN(test_bad_magic);
    RUN(test_truncated_and_extra);
    RUN(test_count_and_label_range);
    RUN(test_bad_gzip);
    RUN(test_checksums);
    RUN(test_parse_direct);
    RUN(test_dataset_free);
    RUN(test_same_shape);
    RUN(test_mkdir_p_empty);
    RUN(test_cifar_read);
    RUN(test_cifar_errors);
    RUN(test_cifar_checksums);
    RUN(test_channel_stats);
    RUN(test_validation_split);
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_MAIN_END();
}
