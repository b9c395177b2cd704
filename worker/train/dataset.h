/*
 * dataset.h — an in-memory table of numeric features plus a label, loaded
 * from CSV text, split into training and validation rows and standardised.
 */
#ifndef MM_DATASET_H
#define MM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define MM_MAX_ROWS 1000000
#define MM_MAX_FEATURES 1000
#define MM_MAX_CSV_COLUMNS (MM_MAX_FEATURES + 1)
#define MM_MAX_CELLS ((size_t) 50000000)	/* rows * features */
#define MM_MAX_CSV_CLASSES 1000

typedef struct mm_dataset
{
	size_t		n;				/* rows */
	size_t		d;				/* features */
	double	   *x;				/* n * d, row-major */
	double	   *y;				/* n: class index (exact small integer) or target */
	int			nclasses;		/* 0 = regression */
	char	  **class_names;	/* nclasses, in class-index order */
	char	  **feature_names;	/* d */
	char	   *label_name;
} mm_dataset;

typedef struct mm_split
{
	size_t	   *train;			/* row indices */
	size_t		n_train;
	size_t	   *val;
	size_t		n_val;
	double	   *mean;			/* d: training-split statistics */
	double	   *std;			/* d: 1 where a feature is constant */
	int			stratified;		/* 1 when every class kept its share on both sides */
} mm_split;

/* How to split: stratify when possible (classification, every class >= 2 rows), always, never. */
#define MM_STRATIFY_AUTO 0
#define MM_STRATIFY_YES 1
#define MM_STRATIFY_NO 2

/*
 * Build a dataset from CSV text with a header row. regression: the label
 * must be numeric; otherwise label values become classes (sorted).
 */
int			mm_dataset_from_csv(const char *data, size_t len, const char *label,
								int regression, mm_dataset *ds,
								char *err, size_t errlen);

/* Allocate n rows of d features (x, y, feature_names zeroed). */
int			mm_dataset_alloc(mm_dataset *ds, size_t n, size_t d);
void		mm_dataset_free(mm_dataset *ds);

/*
 * Shuffle rows into training and validation sets (round(n * val_fraction)
 * validation rows, at least one of each), then standardise every row of
 * ds->x in place with the training rows' mean and std. Stratified, each
 * class c of n_c rows puts its share of the validation rows (largest
 * remainders, at least one and at most n_c - 1) on the validation side;
 * MM_STRATIFY_YES fails when a class has fewer than 2 rows.
 */
int			mm_dataset_split(mm_dataset *ds, double val_fraction, uint64_t seed,
							 int stratify, mm_split *sp, char *err, size_t errlen);
void		mm_split_free(mm_split *sp);

#endif							/* MM_DATASET_H */
