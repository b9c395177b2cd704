/*
 * setuphint.c — the pieces of a hint for a setup problem (sqlstate.c tells which) that every client
 * words alike: the login role as SQL writes it, for the GRANT to run, and what to do about a
 * database without the extension.  The rest of a hint speaks the program's own language (an option,
 * a command).
 */
#include <stdio.h>
#include <string.h>

#include "modelmine/common.h"

/* A role name as SQL writes it: quoted (with '"' doubled) only when it must be; cut to fit. */
void
mm_sql_identifier(char *out, size_t outlen, const char *name)
{
	bool		plain = name[0] != '\0' && strchr("0123456789$", name[0]) == NULL;
	size_t		n = 0;

	for (const char *p = name; plain && *p; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '$';
	if (plain)
	{
		snprintf(out, outlen, "%s", name);
		return;
	}
	if (outlen < 3)
	{
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	out[n++] = '"';
	for (const char *p = name; *p && n + 3 < outlen; p++)
	{
		if (*p == '"')
			out[n++] = '"';
		out[n++] = *p;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/* MM_SETUP_NO_EXTENSION: the database the client reached has no modelmine schema. */
void
mm_no_extension_hint(char *out, size_t outlen, const char *dbname)
{
	snprintf(out, outlen, "database %s has no modelmine extension: "
			 "run CREATE EXTENSION modelmine CASCADE in it, or check --db (MODELMINE_DB)", dbname);
}
