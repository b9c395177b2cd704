/*
 * mmspi.c — prepared SPI statements and result accessors.
 *
 * Every statement the extension runs is a static MmPlan: fixed SQL with $n parameters, prepared on first
 * use and kept (SPI_keepplan) for the backend's life.  The plan cache revalidates kept plans after DDL,
 * so a DROP/CREATE EXTENSION in the same backend is safe.  No SQL text is ever built from input.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* Run a kept plan; returns the number of rows processed (results in SPI_tuptable). */
uint64
MmExec(MmPlan *plan, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc;

	if (plan->plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(plan->sql, plan->nargs, plan->argtypes);

		if (p == NULL)
			elog(ERROR, "modelmine: could not prepare \"%s\": %s", plan->sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "modelmine: could not keep plan for \"%s\"", plan->sql);
		plan->plan = p;
	}
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

/* An integer setting from modelmine.settings; a missing row is a broken install, not user error. */
int64
MmSetting(const char *name)
{
	static MmPlan plan = {"SELECT value FROM modelmine.settings WHERE name = $1", 1, {TEXTOID}};
	Datum		args[1] = {CStringGetTextDatum(name)};

	if (MmExec(&plan, args, NULL, true, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("modelmine setting \"%s\" is missing", name),
						errhint("Reinstall the extension, or restore the row in modelmine.settings.")));
	return MmInt64(0, 1, NULL);
}
