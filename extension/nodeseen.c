/*
 * nodeseen.c — the maintained node counts behind network_stats(): nodes online and registered.
 *
 * Counting the online nodes (last_seen >= now() - offline_after_seconds) over every row of
 * modelmine.nodes grows with the network.  So a row trigger on nodes appends insert-only deltas
 * to modelmine.node_seen_deltas: -1 at a node's previous last_seen and +1 at its new one, and +1/-1
 * with no time for a node registered or deleted.  Heartbeats thus never update a shared row.  The
 * fold (at commit, under an advisory try-lock, like stats.c) adds them into node_seen_stats, which
 * counts nodes by the time of their last heartbeat at three widths: whole seconds, milliseconds and
 * microseconds.  The online count for any threshold T is then exact and reads a bounded number of
 * rows: the second buckets from T on, the millisecond buckets of T's partial second and the
 * microsecond rows of T's partial millisecond (at most offline_after_seconds + 1 + 999 + 999 rows,
 * whatever the number of nodes); modelmine._node_counts() does it.  Because the buckets hold
 * times, not an online flag, nothing has to expire them, a changed offline_after_seconds applies at
 * once, and a clock that moves either way still counts exactly what the recount counts.
 */
#include "modelmine.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_node_seen_trigger);

#define NODE_SEEN_LOCK_KEY INT64CONST(0x6d6d6e6f64657365)	/* "mmnodese" */

/*
 * Appends the deltas of one change: registered (+1 registered, -1 deleted, 0 neither), and -1 at
 * the old last_seen and +1 at the new one where there is one.
 */
static void
AppendSeenDeltas(int32 registered, bool has_old, Datum old_seen, bool has_new, Datum new_seen)
{
	static MmPlan ins = {
		"INSERT INTO modelmine.node_seen_deltas (at, nodes) "
		"SELECT v.at, v.n FROM (VALUES (NULL::timestamptz, $1::integer), ($2, $3), ($4, $5)) "
		"v(at, n) WHERE v.n <> 0",
	5, {INT4OID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT4OID}};
	Datum		args[5];
	char		nulls[6] = "     ";

	args[0] = Int32GetDatum(registered);
	args[1] = has_old ? old_seen : (Datum) 0;
	args[2] = Int32GetDatum(has_old ? -1 : 0);
	args[3] = has_new ? new_seen : (Datum) 0;
	args[4] = Int32GetDatum(has_new ? 1 : 0);
	if (!has_old)
		nulls[1] = 'n';
	if (!has_new)
		nulls[3] = 'n';
	MmExec(&ins, args, nulls, false, 0);
}

/* Records a node's insert, delete or change of last_seen as deltas. */
static void
RecordSeen(TriggerData *td)
{
	TupleDesc	desc = td->tg_relation->rd_att;
	int			col = SPI_fnumber(desc, "last_seen");
	bool		old_null = true,
				new_null = true;
	Datum		old_seen = (Datum) 0,
				new_seen = (Datum) 0;
	int32		registered = 0;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		registered = 1;
		new_seen = SPI_getbinval(td->tg_trigtuple, desc, col, &new_null);
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		registered = -1;
		old_seen = SPI_getbinval(td->tg_trigtuple, desc, col, &old_null);
	}
	else
	{
		old_seen = SPI_getbinval(td->tg_trigtuple, desc, col, &old_null);
		new_seen = SPI_getbinval(td->tg_newtuple, desc, col, &new_null);
		/* the same time (or none) before and after: nothing moves */
		if (old_null == new_null &&
			(old_null || DatumGetTimestampTz(old_seen) == DatumGetTimestampTz(new_seen)))
			return;
	}
	AppendSeenDeltas(registered, !old_null, old_seen, !new_null, new_seen);
}

/* AFTER INSERT OR DELETE OR UPDATE OF last_seen row trigger on modelmine.nodes. */
Datum
mm_node_seen_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_node_seen_trigger must be an AFTER row trigger")));
	MmConnect();
	RecordSeen(td);
	SPI_finish();
	/* amortised like the job statistics (fold_interval_ms); readers add unfolded deltas */
	MmAtCommit(MM_AT_COMMIT_NODE_SEEN);
	return PointerGetDatum(NULL);
}

/*
 * Folds committed node_seen_deltas into node_seen_stats if the fold lock is free; returns the
 * number of deltas folded.  At commit only (housekeeping.c), in READ COMMITTED.  A bucket that
 * reaches zero is deleted, so the table holds only times some node was last seen at.
 */
int64
MmFoldNodeSeen(void)
{
	static MmPlan pending = {"SELECT EXISTS (SELECT 1 FROM modelmine.node_seen_deltas)", 0, {0}};
	static MmPlan fold = {
		"WITH d AS (DELETE FROM modelmine.node_seen_deltas RETURNING at, nodes), "
		"e AS (SELECT 0::bigint AS width, '-infinity'::timestamptz AS at, d.nodes "
		"        FROM d WHERE d.at IS NULL "
		"      UNION ALL "
		"      SELECT w.width, CASE w.width "
		"                 WHEN 1000000 THEN pg_catalog.date_trunc('second', d.at) "
		"                 WHEN 1000 THEN pg_catalog.date_trunc('milliseconds', d.at) "
		"                 ELSE d.at END, d.nodes "
		"        FROM d, (VALUES (1000000::bigint), (1000), (1)) w(width) "
		"       WHERE d.at IS NOT NULL), "
		"g AS (SELECT width, at, pg_catalog.sum(nodes)::bigint AS nodes FROM e "
		"       GROUP BY width, at HAVING pg_catalog.sum(nodes) <> 0), "
		/* a bucket that empties is deleted rather than kept at 0 */
		"z AS (DELETE FROM modelmine.node_seen_stats s USING g "
		"       WHERE s.width = g.width AND s.at = g.at AND s.nodes + g.nodes = 0 "
		"      RETURNING s.width, s.at), "
		"u AS (INSERT INTO modelmine.node_seen_stats AS s (width, at, nodes) "
		"      SELECT g.width, g.at, g.nodes FROM g "
		"       WHERE NOT EXISTS (SELECT 1 FROM z WHERE z.width = g.width AND z.at = g.at) "
		"      ON CONFLICT (width, at) DO UPDATE SET nodes = s.nodes + EXCLUDED.nodes) "
		"SELECT pg_catalog.count(*) FROM d", 0, {0}};

	if (XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly || RecoveryInProgress())
		return 0;
	/* the lock is held to commit: don't take it when there is nothing to fold */
	if (MmExec(&pending, NULL, NULL, false, 1) != 1 || !MmInt64(0, 1, NULL))
		return 0;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8,
										  Int64GetDatum(NODE_SEEN_LOCK_KEY))))
		return 0;
	MmExec(&fold, NULL, NULL, false, 0);
	return MmInt64(0, 1, NULL);
}
