/*
 * refs.c — what jobs and replicas name, checked once per statement (issue 15).
 *
 * Foreign keys check each row as it is written and share-lock the row it names: submit_jobs's
 * thousand jobs of one user locked that user's row a thousand times (a third of the insert's time),
 * and each claimed job paid three checks (its node, the replica's job, the replica's node and
 * operator).  These statement triggers check the distinct ids a statement writes instead, an index
 * probe each, without locks, and raise foreign_key_violation as the keys did.
 *
 * Checking without a lock is enough because what is named stays (_refuse_change triggers): users
 * and jobs are never removed and keep their ids, a job keeps its user (the transition guard), a
 * node its id and operator, a replica its job, node and operator.  A node can be removed only while
 * nothing names it (mm_node_unnamed below); a node that claims was registered with an account, which
 * names it by a foreign key and is never removed, so no delete can race a claim.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(mm_refs_exist);
PG_FUNCTION_INFO_V1(mm_node_unnamed);

/* The first id a statement's new jobs name that is missing: kind ('user', 'node'), id, operator. */
#define JOBS_NODE_MISSING \
	"SELECT 'node', d.id, NULL::bigint " \
	"  FROM (SELECT DISTINCT node_id AS id FROM new_jobs WHERE node_id IS NOT NULL) d " \
	" WHERE NOT EXISTS (SELECT 1 FROM modelmine.nodes n WHERE n.id = d.id) "

/* Raises 23503 for the missing row the check found (row 0 of SPI_tuptable). */
static void
Missing(const char *table)
{
	char	   *kind = MmText(0, 1);
	int64		id = MmInt64(0, 2, NULL);
	bool		no_operator;
	int64		operator_id = MmInt64(0, 3, &no_operator);

	if (!no_operator)
		ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
						errmsg("%s row names node " INT64_FORMAT " of operator " INT64_FORMAT
							   ", which is not a node of that operator", table, id, operator_id),
						errdetail("Every (node_id, operator_id) must be a row of modelmine.nodes."),
						errhint("Replicas are written by the extension's claims; report this as a bug.")));
	ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					errmsg("%s row names %s " INT64_FORMAT ", which does not exist", table, kind, id),
					errdetail("Every %s_id must be a row of modelmine.%ss.", kind, kind),
					errhint("Jobs and replicas are written by the extension's functions; report this "
							"as a bug.")));
}

/* Runs the check for the statement's transition table; raises on the first missing row. */
static void
CheckStatement(TriggerData *td)
{
	/* probe plans: one index probe per distinct id, however many rows and whatever the stats */
	static MmPlan jobs_inserted = {
		"SELECT 'user', d.id, NULL::bigint "
		"  FROM (SELECT DISTINCT user_id AS id FROM new_jobs) d "
		" WHERE NOT EXISTS (SELECT 1 FROM modelmine.users u WHERE u.id = d.id) "
		"UNION ALL " JOBS_NODE_MISSING "LIMIT 1", 0, {0}, MM_PROBE};
	/* a job's user never changes (the transition guard); its node does, at every claim */
	static MmPlan jobs_updated = {JOBS_NODE_MISSING "LIMIT 1", 0, {0}, MM_PROBE};
	static MmPlan replicas_inserted = {
		"SELECT 'job', d.id, NULL::bigint "
		"  FROM (SELECT DISTINCT job_id AS id FROM new_replicas) d "
		" WHERE NOT EXISTS (SELECT 1 FROM modelmine.jobs j WHERE j.id = d.id) "
		"UNION ALL "
		"SELECT 'node', d.node_id, d.operator_id "
		"  FROM (SELECT DISTINCT node_id, operator_id FROM new_replicas) d "
		" WHERE NOT EXISTS (SELECT 1 FROM modelmine.nodes n "
		"                    WHERE n.id = d.node_id AND n.operator_id = d.operator_id) "
		"LIMIT 1", 0, {0}, MM_PROBE};
	const char *table = RelationGetRelationName(td->tg_relation);
	MmPlan	   *check;

	if (strcmp(table, "jobs") == 0)
		check = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? &jobs_updated : &jobs_inserted;
	else if (strcmp(table, "job_replicas") == 0 && TRIGGER_FIRED_BY_INSERT(td->tg_event))
		check = &replicas_inserted;
	else
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_refs_exist is not defined for %s of %s",
							   TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE" : "INSERT", table),
						errhint("Bind it AFTER INSERT or UPDATE ON modelmine.jobs REFERENCING NEW TABLE "
								"AS new_jobs, or AFTER INSERT ON modelmine.job_replicas REFERENCING "
								"NEW TABLE AS new_replicas, FOR EACH STATEMENT.")));
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "modelmine: could not read the transition table of %s", table);
	if (MmExec(check, NULL, NULL, false, 1) == 1)
		Missing(table);
}

/* Statement trigger: refuses new jobs or replicas naming a user, node or job that is not there. */
Datum
mm_refs_exist(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) || td->tg_newtable == NULL)
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_refs_exist must be an AFTER statement trigger with a NEW TABLE")));
	MmConnect();
	CheckStatement(td);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* Whether a job or a replica names node_id (a scan where no index has the node: rare, admin only). */
static bool
NodeNamed(int64 node_id)
{
	static MmPlan named = {
		"SELECT EXISTS (SELECT 1 FROM modelmine.job_replicas r WHERE r.node_id = $1) "
		"    OR EXISTS (SELECT 1 FROM modelmine.jobs j WHERE j.node_id = $1)", 1, {INT8OID}};
	Datum		arg = Int64GetDatum(node_id);

	return MmExec(&named, &arg, NULL, false, 1) == 1 && MmInt64(0, 1, NULL) != 0;
}

/* Row trigger BEFORE DELETE ON nodes: refuses removing a node a job or a replica names. */
Datum
mm_node_unnamed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		isnull;
	int64		node_id;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_node_unnamed must be a BEFORE DELETE row trigger")));
	node_id = DatumGetInt64(SPI_getbinval(td->tg_trigtuple, RelationGetDescr(td->tg_relation),
										  SPI_fnumber(RelationGetDescr(td->tg_relation), "id"),
										  &isnull));
	MmConnect();
	if (!isnull && NodeNamed(node_id))
		ereport(ERROR, (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
						errmsg("node " INT64_FORMAT " is named by jobs or replicas", node_id),
						errdetail("A node that ever held a job stays: the jobs, replicas and journal "
								  "name it."),
						errhint("Stop its worker, or set it to maintenance with set_node_maintenance.")));
	SPI_finish();
	return PointerGetDatum(td->tg_trigtuple);
}
