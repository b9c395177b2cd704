/*
 * batch.c — settling several leased jobs in one call: complete_jobs (issue 15).
 *
 * A worker whose jobs end within a few milliseconds of each other reports them together: one round
 * trip, one transaction, one synchronous commit and one run of the commit-time housekeeping instead
 * of one of each per job.  Each job is completed exactly as complete_job completes it
 * (MmCompleteJob: the caller's replica must be running, the job row is locked first, the validator
 * settles once), in its own internal subtransaction, so one job's refusal (canceled, lease lost, an
 * invalid result, a busy row) is that job's answer and leaves the others' settlements in place.
 *
 * The batch is bounded by MM_COMPLETE_MAX: every subtransaction that writes takes a subtransaction
 * id, and past the 64 a backend caches, every snapshot taken anywhere in the cluster would have to
 * look into pg_subtrans while this transaction runs.  The commit-time housekeeping takes a few more.
 */
#include "modelmine.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

PG_FUNCTION_INFO_V1(mm_complete_jobs);

#define HINT_SHAPE "Pass a JSON array of 1 to " CppAsString2(MM_COMPLETE_MAX) \
	" objects like {\"job_id\": 42, \"result\": {\"accuracy\": 0.97, \"loss\": 0.08, \"epochs\": 50}}."

/* One completion of the batch, as read from the argument. */
typedef struct Completion
{
	int64		job_id;
	Jsonb	   *result;			/* NULL when absent or JSON null: MmCompleteJob refuses it */
} Completion;

/* completions[i].job_id as a positive bigint, or raises naming the element. */
static int64
ReadJobId(JsonbContainer *item, int i)
{
	JsonbValue	v;
	char	   *digits;
	int64		id = 0;

	if (getKeyJsonValueFromContainer(item, "job_id", 6, &v) == NULL || v.type == jbvNull)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("completions[%d].job_id is required", i), errhint(HINT_SHAPE)));
	digits = v.type == jbvNumeric ?
		DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric))) : NULL;
	if (digits == NULL || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 18 ||
		(id = strtoll(digits, NULL, 10)) <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid completions[%d].job_id", i),
						errdetail("Got %s.", digits ? digits : "a value that is not a number"),
						errhint("Pass the job_id returned by modelmine.claim_jobs().")));
	return id;
}

/* Reads and checks the batch's shape; nothing is settled when it is wrong. */
static Completion *
ReadCompletions(Jsonb *in, int *n)
{
	Completion *out;

	if (in == NULL || !JB_ROOT_IS_ARRAY(in) || JB_ROOT_IS_SCALAR(in))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("completions must be a JSON array"), errhint(HINT_SHAPE)));
	*n = (int) JB_ROOT_COUNT(in);
	if (*n < 1 || *n > MM_COMPLETE_MAX)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("completions must hold 1 to %d jobs", MM_COMPLETE_MAX),
						errdetail("Got %d.", *n), errhint(HINT_SHAPE)));
	out = palloc0(sizeof(Completion) * *n);
	for (int i = 0; i < *n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(&in->root, i);
		JsonbValue	r;

		if (e == NULL || e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("completions[%d] must be a JSON object", i),
							errhint(HINT_SHAPE)));
		out[i].job_id = ReadJobId(e->val.binary.data, i);
		for (int k = 0; k < i; k++)
			if (out[k].job_id == out[i].job_id)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("completions[%d].job_id repeats job " INT64_FORMAT, i,
									   out[i].job_id),
								errdetail("completions[%d] is the same job.", k),
								errhint("Report each job once per call.")));
		if (getKeyJsonValueFromContainer(e->val.binary.data, "result", 6, &r) != NULL &&
			r.type != jbvNull)
			out[i].result = JsonbValueToJsonb(&r);
	}
	return out;
}

/*
 * An error that is the job's answer (refused, not leased, invalid result, busy row): the caller
 * acts on it per job.  A cancel, a timeout, resources, system or internal errors end the call.
 */
static bool
AnswerFor(const ErrorData *e)
{
	int			class = ERRCODE_TO_CATEGORY(e->sqlerrcode);

	return e->elevel == ERROR &&
		class != ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) &&
		class != ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) &&
		class != ERRCODE_TO_CATEGORY(ERRCODE_PROGRAM_LIMIT_EXCEEDED) &&
		class != ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR) &&
		class != ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR);
}

/*
 * Completes one job in an internal subtransaction and adds its answer to the result set: the
 * reward, or the error's SQLSTATE, message and hint.
 */
static void
CompleteOne(const Completion *c, ReturnSetInfo *rsinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Datum		values[5] = {Int64GetDatum(c->job_id)};
	bool		nulls[5] = {false, false, true, true, true};

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		values[1] = Int64GetDatum(MmCompleteJob(c->job_id, c->result));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/* only an error a caller can act on is an answer; anything else ends the whole call */
		if (!AnswerFor(e))
			ReThrowError(e);
		nulls[1] = true;
		values[2] = CStringGetTextDatum(unpack_sql_state(e->sqlerrcode));
		values[3] = CStringGetTextDatum(e->message ? e->message : "");
		nulls[2] = nulls[3] = false;
		if (e->hint)
		{
			values[4] = CStringGetTextDatum(e->hint);
			nulls[4] = false;
		}
	}
	PG_END_TRY();
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Completes each job of the batch in turn (see the file header). */
static void
CompleteJobs(Jsonb *in, ReturnSetInfo *rsinfo)
{
	int			n;
	Completion *c;

	(void) MmRequireNode(false);	/* a call that is not a node's is refused as a whole */
	c = ReadCompletions(in, &n);
	for (int i = 0; i < n; i++)
		CompleteOne(&c[i], rsinfo);
}

/* complete_jobs(completions) -> (job_id, reward, sqlstate, error, hint) per job, in order. */
Datum
mm_complete_jobs(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	MmConnect();
	CompleteJobs(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0), (ReturnSetInfo *) fcinfo->resultinfo);
	SPI_finish();
	return (Datum) 0;
}
