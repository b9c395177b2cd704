/*
 * loop.c — the worker's single poll() loop.
 *
 * Each turn: take stop requests, (re)connect if due, reap children and enforce time limits, forward
 * progress, settle finished jobs, heartbeat, claim work for free slots, then poll() on the database
 * socket, the children's pipes and the self-pipe that signal handlers write to (common/sigpipe.c).
 * A NOTIFY on modelmine_work is only a wake-up: after it, after every timeout and after every
 * reconnect we ask claim_jobs() again, which reads the queue itself (FOR UPDATE SKIP LOCKED), so a
 * lost notification costs at most one poll interval.
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

/* a stopping worker tries this long to give a job back (or report its end) before leaving it to its lease */
#define RELEASE_GRACE 5.0

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

static bool
task_done(const Task *t)
{
	return t->pid == 0 && t->fd < 0;
}

/* The database was busy for one of t's calls: retry in a second; logged once per job until a call works. */
static void
busy(Task *t, const char *what, const Db *db, double now)
{
	if (!t->busy_logged)
		logmsg("job %lld: %s deferred, the database is busy: %s; retrying every second", t->job_id, what, db->error);
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
	logmsg("job %lld: could not give it back to the queue (%s); its lease will run out and the queue will run it again",
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
	/* DB_OK: settled; DB_REFUSED: for good (settled by us before a lost reply, lease lost, canceled) */
	return rc != DB_LOST;
}

static void
abandon(Task *t, const char *why)
{
	if (!t->abandoned)
		logmsg("job %lld abandoned: %s", t->job_id, why);
	t->abandoned = true;
	task_kill(t);
}

/* Sends t's due progress report, if any: the trainer's latest line, or the keepalive that holds the lease. */
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
		/* a report the database will not take (bad figures, a missing grant): drop it, keep the job */
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

static void
repeated_success(Backoff *b, const char *what)
{
	int			failures = backoff_ok(b);

	if (failures > 0)
		logmsg("%s works again after %d failed attempt%s", what, failures, failures == 1 ? "" : "s");
}

static bool
held_contains(const long long *held, int n, long long id)
{
	for (int i = 0; i < n; i++)
		if (held[i] == id)
			return true;
	return false;
}

int
run_loop(const Options *o, const char *node_key)
{
	Task		tasks[MM_MAX_SLOTS];
	int			ntasks = 0;
	Db			db = {0};
	/* a failing heartbeat is still tried every --heartbeat-interval: a node silent for long goes OFFLINE */
	Backoff		hb_backoff = {.cap = o->heartbeat_interval > BACKOFF_MIN ? o->heartbeat_interval : BACKOFF_MIN},
				claim_backoff = {0};
	json_t	   *caps = capabilities(o);
	double		keepalive = o->lease_seconds / 3.0, /* report_progress extends a lease: 3 tries per lease */
				next_hb = 0,
				next_poll = 0,
				drain_deadline = 0;
	bool		wake = true,
				draining = false,
				idle_seen = false;

	install_signals();
	if (db_connect(&db, o, node_key, caps) == DB_REFUSED)
	{
		logmsg("the database refused this node's key; not retrying (exit 1)");
		json_decref(caps);
		return 1;
	}

	for (;;)
	{
		double		now = mm_now_s(),
					wait_until;
		struct pollfd pfd[MM_MAX_SLOTS + 2];
		int			nfd = 0,
					db_slot = -1,
					task_slot[MM_MAX_SLOTS + 2];
		int			sig = mm_sig_pipe_drain(SIGCHLD);

		/* stop requests (a SIGTERM or SIGINT since the last turn): first drains, second releases at once */
		if (sig == SIGTERM || sig == SIGINT)
		{
			if (!draining)
			{
				draining = true;
				drain_deadline = now + o->drain_timeout;
				logmsg("stop requested: claiming no more jobs; finishing %d running job(s) for up to %.0f s, then releasing the rest",
					   ntasks, o->drain_timeout);
			}
			else
			{
				drain_deadline = now;
				logmsg("second stop request: releasing running jobs now");
			}
		}

		/* connection */
		if (!db.up && backoff_ready(&db.connect, now))
		{
			int			rc = db_connect(&db, o, node_key, caps);

			if (rc == DB_REFUSED)
			{
				logmsg("the database refused this node's key; exiting (exit 1)");
				for (int i = 0; i < ntasks; i++)
					task_kill(&tasks[i]);
				json_decref(caps);
				return 1;
			}
			if (rc == DB_OK)
			{
				next_hb = now;	/* heartbeat before any claim: learn which leases survived the outage */
				wake = true;
			}
		}

		/* children: reap, time limits */
		for (int i = 0; i < ntasks; i++)
		{
			Task	   *t = &tasks[i];

			if (t->pid > 0 && now > t->deadline && !t->result && !t->error)
			{
				char		e[96];

				snprintf(e, sizeof(e), "time limit of %d s exceeded", o->job_timeout);
				t->error = strdup(e);
				task_kill(t);
			}
			if (draining && now >= drain_deadline && !task_done(t) && !t->abandoned)
			{
				abandon(t, "worker stopping");
				t->release = true;
				t->release_until = now + RELEASE_GRACE;
			}
			task_reap(t);
		}

		/* progress: the latest line at most every 200 ms per job, and a keepalive for a silent one */
		for (int i = 0; i < ntasks && db.up; i++)
			report(&db, &tasks[i], now, keepalive);

		/* settle finished tasks */
		for (int i = 0; i < ntasks;)
		{
			Task	   *t = &tasks[i];
			bool		forget = task_done(t) && settle(&db, t, now);

			if (!forget && draining && task_done(t) && !t->abandoned && now >= drain_deadline + RELEASE_GRACE)
			{
				logmsg("job %lld: stopping without reporting its end (%s); its lease will run out",
					   t->job_id, db.up ? db.error : "no database connection");
				forget = true;
			}
			if (forget)
			{
				task_free(t);
				tasks[i] = tasks[--ntasks];
				wake = true;	/* a slot is free: look for more work */
				continue;
			}
			i++;
		}

		/* heartbeat: says the node is alive and tells us which jobs we still hold */
		if (db.up && now >= next_hb)
		{
			long long  *held = NULL;
			int			nheld = 0;
			const char *status = draining ? MM_NODE_MAINTENANCE : ntasks >= o->slots ? MM_NODE_BUSY : MM_NODE_ONLINE;
			int			rc = db_heartbeat(&db, status, &held, &nheld);

			if (rc == DB_OK)
			{
				for (int i = 0; i < ntasks; i++)
					if (!task_done(&tasks[i]) && !held_contains(held, nheld, tasks[i].job_id))
						abandon(&tasks[i], "the job was canceled or re-queued while this node was away");
				next_hb = now + o->heartbeat_interval;
				repeated_success(&hb_backoff, "heartbeat");
			}
			else if (rc != DB_LOST)
			{
				repeated_failure(&hb_backoff, "heartbeat", &db, now);
				next_hb = hb_backoff.next;
			}
			free(held);
		}

		/* claim, once this connection has heartbeated (a node that has not is not given work) */
		if (db.up && db.heartbeat_ok && !draining && ntasks < o->slots && (wake || now >= next_poll) &&
			backoff_ready(&claim_backoff, now))
		{
			json_t	   *jobs = NULL;
			int			want = o->slots - ntasks;
			int			rc = db_claim(&db, want, o->lease_seconds, &jobs);

			if (rc == DB_OK)
			{
				size_t		k;
				json_t	   *j;

				repeated_success(&claim_backoff, "claim_jobs");
				json_array_foreach(jobs, k, j)
				{
					task_start(&tasks[ntasks], o, (long long) json_integer_value(json_object_get(j, "job_id")),
							   json_object_get(j, "config"));
					ntasks++;
				}
				wake = json_array_size(jobs) == (size_t) want;	/* a full batch: there may be more */
				next_poll = now + o->poll_interval;
				idle_seen = json_array_size(jobs) == 0 && ntasks == 0;
			}
			else if (rc != DB_LOST)
				repeated_failure(&claim_backoff, "claim_jobs", &db, now);
			json_decref(jobs);
		}

		if ((draining || (o->exit_when_idle && idle_seen)) && ntasks == 0)
		{
			logmsg(draining ? "stopped: no running jobs left" : "queue empty: exiting as asked (--exit-when-idle)");
			if (db.conn)
				PQfinish(db.conn);
			json_decref(caps);
			return 0;
		}

		/* wait */
		wait_until = now + 5;
		if (db.up)
		{
			if (next_hb < wait_until)
				wait_until = next_hb;
			if (db.heartbeat_ok && !draining && ntasks < o->slots)
			{
				double		claim_at = wake ? now : next_poll;

				if (claim_at < claim_backoff.next)
					claim_at = claim_backoff.next;
				if (claim_at < wait_until)
					wait_until = claim_at;
			}
		}
		else if (db.connect.next < wait_until)
			wait_until = db.connect.next;
		if (draining && drain_deadline < wait_until)
			wait_until = drain_deadline;
		for (int i = 0; i < ntasks; i++)
		{
			const Task *t = &tasks[i];
			double		report_at = t->last_report + (t->progress ? 0.2 : keepalive);

			if (t->pid > 0 && t->deadline < wait_until)
				wait_until = t->deadline;
			if (report_at < t->retry_at)
				report_at = t->retry_at;
			if (!t->abandoned && report_at < wait_until)
				wait_until = report_at;
			if (task_done(t))
			{
				/* settlement is waiting for the database */
				double		settle_at = t->retry_at > now + 0.05 ? t->retry_at : now + 0.05;

				if (settle_at < wait_until)
					wait_until = settle_at;
			}
		}

		pfd[nfd].fd = mm_sig_pipe_fd();	/* read at the top of the next turn (stop requests) */
		pfd[nfd++].events = POLLIN;
		if (db.up)
		{
			db_slot = nfd;
			pfd[nfd].fd = PQsocket(db.conn);
			pfd[nfd++].events = POLLIN;
		}
		for (int i = 0; i < ntasks; i++)
		{
			if (tasks[i].fd < 0)
				continue;
			task_slot[nfd] = i;
			pfd[nfd].fd = tasks[i].fd;
			pfd[nfd++].events = POLLIN;
		}
		{
			double		ms = (wait_until - mm_now_s()) * 1000;

			if (poll(pfd, nfd, ms < 0 ? 0 : (int) ms + 1) < 0 && errno != EINTR)
			{
				logmsg("poll failed: %s", strerror(errno));
				return 1;
			}
		}
		if (db_slot >= 0 && db.up && (pfd[db_slot].revents & (POLLIN | POLLHUP | POLLERR)))
		{
			if (db_drain_notifies(&db) > 0)
				wake = true;
		}
		for (int s = 0; s < nfd; s++)
		{
			if (s == 0 || s == db_slot || !(pfd[s].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			task_read(&tasks[task_slot[s]], o);
		}
	}
}
