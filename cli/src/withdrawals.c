/*
 * withdrawals.c — tokens out of the system and the admin side of the token loop: withdrawal
 * request, withdrawals, and admin withdrawals | verify | distribute-fees | fees.
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
	O_LIMIT = OPT_FIRST_COMMAND_OPTION, O_STATUS
};

/* A table cell: the payout reference of an approved withdrawal, or the reason of a rejected one. */
static char *
cell_outcome(const json_t *row, const char *key)
{
	const json_t *ref = json_object_get(row, "payout_reference");

	(void) key;
	return fmt_value(json_is_string(ref) ? ref : json_object_get(row, "reason"));
}

static const Column my_columns[] = {
	{.key = "id", .header = "ID", .right = true},
	{.key = "amount", .header = "AMOUNT", .right = true},
	{.key = "destination", .header = "DESTINATION", .max = 32},
	{.key = "status", .header = "STATUS", .status = true},
	{.key = "payout_reference", .header = "REFERENCE / REASON", .max = 40, .fn = cell_outcome},
	{.key = "requested_at", .header = "REQUESTED", .fn = cell_ago},
	{.key = "decided_at", .header = "DECIDED", .fn = cell_ago},
};

static const Column admin_columns[] = {
	{.key = "id", .header = "ID", .right = true},
	{.key = "email", .header = "USER", .max = 32},
	{.key = "amount", .header = "AMOUNT", .right = true},
	{.key = "destination", .header = "DESTINATION", .max = 32},
	{.key = "status", .header = "STATUS", .status = true},
	{.key = "payout_reference", .header = "REFERENCE / REASON", .max = 40, .fn = cell_outcome},
	{.key = "requested_at", .header = "REQUESTED", .fn = cell_ago},
	{.key = "decided_by", .header = "DECIDED BY", .max = 32},
};

static const Column fee_columns[] = {
	{.key = "period", .header = "MONTH"},
	{.key = "pool", .header = "POOL", .right = true},
	{.key = "paid", .header = "PAID", .right = true},
	{.key = "nodes", .header = "NODES", .right = true},
	{.key = "distributed_at", .header = "DISTRIBUTED", .fn = cell_time},
	{.key = "distributed_by", .header = "BY", .max = 32},
};

/* Prints rows as JSON or as a table, or empty when there are none. */
static int
print_rows(Ctx *c, json_t *rows, const Column *cols, int ncols, const char *empty)
{
	if (rows == NULL)
		return db_fail(c);
	if (c->json)
		print_json(rows);
	else if (json_array_size(rows) == 0)
		printf("%s\n", empty);
	else
		print_table(c, rows, cols, ncols);
	json_decref(rows);
	return EXIT_OK;
}

/* Parses --limit N (0..hi) and, when status is not NULL, --status S; the rest are arguments. */
static int
parse_listing(Ctx *c, int argc, char **argv, long long hi, const char **limit, const char **status)
{
	static const struct option opts[] = {
		{"limit", required_argument, NULL, O_LIMIT}, {"status", required_argument, NULL, O_STATUS},
		COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	long long	n;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case O_LIMIT:
				if (parse_int64(c, "--limit", optarg, 0, hi, &n) != 0)
					return EXIT_USAGE;
				*limit = optarg;
				break;
			case O_STATUS:
				if (status == NULL)
					return usage_error(c, "--status goes with: modelmine admin withdrawals");
				*status = optarg;
				break;
			default:
				if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
					return rc;
		}
	}
	return -1;
}

/* withdrawal request AMOUNT DESTINATION: holds the tokens until an admin decides. */
int
cmd_withdrawal(Ctx *c, int argc, char **argv)
{
	long long	amount,
				id;
	const char *args[2];
	PGresult   *r;
	json_t	   *b;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 1, 3)) >= 0)
		return rc;
	if (strcmp(argv[optind], "request") != 0)
		return usage_error(c, "no subcommand \"%s\" (want request)", argv[optind]);
	if ((rc = need_args(c, argc, argv, 3, 3)) >= 0)
		return rc;
	if (parse_int64(c, "AMOUNT", argv[optind + 1], 1, LLONG_MAX, &amount) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind + 1];
	args[1] = argv[optind + 2];
	/* the server's hint says how a locked signup grant unlocks: keep it */
	if ((r = db_query(c, "SELECT modelmine.request_withdrawal($1::bigint, $2)", 2, args)) == NULL)
		return db_fail(c);
	id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	/* the balance from a statement of its own: balance() is STABLE */
	if ((b = db_json(c, "SELECT pg_catalog.to_json(modelmine.balance())", 0, NULL)) == NULL)
		return db_fail(c);
	if (c->json)
	{
		json_t	   *j = json_pack("{s:I, s:I, s:s, s:s, s:O}", "withdrawal_id", (json_int_t) id,
								  "amount", (json_int_t) amount, "destination", args[1],
								  "status", MM_WITHDRAWAL_PENDING, "balance", b);

		print_json(j);
		json_decref(j);
	}
	else
	{
		char	   *to = text_clean(args[1]);

		printf("Withdrawal %lld: %lld token%s to %s, held until an admin approves it; your balance "
			   "is now %lld.\n", id, amount, amount == 1 ? "" : "s", to,
			   (long long) json_integer_value(b));
		free(to);
	}
	json_decref(b);
	return EXIT_OK;
}

/* withdrawals [--limit N]: your withdrawals, newest first. */
int
cmd_withdrawals(Ctx *c, int argc, char **argv)
{
	const char *limit = "20";
	int			rc;

	if ((rc = parse_listing(c, argc, argv, 1000, &limit, NULL)) >= 0)
		return rc;
	if ((rc = need_args(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	return print_rows(c, db_json(c, "SELECT COALESCE(pg_catalog.json_agg(w), '[]') "
								 "FROM modelmine.my_withdrawals($1::int) w", 1, &limit),
					  my_columns, sizeof(my_columns) / sizeof(my_columns[0]),
					  "You have no withdrawals. Request one with: "
					  "modelmine withdrawal request AMOUNT DESTINATION");
}

/* admin withdrawals [approve ID REF | reject ID REASON]: the queue, or one decision. */
static int
admin_withdrawals(Ctx *c, int argc, char **argv, const char *limit, const char *status)
{
	const char *args[2];
	const char *sub = optind + 1 < argc ? argv[optind + 1] : "";
	bool		approve = strcmp(sub, "approve") == 0;
	long long	id,
				amount;
	PGresult   *r;
	int			rc;

	if (sub[0] == '\0')
	{
		const char *largs[2] = {status, limit ? limit : "100"};

		if ((rc = need_args(c, argc, argv, 1, 1)) >= 0)
			return rc;
		if ((rc = db_open_user(c)) != EXIT_OK)
			return rc;
		return print_rows(c, db_json(c, "SELECT COALESCE(pg_catalog.json_agg(w), '[]') FROM "
									 "modelmine.withdrawals(pg_catalog.upper($1), $2::int) w",
									 2, largs),
						  admin_columns, sizeof(admin_columns) / sizeof(admin_columns[0]),
						  "No withdrawals.");
	}
	if (!approve && strcmp(sub, "reject") != 0)
		return usage_error(c, "no subcommand \"withdrawals %s\" (want approve or reject)", sub);
	if (status || limit)
		return usage_error(c, "--status and --limit go with the plain listing, not with %s", sub);
	if ((rc = need_args(c, argc, argv, 4, 4)) >= 0)
		return rc;
	if (parse_int64(c, "ID", argv[optind + 2], 1, LLONG_MAX, &id) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind + 2];
	args[1] = argv[optind + 3];
	r = db_query(c, approve ? "SELECT modelmine.approve_withdrawal($1::bigint, $2)" :
				 "SELECT modelmine.reject_withdrawal($1::bigint, $2)", 2, args);
	if (r == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND,
					"list the pending ones with: modelmine admin withdrawals --status pending");
		return db_fail(c);
	}
	amount = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (c->json)
	{
		const char *decided = approve ? MM_WITHDRAWAL_APPROVED : MM_WITHDRAWAL_REJECTED;
		json_t	   *j = json_pack("{s:I, s:s, s:I}", "withdrawal_id", (json_int_t) id,
								  "status", decided, "amount", (json_int_t) amount);

		print_json(j);
		json_decref(j);
	}
	else if (approve)
		printf("Approved withdrawal %lld: %lld token%s paid out of the system.\n", id, amount,
			   amount == 1 ? "" : "s");
	else
		printf("Rejected withdrawal %lld: %lld token%s back to the user's balance.\n", id, amount,
			   amount == 1 ? "" : "s");
	return EXIT_OK;
}

/* admin verify EMAIL: unlocks the user's signup grant. */
static int
admin_verify(Ctx *c, int argc, char **argv)
{
	const char *args[1];
	PGresult   *r;
	long long	unlocked;
	int			rc;

	if ((rc = need_args(c, argc, argv, 2, 2)) >= 0)
		return rc;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind + 1];
	if ((r = db_query(c, "SELECT modelmine.verify_user($1)", 1, args)) == NULL)
		return db_fail(c);
	unlocked = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (c->json)
	{
		json_t	   *j = json_pack("{s:s, s:I}", "email", args[0],
								  "unlocked", (json_int_t) unlocked);

		print_json(j);
		json_decref(j);
	}
	else
	{
		char	   *who = text_clean(args[0]);

		printf("Verified %s: %lld token%s of the signup grant unlocked.\n", who, unlocked,
			   unlocked == 1 ? "" : "s");
		free(who);
	}
	return EXIT_OK;
}

/* admin distribute-fees YYYY-MM: pays that month's network fee to the nodes, once. */
static int
admin_distribute(Ctx *c, int argc, char **argv)
{
	char		period[16];
	const char *args[1] = {period};
	const char *month;
	json_t	   *d;
	int			y,
				m,
				end = 0,
				rc;

	if ((rc = need_args(c, argc, argv, 2, 2)) >= 0)
		return rc;
	month = argv[optind + 1];
	if (sscanf(month, "%4d-%2d%n", &y, &m, &end) != 2 || month[end] != '\0' || strlen(month) != 7 ||
		m < 1 || m > 12)
		return usage_error(c, "MONTH must be YYYY-MM, e.g. 2026-10 (got \"%s\")", month);
	snprintf(period, sizeof(period), "%04d-%02d-01", y, m);
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	if ((d = db_json(c, "SELECT modelmine.distribute_fees($1::date)", 1, args)) == NULL)
		return db_fail(c);
	if (c->json)
		print_json(d);
	else
	{
		long long	pool = json_integer_value(json_object_get(d, "pool")),
					paid = json_integer_value(json_object_get(d, "paid")),
					nodes = json_integer_value(json_object_get(d, "nodes"));
		char	   *when = fmt_time(json_object_get(d, "distributed_at"));
		char	   *by = text_clean(json_string_value(json_object_get(d, "distributed_by")));

		if (json_is_true(json_object_get(d, "paid_now")))
			printf("Distributed the network fee of %s: %lld of %lld token%s to %lld node%s "
				   "(%lld left in the fee accounts).\n", month, paid, pool, pool == 1 ? "" : "s",
				   nodes, nodes == 1 ? "" : "s", pool - paid);
		else
			printf("The network fee of %s was already distributed (%s, by %s): %lld of %lld "
				   "token%s to %lld node%s. Nothing was paid again.\n", month, when, by, paid, pool,
				   pool == 1 ? "" : "s", nodes, nodes == 1 ? "" : "s");
		free(when);
		free(by);
	}
	json_decref(d);
	return EXIT_OK;
}

/*
 * admin withdrawals | verify | distribute-fees | fees: what admins do to close the token loop
 * (the database refuses anyone else with "permission denied").
 */
int
cmd_admin(Ctx *c, int argc, char **argv)
{
	const char *limit = NULL,
			   *status = NULL,
			   *sub;
	int			rc;

	if ((rc = parse_listing(c, argc, argv, 10000, &limit, &status)) >= 0)
		return rc;
	if ((rc = need_args(c, argc, argv, 1, 4)) >= 0)
		return rc;
	sub = argv[optind];
	if (strcmp(sub, "withdrawals") == 0)
		return admin_withdrawals(c, argc, argv, limit, status);
	if (status || limit)
		return usage_error(c, "--status and --limit go with: modelmine admin withdrawals");
	if (strcmp(sub, "verify") == 0)
		return admin_verify(c, argc, argv);
	if (strcmp(sub, "distribute-fees") == 0)
		return admin_distribute(c, argc, argv);
	if (strcmp(sub, "fees") == 0)
	{
		if ((rc = need_args(c, argc, argv, 1, 1)) >= 0)
			return rc;
		if ((rc = db_open_user(c)) != EXIT_OK)
			return rc;
		return print_rows(c, db_json(c, "SELECT COALESCE(pg_catalog.json_agg(f), '[]') "
									 "FROM modelmine.fee_distributions() f", 0, NULL),
						  fee_columns, sizeof(fee_columns) / sizeof(fee_columns[0]),
						  "No month's network fee has been distributed yet.");
	}
	return usage_error(c, "no subcommand \"%s\" (want withdrawals, verify, distribute-fees or "
					   "fees)", sub);
}
