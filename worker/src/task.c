/*
 * task.c — one claimed job running in a child process.
 *
 * The child writes JSON lines to a pipe: {"progress": P, "metrics": {...}} any number of times,
 * then {"result": {...}} or {"error": "..."}.  Built-in trainers run in the slot's persistent
 * trainer process (trainer.c), which tags each line with the job; an external runner is exec'd per
 * job with /bin/sh -c exactly as the operator configured it, with the job config on stdin.  A job
 * can only pick a runner by name from the operator's list, never a command. Each child gets its
 * own process group so a timeout or a cancel kills everything it started.  While a job runs, the
 * Task holds its process (pid) and output (fd) alike for both kinds; a trainer's job ends with its
 * last line (the Task lets go of the process, which stays for the next job) or with the process's
 * death, which the Task reaps and reports as today's per-job child.
 */
#include <errno.h>
#include <fcntl.h>
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

/*
 * What this node offers (set_capabilities): built-in trainers, the operator's runners, slots, and
 * what jobs that declare requirements may use: memory (MemTotal) and cores (online processors)
 * unless the operator set them, and the operator's labels.
 */
json_t *
capabilities(const Options *o)
{
	json_t	   *trainers = json_array(),
			   *runners = json_array(),
			   *labels = json_array();
	int			used,
				total;
	long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	for (size_t i = 0; i < MM_NTRAINERS; i++)
		json_array_append_new(trainers, json_string(builtin_trainers[i]));
	for (int i = 0; i < o->nrunners; i++)
		json_array_append_new(runners, json_string(o->runners[i].name));
	for (int i = 0; i < o->nlabels; i++)
		json_array_append_new(labels, json_string(o->labels[i]));
	memory_mb(&used, &total);
	/* slots: the server leases this node no more jobs at once than it runs */
	return json_pack("{s:o, s:o, s:i, s:i, s:i, s:o}", "trainers", trainers, "runners", runners,
					 "slots", o->slots,
					 "memory_mb", o->memory_mb >= 0 ? o->memory_mb :
					 (total < MM_MAX_MEMORY_MB ? total : MM_MAX_MEMORY_MB),
					 "cores", o->cores >= 0 ? o->cores :
					 (int) (ncpu < 1 ? 1 : ncpu > MM_MAX_CORES ? MM_MAX_CORES : ncpu),
					 "labels", labels);
}

/* ---- in the child (external runners) ---- */

static int	child_fd = -1;

/* Writes one JSON line (consumed) to the worker; -1 when the worker is gone. */
static int
write_line(json_t *line)
{
	return child_write_line(child_fd, line);
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

/* Hands a built-in trainer's job to the slot's trainer process tr (trainer.c). */
static int
start_on_trainer(Task *t, const Options *o, json_t *config, Trainer *tr)
{
	const char *trainer = json_string_value(json_object_get(config, "trainer"));
	char		err[512];

	if (tr == NULL || trainer_send(tr, o, t->job_id, config, err, sizeof(err)) != 0)
	{
		t->error = strdup(tr ? err : "worker has no free trainer process");
		return 0;
	}
	tr->busy = true;
	t->trainer = tr;
	t->pid = tr->pid;
	t->fd = tr->out_fd;
	t->ack_deadline = t->started + trainer_ack_seconds(o);
	logmsg("job %lld started (trainer %s, pid %d)", t->job_id,
		   trainer ? trainer : MM_TRAINER_DEFAULT, (int) t->pid);
	return 0;
}

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
 * Starts job_id: checks the config, hands a built-in trainer's job to tr or forks an external
 * runner; a refusal or a failure leaves t->error set.
 */
int
task_start(Task *t, const Options *o, long long job_id, json_t *config, Trainer *tr)
{
	int			p[2];
	const char *runner_name = json_string_value(json_object_get(config, "runner"));
	const Runner *runner = NULL;
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
	else
	{
		/* built-in trainers only: a runner reads the job config exactly as its owner wrote it */
		task_default_seed(config, job_id);
		return start_on_trainer(t, o, config, tr);
	}
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
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a worker killed with -9 takes its runners along */
		if (getppid() == 1)
			_exit(1);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);	/* the worker's handler writes to a pipe closed below */
		close(p[0]);
		child_fd = p[1];
		close_inherited(child_fd);
		run_external(runner, config);
	}
	setpgid(t->pid, t->pid);	/* also here, so kill(-pid) works even before the child ran */
	close(p[1]);
	t->fd = p[0];
	fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
	logmsg("job %lld started (runner %s, pid %d)", job_id, runner->name, (int) t->pid);
	return 0;
}

/*
 * A trainer's line must carry this job's tag (trainer.c); returns false, with t->error set, for one
 * that does not.  The tag goes: what the database takes is today's line.
 */
static bool
trainer_line_ok(Task *t, json_t *msg)
{
	json_t	   *tag = json_object_get(msg, "job");
	char		e[160];

	if (json_is_integer(tag) && (long long) json_integer_value(tag) == t->job_id)
	{
		json_object_del(msg, "job");
		if (json_is_true(json_object_get(msg, "started")))
			t->ack_deadline = 0;
		t->retire = json_is_true(json_object_get(msg, "retire"));
		return true;
	}
	snprintf(e, sizeof(e), "the trainer process wrote a line that is not job %lld's (line %d)",
			 t->job_id, t->lines);
	if (t->error == NULL && t->result == NULL)
		t->error = strdup(e);
	return false;
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
	if (t->trainer && !trainer_line_ok(t, msg))
	{
		json_decref(msg);
		task_kill(t);
		return;
	}
	if ((v = json_object_get(msg, "result")) != NULL && json_is_object(v) && !t->result &&
		!t->error)
		t->result = json_incref(v), t->last_line = true;
	else if ((v = json_object_get(msg, "error")) != NULL && !t->result && !t->error)
		t->error = strdup(json_is_string(v) ? json_string_value(v) :
						  "the runner reported an error"), t->last_line = true;
	else if (json_is_number(json_object_get(msg, "progress")))
	{
		json_decref(t->progress);
		t->progress = json_incref(msg);
	}
	json_decref(msg);
}

/*
 * The end of t's output: a pipe the Task owns is closed; a trainer's stays with the trainer, whose
 * process is killed if it closed its output without exiting (it is reaped as a crash).
 */
static int
end_of_output(Task *t)
{
	if (t->trainer)
		task_kill(t);
	else
		close(t->fd);
	t->fd = -1;
	return 1;
}

/*
 * A trainer's job ended with its last line: the Task lets go of the process, which takes the next
 * job (or is replaced: trainer_job_done).  Anything after the last line breaks the protocol.
 */
static int
release_trainer(Task *t, const Options *o)
{
	Trainer    *tr = t->trainer;

	if (t->len > 0)
	{
		task_kill(t);			/* reaped as a crash, but the job keeps its result or error */
		return 0;
	}
	t->trainer = NULL;
	t->pid = 0;
	t->fd = -1;
	trainer_job_done(tr, o, t->retire);
	return 1;
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
			return end_of_output(t);
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
			return end_of_output(t);
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
			if (t->trainer && t->last_line && !t->killed && release_trainer(t, o))
				return 1;
		}
	}
}

/* Kills the child's whole process group. */
void
task_kill(Task *t)
{
	if (t->pid > 0)
	{
		kill(-t->pid, SIGKILL);
		t->killed = true;		/* a trainer killed with its job is not taken back (task_read) */
	}
}

/*
 * Reaps the child if it exited; returns true once it has.  A trainer process that died with its
 * job is forgotten (trainer_gone: the next job forks a fresh one); the Task keeps its output pipe
 * until it has read it to the end.
 */
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
	if (t->trainer)
	{
		logmsg("job %lld: trainer process %d ended with the job; a new one starts at the next job",
			   t->job_id, (int) t->pid);
		t->trainer->pid = 0;
		if (t->fd >= 0)
			t->trainer->out_fd = -1;	/* now the Task's, closed at its end */
		trainer_gone(t->trainer);
		t->trainer = NULL;
	}
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

/* Closes the pipe (unless a trainer's) and frees what t holds; t is then empty. */
void
task_free(Task *t)
{
	if (t->fd >= 0 && t->trainer == NULL)
		close(t->fd);
	free(t->buf);
	free(t->error);
	json_decref(t->progress);
	json_decref(t->result);
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}
