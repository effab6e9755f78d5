/* sweep.h - hyperparameter sweeps (`ffrun sweep FILE.yaml`, `ffrun CONFIG --sweep`):
 * a base config, axes of values (grid) or distributions (random search) and
 * seeds, expanded into runs that are all validated before any starts; each run
 * is a child process of ffrun logging into its own directory
 *   <log.dir>/<mode>/<stamp>_<name>/<point>,seed=<s>/   (events, ffrun.log)
 * with its models in <sweep dir>/models/. The sweep directory holds the one
 * HParams experiment summary of the sweep, SUMMARY.md and summary.csv.
 * Running the same sweep again reuses its directory: finished runs are
 * skipped, interrupted ones resumed from their step model.
 *
 * `scheduler: asha` stops unpromising runs early (asynchronous successive
 * halving, ff_asha_* below); under mpirun the runs are spread over the ranks
 * (rank 0 schedules, writes the decisions and the summary).
 *
 * Nothing here prints: messages go to the info callback, errors to ff_err. */
#ifndef FF_SWEEP_H
#define FF_SWEEP_H

#include <signal.h>
#include <stdint.h>

#include "ff/config.h"
#include "ff/err.h"
#include "ff/trainer.h"

#define FF_SWEEP_MAX_AXES 16
#define FF_SWEEP_MAX_VALUES 64
#define FF_SWEEP_MAX_SETS 32
#define FF_SWEEP_MAX_SEEDS 64
#define FF_SWEEP_TEXT 128

typedef enum { FF_AXIS_LIST, FF_AXIS_UNIFORM, FF_AXIS_LOG_UNIFORM, FF_AXIS_CHOICE } ff_axis_kind;

typedef struct ff_sweep_axis {
    char key[FF_SWEEP_TEXT];      /* a config key, as for --set */
    ff_axis_kind kind;
    int n_values;                 /* list / choice */
    char values[FF_SWEEP_MAX_VALUES][FF_SWEEP_TEXT];
    int value_line[FF_SWEEP_MAX_VALUES], value_col[FF_SWEEP_MAX_VALUES];
    double lo, hi;                /* uniform / log_uniform */
    int line, col;                /* of the key in the sweep file (0: command line) */
} ff_sweep_axis;

/* ---------------------------------------------------------------- ASHA */

#define FF_ASHA_MAX_RUNGS 16
#define FF_ASHA_METRIC 64

/* Asynchronous successive halving (Li et al., "A System for Massively Parallel
 * Hyperparameter Tuning", MLSys 2020, algorithm 2). Rungs at epochs
 * min_epochs * eta^k below the runs' final epoch. A run pauses at each rung
 * (a resumable step model) and goes on as soon as it is among the best
 * floor(n / eta) of the n runs that have reached that rung so far (lower
 * metric is better); a promotion is never taken back. When no run is training
 * and none can be promoted, the runs still waiting are stopped by asha. */
typedef struct ff_asha {
    int min_epochs, eta;
    char metric[FF_ASHA_METRIC];  /* a scalar tag the runs write, e.g. test/error_goodness */
    int n_rungs;                  /* rungs below the final epoch */
    int rung_epoch[FF_ASHA_MAX_RUNGS];
} ff_asha;

/* Fills a->n_rungs and a->rung_epoch for runs of final_epochs epochs. */
void ff_sweep_asha_rungs(ff_asha *a, int final_epochs);

/* What the decisions need to know of one run. */
typedef struct ff_asha_run {
    int reached;                  /* rungs reached: rung k has metric[k] iff k < reached */
    int promoted;                 /* rungs promoted past (<= reached) */
    int busy;                     /* training now (or finished, failed, stopped: not waiting) */
    double metric[FF_ASHA_MAX_RUNGS]; /* NAN (a missing value) ranks last */
} ff_asha_run;

/* The run to promote now, or -1: from the highest rung down, a run waiting at
 * rung k (reached == k + 1, promoted == k, not busy) that is among the best
 * floor(n_k / eta) of the n_k runs that reached rung k (ties: the lower index);
 * the best such run of that rung. *rung gets k. */
int ff_sweep_asha_next_promotion(const ff_asha *a, const ff_asha_run *runs, int n, int *rung);

/* ---------------------------------------------------------------- the spec */

typedef struct ff_sweep_spec {
    char origin[FF_PATH_MAX];     /* the sweep file, or "--sweep" for the short form */
    char config[FF_PATH_MAX];     /* the base config file */
    int config_line, config_col;
    char name[FF_NAME_MAX];       /* sweep directory suffix */
    int n_sets;                   /* fixed overrides, "key=value" */
    char sets[FF_SWEEP_MAX_SETS][2 * FF_SWEEP_TEXT];
    int set_line[FF_SWEEP_MAX_SETS], set_col[FF_SWEEP_MAX_SETS];
    int n_axes;
    ff_sweep_axis axes[FF_SWEEP_MAX_AXES];
    int random;                   /* method: random (else grid) */
    int trials;                   /* random: number of points */
    uint64_t search_seed;         /* random: the draws' seed */
    int n_seeds;                  /* 0: the config's own seed, not in the run names */
    uint64_t seeds[FF_SWEEP_MAX_SEEDS];
    int jobs, threads;            /* 0: fill the machine's cores */
    int asha;                     /* scheduler: asha */
    ff_asha sched;                /* its parameters (rungs filled by ff_sweep_expand) */
    int asha_line, asha_col;      /* of the scheduler / asha key (errors) */
} ff_sweep_spec;

/* Reads a sweep file (format in README.md, "Sweeps"). FF_ERR_USAGE with
 * file:line:col on a bad key or value of the sweep file itself. */
int ff_sweep_load(ff_sweep_spec *s, const char *path, ff_err *err);

/* The same from len bytes of text; origin names it in messages. Lists and mappings
 * nested deeper than 64 levels, a key given twice in one mapping, an axis on seed
 * beside seeds, and a name that is not one plain directory name are FF_ERR_USAGE. */
int ff_sweep_parse(ff_sweep_spec *s, const char *text, size_t len, const char *origin,
                   ff_err *err);

/* The short form: base config, "KEY=V1,V2,..." axes and N seeds (0: none). */
int ff_sweep_from_args(ff_sweep_spec *s, const char *config, const char *const *axes, int n_axes,
                       int n_seeds, ff_err *err);

typedef enum {
    FF_SWEEP_TODO, FF_SWEEP_DONE, FF_SWEEP_INTERRUPTED, FF_SWEEP_FAILED,
    FF_SWEEP_WAITING,             /* asha: paused at a rung, not promoted (yet) */
    FF_SWEEP_STOPPED,             /* asha: stopped at a rung for good */
    FF_SWEEP_N_STATES
} ff_sweep_state;

#define FF_SWEEP_N_METRICS 7 /* val/error_goodness, val/error_softmax, test/error_goodness,
                                test/error_softmax, clf/loss, loss/total, images/s */
extern const char *const ff_sweep_metric_names[FF_SWEEP_N_METRICS];

typedef struct ff_sweep_run {
    int point;                    /* index of its point (values without the seed) */
    char point_name[512];         /* "lr=0.002,jitter=1" */
    char name[560];               /* "lr=0.002,jitter=1,seed=2": its directory's name */
    int n_sets;                   /* the overrides that make it: fixed, axes, seed */
    char sets[FF_SWEEP_MAX_SETS + FF_SWEEP_MAX_AXES + 1][2 * FF_SWEEP_TEXT];
    ff_config cfg;                /* validated */
    /* outcome */
    ff_sweep_state state;
    int exit_status;              /* of its process: 0..255, or 128 + signal */
    char log[FF_PATH_MAX + 1200];  /* its ffrun.log */
    double metric[FF_SWEEP_N_METRICS]; /* final values, NAN if absent */
    int64_t last_step;
    char prefix[256];             /* its model names (ff_run_claim_prefix, after ff_sweep_open) */
    ff_asha_run asha;             /* asha: rungs reached, promotions */
    int stop_epoch;               /* asha: where its current process pauses (0: the end) */
} ff_sweep_run;

typedef struct ff_sweep {
    ff_sweep_spec spec;
    ff_sweep_run *runs;
    int n_runs, n_points;
    char dir[FF_PATH_MAX + 200];  /* the sweep directory (after ff_sweep_open) */
    char prog[256];               /* how to call ffrun in the summary's command ("ffrun") */
    char warning[512];            /* ff_sweep_expand: a choice on the test set although the runs
                                     hold out validation images ("" = none); --dry-run and
                                     ff_sweep_open show it */
    int lock_fd;                  /* 1 + the descriptor holding <dir>/sweep.lock (0: none);
                                   * the runs inherit it: the lock outlives a killed sweep
                                   * until its last run has ended */
} ff_sweep;

/* Expands the spec into points x seeds and validates every run's config
 * (base config, fixed sets, the point's values, seed) like --set values. All
 * problems at once: one FF_ERR_USAGE whose message lists each distinct error
 * with the sweep file's line:col. */
int ff_sweep_expand(ff_sweep *sw, ff_err *err);

/* The --dry-run listing: points, run names and estimated multiply-adds per run,
 * into a malloc'ed text (*out). */
int ff_sweep_describe(const ff_sweep *sw, char **out, ff_err *err);

/* Finds the directory of the same sweep (same spec) under <log.dir>/<mode>/,
 * or creates <stamp>_<name>; locks it (<dir>/sweep.lock, flock: one sweep per
 * directory; FF_ERR_RUNTIME naming the holder's pid, host and start while another
 * sweep holds it; the runs of a killed sweep still ending are waited for, up to
 * 120 s); writes the sweep's experiment summary there the first time; claims
 * every run's model-name prefix. Under mpirun, rank 0 does this and tells the
 * other ranks the directory. ff_sweep_free releases the lock. */
int ff_sweep_open(ff_sweep *sw, ff_info_fn info, void *ctx, ff_err *err);

typedef struct ff_sweep_opts {
    const char *exe;              /* the ffrun binary the runs execute */
    volatile sig_atomic_t *stop;  /* set by the caller's signal handler: 1 stop runs cleanly,
                                     2 (a second signal) make them leave at once */
    int64_t max_steps;            /* > 0: passed to each run (stop there as if interrupted) */
    ff_info_fn info;
    void *ctx;
} ff_sweep_opts;

/* Runs every run not finished yet (jobs at a time), resuming interrupted ones;
 * rewrites SUMMARY.md and summary.csv after each finished run. With asha, runs
 * pause at the rungs and are promoted or stopped (decisions in asha.tsv in the
 * sweep directory, kept by later invocations). Under mpirun with N > 1 ranks,
 * rank 0 hands the runs out to every rank's jobs (a dynamic queue) and alone
 * decides and writes; the other ranks only start the runs they are given
 * (call it on every rank after ff_sweep_open). FF_OK if all finished (or were
 * stopped by asha), FF_ERR_INTERRUPTED if stopped, FF_ERR_RUNTIME if some failed. */
int ff_sweep_execute(ff_sweep *sw, const ff_sweep_opts *o, ff_err *err);

/* Reads each run's final metrics (its event files and log) and writes
 * SUMMARY.md and summary.csv; *text (malloc'ed, may be NULL) gets the markdown. */
int ff_sweep_summarize(ff_sweep *sw, char **text, ff_err *err);

void ff_sweep_free(ff_sweep *sw);

#endif
