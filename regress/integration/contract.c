/*
 * contract.c — prints the SQL checks of regress/integration/contract.sh: every value the install script
 * repeats from include/modelmine/protocol.h, read from the installed catalog or found by trying it.
 *
 * Each check is one query printing "label<TAB>got<TAB>want"; the script compares got with want.  Values
 * are never pasted into SQL unquoted: strings go through SqlString, numbers are the header's integers.
 * The checks run as the superuser, in a session bound to a signed-up user (contract.sh).
 * "contract channels JOB" prints the NOTIFY channel names instead, for the LISTEN checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelmine/protocol.h"

#define STR(x) #x
#define XSTR(x) STR(x)			/* a macro's value as a string literal */

/* A string as an SQL literal (E'' is never needed: protocol.h holds no backslashes or newlines). */
static void
SqlString(const char *s)
{
	putchar('\'');
	for (; *s; s++)
	{
		if (*s == '\'')
			putchar('\'');
		putchar(*s);
	}
	putchar('\'');
}

/* One check: the SQL expression got, compared with the literal text want. */
static void
Check(const char *label, const char *got_sql, const char *want)
{
	printf("SELECT ");
	SqlString(label);
	printf(" || E'\\t' || COALESCE((%s)::text, '<null>') || E'\\t' || ", got_sql);
	SqlString(want);
	printf(";\n");
}

/* A check whose want is a number. */
static void
CheckInt(const char *label, const char *got_sql, long long want)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%lld", want);
	Check(label, got_sql, buf);
}

/* Whether a statement is accepted ("ok") or refused (its SQLSTATE), undone either way. */
static void
Tries(const char *label, const char *stmt_fmt, long long arg, const char *want)
{
	char		stmt[1024],
				got[1200];

	snprintf(stmt, sizeof(stmt), stmt_fmt, arg);
	snprintf(got, sizeof(got), "SELECT contract_try($stmt$%s$stmt$)", stmt);
	Check(label, got, want);
}

/* A bound: the value is accepted and one past it refused with check_violation. */
static void
Bound(const char *what, const char *stmt_fmt, long long edge, long long past)
{
	char		label[256];

	snprintf(label, sizeof(label), "%s %lld is accepted", what, edge);
	Tries(label, stmt_fmt, edge, "ok");
	snprintf(label, sizeof(label), "%s %lld is refused by a CHECK", what, past);
	Tries(label, stmt_fmt, past, "23514");
}

/*
 * "contract channels JOB": the channel names a submit, a registration and JOB's cancel raise, one per
 * line (a job's progress channel, MM_CHANNEL_JOB_PROGRESS_FMT, hears only a worker's reports).
 */
static int
Channels(long long job_id)
{
	(void) job_id;
	printf("%s\n%s\n%s\n", MM_CHANNEL_WORK, MM_CHANNEL_NODE_REGISTERED, MM_CHANNEL_JOBS_ENDED);
	return 0;
}

int
main(int argc, char **argv)
{
	static const char *const statuses[] = MM_JOB_STATUSES;
	static const char *const trainers[] = MM_TRAINERS;
	char		buf[1024],
				sql[2048];
	size_t		n;

	if (argc == 3 && strcmp(argv[1], "channels") == 0)
		return Channels(atoll(argv[2]));

	_Static_assert(sizeof(statuses) / sizeof(statuses[0]) == MM_NSTATUSES, "MM_NSTATUSES counts MM_JOB_STATUSES");
	_Static_assert(sizeof(trainers) / sizeof(trainers[0]) == MM_NTRAINERS, "MM_NTRAINERS counts MM_TRAINERS");

	/* job_status: the enum's labels are protocol.h's statuses, in order */
	n = 0;
	buf[n++] = '{';
	for (int i = 0; i < MM_NSTATUSES; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", statuses[i]);
	snprintf(buf + n, sizeof(buf) - n, "}");
	Check("job_status labels", "SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum "
		  "WHERE enumtypid = 'modelmine.job_status'::regtype", buf);

	/* withdrawal statuses: the ones the CHECK constraint allows, in its order */
	Check("withdrawal statuses",
		  "SELECT string_agg(m[1], ',' ORDER BY o) FROM pg_constraint c, "
		  "regexp_matches(pg_get_constraintdef(c.oid), '''([A-Z]+)''', 'g') WITH ORDINALITY x(m, o) "
		  "WHERE c.conrelid = 'modelmine.withdrawals'::regclass "
		  "AND c.conname = 'withdrawals_status_check'",
		  MM_WITHDRAWAL_STATUSES);

	/* notification statuses and events: the outbox's CHECK constraints, in their order */
	Check("outbox statuses",
		  "SELECT string_agg(m[1], ',' ORDER BY o) FROM pg_constraint c, "
		  "regexp_matches(pg_get_constraintdef(c.oid), '''([A-Z]+)''', 'g') WITH ORDINALITY x(m, o) "
		  "WHERE c.conrelid = 'modelmine.outbox'::regclass AND c.conname = 'outbox_status_check'",
		  MM_OUTBOX_STATUSES);
	Check("notification events",
		  "SELECT string_agg(m[1], ',' ORDER BY o) FROM pg_constraint c, "
		  "regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') WITH ORDINALITY x(m, o) "
		  "WHERE c.conrelid = 'modelmine.outbox'::regclass AND c.conname = 'outbox_event_check'",
		  MM_NOTIFY_EVENTS);
	Check("the notifier role exists",
		  "SELECT rolname FROM pg_roles WHERE rolname = '" MM_ROLE_NOTIFIER "'", MM_ROLE_NOTIFIER);

	/*
	 * the trainers: a config naming each is accepted (with a dataset of the kind it trains on, which
	 * the workers' validator asks for; noop takes none), its requirement is trainer:NAME
	 */
	for (int i = 0; i < MM_NTRAINERS; i++)
	{
		const char *data = strcmp(trainers[i], "noop") == 0 ? "" :
			strcmp(trainers[i], "linreg") == 0 ? ",\"dataset\":{\"synthetic\":\"linear\"}" :
			",\"dataset\":{\"synthetic\":\"blobs\"}";

		snprintf(sql, sizeof(sql), "SELECT contract_requirement('{\"trainer\":\"%s\"%s}')",
				 trainers[i], data);
		snprintf(buf, sizeof(buf), "%s%s", MM_REQUIRE_TRAINER, trainers[i]);
		Check(buf, sql, buf);
	}
	/* the SQL default of jobs.requirement names the default trainer */
	snprintf(buf, sizeof(buf), "%s%s", MM_REQUIRE_TRAINER, MM_TRAINER_DEFAULT);
	Check("a config without trainer or runner requires the default trainer",
		  "SELECT contract_requirement('{\"dataset\":{\"synthetic\":\"blobs\"}}')", buf);
	snprintf(buf, sizeof(buf), "%sacme-1", MM_REQUIRE_RUNNER);
	Check("a config with a runner requires it",
		  "SELECT contract_requirement('{\"runner\":\"acme-1\"}')", buf);

	/* the account layout: fixed ids, shards, where owned accounts start */
	CheckInt("the issuance account's id", "SELECT id FROM modelmine.accounts WHERE kind = 'issuance'",
			 MM_ISSUANCE_ACCOUNT);
	CheckInt("the held account's id", "SELECT id FROM modelmine.accounts WHERE kind = 'held'",
			 MM_HELD_ACCOUNT);
	CheckInt("the withdrawn account's id", "SELECT id FROM modelmine.accounts WHERE kind = 'withdrawn'",
			 MM_WITHDRAWN_ACCOUNT);
	snprintf(buf, sizeof(buf), "%d..%d", MM_ESCROW_FIRST_ACCOUNT, MM_ESCROW_FIRST_ACCOUNT + MM_SHARDS - 1);
	Check("escrow shard accounts", "SELECT min(id) || '..' || max(id) FROM modelmine.accounts "
		  "WHERE kind = 'escrow' AND id - shard = " XSTR(MM_ESCROW_FIRST_ACCOUNT) " HAVING count(*) = "
		  "count(DISTINCT shard)", buf);
	snprintf(buf, sizeof(buf), "%d..%d", MM_FEE_FIRST_ACCOUNT, MM_FEE_FIRST_ACCOUNT + MM_SHARDS - 1);
	Check("fee shard accounts", "SELECT min(id) || '..' || max(id) FROM modelmine.accounts "
		  "WHERE kind = 'fee' AND id - shard = " XSTR(MM_FEE_FIRST_ACCOUNT) " HAVING count(*) = "
		  "count(DISTINCT shard)", buf);
	CheckInt("escrow and fee shards", "SELECT count(*) / 2 FROM modelmine.accounts WHERE kind IN ('escrow', 'fee')",
			 MM_SHARDS);
	CheckInt("owned accounts start at", "SELECT seqstart FROM pg_sequence "
			 "WHERE seqrelid = pg_get_serial_sequence('modelmine.accounts', 'id')::regclass", MM_FIRST_OWNED_ACCOUNT);
	/* the SQL that groups by shard (id % 16, BETWEEN 16 AND 47) agrees with MM_ESCROW_ACCOUNT: stakes of
	 * jobs on every shard sit where the invariants and network_stats look for them */
	printf("SELECT contract_submit('{\"trainer\":\"noop\"}') FROM generate_series(1, %d) \\g /dev/null\n",
		   MM_SHARDS);
	CheckInt("open jobs on every shard", "SELECT count(DISTINCT id % " XSTR(MM_SHARDS) ") FROM modelmine.jobs "
			 "WHERE status = 'PENDING'", MM_SHARDS);
	Check("stakes on every shard: check_invariants() is empty",
		  "SELECT count(*) FROM modelmine.check_invariants()", "0");
	Check("network_stats' escrow is the open stakes",
		  "SELECT (SELECT staked_now FROM modelmine.network_stats()) = "
		  "(SELECT sum(stake) FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING'))", "true");

	/* CHECK constraints that mirror protocol.h's limits */
	Bound("jobs.title characters", "INSERT INTO modelmine.jobs (user_id, title, config, stake) "
		  "SELECT id, repeat('t', %lld), '{}', 1 FROM modelmine.users LIMIT 1", MM_TITLE_MAX_CHARS,
		  MM_TITLE_MAX_CHARS + 1);
	Bound("jobs.description characters", "INSERT INTO modelmine.jobs (user_id, title, description, config, stake) "
		  "SELECT id, 't', repeat('d', %lld), '{}', 1 FROM modelmine.users LIMIT 1", MM_DESCRIPTION_MAX_CHARS,
		  MM_DESCRIPTION_MAX_CHARS + 1);
	Bound("jobs.priority", "INSERT INTO modelmine.jobs (user_id, title, config, stake, priority) "
		  "SELECT id, 't', '{}', 1, %lld FROM modelmine.users LIMIT 1", MM_PRIORITY_MAX, MM_PRIORITY_MAX + 1);
	Bound("jobs.priority", "INSERT INTO modelmine.jobs (user_id, title, config, stake, priority) "
		  "SELECT id, 't', '{}', 1, %lld FROM modelmine.users LIMIT 1", MM_PRIORITY_MIN, MM_PRIORITY_MIN - 1);
	Bound("nodes.name characters", "INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements) "
		  "SELECT id, repeat('n', %lld), '\\x00', '{}', '{}' FROM modelmine.users LIMIT 1", MM_NODE_NAME_MAX_CHARS,
		  MM_NODE_NAME_MAX_CHARS + 1);
	Bound("nodes.slots", "INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, slots) "
		  "SELECT id, 'n', '\\x00', '{}', '{}', %lld FROM modelmine.users LIMIT 1", MM_MAX_SLOTS, MM_MAX_SLOTS + 1);
	/* issue 19: what a node offers and a job requires */
	Bound("nodes.memory_mb", "INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, memory_mb) "
		  "SELECT id, 'n', '\\x00', '{}', '{}', %lld FROM modelmine.users LIMIT 1", MM_MAX_MEMORY_MB, MM_MAX_MEMORY_MB + 1);
	Bound("nodes.cores", "INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, cores) "
		  "SELECT id, 'n', '\\x00', '{}', '{}', %lld FROM modelmine.users LIMIT 1", MM_MAX_CORES, MM_MAX_CORES + 1);
	Bound("nodes.labels", "INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, labels) "
		  "SELECT id, 'n', '\\x00', '{}', '{}', array_fill('l'::text, ARRAY[%lld]) FROM modelmine.users LIMIT 1",
		  MM_MAX_LABELS, MM_MAX_LABELS + 1);
	Bound("jobs.need_memory_mb", "INSERT INTO modelmine.jobs (user_id, title, config, stake, need_memory_mb) "
		  "SELECT id, 't', '{}', 1, %lld FROM modelmine.users LIMIT 1", MM_MAX_MEMORY_MB, MM_MAX_MEMORY_MB + 1);
	Bound("jobs.need_cores", "INSERT INTO modelmine.jobs (user_id, title, config, stake, need_cores) "
		  "SELECT id, 't', '{}', 1, %lld FROM modelmine.users LIMIT 1", MM_MAX_CORES, MM_MAX_CORES + 1);
	Bound("jobs.need_labels", "INSERT INTO modelmine.jobs (user_id, title, config, stake, need_labels) "
		  "SELECT id, 't', '{}', 1, array_fill('l'::text, ARRAY[%lld]) FROM modelmine.users LIMIT 1",
		  MM_MAX_LABELS, MM_MAX_LABELS + 1);
	snprintf(sql, sizeof(sql), "INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, status) "
			 "SELECT id, 'n', '\\x00', '{}', '{}', '%%s' FROM modelmine.users LIMIT 1");
	{
		const char *const reported[] = {MM_NODE_ONLINE, MM_NODE_BUSY, MM_NODE_MAINTENANCE};
		char		stmt[1024],
					label[128];

		for (int i = 0; i < 3; i++)
		{
			snprintf(stmt, sizeof(stmt), sql, reported[i]);
			snprintf(label, sizeof(label), "nodes.status %s is accepted", reported[i]);
			Tries(label, stmt, 0, "ok");
		}
		snprintf(stmt, sizeof(stmt), sql, MM_NODE_OFFLINE);
		Tries("nodes.status " MM_NODE_OFFLINE " is derived, never stored", stmt, 0, "23514");
	}

	/* the client roles a login role is granted */
	Check("the client roles exist", "SELECT count(*) FROM pg_roles WHERE rolname IN ('" MM_ROLE_ANON "', '"
		  MM_ROLE_USER "', '" MM_ROLE_NODE "', '" MM_ROLE_ADMIN "') AND NOT rolcanlogin", "4");

	/* settings whose ceiling is the largest amount */
	CheckInt("max_supply's ceiling", "SELECT max_value FROM modelmine.settings WHERE name = 'max_supply'", MM_MAX_AMOUNT);
	CheckInt("max_stake's ceiling", "SELECT max_value FROM modelmine.settings WHERE name = 'max_stake'", MM_MAX_AMOUNT);

	/* the documented ranges in function comments */
	Check("claim_jobs' comment states its bounds",
		  "SELECT obj_description('modelmine.claim_jobs(integer, integer)'::regprocedure) LIKE "
		  "'%max_jobs (1.." XSTR(MM_CLAIM_MAX) ")%lease_seconds (" XSTR(MM_LEASE_MIN_SECONDS) ".."
		  XSTR(MM_LEASE_MAX_SECONDS) ")%'", "true");
	Check("complete_jobs' comment states its batch size",
		  "SELECT obj_description('modelmine.complete_jobs(jsonb)'::regprocedure) LIKE "
		  "'%each of 1.." XSTR(MM_COMPLETE_MAX) " jobs%'", "true");
	Check("register_node's comment states the slot range",
		  "SELECT obj_description('modelmine.register_node(text, jsonb)'::regprocedure) LIKE '%\"slots\": 1.."
		  XSTR(MM_MAX_SLOTS) "%'", "true");
	return 0;
}
