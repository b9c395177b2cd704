/*
 * replicas.c — how many replicas a job wants, how far the network trusts a node, and what happens
 * when a replica's lease is lost.
 *
 * A job's owner asks for 1..max_replicas replicas (config key "replicas").  A node whose validated
 * record is short or poor has its single-replica jobs spot-checked: at claim time, with the
 * probability MmSpotcheckPct gives, the job wants a second result, which only a node of another
 * operator can supply; a caught node (MmCaught) is checked every time.  The record score (0..100)
 * counts an invalid result MM_INVALID_WEIGHT times as heavily as a failure; it sets the spot-check
 * rate and, with scarce_delay_ms, how soon a node sees new work (lease.c).  The reputation nodes()
 * shows is the record score times uptime (sql/modelmine.sql, _node_summary, uses the same weight).
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* an invalid result weighs as much as this many failures in the record score */
#define MM_INVALID_WEIGHT 10

/* The replicas a job's config asks for: 1 when absent; raises 22023 unless 1..max_replicas. */
int32
MmConfigReplicas(Jsonb *config)
{
	JsonbValue	v;
	int64		max_replicas = MmSetting("max_replicas");
	double		n;

	if (getKeyJsonValueFromContainer(&config->root, "replicas", 8, &v) == NULL)
		return 1;
	if (v.type != jbvNumeric)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("config.replicas must be a number"),
						errhint("Pass a whole number from 1 to " INT64_FORMAT
								" (setting max_replicas), or leave it out for 1.", max_replicas)));
	n = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v.val.numeric)));
	if (!(n >= 1 && n <= max_replicas) || n != floor(n))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid config.replicas"),
						errdetail("Got %.15g; the limit (setting max_replicas) is " INT64_FORMAT ".",
								  n, max_replicas),
						errhint("Pass a whole number from 1 to " INT64_FORMAT ".", max_replicas)));
	return (int32) n;
}

/* A node's record score, 0..100: completions against failures and (heavily) invalid results. */
int32
MmRecordScore(int64 completed, int64 failed, int64 invalid)
{
	double		s = 100.0 * (completed + 1) /
		((double) completed + failed + MM_INVALID_WEIGHT * (double) invalid + 2);

	return (int32) rint(s);
}

/*
 * Whether a node was caught: it has invalid results not yet outweighed by trusted_after_results
 * validated results for each.  A caught node's claims are always checked, even when no other
 * operator's node is online to confirm them (the job then waits): it earns nothing alone.
 */
bool
MmCaught(int64 valid, int64 invalid)
{
	return invalid > 0 && valid < invalid * MmSetting("trusted_after_results");
}

/*
 * The chance, in percent, that a single-replica job this node claims is checked by a second
 * replica: none for a long clean record (trusted_after_results validated, none invalid), always for
 * a caught node, else at least spotcheck_pct, and 100 - 2 * score when that is more.
 */
int32
MmSpotcheckPct(int64 valid, int64 invalid, int32 score)
{
	int64		floor_pct = MmSetting("spotcheck_pct");

	if (invalid == 0 && valid >= MmSetting("trusted_after_results"))
		return 0;
	if (MmCaught(valid, invalid))
		return 100;
	return (int32) Min(100, Max(floor_pct, 100 - 2 * (int64) score));
}

/* Ends the job's other live replicas (the job finished or was canceled): they are RELEASED. */
void
MmReleaseReplicas(int64 job_id)
{
	static MmPlan release = {
		"UPDATE modelmine.job_replicas SET status = 'RELEASED', lease_expires_at = NULL, "
		"       finished_at = pg_catalog.now() "
		" WHERE job_id = $1 AND " MM_BY_KEY("status = 'RUNNING'"), 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(job_id)};

	MmExecWaiting(&release, args, NULL, 0, "job", job_id);
}

/*
 * The caller's replica of a job whose row it holds locked was lost (status EXPIRED or RELEASED):
 * the job re-opens one replica, or, once it was claimed max_attempts + replicas_wanted - 1 times,
 * fails and is refunded (error from the template why: attempt, bound, node).  Returns true when it
 * failed.
 */
bool
MmReplicaLost(int64 job_id, int64 node_id, const char *status, const char *why)
{
	static MmPlan lose = {
		"WITH r AS (UPDATE modelmine.job_replicas SET status = $3, lease_expires_at = NULL, "
		"                  finished_at = pg_catalog.now() "
		"            WHERE job_id = $1 AND node_id = $2 AND " MM_BY_KEY("status = 'RUNNING'") " RETURNING job_id) "
		"SELECT j.attempts >= $4 + j.replicas_wanted - 1, j.stake, j.user_id "
		"  FROM modelmine.jobs j JOIN r ON r.job_id = j.id", 4, {INT8OID, INT8OID, TEXTOID, INT4OID}};
	static MmPlan fail = {
		"UPDATE modelmine.jobs SET status = 'FAILED', node_id = $2, open_replicas = 0, "
		"       validation = NULLIF(validation, 'PENDING'), "
		"       error = pg_catalog.format($3, attempts, $4 + replicas_wanted - 1, $2), "
		"       finished_at = pg_catalog.now(), lease_expires_at = NULL "
		" WHERE id = $1", 4, {INT8OID, INT8OID, TEXTOID, INT4OID}};
	static MmPlan requeue = {
		"UPDATE modelmine.jobs j SET open_replicas = j.open_replicas + 1, "
		"       status = CASE WHEN s.live > 0 THEN 'RUNNING' ELSE 'PENDING' "
		"END::modelmine.job_status, "
		"       node_id = s.node, progress = COALESCE(s.progress, 0), "
		"       metrics = CASE WHEN s.live > 0 THEN j.metrics END, lease_expires_at = s.lease, "
		"       lease_seconds = CASE WHEN s.live > 0 THEN j.lease_seconds END "
		"  FROM (SELECT pg_catalog.count(*) AS live, pg_catalog.max(progress) AS progress, "
		"               (pg_catalog.array_agg(node_id ORDER BY started_at DESC))[1] AS node, "
		"               pg_catalog.max(lease_expires_at) AS lease "
		"          FROM modelmine.job_replicas "
		"         WHERE job_id = $1 AND status IN ('RUNNING', 'SUBMITTED')) s "
		" WHERE j.id = $1", 1, {INT8OID}};
	Datum		args[4] = {Int64GetDatum(job_id), Int64GetDatum(node_id),
	CStringGetTextDatum(status), Int32GetDatum((int32) MmSetting("max_attempts"))};
	int64		stake,
				owner;

	if (MmExec(&lose, args, NULL, false, 0) != 1)
		elog(ERROR, "modelmine: replica of job " INT64_FORMAT " on node " INT64_FORMAT
			 " is not running", job_id, node_id);
	if (!MmInt64(0, 1, NULL))
	{
		MmExec(&requeue, args, NULL, false, 0);
		Async_Notify(MM_CHANNEL_WORK, "");
		return false;
	}
	stake = MmInt64(0, 2, NULL);
	owner = MmInt64(0, 3, NULL);
	args[2] = CStringGetTextDatum(why);
	MmExec(&fail, args, NULL, false, 0);
	MmReleaseReplicas(job_id);
	MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(owner), stake, "refund", job_id);
	return true;
}

PG_FUNCTION_INFO_V1(mm_record_score);
PG_FUNCTION_INFO_V1(mm_spotcheck_pct);

/* _record_score(completed, failed, invalid) -> 0..100, as claims and reputation use it. */
Datum
mm_record_score(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(MmRecordScore(PG_GETARG_INT64(0), PG_GETARG_INT64(1), PG_GETARG_INT64(2)));
}

/* _spotcheck_pct(valid, invalid, score) -> the percent chance claims use. */
Datum
mm_spotcheck_pct(PG_FUNCTION_ARGS)
{
	int32		pct;

	MmConnect();
	pct = MmSpotcheckPct(PG_GETARG_INT64(0), PG_GETARG_INT64(1), PG_GETARG_INT32(2));
	SPI_finish();
	PG_RETURN_INT32(pct);
}
