/* data.c - MNIST-format (IDX) datasets: file reading, gunzip, IDX parsing, SHA256SUMS checks. */
#include "ff/data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "ff/fsutil.h"

#define MAX_FILE_BYTES ((size_t)1 << 31) /* raw or decompressed */
#define MAX_SUMS_BYTES ((size_t)16 << 20) /* SHA256SUMS */
#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_SIDE 4096u
#define NUM_CLASSES 10

/* ------------------------------------------------------------------------ */
/* reading files: ff_read_file (include/ff/fsutil.h) reads, gunzip inflates  */

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

int ff_read_file_maybe_gz(const char *path, uint8_t **out, size_t *len, ff_err *err)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    *out = NULL;
    *len = 0;
    int rc = ff_read_file(path, MAX_FILE_BYTES, &raw, &raw_len, err);
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
/* IDX parsing                                                               */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks magic and header length; fills dims[0..ndims). */
static int parse_header(const uint8_t *buf, size_t len, const char *name, uint32_t magic,
                        int ndims, const char *kind, uint32_t *dims, ff_err *err)
{
    size_t hdr = 4 + 4 * (size_t)ndims;
    if (len < 4)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: truncated IDX header (%zu bytes)", name, len);
    uint32_t got = be32(buf);
    if (got != magic)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: bad magic 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, %d "
                          "dimension%s)",
                          name, got, magic, kind, ndims, ndims == 1 ? "" : "s");
    if (len < hdr)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: truncated IDX header (%zu bytes, expected %zu)", name, len, hdr);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(buf + 4 + 4 * i);
    if (dims[0] > INT_MAX)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: count %u is too large", name, dims[0]);
    return FF_OK;
}

/* Checks that exactly `want` payload bytes follow the header. */
static int check_payload(const char *name, size_t have, uint64_t want, const char *what,
                         ff_err *err)
{
    if (have < want)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: truncated: the header declares %s (%llu bytes) but only %zu bytes "
                          "follow",
                          name, what, (unsigned long long)want, have);
    if (have > want)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: %llu unexpected bytes after the %llu bytes of %s declared in the "
                          "header",
                          name, (unsigned long long)(have - want), (unsigned long long)want, what);
    return FF_OK;
}

int ff_idx_parse_images(const uint8_t *buf, size_t len, const char *name, int *n, int *rows,
                        int *cols, const uint8_t **pixels, ff_err *err)
{
    uint32_t d[3] = {0};
    name = name ? name : "<images>";
    int rc = parse_header(buf, len, name, IDX_IMAGES_MAGIC, 3, "images", d, err);
    if (rc)
        return rc;
    if (d[1] < 1 || d[1] > IDX_MAX_SIDE || d[2] < 1 || d[2] > IDX_MAX_SIDE)
        return ff_err_set(err, FF_ERR_FORMAT,
                          "%s: image size %ux%u is out of range (rows and cols must be 1..%u)",
                          name, d[1], d[2], IDX_MAX_SIDE);
    char what[96];
    snprintf(what, sizeof what, "%u images of %ux%u", d[0], d[1], d[2]);
    rc = check_payload(name, len - 16, (uint64_t)d[0] * d[1] * d[2], what, err);
    if (rc)
        return rc;
    *n = (int)d[0];
    *rows = (int)d[1];
    *cols = (int)d[2];
    *pixels = buf + 16;
    return FF_OK;
}

int ff_idx_parse_labels(const uint8_t *buf, size_t len, const char *name, int *n,
                        const uint8_t **labels, ff_err *err)
{
    uint32_t d[1] = {0};
    name = name ? name : "<labels>";
    int rc = parse_header(buf, len, name, IDX_LABELS_MAGIC, 1, "labels", d, err);
    if (rc)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "%u labels", d[0]);
    rc = check_payload(name, len - 8, d[0], what, err);
    if (rc)
        return rc;
    *n = (int)d[0];
    *labels = buf + 8;
    return FF_OK;
}

/* ------------------------------------------------------------------------ */
/* SHA256SUMS                                                                */

/* An IDX file as loaded: the path actually used, the uncompressed base name
 * (as listed in SHA256SUMS) and its decompressed bytes. */
typedef struct idx_file {
    char path[PATH_MAX];
    char base[128];
    uint8_t *bytes;
    size_t len;
    int gz; /* the file read was the .gz one */
} idx_file;

/* SHA256SUMS of a directory; text is NULL when the file does not exist. */
typedef struct sums_file {
    char path[PATH_MAX];
    char *text;
    size_t len;
} sums_file;

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
static int sums_line(const sums_file *sf, int lineno, const char *line, size_t n,
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
static int sums_lookup(const sums_file *sf, const char *base, char hex[65], ff_err *err)
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
static int sums_load(sums_file *sf, const char *dir, ff_err *err)
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
    int rc = ff_read_file(sf->path, MAX_SUMS_BYTES, &buf, &len, err);
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
static int verify_checksum(const idx_file *f, const sums_file *sf, ff_err *err)
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
/* dataset loading                                                           */

/* Picks "<dir>/<base>.gz" if it exists, else "<dir>/<base>". */
static int find_file(idx_file *f, const char *dir, ff_err *err)
{
    struct stat st;
    char raw[PATH_MAX];
    if ((size_t)snprintf(f->path, sizeof f->path, "%s/%s.gz", dir, f->base) >= sizeof f->path ||
        (size_t)snprintf(raw, sizeof raw, "%s/%s", dir, f->base) >= sizeof raw)
        return ff_err_set(err, FF_ERR_USAGE, "%s: directory name too long", dir);
    if (stat(f->path, &st) == 0) {
        f->gz = 1;
        return FF_OK;
    }
    if (errno != ENOENT)
        return ff_err_set(err, FF_ERR_IO, "%s: %s", f->path, strerror(errno));
    if (stat(raw, &st) == 0) {
        memcpy(f->path, raw, sizeof raw);
        return FF_OK;
    }
    if (errno != ENOENT)
        return ff_err_set(err, FF_ERR_IO, "%s: %s", raw, strerror(errno));
    return ff_err_set(err, FF_ERR_IO, "%s: no such file (tried %s too)", f->path, raw);
}

/* Finds, reads (gunzipping) and checksums "<dir>/<prefix>-<suffix>[.gz]". */
static int load_idx_file(idx_file *f, const char *dir, const char *prefix, const char *suffix,
                         const sums_file *sf, ff_err *err)
{
    if ((size_t)snprintf(f->base, sizeof f->base, "%s-%s", prefix, suffix) >= sizeof f->base)
        return ff_err_set(err, FF_ERR_USAGE, "dataset prefix \"%s\" is too long", prefix);
    int rc = find_file(f, dir, err);
    if (!rc)
        rc = ff_read_file_maybe_gz(f->path, &f->bytes, &f->len, err);
    if (!rc)
        rc = verify_checksum(f, sf, err);
    return rc;
}

/* Checks every label is 0..9. */
static int check_labels(const uint8_t *labels, int n, const char *path, ff_err *err)
{
    for (int i = 0; i < n; i++)
        if (labels[i] >= NUM_CLASSES)
            return ff_err_set(err, FF_ERR_FORMAT,
                              "%s: label %d at index %d is out of range 0..%d", path, labels[i],
                              i, NUM_CLASSES - 1);
    return FF_OK;
}

/* Copies the first n images (as pixel / 255) and labels into ds. */
static int fill_dataset(ff_dataset *ds, int n, int rows, int cols, const uint8_t *pixels,
                        const uint8_t *labels, ff_err *err)
{
    float lut[256];
    size_t count = (size_t)n * (size_t)rows * (size_t)cols;
    ds->images = malloc(count ? count * sizeof(float) : 1);
    ds->labels = malloc(n ? (size_t)n : 1);
    if (!ds->images || !ds->labels)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory for %d images of %dx%d", n, rows,
                          cols);
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    for (size_t i = 0; i < count; i++)
        ds->images[i] = lut[pixels[i]];
    memcpy(ds->labels, labels, (size_t)n);
    ds->n = n;
    ds->channels = 1;
    ds->rows = rows;
    ds->cols = cols;
    ds->dim = rows * cols;
    return FF_OK;
}

/* Parses both files, cross-checks them and fills ds. */
static int build_dataset(ff_dataset *ds, const idx_file *img, const idx_file *lab, int limit,
                         ff_err *err)
{
    int n, rows, cols, nl;
    const uint8_t *pixels, *labels;
    int rc = ff_idx_parse_images(img->bytes, img->len, img->path, &n, &rows, &cols, &pixels, err);
    if (!rc)
        rc = ff_idx_parse_labels(lab->bytes, lab->len, lab->path, &nl, &labels, err);
    if (rc)
        return rc;
    if (n != nl)
        return ff_err_set(err, FF_ERR_FORMAT, "%s has %d images but %s has %d labels", img->path,
                          n, lab->path, nl);
    if (n == 0)
        return ff_err_set(err, FF_ERR_FORMAT, "%s: contains no images", img->path);
    rc = check_labels(labels, nl, lab->path, err);
    if (rc)
        return rc;
    if (limit > 0 && limit < n)
        n = limit;
    rc = fill_dataset(ds, n, rows, cols, pixels, labels, err);
    if (!rc)
        snprintf(ds->source, sizeof ds->source, "%.1023s", img->path);
    return rc;
}

int ff_dataset_load(ff_dataset *ds, const char *dir, const char *prefix, int limit, ff_err *err)
{
    FF_ASSERT(ds && dir && prefix);
    memset(ds, 0, sizeof *ds);
    if (!prefix[0] || strchr(prefix, '/'))
        return ff_err_set(err, FF_ERR_USAGE, "invalid dataset prefix \"%s\" (expected e.g. "
                          "\"train\" or \"t10k\")", prefix);
    idx_file *img = calloc(1, sizeof *img), *lab = calloc(1, sizeof *lab);
    sums_file *sf = calloc(1, sizeof *sf);
    int rc = !img || !lab || !sf ? ff_err_set(err, FF_ERR_NOMEM, "out of memory") : FF_OK;
    if (!rc)
        rc = sums_load(sf, dir, err);
    if (!rc)
        rc = load_idx_file(img, dir, prefix, "images-idx3-ubyte", sf, err);
    if (!rc)
        rc = load_idx_file(lab, dir, prefix, "labels-idx1-ubyte", sf, err);
    if (!rc)
        rc = build_dataset(ds, img, lab, limit, err);
    if (rc)
        ff_dataset_free(ds);
    if (img)
        free(img->bytes);
    if (lab)
        free(lab->bytes);
    if (sf)
        free(sf->text);
    free(img);
    free(lab);
    free(sf);
    return rc;
}

int ff_dataset_check_same_shape(const ff_dataset *a, const ff_dataset *b, ff_err *err)
{
    if (a->rows == b->rows && a->cols == b->cols)
        return FF_OK;
    return ff_err_set(err, FF_ERR_FORMAT, "%s has %dx%d images but %s has %dx%d; both sets must "
                      "hold images of one size", a->source[0] ? a->source : "a dataset", a->rows,
                      a->cols, b->source[0] ? b->source : "the other dataset", b->rows, b->cols);
}

void ff_dataset_free(ff_dataset *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

ff_shape ff_dataset_shape(const ff_dataset *ds)
{
    return (ff_shape){ds->channels, ds->rows, ds->cols};
}
