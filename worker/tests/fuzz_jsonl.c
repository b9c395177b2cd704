/*
 * fuzz_jsonl.c — libFuzzer target for what the worker makes of a training child's output
 * (src/task.c: task_read splits it into lines, handle_line takes each as JSON: progress, the
 * result or the error, and a persistent trainer's lines must carry the job's tag).  The child is a
 * runner the node owner configured, or the worker's own trainer process running a user's job, so
 * its output is not trusted.  The first input byte picks the mode (bit 0: a trainer's Task) and
 * the output limit; the rest is what the child wrote, fed through a pipe to the real task_read.
 * The trainer functions task.c calls are stubs here (no process is ever started).  Checks: a job
 * never ends with both a result and an error, and a trainer is released at most once.
 *
 *   make -C worker fuzz                            build (scripts/fuzz.sh runs it)
 *   worker/tests/fuzz_jsonl FILE...                replay inputs
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_jsonl: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static int	released;

/* ---- stubs for trainer.c and log.c: no process is started, nothing is logged ---- */
int
child_write_line(int fd, json_t *line)
{
	(void) fd, (void) line;
	return 0;
}

void
trainer_gone(Trainer *tr)
{
	(void) tr;
}

int
trainer_send(Trainer *tr, const Options *o, long long job_id, json_t *config, char *err,
			 size_t errlen)
{
	(void) tr, (void) o, (void) job_id, (void) config, (void) err, (void) errlen;
	return -1;
}

void
trainer_job_done(Trainer *tr, const Options *o, bool retire)
{
	(void) tr, (void) o, (void) retire;
	released++;
}

double
trainer_ack_seconds(const Options *o)
{
	(void) o;
	return 10;
}

void
logmsg(const char *fmt,...)
{
	(void) fmt;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Options		o;
	Trainer		tr;
	Task		t;
	int			p[2];
	int			rc;

	/* a pipe holds 64 KiB: the whole output goes in before it is read */
	if (size == 0 || size > 65536 || pipe(p) != 0)
		return 0;
	memset(&o, 0, sizeof(o));
	memset(&tr, 0, sizeof(tr));
	memset(&t, 0, sizeof(t));
	o.max_output = (data[0] >> 1) == 0 ? 1 << 20 : (size_t) (data[0] >> 1) * 32;
	if (write(p[1], data + 1, size - 1) != (ssize_t) (size - 1))
		abort();
	close(p[1]);
	t.job_id = 7;
	t.fd = p[0];
	t.trainer = (data[0] & 1) ? &tr : NULL;
	released = 0;
	do
		rc = task_read(&t, &o);
	while (rc == 0);
	MUST(t.fd == -1);
	MUST(!(t.result && t.error));
	MUST(released <= 1);
	MUST(released == 0 || (data[0] & 1));
	if (data[0] & 1)
		close(p[0]);			/* a trainer's pipe is the trainer's, not the Task's */
	t.trainer = NULL;
	task_free(&t);
	return 0;
}
