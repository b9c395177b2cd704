/*
 * validate.c — the validator: once a job has all the results it wants, picks the agreeing quorum,
 * completes the job once with the canonical result and pays the quorum, or asks for one more
 * replica, or fails the job and refunds it.
 *
 * Two results agree when they report the same epochs, losses within loss_tolerance_ppm millionths
 * (relative to the larger magnitude when it exceeds 1) and accuracies within accuracy_tolerance_ppm
 * millionths (both null, or both numbers).  The canonical result is the earliest result that agrees
 * with the most results; the quorum is it and the results agreeing with it, and it must be a strict
 * majority of the results in.  A single result (replicas_wanted = 1) is its own quorum, unchecked.
 *
 * Who pays for replicas: the stake.  The reward pool (stake * reward_pct / 100) is split equally
 * over the quorum's nodes, the remainder of the division and the rest of the stake go to the
 * network fee; dissenting nodes get nothing and a mark (results_invalid).  The ledger records the
 * canonical result, the canonical result's node, the whole pool paid as the reward, and the fee.
 *
 * The caller holds the job row's lock (lease.c), so racing completions validate exactly once.  The
 * caller's own node row is updated directly; other nodes' counters are appended to node_deltas and
 * folded at commit, so no node waits on another's row.
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/* one submitted result, as the validator compares it */
typedef struct Submitted
{
	int64		node_id;
	double		epochs;
	double		loss;
	double		accuracy;
	bool		has_accuracy;
	bool		in_quorum;
} Submitted;

/* Whether results a and b agree within the tolerances (in millionths). */
static bool
Agree(const Submitted *a, const Submitted *b, double loss_tol, double acc_tol)
{
	double		scale = Max(1.0, Max(fabs(a->loss), fabs(b->loss)));

	if (a->epochs != b->epochs || fabs(a->loss - b->loss) > loss_tol * scale)
		return false;
	if (a->has_accuracy != b->has_accuracy)
		return false;
	return !a->has_accuracy || fabs(a->accuracy - b->accuracy) <= acc_tol;
}

/* Reads the job's submitted results, earliest first; returns how many. */
static int
LoadSubmitted(int64 job_id, Submitted **out)
{
	static MmPlan load = {
		"SELECT node_id, result FROM modelmine.job_replicas "
		" WHERE job_id = $1 AND status = 'SUBMITTED' ORDER BY finished_at, id", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(job_id)};
	uint64		n = MmExec(&load, args, NULL, false, 0);
	Submitted  *s = palloc0(sizeof(Submitted) * (n + 1));

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Jsonb	   *r = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 2, &isnull));

		s[i].node_id = MmInt64(i, 1, NULL);
		(void) MmResultNumber(r, "epochs", &s[i].epochs);	/* checked at submission */
		(void) MmResultNumber(r, "loss", &s[i].loss);
		s[i].has_accuracy = MmResultNumber(r, "accuracy", &s[i].accuracy);
	}
	*out = s;
	return (int) n;
}

/*
 * Marks the quorum (in_quorum) and returns the canonical result's index, or -1 when no group of
 * agreeing results is a strict majority.
 */
static int
PickQuorum(Submitted *s, int n)
{
	double		loss_tol = MmSetting("loss_tolerance_ppm") / 1e6;
	double		acc_tol = MmSetting("accuracy_tolerance_ppm") / 1e6;
	int			best = -1,
				best_size = 0;

	for (int i = 0; i < n; i++)
	{
		int			size = 0;

		for (int k = 0; k < n; k++)
			size += Agree(&s[i], &s[k], loss_tol, acc_tol) ? 1 : 0;
		if (size > best_size)
		{
			best = i;
			best_size = size;
		}
	}
	if (best < 0 || 2 * best_size <= n)
		return -1;
	for (int k = 0; k < n; k++)
		s[k].in_quorum = Agree(&s[best], &s[k], loss_tol, acc_tol);
	return best;
}

/* Adds to a node's counters: directly for the caller, appended for any other node. */
static void
CountFor(int64 node_id, int64 caller, int32 completed, int64 earned, int32 valid, int32 invalid)
{
	static MmPlan direct = {
		"UPDATE modelmine.nodes SET jobs_completed = jobs_completed + $2, "
		"       tokens_earned = tokens_earned + $3, results_valid = results_valid + $4, "
		"       results_invalid = results_invalid + $5 WHERE id = $1",
	5, {INT8OID, INT4OID, INT8OID, INT4OID, INT4OID}};
	static MmPlan append = {
		"INSERT INTO modelmine.node_deltas (node_id, jobs_failed, jobs_completed, tokens_earned, "
		"                                   results_valid, results_invalid) "
		"VALUES ($1, 0, $2, $3, $4, $5)", 5, {INT8OID, INT4OID, INT8OID, INT4OID, INT4OID}};
	Datum		args[5] = {Int64GetDatum(node_id), Int32GetDatum(completed), Int64GetDatum(earned),
	Int32GetDatum(valid), Int32GetDatum(invalid)};

	if (node_id == caller)
		MmExecWaiting(&direct, args, NULL, 0, "node", node_id);
	else
	{
		MmExec(&append, args, NULL, false, 0);
		MmAtCommit(MM_AT_COMMIT_NODES);
	}
}

/*
 * Completes the job with result canon (index into s), pays the quorum and records the ledger
 * entry; returns what the caller was paid.
 */
static int64
Settle(int64 job_id, int64 caller, Submitted *s, int n, int canon, bool validated)
{
	static MmPlan done = {
		"UPDATE modelmine.jobs j SET status = 'COMPLETED', result = r.result, node_id = r.node_id, "
		"       progress = 100, finished_at = pg_catalog.now(), lease_expires_at = NULL, "
		"       open_replicas = 0, validation = CASE WHEN $3 THEN 'VALID' END "
		"  FROM modelmine.job_replicas r "
		" WHERE j.id = $1 AND r.job_id = $1 AND r.node_id = $2 AND r.status = 'SUBMITTED' "
		"RETURNING j.stake", 3, {INT8OID, INT8OID, BOOLOID}};
	static MmPlan verdicts = {
		"UPDATE modelmine.job_replicas SET "
		"       verdict = CASE WHEN NOT $4 THEN NULL WHEN node_id = ANY ($2) THEN 'AGREE' "
		"ELSE 'DISSENT' END, "
		"       reward = CASE WHEN node_id = ANY ($2) THEN $3 ELSE 0 END "
		" WHERE job_id = $1 AND status = 'SUBMITTED'", 4, {INT8OID, INT8ARRAYOID, INT8OID, BOOLOID}};
	static MmPlan record = {
		"INSERT INTO modelmine.ledger_queue "
		"(job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at) "
		"SELECT id, user_id, node_id, stake, $2, stake - $2, "
		"result ->> 'accuracy', result ->> 'loss', "
		"       (result ->> 'epochs')::numeric::bigint, finished_at "
		"FROM modelmine.jobs WHERE id = $1", 2, {INT8OID, INT8OID}, true};
	Datum		args[4];
	Datum	   *quorum = palloc(sizeof(Datum) * n);
	int			q = 0;
	int64		stake,
				each,
				mine = 0;

	for (int i = 0; i < n; i++)
		if (s[i].in_quorum)
			quorum[q++] = Int64GetDatum(s[i].node_id);
	args[0] = Int64GetDatum(job_id);
	args[1] = Int64GetDatum(s[canon].node_id);
	args[2] = BoolGetDatum(validated);
	if (MmExec(&done, args, NULL, false, 0) != 1)
		elog(ERROR, "modelmine: job " INT64_FORMAT " vanished while settling", job_id);
	stake = MmInt64(0, 1, NULL);
	/* stake <= 10^15: no overflow; the division's remainder stays with the fee */
	each = stake * MmSetting("reward_pct") / 100 / q;
	args[1] = PointerGetDatum(construct_array_builtin(quorum, q, INT8OID));
	args[2] = Int64GetDatum(each);
	args[3] = BoolGetDatum(validated);
	MmExec(&verdicts, args, NULL, false, 0);
	MmReleaseReplicas(job_id);
	for (int i = 0; i < n; i++)
	{
		if (!s[i].in_quorum)
		{
			CountFor(s[i].node_id, caller, 0, 0, 0, 1);
			continue;
		}
		if (each > 0)
			MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmNodeAccount(s[i].node_id), each, "reward",
					 job_id);
		CountFor(s[i].node_id, caller, 1, each, validated ? 1 : 0, 0);
		if (s[i].node_id == caller)
			mine = each;
	}
	if (stake - each * q > 0)
		MmPayOut(MM_ESCROW_ACCOUNT(job_id), MM_FEE_ACCOUNT(job_id), stake - each * q, "fee",
				 job_id);
	args[1] = Int64GetDatum(each * q);
	MmExec(&record, args, NULL, false, 0);
	MmAtCommit(MM_AT_COMMIT_SEAL);	/* sealed when this transaction commits (housekeeping.c) */
	return mine;
}

/*
 * No quorum among n results: one more replica while the job has had fewer than
 * max(replicas, 2) + max_extra_replicas wanted, else the job fails and is refunded, no node paid.
 */
static void
NoQuorum(int64 job_id, int n)
{
	static MmPlan more = {
		"UPDATE modelmine.jobs SET replicas_wanted = replicas_wanted + 1, "
		"       open_replicas = open_replicas + 1 "
		" WHERE id = $1 AND replicas_wanted < GREATEST(replicas, 2) + $2 RETURNING id",
	2, {INT8OID, INT4OID}};
	static MmPlan fail = {
		"UPDATE modelmine.jobs SET status = 'FAILED', validation = 'NO_QUORUM', open_replicas = 0, "
		"       error = pg_catalog.format('no quorum among %s results, after %s extra replicas "
		"(setting max_extra_replicas)', $3, $2), "
		"       finished_at = pg_catalog.now(), lease_expires_at = NULL "
		" WHERE id = $1 RETURNING stake, user_id", 3, {INT8OID, INT4OID, INT4OID}};
	Datum		args[3] = {Int64GetDatum(job_id),
	Int32GetDatum((int32) MmSetting("max_extra_replicas")), Int32GetDatum(n)};
	int64		stake,
				owner;

	if (MmExec(&more, args, NULL, false, 0) == 1)
	{
		Async_Notify(MM_CHANNEL_WORK, "");
		return;
	}
	MmExec(&fail, args, NULL, false, 0);
	stake = MmInt64(0, 1, NULL);
	owner = MmInt64(0, 2, NULL);
	MmReleaseReplicas(job_id);
	MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(owner), stake, "refund", job_id);
}

/*
 * Validates a job whose row the caller holds and which has all the results it wants; returns the
 * reward paid to the caller's node (0 when it dissented or no quorum was found).
 */
int64
MmValidateJob(int64 job_id, int64 caller, int32 wanted)
{
	Submitted  *s;
	int			n = LoadSubmitted(job_id, &s);
	int			canon = PickQuorum(s, n);

	if (canon < 0)
	{
		NoQuorum(job_id, n);
		return 0;
	}
	return Settle(job_id, caller, s, n, canon, wanted > 1);
}
