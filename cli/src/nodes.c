/*
 * nodes.c — nodes (everyone's, or --mine) and node ID: the compute side of the network.
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
	O_MINE = OPT_FIRST_COMMAND_OPTION, O_LIMIT, O_OFFSET, O_HOURS
};

/* Memory as "used/total MB", for the tables. */
static char *
cell_memory(const json_t *row, const char *key)
{
	const json_t *used = json_object_get(row, "memory_used_mb"),
			   *total = json_object_get(row, "memory_total_mb");
	char	   *s;

	(void) key;
	if (!json_is_integer(used) || !json_is_integer(total))
		return strdup("-");
	if (asprintf(&s, "%lld/%lld MB", (long long) json_integer_value(used),
				 (long long) json_integer_value(total)) < 0)
		return strdup("?");
	return s;
}

/* The trainers and runners a node offers, named as jobs require them: "logreg mlp runner:torch". */
static char *
cell_caps(const json_t *row, const char *key)
{
	const json_t *caps = json_object_get(row, key);
	Str			b = {0};
	size_t		i;
	const json_t *v;

	json_array_foreach(json_object_get(caps, "trainers"), i, v)
		str_addf(&b, "%s%s", b.len ? " " : "", json_string_value(v) ? json_string_value(v) : "?");
	json_array_foreach(json_object_get(caps, "runners"), i, v)
		str_addf(&b, "%s" MM_REQUIRE_RUNNER "%s", b.len ? " " : "",
				 json_string_value(v) ? json_string_value(v) : "?");
	return b.len ? str_take(&b) : strdup("-");
}

const Column node_columns[] = {
	{.key = "id", .header = "ID", .right = true},
	{.key = "name", .header = "NAME", .max = 24},
	{.key = "status", .header = "STATUS", .status = true},
	{.key = "cpu_load", .header = "CPU", .right = true, .fn = cell_pct},
	{.key = "memory_used_mb", .header = "MEMORY", .right = true, .fn = cell_memory},
	{.key = "last_seen", .header = "LAST SEEN", .fn = cell_ago},
	{.key = "uptime_pct", .header = "UPTIME", .right = true, .fn = cell_pct},
	{.key = "jobs_handled", .header = "JOBS", .right = true},
	{.key = "jobs_failed", .header = "FAILED", .right = true},
	{.key = "tokens_earned", .header = "EARNED", .right = true},
	{.key = "reputation", .header = "REP", .right = true},
};
const int	node_ncolumns = sizeof(node_columns) / sizeof(node_columns[0]);

/* nodes [--mine]: every node, or the ones you operate with their earnings. */
int
cmd_nodes(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"mine", no_argument, NULL, O_MINE}, {"limit", required_argument, NULL, O_LIMIT},
		{"offset", required_argument, NULL, O_OFFSET}, COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	static const Column mine[] = {
		{.key = "id", .header = "ID", .right = true},
		{.key = "name", .header = "NAME", .max = 24},
		{.key = "status", .header = "STATUS", .status = true},
		{.key = "last_seen", .header = "LAST SEEN", .fn = cell_ago},
		{.key = "jobs_completed", .header = "DONE", .right = true},
		{.key = "jobs_failed", .header = "FAILED", .right = true},
		{.key = "tokens_earned", .header = "EARNED", .right = true},
		{.key = "balance", .header = "TO WITHDRAW", .right = true},
		{.key = "capabilities", .header = "OFFERS", .max = 40, .fn = cell_caps},
	};
	bool		only_mine = false;
	const char *limit = "100",
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
			case O_MINE:
				only_mine = true;
				break;
			case O_LIMIT:
				if (parse_int64(c, "--limit", optarg, 0, 1000, &n) != 0)
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
	if (only_mine)
	{
		if ((rc = db_open_user(c)) != EXIT_OK)
			return rc;
		rows = db_json(c, "SELECT COALESCE(pg_catalog.json_agg(n), '[]') FROM modelmine.my_nodes() n",
					   0, NULL);
	}
	else
	{
		const char *args[2] = {limit, offset};

		if ((rc = db_open(c)) != EXIT_OK)
			return rc;
		rows = db_json(c, "SELECT COALESCE(pg_catalog.json_agg(n), '[]') "
					   "FROM modelmine.nodes($1::int, $2::int) n", 2, args);
	}
	if (rows == NULL)
		return db_fail(c);
	if (c->json)
		print_json(rows);
	else if (json_array_size(rows) == 0)
		printf(only_mine ? "You operate no nodes. Start one with: "
			   "modelmine-worker --operator-email EMAIL ...\n" : "No nodes are registered.\n");
	else if (only_mine)
		print_table(c, rows, mine, sizeof(mine) / sizeof(mine[0]));
	else
		print_table(c, rows, node_columns, node_ncolumns);
	json_decref(rows);
	return EXIT_OK;
}

/* node ID: one node's figures and its uptime over the last hours. */
int
cmd_node(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"hours", required_argument, NULL, O_HOURS}, COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	const char *hours = "24";
	long long	n;
	json_t	   *j;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		if (opt == O_HOURS)
		{
			if (parse_int64(c, "--hours", optarg, 1, 8760, &n) != 0)
				return EXIT_USAGE;
			hours = optarg;
		}
		else if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
			return rc;
	}
	if ((rc = need_args(c, argc, argv, 1, 1)) >= 0)
		return rc;
	if (parse_int64(c, "ID", argv[optind], 1, LLONG_MAX, &n) != 0)
		return EXIT_USAGE;
	if ((rc = db_open(c)) != EXIT_OK)
		return rc;
	{
		const char *args[2] = {argv[optind], hours};

		j = db_json(c, "SELECT pg_catalog.to_json(s) FROM modelmine.node_stats($1::bigint, $2::int) s",
					2, args);
	}
	if (j == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND, "list nodes with: modelmine nodes");
		return db_fail(c);
	}
	if (c->json)
		print_json(j);
	else
	{
		const char *st = json_string_value(json_object_get(j, "status"));
		Str			up = {0};
		char	   *pct = cell_pct(j, "uptime_pct");
		const char *keys[] = {
			"node", "name", "status", "cpu", "memory", "last seen", "registered", "uptime", "jobs",
			"tokens earned", "reputation", "offers"
		};
		char	   *vals[12];
		Lines		l = {0};

		str_addf(&up, "%s over the last %s h", pct, hours);
		vals[0] = fmt_value(json_object_get(j, "id"));
		vals[1] = fmt_value(json_object_get(j, "name"));
		vals[2] = colored(c->color, status_color(st), st ? st : "?");
		vals[3] = cell_pct(j, "cpu_load");
		vals[4] = cell_memory(j, NULL);
		vals[5] = cell_ago(j, "last_seen");
		vals[6] = fmt_time(json_object_get(j, "registered_at"));
		vals[7] = str_take(&up);
		{
			Str			b = {0};

			str_addf(&b, "%lld handled: %lld completed, %lld failed",
					 (long long) json_integer_value(json_object_get(j, "jobs_handled")),
					 (long long) json_integer_value(json_object_get(j, "jobs_completed")),
					 (long long) json_integer_value(json_object_get(j, "jobs_failed")));
			vals[8] = str_take(&b);
		}
		vals[9] = fmt_value(json_object_get(j, "tokens_earned"));
		{
			Str			b = {0};

			/* what the validator made of its results, and how often its claims are checked */
			str_addf(&b, "%lld/100; results %lld validated, %lld rejected; spot-checked %lld%%",
					 (long long) json_integer_value(json_object_get(j, "reputation")),
					 (long long) json_integer_value(json_object_get(j, "results_valid")),
					 (long long) json_integer_value(json_object_get(j, "results_invalid")),
					 (long long) json_integer_value(json_object_get(j, "spotcheck_pct")));
			vals[10] = str_take(&b);
		}
		vals[11] = cell_caps(j, "capabilities");
		kv_lines(keys, vals, 12, c->color, &l);
		lines_print(&l, stdout);
		lines_free(&l);
		for (int i = 0; i < 12; i++)
			free(vals[i]);
		free(pct);
	}
	json_decref(j);
	return EXIT_OK;
}
