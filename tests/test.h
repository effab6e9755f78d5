/* test.h - a tiny jsmn-style test harness shared by every tests/test_*.c.
 *
 * CHECK(cond) records a failure (file:line and the condition) and continues;
 * CHECK_NEAR(a, b, tol) compares floating point values; RUN(fn) runs one test
 * function and reports it. TEST_MAIN_END prints "N passed, N failed" for the
 * binary and returns non-zero if anything failed. */
#ifndef FF_TEST_H
#define FF_TEST_H

#include <math.h>
#include <stdio.h>

static int test_checks_failed;
static int test_fn_failed;
static int tests_passed, tests_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            test_checks_failed++;                                                     \
            test_fn_failed = 1;                                                       \
        }                                                                             \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                         \
    do {                                                                              \
        double ca_ = (double)(a), cb_ = (double)(b);                                  \
        if (!(fabs(ca_ - cb_) <= (tol))) {                                            \
            fprintf(stderr, "  FAIL %s:%d: %s = %.9g, %s = %.9g (tol %g)\n", __FILE__, \
                    __LINE__, #a, ca_, #b, cb_, (double)(tol));                       \
            test_checks_failed++;                                                     \
            test_fn_failed = 1;                                                       \
        }                                                                             \
    } while (0)

#define RUN(fn)                                                                       \
    do {                                                                              \
        test_fn_failed = 0;                                                           \
        fn();                                                                         \
        if (test_fn_failed) {                                                         \
            tests_failed++;                                                           \
            fprintf(stderr, "FAIL %s\n", #fn);                                        \
        } else {                                                                      \
            tests_passed++;                                                           \
            printf("ok   %s\n", #fn);                                                 \
        }                                                                             \
    } while (0)

#define TEST_MAIN_END()                                                               \
    do {                                                                              \
        printf("%s: %d passed, %d failed\n", __FILE__, tests_passed, tests_failed);   \
        return tests_failed ? 1 : 0;                                                  \
    } while (0)

#endif
