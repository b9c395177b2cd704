/*
 * watch.c — watch ID: follow one job until it ends.
 *
 * How it learns things (docs/CLI.md says the same):
 *   - progress: LISTEN "job:ID:progress"; the worker's report_progress NOTIFYs it with
 *     {"job_id", "progress", "metrics": {"epoch", "epochs", "loss", "accuracy", ...},
 *     "lease_expires_at"};
 *   - the end: reaching COMPLETED, FAILED or CANCELED is notified on modelmine_jobs_ended with the
 *     ids of the jobs a statement ended ({"status", "job_ids": [...]}); watch wakes up when ID is
 *     among them.  A notification is only a wake-up: the job's row is re-read with modelmine.job(ID)
 *     at start (after LISTEN, so nothing falls between), after every wake-up by notifications, and
 *     when poll() times out.  The timeout is a safety net for a lost notification, not a polling
 *     loop.  It is 5 s, except just after progress arrived: then three times the usual gap between
 *     reports (at least 0.5 s), doubling back to 5 s while nothing changes.
 * One poll() waits on the connection's socket and a self-pipe for signals (Ctrl-C, SIGTERM,
 * SIGWINCH).  A lost connection is retried for up to 60 s; the job's state is re-read after
 * reconnecting.  A server NOTICE or WARNING clears the bar's line before it is printed, so it
 * stands on a line of its own, and the bar is drawn again below it.
 *
 * Exit: 0 COMPLETED, 1 FAILED, 3 CANCELED; 4 or 5 for session or connection trouble; 130 on Ctrl-C.
 */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "modelmine/protocol.h"

#define RECHECK_S 5.0
#define RECONNECT_FOR_S 60.0

typedef struct Watch
{
	long long	id;
	char		idtext[32];
	char		channel[MM_CHANNEL_MAX];
	bool		tty;
	json_t	   *job;			/* latest row: status, progress, metrics, error, result, no model */
	double		progress;
	json_t	   *metrics;
	int			last_line_pct;	/* not a terminal: the whole percent last printed */
	double		last_note;		/* when the last progress notification came */
	double		gap;			/* smoothed time between notifications, 0 until known */
	char		last_status[16];
	bool		bar_shown;		/* the bar is on the terminal's current line, without its newline */
} Watch;

static const char status_sql[] =
	"SELECT pg_catalog.json_build_object('job_id', j.id, 'title', j.title, 'status', j.status, "
	"       'progress', j.progress, 'metrics', j.metrics, 'error', j.error, "
	"       'attempts', j.attempts, 'node_id', j.node_id, "
	"       'result', j.result OPERATOR(pg_catalog.-) 'model') "
	"  FROM modelmine.job($1::bigint) j";

/* libpq's default notice receiver: it hands the message to the connection's notice processor. */
static PQnoticeReceiver next_receiver;

/* The job's status as last read ("?" before the first read). */
static const char *
status_of(const Watch *w)
{
	const char *s = json_string_value(json_object_get(w->job, "status"));

	return s ? s : "?";
}

/* Whether the job has ended: COMPLETED, FAILED or CANCELED. */
static bool
finished(const Watch *w)
{
	const char *s = status_of(w);

	return strcmp(s, MM_STATUS_COMPLETED) == 0 || strcmp(s, MM_STATUS_FAILED) == 0 ||
		strcmp(s, MM_STATUS_CANCELED) == 0;
}

/* Keeps a copy of the latest metrics (an object; anything else leaves the last ones). */
static void
set_metrics(Watch *w, const json_t *m)
{
	if (json_is_object(m))
	{
		json_decref(w->metrics);
		w->metrics = json_deep_copy(m);
	}
}

/* Re-reads the job; -1 on error (kept in c). */
static int
read_job(Ctx *c, Watch *w)
{
	const char *args[1] = {w->idtext};
	json_t	   *j = db_json(c, status_sql, 1, args);
	double		pct;

	if (j == NULL)
		return -1;
	json_decref(w->job);
	w->job = j;
	pct = json_number_value(json_object_get(j, "progress"));
	if (pct > w->progress || strcmp(status_of(w), MM_STATUS_PENDING) == 0)
		w->progress = pct;
	set_metrics(w, json_object_get(j, "metrics"));
	return 0;
}

/* "▕█████▌    ▏" of width cells. */
static void
add_bar(Str *b, double pct, int width, bool color, const char *col)
{
	static const char *const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
	double		cells = pct / 100.0 * width;
	int			full = (int) cells,
				part = (int) ((cells - full) * 8);

	if (full > width)
		full = width;
	if (color)
		str_add(b, col);
	for (int i = 0; i < full; i++)
		str_add(b, "█");
	if (full < width)
		str_add(b, eighths[part]);
	if (color)
		str_add(b, C_RESET C_DIM);
	for (int i = full + (full < width && part > 0 ? 1 : 0); i < width; i++)
		str_add(b, "░");
	if (color)
		str_add(b, C_RESET);
}

/* The one-line state: for the terminal's bar line and for plain lines alike. */
static char *
describe(const Watch *w)
{
	Str			b = {0};
	const char *st = status_of(w);

	if (strcmp(st, MM_STATUS_PENDING) == 0)
	{
		long long	tries = json_integer_value(json_object_get(w->job, "attempts"));

		str_addf(&b, "waiting for a node (PENDING%s)", tries > 0 ? ", re-queued" : "");
	}
	else
	{
		char	   *m = describe_metrics(w->metrics);
		char	   *pct = fmt_number(w->progress, 1);

		str_addf(&b, "%s%%  %s", pct, w->metrics ? m : "");
		free(m);
		free(pct);
	}
	return str_take(&b);
}

/* --json: the state as one JSON object on a line of its own. */
static void
print_event(const Watch *w)
{
	json_t	   *e = json_pack("{s:s, s:I, s:s, s:f, s:O}", "event", "progress",
							  "job_id", (json_int_t) w->id, "status", status_of(w),
							  "progress", w->progress,
							  "metrics", w->metrics ? w->metrics : json_null());

	json_dumpf(e, stdout, JSON_COMPACT | JSON_REAL_PRECISION(15));
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(e);
}

/* Off a terminal: a log, not an animation; a line per whole percent or status change. */
static void
print_line(Watch *w)
{
	const char *st = status_of(w);
	int			pct = (int) floor(w->progress);
	char	   *d;

	if (pct == w->last_line_pct && strcmp(st, w->last_status) == 0)
		return;
	w->last_line_pct = pct;
	snprintf(w->last_status, sizeof(w->last_status), "%s", st);
	d = describe(w);
	printf("job %lld %s %s\n", w->id, st, d);
	fflush(stdout);
	free(d);
}

/* On a terminal: the bar line, redrawn in place and fitted to the width. */
static void
draw_bar(Ctx *c, Watch *w)
{
	const char *st = status_of(w);
	int			cols = term_columns(STDOUT_FILENO, 80);
	char	   *d = describe(w),
			   *head,
			   *line;
	Str			b = {0};
	int			barw;

	if (asprintf(&head, "job %lld ", w->id) < 0)
		head = strdup("job ");
	barw = cols - 1 - text_width(head) - text_width(d) - 2;
	if (barw > 40)
		barw = 40;
	str_add(&b, "\r");
	str_add(&b, head);
	if (strcmp(st, MM_STATUS_PENDING) != 0 && barw >= 10)
	{
		add_bar(&b, w->progress, barw, c->color,
				strcmp(st, MM_STATUS_COMPLETED) == 0 ? C_GREEN : C_CYAN);
		str_add(&b, " ");
	}
	str_add(&b, d);
	line = ansi_clip(b.s, cols - 1);
	fputs(line, stdout);
	fputs("\033[K", stdout);
	fflush(stdout);
	w->bar_shown = true;
	free(line);
	free(b.s);
	free(head);
	free(d);
}

/* Shows the job's state: a JSON event, a log line, or the bar. */
static void
draw(Ctx *c, Watch *w)
{
	if (c->json)
		print_event(w);
	else if (!w->tty)
		print_line(w);
	else
		draw_bar(c, w);
}

/* The last word: prints how the job ended and returns the exit code. */
static int
conclude(Ctx *c, Watch *w)
{
	const char *st = status_of(w);
	const json_t *result = json_object_get(w->job, "result"),
			   *error = json_object_get(w->job, "error");
	int			rc = strcmp(st, MM_STATUS_COMPLETED) == 0 ? EXIT_OK
		: strcmp(st, MM_STATUS_FAILED) == 0 ? EXIT_ERROR : EXIT_CANCELED;
	char	   *stc,
			   *text;

	if (rc == EXIT_OK && json_is_object(result))
	{
		/* the bar's last state is the result: the worker's last progress report may never come */
		json_t	   *m = json_pack("{s:O?, s:O?, s:O?, s:O?}",
								  "epoch", json_object_get(result, "epochs"),
								  "epochs", json_object_get(result, "epochs"),
								  "loss", json_object_get(result, "loss"),
								  "accuracy", json_object_get(result, "accuracy"));

		w->progress = 100;
		set_metrics(w, m);
		json_decref(m);
	}
	if (c->json)
	{
		json_t	   *e = json_pack("{s:s, s:I, s:s, s:O, s:O}", "event", "end",
								  "job_id", (json_int_t) w->id, "status", st,
								  "result", result ? result : json_null(),
								  "error", error ? error : json_null());

		json_dumpf(e, stdout, JSON_COMPACT | JSON_REAL_PRECISION(15));
		fputc('\n', stdout);
		json_decref(e);
		return rc;
	}
	if (w->tty && rc == EXIT_OK)
		draw(c, w);
	if (w->bar_shown)
		fputs("\n", stdout);
	stc = colored(c->color, status_color(st), st);
	if (rc == EXIT_CANCELED)
		printf("job %lld %s (its stake was refunded)\n", w->id, stc);
	else
	{
		text = rc == EXIT_OK ? describe_metrics(result) : fmt_value(error);
		printf("job %lld %s: %s\n", w->id, stc, text);
		free(text);
	}
	free(stc);
	return rc;
}

/* Handles what arrived on the socket; true if a notification for our job came. */
static bool
take_notifications(Watch *w, PGconn *conn)
{
	PGnotify   *n;
	bool		got = false;

	while ((n = PQnotifies(conn)) != NULL)
	{
		if (strcmp(n->relname, w->channel) == 0)
		{
			json_t	   *p = json_loads(n->extra, 0, NULL);

			got = true;
			if (p)
			{
				double		pct = json_number_value(json_object_get(p, "progress"));

				if (pct > w->progress)
					w->progress = pct;
				set_metrics(w, json_object_get(p, "metrics"));
				json_decref(p);
			}
		}
		else if (strcmp(n->relname, MM_CHANNEL_JOBS_ENDED) == 0 &&
				 ended_names(n->extra, &w->id, 1))
			got = true;
		PQfreemem(n);
	}
	return got;
}

/*
 * A NOTICE or WARNING from the server (libpq calls this while it reads a reply): the bar's line is
 * cleared first, so the message, printed as every notice is, starts a line of its own; the loop
 * draws the bar again below it.
 */
static void
on_notice(void *arg, const PGresult *res)
{
	Watch	   *w = arg;

	if (w->bar_shown)
	{
		fputs("\r\033[K", stdout);
		fflush(stdout);
		w->bar_shown = false;
	}
	next_receiver(arg, res);
}

/* Connects (again), listens and reads the job; EXIT_OK, or an exit code after its message. */
static int
attach(Ctx *c, Watch *w)
{
	int			rc = db_open_user(c);

	if (rc != EXIT_OK)
		return rc;
	next_receiver = PQsetNoticeReceiver(c->conn, on_notice, w);
	if (db_listen(c, w->channel, true) != 0 || db_listen(c, MM_CHANNEL_JOBS_ENDED, true) != 0 ||
		read_job(c, w) != 0)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_FOUND, "list your jobs with: modelmine jobs");
		return db_fail(c);
	}
	return EXIT_OK;
}

/* Sleeps up to s seconds unless a signal comes; returns the signal or 0. */
static int
nap(double s)
{
	struct pollfd p = {.fd = sig_pipe_fd(), .events = POLLIN};

	if (poll(&p, 1, (int) (s * 1000)) > 0)
		return sig_pipe_drain();
	return 0;
}

/* After a lost connection: tries again for up to RECONNECT_FOR_S; EXIT_OK or an exit code. */
static int
reconnect(Ctx *c, Watch *w)
{
	double		deadline = now_s() + RECONNECT_FOR_S,
				wait = 1;
	int			rc = EXIT_CONN,
				sig;

	if (w->bar_shown && !c->json)
		fputs("\n", stdout);
	w->bar_shown = false;
	fprintf(stderr, "modelmine: lost the database connection (%s); reconnecting for up to %.0f s\n",
			c->err_msg ? c->err_msg : "no reason given", RECONNECT_FOR_S);
	db_close(c);
	c->quiet = true;
	while (now_s() < deadline)
	{
		if ((sig = nap(wait)) != 0 && sig != SIGWINCH)
			return 128 + sig;
		rc = attach(c, w);
		if (rc == EXIT_OK)
		{
			fprintf(stderr, "modelmine: reconnected\n");
			c->quiet = false;
			return EXIT_OK;
		}
		db_close(c);
		if (rc != EXIT_CONN)
			return rc;
		wait = wait * 2 > 8 ? 8 : wait * 2;
	}
	fprintf(stderr, "modelmine: could not reconnect within %.0f s; the job goes on without us "
			"(modelmine watch %lld)\n", RECONNECT_FOR_S, w->id);
	return EXIT_CONN;
}

/* The next timeout after a read: shorter just after progress came, doubling back to RECHECK_S. */
static double
next_recheck(Watch *w, double recheck, bool noted)
{
	double		now = now_s();

	recheck = fmin(recheck * 2, RECHECK_S);
	if (!noted)
		return recheck;
	if (w->last_note > 0)
		w->gap = w->gap > 0 ? 0.7 * w->gap + 0.3 * (now - w->last_note) : now - w->last_note;
	w->last_note = now;
	return w->gap > 0 ? fmax(fmin(3 * w->gap, RECHECK_S), 0.5) : RECHECK_S;
}

/* The poll loop until the job ends; returns the exit status (conclude's, or why it stopped). */
static int
follow(Ctx *c, Watch *w)
{
	double		recheck = RECHECK_S;
	int			rc;

	while (!finished(w))
	{
		struct pollfd pfd[2] = {
			{.fd = sig_pipe_fd(), .events = POLLIN},
			{.fd = PQsocket(c->conn), .events = POLLIN},
		};
		int			n;
		bool		noted = false;

		draw(c, w);
		n = poll(pfd, 2, (int) (recheck * 1000));
		if (n > 0 && (pfd[0].revents & POLLIN))
		{
			int			sig = sig_pipe_drain();

			if (sig != 0 && sig != SIGWINCH)
			{
				if (w->bar_shown)
					fputs("\n", stdout);
				return 128 + sig;
			}
			continue;			/* SIGWINCH: redraw at the new width */
		}
		if (n > 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
		{
			if (db_consume(c) != 0)
			{
				if ((rc = reconnect(c, w)) != EXIT_OK)
					return rc;
				continue;
			}
			if (!take_notifications(w, c->conn))
				continue;		/* nothing for us (e.g. a partial message): keep waiting */
			noted = true;
		}
		/* a notification or the timeout: the row tells whether the job ended */
		if (read_job(c, w) != 0)
		{
			if (db_exit_code(c) != EXIT_CONN)
				return db_fail(c);
			if ((rc = reconnect(c, w)) != EXIT_OK)
				return rc;
		}
		/* progress that came during the read: libpq queued it; the socket will not wake us */
		take_notifications(w, c->conn);
		recheck = next_recheck(w, recheck, noted);
	}
	return conclude(c, w);
}

/* watch ID: follow the job, then say how it ended. */
int
cmd_watch(Ctx *c, int argc, char **argv)
{
	Watch		w = {.last_line_pct = -1};
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 1, 1)) >= 0)
		return rc;
	if (parse_int64(c, "ID", argv[optind], 1, (long long) 1 << 62, &w.id) != 0)
		return EXIT_USAGE;
	snprintf(w.idtext, sizeof(w.idtext), "%lld", w.id);
	snprintf(w.channel, sizeof(w.channel), MM_CHANNEL_JOB_PROGRESS_FMT, w.id);
	w.tty = isatty(STDOUT_FILENO) && !c->json;
	if (sig_pipe_open() != 0)
	{
		perror("modelmine: pipe");
		return EXIT_ERROR;
	}
	if ((rc = attach(c, &w)) == EXIT_OK)
		rc = follow(c, &w);
	json_decref(w.job);
	json_decref(w.metrics);
	return rc;
}
