/* pool.c - the persistent thread pool behind ff_pool_for (include/ff/pool.h).
 *
 * One job at a time. The caller writes the job (fn, ctx, n, grain, the chunk
 * counter) and publishes it with a new generation in `state`, a 64-bit word:
 *   bits 63..32 generation, bit 31 OPEN, bits 30..0 workers inside the job.
 * A worker that sees a new generation joins with a CAS that needs OPEN and the
 * same generation, so a worker that wakes after the job closed never touches it
 * (nor the next job's fields). Every joined thread claims chunks from the counter
 * until none are left. The caller, out of chunks, clears OPEN and waits until no
 * worker is inside; then the job's memory may change. So a slow worker (asleep,
 * or sharing its core with an OpenBLAS thread that still spins after a GEMM)
 * costs at most the chunks it took, never a wait for it to wake up. */
#include "ff/pool.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define OPEN_BIT ((uint64_t)1 << 31)
#define ACTIVE_MASK (OPEN_BIT - 1)
#define GEN_OF(s) ((uint32_t)((s) >> 32))

/* pause instructions a worker spins for a new job before it sleeps: about 10-20 us,
 * enough for the next loop of a short sequence (epilogue, then normalisation)
 * without holding a core through a GEMM */
#ifndef FF_POOL_SPIN
#define FF_POOL_SPIN 300
#endif

static struct {
    int threads;        /* caller included; 0: not sized yet */
    pthread_t tid[FF_POOL_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t state;
    atomic_int stop;
    /* the job: written by the caller before it publishes the generation */
    ff_pool_fn *fn;
    void *ctx;
    size_t n, grain;
    atomic_size_t next; /* the first unclaimed item */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static _Thread_local int in_job; /* 1 while this thread runs a task: nested calls run inline */

static void run_chunks(void)
{
    const size_t n = P.n, grain = P.grain;
    for (;;) {
        const size_t b = atomic_fetch_add_explicit(&P.next, grain, memory_order_relaxed);
        if (b >= n)
            return;
        P.fn(P.ctx, b, n - b < grain ? n : b + grain);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    in_job = 1;
    uint32_t seen = GEN_OF(atomic_load_explicit(&P.state, memory_order_acquire));
    for (;;) {
        uint64_t s = atomic_load_explicit(&P.state, memory_order_acquire);
        for (int i = 0; i < FF_POOL_SPIN && GEN_OF(s) == seen && !atomic_load(&P.stop); i++) {
            CPU_RELAX();
            s = atomic_load_explicit(&P.state, memory_order_acquire);
        }
        if (GEN_OF(s) == seen) {
            pthread_mutex_lock(&P.mu);
            while (GEN_OF(s = atomic_load(&P.state)) == seen && !atomic_load(&P.stop))
                pthread_cond_wait(&P.cv, &P.mu);
            pthread_mutex_unlock(&P.mu);
        }
        if (atomic_load(&P.stop))
            return NULL;
        seen = GEN_OF(s);
        /* join the job if it is still open */
        int joined = 0;
        while ((s & OPEN_BIT) && GEN_OF(s) == seen) {
            if (atomic_compare_exchange_weak_explicit(&P.state, &s, s + 1, memory_order_acquire,
                                                      memory_order_acquire)) {
                joined = 1;
                break;
            }
        }
        if (!joined)
            continue;
        run_chunks();
        atomic_fetch_sub_explicit(&P.state, 1, memory_order_release);
    }
}

static void stop_workers(void)
{
    if (P.threads <= 1)
        return;
    pthread_mutex_lock(&P.mu);
    atomic_store(&P.stop, 1);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    for (int i = 1; i < P.threads; i++)
        pthread_join(P.tid[i], NULL);
    atomic_store(&P.stop, 0);
}

int ff_pool_set_threads(int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > FF_POOL_MAX_THREADS)
        threads = FF_POOL_MAX_THREADS;
    if (threads == P.threads)
        return threads;
    stop_workers();
    P.threads = 1;
    /* workers block every signal, so SIGINT / SIGTERM still reach the thread that
     * handles them as before the pool (the one that calls ff_pool_for) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&P.tid[i], NULL, worker, NULL) != 0)
            break; /* run with the workers that started */
        P.threads = i + 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return P.threads;
}

int ff_pool_follow_blas(void) { return ff_pool_set_threads(openblas_get_num_threads()); }

int ff_pool_threads(void)
{
    if (!P.threads)
        ff_pool_follow_blas();
    return P.threads;
}

void ff_pool_for(size_t n, size_t grain, ff_pool_fn *fn, void *ctx)
{
    if (grain == 0)
        grain = 1;
    if (n == 0)
        return;
    if (n <= grain || in_job || ff_pool_threads() == 1) {
        fn(ctx, 0, n);
        return;
    }
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    P.grain = grain;
    atomic_store_explicit(&P.next, 0, memory_order_relaxed);
    /* no worker is inside (the last job waited for that): publish the new generation */
    const uint64_t gen = (uint64_t)GEN_OF(atomic_load(&P.state)) + 1;
    atomic_store_explicit(&P.state, (gen << 32) | OPEN_BIT, memory_order_release);
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    in_job = 1;
    run_chunks();
    in_job = 0;
    /* close the job, then wait for the workers inside it */
    uint64_t s = atomic_fetch_and_explicit(&P.state, ~OPEN_BIT, memory_order_acq_rel) & ~OPEN_BIT;
    for (unsigned spins = 0; s & ACTIVE_MASK; spins++) {
        if (spins < 100000)
            CPU_RELAX();
        else
            sched_yield();
        s = atomic_load_explicit(&P.state, memory_order_acquire);
    }
}
