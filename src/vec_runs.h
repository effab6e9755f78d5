/* vec_runs.h - short runs of floats (one sample's P = oh * ow values of one channel)
 * copied, or put through bias + ReLU, with one vector operation per run where the
 * CPU has AVX-512 (masked loads and stores for the run's tail), else a plain loop;
 * and gathers through an offset table (AVX-512 gathers, 16 values each), for runs
 * too short for a vector. Used by the conv layer's epilogue and by im2col.c. The
 * results are those of the scalar loops bit for bit: max(v, 0) with 0 as the second
 * operand is `v > 0 ? v : 0` (both give +0 for -0 and for NaN). */
#ifndef FF_VEC_RUNS_H
#define FF_VEC_RUNS_H

#include <stdint.h>

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

/* d[q] = s[idx[q]] for q < n */
static inline void ff_gather(float *restrict d, const float *restrict s,
                             const int32_t *restrict idx, int n)
{
    int q = 0;
#if defined(__AVX512F__)
    for (; q + 16 <= n; q += 16)
        _mm512_storeu_ps(d + q, _mm512_i32gather_ps(_mm512_loadu_si512(idx + q), s, 4));
    if (q < n) {
        const __mmask16 m = (__mmask16)((1u << (n - q)) - 1u);
        const __m512i vi = _mm512_maskz_loadu_epi32(m, idx + q);
        _mm512_mask_storeu_ps(d + q, m,
                              _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, vi, s, 4));
    }
#else
    for (; q < n; q++)
        d[q] = s[idx[q]];
#endif
}

/* d[q] = relu(s[idx[q]] + add[q]) for q < n */
static inline void ff_gather_bias_relu(float *restrict d, const float *restrict s,
                                       const int32_t *restrict idx, const float *restrict add,
                                       int n)
{
    int q = 0;
#if defined(__AVX512F__)
    const __m512 zero = _mm512_setzero_ps();
    for (; q + 16 <= n; q += 16) {
        const __m512 v = _mm512_i32gather_ps(_mm512_loadu_si512(idx + q), s, 4);
        _mm512_storeu_ps(d + q, _mm512_max_ps(_mm512_add_ps(v, _mm512_loadu_ps(add + q)), zero));
    }
    if (q < n) {
        const __mmask16 m = (__mmask16)((1u << (n - q)) - 1u);
        const __m512i vi = _mm512_maskz_loadu_epi32(m, idx + q);
        const __m512 v = _mm512_mask_i32gather_ps(zero, m, vi, s, 4);
        _mm512_mask_storeu_ps(
            d + q, m, _mm512_max_ps(_mm512_add_ps(v, _mm512_maskz_loadu_ps(m, add + q)), zero));
    }
#else
    for (; q < n; q++) {
        const float v = s[idx[q]] + add[q];
        d[q] = v > 0.0f ? v : 0.0f;
    }
#endif
}

#endif
