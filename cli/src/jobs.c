/*
 * jobs.c — jobs, job, cancel, result: reading and ending the signed-in user's jobs.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

enum
{
	O_STATUS = OPT_FIRST_COMMAND_OPTION, O_SORT, O_DESC, O_ASC, O_LIMIT, O_OFFSET, O_OUTPUT
};

static const char hint_my_jobs[] = "list your jobs with: modelmine jobs";

/* jobs: the signed-in user's jobs, filtered and sorted, as a table or JSON. */
int
cmd_jobs(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"status", required_argument, NULL, O_STATUS}, {"sort", required_argument, NULL, O_SORT},
		{"desc", no_argument, NULL, O_DESC}, {"asc", no_argument, NULL, O_ASC},
		{"limit", required_argument, NULL, O_LIMIT}, {"offset", required_argument, NULL, O_OFFSET},
		COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	static const Column cols[] = {
		{.key = "id", .header = "ID", .right = true},
		{.key = "status", .header = "STATUS", .status = true},
		{.key = "progress", .header = "PROGRESS", .right = true, .fn = cell_pct},
		{.key = "title", .header = "TITLE", .max = 40},
		{.key = "stake", .header = "STAKE", .right = true},
		{.key = "priority", .header = "PRIO", .right = true},
		{.key = "node_id", .header = "NODE", .right = true},
		{.key = "attempts", .header = "TRIES", .right = true},
		{.key = "replicas", .header = "REPL", .right = true},
		{.key = "validation", .header = "CHECK"},
		{.key = "created_at", .header = "CREATED", .fn = cell_time},
	};
	char		status[16] = "";
	const char *sort = "created",
			   *desc = "true",
			   *limit = "50",
			   *offset = "0";
	json_t	   *rows;
	long long	n;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case O_STATUS:
				{
					bool		ok = false;

					snprintf(status, sizeof(status), "%s", optarg);
					for (char *p = status; *p; p++)
						*p = (char) toupper((unsigned char) *p);
					for (int i = 0; i < MM_NSTATUSES; i++)
						ok = ok || strcmp(status, job_statuses[i]) == 0;
					if (!ok)
						return usage_error(c, "--status must be pending, running, completed, failed "
										   "or canceled, got \"%s\"", optarg);
					break;
				}
			case O_SORT:
				if (strcmp(optarg, "created") != 0 && strcmp(optarg, "stake") != 0 &&
					strcmp(optarg, "status") != 0)
					return usage_error(c, "--sort must be created, stake or status, got \"%s\"",
									   optarg);
				sort = optarg;
				break;
			case O_DESC:
				desc = "true";
				break;
			case O_ASC:
				desc = "false";
				break;
			case O_LIMIT:
				if (parse_int64(c, "--limit", optarg, 0, 10000, &n) != 0)
					return EXIT_USAGE;
				limit = optarg;
				break;
			case O_OFFSET:
				if (parse_int64(c, "--offset", optarg, 0, INT_MAX, &n) != 0)
					return EXIT_USAGE;
				offset = optarg;
				break;
			default:
				if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
					return rc;
		}
	}
	if ((rc = need_args(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	{
		const char *args[5] = {status[0] ? status : NULL, sort, desc, limit, offset};

		rows = db_json(c, "SELECT COALESCE(pg_catalog.json_agg(j), '[]') "
					   "FROM modelmine.my_jobs($1, $2, $3::boolean, $4::int, $5::int) j", 5, args);
	}
	if (rows == NULL)
		return db_fail(c);
	if (c->json)
		print_json(rows);
	else if (json_array_size(rows) == 0 && status[0])
		printf("No %s jobs.\n", status);
	else if (json_array_size(rows) == 0)
		printf("No jobs yet. Submit one with: modelmine submit --trainer logreg --dataset blobs\n");
	else
		print_table(c, rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
	return EXIT_OK;
}

/* "epoch 705/1500, loss 0.3121, accuracy 0.8812" from progress metrics or a result. */
char *
describe_metrics(const json_t *m)
{
	Str			b = {0};
	const json_t *v;
	char	   *num;

	if (!json_is_object(m))
		return strdup("-");
	if ((v = json_object_get(m, "epoch")) && json_is_integer(v))
	{
		str_addf(&b, "epoch %lld", (long long) json_integer_value(v));
		if ((v = json_object_get(m, "epochs")) && json_is_integer(v))
			str_addf(&b, "/%lld", (long long) json_integer_value(v));
	}
	else if ((v = json_object_get(m, "epochs")) && json_is_integer(v))
		str_addf(&b, "%lld epochs", (long long) json_integer_value(v));
	if ((v = json_object_get(m, "loss")) && json_is_number(v))
	{
		num = fmt_number(json_number_value(v), 4);
		str_addf(&b, "%sloss %s", b.len ? ", " : "", num);
		free(num);
	}
	if ((v = json_object_get(m, "accuracy")) && json_is_number(v))
	{
		num = fmt_number(json_number_value(v), 4);
		str_addf(&b, "%saccuracy %s", b.len ? ", " : "", num);
		free(num);
	}
	return b.len ? str_take(&b) : fmt_value(m);
}

/* A new string from a printf format. */
static char *
strf(const char *fmt,...)
{
	va_list		ap;
	char	   *s;
	int			n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? strdup("?") : s;
}

/* replica lines shown at most; a job's replica_results can hold more (expired leases) */
#define MAX_REPLICA_LINES 12

/* "2 wanted of 2 asked, validation VALID" or "1, unchecked": the replicas line of `job ID`. */
static char *
describe_replicas(const json_t *j)
{
	long long	asked = (long long) json_integer_value(json_object_get(j, "replicas"));
	long long	wanted = (long long) json_integer_value(json_object_get(j, "replicas_wanted"));
	const char *v = json_string_value(json_object_get(j, "validation"));

	if (wanted <= 1 && v == NULL)
		return strdup("1, unchecked (one result, not replicated)");
	return strf("%lld asked, %lld wanted; validation %s", asked, wanted, v ? v : "none");
}

/* One replica: "node 3: SUBMITTED, AGREE, paid 40; loss 0.25, accuracy 0.9, 5 epochs". */
static char *
describe_replica(const json_t *r)
{
	const char *verdict = json_string_value(json_object_get(r, "verdict"));
	const json_t *loss = json_object_get(r, "loss");
	Str			b = {0};
	char	   *num;

	str_addf(&b, "node %lld: %s", (long long) json_integer_value(json_object_get(r, "node_id")),
			 json_string_value(json_object_get(r, "status")));
	if (verdict)
		str_addf(&b, ", %s, paid %lld", verdict,
				 (long long) json_integer_value(json_object_get(r, "reward")));
	if (json_is_number(loss))
	{
		num = fmt_number(json_number_value(loss), 4);
		str_addf(&b, "; loss %s", num);
		free(num);
		if (json_is_number(json_object_get(r, "accuracy")))
		{
			num = fmt_number(json_number_value(json_object_get(r, "accuracy")), 4);
			str_addf(&b, ", accuracy %s", num);
			free(num);
		}
		str_addf(&b, ", %lld epochs", (long long) json_integer_value(json_object_get(r, "epochs")));
	}
	return str_take(&b);
}

/* One job as key/value lines; result_bytes is what `result -o FILE` writes (0 without a result). */
static void
print_job(Ctx *c, const json_t *j, long long result_bytes, const json_t *queue)
{
	const char *keys[19 + MAX_REPLICA_LINES + 1];
	char	   *vals[19 + MAX_REPLICA_LINES + 1];
	const json_t *replicas = json_object_get(j, "replica_results");
	int			n = 0;
	const json_t *result = json_object_get(j, "result");
	const char *status = json_string_value(json_object_get(j, "status"));
	long long	stake = json_integer_value(json_object_get(j, "stake"));
	char	   *pct = fmt_number(json_number_value(json_object_get(j, "progress")), 1);
	char	   *st = colored(c->color, status_color(status), status ? status : "?");
	Lines		l = {0};

#define KV(k, v) (keys[n] = (k), vals[n++] = (v))
#define J_INT(key) ((long long) json_integer_value(json_object_get(j, key)))
	KV("job", fmt_value(json_object_get(j, "id")));
	KV("title", fmt_value(json_object_get(j, "title")));
	KV("status", strf("%s, %s%%", st, pct));
	KV("owner", fmt_value(json_object_get(j, "owner_email")));
	KV("stake", strf("%lld token%s, priority %lld", stake, stake == 1 ? "" : "s",
					 J_INT("priority")));
	if (!json_is_null(json_object_get(j, "node_id")))
		KV("node", strf("%lld (attempt %lld)", J_INT("node_id"), J_INT("attempts")));
	KV("replicas", describe_replicas(j));
	if (json_is_array(replicas) && (json_array_size(replicas) > 1 ||
									!json_is_null(json_object_get(j, "validation"))))
	{
		size_t		k;
		const json_t *r;

		json_array_foreach(replicas, k, r)
		{
			if (k == MAX_REPLICA_LINES)
			{
				KV("replica", strf("... %zu more (modelmine job %lld --json)",
								   json_array_size(replicas) - k, J_INT("id")));
				break;
			}
			KV("replica", describe_replica(r));
		}
	}
	/* why it waits (job_queue): the scheduler's reason and its estimate of the starts before it */
	if (json_is_string(json_object_get(queue, "reason")))
		KV("waiting", strf("%s; about %lld start%s before it",
						   json_string_value(json_object_get(queue, "reason")),
						   (long long) json_integer_value(json_object_get(queue, "queue_position")),
						   json_integer_value(json_object_get(queue, "queue_position")) == 1 ?
						   "" : "s"));
	if (json_is_string(json_object_get(queue, "start_by")))
		KV("start by", fmt_time(json_object_get(queue, "start_by")));
	if (json_is_string(json_object_get(queue, "finish_by")))
		KV("finish by", fmt_time(json_object_get(queue, "finish_by")));
	if (json_object_size(json_object_get(queue, "requirements")))
		KV("requires", fmt_value(json_object_get(queue, "requirements")));
	KV("created", fmt_time(json_object_get(j, "created_at")));
	if (!json_is_null(json_object_get(j, "started_at")))
		KV("started", fmt_time(json_object_get(j, "started_at")));
	if (!json_is_null(json_object_get(j, "finished_at")))
		KV("finished", fmt_time(json_object_get(j, "finished_at")));
	if (!json_is_null(json_object_get(j, "description")))
		KV("description", fmt_value(json_object_get(j, "description")));
	KV("config", fmt_value(json_object_get(j, "config")));
	if (json_is_object(json_object_get(j, "metrics")))
		KV("progress", describe_metrics(json_object_get(j, "metrics")));
	if (json_is_object(result))
	{
		char	   *m = describe_metrics(result);

		/* the size of the file `result -o` writes, so that the two commands say the same */
		if (json_object_get(result, "model"))
			KV("result", strf("%s; %lld bytes with the model (modelmine result %lld -o FILE)", m,
							  result_bytes, J_INT("id")));
		else
			KV("result", strdup(m));
		free(m);
	}
	if (!json_is_null(json_object_get(j, "error")))
		KV("error", fmt_value(json_object_get(j, "error")));
#undef J_INT
#undef KV
	kv_lines(keys, vals, n, c->color, &l);
	lines_print(&l, stdout);
	lines_free(&l);
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(pct);
	free(st);
}

/* job ID: one job in full; --json prints the whole row. */
int
cmd_job(Ctx *c, int argc, char **argv)
{
	json_t	   *d;
	long long	id;
	const char *args[1];
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 1, 1)) >= 0)
		return rc;
	if (parse_int64(c, "ID", argv[optind], 1, LLONG_MAX, &id) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind];
	/* result_bytes: the result's text and a newline, as cmd_result writes it */
	d = db_json(c, "SELECT pg_catalog.json_build_object('job', pg_catalog.to_json(j), "
				"'result_bytes', pg_catalog.octet_length(j.result::text) + 1, "
				"'queue', modelmine.job_queue(j.id)) "
				"FROM modelmine.job($1::bigint) j", 1, args);
	if (d == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND, hint_my_jobs);
		return db_fail(c);
	}
	if (c->json)
		print_json(json_object_get(d, "job"));
	else
		print_job(c, json_object_get(d, "job"),
				  json_integer_value(json_object_get(d, "result_bytes")),
				  json_object_get(d, "queue"));
	json_decref(d);
	return EXIT_OK;
}

/* cancel ID: cancels a pending or running job; says how much came back. */
int
cmd_cancel(Ctx *c, int argc, char **argv)
{
	long long	id,
				refund;
	const char *args[1];
	PGresult   *r;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 1, 1)) >= 0)
		return rc;
	if (parse_int64(c, "ID", argv[optind], 1, LLONG_MAX, &id) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind];
	if ((r = db_query(c, "SELECT modelmine.cancel_job($1::bigint)", 1, args)) == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND, hint_my_jobs);
		return db_fail(c);
	}
	refund = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (c->json)
		printf("{\"job_id\": %lld, \"refund\": %lld}\n", id, refund);
	else
		printf("Canceled job %lld; %lld token%s refunded.\n", id, refund, refund == 1 ? "" : "s");
	return EXIT_OK;
}

/* result ID -o FILE: writes a completed job's result, exactly as stored, and a newline. */
int
cmd_result(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'}, COMMON_OPTIONS,
	{NULL, 0, NULL, 0}};
	const char *out = NULL;
	long long	id;
	const char *args[1];
	PGresult   *r;
	const char *text;
	size_t		len;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1)
	{
		if (opt == 'o')
			out = optarg;
		else if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
			return rc;
	}
	if ((rc = need_args(c, argc, argv, 1, 1)) >= 0)
		return rc;
	if (parse_int64(c, "ID", argv[optind], 1, LLONG_MAX, &id) != 0)
		return EXIT_USAGE;
	if (out == NULL)
		return usage_error(c, "say where to write the result: -o FILE (or -o - for stdout)");
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind];
	if ((r = db_query(c, "SELECT modelmine.job_result($1::bigint)::text", 1, args)) == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND, hint_my_jobs);
		return db_fail(c);
	}
	text = PQgetvalue(r, 0, 0);
	len = strlen(text);
	if (strcmp(out, "-") == 0)
	{
		fwrite(text, 1, len, stdout);
		fputc('\n', stdout);
	}
	else
	{
		FILE	   *f = fopen(out, "w");
		bool		ok = f && fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;

		if (f && fclose(f) != 0)
			ok = false;
		if (!ok)
		{
			fprintf(stderr, "modelmine: cannot write %s (%s)\n", out, strerror(errno));
			PQclear(r);
			return EXIT_ERROR;
		}
		if (c->json)
		{
			json_t	   *j = json_pack("{s:I, s:s, s:I}", "job_id", (json_int_t) id, "file", out,
									  "bytes", (json_int_t) (len + 1));

			print_json(j);
			json_decref(j);
		}
		else
			printf("Wrote the result of job %lld to %s (%zu bytes).\n", id, out, len + 1);
	}
	PQclear(r);
	return EXIT_OK;
}
