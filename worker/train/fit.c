/*
 * fit.c — the training loops (see fit.h): L-BFGS on the full training set for the convex
 * models, mini-batch Adam or SGD with early stopping for the rest.
 *
 * Every sum runs in one fixed order on one thread, so a config gives the same result bit for
 * bit on the same binary.
 */
#include "fit.h"
#include "rng.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LBFGS_M 10				/* correction pairs kept, as scipy's L-BFGS-B */
#define LBFGS_GTOL 1e-4			/* max |gradient| of the mean objective: sklearn's tol */
#define LBFGS_FTOL 2.2e-9		/* relative decrease of the objective: scipy's factr 1e7 */
#define LBFGS_MAX_TRIES 40		/* line search function evaluations per iteration */
#define ES_MIN_DELTA 1e-4		/* an improvement smaller than this (relative past 1) is none */

/* Mean loss and accuracy (or R^2) over the rows idx[0..n). */
mm_eval
mm_fit_evaluate(mm_net *net, const mm_dataset *ds, const size_t *idx, size_t n)
{
	mm_eval		e = {0, NAN, NAN};
	size_t		correct = 0;
	double		ymean = 0;
	double		ss_res = 0;
	double		ss_tot = 0;

	for (size_t r = 0; r < n; r++)
	{
		double		y = ds->y[idx[r]];
		double		pred;

		e.loss += mm_net_sample(net, ds->x + idx[r] * ds->d, y, 0, &pred);
		if (ds->nclasses > 0)
			correct += pred == y;
		else
		{
			ss_res += (pred - y) * (pred - y);
			ymean += y;
		}
	}
	e.loss /= (double) n;
	if (ds->nclasses > 0)
	{
		e.accuracy = (double) correct / (double) n;
		return e;
	}
	ymean /= (double) n;
	for (size_t r = 0; r < n; r++)
	{
		double		dy = ds->y[idx[r]] - ymean;

		ss_tot += dy * dy;
	}
	/* a constant target: perfect if matched exactly, else no better than the mean */
	e.r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : (ss_res == 0 ? 1.0 : 0.0);
	return e;
}

/* The shared end of an epoch: the finite check, the validation pass and the callback. */
static int
end_epoch(const mm_config *cfg, mm_net *net, const mm_dataset *ds, const mm_split *sp,
		  int epoch, int budget, double train_loss, double l2, mm_progress_fn cb, void *ctx,
		  mm_eval *v, char *err, size_t errlen)
{
	*v = mm_fit_evaluate(net, ds, sp->val, sp->n_val);
	if (!isfinite(train_loss) || !isfinite(v->loss))
		return mm_err(err, errlen,
					  "training diverged: lower learning_rate%s (loss became non-finite in "
					  "epoch %d with learning_rate %g, l2 %g)",
					  l2 > 0 ? " or l2" : "", epoch, cfg->learning_rate, l2);
	if (cb != NULL && cb(ctx, epoch, budget, train_loss, v->loss, v->accuracy) != 0)
		return mm_err(err, errlen, "aborted by caller after epoch %d of %d", epoch, budget);
	return 0;
}

/* ---------- mini-batch: Adam or SGD, early stopping ---------- */

/* Epochs of shuffled mini-batches; with early stopping, keeps the best validation weights. */
static int
fit_minibatch(const mm_config *cfg, double l2, int budget, mm_net *net, const mm_dataset *ds,
			  const mm_split *sp, mm_progress_fn cb, void *ctx, mm_fit_stats *st,
			  char *err, size_t errlen)
{
	size_t		n = sp->n_train;
	size_t		np = net->nparams;
	size_t		bs = (size_t) cfg->batch_size;
	int			adam = cfg->optimizer == MM_OPT_ADAM;
	size_t	   *order = malloc(n * sizeof(size_t));
	double	   *m = adam ? calloc(np, sizeof(double)) : NULL;
	double	   *v2 = adam ? calloc(np, sizeof(double)) : NULL;
	double	   *best = cfg->early_stopping ? malloc(np * sizeof(double)) : NULL;
	double		best_loss = INFINITY;
	int			wait = 0;
	long		t = 0;
	int			rc = -1;
	mm_rng		rng;

	if (order == NULL || (adam && (m == NULL || v2 == NULL)) ||
		(cfg->early_stopping && best == NULL))
	{
		mm_err(err, errlen, "out of memory");
		goto done;
	}
	memcpy(order, sp->train, n * sizeof(size_t));
	mm_rng_seed(&rng, cfg->seed, MM_STREAM_SHUFFLE);
	st->stop_reason = "epochs";
	for (int epoch = 1; epoch <= budget; epoch++)
	{
		double		train_loss = 0;
		mm_eval		v;

		mm_rng_shuffle(&rng, order, n);
		for (size_t start = 0; start < n; start += bs)
		{
			size_t		end = start + bs < n ? start + bs : n;
			double		pred;

			mm_net_zero_grad(net);
			for (size_t i = start; i < end; i++)
				train_loss += mm_net_sample(net, ds->x + order[i] * ds->d, ds->y[order[i]], 1,
											&pred);
			if (adam)
			{
				mm_net_finish_grad(net, l2, end - start);
				mm_net_adam(net, m, v2, ++t, cfg->learning_rate);
			}
			else
				mm_net_step(net, cfg->learning_rate, l2, end - start);
		}
		train_loss /= (double) n;
		if (end_epoch(cfg, net, ds, sp, epoch, budget, train_loss, l2, cb, ctx, &v,
					  err, errlen) != 0)
			goto done;
		st->epochs = epoch;
		if (!cfg->early_stopping)
		{
			st->best_epoch = epoch;
			continue;
		}
		if (v.loss < best_loss - ES_MIN_DELTA * fmax(1.0, fabs(best_loss)))
			wait = 0;
		else
			wait++;
		if (v.loss < best_loss)
		{
			best_loss = v.loss;
			memcpy(best, net->params, np * sizeof(double));
			st->best_epoch = epoch;
		}
		if (wait >= cfg->patience)
		{
			st->stop_reason = "early_stopping";
			break;
		}
	}
	if (cfg->early_stopping && st->epochs > 0)
		memcpy(net->params, best, np * sizeof(double));	/* whatever stopped it */
	rc = 0;
done:
	free(order);
	free(m);
	free(v2);
	free(best);
	return rc;
}

/* ---------- full batch: L-BFGS ---------- */

/*
 * The objective at net->params: mean loss over the training rows plus l2/2 |W|^2, its gradient
 * left in net->grads. Squared error is halved so that value and gradient match (net.c's
 * gradient is that of diff^2 / 2); *data gets the mean loss as the result reports it.
 */
static double
objective(mm_net *net, const mm_dataset *ds, const mm_split *sp, double l2, double *data)
{
	double		sum = 0;
	double		pred;
	double		pen;

	mm_net_zero_grad(net);
	for (size_t r = 0; r < sp->n_train; r++)
		sum += mm_net_sample(net, ds->x + sp->train[r] * ds->d, ds->y[sp->train[r]], 1, &pred);
	pen = mm_net_finish_grad(net, l2, sp->n_train);
	*data = sum / (double) sp->n_train;
	return (net->head == MM_HEAD_IDENTITY ? 0.5 : 1.0) * *data + pen;
}

/* a . b over n values */
static double
dot(const double *a, const double *b, size_t n)
{
	double		s = 0;

	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/*
 * The search direction -H g from the kept pairs (Nocedal & Wright, algorithm 7.4). S and Y
 * hold k pairs in a ring whose newest is at newest; H0 = gamma I with gamma = s'y / y'y.
 */
static void
direction(const double *g, double *d, size_t np, const double *S, const double *Y,
		  const double *rho, double *alpha, int k, int newest)
{
	double		gamma = 1.0;

	memcpy(d, g, np * sizeof(double));
	for (int j = 0; j < k; j++)
	{
		int			i = (newest - j + LBFGS_M) % LBFGS_M;
		const double *y = Y + (size_t) i * np;

		alpha[i] = rho[i] * dot(S + (size_t) i * np, d, np);
		for (size_t p = 0; p < np; p++)
			d[p] -= alpha[i] * y[p];
	}
	if (k > 0)
	{
		const double *y = Y + (size_t) newest * np;

		gamma = 1.0 / (rho[newest] * dot(y, y, np));
	}
	else
		gamma = 1.0 / fmax(1.0, sqrt(dot(g, g, np)));	/* a first step of length at most 1 */
	for (size_t p = 0; p < np; p++)
		d[p] *= gamma;
	for (int j = k - 1; j >= 0; j--)
	{
		int			i = (newest - j + LBFGS_M) % LBFGS_M;
		const double *s = S + (size_t) i * np;
		double		beta = rho[i] * dot(Y + (size_t) i * np, d, np);

		for (size_t p = 0; p < np; p++)
			d[p] += s[p] * (alpha[i] - beta);
	}
	for (size_t p = 0; p < np; p++)
		d[p] = -d[p];
}

/* Largest |v[i]|. */
static double
max_abs(const double *v, size_t n)
{
	double		m = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs(v[i]) > m)
			m = fabs(v[i]);
	return m;
}

/*
 * L-BFGS on the whole training set until the gradient or the decrease is below tolerance, one
 * iteration counting as one epoch; a backtracking line search (Armijo, quadratic steps).
 */
static int
fit_lbfgs(const mm_config *cfg, double l2, int budget, mm_net *net, const mm_dataset *ds,
		  const mm_split *sp, mm_progress_fn cb, void *ctx, mm_fit_stats *st,
		  char *err, size_t errlen)
{
	size_t		np = net->nparams;
	double	   *mem = malloc((2 * LBFGS_M + 3) * np * sizeof(double));
	double	   *S = mem;
	double	   *Y = S + LBFGS_M * np;
	double	   *x0 = Y + LBFGS_M * np;
	double	   *g0 = x0 + np;
	double	   *d = g0 + np;
	double		rho[LBFGS_M];
	double		alpha[LBFGS_M];
	int			k = 0;
	int			newest = LBFGS_M - 1;
	double		data;
	double		f;

	if (mem == NULL)
		return mm_err(err, errlen, "out of memory for L-BFGS (%zu parameters; use optimizer "
								   "\"adam\")", np);
	st->stop_reason = "epochs";
	f = objective(net, ds, sp, l2, &data);
	for (int it = 1; it <= budget; it++)
	{
		double		f0 = f;
		double		gd;
		double		step = 1.0;
		int			tries;
		mm_eval		v;

		if (max_abs(net->grads, np) <= LBFGS_GTOL)
		{
			st->stop_reason = "converged";
			break;
		}
		direction(net->grads, d, np, S, Y, rho, alpha, k, newest);
		gd = dot(net->grads, d, np);
		if (!(gd < 0))
		{
			/* not a descent direction (rounding): forget the history */
			k = 0;
			direction(net->grads, d, np, S, Y, rho, alpha, 0, newest);
			gd = dot(net->grads, d, np);
		}
		memcpy(x0, net->params, np * sizeof(double));
		memcpy(g0, net->grads, np * sizeof(double));
		for (tries = 0; tries < LBFGS_MAX_TRIES; tries++)
		{
			for (size_t p = 0; p < np; p++)
				net->params[p] = x0[p] + step * d[p];
			f = objective(net, ds, sp, l2, &data);
			if (isfinite(f) && f <= f0 + 1e-4 * step * gd)
				break;
			/* minimum of the quadratic through f0, gd and f, kept within [0.1, 0.5] x step */
			{
				double		q = isfinite(f) ? -gd * step * step / (2 * (f - f0 - gd * step)) : 0;

				step = fmin(fmax(q, 0.1 * step), 0.5 * step);
			}
		}
		if (tries == LBFGS_MAX_TRIES)
		{
			/* no decrease along the direction: as good as rounding allows */
			memcpy(net->params, x0, np * sizeof(double));
			memcpy(net->grads, g0, np * sizeof(double));
			f = objective(net, ds, sp, l2, &data);
			st->stop_reason = "converged";
			break;
		}
		/* the new pair s = x - x0, y = g - g0, kept when the curvature is positive */
		{
			int			slot = (newest + 1) % LBFGS_M;
			double	   *s = S + (size_t) slot * np;
			double	   *y = Y + (size_t) slot * np;
			double		sy;

			for (size_t p = 0; p < np; p++)
			{
				s[p] = net->params[p] - x0[p];
				y[p] = net->grads[p] - g0[p];
			}
			sy = dot(s, y, np);
			if (sy > 1e-10 * dot(y, y, np))
			{
				rho[slot] = 1.0 / sy;
				newest = slot;
				if (k < LBFGS_M)
					k++;
			}
		}
		if (end_epoch(cfg, net, ds, sp, it, budget, data, l2, cb, ctx, &v, err, errlen) != 0)
		{
			free(mem);
			return -1;
		}
		st->epochs = it;
		st->best_epoch = it;
		if (f0 - f <= LBFGS_FTOL * fmax(fmax(fabs(f0), fabs(f)), 1.0))
		{
			st->stop_reason = "converged";
			break;
		}
	}
	free(mem);
	return 0;
}

/* Trains with the configured optimizer (see fit.h). */
int
mm_fit(const mm_config *cfg, double l2, mm_net *net, const mm_dataset *ds, const mm_split *sp,
	   mm_progress_fn cb, void *ctx, mm_fit_stats *st, char *err, size_t errlen)
{
	int			budget = cfg->epochs > 0 ? cfg->epochs : MM_FIT_DEFAULT_BUDGET;
	int			rc;

	memset(st, 0, sizeof(*st));
	if (cfg->optimizer == MM_OPT_LBFGS)
		rc = fit_lbfgs(cfg, l2, budget, net, ds, sp, cb, ctx, st, err, errlen);
	else
		rc = fit_minibatch(cfg, l2, budget, net, ds, sp, cb, ctx, st, err, errlen);
	if (rc != 0)
		return -1;
	if (!mm_net_finite(net))
		return mm_err(err, errlen, "training diverged: lower learning_rate (weights became "
								   "non-finite)");
	return 0;
}
