/*
 * dataset.c — CSV text to a numeric dataset; train/validation split and
 * standardisation (see dataset.h).
 *
 * Rows in messages are data rows counted from 1 (the header is not a row),
 * followed by the physical line so an editor can jump there. Messages name
 * columns but never quote cell values: a job must not be able to read a
 * file's contents back through its error message.
 */
#include "dataset.h"
#include "csv.h"
#include "rng.h"
#include "util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_SLOTS 4096		/* power of two, > 2 * MM_MAX_CSV_CLASSES */

/* Allocates n rows of d features (x, y, feature names); -1 when out of memory. */
int
mm_dataset_alloc(mm_dataset *ds, size_t n, size_t d)
{
	memset(ds, 0, sizeof(*ds));
	ds->x = malloc(n * d * sizeof(double));
	ds->y = malloc(n * sizeof(double));
	ds->feature_names = calloc(d, sizeof(char *));
	if (ds->x == NULL || ds->y == NULL || ds->feature_names == NULL)
	{
		mm_dataset_free(ds);
		return -1;
	}
	ds->n = n;
	ds->d = d;
	return 0;
}

/* Frees everything the dataset holds. */
void
mm_dataset_free(mm_dataset *ds)
{
	if (ds->feature_names != NULL)
		for (size_t i = 0; i < ds->d; i++)
			free(ds->feature_names[i]);
	if (ds->class_names != NULL)
		for (int i = 0; i < ds->nclasses; i++)
			free(ds->class_names[i]);
	free(ds->feature_names);
	free(ds->class_names);
	free(ds->label_name);
	free(ds->x);
	free(ds->y);
	memset(ds, 0, sizeof(*ds));
}

/* Strict number: the whole field (spaces around allowed), finite. */
static int
parse_number(const char *s, double *out)
{
	char	   *end;
	double		v;

	while (isspace((unsigned char) *s))
		s++;
	if (*s == '\0')
		return -1;
	v = strtod(s, &end);
	if (end == s)
		return -1;
	while (isspace((unsigned char) *end))
		end++;
	if (*end != '\0' || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

/* Strip surrounding whitespace in place: " cat" and "cat" are one class. */
static void
trim(char *s)
{
	size_t		len = strlen(s);
	size_t		start = 0;

	while (len > 0 && isspace((unsigned char) s[len - 1]))
		len--;
	while (start < len && isspace((unsigned char) s[start]))
		start++;
	memmove(s, s + start, len - start);
	s[len - start] = '\0';
}

/* The string is empty or white space only. */
static int
is_blank(const char *s)
{
	while (isspace((unsigned char) *s))
		s++;
	return *s == '\0';
}

/* Distinct label strings in order of first appearance, with a hash index. */
typedef struct label_map
{
	char	  **names;
	int			n;
	int		   *slots;			/* LABEL_SLOTS entries: name index + 1, 0 = empty */
} label_map;

/* FNV-1a hash of a label string, for the label map. */
static uint32_t
hash_str(const char *s)
{
	uint32_t	h = 2166136261u;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

/* Returns the class id of s, adding it if new; -1 out of memory, -2 too many classes. */
static int
label_id(label_map *m, const char *s)
{
	uint32_t	h = hash_str(s) & (LABEL_SLOTS - 1);
	char	   *copy;

	while (m->slots[h] != 0)
	{
		if (strcmp(m->names[m->slots[h] - 1], s) == 0)
			return m->slots[h] - 1;
		h = (h + 1) & (LABEL_SLOTS - 1);
	}
	if (m->n >= MM_MAX_CSV_CLASSES)
		return -2;
	copy = strdup(s);
	if (copy == NULL)
		return -1;
	m->names[m->n] = copy;
	m->slots[h] = ++m->n;
	return m->n - 1;
}

typedef struct class_rank
{
	const char *name;
	double		value;
	int			id;
} class_rank;

/* qsort order of class labels: by value when all are numbers (else all are 0), then by name. */
static int
cmp_class(const void *a, const void *b)
{
	const class_rank *x = a;
	const class_rank *y = b;

	if (x->value < y->value)
		return -1;
	if (x->value > y->value)
		return 1;
	return strcmp(x->name, y->name);
}

/*
 * Renumber classes in sorted order: numerically when every label is a
 * number (so 2 comes before 10), else by byte order. Moves the names into
 * ds->class_names.
 */
static int
sort_classes(mm_dataset *ds, label_map *m)
{
	class_rank *r = malloc((size_t) m->n * sizeof(*r));
	int		   *remap = malloc((size_t) m->n * sizeof(int));
	int			numeric = 1;

	ds->class_names = malloc((size_t) m->n * sizeof(char *));
	if (r == NULL || remap == NULL || ds->class_names == NULL)
	{
		free(r);
		free(remap);
		return -1;
	}
	for (int i = 0; i < m->n; i++)
	{
		r[i].name = m->names[i];
		r[i].id = i;
		if (parse_number(m->names[i], &r[i].value) != 0)
			numeric = 0;
	}
	for (int i = 0; i < m->n; i++)
		if (!numeric)
			r[i].value = 0;
	qsort(r, (size_t) m->n, sizeof(*r), cmp_class);
	for (int i = 0; i < m->n; i++)
	{
		remap[r[i].id] = i;
		ds->class_names[i] = m->names[r[i].id];
	}
	ds->nclasses = m->n;
	m->n = 0;					/* names now belong to ds */
	for (size_t i = 0; i < ds->n; i++)
		ds->y[i] = remap[(int) ds->y[i]];
	free(r);
	free(remap);
	return 0;
}

/* "a, b, c" with each name sanitised, cut short with "..." to fit. */
static void
list_columns(char *out, size_t outlen, char **names, size_t n)
{
	size_t		used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
	{
		char		name[80];
		int			w;

		mm_sanitize(name, sizeof(name), names[i], 60);
		w = snprintf(out + used, outlen - used, "%s\"%s\"", i ? ", " : "", name);
		if (w < 0 || (size_t) w >= outlen - used)
		{
			/* overwrite the tail with an ellipsis */
			if (outlen >= 4)
				memcpy(out + outlen - 4, "...", 4);
			return;
		}
		used += (size_t) w;
	}
}

/* Builds a dataset from CSV text with a header row (see dataset.h); 0 or -1 (err). */
int
mm_dataset_from_csv(const char *data, size_t len, const char *label,
					int regression, mm_dataset *ds, char *err, size_t errlen)
{
	mm_csv		c;
	label_map	labels = {0};
	size_t		ncols;
	size_t		label_col = 0;
	size_t		rowcap = 0;
	int			found = 0;
	int			rc;
	char		shown[96];

	memset(ds, 0, sizeof(*ds));
	mm_csv_init(&c, data, len, MM_MAX_CSV_COLUMNS);

	rc = mm_csv_next(&c, err, errlen);
	if (rc < 0)
		goto fail;
	if (rc == 0)
	{
		mm_err(err, errlen, "CSV file is empty (expected a header row and data rows)");
		goto fail;
	}

	/* header */
	ncols = c.nfields;
	for (size_t i = 0; i < ncols; i++)
	{
		for (size_t j = 0; j < i; j++)
			if (strcmp(c.fields[i], c.fields[j]) == 0)
			{
				mm_err(err, errlen,
					   "CSV header: duplicate column name \"%s\" (columns %zu and %zu)",
					   mm_sanitize(shown, sizeof(shown), c.fields[i], 60), j + 1, i + 1);
				goto fail;
			}
		if (!found && strcmp(c.fields[i], label) == 0)
		{
			label_col = i;
			found = 1;
		}
	}
	if (!found)
	{
		char		cols[512];

		list_columns(cols, sizeof(cols), c.fields, ncols);
		mm_err(err, errlen, "dataset.label \"%s\" is not a column of the CSV; columns are: %s",
			   mm_sanitize(shown, sizeof(shown), label, 60), cols);
		goto fail;
	}
	if (ncols < 2)
	{
		mm_err(err, errlen, "CSV has only the label column \"%s\"; at least one feature column is "
							"needed",
			   mm_sanitize(shown, sizeof(shown), label, 60));
		goto fail;
	}

	ds->d = ncols - 1;
	ds->feature_names = calloc(ds->d, sizeof(char *));
	ds->label_name = strdup(label);
	if (ds->feature_names == NULL || ds->label_name == NULL)
		goto oom;
	for (size_t i = 0, k = 0; i < ncols; i++)
		if (i != label_col)
		{
			ds->feature_names[k] = strdup(c.fields[i]);
			if (ds->feature_names[k++] == NULL)
				goto oom;
		}

	if (!regression)
	{
		labels.names = calloc(MM_MAX_CSV_CLASSES, sizeof(char *));
		labels.slots = calloc(LABEL_SLOTS, sizeof(int));
		if (labels.names == NULL || labels.slots == NULL)
			goto oom;
	}

	/* data rows */
	while ((rc = mm_csv_next(&c, err, errlen)) == 1)
	{
		size_t		row = ds->n + 1;
		double	   *xr;

		if (c.nfields != ncols)
		{
			mm_err(err, errlen, "row %zu (line %zu) has %zu fields but the header has %zu columns",
				   row, c.record_line, c.nfields, ncols);
			goto fail;
		}
		if (ds->n >= MM_MAX_ROWS)
		{
			mm_err(err, errlen, "CSV has more than %d data rows", MM_MAX_ROWS);
			goto fail;
		}
		if ((ds->n + 1) * ds->d > MM_MAX_CELLS)
		{
			mm_err(err, errlen, "CSV has more than %zu feature values (rows x features)",
				   MM_MAX_CELLS);
			goto fail;
		}
		if (ds->n == rowcap)
		{
			size_t		cap = rowcap ? rowcap * 2 : 1024;
			double	   *nx;
			double	   *ny;

			if (cap > MM_MAX_ROWS)
				cap = MM_MAX_ROWS;
			if (cap * ds->d > MM_MAX_CELLS)
				cap = MM_MAX_CELLS / ds->d;
			nx = realloc(ds->x, cap * ds->d * sizeof(double));
			if (nx == NULL)
				goto oom;
			ds->x = nx;
			ny = realloc(ds->y, cap * sizeof(double));
			if (ny == NULL)
				goto oom;
			ds->y = ny;
			rowcap = cap;
		}

		xr = ds->x + ds->n * ds->d;
		for (size_t i = 0, k = 0; i < ncols; i++)
		{
			const char *f = c.fields[i];

			if (i == label_col)
				continue;
			if (is_blank(f))
			{
				mm_sanitize(shown, sizeof(shown), ds->feature_names[k], 60);
				mm_err(err, errlen, "row %zu (line %zu), column \"%s\": empty value "
					   "(missing values are not supported)", row, c.record_line, shown);
				goto fail;
			}
			if (parse_number(f, &xr[k]) != 0)
			{
				mm_sanitize(shown, sizeof(shown), ds->feature_names[k], 60);
				mm_err(err, errlen, "row %zu (line %zu), column \"%s\": "
					   "value is not a finite number", row, c.record_line, shown);
				goto fail;
			}
			k++;
		}

		trim(c.fields[label_col]);
		if (c.fields[label_col][0] == '\0')
		{
			mm_err(err, errlen, "row %zu (line %zu), label column \"%s\": empty value",
				   row, c.record_line, mm_sanitize(shown, sizeof(shown), label, 60));
			goto fail;
		}
		if (regression)
		{
			if (parse_number(c.fields[label_col], &ds->y[ds->n]) != 0)
			{
				mm_err(err, errlen, "row %zu (line %zu), label column \"%s\": value is not a "
									"finite number (linreg needs a numeric label)",
					   row, c.record_line, mm_sanitize(shown, sizeof(shown), label, 60));
				goto fail;
			}
		}
		else
		{
			int			id = label_id(&labels, c.fields[label_col]);

			if (id == -1)
				goto oom;
			if (id == -2)
			{
				mm_err(err, errlen, "label column \"%s\" has more than %d distinct values; for a "
									"numeric target use trainer \"linreg\"",
					   mm_sanitize(shown, sizeof(shown), label, 60), MM_MAX_CSV_CLASSES);
				goto fail;
			}
			ds->y[ds->n] = id;
		}
		ds->n++;
	}
	if (rc < 0)
		goto fail;
	if (ds->n == 0)
	{
		mm_err(err, errlen, "CSV has a header but no data rows");
		goto fail;
	}
	if (!regression)
	{
		if (labels.n < 2)
		{
			mm_err(err, errlen, "label column \"%s\" has only one distinct value; classification "
								"needs at least 2 classes",
				   mm_sanitize(shown, sizeof(shown), label, 60));
			goto fail;
		}
		if (sort_classes(ds, &labels) != 0)
			goto oom;
	}

	for (int i = 0; i < labels.n; i++)
		free(labels.names[i]);
	free(labels.names);
	free(labels.slots);
	mm_csv_free(&c);
	return 0;

oom:
	mm_err(err, errlen, "out of memory loading the CSV");
fail:
	for (int i = 0; i < labels.n; i++)
		free(labels.names[i]);
	free(labels.names);
	free(labels.slots);
	mm_csv_free(&c);
	mm_dataset_free(ds);
	return -1;
}

/* Frees the split's index arrays and statistics. */
void
mm_split_free(mm_split *sp)
{
	free(sp->train);
	free(sp->val);
	free(sp->mean);
	free(sp->std);
	memset(sp, 0, sizeof(*sp));
}

/*
 * Per-class validation quotas summing to nval where the clamps allow: floor shares, then the
 * largest remainders (lower class index first on ties), each within [1, n_c - 1].
 */
static void
class_quotas(const size_t *count, int k, size_t nval, size_t n, size_t *quota)
{
	size_t		total = 0;

	for (int c = 0; c < k; c++)
	{
		quota[c] = (size_t) ((double) count[c] * (double) nval / (double) n);
		if (quota[c] < 1)
			quota[c] = 1;
		if (quota[c] > count[c] - 1)
			quota[c] = count[c] - 1;
		total += quota[c];
	}
	while (total < nval)
	{
		int			best = -1;
		double		best_rem = -1;

		for (int c = 0; c < k; c++)
		{
			double		rem = (double) count[c] * (double) nval / (double) n - (double) quota[c];

			if (quota[c] < count[c] - 1 && rem > best_rem)
			{
				best = c;
				best_rem = rem;
			}
		}
		if (best < 0)
			break;
		quota[best]++;
		total++;
	}
}

/*
 * Splits the shuffled rows perm[0..n) into validation and training sets: the first quota[c]
 * rows of each class in shuffled order go to validation, so both sides keep the shuffle's order.
 */
static int
stratify(const mm_dataset *ds, const size_t *perm, size_t nval, mm_split *sp)
{
	int			k = ds->nclasses;
	size_t	   *count = calloc((size_t) k, sizeof(size_t));
	size_t	   *quota = calloc((size_t) k, sizeof(size_t));
	size_t		nv = 0;
	size_t		nt = 0;

	if (count == NULL || quota == NULL)
	{
		free(count);
		free(quota);
		return -1;
	}
	for (size_t i = 0; i < ds->n; i++)
		count[(int) ds->y[i]]++;
	class_quotas(count, k, nval, ds->n, quota);
	for (size_t i = 0; i < ds->n; i++)
	{
		int			c = (int) ds->y[perm[i]];

		if (quota[c] > 0)
		{
			quota[c]--;
			sp->val[nv++] = perm[i];
		}
		else
			sp->train[nt++] = perm[i];
	}
	sp->n_val = nv;
	sp->n_train = nt;
	free(count);
	free(quota);
	return 0;
}

/* The smallest class's row count (0 for regression). */
static size_t
smallest_class(const mm_dataset *ds)
{
	size_t	   *count;
	size_t		least;

	if (ds->nclasses <= 0)
		return 0;
	count = calloc((size_t) ds->nclasses, sizeof(size_t));
	if (count == NULL)
		return 0;
	for (size_t i = 0; i < ds->n; i++)
		count[(int) ds->y[i]]++;
	least = count[0];
	for (int c = 1; c < ds->nclasses; c++)
		if (count[c] < least)
			least = count[c];
	free(count);
	return least;
}

/* Shuffles rows into training and validation sets and standardises features (see dataset.h). */
int
mm_dataset_split(mm_dataset *ds, double val_fraction, uint64_t seed, int stratify_how,
				 mm_split *sp, char *err, size_t errlen)
{
	int			strat = 0;
	size_t		n = ds->n;
	size_t		d = ds->d;
	size_t	   *perm;
	size_t		nval;
	mm_rng		rng;

	memset(sp, 0, sizeof(*sp));
	if (n < 2)
		return mm_err(err, errlen, "dataset has %zu row(s); at least 2 are needed (one for "
								   "training, one for validation)", n);

	nval = (size_t) llround((double) n * val_fraction);
	if (nval < 1)
		nval = 1;
	if (nval > n - 1)
		nval = n - 1;

	perm = malloc(n * sizeof(size_t));
	sp->val = malloc(n * sizeof(size_t));	/* stratified quotas can exceed nval */
	sp->train = malloc(n * sizeof(size_t));
	sp->mean = calloc(d, sizeof(double));
	sp->std = calloc(d, sizeof(double));
	if (perm == NULL || sp->val == NULL || sp->train == NULL || sp->mean == NULL || sp->std == NULL)
	{
		free(perm);
		mm_split_free(sp);
		return mm_err(err, errlen, "out of memory splitting the dataset");
	}
	if (stratify_how != MM_STRATIFY_NO && ds->nclasses > 0)
	{
		size_t		least = smallest_class(ds);

		if (least >= 2)
			strat = 1;
		else if (stratify_how == MM_STRATIFY_YES)
		{
			free(perm);
			mm_split_free(sp);
			return mm_err(err, errlen, "split \"stratified\" needs at least 2 rows of every class "
									   "(the smallest has %zu); use split \"random\"", least);
		}
	}
	else if (stratify_how == MM_STRATIFY_YES)
	{
		free(perm);
		mm_split_free(sp);
		return mm_err(err, errlen, "split \"stratified\" needs a classification label");
	}
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	mm_rng_seed(&rng, seed, MM_STREAM_SPLIT);
	mm_rng_shuffle(&rng, perm, n);
	if (strat)
	{
		if (stratify(ds, perm, nval, sp) != 0)
		{
			free(perm);
			mm_split_free(sp);
			return mm_err(err, errlen, "out of memory splitting the dataset");
		}
	}
	else
	{
		memcpy(sp->val, perm, nval * sizeof(size_t));
		memcpy(sp->train, perm + nval, (n - nval) * sizeof(size_t));
		sp->n_val = nval;
		sp->n_train = n - nval;
	}
	sp->stratified = strat;
	free(perm);

	/* two passes over the training rows: mean, then variance */
	for (size_t r = 0; r < sp->n_train; r++)
	{
		const double *xr = ds->x + sp->train[r] * d;

		for (size_t j = 0; j < d; j++)
			sp->mean[j] += xr[j];
	}
	for (size_t j = 0; j < d; j++)
		sp->mean[j] /= (double) sp->n_train;
	for (size_t r = 0; r < sp->n_train; r++)
	{
		const double *xr = ds->x + sp->train[r] * d;

		for (size_t j = 0; j < d; j++)
		{
			double		dv = xr[j] - sp->mean[j];

			sp->std[j] += dv * dv;
		}
	}
	for (size_t j = 0; j < d; j++)
	{
		double		s = sqrt(sp->std[j] / (double) sp->n_train);

		/* constant (or numerically constant) features are left unscaled */
		if (s == 0 || s <= 1e-12 * fabs(sp->mean[j]))
			s = 1;
		sp->std[j] = s;
		if (!isfinite(sp->mean[j]) || !isfinite(s))
		{
			char		shown[96];

			mm_err(err, errlen, "feature \"%s\" has values too large to standardise",
				   mm_sanitize(shown, sizeof(shown), ds->feature_names[j], 60));
			mm_split_free(sp);
			return -1;
		}
	}

	for (size_t r = 0; r < n; r++)
	{
		double	   *xr = ds->x + r * d;

		for (size_t j = 0; j < d; j++)
		{
			xr[j] = (xr[j] - sp->mean[j]) / sp->std[j];
			if (!isfinite(xr[j]))
			{
				char		shown[96];

				mm_err(err, errlen, "feature \"%s\" has values too large to standardise",
					   mm_sanitize(shown, sizeof(shown), ds->feature_names[j], 60));
				mm_split_free(sp);
				return -1;
			}
		}
	}
	return 0;
}
