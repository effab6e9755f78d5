/* sha256.h - SHA-256 (FIPS 180-4) of a buffer, and its hex form: what checks data files
 * against SHA256SUMS and keys generated caches. */
#ifndef FF_SHA256_H
#define FF_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of len bytes into out[32]. */
void ff_sha256(const void *data, size_t len, uint8_t out[32]);

/* Lower-case hex form of a SHA-256 digest, NUL-terminated, into out[65]. */
void ff_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
