/* fuzz_tfrecord.c - libFuzzer harness: TensorBoard event files as tfevents-dump reads
 * them. The input is a file's bytes: ff_tfrecord_reader walks the records (both CRCs
 * as stored; reading goes on after a bad data CRC, stops after a bad length CRC or a
 * truncation) and every intact record is decoded with ff_summary_reader_event_decode.
 * Records must lie inside the buffer, in order. fuzz_event mutates Event payloads
 * directly, without the CRCs in the way. */
#include "ff/summary_reader.h"
#include "ff/tfrecord.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ff_tfrecord_reader r;
    ff_tfrecord_record rec;
    ff_err err = {0};
    ff_tfrecord_reader_init(&r, data, size);
    uint64_t next_min = 0;
    int rc;
    for (long i = 0; (rc = ff_tfrecord_next(&r, &rec, &err)) != 0; i++) {
        if (i > (long)size)
            fuzz_fail("more records than bytes");
        if (rc < 0) {
            if (!err.msg[0] || r.defect == FF_TFRECORD_OK)
                fuzz_fail("a defect without a message or kind");
            err.msg[0] = '\0';
            continue;
        }
        if (rec.offset < next_min || rec.data != data + rec.offset + FF_TFRECORD_HEADER ||
            rec.offset + ff_tfrecord_size(rec.len) > size)
            fuzz_fail("record at offset %llu (%zu bytes) is out of place",
                      (unsigned long long)rec.offset, rec.len);
        next_min = rec.offset + ff_tfrecord_size(rec.len);
        ff_summary_event_info ev;
        if (ff_summary_reader_event_decode(rec.data, rec.len, &ev, &err) == FF_OK)
            ff_summary_reader_event_info_destroy(&ev);
    }
    ff_tfrecord_reader_destroy(&r);
    return 0;
}
