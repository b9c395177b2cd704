/*
 * settle.c — set-based settlement of a batch's single-replica jobs (complete_jobs, issue 15).
 *
 * Most jobs want one replica: the caller's result is its own quorum, the node earns the reward
 * pool and the rest of the stake is the fee.  Settling them one at a time costs a dozen statements
 * a job, and each statement pays executor start-up, its CHECK constraints and trigger conditions
 * parsed again, and a plan-cache check.  Here every table is written once per batch: the jobs,
 * their replicas, the journal (a reward and a fee row per job, as MmPayOut writes them), the
 * credits, the ledger queue and the caller's node counters.  The rows written are those the
 * per-job path (lease.c MmCompleteJob, validate.c) writes for such a job; regress/sql/batch.sql
 * settles twin jobs both ways and compares them.
 *
 * Only jobs that cannot take another path go here: RUNNING, replicas_wanted = 1, the caller's
 * replica RUNNING.  Their rows are locked in id order, waiting as the per-job path would (up to
 * lock_timeout_ms): a busy row is nearly always another node's claim that locked it for a moment
 * (PostgreSQL keeps the lock a SKIP LOCKED scan took on a row whose newer version then failed the
 * scan's test, to the end of that claim's transaction), and skipping it sent about 6% of a busy
 * queue's jobs down the per-job path at three times the cost.  The rest, and the whole batch when
 * a result is invalid, a count does not match or a wait times out, go through the per-job path,
 * which gives each refusal its own answer.  The caller runs this in a subtransaction.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/* Raised when a count is not what the locks promise: the batch takes the per-job path instead. */
static void
Mismatch(const char *what, uint64 got, int want)
{
	ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					errmsg("set-based settlement %s " UINT64_FORMAT " rows, not %d", what, got, want),
					errhint("The batch is settled job by job instead.")));
}

/*
 * Locks the batch's jobs that can be settled here; returns how many, ids and stakes filled.  Here
 * and in WriteJobs jobs and replicas are also matched by id = ANY (the batch): an index condition,
 * so a plan made while a table looked small or empty does not scan all of it for the batch's ids.
 */
static int
LockSingles(ArrayType *ids, int64 node_id, int64 *job, int64 *stake)
{
	static MmPlan lock = {
		"SELECT j.id, j.stake FROM pg_catalog.unnest($1::bigint[]) AS c(id) "
		"  JOIN modelmine.jobs j ON j.id = c.id "
		" WHERE j.id = ANY ($1::bigint[]) AND " MM_BY_KEY("j.status = 'RUNNING'")
		"   AND j.replicas_wanted = 1 "
		"   AND EXISTS (SELECT 1 FROM modelmine.job_replicas r "
		"                WHERE r.job_id = j.id AND r.job_id = ANY ($1::bigint[]) "
		"                  AND r.node_id = $2 AND " MM_BY_KEY("r.status = 'RUNNING'") ") "
		" ORDER BY j.id FOR NO KEY UPDATE OF j", 2, {INT8ARRAYOID, INT8OID}, MM_PROBE};
	Datum		args[2] = {PointerGetDatum(ids), Int64GetDatum(node_id)};
	uint64		n = MmExecWaiting(&lock, args, NULL, 0, "a job of the batch", 0);

	for (uint64 i = 0; i < n; i++)
	{
		job[i] = MmInt64(i, 1, NULL);
		stake[i] = MmInt64(i, 2, NULL);
	}
	return (int) n;
}

/* An int8[] of n values. */
static ArrayType *
Int8Array(const int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return construct_array_builtin(d, n, INT8OID);
}

/* The caller's replicas take their results and rewards; the jobs complete with them. */
static void
WriteJobs(int n, ArrayType *ids, ArrayType *results, ArrayType *rewards, int64 node_id)
{
	static MmPlan replicas = {
		"UPDATE modelmine.job_replicas r SET status = 'SUBMITTED', result = c.result, "
		"       progress = 100, finished_at = pg_catalog.now(), lease_expires_at = NULL, "
		"       verdict = NULL, reward = c.reward "
		"  FROM unnest($1::bigint[], $3::jsonb[], $4::bigint[]) AS c(job_id, result, reward) "
		" WHERE r.job_id = c.job_id AND r.job_id = ANY ($1::bigint[]) AND r.node_id = $2 "
		"   AND " MM_BY_KEY("r.status = 'RUNNING'"),
	4, {INT8ARRAYOID, INT8OID, JSONBARRAYOID, INT8ARRAYOID}, MM_PROBE};
	static MmPlan jobs = {
		"UPDATE modelmine.jobs j SET status = 'COMPLETED', result = c.result, node_id = $2, "
		"       progress = 100, finished_at = pg_catalog.now(), lease_expires_at = NULL, "
		"       open_replicas = 0, validation = NULL "
		"  FROM unnest($1::bigint[], $3::jsonb[]) AS c(job_id, result) "
		" WHERE j.id = c.job_id AND j.id = ANY ($1::bigint[]) AND " MM_BY_KEY("j.status = 'RUNNING'"),
	3, {INT8ARRAYOID, INT8OID, JSONBARRAYOID}, MM_PROBE};
	/* a replica of another node, left RUNNING by a lost lease's re-open (MmReleaseReplicas) */
	static MmPlan release = {
		"UPDATE modelmine.job_replicas r SET status = 'RELEASED', lease_expires_at = NULL, "
		"       finished_at = pg_catalog.now() "
		"  FROM pg_catalog.unnest($1::bigint[]) AS c(id) "
		" WHERE r.job_id = c.id AND r.job_id = ANY ($1::bigint[]) AND " MM_BY_KEY("r.status = 'RUNNING'"),
	1, {INT8ARRAYOID}, MM_PROBE};
	Datum		args[4] = {PointerGetDatum(ids), Int64GetDatum(node_id), PointerGetDatum(results),
	PointerGetDatum(rewards)};
	uint64		got;

	if ((got = MmExec(&replicas, args, NULL, false, 0)) != (uint64) n)
		Mismatch("submitted", got, n);
	if ((got = MmExec(&jobs, args, NULL, false, 0)) != (uint64) n)
		Mismatch("completed", got, n);
	MmExec(&release, args, NULL, false, 0);
}

/*
 * The journal rows MmPayOut writes for each job, in the per-job order (reward, then fee), and
 * the credits they append, one per account (balances only need the sums); then the ledger queue
 * entries in the batch's order.
 */
static void
WriteBooks(int n, const int64 *job, const int64 *stake, const int64 *reward, int64 node_id)
{
	/* unnested row by row, in order, as MmTrySpendEach does; the credits summed in C */
	static MmPlan post = {
		"WITH d AS (INSERT INTO modelmine.account_deltas (account_id, amount) "
		"           SELECT pg_catalog.unnest($6::bigint[]), pg_catalog.unnest($7::bigint[])) "
		"INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, job_id) "
		"SELECT pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::bigint[]), "
		"       pg_catalog.unnest($3::bigint[]), pg_catalog.unnest($4::text[]), "
		"       pg_catalog.unnest($5::bigint[])",
	7, {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID}, MM_PROBE};
	static MmPlan record = {
		"INSERT INTO modelmine.ledger_queue "
		"(job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at) "
		"SELECT j.id, j.user_id, j.node_id, j.stake, c.reward, j.stake - c.reward, "
		"       j.result ->> 'accuracy', j.result ->> 'loss', "
		"       (j.result ->> 'epochs')::numeric::bigint, j.finished_at "
		"  FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS c(job_id, reward, ord) "
		"  JOIN modelmine.jobs j ON j.id = c.job_id ORDER BY c.ord",
	2, {INT8ARRAYOID, INT8ARRAYOID}, MM_PROBE};
	int64		account = MmNodeAccount(node_id);
	int64	   *debit = palloc(sizeof(int64) * 2 * n),
			   *credit = palloc(sizeof(int64) * 2 * n),
			   *amount = palloc(sizeof(int64) * 2 * n),
			   *of = palloc(sizeof(int64) * 2 * n);
	Datum	   *reason = palloc(sizeof(Datum) * 2 * n),
			   *moved = palloc(sizeof(Datum) * 4 * n),
			   *by = palloc(sizeof(Datum) * 4 * n),
			   *account_ids,
			   *sums;
	Datum		args[7];
	int			m = 0,
				k = 0;
	uint64		done;

	for (int i = 0; i < n; i++)
	{
		if (reward[i] > 0)
		{
			debit[m] = MM_ESCROW_ACCOUNT(job[i]);
			credit[m] = account;
			amount[m] = reward[i];
			reason[m] = CStringGetTextDatum("reward");
			of[m++] = job[i];
		}
		if (stake[i] - reward[i] > 0)
		{
			debit[m] = MM_ESCROW_ACCOUNT(job[i]);
			credit[m] = MM_FEE_ACCOUNT(job[i]);
			amount[m] = stake[i] - reward[i];
			reason[m] = CStringGetTextDatum("fee");
			of[m++] = job[i];
		}
	}
	/* each credit is appended; a system account's debit too (an owned one is never debited here) */
	for (int i = 0; i < m; i++)
	{
		moved[k] = Int64GetDatum(credit[i]);
		by[k++] = Int64GetDatum(amount[i]);
		if (debit[i] < MM_FIRST_OWNED_ACCOUNT)
		{
			moved[k] = Int64GetDatum(debit[i]);
			by[k++] = Int64GetDatum(-amount[i]);
		}
	}
	k = MmSumByAccount(k, moved, by, &account_ids, &sums);
	args[0] = PointerGetDatum(Int8Array(debit, m));
	args[1] = PointerGetDatum(Int8Array(credit, m));
	args[2] = PointerGetDatum(Int8Array(amount, m));
	args[3] = PointerGetDatum(construct_array_builtin(reason, m, TEXTOID));
	args[4] = PointerGetDatum(Int8Array(of, m));
	args[5] = PointerGetDatum(construct_array_builtin(account_ids, k, INT8OID));
	args[6] = PointerGetDatum(construct_array_builtin(sums, k, INT8OID));
	if ((done = MmExec(&post, args, NULL, false, 0)) != (uint64) m)
		Mismatch("journaled", done, m);
	MmAtCommit(MM_AT_COMMIT_CREDITS);
	args[0] = PointerGetDatum(Int8Array(job, n));
	args[1] = PointerGetDatum(Int8Array(reward, n));
	MmExec(&record, args, NULL, false, 0);
	MmAtCommit(MM_AT_COMMIT_SEAL);	/* sealed when this transaction commits (housekeeping.c) */
}

/* The caller's own counters, once for the batch (validate.c CountFor, summed). */
static void
CountBatch(int64 node_id, int n, int64 earned)
{
	static MmPlan direct = {
		"UPDATE modelmine.nodes SET jobs_completed = jobs_completed + $2, "
		"       tokens_earned = tokens_earned + $3 WHERE id = $1", 3, {INT8OID, INT4OID, INT8OID}};
	Datum		args[3] = {Int64GetDatum(node_id), Int32GetDatum(n), Int64GetDatum(earned)};

	MmExecWaiting(&direct, args, NULL, 0, "node", node_id);
}

/*
 * Settles the batch's single-replica jobs (ids[i], results[i], k of them) in a few statements; sets
 * settled[i] and paid[i] for each one settled and returns how many.  See the file header.
 */
int
MmSettleSingles(int64 node_id, const int64 *ids, Jsonb **results, int k, bool *settled,
				int64 *paid)
{
	int64	   *job = palloc(sizeof(int64) * k),
			   *stake = palloc(sizeof(int64) * k),
			   *reward = palloc(sizeof(int64) * k);
	Datum	   *res = palloc(sizeof(Datum) * k);
	int64		pct = MmSetting("reward_pct"),
				earned = 0;
	int			n;

	for (int i = 0; i < k; i++)
		MmCheckResult(results[i]);	/* an invalid result sends the batch to the per-job path */
	n = LockSingles(Int8Array(ids, k), node_id, job, stake);
	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++)
	{
		int			at = 0;

		while (ids[at] != job[i])
			at++;
		res[i] = JsonbPGetDatum(results[at]);
		/* as Settle with a quorum of one: stake <= 10^15, no overflow; the remainder is fee */
		reward[i] = stake[i] * pct / 100;
		earned += reward[i];
		settled[at] = true;
		paid[at] = reward[i];
	}
	WriteJobs(n, Int8Array(job, n), construct_array(res, n, JSONBOID, -1, false, TYPALIGN_INT),
			  Int8Array(reward, n), node_id);
	WriteBooks(n, job, stake, reward, node_id);
	CountBatch(node_id, n, earned);
	return n;
}
