/*
 * pgerr.c — what an error from the database means to the worker, from its SQLSTATE (and, where the
 * SQLSTATE alone is ambiguous, the server source file that raised it): try again later, the job is no
 * longer ours, or a setup problem the operator fixes with a GRANT or CREATE EXTENSION.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

/*
 * The database was busy, nothing happened, the same call can succeed later: lock_not_available (the
 * extension's "job N is busy" / "node N is busy" after its lock_timeout), serialization_failure and
 * deadlock_detected.
 */
bool
pg_transient(const char *sqlstate)
{
	return strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0;
}

/*
 * PostgreSQL's own permission check (aclchk.c: "permission denied for schema modelmine") as opposed to
 * the extension's 42501 "job N is not leased to this node", which carries a hint of its own.
 */
static bool
missing_grant(const char *sqlstate, const char *hint, const char *source_file)
{
	return strcmp(sqlstate, "42501") == 0 &&
		((source_file && strcmp(source_file, "aclchk.c") == 0) || hint == NULL);
}

/* A refusal of a report on a job that means the job is no longer this node's to work on. */
bool
pg_job_gone(const char *sqlstate, const char *hint, const char *source_file)
{
	if (missing_grant(sqlstate, hint, source_file))
		return false;			/* the node's setup, not the job: fixing the GRANT saves the job */
	return strcmp(sqlstate, "55000") == 0 || strcmp(sqlstate, "42501") == 0 || strcmp(sqlstate, "P0002") == 0;
}

/* A role name as it is written in SQL: quoted only when it must be. */
static void
sql_identifier(char *out, size_t outlen, const char *name)
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

/*
 * A hint for what PostgreSQL itself raises when the login role lacks the extension's group role or
 * the database lacks the extension (these come without a hint, or for 42883 with the parser's "add
 * explicit type casts", which never fits the worker's fixed calls). False when the error is not one
 * of them, or carries a hint of its own: the extension's hints are kept. needs: the group role the
 * call needs (modelmine_node, or modelmine_user to register).
 */
bool
pg_setup_hint(char *out, size_t outlen, const char *sqlstate, const char *message, const char *hint,
			  const char *source_file, const char *role, const char *needs, const char *dbname)
{
	bool		parser_hint = source_file != NULL && strcmp(source_file, "parse_func.c") == 0;
	bool		names_modelmine = message != NULL && strstr(message, "modelmine") != NULL;
	char		who[160];

	if (missing_grant(sqlstate, hint, source_file))
	{
		sql_identifier(who, sizeof(who), role);
		snprintf(out, outlen, "the login role %s needs membership in %s: GRANT %s TO %s%s", who, needs, needs, who,
				 strcmp(needs, "modelmine_node") == 0 ?
				 " (and modelmine_user for first-start registration with --operator-email)" :
				 " (and modelmine_node to work as a node)");
	}
	else if (hint != NULL && !parser_hint)
		return false;
	else if (strcmp(sqlstate, "3F000") == 0 && names_modelmine)
		snprintf(out, outlen, "database %s has no modelmine extension: run CREATE EXTENSION modelmine CASCADE in it, "
				 "or check --db (MODELMINE_DB)", dbname);
	else if (strcmp(sqlstate, "42883") == 0 && names_modelmine)
		snprintf(out, outlen, "is the modelmine extension in database %s installed and as new as this worker? "
				 "Run CREATE EXTENSION modelmine CASCADE (or ALTER EXTENSION modelmine UPDATE) there, "
				 "or check --db (MODELMINE_DB)", dbname);
	else
		return false;
	return true;
}
