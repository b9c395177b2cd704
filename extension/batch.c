/*
 * batch.c — settling several leased jobs in one call: complete_jobs (issue 15).
 *
 * A worker whose jobs end within a few milliseconds of each other reports them together: one round
 * trip, one transaction, one synchronous commit and one run of the commit-time housekeeping instead
 * of one of each per job.  The batch's single-replica jobs whose rows are free are settled first,
 * set-based, in one subtransaction (settle.c: a few statements for the whole batch).  Every other
 * job is completed exactly as complete_job completes it (MmCompleteJob: the caller's replica must
 * be running, the job row is locked first, the validator settles once), in its own internal
 * subtransaction, so one job's refusal (canceled, lease lost, an invalid result, a busy row) is
 * that job's answer and leaves the others' settlements in place.
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
 * Runs fn(arg) in an internal subtransaction; returns NULL when it succeeded, or the error that is
 * an answer (its work rolled back).  Any other error ends the whole call.
 */
static ErrorData *
InSubtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile e = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!AnswerFor(e))
			ReThrowError(e);
	}
	PG_END_TRY();
	return e;
}

/* One job of the batch and, once settled or refused, its answer. */
typedef struct Settling
{
	const Completion *c;
	int64		reward;
} Settling;

/* fn for InSubtransaction: completes one job as complete_job does. */
static void
CompleteOneJob(void *arg)
{
	Settling   *s = arg;

	s->reward = MmCompleteJob(s->c->job_id, s->c->result);
}

/* The batch, as the set-based path (settle.c) takes it. */
typedef struct Batch
{
	int64		node_id;
	int			n;
	int64	   *ids;
	Jsonb	  **results;
	bool	   *settled;
	int64	   *paid;
} Batch;

/* fn for InSubtransaction: settles the batch's single-replica jobs set-based. */
static void
SettleSingles(void *arg)
{
	Batch	   *b = arg;

	(void) MmSettleSingles(b->node_id, b->ids, b->results, b->n, b->settled, b->paid);
}

/* Adds a job's answer to the result set: the reward, or the error's SQLSTATE, message and hint. */
static void
PutAnswer(ReturnSetInfo *rsinfo, int64 job_id, int64 reward, const ErrorData *e)
{
	Datum		values[5] = {Int64GetDatum(job_id), Int64GetDatum(reward)};
	bool		nulls[5] = {false, false, true, true, true};

	if (e)
	{
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
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Settles the single-replica jobs set-based, then completes the others one by one as complete_job
 * does (see the file header); answers in the batch's order.  When the set-based step refuses (an
 * invalid result, a count that does not match), every job takes the per-job path.
 */
static void
CompleteJobs(Jsonb *in, ReturnSetInfo *rsinfo)
{
	Batch		b;
	Completion *c;

	b.node_id = MmRequireNode(false);	/* a call that is not a node's is refused as a whole */
	c = ReadCompletions(in, &b.n);
	b.ids = palloc(sizeof(int64) * b.n);
	b.results = palloc(sizeof(Jsonb *) * b.n);
	b.settled = palloc0(sizeof(bool) * b.n);
	b.paid = palloc0(sizeof(int64) * b.n);
	for (int i = 0; i < b.n; i++)
	{
		b.ids[i] = c[i].job_id;
		b.results[i] = c[i].result;
	}
	if (InSubtransaction(SettleSingles, &b) != NULL)
		memset(b.settled, 0, sizeof(bool) * b.n);
	for (int i = 0; i < b.n; i++)
	{
		Settling	s = {&c[i], 0};
		ErrorData  *e = NULL;

		if (b.settled[i])
			s.reward = b.paid[i];
		else
			e = InSubtransaction(CompleteOneJob, &s);
		PutAnswer(rsinfo, c[i].job_id, s.reward, e);
	}
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
