/*
 * db.c — modelmine-notify's one database connection: LISTEN for new outbox rows, claim due ones,
 * report each attempt, detect offline nodes.  Every call is a parameterised statement in its own
 * transaction (autocommit): a claim commits its lease at once, so a crash after it loses nothing
 * (the rows come due again when the lease ends) and holds no lock.  A lost connection is logged
 * with its reason and made again by nt_db_ensure() on the next turn of the loop.
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "modelmine/common.h"
#include "modelmine/protocol.h"

struct nt_db
{
	char	   *conninfo;
	PGconn	   *conn;
	PGresult   *claimed;		/* the last claim's rows, which nt_delivery points into */
	nt_delivery *rows;
	double		next_try;		/* reconnect no sooner than this (mm_now_s) */
	double		backoff;
};

nt_db *
nt_db_new(const char *conninfo)
{
	nt_db	   *db = calloc(1, sizeof(*db));

	if (db != NULL)
		db->conninfo = strdup(conninfo ? conninfo : "");
	return db;
}

/* Logs a failed statement (one line) and drops the connection if it is gone. */
static void
failed(nt_db *db, const char *what, PGresult *res)
{
	char		msg[512];

	snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
	mm_one_line(msg);
	nt_log("%s failed: %s", what, msg);
	if (PQstatus(db->conn) != CONNECTION_OK)
	{
		nt_log("lost the database connection; reconnecting");
		PQfinish(db->conn);
		db->conn = NULL;
	}
}

bool
nt_db_ensure(nt_db *db)
{
	PGresult   *res;
	char		msg[512];

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return true;
	if (mm_now_s() < db->next_try)
		return false;
	if (db->conn)
		PQfinish(db->conn);
	db->conn = PQconnectdb(db->conninfo);
	if (PQstatus(db->conn) != CONNECTION_OK)
	{
		db->backoff = db->backoff < 1 ? 1 : (db->backoff * 2 > 30 ? 30 : db->backoff * 2);
		db->next_try = mm_now_s() + db->backoff;
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		mm_one_line(msg);
		nt_log("cannot connect to the database: %s; retrying in %.0f s", msg, db->backoff);
		PQfinish(db->conn);
		db->conn = NULL;
		return false;
	}
	/*
	 * A report lost in a server crash only means the delivery is sent again (at least once, the
	 * contract anyway), so this session's commits need not wait for the WAL flush: without it each
	 * report costs a disk flush, and the flushes, not the sends, bound the throughput.
	 */
	res = PQexec(db->conn, "SET synchronous_commit = off");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		failed(db, "SET synchronous_commit", res);
		PQclear(res);
		return false;
	}
	PQclear(res);
	res = PQexec(db->conn, "LISTEN " MM_CHANNEL_OUTBOX);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		failed(db, "LISTEN " MM_CHANNEL_OUTBOX, res);
		PQclear(res);
		return false;
	}
	PQclear(res);
	db->backoff = 0;
	nt_log("connected to the database as %s; listening on " MM_CHANNEL_OUTBOX, PQuser(db->conn));
	return true;
}

bool
nt_db_connected(nt_db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

int
nt_db_socket(nt_db *db)
{
	return db->conn ? PQsocket(db->conn) : -1;
}

/* Reads what arrived and drops the notifications: each is only a wake-up. */
void
nt_db_drain(nt_db *db)
{
	PGnotify   *n;

	if (db->conn == NULL)
		return;
	if (!PQconsumeInput(db->conn))
	{
		failed(db, "reading from the database", NULL);
		return;
	}
	while ((n = PQnotifies(db->conn)) != NULL)
		PQfreemem(n);
}

void
nt_db_claimed_free(nt_db *db)
{
	PQclear(db->claimed);
	db->claimed = NULL;
	free(db->rows);
	db->rows = NULL;
}

/* Claims up to batch due deliveries; *out stays valid until the next claim.  -1 on error. */
int
nt_db_claim(nt_db *db, int batch, int lease_seconds, nt_delivery **out)
{
	char		b[16],
				l[16];
	const char *params[2] = {b, l};
	int			n;

	nt_db_claimed_free(db);
	snprintf(b, sizeof(b), "%d", batch);
	snprintf(l, sizeof(l), "%d", lease_seconds);
	db->claimed = PQexecParams(db->conn,
							   "SELECT id, event_id, event, channel, destination, secret, "
							   "payload, to_char(created_at AT TIME ZONE 'UTC', "
							   "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), attempts "
							   "FROM modelmine.outbox_claim($1, $2)",
							   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(db->claimed) != PGRES_TUPLES_OK)
	{
		failed(db, "claiming notifications (modelmine.outbox_claim)", db->claimed);
		nt_db_claimed_free(db);
		return -1;
	}
	n = PQntuples(db->claimed);
	db->rows = calloc((size_t) (n > 0 ? n : 1), sizeof(nt_delivery));
	for (int i = 0; i < n; i++)
	{
		nt_delivery *d = &db->rows[i];

		d->id = atoll(PQgetvalue(db->claimed, i, 0));
		d->event_id = PQgetvalue(db->claimed, i, 1);
		d->event = PQgetvalue(db->claimed, i, 2);
		d->channel = PQgetvalue(db->claimed, i, 3);
		d->destination = PQgetvalue(db->claimed, i, 4);
		d->secret_hex = PQgetisnull(db->claimed, i, 5) ? NULL : PQgetvalue(db->claimed, i, 5);
		d->payload = PQgetvalue(db->claimed, i, 6);
		d->created_at = PQgetvalue(db->claimed, i, 7);
		d->attempts = atoi(PQgetvalue(db->claimed, i, 8));
	}
	*out = db->rows;
	return n;
}

/* Reports one attempt; status gets the row's new status.  false when the report failed. */
bool
nt_db_done(nt_db *db, const nt_delivery *d, const nt_result *r, char *status, size_t len)
{
	char		id[24];
	const char *params[4] = {id, r->delivered ? "t" : "f", r->delivered ? NULL : r->error,
	r->permanent ? "t" : "f"};
	PGresult   *res;

	if (db->conn == NULL)
		return false;
	snprintf(id, sizeof(id), "%lld", d->id);
	res = PQexecParams(db->conn, "SELECT modelmine.outbox_done($1, $2, $3, $4)", 4, NULL, params,
					   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		failed(db, "reporting a delivery (modelmine.outbox_done)", res);
		PQclear(res);
		return false;
	}
	snprintf(status, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/* Announces silent nodes; returns how many, or -1. */
int
nt_db_detect_offline(nt_db *db)
{
	PGresult   *res = PQexec(db->conn, "SELECT modelmine.detect_offline_nodes()");
	int			n = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		n = atoi(PQgetvalue(res, 0, 0));
	else
		failed(db, "detecting offline nodes (modelmine.detect_offline_nodes)", res);
	PQclear(res);
	return n;
}

void
nt_db_free(nt_db *db)
{
	if (db == NULL)
		return;
	nt_db_claimed_free(db);
	if (db->conn)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db);
}
