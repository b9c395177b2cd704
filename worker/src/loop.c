/*
 * loop.c — the worker's single poll() loop.
 *
 * Each turn, one static function a step: take stop requests, (re)connect if due, reap children and
 * enforce time limits, forward progress, settle finished jobs, heartbeat, claim work for free
 * slots, then poll() on the node protocol's sockets (proto.h: the database's, or the gateway's
 * long-polling claim), the children's pipes and the self-pipe that signal handlers write to
 * (common/sigpipe.c).  The loop does not know which protocol it speaks.  A wake-up (a NOTIFY on
 * modelmine_work, or a long-poll's answer) is only a wake-up: after it, after every timeout and
 * after every reconnect we ask claim_jobs() again, which reads the queue itself (FOR UPDATE SKIP
 * LOCKED), so a lost notification costs at most one poll interval.  A claim may stay in flight
 * (PROTO_PENDING): the loop then just carries on until its answer wakes it.
 *
 * Settlement: jobs that end within --group-ms of each other (or in the same turn) are reported in
 * one complete_jobs call, one transaction and one synchronous commit for all (group commit done by
 * the client); each job still gets its own answer.  A failure, a lone job, and everything when the
 * peer is older than 1.1 go one call per job.  When a claim may go now, the batch's call also
 * claims the slots it frees, in the same transaction where the protocol can (proto_complete_claim:
 * --db), so a batch costs one commit, not two; the leased jobs start once the batch's tasks are
 * forgotten (start_claimed).
 *
 * Leases: only report_progress extends a job's lease, so every running job gets one at least every
 * lease_seconds / 3, re-sending the last progress when the trainer printed nothing new.  A call the
 * database answers with "busy" (lock timeout, serialization failure, deadlock) is retried a second
 * later (or after the server's Retry-After), never taken as a refusal.  heartbeat and claim_jobs,
 * which the loop repeats, back off exponentially while they fail and log only a new reason
 * (backoff.c); after every (re)connect the node heartbeats before it claims, as a node that is not
 * ONLINE gets no work.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* a stopping worker tries this long to give a job back (or report its end), then leaves it be */
#define RELEASE_GRACE 5.0

/* What the loop keeps from one turn to the next. */
typedef struct Loop
{
	const Options *o;
	const char *node_key;
	json_t	   *caps;			/* declared on every (re)connect */
	Proto		p;				/* the database or the gateway: the loop does not know which */
	Task		tasks[MM_MAX_SLOTS];
	int			ntasks;
	Trainer		trainers[MM_MAX_SLOTS];	/* one persistent trainer process per slot */
	Backoff		hb_backoff,
				claim_backoff;
	double		keepalive,		/* report_progress extends a lease: 3 tries per lease */
				next_hb,
				next_poll,
				drain_deadline;
	json_t	   *claimed;		/* jobs a settle-and-claim leased, started once slots are freed */
	int			claimed_want;	/* how many it asked for */
	bool		wake,			/* look for work at once (a wake-up, a freed slot, a full batch) */
				draining,		/* a stop was requested: claim nothing more */
				idle_seen;		/* the last claim found nothing while nothing ran */
} Loop;

/* SIGTERM and SIGINT ask the loop to stop; SIGCHLD only wakes it.  No SIGPIPE: the write fails. */
static void
install_signals(void)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGCHLD};

	if (mm_sig_pipe_open(sigs, sizeof(sigs) / sizeof(sigs[0])) != 0)
	{
		perror("pipe");
		exit(1);
	}
	signal(SIGPIPE, SIG_IGN);
}

/* The child is reaped and its output read to the end. */
static bool
task_done(const Task *t)
{
	return t->pid == 0 && t->fd < 0;
}

/*
 * The database was busy for one of t's calls: retry in a second (or when the server's Retry-After
 * says); logged once until a call works.
 */
static void
busy_for(Task *t, const char *what, const char *error, double retry_after, double now)
{
	if (!t->busy_logged)
		logmsg("job %lld: %s deferred, the database is busy: %s; retrying every second",
			   t->job_id, what, error);
	t->busy_logged = true;
	t->retry_at = now + (retry_after > 1 ? retry_after : 1);
}

/* busy_for with the last call's error. */
static void
busy(Task *t, const char *what, const Proto *p, double now)
{
	busy_for(t, what, p->error, p->retry_after, now);
}

/* A stopping worker gives an abandoned job back to the queue; returns true once done with it. */
static bool
give_back(Proto *p, Task *t, double now)
{
	int			rc = PROTO_LOST;
	char		none[64];

	if (p->up && now >= t->retry_at)
	{
		rc = proto_release(p, t->job_id);
		if (rc == PROTO_OK || rc == PROTO_REFUSED)
			return true;		/* refused: it was no longer ours to give back */
		if (rc == PROTO_BUSY)
			busy(t, "release_job", p, now);
	}
	if (now < t->release_until)
		return false;
	snprintf(none, sizeof(none), "no %s connection", proto_peer(p));
	logmsg("job %lld: could not give it back to the queue (%s); "
		   "its lease will run out and the queue will run it again",
		   t->job_id, rc == PROTO_BUSY ? p->error : none);
	return true;
}

/* Reports a finished task; returns true when it can be forgotten. */
static bool
settle(Proto *p, Task *t, double now)
{
	int			rc;

	if (t->abandoned)
		return !t->release || give_back(p, t, now);
	if (t->settled)
		return true;			/* reported in a batch (settle_batch) */
	if (!p->up || now < t->retry_at)
		return false;
	task_conclude(t);
	if (t->progress)
	{
		/* the last epoch's figures first, so the job's metrics end where its result does */
		rc = proto_progress(p, t->job_id, t->progress);
		if (rc == PROTO_LOST)
			return false;
		if (rc == PROTO_BUSY)
		{
			busy(t, "report_progress", p, now);
			return false;
		}
		if (rc == PROTO_OK)
			task_report_taken(t, t->progress, now);
		json_decref(t->progress);	/* refused: complete or fail below gets the same answer */
		t->progress = NULL;
	}
	if (t->result)
	{
		rc = proto_complete(p, t->job_id, t->result);
		if (rc == PROTO_REFUSED && strcmp(p->sqlstate, MM_SQLSTATE_BAD_INPUT) == 0)
		{
			/* the database rejected the result itself: that is the job's failure, not the node's */
			free(t->error);
			t->error = strdup("the trainer produced an invalid result (see the node's log)");
			json_decref(t->result);
			t->result = NULL;
			return settle(p, t, now);
		}
	}
	else
		rc = proto_fail(p, t->job_id, t->error ? t->error : "unknown error");
	if (rc == PROTO_BUSY)
	{
		busy(t, t->result ? "complete_job" : "fail_job", p, now);
		return false;
	}
	/* OK: settled; REFUSED: for good (settled before a lost reply, lease lost, canceled) */
	return rc != PROTO_LOST;
}

/* Gives up on t for good (logged once): kills its child; nothing more is reported for it. */
static void
abandon(Task *t, const char *why)
{
	if (!t->abandoned)
		logmsg("job %lld abandoned: %s", t->job_id, why);
	t->abandoned = true;
	task_kill(t);
}

/* Sends t's due progress report, if any: the trainer's latest line, or the lease's keepalive. */
static void
report(Proto *p, Task *t, double now, double keepalive)
{
	json_t	   *due = task_report_due(t, now, keepalive);
	int			rc;

	if (due == NULL)
		return;
	rc = proto_progress(p, t->job_id, due);
	if (rc == PROTO_OK)
	{
		task_report_taken(t, due, now);
		t->busy_logged = false;
	}
	else if (rc == PROTO_BUSY)
		busy(t, "report_progress", p, now);
	else if (rc == PROTO_REFUSED && p->job_gone)
		abandon(t, "the job was canceled or its lease was lost");
	else if (rc == PROTO_REFUSED)
	{
		/* a report the database will not take (bad figures, no grant): drop it, keep the job */
		if (due == t->progress)
		{
			json_decref(t->progress);
			t->progress = NULL;
		}
		t->retry_at = now + keepalive;
	}
	json_decref(due);
}

/* A call the loop repeats failed: pace it (no sooner than a Retry-After), log only a new reason. */
static void
repeated_failure(Backoff *b, const char *what, const Proto *p, double now)
{
	bool		news = backoff_fail(b, now, p->error);

	backoff_not_before(b, now, p->retry_after);
	if (news)
	{
		char		plan[96];

		backoff_describe(b, plan, sizeof(plan));
		logmsg("%s failed: %s; %s (logged again when the error changes)", what, p->error, plan);
	}
}

/* A call the loop repeats worked: reset its pacing, and say so if it had been failing. */
static void
repeated_success(Backoff *b, const char *what)
{
	int			failures = backoff_ok(b);

	if (failures > 0)
		logmsg("%s works again after %d failed attempt%s", what, failures,
			   failures == 1 ? "" : "s");
}

/* id is among the n jobs the heartbeat says the node still holds. */
static bool
held_contains(const long long *held, int n, long long id)
{
	for (int i = 0; i < n; i++)
		if (held[i] == id)
			return true;
	return false;
}

/*
 * Jobs a claim leased to the node just as it began to stop: they join the running ones as
 * abandoned, to be given back to the queue (settle_finished) without running.
 */
static void
give_back_unstarted(Loop *l, json_t *jobs, double now)
{
	size_t		k;
	json_t	   *j;

	json_array_foreach(jobs, k, j)
	{
		Task	   *t = &l->tasks[l->ntasks];

		if (l->ntasks >= MM_MAX_SLOTS)
			break;				/* cannot happen: a claim asks for free slots only */
		memset(t, 0, sizeof(*t));
		t->job_id = (long long) json_integer_value(json_object_get(j, "job_id"));
		t->fd = -1;
		t->release = true;
		t->release_until = now + RELEASE_GRACE;
		abandon(t, "worker stopping");
		l->ntasks++;
	}
	json_decref(jobs);
}

/* Stop requests (SIGTERM, SIGINT since the last turn): the first drains, a second releases now. */
static void
stop_requests(Loop *l, double now)
{
	int			sig = mm_sig_pipe_drain(SIGCHLD);
	json_t	   *leased;

	if (sig != SIGTERM && sig != SIGINT)
		return;
	if (!l->draining)
	{
		l->draining = true;
		l->drain_deadline = now + l->o->drain_timeout;
		logmsg("stop requested: claiming no more jobs; "
			   "finishing %d running job(s) for up to %.0f s, then releasing the rest",
			   l->ntasks, l->o->drain_timeout);
		if ((leased = proto_claim_cancel(&l->p)) != NULL)
			give_back_unstarted(l, leased, now);
	}
	else
	{
		l->drain_deadline = now;
		logmsg("second stop request: releasing running jobs now");
	}
}

/* Connection: reconnect when the backoff allows; false when the peer refused the node's key. */
static bool
connection(Loop *l, double now)
{
	int			rc;

	if (l->p.up || !backoff_ready(&l->p.connect, now))
		return true;
	rc = proto_connect(&l->p, l->node_key, l->caps);
	if (rc == PROTO_REFUSED)
		return false;
	if (rc == PROTO_OK)
	{
		l->next_hb = now;		/* heartbeat before claiming: learn which leases survived */
		l->wake = true;
	}
	return true;
}

/* Children: reap them, enforce the time limit, and abandon what a stopping worker cannot finish. */
static void
children(Loop *l, double now)
{
	for (int i = 0; i < l->ntasks; i++)
	{
		Task	   *t = &l->tasks[i];

		if (t->trainer && t->ack_deadline > 0 && now > t->ack_deadline && !t->abandoned)
		{
			/* it never started the job: give it back to the queue, not fail it */
			logmsg("job %lld: trainer process %d did not take it within %g s (hung); "
				   "killing it", t->job_id, (int) t->pid, trainer_ack_seconds(l->o));
			abandon(t, "trainer process hung");
			t->release = true;
			t->release_until = now + RELEASE_GRACE;
		}
		if (t->pid > 0 && now > t->deadline && !t->result && !t->error)
		{
			char		e[96];

			snprintf(e, sizeof(e), "time limit of %d s exceeded", l->o->job_timeout);
			t->error = strdup(e);
			task_kill(t);
		}
		if (l->draining && now >= l->drain_deadline && !task_done(t) && !t->abandoned)
		{
			abandon(t, "worker stopping");
			t->release = true;
			t->release_until = now + RELEASE_GRACE;
		}
		task_reap(t);
	}
}

/* Progress: the latest line at most every 200 ms per job, and a keepalive for a silent one. */
static void
progress(Loop *l, double now)
{
	for (int i = 0; i < l->ntasks && l->p.up; i++)
		report(&l->p, &l->tasks[i], now, l->keepalive);
}

/* t is done with a result that may go in a batch now: its last progress is sent, no wait is due. */
static bool
batchable(const Task *t, double now)
{
	return task_done(t) && !t->abandoned && !t->settled && t->result && !t->progress &&
		now >= t->retry_at;
}

/*
 * When finished jobs should be reported: at once when every running job is done or the batch is
 * full, else group_ms after the first of them finished, so that jobs ending within a few
 * milliseconds of each other share one call and one commit.  0 when none waits.
 */
static double
batch_due(const Loop *l, double now)
{
	double		first = 0;
	int			ready = 0,
				running = 0;

	for (int i = 0; i < l->ntasks; i++)
	{
		const Task *t = &l->tasks[i];

		if (batchable(t, now))
		{
			ready++;
			if (first == 0 || t->done_at < first)
				first = t->done_at;
		}
		else if (!task_done(t) && !t->abandoned)
			running++;
	}
	if (ready == 0)
		return 0;
	if (running == 0 || ready >= MM_COMPLETE_MAX)
		return now;
	return first + l->o->group_ms / 1000.0;
}

/*
 * Reports the finished jobs that wait for it in one complete_jobs call (group commit done by the
 * client).  A job the call settled, or refused for good, is marked settled; one the database found
 * busy waits a second; an invalid result and anything the call could not do go through settle()
 * one at a time, as before batches.
 */
static void
settle_batch(Loop *l, double now)
{
	ProtoDone	d[MM_COMPLETE_MAX];
	Task	   *of[MM_COMPLETE_MAX];
	double		due;
	int			n = 0,
				rc;

	for (int i = 0; i < l->ntasks; i++)
	{
		task_conclude(&l->tasks[i]);
		if (task_done(&l->tasks[i]) && l->tasks[i].done_at == 0)
			l->tasks[i].done_at = now;
	}
	due = batch_due(l, now);
	if (!l->p.up || l->p.no_batch || due == 0 || now < due)
		return;
	for (int i = 0; i < l->ntasks && n < MM_COMPLETE_MAX; i++)
		if (batchable(&l->tasks[i], now))
		{
			memset(&d[n], 0, sizeof(d[n]));
			d[n].job_id = l->tasks[i].job_id;
			d[n].result = l->tasks[i].result;
			of[n++] = &l->tasks[i];
		}
	if (n < 2)
		return;					/* one job: settle() reports it */
	/* the slots this batch frees are claimed in the same transaction when a claim may go now */
	rc = PROTO_REFUSED;
	l->claimed_want = l->o->slots - l->ntasks + n;	/* less when released jobs hold slots */
	if (proto_can_complete_claim(&l->p) && l->p.heartbeat_ok && !l->draining &&
		l->claimed_want >= 1 && backoff_ready(&l->claim_backoff, now))
		rc = proto_complete_claim(&l->p, d, n, l->claimed_want, l->o->lease_seconds, &l->claimed);
	if (rc != PROTO_OK && (!l->p.up || proto_complete_many(&l->p, d, n) != PROTO_OK))
		return;					/* the call failed: settle() reports them singly */
	for (int k = 0; k < n; k++)
	{
		Task	   *t = of[k];

		if (d[k].rc == PROTO_BUSY)
			busy_for(t, "complete_job", d[k].error, d[k].retry_after, now);
		else if (d[k].rc == PROTO_REFUSED && strcmp(d[k].sqlstate, MM_SQLSTATE_BAD_INPUT) == 0)
		{
			/* the database rejected the result itself: settle() fails the job, as it would */
			free(t->error);
			t->error = strdup("the trainer produced an invalid result (see the node's log)");
			json_decref(t->result);
			t->result = NULL;
		}
		else
			t->settled = true;	/* OK, or refused for good (settled before, canceled, lease lost) */
	}
}

static void start_jobs(Loop *l, json_t *jobs);

/*
 * Starts the jobs a settle-and-claim leased, in the slots its batch freed, and paces the next claim
 * as claim() would.  A job of the batch the database found busy still holds its slot: as many
 * leased jobs as that are given back at once.
 */
static void
start_claimed(Loop *l, double now)
{
	json_t	   *jobs = l->claimed;
	size_t		got = json_array_size(jobs);

	l->claimed = NULL;
	repeated_success(&l->claim_backoff, "claim_jobs");
	while (json_array_size(jobs) > 0 && l->ntasks + (int) json_array_size(jobs) > l->o->slots)
	{
		size_t		last = json_array_size(jobs) - 1;
		long long	id = (long long) json_integer_value(json_object_get(json_array_get(jobs, last),
																		"job_id"));

		if (proto_release(&l->p, id) != PROTO_OK)
			logmsg("job %lld: leased with no free slot and not given back (%s); its lease will run "
				   "out", id, l->p.error);
		json_array_remove(jobs, last);
	}
	start_jobs(l, jobs);
	l->wake = got == (size_t) l->claimed_want;	/* a full batch: there may be more */
	l->next_poll = now + l->o->poll_interval;
	l->idle_seen = got == 0 && l->ntasks == 0;
	json_decref(jobs);
}

/* Settle finished tasks, and forget them once the peer has their end (or a stop gives up). */
static void
settle_finished(Loop *l, double now)
{
	double		due;

	settle_batch(l, now);
	due = l->p.no_batch ? 0 : batch_due(l, now);
	for (int i = 0; i < l->ntasks;)
	{
		Task	   *t = &l->tasks[i];
		/* a job that waits for others to share its batch is not reported alone meanwhile */
		bool		grouping = due > now && batchable(t, now);
		bool		forget = task_done(t) && !grouping && settle(&l->p, t, now);

		if (!forget && l->draining && task_done(t) && !t->abandoned &&
			now >= l->drain_deadline + RELEASE_GRACE)
		{
			char		none[64];

			snprintf(none, sizeof(none), "no %s connection", proto_peer(&l->p));
			logmsg("job %lld: stopping without reporting its end (%s); its lease will run out",
				   t->job_id, l->p.up ? l->p.error : none);
			forget = true;
		}
		if (forget)
		{
			task_free(t);
			l->tasks[i] = l->tasks[--l->ntasks];
			l->wake = true;		/* a slot is free: look for more work */
			continue;
		}
		i++;
	}
	if (l->claimed)
		start_claimed(l, now);
}

/* Heartbeat: says the node is alive and tells us which jobs we still hold. */
static void
heartbeat(Loop *l, double now)
{
	long long  *held = NULL;
	int			nheld = 0;
	const char *status;
	int			rc;

	if (!l->p.up || now < l->next_hb)
		return;
	status = l->draining ? MM_NODE_MAINTENANCE :
		l->ntasks >= l->o->slots ? MM_NODE_BUSY : MM_NODE_ONLINE;
	rc = proto_heartbeat(&l->p, status, &held, &nheld);
	if (rc == PROTO_OK)
	{
		for (int i = 0; i < l->ntasks; i++)
			if (!task_done(&l->tasks[i]) && !held_contains(held, nheld, l->tasks[i].job_id))
				abandon(&l->tasks[i], "the job was canceled or re-queued while this node was away");
		l->next_hb = now + l->o->heartbeat_interval;
		repeated_success(&l->hb_backoff, "heartbeat");
	}
	else if (rc != PROTO_LOST)
	{
		repeated_failure(&l->hb_backoff, "heartbeat", &l->p, now);
		l->next_hb = l->hb_backoff.next;
	}
	free(held);
}

/* Starts the jobs a claim leased (an array of {job_id, config}) in free slots. */
static void
start_jobs(Loop *l, json_t *jobs)
{
	size_t		k;
	json_t	   *j;

	json_array_foreach(jobs, k, j)
	{
		task_start(&l->tasks[l->ntasks], l->o,
				   (long long) json_integer_value(json_object_get(j, "job_id")),
				   json_object_get(j, "config"), trainer_free_one(l->trainers, l->o->slots));
		l->ntasks++;
	}
}

/*
 * Claim work for free slots, once this connection has heartbeated (else the node gets none).  A
 * claim still in flight answers later (its answer wakes the loop); meanwhile nothing is due.
 */
static void
claim(Loop *l, double now)
{
	json_t	   *jobs = NULL;
	int			want = l->o->slots - l->ntasks;
	int			rc;

	if (!l->p.up || !l->p.heartbeat_ok || l->draining || l->ntasks >= l->o->slots ||
		!(l->wake || now >= l->next_poll) || !backoff_ready(&l->claim_backoff, now))
		return;
	rc = proto_claim(&l->p, want, l->o->lease_seconds, &jobs);
	if (rc == PROTO_OK)
	{
		repeated_success(&l->claim_backoff, "claim_jobs");
		start_jobs(l, jobs);
		l->wake = json_array_size(jobs) == (size_t) want;	/* a full batch: there may be more */
		l->next_poll = now + l->o->poll_interval;
		l->idle_seen = json_array_size(jobs) == 0 && l->ntasks == 0;
	}
	else if (rc == PROTO_PENDING)
	{
		l->wake = false;
		l->next_poll = now + l->o->poll_interval;
	}
	else if (rc != PROTO_LOST)
		repeated_failure(&l->claim_backoff, "claim_jobs", &l->p, now);
	json_decref(jobs);
}

/* Wait: until the next heartbeat, claim, reconnect, deadline, report or settlement. */
static double
wait_until(const Loop *l, double now)
{
	double		until = now + 5;

	if (l->p.up)
	{
		if (l->next_hb < until)
			until = l->next_hb;
		if (l->p.heartbeat_ok && !l->draining && l->ntasks < l->o->slots)
		{
			double		claim_at = l->wake ? now : l->next_poll;

			if (claim_at < l->claim_backoff.next)
				claim_at = l->claim_backoff.next;
			if (claim_at < until)
				until = claim_at;
		}
	}
	else if (l->p.connect.next < until)
		until = l->p.connect.next;
	if (l->draining && l->drain_deadline < until)
		until = l->drain_deadline;
	for (int i = 0; i < l->ntasks; i++)
	{
		const Task *t = &l->tasks[i];
		double		report_at = t->last_report + (t->progress ? 0.2 : l->keepalive);

		if (t->pid > 0 && t->deadline < until)
			until = t->deadline;
		if (t->pid > 0 && t->ack_deadline > 0 && t->ack_deadline < until)
			until = t->ack_deadline;
		if (report_at < t->retry_at)
			report_at = t->retry_at;
		if (!t->abandoned && report_at < until)
			until = report_at;
		if (task_done(t))
		{
			/* settlement is waiting for the peer */
			double		settle_at = t->retry_at > now + 0.05 ? t->retry_at : now + 0.05;

			if (settle_at < until)
				until = settle_at;
		}
	}
	if (!l->p.no_batch && batch_due(l, now) > 0 && batch_due(l, now) < until)
		until = batch_due(l, now);
	return until;
}

/*
 * Poll: sleep until then or a signal, a wake-up from the protocol (a NOTIFY, a claim's answer) or
 * a child's output; -1 if poll() failed.
 */
static int
poll_once(Loop *l, double until)
{
	struct pollfd pfd[MM_MAX_SLOTS + PROTO_MAX_FDS + 1];
	int			nfd = 0,
				proto_first,
				nproto,
				task_slot[MM_MAX_SLOTS + PROTO_MAX_FDS + 1];
	double		ms;

	pfd[nfd].fd = mm_sig_pipe_fd();	/* read at the top of the next turn (stop_requests) */
	pfd[nfd++].events = POLLIN;
	proto_first = nfd;
	nproto = proto_pollfds(&l->p, &pfd[nfd], PROTO_MAX_FDS, &until);
	nfd += nproto;
	for (int i = 0; i < l->ntasks; i++)
	{
		if (l->tasks[i].fd < 0)
			continue;
		task_slot[nfd] = i;
		pfd[nfd].fd = l->tasks[i].fd;
		pfd[nfd++].events = POLLIN;
	}
	for (int s = 0; s < nfd; s++)
		pfd[s].revents = 0;
	ms = (until - mm_now_s()) * 1000;
	if (poll(pfd, nfd, ms < 0 ? 0 : (int) ms + 1) < 0 && errno != EINTR)
	{
		logmsg("poll failed: %s", strerror(errno));
		return -1;
	}
	if (proto_after_poll(&l->p, &pfd[proto_first], nproto))
		l->wake = true;
	for (int s = proto_first + nproto; s < nfd; s++)
	{
		if (!(pfd[s].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		task_read(&l->tasks[task_slot[s]], l->o);
	}
	return 0;
}

/*
 * Ends the loop: kills what still runs (fatal only), frees the tasks, stops the idle trainer
 * processes, closes the connection; returns rc.
 */
static int
finish(Loop *l, int rc)
{
	for (int i = 0; i < l->ntasks; i++)
	{
		if (rc != 0)
			task_kill(&l->tasks[i]);
		task_free(&l->tasks[i]);	/* what the job's output left in its buffer goes too */
	}
	l->ntasks = 0;
	trainers_stop(l->trainers, l->o->slots);
	proto_close(&l->p);
	json_decref(l->caps);
	return rc;
}

/* Works for the network until stopped: 0 once stopped cleanly (or idle, if asked), 1 if fatal. */
int
run_loop(const Options *o, const char *node_key)
{
	Loop		l = {
		.o = o,
		.node_key = node_key,
		.caps = capabilities(o),
		/* a failing heartbeat is still tried every --heartbeat-interval: silent nodes go OFFLINE */
		.hb_backoff.cap = o->heartbeat_interval > BACKOFF_MIN ? o->heartbeat_interval : BACKOFF_MIN,
		.keepalive = o->lease_seconds / 3.0,
		.wake = true,
	};

	install_signals();
	trainers_start(l.trainers, o->slots, o);	/* before the connections: small forks */
	if (proto_open(&l.p, o) != 0)
	{
		trainers_stop(l.trainers, o->slots);
		json_decref(l.caps);
		return 1;
	}
	if (proto_connect(&l.p, node_key, l.caps) == PROTO_REFUSED)
	{
		logmsg("the %s refused this node's key; not retrying (exit 1)", proto_peer(&l.p));
		return finish(&l, 1);
	}
	for (;;)
	{
		double		now = mm_now_s();

		stop_requests(&l, now);
		if (!connection(&l, now))
		{
			logmsg("the %s refused this node's key; exiting (exit 1)", proto_peer(&l.p));
			return finish(&l, 1);
		}
		children(&l, now);
		progress(&l, now);
		settle_finished(&l, now);
		heartbeat(&l, now);
		claim(&l, now);
		if ((l.draining || (o->exit_when_idle && l.idle_seen)) && l.ntasks == 0)
		{
			logmsg(l.draining ? "stopped: no running jobs left" :
				   "queue empty: exiting as asked (--exit-when-idle)");
			return finish(&l, 0);
		}
		if (poll_once(&l, wait_until(&l, now)) != 0)
			return finish(&l, 1);
	}
}
