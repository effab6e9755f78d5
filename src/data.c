/* data.c - data sets: the format table, opening a split, reading files (gunzip,
 * SHA256SUMS checks). The readers: data_idx.c, data_cifar10.c; what a run makes of the
 * splits (validation, statistics): data_splits.c. */
#include "ff/data.h"
#include "ff/sha256.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "ff/fs.h"
#include "data_internal.h"

#define MAX_FILE_BYTES ((size_t)1 << 31) /* raw or decompressed */
#define MAX_SUMS_BYTES ((size_t)16 << 20) /* SHA256SUMS */
#define NUM_CLASSES 10

/* ------------------------------------------------------------------------ */
/* reading files: ff_fs_read_file (include/ff/fs.h) reads, gunzip inflates  */

/* Grows *buf to hold at least twice *cap bytes (capped at MAX_FILE_BYTES). */
static int grow(uint8_t **buf, size_t *cap, const char *path, const char *what, ff_err *err)
{
    if (*cap >= MAX_FILE_BYTES)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: %s is larger than %zu bytes", path, what,
                          MAX_FILE_BYTES);
    size_t ncap = *cap * 2 > MAX_FILE_BYTES ? MAX_FILE_BYTES : *cap * 2;
    uint8_t *nbuf = realloc(*buf, ncap);
    if (!nbuf)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, ncap);
    *buf = nbuf;
    *cap = ncap;
    return FF_OK;
}

/* Expected decompressed size from the gzip trailer (ISIZE, size mod 2^32),
 * bounded by deflate's maximum ratio so a corrupt trailer cannot force a huge
 * allocation. */
static size_t gz_size_hint(const uint8_t *in, size_t len)
{
    size_t isize = 0;
    if (len >= 4)
        isize = (size_t)in[len - 4] | (size_t)in[len - 3] << 8 | (size_t)in[len - 2] << 16 |
                (size_t)in[len - 1] << 24;
    size_t bound = len < MAX_FILE_BYTES / 1032 ? len * 1032 : MAX_FILE_BYTES;
    if (isize > bound)
        isize = bound;
    return isize < 64 ? 64 : isize + 1; /* +1: room left when the trailer is read */
}

/* Maps a failed inflate() result to an error naming the file. */
static int inflate_error(const char *path, int zr, const z_stream *zs, size_t in_left, ff_err *err)
{
    if (zr == Z_MEM_ERROR)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory while decompressing", path);
    if (zr == Z_BUF_ERROR && zs->avail_in == 0 && in_left == 0)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: truncated gzip stream (ends after %lu decompressed bytes)", path,
                          (unsigned long)zs->total_out);
    return ff_err_set(err, FF_ERR_FORMAT, "%s: corrupt gzip stream: %s", path,
                      zs->msg ? zs->msg : "invalid data");
}

/* Runs inflate over in[0..in_len) into a growing buffer; *out is malloc'ed. */
static int inflate_all(z_stream *zs, const char *path, const uint8_t *in, size_t in_len,
                       uint8_t **out, size_t *out_len, ff_err *err)
{
    size_t cap = gz_size_hint(in, in_len), used = 0, in_left = in_len;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: out of memory decompressing", path);
    zs->next_in = (Bytef *)in;
    for (;;) {
        if (zs->avail_in == 0 && in_left > 0) {
            zs->avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            in_left -= zs->avail_in;
        }
        int rc = used == cap ? grow(&buf, &cap, path, "the decompressed data", err) : FF_OK;
        if (rc) {
            free(buf);
            return rc;
        }
        size_t room = cap - used;
        zs->next_out = buf + used;
        zs->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = zs->avail_out;
        int zr = inflate(zs, Z_NO_FLUSH);
        used += before - zs->avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK) { /* there is always input and output room here */
            free(buf);
            return inflate_error(path, zr, zs, in_left, err);
        }
    }
    size_t trailing = zs->avail_in + in_left;
    if (trailing) {
        const uint8_t *t = zs->next_in;
        int member = zs->avail_in >= 2 && t[0] == 0x1f && t[1] == 0x8b;
        free(buf);
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: %zu bytes of trailing data after the gzip stream%s", path, trailing,
                          member ? " (multi-member gzip files are not supported)" : "");
    }
    *out = buf;
    *out_len = used;
    return FF_OK;
}

/* Decompresses a complete gzip file image. *out is malloc'ed; caller frees. */
static int gunzip(const char *path, const uint8_t *in, size_t in_len, uint8_t **out,
                  size_t *out_len, ff_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return ff_err_set(err, FF_ERR_NOMEM, "%s: cannot initialise zlib", path);
    int rc = inflate_all(&zs, path, in, in_len, out, out_len, err);
    inflateEnd(&zs);
    return rc;
}

int ff_data_read_maybe_gz(const char *path, uint8_t **out, size_t *len, ff_err *err)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    *out = NULL;
    *len = 0;
    int rc = ff_fs_read_file(path, MAX_FILE_BYTES, &raw, &raw_len, err);
    if (rc)
        return rc;
    if (raw_len < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
        *out = raw;
        *len = raw_len;
        return FF_OK;
    }
    rc = gunzip(path, raw, raw_len, out, len, err);
    free(raw);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* SHA256SUMS                                                                */

static int is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

/* Checks one SHA256SUMS line ("<64 hex>  <name>" or "<64 hex> *<name>", no
 * newline); if its name equals base, copies the lower-cased hash to hex. */
static int sums_line(const ff_sums *sf, int lineno, const char *line, size_t n,
                     const char *base, char hex[65], ff_err *err)
{
    if (n == 0 || line[0] == '#')
        return FF_OK;
    if (n < 67 || !is_hex64(line) || line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s:%d: expected \"<64 hex digits>  <file name>\"", sf->path, lineno);
    const char *fname = line + 66;
    size_t flen = n - 66;
    if (flen != strlen(base) || memcmp(fname, base, flen) != 0)
        return FF_OK;
    for (int i = 0; i < 64; i++)
        hex[i] = (char)(line[i] >= 'A' && line[i] <= 'F' ? line[i] - 'A' + 'a' : line[i]);
    hex[64] = '\0';
    return FF_OK;
}

/* Looks base up in SHA256SUMS; hex[0] stays '\0' if it is not listed. Every
 * line is validated, so a malformed SHA256SUMS is an error. */
static int sums_lookup(const ff_sums *sf, const char *base, char hex[65], ff_err *err)
{
    hex[0] = '\0';
    const char *p = sf->text, *end = sf->text + sf->len;
    for (int lineno = 1; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        int rc = sums_line(sf, lineno, p, n, base, hex, err);
        if (rc)
            return rc;
        p = stop + 1;
    }
    return FF_OK;
}

/* Loads <dir>/SHA256SUMS if present. */
static int sums_load(ff_sums *sf, const char *dir, ff_err *err)
{
    struct stat st;
    size_t len = 0;
    uint8_t *buf = NULL;
    sf->text = NULL;
    sf->len = 0;
    if ((size_t)snprintf(sf->path, sizeof sf->path, "%s/SHA256SUMS", dir) >= sizeof sf->path)
        return ff_err_set(err, FF_ERR_USAGE, "%s: directory name too long", dir);
    if (stat(sf->path, &st) != 0 && errno == ENOENT)
        return FF_OK;
    int rc = ff_fs_read_file(sf->path, MAX_SUMS_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    if (memchr(buf, '\0', len)) {
        free(buf);
        return ff_err_set(err, FF_ERR_FORMAT, "%s: not a text file", sf->path);
    }
    sf->text = (char *)buf;
    sf->len = len;
    return FF_OK;
}

/* Verifies f against SHA256SUMS (if it lists f->base). */
static int verify_checksum(const ff_data_file *f, const ff_sums *sf, ff_err *err)
{
    char want[65], got[65];
    uint8_t digest[32];
    if (!sf->text)
        return FF_OK;
    int rc = sums_lookup(sf, f->base, want, err);
    if (rc || !want[0])
        return rc;
    ff_sha256(f->bytes, f->len, digest);
    ff_sha256_hex(digest, got);
    if (strcmp(want, got) != 0)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: checksum mismatch: expected SHA-256 %s (from %s), got %s%s",
                          f->path, want, sf->path, got,
                          f->gz ? " (of the decompressed data)" : "");
    return FF_OK;
}

/* ------------------------------------------------------------------------ */
/* files of a data set                                                       */

/* "<dir>/<base>" into out; FF_ERR_USAGE if it does not fit. */
static int join_path(char *out, size_t cap, const char *dir, const char *base, const char *ext,
                     ff_err *err)
{
    if ((size_t)snprintf(out, cap, "%s/%s%s", dir, base, ext) >= cap)
        return ff_err_set(err, FF_ERR_USAGE, "%s: directory name too long", dir);
    return FF_OK;
}

int ff_data_file_exists(const char *dir, const char *base, int try_gz)
{
    char path[PATH_MAX];
    struct stat st;
    if (try_gz && join_path(path, sizeof path, dir, base, ".gz", NULL) == FF_OK &&
        stat(path, &st) == 0)
        return 1;
    return join_path(path, sizeof path, dir, base, "", NULL) == FF_OK && stat(path, &st) == 0;
}

/* Picks "<dir>/<base>.gz" (with try_gz) if it exists, else "<dir>/<base>". */
static int find_file(ff_data_file *f, const char *dir, int try_gz, ff_err *err)
{
    struct stat st;
    char raw[PATH_MAX];
    int rc = join_path(raw, sizeof raw, dir, f->base, "", err);
    if (rc)
        return rc;
    if (try_gz) {
        if ((rc = join_path(f->path, sizeof f->path, dir, f->base, ".gz", err)))
            return rc;
        if (stat(f->path, &st) == 0) {
            f->gz = 1;
            return FF_OK;
        }
        if (errno != ENOENT)
            return ff_err_set(err, FF_ERR_IO, "%s: %s", f->path, strerror(errno));
    }
    if (stat(raw, &st) == 0) {
        memcpy(f->path, raw, sizeof raw);
        return FF_OK;
    }
    if (errno != ENOENT)
        return ff_err_set(err, FF_ERR_IO, "%s: %s", raw, strerror(errno));
    if (try_gz)
        return ff_err_set(err, FF_ERR_IO, "%s: no such file (tried %s too)", f->path, raw);
    return ff_err_set(err, FF_ERR_IO, "%s: no such file", raw);
}

int ff_data_file_read(ff_data_file *f, const char *dir, const char *base, int try_gz,
                      const ff_sums *sums, ff_err *err)
{
    memset(f, 0, sizeof *f);
    if ((size_t)snprintf(f->base, sizeof f->base, "%s", base) >= sizeof f->base)
        return ff_err_set(err, FF_ERR_USAGE, "data file name \"%s\" is too long", base);
    int rc = find_file(f, dir, try_gz, err);
    if (!rc)
        rc = ff_data_read_maybe_gz(f->path, &f->bytes, &f->len, err);
    if (!rc)
        rc = verify_checksum(f, sums, err);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* the formats                                                               */

static const ff_data_reader READERS[FF_DATA_FORMAT_COUNT] = {
    [FF_DATA_AUTO] = {"auto", NULL, NULL},
    [FF_DATA_IDX] = {"idx", ff_data_idx_detect, ff_data_idx_read},
    [FF_DATA_CIFAR10] = {"cifar10", ff_data_cifar10_detect, ff_data_cifar10_read},
};
_Static_assert(sizeof READERS / sizeof READERS[0] == FF_DATA_FORMAT_COUNT,
               "a reader per ff_data_format");

const char *ff_data_format_name(ff_data_format format)
{
    return format >= 0 && format < FF_DATA_FORMAT_COUNT ? READERS[format].name : "?";
}

int ff_data_detect(const char *dir, ff_data_format *format, ff_err *err)
{
    ff_data_format found = FF_DATA_AUTO;
    const char *found_marker = NULL, *marker = NULL;
    for (int k = 0; k < FF_DATA_FORMAT_COUNT; k++) {
        if (!READERS[k].detect || !READERS[k].detect(dir, &marker))
            continue;
        if (found != FF_DATA_AUTO)
            return ff_err_set(err, FF_ERR_USAGE, "%s holds files of two data set formats (%s: %s, "
                              "%s: %s); set data.format or keep one format per folder", dir,
                              READERS[found].name, found_marker, READERS[k].name, marker);
        found = (ff_data_format)k;
        found_marker = marker;
    }
    if (found == FF_DATA_AUTO) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return ff_err_set(err, FF_ERR_USAGE, "data.dir %s: %s", dir, strerror(errno));
        return ff_err_set(err, FF_ERR_USAGE, "%s holds no data set ffrun knows (idx: "
                          "train-images-idx3-ubyte[.gz] and the other MNIST files; cifar10: "
                          "data_batch_1.bin ... test_batch.bin)", dir);
    }
    *format = found;
    return FF_OK;
}

/* Checks every label is 0..9. */
static int check_labels(const ff_data_raw *raw, ff_err *err)
{
    for (int i = 0; i < raw->n; i++)
        if (raw->labels[i] >= NUM_CLASSES)
            return ff_err_set(err, raw->label_err ? raw->label_err : FF_ERR_FORMAT,
                              "%s: label %d at index %d is out of range 0..%d", raw->label_path,
                              raw->labels[i], i, NUM_CLASSES - 1);
    return FF_OK;
}

/* Copies the first n images (as pixel / 255) and labels of raw into ds. */
static int fill_dataset(ff_dataset *ds, const ff_data_raw *raw, int n, ff_err *err)
{
    float lut[256];
    const size_t count = (size_t)n * (size_t)ff_shape_dim(raw->shape);
    ds->images = malloc(count ? count * sizeof(float) : 1);
    ds->labels = malloc(n ? (size_t)n : 1);
    if (!ds->images || !ds->labels)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for %d images of %dx%dx%d", n,
                          raw->shape.c, raw->shape.h, raw->shape.w);
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    for (size_t i = 0; i < count; i++)
        ds->images[i] = lut[raw->pixels[i]];
    memcpy(ds->labels, raw->labels, (size_t)n);
    ds->n = n;
    ds->shape = raw->shape;
    memcpy(ds->class_names, raw->class_names, sizeof ds->class_names);
    snprintf(ds->source, sizeof ds->source, "%.1023s", raw->source);
    return FF_OK;
}

int ff_dataset_open(ff_dataset *ds, const char *dir, ff_data_format format, ff_split split,
                    int limit, ff_err *err)
{
    FF_ASSERT(ds && dir && split >= 0 && split < FF_SPLIT_COUNT);
    memset(ds, 0, sizeof *ds);
    if (!dir[0])
        return ff_err_set(err, FF_ERR_USAGE, "data.dir is empty");
    int rc = format == FF_DATA_AUTO ? ff_data_detect(dir, &format, err) : FF_OK;
    if (rc)
        return rc;
    FF_ASSERT(format > FF_DATA_AUTO && format < FF_DATA_FORMAT_COUNT);
    ff_sums *sf = calloc(1, sizeof *sf);
    ff_data_raw *raw = calloc(1, sizeof *raw);
    rc = !sf || !raw ? ff_err_set(err, FF_ERR_NOMEM, "out of memory") : FF_OK;
    if (!rc)
        rc = sums_load(sf, dir, err);
    if (!rc)
        rc = READERS[format].read(dir, split, sf, raw, err);
    if (!rc && raw->n == 0)
        rc = ff_err_set(err, raw->label_err ? raw->label_err : FF_ERR_FORMAT,
                        "%s: contains no images", raw->source);
    if (!rc)
        rc = check_labels(raw, err);
    if (!rc)
        rc = fill_dataset(ds, raw, limit > 0 && limit < raw->n ? limit : raw->n, err);
    if (!rc)
        ds->format = format;
    if (rc)
        ff_dataset_free(ds);
    if (raw) {
        free(raw->pixels);
        free(raw->labels);
    }
    if (sf)
        free(sf->text);
    free(raw);
    free(sf);
    return rc;
}

int ff_dataset_check_same_shape(const ff_dataset *a, const ff_dataset *b, ff_err *err)
{
    if (a->shape.c == b->shape.c && a->shape.h == b->shape.h && a->shape.w == b->shape.w)
        return FF_OK;
    return ff_err_set(err, FF_ERR_FORMAT, "%s has %dx%dx%d images but %s has %dx%dx%d; both sets "
                      "must hold images of one shape (channels x height x width)",
                      a->source[0] ? a->source : "a dataset", a->shape.c, a->shape.h, a->shape.w,
                      b->source[0] ? b->source : "the other dataset", b->shape.c, b->shape.h,
                      b->shape.w);
}

void ff_dataset_free(ff_dataset *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}
