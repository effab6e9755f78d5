/* parallel.c - data parallel and layer pipeline training under Open MPI
 * (include/ff/parallel.h). The only file that calls MPI.
 *
 * Reads top to bottom: start-up (MPI only under a launcher), the pipeline's
 * balanced split, the hooks of data parallel (gradient slices, sums, gathers),
 * the hooks of the pipeline (double-buffered sends and receives), attaching to
 * a trainer, and what the run loop asks (stop agreement, sums, state sync). */
#include "ff/parallel.h"

#include "ff/crc32c.h"

#include <stdlib.h>
#include <string.h>

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
};

/* ---------------------------------------------------------------- data parallel */

static void grads_ready(void *ctx, int l)
{
    ff_parallel *p = ctx;
    const ff_layer *L = &p->t->net.layers[l];
    MPI_Iallreduce(MPI_IN_PLACE, L->gW, (int)(L->n_weights + L->n_bias), MPI_FLOAT, MPI_SUM,
                   p->comm, &p->greq[p->ngreq++]);
    int flag; /* lets the earlier layers' reductions progress meanwhile */
    MPI_Testall(p->ngreq, p->greq, &flag, MPI_STATUSES_IGNORE);
}

static void before_update(void *ctx)
{
    ff_parallel *p = ctx;
    MPI_Waitall(p->ngreq, p->greq, MPI_STATUSES_IGNORE);
    p->ngreq = 0;
}

static void sum_floats(void *ctx, float *v, int n)
{
    ff_parallel *p = ctx;
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_FLOAT, MPI_SUM, p->comm);
}

static void sum_doubles(void *ctx, double *v, int n)
{
    ff_parallel *p = ctx;
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, p->comm);
}

static void gather_rows(void *ctx, float *v, int row_floats)
{
    ff_parallel *p = ctx;
    int counts[p->size], displs[p->size];
    for (int r = 0; r < p->size; r++) {
        counts[r] = p->counts[r] * row_floats;
        displs[r] = p->displs[r] * row_floats;
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, counts, displs, MPI_FLOAT, p->comm);
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
    MPI_Comm_dup(MPI_COMM_WORLD, &p->comm);
    p->tp.ctx = p;
    p->tp.sum = sum_doubles;
    p->check = getenv("FF_PARALLEL_CHECK") != NULL;
    share(t->test.n, p->rank, p->size, &p->tp.test_first, &p->tp.test_rows);
    int rc = p->mode == FF_PAR_DATA ? attach_data(p, err) : attach_pipeline(p, err);
    if (rc) {
        ff_parallel_free(p);
        t->net.peers = NULL;
        return rc;
    }
    t->peers = &p->tp;
    *out = p;
    return FF_OK;
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
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, p->comm);
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
        pn[r] = b->param_off + b->n_weights + b->n_bias - a->param_off;
        aoff[r] = (size_t)(net->peer_mean[p->stage[r]] - net->aux);
        an[r] = (size_t)(net->peer_mean[p->stage[r + 1] - 1] - net->aux) +
                (size_t)ff_shape_dim(b->out) - aoff[r];
    }
    gather_parts(p, t->net.params, poff, pn);
    gather_parts(p, t->net.aux, aoff, an);
    gather_parts(p, t->opt.state, poff, pn); /* sgd's velocity, adam's first moments */
    if (ff_optim_state_len(&t->opt) == 2 * t->opt.n)
        gather_parts(p, t->opt.state + t->opt.n, poff, pn);
}

#else /* no Open MPI: always alone */

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
