/* parallel.h - one experiment on N processes under Open MPI (parallel.mode).
 *
 * One binary: ffrun starts MPI only when a launcher started it (mpirun sets
 * OMPI_COMM_WORLD_SIZE; PMI_SIZE / PMIX_RANK for other launchers); a plain
 * `ffrun x.yaml` makes no MPI call at all and trains alone, whatever
 * parallel.mode says. A build without Open MPI (no libopenmpi-dev) has the same
 * functions, always alone.
 *
 * Under mpirun -np N (N > 1) the module sits beside the trainer, not inside its
 * batch step: it fills the trainer's hooks (ff_trainer_peers, ff_net_peers) and
 * the run loop (src/run_loop.c) asks it the few things a loop needs (rank, stop
 * agreement, sums, the whole state before evaluating or saving).
 *   data:     every rank trains on its share of each batch. All ranks on one
 *             node (the usual case; FF_PARALLEL_SHM=0 turns it off): the weights
 *             and optimiser state live once in an MPI shared-memory window, each
 *             rank's gradient in a window the others read; at the step rank r
 *             sums shard r of the gradients in place and takes the optimiser step
 *             on shard r only, between two barriers (no bytes copied, 1/N of the
 *             optimiser's work per rank). Across nodes: each layer's gradient
 *             slice is summed by MPI_Iallreduce as soon as the layer has it,
 *             waited for before the whole optimiser step on every rank.
 *             Peer-normalisation means, hard-negative scores, step statistics and
 *             test-error counts are reduced too. FF_PARALLEL_PROFILE set: each
 *             rank prints where the time of its steps went (ms per step).
 *   pipeline: rank r trains a contiguous group of layers (balanced by
 *             multiply-adds, ff_parallel_stages); the normalised input of the
 *             next group goes rank to rank (MPI_Isend / MPI_Irecv, two buffers
 *             each way), so rank r works on batch t while rank r + 1 works on
 *             batch t - 1, and the updates are exactly those of one process.
 * Rank 0 alone writes event files and models. */
#ifndef FF_PARALLEL_H
#define FF_PARALLEL_H

#include "ff/err.h"
#include "ff/net.h"
#include "ff/trainer.h"

typedef struct ff_parallel ff_parallel;

/* Starts MPI if a launcher started this process (and registers MPI_Finalize
 * with atexit); otherwise does nothing. */
void ff_parallel_init(int *argc, char ***argv);

/* This process's rank and the number of processes (0 and 1 when alone). */
int ff_parallel_rank(void);
int ff_parallel_size(void);

/* Ends every process of the job at once (after a fatal error on one rank, so
 * that no other waits forever); returns when alone. */
void ff_parallel_abort(int status);

/* The start-up handshake of every rank, before any allocation or other collective
 * (a collective of all ranks; alone: returns rc at once). rc is this rank's start-up
 * status (its message in err); text its resolved config and run options as lines
 * "key=value\n" (NULL on every rank: compare nothing; a rank that failed may pass
 * NULL). FF_OK on every rank when all started and
 * all texts equal rank 0's; otherwise FF_ERR_USAGE on every rank, err holding the
 * message of the lowest failing rank ("rank R of N: ...") or the keys in which the
 * lowest disagreeing rank differs from rank 0, with both values. */
int ff_parallel_agree(int rc, const char *text, ff_err *err);

/* Small messages between the ranks of a job that trains nothing together
 * (`ffrun sweep` under mpirun: rank 0 hands whole runs to the ranks), on
 * MPI_COMM_WORLD with a tag of their own. send: 0 once sent (-1 alone).
 * poll: the length of a message received into msg (sender in *from), 0 if
 * none is waiting (never blocks). */
int ff_parallel_send(int to, const void *msg, int len);
int ff_parallel_poll(void *msg, int cap, int *from);

/* Joins trainer t to the other processes as cfg->parallel.mode says: *out = NULL
 * when alone (one process: nothing changes). FF_ERR_USAGE (the same on every
 * rank) when the mode does not fit N: parallel.mode none under N > 1, more ranks
 * than images per batch (data) or than layers (pipeline). */
int ff_parallel_attach(ff_parallel **out, ff_trainer *t, ff_err *err);
void ff_parallel_free(ff_parallel *p);

/* 1 if `flag` is set on any rank (a collective; p NULL: flag). */
int ff_parallel_any(ff_parallel *p, int flag);

/* v summed over the ranks, in place (a collective; p NULL: nothing). */
void ff_parallel_sum(ff_parallel *p, double *v, int n);

/* 1 for a layer pipeline: step statistics hold only this rank's layers. */
int ff_parallel_is_pipeline(const ff_parallel *p);

/* Data parallel with FF_PARALLEL_CHECK set in the environment (tests): FF_ERR_RUNTIME
 * unless every rank holds bit-identical weights, optimiser state and peer means. A
 * collective; FF_OK at once otherwise. */
int ff_parallel_check_replicas(ff_parallel *p, ff_err *err);

/* Pipeline: every rank's layers (weights, optimiser state, peer means) gathered
 * into every rank, so any rank can evaluate or save the whole net. Other modes:
 * nothing (the ranks are identical already). A collective. */
void ff_parallel_sync_state(ff_parallel *p);

/* Splits the net's layers into n contiguous groups with the largest group's
 * multiply-adds as small as possible: group r is [first[r], first[r + 1]),
 * first[0] = 0, first[n] = n_layers. n <= n_layers. */
void ff_parallel_stages(const ff_net *net, int n, int first[FF_MAX_LAYERS + 1]);

#endif
