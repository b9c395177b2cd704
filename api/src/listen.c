/*
 * listen.c — the gateway's one LISTEN connection, and what it turns notifications into:
 *
 *   modelmine_work      wakes long-polling claims (POST /nodes/claim?wait=N)
 *   node:registered     the Socket.IO event of the same name, to everyone
 *   node:heartbeat      the same; the extension raises it on a status change or once a minute
 *   modelmine_events    job:{id}:progress and job:{id}:status, to the job's owner and admins (a
 *                       statement's events come in one batch)
 *
 * and two events it makes itself, so that no commit has to pay for them:
 *   node:heartbeat      every --heartbeat-view ms, for each node whose last_seen moved since the last
 *                       look (modelmine.node_beats(since)): browsers see every heartbeat of every
 *                       node, while a node's heartbeat NOTIFYs only on a change (the NOTIFY commit
 *                       lock is global, so a NOTIFY per heartbeat would cap the whole database);
 *   network:stats       network_stats() after job status changes (what its figures count), at
 *                       most once a second.
 *
 * Each gateway process has its own LISTEN connection, so any number of gateways behind a load
 * balancer each deliver every event to their own sockets: no shared adapter (Redis) is needed.
 * The connection is re-opened with backoff when it drops; claims waiting meanwhile claim again every
 * second, so a lost wake-up costs at most a second.  node:heartbeat may come twice for one heartbeat
 * (the node's NOTIFY on a status change, then the view): an event is a node's latest state, so a
 * repeat changes nothing for a client.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "modelmine/common.h"

#define STATS_DEBOUNCE_S 1.0
#define RECONNECT_MAX_S 8.0

static pthread_t thread;
static atomic_bool stopping = false;
static atomic_bool connected = false;
static atomic_bool draining = false;	/* SIGTERM: long-polls answer now */
static pthread_mutex_t work_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static uint64_t work_gen = 0;

/* The current wake-up generation: a claim reads it before claiming, then waits for it to change. */
uint64_t
listen_work_generation(void)
{
	uint64_t	g;

	pthread_mutex_lock(&work_mu);
	g = work_gen;
	pthread_mutex_unlock(&work_mu);
	return g;
}

/* Announces work to every waiting claim. */
static void
announce_work(void)
{
	pthread_mutex_lock(&work_mu);
	work_gen++;
	pthread_cond_broadcast(&work_cv);
	pthread_mutex_unlock(&work_mu);
}

/*
 * Waits until work is announced after generation gen, or until deadline (mm_now_s), or a second at
 * most while the LISTEN connection is down.  True when work was announced.
 */
bool
listen_wait_work(uint64_t gen, double deadline)
{
	bool		woke;

	pthread_mutex_lock(&work_mu);
	while (work_gen == gen && !atomic_load(&stopping) && !atomic_load(&draining))
	{
		double		now = mm_now_s();
		double		until = atomic_load(&connected) ? deadline : fmin(deadline, now + 1.0);
		struct timespec ts;

		if (now >= until)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t) (until - now);
		ts.tv_nsec += (long) (((until - now) - floor(until - now)) * 1e9);
		if (ts.tv_nsec >= 1000000000L)
		{
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&work_cv, &work_mu, &ts) == ETIMEDOUT && !atomic_load(&connected))
			break;
	}
	woke = work_gen != gen;
	pthread_mutex_unlock(&work_mu);
	return woke;
}

/* Whether the gateway is draining (SIGTERM): a long-poll claims once more and answers. */
bool
listen_draining(void)
{
	return atomic_load(&draining);
}

/* Whether the LISTEN connection is up (for /health). */
bool
listen_connected(void)
{
	return atomic_load(&connected);
}

/*
 * Runs a query on the LISTEN connection that returns one text value; NULL on error or no row.  The
 * query has one parameter ($1) when nparams is 1; param NULL is SQL NULL.
 */
static char *
query_text(PGconn *pg, const char *sql, int nparams, const char *param)
{
	PGresult   *res = PQexecParams(pg, sql, nparams, NULL, &param, NULL, NULL, 0);
	char	   *out = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		out = strdup(PQgetvalue(res, 0, 0));
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char		msg[256];

		snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
		mm_one_line(msg);
		fprintf(stderr, "modelmine-api: listen: %s\n", msg);
	}
	PQclear(res);
	return out;
}

/* One event {"event", "user_id", "data"} forwarded to the owner's and admins' sockets. */
static bool
forward_one(json_t *j)
{
	const char *event = json_string_value(json_object_get(j, "event"));
	json_t	   *data = json_object_get(j, "data");
	json_int_t	owner = json_integer_value(json_object_get(j, "user_id"));
	bool		job_status = false;

	if (event && data && owner > 0)
	{
		char	   *text = json_dumps(data, JSON_COMPACT);

		sio_publish(event, text, (int64_t) owner);
		free(text);
		job_status = strstr(event, ":status") != NULL;
	}
	return job_status;
}

/*
 * A modelmine_events payload forwarded: the extension sends a statement's events in one batch
 * {"events": [...]}; a payload may also be one event alone.  True if a job's status changed.
 */
static bool
forward_event(const char *payload)
{
	json_t	   *j = json_loads(payload, 0, NULL);
	json_t	   *events = json_object_get(j, "events");
	json_t	   *e;
	size_t		i;
	bool		job_status = false;

	if (json_is_array(events))
		json_array_foreach(events, i, e)
			job_status = forward_one(e) || job_status;
	else if (j)
		job_status = forward_one(j);
	json_decref(j);
	return job_status;
}

/* Emits node:heartbeat for the nodes seen since *since (an ISO timestamp, advanced here). */
static void
heartbeat_view(PGconn *pg, char *since, size_t sincelen)
{
	char	   *rows = query_text(pg,
								  "SELECT pg_catalog.json_build_object('beats', COALESCE(pg_catalog.json_agg(b), '[]'), "
								  "'until', pg_catalog.max(b.last_seen))::text FROM modelmine.node_beats($1) b",
								  1, since[0] ? since : NULL);
	json_t	   *j = rows ? json_loads(rows, 0, NULL) : NULL;
	json_t	   *beat;
	size_t		i;

	json_array_foreach(json_object_get(j, "beats"), i, beat)
	{
		char	   *text = json_dumps(beat, JSON_COMPACT);

		sio_publish(MM_CHANNEL_NODE_HEARTBEAT, text, 0);
		free(text);
	}
	if (json_string_value(json_object_get(j, "until")))
		snprintf(since, sincelen, "%s", json_string_value(json_object_get(j, "until")));
	json_decref(j);
	free(rows);
}

/* Opens the LISTEN connection; NULL when the database cannot be reached. */
static PGconn *
open_listen(void)
{
	const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
	const char *vals[] = {api_cfg.db_url, "modelmine-api listen", "5", NULL};
	PGconn	   *pg = PQconnectdbParams(keys, vals, 1);
	char		sql[256];
	PGresult   *res;

	if (PQstatus(pg) != CONNECTION_OK)
	{
		PQfinish(pg);
		return NULL;
	}
	snprintf(sql, sizeof(sql), "LISTEN \"%s\"; LISTEN \"%s\"; LISTEN \"%s\"; LISTEN \"%s\"", MM_CHANNEL_WORK,
			 MM_CHANNEL_NODE_REGISTERED, MM_CHANNEL_NODE_HEARTBEAT, MM_CHANNEL_EVENTS);
	res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		PQclear(res);
		PQfinish(pg);
		return NULL;
	}
	PQclear(res);
	return pg;
}

/* The thread: LISTEN, forward, refresh the heartbeat view and network stats; reconnect on loss. */
static void *
listen_main(void *arg)
{
	double		backoff = 0.25;
	char		since[64] = "";

	(void) arg;
	while (!atomic_load(&stopping))
	{
		PGconn	   *pg = open_listen();
		double		next_view = 0,
					last_stats = 0;
		bool		stats_dirty = true;

		if (pg == NULL)
		{
			usleep((useconds_t) (backoff * 1e6));
			backoff = fmin(backoff * 2, RECONNECT_MAX_S);
			continue;
		}
		backoff = 0.25;
		atomic_store(&connected, true);
		announce_work();		/* work may have come while nobody listened */
		while (!atomic_load(&stopping))
		{
			struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
			PGnotify   *n;
			double		now = mm_now_s();
			int			timeout = 200;

			if (poll(&p, 1, timeout) < 0 && errno != EINTR)
				break;
			if (!PQconsumeInput(pg))
				break;
			while ((n = PQnotifies(pg)) != NULL)
			{
				if (strcmp(n->relname, MM_CHANNEL_WORK) == 0)
					announce_work();
				else if (strcmp(n->relname, MM_CHANNEL_EVENTS) == 0)
					stats_dirty |= forward_event(n->extra);
				else
					sio_publish(n->relname, n->extra, 0);
				PQfreemem(n);
			}
			now = mm_now_s();
			if (now >= next_view && eio_session_count() > 0)
			{
				heartbeat_view(pg, since, sizeof(since));
				next_view = now + api_cfg.heartbeat_view_ms / 1000.0;
			}
			if (stats_dirty && now - last_stats >= STATS_DEBOUNCE_S && eio_session_count() > 0)
			{
				char	   *stats = query_text(pg, "SELECT pg_catalog.row_to_json(s)::text "
											   "FROM modelmine.network_stats() s", 0, NULL);

				if (stats)
					sio_publish("network:stats", stats, 0);
				free(stats);
				last_stats = now;
				stats_dirty = false;
			}
			if (PQstatus(pg) != CONNECTION_OK)
				break;
		}
		atomic_store(&connected, false);
		PQfinish(pg);
		if (!atomic_load(&stopping))
			fprintf(stderr, "modelmine-api: the LISTEN connection dropped; reconnecting\n");
	}
	return NULL;
}

/* Starts the LISTEN thread. */
int
listen_start(void)
{
	if (pthread_create(&thread, NULL, listen_main, NULL) != 0)
	{
		perror("modelmine-api: listen thread");
		return -1;
	}
	return 0;
}

/* The drain (SIGTERM): every waiting claim claims once more and answers, and none waits again. */
void
listen_drain(void)
{
	atomic_store(&draining, true);
	pthread_mutex_lock(&work_mu);
	pthread_cond_broadcast(&work_cv);
	pthread_mutex_unlock(&work_mu);
}

/* Stops it (at exit), waking every waiting claim. */
void
listen_stop(void)
{
	atomic_store(&stopping, true);
	pthread_mutex_lock(&work_mu);
	pthread_cond_broadcast(&work_cv);
	pthread_mutex_unlock(&work_mu);
	pthread_join(thread, NULL);
}
