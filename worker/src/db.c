/*
 * db.c — everything the worker says to the database, through libpq and the modelmine SQL functions.
 *
 * Calls are synchronous (the loop issues one at a time).  Each returns 0 when the database accepted
 * the request, -1 when it refused it (SQLSTATE left in db_sqlstate, message logged), and -2 when the
 * connection broke: the caller keeps its state and retries after the loop reconnects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

char		db_sqlstate[6];

static void
set_state(const PGresult *r)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	snprintf(db_sqlstate, sizeof(db_sqlstate), "%s", s ? s : "");
}

void
db_disconnect(Db *db, const char *why)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	if (db->up)
		logmsg("lost database connection: %s; retrying in %.0f s", why, db->backoff);
	db->up = false;
	db->retry_at = now_s() + db->backoff;
	db->backoff = db->backoff * 2 > 30 ? 30 : db->backoff * 2;
}

/* libpq messages span lines ("...\n\tThis probably means..."): one log line each. */
static void
trim_newline(char *s)
{
	char	   *w = s;
	size_t		n;

	for (const char *r = s; *r; r++)
	{
		if (*r == '\n' || *r == '\t')
		{
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
		}
		else
			*w++ = *r;
	}
	*w = '\0';
	n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* Classifies a finished PGresult; frees nothing. */
static int
outcome(Db *db, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	const char *msg,
			   *hint;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return 0;
	set_state(r);
	if (PQstatus(db->conn) != CONNECTION_OK || strncmp(db_sqlstate, "08", 2) == 0 ||
		strncmp(db_sqlstate, "57P", 3) == 0 || db_sqlstate[0] == '\0')
	{
		char		why[512];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(db->conn));
		trim_newline(why);
		db_disconnect(db, why[0] ? why : "server closed the connection");
		return -2;
	}
	msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
	logmsg("%s refused: %s [%s]%s%s", what, msg ? msg : "?", db_sqlstate, hint ? " hint: " : "", hint ? hint : "");
	return -1;
}

static PGresult *
exec(Db *db, const char *sql, int n, const char *const *values)
{
	return PQexecParams(db->conn, sql, n, NULL, values, NULL, NULL, 0);
}

/* Server notices go to the worker log like every other line, not raw to stderr. */
static void
log_notice(void *arg, const char *message)
{
	char		m[1024];

	(void) arg;
	snprintf(m, sizeof(m), "%s", message);
	trim_newline(m);
	logmsg("database notice: %s", m);
}

static PGconn *
open_conn(const Options *o)
{
	const char *keys[8] = {"connect_timeout", "application_name", "keepalives_idle", "keepalives_interval",
	"keepalives_count", NULL, NULL, NULL};
	const char *vals[8] = {"10", "modelmine-worker", "10", "5", "3", NULL, NULL, NULL};

	if (o->db)
	{
		/* a URL or conninfo string in dbname is expanded by libpq; later keywords do not override it */
		keys[5] = "dbname";
		vals[5] = o->db;
	}
	{
		PGconn	   *conn = PQconnectdbParams(keys, vals, 1);

		PQsetNoticeProcessor(conn, log_notice, NULL);
		return conn;
	}
}

int
db_connect(Db *db, const Options *o, const char *node_key, json_t *caps)
{
	char	   *caps_text = json_dumps(caps, JSON_COMPACT);
	const char *args[1];
	PGresult   *r;
	int			rc;

	db->conn = open_conn(o);
	if (PQstatus(db->conn) != CONNECTION_OK)
	{
		char		why[512];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(db->conn));
		trim_newline(why);
		PQfinish(db->conn);
		db->conn = NULL;
		logmsg("cannot connect to the database: %s; retrying in %.0f s", why, db->backoff);
		db->retry_at = now_s() + db->backoff;
		db->backoff = db->backoff * 2 > 30 ? 30 : db->backoff * 2;
		free(caps_text);
		return -2;
	}
	db->up = true;
	args[0] = node_key;
	r = exec(db, "SELECT modelmine.authenticate_node($1)", 1, args);
	rc = outcome(db, r, "authenticate_node");
	if (rc == 0)
		db->node_id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (rc == 0)
	{
		args[0] = caps_text;
		r = exec(db, "SELECT modelmine.set_capabilities($1::jsonb)", 1, args);
		rc = outcome(db, r, "set_capabilities");
		PQclear(r);
	}
	if (rc == 0)
	{
		r = PQexec(db->conn, "LISTEN modelmine_work");
		rc = outcome(db, r, "LISTEN");
		PQclear(r);
	}
	free(caps_text);
	if (rc == 0)
	{
		db->backoff = 1;
		logmsg("connected as node %lld", db->node_id);
	}
	else if (rc == -1)
	{
		PQfinish(db->conn);
		db->conn = NULL;
		db->up = false;
	}
	return rc;
}

/* First start with operator credentials: sign in and register this node. */
int
db_register(const Options *o, json_t *caps, char **node_key, long long *node_id)
{
	Db			db = {.backoff = 1};
	char	   *caps_text = json_dumps(caps, JSON_COMPACT);
	const char *args[2];
	PGresult   *r;
	int			rc;

	db.conn = open_conn(o);
	if (PQstatus(db.conn) != CONNECTION_OK)
	{
		logmsg("cannot connect to register the node: %s", PQerrorMessage(db.conn));
		PQfinish(db.conn);
		free(caps_text);
		return -1;
	}
	db.up = true;
	args[0] = o->operator_email;
	args[1] = o->operator_password;
	r = exec(&db, "SELECT modelmine.authenticate(modelmine.login($1, $2))", 2, args);
	rc = outcome(&db, r, "operator login");
	PQclear(r);
	if (rc == 0)
	{
		args[0] = o->name;
		args[1] = caps_text;
		r = exec(&db, "SELECT node_id, node_key FROM modelmine.register_node($1, $2::jsonb)", 2, args);
		rc = outcome(&db, r, "register_node");
		if (rc == 0)
		{
			*node_id = atoll(PQgetvalue(r, 0, 0));
			*node_key = strdup(PQgetvalue(r, 0, 1));
		}
		PQclear(r);
	}
	if (db.conn)
		PQfinish(db.conn);
	free(caps_text);
	return rc == 0 ? 0 : -1;
}

int
db_heartbeat(Db *db, const char *status, long long **held, int *nheld)
{
	char		cpu[32],
				used_s[16],
				total_s[16];
	int			used,
				total;
	const char *args[4] = {cpu, used_s, total_s, status};
	PGresult   *r;
	int			rc;

	snprintf(cpu, sizeof(cpu), "%.1f", cpu_load_percent());
	memory_mb(&used, &total);
	snprintf(used_s, sizeof(used_s), "%d", used);
	snprintf(total_s, sizeof(total_s), "%d", total);
	r = exec(db, "SELECT pg_catalog.array_to_string(modelmine.heartbeat($1::real, $2::int, $3::int, $4), ',')", 4, args);
	rc = outcome(db, r, "heartbeat");
	*nheld = 0;
	if (rc == 0)
	{
		const char *list = PQgetvalue(r, 0, 0);
		int			cap = 1;

		for (const char *p = list; *p; p++)
			cap += *p == ',';
		*held = malloc(sizeof(long long) * cap);
		for (const char *p = list; *p;)
		{
			char	   *end;

			(*held)[(*nheld)++] = strtoll(p, &end, 10);
			p = *end == ',' ? end + 1 : end;
			if (end == p && *p)
				break;
		}
	}
	PQclear(r);
	return rc;
}

int
db_claim(Db *db, int max_jobs, int lease_seconds, json_t **jobs)
{
	char		m[16],
				l[16];
	const char *args[2] = {m, l};
	PGresult   *r;
	int			rc;

	snprintf(m, sizeof(m), "%d", max_jobs);
	snprintf(l, sizeof(l), "%d", lease_seconds);
	r = exec(db, "SELECT job_id, config::text FROM modelmine.claim_jobs($1::int, $2::int)", 2, args);
	rc = outcome(db, r, "claim_jobs");
	*jobs = json_array();
	if (rc == 0)
	{
		for (int i = 0; i < PQntuples(r); i++)
		{
			json_error_t err;
			json_t	   *config = json_loads(PQgetvalue(r, i, 1), 0, &err);

			json_array_append_new(*jobs, json_pack("{s:I, s:o}", "job_id", (json_int_t) atoll(PQgetvalue(r, i, 0)),
												   "config", config ? config : json_object()));
		}
	}
	PQclear(r);
	return rc;
}

/* A refusal that means the job is no longer ours to work on. */
static bool
job_gone(void)
{
	return strcmp(db_sqlstate, "55000") == 0 || strcmp(db_sqlstate, "42501") == 0 ||
		strcmp(db_sqlstate, "P0002") == 0;
}

int
db_progress(Db *db, long long job_id, json_t *progress, bool *abandon)
{
	char		id[32],
				pct[32];
	char	   *metrics = json_dumps(json_object_get(progress, "metrics"), JSON_COMPACT | JSON_ENCODE_ANY);
	const char *args[3] = {id, pct, metrics};
	PGresult   *r;
	int			rc;

	snprintf(id, sizeof(id), "%lld", job_id);
	snprintf(pct, sizeof(pct), "%.2f", json_number_value(json_object_get(progress, "progress")));
	if (metrics && strcmp(metrics, "null") == 0)
	{
		free(metrics);
		metrics = NULL;
		args[2] = NULL;
	}
	r = exec(db, "SELECT modelmine.report_progress($1::bigint, $2::real, $3::jsonb)", 3, args);
	rc = outcome(db, r, "report_progress");
	*abandon = rc == -1 && job_gone();
	PQclear(r);
	free(metrics);
	return rc;
}

int
db_complete(Db *db, long long job_id, json_t *result)
{
	char		id[32];
	char	   *text = json_dumps(result, JSON_COMPACT | JSON_REAL_PRECISION(15));
	const char *args[2] = {id, text};
	PGresult   *r;
	int			rc;

	snprintf(id, sizeof(id), "%lld", job_id);
	r = exec(db, "SELECT modelmine.complete_job($1::bigint, $2::jsonb)", 2, args);
	rc = outcome(db, r, "complete_job");
	if (rc == 0)
		logmsg("job %lld completed: node earned %s tokens", job_id, PQgetvalue(r, 0, 0));
	PQclear(r);
	free(text);
	return rc;
}

int
db_fail(Db *db, long long job_id, const char *error)
{
	char		id[32];
	const char *args[2] = {id, error};
	PGresult   *r;
	int			rc;

	snprintf(id, sizeof(id), "%lld", job_id);
	r = exec(db, "SELECT modelmine.fail_job($1::bigint, $2)", 2, args);
	rc = outcome(db, r, "fail_job");
	if (rc == 0)
		logmsg("job %lld failed (%s); its owner was refunded %s tokens", job_id, error, PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

int
db_release(Db *db, long long job_id)
{
	char		id[32];
	const char *args[1] = {id};
	PGresult   *r;
	int			rc;

	snprintf(id, sizeof(id), "%lld", job_id);
	r = exec(db, "SELECT modelmine.release_job($1::bigint)", 1, args);
	rc = outcome(db, r, "release_job");
	if (rc == 0)
		logmsg("job %lld released back to the queue", job_id);
	PQclear(r);
	return rc;
}

/* Consumes pending input; returns the number of notifications, or -2 if the connection broke. */
int
db_drain_notifies(Db *db)
{
	PGnotify   *n;
	int			count = 0;

	if (!PQconsumeInput(db->conn))
	{
		char		why[512];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(db->conn));
		trim_newline(why);
		db_disconnect(db, why[0] ? why : "server closed the connection");
		return -2;
	}
	while ((n = PQnotifies(db->conn)) != NULL)
	{
		count++;
		PQfreemem(n);
	}
	return count;
}
