/*
 * main.c — modelmine: global options, the command table with each command's help, dispatch.
 */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "modelmine/protocol.h"

typedef struct Command
{
	const char *name;
	int			(*run) (Ctx *, int, char **);
	const char *synopsis;		/* arguments and options after the name */
	const char *summary;		/* one line for the command list */
	const char *help;			/* details and examples */
} Command;

static const Command commands[] = {
	{"signup", cmd_signup, "EMAIL [--password-stdin]", "create an account, then sign in",
		"Creates an account (the signup grant is credited to it) and signs in, like login. With a database\n"
		"role that may only sign up (modelmine_anon, not modelmine_user), it creates the account and says\n"
		"that signing in needs modelmine_user.\n"
		"The password (8 to 72 bytes) comes from the first line of stdin with --password-stdin, else from\n"
		"MODELMINE_PASSWORD, else it is asked twice on the terminal without echo.\n"
		"\nExamples:\n"
		"  modelmine signup ada@example.com\n"
		"  printf '%s\\n' \"$PW\" | modelmine signup ada@example.com --password-stdin\n"},
	{"login", cmd_login, "EMAIL [--password-stdin]", "sign in; the session is kept for later commands",
		"Signs in and keeps the session token in the session file (mode 0600; see ENVIRONMENT).\n"
		"Password as for signup: --password-stdin, MODELMINE_PASSWORD, or asked on the terminal.\n"
		"\nExamples:\n"
		"  modelmine login ada@example.com\n"
		"  MODELMINE_PASSWORD=... modelmine login ada@example.com --json\n"},
	{"logout", cmd_logout, "", "end the session (revoked in the database) and forget it",
		"Revokes the session in the database (its token is refused from then on) and removes the\n"
		"session file. Not being signed in is not an error. If the database cannot be reached the file\n"
		"is kept, so that the session can still be revoked later.\n"
		"\nExample:\n"
		"  modelmine logout\n"},
	{"whoami", cmd_whoami, "", "who is signed in, and until when",
		"Shows the signed-in user's id, email, role and session expiry.\n"
		"\nExamples:\n"
		"  modelmine whoami\n"
		"  modelmine whoami --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"email\"])'\n"},
	{"balance", cmd_balance, "", "spendable tokens, and tokens staked in open jobs",
		"Shows the signed-in user's spendable balance and the stakes held in escrow for pending and\n"
		"running jobs.\n"
		"\nExample:\n"
		"  modelmine balance\n"},
	{"transactions", cmd_transactions, "[--limit N]", "your latest token movements",
		"Lists your latest token movements, newest first (at most N, 0..1000, default 20): the signed\n"
		"amount, the reason (signup_grant, transfer, stake, refund, withdrawal_hold, withdrawal_release,\n"
		"...), the job and the other side (a user's email, or escrow, held, issuance...).\n"
		"\nExamples:\n"
		"  modelmine transactions\n"
		"  modelmine transactions --limit 100 --json\n"},
	{"transfer", cmd_transfer, "EMAIL AMOUNT", "send tokens to another user",
		"Moves AMOUNT tokens from your balance to the user with that email.\n"
		"\nExample:\n"
		"  modelmine transfer grace@example.com 25\n"},
	{"submit", cmd_submit,
		"[--config FILE] [--trainer T] [--dataset D | --csv URL --label COL] [--epochs N] [--lr X]\n"
		"                 [--batch-size N] [--hidden 16,16] [--seed N] [--samples N] [--title T]\n"
		"                 [--description D] [--stake N] [--priority N] [--replicas N]\n"
		"                 [--start-by TIME] [--finish-by TIME] [--memory-mb N] [--cores N]\n"
		"                 [--need-label L]...",
		"submit a training job; prints its id",
		"Submits a job and prints its id (on stdout, alone, so that id=$(modelmine submit ...) works).\n"
		"The stake is moved from your balance to escrow at once; a failed or canceled job refunds it.\n"
		"\n"
		"  --config FILE     the job config as a JSON object (\"-\" reads stdin); the flags below override\n"
		"                    its fields\n"
		"  --trainer T       logreg (default), mlp, linreg or noop\n"
		"  --dataset D       a synthetic dataset: blobs, moons, spirals or linear (linreg only)\n"
		"  --csv URL         a CSV dataset (http://, https:// or file:// on the node) ...\n"
		"  --label COL       ... and the name of its label column\n"
		"  --samples N       rows of the synthetic dataset (default 600)\n"
		"  --epochs N        1..10000 (default: until training stops improving)\n"
		"  --lr X            learning rate, > 0 and <= 10 (default 0.001 for adam)\n"
		"  --batch-size N    default 32\n"
		"  --hidden LIST     mlp hidden layer sizes, e.g. 32,16 (default 16)\n"
		"  --seed N          training seed\n"
		"  --title T         default: \"TRAINER on DATASET\"\n"
		"  --description D   free text\n"
		"  --stake N         tokens to stake (default: the network's default_stake setting)\n"
		"  --priority N      -1000..1000, higher runs first (default 0)\n"
		"  --replicas N      run it on N nodes of different operators and pay the agreeing ones\n"
		"                    (1..the network's max_replicas, default 1; see modelmine job ID)\n"
		"  --start-by TIME   cancel and refund it if no node has started it by then (e.g.\n"
		"                    '2030-01-31 18:00+00' or \"$(date -d '+2 hours' -Is)\")\n"
		"  --finish-by TIME  fail and refund it if it is still running then\n"
		"  --memory-mb N     run it only on a node with N MB free (nodes advertise it)\n"
		"  --cores N         ... with N cores free\n"
		"  --need-label L    ... that advertises label L, such as gpu (repeatable)\n"
		"                    a job no registered node could run is refused (modelmine job ID says\n"
		"                    why a job waits)\n"
		"\nExamples:\n"
		"  modelmine submit --trainer mlp --dataset moons --epochs 200 --hidden 32,32 --stake 150\n"
		"  modelmine submit --trainer logreg --csv https://example.com/iris.csv --label species\n"
		"  modelmine submit --config job.json --title 'nightly run' --priority 10\n"
		"  id=$(modelmine submit --trainer noop) && modelmine watch \"$id\"\n"},
	{"submit-batch", cmd_submit_batch, "FILE", "submit many jobs at once, all or none; prints their ids",
		"Submits every job in FILE (\"-\" reads stdin) in one call: a JSON array of jobs, or one job per\n"
		"line (JSON lines). A job is an object like the REST API's POST /jobs body:\n"
		"  {\"title\": \"sweep 1\", \"config\": {\"trainer\": \"mlp\", ...}, \"stake\": 10, \"priority\": 0,\n"
		"   \"description\": \"...\"}\n"
		"and optionally \"start_by\", \"finish_by\" and \"requirements\" as submit takes them (all but title\n"
		"and config may be left out: the defaults of submit). The database checks\n"
		"each job as submit does and takes all or none: the first refusal names the job (jobs[3]: ...)\n"
		"and nothing is staked. At most 1000 jobs per call. Prints the new ids, one per line, in the\n"
		"file's order (--json: one array).\n"
		"\nExamples:\n"
		"  modelmine submit-batch sweep.json\n"
		"  printf '{\"title\": \"lr %s\", \"config\": {\"trainer\": \"mlp\", \"optimizer\": \"sgd\", '\\\n"
		"'\"learning_rate\": %s, \"dataset\": {\"synthetic\": \"moons\"}}}\\n' 0.01 0.01 0.1 0.1 1 1 |\n"
		"    modelmine submit-batch -\n"},
	{"jobs", cmd_jobs,
		"[--status S] [--sort created|stake|status] [--desc | --asc] [--limit N] [--offset N]",
		"list your jobs",
		"Lists your jobs, newest (or largest, or by status) first; --asc reverses the order.\n"
		"  --status S   PENDING, RUNNING, COMPLETED, FAILED or CANCELED (any case)\n"
		"  --limit N    at most N jobs, 0..10000 (default 50)\n"
		"  --offset N   skip the first N (default 0), for the next page\n"
		"\nExamples:\n"
		"  modelmine jobs\n"
		"  modelmine jobs --status running --sort stake\n"
		"  modelmine jobs --limit 50 --offset 50\n"
		"  modelmine jobs --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'\n"},
	{"job", cmd_job, "ID", "one job in full: config, progress, metrics, result, error",
		"Shows one of your jobs (any job, for an admin). The result is summarised here, with the size of\n"
		"the file `modelmine result ID -o FILE` writes (the model included). With --json, the complete\n"
		"row including the result.\n"
		"\nExample:\n"
		"  modelmine job 42\n"},
	{"cancel", cmd_cancel, "ID", "cancel a pending or running job; its stake is refunded",
		"Cancels one of your PENDING or RUNNING jobs and refunds its whole stake. A worker running it\n"
		"stops at its next heartbeat.\n"
		"\nExample:\n"
		"  modelmine cancel 42\n"},
	{"result", cmd_result, "ID -o FILE", "write a completed job's result (with the model) to a file",
		"Writes the result of a COMPLETED job (accuracy, loss, epochs, metrics and the model artifact)\n"
		"as JSON, exactly as stored. -o - writes it to stdout.\n"
		"\nExamples:\n"
		"  modelmine result 42 -o model-42.json\n"
		"  modelmine result 42 -o - | python3 -m json.tool\n"},
	{"watch", cmd_watch, "ID", "follow a job live until it ends",
		"Shows a live progress bar with epoch, loss and accuracy until the job ends. Progress and the\n"
		"job's end (COMPLETED, FAILED or CANCELED) arrive by LISTEN on the job's channel; the job's row is\n"
		"re-read after every notification, and at least every 5 s in case one is lost. On a terminal the\n"
		"bar is redrawn in place; otherwise one line per whole percent (with --json, one JSON object per\n"
		"line).\n"
		"Exit status: 0 COMPLETED, 1 FAILED, 3 CANCELED (see `modelmine --help`).\n"
		"\nExamples:\n"
		"  modelmine watch 42\n"
		"  modelmine watch 42 --json > progress.ndjson\n"},
	{"nodes", cmd_nodes, "[--mine] [--limit N] [--offset N]", "list compute nodes (or the ones you operate)",
		"Lists registered nodes with status (OFFLINE when heartbeats stopped), CPU, memory, last seen,\n"
		"uptime over 24 h, jobs handled, tokens earned and reputation. --mine lists the nodes you operate,\n"
		"with their unwithdrawn balance (take it with `modelmine withdraw`).\n"
		"\nExamples:\n"
		"  modelmine nodes\n"
		"  modelmine nodes --mine --json\n"},
	{"node", cmd_node, "ID [--hours H]", "one node's figures, uptime over the last H hours",
		"Shows one node's status, load, counters, reputation (with its validated and rejected results\n"
		"and how often its claims are spot-checked) and uptime over the last H hours\n"
		"(1..8760, default 24).\n"
		"\nExample:\n"
		"  modelmine node 3 --hours 168\n"},
	{"network", cmd_network, "[--months N] [--nodes N] [--svg FILE]", "network statistics and charts",
		"Shows the network's figures, a chart of jobs per month by status (the last N months, 1..120,\n"
		"default 6) and a bar chart of tokens earned per node (the top N nodes, 1..1000, default 20).\n"
		"--svg FILE writes the two charts as one standalone SVG image instead (\"-\" for stdout).\n"
		"\nExamples:\n"
		"  modelmine network\n"
		"  modelmine network --months 12 --nodes 5\n"
		"  modelmine network --svg network.svg\n"},
	{"ledger", cmd_ledger,
		"[--from H] [--limit N]\n"
		"       modelmine ledger verify [--digest FILE]\n"
		"       modelmine ledger digest [-o FILE]",
		"the hash-chained ledger of completed jobs: list, verify, digest",
		"ledger          lists blocks from height H (default 0), at most N (default 20, up to 10000).\n"
		"ledger verify   recomputes every block hash and link from genesis; exit 1 if the chain is\n"
		"                broken. With --digest FILE (from `ledger digest`), also proves that the chain\n"
		"                still contains that block.\n"
		"ledger digest   prints the chain head as JSON; keep it outside the database (-o FILE).\n"
		"\nExamples:\n"
		"  modelmine ledger --from 100 --limit 10\n"
		"  modelmine ledger digest -o head.json && modelmine ledger verify --digest head.json\n"},
	{"top", cmd_top, "", "full-screen live dashboard",
		"A live view of your jobs, the nodes, the network figures and both charts. It redraws when the\n"
		"database notifies (nodes' heartbeats and registrations, new work, your running jobs' progress)\n"
		"and at least every 5 s. q or Ctrl-C quits. Needs a terminal; with --json it prints one snapshot\n"
		"of the same data and exits.\n"
		"\nExample:\n"
		"  modelmine top\n"},
	{"withdraw", cmd_withdraw, "NODE_ID [AMOUNT]", "move a node's earnings to your balance",
		"Moves a node's earnings (all of them without AMOUNT) to your balance; you must operate the node.\n"
		"\nExamples:\n"
		"  modelmine withdraw 3\n"
		"  modelmine withdraw 3 100\n"},
	{"withdrawal", cmd_withdrawal, "request AMOUNT DESTINATION", "take tokens out of the system",
		"Asks to withdraw AMOUNT tokens to DESTINATION (1 to 200 characters: an account number, an\n"
		"address). The tokens leave your balance at once and are held until an admin pays them out and\n"
		"approves the withdrawal, or rejects it and they come back. A signup grant that is still locked\n"
		"cannot be withdrawn (the error says how much is locked, and how it unlocks). Follow it with\n"
		"`modelmine withdrawals`. (`modelmine withdraw` is another thing: a node's earnings to your balance.)\n"
		"\nExample:\n"
		"  modelmine withdrawal request 250 'IBAN DE00 1234 5678'\n"},
	{"withdrawals", cmd_withdrawals, "[--limit N]", "your withdrawals and how each was decided",
		"Lists your withdrawals, newest first (at most N, 0..1000, default 20): amount, destination,\n"
		"status (PENDING, APPROVED or REJECTED) and the admin's payout reference or reason.\n"
		"\nExamples:\n"
		"  modelmine withdrawals\n"
		"  modelmine withdrawals --json\n"},
	{"notifications", cmd_notifications,
		"[--status S] [--limit N]\n"
		"       modelmine notifications settings [--events LIST] [--email on|off] [--balance-below N]\n"
		"       modelmine notifications webhook add URL\n"
		"       modelmine notifications webhook remove ID",
		"what modelmine-notify sends you: email and webhooks",
		"notifications            your notifications, newest first (--status pending|sent|dead,\n"
		"                         --limit N up to 1000, default 20); a dead one says why it failed\n"
		"notifications settings   shows your settings, or changes those given: --events a comma list\n"
		"                         of job_completed, job_failed, job_canceled, node_offline,\n"
		"                         balance_low, withdrawal_decided (\"\" for none); --email on|off;\n"
		"                         --balance-below N: balance_low fires when a debit takes your\n"
		"                         balance below N tokens (0: no threshold)\n"
		"notifications webhook add URL   every chosen event is also POSTed to URL (http or https),\n"
		"                         signed: the secret is printed once (header " MM_SIGNATURE_HEADER ":\n"
		"                         t=<unix time>,v1=<hex HMAC-SHA256 of \"t.body\">)\n"
		"notifications webhook remove ID   what it has not received is dead-lettered\n"
		"\nExamples:\n"
		"  modelmine notifications settings --events job_completed,job_failed --email on\n"
		"  modelmine notifications webhook add https://example.com/modelmine-hook\n"
		"  modelmine notifications --status dead\n"},
	{"admin", cmd_admin,
		"withdrawals [--status S] [--limit N]\n"
		"       modelmine admin withdrawals approve ID PAYOUT_REFERENCE\n"
		"       modelmine admin withdrawals reject ID REASON\n"
		"       modelmine admin verify EMAIL\n"
		"       modelmine admin distribute-fees YYYY-MM\n"
		"       modelmine admin fees",
		"admin: withdrawals, user verification, the network fee",
		"For users whose role is admin (anyone else is refused by the database).\n"
		"admin withdrawals        the withdrawals, pending ones first and oldest first (--status\n"
		"                         pending|approved|rejected, --limit N up to 10000, default 100)\n"
		"  ... approve ID REF     after paying it out: the held tokens leave the system, with REF\n"
		"  ... reject ID REASON   the held tokens go back to the user\n"
		"                         A withdrawal is decided once; a second decision is refused.\n"
		"admin verify EMAIL       verifies a user, which unlocks their signup grant\n"
		"admin distribute-fees M  pays month M's network fee (a UTC month that has ended) to the\n"
		"                         nodes, pro rata to their rewards in it; a month pays once\n"
		"admin fees               the months distributed so far\n"
		"\nExamples:\n"
		"  modelmine admin withdrawals --status pending\n"
		"  modelmine admin withdrawals approve 7 'SEPA 2026-11-30/0042'\n"
		"  modelmine admin withdrawals reject 8 'destination account is closed'\n"
		"  modelmine admin verify grace@example.com\n"
		"  modelmine admin distribute-fees 2026-10\n"},
};

#define NCOMMANDS ((int) (sizeof(commands) / sizeof(commands[0])))

/* The command called name, or NULL. */
static const Command *
find_command(const char *name)
{
	for (int i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* The program's help: commands, options, environment, exit status, examples. */
static void
usage(FILE *f)
{
	fprintf(f,
			"modelmine — the command-line client of ModelMine, a compute marketplace inside PostgreSQL.\n"
			"\n"
			"Usage: modelmine [--db URL] [--json] COMMAND [ARGS]...\n"
			"       modelmine COMMAND --help\n"
			"\n"
			"Commands:\n");
	for (int i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
			"\n"
			"Options (any command):\n"
			"  --db URL    database URL or conninfo [MODELMINE_DB]; default: libpq's PG* variables\n"
			"  --json      machine-readable JSON on stdout (keys are the SQL API's column names)\n"
			"  --help      help for the program or the command\n"
			"\n"
			"Environment:\n"
			"  MODELMINE_DB            database, as --db\n"
			"  MODELMINE_PASSWORD      password for signup and login\n"
			"  MODELMINE_SESSION_FILE  session file; default $XDG_CONFIG_HOME/modelmine/session\n"
			"                          (~/.config/modelmine/session), mode 0600\n"
			"  NO_COLOR                set (non-empty): no colour; colour is used only on a terminal\n"
			"  PGHOST, PGPORT, PGUSER, PGDATABASE, ...  libpq's, when neither --db nor MODELMINE_DB is set\n"
			"\n"
			"Exit status:\n"
			"  0 success; 1 the database refused the request, or the watched job failed, or the ledger is\n"
			"  broken; 2 bad usage; 3 the watched job was canceled; 4 not signed in, or the session expired\n"
			"  or was revoked (run `modelmine login EMAIL`); 5 the database cannot be reached.\n"
			"\n"
			"Examples:\n"
			"  export MODELMINE_DB=postgresql://me@db.example.com/modelmine\n"
			"  modelmine signup ada@example.com\n"
			"  id=$(modelmine submit --trainer mlp --dataset moons --epochs 300)\n"
			"  modelmine watch \"$id\" && modelmine result \"$id\" -o model.json\n"
			"  modelmine jobs --status completed --json\n"
			"  modelmine top\n");
}

/* One command's help: its usage line, details and examples. */
void
print_command_help(const char *name, FILE *f)
{
	const Command *cmd = find_command(name);

	if (cmd == NULL)
		return;
	fprintf(f, "modelmine %s — %s\n\nUsage: modelmine %s %s\n\n%s", cmd->name, cmd->summary,
			cmd->name, cmd->synopsis, cmd->help);
	fprintf(f, "\nOptions for every command: --db URL, --json, --help (see `modelmine --help`).\n");
}

/*
 * Global options, then the command; the exit status is the command's.  main (entry.c) is only
 * this, so that the fuzzer (tests/fuzz_cli.c) can call it.
 */
int
cli_main(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Ctx			c = {.cmd = NULL};
	const Command *cmd;
	const char *nc = getenv("NO_COLOR");
	int			opt,
				rc;

	text_init();
	c.db = getenv("MODELMINE_DB");
	if (c.db && c.db[0] == '\0')
		c.db = NULL;
	c.color = isatty(STDOUT_FILENO) && !(nc && nc[0]);

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1)
	{
		if (opt == 'h' || opt == OPT_HELP)
		{
			usage(stdout);
			return EXIT_OK;
		}
		if ((rc = common_option(&c, opt, optarg, argc, argv)) >= 0)
			return rc;
	}
	if (optind >= argc)
	{
		fprintf(stderr, "modelmine: no command; try 'modelmine --help'\n");
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0)
	{
		if (optind + 1 < argc && find_command(argv[optind + 1]))
			print_command_help(argv[optind + 1], stdout);
		else if (optind + 1 < argc)
		{
			fprintf(stderr, "modelmine: no command \"%s\"; try 'modelmine --help'\n",
					argv[optind + 1]);
			return EXIT_USAGE;
		}
		else
			usage(stdout);
		return EXIT_OK;
	}
	if ((cmd = find_command(argv[optind])) == NULL)
	{
		fprintf(stderr, "modelmine: no command \"%s\"; try 'modelmine --help'\n", argv[optind]);
		return EXIT_USAGE;
	}
	c.cmd = cmd->name;
	rc = cmd->run(&c, argc - optind, argv + optind);
	db_close(&c);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
	{
		perror("modelmine: writing output");
		rc = EXIT_ERROR;
	}
	return rc;
}
