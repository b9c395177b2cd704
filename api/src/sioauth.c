/*
 * sioauth.c — who a Socket.IO socket is.  A CONNECT's token goes through the same set-up as an
 * HTTP request (modelmine.request_role verifies it), then whoami() says who it is; the gateway
 * never reads a token itself.  The checks run on AUTH_THREADS token-check threads, so neither an
 * event thread nor a polling request waits on the database.
 *
 * A socket keeps the identity it CONNECTed with, but a token can stop verifying (its session was
 * revoked by POST /auth/logout, it expired) and a user's role can change, so every authenticated
 * socket's token is checked again every recheck interval: MODELMINE_SIO_RECHECK_S seconds (read
 * at start-up; default 60, 0 turns the re-checks off).  The heartbeat (eio_tick) hands over the
 * sessions that are due; sio_reverified (sio.c) acts on the answer.  A socket's first re-check
 * comes at a random point of its first interval and the next ones an interval after the previous
 * answer, so sockets that connected together (10,000 after a restart) are checked spread over the
 * interval, not in one burst.  CONNECTs go first: a re-check waits while any CONNECT is queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "api.h"
#include "eio.h"
#include "modelmine/common.h"

#define AUTH_THREADS 4
#define RECHECK_DEFAULT_S 60.0

typedef struct AuthJob
{
	Session    *s;				/* a reference */
	char	   *token;
	bool		recheck;
	unsigned	gen;			/* re-checks: the CONNECT whose token this is (Session.sio_gen) */
	struct AuthJob *next;
} AuthJob;

typedef struct AuthQueue
{
	AuthJob    *head,
			   *tail;
} AuthQueue;

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t auth_cv = PTHREAD_COND_INITIALIZER;
static AuthQueue connects,
			rechecks;			/* auth_mu */
static bool auth_stop;			/* auth_mu */
static pthread_t auth_threads[AUTH_THREADS];
static int	nauth_threads;
static double recheck_s = RECHECK_DEFAULT_S;

/* Verifies a token: who it is, or why not and whether that is the token's fault. */
SioVerdict
sio_verify(const char *token, SioIdentity *out, char *reason, size_t reasonlen)
{
	CallResult	err;
	char	   *json = NULL;
	json_t	   *j;

	memset(out, 0, sizeof(*out));
	if (token == NULL || token[0] == '\0')
		return SIO_VERIFIED;	/* anonymous: broadcasts only */
	if (call_sql_simple(NULL, token,
						"SELECT pg_catalog.row_to_json(w)::text FROM modelmine.whoami() w",
						NULL, 0, true, &json, &err) != 0)
	{
		/* 401/403: the token was refused; 5xx: the database (or the pool) could not say */
		SioVerdict	v = err.status >= 500 ? SIO_UNAVAILABLE : SIO_REFUSED;

		snprintf(reason, reasonlen, "%s", err.status == 401 || err.status == 403 ? "invalid token"
				 : err.status == 503 ? "database unavailable, retry"
				 : err.message ? err.message : "refused");
		call_result_free(&err);
		return v;
	}
	j = json ? json_loads(json, 0, NULL) : NULL;
	out->user_id = (int64_t) json_integer_value(json_object_get(j, "user_id"));
	out->admin = json_string_value(json_object_get(j, "role")) &&
		strcmp(json_string_value(json_object_get(j, "role")), "admin") == 0;
	json_decref(j);
	free(json);
	if (out->user_id <= 0)
	{
		snprintf(reason, reasonlen, "invalid token");
		return SIO_REFUSED;
	}
	return SIO_VERIFIED;
}

/* Verifies a CONNECT token (api.h's contract); false with a reason for CONNECT_ERROR. */
bool
sio_authenticate(const char *token, SioIdentity *out, char *reason, size_t reasonlen)
{
	return sio_verify(token, out, reason, reasonlen) == SIO_VERIFIED;
}

/*
 * When a socket's token is next checked: an interval from now, or for the first check a random
 * point in the first interval (spreading sockets that connected together); 0: re-checks are off.
 */
double
sio_recheck_at(double now, bool first)
{
	unsigned	r = 0;

	if (recheck_s <= 0)
		return 0;
	if (!first)
		return now + recheck_s;
	if (RAND_bytes((unsigned char *) &r, sizeof(r)) != 1)
		r = (unsigned) (now * 1e6);	/* only the spread suffers */
	return now + recheck_s * (0.05 + 0.95 * ((double) r / 4294967296.0));
}

/* Appends a job to q.  Caller holds auth_mu. */
static void
enqueue_locked(AuthQueue *q, AuthJob *job)
{
	job->next = NULL;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
}

/* Takes the first job off q, or NULL.  Caller holds auth_mu. */
static AuthJob *
dequeue_locked(AuthQueue *q)
{
	AuthJob    *job = q->head;

	if (job)
	{
		q->head = job->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return job;
}

/* Frees a job and drops its session reference. */
static void
free_job(AuthJob *job)
{
	eio_unref(job->s);
	free(job->token);
	free(job);
}

/* Hands a job for s (a reference is taken) to the token-check threads; false when out of memory. */
static bool
submit(Session *s, const char *token, bool recheck, unsigned gen)
{
	AuthJob    *job = calloc(1, sizeof(AuthJob));

	if (job == NULL || (job->token = strdup(token)) == NULL)
	{
		free(job);
		return false;
	}
	eio_ref(s);
	job->s = s;
	job->recheck = recheck;
	job->gen = gen;
	pthread_mutex_lock(&auth_mu);
	if (auth_stop)
		job->next = NULL;		/* shutting down: the session is being closed anyway */
	else
	{
		enqueue_locked(recheck ? &rechecks : &connects, job);
		pthread_cond_signal(&auth_cv);
		job = NULL;
	}
	pthread_mutex_unlock(&auth_mu);
	if (job)
		free_job(job);
	return true;
}

/* Hands a CONNECT's token to the token-check threads. */
void
sio_check_connect(Session *s, const char *token)
{
	if (!submit(s, token, false, 0))
		eio_close(s, "out of memory for a CONNECT");
}

/* Hands the token of a connected socket that is due for a re-check to the token-check threads. */
void
sio_recheck(Session *s)
{
	char	   *token = NULL;
	unsigned	gen = 0;

	pthread_mutex_lock(&s->mu);
	if (!s->closed && s->sio_connected && s->sio_token)
	{
		token = strdup(s->sio_token);
		gen = s->sio_gen;
	}
	pthread_mutex_unlock(&s->mu);
	if (token && !submit(s, token, true, gen))
	{
		/* out of memory: try again next interval rather than drop the socket */
		pthread_mutex_lock(&s->mu);
		if (s->sio_gen == gen)
			s->recheck_at = sio_recheck_at(mm_now_s(), false);
		pthread_mutex_unlock(&s->mu);
	}
	free(token);
}

/* Runs one job: a CONNECT answered, or a re-check acted on. */
static void
run_job(AuthJob *job)
{
	SioIdentity who;
	char		reason[256] = "";
	bool		live;
	SioVerdict	v;

	pthread_mutex_lock(&job->s->mu);
	live = !job->s->closed && (!job->recheck || (job->s->sio_connected &&
												 job->s->sio_gen == job->gen));
	pthread_mutex_unlock(&job->s->mu);
	if (!live)
		return;					/* a session gone meanwhile costs no round trip */
	v = sio_verify(job->token, &who, reason, sizeof(reason));
	if (job->recheck)
		sio_reverified(job->s, job->gen, v, &who, reason);
	else if (v == SIO_VERIFIED)
	{
		sio_accept(job->s, &who, job->token);
		job->token = NULL;		/* the session keeps it */
	}
	else
		sio_refuse(job->s, reason[0] ? reason : "refused");
}

/* A token-check thread: one job at a time, CONNECTs before re-checks. */
static void *
auth_main(void *arg)
{
	(void) arg;
	for (;;)
	{
		AuthJob    *job;

		pthread_mutex_lock(&auth_mu);
		while (connects.head == NULL && rechecks.head == NULL && !auth_stop)
			pthread_cond_wait(&auth_cv, &auth_mu);
		job = auth_stop ? NULL : dequeue_locked(&connects);
		if (job == NULL && !auth_stop)
			job = dequeue_locked(&rechecks);
		pthread_mutex_unlock(&auth_mu);
		if (job == NULL)
			return NULL;		/* stopping */
		run_job(job);
		free_job(job);
	}
}

/* Reads the re-check interval and starts the token-check threads. */
int
sio_start(void)
{
	const char *env = getenv("MODELMINE_SIO_RECHECK_S");

	if (env && env[0])
	{
		char	   *end;
		double		v = strtod(env, &end);

		if (*end != '\0' || v < 0 || v > 86400)
		{
			fprintf(stderr, "modelmine-api: MODELMINE_SIO_RECHECK_S=%s: want seconds from 0 (off) "
					"to 86400\n", env);
			return -1;
		}
		recheck_s = v;
	}
	for (nauth_threads = 0; nauth_threads < AUTH_THREADS; nauth_threads++)
		if (pthread_create(&auth_threads[nauth_threads], NULL, auth_main, NULL) != 0)
		{
			perror("modelmine-api: socket.io: token-check thread");
			return -1;
		}
	return 0;
}

/* Stops them once the checks under way are answered; drops the jobs not started. */
void
sio_stop(void)
{
	AuthJob    *job;

	pthread_mutex_lock(&auth_mu);
	auth_stop = true;
	pthread_cond_broadcast(&auth_cv);
	pthread_mutex_unlock(&auth_mu);
	for (int i = 0; i < nauth_threads; i++)
		pthread_join(auth_threads[i], NULL);
	nauth_threads = 0;
	for (;;)
	{
		pthread_mutex_lock(&auth_mu);
		if ((job = dequeue_locked(&connects)) == NULL)
			job = dequeue_locked(&rechecks);
		pthread_mutex_unlock(&auth_mu);
		if (job == NULL)
			break;
		free_job(job);			/* outside auth_mu: the last reference may free the session */
	}
}
