/*
 * network.c — network: the network's figures and its two charts (chart.c), or the charts as SVG
 * (svg.c).  network_sql fetches everything in one round trip; top uses it too.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum
{
	O_MONTHS = OPT_FIRST_COMMAND_OPTION, O_SVG, O_NODES
};

/* $1 months of timeline (1..120), $2 nodes in the distribution (1..1000). */
const char *const network_sql =
	"SELECT pg_catalog.json_build_object("
	"  'stats', (SELECT pg_catalog.to_json(s) FROM modelmine.network_stats() s),"
	"  'timeline', (SELECT COALESCE(pg_catalog.json_agg(t), '[]')"
	"               FROM modelmine.job_timeline($1::int) t),"
	"  'distribution', (SELECT COALESCE(pg_catalog.json_agg(d), '[]')"
	"                   FROM modelmine.token_distribution($2::int) d))";

/* One figure of network_stats, as a whole number. */
static long long
figure(const json_t *s, const char *key)
{
	return (long long) json_integer_value(json_object_get(s, key));
}

/* The figures as key/value lines (top shows them too). */
void
stats_lines(const json_t *s, bool color, Lines *out)
{
	const char *keys[] = {"nodes", "staked", "jobs", "accuracy", "paid"};
	char	   *vals[5];
	const json_t *acc = json_object_get(s, "average_accuracy");
	Str			b = {0};

	str_addf(&b, "%lld of %lld online", figure(s, "nodes_online"), figure(s, "nodes_total"));
	vals[0] = str_take(&b);
	str_addf(&b, "%lld token%s now, %lld all time", figure(s, "staked_now"),
			 figure(s, "staked_now") == 1 ? "" : "s", figure(s, "staked_all_time"));
	vals[1] = str_take(&b);
	str_addf(&b, "%lld pending, %lld running, %lld completed, %lld failed, %lld canceled",
			 figure(s, "jobs_pending"), figure(s, "jobs_running"), figure(s, "jobs_completed"),
			 figure(s, "jobs_failed"), figure(s, "jobs_canceled"));
	vals[2] = str_take(&b);
	if (json_is_number(acc))
	{
		char	   *a = fmt_number(json_number_value(acc), 4);

		str_addf(&b, "%s on average over completed jobs", a);
		free(a);
	}
	else
		str_add(&b, "- (no completed job reported one)");
	vals[3] = str_take(&b);
	str_addf(&b, "%lld token%s to nodes, %lld in network fees", figure(s, "paid_to_nodes"),
			 figure(s, "paid_to_nodes") == 1 ? "" : "s", figure(s, "network_fees"));
	vals[4] = str_take(&b);
	kv_lines(keys, vals, 5, color, out);
	for (int i = 0; i < 5; i++)
		free(vals[i]);
}

/* network: the figures and both charts, as text, JSON or SVG. */
int
cmd_network(Ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"months", required_argument, NULL, O_MONTHS}, {"svg", required_argument, NULL, O_SVG},
		{"nodes", required_argument, NULL, O_NODES}, COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	const char *months = "6",
			   *nodes = "20",
			   *svg = NULL;
	long long	n;
	json_t	   *data;
	int			opt,
				rc = EXIT_OK;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case O_MONTHS:
				if (parse_int64(c, "--months", optarg, 1, 120, &n) != 0)
					return EXIT_USAGE;
				months = optarg;
				break;
			case O_NODES:
				if (parse_int64(c, "--nodes", optarg, 1, 1000, &n) != 0)
					return EXIT_USAGE;
				nodes = optarg;
				break;
			case O_SVG:
				svg = optarg;
				break;
			default:
				if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
					return rc;
		}
	}
	if ((rc = need_args(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if ((rc = db_open(c)) != EXIT_OK)
		return rc;
	{
		const char *args[2] = {months, nodes};

		if ((data = db_json(c, network_sql, 2, args)) == NULL)
			return db_fail(c);
	}
	if (svg)
	{
		bool		to_stdout = strcmp(svg, "-") == 0;
		FILE	   *f = to_stdout ? stdout : fopen(svg, "w");

		if (f == NULL || svg_write(f, json_object_get(data, "stats"),
								   json_object_get(data, "timeline"),
								   json_object_get(data, "distribution")) != 0 ||
			(!to_stdout && fclose(f) != 0))
		{
			fprintf(stderr, "modelmine: cannot write %s\n", svg);
			rc = EXIT_ERROR;
		}
		else if (!to_stdout && c->json)
		{
			json_t	   *j = json_pack("{s:s}", "svg", svg);

			print_json(j);
			json_decref(j);
		}
		else if (!to_stdout)
			printf("Wrote the network charts to %s.\n", svg);
	}
	else if (c->json)
		print_json(data);
	else
	{
		Lines		l = {0};
		int			width = isatty(STDOUT_FILENO) ? term_columns(STDOUT_FILENO, 80) : 80;

		lines_add(&l, colored(c->color, C_BOLD, "Network"));
		stats_lines(json_object_get(data, "stats"), c->color, &l);
		lines_add(&l, strdup(""));
		chart_timeline(json_object_get(data, "timeline"), 8, c->color, &l);
		lines_add(&l, strdup(""));
		chart_distribution(json_object_get(data, "distribution"), width > 100 ? 100 : width, c->color,
						   &l);
		lines_print(&l, stdout);
		lines_free(&l);
	}
	json_decref(data);
	return rc;
}
