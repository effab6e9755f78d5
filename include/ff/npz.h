/* npz.h - writing NumPy .npz files: a zip archive (deflate, zlib) of .npy arrays
 * (format version 1.0, little-endian float32 '<f4', C order) and, optionally, other
 * members stored as they are (e.g. a manifest.json, which np.load returns as bytes).
 *
 * Members are collected in memory and written at once, atomically (ff_fs_write_file_atomic).
 * No zip64: the archive, and every member, must stay under 4 GiB (FF_ERR_USAGE beyond).
 * ff_npz_free releases what the adds allocated (safe on a zeroed struct). */
#ifndef FF_NPZ_H
#define FF_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "ff/err.h"

#define FF_NPZ_MAX_DIMS 8

typedef struct ff_npz {
    uint8_t *buf;       /* local headers and compressed data so far */
    size_t len, cap;
    uint8_t *central;   /* the central directory so far */
    size_t central_len, central_cap;
    int n_members;
} ff_npz;

/* Adds "<name>.npy" holding the float32 array of the given shape (ndim 0..8; ndim 0
 * is a scalar, data[0]). Errors: FF_ERR_USAGE (bad name or shape, too large),
 * FF_ERR_NOMEM, FF_ERR_RUNTIME (zlib). */
int ff_npz_add_f32(ff_npz *z, const char *name, const float *data, const int64_t *shape,
                   int ndim, ff_err *err);

/* Adds a member `name` holding len bytes as they are (deflated). */
int ff_npz_add_bytes(ff_npz *z, const char *name, const void *data, size_t len, ff_err *err);

/* Writes the archive (with its central directory) to path atomically. */
int ff_npz_write(const ff_npz *z, const char *path, ff_err *err);

void ff_npz_free(ff_npz *z);

#endif
