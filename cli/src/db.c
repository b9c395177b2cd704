/*
 * db.c — the one database connection of a command: connect, sign in with the saved session,
 * parameterised queries, LISTEN, and errors reported in one line.
 *
 * db_query keeps a failed statement's error fields in the Ctx instead of printing them, so a caller
 * can swap in a hint that speaks CLI rather than SQL (db_set_hint) before db_fail prints
 *     modelmine: <message> (<detail>) hint: <hint>
 * and returns the exit code the error maps to: 5 for a lost or refused connection, 4 for an
 * authentication failure (SQLSTATE 28000), 1 for anything else the database refused.
 *
 * PostgreSQL's own errors for a missing grant or a missing extension say what went wrong but not how
 * to fix it; db_query gives them a hint that does (setup_hint). The extension's errors keep theirs.
 * Which error is which, and texts on one line, are the client library's (common/).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

static void
on_notice(void *arg, const char *message)
{
	char	   *m = strdup(message);

	(void) arg;
	mm_one_line(m);
	fprintf(stderr, "modelmine: %s\n", m);
	free(m);
}

static void
clear_error(Ctx *c)
{
	free(c->err_msg);
	free(c->err_detail);
	free(c->err_hint);
	c->err_msg = c->err_detail = c->err_hint = NULL;
	c->sqlstate[0] = '\0';
	c->conn_lost = false;
}

static char *
dup_line(const char *s)
{
	char	   *d;

	if (s == NULL || *s == '\0')
		return NULL;
	d = strdup(s);
	mm_one_line(d);
	return d;
}

int
db_open(Ctx *c)
{
	const char *keys[4],
			   *vals[4];
	int			n = 0;

	keys[n] = "fallback_application_name";
	vals[n++] = "modelmine";
	if (getenv("PGCONNECT_TIMEOUT") == NULL)
	{
		keys[n] = "connect_timeout";
		vals[n++] = "10";
	}
	if (c->db)
	{
		/* last, so that a URL's own settings win over the defaults above */
		keys[n] = "dbname";
		vals[n++] = c->db;
	}
	keys[n] = vals[n] = NULL;
	c->conn = PQconnectdbParams(keys, vals, 1);
	if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK)
	{
		char	   *why = dup_line(c->conn ? PQerrorMessage(c->conn) : "out of memory");

		if (!c->quiet)
			fprintf(stderr, "modelmine: cannot connect to the database (%s) hint: %s\n", why ? why : "no reason given",
					c->db ? "check --db or MODELMINE_DB" : "pass --db URL or set MODELMINE_DB (or the PG* variables)");
		free(why);
		PQfinish(c->conn);
		c->conn = NULL;
		return EXIT_CONN;
	}
	PQsetNoticeProcessor(c->conn, on_notice, NULL);
	return EXIT_OK;
}

/* Connects and binds the connection to the user of the saved session. */
int
db_open_user(Ctx *c)
{
	char	   *token = session_load();
	const char *args[1];
	PGresult   *r;
	int			rc;

	c->role = MM_ROLE_USER;
	if (token == NULL)
	{
		fprintf(stderr, "modelmine: not signed in (no session in %s) hint: sign in with: modelmine login EMAIL\n",
				session_path());
		return EXIT_AUTH;
	}
	if ((rc = db_open(c)) != EXIT_OK)
	{
		free(token);
		return rc;
	}
	args[0] = token;
	r = db_query(c, "SELECT modelmine.authenticate($1)", 1, args);
	free(token);
	if (r == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_SIGNED_IN, "sign in again with: modelmine login EMAIL");
		return db_fail(c);
	}
	c->user_id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return EXIT_OK;
}

/* The login role as it is written in SQL (quoted only when it must be), for a hint's GRANT. */
char *
db_role(Ctx *c)
{
	const char *name = PQuser(c->conn);
	size_t		n = 2 * strlen(name) + 3;	/* every '"' doubled, and the quotes */
	char	   *d = malloc(n);

	mm_sql_identifier(d, n, name);
	return d;
}

/*
 * A hint for what PostgreSQL itself raises when the login role lacks its group role or the database
 * lacks the extension:
 *     42501  permission denied for schema modelmine / for function authenticate   (no hint)
 *     3F000  schema "modelmine" does not exist                                     (no hint)
 *     42883  function modelmine.x() does not exist   (hint: "...add explicit type casts", which never
 *            fits the client's own calls, so it is replaced; the parser raises it from parse_func.c)
 * Any other hint is the error's own (the extension's errors, its 42501s included, carry one) and is
 * kept. source_file is the error's PG_DIAG_SOURCE_FILE.  mm_setup_problem (common/) tells which
 * case an error is; the words, but for the missing extension's, are the CLI's.
 */
static void
setup_hint(Ctx *c, const char *source_file)
{
	Str			h = {0};

	switch (mm_setup_problem(c->sqlstate, c->err_msg, c->err_hint, source_file))
	{
		case MM_SETUP_NO_GRANT:
			{
				const char *role = c->role ? c->role : MM_ROLE_ANON;
				char	   *who = db_role(c);

				str_addf(&h, "the database role %s needs %s%s for this command: GRANT %s TO %s",
						 who, role, strcmp(role, MM_ROLE_ANON) == 0 ? " (or " MM_ROLE_USER ")" : "",
						 role, who);
				free(who);
				break;
			}
		case MM_SETUP_NO_EXTENSION:
			{
				char		m[512];

				mm_no_extension_hint(m, sizeof(m), PQdb(c->conn));
				str_add(&h, m);
				break;
			}
		case MM_SETUP_OLD_EXTENSION:
			str_addf(&h, "is the modelmine extension in database %s installed and up to date? "
					 "CREATE EXTENSION modelmine CASCADE (or ALTER EXTENSION modelmine UPDATE) there, "
					 "or check --db (MODELMINE_DB)", PQdb(c->conn));
			break;
		case MM_SETUP_NONE:
			return;
	}
	free(c->err_hint);
	c->err_hint = str_take(&h);
}

/* Runs one statement; on error keeps it in the Ctx (see db_fail) and returns NULL. */
PGresult   *
db_query(Ctx *c, const char *sql, int n, const char *const *params)
{
	PGresult   *r = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	const char *state;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	clear_error(c);
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	if (state)
	{
		c->err_msg = dup_line(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		c->err_detail = dup_line(PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL));
		c->err_hint = dup_line(PQresultErrorField(r, PG_DIAG_MESSAGE_HINT));
		setup_hint(c, PQresultErrorField(r, PG_DIAG_SOURCE_FILE));
	}
	else
		c->err_msg = dup_line(PQerrorMessage(c->conn));
	c->conn_lost = PQstatus(c->conn) != CONNECTION_OK;
	PQclear(r);
	return NULL;
}

/* One row, one column holding JSON: parsed (JSON null for SQL NULL), or NULL on any error. */
json_t *
db_json(Ctx *c, const char *sql, int n, const char *const *params)
{
	PGresult   *r = db_query(c, sql, n, params);
	json_error_t err;
	json_t	   *j;

	if (r == NULL)
		return NULL;
	if (PQntuples(r) != 1 || PQnfields(r) != 1)
	{
		clear_error(c);
		c->err_msg = strdup("unexpected reply from the database (not one value)");
		PQclear(r);
		return NULL;
	}
	if (PQgetisnull(r, 0, 0))
		j = json_null();
	else if ((j = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY, &err)) == NULL)
	{
		char		m[256];

		clear_error(c);
		snprintf(m, sizeof(m), "unreadable JSON from the database (%s)", err.text);
		c->err_msg = strdup(m);
	}
	PQclear(r);
	return j;
}

void
db_set_hint(Ctx *c, const char *sqlstate, const char *hint)
{
	if (strcmp(c->sqlstate, sqlstate) != 0)
		return;
	free(c->err_hint);
	c->err_hint = strdup(hint);
}

int
db_exit_code(const Ctx *c)
{
	if (c->conn_lost || mm_sqlstate_lost(c->sqlstate))
		return EXIT_CONN;
	if (strcmp(c->sqlstate, MM_SQLSTATE_NOT_SIGNED_IN) == 0)
		return EXIT_AUTH;
	return EXIT_ERROR;
}

/* Prints the kept error in one line; returns its exit code. */
int
db_fail(Ctx *c)
{
	int			rc = db_exit_code(c);

	if (c->conn_lost)
		fprintf(stderr, "modelmine: lost the database connection (%s)\n", c->err_msg ? c->err_msg : "no reason given");
	else
	{
		fprintf(stderr, "modelmine: %s", c->err_msg ? c->err_msg : "unknown error");
		if (c->err_detail)
			fprintf(stderr, " (%s)", c->err_detail);
		if (c->err_hint)
			fprintf(stderr, " hint: %s", c->err_hint);
		fputc('\n', stderr);
	}
	clear_error(c);
	return rc;
}

/* LISTEN or UNLISTEN a channel, quoted: "job:42:progress" (MM_CHANNEL_JOB_PROGRESS_FMT) is not plain. */
int
db_listen(Ctx *c, const char *channel, bool on)
{
	char	   *ident = PQescapeIdentifier(c->conn, channel, strlen(channel));
	size_t		n = strlen(ident) + 16;
	char	   *sql = malloc(n);
	PGresult   *r;

	snprintf(sql, n, "%s %s", on ? "LISTEN" : "UNLISTEN", ident);
	PQfreemem(ident);
	r = db_query(c, sql, 0, NULL);
	free(sql);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

/* Reads what the server sent (after poll() said the socket is readable); -1 when the connection broke. */
int
db_consume(Ctx *c)
{
	if (PQconsumeInput(c->conn))
		return 0;
	clear_error(c);
	c->err_msg = dup_line(PQerrorMessage(c->conn));
	c->conn_lost = true;
	return -1;
}

void
db_close(Ctx *c)
{
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
	clear_error(c);
}
