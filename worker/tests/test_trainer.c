/*
 * test_trainer.c — the persistent trainer process (src/trainer.c) driven through the Task calls
 * the loop makes (src/task.c), without a database: jobs run one after the other on one process, every
 * line is the job's own, a killed trainer is replaced, a line for another job or anything after the
 * last line ends the process, and a job past --child-memory-limit fails naming it.  At the end the
 * trainer exits at the end of its request pipe with status 0: under `make valgrind` a leak in the
 * trainer's job loop makes that status valgrind's error status, and this test fail.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"
#include "worker.h"

static Options opts = {.slots = 1, .job_timeout = 60, .max_output = 64 << 20};

/* Reads t's output until its end (30 s at most); true if it ended. */
static bool
drain(Task *t)
{
	double		give_up = mm_now_s() + 30;

	while (t->fd >= 0 && mm_now_s() < give_up)
	{
		struct pollfd pfd = {.fd = t->fd, .events = POLLIN};

		if (poll(&pfd, 1, 1000) > 0 && task_read(t, &opts) == 1)
			break;
	}
	while (t->pid > 0 && !task_reap(t) && mm_now_s() < give_up)
		usleep(10000);
	return t->fd < 0 && t->pid == 0;
}

/* Runs config as job id on tr to its end; t is left for the caller to look at and free. */
static void
run(Task *t, Trainer *tr, long long id, const char *config)
{
	json_t	   *c = json_loads(config, 0, NULL);

	task_start(t, &opts, id, c, tr);
	json_decref(c);
	CHECK(drain(t), "job %lld ended within 30 s", id);
	task_conclude(t);
}

/* Jobs one after another on one process: results, errors, and every job's own lines. */
static void
test_reuse(Trainer *tr)
{
	static const char *const configs[] = {
		"{\"trainer\": \"noop\"}",
		"{\"trainer\": \"mlp\", \"dataset\": {\"synthetic\": \"moons\", \"n\": 200}, "
		"\"hidden_layers\": [8], \"epochs\": 3}",
		"{\"trainer\": \"logreg\", \"dataset\": {\"url\": \"file:///nonexistent.csv\", "
		"\"label\": \"y\"}}",
	};
	pid_t		first = tr->pid;
	int			n = t_quick() ? 6 : 60;

	for (int i = 0; i < n; i++)
	{
		Task		t;
		int			kind = i % 3;

		run(&t, tr, 100 + i, configs[kind]);
		CHECK(tr->pid == first && !tr->busy, "job %d ran on the first trainer process and let go", i);
		CHECK(t.ack_deadline == 0, "job %d: the trainer took it", i);
		if (kind == 2)
			CHECK(t.error && strstr(t.error, "file://") && !t.result,
				  "job %d: the library's error, got %s", i, t.error ? t.error : "none");
		else
			CHECK(t.result && !t.error, "job %d: a result, got error %s", i, t.error ? t.error : "-");
		if (kind == 1)
			CHECK(t.progress && json_object_get(t.progress, "job") == NULL &&
				  json_integer_value(json_object_get(json_object_get(t.progress, "metrics"),
													 "epoch")) == 3,
				  "job %d: its last progress line, without the tag", i);
		task_free(&t);
	}
}

/* A trainer killed mid-job is reaped as a crash, and the next job forks a fresh one. */
static void
test_killed(Trainer *tr)
{
	json_t	   *c = json_loads("{\"trainer\": \"mlp\", \"dataset\": {\"synthetic\": \"moons\", "
							   "\"n\": 2000}, \"hidden_layers\": [32, 32], \"epochs\": 10000}",
							   0, NULL);
	pid_t		old = tr->pid;
	Task		t;

	task_start(&t, &opts, 7, c, tr);
	json_decref(c);
	while (t.progress == NULL && t.fd >= 0)
	{
		struct pollfd pfd = {.fd = t.fd, .events = POLLIN};

		if (poll(&pfd, 1, 5000) <= 0 || task_read(&t, &opts) == 1)
			break;
	}
	CHECK(t.progress != NULL, "the slow job reported progress");
	task_kill(&t);
	CHECK(drain(&t), "the killed job ended");
	task_conclude(&t);
	CHECK(t.error && strcmp(t.error, "the trainer crashed (signal 9: Killed)") == 0,
		  "crash error, got %s", t.error ? t.error : "none");
	CHECK(tr->pid == 0 && tr->req_fd < 0 && tr->out_fd < 0 && !tr->busy, "the trainer is forgotten");
	task_free(&t);
	run(&t, tr, 8, "{\"trainer\": \"noop\"}");
	CHECK(t.result && tr->pid > 0 && tr->pid != old, "the next job ran on a fresh process");
	task_free(&t);
}

/* A fake trainer: /bin/sh running script, in its own process group, with tr's pipes. */
static void
fake_trainer(Trainer *tr, const char *script)
{
	int			req[2],
				out[2];

	if (pipe(req) != 0 || pipe(out) != 0)
		abort();
	tr->pid = fork();
	if (tr->pid == 0)
	{
		setpgid(0, 0);
		dup2(req[0], 0);
		dup2(out[1], 1);
		execl("/bin/sh", "sh", "-c", script, (char *) NULL);
		_exit(127);
	}
	setpgid(tr->pid, tr->pid);
	close(req[0]);
	close(out[1]);
	tr->req_fd = req[1];
	tr->out_fd = out[0];
	tr->busy = false;
}

/* The tag guard: a line for another job, or anything after the last line, ends the process. */
static void
test_guard(void)
{
	Trainer		tr;
	Task		t;

	fake_trainer(&tr, "read l; echo '{\"job\": 999, \"started\": true}'; sleep 30");
	run(&t, &tr, 5, "{\"trainer\": \"noop\"}");
	CHECK(t.error &&
		  strcmp(t.error, "the trainer process wrote a line that is not job 5's (line 1)") == 0,
		  "a line for job 999 fails job 5, got %s", t.error ? t.error : "none");
	CHECK(tr.pid == 0, "and the process is gone");
	task_free(&t);

	/* one write: the last line and one more arrive together */
	fake_trainer(&tr, "read l; printf '%s\\n%s\\n%s\\n' '{\"job\": 6, \"started\": true}' "
				 "'{\"job\": 6, \"result\": {\"loss\": 1}}' '{\"job\": 6, \"progress\": 1}'; "
				 "sleep 30");
	run(&t, &tr, 6, "{\"trainer\": \"noop\"}");
	CHECK(t.result && !t.error, "the job keeps its result");
	CHECK(tr.pid == 0, "but the process that wrote past its last line is gone");
	task_free(&t);
}

/* A job needing more than --child-memory-limit fails naming it; the process is replaced. */
static void
test_memory_limit(void)
{
	Options		o = opts;
	Trainer		tr = {.req_fd = -1, .out_fd = -1};
	Task		t;
	json_t	   *c = json_loads("{\"trainer\": \"logreg\", \"dataset\": {\"synthetic\": \"blobs\", "
							   "\"n\": 1000000, \"features\": 40}, \"epochs\": 1}", 0, NULL);

	o.child_memory_limit = 200;
	task_start(&t, &o, 9, c, &tr);
	json_decref(c);
	CHECK(drain(&t), "the big job ended");
	CHECK(t.error && strstr(t.error, "trainer process exceeded the memory limit of 200 MB (out of "
							"memory generating 1000000 rows x 40 features)") == t.error,
		  "memory error, got %s", t.error ? t.error : "none");
	CHECK(tr.pid == 0, "the process is replaced");
	task_free(&t);
}

int
main(void)
{
	Trainer		tr = {.req_fd = -1, .out_fd = -1};
	int			status = -1;
	pid_t		pid;

	CHECK(trainer_spawn(&tr, &opts) == 0, "fork a trainer");
	test_reuse(&tr);
	test_killed(&tr);
	test_guard();
	if (!t_quick())				/* RLIMIT_AS and valgrind do not mix */
		test_memory_limit();
	/* the end of its request pipe: the trainer exits 0, or valgrind's status for its leaks */
	pid = tr.pid;
	close(tr.req_fd);
	close(tr.out_fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the trainer exits 0 at the end of its requests (status %d)", status);
	return t_summary();
}
