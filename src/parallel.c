/* parallel.c - data parallel and layer pipeline training under Open MPI
 * (include/ff/parallel.h). The only file that calls MPI.
 *
 * Reads top to bottom: start-up (MPI only under a launcher), the pipeline's
 * balanced split, the hooks of data parallel (gradient slices, sums, gathers),
 * the hooks of the pipeline (double-buffered sends and receives), attaching to
 * a trainer, and what the run loop asks (stop agreement, sums, state sync). */
#include "ff/parallel.h"

#include "ff/crc32c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#ifdef FF_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_mpi = 0;

int ff_parallel_rank(void) { return g_rank; }
int ff_parallel_size(void) { return g_size; }

/* ---------------------------------------------------------------- start-up */

#ifdef FF_HAVE_MPI
static void finalize(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (!done)
        MPI_Finalize();
}
#endif

void ff_parallel_init(int *argc, char ***argv)
{
#ifdef FF_HAVE_MPI
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return; /* not launched by mpirun: alone, no MPI at all */
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return;
    g_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    atexit(finalize);
#else
    (void)argc;
    (void)argv;
#endif
}

void ff_parallel_abort(int status)
{
#ifdef FF_HAVE_MPI
    if (g_mpi && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
#endif
    (void)status;
}

/* ---------------------------------------------------------------- sweep messages */

#define MSG_TAG 7707

int ff_parallel_send(int to, const void *msg, int len)
{
#ifdef FF_HAVE_MPI
    if (g_mpi && g_size > 1)
        return MPI_Send(msg, len, MPI_BYTE, to, MSG_TAG, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
#endif
    (void)to, (void)msg, (void)len;
    return -1;
}

int ff_parallel_poll(void *msg, int cap, int *from)
{
#ifdef FF_HAVE_MPI
    int flag = 0, n = 0;
    MPI_Status st;
    if (!g_mpi || g_size == 1 ||
        MPI_Iprobe(MPI_ANY_SOURCE, MSG_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS || !flag)
        return 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (n > cap)
        n = cap;
    MPI_Recv(msg, cap, MPI_BYTE, st.MPI_SOURCE, MSG_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    *from = st.MPI_SOURCE;
    return n > 0 ? n : 0;
#else
    (void)msg, (void)cap, (void)from;
    return 0;
#endif
}

/* ---------------------------------------------------------------- start-up agreement */

/* One line "key=value" of text (lines end in '\n'): its key's length, or 0 at the end. */
static size_t line_key(const char *line, const char **value, size_t *value_len)
{
    const char *eol = strchr(line, '\n'), *eq = strchr(line, '=');
    if (!*line)
        return 0;
    if (!eol)
        eol = line + strlen(line);
    if (!eq || eq > eol)
        eq = eol;
    *value = eq < eol ? eq + 1 : eq;
    *value_len = (size_t)(eol - *value);
    return (size_t)(eq - line);
}

/* The value of key in text (NULL if absent; its length in *len). */
static const char *find_value(const char *text, const char *key, size_t klen, size_t *len)
{
    for (const char *l = text; *l;) {
        const char *v;
        size_t vl, kl = line_key(l, &v, &vl);
        if (kl == klen && !memcmp(l, key, klen)) {
            *len = vl;
            return v;
        }
        l = v + vl + (v[vl] == '\n');
    }
    return NULL;
}

/* Appends "key (rank 0: A, rank R: B)" to out (cap bytes; "..." once full). */
static void add_difference(char *out, size_t cap, const char *key, size_t klen, const char *a,
                           size_t alen, const char *b, size_t blen, int rank)
{
    const size_t n = strlen(out);
    if (n + 4 >= cap)
        return;
    const int w = snprintf(out + n, cap - n, "%s%.*s (rank 0: %.*s, rank %d: %.*s)",
                           n ? "; " : "", (int)klen, key, (int)(a ? alen : 6),
                           a ? a : "absent", rank, (int)(b ? blen : 6), b ? b : "absent");
    if (w < 0 || (size_t)w >= cap - n)
        snprintf(out + cap - 5, 5, "...");
}

/* The keys whose values differ between rank 0's text and mine, named in out ("" if none). */
static void describe_differences(const char *zero, const char *mine, int rank, char *out,
                                 size_t cap)
{
    out[0] = '\0';
    for (const char *l = mine; *l;) { /* mine against rank 0's, then rank 0's keys I lack */
        const char *v, *z;
        size_t vl, zl, kl = line_key(l, &v, &vl);
        z = find_value(zero, l, kl, &zl);
        if (!z || zl != vl || memcmp(z, v, vl))
            add_difference(out, cap, l, kl, z, zl, v, vl, rank);
        l = v + vl + (v[vl] == '\n');
    }
    for (const char *l = zero; *l;) {
        const char *v;
        size_t vl, ml, kl = line_key(l, &v, &vl);
        if (!find_value(mine, l, kl, &ml))
            add_difference(out, cap, l, kl, v, vl, NULL, 0, rank);
        l = v + vl + (v[vl] == '\n');
    }
}

#ifdef FF_HAVE_MPI
/* The lowest rank whose flag is set (g_size if none). A collective. */
static int first_rank_with(int flag)
{
    int r = flag ? g_rank : g_size;
    MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return r;
}

/* msg (FF_ERR_MSG_MAX bytes) from rank `from` to every rank. */
static void share_message(char *msg, int from)
{
    msg[FF_ERR_MSG_MAX - 1] = '\0';
    MPI_Bcast(msg, FF_ERR_MSG_MAX, MPI_CHAR, from, MPI_COMM_WORLD);
}

/* rank 0's text into every rank (a new string the caller frees; NULL without memory,
 * the same answer everywhere: the length goes first, -1 for none). */
static char *share_text(const char *text)
{
    long len = g_rank == 0 ? (long)strlen(text) : 0;
    char *copy = NULL;
    if (g_rank == 0 && !(copy = malloc((size_t)len + 1)))
        len = -1;
    MPI_Bcast(&len, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    if (len < 0)
        return NULL;
    if (g_rank != 0 && !(copy = malloc((size_t)len + 1)))
        return NULL; /* the caller aborts the job: the others wait in the Bcast below */
    if (g_rank == 0)
        memcpy(copy, text, (size_t)len);
    MPI_Bcast(copy, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    copy[len] = '\0';
    return copy;
}
#endif

int ff_parallel_agree(int rc, const char *text, ff_err *err)
{
#ifdef FF_HAVE_MPI
    if (!g_mpi || g_size == 1)
        return rc;
    char msg[FF_ERR_MSG_MAX] = "";
    const int failed = first_rank_with(rc != FF_OK);
    if (failed < g_size) {
        if (g_rank == failed)
            snprintf(msg, sizeof msg, "%s", err && err->msg[0] ? err->msg : "start-up failed");
        share_message(msg, failed);
        if (failed == 0)
            return ff_err_set(err, FF_ERR_USAGE, "%s", msg);
        return ff_err_set(err, FF_ERR_USAGE, "rank %d of %d: %s", failed, g_size, msg);
    }
    if (!text)
        return FF_OK;
    char *zero = share_text(text);
    if (!zero) {
        MPI_Abort(MPI_COMM_WORLD, 1); /* out of memory half way through a collective */
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    }
    describe_differences(zero, text, g_rank, msg, 700);
    free(zero);
    const int differs = first_rank_with(msg[0] != '\0');
    if (differs == g_size)
        return FF_OK;
    share_message(msg, differs);
    return ff_err_set(err, FF_ERR_USAGE,
                      "the ranks disagree: rank %d of %d was started with another config or "
                      "other options than rank 0: %s; every rank must run the same (one "
                      "command line for all: mpirun -np N ffrun ...)", differs, g_size, msg);
#else
    (void)text;
    (void)err;
    (void)describe_differences;
    return rc;
#endif
}

/* ---------------------------------------------------------------- the split */

void ff_parallel_stages(const ff_net *net, int n, int first[FF_MAX_LAYERS + 1])
{
    const int L = net->n_layers;
    double pre[FF_MAX_LAYERS + 1] = {0};
    for (int l = 0; l < L; l++)
        pre[l + 1] = pre[l] + ff_layer_flops(&net->layers[l]);
    /* best[k][l]: the smallest largest group splitting layers [0, l) into k groups */
    double best[FF_MAX_LAYERS + 1][FF_MAX_LAYERS + 1];
    int cut[FF_MAX_LAYERS + 1][FF_MAX_LAYERS + 1];
    for (int l = 0; l <= L; l++)
        best[1][l] = pre[l];
    for (int k = 2; k <= n; k++)
        for (int l = k; l <= L; l++) {
            best[k][l] = -1.0;
            for (int c = k - 1; c < l; c++) {
                double worst = best[k - 1][c] > pre[l] - pre[c] ? best[k - 1][c] : pre[l] - pre[c];
                if (best[k][l] < 0 || worst < best[k][l]) {
                    best[k][l] = worst;
                    cut[k][l] = c;
                }
            }
        }
    first[n] = L;
    for (int k = n, l = L; k > 1; k--) {
        l = cut[k][l];
        first[k - 1] = l;
    }
    first[0] = 0;
}

#ifdef FF_HAVE_MPI

struct ff_parallel {
    ff_par_mode mode;
    int rank, size;
    ff_trainer *t;
    ff_trainer_peers tp;
    ff_net_peers np;
    MPI_Comm comm;
    MPI_Request greq[FF_MAX_LAYERS]; /* data: each layer's gradient sum in flight */
    int ngreq;
    int *counts, *displs;            /* data: every rank's rows of a batch */
    int stage[FF_MAX_LAYERS + 1];    /* pipeline: rank r trains [stage[r], stage[r + 1]) */
    float *sbuf[2], *rbuf[2];        /* pipeline: two send and two receive buffers */
    MPI_Request sreq[2], rreq[2];
    int sk, rk;                      /* the buffer the next send / receive uses */
    size_t cap;                      /* floats per buffer */
    int check;                       /* FF_PARALLEL_CHECK set: compare replicas every step */
    /* data parallel on one node (shared memory): weights and optimiser state live once
     * in a window every process maps; each process's gradient in a window the others
     * read; process r sums and steps the shard [lo, hi) of the flat parameters */
    int shm, locked;
    MPI_Win pwin, gwin;
    int detached;                    /* the net and optimiser on the windows, their own
                                      * buffers freed (given back by ff_parallel_free) */
    float **grads;                   /* every process's gradient buffer, mapped here */
    size_t lo, hi;
    /* FF_PARALLEL_PROFILE set: where the time of the optimiser steps goes (MPI_Wtime) */
    int prof;
    long steps;
    double last_end, wall, t_post, t_wait, t_sum, t_opt, t_bar, t_coll, mark;
};

/* ---------------------------------------------------------------- profile */

/* The optimiser of the message path runs in the trainer between before_update and
 * the next hook: its time is closed at the entry of whatever hook comes next. */
static void prof_enter(ff_parallel *p)
{
    if (p->prof && p->mark > 0) {
        p->t_opt += MPI_Wtime() - p->mark;
        p->mark = 0;
    }
}

static void prof_step_end(ff_parallel *p, double now)
{
    if (p->last_end > 0)
        p->wall += now - p->last_end;
    else /* the first step's wall time is unknown: none of its parts count */
        p->t_post = p->t_wait = p->t_sum = p->t_opt = p->t_bar = p->t_coll = 0;
    p->last_end = now;
    p->steps++;
}

/* Profiling on: adds the time since *t0 to *part and moves *t0 to now. */
static void prof_lap(const ff_parallel *p, double *t0, double *part)
{
    if (!p->prof)
        return;
    const double now = MPI_Wtime();
    *part += now - *t0;
    *t0 = now;
}

static void prof_report(const ff_parallel *p)
{
    const double n = p->steps > 1 ? (double)(p->steps - 1) : 1.0, ms = 1e3 / n;
    const double rest = p->wall - p->t_post - p->t_wait - p->t_sum - p->t_opt - p->t_bar -
                        p->t_coll;
    fprintf(stderr,
            "ffrun: rank %d profile (%s, %ld optimiser steps), ms per step: %.1f = compute "
            "and the rest %.1f + posting sums %.1f + waiting for sums %.1f + summing %.1f + "
            "optimiser %.1f + barrier after the step %.1f + other collectives %.1f\n",
            p->rank, p->shm ? "shared memory" : "messages", p->steps, p->wall * ms, rest * ms,
            p->t_post * ms, p->t_wait * ms, p->t_sum * ms, p->t_opt * ms, p->t_bar * ms,
            p->t_coll * ms);
}

/* ---------------------------------------------------------------- data parallel */

static void grads_ready(void *ctx, int l)
{
    ff_parallel *p = ctx;
    prof_enter(p);
    if (p->shm)
        return; /* the others read this rank's gradient in place at the step */
    double t0 = p->prof ? MPI_Wtime() : 0;
    const ff_layer *L = &p->t->net.layers[l];
    MPI_Iallreduce(MPI_IN_PLACE, L->gW, (int)ff_layer_n_params(L), MPI_FLOAT, MPI_SUM,
                   p->comm, &p->greq[p->ngreq++]);
    int flag; /* lets the earlier layers' reductions progress meanwhile */
    MPI_Testall(p->ngreq, p->greq, &flag, MPI_STATUSES_IGNORE);
    prof_lap(p, &t0, &p->t_post);
}

static void before_update(void *ctx)
{
    ff_parallel *p = ctx;
    prof_enter(p);
    double t0 = p->prof ? MPI_Wtime() : 0;
    MPI_Waitall(p->ngreq, p->greq, MPI_STATUSES_IGNORE);
    p->ngreq = 0;
    prof_lap(p, &t0, &p->t_wait);
    if (p->prof) {
        prof_step_end(p, t0); /* the trainer's optimiser step follows (prof_enter) */
        p->mark = t0;
    }
}

/* every rank's gradients [lo, lo + n) summed into this rank's (which the window shares) */
static void sum_shard_part(ff_parallel *p, size_t lo, size_t n)
{
    float *restrict dst = p->grads[p->rank] + lo;
    const float *restrict a = p->grads[0] + lo, *restrict b = p->grads[1] + lo;
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        dst[i] = a[i] + b[i];
    for (int k = 2; k < p->size; k++) {
        const float *restrict c = p->grads[k] + lo;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dst[i] += c[i];
    }
}

/* The shared-memory step: once every process has its gradient (a barrier), this
 * one sums the shard [lo, hi) of all of them into its own buffer and takes the
 * optimiser step on that shard of the shared weights; a second barrier keeps
 * every process from the next forward pass until all shards are updated. Float
 * addition commutes, so g0 + g1 is the same sum whichever process forms it. */
static void shm_update(void *ctx, float lr)
{
    ff_parallel *p = ctx;
    prof_enter(p);
    double t0 = p->prof ? MPI_Wtime() : 0;
    MPI_Win_sync(p->gwin);
    MPI_Barrier(p->comm);
    MPI_Win_sync(p->gwin);
    prof_lap(p, &t0, &p->t_wait);
    /* the shard's layers still learning (all of it while none is frozen): a frozen
     * layer's gradients are zeros, not worth summing */
    ff_trainer *t = p->t;
    size_t off[FF_MAX_LAYERS], len[FF_MAX_LAYERS];
    int runs = 1;
    off[0] = p->lo;
    len[0] = p->hi - p->lo;
    if (t->n_frozen > 0)
        runs = ff_trainer_learning_ranges(t, p->lo, p->hi, off, len);
    for (int r = 0; r < runs; r++)
        sum_shard_part(p, off[r], len[r]);
    prof_lap(p, &t0, &p->t_sum);
    ff_optim_step_ranges(&t->opt, t->net.params, t->net.grads, lr, off, len, runs);
    prof_lap(p, &t0, &p->t_opt);
    MPI_Win_sync(p->pwin);
    MPI_Barrier(p->comm);
    MPI_Win_sync(p->pwin);
    prof_lap(p, &t0, &p->t_bar);
    if (p->prof)
        prof_step_end(p, t0);
}

static double coll_start(ff_parallel *p)
{
    prof_enter(p);
    return p->prof ? MPI_Wtime() : 0;
}

static void coll_end(ff_parallel *p, double t0)
{
    if (p->prof)
        p->t_coll += MPI_Wtime() - t0;
}

static void sum_floats(void *ctx, float *v, int n)
{
    ff_parallel *p = ctx;
    const double t0 = coll_start(p);
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_FLOAT, MPI_SUM, p->comm);
    coll_end(p, t0);
}

static void sum_doubles(void *ctx, double *v, int n)
{
    ff_parallel *p = ctx;
    const double t0 = coll_start(p);
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, p->comm);
    coll_end(p, t0);
}

static void gather_rows(void *ctx, float *v, int row_floats)
{
    ff_parallel *p = ctx;
    const double t0 = coll_start(p);
    int counts[p->size], displs[p->size];
    for (int r = 0; r < p->size; r++) {
        counts[r] = p->counts[r] * row_floats;
        displs[r] = p->displs[r] * row_floats;
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, counts, displs, MPI_FLOAT, p->comm);
    coll_end(p, t0);
}

/* ---------------------------------------------------------------- pipeline */

static void post_recv(ff_parallel *p, int k)
{
    MPI_Irecv(p->rbuf[k], (int)p->cap, MPI_FLOAT, p->rank - 1, 0, p->comm, &p->rreq[k]);
}

static void recv_block(void *ctx, float *v, size_t n)
{
    ff_parallel *p = ctx;
    const int k = p->rk;
    MPI_Wait(&p->rreq[k], MPI_STATUS_IGNORE);
    memcpy(v, p->rbuf[k], sizeof(float) * n);
    post_recv(p, k); /* the message after next lands here */
    p->rk ^= 1;
}

static void send_block(void *ctx, const float *v, size_t n)
{
    ff_parallel *p = ctx;
    const int k = p->sk;
    MPI_Wait(&p->sreq[k], MPI_STATUS_IGNORE); /* the block sent two messages ago has left */
    memcpy(p->sbuf[k], v, sizeof(float) * n);
    MPI_Isend(p->sbuf[k], (int)n, MPI_FLOAT, p->rank + 1, 0, p->comm, &p->sreq[k]);
    p->sk ^= 1;
}

/* ---------------------------------------------------------------- attaching */

static void share(int total, int rank, int size, int *first, int *rows)
{
    *first = (int)((long long)total * rank / size);
    *rows = (int)((long long)total * (rank + 1) / size) - *first;
}

/* Data parallel with every process on one node (and FF_PARALLEL_SHM not 0): the
 * weights and optimiser state move into one window all processes map (rank 0's
 * values; all are equal after the seeded start), each gradient into a window the
 * others read. Otherwise p->shm stays 0: gradients are summed by messages
 * (MPI_Iallreduce per layer) and every process takes the whole optimiser step. */
static int attach_shm(ff_parallel *p, ff_err *err)
{
    const char *env = getenv("FF_PARALLEL_SHM");
    if (env && !strcmp(env, "0"))
        return FF_OK;
    MPI_Comm node;
    int nsize;
    MPI_Comm_split_type(p->comm, MPI_COMM_TYPE_SHARED, p->rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &nsize);
    MPI_Comm_free(&node);
    if (nsize != p->size) /* the same answer on every rank: all on one node or not */
        return FF_OK;
    ff_trainer *t = p->t;
    const size_t n = t->net.n_params, ns = ff_optim_state_len(&t->opt);
    /* Open MPI backs the windows with files in /dev/shm, and a too small tmpfs (a
     * container's 64 MB default) fails only at the first touch (SIGBUS): check first,
     * on rank 0 for everyone */
    int fits = 1;
    if (p->rank == 0) {
        const char *dir = getenv("OMPI_MCA_osc_sm_backing_directory");
        dir = dir && *dir ? dir : "/dev/shm";
        const double need = 4.0 * ((double)n * (1 + p->size) + (double)ns);
        struct statvfs v;
        if (statvfs(dir, &v) == 0 && (double)v.f_bavail * (double)v.f_frsize < 1.05 * need) {
            fits = 0;
            fprintf(stderr, "ffrun: data parallel: %s has %.0f MB free, the shared-memory step "
                    "needs %.0f MB: summing gradients by messages instead\n", dir,
                    (double)v.f_bavail * (double)v.f_frsize * 1e-6, need * 1e-6);
        }
    }
    MPI_Bcast(&fits, 1, MPI_INT, 0, p->comm);
    if (!fits)
        return FF_OK;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    float *mine;
    int rc = MPI_Win_allocate_shared((MPI_Aint)(sizeof(float) * (p->rank == 0 ? n + ns : 0)),
                                     sizeof(float), info, p->comm, &mine, &p->pwin);
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_allocate_shared((MPI_Aint)(sizeof(float) * n), sizeof(float), info, p->comm,
                                     &mine, &p->gwin);
    MPI_Info_free(&info);
    p->grads = calloc((size_t)p->size, sizeof *p->grads);
    if (rc != MPI_SUCCESS || !p->grads)
        return ff_err_set(err, FF_ERR_NOMEM, "data parallel: no shared memory for %zu "
                          "parameters (FF_PARALLEL_SHM=0 sums by messages instead)", n);
    MPI_Aint size;
    int disp;
    float *shared;
    MPI_Win_shared_query(p->pwin, 0, &size, &disp, &shared);
    for (int r = 0; r < p->size; r++)
        MPI_Win_shared_query(p->gwin, r, &size, &disp, &p->grads[r]);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, p->pwin);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, p->gwin);
    p->locked = 1;
    if (p->rank == 0) {
        memcpy(shared, t->net.params, sizeof(float) * n);
        memcpy(shared + n, t->opt.state, sizeof(float) * ns);
    }
    MPI_Win_sync(p->pwin);
    MPI_Barrier(p->comm);
    MPI_Win_sync(p->pwin);
    /* the private copies would only sit there for the whole run (16 bytes a parameter
     * with Adam): freed now, allocated again by ff_parallel_free */
    free(t->net.params);
    free(t->net.grads);
    free(t->opt.state);
    ff_net_use_buffers(&t->net, shared, p->grads[p->rank]);
    t->opt.state = shared + n;
    p->detached = 1;
    /* shards of the flat parameters, on 64-byte boundaries */
    p->lo = (size_t)((unsigned long long)n * (unsigned)p->rank / (unsigned)p->size) & ~(size_t)15;
    p->hi = p->rank + 1 == p->size
                ? n
                : (size_t)((unsigned long long)n * (unsigned)(p->rank + 1) / (unsigned)p->size) &
                      ~(size_t)15;
    p->shm = 1;
    return FF_OK;
}

static int attach_data(ff_parallel *p, ff_err *err)
{
    ff_trainer *t = p->t;
    if (p->size > t->batch)
        return ff_err_set(err, FF_ERR_USAGE,
                          "parallel.mode data on %d ranks: a batch of %d images cannot give "
                          "every rank one (raise train.batch_size or use fewer ranks)",
                          p->size, t->batch);
    p->counts = malloc(sizeof(int) * (size_t)p->size);
    p->displs = malloc(sizeof(int) * (size_t)p->size);
    if (!p->counts || !p->displs)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    for (int r = 0; r < p->size; r++)
        share(t->batch, r, p->size, &p->displs[r], &p->counts[r]);
    p->tp.first = p->displs[p->rank];
    p->tp.rows = p->counts[p->rank];
    p->tp.gather = gather_rows;
    int rc = attach_shm(p, err);
    if (rc)
        return rc;
    if (p->shm)
        p->tp.update = shm_update;
    else
        p->tp.before_update = before_update;
    p->np = (ff_net_peers){.ctx = p, .grads_ready = grads_ready, .sum = sum_floats,
                           .total_pos = t->batch};
    t->net.peers = &p->np;
    return FF_OK;
}

static int attach_pipeline(ff_parallel *p, ff_err *err)
{
    ff_trainer *t = p->t;
    if (p->size > t->net.n_layers)
        return ff_err_set(err, FF_ERR_USAGE,
                          "parallel.mode pipeline on %d ranks: the net has only %d layers (at most "
                          "one rank per layer)", p->size, t->net.n_layers);
    ff_parallel_stages(&t->net, p->size, p->stage);
    p->tp.first = 0;
    p->tp.rows = t->batch;
    p->tp.layer_first = p->stage[p->rank];
    p->tp.layer_end = p->stage[p->rank + 1];
    p->tp.recv = recv_block;
    p->tp.send = send_block;
    p->cap = (size_t)t->net.max_batch * (size_t)ff_shape_dim(t->net.layers[0].in);
    for (int l = 1; l < t->net.n_layers; l++) {
        size_t c = (size_t)t->net.max_batch * (size_t)ff_shape_dim(t->net.layers[l].in);
        p->cap = c > p->cap ? c : p->cap;
    }
    for (int k = 0; k < 2; k++) {
        if (p->rank + 1 < p->size && !(p->sbuf[k] = malloc(sizeof(float) * p->cap)))
            return ff_err_set(err, FF_ERR_NOMEM, "out of memory for pipeline buffers");
        if (p->rank > 0 && !(p->rbuf[k] = malloc(sizeof(float) * p->cap)))
            return ff_err_set(err, FF_ERR_NOMEM, "out of memory for pipeline buffers");
        if (p->rank > 0)
            post_recv(p, k);
    }
    return FF_OK;
}

/* 1 if every rank holds the same v */
static int same_on_all_ranks(MPI_Comm comm, uint64_t v)
{
    uint64_t lo = v, hi = v;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, comm);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, comm);
    return lo == hi;
}

int ff_parallel_attach(ff_parallel **out, ff_trainer *t, ff_err *err)
{
    *out = NULL;
    if (!g_mpi || g_size == 1)
        return FF_OK;
    if (t->cfg.parallel.mode == FF_PAR_NONE)
        return ff_err_set(err, FF_ERR_USAGE,
                          "started on %d ranks with parallel.mode none: set parallel.mode data or "
                          "pipeline (--set parallel.mode=data), or run one process", g_size);
    ff_parallel *p = calloc(1, sizeof *p);
    if (!p)
        return ff_err_set(err, FF_ERR_NOMEM, "out of memory");
    p->mode = t->cfg.parallel.mode;
    p->rank = g_rank;
    p->size = g_size;
    p->t = t;
    for (int k = 0; k < 2; k++)
        p->sreq[k] = p->rreq[k] = MPI_REQUEST_NULL;
    p->pwin = p->gwin = MPI_WIN_NULL;
    p->prof = getenv("FF_PARALLEL_PROFILE") != NULL;
    MPI_Comm_dup(MPI_COMM_WORLD, &p->comm);
    p->tp.ctx = p;
    p->tp.sum = sum_doubles;
    p->check = getenv("FF_PARALLEL_CHECK") != NULL;
    share(t->test.n, p->rank, p->size, &p->tp.test_first, &p->tp.test_rows);
    share(t->val.n, p->rank, p->size, &p->tp.val_first, &p->tp.val_rows);
    /* the training images are the ranks' shared order's: the same validation split */
    int rc = same_on_all_ranks(p->comm, t->split.digest ^ (uint64_t)t->train.n)
                 ? FF_OK
                 : ff_err_set(err, FF_ERR_USAGE,
                              "the ranks hold different training images after the validation "
                              "split (this rank: %d images, split %016llx): every rank needs the "
                              "same data files and data.* settings", t->train.n,
                              (unsigned long long)t->split.digest);
    if (!rc)
        rc = p->mode == FF_PAR_DATA ? attach_data(p, err) : attach_pipeline(p, err);
    if (rc) {
        ff_parallel_free(p);
        t->net.peers = NULL;
        return rc;
    }
    t->peers = &p->tp;
    *out = p;
    return FF_OK;
}

/* The net and optimiser of t on buffers of their own again, holding the final
 * weights and state of the shared windows (which are freed next); without the
 * memory for them, a note and none (NULL: the trainer can then only be freed). */
static void give_back_buffers(ff_trainer *t)
{
    const size_t n = t->net.n_params, ns = ff_optim_state_len(&t->opt);
    float *params = malloc(sizeof(float) * n), *grads = calloc(n, sizeof(float));
    float *state = malloc(sizeof(float) * (ns ? ns : 1));
    if (!params || !grads || !state) {
        fprintf(stderr, "ffrun: data parallel: no memory to copy the final weights out of "
                "shared memory (the saved model files have them)\n");
        free(params);
        free(grads);
        free(state);
        params = grads = state = NULL;
    } else {
        memcpy(params, t->net.params, sizeof(float) * n);
        memcpy(state, t->opt.state, sizeof(float) * ns);
    }
    if (params)
        ff_net_use_buffers(&t->net, params, grads);
    else
        t->net.params = t->net.grads = NULL;
    t->opt.state = state;
}

void ff_parallel_free(ff_parallel *p)
{
    if (!p)
        return;
    for (int k = 0; k < 2; k++) {
        if (p->rreq[k] != MPI_REQUEST_NULL) {
            MPI_Cancel(&p->rreq[k]);
            MPI_Wait(&p->rreq[k], MPI_STATUS_IGNORE);
        }
        if (p->sreq[k] != MPI_REQUEST_NULL)
            MPI_Wait(&p->sreq[k], MPI_STATUS_IGNORE);
        free(p->sbuf[k]);
        free(p->rbuf[k]);
    }
    if (p->t) {
        p->t->peers = NULL;
        p->t->net.peers = NULL;
    }
    if (p->prof && p->steps > 0)
        prof_report(p);
    if (p->detached)
        give_back_buffers(p->t);
    if (p->locked) {
        MPI_Win_unlock_all(p->pwin);
        MPI_Win_unlock_all(p->gwin);
    }
    if (p->pwin != MPI_WIN_NULL)
        MPI_Win_free(&p->pwin);
    if (p->gwin != MPI_WIN_NULL)
        MPI_Win_free(&p->gwin);
    free(p->grads);
    free(p->counts);
    free(p->displs);
    MPI_Comm_free(&p->comm);
    free(p);
}

/* ---------------------------------------------------------------- the run loop's questions */

int ff_parallel_any(ff_parallel *p, int flag)
{
    if (!p)
        return flag;
    int v = flag != 0;
    const double t0 = coll_start(p);
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, p->comm);
    coll_end(p, t0);
    return v;
}

void ff_parallel_sum(ff_parallel *p, double *v, int n)
{
    if (p)
        sum_doubles(p, v, n);
}

int ff_parallel_is_pipeline(const ff_parallel *p) { return p && p->mode == FF_PAR_PIPELINE; }

int ff_parallel_check_replicas(ff_parallel *p, ff_err *err)
{
    if (!p || !p->check || p->mode != FF_PAR_DATA)
        return FF_OK;
    const ff_trainer *t = p->t;
    uint32_t c = ff_crc32c(0, t->net.params, sizeof(float) * t->net.n_params);
    c = ff_crc32c(c, t->opt.state, sizeof(float) * ff_optim_state_len(&t->opt));
    c = ff_crc32c(c, t->net.aux, sizeof(float) * t->net.n_aux);
    unsigned v[2] = {c, ~c}; /* max of c and of ~c: equal everywhere iff c is */
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UNSIGNED, MPI_MAX, p->comm);
    if (v[0] != c || v[1] != ~c)
        return ff_err_set(err, FF_ERR_RUNTIME, "rank %d: weights differ between ranks after "
                          "step %lld", p->rank, (long long)t->step);
    return FF_OK;
}

/* every rank's part [off[r], off[r] + count[r]) of v, into every rank */
static void gather_parts(ff_parallel *p, float *v, const size_t *off, const size_t *count)
{
    int counts[p->size], displs[p->size];
    for (int r = 0; r < p->size; r++) {
        counts[r] = (int)count[r];
        displs[r] = (int)off[r];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, counts, displs, MPI_FLOAT, p->comm);
}

void ff_parallel_sync_state(ff_parallel *p)
{
    if (!ff_parallel_is_pipeline(p))
        return;
    ff_trainer *t = p->t;
    const ff_net *net = &t->net;
    size_t poff[p->size], pn[p->size], aoff[p->size], an[p->size];
    for (int r = 0; r < p->size; r++) {
        const ff_layer *a = &net->layers[p->stage[r]], *b = &net->layers[p->stage[r + 1] - 1];
        poff[r] = a->param_off;
        pn[r] = b->param_off + ff_layer_n_params(b) - a->param_off;
        aoff[r] = (size_t)(net->peer_mean[p->stage[r]] - net->aux);
        an[r] = (size_t)(net->peer_mean[p->stage[r + 1] - 1] - net->aux) +
                (size_t)ff_shape_dim(b->out) - aoff[r];
    }
    gather_parts(p, t->net.params, poff, pn);
    gather_parts(p, t->net.aux, aoff, an);
    if (net->comp_stats[0]) { /* the competition loss's channel statistics, after the means */
        for (int r = 0; r < p->size; r++) {
            const int a = p->stage[r], b = p->stage[r + 1] - 1;
            aoff[r] = (size_t)(net->comp_stats[a] - net->aux);
            an[r] = (size_t)(net->comp_stats[b] - net->aux) +
                    2 * (size_t)net->layers[b].out.c + 1 - aoff[r];
        }
        gather_parts(p, t->net.aux, aoff, an);
    }
    gather_parts(p, t->opt.state, poff, pn); /* sgd's velocity, adam's first moments */
    if (ff_optim_state_len(&t->opt) == 2 * t->opt.n)
        gather_parts(p, t->opt.state + t->opt.n, poff, pn);
}

#else /* no Open MPI: always alone */

/* 1 if every rank holds the same v */
static int same_on_all_ranks(MPI_Comm comm, uint64_t v)
{
    uint64_t lo = v, hi = v;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, comm);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, comm);
    return lo == hi;
}

int ff_parallel_attach(ff_parallel **out, ff_trainer *t, ff_err *err)
{
    (void)t;
    (void)err;
    *out = NULL;
    return FF_OK;
}
void ff_parallel_free(ff_parallel *p) { (void)p; }
int ff_parallel_any(ff_parallel *p, int flag) { (void)p; return flag; }
void ff_parallel_sum(ff_parallel *p, double *v, int n) { (void)p; (void)v; (void)n; }
int ff_parallel_is_pipeline(const ff_parallel *p) { (void)p; return 0; }
int ff_parallel_check_replicas(ff_parallel *p, ff_err *err) { (void)p; (void)err; return FF_OK; }
void ff_parallel_sync_state(ff_parallel *p) { (void)p; }

#endif
