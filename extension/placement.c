/*
 * placement.c — resource-aware placement: what a job requires and what a node offers.
 *
 * Both sides use one document shape: {"memory_mb": N, "cores": N, "labels": ["gpu", ...]}.  A node
 * sends it inside its capabilities (register_node, set_capabilities); a job passes it as
 * submit_job's requirements.  claim_jobs (lease.c) counts what the node's running jobs hold against
 * what it offers; submit refuses a job no registered node could ever run (MM003), so nothing waits
 * forever for a node that does not exist.
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

static const char *const resource_keys[] = {"memory_mb", "cores", "labels"};

/* Whether key (len bytes) is one of the resource keys. */
bool
MmResourceKey(const char *key, int len)
{
	for (int k = 0; k < lengthof(resource_keys); k++)
		if (len == (int) strlen(resource_keys[k]) && memcmp(key, resource_keys[k], len) == 0)
			return true;
	return false;
}

/* field.key as a whole number from 0 to max (0 when absent or null); raises 22023 otherwise. */
static int32
WholeNumber(Jsonb *doc, const char *field, const char *key, int32 max)
{
	JsonbValue	v;
	double		n;

	if (getKeyJsonValueFromContainer(&doc->root, key, strlen(key), &v) == NULL || v.type == jbvNull)
		return 0;
	if (v.type != jbvNumeric)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s.%s must be a number", field, key),
						errhint("Pass a whole number from 0 to %d.", max)));
	n = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v.val.numeric)));
	if (!(n >= 0 && n <= max) || n != floor(n))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid %s.%s", field, key),
						errdetail("Got %.15g.", n),
						errhint("Pass a whole number from 0 to %d.", max)));
	return (int32) n;
}

/* field.labels: an array of at most MM_MAX_LABELS names, as text[] (sorted, no duplicates). */
static Datum
Labels(Jsonb *doc, const char *field, int *nlabels)
{
	JsonbValue	v,
				e;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	Datum	   *d = palloc(sizeof(Datum) * (MM_MAX_LABELS + 1));
	int			n = 0;

	*nlabels = 0;
	if (getKeyJsonValueFromContainer(&doc->root, "labels", 6, &v) != NULL && v.type != jbvNull)
	{
		if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("%s.labels must be an array of names", field),
							errhint("Pass e.g. [\"gpu\"].")));
		it = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (e.type != jbvString || !MmValidName(e.val.string.val, e.val.string.len))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("invalid name in %s.labels", field),
								errdetail("Element %d is not a name of 1 to 64 characters a-z, "
										  "0-9, _, - or . starting with a letter or digit.", n + 1),
								errhint("Pass labels such as \"gpu\" or \"avx512\".")));
			if (n >= MM_MAX_LABELS)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("too many %s.labels", field),
								errhint("Pass at most %d labels.", MM_MAX_LABELS)));
			d[n++] = PointerGetDatum(cstring_to_text_with_len(e.val.string.val,
															  e.val.string.len));
		}
	}
	*nlabels = n;
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Reads memory_mb, cores and labels of a resource document (named field in errors); absent keys
 * are 0 and no labels.  Other keys are the caller's to check.
 */
void
MmParseResources(Jsonb *doc, const char *field, MmResources *out)
{
	if (doc == NULL)
	{
		out->memory_mb = out->cores = out->nlabels = 0;
		out->labels = PointerGetDatum(construct_empty_array(TEXTOID));
		return;
	}
	out->memory_mb = WholeNumber(doc, field, "memory_mb", MM_MAX_MEMORY_MB);
	out->cores = WholeNumber(doc, field, "cores", MM_MAX_CORES);
	out->labels = Labels(doc, field, &out->nlabels);
}

/*
 * Refuses (MM003) a job whose requirements no registered node meets together with its trainer or
 * runner, naming the first requirement no node meets at all (or the combination).  Nothing has been
 * written yet when it raises.
 */
void
MmCheckPlaceable(const MmResources *need, const char *requirement)
{
	static MmPlan offers = {
		"SELECT COALESCE(pg_catalog.bool_or(n.memory_mb >= $1 AND n.cores >= $2 AND n.labels @> $3 "
		"                                   AND $4 = ANY (n.requirements)), false), "
		"       COALESCE(pg_catalog.max(n.memory_mb), 0), COALESCE(pg_catalog.max(n.cores), 0), "
		"       COALESCE(pg_catalog.bool_or(n.labels @> $3), false), "
		"       COALESCE(pg_catalog.bool_or($4 = ANY (n.requirements)), false) "
		"  FROM modelmine.nodes n", 4, {INT4OID, INT4OID, TEXTARRAYOID, TEXTOID}};
	Datum		args[4];
	const char *hint = "Ask for less, or wait for an operator to register a node that offers it; "
		"nothing was staked.";

	if (need->memory_mb == 0 && need->cores == 0 && need->nlabels == 0)
		return;					/* no requirements: placed as before, anywhere it may run */
	args[0] = Int32GetDatum(need->memory_mb);
	args[1] = Int32GetDatum(need->cores);
	args[2] = need->labels;
	args[3] = CStringGetTextDatum(requirement);
	MmExec(&offers, args, NULL, true, 1);
	if (MmInt64(0, 1, NULL))
		return;
	if (MmInt64(0, 2, NULL) < need->memory_mb)
		ereport(ERROR, (errcode(ERRCODE_MM_UNPLACEABLE),
						errmsg("no node offers %d MB of memory (requirements.memory_mb)",
							   need->memory_mb),
						errdetail("The most any registered node offers is " INT64_FORMAT " MB.",
								  MmInt64(0, 2, NULL)),
						errhint("%s", hint)));
	if (MmInt64(0, 3, NULL) < need->cores)
		ereport(ERROR, (errcode(ERRCODE_MM_UNPLACEABLE),
						errmsg("no node offers %d cores (requirements.cores)", need->cores),
						errdetail("The most any registered node offers is " INT64_FORMAT " cores.",
								  MmInt64(0, 3, NULL)),
						errhint("%s", hint)));
	if (!MmInt64(0, 4, NULL))
		ereport(ERROR, (errcode(ERRCODE_MM_UNPLACEABLE),
						errmsg("no node offers all of the labels %s (requirements.labels)",
							   TextDatumGetCString(DirectFunctionCall1(array_to_json,
																	   need->labels))),
						errhint("%s", hint)));
	ereport(ERROR, (errcode(ERRCODE_MM_UNPLACEABLE),
					errmsg("no node offers %s with these requirements", requirement),
					errdetail("%s", MmInt64(0, 5, NULL)
							  ? "Nodes offer it, and nodes offer the requirements, but none both."
							  : "No registered node advertises it."),
					errhint("%s", hint)));
}
