/*
 * test_common.c — the client library the worker shares with the CLI (../common): the monotonic
 * clock, signals through the self-pipe, libpq texts on one line, what a SQLSTATE means (the
 * connection is gone, busy, the job is gone, a setup problem), and the shared pieces of a setup
 * hint.
 */
#include "testutil.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

#include "modelmine/common.h"

/* The monotonic clock measures a short sleep. */
static void
test_clock(void)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	double		a = mm_now_s(),
				b;

	nanosleep(&pause, NULL);
	b = mm_now_s();
	CHECK(a > 0 && b - a >= 0.019 && b - a < 5, "20 ms measured as %g s", b - a);
}

/* A caught signal wakes poll() and is read back; a minor signal does not hide another. */
static void
test_sig_pipe(void)
{
	const int	sigs[] = {SIGUSR1, SIGUSR2};
	struct pollfd p;

	CHECK(mm_sig_pipe_open(sigs, 2) == 0, "mm_sig_pipe_open failed");
	p.fd = mm_sig_pipe_fd();
	p.events = POLLIN;
	CHECK(poll(&p, 1, 0) == 0, "the pipe is readable before any signal");
	CHECK(mm_sig_pipe_drain(SIGUSR2) == 0, "an empty pipe drained to a signal");
	raise(SIGUSR2);
	CHECK(poll(&p, 1, 1000) == 1 && (p.revents & POLLIN), "a signal did not wake poll()");
	CHECK(mm_sig_pipe_drain(SIGUSR2) == SIGUSR2, "the minor signal alone is not reported");
	CHECK(poll(&p, 1, 0) == 0, "the pipe is not empty after a drain");
	/* a signal that asks for more than a look wins over the minor one, whichever came last */
	raise(SIGUSR1);
	raise(SIGUSR2);
	CHECK(mm_sig_pipe_drain(SIGUSR2) == SIGUSR1, "the minor signal hid the other");
	raise(SIGUSR2);
	raise(SIGUSR1);
	CHECK(mm_sig_pipe_drain(SIGUSR2) == SIGUSR1, "SIGUSR1 then the minor one");
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
}

/* libpq's multi-line messages come out on one line. */
static void
test_one_line(void)
{
	char		s[256];

	strcpy(s, "server closed the connection unexpectedly\n"
		   "\tThis probably means the server terminated abnormally\n"
		   "\tbefore or while processing the request.\n");
	mm_one_line(s);
	CHECK(strcmp(s, "server closed the connection unexpectedly "
				 "This probably means the server terminated abnormally "
				 "before or while processing the request.") == 0, "got \"%s\"", s);
	strcpy(s, "connection to server failed:\r\n\tConnection refused  \n");
	mm_one_line(s);
	CHECK(strcmp(s, "connection to server failed: Connection refused") == 0, "got \"%s\"", s);
	strcpy(s, "\n\t\n");
	mm_one_line(s);
	CHECK(s[0] == '\0', "white space alone left \"%s\"", s);
}

/* Which SQLSTATEs mean the connection is gone, busy, or a job no longer the node's. */
static void
test_sqlstates(void)
{
	CHECK(mm_sqlstate_lost("08006") && mm_sqlstate_lost("08001") && mm_sqlstate_lost("57P01") &&
		  mm_sqlstate_lost("57P03"), "connection lost");
	CHECK(!mm_sqlstate_lost("") && !mm_sqlstate_lost("57014") && !mm_sqlstate_lost("28000") &&
		  !mm_sqlstate_lost("55P03"), "not lost (an empty SQLSTATE is the caller's to judge)");
	CHECK(mm_sqlstate_busy("55P03") && mm_sqlstate_busy("40001") && mm_sqlstate_busy("40P01"),
		  "busy states");
	CHECK(!mm_sqlstate_busy("55000") && !mm_sqlstate_busy("42501") && !mm_sqlstate_busy("") &&
		  !mm_sqlstate_busy("57014"), "not busy");
	/* the extension's answers for a job that is no longer ours */
	CHECK(mm_job_gone("55000", "The job ended.", "lease.c"), "55000");
	CHECK(mm_job_gone("42501", "A node may only report on jobs it holds.", "lease.c"),
		  "42501 not leased");
	CHECK(mm_job_gone("P0002", "Report only on jobs returned by modelmine.claim_jobs().",
					  "lease.c"), "P0002");
	/* ... but not busy, and not a missing grant: fixing the GRANT saves the job */
	CHECK(!mm_job_gone("55P03", NULL, "lease.c"), "55P03 abandons the job");
	CHECK(!mm_job_gone("40P01", NULL, "deadlock.c"), "40P01 abandons the job");
	CHECK(!mm_job_gone("42501", NULL, "aclchk.c"), "a missing grant abandons the job");
}

/* Which errors are setup problems, and which keep their own hint. */
static void
test_setup_problems(void)
{
	const char *casts = "No function matches the given name and argument types. "
		"You might need to add explicit type casts.";
	const char *leased = "A node may only report on jobs it holds; "
		"claim work with modelmine.claim_jobs().";

	CHECK(mm_setup_problem("42501", "permission denied for schema modelmine", NULL, "aclchk.c") ==
		  MM_SETUP_NO_GRANT, "a missing schema grant");
	CHECK(mm_setup_problem("42501", "permission denied for function login", NULL, NULL) ==
		  MM_SETUP_NO_GRANT, "a 42501 without a hint");
	CHECK(mm_setup_problem("3F000", "schema \"modelmine\" does not exist", NULL, "namespace.c") ==
		  MM_SETUP_NO_EXTENSION, "a missing extension");
	CHECK(mm_setup_problem("42883",
						   "function modelmine.claim_jobs(integer, integer) does not exist",
						   casts, "parse_func.c") == MM_SETUP_OLD_EXTENSION, "a missing function");
	/* the extension's own errors keep their hints; other schemas and functions are not ours */
	CHECK(mm_setup_problem("42501", "job 7 is not leased to this node", leased, "lease.c") ==
		  MM_SETUP_NONE, "the extension's 42501");
	CHECK(mm_setup_problem("3F000", "schema \"other\" does not exist", NULL, "namespace.c") ==
		  MM_SETUP_NONE, "another schema");
	CHECK(mm_setup_problem("42883", "function other.f() does not exist", casts, "parse_func.c") ==
		  MM_SETUP_NONE, "another function");
	CHECK(mm_setup_problem("42883", "function modelmine.f() does not exist", "A hint of its own.",
						   "x.c") == MM_SETUP_NONE, "a 42883 with a hint of its own");
	CHECK(mm_setup_problem("55P03", "job 7 is busy", "Try again.", "lease.c") == MM_SETUP_NONE,
		  "busy");
}

/* A role name as SQL writes it, and the missing extension's hint. */
static void
test_setup_hint_pieces(void)
{
	char		s[160];

	mm_sql_identifier(s, sizeof(s), "mm_worker");
	CHECK(strcmp(s, "mm_worker") == 0, "a plain role quoted: %s", s);
	mm_sql_identifier(s, sizeof(s), "Node One");
	CHECK(strcmp(s, "\"Node One\"") == 0, "got %s", s);
	mm_sql_identifier(s, sizeof(s), "say \"hi\"");
	CHECK(strcmp(s, "\"say \"\"hi\"\"\"") == 0, "got %s", s);
	mm_sql_identifier(s, sizeof(s), "1st");
	CHECK(strcmp(s, "\"1st\"") == 0, "a leading digit not quoted: %s", s);
	mm_sql_identifier(s, 6, "Node One");
	CHECK(strcmp(s, "\"No\"") == 0, "cut to 6 bytes: %s", s);
	mm_no_extension_hint(s, sizeof(s), "jobsdb");
	CHECK(strcmp(s, "database jobsdb has no modelmine extension: "
				 "run CREATE EXTENSION modelmine CASCADE in it, or check --db (MODELMINE_DB)") == 0,
		  "got %s", s);
}

/* Runs the client library's tests. */
int
main(void)
{
	printf("# test_common\n");
	test_clock();
	test_sig_pipe();
	test_one_line();
	test_sqlstates();
	test_setup_problems();
	test_setup_hint_pieces();
	return t_summary();
}
