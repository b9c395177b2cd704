/*
 * db.c — everything the worker says to the database, through libpq and the modelmine SQL functions.
 *
 * Calls are synchronous (the loop issues one at a time).  Each returns DB_OK when the database
 * accepted the request; DB_REFUSED when it refused it (Db.sqlstate and Db.error say why; logged
 * unless the caller paces and logs that call itself); DB_BUSY when it was too busy to do it (lock
 * timeout, serialization failure, deadlock: nothing happened, ask again later); DB_LOST when the
 * connection broke: the caller keeps its state and retries after the loop reconnects.  What a
 * SQLSTATE means is common/sqlstate.c's to say.
 *
 * Errors PostgreSQL raises for a setup problem (the login role lacks modelmine_node, the database
 * lacks the extension) get a hint naming the GRANT or CREATE EXTENSION to run (pgerr.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* A failed (re)connection: retried with backoff, logged when the reason changes. */
static void
connect_failed(Db *db, const char *why)
{
	if (backoff_fail(&db->connect, mm_now_s(), why))
	{
		char		plan[96];

		backoff_describe(&db->connect, plan, sizeof(plan));
		logmsg("%s; %s (logged again when the reason changes)", why, plan);
	}
}

/* Closes the connection (logging why, if it was up); the loop reconnects with backoff. */
void
db_disconnect(Db *db, const char *why)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	db->heartbeat_ok = false;
	if (db->up)
	{
		backoff_fail(&db->connect, mm_now_s(), why);
		logmsg("lost database connection: %s; retrying in %.0f s", why, db->connect.delay);
	}
	db->up = false;
}

/* libpq's last error on conn, on one line, into why. */
static const char *
conn_error(PGconn *conn, char *why, size_t len)
{
	snprintf(why, len, "%s", PQerrorMessage(conn));
	mm_one_line(why);
	return why;
}

/* The connection broke under a call: disconnect, saying what libpq knows. */
static int
lost(Db *db)
{
	char		why[512];

	conn_error(db->conn, why, sizeof(why));
	db_disconnect(db, why[0] ? why : "server closed the connection");
	return DB_LOST;
}

/*
 * Classifies a finished PGresult (frees nothing) and keeps an error's SQLSTATE and one-line text in
 * db. quiet: the caller logs refusals itself (the calls the loop repeats, which it paces).
 */
static int
outcome(Db *db, PGresult *r, const char *what, bool quiet)
{
	ExecStatusType st = PQresultStatus(r);
	const char *state,
			   *msg,
			   *hint,
			   *file;
	char		setup[512];

	db->sqlstate[0] = '\0';
	db->error[0] = '\0';
	db->job_gone = false;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return DB_OK;
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
	/* no SQLSTATE: libpq failed on its own, which for the worker's fixed calls is the connection */
	if (PQstatus(db->conn) != CONNECTION_OK || mm_sqlstate_lost(db->sqlstate) ||
		db->sqlstate[0] == '\0')
		return lost(db);
	msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
	file = PQresultErrorField(r, PG_DIAG_SOURCE_FILE);
	if (pg_setup_hint(setup, sizeof(setup), db->sqlstate, msg, hint, file, PQuser(db->conn),
					  db->needs ? db->needs : MM_ROLE_NODE, PQdb(db->conn)))
		hint = setup;
	snprintf(db->error, sizeof(db->error), "%s [%s]%s%s", msg ? msg : "?", db->sqlstate,
			 hint ? "; hint: " : "", hint ? hint : "");
	mm_one_line(db->error);
	if (mm_sqlstate_busy(db->sqlstate))
		return DB_BUSY;
	db->job_gone = mm_job_gone(db->sqlstate, hint, file);
	if (!quiet)
		logmsg("%s refused: %s", what, db->error);
	return DB_REFUSED;
}

/* One parameterised statement, text in and out. */
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
	mm_one_line(m);
	logmsg("database notice: %s", m);
}

/* A blocking connection with the worker's settings: timeouts, keepalives, its application_name. */
static PGconn *
open_conn(const Options *o)
{
	const char *keys[8] = {"connect_timeout", "application_name", "keepalives_idle",
	"keepalives_interval", "keepalives_count", NULL, NULL, NULL};
	const char *vals[8] = {"10", "modelmine-worker", "10", "5", "3", NULL, NULL, NULL};

	if (o->db)
	{
		/* libpq expands a URL or conninfo string in dbname; later keywords do not override it */
		keys[5] = "dbname";
		vals[5] = o->db;
	}
	{
		PGconn	   *conn = PQconnectdbParams(keys, vals, 1);

		PQsetNoticeProcessor(conn, log_notice, NULL);
		return conn;
	}
}

/*
 * Connects, signs in as the node, declares its capabilities and LISTENs.  DB_REFUSED only when the
 * database refuses the node key itself (SQLSTATE class 28): retrying cannot help.  Anything else
 * (no server, a missing grant or extension, a busy node row) is retried with backoff: DB_LOST.
 */
int
db_connect(Db *db, const Options *o, const char *node_key, json_t *caps)
{
	char	   *caps_text = json_dumps(caps, JSON_COMPACT);
	const char *args[1];
	const char *what = "authenticate_node";
	PGresult   *r;
	int			rc;

	db->conn = open_conn(o);
	if (PQstatus(db->conn) != CONNECTION_OK)
	{
		char		why[512];

		snprintf(why, sizeof(why), "cannot connect to the database: %s", PQerrorMessage(db->conn));
		mm_one_line(why);
		PQfinish(db->conn);
		db->conn = NULL;
		connect_failed(db, why);
		free(caps_text);
		return DB_LOST;
	}
	db->up = true;
	db->heartbeat_ok = false;
	args[0] = node_key;
	r = exec(db, "SELECT modelmine.authenticate_node($1)", 1, args);
	rc = outcome(db, r, what, true);
	if (rc == DB_OK)
		db->node_id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (rc == DB_REFUSED &&
		strncmp(db->sqlstate, MM_SQLSTATE_CLASS_AUTH, strlen(MM_SQLSTATE_CLASS_AUTH)) == 0)
	{
		logmsg("authenticate_node refused: %s", db->error);
		PQfinish(db->conn);
		db->conn = NULL;
		db->up = false;
		free(caps_text);
		return DB_REFUSED;
	}
	if (rc == DB_OK)
	{
		args[0] = caps_text;
		what = "set_capabilities";
		r = exec(db, "SELECT modelmine.set_capabilities($1::jsonb)", 1, args);
		rc = outcome(db, r, what, true);
		PQclear(r);
	}
	if (rc == DB_OK)
	{
		what = "LISTEN " MM_CHANNEL_WORK;
		r = PQexec(db->conn, "LISTEN " MM_CHANNEL_WORK);
		rc = outcome(db, r, what, true);
		PQclear(r);
	}
	free(caps_text);
	if (rc == DB_OK)
	{
		backoff_ok(&db->connect);
		logmsg("connected as node %lld", db->node_id);
	}
	else if (rc == DB_REFUSED || rc == DB_BUSY)
	{
		char		why[sizeof(db->error) + 64];

		snprintf(why, sizeof(why), "connected, but %s %s: %s", what,
				 rc == DB_BUSY ? "found the database busy" : "was refused", db->error);
		PQfinish(db->conn);
		db->conn = NULL;
		db->up = false;
		connect_failed(db, why);
		rc = DB_LOST;
	}
	return rc;
}

/* First start with operator credentials: sign in and register this node. */
int
db_register(const Options *o, json_t *caps, char **node_key, long long *node_id)
{
	Db			db = {.needs = MM_ROLE_USER};
	char	   *caps_text = json_dumps(caps, JSON_COMPACT);
	const char *args[2];
	PGresult   *r;
	int			rc;

	db.conn = open_conn(o);
	if (PQstatus(db.conn) != CONNECTION_OK)
	{
		char		why[512];

		logmsg("cannot connect to register the node: %s", conn_error(db.conn, why, sizeof(why)));
		PQfinish(db.conn);
		free(caps_text);
		return -1;
	}
	db.up = true;
	args[0] = o->operator_email;
	args[1] = o->operator_password;
	r = exec(&db, "SELECT modelmine.authenticate(modelmine.login($1, $2))", 2, args);
	rc = outcome(&db, r, "operator login", false);
	PQclear(r);
	if (rc == DB_OK)
	{
		args[0] = o->name;
		args[1] = caps_text;
		r = exec(&db, "SELECT node_id, node_key FROM modelmine.register_node($1, $2::jsonb)", 2,
				 args);
		rc = outcome(&db, r, "register_node", false);
		if (rc == DB_OK)
		{
			*node_id = atoll(PQgetvalue(r, 0, 0));
			*node_key = strdup(PQgetvalue(r, 0, 1));
		}
		PQclear(r);
	}
	if (rc == DB_BUSY)
		logmsg("registering the node failed, the database was busy: %s; start the worker again",
			   db.error);
	if (db.conn)
		PQfinish(db.conn);
	free(caps_text);
	return rc == DB_OK ? 0 : -1;
}

/*
 * Says the node is alive, with its load and status; *held gets the jobs the database still leases
 * to it (malloc'd, *nheld of them).
 */
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
	r = exec(db, "SELECT pg_catalog.array_to_string("
			 "modelmine.heartbeat($1::real, $2::int, $3::int, $4), ',')", 4, args);
	rc = outcome(db, r, "heartbeat", true);
	*nheld = 0;
	if (rc == DB_OK)
	{
		db->heartbeat_ok = true;
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

/* Leases up to max_jobs pending jobs for lease_seconds: *jobs is an array of {job_id, config}. */
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
	r = exec(db, "SELECT job_id, config::text FROM modelmine.claim_jobs($1::int, $2::int)", 2,
			 args);
	rc = outcome(db, r, "claim_jobs", true);
	*jobs = json_array();
	if (rc == DB_OK)
	{
		for (int i = 0; i < PQntuples(r); i++)
		{
			json_int_t	id = (json_int_t) atoll(PQgetvalue(r, i, 0));
			json_error_t err;
			json_t	   *config = json_loads(PQgetvalue(r, i, 1), 0, &err);

			json_array_append_new(*jobs, json_pack("{s:I, s:o}", "job_id", id,
												   "config", config ? config : json_object()));
		}
	}
	PQclear(r);
	return rc;
}

/*
 * A node's call on one of its jobs: sql takes the job id as $1 and args as $2...  Logs a refusal;
 * on DB_OK keeps the call's one value, if any, in value.
 */
static int
job_call(Db *db, const char *what, const char *sql, long long job_id,
		 int nargs, const char *const *args, char *value, size_t valuelen)
{
	char		id[32];
	const char *params[4] = {id};
	PGresult   *r;
	int			rc;

	snprintf(id, sizeof(id), "%lld", job_id);
	for (int i = 0; i < nargs && i < 3; i++)
		params[i + 1] = args[i];
	r = exec(db, sql, nargs + 1, params);
	rc = outcome(db, r, what, false);
	if (rc == DB_OK && value)
		snprintf(value, valuelen, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return rc;
}

/*
 * Reports a job's progress, which also extends its lease.  metrics may be absent (a keepalive
 * re-sending the last progress): the job keeps its metrics.
 */
int
db_progress(Db *db, long long job_id, json_t *progress)
{
	char		pct[32];
	json_t	   *m = json_object_get(progress, "metrics");
	char	   *metrics = m && !json_is_null(m) ?
		json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	const char *args[2] = {pct, metrics};
	int			rc;

	snprintf(pct, sizeof(pct), "%.2f", json_number_value(json_object_get(progress, "progress")));
	rc = job_call(db, "report_progress",
				  "SELECT modelmine.report_progress($1::bigint, $2::real, $3::jsonb)",
				  job_id, 2, args, NULL, 0);
	free(metrics);
	return rc;
}

/* Settles a job with its result: the node is paid. */
int
db_complete(Db *db, long long job_id, json_t *result)
{
	char	   *text = json_dumps(result, JSON_COMPACT | JSON_REAL_PRECISION(15));
	const char *args[1] = {text};
	char		earned[32];
	int			rc;

	rc = job_call(db, "complete_job", "SELECT modelmine.complete_job($1::bigint, $2::jsonb)",
				  job_id, 1, args, earned, sizeof(earned));
	if (rc == DB_OK)
		logmsg("job %lld completed: node earned %s tokens", job_id, earned);
	free(text);
	return rc;
}

/* Settles a job as failed, with why: its owner is refunded. */
int
db_fail(Db *db, long long job_id, const char *error)
{
	const char *args[1] = {error};
	char		refunded[32];
	int			rc;

	rc = job_call(db, "fail_job", "SELECT modelmine.fail_job($1::bigint, $2)", job_id, 1, args,
				  refunded, sizeof(refunded));
	if (rc == DB_OK)
		logmsg("job %lld failed (%s); its owner was refunded %s tokens", job_id, error, refunded);
	return rc;
}

/* Gives a job back to the queue unfinished (a stopping worker). */
int
db_release(Db *db, long long job_id)
{
	int			rc = job_call(db, "release_job", "SELECT modelmine.release_job($1::bigint)",
							  job_id, 0, NULL, NULL, 0);

	if (rc == DB_OK)
		logmsg("job %lld released back to the queue", job_id);
	return rc;
}

/* Consumes pending input; returns the number of notifications, or -2 if the connection broke. */
int
db_drain_notifies(Db *db)
{
	PGnotify   *n;
	int			count = 0;

	if (!PQconsumeInput(db->conn))
		return lost(db);
	while ((n = PQnotifies(db->conn)) != NULL)
	{
		count++;
		PQfreemem(n);
	}
	return count;
}
