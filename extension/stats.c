/*
 * stats.c — maintained job statistics for network_stats(), job_timeline() and dashboard().
 *
 * Counting 1M jobs per request is too slow, and one counter row updated by every job would
 * serialise everything (a counter row per user would serialise each user's jobs).  So writers only
 * ever INSERT: a statement trigger on modelmine.jobs appends a delta per changed job (+1 for the new
 * status, -1 for the old one, with the stake and, on completion, the accuracy) to
 * modelmine.job_stat_deltas, which no one updates, so writers never wait on each other.  Folding the deltas into modelmine.job_stats
 * (one row per month and status) and modelmine.user_job_stats (one row per user and status) runs
 * under a transaction-level advisory try-lock, exactly like ledger sealing: whoever gets it folds
 * everything committed, everybody else skips.  Readers sum the folded rows plus the few unfolded
 * deltas in one statement, so they always see a consistent, exact total.  Folding runs when a
 * transaction that wrote deltas (or read statistics) commits (housekeeping.c), so no open
 * transaction ever holds the fold lock.
 */
#include "modelmine.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_job_stats_trigger);
PG_FUNCTION_INFO_V1(mm_fold_stats);

#define STATS_LOCK_KEY INT64CONST(0x6d6d737461747321)	/* "mmstats!" */

/* Appends one delta row: jobs (+1/-1) in a status for the job's creation month and owner. */
static void
AddDelta(Datum created_at, Datum user_id, const char *status, int32 jobs, int64 stake,
		 bool has_accuracy, float8 accuracy)
{
	static MmPlan ins = {
		"INSERT INTO modelmine.job_stat_deltas "
		"(month, user_id, status, jobs, stake, accuracy_sum, accuracy_n) "
		"VALUES (pg_catalog.date_trunc('month', $1 AT TIME ZONE 'UTC')::date, $2, "
		"$3::modelmine.job_status, "
		"        $4, $5, $6, $7)",
	7, {TIMESTAMPTZOID, INT8OID, TEXTOID, INT4OID, INT8OID, FLOAT8OID, INT4OID}};
	Datum		args[7];

	args[0] = created_at;
	args[1] = user_id;
	args[2] = CStringGetTextDatum(status);
	args[3] = Int32GetDatum(jobs);
	args[4] = Int64GetDatum(stake);
	args[5] = Float8GetDatum(has_accuracy ? accuracy : 0);
	args[6] = Int32GetDatum(has_accuracy ? 1 : 0);
	MmExec(&ins, args, NULL, false, 0);
}

/* The numeric accuracy of a COMPLETED job's result, read as complete_job validated it. */
static bool
ResultAccuracy(HeapTuple tup, TupleDesc desc, float8 *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "result"), &isnull);
	Jsonb	   *j;

	if (isnull)
		return false;
	j = DatumGetJsonbP(d);
	if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		return false;
	return MmResultNumber(j, "accuracy", out);
}

/*
 * The delta of one job version: +1 (entering its status) or -1 (leaving it), from that version's
 * row.
 */
static void
VersionDelta(HeapTuple tup, TupleDesc desc, const char *status, int sign)
{
	bool		isnull;
	Datum		created = SPI_getbinval(tup, desc, SPI_fnumber(desc, "created_at"), &isnull);
	Datum		user_id = SPI_getbinval(tup, desc, SPI_fnumber(desc, "user_id"), &isnull);
	int64		stake = DatumGetInt64(SPI_getbinval(tup, desc, SPI_fnumber(desc, "stake"),
													&isnull));
	float8		accuracy = 0;
	bool		has_accuracy = false;

	/* accuracy is added on entering COMPLETED only: COMPLETED is final, nothing ever leaves it */
	if (sign > 0 && strcmp(status, "COMPLETED") == 0)
		has_accuracy = ResultAccuracy(tup, desc, &accuracy);
	AddDelta(created, user_id, status, sign, sign * stake, has_accuracy, accuracy);
}

/* Appends the +1/-1 statistics deltas for a job's insert or status change. */
static void
RecordChange(TriggerData *td)
{
	TupleDesc	desc = td->tg_relation->rd_att;
	HeapTuple	newt = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	int			c_status = SPI_fnumber(desc, "status");
	char	   *new_label = SPI_getvalue(newt, desc, c_status);

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		char	   *old_label = SPI_getvalue(td->tg_trigtuple, desc, c_status);

		if (strcmp(old_label, new_label) == 0)
			return;
		VersionDelta(td->tg_trigtuple, desc, old_label, -1);
	}
	VersionDelta(newt, desc, new_label, 1);
}

/*
 * A numeric accuracy as MmResultNumber reads it: below 1e-300 a double underflows, and the C
 * conversion gives 0 where a cast would raise (check_invariants recounts it the same way).
 */
#define ACCURACY(row) \
	"CASE WHEN (" row ".result -> 'accuracy')::numeric < 1e-300 THEN 0 " \
	"ELSE (" row ".result -> 'accuracy')::numeric::double precision END"

/*
 * The same deltas for a whole statement, from its transition tables: one INSERT for all the rows
 * (a row trigger paid a statement's start-up per job, and submit_jobs and the set-based settlement
 * change hundreds of jobs per statement), and one row per month, owner and status, not one per job
 * version: a claim of eight jobs of one user appends two rows, not sixteen, and the fold and the
 * readers scan that much less.  A group's stake cannot outgrow a bigint: the jobs of a statement
 * that leave or enter a status all hold their stakes in escrow at once (no job leaves a final
 * status), and all escrow together is at most the token supply, itself a bigint balance.
 */
static void
RecordStatement(TriggerData *td)
{
	static MmPlan inserted = {
		"INSERT INTO modelmine.job_stat_deltas "
		"(month, user_id, status, jobs, stake, accuracy_sum, accuracy_n) "
		"SELECT x.month, x.user_id, x.status, pg_catalog.count(*)::integer, "
		"       pg_catalog.sum(x.stake)::bigint, COALESCE(pg_catalog.sum(x.v), 0), "
		"       pg_catalog.count(x.v)::integer "
		"  FROM (SELECT pg_catalog.date_trunc('month', n.created_at AT TIME ZONE 'UTC')::date "
		"               AS month, n.user_id, n.status, n.stake, a.v "
		"          FROM new_jobs n CROSS JOIN LATERAL (SELECT CASE WHEN n.status = 'COMPLETED' "
		"               AND pg_catalog.jsonb_typeof(n.result -> 'accuracy') = 'number' "
		"               THEN " ACCURACY("n") " END AS v) a) x "
		" GROUP BY x.month, x.user_id, x.status", 0, {0}};
	/* returns how many jobs reached an end: they have outbox events to write (jobevents.c) */
	static MmPlan updated = {
		"WITH ins AS (INSERT INTO modelmine.job_stat_deltas "
		"(month, user_id, status, jobs, stake, accuracy_sum, accuracy_n) "
		"SELECT x.month, x.user_id, x.status, pg_catalog.sum(x.sign)::integer, "
		"       pg_catalog.sum(x.sign * x.stake)::bigint, COALESCE(pg_catalog.sum(x.acc), 0), "
		"       pg_catalog.count(x.acc)::integer "
		"  FROM (SELECT pg_catalog.date_trunc('month', v.created_at AT TIME ZONE 'UTC')::date "
		"               AS month, v.user_id, v.status, v.sign, v.stake, v.acc "
		"          FROM old_jobs o JOIN new_jobs n ON n.id = o.id "
		"         CROSS JOIN LATERAL (VALUES "
		"               (o.created_at, o.user_id, o.status, -1, o.stake, NULL::double precision), "
		"               (n.created_at, n.user_id, n.status, 1, n.stake, "
		"                CASE WHEN n.status = 'COMPLETED' "
		"                      AND pg_catalog.jsonb_typeof(n.result -> 'accuracy') = 'number' "
		"                     THEN " ACCURACY("n") " END)) "
		"               AS v(created_at, user_id, status, sign, stake, acc) "
		"         WHERE o.status IS DISTINCT FROM n.status) x "
		" GROUP BY x.month, x.user_id, x.status "
		/* a status left and entered by as many jobs with the same stakes nets to nothing */
		"HAVING pg_catalog.sum(x.sign) <> 0 OR pg_catalog.sum(x.sign * x.stake) <> 0 "
		"    OR pg_catalog.count(x.acc) <> 0 "
		"RETURNING status, jobs) "
		"SELECT COALESCE(pg_catalog.sum(jobs) FILTER ("
		"       WHERE status IN ('COMPLETED', 'FAILED', 'CANCELED')), 0)::bigint FROM ins", 0, {0}};

	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "modelmine: could not read the transition tables of %s",
			 RelationGetRelationName(td->tg_relation));
	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		MmExec(&inserted, NULL, NULL, false, 0);
		return;
	}
	if (MmExec(&updated, NULL, NULL, false, 1) == 1 && MmInt64(0, 1, NULL) > 0)
		(void) MmOutboxJobsEnded();
	MmNotifyStatusChanges(td);
}

/*
 * AFTER trigger on modelmine.jobs: for each statement with transition tables (1.1: the statistics
 * deltas, the outbox events of jobs that ended and the status notifications), or for each row on INSERT or UPDATE OF status
 * (the 1.0 schema, which has no outbox, binds it so until updated).
 */
Datum
mm_job_stats_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		statement;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_job_stats_trigger must be an AFTER trigger")));
	statement = TRIGGER_FIRED_FOR_STATEMENT(td->tg_event);
	if (statement && (td->tg_newtable == NULL ||
					  (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && td->tg_oldtable == NULL)))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_job_stats_trigger needs the statement's transition tables"),
						errhint("Define it REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs.")));
	MmConnect();
	if (statement)
		RecordStatement(td);
	else
		RecordChange(td);
	SPI_finish();
	MmAtCommit(MM_AT_COMMIT_STATS);
	return PointerGetDatum(NULL);
}

/*
 * Folds committed deltas into job_stats if the fold lock is free; returns the number of deltas
 * folded.  Run at commit (housekeeping.c), only in READ COMMITTED: the DELETE must see what the
 * previous folder committed.  Sums that can outgrow bigint (stakes over all time) are numeric.
 */
int64
MmFoldStats(void)
{
	static MmPlan fold = {
		"WITH d AS (DELETE FROM modelmine.job_stat_deltas RETURNING *), "
		"g AS (SELECT month, status, sum(jobs) AS jobs, sum(stake) AS stake, "
		"sum(accuracy_sum) AS accuracy_sum, "
		"             sum(accuracy_n) AS accuracy_n, count(*) AS n FROM d GROUP BY month, status), "
		"u AS (INSERT INTO modelmine.job_stats AS s "
		"(month, status, jobs, stake, accuracy_sum, accuracy_n) "
		"      SELECT month, status, jobs, stake, accuracy_sum, accuracy_n FROM g "
		"      ON CONFLICT (month, status) DO UPDATE SET jobs = s.jobs + EXCLUDED.jobs, "
		"          stake = s.stake + EXCLUDED.stake, "
		"accuracy_sum = s.accuracy_sum + EXCLUDED.accuracy_sum, "
		"          accuracy_n = s.accuracy_n + EXCLUDED.accuracy_n), "
		/* a job submitted and settled within one fold nets to zero: no row to touch */
		"gu AS (SELECT user_id, status, sum(jobs) AS jobs, sum(stake) AS stake "
		"FROM d GROUP BY user_id, status "
		"       HAVING sum(jobs) <> 0 OR sum(stake) <> 0), "
		"uu AS (INSERT INTO modelmine.user_job_stats AS s (user_id, status, jobs, stake) "
		"       SELECT user_id, status, jobs, stake FROM gu "
		"       ON CONFLICT (user_id, status) DO UPDATE SET jobs = s.jobs + EXCLUDED.jobs, "
		"           stake = s.stake + EXCLUDED.stake) "
		"SELECT COALESCE(sum(n), 0)::bigint FROM g", 0, {0}};

	static MmPlan pending = {"SELECT EXISTS (SELECT 1 FROM modelmine.job_stat_deltas)", 0, {0}};

	if (XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly || RecoveryInProgress())
		return 0;
	/* the lock is held to commit: don't take it when there is nothing to fold */
	if (MmExec(&pending, NULL, NULL, false, 1) != 1 || !MmInt64(0, 1, NULL))
		return 0;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8,
										  Int64GetDatum(STATS_LOCK_KEY))))
		return 0;
	MmExec(&fold, NULL, NULL, false, 0);
	return MmInt64(0, 1, NULL);
}

/* Kept for the frozen 1.0 install script, which binds this symbol; 1.1 folds at commit instead. */
Datum
mm_fold_stats(PG_FUNCTION_ARGS)
{
	int64		n;

	MmConnect();				/* refuses a 1.0 schema, with the hint to update it */
	n = MmFoldStats();
	SPI_finish();
	PG_RETURN_INT64(n);
}
