/*
 * task.c — one claimed job running in a child process.
 *
 * The child writes JSON lines to a pipe: {"progress": P, "metrics": {...}} any number of times,
 * then {"result": {...}} or {"error": "..."}.  Built-in trainers run in a forked child that calls
 * the training library; an external runner is exec'd with /bin/sh -c exactly as the operator
 * configured it, with the job config on stdin.  A job can only pick a runner by name from the
 * operator's list, never a command. Each child gets its own process group so a timeout or a cancel
 * kills everything it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmtrain.h"
#include "worker.h"

static const char *const builtin_trainers[MM_NTRAINERS] = MM_TRAINERS;

/* What this node offers (set_capabilities): built-in trainers, the operator's runners, slots. */
json_t *
capabilities(const Options *o)
{
	json_t	   *trainers = json_array(),
			   *runners = json_array();

	for (size_t i = 0; i < MM_NTRAINERS; i++)
		json_array_append_new(trainers, json_string(builtin_trainers[i]));
	for (int i = 0; i < o->nrunners; i++)
		json_array_append_new(runners, json_string(o->runners[i].name));
	/* slots: the server leases this node no more jobs at once than it runs */
	return json_pack("{s:o, s:o, s:i}", "trainers", trainers, "runners", runners,
					 "slots", o->slots);
}

/* ---- in the child ---- */

static int	child_fd = -1;

/* Writes one JSON line (consumed) to the worker; -1 when the worker is gone. */
static int
write_line(json_t *line)
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
		ssize_t		w = write(child_fd, s + off, n + 1 - off);

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
	(void) ctx;
	return write_line(json_pack("{s:f, s:{s:i, s:i, s:o, s:o, s:o}}",
								"progress", 100.0 * epoch / epochs,
								"metrics", "epoch", epoch, "epochs", epochs,
								"train_loss", num_or_null(train_loss),
								"loss", num_or_null(val_loss),
								"accuracy", num_or_null(val_accuracy))) != 0;
}

/* The child's work for a built-in trainer: train, print the result or the error, exit. */
static void
run_builtin(const Options *o, json_t *config)
{
	mm_limits	lim = {.max_download_bytes = o->max_download,
		.download_timeout_s = o->download_timeout, .file_root = o->data_dir,
	.allow_net = o->allow_net, .n_allow_net = (size_t) o->nallow_net};
	json_t	   *result = NULL;
	char		err[512];

	if (mm_train_run(config, &lim, on_epoch, NULL, &result, err, sizeof(err)) == 0)
		write_line(json_pack("{s:o}", "result", result));
	else
		write_line(json_pack("{s:s}", "error", err));
	_exit(0);
}

/* SIGUSR1 (the worker died): kill the runner's whole process group, this process included. */
static void
kill_group(int sig)
{
	(void) sig;
	kill(0, SIGKILL);			/* the whole process group, this process included */
}

/*
 * This child stays as the group leader and runs the runner as its own child: a runner's descendants
 * inherit neither PR_SET_PDEATHSIG nor anything else tying them to the worker, so when the worker
 * dies (even by kill -9) this process is told and kills the whole group.
 */
static void
run_external(const Runner *r, json_t *config)
{
	FILE	   *in = tmpfile();
	char	   *text = json_dumps(config, JSON_COMPACT);
	pid_t		pid;
	int			status;

	if (in == NULL || text == NULL || fputs(text, in) < 0 || fflush(in) != 0 ||
		fseek(in, 0, SEEK_SET) != 0)
	{
		write_line(json_pack("{s:s}", "error", "worker could not prepare the runner's stdin"));
		_exit(0);
	}
	signal(SIGUSR1, kill_group);
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	if (getppid() == 1)
		kill_group(0);
	pid = fork();
	if (pid < 0)
	{
		write_line(json_pack("{s:s}", "error", "worker could not fork the runner"));
		_exit(0);
	}
	if (pid == 0)
	{
		signal(SIGUSR1, SIG_DFL);
		dup2(fileno(in), STDIN_FILENO);
		dup2(child_fd, STDOUT_FILENO);
		close(child_fd);
		execl("/bin/sh", "sh", "-c", r->command, (char *) NULL);
		_exit(127);
	}
	close(child_fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
	{
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/*
 * The child keeps stdin, stdout, stderr and its pipe, and nothing else of the worker's: not the
 * database's or the gateway's connections (a connection the worker closes must close, and a
 * runner must not be able to write to it), nor the other jobs' pipes.
 */
static void
close_inherited(int keep)
{
	close_range(3, (unsigned int) keep - 1, 0);
	close_range((unsigned int) keep + 1, ~0U, 0);
}

/* The operator's runner called name, or NULL. */
static const Runner *
find_runner(const Options *o, const char *name)
{
	for (int i = 0; i < o->nrunners; i++)
		if (strcmp(o->runners[i].name, name) == 0)
			return &o->runners[i];
	return NULL;
}

/* ---- in the parent ---- */

/*
 * A config without a seed trains with the job id as its seed: replicas of one job on different
 * nodes then train identically (the validator compares their results), while different jobs with
 * the same config still start from different weights.  (An external runner gets the config as its
 * owner wrote it: its replicas agree when it is deterministic given that config.)
 */
void
task_default_seed(json_t *config, long long job_id)
{
	if (json_is_object(config) && json_object_get(config, "seed") == NULL && job_id >= 0)
		json_object_set_new(config, "seed", json_integer(job_id));
}

/*
 * Starts job_id: checks the config, forks the child; a refusal or a failed fork leaves t->error
 * set.
 */
int
task_start(Task *t, const Options *o, long long job_id, json_t *config)
{
	int			p[2];
	const char *runner_name = json_string_value(json_object_get(config, "runner"));
	const Runner *runner = NULL;
	const char *trainer;
	char		err[512];

	memset(t, 0, sizeof(*t));
	t->job_id = job_id;
	t->fd = -1;
	t->started = t->last_report = mm_now_s();	/* the claim itself gave a fresh lease */
	t->deadline = t->started + o->job_timeout;

	/* refuse before forking what the node cannot or must not run */
	if (runner_name)
	{
		runner = find_runner(o, runner_name);
		if (runner == NULL)
		{
			t->error = strdup("this node has no runner of that name configured");
			return 0;
		}
	}
	else if (mm_config_validate(config, err, sizeof(err)) != 0)
	{
		t->error = strdup(err);
		return 0;
	}
	/* built-in trainers only: a runner reads the job config exactly as its owner wrote it */
	if (runner == NULL)
		task_default_seed(config, job_id);
	if (pipe(p) != 0)
	{
		t->error = strdup("worker could not create a pipe");
		return 0;
	}
	t->pid = fork();
	if (t->pid < 0)
	{
		close(p[0]);
		close(p[1]);
		t->pid = 0;
		t->error = strdup("worker could not fork");
		return 0;
	}
	if (t->pid == 0)
	{
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a worker killed with -9 takes its trainers along */
		if (getppid() == 1)
			_exit(1);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);	/* the worker's handler writes to a pipe closed below */
		close(p[0]);
		child_fd = p[1];
		close_inherited(child_fd);
		if (runner)
			run_external(runner, config);
		run_builtin(o, config);
	}
	setpgid(t->pid, t->pid);	/* also here, so kill(-pid) works even before the child ran */
	close(p[1]);
	t->fd = p[0];
	fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
	trainer = json_string_value(json_object_get(config, "trainer"));
	logmsg("job %lld started (%s %s, pid %d)", job_id, runner ? "runner" : "trainer",
		   runner ? runner->name : trainer ? trainer : MM_TRAINER_DEFAULT, (int) t->pid);
	return 0;
}

/* Takes one line of the child's output: progress (the latest kept), the result, or the error. */
static void
handle_line(Task *t, char *line)
{
	json_error_t err;
	json_t	   *msg = json_loads(line, 0, &err);
	json_t	   *v;

	t->lines++;
	if (msg == NULL || !json_is_object(msg))
	{
		char		e[256];

		snprintf(e, sizeof(e), "output line %d is not a JSON object (%s)", t->lines,
				 msg ? "not an object" : err.text);
		if (t->error == NULL && t->result == NULL)
			t->error = strdup(e);
		json_decref(msg);
		return;
	}
	if ((v = json_object_get(msg, "result")) != NULL && json_is_object(v) && !t->result &&
		!t->error)
		t->result = json_incref(v);
	else if ((v = json_object_get(msg, "error")) != NULL && !t->result && !t->error)
		t->error = strdup(json_is_string(v) ? json_string_value(v) :
						  "the runner reported an error");
	else if (json_is_number(json_object_get(msg, "progress")))
	{
		json_decref(t->progress);
		t->progress = json_incref(msg);
	}
	json_decref(msg);
}

/* Reads what the child wrote; returns 1 at end of output, 0 otherwise. */
int
task_read(Task *t, const Options *o)
{
	char		chunk[65536];

	for (;;)
	{
		ssize_t		n = read(t->fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
		{
			close(t->fd);
			t->fd = -1;
			return 1;
		}
		t->total_out += (size_t) n;
		if (t->total_out > o->max_output)
		{
			if (!t->error && !t->result)
			{
				char		e[128];

				snprintf(e, sizeof(e), "output exceeded the node's limit of %zu bytes",
						 o->max_output);
				t->error = strdup(e);
			}
			task_kill(t);
			close(t->fd);
			t->fd = -1;
			return 1;
		}
		if (t->len + (size_t) n + 1 > t->cap)
		{
			t->cap = (t->len + (size_t) n + 1) * 2;
			t->buf = realloc(t->buf, t->cap);
		}
		memcpy(t->buf + t->len, chunk, (size_t) n);
		t->len += (size_t) n;
		for (;;)
		{
			char	   *nl = memchr(t->buf, '\n', t->len);
			size_t		used;

			if (nl == NULL)
				break;
			*nl = '\0';
			handle_line(t, t->buf);
			used = (size_t) (nl - t->buf) + 1;
			memmove(t->buf, nl + 1, t->len - used);
			t->len -= used;
		}
	}
}

/* Kills the child's whole process group. */
void
task_kill(Task *t)
{
	if (t->pid > 0)
		kill(-t->pid, SIGKILL);
}

/* Reaps the child if it exited; returns true once it has. */
bool
task_reap(Task *t)
{
	int			status;
	pid_t		r;

	if (t->pid == 0)
		return true;
	r = waitpid(t->pid, &status, WNOHANG);
	if (r != t->pid)
		return false;
	t->pid = 0;
	t->exit_status = status;
	return true;
}

/*
 * Once the child is reaped and its output fully read: a child that printed neither a result nor an
 * error crashed or quit.  (Deciding earlier would race the child's last line still in the pipe.)
 */
void
task_conclude(Task *t)
{
	char		e[160];

	if (t->pid != 0 || t->fd >= 0 || t->result || t->error)
		return;
	if (WIFSIGNALED(t->exit_status))
		snprintf(e, sizeof(e), "the trainer crashed (signal %d: %s)", WTERMSIG(t->exit_status),
				 strsignal(WTERMSIG(t->exit_status)));
	else
		snprintf(e, sizeof(e), "exited with status %d without a result",
				 WEXITSTATUS(t->exit_status));
	t->error = strdup(e);
}

/*
 * The progress report due for t at now, or NULL (caller decrefs): the trainer's latest line at most
 * every 200 ms, and when it printed nothing new for keepalive seconds, the progress the database
 * last took, again (0 before any): report_progress is what extends a job's lease, so it must arrive
 * often enough for a trainer that is silent for a long epoch, or a result that waits to be settled.
 */
json_t *
task_report_due(const Task *t, double now, double keepalive)
{
	if (t->abandoned || now < t->retry_at)
		return NULL;
	if (t->progress && now - t->last_report >= 0.2)
		return json_incref(t->progress);
	if (now - t->last_report >= keepalive)
		return json_pack("{s:f}", "progress", t->reported);
	return NULL;
}

/* The database took sent (from task_report_due). */
void
task_report_taken(Task *t, json_t *sent, double now)
{
	t->reported = json_number_value(json_object_get(sent, "progress"));
	t->last_report = now;
	if (sent == t->progress)
	{
		json_decref(t->progress);
		t->progress = NULL;
	}
}

/* Closes the pipe and frees what t holds; t is then empty. */
void
task_free(Task *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
	free(t->error);
	json_decref(t->progress);
	json_decref(t->result);
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}
