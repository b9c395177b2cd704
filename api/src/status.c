/*
 * status.c — the HTTP status for an error's SQLSTATE: PostgREST's table (docs/API.md lists it),
 * with the deviations ModelMine documents for its own codes:
 *   P0002 no_data_found ("job 7 not found")        -> 404, where PostgREST answers 500
 *   55P03 lock_not_available ("job 7 is busy")     -> 503 with Retry-After, where PostgREST answers 500
 *   MM001 insufficient balance, MM002 supply cap   -> 402 and 409, where PostgREST answers 400
 *   MM003 no node offers what a job requires       -> 422, where PostgREST answers 400
 *   54000 program_limit_exceeded (too many nodes)  -> 409, where PostgREST answers 500
 *   55000 object_not_in_prerequisite_state         -> 409 (the job is already settled), PostgREST 500
 */
#include <string.h>

#include "api.h"

/* Whether s starts with prefix. */
static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The status for a SQLSTATE; anon says whether the request ran without a token (42501 -> 401). */
int
status_for_sqlstate(const char *s, bool anon)
{
	static const struct
	{
		const char *code;
		int			status;
	}			exact[] = {
		{MM_SQLSTATE_NOT_FOUND, 404}, {MM_SQLSTATE_BUSY, 503}, {MM_SQLSTATE_INSUFFICIENT_BALANCE, 402},
		{MM_SQLSTATE_SUPPLY_CAP, 409}, {MM_SQLSTATE_UNPLACEABLE, 422}, {MM_SQLSTATE_LIMIT, 409}, {MM_SQLSTATE_WRONG_STATE, 409},
		{"21000", 500}, {"23503", 409}, {"23505", 409}, {"25006", 405}, {"42883", 404},
		{"42P01", 404}, {"42P17", 500}, {"53400", 500}, {"57P01", 503}, {"P0001", 400},
	};

	if (s == NULL || s[0] == '\0')
		return 500;
	if (strcmp(s, "42501") == 0)
		return anon ? 401 : 403;
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(s, exact[i].code) == 0)
			return exact[i].status;
	if (starts(s, "PT") && strlen(s) == 5)
	{
		int			v = (s[2] - '0') * 100 + (s[3] - '0') * 10 + (s[4] - '0');

		return v >= 100 && v <= 599 ? v : 500;
	}
	if (starts(s, "08"))
		return 503;
	if (starts(s, "09") || starts(s, "2D") || starts(s, "38") || starts(s, "39") || starts(s, "3B") ||
		starts(s, "40") || starts(s, "25") || starts(s, "54") || starts(s, "55") || starts(s, "57") ||
		starts(s, "58") || starts(s, "F0") || starts(s, "HV") || starts(s, "XX") || starts(s, "P0"))
		return 500;
	if (starts(s, "0L") || starts(s, "0P") || starts(s, "28"))
		return 403;
	if (starts(s, "53"))
		return 503;
	return 400;					/* 22*, 23* and anything else */
}
