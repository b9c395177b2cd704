/*
 * synth.c — synthetic datasets (see synth.h). Rows cycle through the
 * classes (row i has class i % classes), so classes are balanced; the
 * split shuffles them anyway. Feature names are x1..xd, class names "0",
 * "1", ...; the generator's stream is independent of the training seed.
 */
#include "synth.h"
#include "rng.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MM_PI 3.14159265358979323846

/* Names the features x1..xd and the label column. */
static int
name_features(mm_dataset *ds, const char *label)
{
	char		buf[32];

	for (size_t j = 0; j < ds->d; j++)
	{
		snprintf(buf, sizeof(buf), "x%zu", j + 1);
		ds->feature_names[j] = strdup(buf);
		if (ds->feature_names[j] == NULL)
			return -1;
	}
	ds->label_name = strdup(label);
	return ds->label_name == NULL ? -1 : 0;
}

/* Names the k classes by their index ("0", "1", ...). */
static int
name_classes(mm_dataset *ds, int k)
{
	char		buf[32];

	ds->class_names = calloc((size_t) k, sizeof(char *));
	if (ds->class_names == NULL)
		return -1;
	ds->nclasses = k;
	for (int c = 0; c < k; c++)
	{
		snprintf(buf, sizeof(buf), "%d", c);
		ds->class_names[c] = strdup(buf);
		if (ds->class_names[c] == NULL)
			return -1;
	}
	return 0;
}

#define BLOB_CANDIDATES 10

/* squared distance from p to the nearest of the first k centres */
static double
nearest_centre(const double *p, const double *centres, int k, size_t d)
{
	double		nearest = INFINITY;

	for (int o = 0; o < k; o++)
	{
		double		dist = 0;

		for (size_t j = 0; j < d; j++)
		{
			double		dj = p[j] - centres[(size_t) o * d + j];

			dist += dj * dj;
		}
		if (dist < nearest)
			nearest = dist;
	}
	return nearest;
}

/* Gaussian blobs: a cluster of points round a well-spread random centre per class. */
static int
gen_blobs(const mm_synth_spec *s, mm_dataset *ds, mm_rng *rng)
{
	size_t		d = (size_t) s->features;
	double	   *centres = malloc((size_t) s->classes * d * sizeof(double));
	double	   *cand = malloc(d * sizeof(double));

	if (centres == NULL || cand == NULL)
	{
		free(centres);
		free(cand);
		return -1;
	}

	/*
	 * Best-candidate sampling: each centre is the one of BLOB_CANDIDATES
	 * uniform draws in [-10,10]^d farthest from the centres already placed,
	 * so clusters spread over the box instead of landing on top of each
	 * other by chance.
	 */
	for (int c = 0; c < s->classes; c++)
	{
		double		best_dist = -1;

		for (int t = 0; t < BLOB_CANDIDATES; t++)
		{
			double		dist;

			for (size_t j = 0; j < d; j++)
				cand[j] = -10.0 + 20.0 * mm_rng_uniform(rng);
			dist = nearest_centre(cand, centres, c, d);
			if (dist > best_dist)
			{
				best_dist = dist;
				memcpy(centres + (size_t) c * d, cand, d * sizeof(double));
			}
		}
	}
	free(cand);

	for (size_t i = 0; i < s->n; i++)
	{
		int			c = (int) (i % (size_t) s->classes);

		for (size_t j = 0; j < d; j++)
			ds->x[i * d + j] = centres[c * d + j] + s->noise * mm_rng_normal(rng);
		ds->y[i] = c;
	}
	free(centres);
	return name_classes(ds, s->classes);
}

/* scikit-learn's make_moons shape, with the angle drawn at random */
static int
gen_moons(const mm_synth_spec *s, mm_dataset *ds, mm_rng *rng)
{
	for (size_t i = 0; i < s->n; i++)
	{
		int			c = (int) (i % 2);
		double		t = MM_PI * mm_rng_uniform(rng);
		double		x = c ? 1.0 - cos(t) : cos(t);
		double		y = c ? 0.5 - sin(t) : sin(t);

		ds->x[i * 2] = x + s->noise * mm_rng_normal(rng);
		ds->x[i * 2 + 1] = y + s->noise * mm_rng_normal(rng);
		ds->y[i] = c;
	}
	return name_classes(ds, 2);
}

/* Arm c: radius r in [0,1), angle 2*pi*c/classes + 4r (about 0.64 turns). */
static int
gen_spirals(const mm_synth_spec *s, mm_dataset *ds, mm_rng *rng)
{
	for (size_t i = 0; i < s->n; i++)
	{
		int			c = (int) (i % (size_t) s->classes);
		double		r = mm_rng_uniform(rng);
		double		a = 2.0 * MM_PI * c / s->classes + 4.0 * r;

		ds->x[i * 2] = r * cos(a) + s->noise * mm_rng_normal(rng);
		ds->x[i * 2 + 1] = r * sin(a) + s->noise * mm_rng_normal(rng);
		ds->y[i] = c;
	}
	return name_classes(ds, s->classes);
}

/* x ~ N(0,1)^d; |w_j| in [1,3] so every feature matters; b in [-5,5] */
static int
gen_linear(const mm_synth_spec *s, mm_dataset *ds, mm_rng *rng)
{
	size_t		d = (size_t) s->features;
	double	   *w = malloc(d * sizeof(double));
	double		b;

	if (w == NULL)
		return -1;
	for (size_t j = 0; j < d; j++)
	{
		double		mag = 1.0 + 2.0 * mm_rng_uniform(rng);

		w[j] = (mm_rng_next(rng) & 1) ? mag : -mag;
	}
	b = -5.0 + 10.0 * mm_rng_uniform(rng);
	for (size_t i = 0; i < s->n; i++)
	{
		double		y = b;

		for (size_t j = 0; j < d; j++)
		{
			double		x = mm_rng_normal(rng);

			ds->x[i * d + j] = x;
			y += w[j] * x;
		}
		ds->y[i] = y + s->noise * mm_rng_normal(rng);
	}
	free(w);
	return 0;
}

/* Generates the synthetic dataset s asks for (see synth.h); 0 or -1 (err). */
int
mm_synth_generate(const mm_synth_spec *s, mm_dataset *ds, char *err, size_t errlen)
{
	size_t		d;
	mm_rng		rng;
	int			rc;

	switch (s->kind)
	{
		case MM_SYNTH_BLOBS:
		case MM_SYNTH_LINEAR:
			d = (size_t) s->features;
			break;
		case MM_SYNTH_MOONS:
		case MM_SYNTH_SPIRALS:
			d = 2;
			break;
		default:
			return mm_err(err, errlen, "unknown synthetic dataset");
	}
	if (mm_dataset_alloc(ds, s->n, d) != 0)
		return mm_err(err, errlen, "out of memory generating %zu rows x %zu features", s->n, d);

	mm_rng_seed(&rng, s->seed, MM_STREAM_DATA);
	switch (s->kind)
	{
		case MM_SYNTH_BLOBS:
			rc = gen_blobs(s, ds, &rng);
			break;
		case MM_SYNTH_MOONS:
			rc = gen_moons(s, ds, &rng);
			break;
		case MM_SYNTH_SPIRALS:
			rc = gen_spirals(s, ds, &rng);
			break;
		default:
			rc = gen_linear(s, ds, &rng);
			break;
	}
	if (rc == 0)
		rc = name_features(ds, "y");
	if (rc != 0)
	{
		mm_dataset_free(ds);
		return mm_err(err, errlen, "out of memory generating the synthetic dataset");
	}
	return 0;
}
