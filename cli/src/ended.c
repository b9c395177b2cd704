/*
 * ended.c — which jobs a modelmine_jobs_ended notification names: one statement's jobs that reached
 * COMPLETED, FAILED or CANCELED, {"status", "job_ids": [...]}.  watch and top wake only for theirs.
 */
#include "cli.h"

/* Whether the payload names any of the n ids (a payload that is not such JSON names none). */
bool
ended_names(const char *payload, const long long *ids, int n)
{
	json_t	   *p = json_loads(payload, 0, NULL);
	json_t	   *v;
	size_t		i;
	bool		named = false;

	json_array_foreach(json_object_get(p, "job_ids"), i, v)
		for (int k = 0; k < n && !named; k++)
			named = json_is_integer(v) && json_integer_value(v) == ids[k];
	json_decref(p);
	return named;
}
