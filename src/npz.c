/* npz.c - NumPy .npz writer (include/ff/npz.h): .npy headers, zip local headers, a
 * central directory and its end record, members deflated with zlib (raw deflate). */
#include "ff/npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ff/endian.h"
#include "ff/fs.h"

#define ZIP_LIMIT 0xfffffff0u /* under 4 GiB: no zip64 */
#define ZIP_DOS_DATE ((2026 - 1980) << 9 | 1 << 5 | 1) /* 2026-01-01: a fixed stamp keeps
                                                          exports of one model identical */

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Makes room for n more bytes in *buf (length *len, capacity *cap). */
static int reserve(uint8_t **buf, size_t *len, size_t *cap, size_t n, ff_err *err)
{
    if (*len + n <= *cap)
        return FF_OK;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < *len + n)
        ncap *= 2;
    uint8_t *nb = realloc(*buf, ncap);
    if (!nb)
        return ff_err_set(err, FF_ERR_NOMEM, "npz: out of memory for %zu bytes", ncap);
    *buf = nb;
    *cap = ncap;
    return FF_OK;
}

/* Raw deflate of data into a malloc'ed *out. */
static int deflate_raw(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len,
                       ff_err *err)
{
    z_stream zs = {0};
    if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ff_err_set(err, FF_ERR_RUNTIME, "npz: deflateInit2 failed");
    const uLong bound = deflateBound(&zs, (uLong)len);
    *out = malloc(bound + 1);
    if (!*out) {
        deflateEnd(&zs);
        return ff_err_set(err, FF_ERR_NOMEM, "npz: out of memory for %lu bytes", bound);
    }
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = *out;
    zs.avail_out = (uInt)bound;
    const int zr = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        free(*out);
        *out = NULL;
        return ff_err_set(err, FF_ERR_RUNTIME, "npz: deflate failed (%d)", zr);
    }
    return FF_OK;
}

/* The 30-byte local header or the 46-byte central entry (central: offset given). */
static size_t zip_header(uint8_t *p, int central, uint32_t crc, size_t csize, size_t usize,
                         size_t name_len, size_t offset)
{
    const size_t h = central ? 46 : 30;
    memset(p, 0, h);
    ff_endian_put_u32le(p, central ? 0x02014b50u : 0x04034b50u);
    uint8_t *q = p + 4;
    if (central) {
        put16(q, 20); /* made by: version 2.0 */
        q += 2;
    }
    put16(q, 20);     /* needed to extract: 2.0 (deflate) */
    put16(q + 2, 0);  /* flags */
    put16(q + 4, 8);  /* deflate */
    put16(q + 6, 0);  /* time */
    put16(q + 8, ZIP_DOS_DATE);
    ff_endian_put_u32le(q + 10, crc);
    ff_endian_put_u32le(q + 14, (uint32_t)csize);
    ff_endian_put_u32le(q + 18, (uint32_t)usize);
    put16(q + 22, (unsigned)name_len);
    if (central)
        ff_endian_put_u32le(p + 42, (uint32_t)offset); /* extra, comment, disk, attributes: 0 */
    return h;
}

int ff_npz_add_bytes(ff_npz *z, const char *name, const void *data, size_t len, ff_err *err)
{
    const size_t name_len = strlen(name);
    if (!name_len || name_len > 1000)
        return ff_err_set(err, FF_ERR_USAGE, "npz: bad member name '%s'", name);
    if (len > ZIP_LIMIT)
        return ff_err_set(err, FF_ERR_USAGE, "npz: member %s is %zu bytes (no zip64: under 4 GiB)",
                          name, len);
    uint8_t *comp = NULL;
    size_t clen = 0;
    int rc = deflate_raw(data, len, &comp, &clen, err);
    if (rc)
        return rc;
    const uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)len);
    const size_t offset = z->len;
    if (offset + 30 + name_len + clen > ZIP_LIMIT)
        rc = ff_err_set(err, FF_ERR_USAGE, "npz: the archive exceeds 4 GiB (no zip64)");
    if (!rc)
        rc = reserve(&z->buf, &z->len, &z->cap, 30 + name_len + clen, err);
    if (!rc)
        rc = reserve(&z->central, &z->central_len, &z->central_cap, 46 + name_len, err);
    if (!rc) {
        z->len += zip_header(z->buf + z->len, 0, crc, clen, len, name_len, 0);
        memcpy(z->buf + z->len, name, name_len);
        memcpy(z->buf + z->len + name_len, comp, clen);
        z->len += name_len + clen;
        z->central_len += zip_header(z->central + z->central_len, 1, crc, clen, len, name_len,
                                     offset);
        memcpy(z->central + z->central_len, name, name_len);
        z->central_len += name_len;
        z->n_members++;
    }
    free(comp);
    return rc;
}

/* The .npy header of a '<f4' array of that shape, padded so the data starts at a
 * multiple of 64 bytes; returns its length. */
static size_t npy_header(char *h, size_t cap, const int64_t *shape, int ndim)
{
    char dims[FF_NPZ_MAX_DIMS * 24 + 8] = "";
    size_t n = 0;
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(dims + n, sizeof dims - n, "%lld%s", (long long)shape[i],
                              ndim == 1 || i + 1 < ndim ? ", " : "");
    if (ndim == 1)
        dims[n - 1] = '\0'; /* "(5,)" */
    char dict[sizeof dims + 80];
    const int d = snprintf(dict, sizeof dict,
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    const size_t total = ((10 + (size_t)d + 1 + 63) / 64) * 64;
    FF_ASSERT(total <= cap);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    put16((uint8_t *)h + 8, (unsigned)(total - 10));
    memcpy(h + 10, dict, (size_t)d);
    memset(h + 10 + d, ' ', total - 10 - (size_t)d - 1);
    h[total - 1] = '\n';
    return total;
}

int ff_npz_add_f32(ff_npz *z, const char *name, const float *data, const int64_t *shape,
                   int ndim, ff_err *err)
{
    if (ndim < 0 || ndim > FF_NPZ_MAX_DIMS)
        return ff_err_set(err, FF_ERR_USAGE, "npz: %s: %d dimensions (0 to %d)", name, ndim,
                          FF_NPZ_MAX_DIMS);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && count > ZIP_LIMIT / (uint64_t)shape[i]))
            return ff_err_set(err, FF_ERR_USAGE, "npz: %s: bad or too large shape", name);
        count *= (uint64_t)shape[i];
    }
    if (count > ZIP_LIMIT / 4)
        return ff_err_set(err, FF_ERR_USAGE, "npz: %s: too large (no zip64)", name);
    char header[512];
    const size_t hl = npy_header(header, sizeof header, shape, ndim);
    uint8_t *npy = malloc(hl + 4 * count + 1);
    if (!npy)
        return ff_err_set(err, FF_ERR_NOMEM, "npz: out of memory for %s", name);
    memcpy(npy, header, hl);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        ff_endian_put_u32le(npy + hl + 4 * i, u);
    }
    char member[1024];
    int rc = (size_t)snprintf(member, sizeof member, "%s.npy", name) >= sizeof member
                 ? ff_err_set(err, FF_ERR_USAGE, "npz: member name too long")
                 : ff_npz_add_bytes(z, member, npy, hl + 4 * count, err);
    free(npy);
    return rc;
}

int ff_npz_write(const ff_npz *z, const char *path, ff_err *err)
{
    const size_t total = z->len + z->central_len + 22;
    if (total > ZIP_LIMIT || z->n_members > 0xffff)
        return ff_err_set(err, FF_ERR_USAGE, "%s: the archive exceeds zip's limits (no zip64)",
                          path);
    uint8_t *out = malloc(total);
    if (!out)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory writing %s", path);
    if (z->len)
        memcpy(out, z->buf, z->len);
    if (z->central_len)
        memcpy(out + z->len, z->central, z->central_len);
    uint8_t *e = out + z->len + z->central_len;
    memset(e, 0, 22);
    ff_endian_put_u32le(e, 0x06054b50u);
    put16(e + 8, (unsigned)z->n_members);
    put16(e + 10, (unsigned)z->n_members);
    ff_endian_put_u32le(e + 12, (uint32_t)z->central_len);
    ff_endian_put_u32le(e + 16, (uint32_t)z->len);
    int rc = ff_fs_write_file_atomic(path, out, total, err);
    free(out);
    return rc;
}

void ff_npz_free(ff_npz *z)
{
    free(z->buf);
    free(z->central);
    memset(z, 0, sizeof *z);
}
