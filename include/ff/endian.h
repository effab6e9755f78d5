/* endian.h - little-endian byte order for the file formats (TFRecord framing,
 * model files, the hybrid cache), independent of the host's order. */
#ifndef FF_ENDIAN_H
#define FF_ENDIAN_H

#include <stdint.h>

static inline void ff_endian_put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ff_endian_put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t ff_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ff_get_u64le(const uint8_t *p)
{
    return (uint64_t)ff_get_u32le(p) | (uint64_t)ff_get_u32le(p + 4) << 32;
}

#endif
