/* png.h - minimal PNG encoder (zlib deflate, filter 0), a PNG decoder for the common
 * 8-bit images (zlib alone, no libpng) and an image-grid helper.
 *
 * Output buffers are malloc'ed and owned by the caller (free()). */
#ifndef FF_PNG_H
#define FF_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"

/* Encodes 8-bit pixels (channels 1 = grey, 3 = RGB, 4 = RGBA; row-major,
 * interleaved) as a PNG file in memory. Bad channels/size: FF_ERR_USAGE. */
int ff_png_encode(const uint8_t *pixels, int height, int width, int channels, uint8_t **out,
                  size_t *out_len, ff_err *err);

/* Decodes the PNG file held in buf[0..len) (name: the file's name, for messages) into
 * *pixels: malloc'ed, row-major, channels interleaved, (*height) x (*width) x (*channels)
 * bytes. Accepts bit depth 8, no interlacing, colour types grey (1 channel), grey+alpha
 * (2), RGB (3) and RGBA (4); all five row filters; any number of consecutive IDAT chunks;
 * ancillary chunks (and a suggested PLTE) are skipped, bytes after IEND ignored. Every
 * chunk CRC is checked. Errors (FF_ERR_FORMAT, message "<name>: ..."): bad signature,
 * truncated chunk, CRC mismatch, missing IHDR / IDAT / IEND, unsupported bit depth,
 * colour type (palette) or interlacing, unknown critical chunk, bad filter byte, image
 * data that does not inflate to exactly height * (1 + width * channels) bytes, width or
 * height 0 or over 2^20, width * height * channels over 2^30. FF_ERR_NOMEM when out of
 * memory. On error *pixels is NULL and the sizes 0. */
int ff_png_decode(const uint8_t *buf, size_t len, const char *name, uint8_t **pixels,
                  int *height, int *width, int *channels, ff_err *err);

/* Tiles n float images (each h x w, one channel) into a grid of `cols` columns
 * with a 1-pixel border, scaling each tile's values linearly from [lo, hi] to
 * 0..255 (lo == hi: per-tile min/max). *out is malloc'ed grey pixels of size
 * (*out_h) x (*out_w) = (rows * (h + 1) + 1) x (cols * (w + 1) + 1) with
 * rows = ceil(n / cols); image i sits at row i / cols, column i % cols.
 * Values are rounded and clamped (NaN -> 0; a constant tile -> 0); borders
 * and unused cells are grey 128. */
int ff_png_grid(const float *images, int n, int h, int w, int cols, float lo, float hi,
                  uint8_t **out, int *out_h, int *out_w, ff_err *err);

#endif
