/* blas.h - making sure OpenBLAS runs its fast kernels on this CPU.
 *
 * Debian's OpenBLAS picks its kernels at load time from the CPU's model number.
 * On a CPU newer than the library (seen: a Xeon with AVX-512 under OpenBLAS
 * 0.3.21) it falls back to "Prescott", plain SSE3 kernels, and every GEMM runs
 * about 4x slower (15.6 against 66 GFLOP/s measured on one core). The kernel
 * set can only be chosen before the library loads, through the environment
 * variable OPENBLAS_CORETYPE; so a program whose OpenBLAS fell back re-executes
 * itself once with the right choice. A user's own OPENBLAS_CORETYPE always wins. */
#ifndef FF_BLAS_H
#define FF_BLAS_H

/* The OpenBLAS kernel set this CPU supports best among those Debian's OpenBLAS
 * builds: "SkylakeX" (AVX-512 F/BW/DQ/VL), "Haswell" (AVX2 + FMA), or NULL if
 * there is no better choice than the library's own. */
const char *ff_blas_best_core(void);

/* If OPENBLAS_CORETYPE is unset and OpenBLAS chose a kernel set older than
 * ff_blas_best_core() (a pre-AVX2 one), sets OPENBLAS_CORETYPE and execv's
 * /proc/self/exe with argv; returns only if nothing needed doing or the exec
 * failed (then the run goes on, slower). */
void ff_blas_ensure_fast_core(char **argv);

#endif
