/*
 * mmspi.c — prepared SPI statements and result accessors; the schema-version check every entry
 * point makes; statements that may wait on a row lock (lock_timeout backstop).
 *
 * Every statement the extension runs is a static MmPlan: fixed SQL with $n parameters, prepared on
 * first use and kept (SPI_keepplan) for the backend's life.  The plan cache revalidates kept plans
 * after DDL, so a DROP/CREATE EXTENSION in the same backend is safe.  No SQL text is ever built
 * from input.
 */
#include "modelmine.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/rel.h"

/* Sets a setting until the GUC nest level the caller opened is closed (AtEOXact_GUC). */
static void
SetAtNestLevel(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
							 false);
}

/*
 * Makes sure a probe statement's kept plan (MmPlan.probe) exists and is current, planning it with
 * the seq, bitmap, hash and merge paths and JIT disabled if the plan cache has to (first use, or an
 * ANALYZE or DDL made the kept plan stale).  Only the planning sees these settings: the statement
 * then runs, and the statements its triggers plan, with the session's.  The locks taken here are
 * held, so the execution that follows finds the plan still valid.
 */
static void
PlanAsProbe(SPIPlanPtr p)
{
	/* jit too: a disabled path left as the only one (a scan of nodes) adds 10^10 to the cost */
	static const char *const paths[] = {"enable_seqscan", "enable_bitmapscan", "enable_hashjoin",
	"enable_mergejoin", "jit"};
	int			nest = NewGUCNestLevel();
	CachedPlan *cplan;

	for (int i = 0; i < lengthof(paths); i++)
		SetAtNestLevel(paths[i], "off");
	cplan = SPI_plan_get_cached_plan(p);
	if (cplan)
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	AtEOXact_GUC(true, nest);
}

/* Run a kept plan; returns the number of rows processed (results in SPI_tuptable). */
uint64
MmExec(MmPlan *plan, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc;

	if (plan->plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(plan->sql, plan->nargs, plan->argtypes,
										   plan->generic ? CURSOR_OPT_GENERIC_PLAN : 0);

		if (p == NULL)
			elog(ERROR, "modelmine: could not prepare \"%s\": %s", plan->sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "modelmine: could not keep plan for \"%s\"", plan->sql);
		plan->plan = p;
	}
	if (plan->probe)
		PlanAsProbe(plan->plan);
	/* a row limit would stop DML early and skip its AFTER STATEMENT triggers: limit reads only */
	rc = SPI_execute_plan(plan->plan, values, nulls, read_only, read_only ? count : 0);
	if (rc < 0)
		elog(ERROR, "modelmine: \"%s\" failed: %s", plan->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column col (1-based) of result row as int64; any integer type, NULL reported through isnull. */
int64
MmInt64(uint64 row, int col, bool *isnull)
{
	bool		null;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &null);
	Oid			typ = SPI_gettypeid(SPI_tuptable->tupdesc, col);

	if (isnull)
		*isnull = null;
	if (null)
		return 0;
	switch (typ)
	{
		case INT8OID:
			return DatumGetInt64(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT2OID:
			return DatumGetInt16(d);
		case BOOLOID:
			return DatumGetBool(d) ? 1 : 0;
		default:
			elog(ERROR, "modelmine: column %d has type %u, expected an integer", col, typ);
	}
	return 0;					/* keep compiler quiet */
}

/* Column col of result row as a C string in the current memory context, or NULL. */
char *
MmText(uint64 row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* ---------------------------------------------------------------------------------------------- */
/* Schema version                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

static LocalTransactionId version_checked_lxid = InvalidLocalTransactionId;
static Oid	schema_owner = InvalidOid;

/* The installed modelmine version as text (NULL when not installed here); its owner in *owner. */
static char *
InstalledVersion(Oid *owner)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("modelmine"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel),
									 &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
		if (owner)
			*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * True when the installed schema is the one this library implements.  Checked once per transaction:
 * a library newer than the schema (a package upgraded before ALTER EXTENSION UPDATE) must not run
 * its statements against tables shaped for another version.
 */
bool
MmSchemaCurrent(void)
{
	char	   *version;
	Oid			owner = InvalidOid;

	if (version_checked_lxid == MyProc->lxid)
		return true;
	version = InstalledVersion(&owner);
	if (version == NULL || strcmp(version, MM_SCHEMA_VERSION) != 0)
		return false;
	schema_owner = owner;
	version_checked_lxid = MyProc->lxid;
	return true;
}

/* The extension's owner, whom its SECURITY DEFINER functions run as (after MmSchemaCurrent). */
Oid
MmSchemaOwner(void)
{
	Assert(version_checked_lxid == MyProc->lxid);
	return schema_owner;
}

/* Every entry point connects here: the schema version check, then SPI. */
void
MmConnect(void)
{
	if (!MmSchemaCurrent())
	{
		char	   *version = InstalledVersion(NULL);

		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("modelmine schema %s does not match its library %s",
							   version ? version : "(none)", MM_SCHEMA_VERSION),
						errdetail("The modelmine library was upgraded but this database still has "
								  "version %s of the extension.",
								  version ? version : "(none)"),
						errhint("Run ALTER EXTENSION modelmine UPDATE in this database.")));
	}
	SPI_connect();
}

/*
 * Sets the search_path every definer function of the extension has (pg_catalog, pg_temp) for what
 * runs next outside such a function (commit-time housekeeping, a trigger's own statements), so the
 * caller's path, which could put its own operators first, does not apply.  Returns the GUC nest
 * level to hand to MmRestoreSearchPath.
 */
int
MmFixSearchPath(void)
{
	int			nest = NewGUCNestLevel();

	SetAtNestLevel("search_path", "pg_catalog, pg_temp");
	return nest;
}

/* Puts back the search_path MmFixSearchPath replaced. */
void
MmRestoreSearchPath(int nest)
{
	AtEOXact_GUC(true, nest);
}

/* ---------------------------------------------------------------------------------------------- */
/* Statements that may wait on a row lock                                                         */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Runs a statement that can wait on a row lock some other transaction holds (an owner and a node on
 * one job, two sessions of one user, a commit-time fold), with lock_timeout set to the
 * lock_timeout_ms setting: the backstop that keeps anyone's open transaction from holding a call up
 * for long.  A timeout is re-raised as 55P03 naming the busy object ("job 12 is busy").
 */
uint64
MmExecWaiting(MmPlan *plan, Datum *values, const char *nulls, long count, const char *object,
			  int64 id)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64		timeout_ms = MmSetting("lock_timeout_ms");
	int			nest = NewGUCNestLevel();
	uint64		n = 0;

	SetAtNestLevel("lock_timeout", psprintf(INT64_FORMAT, timeout_ms));
	PG_TRY();
	{
		n = MmExec(plan, values, nulls, false, count);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		e->message = id ? psprintf("%s " INT64_FORMAT " is busy", object, id) :
			psprintf("%s is busy", object);
		e->detail = psprintf("Another transaction has held it for more than " INT64_FORMAT
							 " ms (setting lock_timeout_ms).", timeout_ms);
		e->hint = pstrdup("Try again in a moment; if it persists, end your own open transactions "
						  "that use it.");
		ReThrowError(e);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	return n;
}
