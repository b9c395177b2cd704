/*
 * tokens.c — balance, transactions, transfer, withdraw: the signed-in user's tokens.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "modelmine/protocol.h"

/* The balance after a movement, from a statement of its own (balance() is STABLE: in the
 * movement's own statement it would still see the old value). */
static long long
balance_now(Ctx *c)
{
	PGresult   *r = db_query(c, "SELECT modelmine.balance()", 0, NULL);
	long long	b;

	if (r == NULL)
		return -1;
	b = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return b;
}

/* balance: spendable tokens and the stakes in escrow. */
int
cmd_balance(Ctx *c, int argc, char **argv)
{
	json_t	   *b;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	b = db_json(c, "SELECT pg_catalog.json_build_object('balance', d -> 'balance', "
				"'in_escrow', d -> 'in_escrow') FROM modelmine.dashboard() d", 0, NULL);
	if (b == NULL)
		return db_fail(c);
	if (c->json)
		print_json(b);
	else
	{
		long long	balance = json_integer_value(json_object_get(b, "balance"));

		printf("%lld token%s (and %lld staked in open jobs)\n", balance, balance == 1 ? "" : "s",
			   (long long) json_integer_value(json_object_get(b, "in_escrow")));
	}
	json_decref(b);
	return EXIT_OK;
}

/* transactions [--limit N]: your latest token movements, newest first. */
int
cmd_transactions(Ctx *c, int argc, char **argv)
{
	enum
	{
		O_LIMIT = OPT_FIRST_COMMAND_OPTION
	};
	static const struct option opts[] = {
		{"limit", required_argument, NULL, O_LIMIT}, COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	static const Column cols[] = {
		{.key = "id", .header = "ID", .right = true},
		{.key = "created_at", .header = "WHEN", .fn = cell_ago},
		{.key = "amount", .header = "AMOUNT", .right = true},
		{.key = "reason", .header = "REASON"},
		{.key = "job_id", .header = "JOB", .right = true},
		{.key = "counterparty", .header = "WITH", .max = 32},
	};
	const char *limit = "20";
	json_t	   *rows;
	long long	n;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		if (opt == O_LIMIT)
		{
			if (parse_int64(c, "--limit", optarg, 0, 1000, &n) != 0)
				return EXIT_USAGE;
			limit = optarg;
		}
		else if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
			return rc;
	}
	if ((rc = need_args(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	rows = db_json(c, "SELECT COALESCE(pg_catalog.json_agg(t), '[]') "
				   "FROM modelmine.my_transactions($1::int) t", 1, &limit);
	if (rows == NULL)
		return db_fail(c);
	if (c->json)
		print_json(rows);
	else if (json_array_size(rows) == 0)
		printf("No token movements yet.\n");
	else
		print_table(c, rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
	return EXIT_OK;
}

/* transfer EMAIL AMOUNT: sends tokens to another user. */
int
cmd_transfer(Ctx *c, int argc, char **argv)
{
	long long	amount,
				journal,
				balance;
	const char *args[2];
	PGresult   *r;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 2, 2)) >= 0)
		return rc;
	if (parse_int64(c, "AMOUNT", argv[optind + 1], 1, LLONG_MAX, &amount) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind];
	args[1] = argv[optind + 1];
	if ((r = db_query(c, "SELECT modelmine.transfer($1, $2::bigint)", 2, args)) == NULL)
		return db_fail(c);
	journal = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if ((balance = balance_now(c)) < 0)
		return db_fail(c);
	if (c->json)
	{
		json_t	   *j = json_pack("{s:I, s:s, s:I, s:I}", "journal_id", (json_int_t) journal,
								  "to", args[0], "amount", (json_int_t) amount,
								  "balance", (json_int_t) balance);

		print_json(j);
		json_decref(j);
	}
	else
	{
		char	   *to = text_clean(args[0]);

		printf("Sent %lld token%s to %s (journal entry %lld); your balance is now %lld.\n", amount,
			   amount == 1 ? "" : "s", to, journal, balance);
		free(to);
	}
	return EXIT_OK;
}

/* withdraw NODE_ID [AMOUNT]: moves a node's earnings (all of them by default) to your balance. */
int
cmd_withdraw(Ctx *c, int argc, char **argv)
{
	long long	node,
				amount,
				moved,
				balance;
	const char *args[2] = {NULL, NULL};
	PGresult   *r;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 1, 2)) >= 0)
		return rc;
	if (parse_int64(c, "NODE_ID", argv[optind], 1, LLONG_MAX, &node) != 0)
		return EXIT_USAGE;
	if (optind + 1 < argc && parse_int64(c, "AMOUNT", argv[optind + 1], 1, LLONG_MAX, &amount) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	args[0] = argv[optind];
	args[1] = optind + 1 < argc ? argv[optind + 1] : NULL;
	r = db_query(c, "SELECT modelmine.withdraw_node_earnings($1::bigint, $2::bigint)", 2, args);
	if (r == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND,
					"list the nodes you operate with: modelmine nodes --mine");
		db_set_hint(c, MM_SQLSTATE_INSUFFICIENT_BALANCE, "withdraw at most the node's balance "
					"(modelmine nodes --mine), or leave AMOUNT out to take all of it");
		return db_fail(c);
	}
	moved = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if ((balance = balance_now(c)) < 0)
		return db_fail(c);
	if (c->json)
	{
		json_t	   *j = json_pack("{s:I, s:I, s:I}", "node_id", (json_int_t) node,
								  "amount", (json_int_t) moved, "balance", (json_int_t) balance);

		print_json(j);
		json_decref(j);
	}
	else
		printf("Moved %lld token%s from node %lld to your balance (now %lld).\n", moved,
			   moved == 1 ? "" : "s", node, balance);
	return EXIT_OK;
}
