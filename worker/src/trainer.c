/*
 * trainer.c — persistent trainer processes: one long-lived child per slot runs the built-in
 * trainers, job after job, so a job keeps process isolation without paying for a fork.
 *
 * The worker writes one request line per job on the trainer's request pipe,
 * {"job": ID, "config": {...}}, and the trainer answers on its output pipe with JSON lines that all
 * carry the same "job": first {"job": ID, "started": true} (it took the request), then
 * {"job": ID, "progress": P, "metrics": {...}} per epoch, and last {"job": ID, "result": {...}} or
 * {"job": ID, "error": "..."}.  A trainer takes the next request only after the last line of the
 * previous job, and the worker kills a trainer whose job ends any other way (crash, cancel, time
 * limit, hang, bad output), so a line can never be taken for another job's; the tag is a guard.
 *
 * Replacement: the worker kills the trainer's process group and forks a fresh one at the next job
 * after a crash, a cancel, a time limit or a hang (task.c, loop.c), after a job that ran out of
 * memory (the process's address space is capped at --child-memory-limit with RLIMIT_AS, so a job
 * that needs more fails to allocate instead of pushing the machine into swap or the OOM killer),
 * when its resident size after a job is above half that limit (a slow leak or fragmentation), and
 * after --child-max-jobs jobs (leaks too slow for the RSS check).  The training library keeps no
 * global state and frees what each job allocated; malloc_trim() after each job gives the memory
 * back to the system, so an idle trainer stays small.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmtrain.h"
#include "worker.h"

/* a trainer must take a request this soon (or in half the job's time limit), or it is hung */
#define TRAINER_ACK_SECONDS 10.0

/* ---- in the trainer process ---- */

/* Writes one JSON line (consumed) to fd; -1 when the worker is gone. */
int
child_write_line(int fd, json_t *line)
{
	char	   *s = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
	size_t		n,
				off = 0;
	int			rc = 0;

	json_decref(line);
	if (s == NULL)
		return -1;
	n = strlen(s);
	s[n] = '\n';				/* replaces the terminator; we write n + 1 bytes */
	while (off < n + 1)
	{
		ssize_t		w = write(fd, s + off, n + 1 - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
		{
			rc = -1;			/* parent gone: stop training */
			break;
		}
		off += (size_t) w;
	}
	free(s);
	return rc;
}

/* What the progress callback needs: where to write, and which job the lines belong to. */
typedef struct JobOut
{
	int			fd;
	long long	job_id;
} JobOut;

/* A metric as JSON: null for NaN or infinity, which JSON cannot hold. */
static json_t *
num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* The training library's progress callback: one progress line per epoch; nonzero stops training. */
static int
on_epoch(void *ctx, int epoch, int epochs, double train_loss, double val_loss, double val_accuracy)
{
	const JobOut *out = ctx;

	return child_write_line(out->fd,
							json_pack("{s:I, s:f, s:{s:i, s:i, s:o, s:o, s:o}}",
									  "job", (json_int_t) out->job_id,
									  "progress", 100.0 * epoch / epochs,
									  "metrics", "epoch", epoch, "epochs", epochs,
									  "train_loss", num_or_null(train_loss),
									  "loss", num_or_null(val_loss),
									  "accuracy", num_or_null(val_accuracy))) != 0;
}

/*
 * Runs one job: the library's result or error, tagged with the job.  A job that ran out of memory
 * fails with the limit named, and asks to be replaced ("retire"): its heap may be fragmented.
 */
static void
run_job(const Options *o, int out_fd, long long job_id, json_t *config)
{
	mm_limits	lim = {.max_download_bytes = o->max_download,
		.download_timeout_s = o->download_timeout, .file_root = o->data_dir,
	.allow_net = o->allow_net, .n_allow_net = (size_t) o->nallow_net};
	JobOut		out = {.fd = out_fd, .job_id = job_id};
	json_t	   *result = NULL;
	char		err[512];

	if (mm_train_run(config, &lim, on_epoch, &out, &result, err, sizeof(err)) == 0)
	{
		if (child_write_line(out_fd, json_pack("{s:I, s:o}", "job", (json_int_t) job_id,
											   "result", result)) == 0)
			return;
		/* no memory to encode the result (or the worker is gone: then this fails too) */
		snprintf(err, sizeof(err), "out of memory encoding the result");
	}
	if (o->child_memory_limit > 0 && strstr(err, "out of memory") != NULL)
	{
		char		e[600];

		snprintf(e, sizeof(e), "trainer process exceeded the memory limit of %d MB (%s)",
				 o->child_memory_limit, err);
		if (child_write_line(out_fd, json_pack("{s:I, s:s, s:b}", "job", (json_int_t) job_id,
											   "error", e, "retire", 1)) == 0)
			return;
	}
	else if (child_write_line(out_fd, json_pack("{s:I, s:s}", "job", (json_int_t) job_id,
												"error", err)) == 0)
		return;
	_exit(1);					/* not even the error went out: the worker reports the exit */
}

/* Closes every descriptor above stderr except a and b (a < b): not the worker's connections. */
static void
close_except(int a, int b)
{
	if (a > 3)
		close_range(3, (unsigned int) a - 1, 0);
	if (b > a + 1)
		close_range((unsigned int) a + 1, (unsigned int) b - 1, 0);
	close_range((unsigned int) b + 1, ~0U, 0);
}

/* The trainer process: takes requests until the worker closes the pipe (or kills it). */
static void
trainer_main(const Options *o, int req_fd, int out_fd)
{
	FILE	   *in = fdopen(req_fd, "r");
	char	   *line = NULL;
	size_t		cap = 0;

	if (in == NULL)
		_exit(1);
	while (getline(&line, &cap, in) > 0)
	{
		json_error_t jerr;
		json_t	   *req = json_loads(line, 0, &jerr);
		json_t	   *id = json_object_get(req, "job");
		long long	job_id = (long long) json_integer_value(id);

		if (!json_is_integer(id) || !json_is_object(json_object_get(req, "config")))
			_exit(1);			/* not the worker's request: the worker replaces us */
		if (child_write_line(out_fd, json_pack("{s:I, s:b}", "job", (json_int_t) job_id,
											   "started", 1)) != 0)
			_exit(0);
		run_job(o, out_fd, job_id, json_object_get(req, "config"));
		json_decref(req);
		malloc_trim(0);			/* give the job's memory back: an idle trainer stays small */
	}
	free(line);
	fclose(in);
	_exit(0);
}

/* ---- in the worker ---- */

/* Forks a fresh trainer process into tr; -1 (tr unchanged) when the system refuses. */
int
trainer_spawn(Trainer *tr, const Options *o)
{
	int			req[2],
				out[2];
	pid_t		pid;

	if (pipe2(req, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) != 0)
	{
		close(req[0]);
		close(req[1]);
		return -1;
	}
	/* a request fits the pipe at once (configs are at most 1 MB): writing it never waits */
	fcntl(req[1], F_SETPIPE_SZ, 1 << 20);
	pid = fork();
	if (pid < 0)
	{
		close(req[0]);
		close(req[1]);
		close(out[0]);
		close(out[1]);
		return -1;
	}
	if (pid == 0)
	{
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a worker killed with -9 takes its trainers along */
		if (getppid() == 1)
			_exit(1);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);	/* the worker's handler writes to a pipe closed below */
		close(req[1]);
		close(out[0]);
		close_except(req[0] < out[1] ? req[0] : out[1], req[0] < out[1] ? out[1] : req[0]);
#ifndef __SANITIZE_ADDRESS__		/* ASan's reserved shadow memory fits under no RLIMIT_AS */
		if (o->child_memory_limit > 0)
		{
			rlim_t		bytes = (rlim_t) o->child_memory_limit << 20;
			struct rlimit rl = {.rlim_cur = bytes, .rlim_max = bytes};

			setrlimit(RLIMIT_AS, &rl);
		}
#endif
		trainer_main(o, req[0], out[1]);
	}
	setpgid(pid, pid);			/* also here, so kill(-pid) works even before the child ran */
	close(req[0]);
	close(out[1]);
	fcntl(req[1], F_SETFL, fcntl(req[1], F_GETFL) | O_NONBLOCK);
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	tr->pid = pid;
	tr->req_fd = req[1];
	tr->out_fd = out[0];
	tr->jobs = 0;
	return 0;
}

/* The trainer process is gone (reaped): forget its pipes; the next job forks a fresh one. */
void
trainer_gone(Trainer *tr)
{
	if (tr->req_fd >= 0)
		close(tr->req_fd);
	if (tr->out_fd >= 0)
		close(tr->out_fd);
	tr->req_fd = tr->out_fd = -1;
	tr->pid = 0;
	tr->busy = false;
}

/* Kills the trainer's process group and reaps it (SIGKILL cannot be ignored: the wait is short). */
void
trainer_stop(Trainer *tr, const char *why)
{
	if (tr->pid > 0)
	{
		if (why)
			logmsg("trainer process %d replaced %s", (int) tr->pid, why);
		kill(-tr->pid, SIGKILL);
		while (waitpid(tr->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	trainer_gone(tr);
}

/* Forks the trainers of all slots up front, while the worker is small (a fork copies its heap). */
void
trainers_start(Trainer *pool, int n, const Options *o)
{
	for (int i = 0; i < n; i++)
	{
		pool[i].req_fd = pool[i].out_fd = -1;
		if (trainer_spawn(&pool[i], o) != 0)
			logmsg("could not start trainer process %d of %d: %s; trying again at its first job",
				   i + 1, n, strerror(errno));
	}
}

/* Stops every trainer (the worker is exiting). */
void
trainers_stop(Trainer *pool, int n)
{
	for (int i = 0; i < n; i++)
		trainer_stop(&pool[i], NULL);
}

/* A trainer no job holds, or NULL. */
Trainer *
trainer_free_one(Trainer *pool, int n)
{
	for (int i = 0; i < n; i++)
		if (!pool[i].busy)
			return &pool[i];
	return NULL;
}

/* The resident size of process pid in kB, from /proc; -1 if unknown. */
long
proc_rss_kb(pid_t pid)
{
	char		path[64];
	long		pages_total,
				pages_rss = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
		pages_rss = -1;
	fclose(f);
	return pages_rss < 0 ? -1 : pages_rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Writes all of buf to a non-blocking pipe, waiting at most TRAINER_ACK_SECONDS; -1 otherwise. */
static int
write_all(int fd, const char *buf, size_t n)
{
	double		give_up = mm_now_s() + TRAINER_ACK_SECONDS;

	while (n > 0)
	{
		ssize_t		w = write(fd, buf, n);

		if (w > 0)
		{
			buf += w;
			n -= (size_t) w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && mm_now_s() < give_up)
		{
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, 100);
			continue;
		}
		return -1;
	}
	return 0;
}

/*
 * Hands job_id to tr, forking a fresh trainer first when it has none, or when the one it has has
 * died while idle or cannot take the request; 0, or -1 with err set.
 */
int
trainer_send(Trainer *tr, const Options *o, long long job_id, json_t *config, char *err,
			 size_t errlen)
{
	json_t	   *req = json_pack("{s:I, s:O}", "job", (json_int_t) job_id, "config", config);
	char	   *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	size_t		n;
	int			rc = -1;

	err[0] = '\0';
	json_decref(req);
	if (text == NULL)
	{
		snprintf(err, errlen, "worker could not encode the job for its trainer process");
		return -1;
	}
	n = strlen(text);
	text[n] = '\n';
	for (int attempt = 0; attempt < 2 && rc != 0; attempt++)
	{
		if (tr->pid > 0 && waitpid(tr->pid, NULL, WNOHANG) == tr->pid)
		{
			logmsg("trainer process %d had exited while idle; starting a new one", (int) tr->pid);
			tr->pid = 0;
			trainer_gone(tr);
		}
		if (tr->pid == 0 && trainer_spawn(tr, o) != 0)
		{
			snprintf(err, errlen, "worker could not fork a trainer process: %s", strerror(errno));
			break;
		}
		rc = write_all(tr->req_fd, text, n + 1);
		if (rc != 0)
			trainer_stop(tr, "(it did not take a job request)");
	}
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errlen, "worker could not hand the job to a trainer process");
	free(text);
	return rc;
}

/*
 * A job on tr ended with its last line: keep the process for the next job, or replace it after a
 * job that ran out of memory (retire), past half its memory limit, or after --child-max-jobs jobs.
 */
void
trainer_job_done(Trainer *tr, const Options *o, bool retire)
{
	long		rss_kb;
	char		why[128];

	tr->busy = false;
	tr->jobs++;
	if (retire)
	{
		trainer_stop(tr, "after running out of memory");
		return;
	}
	if (o->child_max_jobs > 0 && tr->jobs >= o->child_max_jobs)
	{
		snprintf(why, sizeof(why), "after %d jobs (--child-max-jobs)", tr->jobs);
		trainer_stop(tr, why);
		return;
	}
	rss_kb = proc_rss_kb(tr->pid);
	if (o->child_memory_limit > 0 && rss_kb > (long) o->child_memory_limit * 1024 / 2)
	{
		snprintf(why, sizeof(why), "after a job: it keeps %ld MB, over half its limit of %d MB",
				 rss_kb / 1024, o->child_memory_limit);
		trainer_stop(tr, why);
	}
}

/* How long a trainer has to take a request before it counts as hung (within the time limit). */
double
trainer_ack_seconds(const Options *o)
{
	return o->job_timeout / 2.0 < TRAINER_ACK_SECONDS ? o->job_timeout / 2.0 : TRAINER_ACK_SECONDS;
}
