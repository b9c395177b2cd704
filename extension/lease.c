/*
 * lease.c — the work protocol between nodes and the queue: claim, progress, complete, fail,
 * release.
 *
 * Claiming is FOR UPDATE SKIP LOCKED over pending jobs whose requirement ('trainer:NAME' or
 * 'runner:NAME') the node advertises, highest priority then oldest first.  A row another claimer
 * has locked is skipped; one it has already claimed fails the re-checked WHERE status = 'PENDING',
 * so a job never goes to two nodes.  Leases expire without any background process: every claim
 * first re-queues (or, after max_attempts, fails and refunds) jobs whose lease ran out, counting
 * the lost lease against its node with an appended node_deltas row.  Only report_progress extends a
 * lease, and a node holds at most its declared slots; one in MAINTENANCE gets nothing, an OFFLINE
 * one is refused.
 *
 * Waits: a claim never waits (SKIP LOCKED; its own node row is the only row it locks and waits for,
 * and only that node's other sessions hold it).  A lease holder's call on its job row can meet the
 * owner's cancel; both run under lock_timeout_ms (MmExecWaiting), so neither holds the other for
 * long.
 *
 * Every report is accepted only from the node that holds the lease, and the status-changing UPDATE
 * is what settles: complete and fail move money only when their UPDATE matched a RUNNING row leased
 * to the caller, so a repeated or racing call is an error, never a second payment.
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mm_claim_jobs);
PG_FUNCTION_INFO_V1(mm_report_progress);
PG_FUNCTION_INFO_V1(mm_complete_job);
PG_FUNCTION_INFO_V1(mm_fail_job);
PG_FUNCTION_INFO_V1(mm_release_job);

/* expired leases re-queued per claim: bounds the work one claim does for others */
#define RECLAIM_BATCH 100


/*
 * Explains why a lease-holder-only call matched no row; always raises.  A node learns about a job
 * only what concerns its own lease: for any job it does not hold (someone else's, a pending one, a
 * missing id) the answer is the same, so no node can probe the queue.
 */
static void
LeaseError(int64 job_id, int64 node_id)
{
	static MmPlan get = {"SELECT status::text FROM modelmine.jobs WHERE id = $1 AND node_id = $2",
	2, {INT8OID, INT8OID}};
	Datum		args[2] = {Int64GetDatum(job_id), Int64GetDatum(node_id)};
	char	   *status;

	if (MmExec(&get, args, NULL, false, 1) != 1 ||
		strcmp(status = MmText(0, 1), "RUNNING") == 0 || strcmp(status, "PENDING") == 0)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("job " INT64_FORMAT " is not leased to this node", job_id),
						errhint("A node may only report on jobs it holds; claim work with "
								"modelmine.claim_jobs().")));
	if (strcmp(status, "CANCELED") == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("job " INT64_FORMAT " was canceled", job_id),
						errhint("Stop working on it; its owner was refunded.")));
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("job " INT64_FORMAT " is already %s", job_id, status),
					errdetail("Its lease was held by this node."),
					errhint("It was settled once; nothing was changed or paid again.")));
}

/* Refuses a NULL job_id, the first argument of every lease-holder call. */
static void
CheckJobId(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("job_id is required"),
						errhint("Pass the job_id returned by modelmine.claim_jobs().")));
}

/* ---------------------------------------------------------------------------------------------- */
/* Reclaiming expired leases and claiming                                                         */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Re-queues expired leases (or fails and refunds them after max_attempts).  Bounded per call.  It
 * never waits: a job row someone holds is skipped (SKIP LOCKED), and the lost lease is counted
 * against its node by an appended node_deltas row, not by locking that node's row, which its own
 * open transaction may hold.
 */
static void
ReclaimExpired(void)
{
	static MmPlan reclaim = {
		"WITH expired AS ("
		"  SELECT id, node_id FROM modelmine.jobs "
		"   WHERE status = 'RUNNING' AND lease_expires_at < pg_catalog.now() "
		"   ORDER BY lease_expires_at LIMIT " CppAsString2(RECLAIM_BATCH)
		" FOR UPDATE SKIP LOCKED), "
		"lost AS ("
		"  INSERT INTO modelmine.node_deltas (node_id, jobs_failed) "
		"  SELECT node_id, pg_catalog.count(*) FROM expired GROUP BY node_id) "
		"UPDATE modelmine.jobs j SET "
		"       status = CASE WHEN j.attempts >= $1 THEN 'FAILED' ELSE 'PENDING' "
		"END::modelmine.job_status, "
		"       node_id = CASE WHEN j.attempts >= $1 THEN j.node_id END, "
		"       error = CASE WHEN j.attempts >= $1 "
		"                    THEN pg_catalog.format("
		"'lease expired on attempt %s of %s (node %s stopped reporting)', "
		"                                           j.attempts, $1, j.node_id) END, "
		"       finished_at = CASE WHEN j.attempts >= $1 THEN pg_catalog.now() END, "
		"       lease_expires_at = NULL, lease_seconds = NULL, progress = 0, metrics = NULL "
		"  FROM expired WHERE j.id = expired.id "
		"RETURNING j.id, j.status = 'FAILED', j.stake, j.user_id", 1, {INT4OID}};
	Datum		args[1] = {Int32GetDatum((int32) MmSetting("max_attempts"))};
	uint64		n = MmExec(&reclaim, args, NULL, false, 0);
	/* job, stake, owner of each failed job */
	int64	   *refund = palloc(sizeof(int64) * 3 * (n + 1));
	uint64		nfail = 0;
	bool		requeued = false;

	/* read all rows first: the refunds below run statements that replace SPI_tuptable */
	for (uint64 i = 0; i < n; i++)
	{
		if (!MmInt64(i, 2, NULL))
		{
			requeued = true;
			continue;
		}
		refund[3 * nfail] = MmInt64(i, 1, NULL);
		refund[3 * nfail + 1] = MmInt64(i, 3, NULL);
		refund[3 * nfail + 2] = MmInt64(i, 4, NULL);
		nfail++;
	}
	for (uint64 i = 0; i < nfail; i++)
		MmPayOut(MM_ESCROW_ACCOUNT(refund[3 * i]), MmUserAccount(refund[3 * i + 2]),
				 refund[3 * i + 1], "refund", refund[3 * i]);
	if (n > 0)
		MmAtCommit(MM_AT_COMMIT_NODES);
	if (requeued)
		Async_Notify(MM_CHANNEL_WORK, "");
}

typedef struct ClaimArgs
{
	int32		max_jobs;
	int32		lease_seconds;
} ClaimArgs;

/*
 * How many jobs the calling node may lease now: none while it is in MAINTENANCE, at most its
 * declared slots minus the jobs it is running.  Locks the node's own row, so two sessions of one
 * node cannot both fill the same free slots; an OFFLINE node (no recent heartbeat) is refused.
 */
static int32
FreeSlots(int64 node_id, int32 wanted)
{
	static MmPlan me = {
		"SELECT n.slots, n.status = 'MAINTENANCE' OR n.maintenance, "
		"       n.last_seen IS NULL OR "
		"n.last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => $2), "
		"       (SELECT pg_catalog.count(*) FROM modelmine.jobs j "
		"         WHERE j.node_id = n.id AND j.status = 'RUNNING')::integer "
		"  FROM modelmine.nodes n WHERE n.id = $1 FOR NO KEY UPDATE OF n", 2, {INT8OID, FLOAT8OID}};
	int64		offline_after = MmSetting("offline_after_seconds");
	Datum		args[2] = {Int64GetDatum(node_id), Float8GetDatum((double) offline_after)};
	int32		slots,
				running;

	if (MmExecWaiting(&me, args, NULL, 1, "node", node_id) != 1)
		elog(ERROR, "modelmine: node " INT64_FORMAT " vanished", node_id);
	if (MmInt64(0, 3, NULL))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("node " INT64_FORMAT " is OFFLINE", node_id),
						errdetail("It has sent no heartbeat in the last " INT64_FORMAT
								  " seconds (setting offline_after_seconds).", offline_after),
						errhint("Call modelmine.heartbeat(...) before claiming work, and keep "
								"calling it.")));
	if (MmInt64(0, 2, NULL))
		return 0;
	slots = (int32) MmInt64(0, 1, NULL);
	running = (int32) MmInt64(0, 4, NULL);
	return Min(wanted, slots - running);
}

/* Leases jobs to the calling node and puts them in the SRF's tuplestore. */
static void
ClaimJobs(const ClaimArgs *a, ReturnSetInfo *rsinfo)
{
	static MmPlan claim = {
		"WITH c AS ("
		"  SELECT id FROM modelmine.jobs "
		"   WHERE status = 'PENDING' "
		"     AND requirement = ANY ((SELECT requirements FROM modelmine.nodes "
		"WHERE id = $1)::text[]) "
		"   ORDER BY priority DESC, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
		"UPDATE modelmine.jobs j SET status = 'RUNNING', node_id = $1, attempts = j.attempts + 1, "
		"       lease_seconds = $3, progress = 0, metrics = NULL, started_at = pg_catalog.now(), "
		"       lease_expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => $3) "
		"  FROM c WHERE j.id = c.id "
		"RETURNING j.id, j.title, j.config, j.lease_expires_at, j.attempts",
	3, {INT8OID, INT4OID, INT4OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[3];
	int32		want;
	uint64		n;

	ReclaimExpired();
	/*
	 * the housekeeping every claim carries to commit keeps sealing and folding going on a busy
	 * network
	 */
	MmAtCommit(MM_AT_COMMIT_CREDITS | MM_AT_COMMIT_STATS | MM_AT_COMMIT_SEAL);
	want = FreeSlots(node_id, a->max_jobs);
	if (want <= 0)
		return;
	args[0] = Int64GetDatum(node_id);
	args[1] = Int32GetDatum(want);
	args[2] = Int32GetDatum(a->lease_seconds);
	n = MmExec(&claim, args, NULL, false, 0);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5];

		for (int c = 0; c < 5; c++)
			values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1,
									  &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Progress                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Records progress and extends the lease: progress on the job is the only thing that keeps a lease.
 * Progress is stored on every call, but job:{id}:progress is raised at most once per
 * progress_notify_ms per job, so no node can flood the NOTIFY queue.
 */
static Datum
ReportProgress(int64 job_id, float4 progress, Jsonb *metrics)
{
	static MmPlan report = {
		"UPDATE modelmine.jobs SET progress = GREATEST(progress, $3), "
		"metrics = COALESCE($4, metrics), "
		"       lease_expires_at = pg_catalog.now() + "
		"pg_catalog.make_interval(secs => lease_seconds), "
		"       progress_notified_at = CASE WHEN progress_notified_at IS NULL "
		"                                     OR progress_notified_at <= $5 - "
		"pg_catalog.make_interval(secs => $6) "
		"                                   THEN $5 ELSE progress_notified_at END "
		" WHERE id = $1 AND node_id = $2 AND status = 'RUNNING' "
		"RETURNING lease_expires_at, "
		"pg_catalog.jsonb_build_object('job_id', id, 'progress', progress, "
		"          'metrics', metrics, 'lease_expires_at', lease_expires_at)::text, "
		"progress_notified_at = $5, user_id",
	6, {INT8OID, INT8OID, FLOAT4OID, JSONBOID, TIMESTAMPTZOID, FLOAT8OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', metrics ? ' ' : 'n', ' ', ' '};
	bool		isnull;
	Datum		lease;

	if (isnan(progress) || progress < 0 || progress > 100)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid progress"),
						errhint("Report progress as a percentage from 0 to 100.")));
	if (metrics && (!JB_ROOT_IS_OBJECT(metrics) || JB_ROOT_IS_SCALAR(metrics)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("metrics must be a JSON object"),
						errhint("Pass e.g. {\"epoch\": 3, \"loss\": 0.41, \"accuracy\": 0.88}, or "
								"NULL.")));
	if (metrics)
	{
		/* the NOTIFY payload carries the JSON text, so that is what is limited */
		size_t		text_len = strlen(JsonbToCString(NULL, &metrics->root, VARSIZE(metrics)));

		if (text_len > MM_MAX_METRICS_BYTES)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("metrics are too large"),
							errdetail("Their JSON text takes %zu bytes; the limit is %d.",
									  text_len, MM_MAX_METRICS_BYTES),
							errhint("Report a few figures per epoch; put the full history in the "
									"result.")));
	}
	args[0] = Int64GetDatum(job_id);
	args[1] = Int64GetDatum(node_id);
	args[2] = Float4GetDatum(progress);
	args[3] = metrics ? JsonbPGetDatum(metrics) : (Datum) 0;
	args[4] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[5] = Float8GetDatum(MmSetting("progress_notify_ms") / 1000.0);
	if (MmExecWaiting(&report, args, nulls, 1, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	lease = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (MmInt64(0, 3, NULL))
	{
		char	   *payload = MmText(0, 2);
		int64		owner = MmInt64(0, 4, NULL);	/* read before MmJobEvent may reload settings */

		Async_Notify(MmJobChannel(job_id), payload);
		MmJobEvent(MmJobChannel(job_id), owner, payload);
	}
	return lease;				/* timestamptz is pass-by-value */
}

/* ---------------------------------------------------------------------------------------------- */
/* Completion and failure                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/*
 * A numeric field of the result as double; returns false when absent or JSON null.  The one reading
 * of result numbers: validation here and the statistics (stats.c) see the same value.
 */
bool
MmResultNumber(Jsonb *result, const char *key, double *out)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&result->root, key, strlen(key), &v) == NULL ||
		v.type == jbvNull)
		return false;
	if (v.type != jbvNumeric)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("result.%s must be a number", key),
						errhint("Pass e.g. "
								"{\"accuracy\": 0.97, \"loss\": 0.08, \"epochs\": 50}.")));
	/*
	 * too large becomes +-Infinity (refused by the range checks), too small 0: never a cast
	 * error
	 */
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(v.val.numeric)));
	return true;
}

/* Refuses a result that is not an object, too large, or has missing or out-of-range numbers. */
static void
CheckResult(Jsonb *result)
{
	double		accuracy,
				loss,
				epochs;
	int64		max_bytes = MmSetting("max_result_bytes");

	if (result == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("result is required"),
						errhint("Pass e.g. "
								"{\"accuracy\": 0.97, \"loss\": 0.08, \"epochs\": 50}.")));
	if (!JB_ROOT_IS_OBJECT(result) || JB_ROOT_IS_SCALAR(result))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("result must be a JSON object"),
						errhint("Pass e.g. "
								"{\"accuracy\": 0.97, \"loss\": 0.08, \"epochs\": 50}.")));
	if (VARSIZE(result) - VARHDRSZ > max_bytes)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("result is too large"),
						errdetail("It takes %zu bytes; the limit (setting max_result_bytes) is "
								  INT64_FORMAT ".",
								  (size_t) (VARSIZE(result) - VARHDRSZ), max_bytes),
						errhint("Store a smaller model artifact.")));
	if (MmResultNumber(result, "accuracy", &accuracy) && !(accuracy >= 0 && accuracy <= 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid result.accuracy"),
						errdetail("Got %.15g.", accuracy),
						errhint("Report accuracy as a fraction "
								"from 0 to 1, or null for regression.")));
	if (!MmResultNumber(result, "loss", &loss))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("result.loss is required"),
						errhint("Report the final loss as a finite number.")));
	if (!isfinite(loss))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid result.loss"),
						errdetail("It is outside the range of a double precision number."),
						errhint("Report the final loss as a finite number.")));
	if (!MmResultNumber(result, "epochs", &epochs))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("result.epochs is required"),
						errhint("Report the number of epochs run as a whole number "
								"of 0 or more.")));
	if (epochs < 0 || epochs > MM_MAX_EPOCHS || epochs != floor(epochs))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid result.epochs"),
						errdetail("Got %.15g.", epochs),
						errhint("Report the number of epochs run as a whole number from 0 to "
								CppAsString2(MM_MAX_EPOCHS) ".")));
}

/*
 * Settles the caller's leased job as done: pays reward and fee from escrow, queues it for the
 * ledger.
 */
static int64
CompleteJob(int64 job_id, Jsonb *result)
{
	static MmPlan done = {
		"UPDATE modelmine.jobs SET status = 'COMPLETED', result = $3, progress = 100, "
		"       finished_at = pg_catalog.now(), lease_expires_at = NULL "
		" WHERE id = $1 AND node_id = $2 AND status = 'RUNNING' RETURNING stake",
	3, {INT8OID, INT8OID, JSONBOID}};
	static MmPlan count = {
		"UPDATE modelmine.nodes SET jobs_completed = jobs_completed + 1, "
		"tokens_earned = tokens_earned + $2 "
		" WHERE id = $1", 2, {INT8OID, INT8OID}};
	static MmPlan record = {
		"INSERT INTO modelmine.ledger_queue "
		"(job_id, user_id, node_id, stake, reward, fee, accuracy, loss, "
		"                                    epochs, completed_at) "
		"SELECT id, user_id, node_id, stake, $2, stake - $2, "
		"result ->> 'accuracy', result ->> 'loss', "
		"       (result ->> 'epochs')::numeric::bigint, finished_at "
		"FROM modelmine.jobs WHERE id = $1",
	2, {INT8OID, INT8OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[3];
	int64		stake,
				reward;

	CheckResult(result);
	args[0] = Int64GetDatum(job_id);
	args[1] = Int64GetDatum(node_id);
	args[2] = JsonbPGetDatum(result);
	if (MmExecWaiting(&done, args, NULL, 1, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	stake = MmInt64(0, 1, NULL);
	reward = stake * MmSetting("reward_pct") / 100;	/* stake <= 10^15: no overflow */
	if (reward > 0)
		MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmNodeAccount(node_id), reward, "reward", job_id);
	if (stake - reward > 0)
		MmPayOut(MM_ESCROW_ACCOUNT(job_id), MM_FEE_ACCOUNT(job_id), stake - reward, "fee", job_id);
	args[1] = Int64GetDatum(reward);
	args[0] = Int64GetDatum(node_id);
	MmExecWaiting(&count, args, NULL, 0, "node", node_id);
	args[0] = Int64GetDatum(job_id);
	MmExec(&record, args, NULL, false, 0);
	MmAtCommit(MM_AT_COMMIT_SEAL);	/* sealed when this transaction commits (housekeeping.c) */
	return reward;
}

/*
 * Settles the caller's leased job as failed: refunds the stake, counts the failure against the
 * node.
 */
static int64
FailJob(int64 job_id, text *error)
{
	static MmPlan fail = {
		"UPDATE modelmine.jobs SET status = 'FAILED', error = pg_catalog.left($3, $4), "
		"       finished_at = pg_catalog.now(), lease_expires_at = NULL "
		" WHERE id = $1 AND node_id = $2 AND status = 'RUNNING' RETURNING stake, user_id",
	4, {INT8OID, INT8OID, TEXTOID, INT4OID}};
	static MmPlan count = {
		"UPDATE modelmine.nodes SET jobs_failed = jobs_failed + 1 WHERE id = $1", 1, {INT8OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[4];
	int64		stake,
				owner;

	if (error == NULL || VARSIZE_ANY_EXHDR(error) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("error is required"),
						errhint("Say why the job failed, "
								"in one line the job's owner can act on.")));
	args[0] = Int64GetDatum(job_id);
	args[1] = Int64GetDatum(node_id);
	args[2] = PointerGetDatum(error);
	args[3] = Int32GetDatum(MM_MAX_ERROR_CHARS);
	if (MmExecWaiting(&fail, args, NULL, 1, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	stake = MmInt64(0, 1, NULL);
	owner = MmInt64(0, 2, NULL);
	MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(owner), stake, "refund", job_id);
	args[0] = Int64GetDatum(node_id);
	MmExecWaiting(&count, args, NULL, 0, "node", node_id);
	return stake;
}

/*
 * Gives a job back to the queue.  The attempt stays counted, and a job released on its last attempt
 * (max_attempts) fails and is refunded instead of going back: releasing and claiming again must not
 * let a node hold a job forever.  A release is not the node's failure: its counters do not change.
 */
static void
ReleaseJob(int64 job_id)
{
	static MmPlan release = {
		"UPDATE modelmine.jobs SET "
		"       status = CASE WHEN attempts >= $3 THEN 'FAILED' ELSE 'PENDING' "
		"END::modelmine.job_status, "
		"       node_id = CASE WHEN attempts >= $3 THEN node_id END, "
		"       error = CASE WHEN attempts >= $3 "
		"                    THEN pg_catalog.format("
		"'released on attempt %s of %s (node %s gave it back)', "
		"                                           attempts, $3, node_id) END, "
		"       finished_at = CASE WHEN attempts >= $3 THEN pg_catalog.now() END, "
		"       lease_expires_at = NULL, lease_seconds = NULL, progress = 0, metrics = NULL "
		" WHERE id = $1 AND node_id = $2 AND status = 'RUNNING' "
		"RETURNING status = 'FAILED', stake, user_id", 3, {INT8OID, INT8OID, INT4OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[3] = {Int64GetDatum(job_id), Int64GetDatum(node_id),
	Int32GetDatum((int32) MmSetting("max_attempts"))};

	if (MmExecWaiting(&release, args, NULL, 0, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	if (MmInt64(0, 1, NULL))
	{
		int64		stake = MmInt64(0, 2, NULL);
		/* read both before MmUserAccount replaces the result */
		int64		owner = MmInt64(0, 3, NULL);

		MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(owner), stake, "refund", job_id);
	}
	else
		Async_Notify(MM_CHANNEL_WORK, "");
}

/* ---------------------------------------------------------------------------------------------- */
/* SQL-callable shims                                                                             */
/* ---------------------------------------------------------------------------------------------- */

/* claim_jobs(max_jobs, lease_seconds): checks the bounds, then ClaimJobs. */
Datum
mm_claim_jobs(PG_FUNCTION_ARGS)
{
	ClaimArgs	a;

	a.max_jobs = PG_ARGISNULL(0) ? -1 : PG_GETARG_INT32(0);
	a.lease_seconds = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	if (a.max_jobs < 1 || a.max_jobs > MM_CLAIM_MAX)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid max_jobs"),
						errdetail("Got %s.", PG_ARGISNULL(0) ? "NULL" : psprintf("%d", a.max_jobs)),
						errhint("Claim from 1 to " CppAsString2(MM_CLAIM_MAX) " jobs at a time.")));
	if (a.lease_seconds < MM_LEASE_MIN_SECONDS || a.lease_seconds > MM_LEASE_MAX_SECONDS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid lease_seconds"),
						errdetail("Got %s.",
								  PG_ARGISNULL(1) ? "NULL" : psprintf("%d", a.lease_seconds)),
						errhint("Pass a lease from " CppAsString2(MM_LEASE_MIN_SECONDS) " to "
								 CppAsString2(MM_LEASE_MAX_SECONDS) " seconds.")));
	InitMaterializedSRF(fcinfo, 0);
	MmConnect();
	ClaimJobs(&a, (ReturnSetInfo *) fcinfo->resultinfo);
	SPI_finish();
	return (Datum) 0;
}

/* report_progress(job_id, progress, metrics) -> the new lease expiry. */
Datum
mm_report_progress(PG_FUNCTION_ARGS)
{
	Datum		lease;

	CheckJobId(fcinfo);
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("progress is required"),
						errhint("Report progress as a percentage from 0 to 100.")));
	MmConnect();
	lease = ReportProgress(PG_GETARG_INT64(0), PG_GETARG_FLOAT4(1),
						   PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2));
	SPI_finish();
	PG_RETURN_DATUM(lease);		/* timestamptz is pass-by-value */
}

/* complete_job(job_id, result) -> the reward paid to the node. */
Datum
mm_complete_job(PG_FUNCTION_ARGS)
{
	int64		reward;

	CheckJobId(fcinfo);
	MmConnect();
	reward = CompleteJob(PG_GETARG_INT64(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	SPI_finish();
	PG_RETURN_INT64(reward);
}

/* fail_job(job_id, error) -> the stake refunded to the owner. */
Datum
mm_fail_job(PG_FUNCTION_ARGS)
{
	int64		refund;

	CheckJobId(fcinfo);
	MmConnect();
	refund = FailJob(PG_GETARG_INT64(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	SPI_finish();
	PG_RETURN_INT64(refund);
}

/* release_job(job_id): gives the lease back. */
Datum
mm_release_job(PG_FUNCTION_ARGS)
{
	CheckJobId(fcinfo);
	MmConnect();
	ReleaseJob(PG_GETARG_INT64(0));
	SPI_finish();
	PG_RETURN_VOID();
}
