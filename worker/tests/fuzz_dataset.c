/*
 * fuzz_dataset.c — libFuzzer target for the dataset loader (train/dataset.c): CSV text fetched
 * from a user's URL becomes a numeric table (feature names, numbers, the label column as classes
 * or a regression target), then is split and standardised as the trainers do.  Input: the label
 * column's name up to the first newline, then the CSV text; the label name's first byte also
 * picks regression ('#') or classification.  Besides what the sanitizers catch, it checks the
 * table it gets: sizes within the limits, class indexes inside the class list, finite values.
 *
 *   make -C worker fuzz                            build (scripts/fuzz.sh runs it)
 *   worker/tests/fuzz_dataset FILE...              replay inputs
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_dataset: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t		llen = nl ? (size_t) (nl - data) : 0;
	char		label[128];
	char	   *csv;
	size_t		clen;
	int			regression;
	mm_dataset	ds;
	mm_split	sp;
	char		err[256] = "";

	if (nl == NULL || llen >= sizeof(label))
		return 0;
	regression = llen > 0 && data[0] == '#';
	memcpy(label, data + regression, llen - regression);
	label[llen - regression] = '\0';
	clen = size - llen - 1;
	csv = malloc(clen ? clen : 1);
	memcpy(csv, nl + 1, clen);
	if (mm_dataset_from_csv(csv, clen, label, regression, &ds, err, sizeof(err)) != 0)
	{
		MUST(err[0] != '\0');
		free(csv);
		return 0;
	}
	MUST(ds.n >= 1 && ds.n <= MM_MAX_ROWS && ds.d >= 1 && ds.d <= MM_MAX_FEATURES);
	MUST(ds.label_name != NULL);
	MUST(regression ? ds.nclasses == 0 : ds.nclasses >= 1 && ds.nclasses <= MM_MAX_CSV_CLASSES);
	for (size_t j = 0; j < ds.d; j++)
		MUST(ds.feature_names[j] != NULL);
	for (int k = 0; k < ds.nclasses; k++)
		MUST(ds.class_names[k] != NULL);
	for (size_t i = 0; i < ds.n; i++)
	{
		if (!regression)
			MUST(ds.y[i] >= 0 && ds.y[i] < ds.nclasses && ds.y[i] == floor(ds.y[i]));
		else
			MUST(isfinite(ds.y[i]));
		for (size_t j = 0; j < ds.d; j++)
			MUST(isfinite(ds.x[i * ds.d + j]));
	}
	/* each way of splitting (issue 18), chosen by the input so that all three get exercised */
	if (mm_dataset_split(&ds, 0.2, 7, regression ? MM_STRATIFY_NO : (int) (ds.n % 3), &sp, err,
						 sizeof(err)) == 0)
	{
		MUST(sp.n_train + sp.n_val == ds.n);
		for (size_t i = 0; i < sp.n_train; i++)
			MUST(sp.train[i] < ds.n);
		for (size_t i = 0; i < sp.n_val; i++)
			MUST(sp.val[i] < ds.n);
		for (size_t j = 0; j < ds.d; j++)
			MUST(isfinite(sp.mean[j]) && isfinite(sp.std[j]) && sp.std[j] > 0);
		mm_split_free(&sp);
	}
	else
		MUST(err[0] != '\0');
	mm_dataset_free(&ds);
	free(csv);
	return 0;
}
