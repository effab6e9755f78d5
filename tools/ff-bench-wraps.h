/* ff-bench-wraps.h - the library functions tools/ff-bench.c times in place, one line
 * each: the Makefile links ff-bench with -Wl,--wrap=NAME for every FF_BENCH_WRAP(NAME)
 * line below (it reads this file), and ff-bench.c declares __real_NAME and __wrap_NAME
 * with the real function's type from the same list, so a signature change fails to
 * compile and a name without its wrapper fails to link. */
#define FF_BENCH_WRAPS                      \
    FF_BENCH_WRAP(cblas_sgemm)              \
    FF_BENCH_WRAP(ff_layer_forward)         \
    FF_BENCH_WRAP(ff_layer_backward)        \
    FF_BENCH_WRAP(ff_objective_normalize)             \
    FF_BENCH_WRAP(ff_objective_layer_loss)  \
    FF_BENCH_WRAP(ff_objective_goodness)              \
    FF_BENCH_WRAP(ff_optim_step)            \
    FF_BENCH_WRAP(ff_embed_batch)           \
    FF_BENCH_WRAP(ff_embed_batch_aug)       \
    FF_BENCH_WRAP(ff_im2col)                \
    FF_BENCH_WRAP(ff_im2col_rows)           \
    FF_BENCH_WRAP(ff_im2col_transpose_batch)       \
    FF_BENCH_WRAP(ff_im2col_channels_to_rows)      \
    FF_BENCH_WRAP(ff_net_ff_grads)
