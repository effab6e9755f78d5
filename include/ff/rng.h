/* rng.h - explicit, seedable random number generator (xoshiro256**).
 *
 * No global state: every user holds its own ff_rng. The state is a plain value
 * (copy it to fork a stream; store it in checkpoints to resume exactly). */
#ifndef FF_RNG_H
#define FF_RNG_H

#include <stdint.h>

typedef struct ff_rng {
    uint64_t s[4];
} ff_rng;

void ff_rng_seed(ff_rng *r, uint64_t seed);
uint64_t ff_rng_u64(ff_rng *r);
/* uniform integer in [0, n), unbiased; n > 0 */
uint32_t ff_rng_below(ff_rng *r, uint32_t n);
/* uniform float in [0, 1) */
float ff_rng_uniform(ff_rng *r);
/* standard normal */
float ff_rng_normal(ff_rng *r);
/* Fisher-Yates shuffle of an int array */
void ff_rng_shuffle(ff_rng *r, int *a, int n);

#endif
