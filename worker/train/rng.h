/*
 * rng.h — deterministic pseudo-random numbers (xoshiro256**, seeded by
 * splitmix64). The C library's rand() differs between platforms and is
 * shared global state; this generator is fully described by its four words,
 * so a seed reproduces a run bit for bit.
 */
#ifndef MM_RNG_H
#define MM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct mm_rng
{
	uint64_t	s[4];
} mm_rng;

/* Independent streams from one seed: the split, the weight init and the batch order, one each. */
#define MM_STREAM_SPLIT	1
#define MM_STREAM_INIT	2
#define MM_STREAM_SHUFFLE 3
#define MM_STREAM_DATA	4

void		mm_rng_seed(mm_rng *r, uint64_t seed, uint64_t stream);
uint64_t	mm_rng_next(mm_rng *r);
/* uniform in [0, 1) with 53 random bits */
double		mm_rng_uniform(mm_rng *r);
/* standard normal (Box-Muller, one value per call, no cached state) */
double		mm_rng_normal(mm_rng *r);
/* uniform integer in [0, n), unbiased; n > 0 */
uint64_t	mm_rng_below(mm_rng *r, uint64_t n);
/* Fisher-Yates shuffle */
void		mm_rng_shuffle(mm_rng *r, size_t *a, size_t n);

#endif							/* MM_RNG_H */
