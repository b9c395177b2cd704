/*
 * proto_pg.c — the node protocol over libpq (--db): the modelmine SQL functions on one database
 * connection, and LISTEN modelmine_work for wake-ups.
 *
 * Calls are synchronous (the loop issues one at a time); their outcomes are proto.h's.  Errors
 * PostgreSQL raises for a setup problem (the login role lacks modelmine_node, the database lacks
 * the extension) get a hint naming the GRANT or CREATE EXTENSION to run (pgerr.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "proto.h"

/* What this implementation keeps in Proto.impl. */
typedef struct PgConn
{
	PGconn	   *conn;
	const char *needs;			/* the group role a missing-grant hint names; NULL: MM_ROLE_NODE */
	bool		notified;		/* a NOTIFY arrived during a call: the socket will not say so */
} PgConn;

/* The implementation's state. */
static PgConn *
pg(Proto *p)
{
	return p->impl;
}

/* Nothing to prepare before the first connection but the state itself. */
static int
pg_open(Proto *p)
{
	p->impl = calloc(1, sizeof(PgConn));
	return p->impl ? 0 : -1;
}

/* Closes the connection (logging why, if it was up); the loop reconnects with backoff. */
static void
pg_disconnect(Proto *p, const char *why)
{
	if (pg(p)->conn)
		PQfinish(pg(p)->conn);
	pg(p)->conn = NULL;
	proto_lost(p, "database", why);
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
lost(Proto *p)
{
	char		why[512];

	conn_error(pg(p)->conn, why, sizeof(why));
	pg_disconnect(p, why[0] ? why : "server closed the connection");
	return PROTO_LOST;
}

/*
 * Classifies a finished PGresult (frees nothing) and keeps an error's SQLSTATE and one-line text in
 * p. quiet: the caller logs refusals itself (the calls the loop repeats, which it paces).
 */
static int
outcome(Proto *p, PGresult *r, const char *what, bool quiet)
{
	PGconn	   *conn = pg(p)->conn;
	ExecStatusType st = PQresultStatus(r);
	const char *state,
			   *msg,
			   *hint,
			   *file;
	char		setup[512];

	proto_clear_error(p);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return PROTO_OK;
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", state ? state : "");
	/* no SQLSTATE: libpq failed on its own, which for the worker's fixed calls is the connection */
	if (PQstatus(conn) != CONNECTION_OK || mm_sqlstate_lost(p->sqlstate) || p->sqlstate[0] == '\0')
		return lost(p);
	msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
	file = PQresultErrorField(r, PG_DIAG_SOURCE_FILE);
	if (pg_setup_hint(setup, sizeof(setup), p->sqlstate, msg, hint, file, PQuser(conn),
					  pg(p)->needs ? pg(p)->needs : MM_ROLE_NODE, PQdb(conn)))
		hint = setup;
	snprintf(p->error, sizeof(p->error), "%s [%s]%s%s", msg ? msg : "?", p->sqlstate,
			 hint ? "; hint: " : "", hint ? hint : "");
	mm_one_line(p->error);
	if (mm_sqlstate_busy(p->sqlstate))
		return PROTO_BUSY;
	p->job_gone = mm_job_gone(p->sqlstate, hint, file);
	if (!quiet)
		logmsg("%s refused: %s", what, p->error);
	return PROTO_REFUSED;
}

/*
 * A NOTIFY that libpq read while it waited for a result sits in its queue, and the socket has
 * nothing more to say: take it now, or the wake-up is lost until the next poll interval.
 */
static void
take_notifies(Proto *p)
{
	PGnotify   *note;

	while ((note = PQnotifies(pg(p)->conn)) != NULL)
	{
		pg(p)->notified = true;
		PQfreemem(note);
	}
}

/* One parameterised statement, text in and out. */
static PGresult *
exec(Proto *p, const char *sql, int n, const char *const *values)
{
	PGresult   *r = PQexecParams(pg(p)->conn, sql, n, NULL, values, NULL, NULL, 0);

	take_notifies(p);
	return r;
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

/*
 * No Kerberos here: no PGGSSENCMODE, no KRB5CCNAME, no /etc/krb5.conf and no default credential cache
 * (/tmp/krb5cc_UID).  libpq's default gssencmode=prefer can then never encrypt with GSS, but it still
 * initialises Kerberos at every connect to find that out (about 1 MB of an idle worker's memory).
 */
static bool
no_kerberos(void)
{
	char		ccache[64];

	snprintf(ccache, sizeof(ccache), "/tmp/krb5cc_%u", (unsigned) getuid());
	return getenv("PGGSSENCMODE") == NULL && getenv("KRB5CCNAME") == NULL &&
		getenv("KRB5_CONFIG") == NULL && access("/etc/krb5.conf", F_OK) != 0 &&
		access(ccache, F_OK) != 0;
}

/* A blocking connection with the worker's settings: timeouts, keepalives, its application_name. */
static PGconn *
open_conn(const Options *o)
{
	const char *keys[8] = {"connect_timeout", "application_name", "keepalives_idle",
	"keepalives_interval", "keepalives_count", NULL, NULL, NULL};
	const char *vals[8] = {"10", "modelmine-worker", "10", "5", "3", NULL, NULL, NULL};
	int			n = 5;
	PGconn	   *conn;

	/* what GSS could not have done anyway; a gssencmode in --db still wins (it comes later) */
	if (no_kerberos())
	{
		keys[n] = "gssencmode";
		vals[n++] = "disable";
	}
	if (o->db)
	{
		/* libpq expands a URL or conninfo string in dbname, overriding the keywords before it */
		keys[n] = "dbname";
		vals[n++] = o->db;
	}
	conn = PQconnectdbParams(keys, vals, 1);
	PQsetNoticeProcessor(conn, log_notice, NULL);
	return conn;
}

/* A connection that came up and then failed at sign-in: closed, and retried with backoff. */
static int
sign_in_failed(Proto *p, const char *what, int rc)
{
	char		why[sizeof(p->error) + 64];

	snprintf(why, sizeof(why), "connected, but %s %s: %s", what,
			 rc == PROTO_BUSY ? "found the database busy" : "was refused", p->error);
	PQfinish(pg(p)->conn);
	pg(p)->conn = NULL;
	p->up = false;
	proto_connect_failed(p, why);
	return PROTO_LOST;
}

/*
 * Connects, signs in as the node, declares its capabilities and LISTENs.  PROTO_REFUSED only when
 * the database refuses the node key itself (SQLSTATE class 28): retrying cannot help.  Anything
 * else (no server, a missing grant or extension, a busy node row) is retried with backoff.
 */
static int
pg_connect(Proto *p, const char *node_key, json_t *caps)
{
	char	   *caps_text = json_dumps(caps, JSON_COMPACT);
	const char *args[1] = {node_key};
	const char *what = "authenticate_node";
	PGresult   *r;
	int			rc;

	pg(p)->conn = open_conn(p->o);
	if (PQstatus(pg(p)->conn) != CONNECTION_OK)
	{
		char		why[512];

		snprintf(why, sizeof(why), "cannot connect to the database: %s",
				 PQerrorMessage(pg(p)->conn));
		mm_one_line(why);
		PQfinish(pg(p)->conn);
		pg(p)->conn = NULL;
		proto_clear_error(p);
		proto_connect_failed(p, why);
		free(caps_text);
		return PROTO_LOST;
	}
	p->up = true;
	p->heartbeat_ok = false;
	r = exec(p, "SELECT modelmine.authenticate_node($1)", 1, args);
	rc = outcome(p, r, what, true);
	if (rc == PROTO_OK)
		p->node_id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (rc == PROTO_REFUSED &&
		strncmp(p->sqlstate, MM_SQLSTATE_CLASS_AUTH, strlen(MM_SQLSTATE_CLASS_AUTH)) == 0)
	{
		logmsg("authenticate_node refused: %s", p->error);
		PQfinish(pg(p)->conn);
		pg(p)->conn = NULL;
		p->up = false;
		free(caps_text);
		return PROTO_REFUSED;
	}
	if (rc == PROTO_OK)
	{
		args[0] = caps_text;
		what = "set_capabilities";
		r = exec(p, "SELECT modelmine.set_capabilities($1::jsonb)", 1, args);
		rc = outcome(p, r, what, true);
		PQclear(r);
	}
	if (rc == PROTO_OK)
	{
		what = "LISTEN " MM_CHANNEL_WORK;
		r = PQexec(pg(p)->conn, "LISTEN " MM_CHANNEL_WORK);
		rc = outcome(p, r, what, true);
		PQclear(r);
	}
	free(caps_text);
	if (rc == PROTO_OK)
	{
		backoff_ok(&p->connect);
		logmsg("connected as node %lld", p->node_id);
	}
	else if (rc == PROTO_REFUSED || rc == PROTO_BUSY)
		rc = sign_in_failed(p, what, rc);
	return rc;
}

/* First start with operator credentials: sign in and register this node. */
int
pg_register(const Options *o, json_t *caps, char **node_key, long long *node_id)
{
	PgConn		conn = {.needs = MM_ROLE_USER};
	Proto		p = {.ops = &proto_pg_ops, .o = o, .impl = &conn};
	char	   *caps_text = json_dumps(caps, JSON_COMPACT);
	const char *args[2];
	PGresult   *r;
	int			rc;

	conn.conn = open_conn(o);
	if (PQstatus(conn.conn) != CONNECTION_OK)
	{
		char		why[512];

		logmsg("cannot connect to register the node: %s", conn_error(conn.conn, why, sizeof(why)));
		PQfinish(conn.conn);
		free(caps_text);
		return -1;
	}
	p.up = true;
	args[0] = o->operator_email;
	args[1] = o->operator_password;
	r = exec(&p, "SELECT modelmine.authenticate(modelmine.login($1, $2))", 2, args);
	rc = outcome(&p, r, "operator login", false);
	PQclear(r);
	if (rc == PROTO_OK)
	{
		args[0] = o->name;
		args[1] = caps_text;
		r = exec(&p, "SELECT node_id, node_key FROM modelmine.register_node($1, $2::jsonb)", 2,
				 args);
		rc = outcome(&p, r, "register_node", false);
		if (rc == PROTO_OK)
		{
			*node_id = atoll(PQgetvalue(r, 0, 0));
			*node_key = strdup(PQgetvalue(r, 0, 1));
		}
		PQclear(r);
	}
	if (rc == PROTO_BUSY)
		logmsg("registering the node failed, the database was busy: %s; start the worker again",
			   p.error);
	if (conn.conn)
		PQfinish(conn.conn);
	free(caps_text);
	return rc == PROTO_OK ? 0 : -1;
}

/* The job ids in list, "5,6" (array_to_string of heartbeat()'s array), malloc'd into *held. */
static void
parse_held(const char *list, long long **held, int *nheld)
{
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

/*
 * Says the node is alive, with its load and status; *held gets the jobs the database still leases
 * to it (malloc'd, *nheld of them).
 */
static int
pg_heartbeat(Proto *p, const char *status, long long **held, int *nheld)
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
	r = exec(p, "SELECT pg_catalog.array_to_string("
			 "modelmine.heartbeat($1::real, $2::int, $3::int, $4), ',')", 4, args);
	rc = outcome(p, r, "heartbeat", true);
	*nheld = 0;
	if (rc == PROTO_OK)
	{
		p->heartbeat_ok = true;
		parse_held(PQgetvalue(r, 0, 0), held, nheld);
	}
	PQclear(r);
	return rc;
}

#define CLAIM_SQL "SELECT job_id, config::text FROM modelmine.claim_jobs($1::int, $2::int)"
#define COMPLETE_SQL "SELECT job_id, reward, sqlstate, error, hint FROM modelmine.complete_jobs($1::jsonb)"

/* The jobs a claim_jobs result leased, as an array of {job_id, config}. */
static json_t *
claimed_jobs(PGresult *r)
{
	json_t	   *jobs = json_array();

	for (int i = 0; i < PQntuples(r); i++)
	{
		json_int_t	id = (json_int_t) atoll(PQgetvalue(r, i, 0));
		json_error_t err;
		json_t	   *config = json_loads(PQgetvalue(r, i, 1), 0, &err);

		json_array_append_new(jobs, json_pack("{s:I, s:o}", "job_id", id,
											  "config", config ? config : json_object()));
	}
	return jobs;
}

/* Leases up to max_jobs pending jobs for lease_seconds: *jobs is an array of {job_id, config}. */
static int
pg_claim(Proto *p, int max_jobs, int lease_seconds, json_t **jobs)
{
	char		m[16],
				l[16];
	const char *args[2] = {m, l};
	PGresult   *r;
	int			rc;

	snprintf(m, sizeof(m), "%d", max_jobs);
	snprintf(l, sizeof(l), "%d", lease_seconds);
	r = exec(p, CLAIM_SQL, 2, args);
	rc = outcome(p, r, "claim_jobs", true);
	*jobs = rc == PROTO_OK ? claimed_jobs(r) : json_array();
	PQclear(r);
	return rc;
}

/* Claims are synchronous here: none is ever in flight, nothing to call off. */
static json_t *
pg_claim_cancel(Proto *p)
{
	(void) p;
	return NULL;
}

/*
 * A node's call on one of its jobs: sql takes the job id as $1 and args as $2...  Logs a refusal;
 * on PROTO_OK keeps the call's one value, if any, in value.
 */
static int
job_call(Proto *p, const char *what, const char *sql, long long job_id,
		 int nargs, const char *const *args, char *value, size_t valuelen)
{
	char		id[32];
	const char *params[4] = {id};
	PGresult   *r;
	int			rc;

	snprintf(id, sizeof(id), "%lld", job_id);
	for (int i = 0; i < nargs && i < 3; i++)
		params[i + 1] = args[i];
	r = exec(p, sql, nargs + 1, params);
	rc = outcome(p, r, what, false);
	if (rc == PROTO_OK && value)
		snprintf(value, valuelen, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return rc;
}

/*
 * Reports a job's progress, which also extends its lease.  metrics may be absent (a keepalive
 * re-sending the last progress): the job keeps its metrics.
 */
static int
pg_progress(Proto *p, long long job_id, json_t *progress)
{
	char		pct[32];
	json_t	   *m = json_object_get(progress, "metrics");
	char	   *metrics = m && !json_is_null(m) ?
		json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	const char *args[2] = {pct, metrics};
	int			rc;

	snprintf(pct, sizeof(pct), "%.2f", json_number_value(json_object_get(progress, "progress")));
	rc = job_call(p, "report_progress",
				  "SELECT modelmine.report_progress($1::bigint, $2::real, $3::jsonb)",
				  job_id, 2, args, NULL, 0);
	free(metrics);
	return rc;
}

/* Settles a job with its result: the node is paid. */
static int
pg_complete(Proto *p, long long job_id, json_t *result)
{
	char	   *text = json_dumps(result, JSON_COMPACT | JSON_REAL_PRECISION(15));
	const char *args[1] = {text};
	char		earned[32];
	int			rc;

	rc = job_call(p, "complete_job", "SELECT modelmine.complete_job($1::bigint, $2::jsonb)",
				  job_id, 1, args, earned, sizeof(earned));
	if (rc == PROTO_OK)
	{
		/* 0: a replicated job whose other results are awaited, or a result the quorum rejected */
		if (strcmp(earned, "0") == 0)
			logmsg("job %lld completed: result submitted, nothing paid now (replicated jobs "
				   "pay the agreeing nodes once validated)", job_id);
		else
			logmsg("job %lld completed: node earned %s tokens", job_id, earned);
	}
	free(text);
	return rc;
}

/* Fills d from complete_jobs' rows, one per job in the order given; refused if they do not match. */
static int
answer_done(PGresult *r, ProtoDone *d, int n)
{
	if (PQntuples(r) != n)
	{
		logmsg("complete_jobs answered %d rows for %d jobs; reporting them one at a time",
			   PQntuples(r), n);
		return PROTO_REFUSED;
	}
	for (int i = 0; i < n; i++)
		proto_done_answer(&d[i], "complete_job", PQgetvalue(r, i, 1),
						  PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2),
						  PQgetvalue(r, i, 3), PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4));
	return PROTO_OK;
}

/* Settles n jobs with their results in one transaction (complete_jobs); see proto.h. */
static int
pg_complete_many(Proto *p, ProtoDone *d, int n)
{
	json_t	   *batch = proto_done_batch(d, n);
	char	   *text = json_dumps(batch, JSON_COMPACT | JSON_REAL_PRECISION(15));
	const char *args[1] = {text};
	PGresult   *r = exec(p, COMPLETE_SQL, 1, args);
	int			rc = outcome(p, r, "complete_jobs", true);

	if (rc == PROTO_OK)
		rc = answer_done(r, d, n);
	PQclear(r);
	free(text);
	json_decref(batch);
	return rc;
}

/*
 * Settles n jobs and claims up to max_jobs more in one transaction and one round trip: the two
 * statements go down in libpq's pipeline mode before one Sync, so they commit together, once, and
 * the commit's housekeeping and WAL flush are paid once for both (see proto.h for the answer).
 */
static int
pg_complete_claim(Proto *p, ProtoDone *d, int n, int max_jobs, int lease_seconds, json_t **jobs)
{
	PGconn	   *conn = pg(p)->conn;
	json_t	   *batch = proto_done_batch(d, n);
	char	   *text = json_dumps(batch, JSON_COMPACT | JSON_REAL_PRECISION(15));
	char		m[16],
				l[16];
	const char *cargs[1] = {text},
			   *largs[2] = {m, l};
	PGresult   *res[2] = {NULL, NULL},
			   *r;
	bool		synced = false;
	int			got = 0,
				nulls = 0,
				rc;

	snprintf(m, sizeof(m), "%d", max_jobs);
	snprintf(l, sizeof(l), "%d", lease_seconds);
	if (PQenterPipelineMode(conn) &&
		PQsendQueryParams(conn, COMPLETE_SQL, 1, NULL, cargs, NULL, NULL, 0) &&
		PQsendQueryParams(conn, CLAIM_SQL, 2, NULL, largs, NULL, NULL, 0) && PQpipelineSync(conn))
	{
		/* each statement's result, a NULL after each, then the Sync's */
		while ((r = PQgetResult(conn)) != NULL || (++nulls <= 2 && PQstatus(conn) == CONNECTION_OK))
		{
			if (r == NULL)
				continue;
			nulls = 0;
			if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
			{
				PQclear(r);
				synced = true;
				break;
			}
			if (got < 2)
				res[got++] = r;
			else
				PQclear(r);
		}
	}
	if (synced)
		PQexitPipelineMode(conn);
	take_notifies(p);
	/* a failed first statement leaves the second aborted: the first says why */
	rc = outcome(p, res[0], "complete_jobs", true);
	if (rc == PROTO_OK)
		rc = outcome(p, res[1], "claim_jobs", true);
	if (rc == PROTO_OK && !synced)
		rc = lost(p);
	/* both committed: jobs whose answers did not match ask again (a settled job says so then) */
	if (rc == PROTO_OK && answer_done(res[0], d, n) != PROTO_OK)
		for (int i = 0; i < n; i++)
		{
			d[i].rc = PROTO_BUSY;
			d[i].retry_after = 0;
			snprintf(d[i].error, sizeof(d[i].error), "complete_jobs' answer did not match the batch");
		}
	*jobs = rc == PROTO_OK ? claimed_jobs(res[1]) : NULL;
	PQclear(res[0]);
	PQclear(res[1]);
	free(text);
	json_decref(batch);
	return rc;
}

/* Settles a job as failed, with why: its owner is refunded. */
static int
pg_fail(Proto *p, long long job_id, const char *error)
{
	const char *args[1] = {error};
	char		refunded[32];
	int			rc;

	rc = job_call(p, "fail_job", "SELECT modelmine.fail_job($1::bigint, $2)", job_id, 1, args,
				  refunded, sizeof(refunded));
	if (rc == PROTO_OK)
		logmsg("job %lld failed (%s); its owner was refunded %s tokens", job_id, error, refunded);
	return rc;
}

/* Gives a job back to the queue unfinished (a stopping worker). */
static int
pg_release(Proto *p, long long job_id)
{
	int			rc = job_call(p, "release_job", "SELECT modelmine.release_job($1::bigint)",
							  job_id, 0, NULL, NULL, 0);

	if (rc == PROTO_OK)
		logmsg("job %lld released back to the queue", job_id);
	return rc;
}

/* The connection's socket, for NOTIFYs (none while down). */
static int
pg_pollfds(Proto *p, struct pollfd *pfd, int max, double *until)
{
	if (!p->up || max < 1)
		return 0;
	if (pg(p)->notified)
		*until = 0;				/* a wake-up is already here: do not sleep */
	pfd[0].fd = PQsocket(pg(p)->conn);
	pfd[0].events = POLLIN;
	return 1;
}

/* Consumes what arrived on the socket: true when a NOTIFY said work appeared. */
static bool
pg_after_poll(Proto *p, const struct pollfd *pfd, int n)
{
	bool		woken;

	if (n < 1 || !p->up)
		return false;
	if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(pg(p)->conn))
	{
		lost(p);
		return false;
	}
	take_notifies(p);
	woken = pg(p)->notified;
	pg(p)->notified = false;
	return woken;
}

/* The worker is done: closes the connection without a "lost" line. */
static void
pg_close(Proto *p)
{
	if (pg(p)->conn)
		PQfinish(pg(p)->conn);
	free(p->impl);
	p->impl = NULL;
	p->up = false;
}

const ProtoOps proto_pg_ops = {
	.peer = "database",
	.open = pg_open,
	.connect = pg_connect,
	.disconnect = pg_disconnect,
	.heartbeat = pg_heartbeat,
	.claim = pg_claim,
	.claim_cancel = pg_claim_cancel,
	.progress = pg_progress,
	.complete = pg_complete,
	.complete_many = pg_complete_many,
	.complete_claim = pg_complete_claim,
	.fail = pg_fail,
	.release = pg_release,
	.pollfds = pg_pollfds,
	.after_poll = pg_after_poll,
	.close = pg_close,
};
