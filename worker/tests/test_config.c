/*
 * test_config.c — mm_config_validate: every known field is checked for
 * type and range, the message names the field (and what is allowed);
 * unknown keys and nulls are accepted; mm_train_run rejects the same
 * configs with the same message.  mm_config_check, the strict check the
 * extension runs at submit, refuses unknown keys and keys that do not apply
 * to the trainer, and agrees with mm_config_validate on everything else.
 */
#include "config.h"
#include "mmtrain.h"
#include "testutil.h"

static char err[512];

/* Parses JSON test text; a malformed test text is the test's own bug (exit 2). */
static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t	   *j = json_loads(text, JSON_DECODE_ANY, &je);

	if (j == NULL)
	{
		printf("test bug: bad JSON %s: %s\n", text, je.text);
		exit(2);
	}
	return j;
}

/* Checks that a config validates. */
static void
expect_ok(const char *text)
{
	json_t	   *j = parse(text);

	err[0] = '\0';
	CHECK(mm_config_validate(j, err, sizeof(err)) == 0, "%s rejected: %s", text, err);
	json_decref(j);
}

/* validation fails naming n1 (and n2); mm_train_run fails the same way without training */
static void
expect_bad(const char *text, const char *n1, const char *n2)
{
	json_t	   *j = parse(text);
	json_t	   *res = NULL;
	char		err2[512];

	err[0] = '\0';
	if (mm_config_validate(j, err, sizeof(err)) == 0)
	{
		CHECK(0, "accepted: %s", text);
		json_decref(j);
		return;
	}
	CHECK_MSG(err, n1);
	if (n2)
		CHECK_MSG(err, n2);
	CHECK(strchr(err, '\n') == NULL, "multi-line message");
	CHECK(mm_train_run(j, NULL, NULL, NULL, &res, err2, sizeof(err2)) == -1 && res == NULL &&
		  strcmp(err, err2) == 0, "mm_train_run disagrees for %s: %s", text, err2);
	json_decref(j);
}

#define SYN "\"dataset\": {\"synthetic\": \"blobs\"}"

/* Every field's type and range checks, and the defaults a config gets. */
int
main(void)
{
	mm_config	cfg;
	json_t	   *j;

	printf("# test_config\n");

	/* defaults */
	j = parse("{" SYN "}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0, "%s", err);
	CHECK(cfg.trainer == MM_TRAINER_LOGREG && cfg.epochs == 0 && cfg.learning_rate == 0.001 &&
		  cfg.batch_size == 32 && cfg.seed == 42 && cfg.validation_split == 0.2 &&
		  cfg.nhidden == 1 && cfg.hidden[0] == 16 && cfg.activation == MM_ACT_RELU && cfg.l2 < 0,
		  "top-level defaults");
	/* issue 18: lbfgs for the linear models, adam with early stopping for mlp, split auto */
	CHECK(cfg.optimizer == MM_OPT_LBFGS && cfg.early_stopping == 1 && cfg.patience == 10 &&
		  cfg.split == MM_SPLIT_AUTO, "training defaults");
	CHECK(cfg.synth.kind == MM_SYNTH_BLOBS && cfg.synth.n == 600 && cfg.synth.classes == 3 &&
		  cfg.synth.features == 2 && cfg.synth.noise == 1.0 && cfg.synth.seed == 1,
		  "synthetic defaults");
	json_decref(j);

	/* every field set */
	j = parse("{\"trainer\": \"mlp\","
			  " \"dataset\": {\"synthetic\": \"spirals\", \"n\": 90, \"classes\": 4, \"noise\": 0,"
			  " \"seed\": -5}, \"epochs\": 10000, \"learning_rate\": 10, \"batch_size\": 65536,"
			  " \"seed\": 7, \"validation_split\": 0.5, \"hidden_layers\": [4096, 1],"
			  " \"activation\": \"tanh\", \"l2\": 0.01}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0, "%s", err);
	CHECK(cfg.trainer == MM_TRAINER_MLP && cfg.epochs == 10000 && cfg.learning_rate == 10 &&
		  cfg.batch_size == 65536 && cfg.seed == 7 && cfg.validation_split == 0.5 &&
		  cfg.nhidden == 2 && cfg.hidden[0] == 4096 && cfg.hidden[1] == 1 &&
		  cfg.activation == MM_ACT_TANH && cfg.l2 == 0.01, "explicit values");
	CHECK(cfg.synth.n == 90 && cfg.synth.classes == 4 && cfg.synth.noise == 0 &&
		  cfg.synth.seed == (uint64_t) -5, "explicit synthetic values");
	json_decref(j);

	j = parse("{\"trainer\": \"mlp\", " SYN "}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0 && cfg.optimizer == MM_OPT_ADAM &&
		  cfg.learning_rate == 0.001 && cfg.early_stopping == 1, "mlp defaults: adam: %s", err);
	json_decref(j);
	/* epochs given: trains them all, unless early stopping is asked for */
	j = parse("{\"trainer\": \"mlp\", \"epochs\": 30, " SYN "}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0 && cfg.epochs == 30 &&
		  cfg.early_stopping == 0, "epochs given: no early stopping: %s", err);
	json_decref(j);
	j = parse("{\"trainer\": \"mlp\", \"epochs\": 30, \"early_stopping\": true,"
			  " \"patience\": 1000, \"optimizer\": \"sgd\", \"split\": \"random\", " SYN "}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0 && cfg.epochs == 30 &&
		  cfg.early_stopping == 1 && cfg.patience == 1000 && cfg.optimizer == MM_OPT_SGD &&
		  cfg.learning_rate == 0.1 && cfg.split == MM_SPLIT_RANDOM, "explicit training keys: %s",
		  err);
	json_decref(j);
	j = parse("{\"optimizer\": \"auto\", \"split\": \"stratified\", \"early_stopping\": false, "
			  SYN "}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0 && cfg.optimizer == MM_OPT_LBFGS &&
		  cfg.split == MM_SPLIT_STRATIFIED && cfg.early_stopping == 0, "auto, stratified: %s", err);
	json_decref(j);

	/* URL dataset */
	j = parse("{\"dataset\": {\"url\": \"HTTPS://example.com/d.csv\", \"label\": \"y\"}}");
	CHECK(mm_config_parse(j, &cfg, err, sizeof(err)) == 0 &&
		  strcmp(cfg.url, "HTTPS://example.com/d.csv") == 0 &&
		  strcmp(cfg.label, "y") == 0 && cfg.synth.kind == MM_SYNTH_NONE, "url dataset: %s", err);
	json_decref(j);

	expect_ok("{\"trainer\": \"noop\"}");
	expect_ok("{\"trainer\": \"linreg\","
			  " \"dataset\": {\"synthetic\": \"linear\", \"features\": 1000}}");
	expect_ok("{\"dataset\": {\"url\": \"file:///data/x.csv\", \"label\": \"y\"}}");
	expect_ok("{\"dataset\": {\"url\": \"http://h/x.csv\", \"label\": \"y\"}}");
	/* forward compatibility: unknown keys, nulls meaning "default", integral reals (jsonb) */
	expect_ok("{" SYN ", \"runner\": \"gpu\", \"description\": \"x\","
			  " \"future_knob\": {\"a\": 1}}");
	expect_ok("{" SYN ", \"epochs\": null, \"l2\": null, \"trainer\": null}");
	expect_ok("{" SYN ", \"epochs\": 50.0, \"batch_size\": 1e1}");
	/* mlp-only keys are validated but harmless for other trainers */
	expect_ok("{" SYN ", \"trainer\": \"logreg\", \"hidden_layers\": [8],"
			  " \"activation\": \"tanh\"}");

	expect_bad("[]", "config must be a JSON object", NULL);
	expect_bad("\"logreg\"", "config must be a JSON object", NULL);

	expect_bad("{" SYN ", \"trainer\": \"svm\"}", "trainer \"svm\"", "logreg, mlp, linreg, noop");
	expect_bad("{" SYN ", \"trainer\": 3}", "trainer", "logreg, mlp, linreg, noop");

	expect_bad("{" SYN ", \"epochs\": 0}", "epochs", "from 1 to 10000");
	expect_bad("{" SYN ", \"epochs\": 100000}", "epochs", "(got 100000)");
	expect_bad("{" SYN ", \"epochs\": 1.5}", "epochs", "integer");
	expect_bad("{" SYN ", \"epochs\": \"10\"}", "epochs", "integer");
	expect_bad("{" SYN ", \"learning_rate\": -0.1}", "learning_rate", "> 0 and <= 10");
	expect_bad("{" SYN ", \"learning_rate\": 0}", "learning_rate", "> 0");
	expect_bad("{" SYN ", \"learning_rate\": 10.5}", "learning_rate", "<= 10");
	expect_bad("{" SYN ", \"learning_rate\": \"fast\"}", "learning_rate", "number");
	expect_bad("{" SYN ", \"batch_size\": 0}", "batch_size", "1 to 65536");
	expect_bad("{" SYN ", \"batch_size\": 65537}", "batch_size", "1 to 65536");
	expect_bad("{" SYN ", \"seed\": \"x\"}", "seed", "integer");
	expect_bad("{" SYN ", \"seed\": 0.5}", "seed", "integer");
	expect_bad("{" SYN ", \"validation_split\": 0}", "validation_split", "> 0 and < 1");
	expect_bad("{" SYN ", \"validation_split\": 1}", "validation_split", "< 1");
	expect_bad("{" SYN ", \"validation_split\": true}", "validation_split", "number");
	expect_bad("{" SYN ", \"hidden_layers\": 16}", "hidden_layers", "array");
	expect_bad("{" SYN ", \"hidden_layers\": []}", "hidden_layers", "1 to 8");
	expect_bad("{" SYN ", \"hidden_layers\": [1,2,3,4,5,6,7,8,9]}", "hidden_layers", "1 to 8");
	expect_bad("{" SYN ", \"hidden_layers\": [16, 0]}", "hidden_layers[1]", "1 to 4096");
	expect_bad("{" SYN ", \"hidden_layers\": [4097]}", "hidden_layers[0]", "1 to 4096");
	expect_bad("{" SYN ", \"hidden_layers\": [\"16\"]}", "hidden_layers[0]", "integer");
	expect_bad("{" SYN ", \"activation\": \"sigmoid\"}", "activation", "relu");
	expect_bad("{" SYN ", \"l2\": -0.001}", "l2", ">= 0");
	expect_bad("{" SYN ", \"optimizer\": \"rmsprop\"}", "optimizer", "\"lbfgs\"");
	expect_bad("{" SYN ", \"optimizer\": 1}", "optimizer", "\"adam\"");
	expect_bad("{" SYN ", \"early_stopping\": 1}", "early_stopping", "true or false");
	expect_bad("{" SYN ", \"patience\": 0}", "patience", "1 to 1000");
	expect_bad("{" SYN ", \"patience\": 1001}", "patience", "1 to 1000");
	expect_bad("{" SYN ", \"split\": \"kfold\"}", "split", "\"stratified\"");
	expect_bad("{\"trainer\": \"linreg\", \"split\": \"stratified\", \"dataset\": "
			   "{\"synthetic\": \"linear\"}}", "split \"stratified\"", "linreg");

	expect_bad("{}", "dataset is required", NULL);
	expect_bad("{\"trainer\": \"mlp\", \"dataset\": null}", "dataset is required", NULL);
	expect_bad("{\"dataset\": \"iris.csv\"}", "dataset must be an object", NULL);
	expect_bad("{\"dataset\": {}}", "dataset needs \"url\"", "\"synthetic\"");
	expect_bad("{\"dataset\": {\"url\": \"http://h/x\", \"synthetic\": \"moons\","
			   " \"label\": \"y\"}}", "mutually exclusive", NULL);
	expect_bad("{\"dataset\": {\"url\": \"http://h/x.csv\"}}", "dataset.label", "required");
	expect_bad("{\"dataset\": {\"url\": \"http://h/x.csv\", \"label\": 3}}", "dataset.label",
			   "string");
	expect_bad("{\"dataset\": {\"url\": \"http://h/x.csv\", \"label\": \"\"}}", "dataset.label",
			   "1 to 1024");
	expect_bad("{\"dataset\": {\"url\": \"ftp://h/x.csv\", \"label\": \"y\"}}", "dataset.url",
			   "file://, http:// or https://");
	expect_bad("{\"dataset\": {\"url\": \"/etc/passwd\", \"label\": \"y\"}}", "dataset.url",
			   "file://");
	expect_bad("{\"dataset\": {\"url\": 42, \"label\": \"y\"}}", "dataset.url", "string");
	expect_bad("{\"dataset\": {\"url\": \"\", \"label\": \"y\"}}", "dataset.url", "empty");
	expect_bad("{\"dataset\": {\"url\": \"http://h/a b.csv\", \"label\": \"y\"}}", "dataset.url",
			   "spaces");
	expect_bad("{\"dataset\": {\"url\": \"http://h/x.csv\", \"label\": \"y\", \"n\": 5}}",
			   "dataset.n", "synthetic");
	expect_bad("{\"dataset\": {\"synthetic\": \"circles\"}}", "dataset.synthetic",
			   "blobs, moons, spirals, linear");
	expect_bad("{\"dataset\": {\"synthetic\": 1}}", "dataset.synthetic", NULL);
	expect_bad("{\"dataset\": {\"synthetic\": \"moons\", \"label\": \"y\"}}", "dataset.label",
			   NULL);
	expect_bad("{\"dataset\": {\"synthetic\": \"moons\", \"n\": 1}}", "dataset.n", "2 to 1000000");
	expect_bad("{\"dataset\": {\"synthetic\": \"moons\", \"n\": 1000001}}", "dataset.n",
			   "2 to 1000000");
	expect_bad("{\"dataset\": {\"synthetic\": \"blobs\", \"classes\": 1}}", "dataset.classes",
			   "2 to 100");
	expect_bad("{\"dataset\": {\"synthetic\": \"blobs\", \"classes\": 101}}", "dataset.classes",
			   "2 to 100");
	expect_bad("{\"dataset\": {\"synthetic\": \"moons\", \"classes\": 3}}", "dataset.classes",
			   "blobs and spirals");
	expect_bad("{\"dataset\": {\"synthetic\": \"blobs\", \"features\": 0}}", "dataset.features",
			   "1 to 1000");
	expect_bad("{\"dataset\": {\"synthetic\": \"blobs\", \"features\": 1001}}", "dataset.features",
			   "1 to 1000");
	expect_bad("{\"dataset\": {\"synthetic\": \"spirals\", \"features\": 3}}", "dataset.features",
			   "blobs and linear");
	expect_bad("{\"dataset\": {\"synthetic\": \"moons\", \"noise\": -1}}", "dataset.noise", ">= 0");
	expect_bad("{\"dataset\": {\"synthetic\": \"moons\", \"seed\": \"s\"}}", "dataset.seed",
			   "integer");
	expect_bad("{\"dataset\": {\"synthetic\": \"blobs\", \"n\": 1000000, \"features\": 1000}}",
			   "dataset.n * dataset.features", "50000000");
	expect_bad("{\"trainer\": \"linreg\", " SYN "}", "linreg", "\"linear\"");
	expect_bad("{\"trainer\": \"mlp\", \"dataset\": {\"synthetic\": \"linear\"}}", "regression",
			   "linreg");

	/* the strict check: everything above, plus unknown and inapplicable keys */
	{
		static const char *const strict_bad[][2] = {
			{"{" SYN ", \"lerning_rate\": 0.1}", "did you mean \"learning_rate\""},
			{"{" SYN ", \"future_knob\": 1}", "future_knob is not a config key"},
			{"{\"dataset\": {\"synthetic\": \"blobs\", \"clases\": 3}}",
			"did you mean \"dataset.classes\""},
			{"{" SYN ", \"hidden_layers\": [8]}", "does not apply to trainer \"logreg\""},
			{"{\"trainer\": \"noop\", \"epochs\": 3}", "does not apply to trainer \"noop\""},
			{"{" SYN ", \"epochs\": 0}", "from 1 to 10000"},
		};
		static const char *const strict_ok[] = {
			"{" SYN ", \"trainer\": \"logreg\", \"hidden_layers\": null, \"replicas\": 2}",
			"{\"trainer\": \"mlp\", \"hidden_layers\": [4], \"activation\": \"tanh\", " SYN "}",
			"{\"trainer\": \"noop\", \"replicas\": 3}",
		};

		for (size_t i = 0; i < sizeof(strict_bad) / sizeof(strict_bad[0]); i++)
		{
			j = parse(strict_bad[i][0]);
			err[0] = '\0';
			CHECK(mm_config_check(j, err, sizeof(err)) == -1, "strict check accepted %s",
				  strict_bad[i][0]);
			CHECK_MSG(err, strict_bad[i][1]);
			json_decref(j);
		}
		for (size_t i = 0; i < sizeof(strict_ok) / sizeof(strict_ok[0]); i++)
		{
			j = parse(strict_ok[i]);
			err[0] = '\0';
			CHECK(mm_config_check(j, err, sizeof(err)) == 0, "strict check refused %s: %s",
				  strict_ok[i], err);
			json_decref(j);
		}
		j = mm_config_schema();
		CHECK(json_integer_value(json_object_get(j, "version")) == MM_CONFIG_SCHEMA_VERSION &&
			  json_object_get(json_object_get(j, "keys"), "hidden_layers") != NULL,
			  "config schema without its version or keys");
		json_decref(j);
	}

	return t_summary();
}
