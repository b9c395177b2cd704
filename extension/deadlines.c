/*
 * deadlines.c — jobs that missed their deadlines: expire_jobs().
 *
 * A PENDING job past start_by (or past finish_by: it can no longer finish in time) is CANCELED and
 * refunded; a RUNNING job past finish_by is FAILED and refunded, its live replicas released.
 * Missing a deadline is not a node's failure: only a replica whose lease had already expired (the
 * node stopped reporting, as lease expiry counts it) is counted against its node, with an appended
 * node_deltas row.  The work runs in every claim_jobs (like lease expiry) and for admins; it is
 * bounded per call and never waits: job and replica rows someone holds are skipped (SKIP LOCKED)
 * and left to a later call.  Each job is settled by the UPDATE that re-checks its status under the
 * row lock, so a race with complete, fail or cancel settles it once.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(mm_expire_jobs);

/* Refunds a job's stake to its owner (the job row is locked and was just settled). */
static void
Refund(int64 job_id, int64 stake, int64 owner)
{
	MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(owner), stake, "refund", job_id);
}

/*
 * Cancels and refunds up to max PENDING jobs past start_by, or past finish_by (they can no longer
 * finish in time); returns how many.
 */
static int64
ExpireUnstarted(int32 max)
{
	static MmPlan expire = {
		"WITH e AS ("
		"  (SELECT id FROM modelmine.jobs "
		"    WHERE status = 'PENDING' AND start_by IS NOT NULL AND start_by < pg_catalog.now() "
		"    ORDER BY start_by LIMIT $1) "
		"  UNION "
		"  (SELECT id FROM modelmine.jobs "
		"    WHERE finish_by IS NOT NULL AND status IN ('PENDING', 'RUNNING') "
		"      AND finish_by < pg_catalog.now() "
		"    ORDER BY finish_by LIMIT $1)), "
		"l AS (SELECT j.id FROM modelmine.jobs j JOIN e ON e.id = j.id "
		"       WHERE j.status::text = 'PENDING' "
		"       LIMIT $1 FOR NO KEY UPDATE OF j SKIP LOCKED) "
		"UPDATE modelmine.jobs j SET status = 'CANCELED', finished_at = pg_catalog.now(), "
		"       lease_expires_at = NULL, open_replicas = 0, "
		"       validation = NULLIF(j.validation, 'PENDING'), "
		"       error = CASE WHEN j.start_by < pg_catalog.now() "
		"                    THEN 'not started by its start_by deadline (' "
		"                         || j.start_by::text || ')' "
		"                    ELSE 'not started in time to finish by its finish_by deadline (' "
		"                         || j.finish_by::text || ')' END "
		"  FROM l WHERE j.id = l.id AND " MM_BY_KEY("j.status = 'PENDING'") " RETURNING j.id, j.stake, j.user_id",
	1, {INT4OID}, MM_PROBE};
	Datum		args[1] = {Int32GetDatum(max)};
	uint64		n = MmExec(&expire, args, NULL, false, 0);
	int64	   *rows = palloc(sizeof(int64) * 3 * (n + 1));

	for (uint64 i = 0; i < n; i++)
		for (int c = 0; c < 3; c++)
			rows[3 * i + c] = MmInt64(i, c + 1, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		MmReleaseReplicas(rows[3 * i]);
		Refund(rows[3 * i], rows[3 * i + 1], rows[3 * i + 2]);
	}
	return (int64) n;
}

/*
 * Fails and refunds one RUNNING job past finish_by whose row the caller holds, unless one of its
 * live replicas is held by someone (then it is left for a later call); returns whether it did.
 */
static bool
ExpireOverdue(int64 job_id)
{
	static MmPlan live = {
		"SELECT pg_catalog.count(*) FROM modelmine.job_replicas "
		" WHERE job_id = $1 AND " MM_BY_KEY("status = 'RUNNING'"), 1, {INT8OID}};
	static MmPlan lock = {
		"SELECT node_id, lease_expires_at < pg_catalog.now() FROM modelmine.job_replicas "
		" WHERE job_id = $1 AND " MM_BY_KEY("status = 'RUNNING'") " FOR UPDATE SKIP LOCKED", 1, {INT8OID}};
	static MmPlan fail = {
		"UPDATE modelmine.jobs j SET status = 'FAILED', finished_at = pg_catalog.now(), "
		"       lease_expires_at = NULL, open_replicas = 0, "
		"       validation = NULLIF(j.validation, 'PENDING'), "
		"       error = 'not finished by its finish_by deadline (' || j.finish_by::text || ')' "
		" WHERE j.id = $1 AND " MM_BY_KEY("j.status = 'RUNNING'") " RETURNING j.stake, j.user_id", 1, {INT8OID}};
	static MmPlan lost = {
		"INSERT INTO modelmine.node_deltas (node_id, jobs_failed) VALUES ($1, 1)", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(job_id)};
	int64		want;
	uint64		n;
	int64	   *lapsed;
	int			nlapsed = 0;

	MmExec(&live, args, NULL, false, 1);
	want = MmInt64(0, 1, NULL);
	n = MmExec(&lock, args, NULL, false, 0);
	if ((int64) n != want)
		return false;			/* a replica is held: its node is reporting right now */
	lapsed = palloc(sizeof(int64) * (n + 1));
	for (uint64 i = 0; i < n; i++)
		if (MmInt64(i, 2, NULL))
			lapsed[nlapsed++] = MmInt64(i, 1, NULL);
	if (MmExec(&fail, args, NULL, false, 1) != 1)
		return false;
	{
		int64		stake = MmInt64(0, 1, NULL);
		int64		owner = MmInt64(0, 2, NULL);

		MmReleaseReplicas(job_id);
		Refund(job_id, stake, owner);
	}
	/* only a node that had stopped reporting is counted: the deadline is the owner's choice */
	for (int i = 0; i < nlapsed; i++)
	{
		args[0] = Int64GetDatum(lapsed[i]);
		MmExec(&lost, args, NULL, false, 0);
	}
	if (nlapsed > 0)
		MmAtCommit(MM_AT_COMMIT_NODES);
	return true;
}

/*
 * Ends up to max jobs that missed a deadline: unstarted ones first, then overdue running ones.
 * Returns how many it ended.
 */
int64
MmExpireJobs(int32 max)
{
	/*
	 * candidates from jobs_finish_by_idx (open jobs with a finish_by), whose predicate the status
	 * test of the open-jobs index cannot take from it whatever the statistics say about RUNNING
	 */
	static MmPlan overdue = {
		"WITH d AS MATERIALIZED ("
		"  SELECT id FROM modelmine.jobs "
		"   WHERE finish_by IS NOT NULL AND status IN ('PENDING', 'RUNNING') "
		"     AND finish_by < pg_catalog.now() ORDER BY finish_by LIMIT $1) "
		"SELECT j.id FROM modelmine.jobs j JOIN d ON d.id = j.id WHERE j.status::text = 'RUNNING' "
		" LIMIT $1 FOR NO KEY UPDATE OF j SKIP LOCKED", 1, {INT4OID}, MM_PROBE};
	int64		done = ExpireUnstarted(max);
	Datum		args[1];
	uint64		n;
	int64	   *ids;

	if (done >= max)
		return done;
	args[0] = Int32GetDatum(max - (int32) done);
	n = MmExec(&overdue, args, NULL, false, 0);
	ids = palloc(sizeof(int64) * (n + 1));
	for (uint64 i = 0; i < n; i++)
		ids[i] = MmInt64(i, 1, NULL);
	for (uint64 i = 0; i < n; i++)
		done += ExpireOverdue(ids[i]) ? 1 : 0;
	return done;
}

/* expire_jobs(max_jobs) -> the number of jobs ended. */
Datum
mm_expire_jobs(PG_FUNCTION_ARGS)
{
	int32		max = PG_ARGISNULL(0) ? -1 : PG_GETARG_INT32(0);
	int64		n;

	if (max < 1 || max > 10000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid max_jobs"),
						errdetail("Got %s.", PG_ARGISNULL(0) ? "NULL" : psprintf("%d", max)),
						errhint("Expire from 1 to 10000 jobs per call.")));
	MmConnect();
	n = MmExpireJobs(max);
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
