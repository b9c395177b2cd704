/*
 * loop.c — the worker's single poll() loop.
 *
 * Each turn: (re)connect if due, reap children and enforce time limits, settle finished jobs, forward
 * progress, heartbeat, claim work for free slots, then poll() on the database socket, the children's
 * pipes and a self-pipe that signal handlers write to.  A NOTIFY on modelmine_work is only a wake-up:
 * after it, after every timeout and after every reconnect we ask claim_jobs() again, which reads the
 * queue itself (FOR UPDATE SKIP LOCKED), so a lost notification costs at most one poll interval.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

extern char db_sqlstate[6];

static int	sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_requests = 0;

static void
on_signal(int sig)
{
	int			saved = errno;
	char		c = (char) sig;

	if (sig == SIGTERM || sig == SIGINT)
		stop_requests++;
	if (write(sig_pipe[1], &c, 1) < 0)
	{
		/* pipe full: the loop is already awake */
	}
	errno = saved;
}

static void
install_signals(void)
{
	struct sigaction sa;

	if (pipe(sig_pipe) != 0)
	{
		perror("pipe");
		exit(1);
	}
	for (int i = 0; i < 2; i++)
	{
		fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static bool
task_done(const Task *t)
{
	return t->pid == 0 && t->fd < 0;
}

/* Reports a finished task; returns true when it can be forgotten. */
static bool
settle(Db *db, Task *t)
{
	int			rc;

	if (t->abandoned)
		return true;
	if (!db->up)
		return false;
	task_conclude(t);
	if (t->progress)
	{
		/* the last epoch's figures first, so the job's metrics end where its result does */
		bool		gone = false;

		if (db_progress(db, t->job_id, t->progress, &gone) == -2)
			return false;
		json_decref(t->progress);
		t->progress = NULL;
	}
	if (t->result)
	{
		rc = db_complete(db, t->job_id, t->result);
		if (rc == -1 && strcmp(db_sqlstate, "22023") == 0)
		{
			/* the database rejected the result itself: that is the job's failure, not the node's */
			free(t->error);
			t->error = strdup("the trainer produced an invalid result (see the node's log)");
			json_decref(t->result);
			t->result = NULL;
			return settle(db, t);
		}
	}
	else
		rc = db_fail(db, t->job_id, t->error ? t->error : "unknown error");
	/* 0: settled; -1: refused for good (already settled by us before a lost reply, lease lost, canceled) */
	return rc != -2;
}

static void
abandon(Task *t, const char *why)
{
	if (!t->abandoned)
		logmsg("job %lld abandoned: %s", t->job_id, why);
	t->abandoned = true;
	task_kill(t);
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
	Task		tasks[MAX_SLOTS];
	int			ntasks = 0;
	Db			db = {.backoff = 1};
	json_t	   *caps = capabilities(o);
	double		next_hb = 0,
				next_poll = 0,
				drain_deadline = 0;
	bool		wake = true,
				draining = false,
				idle_seen = false;
	int			handled_stops = 0;

	install_signals();
	if (db_connect(&db, o, node_key, caps) == -1)
	{
		logmsg("the database refused this node's key; not retrying (exit 1)");
		json_decref(caps);
		return 1;
	}

	for (;;)
	{
		double		now = now_s(),
					wait_until;
		struct pollfd pfd[MAX_SLOTS + 2];
		int			nfd = 0,
					db_slot = -1,
					task_slot[MAX_SLOTS + 2];

		/* stop requests: first drains, second releases at once */
		if (stop_requests > handled_stops)
		{
			handled_stops = stop_requests;
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
		if (!db.up && now >= db.retry_at)
		{
			int			rc = db_connect(&db, o, node_key, caps);

			if (rc == -1)
			{
				logmsg("the database refused this node's key; exiting (exit 1)");
				for (int i = 0; i < ntasks; i++)
					task_kill(&tasks[i]);
				json_decref(caps);
				return 1;
			}
			if (rc == 0)
			{
				next_hb = now;	/* learn at once which leases survived the outage */
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
				if (db.up)
					db_release(&db, t->job_id);
			}
			task_reap(t);
		}

		/* progress (coalesced: the latest line, at most every 200 ms per job) */
		for (int i = 0; i < ntasks && db.up; i++)
		{
			Task	   *t = &tasks[i];
			bool		gone = false;

			if (t->progress && !t->abandoned && now - t->last_report >= 0.2)
			{
				if (db_progress(&db, t->job_id, t->progress, &gone) != -2)
				{
					json_decref(t->progress);
					t->progress = NULL;
					t->last_report = now;
				}
				if (gone)
					abandon(t, "the job was canceled or its lease was lost");
			}
		}

		/* settle finished tasks */
		for (int i = 0; i < ntasks;)
		{
			Task	   *t = &tasks[i];

			if (task_done(t) && settle(&db, t))
			{
				task_free(t);
				tasks[i] = tasks[--ntasks];
				wake = true;	/* a slot is free: look for more work */
				continue;
			}
			i++;
		}

		/* heartbeat: extends our leases and tells us which jobs we still hold */
		if (db.up && now >= next_hb)
		{
			long long  *held = NULL;
			int			nheld = 0;
			const char *status = draining ? "MAINTENANCE" : ntasks >= o->slots ? "BUSY" : "ONLINE";

			if (db_heartbeat(&db, status, &held, &nheld) == 0)
			{
				for (int i = 0; i < ntasks; i++)
					if (!task_done(&tasks[i]) && !held_contains(held, nheld, tasks[i].job_id))
						abandon(&tasks[i], "the job was canceled or re-queued while this node was away");
				next_hb = now + o->heartbeat_interval;
			}
			free(held);
		}

		/* claim */
		if (db.up && !draining && ntasks < o->slots && (wake || now >= next_poll))
		{
			json_t	   *jobs = NULL;
			int			want = o->slots - ntasks;

			if (db_claim(&db, want, o->lease_seconds, &jobs) == 0)
			{
				size_t		k;
				json_t	   *j;

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
			if (!draining && ntasks < o->slots && next_poll < wait_until)
				wait_until = next_poll;
			if (wake && !draining && ntasks < o->slots)
				wait_until = now;
		}
		else if (db.retry_at < wait_until)
			wait_until = db.retry_at;
		if (draining && drain_deadline < wait_until)
			wait_until = drain_deadline;
		for (int i = 0; i < ntasks; i++)
		{
			if (tasks[i].pid > 0 && tasks[i].deadline < wait_until)
				wait_until = tasks[i].deadline;
			if (tasks[i].progress && tasks[i].last_report + 0.2 < wait_until)
				wait_until = tasks[i].last_report + 0.2;
			if (task_done(&tasks[i]))
				wait_until = now + 0.05;	/* settlement is waiting for the database */
		}

		pfd[nfd].fd = sig_pipe[0];
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
			double		ms = (wait_until - now_s()) * 1000;

			if (poll(pfd, nfd, ms < 0 ? 0 : (int) ms + 1) < 0 && errno != EINTR)
			{
				logmsg("poll failed: %s", strerror(errno));
				return 1;
			}
		}
		if (pfd[0].revents & POLLIN)
		{
			char		drain[64];

			while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
				;
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
