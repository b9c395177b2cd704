/*
 * statusnotify.c — the NOTIFYs a statement's job status changes raise, a few per statement.
 *
 * A row trigger used to raise them per job: job:{id}:status (and at an end job:{id}:progress) on
 * modelmine_events for gateways, and the end on the job's own channel for watchers.  A claim of 20
 * jobs queued 20 notifications and a settlement of 20 sixty, each written to the notification
 * queue under its lock and read back by every listening backend (the workers', the gateway's):
 * about 8% of a drain of noop jobs.  Now the statistics statement trigger (stats.c) calls this once
 * per UPDATE, and the changes go out in batches:
 *
 *   modelmine_events      {"events": [{"event", "user_id", "data"}, ...]}, the events the row
 *                         trigger raised (an end's progress event before its status event), at
 *                         most EVENTS_PER_NOTIFY a payload; only while the setting job_events is 1;
 *   modelmine_jobs_ended  {"status", "job_ids": [...]}, the jobs that reached COMPLETED, FAILED or
 *                         CANCELED, at most ENDED_PER_NOTIFY ids a payload.
 *
 * The transition tables are read here directly, in the order the statement changed the rows (the
 * old and new tables hold each row's versions at the same position): a query joining them cost
 * 0.6 ms a statement, more than the notifications it saved.  Payloads hold only numbers and status
 * labels, and stay well under PostgreSQL's 8000-byte limit with 19-digit ids.
 */
#include "modelmine.h"

#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

/* an event is at most ~300 bytes with 19-digit ids, an id 20 (the payload limit is 8000) */
#define EVENTS_PER_NOTIFY 24
#define ENDED_PER_NOTIFY 300

/* A payload being filled: its text and how many items it holds. */
typedef struct Batch
{
	StringInfoData text;
	int			items;
} Batch;

/* The columns read, by attribute number, with their types' output functions looked up once. */
typedef struct Cols
{
	AttrNumber	id,
				user_id,
				status,
				progress,
				node_id,
				attempts;
	FmgrInfo   *out;			/* per attribute, looked up at its first value */
	bool	   *looked_up;
} Cols;

/* Raises a batch's payload on channel, closed by close, and empties the batch. */
static void
Flush(Batch *b, const char *channel, const char *close)
{
	if (b->items == 0)
		return;
	appendStringInfoString(&b->text, close);
	Async_Notify(channel, b->text.data);
	resetStringInfo(&b->text);
	b->items = 0;
}

/*
 * Column attr of slot as text ("null" when NULL), by the type's output function, looked up at the
 * column's first value in the statement, not at every value (eight a changed row).
 */
static char *
ColText(TupleTableSlot *slot, AttrNumber attr, Cols *c)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attr, &isnull);

	if (isnull)
		return "null";
	if (!c->looked_up[attr - 1])
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(TupleDescAttr(slot->tts_tupleDescriptor, attr - 1)->atttypid, &out,
						  &varlena);
		fmgr_info(out, &c->out[attr - 1]);
		c->looked_up[attr - 1] = true;
	}
	return OutputFunctionCall(&c->out[attr - 1], d);
}

/* Adds row n's events (its status changed from previous) to the events batch. */
static void
AddEvents(Batch *ev, TupleTableSlot *n, Cols *c, const char *previous, bool ended)
{
	char	   *id = ColText(n, c->id, c),
			   *user_id = ColText(n, c->user_id, c),
			   *status = ColText(n, c->status, c),
			   *progress = ColText(n, c->progress, c);

	if (ev->items + 2 > EVENTS_PER_NOTIFY)
		Flush(ev, MM_CHANNEL_EVENTS, "]}");
	if (ev->items == 0)
		appendStringInfoString(&ev->text, "{\"events\":[");
	if (ended)
		appendStringInfo(&ev->text,
						 "%s{\"event\":\"job:%s:progress\",\"user_id\":%s,\"data\":{\"job_id\":%s,"
						 "\"status\":\"%s\",\"progress\":%s}}",
						 ev->items++ ? "," : "", id, user_id, id, status, progress);
	appendStringInfo(&ev->text,
					 "%s{\"event\":\"job:%s:status\",\"user_id\":%s,\"data\":{\"job_id\":%s,"
					 "\"status\":\"%s\",\"previous\":\"%s\",\"progress\":%s,\"node_id\":%s,"
					 "\"attempts\":%s}}",
					 ev->items++ ? "," : "", id, user_id, id, status, previous, progress,
					 ColText(n, c->node_id, c), ColText(n, c->attempts, c));
}

/* Adds a job that reached status (one of the ends, in order) to that status's batch. */
static void
AddEnded(Batch *ended, const char *status, const char *id)
{
	static const char *const ends[] = {MM_STATUS_COMPLETED, MM_STATUS_FAILED, MM_STATUS_CANCELED};

	for (int i = 0; i < lengthof(ends); i++)
	{
		if (strcmp(status, ends[i]) != 0)
			continue;
		if (ended[i].items == ENDED_PER_NOTIFY)
			Flush(&ended[i], MM_CHANNEL_JOBS_ENDED, "]}");
		if (ended[i].items == 0)
			appendStringInfo(&ended[i].text, "{\"status\":\"%s\",\"job_ids\":[", status);
		appendStringInfo(&ended[i].text, "%s%s", ended[i].items++ ? "," : "", id);
	}
}

/* Positions a fresh read pointer of a transition table at its start (others may be reading it). */
void
MmRewindTransitionTable(Tuplestorestate *ts)
{
	tuplestore_select_read_pointer(ts, tuplestore_alloc_read_pointer(ts, 0));
	tuplestore_rescan(ts);
}

/*
 * Raises the NOTIFYs of the status changes of the UPDATE statement td fired for (it has both
 * transition tables); they are delivered at commit, and not at all if the transaction rolls back.
 */
void
MmNotifyStatusChanges(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	TupleTableSlot *o = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple),
			   *n = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	Cols	   *c = palloc0(sizeof(Cols));
	bool		events = MmSetting("job_events") != 0;
	Batch		ev,
				ended[3];

	if (td->tg_oldtable == NULL || td->tg_newtable == NULL)
		elog(ERROR, "modelmine: the status notifications need both transition tables");
	c->out = palloc0(sizeof(FmgrInfo) * desc->natts);
	c->looked_up = palloc0(sizeof(bool) * desc->natts);
	c->id = SPI_fnumber(desc, "id");
	c->user_id = SPI_fnumber(desc, "user_id");
	c->status = SPI_fnumber(desc, "status");
	c->progress = SPI_fnumber(desc, "progress");
	c->node_id = SPI_fnumber(desc, "node_id");
	c->attempts = SPI_fnumber(desc, "attempts");
	initStringInfo(&ev.text);
	ev.items = 0;
	for (int i = 0; i < lengthof(ended); i++)
	{
		initStringInfo(&ended[i].text);
		ended[i].items = 0;
	}
	MmRewindTransitionTable(td->tg_oldtable);
	MmRewindTransitionTable(td->tg_newtable);
	while (tuplestore_gettupleslot(td->tg_oldtable, true, false, o) &&
		   tuplestore_gettupleslot(td->tg_newtable, true, false, n))
	{
		bool		isnull;
		char	   *previous,
				   *status;
		bool		is_end;

		/* a status is an enum's OID: equal when unchanged, no text needed (progress reports) */
		if (slot_getattr(o, c->status, &isnull) == slot_getattr(n, c->status, &isnull))
			continue;
		previous = ColText(o, c->status, c);
		status = ColText(n, c->status, c);
		is_end = strcmp(status, MM_STATUS_COMPLETED) == 0 || strcmp(status, MM_STATUS_FAILED) == 0 ||
			strcmp(status, MM_STATUS_CANCELED) == 0;
		if (events)
			AddEvents(&ev, n, c, previous, is_end);
		if (is_end)
			AddEnded(ended, status, ColText(n, c->id, c));
	}
	Flush(&ev, MM_CHANNEL_EVENTS, "]}");
	for (int i = 0; i < lengthof(ended); i++)
		Flush(&ended[i], MM_CHANNEL_JOBS_ENDED, "]}");
	ExecDropSingleTupleTableSlot(o);
	ExecDropSingleTupleTableSlot(n);
}
