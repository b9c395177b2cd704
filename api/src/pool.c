/*
 * pool.c — the database connections requests run on (--pool, default 10).
 *
 * A request waits at most --acquire-timeout for a free connection, then gets 504.  Connections are
 * opened when needed; when one cannot be opened the database counts as down: requests that find no
 * open connection get 503 with Retry-After at once instead of waiting, and the next attempt comes
 * after a backoff doubling from 0.25 s to 8 s.  A connection that broke (the server restarted, the
 * network dropped) is closed on release and reopened by the next request that needs it.
 *
 * Each connection remembers the statements it has prepared (by SQL text), so a route's SQL is
 * parsed and planned once per connection, as with pgbench -M prepared.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "modelmine/common.h"

#define MAX_PREPARED 128		/* per connection; beyond it statements run unprepared */
#define BACKOFF_MIN_S 0.25
#define BACKOFF_MAX_S 8.0
#define CONNECT_TIMEOUT "5"

struct PoolConn
{
	PGconn	   *pg;
	bool		in_use;
	int			nprepared;
	char	   *prepared_sql[MAX_PREPARED];
	char	   *prepared_name[MAX_PREPARED];
};

static PoolConn *conns;
static int	nconns;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static int	waiting = 0;
static bool down = false;
static double retry_at = 0;		/* no connection attempt before this (mm_now_s) */
static double backoff_s = BACKOFF_MIN_S;
static bool warned_down = false;

/* Allocates the slots and opens one connection, so start-up says whether the database answers. */
int
pool_init(void)
{
	PoolConn   *c = NULL;

	nconns = api_cfg.pool_size;
	conns = calloc((size_t) nconns, sizeof(PoolConn));
	if (conns == NULL)
		return -1;
	if (pool_acquire(&c, 1000) == POOL_OK)
		pool_release(c, false);
	return 0;
}

/* Forgets the statements prepared on a connection (it is being closed). */
static void
forget_prepared(PoolConn *c)
{
	for (int i = 0; i < c->nprepared; i++)
	{
		free(c->prepared_sql[i]);
		free(c->prepared_name[i]);
	}
	c->nprepared = 0;
}

/* Opens a connection (without the lock held); NULL when the database cannot be reached. */
static PGconn *
connect_db(void)
{
	/*
	 * client_connection_check_interval: a backend whose gateway died mid-call notices within a
	 * second and stops, instead of running the statement to its end for nobody
	 */
	const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
	const char *vals[] = {api_cfg.db_url, "modelmine-api", CONNECT_TIMEOUT,
	"-c client_connection_check_interval=1000", NULL};
	PGconn	   *pg = PQconnectdbParams(keys, vals, 1);
	char		err[512];

	if (PQstatus(pg) == CONNECTION_OK)
	{
		/* the callable functions are read from the first connection, and again after an upgrade */
		if (catalog_load(pg, err, sizeof(err)) != 0)
		{
			fprintf(stderr, "modelmine-api: %s\n", err);
			PQfinish(pg);
			return NULL;
		}
		return pg;
	}
	snprintf(err, sizeof(err), "%s", PQerrorMessage(pg));
	mm_one_line(err);
	if (!warned_down)
		fprintf(stderr, "modelmine-api: database not reachable: %s (retrying with backoff)\n", err);
	warned_down = true;
	PQfinish(pg);
	return NULL;
}

/* Whether any connection is open (in use or not). */
static bool
any_open(void)
{
	for (int i = 0; i < nconns; i++)
		if (conns[i].pg)
			return true;
	return false;
}

/*
 * A connection for one request, within timeout_ms: POOL_OK with *out set, POOL_TIMEOUT when every
 * connection stayed busy, POOL_DOWN when the database cannot be reached now.
 */
PoolStatus
pool_acquire(PoolConn **out, int timeout_ms)
{
	double		deadline = mm_now_s() + timeout_ms / 1000.0;

	pthread_mutex_lock(&mu);
	for (;;)
	{
		PoolConn   *empty = NULL;
		double		now = mm_now_s();

		for (int i = 0; i < nconns; i++)
		{
			if (conns[i].in_use)
				continue;
			if (conns[i].pg && PQstatus(conns[i].pg) == CONNECTION_OK)
			{
				conns[i].in_use = true;
				*out = &conns[i];
				pthread_mutex_unlock(&mu);
				return POOL_OK;
			}
			if (empty == NULL)
				empty = &conns[i];
		}
		if (empty && now >= retry_at)
		{
			PGconn	   *pg;

			empty->in_use = true;
			if (empty->pg)
			{
				PQfinish(empty->pg);
				empty->pg = NULL;
				forget_prepared(empty);
			}
			retry_at = now + backoff_s; /* one attempt at a time while it is down */
			pthread_mutex_unlock(&mu);
			pg = connect_db();
			pthread_mutex_lock(&mu);
			if (pg)
			{
				if (down)
					fprintf(stderr, "modelmine-api: database reachable again\n");
				empty->pg = pg;
				down = false;
				warned_down = false;
				backoff_s = BACKOFF_MIN_S;
				retry_at = 0;
				*out = empty;
				pthread_mutex_unlock(&mu);
				return POOL_OK;
			}
			empty->in_use = false;
			down = true;
			retry_at = mm_now_s() + backoff_s;
			backoff_s = fmin(backoff_s * 2, BACKOFF_MAX_S);
			pthread_cond_broadcast(&freed);
		}
		/* nothing open to wait for while the database is down: answer 503 now */
		if (down && !any_open())
		{
			pthread_mutex_unlock(&mu);
			return POOL_DOWN;
		}
		if (now >= deadline)
		{
			pthread_mutex_unlock(&mu);
			return down ? POOL_DOWN : POOL_TIMEOUT;
		}
		{
			double		until = fmin(deadline, retry_at > now ? retry_at : deadline);
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			until -= now;
			ts.tv_sec += (time_t) until;
			ts.tv_nsec += (long) ((until - floor(until)) * 1e9);
			if (ts.tv_nsec >= 1000000000L)
			{
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			waiting++;
			pthread_cond_timedwait(&freed, &mu, &ts);
			waiting--;
		}
	}
}

/* Gives a connection back; a broken one (or one the caller distrusts) is closed. */
void
pool_release(PoolConn *c, bool broken)
{
	pthread_mutex_lock(&mu);
	if (broken || (c->pg && PQstatus(c->pg) != CONNECTION_OK) ||
		(c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE))
	{
		if (c->pg)
			PQfinish(c->pg);
		c->pg = NULL;
		forget_prepared(c);
	}
	c->in_use = false;
	pthread_cond_signal(&freed);
	pthread_mutex_unlock(&mu);
}

/* The libpq connection of a pooled one. */
PGconn *
pool_pg(PoolConn *c)
{
	return c->pg;
}

/* The name sql was prepared under on this connection, or NULL. */
const char *
pool_prepared(PoolConn *c, const char *sql)
{
	for (int i = 0; i < c->nprepared; i++)
		if (strcmp(c->prepared_sql[i], sql) == 0)
			return c->prepared_name[i];
	return NULL;
}

/* Records that sql is prepared as name on this connection (ignored when the table is full). */
void
pool_remember(PoolConn *c, const char *sql, const char *name)
{
	if (c->nprepared >= MAX_PREPARED)
		return;
	c->prepared_sql[c->nprepared] = strdup(sql);
	c->prepared_name[c->nprepared] = strdup(name);
	c->nprepared++;
}

/* Seconds a client should wait before retrying while the database is down (at least 1). */
int
pool_retry_after_s(void)
{
	double		left;
	bool		is_down;

	pthread_mutex_lock(&mu);
	is_down = down;
	left = down ? retry_at - mm_now_s() : 0;
	pthread_mutex_unlock(&mu);
	if (!is_down)
		return 0;
	return left < 1 ? 1 : (int) ceil(left);
}

/* For /health. */
void
pool_stats(int *size, int *open, int *busy, int *nwaiting, bool *is_down)
{
	pthread_mutex_lock(&mu);
	*size = nconns;
	*open = 0;
	*busy = 0;
	for (int i = 0; i < nconns; i++)
	{
		*open += conns[i].pg != NULL;
		*busy += conns[i].in_use;
	}
	*nwaiting = waiting;
	*is_down = down;
	pthread_mutex_unlock(&mu);
}

/* Closes the connections not in use (at exit). */
void
pool_close_all(void)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < nconns; i++)
		if (!conns[i].in_use && conns[i].pg)
		{
			PQfinish(conns[i].pg);
			conns[i].pg = NULL;
			forget_prepared(&conns[i]);
		}
	pthread_mutex_unlock(&mu);
}
