/*
 * fairshare.c — fair share between users: decayed usage per share, kept without a hot row.
 *
 * A user's usage is the sum over their job starts of 2^((t - now) / half-life): a start counts 1 now
 * and half as much a half-life later.  fair_share keeps it as usage_log = log2(sum 2^(t / half-life))
 * (t in seconds since 2000), which never needs rewriting as time passes: comparing usage_log -
 * log2(share) (the rank) compares decayed usage per share at any moment.  Claims walk the users
 * that may have claimable jobs by rank (lease.c).
 *
 * Nobody's call waits for another principal's on these rows: claims only append usage_deltas; the
 * deltas are folded at commit (housekeeping.c) into the rows no one holds (SKIP LOCKED; a held row
 * is folded by a later commit); a submit writes only its own user's row (queued, so the walk sees
 * the user), which at worst waits for a fold's commit.  The queued flag is cleared at commit, under
 * the row's lock, only once the user has no open job left, so no claimable job is ever hidden: a
 * submit that follows the clearing sets it again, one that precedes it holds the row (skipped).
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(mm_set_user_share);

/*
 * 2^x for x below this is taken as 2^this (about 1e-301): power() raises an underflow error past
 * 2^-1074, which a user idle for a thousand half-lives would otherwise hit
 */
#define MM_USAGE_MIN_EXP (-1000.0)

/* users at the head of the walk checked for idleness at each fold */
#define IDLE_CHECK 8

/* A submit: the user's row says they may have claimable jobs (their own row only). */
void
MmFairShareSubmitted(int64 user_id)
{
	static MmPlan queue = {
		"INSERT INTO modelmine.fair_share (user_id, queued, submits) VALUES ($1, true, 1) "
		"ON CONFLICT (user_id) DO UPDATE SET queued = true, "
		"submits = modelmine.fair_share.submits + 1", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(user_id)};

	MmExecWaiting(&queue, args, NULL, 0, "user", user_id);
}

/*
 * Folds appended usage into the fair_share rows no one holds, then clears queued for users (just
 * folded, or at the head of the walk) who have no open job left.  At commit only; returns the
 * number of users folded.
 */
int64
MmFoldUsage(void)
{
	static MmPlan missing = {
		"INSERT INTO modelmine.fair_share (user_id) "
		"SELECT DISTINCT user_id FROM modelmine.usage_deltas ON CONFLICT DO NOTHING", 0, {0}, true};
	static MmPlan fold = {
		"WITH f AS (SELECT s.user_id FROM modelmine.fair_share s "
		"            WHERE s.user_id IN (SELECT user_id FROM modelmine.usage_deltas) "
		"            ORDER BY s.user_id FOR NO KEY UPDATE OF s SKIP LOCKED), "
		"d AS (DELETE FROM modelmine.usage_deltas x USING f WHERE x.user_id = f.user_id "
		"      RETURNING x.user_id, x.usage_log), "
		"m AS (SELECT user_id, pg_catalog.max(usage_log) AS m FROM d GROUP BY user_id), "
		"s AS (SELECT d.user_id, m.m, "
		"             pg_catalog.sum(pg_catalog.power(2::float8, GREATEST(d.usage_log - m.m, $1))) AS w "
		"        FROM d JOIN m ON m.user_id = d.user_id GROUP BY d.user_id, m.m), "
		"n AS (SELECT s.user_id, t.top + pg_catalog.ln("
		"               CASE WHEN fs.usage_log = '-Infinity' THEN 0 "
		"                    ELSE pg_catalog.power(2::float8, GREATEST(fs.usage_log - t.top, $1)) END "
		"               + s.w * pg_catalog.power(2::float8, GREATEST(s.m - t.top, $1))) "
		"             / pg_catalog.ln(2) AS v "
		"        FROM s JOIN modelmine.fair_share fs ON fs.user_id = s.user_id "
		"        CROSS JOIN LATERAL (SELECT GREATEST(fs.usage_log, s.m) AS top) t) "
		"UPDATE modelmine.fair_share fs SET usage_log = n.v, "
		"       rank = n.v - pg_catalog.ln(fs.share) / pg_catalog.ln(2) "
		"  FROM n WHERE fs.user_id = n.user_id RETURNING fs.user_id", 1, {FLOAT8OID}, true};
	static MmPlan lock = {
		"SELECT user_id FROM modelmine.fair_share "
		" WHERE user_id = ANY ($1 || ARRAY("
		"       SELECT user_id FROM modelmine.fair_share WHERE queued "
		"        ORDER BY rank, user_id LIMIT " CppAsString2(IDLE_CHECK) ")) AND queued "
		"   FOR NO KEY UPDATE SKIP LOCKED", 1, {INT8ARRAYOID}, true};
	/* a new statement, so a job committed before the lock was taken is seen */
	static MmPlan idle = {
		"UPDATE modelmine.fair_share f SET queued = false "
		" WHERE f.user_id = ANY ($1) AND NOT EXISTS ("
		"       SELECT 1 FROM modelmine.jobs j "
		"        WHERE j.user_id = f.user_id AND j.status IN ('PENDING', 'RUNNING'))",
	1, {INT8ARRAYOID}, true};
	uint64		n,
				folded;
	Datum	   *ids;
	Datum		args[1] = {Float8GetDatum(MM_USAGE_MIN_EXP)};

	MmExec(&missing, NULL, NULL, false, 0);
	n = folded = MmExec(&fold, args, NULL, false, 0);
	ids = palloc(sizeof(Datum) * (n + 1));
	for (uint64 i = 0; i < n; i++)
		ids[i] = Int64GetDatum(MmInt64(i, 1, NULL));
	args[0] = PointerGetDatum(construct_array(ids, (int) n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	n = MmExec(&lock, args, NULL, false, 0);
	if (n > 0)
	{
		Datum	   *locked = palloc(sizeof(Datum) * n);

		for (uint64 i = 0; i < n; i++)
			locked[i] = Int64GetDatum(MmInt64(i, 1, NULL));
		args[0] = PointerGetDatum(construct_array(locked, (int) n, INT8OID, 8, true,
												  TYPALIGN_DOUBLE));
		MmExec(&idle, args, NULL, false, 0);
	}
	return (int64) folded;
}

/* Admin: sets a user's share; the rank follows at once. */
static void
SetUserShare(text *email, float4 share)
{
	static MmPlan set = {
		"INSERT INTO modelmine.fair_share AS f (user_id, share, rank) "
		"VALUES ($1, $2, '-Infinity') "
		"ON CONFLICT (user_id) DO UPDATE SET share = $2, "
		"       rank = f.usage_log - pg_catalog.ln($2::float8) / pg_catalog.ln(2)",
	2, {INT8OID, FLOAT4OID}};
	char	   *addr;
	int64		user_id;
	Datum		args[2];

	if (email == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("email is required"),
						errhint("Name the user by email; list users with modelmine.users().")));
	if (isnan(share) || share < 0.001 || share > 1000000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid share"),
						errdetail("Got %g.", share),
						errhint("Pass a share from 0.001 to 1000000; 1 is everyone's default.")));
	addr = MmNormaliseEmail(email);
	user_id = MmUserIdByEmail(addr);
	if (user_id == 0)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("no user with email %s", addr),
						errhint("List users with modelmine.users().")));
	args[0] = Int64GetDatum(user_id);
	args[1] = Float4GetDatum(share);
	MmExecWaiting(&set, args, NULL, 0, "user", user_id);
}

/* set_user_share(email, share). */
Datum
mm_set_user_share(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("share is required"),
						errhint("Pass a share from 0.001 to 1000000; 1 is everyone's default.")));
	MmConnect();
	SetUserShare(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), PG_GETARG_FLOAT4(1));
	SPI_finish();
	PG_RETURN_VOID();
}
