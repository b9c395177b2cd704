/*
 * lease.c — the work protocol between nodes and the queue: claim, progress, complete, fail,
 * release.
 *
 * Every lease is a replica, a row of job_replicas (issue 14: replication and validation).  Claiming
 * is FOR UPDATE SKIP LOCKED over open jobs that still want a replica (open_replicas > 0), whose
 * requirement ('trainer:NAME' or 'runner:NAME') the node advertises and whose memory, cores and
 * labels it has free (placement.c), users in fair-share order (fairshare.c), each user's jobs
 * highest priority then oldest first (docs/SCHEDULING.md), skipping jobs on which the node's
 * operator already holds a live or submitted replica: the replicas of a job go to different
 * operators (a unique index is the backstop).  A row another claimer has locked is skipped, and the
 * re-checked open_replicas keeps a job from getting more replicas than it wants.  Leases expire
 * without any background process: every claim first ends jobs past their deadlines (deadlines.c)
 * and expired replicas, re-opening them (or, after max_attempts + replicas_wanted - 1 claims,
 * failing the job and refunding it), counting the lost lease against its node with an appended
 * node_deltas row.  Only report_progress extends a lease, and a node holds at most its declared
 * slots; one in MAINTENANCE gets nothing, an OFFLINE one is refused.
 *
 * Waits: a claim never waits (SKIP LOCKED; its own node row is the only row it locks and waits
 * for, and only that node's other sessions hold it).  complete, fail and release lock the job row
 * first, then replica rows (cancel_job does the same), so racing calls on one job queue on its row
 * under lock_timeout_ms (MmExecWaiting): a node holding the row open delays the others' calls on
 * that job by at most that long each (55P03, retried).  report_progress locks only the caller's
 * replica row and skips the job row's aggregate when it is held, so no one can stall another
 * node's lease.
 *
 * Every report is accepted only from a node that holds a running replica.  complete_job stores the
 * replica's result; the call that brings in the last wanted result runs the validator
 * (validate.c) under the job row's lock, which settles the job once.  fail_job and the validator
 * move money only after the job row was locked and its status re-checked, so a repeated or racing
 * call is an error, never a second payment.
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/xact.h"
#include "utils/array.h"
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
 * only what concerns its own replica: for any job it does not hold (someone else's, a pending one,
 * a missing id) the answer is the same, so no node can probe the queue.
 */
static void
LeaseError(int64 job_id, int64 node_id)
{
	static MmPlan get = {
		"SELECT j.status::text, r.status FROM modelmine.jobs j "
		"  JOIN modelmine.job_replicas r ON r.job_id = j.id AND r.node_id = $2 "
		" WHERE j.id = $1 ORDER BY r.id DESC LIMIT 1", 2, {INT8OID, INT8OID}};
	Datum		args[2] = {Int64GetDatum(job_id), Int64GetDatum(node_id)};
	char	   *status;
	char	   *mine;

	if (MmExec(&get, args, NULL, false, 1) != 1 ||
		(((strcmp(status = MmText(0, 1), "RUNNING") == 0 || strcmp(status, "PENDING") == 0)) &&
		 strcmp(mine = MmText(0, 2), "SUBMITTED") != 0))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("job " INT64_FORMAT " is not leased to this node", job_id),
						errhint("A node may only report on jobs it holds; claim work with "
								"modelmine.claim_jobs().")));
	if (strcmp(status, "CANCELED") == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("job " INT64_FORMAT " was canceled", job_id),
						errhint("Stop working on it; its owner was refunded.")));
	if (strcmp(status, "RUNNING") == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("job " INT64_FORMAT " already has this node's result", job_id),
						errdetail("It waits for other nodes' replicas to validate it."),
						errhint("Nothing was changed; the validator settles it once.")));
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

/*
 * Locks the row of a job on which the caller's node holds a running replica; returns the job's
 * replicas_wanted, or raises.  Every lease-holder call takes the job row first, then replica rows,
 * the order cancel_job follows too; the lock is what makes racing completions validate once.
 */
static int32
LockLeasedJob(int64 job_id, int64 node_id)
{
	/*
	 * The status is read, not filtered on: as a filter, statistics taken while no job ran (a fresh
	 * network) made the kept plan walk every RUNNING job by an index of open jobs (jobs_open_idx, since
	 * dropped; jobs_user_open_idx would serve as well) instead of the key.
	 */
	static MmPlan lock = {
		"SELECT j.replicas_wanted, j.status = 'RUNNING' FROM modelmine.jobs j "
		" WHERE j.id = $1 AND EXISTS ("
		"       SELECT 1 FROM modelmine.job_replicas r "
		"        WHERE r.job_id = j.id AND r.node_id = $2 AND " MM_BY_KEY("r.status = 'RUNNING'") ") "
		"   FOR NO KEY UPDATE OF j", 2, {INT8OID, INT8OID}, MM_PROBE};
	Datum		args[2] = {Int64GetDatum(job_id), Int64GetDatum(node_id)};
	bool		isnull;

	if (MmExecWaiting(&lock, args, NULL, 1, "job", job_id) != 1 ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
		LeaseError(job_id, node_id);
	return (int32) MmInt64(0, 1, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Reclaiming expired leases and claiming                                                         */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Ends expired replicas: each job re-opens the replica (or fails and refunds after its attempts).
 * Bounded per call.  It never waits: job and replica rows someone holds are skipped (SKIP LOCKED),
 * and the lost lease is counted against its node by an appended node_deltas row, not by locking
 * that node's row, which its own open transaction may hold.
 */
static void
ReclaimExpired(void)
{
	static MmPlan due = {
		"WITH e AS ("
		"  SELECT job_id FROM modelmine.job_replicas "
		"   WHERE status = 'RUNNING' AND lease_expires_at < pg_catalog.now() "
		"   GROUP BY job_id ORDER BY pg_catalog.min(lease_expires_at) "
		"   LIMIT " CppAsString2(RECLAIM_BATCH) "), "
		"j AS (SELECT j.id FROM modelmine.jobs j JOIN e ON e.job_id = j.id "
		"       WHERE " MM_BY_KEY("j.status IN ('PENDING', 'RUNNING')") " FOR NO KEY UPDATE OF j SKIP LOCKED) "
		"SELECT r.job_id, r.node_id FROM modelmine.job_replicas r JOIN j ON j.id = r.job_id "
		" WHERE r.status = 'RUNNING' AND r.lease_expires_at < pg_catalog.now() "
		"   FOR UPDATE OF r SKIP LOCKED", 0, {0}, MM_PROBE};
	static MmPlan lost = {
		"INSERT INTO modelmine.node_deltas (node_id, jobs_failed) VALUES ($1, 1)", 1, {INT8OID}};
	uint64		n = MmExec(&due, NULL, NULL, false, 0);
	int64	   *rows = palloc(sizeof(int64) * 2 * (n + 1));

	/* read all rows first: what follows runs statements that replace SPI_tuptable */
	for (uint64 i = 0; i < n; i++)
	{
		rows[2 * i] = MmInt64(i, 1, NULL);
		rows[2 * i + 1] = MmInt64(i, 2, NULL);
	}
	for (uint64 i = 0; i < n; i++)
	{
		Datum		args[1] = {Int64GetDatum(rows[2 * i + 1])};

		(void) MmReplicaLost(rows[2 * i], rows[2 * i + 1], "EXPIRED",
							 "lease expired on attempt %s of %s (node %s stopped reporting)");
		MmExec(&lost, args, NULL, false, 0);
	}
	if (n > 0)
		MmAtCommit(MM_AT_COMMIT_NODES);
}

typedef struct ClaimArgs
{
	int32		max_jobs;
	int32		lease_seconds;
} ClaimArgs;

/* What a claim needs to know about the claiming node besides its free slots. */
typedef struct Claimer
{
	int64		operator_id;
	int32		score;			/* record score, 0..100 */
	int32		spot_pct;		/* chance a single-replica job it claims is spot-checked */
	bool		caught;			/* checked even when no other operator is online (MmCaught) */
	int64		free_mb;		/* memory it offers minus what its running jobs need */
	int64		free_cores;
	Datum		labels;			/* text[] it advertises */
	Datum		requirements;	/* text[]: 'trainer:NAME' / 'runner:NAME' */
} Claimer;

/*
 * How many jobs the calling node may lease now: none while it is in MAINTENANCE, at most its
 * declared slots minus the replicas it is running.  Locks the node's own row first, so two sessions
 * of one node cannot both fill the same free slots or memory; the counts are read by the next
 * statement, which sees what a session that held the row committed.  An OFFLINE node (no recent
 * heartbeat) is refused.  Fills *me from the node's row.
 */
static int32
FreeSlots(int64 node_id, int32 wanted, Claimer *me)
{
	static MmPlan lock = {
		"SELECT 1 FROM modelmine.nodes WHERE id = $1 FOR NO KEY UPDATE", 1, {INT8OID}};
	static MmPlan mine = {
		"SELECT n.slots, n.status = 'MAINTENANCE' OR n.maintenance, "
		"       n.last_seen IS NULL OR "
		"n.last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => $2), "
		"       u.running::integer, "
		"       n.operator_id, n.jobs_completed, n.jobs_failed, n.results_valid, "
		"       n.results_invalid, "
		"       n.memory_mb - u.mb, n.cores - u.cores, n.labels, n.requirements "
		"  FROM modelmine.nodes n CROSS JOIN LATERAL ("
		"       SELECT pg_catalog.count(*) AS running, "
		"              COALESCE(pg_catalog.sum(j.need_memory_mb), 0)::bigint AS mb, "
		"              COALESCE(pg_catalog.sum(j.need_cores), 0)::bigint AS cores "
		"         FROM modelmine.job_replicas r JOIN modelmine.jobs j ON j.id = r.job_id "
		"        WHERE r.node_id = n.id AND r.status = 'RUNNING') u "
		" WHERE n.id = $1", 2, {INT8OID, FLOAT8OID}, MM_PROBE};
	int64		offline_after = MmSetting("offline_after_seconds");
	Datum		args[2] = {Int64GetDatum(node_id), Float8GetDatum((double) offline_after)};
	int32		slots,
				running;
	bool		isnull;

	if (MmExecWaiting(&lock, args, NULL, 1, "node", node_id) != 1 ||
		MmExec(&mine, args, NULL, false, 1) != 1)
		elog(ERROR, "modelmine: node " INT64_FORMAT " vanished", node_id);
	if (MmInt64(0, 3, NULL))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("node " INT64_FORMAT " is OFFLINE", node_id),
						errdetail("It has sent no heartbeat in the last " INT64_FORMAT
								  " seconds (setting offline_after_seconds).", offline_after),
						errhint("Call modelmine.heartbeat(...) before claiming work, and keep "
								"calling it.")));
	me->operator_id = MmInt64(0, 5, NULL);
	me->score = MmRecordScore(MmInt64(0, 6, NULL), MmInt64(0, 7, NULL), MmInt64(0, 9, NULL));
	me->spot_pct = MmSpotcheckPct(MmInt64(0, 8, NULL), MmInt64(0, 9, NULL), me->score);
	me->caught = MmCaught(MmInt64(0, 8, NULL), MmInt64(0, 9, NULL));
	me->free_mb = MmInt64(0, 10, NULL);
	me->free_cores = MmInt64(0, 11, NULL);
	me->labels = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 12, &isnull);
	me->requirements = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 13, &isnull);
	if (MmInt64(0, 2, NULL))
		return 0;
	slots = (int32) MmInt64(0, 1, NULL);
	running = (int32) MmInt64(0, 4, NULL);
	return Min(wanted, slots - running);
}

/* users the fair-share walk visits per claim; jobs of each user it looks at */
#define WALK_USERS 64
#define WALK_JOBS_PER_USER "64"
/* jobs the fallback walk (global priority order) looks at */
#define WALK_JOBS_FALLBACK "256"

/*
 * What a job j must satisfy to be leased to the claiming node (claim parameters: $1 node, $3
 * operator, $5 visibility delay, $6..$9 free memory, free cores, labels, requirements).  The
 * status and open replicas are re-checked on the locked row.
 */
#define CLAIM_FITS \
	"j.open_replicas > 0 AND " MM_BY_KEY("j.status IN ('PENDING', 'RUNNING')") " " \
	"AND j.requirement = ANY ($9) AND j.need_memory_mb <= $6 AND j.need_cores <= $7 " \
	"AND j.need_labels <@ $8 " \
	"AND j.created_at <= pg_catalog.now() - pg_catalog.make_interval(secs => $5) " \
	"AND (j.start_by IS NULL OR j.status = 'RUNNING' OR j.start_by > pg_catalog.now()) " \
	"AND (j.finish_by IS NULL OR j.finish_by > pg_catalog.now()) " \
	/* \
	 * a correlated count probing (job_id, operator_id), not NOT EXISTS: the anti-join a kept \
	 * plan got from the statistics of a nearly empty queue scanned all of the operator's \
	 * replicas for every candidate job (claims went 10x slower at 2000 jobs) \
	 */ \
	"AND (SELECT pg_catalog.count(*) FROM modelmine.job_replicas r " \
	"      WHERE r.job_id = j.id AND r.operator_id = $3 " \
	"        AND r.status IN ('RUNNING', 'SUBMITTED')) = 0 "

/*
 * The spot-check draw of a picked job c (chance $4; $10: the node was caught; $11: offline after).
 * A spot-check (on any claim of a job that wants one result, re-issued ones too, so a caught node
 * gains nothing by waiting for expired leases; unless the node was caught, only when another
 * operator has an online node that can run it, so a lone honest operator's jobs never wait) makes
 * the job want a second result.
 */
#define CLAIM_SPOT \
	"CASE WHEN c.replicas_wanted = 1 AND pg_catalog.random() * 100 < $4 " \
	"     THEN $10 OR EXISTS (SELECT 1 FROM modelmine.nodes o " \
	"                    WHERE o.operator_id <> $3 AND NOT o.maintenance " \
	"                      AND o.last_seen >= pg_catalog.now() - " \
	"pg_catalog.make_interval(secs => $11) " \
	"                      AND c.requirement = ANY (o.requirements)) " \
	"     ELSE false END"

#define CLAIM_NARGS 11
#define CLAIM_TYPES {INT8OID, INT4OID, INT8OID, INT4OID, FLOAT8OID, INT8OID, INT8OID, \
					 TEXTARRAYOID, TEXTARRAYOID, BOOLOID, FLOAT8OID}

/*
 * What jobs_user_claimable_idx carries besides its key (INCLUDE): a user's window of claimable jobs
 * is narrowed to those that fit the node from the index, before any job row is read.
 */
#define CLAIM_FITS_INDEX \
	"w.requirement = ANY ($9) AND w.need_memory_mb <= $6 AND w.need_cores <= $7 " \
	"AND w.need_labels <@ $8 "

/*
 * Picks and locks (SKIP LOCKED) up to want jobs for the node; fills ids, needs and spot draws and
 * returns how many.  Fair share first: users that may have claimable jobs, least decayed usage per
 * share first (fair_share_queue_idx), and for each the first WALK_JOBS_PER_USER of its claimable
 * jobs by priority then age (jobs_user_claimable_idx), narrowed to those that fit the node from
 * the index; their rows are then read and locked one at a time in that order until want are held.
 * The walk never reads more than WALK_USERS users.  Only when that finds nothing (every job of those
 * users is held, does not fit, or was inserted without a submit) does it fall back to the first
 * WALK_JOBS_FALLBACK jobs in global priority order, so a node that fits only rare jobs still gets
 * them.
 */
static int
PickJobs(Datum *args, int want, int64 *ids, int64 *mb, int64 *cores, bool *spot)
{
	static MmPlan fair = {
		"SELECT c.id, c.need_memory_mb, c.need_cores, " CLAIM_SPOT
		"  FROM (SELECT f.user_id FROM modelmine.fair_share f WHERE f.queued "
		"         ORDER BY f.rank, f.user_id LIMIT " CppAsString2(WALK_USERS) ") u "
		" CROSS JOIN LATERAL ("
		"       SELECT j.id, j.need_memory_mb, j.need_cores, j.replicas_wanted, j.requirement "
		"         FROM (SELECT w.id FROM ("
		"                 SELECT y.id, y.requirement, y.need_memory_mb, y.need_cores, "
		"                        y.need_labels FROM modelmine.jobs y "
		"                  WHERE y.user_id = u.user_id AND y.open_replicas > 0 "
		"                    AND y.status IN ('PENDING', 'RUNNING') "
		"                  ORDER BY y.priority DESC, y.id LIMIT " WALK_JOBS_PER_USER ") w "
		"                WHERE " CLAIM_FITS_INDEX ") w "
		/* a locking subquery is never pulled up: each row is read and locked in order */
		"        CROSS JOIN LATERAL ("
		"              SELECT j.* FROM modelmine.jobs j WHERE j.id = w.id AND " CLAIM_FITS
		"                 FOR NO KEY UPDATE OF j SKIP LOCKED) j "
		"        LIMIT $2) c "
		" LIMIT $2", CLAIM_NARGS, CLAIM_TYPES, MM_PROBE};
	static MmPlan fallback = {
		"SELECT c.id, c.need_memory_mb, c.need_cores, " CLAIM_SPOT
		"  FROM (SELECT j.id, j.need_memory_mb, j.need_cores, j.replicas_wanted, j.requirement "
		"          FROM modelmine.jobs j "
		"         WHERE j.id IN (SELECT y.id FROM modelmine.jobs y "
		"                         WHERE y.open_replicas > 0 AND y.status IN ('PENDING', 'RUNNING') "
		"                         ORDER BY y.priority DESC, y.id LIMIT " WALK_JOBS_FALLBACK ") "
		"           AND " CLAIM_FITS
		"         ORDER BY j.priority DESC, j.id LIMIT $2 FOR NO KEY UPDATE OF j SKIP LOCKED) c",
	CLAIM_NARGS, CLAIM_TYPES, MM_PROBE};
	uint64		n = MmExec(&fair, args, NULL, false, 0);

	if (n == 0)
		n = MmExec(&fallback, args, NULL, false, 0);
	for (uint64 i = 0; i < n && (int) i < want; i++)
	{
		bool		isnull;

		ids[i] = MmInt64(i, 1, NULL);
		mb[i] = MmInt64(i, 2, NULL);
		cores[i] = MmInt64(i, 3, NULL);
		spot[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4,
											 &isnull));
	}
	return (int) Min(n, (uint64) want);
}

/*
 * Leases replicas of jobs to the calling node and puts them in the SRF's tuplestore.  A job is
 * offered while it has open replicas, fits what the node has free (memory, cores, labels, its
 * trainer or runner) and no live or submitted replica of the node's operator is on it; it becomes
 * visible to a node (100 - record score)% of scarce_delay_ms after it was submitted, so better
 * nodes are served first when work is scarce.  Picked jobs are taken while their needs add up to
 * what is free: the node's row lock (FreeSlots) keeps its other sessions out meanwhile, so nothing
 * is over-committed.  Each lease appends one unit of usage for the job's owner (fairshare.c).
 */
static void
ClaimJobs(const ClaimArgs *a, ReturnSetInfo *rsinfo)
{
	static MmPlan lease = {
		"WITH c AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), "
		"                                    pg_catalog.unnest($2::boolean[])) AS c(id, spot)), "
		/* the unique index on live replicas per operator is the backstop: a conflict skips */
		"ins AS ("
		"  INSERT INTO modelmine.job_replicas (job_id, node_id, operator_id, lease_seconds, "
		"                                      lease_expires_at) "
		"  SELECT c.id, $3, $4, $5, pg_catalog.now() + pg_catalog.make_interval(secs => $5) "
		"    FROM c ON CONFLICT DO NOTHING RETURNING job_id), "
		"used AS ("
		"  INSERT INTO modelmine.usage_deltas (user_id, usage_log) "
		"  SELECT j.user_id, $6 FROM modelmine.jobs j JOIN ins ON ins.job_id = j.id "
		"   WHERE j.id = ANY ($1::bigint[])) "
		"UPDATE modelmine.jobs j SET status = 'RUNNING', node_id = $3, attempts = j.attempts + 1, "
		"       lease_seconds = $5, "
		"       progress = CASE WHEN j.status = 'PENDING' THEN 0 ELSE j.progress END, "
		"       metrics = CASE WHEN j.status = 'PENDING' THEN NULL ELSE j.metrics END, "
		"       started_at = CASE WHEN j.status = 'PENDING' THEN pg_catalog.now() "
		"ELSE j.started_at END, "
		"       replicas_wanted = j.replicas_wanted + c.spot::integer, "
		"       open_replicas = j.open_replicas - 1 + c.spot::integer, "
		"       validation = CASE WHEN j.replicas_wanted + c.spot::integer > 1 THEN 'PENDING' "
		"ELSE j.validation END, "
		"       lease_expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => $5) "
		/* the ids again as an index condition: probes whatever the statistics (settle.c) */
		"  FROM c JOIN ins ON ins.job_id = c.id WHERE j.id = c.id AND j.id = ANY ($1::bigint[]) "
		"RETURNING j.id, j.title, j.config, j.lease_expires_at, j.attempts",
	6, {INT8ARRAYOID, BOOLARRAYOID, INT8OID, INT8OID, INT4OID, FLOAT8OID}, MM_PROBE};
	int64		node_id = MmRequireNode(false);
	Datum		args[CLAIM_NARGS];
	Datum		largs[6];
	Claimer		me;
	int32		want;
	int			picked,
				taken = 0;
	int64		ids[MM_CLAIM_MAX],
				mb[MM_CLAIM_MAX],
				cores[MM_CLAIM_MAX];
	bool		spot[MM_CLAIM_MAX];
	Datum		take_ids[MM_CLAIM_MAX],
				take_spot[MM_CLAIM_MAX];
	uint64		n;

	ReclaimExpired();
	(void) MmExpireJobs(RECLAIM_BATCH);
	/*
	 * the housekeeping every claim carries to commit keeps sealing and folding going on a busy
	 * network, and folds the usage fair share ranks users by
	 */
	MmAtCommit(MM_AT_COMMIT_CREDITS | MM_AT_COMMIT_STATS | MM_AT_COMMIT_SEAL |
			   MM_AT_COMMIT_NODES | MM_AT_COMMIT_SCHED);
	want = FreeSlots(node_id, a->max_jobs, &me);
	if (want <= 0)
		return;
	args[0] = Int64GetDatum(node_id);
	args[1] = Int32GetDatum(want);
	args[2] = Int64GetDatum(me.operator_id);
	args[3] = Int32GetDatum(me.spot_pct);
	args[4] = Float8GetDatum((100 - me.score) * MmSetting("scarce_delay_ms") / 100 / 1000.0);
	args[5] = Int64GetDatum(me.free_mb);
	args[6] = Int64GetDatum(me.free_cores);
	args[7] = me.labels;
	args[8] = me.requirements;
	args[9] = BoolGetDatum(me.caught);
	args[10] = Float8GetDatum((double) MmSetting("offline_after_seconds"));
	picked = PickJobs(args, want, ids, mb, cores, spot);
	/* each picked job fits alone; take them while they fit together (the rest are left) */
	for (int i = 0; i < picked; i++)
	{
		if (mb[i] > me.free_mb || cores[i] > me.free_cores)
			continue;
		me.free_mb -= mb[i];
		me.free_cores -= cores[i];
		take_ids[taken] = Int64GetDatum(ids[i]);
		take_spot[taken++] = BoolGetDatum(spot[i]);
	}
	if (taken == 0)
		return;
	largs[0] = PointerGetDatum(construct_array(take_ids, taken, INT8OID, 8, true,
											   TYPALIGN_DOUBLE));
	largs[1] = PointerGetDatum(construct_array(take_spot, taken, BOOLOID, 1, true, TYPALIGN_CHAR));
	largs[2] = Int64GetDatum(node_id);
	largs[3] = Int64GetDatum(me.operator_id);
	largs[4] = Int32GetDatum(a->lease_seconds);
	/* usage is kept as log2 of 2^(t / half-life), t in seconds since 2000 (fairshare.c) */
	largs[5] = Float8GetDatum((double) GetCurrentTransactionStartTimestamp() / USECS_PER_SEC /
							  (double) MmSetting("fair_share_half_life_seconds"));
	n = MmExec(&lease, largs, NULL, false, 0);
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
	/* the replica's own lease is what the node keeps: its own row, which no other node locks */
	static MmPlan extend = {
		"UPDATE modelmine.job_replicas SET progress = GREATEST(progress, $3), "
		"       lease_expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => lease_seconds) "
		" WHERE job_id = $1 AND node_id = $2 AND " MM_BY_KEY("status = 'RUNNING'") " RETURNING lease_expires_at",
	3, {INT8OID, INT8OID, FLOAT4OID}};
	/*
	 * The job's progress is for its owner: skipped, not waited for, while another replica's call
	 * holds the job row, so no node can stall another's lease by holding that row open.
	 */
	static MmPlan report = {
		"WITH l AS (SELECT id FROM modelmine.jobs WHERE id = $1 AND " MM_BY_KEY("status = 'RUNNING'") " "
		"            FOR NO KEY UPDATE SKIP LOCKED) "
		"UPDATE modelmine.jobs j SET progress = GREATEST(j.progress, $3), "
		"metrics = COALESCE($4, j.metrics), "
		"       lease_expires_at = GREATEST(j.lease_expires_at, $7), "
		"       progress_notified_at = CASE WHEN j.progress_notified_at IS NULL "
		"                                     OR j.progress_notified_at <= $5 - "
		"pg_catalog.make_interval(secs => $6) "
		"                                   THEN $5 ELSE j.progress_notified_at END "
		"  FROM l WHERE j.id = l.id "
		"RETURNING pg_catalog.jsonb_build_object('job_id', j.id, 'progress', j.progress, "
		"          'metrics', j.metrics, 'lease_expires_at', $7)::text, "
		"j.progress_notified_at = $5, j.user_id",
	7, {INT8OID, INT8OID, FLOAT4OID, JSONBOID, TIMESTAMPTZOID, FLOAT8OID, TIMESTAMPTZOID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', metrics ? ' ' : 'n', ' ', ' ', ' '};
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
	if (MmExecWaiting(&extend, args, NULL, 1, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	lease = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	args[6] = lease;
	if (MmExec(&report, args, nulls, false, 0) == 1 && MmInt64(0, 2, NULL))
	{
		char	   *payload = MmText(0, 1);
		int64		owner = MmInt64(0, 3, NULL);	/* read before MmJobEvent may reload settings */

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
void
MmCheckResult(Jsonb *result)
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
 * Stores the result of the caller's replica.  The call that brings in the last wanted result runs
 * the validator (validate.c) under the job row's lock, which settles the job once; returns what the
 * caller's node was paid (0 while the job waits for other replicas, or when its result dissented).
 * complete_jobs (batch.c) runs it once per job of a batch.
 */
int64
MmCompleteJob(int64 job_id, Jsonb *result)
{
	static MmPlan submit = {
		"WITH r AS (UPDATE modelmine.job_replicas SET status = 'SUBMITTED', result = $3, "
		"                  progress = 100, finished_at = pg_catalog.now(), lease_expires_at = NULL "
		"            WHERE job_id = $1 AND node_id = $2 AND " MM_BY_KEY("status = 'RUNNING'") " RETURNING job_id) "
		"SELECT (SELECT pg_catalog.count(*) FROM modelmine.job_replicas x "
		"         WHERE x.job_id = $1 AND x.status = 'SUBMITTED') + 1 FROM r",
	3, {INT8OID, INT8OID, JSONBOID}};
	static MmPlan waiting = {
		"UPDATE modelmine.jobs SET progress = 100 WHERE id = $1", 1, {INT8OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[3];
	int32		wanted;

	MmCheckResult(result);
	wanted = LockLeasedJob(job_id, node_id);
	args[0] = Int64GetDatum(job_id);
	args[1] = Int64GetDatum(node_id);
	args[2] = JsonbPGetDatum(result);
	/* the CTE's own update is not visible to its sibling count: hence the + 1 */
	if (MmExecWaiting(&submit, args, NULL, 0, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	if (MmInt64(0, 1, NULL) < wanted)
	{
		MmExec(&waiting, args, NULL, false, 0);
		return 0;
	}
	return MmValidateJob(job_id, node_id, wanted);
}

/*
 * Settles the caller's leased job as failed: refunds the stake, counts the failure against the
 * node.  A trainer's error is deterministic given the config and seed, so one replica's failure
 * ends the job: other replicas are released and no node is paid.
 */
static int64
FailJob(int64 job_id, text *error)
{
	static MmPlan fail = {
		"WITH r AS (UPDATE modelmine.job_replicas SET status = 'FAILED', "
		"                  finished_at = pg_catalog.now(), lease_expires_at = NULL "
		"            WHERE job_id = $1 AND node_id = $2 AND " MM_BY_KEY("status = 'RUNNING'") " RETURNING job_id) "
		"UPDATE modelmine.jobs j SET status = 'FAILED', error = pg_catalog.left($3, $4), "
		"       node_id = $2, open_replicas = 0, validation = NULLIF(j.validation, 'PENDING'), "
		"       finished_at = pg_catalog.now(), lease_expires_at = NULL "
		"  FROM r WHERE j.id = r.job_id RETURNING j.stake, j.user_id",
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
	(void) LockLeasedJob(job_id, node_id);
	args[0] = Int64GetDatum(job_id);
	args[1] = Int64GetDatum(node_id);
	args[2] = PointerGetDatum(error);
	args[3] = Int32GetDatum(MM_MAX_ERROR_CHARS);
	if (MmExecWaiting(&fail, args, NULL, 1, "job", job_id) != 1)
		LeaseError(job_id, node_id);
	stake = MmInt64(0, 1, NULL);
	owner = MmInt64(0, 2, NULL);
	MmReleaseReplicas(job_id);
	MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(owner), stake, "refund", job_id);
	args[0] = Int64GetDatum(node_id);
	MmExecWaiting(&count, args, NULL, 0, "node", node_id);
	return stake;
}

/*
 * Gives a replica back to the queue.  The attempt stays counted, and a job released on its last
 * attempt fails and is refunded instead of going back (MmReplicaLost): releasing and claiming again
 * must not let a node hold a job forever.  A release is not the node's failure: its counters do not
 * change.
 */
static void
ReleaseJob(int64 job_id)
{
	int64		node_id = MmRequireNode(false);

	(void) LockLeasedJob(job_id, node_id);
	(void) MmReplicaLost(job_id, node_id, "RELEASED",
						 "released on attempt %s of %s (node %s gave it back)");
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
	reward = MmCompleteJob(PG_GETARG_INT64(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
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
