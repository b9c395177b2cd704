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
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* libpq and server texts may span lines ("...\n\tThis probably means..."): make them one line. */
static void
one_line(char *s)
{
	char	   *w = s;

	for (const char *r = s; *r; r++)
	{
		if (*r == '\n' || *r == '\t' || *r == '\r')
		{
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
		}
		else
			*w++ = *r;
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
}

static void
on_notice(void *arg, const char *message)
{
	char	   *m = strdup(message);

	(void) arg;
	one_line(m);
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
	one_line(d);
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

	c->role = "modelmine_user";
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
		db_set_hint(c, "28000", "sign in again with: modelmine login EMAIL");
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
	bool		plain = name[0] != '\0' && strchr("0123456789$", name[0]) == NULL;
	char	   *q;
	char	   *d;

	for (const char *p = name; plain && *p; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '$';
	if (plain)
		return strdup(name);
	q = PQescapeIdentifier(c->conn, name, strlen(name));
	d = strdup(q ? q : name);
	PQfreemem(q);
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
 * kept. source_file is the error's PG_DIAG_SOURCE_FILE.
 */
static void
setup_hint(Ctx *c, const char *source_file)
{
	bool		parser_hint = source_file != NULL && strcmp(source_file, "parse_func.c") == 0;
	bool		names_modelmine = c->err_msg != NULL && strstr(c->err_msg, "modelmine") != NULL;
	Str			h = {0};

	if (c->err_hint != NULL && !parser_hint)
		return;
	if (strcmp(c->sqlstate, "42501") == 0)
	{
		const char *role = c->role ? c->role : "modelmine_anon";
		char	   *who = db_role(c);

		str_addf(&h, "the database role %s needs %s%s for this command: GRANT %s TO %s", who, role,
				 strcmp(role, "modelmine_anon") == 0 ? " (or modelmine_user)" : "", role, who);
		free(who);
	}
	else if (strcmp(c->sqlstate, "3F000") == 0 && names_modelmine)
		str_addf(&h, "database %s has no modelmine extension: run CREATE EXTENSION modelmine CASCADE in it, "
				 "or check --db (MODELMINE_DB)", PQdb(c->conn));
	else if (strcmp(c->sqlstate, "42883") == 0 && names_modelmine)
		str_addf(&h, "is the modelmine extension in database %s installed and up to date? "
				 "CREATE EXTENSION modelmine CASCADE (or ALTER EXTENSION modelmine UPDATE) there, "
				 "or check --db (MODELMINE_DB)", PQdb(c->conn));
	else
		return;
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
	if (c->conn_lost || strncmp(c->sqlstate, "08", 2) == 0 || strncmp(c->sqlstate, "57P", 3) == 0)
		return EXIT_CONN;
	if (strcmp(c->sqlstate, "28000") == 0)
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

/* LISTEN or UNLISTEN a channel (quoted: "job:42:progress" is not a plain identifier). */
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
