/*
 * config.c — parse and validate a job config (schema in mmtrain.h).
 *
 * Each message names the field as the user wrote it ("dataset.n",
 * "hidden_layers[2]") and the allowed values. Unknown keys are ignored for
 * forward compatibility; a JSON null means "use the default".
 */
#include "config.h"
#include "dataset.h"
#include "mmtrain.h"
#include "util.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define MAX_URL_LEN 4096
#define MAX_LABEL_LEN 1024

/* The trainer's name as a job config spells it. */
const char *
mm_trainer_name(mm_trainer t)
{
	switch (t)
	{
		case MM_TRAINER_LOGREG:
			return "logreg";
		case MM_TRAINER_MLP:
			return "mlp";
		case MM_TRAINER_LINREG:
			return "linreg";
		case MM_TRAINER_NOOP:
			return "noop";
	}
	return "?";
}

/* The member, or NULL when absent or null. */
static const json_t *
member(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/* An integer value; a real with an integral value counts (jsonb may turn 50 into 50.0). */
static int
as_integer(const json_t *v, long long *out)
{
	if (json_is_integer(v))
	{
		*out = (long long) json_integer_value(v);
		return 0;
	}
	if (json_is_real(v))
	{
		double		r = json_real_value(v);

		if (r == floor(r) && fabs(r) <= 9007199254740992.0)
		{
			*out = (long long) r;
			return 0;
		}
	}
	return -1;
}

/* 1 = set, 0 = absent (keep default), -1 = error */
static int
get_int(const json_t *obj, const char *key, const char *field, long long lo, long long hi,
		long long *out, char *err, size_t errlen)
{
	const json_t *v = member(obj, key);
	long long	x;

	if (v == NULL)
		return 0;
	if (as_integer(v, &x) != 0)
		return mm_err(err, errlen, "%s must be an integer from %lld to %lld", field, lo, hi);
	if (x < lo || x > hi)
		return mm_err(err, errlen, "%s must be an integer from %lld to %lld (got %lld)",
					  field, lo, hi, x);
	*out = x;
	return 1;
}

/* range: lo < x (lo_open) or lo <= x; x < hi (hi_open) or x <= hi; hi = INFINITY for none */
static int
get_number(const json_t *obj, const char *key, const char *field,
		   double lo, int lo_open, double hi, int hi_open, const char *range,
		   double *out, char *err, size_t errlen)
{
	const json_t *v = member(obj, key);
	double		x;

	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return mm_err(err, errlen, "%s must be a number %s", field, range);
	x = json_number_value(v);
	if ((lo_open ? !(x > lo) : !(x >= lo)) || (hi_open ? !(x < hi) : !(x <= hi)))
		return mm_err(err, errlen, "%s must be a number %s (got %g)", field, range, x);
	*out = x;
	return 1;
}

/* Reads an optional seed (a non-negative integer) at obj[key]: 1 read, 0 absent, -1 bad (err). */
static int
get_seed(const json_t *obj, const char *key, const char *field, uint64_t *out,
		 char *err, size_t errlen)
{
	const json_t *v = member(obj, key);
	long long	x;

	if (v == NULL)
		return 0;
	if (as_integer(v, &x) != 0)
		return mm_err(err, errlen, "%s must be an integer", field);
	*out = (uint64_t) x;
	return 1;
}

/* Checks a dataset URL's length, characters and scheme (file, http, https); 0 or -1 (err). */
static int
check_url(const char *url, char *err, size_t errlen)
{
	size_t		len = strlen(url);

	if (len == 0)
		return mm_err(err, errlen, "dataset.url must not be empty");
	if (len > MAX_URL_LEN)
		return mm_err(err, errlen, "dataset.url is longer than %d characters", MAX_URL_LEN);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7f)
			return mm_err(err, errlen, "dataset.url contains spaces or control characters "
									   "(percent-encode them)");
	if (strncasecmp(url, "file://", 7) != 0 &&
		strncasecmp(url, "http://", 7) != 0 &&
		strncasecmp(url, "https://", 8) != 0)
		return mm_err(err, errlen, "dataset.url must start with file://, http:// or https://");
	return 0;
}

/* Reads "dataset": a URL with its label column, or a synthetic generator's parameters. */
static int
parse_dataset(const json_t *ds, mm_config *cfg, char *err, size_t errlen)
{
	const json_t *url = member(ds, "url");
	const json_t *syn = member(ds, "synthetic");
	const json_t *label = member(ds, "label");
	mm_synth_spec *s = &cfg->synth;
	long long	x;
	int			rc;

	if (!json_is_object(ds))
		return mm_err(err, errlen, "dataset must be an object: {\"url\": ..., \"label\": ...} or "
								   "{\"synthetic\": ...}");
	if (url != NULL && syn != NULL)
		return mm_err(err, errlen, "dataset.url and dataset.synthetic are mutually exclusive");
	if (url == NULL && syn == NULL)
		return mm_err(err, errlen, "dataset needs \"url\" (with \"label\") or \"synthetic\"");

	if (url != NULL)
	{
		static const char *const synth_only[] = {"n", "classes", "features", "noise", "seed"};

		if (!json_is_string(url))
			return mm_err(err, errlen, "dataset.url must be a string");
		if (check_url(json_string_value(url), err, errlen) != 0)
			return -1;
		if (label == NULL)
			return mm_err(err, errlen, "dataset.label is required with dataset.url: the name of "
									   "the label column");
		if (!json_is_string(label))
			return mm_err(err, errlen, "dataset.label must be a string (a column name)");
		if (json_string_length(label) == 0 || json_string_length(label) > MAX_LABEL_LEN)
			return mm_err(err, errlen, "dataset.label must be 1 to %d characters", MAX_LABEL_LEN);
		if (strlen(json_string_value(label)) != json_string_length(label))
			return mm_err(err, errlen, "dataset.label must not contain NUL characters");
		for (size_t i = 0; i < sizeof(synth_only) / sizeof(synth_only[0]); i++)
			if (member(ds, synth_only[i]) != NULL)
				return mm_err(err, errlen, "dataset.%s applies only to synthetic datasets",
							  synth_only[i]);
		cfg->url = json_string_value(url);
		cfg->label = json_string_value(label);
		s->kind = MM_SYNTH_NONE;
		return 0;
	}

	if (!json_is_string(syn))
		return mm_err(err, errlen,
					  "dataset.synthetic must be one of: blobs, moons, spirals, linear");
	if (strcmp(json_string_value(syn), "blobs") == 0)
		s->kind = MM_SYNTH_BLOBS;
	else if (strcmp(json_string_value(syn), "moons") == 0)
		s->kind = MM_SYNTH_MOONS;
	else if (strcmp(json_string_value(syn), "spirals") == 0)
		s->kind = MM_SYNTH_SPIRALS;
	else if (strcmp(json_string_value(syn), "linear") == 0)
		s->kind = MM_SYNTH_LINEAR;
	else
		return mm_err(err, errlen,
					  "dataset.synthetic must be one of: blobs, moons, spirals, linear");
	if (label != NULL)
		return mm_err(err, errlen, "dataset.label applies only to CSV datasets (dataset.url)");

	s->n = 600;
	s->classes = (s->kind == MM_SYNTH_BLOBS || s->kind == MM_SYNTH_SPIRALS) ? 3 : 2;
	s->features = 2;
	s->noise = s->kind == MM_SYNTH_BLOBS ? 1.0 : 0.1;
	s->seed = 1;

	if ((rc = get_int(ds, "n", "dataset.n", 2, MM_MAX_ROWS, &x, err, errlen)) < 0)
		return -1;
	if (rc)
		s->n = (size_t) x;
	if ((rc = get_int(ds, "classes", "dataset.classes", 2, 100, &x, err, errlen)) < 0)
		return -1;
	if (rc)
	{
		if (s->kind != MM_SYNTH_BLOBS && s->kind != MM_SYNTH_SPIRALS)
			return mm_err(err, errlen, "dataset.classes applies only to blobs and spirals (moons "
									   "has 2 classes, linear is regression)");
		s->classes = (int) x;
	}
	if ((rc = get_int(ds, "features", "dataset.features", 1, MM_MAX_FEATURES, &x, err, errlen)) < 0)
		return -1;
	if (rc)
	{
		if (s->kind != MM_SYNTH_BLOBS && s->kind != MM_SYNTH_LINEAR)
			return mm_err(err, errlen, "dataset.features applies only to blobs and linear (moons "
									   "and spirals have 2 features)");
		s->features = (int) x;
	}
	if (get_number(ds, "noise", "dataset.noise", 0, 0, 100, 0, ">= 0 and <= 100",
				   &s->noise, err, errlen) < 0)
		return -1;
	if (get_seed(ds, "seed", "dataset.seed", &s->seed, err, errlen) < 0)
		return -1;
	if (s->n * (size_t) s->features > MM_MAX_CELLS)
		return mm_err(err, errlen, "dataset.n * dataset.features must be at most %zu (got %zu)",
					  MM_MAX_CELLS, s->n * (size_t) s->features);
	return 0;
}

/* Reads "hidden_layers": 1 to MM_MAX_HIDDEN layer sizes. */
static int
parse_hidden(const json_t *v, mm_config *cfg, char *err, size_t errlen)
{
	size_t		n;

	if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > MM_MAX_HIDDEN)
		return mm_err(err, errlen,
					  "hidden_layers must be an array of 1 to %d layer sizes, e.g. [16]",
					  MM_MAX_HIDDEN);
	n = json_array_size(v);
	for (size_t i = 0; i < n; i++)
	{
		long long	x;

		if (as_integer(json_array_get(v, i), &x) != 0 || x < 1 || x > MM_MAX_WIDTH)
			return mm_err(err, errlen, "hidden_layers[%zu] must be an integer from 1 to %d",
						  i, MM_MAX_WIDTH);
		cfg->hidden[i] = (int) x;
	}
	cfg->nhidden = (int) n;
	return 0;
}

/*
 * Reads the keys of issue 18 (optimizer, early_stopping, patience, split) and resolves the
 * defaults that depend on the trainer: lbfgs for the linear models, adam for mlp; early
 * stopping when epochs is not given; the optimizer's learning rate.
 */
static int
parse_training(const json_t *config, mm_config *cfg, char *err, size_t errlen)
{
	const json_t *v;
	long long	x;
	int			rc;

	cfg->optimizer = cfg->trainer == MM_TRAINER_MLP ? MM_OPT_ADAM : MM_OPT_LBFGS;
	if ((v = member(config, "optimizer")) != NULL)
	{
		const char *o = json_string_value(v);

		if (o != NULL && strcmp(o, "lbfgs") == 0)
			cfg->optimizer = MM_OPT_LBFGS;
		else if (o != NULL && strcmp(o, "adam") == 0)
			cfg->optimizer = MM_OPT_ADAM;
		else if (o != NULL && strcmp(o, "sgd") == 0)
			cfg->optimizer = MM_OPT_SGD;
		else if (o == NULL || strcmp(o, "auto") != 0)
			return mm_err(err, errlen, "optimizer must be \"auto\", \"lbfgs\", \"adam\" or "
									   "\"sgd\"");
	}
	if (cfg->learning_rate == 0)
		cfg->learning_rate = cfg->optimizer == MM_OPT_SGD ? 0.1 : 0.001;
	if ((v = member(config, "early_stopping")) != NULL)
	{
		if (!json_is_boolean(v))
			return mm_err(err, errlen, "early_stopping must be true or false");
		cfg->early_stopping = json_is_true(v);
	}
	if (cfg->early_stopping < 0)
		cfg->early_stopping = cfg->epochs == 0;
	if ((rc = get_int(config, "patience", "patience", 1, 1000, &x, err, errlen)) < 0)
		return -1;
	if (rc)
		cfg->patience = (int) x;
	if ((v = member(config, "split")) != NULL)
	{
		const char *m = json_string_value(v);

		if (m != NULL && strcmp(m, "auto") == 0)
			cfg->split = MM_SPLIT_AUTO;
		else if (m != NULL && strcmp(m, "stratified") == 0)
			cfg->split = MM_SPLIT_STRATIFIED;
		else if (m != NULL && strcmp(m, "random") == 0)
			cfg->split = MM_SPLIT_RANDOM;
		else
			return mm_err(err, errlen, "split must be \"auto\", \"stratified\" or \"random\"");
		if (cfg->split == MM_SPLIT_STRATIFIED && cfg->trainer == MM_TRAINER_LINREG)
			return mm_err(err, errlen, "split \"stratified\" needs classes: linreg has a numeric "
									   "target (use \"random\")");
	}
	return 0;
}

/* Reads and range-checks a whole job config into cfg, defaults filled in; 0 or -1 (err). */
int
mm_config_parse(const json_t *config, mm_config *cfg, char *err, size_t errlen)
{
	const json_t *v;
	long long	x;
	int			rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->trainer = MM_TRAINER_LOGREG;
	cfg->epochs = 0;
	cfg->learning_rate = 0;
	cfg->batch_size = 32;
	cfg->seed = 42;
	cfg->validation_split = 0.2;
	cfg->nhidden = 1;
	cfg->hidden[0] = 16;
	cfg->activation = MM_ACT_RELU;
	cfg->l2 = -1;
	cfg->early_stopping = -1;
	cfg->patience = 10;

	if (!json_is_object(config))
		return mm_err(err, errlen, "config must be a JSON object");

	if ((v = member(config, "trainer")) != NULL)
	{
		const char *t = json_string_value(v);

		if (t != NULL && strcmp(t, "logreg") == 0)
			cfg->trainer = MM_TRAINER_LOGREG;
		else if (t != NULL && strcmp(t, "mlp") == 0)
			cfg->trainer = MM_TRAINER_MLP;
		else if (t != NULL && strcmp(t, "linreg") == 0)
			cfg->trainer = MM_TRAINER_LINREG;
		else if (t != NULL && strcmp(t, "noop") == 0)
			cfg->trainer = MM_TRAINER_NOOP;
		else if (t != NULL)
		{
			char		shown[64];

			return mm_err(err, errlen, "trainer \"%s\" is not supported; use one of: logreg, mlp, "
									   "linreg, noop",
						  mm_sanitize(shown, sizeof(shown), t, 40));
		}
		else
			return mm_err(err, errlen,
						  "trainer must be a string, one of: logreg, mlp, linreg, noop");
	}

	if ((rc = get_int(config, "epochs", "epochs", 1, 10000, &x, err, errlen)) < 0)
		return -1;
	if (rc)
		cfg->epochs = (int) x;
	if (get_number(config, "learning_rate", "learning_rate", 0, 1, 10, 0, "> 0 and <= 10",
				   &cfg->learning_rate, err, errlen) < 0)
		return -1;
	if ((rc = get_int(config, "batch_size", "batch_size", 1, 65536, &x, err, errlen)) < 0)
		return -1;
	if (rc)
		cfg->batch_size = (int) x;
	if (get_seed(config, "seed", "seed", &cfg->seed, err, errlen) < 0)
		return -1;
	if (get_number(config, "validation_split", "validation_split", 0, 1, 1, 1, "> 0 and < 1",
				   &cfg->validation_split, err, errlen) < 0)
		return -1;
	if ((v = member(config, "hidden_layers")) != NULL &&
		parse_hidden(v, cfg, err, errlen) != 0)
		return -1;
	if ((v = member(config, "activation")) != NULL)
	{
		const char *a = json_string_value(v);

		if (a != NULL && strcmp(a, "relu") == 0)
			cfg->activation = MM_ACT_RELU;
		else if (a != NULL && strcmp(a, "tanh") == 0)
			cfg->activation = MM_ACT_TANH;
		else
			return mm_err(err, errlen, "activation must be \"relu\" or \"tanh\"");
	}
	if (get_number(config, "l2", "l2", 0, 0, INFINITY, 0, ">= 0",
				   &cfg->l2, err, errlen) < 0)
		return -1;
	if (parse_training(config, cfg, err, errlen) != 0)
		return -1;

	if ((v = member(config, "dataset")) != NULL)
	{
		if (parse_dataset(v, cfg, err, errlen) != 0)
			return -1;
		cfg->has_dataset = 1;
	}
	else if (cfg->trainer != MM_TRAINER_NOOP)
		return mm_err(err, errlen, "dataset is required: {\"url\": ..., \"label\": ...} or "
								   "{\"synthetic\": ...}");

	if (cfg->has_dataset && cfg->synth.kind != MM_SYNTH_NONE)
	{
		int			regression_data = cfg->synth.kind == MM_SYNTH_LINEAR;

		if (cfg->trainer == MM_TRAINER_LINREG && !regression_data)
			return mm_err(err, errlen, "trainer linreg needs a numeric target: "
						  "use dataset.synthetic \"linear\"");
		if ((cfg->trainer == MM_TRAINER_LOGREG || cfg->trainer == MM_TRAINER_MLP) &&
			regression_data)
			return mm_err(err, errlen, "dataset.synthetic \"linear\" is regression data: "
						  "use trainer \"linreg\"");
	}
	return 0;
}

/* Checks a job config without keeping the parse: what the worker does before forking. */
int
mm_config_validate(const json_t *config, char *err, size_t errlen)
{
	mm_config	cfg;

	return mm_config_parse(config, &cfg, err, errlen);
}
