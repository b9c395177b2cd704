/*
 * fit.h — the optimisers: full-batch L-BFGS to convergence, and mini-batch Adam or SGD with
 * early stopping on the validation loss (the choice and its defaults are in mmtrain.h).
 */
#ifndef MM_FIT_H
#define MM_FIT_H

#include "config.h"
#include "dataset.h"
#include "mmtrain.h"
#include "net.h"

/* The epoch budget when the config gives no "epochs": the stopping rules end training first. */
#define MM_FIT_DEFAULT_BUDGET 1000

typedef struct mm_eval
{
	double		loss;
	double		accuracy;		/* NAN for regression */
	double		r2;				/* NAN for classification */
} mm_eval;

typedef struct mm_fit_stats
{
	int			epochs;			/* epochs (L-BFGS iterations) run */
	int			best_epoch;		/* the epoch whose weights were kept */
	const char *stop_reason;	/* "epochs", "early_stopping" or "converged" */
} mm_fit_stats;

/* Mean loss and accuracy (or R^2) over the rows idx[0..n). */
mm_eval		mm_fit_evaluate(mm_net *net, const mm_dataset *ds, const size_t *idx, size_t n);

/* Trains net with cfg's optimizer and weight decay l2, calling cb after each epoch; 0 or -1. */
int			mm_fit(const mm_config *cfg, double l2, mm_net *net, const mm_dataset *ds,
				   const mm_split *sp, mm_progress_fn cb, void *ctx, mm_fit_stats *st,
				   char *err, size_t errlen);

#endif							/* MM_FIT_H */
