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
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
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
 * A version's accuracy as the statistics count it: a JSON number of its result (as MmResultNumber
 * reads it), anything else none.
 */
static bool
SlotAccuracy(TupleTableSlot *slot, AttrNumber result, float8 *out)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, result, &isnull);
	Jsonb	   *j;
	JsonbValue	v;

	if (isnull)
		return false;
	j = DatumGetJsonbP(d);
	if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j) ||
		getKeyJsonValueFromContainer(&j->root, "accuracy", 8, &v) == NULL || v.type != jbvNumeric)
		return false;
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(v.val.numeric)));
	return true;
}

/* The versions whose deltas an UPDATE appends: -1 for each status left, +1 for each entered. */
typedef struct Versions
{
	int			n;
	Datum	   *created,
			   *user_id,
			   *status,
			   *sign,
			   *stake,
			   *acc;
	bool	   *no_acc;
} Versions;

/* Appends version slot (status label, sign) to v. */
static void
AddVersion(Versions *v, TupleTableSlot *slot, const AttrNumber *col, char *label, int sign)
{
	bool		isnull;
	float8		acc = 0;

	v->created[v->n] = slot_getattr(slot, col[0], &isnull);
	v->user_id[v->n] = slot_getattr(slot, col[1], &isnull);
	v->status[v->n] = CStringGetTextDatum(label);
	v->sign[v->n] = Int32GetDatum(sign);
	v->stake[v->n] = slot_getattr(slot, col[2], &isnull);
	/* accuracy is added on entering COMPLETED only: COMPLETED is final, nothing ever leaves it */
	v->no_acc[v->n] = !(sign > 0 && strcmp(label, MM_STATUS_COMPLETED) == 0 &&
						SlotAccuracy(slot, col[4], &acc));
	v->acc[v->n] = Float8GetDatum(acc);
	v->n++;
}

/*
 * The deltas of an UPDATE statement's status changes, read pairwise from its transition tables in
 * C (the old and new tables hold each row's versions at the same position; statusnotify.c reads
 * them so too) and appended by one INSERT, one row per month, owner and status.  A statement that
 * changed no status (progress reports, lease renewals) runs no query at all.  Joining the
 * transition tables in SQL cost ~1.2 M instructions a settlement of 24 jobs.  Returns how many
 * jobs reached an end: they have outbox events to write (jobevents.c).
 */
static int64
RecordStatusChanges(TriggerData *td)
{
	static MmPlan ins = {
		"WITH ins AS (INSERT INTO modelmine.job_stat_deltas "
		"(month, user_id, status, jobs, stake, accuracy_sum, accuracy_n) "
		"SELECT pg_catalog.date_trunc('month', v.created_at AT TIME ZONE 'UTC')::date, v.user_id, "
		"       v.status::modelmine.job_status, pg_catalog.sum(v.sign)::integer, "
		"       pg_catalog.sum(v.sign * v.stake)::bigint, COALESCE(pg_catalog.sum(v.acc), 0), "
		"       pg_catalog.count(v.acc)::integer "
		"  FROM (SELECT pg_catalog.unnest($1::timestamptz[]) AS created_at, "
		"               pg_catalog.unnest($2::bigint[]) AS user_id, "
		"               pg_catalog.unnest($3::text[]) AS status, "
		"               pg_catalog.unnest($4::integer[]) AS sign, "
		"               pg_catalog.unnest($5::bigint[]) AS stake, "
		"               pg_catalog.unnest($6::double precision[]) AS acc) v "
		" GROUP BY 1, 2, 3 "
		/* a status left and entered by as many jobs with the same stakes nets to nothing */
		"HAVING pg_catalog.sum(v.sign) <> 0 OR pg_catalog.sum(v.sign * v.stake) <> 0 "
		"    OR pg_catalog.count(v.acc) <> 0 "
		"RETURNING status, jobs) "
		"SELECT COALESCE(pg_catalog.sum(jobs) FILTER ("
		"       WHERE status IN ('COMPLETED', 'FAILED', 'CANCELED')), 0)::bigint FROM ins",
	6, {TIMESTAMPTZARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
	FLOAT8ARRAYOID}};
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	TupleTableSlot *o = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple),
			   *n = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	AttrNumber	col[5] = {SPI_fnumber(desc, "created_at"), SPI_fnumber(desc, "user_id"),
		SPI_fnumber(desc, "stake"), SPI_fnumber(desc, "status"), SPI_fnumber(desc, "result")};
	int64		rows = tuplestore_tuple_count(td->tg_newtable),
				cap = 2 * Max(rows, 1);	/* two versions a changed row */
	Versions	v;
	Oid			out;
	bool		varlena;
	Datum		args[6];
	int			dims[1],
				lbs[1] = {1};

	v.n = 0;
	v.created = palloc(sizeof(Datum) * cap);
	v.user_id = palloc(sizeof(Datum) * cap);
	v.status = palloc(sizeof(Datum) * cap);
	v.sign = palloc(sizeof(Datum) * cap);
	v.stake = palloc(sizeof(Datum) * cap);
	v.acc = palloc(sizeof(Datum) * cap);
	v.no_acc = palloc(sizeof(bool) * cap);
	getTypeOutputInfo(TupleDescAttr(desc, col[3] - 1)->atttypid, &out, &varlena);
	MmRewindTransitionTable(td->tg_oldtable);
	MmRewindTransitionTable(td->tg_newtable);
	while (tuplestore_gettupleslot(td->tg_oldtable, true, false, o) &&
		   tuplestore_gettupleslot(td->tg_newtable, true, false, n))
	{
		bool		isnull;
		Datum		was = slot_getattr(o, col[3], &isnull),
					is = slot_getattr(n, col[3], &isnull);

		/* a status is an enum's OID: equal when unchanged */
		if (was == is)
			continue;
		if (v.n + 2 > cap)
			elog(ERROR, "modelmine: more status changes than the " INT64_FORMAT " rows updated", rows);
		AddVersion(&v, o, col, OidOutputFunctionCall(out, was), -1);
		AddVersion(&v, n, col, OidOutputFunctionCall(out, is), 1);
	}
	ExecDropSingleTupleTableSlot(o);
	ExecDropSingleTupleTableSlot(n);
	if (v.n == 0)
		return 0;
	dims[0] = v.n;
	args[0] = PointerGetDatum(construct_array(v.created, v.n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array_builtin(v.user_id, v.n, INT8OID));
	args[2] = PointerGetDatum(construct_array_builtin(v.status, v.n, TEXTOID));
	args[3] = PointerGetDatum(construct_array_builtin(v.sign, v.n, INT4OID));
	args[4] = PointerGetDatum(construct_array_builtin(v.stake, v.n, INT8OID));
	args[5] = PointerGetDatum(construct_md_array(v.acc, v.no_acc, 1, dims, lbs, FLOAT8OID, 8,
												 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (MmExec(&ins, args, NULL, false, 1) != 1)
		return 0;
	return MmInt64(0, 1, NULL);
}

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
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "modelmine: could not read the transition tables of %s",
			 RelationGetRelationName(td->tg_relation));
	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		MmExec(&inserted, NULL, NULL, false, 0);
		return;
	}
	if (RecordStatusChanges(td) > 0)
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
