/* blas.c - the OpenBLAS kernel choice (include/ff/blas.h). */
#include "ff/blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ff_blas_best_core(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

/* 1 if OpenBLAS's kernel set is one without AVX2 (its fallbacks for unknown CPUs) */
static int core_is_fallback(const char *name)
{
    static const char *const old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                      "Atom", "Katmai", "Coppermine", "Northwood", "Banias",
                                      "Sandybridge", "Bulldozer", "Barcelona", "Opteron",
                                      "Unknown"};
    if (!name || !*name)
        return 1;
    for (size_t i = 0; i < sizeof old / sizeof *old; i++)
        if (!strcmp(name, old[i]))
            return 1;
    return 0;
}

void ff_blas_ensure_fast_core(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return;
    const char *best = ff_blas_best_core();
    if (!best || !core_is_fallback(openblas_get_corename()))
        return;
    if (setenv("OPENBLAS_CORETYPE", best, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on with the library's choice */
}
