/* tfrecord.h - TFRecord framing (the container of TensorBoard event files).
 *
 * A record is: u64le length, u32le masked CRC-32C of those 8 bytes, the
 * payload, u32le masked CRC-32C of the payload. Writing: build the framed
 * record in memory (ff_tfrecord_frame) and write it with one write(). Reading:
 * ff_tfrecord_reader walks records in a buffer (or a whole file read into
 * memory) and reports each defect with its byte offset. */
#ifndef FF_TFRECORD_H
#define FF_TFRECORD_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"

#define FF_TFRECORD_HEADER 12 /* length + length CRC */
#define FF_TFRECORD_FOOTER 4  /* payload CRC */

/* Bytes of a framed record holding len payload bytes. */
static inline size_t ff_tfrecord_size(size_t len)
{
    return FF_TFRECORD_HEADER + len + FF_TFRECORD_FOOTER;
}

/* Frames in place: rec holds the len payload bytes at rec + FF_TFRECORD_HEADER
 * and has room for ff_tfrecord_size(len) bytes; fills header and footer.
 * Cannot fail. */
void ff_tfrecord_frame(uint8_t *rec, size_t len);

/* Copies payload into out (room for ff_tfrecord_size(len)) and frames it;
 * returns the framed size. payload and out may overlap. Cannot fail. */
size_t ff_tfrecord_encode(uint8_t *out, const void *payload, size_t len);

typedef enum {
    FF_TFRECORD_OK = 0,
    FF_TFRECORD_TRUNCATED,      /* the file ends inside the last record */
    FF_TFRECORD_BAD_LENGTH_CRC, /* header checksum mismatch: framing lost */
    FF_TFRECORD_BAD_DATA_CRC    /* payload checksum mismatch: record skipped */
} ff_tfrecord_defect;

typedef struct ff_tfrecord_record {
    uint64_t offset;     /* byte offset of the record's first header byte */
    const uint8_t *data; /* payload (points into the reader's buffer) */
    size_t len;
} ff_tfrecord_record;

typedef struct ff_tfrecord_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    uint8_t *owned;              /* file contents when opened from a path */
    int stopped;                 /* after a framing defect or truncation */
    ff_tfrecord_defect defect;   /* last defect seen */
    uint64_t defect_offset;      /* its byte offset */
} ff_tfrecord_reader;

/* Reads over a caller-owned buffer (which must outlive the reader). Cannot fail. */
void ff_tfrecord_reader_init(ff_tfrecord_reader *r, const void *buf, size_t len);

/* Reads the whole file at path into memory (owned by the reader) with ff_fs_read_file
 * (include/ff/fs.h): FF_ERR_IO if it cannot be read, FF_ERR_FORMAT if it is not a
 * regular file (e.g. a FIFO). */
int ff_tfrecord_reader_open(ff_tfrecord_reader *r, const char *path, ff_err *err);

/* Frees what the reader owns; safe on a zeroed or already destroyed reader. */
void ff_tfrecord_reader_destroy(ff_tfrecord_reader *r);

/* Next record: returns 1 with *rec filled, 0 at the end, or FF_ERR_FORMAT on a
 * defect with err = "offset N: ..." and r->defect / r->defect_offset set.
 * After FF_TFRECORD_BAD_DATA_CRC the (trustworthy) length is used to skip the
 * record and reading may continue; after FF_TFRECORD_TRUNCATED or
 * FF_TFRECORD_BAD_LENGTH_CRC the reader is stopped and returns 0. */
int ff_tfrecord_next(ff_tfrecord_reader *r, ff_tfrecord_record *rec, ff_err *err);

#endif
