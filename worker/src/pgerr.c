/*
 * pgerr.c — the worker's wording of a hint for a setup problem (common/sqlstate.c recognises it):
 * the GRANT that gives the login role its group role, or the CREATE EXTENSION the database lacks.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

/*
 * Writes a hint for what PostgreSQL itself raises when the login role lacks the extension's group
 * role or the database lacks the extension.  False when the error is not one of them, or carries a
 * hint of its own: the extension's hints are kept.  needs: the group role the call needs
 * (MM_ROLE_NODE, or MM_ROLE_USER to register).
 */
bool
pg_setup_hint(char *out, size_t outlen, const char *sqlstate, const char *message, const char *hint,
			  const char *source_file, const char *role, const char *needs, const char *dbname)
{
	char		who[160];

	switch (mm_setup_problem(sqlstate, message, hint, source_file))
	{
		case MM_SETUP_NO_GRANT:
			mm_sql_identifier(who, sizeof(who), role);
			snprintf(out, outlen, "the login role %s needs membership in %s: GRANT %s TO %s%s",
					 who, needs, needs, who, strcmp(needs, MM_ROLE_NODE) == 0 ?
					 " (and " MM_ROLE_USER " for first-start registration with --operator-email)" :
					 " (and " MM_ROLE_NODE " to work as a node)");
			return true;
		case MM_SETUP_NO_EXTENSION:
			mm_no_extension_hint(out, outlen, dbname);
			return true;
		case MM_SETUP_OLD_EXTENSION:
			snprintf(out, outlen, "is the modelmine extension in database %s installed and "
					 "as new as this worker? Run CREATE EXTENSION modelmine CASCADE "
					 "(or ALTER EXTENSION modelmine UPDATE) there, or check --db (MODELMINE_DB)",
					 dbname);
			return true;
		case MM_SETUP_NONE:
			break;
	}
	return false;
}
