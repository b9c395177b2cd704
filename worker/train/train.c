/*
 * train.c — mm_train_run: config -> dataset -> split -> network -> fit
 * (fit.c) -> result JSON. The pieces live in config.c, fetch.c, csv.c,
 * dataset.c, synth.c, net.c and fit.c; this file only sequences them and
 * owns the result format (documented in mmtrain.h).
 */
#include "mmtrain.h"
#include "config.h"
#include "dataset.h"
#include "fetch.h"
#include "fit.h"
#include "net.h"
#include "rng.h"
#include "synth.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The job's dataset: generated, or fetched and read as CSV; 0 or -1 (err). */
static int
load_dataset(const mm_config *cfg, const mm_limits *lim, mm_dataset *ds,
			 char *err, size_t errlen)
{
	char	   *data;
	size_t		len;
	int			rc;

	if (cfg->synth.kind != MM_SYNTH_NONE)
		return mm_synth_generate(&cfg->synth, ds, err, errlen);
	if (mm_fetch(cfg->url, lim, &data, &len, err, errlen) != 0)
		return -1;
	rc = mm_dataset_from_csv(data, len, cfg->label,
							 cfg->trainer == MM_TRAINER_LINREG, ds, err, errlen);
	free(data);
	return rc;
}

/*
 * The weight decay: as given, else l2 = 1/n_train for logreg and linreg (the objective of
 * scikit-learn's LogisticRegression with C = 1, and of Ridge with alpha = 1), and for mlp
 * 1e-4 per batch row, the decay of MLPClassifier's alpha = 1e-4.
 */
static double
default_l2(const mm_config *cfg, size_t n_train)
{
	size_t		b = (size_t) cfg->batch_size < n_train ? (size_t) cfg->batch_size : n_train;

	if (cfg->l2 >= 0)
		return cfg->l2;
	if (cfg->trainer == MM_TRAINER_MLP)
		return 1e-4 / (double) b;
	return 1.0 / (double) n_train;
}

/* ---------- result JSON ---------- */

/* A JSON array of n numbers; NULL when one is not finite or memory runs out. */
static json_t *
real_array(const double *v, size_t n)
{
	json_t	   *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, json_real(v[i])) != 0)
		{
			json_decref(a);
			return NULL;
		}
	return a;
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t
utf8_seq(const unsigned char *s)
{
	size_t		n;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		(n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

/* A JSON string of s; bytes that are not valid UTF-8 (JSON and jsonb need it) become '?'. */
static json_t *
text(const char *s)
{
	size_t		len = strlen(s);
	char	   *copy;
	json_t	   *j;

	j = json_string(s);
	if (j != NULL)
		return j;
	copy = malloc(len + 1);
	if (copy == NULL)
		return NULL;
	for (size_t i = 0; i < len;)
	{
		size_t		n = utf8_seq((const unsigned char *) s + i);

		if (n == 0)
		{
			copy[i++] = '?';
			continue;
		}
		memcpy(copy + i, s + i, n);
		i += n;
	}
	copy[len] = '\0';
	j = json_string(copy);
	free(copy);
	return j;
}

/* A JSON array of n strings; NULL when memory runs out. */
static json_t *
string_array(char *const *v, size_t n)
{
	json_t	   *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, text(v[i])) != 0)
		{
			json_decref(a);
			return NULL;
		}
	return a;
}

/* obj[key] = v; remembers any failure (v NULL included) in *bad. */
static void
put(json_t *obj, const char *key, json_t *v, int *bad)
{
	if (json_object_set_new(obj, key, v) != 0)
		*bad = 1;
}

/* The job's result: the model (weights, standardisation, names) and its metrics. */
static json_t *
build_result(const mm_config *cfg, const mm_net *net, const mm_dataset *ds,
			 const mm_split *sp, mm_eval tr, mm_eval v, double l2, const mm_fit_stats *st)
{
	json_t	   *res = json_object();
	json_t	   *model = json_object();
	int			bad = res == NULL || model == NULL;
	const char *output;

	if (bad)
	{
		json_decref(res);
		json_decref(model);
		return NULL;
	}
	put(res, "accuracy", ds->nclasses > 0 ? json_real(v.accuracy) : json_null(), &bad);
	put(res, "loss", json_real(v.loss), &bad);
	put(res, "train_loss", json_real(tr.loss), &bad);
	put(res, "epochs", json_integer(st->epochs), &bad);
	put(res, "stopped_epoch", json_integer(st->epochs), &bad);
	put(res, "best_epoch", json_integer(st->best_epoch), &bad);
	put(res, "stop_reason", json_string(st->stop_reason), &bad);
	put(res, "optimizer", json_string(cfg->optimizer == MM_OPT_LBFGS ? "lbfgs" :
									  cfg->optimizer == MM_OPT_ADAM ? "adam" : "sgd"), &bad);
	put(res, "l2", json_real(l2), &bad);
	put(res, "split", json_pack("{s:s, s:I, s:f}",
								"method", sp->stratified ? "stratified" : "random",
								"seed", (json_int_t) cfg->seed,
								"validation_split", cfg->validation_split), &bad);
	if (ds->nclasses > 0)
		put(res, "classes", string_array(ds->class_names, (size_t) ds->nclasses), &bad);
	else
		put(res, "r2", json_real(v.r2), &bad);
	put(res, "n_train", json_integer((json_int_t) sp->n_train), &bad);
	put(res, "n_val", json_integer((json_int_t) sp->n_val), &bad);

	output = net->head == MM_HEAD_IDENTITY ? "identity" :
		net->head == MM_HEAD_SIGMOID ? "sigmoid" : "softmax";
	put(model, "type", json_string(mm_trainer_name(cfg->trainer)), &bad);
	put(model, "output", json_string(output), &bad);
	if (cfg->trainer == MM_TRAINER_MLP)
		put(model, "activation", json_string(cfg->activation == MM_ACT_RELU ? "relu" : "tanh"),
			&bad);
	put(model, "label", text(ds->label_name), &bad);
	put(model, "feature_names", string_array(ds->feature_names, ds->d), &bad);
	put(model, "mean", real_array(sp->mean, ds->d), &bad);
	put(model, "std", real_array(sp->std, ds->d), &bad);
	if (mm_net_to_json(net, model) != 0)
		bad = 1;
	put(res, "model", model, &bad);
	if (bad)
	{
		json_decref(res);
		return NULL;
	}
	return res;
}

/* The noop trainer's trivial result. */
static int
noop_result(json_t **result, char *err, size_t errlen)
{
	json_t	   *res = json_object();
	json_t	   *model = json_object();
	int			bad = res == NULL || model == NULL;

	if (!bad)
	{
		put(model, "type", json_string("noop"), &bad);
		put(res, "accuracy", json_null(), &bad);
		put(res, "loss", json_real(0), &bad);
		put(res, "train_loss", json_real(0), &bad);
		put(res, "epochs", json_integer(0), &bad);
		put(res, "n_train", json_integer(0), &bad);
		put(res, "n_val", json_integer(0), &bad);
		put(res, "model", model, &bad);
		model = NULL;
	}
	if (bad)
	{
		json_decref(res);
		json_decref(model);
		return mm_err(err, errlen, "out of memory building the result");
	}
	*result = res;
	return 0;
}

/* Runs a job end to end: config, dataset, split, network, training, result (see mmtrain.h). */
int
mm_train_run(const json_t *config, const mm_limits *lim, mm_progress_fn cb, void *ctx,
			 json_t **result, char *err, size_t errlen)
{
	mm_config	cfg;
	mm_dataset	ds;
	mm_split	sp;
	mm_net		net;
	mm_head		head;
	mm_fit_stats st;
	double		l2;
	int			outputs;
	int			rc = -1;

	if (result == NULL)
		return mm_err(err, errlen, "internal error: result pointer is NULL");
	*result = NULL;
	if (mm_config_parse(config, &cfg, err, errlen) != 0)
		return -1;
	if (cfg.trainer == MM_TRAINER_NOOP)
		return noop_result(result, err, errlen);

	memset(&ds, 0, sizeof(ds));
	memset(&sp, 0, sizeof(sp));
	memset(&net, 0, sizeof(net));

	if (load_dataset(&cfg, lim, &ds, err, errlen) != 0)
		goto done;
	if (mm_dataset_split(&ds, cfg.validation_split, cfg.seed,
						 cfg.split == MM_SPLIT_STRATIFIED ? MM_STRATIFY_YES :
						 cfg.split == MM_SPLIT_RANDOM ? MM_STRATIFY_NO : MM_STRATIFY_AUTO,
						 &sp, err, errlen) != 0)
		goto done;

	if (ds.nclasses == 0)
	{
		head = MM_HEAD_IDENTITY;
		outputs = 1;
	}
	else if (ds.nclasses == 2)
	{
		head = MM_HEAD_SIGMOID;
		outputs = 1;
	}
	else
	{
		head = MM_HEAD_SOFTMAX;
		outputs = ds.nclasses;
	}
	if (mm_net_init(&net, (int) ds.d, cfg.hidden,
					cfg.trainer == MM_TRAINER_MLP ? cfg.nhidden : 0,
					outputs, cfg.activation, head, cfg.seed, err, errlen) != 0)
		goto done;

	l2 = default_l2(&cfg, sp.n_train);
	if (mm_fit(&cfg, l2, &net, &ds, &sp, cb, ctx, &st, err, errlen) != 0)
		goto done;

	*result = build_result(&cfg, &net, &ds, &sp,
						   mm_fit_evaluate(&net, &ds, sp.train, sp.n_train),
						   mm_fit_evaluate(&net, &ds, sp.val, sp.n_val), l2, &st);
	if (*result == NULL)
	{
		mm_err(err, errlen, "cannot build the result: out of memory or a non-finite value (lower "
							"learning_rate)");
		goto done;
	}
	rc = 0;

done:
	mm_net_free(&net);
	mm_split_free(&sp);
	mm_dataset_free(&ds);
	return rc;
}
