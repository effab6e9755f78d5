/* conv_direct.c - direct loops for convolutions whose groups see few inputs.
 *
 * A conv layer whose output channel sees Kg = (in.c / G) * k * k <= FF_CONV_DIRECT_KG
 * inputs (the first layers of the shipped deep nets: 3 -> 20 channels with Kg = 27,
 * and 20 -> 80 channels in 10 groups with Kg = 18) is a poor GEMM: M = 8..20 rows and
 * K = 18..27 give OpenBLAS 9-40 GFLOP/s, and its im2col writes Kg floats per output
 * value that the GEMM then reads and packs again. Here every output row is summed in
 * place instead, from zero-padded copies of the group's input planes, with no patches:
 *   forward:  acc[c][ox] = sum_{ci, ki, kj} W[c][ci][ki][kj] x[ci][oy + ki - pad][ox + kj - pad]
 *             y[c][oy][ox] = relu(acc[c][ox] + b[c])             (samples over the pool)
 *             (4 output channels x 16 or 32 lanes at a time kept in registers)
 *   backward: gW[c][t] (+)= sum_{i, oy, ox} dpre[i][c][oy][ox] x[i][ci][..][..], the sums
 *             kept per lane in the caller's workspace until the end (groups over the pool)
 * Stride 1, any padding and groups; no constant (label) planes. The sums run in
 * another order than the GEMM's, so results agree with the im2col path to rounding
 * (tests/test_layers.c checks both against the naive loops and each other). */
#include "conv_direct.h"

#include <math.h>
#include <string.h>

#include "ff/pool.h"
#include "vec_runs.h"

/* the most floats of each stack table: the output rows of a group (forward), the
 * padded input planes of a group, a dpre row (backward) */
#define DIRECT_TABLE_FLOATS 4096

/* a row's width rounded up to whole vectors of 16 floats: every loop below runs
 * over full vectors (the lanes past ow compute values nobody reads) */
static int lanes(int ow) { return (ow + 15) / 16 * 16; }

/* floats of one padded input row: the ow + k - 1 columns that output row reads, as
 * many more as the lanes past ow read */
static int row_floats(const ff_layer *l) { return lanes(l->out.w) + l->kernel; }

/* rows of the padded input planes of a group: in.h + 2 pad */
static int padded_height(const ff_layer *l) { return l->in.h + 2 * l->pad; }

int ff_conv_direct_fits(const ff_layer *l)
{
    const int G = l->groups > 0 ? l->groups : 1, k = l->kernel;
    if (l->stride != 1 || l->in.c % G || l->out.c % G)
        return 0;
    const int Cig = l->in.c / G, Kg = Cig * k * k, Cg = l->out.c / G, L = lanes(l->out.w);
    return Kg <= FF_CONV_DIRECT_KG && Cg * L <= DIRECT_TABLE_FLOATS &&
           Kg * L <= DIRECT_TABLE_FLOATS &&
           Cig * padded_height(l) * row_floats(l) <= DIRECT_TABLE_FLOATS;
}

/* planes[ci][pad + yy][pad + xx] = x[ci][yy][xx] for the Cig channels of one group
 * of one sample (xg: its first channel), rows of row_floats, zero around and past */
static void padded_planes(const ff_layer *l, const float *xg, int Cig, float *planes)
{
    const int pad = l->pad, rf = row_floats(l), w = l->in.w, ph = padded_height(l);
    const size_t plane = (size_t)l->in.h * w;
    for (int ci = 0; ci < Cig; ci++) {
        float *p = planes + (size_t)ci * ph * rf;
        for (int r = 0; r < ph; r++, p += rf) {
            const int yy = r - pad;
            if (yy < 0 || yy >= l->in.h) {
                for (int q = 0; q < rf; q++)
                    p[q] = 0.0f;
                continue;
            }
            for (int q = 0; q < pad; q++)
                p[q] = 0.0f;
            ff_run_copy(p + pad, xg + (size_t)ci * plane + (size_t)yy * w, w);
            for (int q = pad + w; q < rf; q++)
                p[q] = 0.0f;
        }
    }
}

typedef struct direct_job {
    const ff_layer *l;
    const float *x, *dpre;
    float *y, *ws;
    int batch;
    float beta;
} direct_job;

/* off[t] = the offset of tap t = (ci k + ki) k + kj in the padded planes from its
 * output row's first row: the window's input row oy + ki, column ox + kj */
static void tap_offsets(const ff_layer *l, int *off)
{
    const int k = l->kernel, Kg = l->in.c / l->groups * k * k, rf = row_floats(l);
    for (int t = 0; t < Kg; t++)
        off[t] = (t / (k * k) * padded_height(l) + t / k % k) * rf + t % k;
}

/* out[b][n] = sum_t w[b Kg + t] rows[off[t] + n] for 4 output channels b and the L =
 * 16 or 32 lanes of one output row: the 4 x L sums stay in registers over all taps
 * (sizes known to the compiler: 8 independent vector chains for L = 32) */
#define SUM_ROWS(L)                                                                        \
    static void sum_rows_##L(const float *rows, const int *off, int Kg, const float *w,    \
                             float *out)                                                   \
    {                                                                                      \
        float a[4][L] = {{0.0f}};                                                          \
        for (int t = 0; t < Kg; t++) {                                                     \
            const float *src = rows + off[t];                                              \
            for (int b = 0; b < 4; b++) {                                                  \
                const float wb = w[(size_t)b * Kg + t];                                    \
                for (int n = 0; n < L; n++)                                                \
                    a[b][n] = fmaf(wb, src[n], a[b][n]);                                   \
            }                                                                              \
        }                                                                                  \
        memcpy(out, a, sizeof a);                                                          \
    }
SUM_ROWS(16)
SUM_ROWS(32)

/* the same for any Cg output channels and L lanes, the sums in memory */
static void sum_rows(const float *rows, const int *off, int Kg, int Cg, int L, const float *w,
                     float *out)
{
    memset(out, 0, sizeof(float) * (size_t)Cg * L);
    for (int t = 0; t < Kg; t++) {
        const float *src = rows + off[t];
        for (int c = 0; c < Cg; c++) {
            const float wc = w[(size_t)c * Kg + t];
            float *a = out + (size_t)c * L;
#pragma omp simd
            for (int n = 0; n < L; n++)
                a[n] = fmaf(wc, src[n], a[n]);
        }
    }
}

/* samples [i0, i1) of the forward pass */
static void forward_range(void *ctx, size_t i0, size_t i1)
{
    const direct_job *j = ctx;
    const ff_layer *l = j->l;
    const int G = l->groups, k = l->kernel, ow = l->out.w, oh = l->out.h, L = lanes(ow);
    const int Cg = l->out.c / G, Cig = l->in.c / G, Kg = Cig * k * k, rf = row_floats(l);
    const size_t plane = (size_t)l->in.h * l->in.w, oplane = (size_t)oh * ow;
    float acc[DIRECT_TABLE_FLOATS], planes[DIRECT_TABLE_FLOATS];
    int off[FF_CONV_DIRECT_KG];
    tap_offsets(l, off);
    for (size_t i = i0; i < i1; i++) {
        const float *xi = j->x + i * (size_t)l->in.c * plane;
        float *yi = j->y + i * (size_t)l->out.c * oplane;
        for (int g = 0; g < G; g++) {
            padded_planes(l, xi + (size_t)g * Cig * plane, Cig, planes);
            for (int oy = 0; oy < oh; oy++) {
                const float *rows = planes + (size_t)oy * rf;
                const float *wg = l->W + (size_t)g * Cg * Kg;
                if (Cg % 4 == 0 && L == 32)
                    for (int c = 0; c < Cg; c += 4)
                        sum_rows_32(rows, off, Kg, wg + (size_t)c * Kg, acc + (size_t)c * L);
                else if (Cg % 4 == 0 && L == 16)
                    for (int c = 0; c < Cg; c += 4)
                        sum_rows_16(rows, off, Kg, wg + (size_t)c * Kg, acc + (size_t)c * L);
                else
                    sum_rows(rows, off, Kg, Cg, L, wg, acc);
                for (int c = 0; c < Cg; c++) {
                    const int co = g * Cg + c;
                    ff_run_bias_relu(yi + (size_t)co * oplane + (size_t)oy * ow,
                                     acc + (size_t)c * L, l->b[co], ow);
                }
            }
        }
    }
}

void ff_conv_direct_forward(const ff_layer *l, const float *x, float *y, int batch)
{
    direct_job j = {l, x, NULL, y, NULL, batch, 0.0f};
    ff_pool_for((size_t)batch, 1, forward_range, &j);
}

/* groups [g0, g1) of the weight gradient: acc [Cg][Kg][L] (the lanes of every weight's
 * sum, in the caller's workspace at group g's own offset) over every sample and row */
static void backward_range(void *ctx, size_t g0, size_t g1)
{
    const direct_job *j = ctx;
    const ff_layer *l = j->l;
    const int G = l->groups, k = l->kernel, ow = l->out.w, oh = l->out.h, L = lanes(ow);
    const int Cg = l->out.c / G, Cig = l->in.c / G, Kg = Cig * k * k;
    const size_t plane = (size_t)l->in.h * l->in.w, oplane = (size_t)oh * ow;
    const size_t per_group = (size_t)Cg * Kg * L;
    float planes[DIRECT_TABLE_FLOATS], d[DIRECT_TABLE_FLOATS]; /* d: a dpre row, 0 past ow */
    int off[FF_CONV_DIRECT_KG];
    tap_offsets(l, off);
    memset(d, 0, sizeof(float) * (size_t)L);
    for (size_t g = g0; g < g1; g++) {
        float *acc = j->ws + g * per_group;
        memset(acc, 0, sizeof(float) * per_group);
        for (int i = 0; i < j->batch; i++) {
            padded_planes(l, j->x + ((size_t)i * l->in.c + g * Cig) * plane, Cig, planes);
            for (int c = 0; c < Cg; c++) {
                const float *dc = j->dpre + ((size_t)i * l->out.c + g * Cg + c) * oplane;
                float *ac = acc + (size_t)c * Kg * L;
                for (int oy = 0; oy < oh; oy++) {
                    memcpy(d, dc + (size_t)oy * ow, sizeof(float) * (size_t)ow);
                    const float *rows = planes + (size_t)oy * row_floats(l);
                    for (int t = 0; t < Kg; t++) {
                        const float *src = rows + off[t];
                        float *a = ac + (size_t)t * L;
#pragma omp simd
                        for (int n = 0; n < L; n++)
                            a[n] = fmaf(d[n], src[n], a[n]);
                    }
                }
            }
        }
        for (int c = 0; c < Cg; c++) {
            float *gw = l->gW + (g * Cg + c) * (size_t)Kg;
            for (int t = 0; t < Kg; t++) {
                const float *a = acc + ((size_t)c * Kg + t) * L;
                float s = 0.0f;
                for (int n = 0; n < ow; n++)
                    s += a[n];
                gw[t] = j->beta == 0.0f ? s : j->beta * gw[t] + s;
            }
        }
    }
}

size_t ff_conv_direct_workspace(const ff_layer *l)
{
    const int G = l->groups, Kg = l->in.c / G * l->kernel * l->kernel;
    return (size_t)l->out.c * Kg * lanes(l->out.w);
}

void ff_conv_direct_backward(const ff_layer *l, const float *x, const float *dpre, int batch,
                             float beta, float *ws)
{
    direct_job j = {l, x, dpre, NULL, ws, batch, beta};
    ff_pool_for((size_t)l->groups, 1, backward_range, &j);
}
