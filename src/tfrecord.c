/* tfrecord.c - TFRecord framing and a checking record reader (include/ff/tfrecord.h). */
#include "ff/tfrecord.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ff/crc32c.h"
#include "ff/endian.h"
#include "ff/fs.h"

void ff_tfrecord_frame(uint8_t *rec, size_t len)
{
    ff_endian_put_u64le(rec, len);
    ff_endian_put_u32le(rec + 8, ff_crc32c_masked(rec, 8));
    ff_endian_put_u32le(rec + FF_TFRECORD_HEADER + len, ff_crc32c_masked(rec + FF_TFRECORD_HEADER, len));
}

size_t ff_tfrecord_encode(uint8_t *out, const void *payload, size_t len)
{
    memmove(out + FF_TFRECORD_HEADER, payload, len);
    ff_tfrecord_frame(out, len);
    return ff_tfrecord_size(len);
}

void ff_tfrecord_reader_init(ff_tfrecord_reader *r, const void *buf, size_t len)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->len = len;
}

int ff_tfrecord_reader_open(ff_tfrecord_reader *r, const char *path, ff_err *err)
{
    memset(r, 0, sizeof *r);
    size_t len = 0;
    int rc = ff_fs_read_file(path, SIZE_MAX, &r->owned, &len, err);
    if (rc)
        return rc;
    r->buf = r->owned;
    r->len = len;
    return FF_OK;
}

void ff_tfrecord_reader_destroy(ff_tfrecord_reader *r)
{
    free(r->owned);
    memset(r, 0, sizeof *r);
}

/* Records a checksum defect; got/want are the stored and computed masked CRCs. */
static int defect(ff_tfrecord_reader *r, ff_tfrecord_defect d, uint64_t off, ff_err *err,
                  const char *what, uint32_t got, uint32_t want)
{
    r->defect = d;
    r->defect_offset = off;
    return ff_err_set(err, FF_ERR_FORMAT, "offset %llu: %s (stored 0x%08x, computed 0x%08x)",
                      (unsigned long long)off, what, got, want);
}

static int truncated(ff_tfrecord_reader *r, uint64_t off, uint64_t need, size_t left,
                     ff_err *err)
{
    r->defect = FF_TFRECORD_TRUNCATED;
    r->defect_offset = off;
    return ff_err_set(err, FF_ERR_FORMAT,
                      "offset %llu: truncated record (needs %llu bytes, only %zu left)",
                      (unsigned long long)off, (unsigned long long)need, left);
}

int ff_tfrecord_next(ff_tfrecord_reader *r, ff_tfrecord_record *rec, ff_err *err)
{
    if (r->stopped || r->pos >= r->len)
        return 0;
    size_t off = r->pos, left = r->len - r->pos;
    const uint8_t *p = r->buf + off;
    if (left < FF_TFRECORD_HEADER) {
        r->stopped = 1;
        return truncated(r, off, FF_TFRECORD_HEADER, left, err);
    }
    uint32_t stored = ff_get_u32le(p + 8), want = ff_crc32c_masked(p, 8);
    if (stored != want) {
        r->stopped = 1;
        return defect(r, FF_TFRECORD_BAD_LENGTH_CRC, off, err, "bad length crc", stored, want);
    }
    uint64_t len = ff_get_u64le(p);
    if (len > left - FF_TFRECORD_HEADER || left - FF_TFRECORD_HEADER - len < FF_TFRECORD_FOOTER) {
        r->stopped = 1;
        uint64_t need = len > UINT64_MAX - 16 ? UINT64_MAX : len + 16;
        return truncated(r, off, need, left, err);
    }
    r->pos = off + (size_t)ff_tfrecord_size((size_t)len);
    stored = ff_get_u32le(p + FF_TFRECORD_HEADER + len);
    want = ff_crc32c_masked(p + FF_TFRECORD_HEADER, (size_t)len);
    if (stored != want)
        return defect(r, FF_TFRECORD_BAD_DATA_CRC, off, err, "bad data crc", stored, want);
    rec->offset = off;
    rec->data = p + FF_TFRECORD_HEADER;
    rec->len = (size_t)len;
    return 1;
}
