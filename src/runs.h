/* runs.h - short runs of floats (one sample's P = oh * ow values of one channel)
 * copied, or put through bias + ReLU, with one vector operation per run where the
 * CPU has AVX-512 (masked loads and stores for the run's tail), else a plain loop.
 * Used by the conv layer's epilogue and im2col.c's layout changes. The results are
 * those of the scalar loops bit for bit: max(v, 0) with 0 as the second operand is
 * `v > 0 ? v : 0` (both give +0 for -0 and for NaN). */
#ifndef FF_RUNS_H
#define FF_RUNS_H

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* d[p] = s[p] for p < n */
static inline void ff_run_copy(float *restrict d, const float *restrict s, int n)
{
    int p = 0;
#if defined(__AVX512F__)
    for (; p + 16 <= n; p += 16)
        _mm512_storeu_ps(d + p, _mm512_loadu_ps(s + p));
    if (p < n) {
        const __mmask16 m = (__mmask16)((1u << (n - p)) - 1u);
        _mm512_mask_storeu_ps(d + p, m, _mm512_maskz_loadu_ps(m, s + p));
    }
#else
    for (; p < n; p++)
        d[p] = s[p];
#endif
}

/* d[p] = relu(s[p] + add) = (s[p] + add > 0 ? s[p] + add : 0) for p < n */
static inline void ff_run_bias_relu(float *restrict d, const float *restrict s, float add, int n)
{
    int p = 0;
#if defined(__AVX512F__)
    const __m512 va = _mm512_set1_ps(add), zero = _mm512_setzero_ps();
    for (; p + 16 <= n; p += 16)
        _mm512_storeu_ps(d + p, _mm512_max_ps(_mm512_add_ps(_mm512_loadu_ps(s + p), va), zero));
    if (p < n) {
        const __mmask16 m = (__mmask16)((1u << (n - p)) - 1u);
        const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, s + p), va);
        _mm512_mask_storeu_ps(d + p, m, _mm512_max_ps(v, zero));
    }
#else
    for (; p < n; p++) {
        const float v = s[p] + add;
        d[p] = v > 0.0f ? v : 0.0f;
    }
#endif
}

#endif
