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

typedef enum mm_optimizer
{
	MM_OPT_LBFGS,				/* full batch, to convergence: the linear models' default */
	MM_OPT_ADAM,				/* mini-batch, early stopping: mlp's default */
	MM_OPT_SGD					/* mini-batch, plain steps: what every trainer did before */
} mm_optimizer;

typedef enum mm_split_method
{
	MM_SPLIT_AUTO,				/* stratified for classification when every class has 2 rows */
	MM_SPLIT_STRATIFIED,
	MM_SPLIT_RANDOM
} mm_split_method;

typedef struct mm_config
{
	mm_trainer	trainer;
	int			has_dataset;
	const char *url;			/* borrowed from the JSON; NULL for synthetic */
	const char *label;
	mm_synth_spec synth;		/* kind MM_SYNTH_NONE for a URL */
	int			epochs;			/* 0 = not given: a budget with a stopping rule */
	double		learning_rate;	/* resolved for the optimizer; unused by lbfgs */
	int			batch_size;
	uint64_t	seed;
	double		validation_split;
	int			nhidden;
	int			hidden[MM_MAX_HIDDEN];
	mm_activation activation;
	double		l2;				/* < 0 = not given: the trainer's default (mmtrain.h) */
	mm_optimizer optimizer;		/* resolved: never "auto" after parsing */
	int			early_stopping;	/* resolved: 1 stops on validation loss (adam, sgd) */
	int			patience;
	mm_split_method split;
} mm_config;

/* Fill cfg with defaults and the values in config; -1 with a message naming the field. */
int			mm_config_parse(const json_t *config, mm_config *cfg, char *err, size_t errlen);

const char *mm_trainer_name(mm_trainer t);

#endif							/* MM_CONFIG_H */
