/*
 * submitbatch.c — submitting many jobs in one call: submit_jobs (issue 15).
 *
 * A user who queues a sweep of a thousand configurations should not pay a thousand round trips,
 * row locks of their account and statements per table.  Every job is checked exactly as
 * submit_job checks it (MmCheckSubmit: the workers' config validator, deadlines, requirements;
 * then placement, once per distinct need; a config byte for byte the element before's, which
 * passed, is not validated again); the first refusal refuses the whole call, naming the element,
 * and nothing is staked.  Then the user's account is locked and debited once for the total, the
 * jobs are inserted in one statement and their stakes journaled in another: still a journal row
 * per job, the stake moved to the job's escrow shard.
 * All or nothing: one transaction, so an insufficient balance stakes none of them.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_submit_jobs);

#define HINT_SHAPE "Pass a JSON array of 1 to " CppAsString2(MM_SUBMIT_MAX) \
	" objects like {\"title\": \"sweep 1\", \"config\": {\"trainer\": \"noop\"}, \"stake\": 10}."

/* Raises 22023 about element i of the batch. */
static void
BadElement(int i, const char *what, const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("jobs[%d]%s", i, what),
					detail ? errdetail("%s", detail) : 0, errhint(HINT_SHAPE)));
}

/* A whole number of element i's key (at most 18 digits: its range is checked by MmCheckSubmit). */
static int64
WholeNumber(int i, const char *key, const JsonbValue *v)
{
	char	   *digits,
			   *abs;

	if (v->type != jbvNumeric)
		BadElement(i, psprintf(".%s must be a whole number", key), NULL);
	digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	abs = digits + (digits[0] == '-');
	if (*abs == '\0' || strspn(abs, "0123456789") != strlen(abs) || strlen(abs) > 18)
		BadElement(i, psprintf(".%s must be a whole number", key), psprintf("Got %s.", digits));
	return strtoll(digits, NULL, 10);
}

/* A time of element i's key (a JSON string PostgreSQL reads as timestamptz; 22007 names it). */
static TimestampTz
TimeOf(int i, const char *key, const JsonbValue *v)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *text;
	volatile TimestampTz t = 0;

	if (v->type != jbvString)
		BadElement(i, psprintf(".%s must be a time as a string", key),
				   "Pass e.g. \"2030-01-01T12:00:00Z\".");
	text = pnstrdup(v->val.string.val, v->val.string.len);
	PG_TRY();
	{
		t = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		e->message = psprintf("jobs[%d].%s: %s", i, key, e->message);
		if (e->hint == NULL)
			e->hint = pstrdup("Pass a time such as \"2030-01-01T12:00:00Z\".");
		ReThrowError(e);
	}
	PG_END_TRY();
	return t;
}

/* Reads element i into a: the keys submit_job takes, each as its parameter's type. */
static void
ReadElement(int i, JsonbValue *e, MmSubmitArgs *a)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	if (e == NULL || e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
		BadElement(i, " must be a JSON object", NULL);
	memset(a, 0, sizeof(*a));
	it = JsonbIteratorInit(e->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		(void) JsonbIteratorNext(&it, &v, true);
		if (v.type == jbvNull)
			continue;			/* as the parameter left out */
		if (strcmp(key, "title") == 0 || strcmp(key, "description") == 0)
		{
			text	   *t;

			if (v.type != jbvString)
				BadElement(i, psprintf(".%s must be a string", key), NULL);
			t = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
			if (key[0] == 't')
				a->title = t;
			else
				a->description = t;
		}
		else if (strcmp(key, "config") == 0)
			a->config = JsonbValueToJsonb(&v);
		else if (strcmp(key, "stake") == 0)
		{
			a->stake_given = true;
			a->stake = WholeNumber(i, key, &v);
		}
		else if (strcmp(key, "priority") == 0)
		{
			int64		p = WholeNumber(i, key, &v);

			if (p < MM_PRIORITY_MIN || p > MM_PRIORITY_MAX)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("jobs[%d]: invalid priority", i),
								errdetail("Got " INT64_FORMAT ".", p),
								errhint("Pass a priority from -1000 to 1000 (higher runs first).")));
			a->priority_given = true;
			a->priority = (int32) p;
		}
		else if (strcmp(key, "start_by") == 0)
		{
			a->start_by_given = true;
			a->start_by = TimeOf(i, key, &v);
		}
		else if (strcmp(key, "finish_by") == 0)
		{
			a->finish_by_given = true;
			a->finish_by = TimeOf(i, key, &v);
		}
		else if (strcmp(key, "requirements") == 0)
			a->requirements = JsonbValueToJsonb(&v);
		else
			BadElement(i, psprintf(" has an unknown key \"%s\"", key),
					   "A job takes title, config, description, stake, priority, start_by, "
					   "finish_by and requirements.");
	}
}

/* MmCheckSubmit on element i; its refusal names the element ("jobs[3]: invalid stake"). */
static void
CheckElement(int i, MmSubmitArgs *a)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		MmCheckSubmit(a);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE)
			PG_RE_THROW();
		FlushErrorState();
		e->message = psprintf("jobs[%d]: %s", i, e->message);
		ReThrowError(e);
	}
	PG_END_TRY();
}

/*
 * Ids for n new jobs, ascending in the batch's order: the sequence is looked up once and advanced
 * n times here (a query calling nextval(pg_get_serial_sequence(...)) per row spent 8 us a job on
 * the lookup).
 */
static Datum *
NewJobIds(int n)
{
	static MmPlan seq = {
		"SELECT pg_catalog.pg_get_serial_sequence('modelmine.jobs', 'id')::pg_catalog.regclass::oid",
	0, {0}};
	Datum	   *out = palloc(sizeof(Datum) * n);
	bool		isnull;
	Oid			relid;

	if (MmExec(&seq, NULL, NULL, true, 1) != 1)
		elog(ERROR, "modelmine: no sequence for job ids");
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										   &isnull));
	if (isnull)
		elog(ERROR, "modelmine: no sequence for job ids");
	for (int i = 0; i < n; i++)
		out[i] = Int64GetDatum(nextval_internal(relid, true));
	return out;
}

/*
 * Whether jobs a and b need the same resources for the same trainer or runner.  Labels compare
 * byte for byte: two equal arrays stored differently only cost one more check.
 */
static bool
SameNeeds(const MmSubmitArgs *a, const char *ra, const MmSubmitArgs *b, const char *rb)
{
	return a->need_out.memory_mb == b->need_out.memory_mb &&
		a->need_out.cores == b->need_out.cores && strcmp(ra, rb) == 0 &&
		datumIsEqual(a->need_out.labels, b->need_out.labels, false, -1);
}

/*
 * MmCheckPlaceable for each inserted job (the result of the insert: id, requirement, in any
 * order), once per distinct need; its refusal (MM003) names the element.
 */
static void
CheckPlaceable(int n, MmSubmitArgs *a, const Datum *ids)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	  **req = palloc0(sizeof(char *) * n);
	volatile int i = 0;

	/* ids ascend (NewJobIds): each row's element by binary search, not a scan of all n */
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		int64		id = MmInt64(row, 1, NULL);
		int			lo = 0,
					hi = n - 1;

		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (DatumGetInt64(ids[mid]) < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (DatumGetInt64(ids[lo]) != id)
			elog(ERROR, "modelmine: job " INT64_FORMAT " was not in the batch", id);
		req[lo] = MmText(row, 2);
	}
	PG_TRY();
	{
		for (i = 0; i < n; i++)
		{
			bool		seen = false;

			for (int p = 0; p < i && !seen; p++)
				seen = SameNeeds(&a[p], req[p], &a[i], req[i]);
			if (!seen)
				MmCheckPlaceable(&a[i].need_out, req[i]);
		}
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		e->message = psprintf("jobs[%d]: %s", i, e->message);
		ReThrowError(e);
	}
	PG_END_TRY();
}

/* Inserts the checked jobs with their ids (one statement); their triggers see a normal insert. */
static void
InsertJobs(int64 user_id, int n, MmSubmitArgs *a, Datum *ids)
{
	static MmPlan ins = {
		"INSERT INTO modelmine.jobs (id, user_id, title, description, config, stake, priority, "
		"                           replicas, replicas_wanted, open_replicas, validation, "
		"                           start_by, finish_by, need_memory_mb, need_cores, need_labels) "
		"OVERRIDING SYSTEM VALUE "
		"SELECT x.id, $1, x.t, x.d, x.c, x.s, x.p, x.r, x.r, x.r, "
		"       CASE WHEN x.r > 1 THEN 'PENDING' END, x.sb, x.fb, x.m, x.k, "
		"       COALESCE(x.l::text[], '{}') "
		/* unnested in the target list: row by row in the arrays' (the ids') order, no sort */
		"  FROM (SELECT pg_catalog.unnest($2::bigint[]) AS id, pg_catalog.unnest($3::text[]) AS t, "
		"               pg_catalog.unnest($4::text[]) AS d, pg_catalog.unnest($5::jsonb[]) AS c, "
		"               pg_catalog.unnest($6::bigint[]) AS s, pg_catalog.unnest($7::integer[]) AS p, "
		"               pg_catalog.unnest($8::smallint[]) AS r, "
		"               pg_catalog.unnest($9::timestamptz[]) AS sb, "
		"               pg_catalog.unnest($10::timestamptz[]) AS fb, "
		"               pg_catalog.unnest($11::integer[]) AS m, pg_catalog.unnest($12::integer[]) AS k, "
		"               pg_catalog.unnest($13::text[]) AS l) x "
		"RETURNING id, requirement",
	13, {INT8OID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, INT8ARRAYOID,
		INT4ARRAYOID, INT2ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID,
	INT4ARRAYOID, TEXTARRAYOID}};
	Datum	   *t = palloc(sizeof(Datum) * n),
			   *d = palloc(sizeof(Datum) * n),
			   *c = palloc(sizeof(Datum) * n),
			   *s = palloc(sizeof(Datum) * n),
			   *p = palloc(sizeof(Datum) * n),
			   *r = palloc(sizeof(Datum) * n),
			   *sb = palloc(sizeof(Datum) * n),
			   *fb = palloc(sizeof(Datum) * n),
			   *m = palloc(sizeof(Datum) * n),
			   *k = palloc(sizeof(Datum) * n),
			   *l = palloc(sizeof(Datum) * n);
	bool	   *dnull = palloc(sizeof(bool) * n),
			   *sbnull = palloc(sizeof(bool) * n),
			   *fbnull = palloc(sizeof(bool) * n),
			   *lnull = palloc(sizeof(bool) * n);
	int			dims[1] = {n},
				lbs[1] = {1};
	Datum		args[13];

	for (int i = 0; i < n; i++)
	{
		t[i] = CStringGetTextDatum(a[i].title_out);
		dnull[i] = a[i].description == NULL;
		d[i] = dnull[i] ? (Datum) 0 : PointerGetDatum(a[i].description);
		c[i] = JsonbPGetDatum(a[i].config);
		s[i] = Int64GetDatum(a[i].stake_out);
		p[i] = Int32GetDatum(a[i].priority_out);
		r[i] = Int16GetDatum(a[i].replicas_out);
		sbnull[i] = !a[i].start_by_given;
		sb[i] = TimestampTzGetDatum(a[i].start_by);
		fbnull[i] = !a[i].finish_by_given;
		fb[i] = TimestampTzGetDatum(a[i].finish_by);
		m[i] = Int32GetDatum(a[i].need_out.memory_mb);
		k[i] = Int32GetDatum(a[i].need_out.cores);
		/* a text[] per job: passed as its text, since an array of arrays cannot be ragged (NULL: none) */
		lnull[i] = a[i].need_out.nlabels == 0;
		l[i] = lnull[i] ? (Datum) 0 :
			CStringGetTextDatum(OidOutputFunctionCall(F_ARRAY_OUT, a[i].need_out.labels));
	}
	args[0] = Int64GetDatum(user_id);
	args[1] = PointerGetDatum(construct_array_builtin(ids, n, INT8OID));
	args[2] = PointerGetDatum(construct_array_builtin(t, n, TEXTOID));
	args[3] = PointerGetDatum(construct_md_array(d, dnull, 1, dims, lbs, TEXTOID, -1, false,
												 TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_array(c, n, JSONBOID, -1, false, TYPALIGN_INT));
	args[5] = PointerGetDatum(construct_array_builtin(s, n, INT8OID));
	args[6] = PointerGetDatum(construct_array_builtin(p, n, INT4OID));
	args[7] = PointerGetDatum(construct_array_builtin(r, n, INT2OID));
	args[8] = PointerGetDatum(construct_md_array(sb, sbnull, 1, dims, lbs, TIMESTAMPTZOID, 8, true,
												 TYPALIGN_DOUBLE));
	args[9] = PointerGetDatum(construct_md_array(fb, fbnull, 1, dims, lbs, TIMESTAMPTZOID, 8, true,
												 TYPALIGN_DOUBLE));
	args[10] = PointerGetDatum(construct_array_builtin(m, n, INT4OID));
	args[11] = PointerGetDatum(construct_array_builtin(k, n, INT4OID));
	args[12] = PointerGetDatum(construct_md_array(l, lnull, 1, dims, lbs, TEXTOID, -1, false,
												  TYPALIGN_INT));
	if (MmExec(&ins, args, NULL, false, 0) != (uint64) n)
		elog(ERROR, "modelmine: not all %d jobs were inserted", n);
	CheckPlaceable(n, a, ids);
}

/* Checks every job, then stakes and inserts them all (see the file header); returns the ids. */
static Datum *
SubmitJobs(Jsonb *in, int *n)
{
	int64		user_id = MmRequireUser(false, NULL);
	MmSubmitArgs *a;
	Datum	   *ids,
			   *escrow,
			   *stake;
	int64		total = 0,
				have = 0;

	if (in == NULL || !JB_ROOT_IS_ARRAY(in) || JB_ROOT_IS_SCALAR(in))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("jobs must be a JSON array"), errhint(HINT_SHAPE)));
	*n = (int) JB_ROOT_COUNT(in);
	if (*n < 1 || *n > MM_SUBMIT_MAX)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("jobs must hold 1 to %d jobs", MM_SUBMIT_MAX),
						errdetail("Got %d.", *n), errhint(HINT_SHAPE)));
	a = palloc(sizeof(MmSubmitArgs) * *n);
	for (int i = 0; i < *n; i++)
	{
		ReadElement(i, getIthJsonbValueFromContainer(&in->root, i), &a[i]);
		/* a sweep's jobs often share a config: the same bytes as the last one passed already */
		a[i].config_checked = i > 0 && a[i].config && a[i - 1].config &&
			VARSIZE(a[i].config) == VARSIZE(a[i - 1].config) &&
			memcmp(a[i].config, a[i - 1].config, VARSIZE(a[i].config)) == 0;
		CheckElement(i, &a[i]);
	}
	ids = NewJobIds(*n);
	escrow = palloc(sizeof(Datum) * *n);
	stake = palloc(sizeof(Datum) * *n);
	for (int i = 0; i < *n; i++)
	{
		escrow[i] = Int64GetDatum(MM_ESCROW_ACCOUNT(DatumGetInt64(ids[i])));
		stake[i] = Int64GetDatum(a[i].stake_out);
		total += a[i].stake_out;
	}
	/* the user's own fair-share row: the claims' walk must see the user once this commits */
	MmFairShareSubmitted(user_id);
	InsertJobs(user_id, *n, a, ids);
	if (!MmTrySpendEach(MmUserAccount(user_id), *n, escrow, stake, "stake", ids, &have))
		ereport(ERROR, (errcode(ERRCODE_MM_INSUFFICIENT_BALANCE), errmsg("insufficient balance"),
						errdetail("Your balance is " INT64_FORMAT " tokens; the %d stakes total "
								  INT64_FORMAT ".", have, *n, total),
						errhint("Stake less, submit fewer jobs, cancel a pending job, or ask "
								"another user to send you tokens.")));
	return ids;
}

/* submit_jobs(jobs) -> the new jobs' ids, in the order given. */
Datum
mm_submit_jobs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *ids;
	int			n;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	MmConnect();
	ids = SubmitJobs(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0), &n);
	for (int i = 0; i < n; i++)
	{
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &ids[i], &isnull);
	}
	SPI_finish();
	return (Datum) 0;
}
