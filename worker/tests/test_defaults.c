/*
 * test_defaults.c — issue 18: training with the defaults (no epochs, learning rate or l2 given)
 * reaches scikit-learn-grade accuracy, stops for a reported reason, keeps the best weights,
 * splits every class in proportion, reaches the optimum with L-BFGS (linreg against the normal
 * equations), and gives the same result bit for bit on a rerun.
 *
 * Accuracy floors, validation split, default config and seed:
 *   logreg, iris (150 rows, 3 classes)                    >= 0.93
 *   mlp, two moons (n=1000, noise 0.25)                   >= 0.92
 *   mlp, digits (1797 rows, 64 features, 10 classes)      >= 0.95
 *   logreg, breast_cancer (569 rows, 30 features)         >= 0.96
 * iris, digits and breast_cancer are the UCI copies python3-sklearn ships, read from its data
 * directory (MM_SKLEARN_DATA overrides it; scripts/install-deps.sh installs the package because
 * this file names it); a missing file is a failure, never a skip.
 */
#include "dataset.h"
#include "mmtrain.h"
#include "synth.h"
#include "testutil.h"

#include <math.h>
#include <time.h>

#define SKLEARN_DATA "/usr/lib/python3/dist-packages/sklearn/datasets/data"

static char err[1024];

/* Runs a config (JSON text) with file:// allowed in the scratch directory; NULL on failure. */
static json_t *
run(const char *text, mm_progress_fn cb, void *ctx)
{
	json_error_t je;
	json_t	   *cfg = json_loads(text, 0, &je);
	json_t	   *res = NULL;
	mm_limits	lim = {.file_root = t_tempdir()};

	if (cfg == NULL)
	{
		printf("test bug: bad JSON %s: %s\n", text, je.text);
		exit(2);
	}
	err[0] = '\0';
	if (mm_train_run(cfg, &lim, cb, ctx, &res, err, sizeof(err)) != 0)
		res = NULL;
	json_decref(cfg);
	return res;
}

/* A number in a result object, or NaN. */
static double
num(const json_t *res, const char *key)
{
	const json_t *v = json_object_get(res, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A string in a result object, or "". */
static const char *
str(const json_t *res, const char *key)
{
	const char *s = json_string_value(json_object_get(res, key));

	return s ? s : "";
}

/*
 * Copies one of scikit-learn's bundled data sets into the scratch directory as a CSV with a
 * header row (f0..f<d-1>, label). Its files have a first line "n_rows,n_features,..." (iris,
 * breast_cancer) or none (digits, gzipped, the label last); 0 or -1 with a failed check.
 */
static int
fixture(const char *src, int gz, int has_count_line, int nfeat, const char *dst)
{
	const char *dir = getenv("MM_SKLEARN_DATA") ? getenv("MM_SKLEARN_DATA") : SKLEARN_DATA;
	char		path[512];
	char		cmd[700];
	char		line[8192];
	FILE	   *in;
	FILE	   *out;
	int			rows = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, src);
	if (access(path, R_OK) != 0)
	{
		CHECK(0, "%s is missing: install python3-sklearn (scripts/install-deps.sh)", path);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
	in = gz ? popen(cmd, "r") : fopen(path, "r");
	out = fopen(t_track(dst), "w");
	if (in == NULL || out == NULL)
	{
		CHECK(0, "cannot copy %s to %s", src, dst);
		return -1;
	}
	for (int i = 0; i < nfeat; i++)
		fprintf(out, "f%d,", i);
	fprintf(out, "label\n");
	if (has_count_line && fgets(line, sizeof(line), in) == NULL)
		rows = -1;
	while (rows >= 0 && fgets(line, sizeof(line), in) != NULL)
	{
		/* digits' labels are written as reals ("0.000000000000000000e+00"): trim to integers */
		char	   *last = strrchr(line, ',');

		if (last != NULL)
			sprintf(last + 1, "%d\n", (int) strtod(last + 1, NULL));
		fputs(line, out);
		rows++;
	}
	if (gz)
		pclose(in);
	else
		fclose(in);
	fclose(out);
	CHECK(rows > 0, "no rows read from %s", src);
	return rows > 0 ? 0 : -1;
}

/* Trains config text and checks its accuracy against the floor; returns the result or NULL. */
static json_t *
floor_check(const char *name, const char *config, double floor)
{
	json_t	   *res = run(config, NULL, NULL);
	double		acc;

	CHECK(res != NULL, "%s: %s", name, err);
	if (res == NULL)
		return NULL;
	acc = num(res, "accuracy");
	CHECK(acc >= floor, "%s: accuracy %.4f, expected >= %.2f", name, acc, floor);
	CHECK(strcmp(str(res, "stop_reason"), "epochs") != 0,
		  "%s: ran out of its budget (%s) instead of stopping", name, str(res, "stop_reason"));
	printf("# %-36s accuracy %.4f, %s after %g epochs (best %g)\n", name, acc,
		   str(res, "stop_reason"), num(res, "stopped_epoch"), num(res, "best_epoch"));
	return res;
}

/* The accuracy floors with the default config. */
static void
test_floors(void)
{
	char		cfg[512];
	json_t	   *res;

	if (fixture("iris.csv", 0, 1, 4, "iris.csv") == 0)
	{
		snprintf(cfg, sizeof(cfg), "{\"dataset\": {\"url\": \"file://%s/iris.csv\", "
				 "\"label\": \"label\"}}", t_tempdir());
		res = floor_check("logreg iris", cfg, 0.93);
		if (res != NULL)
		{
			CHECK(strcmp(str(res, "optimizer"), "lbfgs") == 0 &&
				  strcmp(str(res, "stop_reason"), "converged") == 0,
				  "logreg stops converged with lbfgs (got %s, %s)", str(res, "optimizer"),
				  str(res, "stop_reason"));
			CHECK(fabs(num(res, "l2") - 1.0 / num(res, "n_train")) < 1e-15, "l2 = 1/n_train");
		}
		json_decref(res);
	}
	if (fixture("breast_cancer.csv", 0, 1, 30, "breast_cancer.csv") == 0)
	{
		snprintf(cfg, sizeof(cfg), "{\"dataset\": {\"url\": \"file://%s/breast_cancer.csv\", "
				 "\"label\": \"label\"}}", t_tempdir());
		json_decref(floor_check("logreg breast_cancer", cfg, 0.96));
	}
	res = floor_check("mlp moons (n=1000, noise 0.25)",
					  "{\"trainer\": \"mlp\", \"dataset\": {\"synthetic\": \"moons\", "
					  "\"n\": 1000, \"noise\": 0.25}}", 0.92);
	if (res != NULL)
		CHECK(strcmp(str(res, "optimizer"), "adam") == 0 &&
			  strcmp(str(res, "stop_reason"), "early_stopping") == 0,
			  "mlp stops early with adam (got %s, %s)", str(res, "optimizer"),
			  str(res, "stop_reason"));
	json_decref(res);
	if (fixture("digits.csv.gz", 1, 0, 64, "digits.csv") == 0)
	{
		snprintf(cfg, sizeof(cfg), "{\"trainer\": \"mlp\", \"dataset\": {\"url\": "
				 "\"file://%s/digits.csv\", \"label\": \"label\"}}", t_tempdir());
		json_decref(floor_check("mlp digits", cfg, 0.95));
	}
}

/* ---------- early stopping keeps the best weights; epochs given are honoured ---------- */

typedef struct seen
{
	int			calls;
	int			budget;
	double		val_loss[1001];
} seen;

/* Records each epoch's validation loss. */
static int
record(void *ctx, int epoch, int epochs, double train_loss, double val_loss, double val_acc)
{
	seen	   *s = ctx;

	(void) train_loss;
	(void) val_acc;
	s->calls++;
	s->budget = epochs;
	if (epoch >= 1 && epoch <= 1000)
		s->val_loss[epoch] = val_loss;
	return 0;
}

/* The model kept is the best validation epoch's; a given epoch count runs in full. */
static void
test_stopping(void)
{
	seen		s = {0};
	json_t	   *res;
	double		best = INFINITY;
	int			best_epoch = 0;

	res = run("{\"trainer\": \"mlp\", \"dataset\": {\"synthetic\": \"moons\", \"n\": 400, "
			  "\"noise\": 0.3}}", record, &s);
	CHECK(res != NULL, "%s", err);
	if (res == NULL)
		return;
	for (int e = 1; e <= s.calls && e <= 1000; e++)
		if (s.val_loss[e] < best)
		{
			best = s.val_loss[e];
			best_epoch = e;
		}
	CHECK(strcmp(str(res, "stop_reason"), "early_stopping") == 0, "stop_reason %s",
		  str(res, "stop_reason"));
	CHECK(s.budget == 1000 && s.calls == (int) num(res, "stopped_epoch") &&
		  s.calls == (int) num(res, "epochs"), "callback budget %d, calls %d, stopped %g",
		  s.budget, s.calls, num(res, "stopped_epoch"));
	CHECK(num(res, "best_epoch") == best_epoch,
		  "best epoch %g, lowest validation loss at %d of %d", num(res, "best_epoch"),
		  best_epoch, s.calls);
	CHECK(num(res, "loss") == best, "result loss %.17g is not the best epoch's %.17g",
		  num(res, "loss"), best);
	json_decref(res);

	/* epochs given: every one of them, no early stopping */
	s = (seen) {0};
	res = run("{\"trainer\": \"mlp\", \"epochs\": 40, \"dataset\": {\"synthetic\": \"moons\", "
			  "\"n\": 400, \"noise\": 0.3}}", record, &s);
	CHECK(res != NULL && s.calls == 40 && num(res, "epochs") == 40 &&
		  strcmp(str(res, "stop_reason"), "epochs") == 0 && num(res, "best_epoch") == 40,
		  "epochs 40: %d calls, %s", s.calls, res ? str(res, "stop_reason") : err);
	json_decref(res);

	/* lbfgs: at most the epochs given */
	s = (seen) {0};
	res = run("{\"epochs\": 3, \"dataset\": {\"synthetic\": \"blobs\", \"classes\": 5, "
			  "\"noise\": 4}}", record, &s);
	CHECK(res != NULL && s.calls == 3 && num(res, "epochs") == 3 &&
		  strcmp(str(res, "stop_reason"), "epochs") == 0, "lbfgs epochs 3: %d calls, %s",
		  s.calls, res ? str(res, "stop_reason") : err);
	json_decref(res);
}

/* ---------- stratification ---------- */

/* The whole file (NUL-terminated) at path; exits on failure (a test bug). */
static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = malloc(1 << 20);

	if (f == NULL || buf == NULL)
		exit(2);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Writes a CSV whose classes have the given sizes (rows interleaved), returns its row count. */
static size_t
skewed_csv(const char *name, const int *sizes, int k)
{
	char	   *csv = malloc(64 * 1024);
	size_t		used = 0;
	size_t		n = 0;
	int			left[16];
	int			more = 1;

	memcpy(left, sizes, (size_t) k * sizeof(int));
	used += (size_t) sprintf(csv + used, "x,y,label\n");
	while (more)
	{
		more = 0;
		for (int c = 0; c < k; c++)
			if (left[c] > 0)
			{
				left[c]--;
				used += (size_t) sprintf(csv + used, "%zu,%d,c%d\n", n, c * 3, c);
				n++;
				more = 1;
			}
	}
	t_write(name, csv, used);
	free(csv);
	return n;
}

/* Every class gets its share of the validation rows, at least one row on each side. */
static void
test_stratified(void)
{
	static const int sizes[] = {2, 3, 7, 50, 138};
	int			k = 5;
	size_t		n = skewed_csv("skewed.csv", sizes, k);
	char		path[512];
	char		cfg[512];
	char	   *text;
	size_t		len;
	mm_dataset	ds;
	mm_split	sp;
	json_t	   *res;

	snprintf(path, sizeof(path), "%s/skewed.csv", t_tempdir());
	text = slurp(path, &len);
	for (uint64_t seed = 1; seed <= 20; seed++)
	{
		size_t		in_val[5] = {0};
		size_t		in_train[5] = {0};
		unsigned char *seen_row = calloc(n, 1);
		int			ok = 1;

		if (mm_dataset_from_csv(text, len, "label", 0, &ds, err, sizeof(err)) != 0 ||
			mm_dataset_split(&ds, 0.2, seed, MM_STRATIFY_AUTO, &sp, err, sizeof(err)) != 0)
		{
			CHECK(0, "split: %s", err);
			free(seen_row);
			break;
		}
		for (size_t i = 0; i < sp.n_val; i++)
		{
			in_val[(int) ds.y[sp.val[i]]]++;
			seen_row[sp.val[i]]++;
		}
		for (size_t i = 0; i < sp.n_train; i++)
		{
			in_train[(int) ds.y[sp.train[i]]]++;
			seen_row[sp.train[i]]++;
		}
		for (size_t i = 0; i < n; i++)
			ok &= seen_row[i] == 1;
		CHECK(ok && sp.n_val + sp.n_train == n, "seed %llu: not a partition of the rows",
			  (unsigned long long) seed);
		CHECK(sp.stratified && sp.n_val == 40, "seed %llu: stratified %d, %zu validation rows",
			  (unsigned long long) seed, sp.stratified, sp.n_val);
		for (int c = 0; c < k; c++)
		{
			double		share = 0.2 * sizes[c];

			CHECK(in_val[c] >= 1 && in_train[c] >= 1 && fabs((double) in_val[c] - share) < 1.0,
				  "seed %llu class %d (%d rows): %zu validation, %zu training, share %.1f",
				  (unsigned long long) seed, c, sizes[c], in_val[c], in_train[c], share);
		}
		free(seen_row);
		mm_split_free(&sp);
		mm_dataset_free(&ds);
	}
	free(text);

	/* the result records the split; a class of one row makes auto fall back to random */
	snprintf(cfg, sizeof(cfg), "{\"dataset\": {\"url\": \"file://%s/skewed.csv\", "
			 "\"label\": \"label\"}, \"seed\": 7, \"validation_split\": 0.25}", t_tempdir());
	res = run(cfg, NULL, NULL);
	CHECK(res != NULL, "%s", err);
	if (res != NULL)
	{
		const json_t *split = json_object_get(res, "split");

		CHECK(strcmp(str(split, "method"), "stratified") == 0 && num(split, "seed") == 7 &&
			  num(split, "validation_split") == 0.25, "result.split");
		json_decref(res);
	}
	{
		static const int one[] = {1, 30, 30};

		skewed_csv("one.csv", one, 3);
	}
	snprintf(cfg, sizeof(cfg), "{\"dataset\": {\"url\": \"file://%s/one.csv\", "
			 "\"label\": \"label\"}}", t_tempdir());
	res = run(cfg, NULL, NULL);
	CHECK(res != NULL && strcmp(str(json_object_get(res, "split"), "method"), "random") == 0,
		  "a class of one row: random split (%s)", err);
	json_decref(res);
	snprintf(cfg, sizeof(cfg), "{\"split\": \"stratified\", \"dataset\": {\"url\": "
			 "\"file://%s/one.csv\", \"label\": \"label\"}}", t_tempdir());
	CHECK(run(cfg, NULL, NULL) == NULL, "stratified with a class of one row trained");
	CHECK_MSG(err, "at least 2 rows of every class");
	res = run("{\"trainer\": \"linreg\", \"dataset\": {\"synthetic\": \"linear\"}}", NULL, NULL);
	CHECK(res != NULL && strcmp(str(json_object_get(res, "split"), "method"), "random") == 0,
		  "regression: random split");
	json_decref(res);
}

/* ---------- L-BFGS reaches the optimum ---------- */

/*
 * linreg's default is ridge regression in the standardised space, whose optimum has a closed form:
 * b = mean(y) (the training columns have mean 0) and (X'X/n + l2 I) w = X'y/n. The weights
 * L-BFGS returns must match the solution of those normal equations.
 */
static void
test_lbfgs_optimum(void)
{
	enum
	{
		D = 4
	};
	mm_synth_spec spec = {.kind = MM_SYNTH_LINEAR, .n = 500, .classes = 0, .features = D,
						  .noise = 2.0, .seed = 3};
	mm_dataset	ds;
	mm_split	sp;
	double		A[D][D + 1] = {{0}};
	double		ymean = 0;
	double		l2;
	json_t	   *res;
	const json_t *w;

	res = run("{\"trainer\": \"linreg\", \"seed\": 9, \"dataset\": {\"synthetic\": "
			  "\"linear\", \"n\": 500, \"features\": 4, \"noise\": 2.0, \"seed\": 3}}",
			  NULL, NULL);
	CHECK(res != NULL, "%s", err);
	if (res == NULL)
		return;
	if (mm_synth_generate(&spec, &ds, err, sizeof(err)) != 0 ||
		mm_dataset_split(&ds, 0.2, 9, MM_STRATIFY_AUTO, &sp, err, sizeof(err)) != 0)
	{
		CHECK(0, "generate and split: %s", err);
		json_decref(res);
		return;
	}
	l2 = 1.0 / (double) sp.n_train;
	CHECK(num(res, "l2") == l2 && strcmp(str(res, "stop_reason"), "converged") == 0,
		  "linreg: l2 %g (want %g), %s", num(res, "l2"), l2, str(res, "stop_reason"));
	for (size_t r = 0; r < sp.n_train; r++)
	{
		const double *x = ds.x + sp.train[r] * ds.d;
		double		y = ds.y[sp.train[r]];

		ymean += y;
		for (int i = 0; i < D; i++)
		{
			for (int j = 0; j < D; j++)
				A[i][j] += x[i] * x[j] / (double) sp.n_train;
			A[i][D] += x[i] * y / (double) sp.n_train;
		}
	}
	ymean /= (double) sp.n_train;
	for (int i = 0; i < D; i++)
		A[i][i] += l2;
	/* Gaussian elimination; X'X/n + l2 I is symmetric positive definite, so no pivoting */
	for (int k = 0; k < D; k++)
		for (int i = k + 1; i < D; i++)
		{
			double		f = A[i][k] / A[k][k];

			for (int j = k; j <= D; j++)
				A[i][j] -= f * A[k][j];
		}
	for (int i = D - 1; i >= 0; i--)
	{
		for (int j = i + 1; j < D; j++)
			A[i][D] -= A[i][j] * A[j][D];
		A[i][D] /= A[i][i];
	}
	w = json_array_get(json_array_get(json_object_get(json_object_get(res, "model"), "weights"),
									  0), 0);
	for (int i = 0; i < D; i++)
	{
		double		got = json_number_value(json_array_get(w, (size_t) i));

		CHECK(fabs(got - A[i][D]) <= 1e-4 * fmax(1.0, fabs(A[i][D])),
			  "weight %d: lbfgs %.9g, normal equations %.9g", i, got, A[i][D]);
	}
	{
		double		b = json_number_value(json_array_get(json_array_get(
			json_object_get(json_object_get(res, "model"), "biases"), 0), 0));

		CHECK(fabs(b - ymean) <= 1e-4 * fmax(1.0, fabs(ymean)), "bias %.9g, mean(y) %.9g", b,
			  ymean);
	}
	mm_split_free(&sp);
	mm_dataset_free(&ds);
	json_decref(res);
}

/* ---------- determinism ---------- */

/* The whole result as canonical text, every double in full. */
static char *
dump(const json_t *j)
{
	return json_dumps(j, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
}

/* The default configs of every trainer give the same result bit for bit when run again. */
static void
test_determinism(void)
{
	static const char *configs[] = {
		"{\"trainer\": \"mlp\", \"dataset\": {\"synthetic\": \"moons\", \"n\": 500, "
		"\"noise\": 0.25}}",
		"{\"trainer\": \"logreg\", \"dataset\": {\"synthetic\": \"blobs\", \"classes\": 4, "
		"\"noise\": 3}}",
		"{\"trainer\": \"linreg\", \"dataset\": {\"synthetic\": \"linear\", \"features\": 6}}",
		"{\"trainer\": \"mlp\", \"optimizer\": \"sgd\", \"dataset\": {\"synthetic\": \"spirals\"}}",
	};

	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
	{
		json_t	   *a = run(configs[i], NULL, NULL);
		json_t	   *b = run(configs[i], NULL, NULL);
		char	   *da = a ? dump(a) : NULL;
		char	   *db = b ? dump(b) : NULL;

		CHECK(da && db && strcmp(da, db) == 0, "config %zu: two runs differ (%s)", i, err);
		free(da);
		free(db);
		json_decref(a);
		json_decref(b);
	}
}

/* Runs the defaults tests. */
int
main(void)
{
	struct timespec t0;
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("# test_defaults%s\n", t_quick() ? " (quick)" : "");
	if (!t_quick())
		test_floors();
	test_stopping();
	test_stratified();
	test_lbfgs_optimum();
	test_determinism();
	t_cleanup();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# test_defaults took %.2f s\n",
		   (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return t_summary();
}
