/* image.h - reading the images a trained model is asked to classify: PNG, binary PGM
 * (P5) / PPM (P6), IDX image files (MNIST's, gzipped or raw) and CIFAR-10 batch files,
 * turned into the model's layout (float CHW, pixel / 255).
 *
 * PNG goes through ff_png_decode (png.h: zlib alone, no libpng, fuzzed); PGM/PPM
 * through ff_pnm_decode below (fuzzed too: tests/fuzz/fuzz_pnm.c). No resizing: an
 * image must have the model's height and width. */
#ifndef FF_IMAGE_H
#define FF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"
#include "ff/layer.h"

/* Decodes a binary PGM (P5, 1 channel) or PPM (P6, 3 channels) held in buf[0..len)
 * (name: for messages) into *pixels: malloc'ed, row-major, channels interleaved,
 * (*height) x (*width) x (*channels) bytes. The header is magic, width, height and
 * maxval separated by whitespace (comments from '#' to the end of a line allowed),
 * then one whitespace byte; maxval 1..255 (values are scaled to 0..255; one byte per
 * sample); width and height 1..2^20, width * height * channels at most 2^30; the pixel
 * data must be complete (bytes after it are ignored, as after a first image of a
 * multi-image file). Errors: FF_ERR_FORMAT "<name>: ..." (ASCII P2/P3, 16-bit samples,
 * a bad or truncated header or pixel data), FF_ERR_NOMEM. On error *pixels is NULL and
 * the sizes 0. */
int ff_pnm_decode(const uint8_t *buf, size_t len, const char *name, uint8_t **pixels,
                  int *height, int *width, int *channels, ff_err *err);

/* The images of one input file for a model that takes images of shape `want`. */
typedef struct ff_image_file {
    int n;            /* images in the file (1 for PNG, PGM, PPM) */
    ff_shape shape;   /* = want */
    float *images;    /* n images, each CHW, pixel / 255 (malloc'ed) */
    const char *kind; /* "png", "pgm", "ppm", "idx", "cifar10" */
} ff_image_file;

/* Reads path (a regular file; gzipped IDX too) and converts its images to `want`:
 * the format is recognised by content (PNG and IDX signatures, "P5"/"P6"; otherwise a
 * CIFAR-10 batch: records of a label byte and want.c x h x w plane bytes, the size a
 * whole number of records, every label byte 0..9). Channels: a greyscale model takes
 * grey images (an alpha channel is dropped; an RGB(A) image whose three channels are
 * equal everywhere counts as grey); a colour model (3 channels) takes RGB images (alpha
 * dropped) and refuses grey ones. Errors name the file and what was expected:
 * FF_ERR_USAGE for an image of the wrong size or channels or a file of no known format,
 * FF_ERR_FORMAT for a corrupt file, FF_ERR_IO when it cannot be read. */
int ff_image_file_read(const char *path, ff_shape want, ff_image_file *out, ff_err *err);

void ff_image_file_free(ff_image_file *f);

#endif
