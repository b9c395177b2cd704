/*
 * submit.c — submit: a job config from a JSON file, from flags for the built-in trainers, or both
 * (flags override the file's fields), then modelmine.submit_job.
 *
 * The flags are checked here against what the worker's trainers accept (worker/train/config.c), so
 * a typo is a usage error now rather than a FAILED job later.  A --config file is passed on as it
 * is: the database judges what flags cannot say (an unknown trainer, a runner with a trainer).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "modelmine/protocol.h"

#define MAX_HIDDEN 8			/* MM_MAX_HIDDEN in worker/train/net.h */
#define MAX_WIDTH 4096			/* MM_MAX_WIDTH */

enum
{
	O_CONFIG = OPT_FIRST_COMMAND_OPTION, O_TRAINER, O_DATASET, O_CSV, O_LABEL, O_SAMPLES, O_EPOCHS,
	O_LR, O_BATCH, O_HIDDEN, O_SEED, O_TITLE, O_DESC, O_STAKE, O_PRIORITY, O_REPLICAS,
	O_START_BY, O_FINISH_BY, O_MEMORY, O_CORES, O_NEED_LABEL
};

static const char *const trainers[MM_NTRAINERS] = MM_TRAINERS;
static const char *const datasets[] = {"blobs", "moons", "spirals", "linear"};
#define NDATASETS ((int) (sizeof(datasets) / sizeof(datasets[0])))

/* What the command line asked for: the job's fields, and the config fields the flags set. */
typedef struct Submit
{
	const char *config_path,
			   *dataset,
			   *csv,
			   *label,
			   *title,
			   *description,
			   *stake,
			   *priority;
	json_t	   *set;			/* flag values, applied over the config file */
	const char *start_by,		/* --start-by, --finish-by: passed as text, parsed by the database */
			   *finish_by;
	json_t	   *needs;			/* --memory-mb, --cores, --need-label: the job's requirements */
} Submit;

/* Whether s is one of the n names in list. */
static bool
one_of(const char *s, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* "logreg, mlp, linreg or noop": the names for a usage message. */
static char *
or_list(const char *const *list, int n)
{
	Str			b = {0};

	for (int i = 0; i < n; i++)
		str_addf(&b, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", list[i]);
	return str_take(&b);
}

/* A usage error naming the accepted values, for --trainer and --dataset. */
static int
not_one_of(Ctx *c, const char *option, const char *got, const char *const *list, int n)
{
	char	   *names = or_list(list, n);

	usage_error(c, "%s must be %s, got \"%s\"", option, names, got);
	free(names);
	return EXIT_USAGE;
}

/* The --config file ("-": stdin) as a JSON object, or NULL after a usage error. */
static json_t *
load_config(Ctx *c, const char *path)
{
	json_error_t err;
	json_t	   *j = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &err)
		: json_load_file(path, 0, &err);

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

/* --hidden "32,16" as [32, 16], or NULL after a usage error. */
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

/* The default title: "mlp on moons", "logreg on iris.csv", "runner torch", "noop". */
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
		trainer = MM_TRAINER_DEFAULT;
	if (syn == NULL && url)
		syn = strrchr(url, '/') && strrchr(url, '/')[1] ? strrchr(url, '/') + 1 : url;
	if (syn == NULL)
		return strdup(trainer);
	return asprintf(&t, "%s on %s", trainer, syn) < 0 ? NULL : t;
}

/* Reads one option into s; returns -1 to go on, else the exit code to return. */
static int
take_option(Ctx *c, Submit *s, int opt, int argc, char **argv)
{
	long long	n;
	double		x;
	json_t	   *hidden;

	switch (opt)
	{
		case O_CONFIG:
			s->config_path = optarg;
			return -1;
		case O_TRAINER:
			if (!one_of(optarg, trainers, MM_NTRAINERS))
				return not_one_of(c, "--trainer", optarg, trainers, MM_NTRAINERS);
			json_object_set_new(s->set, "trainer", json_string(optarg));
			return -1;
		case O_DATASET:
			if (!one_of(optarg, datasets, NDATASETS))
				return not_one_of(c, "--dataset", optarg, datasets, NDATASETS);
			s->dataset = optarg;
			return -1;
		case O_CSV:
			s->csv = optarg;
			return -1;
		case O_LABEL:
			s->label = optarg;
			return -1;
		case O_SAMPLES:
			if (parse_int64(c, "--samples", optarg, 2, 1000000, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->set, "n", json_integer(n));
			return -1;
		case O_EPOCHS:
			if (parse_int64(c, "--epochs", optarg, 1, 10000, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->set, "epochs", json_integer(n));
			return -1;
		case O_REPLICAS:
			/* the network's max_replicas (at most 5) is checked by submit_job */
			if (parse_int64(c, "--replicas", optarg, 1, 5, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->set, "replicas", json_integer(n));
			return -1;
		case O_LR:
			if (parse_double(c, "--lr", optarg, 0, 10, &x) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->set, "learning_rate", json_real(x));
			return -1;
		case O_BATCH:
			if (parse_int64(c, "--batch-size", optarg, 1, 65536, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->set, "batch_size", json_integer(n));
			return -1;
		case O_HIDDEN:
			if ((hidden = parse_hidden(c, optarg)) == NULL)
				return EXIT_USAGE;
			json_object_set_new(s->set, "hidden_layers", hidden);
			return -1;
		case O_SEED:
			if (parse_int64(c, "--seed", optarg, 0, LLONG_MAX, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->set, "seed", json_integer(n));
			return -1;
		case O_TITLE:
			s->title = optarg;
			return -1;
		case O_DESC:
			s->description = optarg;
			return -1;
		case O_STAKE:
			if (parse_int64(c, "--stake", optarg, 1, LLONG_MAX, &n) != 0)
				return EXIT_USAGE;
			s->stake = optarg;
			return -1;
		case O_PRIORITY:
			if (parse_int64(c, "--priority", optarg, MM_PRIORITY_MIN, MM_PRIORITY_MAX, &n) != 0)
				return EXIT_USAGE;
			s->priority = optarg;
			return -1;
		case O_START_BY:
			s->start_by = optarg;
			return -1;
		case O_FINISH_BY:
			s->finish_by = optarg;
			return -1;
		case O_MEMORY:
			if (parse_int64(c, "--memory-mb", optarg, 0, MM_MAX_MEMORY_MB, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->needs, "memory_mb", json_integer(n));
			return -1;
		case O_CORES:
			if (parse_int64(c, "--cores", optarg, 0, MM_MAX_CORES, &n) != 0)
				return EXIT_USAGE;
			json_object_set_new(s->needs, "cores", json_integer(n));
			return -1;
		case O_NEED_LABEL:
			{
				json_t	   *labels = json_object_get(s->needs, "labels");

				if (labels == NULL)
					json_object_set_new(s->needs, "labels", labels = json_array());
				/* the database checks the names and their number, naming requirements.labels */
				json_array_append_new(labels, json_string(optarg));
				return -1;
			}
	}
	return common_option(c, opt, optarg, argc, argv);
}

/* Parses the command line into s and checks that its flags go together; -1 or the exit code. */
static int
parse_submit(Ctx *c, int argc, char **argv, Submit *s)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG},
		{"trainer", required_argument, NULL, O_TRAINER},
		{"dataset", required_argument, NULL, O_DATASET},
		{"csv", required_argument, NULL, O_CSV},
		{"label", required_argument, NULL, O_LABEL},
		{"samples", required_argument, NULL, O_SAMPLES},
		{"epochs", required_argument, NULL, O_EPOCHS},
		{"lr", required_argument, NULL, O_LR},
		{"batch-size", required_argument, NULL, O_BATCH},
		{"hidden", required_argument, NULL, O_HIDDEN},
		{"seed", required_argument, NULL, O_SEED},
		{"title", required_argument, NULL, O_TITLE},
		{"description", required_argument, NULL, O_DESC},
		{"stake", required_argument, NULL, O_STAKE},
		{"priority", required_argument, NULL, O_PRIORITY},
		{"replicas", required_argument, NULL, O_REPLICAS},
		{"start-by", required_argument, NULL, O_START_BY},
		{"finish-by", required_argument, NULL, O_FINISH_BY},
		{"memory-mb", required_argument, NULL, O_MEMORY},
		{"cores", required_argument, NULL, O_CORES},
		{"need-label", required_argument, NULL, O_NEED_LABEL},
		COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((rc = take_option(c, s, opt, argc, argv)) >= 0)
			return rc;
	if ((rc = need_args(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if (s->dataset && s->csv)
		return usage_error(c, "--dataset and --csv exclude each other");
	if ((s->csv == NULL) != (s->label == NULL))
		return usage_error(c, s->csv ? "--csv needs --label COLUMN"
						   : "--label goes with --csv URL");
	if (json_object_get(s->set, "n") && s->csv)
		return usage_error(c, "--samples applies to synthetic datasets only");
	return -1;
}

/* The config: the file (or {}), then the flags over it; NULL after a usage error. */
static json_t *
build_config(Ctx *c, Submit *s)
{
	json_t	   *config = s->config_path ? load_config(c, s->config_path) : json_object();

	if (config == NULL)
		return NULL;
	if (s->dataset)
		json_object_set_new(config, "dataset", json_pack("{s:s}", "synthetic", s->dataset));
	if (s->csv)
		json_object_set_new(config, "dataset",
							json_pack("{s:s, s:s}", "url", s->csv, "label", s->label));
	if (json_object_get(s->set, "n"))
	{
		json_t	   *ds = json_object_get(config, "dataset");

		if (!json_is_object(ds) || !json_object_get(ds, "synthetic"))
		{
			usage_error(c, "--samples needs a synthetic dataset (--dataset)");
			json_decref(config);
			return NULL;
		}
		json_object_set(ds, "n", json_object_get(s->set, "n"));
		json_object_del(s->set, "n");
	}
	json_object_update(config, s->set);
	return config;
}

/*
 * Whether the config lacks a dataset its trainer needs: a built-in trainer (the default one when
 * none is named) other than noop, and no runner.  A trainer that is not built in is the database's
 * to refuse, with an error that names it.
 */
static bool
lacks_dataset(const json_t *config)
{
	const json_t *t = json_object_get(config, "trainer");
	const char *trainer = t ? json_string_value(t) : MM_TRAINER_DEFAULT;

	if (json_object_get(config, "dataset") || json_object_get(config, "runner") || trainer == NULL)
		return false;
	return one_of(trainer, trainers, MM_NTRAINERS) && strcmp(trainer, "noop") != 0;
}

/* Submits the job and reads it back as the database stored it; NULL after a database error. */
static json_t *
submit_job(Ctx *c, const Submit *s, const json_t *config)
{
	char	   *text = json_dumps(config, JSON_COMPACT | JSON_REAL_PRECISION(15));
	char	   *needs = json_object_size(s->needs) ? json_dumps(s->needs, JSON_COMPACT) : NULL;
	const char *args[8] = {s->title, text, s->description, s->stake, s->priority, s->start_by,
	s->finish_by, needs};
	PGresult   *r = db_query(c, "SELECT modelmine.submit_job($1, $2::jsonb, $3, $4::bigint, $5::int, "
							 "$6::timestamptz, $7::timestamptz, $8::jsonb)", 8, args);
	const char *idarg[1];
	json_t	   *job;

	free(text);
	free(needs);
	if (r == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_INSUFFICIENT_BALANCE,
					"stake less (--stake N), cancel a pending job (modelmine cancel ID), move a "
					"node's earnings to your balance (modelmine withdraw NODE_ID), or ask another "
					"user to send you tokens");
		db_set_hint(c, MM_SQLSTATE_UNPLACEABLE,
					"ask for less (--memory-mb, --cores, --need-label); modelmine nodes lists what "
					"the nodes offer");
		return NULL;
	}
	idarg[0] = PQgetvalue(r, 0, 0);
	job = db_json(c, "SELECT pg_catalog.json_build_object('job_id', j.id, 'title', j.title, "
				  "'status', j.status, 'stake', j.stake, 'priority', j.priority, "
				  "'config', j.config) FROM modelmine.job($1::bigint) j", 1, idarg);
	PQclear(r);
	return job;
}

/* Prints the new job: its id alone on stdout (or the row with --json), a note on a terminal. */
static void
print_submitted(Ctx *c, const json_t *job)
{
	long long	id = json_integer_value(json_object_get(job, "job_id")),
				stake = json_integer_value(json_object_get(job, "stake"));

	if (c->json)
	{
		print_json(job);
		return;
	}
	printf("%lld\n", id);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "Submitted job %lld (%lld token%s staked); follow it with: "
				"modelmine watch %lld\n", id, stake, stake == 1 ? "" : "s", id);
}

/* submit: parse, build the config, check it needs nothing more, submit, print. */
int
cmd_submit(Ctx *c, int argc, char **argv)
{
	Submit		s = {.priority = "0", .set = json_object(), .needs = json_object()};
	json_t	   *config = NULL,
			   *job = NULL;
	char	   *auto_title = NULL;
	int			rc;

	if ((rc = parse_submit(c, argc, argv, &s)) >= 0)
		goto done;
	rc = EXIT_USAGE;
	if ((config = build_config(c, &s)) == NULL)
		goto done;
	if (lacks_dataset(config))
	{
		usage_error(c, "a dataset is needed: --dataset NAME or --csv URL --label COLUMN "
					"(or --trainer noop)");
		goto done;
	}
	if (s.title == NULL)
		s.title = auto_title = default_title(config);
	if ((rc = db_open_user(c)) != EXIT_OK)
		goto done;
	if ((job = submit_job(c, &s, config)) == NULL)
	{
		rc = db_fail(c);
		goto done;
	}
	print_submitted(c, job);
	rc = EXIT_OK;
done:
	json_decref(s.set);
	json_decref(s.needs);
	json_decref(config);
	json_decref(job);
	free(auto_title);
	return rc;
}
