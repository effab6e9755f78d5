/* test_crc32c.c - CRC-32C vectors for the table and SSE4.2 versions, mask, agreement. */
#include <stdint.h>
#include <string.h>

#include "ff/crc32c.h"
#include "test.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* The vectors of docs/tensorboard-format.md §2 through one implementation. */
static void check_vectors(crc_fn f)
{
    uint8_t zeros[32] = {0}, ones[32], inc[32], dec[32];
    memset(ones, 0xFF, sizeof ones);
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    CHECK(f(0, "123456789", 9) == 0xE3069283u);
    CHECK(f(0, zeros, 32) == 0x8A9136AAu);
    CHECK(f(0, ones, 32) == 0x62A8AB43u);
    CHECK(f(0, inc, 32) == 0x46DD794Eu);
    CHECK(f(0, dec, 32) == 0x113FDB5Cu);
    CHECK(f(0, "", 0) == 0);
    /* incremental: CRC of a||b from CRC of a */
    CHECK(f(f(0, "1234", 4), "56789", 5) == 0xE3069283u);
    CHECK(f(f(0, inc, 13), inc + 13, 19) == 0x46DD794Eu);
}

static void test_sw_vectors(void)
{
    check_vectors(ff_crc32c_sw);
}

static void test_hw_vectors(void)
{
    if (!ff_crc32c_hw_available()) {
        printf("     (no SSE4.2 on this CPU: hardware version not tested)\n");
        return;
    }
    check_vectors(ff_crc32c_hw);
}

static void test_dispatch_vectors(void)
{
    check_vectors(ff_crc32c);
}

static void test_masked_vectors(void)
{
    static const char msg[] = "\x1a\x11"
                              "CRC test, one two";
    uint8_t zeros[32] = {0};
    CHECK(ff_crc32c_masked(msg, sizeof msg - 1) == 0x5794D08Au);
    CHECK(ff_crc32c_masked(zeros, 32) == 0x0FD7FFFAu);
    CHECK(ff_crc32c_masked(zeros, 8) == 0x07980329u); /* u64le(0) */
    uint32_t vals[] = {0, 1, 0x80000000u, 0xE3069283u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        CHECK(ff_crc32c_unmask(ff_crc32c_mask(vals[i])) == vals[i]);
    CHECK(ff_crc32c_mask(0) == 0xA282EAD8u);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* sw and hw (and the bytewise definition) agree on random data of many lengths
 * and alignments. */
static void test_sw_hw_agree(void)
{
    static uint8_t buf[4096 + 16];
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)xorshift(&s);
    int hw = ff_crc32c_hw_available(), mismatches = 0, checked = 0;
    for (size_t len = 0; len <= 300; len++) {
        for (size_t align = 0; align < 16; align++) {
            uint32_t sw = ff_crc32c_sw(0, buf + align, len);
            uint32_t bytewise = 0;
            for (size_t i = 0; i < len; i++)
                bytewise = ff_crc32c_sw(bytewise, buf + align + i, 1);
            mismatches += sw != bytewise;
            if (hw)
                mismatches += ff_crc32c_hw(0, buf + align, len) != sw;
            mismatches += ff_crc32c(0, buf + align, len) != sw;
            checked++;
        }
    }
    for (size_t len = 301; len <= 4096; len += 97) {
        uint32_t seed = (uint32_t)xorshift(&s);
        uint32_t sw = ff_crc32c_sw(seed, buf + (len & 15), len);
        if (hw)
            mismatches += ff_crc32c_hw(seed, buf + (len & 15), len) != sw;
        checked++;
    }
    CHECK(checked > 4800);
    CHECK(mismatches == 0);
}

/* A flipped bit must change the CRC in every position (CRC detects all 1-bit errors). */
static void test_bit_flips_detected(void)
{
    uint8_t buf[64];
    for (int i = 0; i < 64; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint32_t ref = ff_crc32c(0, buf, sizeof buf);
    int undetected = 0;
    for (int bit = 0; bit < 64 * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        undetected += ff_crc32c(0, buf, sizeof buf) == ref;
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK(undetected == 0);
    CHECK(ff_crc32c(0, buf, sizeof buf) == ref);
}

int main(void)
{
    RUN(test_sw_vectors);
    RUN(test_hw_vectors);
    RUN(test_dispatch_vectors);
    RUN(test_masked_vectors);
    RUN(test_sw_hw_agree);
    RUN(test_bit_flips_detected);
    TEST_MAIN_END();
}
