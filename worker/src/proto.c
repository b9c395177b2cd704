/*
 * proto.c — the node protocol's front: picks the implementation once (--db: libpq, --api: HTTP),
 * then every call is a thin shim into it.  Also what both implementations log the same way: a
 * failed (re)connection and a lost connection, each paced by the reconnect backoff (and no sooner
 * than a Retry-After the server sent).
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* Chooses the implementation for o (--api or --db) and prepares it; -1 (logged) if it cannot. */
int
proto_open(Proto *p, const Options *o)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->ops = o->api ? &proto_http_ops : &proto_pg_ops;
	return p->ops->open(p);
}

/* First start: registers the node with the operator's credentials, the way o says to reach it. */
int
proto_register(const Options *o, json_t *caps, char **node_key, long long *node_id)
{
	return o->api ? http_register(o, caps, node_key, node_id) :
		pg_register(o, caps, node_key, node_id);
}

/* Whom the node talks to ("database" or "gateway"), for the loop's log lines. */
const char *
proto_peer(const Proto *p)
{
	return p->ops->peer;
}

/*
 * Connects (or reconnects), signs in as the node, declares caps and arms the wake-up.
 * PROTO_REFUSED only when the node's key itself is refused (sqlstate class 28): retrying cannot
 * help.  Anything else is retried with the connect backoff: PROTO_LOST.
 */
int
proto_connect(Proto *p, const char *node_key, json_t *caps)
{
	return p->ops->connect(p, node_key, caps);
}

/* Closes the connection, logging why if it was up; the loop reconnects with backoff. */
void
proto_disconnect(Proto *p, const char *why)
{
	p->ops->disconnect(p, why);
}

/* Says the node is alive, with its load and status; *held: the jobs still leased to it. */
int
proto_heartbeat(Proto *p, const char *status, long long **held, int *nheld)
{
	return p->ops->heartbeat(p, status, held, nheld);
}

/*
 * Leases up to max_jobs jobs for lease_seconds: *jobs, an array of {job_id, config} (the caller
 * decrefs it; empty unless PROTO_OK).  PROTO_PENDING: a claim is in flight, see proto.h.
 */
int
proto_claim(Proto *p, int max_jobs, int lease_seconds, json_t **jobs)
{
	return p->ops->claim(p, max_jobs, lease_seconds, jobs);
}

/*
 * The node stops claiming (a stop request): a claim in flight is called off.  Returns the jobs an
 * answer already leased to the node, which the caller gives back (NULL when none).
 */
json_t *
proto_claim_cancel(Proto *p)
{
	return p->ops->claim_cancel(p);
}

/* Reports a job's progress, which also extends its lease; metrics may be absent (a keepalive). */
int
proto_progress(Proto *p, long long job_id, json_t *progress)
{
	return p->ops->progress(p, job_id, progress);
}

/* Settles a job with its result: the node is paid (logged). */
int
proto_complete(Proto *p, long long job_id, json_t *result)
{
	return p->ops->complete(p, job_id, result);
}

/*
 * Settles up to MM_COMPLETE_MAX jobs with their results in one call and transaction (each job's
 * answer in its ProtoDone, logged).  Anything but PROTO_OK means nothing was settled: the caller
 * reports the jobs one at a time.  A refusal of the call itself (a peer older than 1.1, without
 * complete_jobs) turns batches off for good.
 */
int
proto_complete_many(Proto *p, ProtoDone *d, int n)
{
	int			rc;

	if (p->no_batch || n > MM_COMPLETE_MAX)
		return PROTO_REFUSED;
	rc = p->ops->complete_many(p, d, n);
	if (rc == PROTO_REFUSED)
	{
		/* an older peer (42883, or a gateway without the route): the batch is an optimisation */
		logmsg("complete_jobs refused: %s; reporting each job's end in a call of its own from "
			   "now on", p->error);
		p->no_batch = true;
	}
	return rc;
}

/* Whether settling a batch and claiming can go in one call (the database, batches still on). */
bool
proto_can_complete_claim(const Proto *p)
{
	return p->ops->complete_claim != NULL && !p->no_batch && !p->no_combine;
}

/*
 * Settles the n jobs of a batch and claims up to max_jobs more in one transaction: PROTO_OK when
 * both happened (d answered as by proto_complete_many, *jobs as by proto_claim), else neither did,
 * and the loop goes on with separate calls.  A refusal turns the combination off for good (which
 * call refused, the separate calls will say and handle); busy and lost do not.
 */
int
proto_complete_claim(Proto *p, ProtoDone *d, int n, int max_jobs, int lease_seconds,
					 json_t **jobs)
{
	int			rc;

	*jobs = NULL;
	if (!proto_can_complete_claim(p) || n > MM_COMPLETE_MAX)
		return PROTO_REFUSED;
	rc = p->ops->complete_claim(p, d, n, max_jobs, lease_seconds, jobs);
	if (rc == PROTO_REFUSED)
	{
		logmsg("settling and claiming in one transaction was refused: %s; separate calls from "
			   "now on", p->error);
		p->no_combine = true;
	}
	return rc;
}

/* The batch as complete_jobs takes it: [{"job_id": .., "result": {..}}, ...] (the caller owns it). */
json_t *
proto_done_batch(const ProtoDone *d, int n)
{
	json_t	   *batch = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(batch, json_pack("{s:I, s:O}", "job_id", (json_int_t) d[i].job_id,
											   "result", d[i].result));
	return batch;
}

/*
 * One row of complete_jobs' answer into d: paid (sqlstate NULL) or refused or busy, logged as
 * complete_job's answer would be.
 */
void
proto_done_answer(ProtoDone *d, const char *what, const char *reward, const char *sqlstate,
				  const char *message, const char *hint)
{
	if (sqlstate == NULL || *sqlstate == '\0')
	{
		d->rc = PROTO_OK;
		/* 0: a replicated job whose other results are awaited, or a result the quorum rejected */
		if (reward == NULL || strcmp(reward, "0") == 0)
			logmsg("job %lld completed: result submitted, nothing paid now (replicated jobs "
				   "pay the agreeing nodes once validated)", d->job_id);
		else
			logmsg("job %lld completed: node earned %s tokens", d->job_id, reward);
		return;
	}
	snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", sqlstate);
	snprintf(d->error, sizeof(d->error), "%s [%s]%s%s", message ? message : "?", sqlstate,
			 hint ? "; hint: " : "", hint ? hint : "");
	mm_one_line(d->error);
	if (mm_sqlstate_busy(d->sqlstate))
	{
		d->rc = PROTO_BUSY;
		return;
	}
	d->rc = PROTO_REFUSED;
	d->job_gone = mm_job_gone(d->sqlstate, hint, NULL);
	logmsg("%s refused: %s", what, d->error);
}

/* Settles a job as failed, with why: its owner is refunded (logged). */
int
proto_fail(Proto *p, long long job_id, const char *error)
{
	return p->ops->fail(p, job_id, error);
}

/* Gives a job back to the queue unfinished (a stopping worker; logged). */
int
proto_release(Proto *p, long long job_id)
{
	return p->ops->release(p, job_id);
}

/*
 * The descriptors the loop's poll() should watch for the protocol (at most max, from pfd on);
 * may bring *until forward (a timer of the implementation's).  Returns how many it added.
 */
int
proto_pollfds(Proto *p, struct pollfd *pfd, int max, double *until)
{
	return p->ops->pollfds(p, pfd, max, until);
}

/* After every poll(), with the descriptors proto_pollfds added: true when work may be waiting. */
bool
proto_after_poll(Proto *p, const struct pollfd *pfd, int n)
{
	return p->ops->after_poll(p, pfd, n);
}

/* The worker is done: closes the connection and frees what the implementation holds. */
void
proto_close(Proto *p)
{
	p->ops->close(p);
}

/* Before a call: no error yet. */
void
proto_clear_error(Proto *p)
{
	p->sqlstate[0] = '\0';
	p->error[0] = '\0';
	p->job_gone = false;
	p->retry_after = 0;
}

/* A failed (re)connection: retried with backoff, logged when the reason changes. */
void
proto_connect_failed(Proto *p, const char *why)
{
	double		now = mm_now_s();
	bool		news = backoff_fail(&p->connect, now, why);

	backoff_not_before(&p->connect, now, p->retry_after);
	if (news)
	{
		char		plan[96];

		backoff_describe(&p->connect, plan, sizeof(plan));
		logmsg("%s; %s (logged again when the reason changes)", why, plan);
	}
}

/* The connection to peer (whatever broke) is gone: logged if it was up; the loop reconnects. */
void
proto_lost(Proto *p, const char *peer, const char *why)
{
	double		now = mm_now_s();

	p->heartbeat_ok = false;
	if (p->up)
	{
		backoff_fail(&p->connect, now, why);
		backoff_not_before(&p->connect, now, p->retry_after);
		logmsg("lost %s connection: %s; retrying in %.0f s", peer, why, p->connect.delay);
	}
	p->up = false;
}
