/*
 * jobs.c — submitting and canceling training jobs, and the job lifecycle guard.
 *
 * Lifecycle: PENDING -> RUNNING -> COMPLETED | FAILED; RUNNING -> PENDING (lease expired,
 * re-queued); PENDING | RUNNING -> CANCELED.  The BEFORE UPDATE trigger enforces it for every
 * writer, including admins with direct table access.  Settling is tied to the status change: the
 * UPDATE that moves a job out of PENDING/RUNNING takes the row lock, and only the transaction whose
 * UPDATE matched moves money, so a job settles exactly once however many sessions race (the loser's
 * UPDATE re-checks the status after the winner commits and matches nothing).
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "mb/pg_wchar.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_submit_job);
PG_FUNCTION_INFO_V1(mm_cancel_job);
PG_FUNCTION_INFO_V1(mm_job_transition_guard);
PG_FUNCTION_INFO_V1(mm_notify_work);
PG_FUNCTION_INFO_V1(mm_notify_job_end);


/* The JSON type of a jsonb value, as a word for error messages. */
static const char *
JsonbKind(Jsonb *j)
{
	if (JB_ROOT_IS_SCALAR(j))
	{
		JsonbValue	v;

		/* a scalar is stored as a one-element raw array */
		if (JsonbExtractScalar(&j->root, &v))
		{
			switch (v.type)
			{
				case jbvNull:
					return "null";
				case jbvString:
					return "a string";
				case jbvNumeric:
					return "a number";
				case jbvBool:
					return "a boolean";
				default:
					break;
			}
		}
		return "a scalar";
	}
	return JB_ROOT_IS_ARRAY(j) ? "an array" : "an object";
}

/* Raises 22023 with the given message, optional detail and hint. */
static void
BadParam(const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", msg),
					detail ? errdetail("%s", detail) : 0, errhint("%s", hint)));
}

/* Whether name (len bytes) is one of the built-in trainers every worker runs (protocol.h). */
static bool
BuiltinTrainer(const char *name, int len)
{
	static const char *const trainers[] = MM_TRAINERS;

	for (int i = 0; i < lengthof(trainers); i++)
		if ((int) strlen(trainers[i]) == len && memcmp(trainers[i], name, len) == 0)
			return true;
	return false;
}

/* config.trainer / config.runner, when present, must be names a node can advertise; not both. */
static void
CheckRequirement(Jsonb *config)
{
	static const char *const keys[] = {"trainer", "runner"};
	int			present = 0;

	for (int k = 0; k < lengthof(keys); k++)
	{
		JsonbValue	v;
		bool		ok;

		if (getKeyJsonValueFromContainer(&config->root, keys[k], strlen(keys[k]), &v) == NULL)
			continue;
		present++;
		ok = v.type == jbvString && MmValidName(v.val.string.val, v.val.string.len);
		/* "trainer" names a built-in of every worker; anything else is a "runner" */
		if (ok && k == 0 && !BuiltinTrainer(v.val.string.val, v.val.string.len))
			BadParam("unknown config.trainer",
					 psprintf("Got \"%.*s\".", v.val.string.len, v.val.string.val),
					 "Use a built-in trainer: \"logreg\", \"mlp\", \"linreg\" or \"noop\"; "
					 "for other code, name a \"runner\".");
		if (!ok)
			BadParam(psprintf("invalid config.%s", keys[k]),
					 "It must be a name of 1 to 64 characters a-z, 0-9, _, - or ., "
					 "starting with a letter or digit.",
					 k == 0 ? "Use a built-in trainer such as \"logreg\", \"mlp\", \"linreg\" or "
							  "\"noop\"."
					 : "Use a runner name a node operator has configured, such as \"torch-cnn\".");
	}
	if (present > 1)
		BadParam("config names both a trainer and a runner", NULL,
				 "Keep \"trainer\" for built-in training or \"runner\" for an external runner, "
				 "not both.");
}

/* The title with blanks trimmed, 1 to MM_TITLE_MAX_CHARS characters; raises 22023 otherwise. */
static char *
ValidTitle(text *t)
{
	char	   *title;
	int			chars;

	if (t == NULL)
		BadParam("title is required", NULL, "Pass a title of 1 to 200 characters.");
	title = MmTrim(text_to_cstring(t));
	chars = pg_mbstrlen(title);
	if (chars < 1 || chars > MM_TITLE_MAX_CHARS)
		BadParam("invalid title", psprintf("It has %d characters after trimming spaces.", chars),
				 "Pass a title of 1 to 200 characters.");
	return title;
}

/* Refuses deadlines that are infinite, already past, or out of order (22023, naming the field). */
static void
CheckDeadlines(const MmSubmitArgs *a)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	const char *hint = "Pass a time in the future, e.g. now() + interval '1 hour'; finish_by must "
		"come after start_by.";

	if (a->start_by_given && (TIMESTAMP_NOT_FINITE(a->start_by) || a->start_by <= now))
		BadParam("invalid start_by", psprintf("Got %s; it must be a finite time in the future.",
											  timestamptz_to_str(a->start_by)), hint);
	if (a->finish_by_given && (TIMESTAMP_NOT_FINITE(a->finish_by) || a->finish_by <= now))
		BadParam("invalid finish_by", psprintf("Got %s; it must be a finite time in the future.",
											   timestamptz_to_str(a->finish_by)), hint);
	if (a->start_by_given && a->finish_by_given && a->finish_by <= a->start_by)
		BadParam("finish_by must come after start_by",
				 psprintf("Got start_by %s and finish_by %s.",
						  pstrdup(timestamptz_to_str(a->start_by)),
						  pstrdup(timestamptz_to_str(a->finish_by))), hint);
}

/* requirements: an object of memory_mb, cores and labels only (placement.c reads them). */
static void
ParseRequirements(Jsonb *req, MmResources *need)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	const char *hint = "Pass e.g. {\"memory_mb\": 4096, \"cores\": 2, \"labels\": [\"gpu\"]}, "
		"or NULL for none.";

	memset(need, 0, sizeof(*need));
	if (req == NULL)
	{
		MmParseResources(NULL, "requirements", need);
		return;
	}
	if (!JB_ROOT_IS_OBJECT(req) || JB_ROOT_IS_SCALAR(req))
		BadParam("requirements must be a JSON object", psprintf("Got %s.", JsonbKind(req)), hint);
	it = JsonbIteratorInit(&req->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY && !MmResourceKey(v.val.string.val, v.val.string.len))
			BadParam("unknown key in requirements",
					 psprintf("Got \"%s\".", MmPrintable(v.val.string.val, v.val.string.len, 64)),
					 hint);
	MmParseResources(req, "requirements", need);
}

/*
 * Checks a submission, raising 22023 naming the field; fills in the trimmed title, the stake, the
 * priority, the replicas wanted and the requirements.  Shared by submit_job and submit_jobs
 * (submitbatch.c).
 */
void
MmCheckSubmit(MmSubmitArgs *a)
{
	int64		max_config = MmSetting("max_config_bytes");
	int64		stake;

	a->title_out = ValidTitle(a->title);
	if (a->config == NULL)
		BadParam("config is required", NULL, "Pass a JSON object such as '{\"trainer\": "
											 "\"logreg\"}'.");
	if (!JB_ROOT_IS_OBJECT(a->config) || JB_ROOT_IS_SCALAR(a->config))
		BadParam("config must be a JSON object", psprintf("Got %s.", JsonbKind(a->config)),
				 "Pass a JSON object such as '{\"trainer\": \"logreg\"}'.");
	if (!a->config_checked)
	{
		/* the limit is on the JSON text a user sees, not jsonb's internal size */
		char	   *text;

		CheckRequirement(a->config);
		text = JsonbToCString(NULL, &a->config->root, VARSIZE(a->config));
		if (strlen(text) > (size_t) max_config)
			BadParam("config is too large",
					 psprintf("Its JSON text takes %zu bytes; the limit (setting max_config_bytes) "
							  "is " INT64_FORMAT ".",
							  strlen(text), max_config),
					 "Keep datasets out of the config: pass a dataset URL instead.");
		a->config_text = text;
	}
	if (a->description &&
		pg_mbstrlen_with_len(VARDATA_ANY(a->description),
							 VARSIZE_ANY_EXHDR(a->description)) > MM_DESCRIPTION_MAX_CHARS)
		BadParam("description is too long", NULL,
				 "Pass a description of at most 10000 characters.");
	stake = a->stake_given ? a->stake : MmSetting("default_stake");
	if (stake < 1)
		BadParam("invalid stake", psprintf("Got " INT64_FORMAT ".", stake),
				 "Pass a stake of at least 1 token (and at most your balance).");
	{
		int64		max_stake = MmSetting("max_stake");

		if (stake > max_stake)
			BadParam("stake is too large",
					 psprintf("Got " INT64_FORMAT "; the limit (setting max_stake) is "
							  INT64_FORMAT ".", stake, max_stake),
					 "Stake at most max_stake tokens per job.");
	}
	if (a->priority_given && (a->priority < MM_PRIORITY_MIN || a->priority > MM_PRIORITY_MAX))
		BadParam("invalid priority", psprintf("Got %d.", a->priority),
				 "Pass a priority from -1000 to 1000 (higher runs first).");
	CheckDeadlines(a);
	ParseRequirements(a->requirements, &a->need_out);
	/* last of the checks, as the costliest: the workers' own validator; nothing staked if refused */
	if (!a->config_checked)
		MmCheckTrainerConfig(a->config, a->config_text);
	a->stake_out = stake;
	a->priority_out = a->priority_given ? a->priority : 0;
	a->replicas_out = (int16) MmConfigReplicas(a->config);
}

/* Inserts a job for the signed-in user and moves its stake from the user's balance to escrow. */
static int64
SubmitJob(MmSubmitArgs *a)
{
	static MmPlan ins = {
		"INSERT INTO modelmine.jobs (user_id, title, description, config, stake, priority, "
		"                           replicas, replicas_wanted, open_replicas, validation, "
		"                           start_by, finish_by, need_memory_mb, need_cores, need_labels) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, CASE WHEN $7 > 1 THEN 'PENDING' END, "
		"        $8, $9, $10, $11, $12) "
		"RETURNING id, requirement",
	12, {INT8OID, TEXTOID, TEXTOID, JSONBOID, INT8OID, INT4OID, INT2OID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, INT4OID, INT4OID, TEXTARRAYOID}};
	int64		user_id = MmRequireUser(false, NULL);
	int64		stake,
				job_id,
				have = 0;
	Datum		args[12];
	char		nulls[12] = {' ', ' ', a->description ? ' ' : 'n', ' ', ' ', ' ', ' ',
		a->start_by_given ? ' ' : 'n', a->finish_by_given ? ' ' : 'n', ' ', ' ', ' '};

	MmCheckSubmit(a);
	stake = a->stake_out;
	args[0] = Int64GetDatum(user_id);
	args[1] = CStringGetTextDatum(a->title_out);
	args[2] = a->description ? PointerGetDatum(a->description) : (Datum) 0;
	args[3] = JsonbPGetDatum(a->config);
	args[4] = Int64GetDatum(stake);
	args[5] = Int32GetDatum(a->priority_out);
	args[6] = Int16GetDatum(a->replicas_out);
	args[7] = TimestampTzGetDatum(a->start_by);
	args[8] = TimestampTzGetDatum(a->finish_by);
	args[9] = Int32GetDatum(a->need_out.memory_mb);
	args[10] = Int32GetDatum(a->need_out.cores);
	args[11] = a->need_out.labels;
	/* the user's own fair-share row first: the claims' walk must see the user once this commits */
	MmFairShareSubmitted(user_id);
	MmExec(&ins, args, nulls, false, 1);
	job_id = MmInt64(0, 1, NULL);
	/* the requirement column is derived from the config by the row itself */
	MmCheckPlaceable(&a->need_out, MmText(0, 2));

	if (!MmTrySpend(MmUserAccount(user_id), MM_ESCROW_ACCOUNT(job_id), stake, "stake", job_id,
					NULL, &have))
		ereport(ERROR, (errcode(ERRCODE_MM_INSUFFICIENT_BALANCE), errmsg("insufficient balance"),
						errdetail("Your balance is " INT64_FORMAT " tokens; the stake is "
								  INT64_FORMAT ".", have, stake),
						errhint("Stake less, cancel a pending job, or ask another user to send you "
								"tokens.")));
	return job_id;
}

/* Cancels one of the caller's open jobs and refunds it; returns the refund. */
static int64
CancelJob(int64 job_id)
{
	/*
	 * "user_id + 0": a kept generic plan made while jobs was nearly empty could otherwise pick the
	 * (user_id, created_at) index and read all of the user's jobs on every cancel, forever.
	 */
	static MmPlan cancel = {
		"UPDATE modelmine.jobs SET status = 'CANCELED', finished_at = pg_catalog.now(), "
		"       lease_expires_at = NULL, open_replicas = 0, "
		"       validation = NULLIF(validation, 'PENDING') "
		" WHERE id = $1 AND user_id + 0 = $2 AND " MM_BY_KEY("status IN ('PENDING', 'RUNNING')")
		" RETURNING stake",
	2, {INT8OID, INT8OID}};
	static MmPlan status = {
		"SELECT status::text FROM modelmine.jobs WHERE id = $1 AND user_id = $2",
	2, {INT8OID, INT8OID}};
	int64		user_id = MmRequireUser(false, NULL);
	Datum		args[2] = {Int64GetDatum(job_id), Int64GetDatum(user_id)};
	int64		stake;

	/*
	 * the node running the job may hold its row for a moment (or, hostile, in an open
	 * transaction)
	 */
	if (MmExecWaiting(&cancel, args, NULL, 1, "job", job_id) != 1)
	{
		if (MmExec(&status, args, NULL, false, 1) != 1)
			ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
							errmsg("job " INT64_FORMAT " not found", job_id),
							errdetail("There is no job with this id that you own."),
							errhint("List your jobs with modelmine.my_jobs().")));
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("job " INT64_FORMAT " is already %s", job_id, MmText(0, 1)),
						errdetail("Only PENDING or RUNNING jobs can be canceled."),
						errhint("Nothing was changed; its stake was settled when it finished.")));
	}
	stake = MmInt64(0, 1, NULL);
	MmReleaseReplicas(job_id);
	MmPayOut(MM_ESCROW_ACCOUNT(job_id), MmUserAccount(user_id), stake, "refund", job_id);
	return stake;
}

/* Whether a job may move from status from to status to. */
static bool
TransitionAllowed(const char *from, const char *to)
{
	if (strcmp(from, to) == 0)
		return true;
	if (strcmp(from, "PENDING") == 0)
		return strcmp(to, "RUNNING") == 0 || strcmp(to, "CANCELED") == 0;
	if (strcmp(from, "RUNNING") == 0)
		return strcmp(to, "COMPLETED") == 0 || strcmp(to, "FAILED") == 0 ||
			strcmp(to, "CANCELED") == 0 || strcmp(to, "PENDING") == 0;
	return false;				/* COMPLETED, FAILED, CANCELED are final */
}

/* The columns a job keeps from submission on. */
static const char *const fixed[] = {"id", "user_id", "stake", "config", "created_at", "start_by",
"finish_by", "need_memory_mb", "need_cores", "need_labels"};

/*
 * The attribute number of column name, remembered in *cached across rows (a lookup by name
 * compares every column's name; this runs for every row every UPDATE of jobs writes); <= 0 when
 * the relation has no such column (the 1.0 schema).
 */
static AttrNumber
Col(TupleDesc desc, const char *name, AttrNumber *cached)
{
	AttrNumber	c = *cached;

	if (c > 0 && c <= desc->natts && !TupleDescAttr(desc, c - 1)->attisdropped &&
		strcmp(NameStr(TupleDescAttr(desc, c - 1)->attname), name) == 0)
		return c;
	return *cached = SPI_fnumber(desc, name);
}

/*
 * Whether column col holds the same value in both versions: the same bytes, as an unchanged column
 * always does (no output function per value); otherwise compared as text, as a value stored
 * differently (a toasted copy) may still be equal.
 */
static bool
SameValue(TupleDesc desc, AttrNumber col, HeapTuple a, const Datum *av, const bool *an,
		  HeapTuple b, const Datum *bv, const bool *bn)
{
	Form_pg_attribute att = TupleDescAttr(desc, col - 1);

	if (an[col - 1] || bn[col - 1])
		return an[col - 1] == bn[col - 1];
	if (datumIsEqual(av[col - 1], bv[col - 1], att->attbyval, att->attlen))
		return true;
	return strcmp(SPI_getvalue(a, desc, col), SPI_getvalue(b, desc, col)) == 0;
}

/* BEFORE UPDATE row trigger on modelmine.jobs. */
static HeapTuple
GuardJobUpdate(TriggerData *td)
{
	static AttrNumber status_col,
				updated_col,
				fixed_col[lengthof(fixed)];
	TupleDesc	desc = td->tg_relation->rd_att;
	HeapTuple	oldt = td->tg_trigtuple,
				newt = td->tg_newtuple;
	AttrNumber	status = Col(desc, "status", &status_col),
				col;
	int			updated;
	Datum	   *ov = palloc(sizeof(Datum) * desc->natts),
			   *nv = palloc(sizeof(Datum) * desc->natts),
				now;
	bool	   *on = palloc(sizeof(bool) * desc->natts),
			   *nn = palloc(sizeof(bool) * desc->natts),
				isnull = false;

	heap_deform_tuple(oldt, desc, ov, on);
	heap_deform_tuple(newt, desc, nv, nn);
	/* a status is an enum's OID: the labels are needed only when it changes */
	if (ov[status - 1] != nv[status - 1])
	{
		char	   *from = SPI_getvalue(oldt, desc, status);
		char	   *to = SPI_getvalue(newt, desc, status);

		if (!TransitionAllowed(from, to))
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							errmsg("invalid job status transition"),
							errdetail("Job %s cannot go from %s to %s.", SPI_getvalue(oldt, desc, 1),
									  from, to),
							errhint("Jobs move PENDING -> RUNNING -> COMPLETED or FAILED, RUNNING -> "
									"PENDING when a lease is given back or expires, and PENDING or "
									"RUNNING -> CANCELED; finished jobs never change.")));
	}
	for (int i = 0; i < lengthof(fixed); i++)
	{
		col = Col(desc, fixed[i], &fixed_col[i]);
		if (col > 0 && !SameValue(desc, col, oldt, ov, on, newt, nv, nn))
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							errmsg("job column %s cannot change", fixed[i]),
							errdetail("The stake, owner, config, deadlines and requirements of "
									  "a job are fixed at submission."),
							errhint("Cancel the job and submit a new one.")));
	}
	updated = Col(desc, "updated_at", &updated_col);
	now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return heap_modify_tuple_by_cols(newt, desc, 1, &updated, &now, &isnull);
}

/* BEFORE UPDATE trigger on jobs: GuardJobUpdate. */
Datum
mm_job_transition_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_job_transition_guard must be a BEFORE UPDATE row trigger")));
	return PointerGetDatum(GuardJobUpdate(td));
}

/*
 * AFTER INSERT statement trigger: one wake-up per statement, not per row (NOTIFY costs a commit
 * lock).
 */
Datum
mm_notify_work(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_notify_work must be called as a trigger")));
	Async_Notify(MM_CHANNEL_WORK, "");
	return PointerGetDatum(NULL);	/* a statement trigger returns a null pointer, not SQL NULL */
}

/*
 * Raises a job event on modelmine_events for gateways, which forward it to the job's owner and to
 * admins: {"event": "job:{id}:progress" or "job:{id}:status", "user_id": owner, "data": ...}.  Off
 * when the setting job_events is 0 (no gateway listens).  Within a transaction that already
 * notifies, it costs no extra commit lock.
 */
void
MmJobEvent(const char *event, int64 user_id, const char *data)
{
	if (MmSetting("job_events") == 0)
		return;
	Async_Notify(MM_CHANNEL_EVENTS,
				 psprintf("{\"event\":\"%s\",\"user_id\":" INT64_FORMAT ",\"data\":%s}", event, user_id,
						  data));
}

/*
 * The 1.0 schema's AFTER UPDATE OF status row trigger (jobs_notify_end), fired when a job's status
 * changes: job:{id}:status for gateways (MmJobEvent), and when the job reached COMPLETED, FAILED or
 * CANCELED the end on job:{id}:progress (1.0's watchers) and on modelmine_jobs_ended (today's).
 * 1.1 raises these once per statement instead, in batches (statusnotify.c).
 */
static Datum
NotifyJobStatus(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	t;
	char	   *id,
			   *status,
			   *previous,
			   *progress,
			   *node,
			   *attempts,
			   *owner,
			   *end;
	int64		job_id;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("%s must be an UPDATE row trigger", name)));
	desc = td->tg_relation->rd_att;
	t = td->tg_newtuple;
	id = SPI_getvalue(t, desc, SPI_fnumber(desc, "id"));
	status = SPI_getvalue(t, desc, SPI_fnumber(desc, "status"));
	previous = SPI_getvalue(td->tg_trigtuple, desc, SPI_fnumber(desc, "status"));
	progress = SPI_getvalue(t, desc, SPI_fnumber(desc, "progress"));
	node = SPI_getvalue(t, desc, SPI_fnumber(desc, "node_id"));
	attempts = SPI_getvalue(t, desc, SPI_fnumber(desc, "attempts"));
	owner = SPI_getvalue(t, desc, SPI_fnumber(desc, "user_id"));
	job_id = strtoll(id, NULL, 10);
	if (strcmp(status, previous) == 0)
		return PointerGetDatum(NULL);
	end = psprintf("{\"job_id\":%s,\"status\":\"%s\",\"progress\":%s}", id, status, progress);
	MmConnect();
	if (strcmp(status, MM_STATUS_COMPLETED) == 0 || strcmp(status, MM_STATUS_FAILED) == 0 ||
		strcmp(status, MM_STATUS_CANCELED) == 0)
	{
		Async_Notify(MmJobChannel(job_id), end);
		Async_Notify(MM_CHANNEL_JOBS_ENDED,
					 psprintf("{\"status\":\"%s\",\"job_ids\":[%s]}", status, id));
		MmJobEvent(MmJobChannel(job_id), strtoll(owner, NULL, 10), end);
	}
	MmJobEvent(psprintf(MM_EVENT_JOB_STATUS_FMT, (long long) job_id), strtoll(owner, NULL, 10),
			   psprintf("{\"job_id\":%s,\"status\":\"%s\",\"previous\":\"%s\",\"progress\":%s,"
						"\"node_id\":%s,\"attempts\":%s}",
						id, status, previous, progress, node ? node : "null", attempts));
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* The 1.0 end trigger, kept so a 1.0 schema works with this library until it is updated. */
Datum
mm_notify_job_end(PG_FUNCTION_ARGS)
{
	return NotifyJobStatus(fcinfo, "mm_notify_job_end");
}

/*
 * submit_job(title, config, description, stake, priority, start_by, finish_by, requirements)
 * -> the new job id (a 1.0 schema calls it with the first five).
 */
Datum
mm_submit_job(PG_FUNCTION_ARGS)
{
	MmSubmitArgs a;
	int64		id;

	memset(&a, 0, sizeof(a));
	a.title = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	a.config = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	a.description = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	a.stake_given = !PG_ARGISNULL(3);
	a.stake = a.stake_given ? PG_GETARG_INT64(3) : 0;
	a.priority_given = !PG_ARGISNULL(4);
	a.priority = a.priority_given ? PG_GETARG_INT32(4) : 0;
	a.start_by_given = PG_NARGS() > 5 && !PG_ARGISNULL(5);
	a.start_by = a.start_by_given ? PG_GETARG_TIMESTAMPTZ(5) : 0;
	a.finish_by_given = PG_NARGS() > 6 && !PG_ARGISNULL(6);
	a.finish_by = a.finish_by_given ? PG_GETARG_TIMESTAMPTZ(6) : 0;
	a.requirements = PG_NARGS() > 7 && !PG_ARGISNULL(7) ? PG_GETARG_JSONB_P(7) : NULL;
	MmConnect();
	id = SubmitJob(&a);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* cancel_job(job_id) -> the stake refunded. */
Datum
mm_cancel_job(PG_FUNCTION_ARGS)
{
	int64		refund;

	if (PG_ARGISNULL(0))
		BadParam("job_id is required", NULL, "Pass the id returned by modelmine.submit_job.");
	MmConnect();
	refund = CancelJob(PG_GETARG_INT64(0));
	SPI_finish();
	PG_RETURN_INT64(refund);
}
