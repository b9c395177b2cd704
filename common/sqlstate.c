/*
 * sqlstate.c — what an error's SQLSTATE means to a client of the extension (and, where the SQLSTATE
 * alone is ambiguous, which server source file raised it): the connection is gone, the database was
 * busy and the call may simply be repeated, a job is no longer the node's, or a setup problem the
 * operator fixes with a GRANT or CREATE EXTENSION.  The codes are the contract's
 * (modelmine/protocol.h); what each program then does or prints is its own.
 */
#include <string.h>

#include "modelmine/common.h"
#include "modelmine/protocol.h"

/* True when s starts with class (a SQLSTATE class such as "08", or a prefix such as "57P"). */
static bool
in_class(const char *s, const char *class)
{
	return strncmp(s, class, strlen(class)) == 0;
}

/*
 * The server says the connection is gone or going: connection_exception (class 08) or an admin or
 * crash shutdown (57P01..57P03).  An empty SQLSTATE (libpq's own failure) is the caller's to judge.
 */
bool
mm_sqlstate_lost(const char *sqlstate)
{
	return sqlstate[0] != '\0' && (in_class(sqlstate, MM_SQLSTATE_CLASS_CONNECTION) ||
								   in_class(sqlstate, MM_SQLSTATE_CLASS_SHUTDOWN));
}

/*
 * The database was busy, nothing happened, the same call can succeed later: lock_not_available (the
 * extension's "job N is busy" / "node N is busy" after its lock_timeout), serialization_failure and
 * deadlock_detected.
 */
bool
mm_sqlstate_busy(const char *sqlstate)
{
	return strcmp(sqlstate, MM_SQLSTATE_BUSY) == 0 ||
		strcmp(sqlstate, MM_SQLSTATE_SERIALIZATION) == 0 ||
		strcmp(sqlstate, MM_SQLSTATE_DEADLOCK) == 0;
}

/*
 * PostgreSQL's own permission check (aclchk.c: "permission denied for schema modelmine"), as
 * opposed to the extension's 42501s ("job N is not leased to this node"), which carry a hint of
 * their own.
 */
bool
mm_missing_grant(const char *sqlstate, const char *hint, const char *source_file)
{
	return strcmp(sqlstate, MM_SQLSTATE_FORBIDDEN) == 0 &&
		((source_file && strcmp(source_file, "aclchk.c") == 0) || hint == NULL);
}

/* A refusal of a report on a job that means the job is no longer this node's to work on. */
bool
mm_job_gone(const char *sqlstate, const char *hint, const char *source_file)
{
	if (mm_missing_grant(sqlstate, hint, source_file))
		return false;			/* the node's setup, not the job: fixing the GRANT saves the job */
	return strcmp(sqlstate, MM_SQLSTATE_WRONG_STATE) == 0 ||
		strcmp(sqlstate, MM_SQLSTATE_FORBIDDEN) == 0 ||
		strcmp(sqlstate, MM_SQLSTATE_NOT_FOUND) == 0;
}

/*
 * Which setup problem an error is, if any: what PostgreSQL itself raises when the login role lacks
 * the extension's group role (42501, no hint) or the database lacks the extension (3F000 naming the
 * modelmine schema, no hint; 42883 naming a modelmine function, with the parser's "add explicit
 * type casts", which never fits a client's fixed calls).  Any other error, and any error with a
 * hint of its own (the extension's), is none: its hint is kept.
 */
MmSetupProblem
mm_setup_problem(const char *sqlstate, const char *message, const char *hint,
				 const char *source_file)
{
	bool		parser_hint = source_file != NULL && strcmp(source_file, "parse_func.c") == 0;
	bool		names_modelmine = message != NULL && strstr(message, "modelmine") != NULL;

	if (mm_missing_grant(sqlstate, hint, source_file))
		return MM_SETUP_NO_GRANT;
	if (hint != NULL && !parser_hint)
		return MM_SETUP_NONE;
	if (strcmp(sqlstate, MM_SQLSTATE_NO_SCHEMA) == 0 && names_modelmine)
		return MM_SETUP_NO_EXTENSION;
	if (strcmp(sqlstate, MM_SQLSTATE_NO_FUNCTION) == 0 && names_modelmine)
		return MM_SETUP_OLD_EXTENSION;
	return MM_SETUP_NONE;
}
