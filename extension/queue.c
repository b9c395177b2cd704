/*
 * queue.c — why a job waits, and about how long: job_queue() and queue_position().
 *
 * The position is an estimate under fair share (fairshare.c) if usage stays as it is now: the
 * owner's own better jobs (k, by priority then age), plus, for every other user with claimable
 * jobs, the starts they get before their usage per share passes the owner's after k more starts
 * (each start adds one unit), at most as many jobs as they have queued.  It ignores placement
 * (other nodes may run other users' jobs meanwhile) and decay between now and then; it is read
 * only, and costs at worst one pass over the claimable jobs.
 */
#include "modelmine.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_job_queue);
PG_FUNCTION_INFO_V1(mm_queue_position);

/* What the explanation needs to know about a job. */
typedef struct Waiting
{
	int64		job_id;
	int64		owner;
	char	   *status;
	bool		waits;			/* open replicas on an open job */
	bool		late;			/* past start_by: the next expiry cancels it */
	int32		memory_mb;
	int32		cores;
	char	   *labels;			/* JSON array text */
	char	   *requirement;
	int64		own_ahead;		/* the owner's claimable jobs that go first */
	double		usage;			/* the owner's decayed usage, in starts */
	double		share;
	int64		users_ahead;	/* queued users served before the owner */
	char	   *schedule;		/* {"start_by", "finish_by", "requirements"}: JSON text */
} Waiting;

/* The caller may see the job: its owner, or a member of modelmine_admin. */
static void
CheckVisible(int64 job_id, int64 owner, bool found)
{
	Oid			admin = get_role_oid(MM_ROLE_ADMIN, true);

	if (found && (owner == MmCurrentUser(true) ||
				  (OidIsValid(admin) && has_privs_of_role(GetOuterUserId(), admin))))
		return;
	ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
					errmsg("job " INT64_FORMAT " not found", job_id),
					errdetail("There is no job with this id that you own."),
					errhint("List your jobs with modelmine.my_jobs().")));
}

/* Reads the job and its owner's place in the fair-share order. */
static void
LoadJob(int64 job_id, Waiting *w)
{
	static MmPlan get = {
		"SELECT j.user_id, j.status::text, "
		"       j.open_replicas > 0 AND j.status IN ('PENDING', 'RUNNING'), "
		"       j.status = 'PENDING' AND j.start_by IS NOT NULL "
		"       AND j.start_by <= pg_catalog.now(), "
		"       j.need_memory_mb, j.need_cores, pg_catalog.array_to_json(j.need_labels)::text, "
		"       j.requirement, "
		"       (SELECT pg_catalog.count(*) FROM modelmine.jobs y "
		"         WHERE y.user_id = j.user_id AND y.open_replicas > 0 "
		"           AND y.status IN ('PENDING', 'RUNNING') "
		"           AND (y.priority > j.priority OR (y.priority = j.priority AND y.id < j.id))), "
		"       COALESCE(pg_catalog.power(2::float8, GREATEST(f.usage_log - $2, -1000)), 0), "
		"       COALESCE(f.share, 1), "
		"       (SELECT pg_catalog.count(*) FROM modelmine.fair_share o "
		"         WHERE o.queued "
		"           AND (o.rank, o.user_id) < (COALESCE(f.rank, '-Infinity'), j.user_id)), "
		"       pg_catalog.jsonb_build_object('start_by', j.start_by, 'finish_by', j.finish_by, "
		"           'requirements', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
		"               'memory_mb', NULLIF(j.need_memory_mb, 0), "
		"               'cores', NULLIF(j.need_cores, 0), "
		"               'labels', NULLIF(j.need_labels, '{}'))))::text "
		"  FROM modelmine.jobs j LEFT JOIN modelmine.fair_share f ON f.user_id = j.user_id "
		" WHERE j.id = $1", 2, {INT8OID, FLOAT8OID}};
	Datum		args[2];
	bool		isnull;

	args[0] = Int64GetDatum(job_id);
	args[1] = Float8GetDatum((double) GetCurrentTransactionStartTimestamp() / USECS_PER_SEC /
							 (double) MmSetting("fair_share_half_life_seconds"));
	w->job_id = job_id;
	if (MmExec(&get, args, NULL, true, 1) != 1)
		CheckVisible(job_id, 0, false);
	w->owner = MmInt64(0, 1, NULL);
	w->status = MmText(0, 2);
	w->waits = MmInt64(0, 3, NULL);
	w->late = MmInt64(0, 4, NULL);
	w->memory_mb = (int32) MmInt64(0, 5, NULL);
	w->cores = (int32) MmInt64(0, 6, NULL);
	w->labels = MmText(0, 7);
	w->requirement = MmText(0, 8);
	w->own_ahead = MmInt64(0, 9, NULL);
	w->usage = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 10,
											&isnull));
	w->share = DatumGetFloat4(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 11,
											&isnull));
	w->users_ahead = MmInt64(0, 12, NULL);
	w->schedule = MmText(0, 13);
	/* last: it runs statements of its own, which replace SPI_tuptable */
	CheckVisible(job_id, w->owner, true);
}

/* The estimated number of starts before the job's (see the file comment). */
static int64
Position(const Waiting *w)
{
	static MmPlan others = {
		"SELECT COALESCE(pg_catalog.sum((SELECT pg_catalog.count(*) FROM ("
		"         SELECT 1 FROM modelmine.jobs j "
		"          WHERE j.user_id = f.user_id AND j.open_replicas > 0 "
		"            AND j.status IN ('PENDING', 'RUNNING') LIMIT x.take) q)), 0)::bigint "
		"  FROM modelmine.fair_share f CROSS JOIN LATERAL ("
		"       SELECT pg_catalog.ceil($1 * f.share / $2 - CASE WHEN f.usage_log = '-Infinity' "
		"              THEN 0 ELSE pg_catalog.power(2::float8, GREATEST(f.usage_log - $3, -1000)) "
		"              END)::bigint "
		"              AS take) x "
		" WHERE f.queued AND f.user_id <> $4 AND x.take > 0", 4,
	{FLOAT8OID, FLOAT8OID, FLOAT8OID, INT8OID}};
	Datum		args[4];

	args[0] = Float8GetDatum(w->usage + (double) w->own_ahead);
	args[1] = Float8GetDatum(w->share);
	args[2] = Float8GetDatum((double) GetCurrentTransactionStartTimestamp() / USECS_PER_SEC /
							 (double) MmSetting("fair_share_half_life_seconds"));
	args[3] = Int64GetDatum(w->owner);
	MmExec(&others, args, NULL, true, 1);
	return w->own_ahead + MmInt64(0, 1, NULL);
}

/* The job's requirements in words: "8192 MB, 2 cores, labels [\"gpu\"]" or "no requirements". */
static char *
Needs(const Waiting *w)
{
	StringInfoData b;

	initStringInfo(&b);
	if (w->memory_mb > 0)
		appendStringInfo(&b, "%d MB", w->memory_mb);
	if (w->cores > 0)
		appendStringInfo(&b, "%s%d cores", b.len ? ", " : "", w->cores);
	if (strcmp(w->labels, "[]") != 0)
		appendStringInfo(&b, "%slabels %s", b.len ? ", " : "", w->labels);
	return b.len ? b.data : pstrdup("no requirements");
}

/* Why a waiting job has not started: the first of deadline, placement, fair share, own queue. */
static char *
Reason(const Waiting *w)
{
	static MmPlan fit = {
		"SELECT COALESCE(pg_catalog.bool_or(ok), false), "
		"       COALESCE(pg_catalog.bool_or(ok AND online), false), "
		"       COALESCE(pg_catalog.bool_or(n.memory_mb >= $1), false), "
		"       COALESCE(pg_catalog.bool_or(n.cores >= $2), false), "
		"       COALESCE(pg_catalog.bool_or(n.labels @> $3::text[]), false) "
		"  FROM modelmine.nodes n CROSS JOIN LATERAL ("
		"       SELECT n.memory_mb >= $1 AND n.cores >= $2 AND n.labels @> $3::text[] "
		"              AND $4 = ANY (n.requirements) AS ok, "
		"              NOT n.maintenance AND n.last_seen >= pg_catalog.now() - "
		"pg_catalog.make_interval(secs => $5) AS online) x",
	5, {INT4OID, INT4OID, TEXTOID, TEXTOID, FLOAT8OID}};
	Datum		args[5];

	if (w->late)
		return pstrdup("start_by has passed: the next expiry cancels and refunds it");
	args[0] = Int32GetDatum(w->memory_mb);
	args[1] = Int32GetDatum(w->cores);
	args[2] = CStringGetTextDatum(psprintf("{%.*s}", (int) strlen(w->labels) - 2, w->labels + 1));
	args[3] = CStringGetTextDatum(w->requirement);
	args[4] = Float8GetDatum((double) MmSetting("offline_after_seconds"));
	MmExec(&fit, args, NULL, true, 1);
	if (!MmInt64(0, 3, NULL))
		return psprintf("no node offers %d MB", w->memory_mb);
	if (!MmInt64(0, 4, NULL))
		return psprintf("no node offers %d cores", w->cores);
	if (!MmInt64(0, 5, NULL))
		return psprintf("no node offers the labels %s", w->labels);
	if (!MmInt64(0, 1, NULL))
		return psprintf("no node offers %s with %s", w->requirement, Needs(w));
	if (!MmInt64(0, 2, NULL))
		return psprintf("no online node offers %s with %s", w->requirement, Needs(w));
	if (w->users_ahead > 0)
		return psprintf("fair share: " INT64_FORMAT " user%s ahead", w->users_ahead,
						w->users_ahead == 1 ? "" : "s");
	if (w->own_ahead > 0)
		return psprintf("behind " INT64_FORMAT " of the owner's jobs (priority, then age)",
						w->own_ahead);
	return pstrdup("waiting for a free node");
}

/* job_queue(job_id) -> {"job_id", "status", "queue_position", "users_ahead", "reason"}. */
Datum
mm_job_queue(PG_FUNCTION_ARGS)
{
	static MmPlan build = {
		"SELECT (pg_catalog.jsonb_build_object('job_id', $1, 'status', $2, 'queue_position', $3, "
		"       'users_ahead', $4, 'reason', $5) || $6::pg_catalog.jsonb)::text", 6,
	{INT8OID, TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID}};
	Waiting		w;
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char	   *json;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("job_id is required"),
						errhint("Pass the id returned by modelmine.submit_job.")));
	MmConnect();
	LoadJob(PG_GETARG_INT64(0), &w);
	args[0] = Int64GetDatum(w.job_id);
	args[1] = CStringGetTextDatum(w.status);
	if (w.waits)
	{
		args[2] = Int64GetDatum(Position(&w));
		args[3] = Int64GetDatum(w.users_ahead);
		args[4] = CStringGetTextDatum(Reason(&w));
	}
	else
		nulls[2] = nulls[3] = nulls[4] = 'n';
	args[5] = CStringGetTextDatum(w.schedule);
	MmExec(&build, args, nulls, true, 1);
	json = MmText(0, 1);
	SPI_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/* queue_position(job_id) -> the estimate, or NULL once the job no longer waits. */
Datum
mm_queue_position(PG_FUNCTION_ARGS)
{
	Waiting		w;
	int64		pos = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("job_id is required"),
						errhint("Pass the id returned by modelmine.submit_job.")));
	MmConnect();
	LoadJob(PG_GETARG_INT64(0), &w);
	if (w.waits)
		pos = Position(&w);
	SPI_finish();
	if (!w.waits)
		PG_RETURN_NULL();
	PG_RETURN_INT64(pos);
}
