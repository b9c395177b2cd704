/*
 * fuzz_config.c — libFuzzer target for the job config (train/config.c): the input is the config's
 * JSON text as a user submits it; the worker parses it with Jansson and checks it with
 * mm_config_validate before forking (src/task.c), and the trainer with mm_config_parse.  Besides
 * what the sanitizers catch, it checks what the parser promises: a refusal has a message, and an
 * accepted config is within the limits the trainers rely on.
 *
 *   make -C worker fuzz                            build (scripts/fuzz.sh runs it)
 *   worker/tests/fuzz_config FILE...               replay inputs
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "mmtrain.h"

/* Stops the run with what broke (libFuzzer saves the input). */
#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_config: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t	   *j = json_loadb((const char *) data, size, 0, &je);
	mm_config	cfg;
	char		err[256] = "";
	int			rc;

	if (j == NULL)
		return 0;
	rc = mm_config_parse(j, &cfg, err, sizeof(err));
	MUST((rc == 0) == (mm_config_validate(j, err, sizeof(err)) == 0));
	/* the strict check at submit (issue 21) never accepts what a worker would refuse */
	MUST(mm_config_check(j, err, sizeof(err)) != 0 || rc == 0);
	if (rc != 0)
		MUST(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	else
	{
		MUST(mm_trainer_name(cfg.trainer) != NULL);
		MUST(cfg.epochs >= 0 && cfg.batch_size > 0);	/* 0: no epochs given (a budget, issue 18) */
		MUST(cfg.learning_rate > 0);
		MUST(cfg.validation_split >= 0 && cfg.validation_split < 1);
		MUST(cfg.nhidden >= 0 && cfg.nhidden <= MM_MAX_HIDDEN);
		for (int i = 0; i < cfg.nhidden; i++)
			MUST(cfg.hidden[i] > 0);
		MUST((cfg.url != NULL) != (cfg.synth.kind != MM_SYNTH_NONE) || !cfg.has_dataset);
	}
	json_decref(j);
	return 0;
}
