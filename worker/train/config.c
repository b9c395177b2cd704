/*
 * config.c — parse and validate a job config (schema in mmtrain.h).
 *
 * Each message names the field as the user wrote it ("dataset.n",
 * "hidden_layers[2]") and the allowed values; a JSON null means "use the
 * default".
 *
 * Two strictnesses, one set of rules. mm_config_check (what the extension
 * runs at submit_job, compiled from this file: extension/trainconfig.c) also
 * refuses a key it does not know and a key that does not apply to the chosen
 * trainer, since either means the user will not get what they wrote.
 * mm_config_parse (what a worker runs before training) ignores both, so a
 * node running an older build still runs a config written for a newer one.
 * The keys and what each trainer accepts are one table (config_keys), which
 * mm_config_schema publishes (SQL: modelmine.config_schema(); docs/CONFIG.md).
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

/* which trainers a key applies to */
#define FOR_LOGREG	0x1
#define FOR_MLP		0x2
#define FOR_LINREG	0x4
#define FOR_NOOP	0x8
#define FOR_TRAINING (FOR_LOGREG | FOR_MLP | FOR_LINREG)
#define FOR_ALL		(FOR_TRAINING | FOR_NOOP)

/* One key of a config (or of its dataset): who takes it, and what it accepts, for the docs. */
typedef struct config_key
{
	const char *name;
	unsigned	trainers;
	const char *accepts;
} config_key;

static const config_key config_keys[] = {
	{"trainer", FOR_ALL, "\"logreg\" (default), \"mlp\", \"linreg\" or \"noop\""},
	{"replicas", FOR_ALL, "1 to the max_replicas setting, default 1: results that must agree"},
	{"dataset", FOR_TRAINING, "required: {\"url\", \"label\"} or {\"synthetic\", ...}"},
	{"epochs", FOR_TRAINING, "1 to 10000; absent: a budget of 1000 that the stopping rules end first"},
	{"optimizer", FOR_TRAINING, "\"auto\" (default: \"lbfgs\" for logreg and linreg, \"adam\" for mlp), "
	"\"lbfgs\", \"adam\" or \"sgd\""},
	{"learning_rate", FOR_TRAINING, "adam, sgd: > 0 and <= 10, default 0.001 (adam) or 0.1 (sgd)"},
	{"batch_size", FOR_TRAINING, "adam, sgd: 1 to 65536, default 32"},
	{"early_stopping", FOR_TRAINING, "adam, sgd: true or false, default true when epochs is absent"},
	{"patience", FOR_TRAINING, "adam, sgd: 1 to 1000 epochs without improvement, default 10"},
	{"seed", FOR_TRAINING, "an integer, default 42 (split, initial weights, shuffling)"},
	{"validation_split", FOR_TRAINING, "> 0 and < 1, default 0.2"},
	{"split", FOR_TRAINING, "\"auto\" (default: stratified when every class has 2 rows), "
	"\"stratified\" (not for linreg) or \"random\""},
	{"l2", FOR_TRAINING, ">= 0; default 1/n_train (logreg, linreg), 1e-4/batch (mlp)"},
	{"hidden_layers", FOR_MLP, "1 to 8 layer sizes, each 1 to 4096, default [16]"},
	{"activation", FOR_MLP, "\"relu\" (default) or \"tanh\""},
};

/* The keys of "dataset": which kind of dataset takes each (see parse_dataset for the rules). */
static const config_key dataset_keys[] = {
	{"url", 0, "CSV: file://, http:// or https://, at most 4096 characters"},
	{"label", 0, "CSV: the label column's name, required with url"},
	{"synthetic", 0, "\"blobs\", \"moons\", \"spirals\" or \"linear\""},
	{"n", 0, "synthetic: rows, 2 to 1000000, default 600"},
	{"classes", 0, "blobs, spirals: 2 to 100, default 3"},
	{"features", 0, "blobs, linear: 1 to 1000, default 2"},
	{"noise", 0, "synthetic: >= 0 and <= 100, default 1.0 for blobs, else 0.1"},
	{"seed", 0, "synthetic: an integer, default 1"},
};

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

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

/* Edit distance of a and b, or a number above 2 once it exceeds 2 (all a suggestion needs). */
static int
distance(const char *a, const char *b)
{
	size_t		la = strlen(a),
				lb = strlen(b);
	int			row[65];

	if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 2)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int) j;
	for (size_t i = 1; i <= la; i++)
	{
		int			diag = row[0];

		row[0] = (int) i;
		for (size_t j = 1; j <= lb; j++)
		{
			int			up = row[j];
			int			best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The entry for key in keys, or NULL. */
static const config_key *
find_key(const config_key *keys, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].name, key) == 0)
			return &keys[i];
	return NULL;
}

/* Refuses a key of obj that keys does not list, suggesting the closest known one. */
static int
known_keys(const json_t *obj, const config_key *keys, size_t n, const char *prefix, char *err,
		   size_t errlen)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *) obj, key, v)
	{
		char		shown[80];
		const char *near = NULL;

		if (find_key(keys, n, key) != NULL)
			continue;
		/* a suggestion only for a near miss: one edit in a short key, two in a longer one */
		for (size_t i = 0; i < n && near == NULL; i++)
			if (distance(key, keys[i].name) <= (strlen(key) >= 5 ? 2 : strlen(key) >= 3 ? 1 : 0))
				near = keys[i].name;
		mm_sanitize(shown, sizeof(shown), key, 64);
		if (near)
			return mm_err(err, errlen, "%s%s is not a config key; did you mean \"%s%s\"?",
						  prefix, shown, prefix, near);
		return mm_err(err, errlen, "%s%s is not a config key (see modelmine.config_schema() for "
					  "the keys each trainer takes)", prefix, shown);
	}
	return 0;
}

/* The FOR_* bit of a parsed trainer. */
static unsigned
trainer_bit(mm_trainer t)
{
	switch (t)
	{
		case MM_TRAINER_LOGREG:
			return FOR_LOGREG;
		case MM_TRAINER_MLP:
			return FOR_MLP;
		case MM_TRAINER_LINREG:
			return FOR_LINREG;
		case MM_TRAINER_NOOP:
			return FOR_NOOP;
	}
	return 0;
}

/* A key only the step-taking optimizers (adam, sgd) read: L-BFGS ignores it. */
static int
step_key(const char *key)
{
	static const char *const keys[] = {"learning_rate", "batch_size", "early_stopping", "patience"};

	for (size_t i = 0; i < NKEYS(keys); i++)
		if (strcmp(key, keys[i]) == 0)
			return 1;
	return 0;
}

/*
 * The strict check run at submit time: mm_config_parse's rules, and no key that is unknown or does
 * not apply to the trainer (see the file header).  0, or -1 with a message naming the field.
 */
int
mm_config_check(const json_t *config, char *err, size_t errlen)
{
	mm_config	cfg;
	const json_t *ds;
	const char *key;
	const json_t *v;

	if (json_is_object(config) &&
		known_keys(config, config_keys, NKEYS(config_keys), "", err, errlen) != 0)
		return -1;
	if ((ds = member(config, "dataset")) != NULL && json_is_object(ds) &&
		known_keys(ds, dataset_keys, NKEYS(dataset_keys), "dataset.", err, errlen) != 0)
		return -1;
	if (mm_config_parse(config, &cfg, err, errlen) != 0)
		return -1;
	json_object_foreach((json_t *) config, key, v)
	{
		const config_key *k = find_key(config_keys, NKEYS(config_keys), key);

		if (json_is_null(v))
			continue;
		if (!(k->trainers & trainer_bit(cfg.trainer)))
			return mm_err(err, errlen, "%s does not apply to trainer \"%s\"%s", key,
						  mm_trainer_name(cfg.trainer),
						  k->trainers == FOR_MLP ? " (only mlp has hidden layers)" :
						  cfg.trainer == MM_TRAINER_NOOP ? " (noop trains nothing)" : "");
		if (cfg.optimizer == MM_OPT_LBFGS && step_key(key))
			return mm_err(err, errlen, "%s does not apply to optimizer \"lbfgs\"%s%s (full batch, "
						  "no step size); pass \"optimizer\": \"adam\" or \"sgd\" to use it", key,
						  member(config, "optimizer") ? "" : ", the default for ",
						  member(config, "optimizer") ? "" : mm_trainer_name(cfg.trainer));
	}
	return 0;
}

/*
 * An empty object.  Not json_object(): this file is also compiled into the extension, where the
 * postgres executable's own json_object() (an SQL function) would take the call.
 */
static json_t *
new_object(void)
{
	return json_pack("{}");
}

/* Adds keys to obj as {name: {"accepts": ..., "trainers": [...]}}; trainers only when given. */
static void
schema_keys(json_t *obj, const config_key *keys, size_t n, int with_trainers)
{
	static const mm_trainer all[] = {MM_TRAINER_LOGREG, MM_TRAINER_MLP, MM_TRAINER_LINREG,
	MM_TRAINER_NOOP};

	for (size_t i = 0; i < n; i++)
	{
		json_t	   *k = new_object();

		json_object_set_new(k, "accepts", json_string(keys[i].accepts));
		if (with_trainers)
		{
			json_t	   *t = json_array();

			for (size_t j = 0; j < NKEYS(all); j++)
				if (keys[i].trainers & trainer_bit(all[j]))
					json_array_append_new(t, json_string(mm_trainer_name(all[j])));
			json_object_set_new(k, "trainers", t);
		}
		json_object_set_new(obj, keys[i].name, k);
	}
}

/* The config schema: its version, each key with the trainers that take it, the dataset's keys. */
json_t *
mm_config_schema(void)
{
	json_t	   *schema = new_object(),
			   *keys = new_object(),
			   *dkeys = new_object();

	schema_keys(keys, config_keys, NKEYS(config_keys), 1);
	schema_keys(dkeys, dataset_keys, NKEYS(dataset_keys), 0);
	json_object_set_new(schema, "version", json_integer(MM_CONFIG_SCHEMA_VERSION));
	json_object_set_new(schema, "keys", keys);
	json_object_set_new(schema, "dataset_keys", dkeys);
	return schema;
}
