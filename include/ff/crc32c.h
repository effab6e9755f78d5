/* crc32c.h - CRC-32C (Castagnoli, reflected poly 0x82F63B78) and the TFRecord mask.
 *
 * Two implementations with identical results: a portable slicing-by-8 table
 * version and an SSE4.2 version (crc32 instruction); ff_crc32c picks the SSE4.2
 * one at run time when the CPU has it. All functions take the CRC of the bytes
 * seen so far (0 for none) and return the CRC including `data`, so
 * ff_crc32c(ff_crc32c(0, a, n), b, m) == CRC of a||b. They cannot fail and are
 * thread-safe. */
#ifndef FF_CRC32C_H
#define FF_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Dispatching version (hardware if available, else table). */
uint32_t ff_crc32c(uint32_t crc, const void *data, size_t n);

/* Table version (slicing-by-8); works everywhere. */
uint32_t ff_crc32c_sw(uint32_t crc, const void *data, size_t n);

/* SSE4.2 version. Call only when ff_crc32c_hw_available() is true. */
uint32_t ff_crc32c_hw(uint32_t crc, const void *data, size_t n);

/* 1 if this CPU runs ff_crc32c_hw (checked at run time, not compile time). */
int ff_crc32c_hw_available(void);

/* TFRecord mask: ((crc >> 15) | (crc << 17)) + 0xA282EAD8, and its inverse. */
uint32_t ff_crc32c_mask(uint32_t crc);
uint32_t ff_crc32c_unmask(uint32_t masked);

/* ff_crc32c_mask(CRC-32C of data): the checksum stored in TFRecord framing. */
uint32_t ff_crc32c_masked(const void *data, size_t n);

#endif
