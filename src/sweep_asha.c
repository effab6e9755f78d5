/* sweep_asha.c - the decisions of asynchronous successive halving
 * (include/ff/sweep.h, ff_asha_*): where the rungs are and which waiting run
 * to promote next. Pure functions on a table of metrics: src/sweep_run.c
 * feeds them the runs' values read from their event files, tests/test_sweep.c
 * synthetic tables. */
#include "ff/sweep.h"

#include <math.h>
#include <stdlib.h>

void ff_sweep_asha_rungs(ff_asha *a, int final_epochs)
{
    a->n_rungs = 0;
    long e = a->min_epochs;
    while (e > 0 && e < final_epochs && a->n_rungs < FF_ASHA_MAX_RUNGS) {
        a->rung_epoch[a->n_rungs++] = (int)e;
        e *= a->eta > 1 ? a->eta : 2;
    }
}

/* 1 if run i ranks before run j at rung k: lower metric, a missing one last,
 * ties by index (a fixed order, whatever the arrival order). */
static int better(const ff_asha_run *runs, int i, int j, int k)
{
    const double a = runs[i].metric[k], b = runs[j].metric[k];
    if (isnan(a) != isnan(b))
        return isnan(b);
    if (!isnan(a) && a != b)
        return a < b;
    return i < j;
}

int ff_sweep_asha_next_promotion(const ff_asha *a, const ff_asha_run *runs, int n, int *rung)
{
    for (int k = a->n_rungs - 1; k >= 0; k--) {
        int reached = 0;
        for (int i = 0; i < n; i++)
            reached += runs[i].reached > k;
        const int keep = reached / (a->eta > 1 ? a->eta : 2);
        int best = -1;
        for (int i = 0; i < n; i++) {
            const ff_asha_run *r = &runs[i];
            if (r->busy || r->reached != k + 1 || r->promoted != k)
                continue;
            int rank = 0; /* runs at this rung that rank before i */
            for (int j = 0; j < n && rank < keep; j++)
                rank += j != i && runs[j].reached > k && better(runs, j, i, k);
            if (rank < keep && (best < 0 || better(runs, i, best, k)))
                best = i;
        }
        if (best >= 0) {
            *rung = k;
            return best;
        }
    }
    return -1;
}
