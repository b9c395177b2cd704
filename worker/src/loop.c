/*
 * loop.c — the worker's single poll() loop.
 *
 * Each turn, one static function a step: take stop requests, (re)connect if due, reap children and
 * enforce time limits, forward progress, settle finished jobs, heartbeat, claim work for free
 * slots, then poll() on the database socket, the children's pipes and the self-pipe that signal
 * handlers write to (common/sigpipe.c).  A NOTIFY on modelmine_work is only a wake-up: after it,
 * after every timeout and after every reconnect we ask claim_jobs() again, which reads the queue
 * itself (FOR UPDATE SKIP LOCKED), so a lost notification costs at most one poll interval.
 *
 * Leases: only report_progress extends a job's lease, so every running job gets one at least every
 * lease_seconds / 3, re-sending the last progress when the trainer printed nothing new.  A call the
 * database answers with "busy" (lock timeout, serialization failure, deadlock) is retried a second
 * later, never taken as a refusal.  heartbeat and claim_jobs, which the loop repeats, back off
 * exponentially while they fail and log only a new reason (backoff.c); after every (re)connect the
 * node heartbeats before it claims, as a node that is not ONLINE gets no work.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* a stopping worker tries this long to give a job back (or report its end), then leaves it be */
#define RELEASE_GRACE 5.0

/* What the loop keeps from one turn to the next. */
typedef struct Loop
{
	const Options *o;
	const char *node_key;
	json_t	   *caps;			/* declared on every (re)connect */
	Db			db;
	Task		tasks[MM_MAX_SLOTS];
	int			ntasks;
	Backoff		hb_backoff,
				claim_backoff;
	double		keepalive,		/* report_progress extends a lease: 3 tries per lease */
				next_hb,
				next_poll,
				drain_deadline;
	bool		wake,			/* look for work at once (a NOTIFY, a freed slot, a full batch) */
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

/* The database was busy for one of t's calls: retry in a second; logged once until a call works. */
static void
busy(Task *t, const char *what, const Db *db, double now)
{
	if (!t->busy_logged)
		logmsg("job %lld: %s deferred, the database is busy: %s; retrying every second",
			   t->job_id, what, db->error);
	t->busy_logged = true;
	t->retry_at = now + 1;
}

/* A stopping worker gives an abandoned job back to the queue; returns true once done with it. */
static bool
give_back(Db *db, Task *t, double now)
{
	int			rc = DB_LOST;

	if (db->up && now >= t->retry_at)
	{
		rc = db_release(db, t->job_id);
		if (rc == DB_OK || rc == DB_REFUSED)
			return true;		/* refused: it was no longer ours to give back */
		if (rc == DB_BUSY)
			busy(t, "release_job", db, now);
	}
	if (now < t->release_until)
		return false;
	logmsg("job %lld: could not give it back to the queue (%s); "
		   "its lease will run out and the queue will run it again",
		   t->job_id, rc == DB_BUSY ? db->error : "no database connection");
	return true;
}

/* Reports a finished task; returns true when it can be forgotten. */
static bool
settle(Db *db, Task *t, double now)
{
	int			rc;

	if (t->abandoned)
		return !t->release || give_back(db, t, now);
	if (!db->up || now < t->retry_at)
		return false;
	task_conclude(t);
	if (t->progress)
	{
		/* the last epoch's figures first, so the job's metrics end where its result does */
		rc = db_progress(db, t->job_id, t->progress);
		if (rc == DB_LOST)
			return false;
		if (rc == DB_BUSY)
		{
			busy(t, "report_progress", db, now);
			return false;
		}
		if (rc == DB_OK)
			task_report_taken(t, t->progress, now);
		json_decref(t->progress);	/* refused: complete or fail below gets the same answer */
		t->progress = NULL;
	}
	if (t->result)
	{
		rc = db_complete(db, t->job_id, t->result);
		if (rc == DB_REFUSED && strcmp(db->sqlstate, MM_SQLSTATE_BAD_INPUT) == 0)
		{
			/* the database rejected the result itself: that is the job's failure, not the node's */
			free(t->error);
			t->error = strdup("the trainer produced an invalid result (see the node's log)");
			json_decref(t->result);
			t->result = NULL;
			return settle(db, t, now);
		}
	}
	else
		rc = db_fail(db, t->job_id, t->error ? t->error : "unknown error");
	if (rc == DB_BUSY)
	{
		busy(t, t->result ? "complete_job" : "fail_job", db, now);
		return false;
	}
	/* DB_OK: settled; DB_REFUSED: for good (settled before a lost reply, lease lost, canceled) */
	return rc != DB_LOST;
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
report(Db *db, Task *t, double now, double keepalive)
{
	json_t	   *p = task_report_due(t, now, keepalive);
	int			rc;

	if (p == NULL)
		return;
	rc = db_progress(db, t->job_id, p);
	if (rc == DB_OK)
	{
		task_report_taken(t, p, now);
		t->busy_logged = false;
	}
	else if (rc == DB_BUSY)
		busy(t, "report_progress", db, now);
	else if (rc == DB_REFUSED && db->job_gone)
		abandon(t, "the job was canceled or its lease was lost");
	else if (rc == DB_REFUSED)
	{
		/* a report the database will not take (bad figures, no grant): drop it, keep the job */
		if (p == t->progress)
		{
			json_decref(t->progress);
			t->progress = NULL;
		}
		t->retry_at = now + keepalive;
	}
	json_decref(p);
}

/* A call the loop repeats failed: pace it, and log only a new reason. */
static void
repeated_failure(Backoff *b, const char *what, const Db *db, double now)
{
	if (backoff_fail(b, now, db->error))
	{
		char		plan[96];

		backoff_describe(b, plan, sizeof(plan));
		logmsg("%s failed: %s; %s (logged again when the error changes)", what, db->error, plan);
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

/* Stop requests (SIGTERM, SIGINT since the last turn): the first drains, a second releases now. */
static void
stop_requests(Loop *l, double now)
{
	int			sig = mm_sig_pipe_drain(SIGCHLD);

	if (sig != SIGTERM && sig != SIGINT)
		return;
	if (!l->draining)
	{
		l->draining = true;
		l->drain_deadline = now + l->o->drain_timeout;
		logmsg("stop requested: claiming no more jobs; "
			   "finishing %d running job(s) for up to %.0f s, then releasing the rest",
			   l->ntasks, l->o->drain_timeout);
	}
	else
	{
		l->drain_deadline = now;
		logmsg("second stop request: releasing running jobs now");
	}
}

/* Connection: reconnect when the backoff allows; false when the database refused the node's key. */
static bool
connection(Loop *l, double now)
{
	int			rc;

	if (l->db.up || !backoff_ready(&l->db.connect, now))
		return true;
	rc = db_connect(&l->db, l->o, l->node_key, l->caps);
	if (rc == DB_REFUSED)
		return false;
	if (rc == DB_OK)
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
	for (int i = 0; i < l->ntasks && l->db.up; i++)
		report(&l->db, &l->tasks[i], now, l->keepalive);
}

/* Settle finished tasks, and forget them once the database has their end (or a stop gives up). */
static void
settle_finished(Loop *l, double now)
{
	for (int i = 0; i < l->ntasks;)
	{
		Task	   *t = &l->tasks[i];
		bool		forget = task_done(t) && settle(&l->db, t, now);

		if (!forget && l->draining && task_done(t) && !t->abandoned &&
			now >= l->drain_deadline + RELEASE_GRACE)
		{
			logmsg("job %lld: stopping without reporting its end (%s); its lease will run out",
				   t->job_id, l->db.up ? l->db.error : "no database connection");
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
}

/* Heartbeat: says the node is alive and tells us which jobs we still hold. */
static void
heartbeat(Loop *l, double now)
{
	long long  *held = NULL;
	int			nheld = 0;
	const char *status;
	int			rc;

	if (!l->db.up || now < l->next_hb)
		return;
	status = l->draining ? MM_NODE_MAINTENANCE :
		l->ntasks >= l->o->slots ? MM_NODE_BUSY : MM_NODE_ONLINE;
	rc = db_heartbeat(&l->db, status, &held, &nheld);
	if (rc == DB_OK)
	{
		for (int i = 0; i < l->ntasks; i++)
			if (!task_done(&l->tasks[i]) && !held_contains(held, nheld, l->tasks[i].job_id))
				abandon(&l->tasks[i], "the job was canceled or re-queued while this node was away");
		l->next_hb = now + l->o->heartbeat_interval;
		repeated_success(&l->hb_backoff, "heartbeat");
	}
	else if (rc != DB_LOST)
	{
		repeated_failure(&l->hb_backoff, "heartbeat", &l->db, now);
		l->next_hb = l->hb_backoff.next;
	}
	free(held);
}

/* Claim work for free slots, once this connection has heartbeated (else the node gets none). */
static void
claim(Loop *l, double now)
{
	json_t	   *jobs = NULL;
	int			want = l->o->slots - l->ntasks;
	int			rc;

	if (!l->db.up || !l->db.heartbeat_ok || l->draining || l->ntasks >= l->o->slots ||
		!(l->wake || now >= l->next_poll) || !backoff_ready(&l->claim_backoff, now))
		return;
	rc = db_claim(&l->db, want, l->o->lease_seconds, &jobs);
	if (rc == DB_OK)
	{
		size_t		k;
		json_t	   *j;

		repeated_success(&l->claim_backoff, "claim_jobs");
		json_array_foreach(jobs, k, j)
		{
			task_start(&l->tasks[l->ntasks], l->o,
					   (long long) json_integer_value(json_object_get(j, "job_id")),
					   json_object_get(j, "config"));
			l->ntasks++;
		}
		l->wake = json_array_size(jobs) == (size_t) want;	/* a full batch: there may be more */
		l->next_poll = now + l->o->poll_interval;
		l->idle_seen = json_array_size(jobs) == 0 && l->ntasks == 0;
	}
	else if (rc != DB_LOST)
		repeated_failure(&l->claim_backoff, "claim_jobs", &l->db, now);
	json_decref(jobs);
}

/* Wait: until the next heartbeat, claim, reconnect, deadline, report or settlement. */
static double
wait_until(const Loop *l, double now)
{
	double		until = now + 5;

	if (l->db.up)
	{
		if (l->next_hb < until)
			until = l->next_hb;
		if (l->db.heartbeat_ok && !l->draining && l->ntasks < l->o->slots)
		{
			double		claim_at = l->wake ? now : l->next_poll;

			if (claim_at < l->claim_backoff.next)
				claim_at = l->claim_backoff.next;
			if (claim_at < until)
				until = claim_at;
		}
	}
	else if (l->db.connect.next < until)
		until = l->db.connect.next;
	if (l->draining && l->drain_deadline < until)
		until = l->drain_deadline;
	for (int i = 0; i < l->ntasks; i++)
	{
		const Task *t = &l->tasks[i];
		double		report_at = t->last_report + (t->progress ? 0.2 : l->keepalive);

		if (t->pid > 0 && t->deadline < until)
			until = t->deadline;
		if (report_at < t->retry_at)
			report_at = t->retry_at;
		if (!t->abandoned && report_at < until)
			until = report_at;
		if (task_done(t))
		{
			/* settlement is waiting for the database */
			double		settle_at = t->retry_at > now + 0.05 ? t->retry_at : now + 0.05;

			if (settle_at < until)
				until = settle_at;
		}
	}
	return until;
}

/* Poll: sleep until then or a signal, a NOTIFY (wake) or a child's output; -1 if poll() failed. */
static int
poll_once(Loop *l, double until)
{
	struct pollfd pfd[MM_MAX_SLOTS + 2];
	int			nfd = 0,
				db_slot = -1,
				task_slot[MM_MAX_SLOTS + 2];
	double		ms;

	pfd[nfd].fd = mm_sig_pipe_fd();	/* read at the top of the next turn (stop_requests) */
	pfd[nfd++].events = POLLIN;
	if (l->db.up)
	{
		db_slot = nfd;
		pfd[nfd].fd = PQsocket(l->db.conn);
		pfd[nfd++].events = POLLIN;
	}
	for (int i = 0; i < l->ntasks; i++)
	{
		if (l->tasks[i].fd < 0)
			continue;
		task_slot[nfd] = i;
		pfd[nfd].fd = l->tasks[i].fd;
		pfd[nfd++].events = POLLIN;
	}
	ms = (until - mm_now_s()) * 1000;
	if (poll(pfd, nfd, ms < 0 ? 0 : (int) ms + 1) < 0 && errno != EINTR)
	{
		logmsg("poll failed: %s", strerror(errno));
		return -1;
	}
	if (db_slot >= 0 && l->db.up && (pfd[db_slot].revents & (POLLIN | POLLHUP | POLLERR)))
	{
		if (db_drain_notifies(&l->db) > 0)
			l->wake = true;
	}
	for (int s = 0; s < nfd; s++)
	{
		if (s == 0 || s == db_slot || !(pfd[s].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		task_read(&l->tasks[task_slot[s]], l->o);
	}
	return 0;
}

/* Works for the database until stopped: 0 once stopped cleanly (or idle, if asked), 1 if fatal. */
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
	if (db_connect(&l.db, o, node_key, l.caps) == DB_REFUSED)
	{
		logmsg("the database refused this node's key; not retrying (exit 1)");
		json_decref(l.caps);
		return 1;
	}
	for (;;)
	{
		double		now = mm_now_s();

		stop_requests(&l, now);
		if (!connection(&l, now))
		{
			logmsg("the database refused this node's key; exiting (exit 1)");
			for (int i = 0; i < l.ntasks; i++)
				task_kill(&l.tasks[i]);
			json_decref(l.caps);
			return 1;
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
			if (l.db.conn)
				PQfinish(l.db.conn);
			json_decref(l.caps);
			return 0;
		}
		if (poll_once(&l, wait_until(&l, now)) != 0)
			return 1;
	}
}
