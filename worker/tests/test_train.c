/*
 * test_train.c — mm_train_run end to end: accuracy targets on synthetic
 * and CSV data, the exported model reproduces the predictions, bit-for-bit
 * determinism, the progress callback and abort, divergence, noop.
 *
 * Accuracy targets (validation split, fixed seeds):
 *   logreg, 3 well-separated blobs (n=600)                >= 0.95
 *   mlp [16], two moons (n=1000, noise 0.1, 100 epochs)   >= 0.95
 *   logreg, the same moons (a line cannot separate them)  <  0.92
 *   mlp [32,32], 3 spirals (n=900, noise 0.05, 300 ep.)   >= 0.90; logreg < 0.70
 *   logreg, binary CSV read via file:// (n=400)           >= 0.95
 *   linreg, linear data (noise 0.1)                       r2 >= 0.99
 */
#include "mmtrain.h"
#include "rng.h"
#include "testutil.h"

#include <math.h>
#include <time.h>

static char err[1024];

/* Parses JSON test text; a malformed test text is the test's own bug (exit 2). */
static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t	   *j = json_loads(text, 0, &je);

	if (j == NULL)
	{
		printf("test bug: bad JSON %s: %s\n", text, je.text);
		exit(2);
	}
	return j;
}

/* Run config text; returns the result (NULL on failure, message in err). */
static json_t *
run(const char *text, const mm_limits *lim, mm_progress_fn cb, void *ctx)
{
	json_t	   *cfg = parse(text);
	json_t	   *res = (json_t *) 1;
	int			rc;

	err[0] = '\0';
	rc = mm_train_run(cfg, lim, cb, ctx, &res, err, sizeof(err));
	json_decref(cfg);
	if (rc != 0)
	{
		CHECK(res == NULL, "result not NULL on failure");
		return NULL;
	}
	CHECK(json_is_object(res), "result is not an object");
	return res;
}

/* A number in a result object, or NaN. */
static double
num(const json_t *res, const char *key)
{
	const json_t *v = json_object_get(res, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* train, check the named metric against a bound, return the value for the report */
static double
expect_metric(const char *name, const char *config, const char *metric, double bound, int at_least)
{
	json_t	   *res = run(config, NULL, NULL, NULL);
	double		v;

	CHECK(res != NULL, "%s: %s", name, err);
	if (res == NULL)
		return NAN;
	v = num(res, metric);
	if (at_least)
		CHECK(v >= bound, "%s: %s %.4f, expected >= %.2f", name, metric, v, bound);
	else
		CHECK(v < bound, "%s: %s %.4f, expected < %.2f", name, metric, v, bound);
	printf("# %-44s %s = %.4f\n", name, metric, v);
	json_decref(res);
	return v;
}

/* Each trainer reaches its accuracy (or r2) target on synthetic data. */
static void
test_accuracy(void)
{
	expect_metric("logreg blobs (3 classes, n=600)",
				  "{\"trainer\": \"logreg\", \"dataset\": {\"synthetic\": \"blobs\", \"n\": 600, "
				  "\"classes\": 3, \"seed\": 1}}",
				  "accuracy", 0.95, 1);
	expect_metric("mlp moons (n=1000, noise 0.1)",
				  "{\"trainer\": \"mlp\", \"epochs\": 100, \"dataset\": {\"synthetic\": \"moons\", "
				  "\"n\": 1000, \"noise\": 0.1}}",
				  "accuracy", 0.95, 1);
	expect_metric("logreg moons (n=1000, noise 0.1)",
				  "{\"trainer\": \"logreg\", \"epochs\": 100, \"dataset\": {\"synthetic\": "
				  "\"moons\", \"n\": 1000, \"noise\": 0.1}}",
				  "accuracy", 0.92, 0);
	if (!t_quick())
	{
		expect_metric("mlp spirals (3 arms, n=900, noise 0.05)",
					  "{\"trainer\": \"mlp\", \"hidden_layers\": [32, 32], \"epochs\": 300,"
					  " \"dataset\": {\"synthetic\": \"spirals\", \"n\": 900, \"noise\": 0.05}}",
					  "accuracy", 0.90, 1);
		expect_metric("logreg spirals (3 arms, n=900, noise 0.05)",
					  "{\"trainer\": \"logreg\", \"epochs\": 100,"
					  " \"dataset\": {\"synthetic\": \"spirals\", \"n\": 900, \"noise\": 0.05}}",
					  "accuracy", 0.70, 0);
	}
	expect_metric("linreg linear (n=1000, 5 features)",
				  "{\"trainer\": \"linreg\", \"dataset\": {\"synthetic\": \"linear\", \"n\": 1000, "
				  "\"features\": 5, \"noise\": 0.1}}",
				  "r2", 0.99, 1);
	expect_metric("mlp tanh blobs (5 classes, 10 features)",
				  "{\"trainer\": \"mlp\", \"activation\": \"tanh\", \"hidden_layers\": [8, 8], "
				  "\"l2\": 0.0001,"
				  " \"dataset\": {\"synthetic\": \"blobs\", \"classes\": 5, \"features\": 10}}",
				  "accuracy", 0.95, 1);
}

/* ---------- the exported model predicts like the trainer did ---------- */

/* Predict one raw (unstandardised) row with the model JSON. */
static double
predict(const json_t *model, const double *raw, size_t d)
{
	const json_t *weights = json_object_get(model, "weights");
	const json_t *biases = json_object_get(model, "biases");
	const char *output = json_string_value(json_object_get(model, "output"));
	const char *act = json_string_value(json_object_get(model, "activation"));
	double		h[64];
	double		o[64];
	size_t		n = d;
	size_t		layers = json_array_size(weights);

	for (size_t i = 0; i < d; i++)
		h[i] = (raw[i] - json_number_value(json_array_get(json_object_get(model, "mean"), i))) /
			json_number_value(json_array_get(json_object_get(model, "std"), i));
	for (size_t l = 0; l < layers; l++)
	{
		const json_t *W = json_array_get(weights, l);
		size_t		nout = json_array_size(W);

		for (size_t j = 0; j < nout; j++)
		{
			double		s = json_real_value(json_array_get(json_array_get(biases, l), j));

			for (size_t i = 0; i < n; i++)
				s += json_real_value(json_array_get(json_array_get(W, j), i)) * h[i];
			if (l + 1 < layers)
				s = strcmp(act, "tanh") == 0 ? tanh(s) : (s > 0 ? s : 0);
			o[j] = s;
		}
		memcpy(h, o, nout * sizeof(double));
		n = nout;
	}
	if (strcmp(output, "identity") == 0)
		return h[0];
	if (strcmp(output, "sigmoid") == 0)
		return h[0] >= 0 ? 1 : 0;
	{
		size_t		best = 0;

		for (size_t j = 1; j < n; j++)
			if (h[j] > h[best])
				best = j;
		return (double) best;
	}
}

/*
 * Write a CSV of two Gaussian classes ("no"/"yes", label in the middle
 * column, a quoted header, CRLF) and train on it through file://.
 */
static void
test_csv_file(void)
{
	enum
	{
		N = 400
	};
	static double x[N][3];
	static int	cls[N];
	char	   *csv = malloc(N * 100 + 100);
	size_t		used = 0;
	mm_rng		rng;
	char		config[1024];
	mm_limits	lim = {.max_download_bytes = 1 << 20, .download_timeout_s = 5,
					   .file_root = t_tempdir()};
	json_t	   *res;

	mm_rng_seed(&rng, 99, 0);
	used += (size_t) sprintf(csv + used, "\"height, cm\",class,weight\r\n");
	for (int i = 0; i < N; i++)
	{
		cls[i] = i % 2;
		x[i][0] = 170 + (cls[i] ? 12 : -12) + 5 * mm_rng_normal(&rng);
		x[i][1] = 70 + (cls[i] ? 9 : -9) + 4 * mm_rng_normal(&rng);
		used += (size_t) sprintf(csv + used, "%.3f,%s,%.3f\r\n", x[i][0], cls[i] ? "yes" : "no",
								 x[i][1]);
	}
	t_write("people.csv", csv, used);
	free(csv);

	snprintf(config, sizeof(config),
			 "{\"dataset\": {\"url\": \"file://%s/people.csv\", \"label\": "
			 "\"class\"}}", t_tempdir());
	res = run(config, &lim, NULL, NULL);
	CHECK(res != NULL, "csv logreg: %s", err);
	if (res != NULL)
	{
		const json_t *model = json_object_get(res, "model");
		const json_t *weights = json_object_get(model, "weights");
		const json_t *classes = json_object_get(res, "classes");
		double		acc = num(res, "accuracy");
		int			correct = 0;

		CHECK(acc >= 0.95, "csv logreg accuracy %.4f", acc);
		printf("# %-44s accuracy = %.4f\n", "logreg binary CSV via file:// (n=400)", acc);
		CHECK(json_array_size(classes) == 2 &&
			  strcmp(json_string_value(json_array_get(classes, 0)), "no") == 0 &&
			  strcmp(json_string_value(json_array_get(classes, 1)), "yes") == 0,
			  "classes [no, yes]");
		CHECK(num(res, "n_train") == 320 && num(res, "n_val") == 80, "split 320/80");
		CHECK(json_is_null(json_object_get(res, "r2")) || json_object_get(res, "r2") == NULL,
			  "no r2");
		CHECK(strcmp(json_string_value(json_object_get(model, "type")), "logreg") == 0 &&
			  strcmp(json_string_value(json_object_get(model, "output")), "sigmoid") == 0 &&
			  strcmp(json_string_value(json_object_get(model, "label")), "class") == 0,
			  "model header");
		CHECK(json_array_size(json_object_get(model, "feature_names")) == 2 &&
			  strcmp(json_string_value(json_array_get(json_object_get(model, "feature_names"), 0)),
					 "height, cm") == 0, "feature names");
		CHECK(json_array_size(weights) == 1 &&
			  json_array_size(json_array_get(weights, 0)) == 1 &&
			  json_array_size(json_array_get(json_array_get(weights, 0), 0)) == 2,
			  "weights shape [1][1][2]");
		/* mean is the training mean of raw heights: close to 170 */
		CHECK(fabs(json_number_value(json_array_get(json_object_get(model, "mean"), 0)) - 170) < 3,
			  "stored mean");
		for (int i = 0; i < N; i++)
			correct += predict(model, x[i], 2) == cls[i];
		CHECK(correct >= 0.95 * N, "exported model gets %d/%d rows right", correct, N);
		json_decref(res);
	}

	/* a CSV error comes back through mm_train_run with the row named */
	t_write("broken.csv", "a,b,y\n1,2,x\n3,oops,y\n", 22);
	snprintf(config, sizeof(config),
			 "{\"dataset\": {\"url\": \"file://%s/broken.csv\", \"label\": \"y\"}}", t_tempdir());
	CHECK(run(config, &lim, NULL, NULL) == NULL, "broken CSV trained");
	CHECK_MSG(err, "row 2 (line 3), column \"b\"");
	snprintf(config, sizeof(config),
			 "{\"dataset\": {\"url\": \"file://%s/people.csv\", \"label\": "
			 "\"gender\"}}", t_tempdir());
	CHECK(run(config, &lim, NULL, NULL) == NULL, "missing label column trained");
	CHECK_MSG(err, "\"gender\" is not a column");
	CHECK_MSG(err, "\"height, cm\", \"class\", \"weight\"");
	snprintf(config, sizeof(config),
			 "{\"dataset\": {\"url\": \"file://%s/people.csv\", \"label\": "
			 "\"class\"}}", t_tempdir());
	CHECK(run(config, NULL, NULL, NULL) == NULL, "file:// without a root");
	CHECK_MSG(err, "not allowed");
	snprintf(config, sizeof(config),
			 "{\"trainer\": \"linreg\", \"dataset\": {\"url\": \"file://%s/people.csv\", "
			 "\"label\": \"class\"}}", t_tempdir());
	CHECK(run(config, &lim, NULL, NULL) == NULL, "linreg on string labels");
	CHECK_MSG(err, "linreg needs a numeric label");
}

/* an mlp's exported weights (two hidden layers, softmax) predict like the trainer */
static void
test_mlp_export(void)
{
	enum
	{
		N = 300
	};
	static double x[N][2];
	static int	cls[N];
	char	   *csv = malloc(N * 64 + 64);
	size_t		used = 0;
	mm_rng		rng;
	char		config[1024];
	mm_limits	lim = {.file_root = t_tempdir()};
	json_t	   *res;

	mm_rng_seed(&rng, 5, 0);
	used += (size_t) sprintf(csv + used, "x,y,label\n");
	for (int i = 0; i < N; i++)
	{
		double		a = 2 * 3.14159265358979 * (i % 3) / 3;

		cls[i] = i % 3;
		x[i][0] = 4 * cos(a) + mm_rng_normal(&rng);
		x[i][1] = 4 * sin(a) + mm_rng_normal(&rng);
		used += (size_t) sprintf(csv + used, "%.4f,%.4f,%d\n", x[i][0], x[i][1], cls[i]);
	}
	t_write("three.csv", csv, used);
	free(csv);
	snprintf(config, sizeof(config),
			 "{\"trainer\": \"mlp\", \"hidden_layers\": [6, 5], \"activation\": \"tanh\","
			 " \"dataset\": {\"url\": \"file://%s/three.csv\", \"label\": "
			 "\"label\"}}", t_tempdir());
	res = run(config, &lim, NULL, NULL);
	CHECK(res != NULL, "mlp csv: %s", err);
	if (res != NULL)
	{
		const json_t *model = json_object_get(res, "model");
		const json_t *w = json_object_get(model, "weights");
		int			agree = 0;

		CHECK(json_array_size(w) == 3 && json_array_size(json_array_get(w, 0)) == 6 &&
			  json_array_size(json_array_get(json_array_get(w, 0), 0)) == 2 &&
			  json_array_size(json_array_get(w, 1)) == 5 &&
			  json_array_size(json_array_get(w, 2)) == 3, "mlp weight shapes");
		CHECK(strcmp(json_string_value(json_object_get(model, "output")), "softmax") == 0 &&
			  strcmp(json_string_value(json_object_get(model, "activation")), "tanh") == 0,
			  "mlp model header");
		for (int i = 0; i < N; i++)
			agree += predict(model, x[i], 2) == cls[i];
		CHECK(agree >= 0.9 * N, "exported mlp gets %d/%d right", agree, N);
		json_decref(res);
	}
}

/* ---------- determinism ---------- */

/* A result as canonical text, for comparing runs. */
static char *
dump(const json_t *j)
{
	return json_dumps(j, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
}

/* The same config and seed give the same result, to the bit; another seed other weights. */
static void
test_determinism(void)
{
	const char *a = "{\"trainer\": \"mlp\", \"epochs\": 20, \"seed\": 11, \"dataset\": "
					"{\"synthetic\": \"moons\", \"n\": 500}}";
	const char *b = "{\"trainer\": \"mlp\", \"epochs\": 20, \"seed\": 12, \"dataset\": "
					"{\"synthetic\": \"moons\", \"n\": 500}}";
	json_t	   *r1 = run(a, NULL, NULL, NULL);
	json_t	   *r2 = run(a, NULL, NULL, NULL);
	json_t	   *r3 = run(b, NULL, NULL, NULL);

	CHECK(r1 && r2 && r3, "runs failed: %s", err);
	if (r1 && r2 && r3)
	{
		char	   *d1 = dump(r1);
		char	   *d2 = dump(r2);
		char	   *w1 = dump(json_object_get(json_object_get(r1, "model"), "weights"));
		char	   *w3 = dump(json_object_get(json_object_get(r3, "model"), "weights"));

		CHECK(d1 && d2 && strcmp(d1, d2) == 0, "same seed, different result JSON");
		CHECK(w1 && w3 && strcmp(w1, w3) != 0, "different seed, same weights");
		free(d1);
		free(d2);
		free(w1);
		free(w3);
	}
	json_decref(r1);
	json_decref(r2);
	json_decref(r3);
}

/* ---------- progress callback ---------- */

typedef struct progress
{
	int			calls;
	int			last_epoch;
	int			in_order;
	int			epochs_seen;
	int			sane;
	int			abort_at;
	int			want_nan_accuracy;
} progress;

/* The progress callback under test: records the calls and checks their figures. */
static int
on_progress(void *ctx, int epoch, int epochs, double train_loss, double val_loss,
			double val_accuracy)
{
	progress   *p = ctx;

	p->calls++;
	if (epoch != p->last_epoch + 1)
		p->in_order = 0;
	p->last_epoch = epoch;
	p->epochs_seen = epochs;
	if (!isfinite(train_loss) || !isfinite(val_loss) || train_loss < 0 || val_loss < 0)
		p->sane = 0;
	if (p->want_nan_accuracy ? !isnan(val_accuracy) : !(val_accuracy >= 0 && val_accuracy <= 1))
		p->sane = 0;
	return p->abort_at != 0 && epoch == p->abort_at;
}

/* The progress callback: once per epoch, in order, with sane figures; nonzero stops training. */
static void
test_progress(void)
{
	progress	p = {.in_order = 1, .sane = 1};
	json_t	   *res;

	res = run("{\"epochs\": 7, \"dataset\": {\"synthetic\": \"blobs\"}}", NULL, on_progress, &p);
	CHECK(res != NULL, "%s", err);
	CHECK(p.calls == 7 && p.in_order && p.last_epoch == 7 && p.epochs_seen == 7,
		  "calls %d, in order %d, last %d", p.calls, p.in_order, p.last_epoch);
	CHECK(p.sane, "callback got a non-finite loss or an accuracy outside [0,1]");
	CHECK(num(res, "epochs") == 7, "result epochs");
	json_decref(res);

	/* regression: accuracy is NAN in the callback, null in the result */
	p = (progress) {.in_order = 1, .sane = 1, .want_nan_accuracy = 1};
	res = run("{\"trainer\": \"linreg\", \"epochs\": 3, \"dataset\": {\"synthetic\": \"linear\"}}",
			  NULL, on_progress, &p);
	CHECK(res != NULL && p.calls == 3 && p.sane, "regression callback: %s", err);
	CHECK(res != NULL && json_is_null(json_object_get(res, "accuracy")) &&
		  json_is_number(json_object_get(res, "r2")) &&
		  json_object_get(res, "classes") == NULL, "regression result fields");
	json_decref(res);

	/* abort */
	p = (progress) {.in_order = 1, .sane = 1, .abort_at = 3};
	res = run("{\"epochs\": 50, \"dataset\": {\"synthetic\": \"blobs\"}}", NULL, on_progress, &p);
	CHECK(res == NULL, "abort ignored");
	CHECK(p.calls == 3, "callback called %d times after abort at 3", p.calls);
	CHECK_MSG(err, "aborted by caller");
	CHECK_MSG(err, "epoch 3");
}

/* Divergence, noop, the smallest dataset, the parameter cap, a missing file. */
static void
test_misc(void)
{
	json_t	   *res;
	char	   *d;

	/* divergence is an error, never a NaN in the result */
	res = run("{\"trainer\": \"linreg\", \"optimizer\": \"sgd\", \"learning_rate\": 10, "
			  "\"epochs\": 50, \"dataset\": {\"synthetic\": \"linear\"}}", NULL, NULL, NULL);
	CHECK(res == NULL, "diverging run succeeded");
	CHECK_MSG(err, "training diverged");
	CHECK_MSG(err, "lower learning_rate");

	/* noop needs no dataset and returns at once */
	res = run("{\"trainer\": \"noop\"}", NULL, NULL, NULL);
	CHECK(res != NULL, "noop: %s", err);
	d = res ? dump(res) : NULL;
	CHECK(d && strcmp(d, "{\"accuracy\": null, \"epochs\": 0, \"loss\": 0.0,"
					  " \"model\": {\"type\": \"noop\"},"
					  " \"n_train\": 0, \"n_val\": 0, \"train_loss\": 0.0}") == 0,
		  "noop result %s", d);
	free(d);
	json_decref(res);

	/* the smallest dataset that can be split: one training row, one validation row */
	res = run("{\"epochs\": 2, \"batch_size\": 65536, \"dataset\": {\"synthetic\": \"moons\", "
			  "\"n\": 2}}", NULL, NULL, NULL);
	CHECK(res != NULL && num(res, "n_train") == 1 && num(res, "n_val") == 1, "n=2: %s", err);
	json_decref(res);

	/* a model over the parameter cap is refused before allocating */
	res = run("{\"trainer\": \"mlp\", \"hidden_layers\": [4096, 4096, 4096], \"dataset\": "
			  "{\"synthetic\": \"moons\"}}",
			  NULL, NULL, NULL);
	CHECK(res == NULL, "huge model accepted");
	CHECK_MSG(err, "model too large");

	/* missing file comes back with the URL */
	{
		mm_limits	lim = {.file_root = t_tempdir()};
		char		config[512];

		snprintf(config, sizeof(config),
				 "{\"dataset\": {\"url\": \"file://%s/nope.csv\", \"label\": \"y\"}}", t_tempdir());
		CHECK(run(config, &lim, NULL, NULL) == NULL, "missing file trained");
		CHECK_MSG(err, "file not found");
		CHECK_MSG(err, "nope.csv");
	}
}

/* Runs the training tests. */
int
main(void)
{
	struct timespec t0;
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("# test_train%s\n", t_quick() ? " (quick)" : "");
	test_accuracy();
	test_csv_file();
	test_mlp_export();
	test_determinism();
	test_progress();
	test_misc();
	t_cleanup();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# test_train took %.2f s\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return t_summary();
}
