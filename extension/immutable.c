/*
 * immutable.c — the guard for rows that must never change (journal, ledger blocks) or never go
 * (accounts, which the journal names by id).
 *
 * A BEFORE UPDATE/DELETE row trigger and a BEFORE TRUNCATE statement trigger call this; it always
 * raises.  Without arguments it says the table is append-only; a trigger may pass the message and
 * the hint instead (accounts: "accounts are never removed").  The owner can still disable triggers
 * as a superuser, which is exactly what the tamper tests do: the ledger's hashes, not this trigger,
 * are what make tampering evident.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(mm_refuse_change);

/* Trigger refusing the change it is bound to: (message, hint) from its arguments, if given. */
Datum
mm_refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_refuse_change must be called as a trigger")));
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else
		op = "this change";
	if (trigdata->tg_trigger->tgnargs >= 2)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("%s", trigdata->tg_trigger->tgargs[0]),
						errdetail("%s on %s is refused for every role.", op,
								  RelationGetRelationName(trigdata->tg_relation)),
						errhint("%s", trigdata->tg_trigger->tgargs[1])));
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("%s is append-only", RelationGetRelationName(trigdata->tg_relation)),
					errdetail("%s is refused for every role.", op),
					errhint("Record a new, correcting entry instead of changing history.")));
	PG_RETURN_NULL();
}
