/*
 * train-bench.c — scripts/bench-train.sh's driver: runs one job through mm_train_run exactly as
 * the worker's trainer does (file:// dataset, no progress callback), timing it, and writes the
 * split it trained on so that scikit-learn can fit the identical rows.
 *
 *   train-bench CONFIG_JSON FILE_ROOT SPLIT_OUT
 *
 * Prints one JSON line: {"seconds", "load_seconds", "accuracy", "r2", "epochs", "stop_reason",
 * "optimizer"}: seconds is the whole mm_train_run; load_seconds what reading the CSV and
 * splitting it take on their own (measured again after the run), so seconds - load_seconds is
 * the fit, what scikit-learn's fit() is timed on. SPLIT_OUT gets two lines, the training then
 * the validation row numbers (0-based data rows), recomputed with the library's own split from
 * the same config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "dataset.h"
#include "fetch.h"
#include "mmtrain.h"

/* Writes the split's row numbers: training on one line, validation on the next. */
static int
write_split(const json_t *config, const mm_limits *lim, const char *path)
{
	mm_config	cfg;
	mm_dataset	ds;
	mm_split	sp;
	char		err[512];
	char	   *data;
	size_t		len;
	FILE	   *f;

	if (mm_config_parse(config, &cfg, err, sizeof(err)) != 0 ||
		mm_fetch(cfg.url, lim, &data, &len, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "train-bench: %s\n", err);
		return -1;
	}
	if (mm_dataset_from_csv(data, len, cfg.label, cfg.trainer == MM_TRAINER_LINREG, &ds,
							err, sizeof(err)) != 0 ||
		mm_dataset_split(&ds, cfg.validation_split, cfg.seed,
						 cfg.split == MM_SPLIT_STRATIFIED ? MM_STRATIFY_YES :
						 cfg.split == MM_SPLIT_RANDOM ? MM_STRATIFY_NO : MM_STRATIFY_AUTO,
						 &sp, err, sizeof(err)) != 0)
	{
		free(data);
		fprintf(stderr, "train-bench: %s\n", err);
		return -1;
	}
	free(data);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	for (size_t i = 0; i < sp.n_train; i++)
		fprintf(f, "%s%zu", i ? " " : "", sp.train[i]);
	fprintf(f, "\n");
	for (size_t i = 0; i < sp.n_val; i++)
		fprintf(f, "%s%zu", i ? " " : "", sp.val[i]);
	fprintf(f, "\n");
	fclose(f);
	mm_split_free(&sp);
	mm_dataset_free(&ds);
	return 0;
}

int
main(int argc, char **argv)
{
	json_error_t jerr;
	json_t	   *config;
	json_t	   *result = NULL;
	char		err[512];
	struct timespec t0;
	struct timespec t1;
	struct timespec l0;
	struct timespec l1;
	mm_limits	lim = {0};

	if (argc != 4 || (config = json_loads(argv[1], 0, &jerr)) == NULL)
	{
		fprintf(stderr, "usage: train-bench CONFIG_JSON FILE_ROOT SPLIT_OUT\n");
		return 2;
	}
	lim.file_root = argv[2];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (mm_train_run(config, &lim, NULL, NULL, &result, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "train-bench: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	clock_gettime(CLOCK_MONOTONIC, &l0);
	if (write_split(config, &lim, argv[3]) != 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &l1);
	printf("{\"seconds\": %.6f, \"load_seconds\": %.6f, \"accuracy\": %s, \"r2\": %s, "
		   "\"epochs\": %lld, \"stop_reason\": \"%s\", \"optimizer\": \"%s\"}\n",
		   (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9,
		   (double) (l1.tv_sec - l0.tv_sec) + (double) (l1.tv_nsec - l0.tv_nsec) / 1e9,
		   json_dumps(json_object_get(result, "accuracy"), JSON_ENCODE_ANY),
		   json_object_get(result, "r2") ? json_dumps(json_object_get(result, "r2"),
													  JSON_ENCODE_ANY) : "null",
		   (long long) json_integer_value(json_object_get(result, "epochs")),
		   json_string_value(json_object_get(result, "stop_reason")),
		   json_string_value(json_object_get(result, "optimizer")));
	json_decref(result);
	json_decref(config);
	return 0;
}
