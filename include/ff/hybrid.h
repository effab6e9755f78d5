/* hybrid.h - hybrid-image negatives for unsupervised FF, and their on-disk cache.
 *
 * A mask is a random bit image blurred `blur_passes` times with [1/4, 1/2, 1/4]
 * horizontally then vertically (edges replicated, so borders are not biased
 * towards 0) and thresholded at 0.5 (> 0.5 -> 1): large regions of ones and
 * zeros. A hybrid is m * a + (1 - m) * b for two real images a, b whose labels
 * DIFFER; one mask over the h x w pixels serves every channel of a colour image.
 * Hybrids are floats exactly like the source images (the positives), with no 8-bit
 * round trip; every pixel is the pixel of a or of b.
 *
 * Cache file (format version 2, little-endian), "<dir>/hybrid-<key16>.bin":
 *   offset  size  field
 *   0       8     magic "FFHYBRID"
 *   8       4     version (2; a version 1 file, of grey images without a channel
 *                 count, is regenerated)
 *   12      4     channels
 *   16      4     rows (height)
 *   20      4     cols (width)
 *   24      4     n (hybrids)
 *   28      4     blur_passes
 *   32      4     source images (ds->n)
 *   36      8     seed
 *   44      32    key: SHA-256 of (CRC-32C of the source float images, CRC-32C of
 *                 the labels, format version, channels, rows, cols, ds->n, n,
 *                 blur_passes, seed),
 *                 all as u32 except seed (u64). CRC-32C keeps the key cheap (the
 *                 data set files themselves are SHA-256-checked by ff_dataset_open).
 *   76      ...   src: n x 2 int32 (indices of a and b), images: n * C * rows * cols float32
 *   end-4   4     CRC-32C of every byte before it
 * key16 is the first 16 hex digits of the key. A file whose header, key, size or
 * CRC does not match is never trusted: the set is regenerated and the file
 * replaced (written to a unique tmp name, fsync'ed, renamed, directory fsync'ed). */
#ifndef FF_HYBRID_H
#define FF_HYBRID_H

#include <stddef.h>
#include <stdint.h>

#include "ff/data.h"
#include "ff/err.h"

#define FF_HYBRID_MAGIC "FFHYBRID"
#define FF_HYBRID_VERSION 2
#define FF_HYBRID_HEADER 76
#define FF_HYBRID_DEFAULT_BLUR 6

struct ff_rng;

/* A set of hybrid negatives. ff_hybrid_make / ff_hybrid_load_or_make fill it
 * (the arrays are malloc'ed); ff_hybrid_free releases them (safe on a zeroed
 * struct). */
typedef struct ff_hybrid_set {
    int n;              /* number of hybrids */
    ff_shape shape;     /* of one image, the source's */
    float *images;      /* [n, ff_shape_dim(shape)], same layout as ff_dataset.images */
    int32_t *src;       /* [n, 2]: source indices of a (mask 1) and b (mask 0) */
} ff_hybrid_set;

/* Where ff_hybrid_load_or_make got the set from (for a log line). */
typedef enum {
    FF_HYBRID_GENERATED,  /* no cache dir given: generated, nothing written */
    FF_HYBRID_LOADED,     /* read from a valid cache file */
    FF_HYBRID_CACHED,     /* no cache file yet: generated and written */
    FF_HYBRID_REBUILT     /* cache file invalid (corrupt, truncated, other key): regenerated and rewritten */
} ff_hybrid_origin;

const char *ff_hybrid_origin_name(ff_hybrid_origin o);

/* A blurred, thresholded random mask of h x w values in {0, 1} (one per pixel of
 * an image of shape `image`), drawn from rng. scratch holds h * w floats. Redrawn (up to 16 times) while
 * the mask is all zeros or all ones, so a hybrid is never just one digit.
 * Cannot fail. */
void ff_hybrid_mask(struct ff_rng *rng, ff_shape image, int blur_passes, float *mask,
                    float *scratch);

/* out[c][j] = m[j] * a[c][j] + (1 - m[j]) * b[c][j] for every channel c and pixel
 * j of images of shape `image` (out may alias a or b). */
void ff_hybrid_mix(const float *m, const float *a, const float *b, ff_shape image, float *out);

/* Draws indices *ia, *ib of ds, uniformly, with labels[*ia] != labels[*ib].
 * ds must hold at least two classes (ff_hybrid_make checks this). */
void ff_hybrid_pick_pair(struct ff_rng *rng, const ff_dataset *ds, int *ia, int *ib);

/* batch hybrids drawn from rng into out ([batch, dim of an image]); src ([batch, 2])
 * may be NULL; scratch holds 2 * h * w floats. For fresh negatives per batch
 * or epoch without allocating. ds must hold at least two classes. */
void ff_hybrid_batch(struct ff_rng *rng, const ff_dataset *ds, int blur_passes, int batch,
                     float *out, int32_t *src, float *scratch);

/* Generates n hybrids from ds, deterministically from seed (same ds, n, seed,
 * blur_passes -> same bytes). *set is overwritten (not freed). Errors:
 * FF_ERR_USAGE (n < 1, blur_passes < 0, ds with fewer than two classes),
 * FF_ERR_NOMEM. */
int ff_hybrid_make(ff_hybrid_set *set, const ff_dataset *ds, int n, uint64_t seed,
                   int blur_passes, ff_err *err);

/* The cache key (see the format above) and the cache file name for it:
 * "<cache_dir>/hybrid-<first 16 hex digits>.bin" into path[cap]. */
void ff_hybrid_key(const ff_dataset *ds, int n, uint64_t seed, int blur_passes, uint8_t key[32]);
int ff_hybrid_cache_path(const char *cache_dir, const uint8_t key[32], char *path, size_t cap,
                         ff_err *err);

/* Loads the set for (ds, n, seed, blur_passes) from cache_dir if a valid file
 * is there, else generates it and writes the file (creating cache_dir).
 * cache_dir NULL or "" disables the cache. *origin (if not NULL) says which
 * happened; path (if not NULL, cap bytes) receives the cache file name.
 * Errors: those of ff_hybrid_make, and FF_ERR_IO if the cache directory or
 * file cannot be created or written (the set is then freed). */
int ff_hybrid_load_or_make(ff_hybrid_set *set, const ff_dataset *ds, int n, uint64_t seed,
                           int blur_passes, const char *cache_dir, ff_hybrid_origin *origin,
                           char *path, size_t cap, ff_err *err);

/* Writes set as a cache file for key at path (atomically). */
int ff_hybrid_save(const ff_hybrid_set *set, const uint8_t key[32], int src_n, int blur_passes,
                   uint64_t seed, const char *path, ff_err *err);

/* Reads a cache file and checks it against the expected key, dims and n.
 * FF_ERR_IO: missing/unreadable; FF_ERR_FORMAT: bad magic/version/key/shape,
 * truncated, trailing bytes, checksum mismatch, pixel not finite. *set is
 * left zeroed on failure. */
int ff_hybrid_load(ff_hybrid_set *set, const char *path, const uint8_t key[32], ff_shape shape,
                   int n, ff_err *err);

void ff_hybrid_free(ff_hybrid_set *set);

#endif
