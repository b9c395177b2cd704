/*
 * submit.c — submit: a job config from a JSON file, from flags for the built-in trainers, or both
 * (flags override the file's fields), then modelmine.submit_job.
 *
 * The flags are checked here against what the worker's trainers accept (worker/train/config.c), so a
 * typo is a usage error now rather than a FAILED job later; a --config file is passed on as it is.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_HIDDEN 8			/* MM_MAX_HIDDEN in worker/train/net.h */
#define MAX_WIDTH 4096			/* MM_MAX_WIDTH */

enum
{
	O_CONFIG = OPT_FIRST_COMMAND_OPTION, O_TRAINER, O_DATASET, O_CSV, O_LABEL, O_SAMPLES, O_EPOCHS, O_LR,
	O_BATCH, O_HIDDEN, O_SEED, O_TITLE, O_DESC, O_STAKE, O_PRIORITY
};

static bool
one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static json_t *
load_config(Ctx *c, const char *path)
{
	json_error_t err;
	json_t	   *j = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &err) : json_load_file(path, 0, &err);

	if (j == NULL)
	{
		usage_error(c, "--config %s: %s (line %d)", path, err.text, err.line);
		return NULL;
	}
	if (!json_is_object(j))
	{
		usage_error(c, "--config %s must hold a JSON object", path);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* "32,16" -> [32, 16] */
static json_t *
parse_hidden(Ctx *c, const char *s)
{
	json_t	   *a = json_array();
	char	   *copy = strdup(s),
			   *save = NULL;
	int			n = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		long long	w;

		if (++n > MAX_HIDDEN || parse_int64(c, "each --hidden size", tok, 1, MAX_WIDTH, &w) != 0)
		{
			if (n > MAX_HIDDEN)
				usage_error(c, "--hidden takes at most %d layer sizes", MAX_HIDDEN);
			json_decref(a);
			free(copy);
			return NULL;
		}
		json_array_append_new(a, json_integer(w));
	}
	free(copy);
	if (n == 0)
	{
		usage_error(c, "--hidden needs layer sizes such as 32,16");
		json_decref(a);
		return NULL;
	}
	return a;
}

/* "mlp on moons", "logreg on iris.csv", "runner torch", "noop". */
static char *
default_title(const json_t *config)
{
	const char *runner = json_string_value(json_object_get(config, "runner"));
	const char *trainer = json_string_value(json_object_get(config, "trainer"));
	const json_t *ds = json_object_get(config, "dataset");
	const char *syn = json_string_value(json_object_get(ds, "synthetic"));
	const char *url = json_string_value(json_object_get(ds, "url"));
	char	   *t;

	if (runner)
		return asprintf(&t, "runner %s", runner) < 0 ? NULL : t;
	if (trainer == NULL)
		trainer = "logreg";
	if (syn == NULL && url)
		syn = strrchr(url, '/') && strrchr(url, '/')[1] ? strrchr(url, '/') + 1 : url;
	if (syn == NULL)
		return strdup(trainer);
	return asprintf(&t, "%s on %s", trainer, syn) < 0 ? NULL : t;
}

int
cmd_submit(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG}, {"trainer", required_argument, NULL, O_TRAINER},
		{"dataset", required_argument, NULL, O_DATASET}, {"csv", required_argument, NULL, O_CSV},
		{"label", required_argument, NULL, O_LABEL}, {"samples", required_argument, NULL, O_SAMPLES},
		{"epochs", required_argument, NULL, O_EPOCHS}, {"lr", required_argument, NULL, O_LR},
		{"batch-size", required_argument, NULL, O_BATCH}, {"hidden", required_argument, NULL, O_HIDDEN},
		{"seed", required_argument, NULL, O_SEED}, {"title", required_argument, NULL, O_TITLE},
		{"description", required_argument, NULL, O_DESC}, {"stake", required_argument, NULL, O_STAKE},
		{"priority", required_argument, NULL, O_PRIORITY}, COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	static const char *const trainers[] = {"logreg", "mlp", "linreg", "noop", NULL};
	static const char *const datasets[] = {"blobs", "moons", "spirals", "linear", NULL};
	const char *config_path = NULL,
			   *dataset = NULL,
			   *csv = NULL,
			   *label = NULL,
			   *title = NULL,
			   *description = NULL,
			   *stake = NULL,
			   *priority = "0",
			   *trainer;
	json_t	   *set = json_object();	/* flag values, applied over the config file */
	json_t	   *config = NULL,
			   *job = NULL,
			   *hidden;
	char	   *auto_title = NULL,
			   *text = NULL;
	long long	n,
				id;
	double		x;
	int			opt,
				rc = EXIT_USAGE;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case O_CONFIG:
				config_path = optarg;
				break;
			case O_TRAINER:
				if (!one_of(optarg, trainers))
				{
					usage_error(c, "--trainer must be logreg, mlp, linreg or noop, got \"%s\"", optarg);
					goto done;
				}
				json_object_set_new(set, "trainer", json_string(optarg));
				break;
			case O_DATASET:
				if (!one_of(optarg, datasets))
				{
					usage_error(c, "--dataset must be blobs, moons, spirals or linear, got \"%s\"", optarg);
					goto done;
				}
				dataset = optarg;
				break;
			case O_CSV:
				csv = optarg;
				break;
			case O_LABEL:
				label = optarg;
				break;
			case O_SAMPLES:
				if (parse_int64(c, "--samples", optarg, 2, 1000000, &n) != 0)
					goto done;
				json_object_set_new(set, "n", json_integer(n));
				break;
			case O_EPOCHS:
				if (parse_int64(c, "--epochs", optarg, 1, 10000, &n) != 0)
					goto done;
				json_object_set_new(set, "epochs", json_integer(n));
				break;
			case O_LR:
				if (parse_double(c, "--lr", optarg, 0, 10, &x) != 0)
					goto done;
				json_object_set_new(set, "learning_rate", json_real(x));
				break;
			case O_BATCH:
				if (parse_int64(c, "--batch-size", optarg, 1, 65536, &n) != 0)
					goto done;
				json_object_set_new(set, "batch_size", json_integer(n));
				break;
			case O_HIDDEN:
				if ((hidden = parse_hidden(c, optarg)) == NULL)
					goto done;
				json_object_set_new(set, "hidden_layers", hidden);
				break;
			case O_SEED:
				if (parse_int64(c, "--seed", optarg, 0, LLONG_MAX, &n) != 0)
					goto done;
				json_object_set_new(set, "seed", json_integer(n));
				break;
			case O_TITLE:
				title = optarg;
				break;
			case O_DESC:
				description = optarg;
				break;
			case O_STAKE:
				if (parse_int64(c, "--stake", optarg, 1, LLONG_MAX, &n) != 0)
					goto done;
				stake = optarg;
				break;
			case O_PRIORITY:
				if (parse_int64(c, "--priority", optarg, -1000, 1000, &n) != 0)
					goto done;
				priority = optarg;
				break;
			default:
				if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
					goto done;
				rc = EXIT_USAGE;
		}
	}
	if ((rc = need_args(c, argc, argv, 0, 0)) >= 0)
		goto done;
	rc = EXIT_USAGE;
	if (dataset && csv)
	{
		usage_error(c, "--dataset and --csv exclude each other");
		goto done;
	}
	if ((csv == NULL) != (label == NULL))
	{
		usage_error(c, csv ? "--csv needs --label COLUMN" : "--label goes with --csv URL");
		goto done;
	}
	if (json_object_get(set, "n") && csv)
	{
		usage_error(c, "--samples applies to synthetic datasets only");
		goto done;
	}

	/* the config: the file, then the flags over it */
	if (config_path && (config = load_config(c, config_path)) == NULL)
		goto done;
	if (config == NULL)
		config = json_object();
	if (dataset)
		json_object_set_new(config, "dataset", json_pack("{s:s}", "synthetic", dataset));
	if (csv)
		json_object_set_new(config, "dataset", json_pack("{s:s, s:s}", "url", csv, "label", label));
	if (json_object_get(set, "n"))
	{
		json_t	   *ds = json_object_get(config, "dataset");

		if (!json_is_object(ds) || !json_object_get(ds, "synthetic"))
		{
			usage_error(c, "--samples needs a synthetic dataset (--dataset)");
			goto done;
		}
		json_object_set(ds, "n", json_object_get(set, "n"));
		json_object_del(set, "n");
	}
	json_object_update(config, set);
	trainer = json_string_value(json_object_get(config, "trainer"));
	if (!json_object_get(config, "dataset") && !json_object_get(config, "runner") &&
		(trainer == NULL || strcmp(trainer, "noop") != 0))
	{
		usage_error(c, "a dataset is needed: --dataset NAME or --csv URL --label COLUMN (or --trainer noop)");
		goto done;
	}
	if (title == NULL)
		title = auto_title = default_title(config);

	if ((rc = db_open_user(c)) != EXIT_OK)
		goto done;
	text = json_dumps(config, JSON_COMPACT | JSON_REAL_PRECISION(15));
	{
		const char *args[5] = {title, text, description, stake, priority};
		PGresult   *r = db_query(c, "SELECT modelmine.submit_job($1, $2::jsonb, $3, $4::bigint, $5::int)", 5, args);
		char		idtext[32];
		const char *idarg[1] = {idtext};

		if (r == NULL)
		{
			db_set_hint(c, "MM001", "stake less (--stake N), cancel a pending job (modelmine cancel ID), move a node's "
						"earnings to your balance (modelmine withdraw NODE_ID), or ask another user to send you tokens");
			rc = db_fail(c);
			goto done;
		}
		id = atoll(PQgetvalue(r, 0, 0));
		PQclear(r);
		snprintf(idtext, sizeof(idtext), "%lld", id);
		job = db_json(c, "SELECT pg_catalog.json_build_object('job_id', j.id, 'title', j.title, 'status', j.status, "
					  "'stake', j.stake, 'priority', j.priority, 'config', j.config) FROM modelmine.job($1::bigint) j",
					  1, idarg);
		if (job == NULL)
		{
			rc = db_fail(c);
			goto done;
		}
	}
	if (c->json)
		print_json(job);
	else
	{
		printf("%lld\n", id);
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "Submitted job %lld (%lld tokens staked); follow it with: modelmine watch %lld\n", id,
					(long long) json_integer_value(json_object_get(job, "stake")), id);
	}
	rc = EXIT_OK;
done:
	json_decref(set);
	json_decref(config);
	json_decref(job);
	free(auto_title);
	free(text);
	return rc;
}
