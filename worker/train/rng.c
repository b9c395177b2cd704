/*
 * rng.c — xoshiro256** by Blackman and Vigna, seeded with splitmix64 (the
 * seeding its authors recommend). See rng.h.
 */
#include "rng.h"

#include <math.h>

#define MM_TWO_PI 6.283185307179586476925286766559

/* splitmix64's next output: spreads a seed over the generator's state. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Rotates x left by k bits. */
static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Seeds the generator for one (seed, stream) pair: equal pairs give equal sequences. */
void
mm_rng_seed(mm_rng *r, uint64_t seed, uint64_t stream)
{
	/* mix the stream in through splitmix so nearby seeds/streams diverge */
	uint64_t	x = seed;
	uint64_t	s = splitmix64(&x) ^ (stream * UINT64_C(0xD1B54A32D192ED03));

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&s);
	/* all-zero is the one forbidden state; splitmix makes it practically impossible, but be sure */
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1;
}

/* The next 64 random bits (xoshiro256**). */
uint64_t
mm_rng_next(mm_rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* A uniform double in [0, 1), from the top 53 bits. */
double
mm_rng_uniform(mm_rng *r)
{
	return (double) (mm_rng_next(r) >> 11) * 0x1.0p-53;
}

/* A standard normal deviate (Box-Muller). */
double
mm_rng_normal(mm_rng *r)
{
	double		u1 = 1.0 - mm_rng_uniform(r);	/* (0, 1]: log is finite */
	double		u2 = mm_rng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(MM_TWO_PI * u2);
}

/* A uniform integer in [0, n), without modulo bias. */
uint64_t
mm_rng_below(mm_rng *r, uint64_t n)
{
	/* reject the top partial bucket so every residue is equally likely */
	uint64_t	limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t	x;

	do
		x = mm_rng_next(r);
	while (x >= limit);
	return x % n;
}

/* Shuffles a[0..n-1] in place (Fisher-Yates). */
void
mm_rng_shuffle(mm_rng *r, size_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--)
	{
		size_t		j = (size_t) mm_rng_below(r, i);
		size_t		t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}
