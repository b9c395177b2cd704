/*
 * submitbatch.c — submit-batch: many jobs from one file in one call (modelmine.submit_jobs).
 *
 * A sweep of configurations is one JSON array of jobs, or one job per line (JSON lines, as a
 * script would print them), each like POST /jobs: {"title", "config", "description", "stake",
 * "priority"}.  The database checks every job as submit_job does and takes all or none, so the
 * file is passed on as it is; the first refusal names the job by its index.  Prints the new ids,
 * one per line, in the file's order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "modelmine/protocol.h"

/* All of f, NUL-terminated, in *len bytes; NULL when it cannot be read. */
static char *
slurp(FILE *f, size_t *len)
{
	Str			b = {0};
	char		chunk[65536];
	size_t		n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		str_addn(&b, chunk, n);
	if (ferror(f))
	{
		free(b.s);
		return NULL;
	}
	*len = b.len;
	return b.s ? b.s : calloc(1, 1);
}

/*
 * The jobs in text: one JSON array, or JSON objects one after another (JSON lines).  NULL after a
 * usage error naming the line.
 */
static json_t *
parse_jobs(Ctx *c, const char *text, size_t len, const char *path)
{
	json_t	   *all = json_array();
	size_t		at = 0;
	int			values = 0;

	for (;;)
	{
		json_error_t err;
		json_t	   *j;

		while (at < len && strchr(" \t\r\n", text[at]) != NULL)
			at++;
		if (at >= len)
			break;
		if ((j = json_loadb(text + at, len - at, JSON_DISABLE_EOF_CHECK, &err)) == NULL)
		{
			int			line = err.line;	/* counted from where this value began */

			for (size_t i = 0; i < at; i++)
				line += text[i] == '\n';
			usage_error(c, "%s: %s (line %d)", path, err.text, line);
			json_decref(all);
			return NULL;
		}
		at += err.position;
		values++;
		if (json_is_array(j) && values == 1)
			json_array_extend(all, j);	/* the whole file as one array */
		else if (json_is_object(j) && !(values == 2 && json_array_size(all) != 1))
			json_array_append(all, j);
		else
		{
			usage_error(c, "%s must hold one JSON array of jobs, or one job object per line", path);
			json_decref(j);
			json_decref(all);
			return NULL;
		}
		json_decref(j);
	}
	if (json_array_size(all) < 1 || json_array_size(all) > MM_SUBMIT_MAX)
	{
		usage_error(c, "%s must hold 1 to %d jobs, got %zu", path, MM_SUBMIT_MAX,
					json_array_size(all));
		json_decref(all);
		return NULL;
	}
	return all;
}

/* submit-batch FILE: the jobs in FILE ("-": stdin) in one all-or-nothing call; prints the ids. */
int
cmd_submit_batch(Ctx *c, int argc, char **argv)
{
	const char *path;
	FILE	   *f;
	json_t	   *jobs,
			   *ids;
	char	   *text;
	size_t		len;
	const char *args[1];
	PGresult   *r;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 1, 1)) >= 0)
		return rc;
	path = argv[optind];
	if ((f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r")) == NULL)
		return usage_error(c, "cannot read %s: %s", path, strerror(errno));
	text = slurp(f, &len);
	if (f != stdin)
		fclose(f);
	if (text == NULL)
		return usage_error(c, "cannot read %s", path);
	jobs = parse_jobs(c, text, len, path);
	free(text);
	if (jobs == NULL)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
	{
		json_decref(jobs);
		return rc;
	}
	text = json_dumps(jobs, JSON_COMPACT | JSON_REAL_PRECISION(17));
	args[0] = text;
	r = db_query(c, "SELECT pg_catalog.json_agg(job_id)::text FROM modelmine.submit_jobs($1::jsonb)",
				 1, args);
	free(text);
	if (r == NULL)
	{
		json_decref(jobs);
		db_set_hint(c, MM_SQLSTATE_INSUFFICIENT_BALANCE,
					"stake less, submit fewer jobs, cancel a pending job (modelmine cancel ID), "
					"or ask another user to send you tokens");
		return db_fail(c);
	}
	ids = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	PQclear(r);
	if (c->json)
		print_json(ids);
	else
	{
		size_t		i;
		json_t	   *id;

		json_array_foreach(ids, i, id)
			printf("%lld\n", (long long) json_integer_value(id));
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "Submitted %zu jobs; list them with: modelmine jobs --status pending\n",
					json_array_size(ids));
	}
	json_decref(ids);
	json_decref(jobs);
	return EXIT_OK;
}
