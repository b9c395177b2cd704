/*
 * test_worker.c — the worker program's parts that need no database: how a repeated call backs off
 * (and heeds a server's Retry-After) and when its failure is logged again; the worker's hint for a
 * setup problem; the progress reports that keep a lease alive; and the slot count in the node's
 * capabilities.  (What a SQLSTATE means
 * is common/'s, tested in test_common.c.)
 */
#include "testutil.h"
#include "worker.h"

#include <math.h>

/* How a repeated call backs off (1, 2, 4 ... 30 s) and when its failure is logged again. */
static void
test_backoff(void)
{
	Backoff		b = {0};
	const double want[] = {1, 2, 4, 8, 16, 30, 30};

	CHECK(backoff_ready(&b, 0), "a fresh backoff is not ready");
	CHECK(backoff_fail(&b, 100, "permission denied [42501]"), "the first failure is not logged");
	CHECK(b.delay == 1 && b.next == 101, "first delay %g, next %g", b.delay, b.next);
	CHECK(!backoff_ready(&b, 100.5) && backoff_ready(&b, 101), "ready too early or not at all");
	for (size_t i = 1; i < sizeof(want) / sizeof(want[0]); i++)
	{
		CHECK(!backoff_fail(&b, 100, "permission denied [42501]"),
			  "the same failure logged again (%zu)", i);
		CHECK(b.delay == want[i], "failure %zu: delay %g, want %g", i + 1, b.delay, want[i]);
	}
	CHECK(backoff_fail(&b, 100, "function modelmine.claim_jobs does not exist [42883]"),
		  "a new reason not logged");
	CHECK(b.delay == 30, "a new reason reset the delay to %g", b.delay);
	CHECK(backoff_ok(&b) == 8, "backoff_ok: %d failures", b.failures);
	CHECK(b.failures == 0 && backoff_ready(&b, 0) && b.reason[0] == '\0', "not reset");
	CHECK(backoff_ok(&b) == 0, "a second success reports failures");
	CHECK(backoff_fail(&b, 200, "permission denied [42501]"),
		  "after a success the old reason is news again");
	CHECK(b.delay == 1, "after a success the delay starts at %g", b.delay);
	{
		char		plan[96];

		backoff_describe(&b, plan, sizeof(plan));
		CHECK(strcmp(plan, "retrying in 1 s, then less often up to every 30 s") == 0,
			  "described as \"%s\"", plan);
	}
}

/* A smaller cap (the heartbeat's: its interval) bounds the wait. */
static void
test_backoff_cap(void)
{
	Backoff		b = {.cap = 5};
	char		plan[96];

	backoff_fail(&b, 0, "busy");
	backoff_fail(&b, 0, "busy");
	backoff_fail(&b, 0, "busy");
	CHECK(b.delay == 4, "third delay %g", b.delay);
	backoff_fail(&b, 0, "busy");
	CHECK(b.delay == 5 && b.next == 5, "capped delay %g", b.delay);
	backoff_describe(&b, plan, sizeof(plan));
	CHECK(strcmp(plan, "retrying every 5 s") == 0, "described as \"%s\"", plan);
	backoff_ok(&b);
	CHECK(b.cap == 5, "backoff_ok dropped the cap");
}

/* A server's Retry-After pushes the next attempt out, never in; and it counts as the delay. */
static void
test_backoff_not_before(void)
{
	Backoff		b = {0};

	backoff_not_before(&b, 100, 0);
	CHECK(backoff_ready(&b, 100), "no Retry-After delayed a fresh backoff");
	backoff_fail(&b, 100, "503");
	backoff_not_before(&b, 100, 5);
	CHECK(b.next == 105 && b.delay == 5, "Retry-After 5: next %g delay %g", b.next, b.delay);
	backoff_not_before(&b, 100, 2);
	CHECK(b.next == 105, "a shorter Retry-After brought the attempt forward to %g", b.next);
	backoff_fail(&b, 105, "503");
	CHECK(b.delay == 10 && b.next == 115, "doubling goes on from the Retry-After: %g", b.delay);
}

/* The worker's hints for a missing grant or extension, and the hints it keeps. */
static void
test_setup_hints(void)
{
	char		h[512];

	h[0] = '\0';
	CHECK(pg_setup_hint(h, sizeof(h), "42501", "permission denied for schema modelmine", NULL,
						"aclchk.c", "mm_worker", "modelmine_node", "mm"),
		  "no hint for a missing schema grant");
	CHECK_MSG(h, "the login role mm_worker needs membership in modelmine_node: "
			  "GRANT modelmine_node TO mm_worker");
	CHECK_MSG(h, "modelmine_user for first-start registration");
	CHECK(pg_setup_hint(h, sizeof(h), "42501", "permission denied for function claim_jobs", NULL,
						"aclchk.c", "Node One", "modelmine_node", "mm"),
		  "no hint for a missing function grant");
	CHECK_MSG(h, "GRANT modelmine_node TO \"Node One\"");
	CHECK(pg_setup_hint(h, sizeof(h), "42501", "permission denied for function login", NULL,
						"aclchk.c", "ops", "modelmine_user", "mm"), "no hint when registering");
	CHECK_MSG(h, "GRANT modelmine_user TO ops");
	CHECK(pg_setup_hint(h, sizeof(h), "3F000", "schema \"modelmine\" does not exist", NULL,
						"namespace.c", "mm_worker", "modelmine_node", "jobsdb"),
		  "no hint for a missing extension");
	CHECK_MSG(h, "database jobsdb has no modelmine extension: "
			  "run CREATE EXTENSION modelmine CASCADE in it");
	CHECK(pg_setup_hint(h, sizeof(h), "42883",
						"function modelmine.claim_jobs(integer, integer) does not exist",
						"No function matches the given name and argument types. "
						"You might need to add explicit type casts.",
						"parse_func.c", "mm_worker", "modelmine_node", "jobsdb"),
		  "the parser's hint kept");
	CHECK_MSG(h, "CREATE EXTENSION modelmine CASCADE (or ALTER EXTENSION modelmine UPDATE)");
	/* the extension's own errors keep their hints; other schemas are not ours to explain */
	CHECK(!pg_setup_hint(h, sizeof(h), "42501", "job 7 is not leased to this node",
						 "A node may only report on jobs it holds; "
						 "claim work with modelmine.claim_jobs().",
						 "lease.c", "mm_worker", "modelmine_node", "mm"),
		  "replaced the extension's hint");
	CHECK(!pg_setup_hint(h, sizeof(h), "3F000", "schema \"other\" does not exist", NULL,
						 "namespace.c", "mm_worker", "modelmine_node", "mm"),
		  "hint for another schema");
	CHECK(!pg_setup_hint(h, sizeof(h), "55P03", "job 7 is busy", "Try again.", "lease.c",
						 "mm_worker", "modelmine_node", "mm"), "hint for a busy job");
}

/* A running task as task_start leaves it, claimed at t0. */
static Task
task_at(double t0)
{
	Task		t;

	memset(&t, 0, sizeof(t));
	t.job_id = 7;
	t.fd = -1;
	t.started = t.last_report = t0;
	return t;
}

/* The progress a report carries. */
static double
progress_of(json_t *report)
{
	return json_number_value(json_object_get(report, "progress"));
}

/* The reports that keep a lease: the latest line every 200 ms, keepalives, busy pauses. */
static void
test_reports(void)
{
	Task		t = task_at(1000);
	json_t	   *r;
	const double keepalive = 10;	/* lease_seconds 30 */

	/* a silent trainer: nothing before keepalive seconds, then progress 0 again, without metrics */
	CHECK(task_report_due(&t, 1005, keepalive) == NULL, "a report before anything is due");
	r = task_report_due(&t, 1010, keepalive);
	CHECK(r != NULL && progress_of(r) == 0 && json_object_get(r, "metrics") == NULL,
		  "no keepalive with progress 0 after %g s", keepalive);
	task_report_taken(&t, r, 1010);
	json_decref(r);
	CHECK(task_report_due(&t, 1019.9, keepalive) == NULL, "keepalive too early");
	r = task_report_due(&t, 1020, keepalive);
	CHECK(r != NULL, "no second keepalive");
	json_decref(r);

	/* a trainer's line goes out at most every 200 ms; the keepalive then re-sends its progress */
	t.progress = json_pack("{s:f, s:{s:i}}", "progress", 37.5, "metrics", "epoch", 3);
	CHECK(task_report_due(&t, 1010.1, keepalive) == NULL,
		  "a line within 200 ms of the last report");
	r = task_report_due(&t, 1010.25, keepalive);
	CHECK(r == t.progress, "the line held back after 200 ms");
	json_decref(r);
	task_report_taken(&t, t.progress, 1010.25);	/* the loop's settle path hands t.progress itself */
	CHECK(t.progress == NULL && t.reported == 37.5, "the line was not consumed (reported %g)",
		  t.reported);
	t.progress = json_pack("{s:f}", "progress", 40.0);
	CHECK(task_report_due(&t, 1010.35, keepalive) == NULL, "two lines within 200 ms");
	r = task_report_due(&t, 1010.5, keepalive);
	CHECK(r == t.progress, "the latest line not sent after 200 ms");
	task_report_taken(&t, r, 1010.5);
	json_decref(r);
	CHECK(t.progress == NULL && t.reported == 40, "reported %g", t.reported);
	CHECK(task_report_due(&t, 1020.4, keepalive) == NULL,
		  "a keepalive sooner than keepalive seconds after the last report");
	r = task_report_due(&t, 1020.5, keepalive);
	CHECK(r != NULL && progress_of(r) == 40, "the keepalive does not re-send the last progress");
	json_decref(r);

	/* busy: no call for the job before retry_at; abandoned: nothing at all */
	t.retry_at = 1030;
	CHECK(task_report_due(&t, 1029, keepalive) == NULL, "a report during the busy pause");
	r = task_report_due(&t, 1030, keepalive);
	CHECK(r != NULL, "no report after the busy pause");
	json_decref(r);
	t.abandoned = true;
	CHECK(task_report_due(&t, 2000, keepalive) == NULL, "a report for an abandoned job");
	task_free(&t);
}

/* The capabilities document: trainers, runners, slots, memory, cores, labels. */
static void
test_capabilities(void)
{
	Options		o = {.slots = 3, .nrunners = 1, .runners = {{"torch-cnn", "true"}}};
	json_t	   *c = capabilities(&o);

	CHECK(json_integer_value(json_object_get(c, "slots")) == 3, "slots missing or wrong");
	CHECK(json_array_size(json_object_get(c, "trainers")) == 4, "trainers");
	CHECK(strcmp(json_string_value(json_array_get(json_object_get(c, "runners"), 0)),
				 "torch-cnn") == 0, "runners");
	json_decref(c);
	o.slots = 64;
	c = capabilities(&o);
	CHECK(json_integer_value(json_object_get(c, "slots")) == 64, "slots 64");
	json_decref(c);
	/* issue 19: capacity from /proc unless the operator set it (-1: not set), and labels */
	o.memory_mb = -1;
	o.cores = -1;
	c = capabilities(&o);
	CHECK(json_integer_value(json_object_get(c, "memory_mb")) > 0, "memory_mb from /proc/meminfo");
	CHECK(json_integer_value(json_object_get(c, "cores")) >= 1, "cores from sysconf");
	CHECK(json_array_size(json_object_get(c, "labels")) == 0, "no labels unless given");
	json_decref(c);
	o.memory_mb = 2048;
	o.cores = 0;
	o.labels[0] = "gpu";
	o.nlabels = 1;
	c = capabilities(&o);
	CHECK(json_integer_value(json_object_get(c, "memory_mb")) == 2048, "--memory-mb 2048");
	CHECK(json_integer_value(json_object_get(c, "cores")) == 0, "--cores 0");
	CHECK(strcmp(json_string_value(json_array_get(json_object_get(c, "labels"), 0)), "gpu") == 0,
		  "--label gpu");
	json_decref(c);
}

/* A config without a seed gets the job id as its seed; a given seed is kept. */
static void
test_default_seed(void)
{
	json_t	   *c = json_pack("{s:s}", "trainer", "logreg");
	json_t	   *given = json_pack("{s:s, s:i}", "trainer", "logreg", "seed", 7);

	task_default_seed(c, 1234);
	CHECK(json_integer_value(json_object_get(c, "seed")) == 1234, "no seed: got %lld",
		  (long long) json_integer_value(json_object_get(c, "seed")));
	task_default_seed(given, 1234);
	CHECK(json_integer_value(json_object_get(given, "seed")) == 7, "a given seed was replaced");
	json_decref(c);
	json_decref(given);
}

/* Runs the worker program's tests. */
int
main(void)
{
	printf("# test_worker\n");
	test_backoff();
	test_backoff_cap();
	test_backoff_not_before();
	test_setup_hints();
	test_reports();
	test_capabilities();
	test_default_seed();
	return t_summary();
}
