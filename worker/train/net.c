/*
 * net.c — dense feed-forward network: init, per-sample forward/backward,
 * SGD step, export (see net.h).
 *
 * Processing one sample at a time keeps memory at one activation vector
 * per layer whatever the batch size; the batch only sets how many sample
 * gradients are summed before a step.
 */
#include "net.h"
#include "rng.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Allocates the network's layers and initialises its weights from seed; 0 or -1 (err). */
int
mm_net_init(mm_net *net, int inputs, const int *hidden, int nhidden,
			int outputs, mm_activation act, mm_head head,
			uint64_t seed, char *err, size_t errlen)
{
	size_t		np = 0;
	size_t		na = 0;
	size_t		widest = 0;
	mm_rng		rng;

	memset(net, 0, sizeof(*net));
	if (nhidden < 0 || nhidden > MM_MAX_HIDDEN)
		return mm_err(err, errlen, "hidden_layers must have at most %d layers", MM_MAX_HIDDEN);
	net->nlayers = nhidden + 1;
	net->act = act;
	net->head = head;
	net->sizes[0] = inputs;
	for (int l = 0; l < nhidden; l++)
		net->sizes[l + 1] = hidden[l];
	net->sizes[net->nlayers] = outputs;

	for (int l = 0; l < net->nlayers; l++)
	{
		size_t		nin = (size_t) net->sizes[l];
		size_t		nout = (size_t) net->sizes[l + 1];

		/* sizes are capped (4096 wide, 1000 inputs), so no overflow here */
		net->woff[l] = np;
		np += nin * nout;
		net->boff[l] = np;
		np += nout;
		net->aoff[l] = na;
		na += nout;
		if (nout > widest)
			widest = nout;
		if (nin > widest)
			widest = nin;
	}
	if (np > MM_MAX_PARAMS)
		return mm_err(err, errlen,
					  "model too large: %zu parameters (limit %zu); use fewer or smaller "
					  "hidden_layers",
					  np, MM_MAX_PARAMS);
	net->nparams = np;
	net->params = malloc(np * sizeof(double));
	net->grads = calloc(np, sizeof(double));
	net->acts = malloc(na * sizeof(double));
	net->delta = malloc(widest * sizeof(double));
	net->delta2 = malloc(widest * sizeof(double));
	if (!net->params || !net->grads || !net->acts || !net->delta || !net->delta2)
	{
		mm_net_free(net);
		return mm_err(err, errlen, "out of memory allocating a model of %zu parameters", np);
	}

	mm_rng_seed(&rng, seed, MM_STREAM_INIT);
	for (int l = 0; l < net->nlayers; l++)
	{
		size_t		nin = (size_t) net->sizes[l];
		size_t		nout = (size_t) net->sizes[l + 1];
		int			is_hidden = l < net->nlayers - 1;
		double		sd;

		if (is_hidden && act == MM_ACT_RELU)
			sd = sqrt(2.0 / (double) nin);	/* He */
		else
			sd = sqrt(2.0 / (double) (nin + nout));	/* Glorot */
		for (size_t i = 0; i < nin * nout; i++)
			net->params[net->woff[l] + i] = sd * mm_rng_normal(&rng);
		memset(net->params + net->boff[l], 0, nout * sizeof(double));
	}
	return 0;
}

/* Frees the network's parameters, gradients and scratch space. */
void
mm_net_free(mm_net *net)
{
	free(net->params);
	free(net->grads);
	free(net->acts);
	free(net->delta);
	free(net->delta2);
	memset(net, 0, sizeof(*net));
}

/*
 * w . x with eight independent partial sums, added in a fixed order: one running sum is a chain
 * of dependent additions that runs at the adder's latency, eight keep the pipeline (and SIMD
 * lanes) full. The order is fixed, so the result is still the same bit for bit on every run.
 */
static inline double
dot(const double *w, const double *x, int n)
{
	double		p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	double		s;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			p[k] += w[i + k] * x[i + k];
	s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
	for (; i < n; i++)
		s += w[i] * x[i];
	return s;
}

/* log(1 + e^z) without overflow */
static inline double
softplus(double z)
{
	return (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
}

/* Forwards one sample, and with backward adds its gradient; returns its loss (see net.h). */
double
mm_net_sample(mm_net *net, const double *x, double y, int backward, double *pred)
{
	int			L = net->nlayers;
	const double *in = x;
	double	   *z;
	double	   *delta = net->delta;
	int			k;
	double		loss;

	for (int l = 0; l < L; l++)
	{
		int			nin = net->sizes[l];
		int			nout = net->sizes[l + 1];
		const double *W = net->params + net->woff[l];
		const double *b = net->params + net->boff[l];
		double	   *out = net->acts + net->aoff[l];
		int			hidden = l < L - 1;

		for (int j = 0; j < nout; j++)
		{
			double		s = b[j] + dot(W + (size_t) j * nin, in, nin);

			if (hidden)
				s = net->act == MM_ACT_RELU ? (s > 0 ? s : 0) : tanh(s);
			out[j] = s;
		}
		in = out;
	}

	/* output head: loss, prediction and dLoss/dz for the last layer */
	z = net->acts + net->aoff[L - 1];
	k = net->sizes[L];
	switch (net->head)
	{
		case MM_HEAD_IDENTITY:
			{
				double		diff = z[0] - y;

				loss = diff * diff;
				*pred = z[0];
				delta[0] = diff;	/* gradient of diff^2 / 2 */
				break;
			}
		case MM_HEAD_SIGMOID:
			{
				double		t = y > 0.5 ? 1.0 : 0.0;
				double		p = z[0] >= 0 ? 1.0 / (1.0 + exp(-z[0]))
					: exp(z[0]) / (1.0 + exp(z[0]));

				loss = softplus(z[0]) - t * z[0];
				*pred = z[0] >= 0 ? 1 : 0;
				delta[0] = p - t;
				break;
			}
		default:
			{
				int			c = (int) y;
				int			best = 0;
				double		m = z[0];
				double		sum = 0;
				double		lse;

				for (int j = 1; j < k; j++)
					if (z[j] > m)
					{
						m = z[j];
						best = j;
					}
				for (int j = 0; j < k; j++)
					sum += exp(z[j] - m);
				lse = m + log(sum);
				loss = lse - z[c];
				*pred = best;
				for (int j = 0; j < k; j++)
					delta[j] = exp(z[j] - lse) - (j == c ? 1.0 : 0.0);
				break;
			}
	}
	if (!backward)
		return loss;

	for (int l = L - 1; l >= 0; l--)
	{
		int			nin = net->sizes[l];
		int			nout = net->sizes[l + 1];
		const double *W = net->params + net->woff[l];
		double	   *gW = net->grads + net->woff[l];
		double	   *gb = net->grads + net->boff[l];
		const double *prev_out = l > 0 ? net->acts + net->aoff[l - 1] : x;
		double	   *pd = net->delta2;

		if (l > 0)
			memset(pd, 0, (size_t) nin * sizeof(double));
		for (int j = 0; j < nout; j++)
		{
			double		dj = delta[j];
			const double *w = W + (size_t) j * nin;
			double	   *g = gW + (size_t) j * nin;

			if (dj == 0)
				continue;		/* common with relu: nothing flows back */
			gb[j] += dj;
			for (int i = 0; i < nin; i++)
				g[i] += dj * prev_out[i];
			if (l > 0)
				for (int i = 0; i < nin; i++)
					pd[i] += w[i] * dj;
		}
		if (l > 0)
		{
			/* derivative from the stored activation: relu' = a > 0, tanh' = 1 - a^2 */
			if (net->act == MM_ACT_RELU)
			{
				for (int i = 0; i < nin; i++)
					if (prev_out[i] <= 0)
						pd[i] = 0;
			}
			else
			{
				for (int i = 0; i < nin; i++)
					pd[i] *= 1.0 - prev_out[i] * prev_out[i];
			}
			net->delta2 = delta;
			net->delta = pd;
			delta = pd;
		}
	}
	return loss;
}

/* Clears the accumulated gradients before a batch. */
void
mm_net_zero_grad(mm_net *net)
{
	memset(net->grads, 0, net->nparams * sizeof(double));
}

/* One SGD step over a batch: params -= lr * (grads / batch + l2 * weights). */
void
mm_net_step(mm_net *net, double lr, double l2, size_t batch)
{
	double		scale = 1.0 / (double) batch;

	for (int l = 0; l < net->nlayers; l++)
	{
		size_t		nw = (size_t) net->sizes[l] * (size_t) net->sizes[l + 1];
		size_t		nb = (size_t) net->sizes[l + 1];
		double	   *w = net->params + net->woff[l];
		double	   *gw = net->grads + net->woff[l];
		double	   *b = net->params + net->boff[l];
		double	   *gb = net->grads + net->boff[l];

		for (size_t i = 0; i < nw; i++)
			w[i] -= lr * (gw[i] * scale + l2 * w[i]);
		for (size_t i = 0; i < nb; i++)
			b[i] -= lr * gb[i] * scale;
	}
}

/* Mean-loss gradient plus weight decay, in place (see net.h); returns the l2 penalty. */
double
mm_net_finish_grad(mm_net *net, double l2, size_t batch)
{
	double		scale = 1.0 / (double) batch;
	double		sq = 0;

	for (int l = 0; l < net->nlayers; l++)
	{
		size_t		nw = (size_t) net->sizes[l] * (size_t) net->sizes[l + 1];
		size_t		nb = (size_t) net->sizes[l + 1];
		const double *w = net->params + net->woff[l];
		double	   *gw = net->grads + net->woff[l];
		double	   *gb = net->grads + net->boff[l];

		for (size_t i = 0; i < nw; i++)
		{
			gw[i] = gw[i] * scale + l2 * w[i];
			sq += w[i] * w[i];
		}
		for (size_t i = 0; i < nb; i++)
			gb[i] *= scale;
	}
	return 0.5 * l2 * sq;
}

/* One Adam step over every parameter (see net.h). */
void
mm_net_adam(mm_net *net, double *m, double *v, long t, double lr)
{
	const double b1 = 0.9;
	const double b2 = 0.999;
	/* bias correction folded into the step size, as in Kingma & Ba's algorithm 1 */
	double		a = lr * sqrt(1.0 - pow(b2, (double) t)) / (1.0 - pow(b1, (double) t));
	double	   *p = net->params;
	const double *g = net->grads;

	for (size_t i = 0; i < net->nparams; i++)
	{
		m[i] = b1 * m[i] + (1 - b1) * g[i];
		v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
		p[i] -= a * m[i] / (sqrt(v[i]) + 1e-8);
	}
}

/* No parameter is NaN or infinite (training did not diverge). */
int
mm_net_finite(const mm_net *net)
{
	for (size_t i = 0; i < net->nparams; i++)
		if (!isfinite(net->params[i]))
			return 0;
	return 1;
}

/* Adds the weights and biases to obj as JSON arrays; -1 on failure. */
int
mm_net_to_json(const mm_net *net, json_t *obj)
{
	json_t	   *weights = json_array();
	json_t	   *biases = json_array();

	if (json_object_set_new(obj, "weights", weights) != 0 ||
		json_object_set_new(obj, "biases", biases) != 0)
		return -1;
	for (int l = 0; l < net->nlayers; l++)
	{
		int			nin = net->sizes[l];
		int			nout = net->sizes[l + 1];
		json_t	   *lw = json_array();
		json_t	   *lb = json_array();

		if (json_array_append_new(weights, lw) != 0 ||
			json_array_append_new(biases, lb) != 0)
			return -1;
		for (int j = 0; j < nout; j++)
		{
			json_t	   *row = json_array();

			if (json_array_append_new(lw, row) != 0)
				return -1;
			for (int i = 0; i < nin; i++)
			{
				double		w = net->params[net->woff[l] + (size_t) j * nin + i];

				if (json_array_append_new(row, json_real(w)) != 0)
					return -1;
			}
			if (json_array_append_new(lb, json_real(net->params[net->boff[l] + j])) != 0)
				return -1;
		}
	}
	return 0;
}
