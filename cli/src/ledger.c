/*
 * ledger.c — ledger, ledger verify, ledger digest: the hash-chained record of completed jobs.  None
 * of them needs a session: the ledger is public to every ModelMine role.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

enum
{
	O_FROM = OPT_FIRST_COMMAND_OPTION, O_LIMIT, O_DIGEST, O_OUTPUT
};

/* A block hash cut to its first 16 hex digits, for the table. */
static char *
cell_hash(const json_t *row, const char *key)
{
	const char *h = json_string_value(json_object_get(row, key));

	return h ? strndup(h, 16) : strdup("-");
}

/* accuracy and loss are decimal text exactly as the result reported them: shown to 4 decimals */
static char *
cell_decimal(const json_t *row, const char *key)
{
	const char *t = json_string_value(json_object_get(row, key));
	char	   *end;
	double		v = t ? strtod(t, &end) : 0;

	if (t == NULL || end == t || *end != '\0')
		return fmt_value(json_object_get(row, key));
	return fmt_number(v, 4);
}

/* ledger: blocks from height from, at most limit, as a table or JSON. */
static int
list(Ctx *c, const char *from, const char *limit)
{
	static const Column cols[] = {
		{.key = "height", .header = "HEIGHT", .right = true},
		{.key = "hash", .header = "HASH", .fn = cell_hash},
		{.key = "job_id", .header = "JOB", .right = true},
		{.key = "user_id", .header = "USER", .right = true},
		{.key = "node_id", .header = "NODE", .right = true},
		{.key = "stake", .header = "STAKE", .right = true},
		{.key = "reward", .header = "REWARD", .right = true},
		{.key = "fee", .header = "FEE", .right = true},
		{.key = "accuracy", .header = "ACCURACY", .right = true, .fn = cell_decimal},
		{.key = "loss", .header = "LOSS", .right = true, .fn = cell_decimal},
		{.key = "epochs", .header = "EPOCHS", .right = true},
		{.key = "created_at", .header = "SEALED", .fn = cell_time},
	};
	const char *args[2] = {from, limit};
	json_t	   *rows = db_json(c, "SELECT COALESCE(pg_catalog.json_agg(l), '[]') "
							   "FROM modelmine.ledger($1::bigint, $2::int) l", 2, args);

	if (rows == NULL)
		return db_fail(c);
	if (c->json)
		print_json(rows);
	else if (json_array_size(rows) == 0)
		printf("No blocks from height %s on.\n", from);
	else
		print_table(c, rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
	return EXIT_OK;
}

/* ledger verify: recomputes the chain (and finds the digest's block); 1 when broken. */
static int
verify(Ctx *c, const char *digest_file)
{
	json_t	   *digest = NULL,
			   *v;
	char	   *text = NULL;
	const char *args[1];
	bool		ok;

	if (digest_file)
	{
		json_error_t err;

		digest = strcmp(digest_file, "-") == 0 ? json_loadf(stdin, 0, &err)
			: json_load_file(digest_file, 0, &err);
		if (digest == NULL || !json_is_object(digest))
		{
			fprintf(stderr, "modelmine: %s is not a digest from `modelmine ledger digest` (%s)\n",
					digest_file, digest ? "not a JSON object" : err.text);
			json_decref(digest);
			return EXIT_ERROR;
		}
		text = json_dumps(digest, JSON_COMPACT);
	}
	args[0] = text;
	v = db_json(c, "SELECT pg_catalog.to_json(v) FROM modelmine.verify_ledger($1::jsonb) v", 1,
				args);
	free(text);
	if (v == NULL)
	{
		json_decref(digest);
		db_set_hint(c, MM_SQLSTATE_BAD_INPUT,
					"pass a file written by: modelmine ledger digest -o FILE");
		return db_fail(c);
	}
	ok = json_is_true(json_object_get(v, "ok"));
	if (c->json)
		print_json(v);
	else if (ok)
	{
		printf("Ledger OK: %lld blocks checked, height %lld.\n",
			   (long long) json_integer_value(json_object_get(v, "blocks_checked")),
			   (long long) json_integer_value(json_object_get(v, "height")));
		if (digest)
		{
			const char *hash = json_string_value(json_object_get(digest, "hash"));

			printf("It still contains the digest's block %lld (%.16s...).\n",
				   (long long) json_integer_value(json_object_get(digest, "height")),
				   hash ? hash : "?");
		}
	}
	else
	{
		char	   *why = fmt_value(json_object_get(v, "reason"));

		printf("Ledger BROKEN at height %lld: %s\n",
			   (long long) json_integer_value(json_object_get(v, "first_bad_height")), why);
		free(why);
	}
	json_decref(v);
	json_decref(digest);
	return ok ? EXIT_OK : EXIT_ERROR;
}

/* Writes j, indented, to path; -1 if it could not. */
static int
write_json_file(const json_t *j, const char *path)
{
	FILE	   *f = fopen(path, "w");
	int			rc = f ? json_dumpf(j, f, JSON_INDENT(2)) : -1;

	if (f && (fputc('\n', f) == EOF || fclose(f) != 0))
		rc = -1;
	return rc;
}

/* ledger digest: the chain head as JSON, to stdout or to a file. */
static int
digest(Ctx *c, const char *out)
{
	json_t	   *d = db_json(c, "SELECT modelmine.ledger_digest()", 0, NULL);
	int			rc = EXIT_OK;

	if (d == NULL)
		return db_fail(c);
	if (out == NULL || strcmp(out, "-") == 0)
		print_json(d);
	else if (write_json_file(d, out) != 0)
	{
		fprintf(stderr, "modelmine: cannot write %s\n", out);
		rc = EXIT_ERROR;
	}
	else if (!c->json)
		printf("Wrote the chain head (height %lld) to %s; check it later with: "
			   "modelmine ledger verify --digest %s\n",
			   (long long) json_integer_value(json_object_get(d, "height")), out, out);
	else
		print_json(d);
	json_decref(d);
	return rc;
}

/* ledger [verify | digest]: parses the options and runs the subcommand. */
int
cmd_ledger(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, O_FROM}, {"limit", required_argument, NULL, O_LIMIT},
		{"digest", required_argument, NULL, O_DIGEST}, {"output", required_argument, NULL, 'o'},
		COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	const char *from = NULL,
			   *limit = NULL,
			   *digest_file = NULL,
			   *out = NULL,
			   *sub = "";
	long long	n;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case O_FROM:
				if (parse_int64(c, "--from", optarg, 0, LLONG_MAX, &n) != 0)
					return EXIT_USAGE;
				from = optarg;
				break;
			case O_LIMIT:
				if (parse_int64(c, "--limit", optarg, 0, 10000, &n) != 0)
					return EXIT_USAGE;
				limit = optarg;
				break;
			case O_DIGEST:
				digest_file = optarg;
				break;
			case 'o':
				out = optarg;
				break;
			default:
				if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
					return rc;
		}
	}
	if ((rc = need_args(c, argc, argv, 0, 1)) >= 0)
		return rc;
	if (optind < argc)
		sub = argv[optind];
	if (strcmp(sub, "") != 0 && strcmp(sub, "verify") != 0 && strcmp(sub, "digest") != 0)
		return usage_error(c, "no subcommand \"%s\" (want verify or digest)", sub);
	if ((from || limit) && sub[0])
		return usage_error(c, "--from and --limit go with the plain listing, not with %s", sub);
	if (digest_file && strcmp(sub, "verify") != 0)
		return usage_error(c, "--digest goes with: modelmine ledger verify");
	if (out && strcmp(sub, "digest") != 0)
		return usage_error(c, "-o goes with: modelmine ledger digest");
	if ((rc = db_open(c)) != EXIT_OK)
		return rc;
	if (strcmp(sub, "verify") == 0)
		return verify(c, digest_file);
	if (strcmp(sub, "digest") == 0)
		return digest(c, out);
	return list(c, from ? from : "0", limit ? limit : "20");
}
