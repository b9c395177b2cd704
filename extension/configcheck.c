/*
 * configcheck.c — checking a built-in trainer's config at submit (issue 21), and the schema the
 * check follows.
 *
 * The validator is the worker's (worker/train/config.c, compiled in by trainconfig.c) and uses
 * Jansson.  Jansson allocates through process-wide hooks, so for the length of one check they point
 * at a memory context of this backend made for it (allocation failure returns NULL to Jansson,
 * which reports it, instead of a longjmp through Jansson's frames), and are put back afterwards,
 * even on an error: no allocation escapes the backend's memory contexts, and nothing else in the
 * process that uses Jansson sees palloc.
 */
#include "modelmine.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "trainconfig.h"

PG_FUNCTION_INFO_V1(mm_config_schema_sql);

static MemoryContext json_cxt = NULL;

/* Jansson's malloc while a check runs: the check's context; NULL (not a longjmp) when out of memory. */
static void *
JsonAlloc(size_t size)
{
	return MemoryContextAllocExtended(json_cxt, size, MCXT_ALLOC_NO_OOM);
}

/* Jansson's free while a check runs. */
static void
JsonFree(void *ptr)
{
	if (ptr)
		pfree(ptr);
}

/* Work done with Jansson allocating in a context of its own. */
typedef void (*JsonWork) (void *arg);

/* Runs work(arg) with Jansson's allocator scoped to a fresh memory context (see the header). */
static void
WithJansson(JsonWork work, void *arg)
{
	json_cxt = AllocSetContextCreate(CurrentMemoryContext, "modelmine config check",
									 ALLOCSET_SMALL_SIZES);
	mm_tc_begin(JsonAlloc, JsonFree);
	PG_TRY();
	{
		work(arg);
	}
	PG_FINALLY();
	{
		mm_tc_end();
		MemoryContextDelete(json_cxt);
		json_cxt = NULL;
	}
	PG_END_TRY();
}

typedef struct Check
{
	const char *text;			/* the config's JSON text */
	char		err[512];		/* the validator's message, "" when the config is fine */
} Check;

/* Runs the strict check on the config text. */
static void
CheckWork(void *arg)
{
	Check	   *c = arg;

	if (mm_tc_check(c->text, c->err, sizeof(c->err)) == 0)
		c->err[0] = '\0';
}

/*
 * Refuses (22023, the validator's message) a config for a built-in trainer that no worker would run:
 * a key that is unknown or does not apply to the trainer, a value of the wrong type or out of range,
 * a dataset spec of the wrong shape.  Whether a dataset URL answers is not known before a node
 * fetches it, so it is not checked.  A config naming a runner is the runner's to read.  text is
 * the config's JSON text (the caller has it already).
 */
void
MmCheckTrainerConfig(Jsonb *config, const char *text)
{
	JsonbValue	v;
	Check		c;

	if (getKeyJsonValueFromContainer(&config->root, "runner", 6, &v) != NULL)
		return;
	c.text = text;
	c.err[0] = '\0';
	WithJansson(CheckWork, &c);
	if (c.err[0] != '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid config: %s", c.err),
						errdetail("The workers' validator refuses it (config schema version %d): "
								  "the job was not submitted and nothing was staked.",
								  mm_tc_schema_version()),
						errhint("SELECT modelmine.config_schema() lists the keys each trainer takes "
								"(docs/CONFIG.md explains them).")));
}

typedef struct Schema
{
	char	   *text;			/* palloc'd in into */
	MemoryContext into;
} Schema;

/* The schema's JSON text, copied out of Jansson's context. */
static void
SchemaWork(void *arg)
{
	Schema	   *s = arg;
	char	   *text = mm_tc_schema();

	if (text == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory building the config schema")));
	s->text = MemoryContextStrdup(s->into, text);
}

/* config_schema() -> the keys each built-in trainer takes, with the schema's version. */
Datum
mm_config_schema_sql(PG_FUNCTION_ARGS)
{
	Schema		s = {NULL, CurrentMemoryContext};

	WithJansson(SchemaWork, &s);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.text)));
}
