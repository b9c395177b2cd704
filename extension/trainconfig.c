/*
 * trainconfig.c — the worker's config validator, compiled into the extension from the worker's own
 * source (issue 21): submit_job refuses a config that no worker would run with the very rules and
 * messages the workers use, not with a second copy of them.
 *
 * Plain C with Jansson, and no PostgreSQL header: both declare json_object() and json_typeof().
 * configcheck.c, the backend side, reaches Jansson only through the functions below, which take
 * JSON text and give back text, and scopes Jansson's allocator with mm_tc_begin/mm_tc_end.
 */
#include "../worker/train/config.c"
#include "../worker/train/util.c"

#include "trainconfig.h"

static json_malloc_t saved_malloc;
static json_free_t saved_free;

/* Points Jansson's allocation at alloc/release until mm_tc_end. */
void
mm_tc_begin(void *(*alloc) (size_t), void (*release) (void *))
{
	json_get_alloc_funcs(&saved_malloc, &saved_free);
	json_set_alloc_funcs(alloc, release);
}

/* Puts back the allocator mm_tc_begin found. */
void
mm_tc_end(void)
{
	json_set_alloc_funcs(saved_malloc, saved_free);
}

/* The strict check (mm_config_check) of a config's JSON text: 0, or -1 with the message in err. */
int
mm_tc_check(const char *text, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t	   *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	int			rc;

	if (root == NULL)
		return mm_err(err, errlen, "config cannot be read: %s", jerr.text);
	rc = mm_config_check(root, err, errlen);
	json_decref(root);
	return rc;
}

/* The config schema's version (MM_CONFIG_SCHEMA_VERSION), for messages. */
int
mm_tc_schema_version(void)
{
	return MM_CONFIG_SCHEMA_VERSION;
}

/* The schema's JSON text (mm_config_schema), allocated by Jansson's allocator; NULL if out of memory. */
char *
mm_tc_schema(void)
{
	json_t	   *schema = mm_config_schema();
	char	   *text = schema ? json_dumps(schema, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(schema);
	return text;
}
