/* pool.h - a small persistent thread pool for the loops between the GEMMs
 * (im2col, bias + ReLU epilogues, normalisation, goodness, loss, Adam, embedding).
 *
 * One process-wide pool, sized like OpenBLAS (openblas_get_num_threads() at the
 * first ff_pool_for unless ff_pool_set_threads chose): the caller plus T - 1
 * workers. ff_pool_for splits [0, n) into chunks of `grain` items that the caller
 * and the workers claim as they come (a late worker takes fewer); it returns when
 * every item is done. Callers partition by OUTPUT elements only (rows, samples,
 * channels, parameters) and never split a reduction, so a kernel's results do not
 * depend on the number of threads or on which thread ran which chunk.
 *
 * Workers sleep on a condition variable between calls (after a short spin), so
 * they leave the cores to OpenBLAS's threads during the GEMMs. ff_pool_for is
 * called from one thread at a time (the trainer's); a call from inside a task
 * runs inline. Nothing here allocates after the workers are started. */
#ifndef FF_POOL_H
#define FF_POOL_H

#include <stddef.h>

/* The most threads (caller included) a pool runs. */
#define FF_POOL_MAX_THREADS 64

/* Runs items [begin, end) of a loop. */
typedef void ff_pool_fn(void *ctx, size_t begin, size_t end);

/* Calls fn(ctx, b, e) over chunks covering [0, n) exactly once each, chunks of
 * `grain` items (the last may be shorter; grain 0 counts as 1). With one thread,
 * or n <= grain, it is one call fn(ctx, 0, n) on the caller's thread (none for
 * n = 0). */
void ff_pool_for(size_t n, size_t grain, ff_pool_fn *fn, void *ctx);

/* Threads the pool runs loops on (caller included, >= 1). */
int ff_pool_threads(void);

/* Resizes the pool to `threads` (clamped to [1, FF_POOL_MAX_THREADS]): joins the
 * old workers and starts new ones. Returns the size in effect (1 if threads could
 * not be started). */
int ff_pool_set_threads(int threads);

/* Sizes the pool like OpenBLAS (openblas_get_num_threads()); what the first
 * ff_pool_for does if nothing chose a size. Returns the size. */
int ff_pool_follow_blas(void);

#endif
