/*
 * config.h — the job config, parsed and range-checked (schema in mmtrain.h).
 */
#ifndef MM_CONFIG_H
#define MM_CONFIG_H

#include "net.h"
#include "synth.h"

#include <stdint.h>
#include <jansson.h>

typedef enum mm_trainer
{
	MM_TRAINER_LOGREG,
	MM_TRAINER_MLP,
	MM_TRAINER_LINREG,
	MM_TRAINER_NOOP
} mm_trainer;

typedef struct mm_config
{
	mm_trainer	trainer;
	int			has_dataset;
	const char *url;			/* borrowed from the JSON; NULL for synthetic */
	const char *label;
	mm_synth_spec synth;		/* kind MM_SYNTH_NONE for a URL */
	int			epochs;
	double		learning_rate;
	int			batch_size;
	uint64_t	seed;
	double		validation_split;
	int			nhidden;
	int			hidden[MM_MAX_HIDDEN];
	mm_activation activation;
	double		l2;
} mm_config;

/* Fill cfg with defaults and the values in config; -1 with a message naming the field. */
int			mm_config_parse(const json_t *config, mm_config *cfg, char *err, size_t errlen);

const char *mm_trainer_name(mm_trainer t);

#endif							/* MM_CONFIG_H */
