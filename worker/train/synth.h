/*
 * synth.h — synthetic datasets for demos, tests and benchmarks.
 */
#ifndef MM_SYNTH_H
#define MM_SYNTH_H

#include "dataset.h"

#include <stdint.h>

typedef enum mm_synth_kind
{
	MM_SYNTH_NONE = 0,
	MM_SYNTH_BLOBS,				/* Gaussian clusters round spread-out centres in [-10,10]^d */
	MM_SYNTH_MOONS,				/* two interleaving half circles, 2 features, 2 classes */
	MM_SYNTH_SPIRALS,			/* "classes" spiral arms, 2 features */
	MM_SYNTH_LINEAR				/* y = w.x + b + noise, regression */
} mm_synth_kind;

typedef struct mm_synth_spec
{
	mm_synth_kind kind;
	size_t		n;
	int			classes;
	int			features;
	double		noise;
	uint64_t	seed;
} mm_synth_spec;

/* Fill ds (validated spec: sizes within the config limits). */
int			mm_synth_generate(const mm_synth_spec *spec, mm_dataset *ds,
							  char *err, size_t errlen);

#endif							/* MM_SYNTH_H */
