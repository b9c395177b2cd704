/*
 * fairshare.c — fair share between users: decayed usage per share, kept without a hot row.
 *
 * A user's usage is the sum over their job starts of 2^((t - now) / half-life): a start counts 1
 * now and half as much a half-life later.  fair_share keeps it as usage_log = log2(sum 2^(t /
 * half-life)) (t in seconds since 2000), which never needs rewriting as time passes: comparing
 * usage_log - log2(share) (the rank) compares decayed usage per share at any moment.  Claims walk
 * the users that may have claimable jobs by rank (lease.c).
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
/* users whose appended usage one commit folds at most */
#define FOLD_USERS 64

/*
 * A submit: the user's row says they may have claimable jobs (their own row only).  ON CONFLICT
 * locks the row even when it is already queued and nothing is written, so a fold clearing it
 * meanwhile skips it (SKIP LOCKED) or is waited for and then undone.
 */
void
MmFairShareSubmitted(int64 user_id)
{
	static MmPlan queue = {
		"INSERT INTO modelmine.fair_share (user_id, queued) VALUES ($1, true) "
		"ON CONFLICT (user_id) DO UPDATE SET queued = true WHERE NOT modelmine.fair_share.queued",
	1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(user_id)};

	MmExecWaiting(&queue, args, NULL, 0, "user", user_id);
}

/*
 * Folds one user's appended usage into their fair_share row, unless someone holds the row (a later
 * commit folds it then); creates the row for a user who never submitted (jobs inserted directly).
 * Returns whether it folded.  One user at a time, by primary key: a set-wise fold's hash joins
 * read the whole table whenever the statistics of the churning deltas table are off.
 */
static bool
FoldUser(int64 user_id)
{
	static MmPlan lock = {
		"SELECT 1 FROM modelmine.fair_share WHERE user_id = $1 FOR NO KEY UPDATE SKIP LOCKED",
	1, {INT8OID}, MM_PROBE};
	static MmPlan create = {
		"INSERT INTO modelmine.fair_share (user_id) SELECT $1 "
		" WHERE NOT EXISTS (SELECT 1 FROM modelmine.fair_share WHERE user_id = $1) "
		"ON CONFLICT DO NOTHING", 1, {INT8OID}, MM_PROBE};
	/* log2(2^a + sum 2^d), computed from the largest term down so that nothing overflows */
	static MmPlan fold = {
		"WITH d AS (DELETE FROM modelmine.usage_deltas WHERE user_id = $1 RETURNING usage_log), "
		"s AS (SELECT pg_catalog.max(usage_log) AS m FROM d), "
		"w AS (SELECT s.m, pg_catalog.sum(pg_catalog.power(2::float8, "
		"                 GREATEST(d.usage_log - s.m, $2))) AS w FROM d, s GROUP BY s.m), "
		"n AS (SELECT t.top + pg_catalog.ln("
		"               pg_catalog.power(2::float8, GREATEST(fs.usage_log - t.top, $2)) "
		"               + w.w * pg_catalog.power(2::float8, GREATEST(w.m - t.top, $2))) "
		"             / pg_catalog.ln(2) AS v "
		"        FROM w, modelmine.fair_share fs "
		"        CROSS JOIN LATERAL (SELECT GREATEST(fs.usage_log, w.m) AS top) t "
		"       WHERE fs.user_id = $1) "
		"UPDATE modelmine.fair_share fs SET usage_log = n.v, "
		"       rank = n.v - pg_catalog.ln(fs.share) / pg_catalog.ln(2) "
		"  FROM n WHERE fs.user_id = $1", 2, {INT8OID, FLOAT8OID}, MM_PROBE};
	Datum		args[2] = {Int64GetDatum(user_id), Float8GetDatum(MM_USAGE_MIN_EXP)};

	if (MmExec(&lock, args, NULL, false, 0) == 0)
	{
		MmExec(&create, args, NULL, false, 0);
		if (MmExec(&lock, args, NULL, false, 0) == 0)
			return false;
	}
	MmExec(&fold, args, NULL, false, 0);
	return true;
}

/*
 * Whether user row r has no open job: one probe of jobs_user_open_idx per user, a scalar subquery
 * with LIMIT 1 in a probe plan (MM_PROBE).  Written as NOT EXISTS in a plan made from statistics
 * taken before the jobs ran, it hashed every open job of the network at each commit that folded
 * usage (4 ms a commit in a drain of 8,000 jobs); as a scalar subquery alone, it became a seq scan
 * of jobs from the first page, where the finished jobs are.
 */
#define NO_OPEN_JOB(r) \
	"(SELECT 1 FROM modelmine.jobs j WHERE j.user_id = " r ".user_id " \
	"    AND j.status IN ('PENDING', 'RUNNING') LIMIT 1) IS NULL"

/*
 * Clears queued for users (just folded, or at the head of the walk) who have no open job left.
 * Read first without locks (the common case finds none); a candidate is then locked (SKIP LOCKED)
 * and checked again by a new statement, which sees a job committed before the lock was taken.
 */
static void
DropIdle(Datum folded)
{
	/* each user by primary key (LIMIT 1 keeps the lookup a parameterised index scan) */
	static MmPlan find = {
		"SELECT f.user_id "
		"  FROM (SELECT pg_catalog.unnest($1) AS id "
		"        UNION SELECT h.user_id FROM (SELECT user_id FROM modelmine.fair_share "
		"                                      WHERE queued ORDER BY rank, user_id "
		"                                      LIMIT " CppAsString2(IDLE_CHECK) ") h) u "
		" CROSS JOIN LATERAL (SELECT x.user_id FROM modelmine.fair_share x "
		"                      WHERE x.user_id = u.id AND x.queued LIMIT 1) f "
		" WHERE " NO_OPEN_JOB("f"),
	1, {INT8ARRAYOID}, MM_PROBE};
	static MmPlan lock = {
		"SELECT f.user_id FROM pg_catalog.unnest($1) u(id) "
		" CROSS JOIN LATERAL (SELECT x.user_id FROM modelmine.fair_share x WHERE x.user_id = u.id "
		"                      LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED) f", 1, {INT8ARRAYOID}, MM_PROBE};
	static MmPlan idle = {
		"UPDATE modelmine.fair_share f SET queued = false "
		" WHERE f.user_id = ANY ($1) AND " NO_OPEN_JOB("f"),
	1, {INT8ARRAYOID}, MM_PROBE};
	Datum		args[1] = {folded};
	uint64		n;

	for (int step = 0; step < 2; step++)
	{
		Datum	   *ids;

		n = MmExec(step == 0 ? &find : &lock, args, NULL, false, 0);
		if (n == 0)
			return;
		ids = palloc(sizeof(Datum) * n);
		for (uint64 i = 0; i < n; i++)
			ids[i] = Int64GetDatum(MmInt64(i, 1, NULL));
		args[0] = PointerGetDatum(construct_array(ids, (int) n, INT8OID, 8, true,
												  TYPALIGN_DOUBLE));
	}
	MmExec(&idle, args, NULL, false, 0);
}

/*
 * Folds appended usage into the fair_share rows no one holds (at most FOLD_USERS users per commit),
 * then drops idle users from the walk.  At commit only; returns the number of users folded.
 */
int64
MmFoldUsage(void)
{
	static MmPlan users = {
		"SELECT DISTINCT user_id FROM modelmine.usage_deltas LIMIT " CppAsString2(FOLD_USERS),
	0, {0}, true};
	uint64		n = MmExec(&users, NULL, NULL, false, 0);
	int64	   *todo = palloc(sizeof(int64) * (n + 1));
	Datum	   *done = palloc(sizeof(Datum) * (n + 1));
	int			folded = 0;

	for (uint64 i = 0; i < n; i++)
		todo[i] = MmInt64(i, 1, NULL);
	for (uint64 i = 0; i < n; i++)
		if (FoldUser(todo[i]))
			done[folded++] = Int64GetDatum(todo[i]);
	DropIdle(PointerGetDatum(construct_array(done, folded, INT8OID, 8, true, TYPALIGN_DOUBLE)));
	return folded;
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
