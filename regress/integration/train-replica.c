/*
 * train-replica.c — runs one built-in training job as a node's worker would (regress/integration/
 * determinism.sh builds it at several optimisation levels): the job config on argv[1], the job id
 * on argv[2] (the seed when the config has none, as task_default_seed gives it); prints
 * "epochs loss accuracy" with every digit a double holds, accuracy "null" for regression.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "mmtrain.h"

int
main(int argc, char **argv)
{
	json_error_t jerr;
	json_t	   *config;
	json_t	   *result = NULL;
	char		err[512];
	const json_t *acc;

	if (argc != 3 || (config = json_loads(argv[1], 0, &jerr)) == NULL)
	{
		fprintf(stderr, "usage: train-replica CONFIG_JSON JOB_ID\n");
		return 2;
	}
	if (json_object_get(config, "seed") == NULL)
		json_object_set_new(config, "seed", json_integer(atoll(argv[2])));
	if (mm_train_run(config, NULL, NULL, NULL, &result, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "train-replica: %s\n", err);
		return 1;
	}
	acc = json_object_get(result, "accuracy");
	printf("%lld %.17g ", (long long) json_integer_value(json_object_get(result, "epochs")),
		   json_number_value(json_object_get(result, "loss")));
	if (json_is_number(acc))
		printf("%.17g\n", json_number_value(acc));
	else
		printf("null\n");
	json_decref(result);
	json_decref(config);
	return 0;
}
