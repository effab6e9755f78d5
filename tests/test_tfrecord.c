/* test_tfrecord.c - TFRecord framing: golden records byte for byte, defect offsets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.pb-c.h"
#include "ff/tfrecord.h"
#include "test.h"

/* Golden records of docs/tensorboard-format.md §2. */
static const char *GOLD1 = "1800000000000000a37f4b220900000040fc54d9411a0d627261696e2e4576656e743a32"
                           "eced8f9d";
static const char *GOLD2 = "1a00000000000000129bd82d0900004040fc54d94110012a0d0a0b0a046c6f73731500"
                           "00003f97d67404";

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* Packs ev and frames it into out; returns the record size. */
static size_t frame_event(Tensorboard__Event *ev, uint8_t *out)
{
    uint8_t payload[256];
    size_t len = tensorboard__event__pack(ev, payload);
    return ff_tfrecord_encode(out, payload, len);
}

static size_t golden1(uint8_t *out)
{
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = 1700000000.0;
    ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
    ev.file_version = (char *)"brain.Event:2";
    return frame_event(&ev, out);
}

static size_t golden2(uint8_t *out)
{
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    Tensorboard__Summary__Value *vp = &v;
    v.tag = (char *)"loss";
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = 0.5f;
    Tensorboard__Summary s = TENSORBOARD__SUMMARY__INIT;
    s.n_value = 1;
    s.value = &vp;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = 1700000001.0;
    ev.step = 1;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
    ev.summary = &s;
    return frame_event(&ev, out);
}

static void test_golden_records(void)
{
    uint8_t got[256], want[256];
    size_t n = golden1(got), m = unhex(GOLD1, want);
    CHECK(n == m);
    CHECK(n == m && memcmp(got, want, n) == 0);
    n = golden2(got);
    m = unhex(GOLD2, want);
    CHECK(n == m);
    CHECK(n == m && memcmp(got, want, n) == 0);
}

static void test_encode_in_place(void)
{
    uint8_t a[64], b[64];
    memcpy(a + FF_TFRECORD_HEADER, "hello", 5);
    ff_tfrecord_frame(a, 5);
    size_t n = ff_tfrecord_encode(b, "hello", 5);
    CHECK(n == ff_tfrecord_size(5) && n == 21);
    CHECK(memcmp(a, b, n) == 0);
    /* overlapping source and destination */
    memcpy(b, "hello", 5);
    CHECK(ff_tfrecord_encode(b, b, 5) == 21 && memcmp(a, b, 21) == 0);
}

/* Two golden records followed by a third ("abc") in one buffer. */
static size_t three_records(uint8_t *buf, size_t *off2, size_t *off3)
{
    size_t n = golden1(buf);
    *off2 = n;
    n += golden2(buf + n);
    *off3 = n;
    n += ff_tfrecord_encode(buf + n, "abc", 3);
    return n;
}

static void test_read_clean(void)
{
    uint8_t buf[512];
    size_t o2, o3, n = three_records(buf, &o2, &o3);
    ff_tfrecord_reader r;
    ff_tfrecord_reader_init(&r, buf, n);
    ff_tfrecord_record rec;
    ff_err err = {0};
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1 && rec.offset == 0 && rec.len == 24);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1 && rec.offset == o2 && rec.len == 26);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1 && rec.offset == o3 && rec.len == 3 &&
          memcmp(rec.data, "abc", 3) == 0);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 0);
    CHECK(r.defect == FF_TFRECORD_OK);
    ff_tfrecord_reader_destroy(&r);
}

static void test_flipped_data_bit(void)
{
    uint8_t buf[512];
    size_t o2, o3, n = three_records(buf, &o2, &o3);
    buf[o2 + FF_TFRECORD_HEADER + 5] ^= 0x10;
    ff_tfrecord_reader r;
    ff_tfrecord_reader_init(&r, buf, n);
    ff_tfrecord_record rec;
    ff_err err = {0};
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == FF_ERR_FORMAT);
    CHECK(r.defect == FF_TFRECORD_BAD_DATA_CRC && r.defect_offset == o2);
    char want[64];
    snprintf(want, sizeof want, "offset %zu: bad data crc", o2);
    CHECK(strstr(err.msg, want) != NULL);
    /* the length was sound, so the next record is still found */
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1 && rec.offset == o3);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 0);
}

static void test_bad_length_crc(void)
{
    uint8_t buf[512];
    size_t o2, o3, n = three_records(buf, &o2, &o3);
    buf[o3 + 9] ^= 0x01; /* inside the stored length CRC */
    ff_tfrecord_reader r;
    ff_tfrecord_reader_init(&r, buf, n);
    ff_tfrecord_record rec;
    ff_err err = {0};
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 1);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == FF_ERR_FORMAT);
    CHECK(r.defect == FF_TFRECORD_BAD_LENGTH_CRC && r.defect_offset == o3);
    char want[64];
    snprintf(want, sizeof want, "offset %zu: bad length crc", o3);
    CHECK(strstr(err.msg, want) != NULL);
    CHECK(ff_tfrecord_next(&r, &rec, &err) == 0); /* framing lost: stopped */
}

static void test_zero_filled_tail(void)
{
    uint8_t buf[512] = {0};
    size_t o2, o3, n = three_records(buf, &o2, &o3);
    ff_tfrecord_reader r;
    ff_tfrecord_reader_init(&r, buf, n + 64); /* 64 zero bytes, as after a crash */
    ff_tfrecord_record rec;
    ff_err err = {0};
    int records = 0, rc;
    while ((rc = ff_tfrecord_next(&r, &rec, &err)) == 1)
        records++;
    CHECK(records == 3);
    CHECK(rc == FF_ERR_FORMAT && r.defect == FF_TFRECORD_BAD_LENGTH_CRC && r.defect_offset == n);
    CHECK(strstr(err.msg, "computed 0x07980329") != NULL);
}

static void test_truncated_tail(void)
{
    uint8_t buf[512];
    size_t o2, o3, n = three_records(buf, &o2, &o3);
    /* cut inside the last payload, inside the last header, and one byte short */
    size_t cuts[] = {o3 + 14, o3 + 5, n - 1};
    for (size_t c = 0; c < 3; c++) {
        ff_tfrecord_reader r;
        ff_tfrecord_reader_init(&r, buf, cuts[c]);
        ff_tfrecord_record rec;
        ff_err err = {0};
        CHECK(ff_tfrecord_next(&r, &rec, &err) == 1);
        CHECK(ff_tfrecord_next(&r, &rec, &err) == 1);
        CHECK(ff_tfrecord_next(&r, &rec, &err) == FF_ERR_FORMAT);
        CHECK(r.defect == FF_TFRECORD_TRUNCATED && r.defect_offset == o3);
        char want[64];
        snprintf(want, sizeof want, "offset %zu: truncated record", o3);
        CHECK(strstr(err.msg, want) != NULL);
        CHECK(ff_tfrecord_next(&r, &rec, &err) == 0);
    }
}

static void test_read_file(void)
{
    uint8_t buf[512];
    size_t o2, o3, n = three_records(buf, &o2, &o3);
    char path[] = "/tmp/ff_test_tfrecord_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, buf, n) == (ssize_t)n);
    close(fd);
    ff_tfrecord_reader r;
    ff_err err = {0};
    CHECK(ff_tfrecord_reader_open(&r, path, &err) == FF_OK);
    ff_tfrecord_record rec;
    int records = 0;
    while (ff_tfrecord_next(&r, &rec, &err) == 1)
        records++;
    CHECK(records == 3 && r.defect == FF_TFRECORD_OK);
    ff_tfrecord_reader_destroy(&r);
    ff_tfrecord_reader_destroy(&r); /* safe twice */
    unlink(path);
    CHECK(ff_tfrecord_reader_open(&r, path, &err) == FF_ERR_IO);
    CHECK(strstr(err.msg, path) != NULL);
}

int main(void)
{
    RUN(test_golden_records);
    RUN(test_encode_in_place);
    RUN(test_read_clean);
    RUN(test_flipped_data_bit);
    RUN(test_bad_length_crc);
    RUN(test_zero_filled_tail);
    RUN(test_truncated_tail);
    RUN(test_read_file);
    TEST_MAIN_END();
}
