/*
 * top.c — top: a full-screen live dashboard of your jobs, the nodes, the network's figures and both
 * charts.
 *
 * One poll() loop waits on the keyboard (raw mode), the self-pipe for signals and the database
 * socket.  The screen is re-read from the database (one query, top_sql) when a NOTIFY arrives on
 * node:heartbeat, node:registered, modelmine_work or a progress channel of one of your RUNNING
 * jobs (the set is re-LISTENed after every read), or on modelmine_jobs_ended naming one of them,
 * at most 4 times a second, and at least every 5 s: a job that ends before it runs (a pending job
 * canceled) is not among those top follows, and heartbeats notify only on status changes.
 * SIGWINCH redraws at the new size from the data in hand.  q or Ctrl-C quits with status 0; SIGTERM
 * and SIGHUP quit with 128+N; every way out restores the terminal (term.c).  A lost connection is
 * retried every few seconds while the last screen stays up, with the reason in the bottom line.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "modelmine/protocol.h"

#define REFRESH_S 5.0
#define MIN_GAP_S 0.25
#define MAX_WATCHED 100
#define GO_ON (-1)				/* a step of the loop returns this, or the exit status */

static const char *const fixed_channels[] = {
	MM_CHANNEL_NODE_HEARTBEAT, MM_CHANNEL_NODE_REGISTERED, MM_CHANNEL_WORK, MM_CHANNEL_JOBS_ENDED
};

typedef struct Top
{
	json_t	   *data;
	long long	watched[MAX_WATCHED];	/* running jobs whose progress channel we LISTEN on */
	int			nwatched;
	bool		connected;
	bool		want;			/* a read is wanted now: a notification came, or r was pressed */
	bool		redraw;			/* the screen is to be drawn again at the end of this turn */
	double		last_fetch,
				retry_at,
				backoff;
	int			rows,			/* the terminal's size */
				cols,
				njobs,			/* rows of jobs and nodes it has room for */
				nnodes;
	char		why[64];		/* what caused the last read */
	char		problem[300];	/* shown in the bottom line while it lasts */
	char		updated[16];
} Top;

/* The one query for the whole screen: $1 months and $2 nodes for network_sql, $3 jobs, $4 nodes. */
static char *
top_sql(void)
{
	char	   *sql;

	if (asprintf(&sql,
				 "SELECT pg_catalog.json_build_object("
				 "  'me', (SELECT pg_catalog.to_json(w) FROM modelmine.whoami() w),"
				 "  'dashboard', modelmine.dashboard(),"
				 "  'jobs', (SELECT COALESCE(pg_catalog.json_agg(j), '[]')"
				 "           FROM modelmine.my_jobs(NULL, 'created', true, $3::int, 0) j),"
				 "  'running', (SELECT COALESCE(pg_catalog.json_agg(j.id), '[]')"
				 "              FROM modelmine.my_jobs('" MM_STATUS_RUNNING "', 'created', true,"
				 "                                     %d, 0) j),"
				 "  'nodes', (SELECT COALESCE(pg_catalog.json_agg(n), '[]')"
				 "            FROM modelmine.nodes($4::int, 0) n),"
				 "  'network', (%s))", MAX_WATCHED, network_sql) < 0)
		return NULL;
	return sql;
}

/* Reads the screen's data (jobs and nodes rows of each); -1 on error (kept in c). */
static int
fetch(Ctx *c, Top *t, int jobs, int nodes)
{
	static char *sql;
	char		j[16],
				n[16];
	const char *args[4] = {"6", "12", j, n};
	json_t	   *d;
	time_t		now;
	struct tm	tm;

	if (sql == NULL && (sql = top_sql()) == NULL)
		return -1;
	snprintf(j, sizeof(j), "%d", jobs);
	snprintf(n, sizeof(n), "%d", nodes);
	if ((d = db_json(c, sql, 4, args)) == NULL)
		return -1;
	json_decref(t->data);
	t->data = d;
	t->last_fetch = now_s();
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(t->updated, sizeof(t->updated), "%H:%M:%S", &tm);
	return 0;
}

/* The progress channel of a job. */
static void
progress_channel(char *ch, size_t n, long long job)
{
	snprintf(ch, n, MM_CHANNEL_JOB_PROGRESS_FMT, job);
}

/* LISTEN on the progress channels of the running jobs just read; UNLISTEN the ones that ended. */
static int
follow_running(Ctx *c, Top *t)
{
	const json_t *running = json_object_get(t->data, "running");
	char		ch[MM_CHANNEL_MAX];
	size_t		i;
	const json_t *v;

	for (int k = 0; k < t->nwatched;)
	{
		bool		still = false;

		json_array_foreach(running, i, v)
			still = still || json_integer_value(v) == t->watched[k];
		if (still)
		{
			k++;
			continue;
		}
		progress_channel(ch, sizeof(ch), t->watched[k]);
		if (db_listen(c, ch, false) != 0)
			return -1;
		t->watched[k] = t->watched[--t->nwatched];
	}
	json_array_foreach(running, i, v)
	{
		bool		known = false;

		for (int k = 0; k < t->nwatched; k++)
			known = known || t->watched[k] == json_integer_value(v);
		if (known || t->nwatched == MAX_WATCHED)
			continue;
		progress_channel(ch, sizeof(ch), (long long) json_integer_value(v));
		if (db_listen(c, ch, true) != 0)
			return -1;
		t->watched[t->nwatched++] = json_integer_value(v);
	}
	return 0;
}

/* Connects (again), signs in and LISTENs on the fixed channels; EXIT_OK or an exit code. */
static int
attach(Ctx *c, Top *t)
{
	int			rc = db_open_user(c);

	if (rc != EXIT_OK)
		return rc;
	t->nwatched = 0;
	for (size_t i = 0; i < sizeof(fixed_channels) / sizeof(fixed_channels[0]); i++)
		if (db_listen(c, fixed_channels[i], true) != 0)
			return db_fail(c);
	t->connected = true;
	t->backoff = 1;
	return EXIT_OK;
}

/* ---- drawing ---- */

/* A job's progress as a 10-cell bar and a percentage, for the jobs table. */
static char *
cell_bar(const json_t *row, const char *key)
{
	double		p = json_number_value(json_object_get(row, key));
	Str			b = {0};
	int			full = (int) (p / 10 + 0.5);
	char	   *pct = fmt_number(p, 0);

	for (int i = 0; i < 10; i++)
		str_add(&b, i < full ? "█" : "░");
	str_addf(&b, " %3s%%", pct);
	free(pct);
	return str_take(&b);
}

/* A blank line and a section's heading. */
static void
section(Lines *out, bool color, const char *title)
{
	lines_add(out, strdup(""));
	lines_add(out, colored(color, C_BOLD C_BLUE, title));
}

/* Left block, then right block beside it (or below, when the screen is too narrow). */
static void
side_by_side(Lines *left, Lines *right, int cols, Lines *out)
{
	int			lw = lines_width(left);

	if (lw + 4 + lines_width(right) > cols && lw + 4 + 30 > cols)
	{
		lines_append(out, left);
		lines_add(out, strdup(""));
		lines_append(out, right);
		return;
	}
	for (int i = 0; i < left->n || i < right->n; i++)
	{
		Str			b = {0};
		const char *l = i < left->n ? left->v[i] : "";

		str_add(&b, l);
		if (i < right->n)
		{
			str_pad(&b, lw - ansi_width(l) + 4);
			str_add(&b, right->v[i]);
		}
		lines_add(out, str_take(&b));
	}
	lines_free(left);
	lines_free(right);
}

/* The title bar, in reverse video across the screen: you, your balance, your jobs by status. */
static void
title_bar(Ctx *c, const Top *t, Lines *out)
{
	const json_t *dash = json_object_get(t->data, "dashboard"),
			   *counts = json_object_get(dash, "jobs");
	char	   *email = fmt_value(json_object_get(json_object_get(t->data, "me"), "email"));
	Str			b = {0};
	char	   *fit;
	int			pad;

	str_addf(&b, " ModelMine top   %s   balance %lld (%lld in escrow)   my jobs: %lld pending, "
			 "%lld running, %lld completed, %lld failed ",
			 email, (long long) json_integer_value(json_object_get(dash, "balance")),
			 (long long) json_integer_value(json_object_get(dash, "in_escrow")),
			 (long long) json_integer_value(json_object_get(counts, MM_STATUS_PENDING)),
			 (long long) json_integer_value(json_object_get(counts, MM_STATUS_RUNNING)),
			 (long long) json_integer_value(json_object_get(counts, MM_STATUS_COMPLETED)),
			 (long long) json_integer_value(json_object_get(counts, MM_STATUS_FAILED)));
	free(email);
	fit = text_fit(b.s, t->cols);
	pad = t->cols - text_width(fit);
	free(str_take(&b));
	str_add(&b, c->color ? "\033[7m" : "");
	str_add(&b, fit);
	str_pad(&b, pad);
	str_add(&b, c->color ? C_RESET : "");
	lines_add(out, str_take(&b));
	free(fit);
}

/* The screen's content: title bar, my jobs, the nodes, the network's figures and charts. */
static void
screen_lines(Ctx *c, const Top *t, Lines *l)
{
	static const Column job_cols[] = {
		{.key = "id", .header = "ID", .right = true},
		{.key = "status", .header = "STATUS", .status = true},
		{.key = "progress", .header = "PROGRESS", .fn = cell_bar},
		{.key = "title", .header = "TITLE", .max = 32},
		{.key = "stake", .header = "STAKE", .right = true},
		{.key = "node_id", .header = "NODE", .right = true},
		{.key = "created_at", .header = "SUBMITTED", .fn = cell_ago},
	};
	const json_t *net = json_object_get(t->data, "network"),
			   *jobs = json_object_get(t->data, "jobs"),
			   *nodes = json_object_get(t->data, "nodes");
	Lines		left = {0},
				right = {0};
	int			right_w;

	title_bar(c, t, l);
	section(l, c->color, "MY JOBS");
	if (json_array_size(jobs) == 0)
		lines_add(l, strdup("no jobs yet: modelmine submit --trainer logreg --dataset blobs"));
	else
	{
		json_t	   *shown = json_array();

		for (size_t i = 0; i < json_array_size(jobs) && (int) i < t->njobs; i++)
			json_array_append(shown, json_array_get(jobs, i));
		table_lines(shown, job_cols, sizeof(job_cols) / sizeof(job_cols[0]), c->color, l);
		json_decref(shown);
	}

	section(l, c->color, "NODES");
	if (json_array_size(nodes) == 0)
		lines_add(l, strdup("no nodes registered"));
	else
		table_lines(nodes, node_columns, node_ncolumns, c->color, l);

	section(l, c->color, "NETWORK");
	stats_lines(json_object_get(net, "stats"), c->color, l);
	lines_add(l, strdup(""));
	chart_timeline(json_object_get(net, "timeline"), 6, c->color, &left);
	right_w = t->cols - lines_width(&left) - 4;
	if (right_w < 30)
		right_w = t->cols;		/* below the timeline, not beside it */
	chart_distribution(json_object_get(net, "distribution"), right_w, c->color, &right);
	side_by_side(&left, &right, t->cols, l);
}

/* The bottom line: the problem while there is one, else the keys and when and why it was read. */
static char *
bottom_line(Ctx *c, const Top *t)
{
	Str			b = {0};
	char	   *line;

	if (t->problem[0])
		str_addf(&b, "%s%s%s", c->color ? C_RED : "", t->problem, c->color ? C_RESET : "");
	else
		str_addf(&b, "%sq quit · r refresh · updated %s (%s)%s", c->color ? C_DIM : "", t->updated,
				 t->why, c->color ? C_RESET : "");
	line = ansi_clip(b.s, t->cols - 1);
	free(b.s);
	return line;
}

/* Draws the screen in one write: every row written and cleared to its end, the bottom line last. */
static void
draw(Ctx *c, Top *t)
{
	Lines		l = {0};
	Str			frame = {0};
	char	   *line;

	screen_lines(c, t, &l);
	str_add(&frame, "\033[H");
	for (int r = 0; r < t->rows - 1; r++)
	{
		line = ansi_clip(r < l.n ? l.v[r] : "", t->cols);
		str_add(&frame, line);
		str_add(&frame, "\033[K\r\n");
		free(line);
	}
	line = bottom_line(c, t);
	str_add(&frame, line);
	str_add(&frame, "\033[K");
	free(line);
	for (size_t off = 0; off < frame.len;)
	{
		ssize_t		w = write(STDOUT_FILENO, frame.s + off, frame.len - off);

		if (w < 0 && errno != EINTR)
			break;
		off += w > 0 ? (size_t) w : 0;
	}
	free(frame.s);
	lines_free(&l);
}

/* Reads the terminal's size and the rows of jobs and nodes it has room for. */
static void
measure(Top *t)
{
	int			spare;

	t->rows = term_rows(STDOUT_FILENO, t->rows > 0 ? t->rows : 24);
	t->cols = term_columns(STDOUT_FILENO, t->cols > 0 ? t->cols : 80);
	spare = t->rows - 30;		/* bars, headings, figures, charts */
	t->njobs = spare / 2 > 3 ? spare / 2 : 3;
	t->nnodes = spare - t->njobs > 2 ? spare - t->njobs : 2;
}

/* ---- the loop's steps: each returns GO_ON, or the exit status to quit with ---- */

/* Keys: q, Ctrl-C or Ctrl-D quit; r or Ctrl-L read now. */
static int
on_keys(Top *t)
{
	char		keys[32];
	ssize_t		k = read(STDIN_FILENO, keys, sizeof(keys));
	bool		quit = false;

	for (ssize_t i = 0; i < k; i++)
	{
		if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 || keys[i] == 4)
			quit = true;
		else if (keys[i] == 'r' || keys[i] == 'R' || keys[i] == 12)
		{
			t->want = true;
			snprintf(t->why, sizeof(t->why), "key r");
			t->last_fetch = 0;
		}
	}
	return quit ? EXIT_OK : GO_ON;
}

/* A signal: SIGINT quits with 0, SIGTERM and SIGHUP with 128+N; SIGWINCH redraws the screen. */
static int
on_signal(Top *t)
{
	int			sig = sig_pipe_drain();

	if (sig == SIGINT)
		return EXIT_OK;
	if (sig != 0 && sig != SIGWINCH)
		return 128 + sig;
	if (sig == SIGWINCH)
	{
		measure(t);
		t->redraw = true;
	}
	return GO_ON;
}

/* Takes what the database sent: notifications ask for a read; a broken connection is retried. */
static void
on_socket(Ctx *c, Top *t)
{
	PGnotify   *note;

	if (db_consume(c) != 0)
	{
		snprintf(t->problem, sizeof(t->problem), "lost the database connection (%s); retrying",
				 c->err_msg ? c->err_msg : "no reason given");
		db_close(c);
		t->connected = false;
		t->retry_at = now_s() + t->backoff;
		t->redraw = true;
		return;
	}
	while ((note = PQnotifies(c->conn)) != NULL)
	{
		/* the ends of the whole network's jobs: only those of the jobs on screen matter */
		if (strcmp(note->relname, MM_CHANNEL_JOBS_ENDED) != 0 ||
			ended_names(note->extra, t->watched, t->nwatched))
		{
			t->want = true;
			snprintf(t->why, sizeof(t->why), "NOTIFY %s", note->relname);
		}
		PQfreemem(note);
	}
}

/* Disconnected and due: connects again, or waits twice as long (up to 8 s) for the next try. */
static int
retry_connect(Ctx *c, Top *t, double now)
{
	int			rc;

	c->quiet = true;
	rc = attach(c, t);
	if (rc == EXIT_OK)
	{
		t->problem[0] = '\0';
		t->want = true;
		t->last_fetch = 0;
		snprintf(t->why, sizeof(t->why), "reconnected");
		return GO_ON;
	}
	if (rc != EXIT_CONN)
		return rc;
	db_close(c);
	t->backoff = t->backoff * 2 > 8 ? 8 : t->backoff * 2;
	t->retry_at = now + t->backoff;
	return GO_ON;
}

/*
 * Re-reads the screen's data and follows the running jobs.  A failure stays in the bottom line; a
 * lost connection is retried; an ended session quits.
 */
static int
refresh(Ctx *c, Top *t, double now)
{
	PGnotify   *note;

	if (!t->want)
		snprintf(t->why, sizeof(t->why), "every %.0f s", REFRESH_S);
	if (fetch(c, t, t->njobs, t->nnodes) != 0 || follow_running(c, t) != 0)
	{
		int			rc = db_exit_code(c);

		if (rc == EXIT_AUTH)
			return rc;
		snprintf(t->problem, sizeof(t->problem), "%s%s%s", c->err_msg ? c->err_msg : "error",
				 c->err_hint ? "; hint: " : "", c->err_hint ? c->err_hint : "");
		if (rc == EXIT_CONN)
		{
			db_close(c);
			t->connected = false;
			t->retry_at = now + t->backoff;
		}
		t->last_fetch = now;
	}
	else
		t->problem[0] = '\0';
	t->want = false;
	t->redraw = true;
	/* notifications that came in during the read: they may postdate it */
	while (t->connected && (note = PQnotifies(c->conn)) != NULL)
	{
		t->want = t->want || strcmp(note->relname, MM_CHANNEL_JOBS_ENDED) != 0 ||
			ended_names(note->extra, t->watched, t->nwatched);
		PQfreemem(note);
	}
	return GO_ON;
}

/* The poll loop, until a key, a signal or an error ends it; returns the exit status. */
static int
run(Ctx *c, Top *t)
{
	for (;;)
	{
		double		now = now_s(),
					due = !t->connected ? t->retry_at
			: t->last_fetch + (t->want ? MIN_GAP_S : REFRESH_S);
		struct pollfd pfd[3] = {
			{.fd = STDIN_FILENO, .events = POLLIN},
			{.fd = sig_pipe_fd(), .events = POLLIN},
			{.fd = t->connected ? PQsocket(c->conn) : -1, .events = POLLIN},
		};
		int			n = poll(pfd, 3, due > now ? (int) ((due - now) * 1000) + 1 : 0),
					rc = GO_ON;

		t->redraw = false;
		if (n < 0 && errno != EINTR)
			return EXIT_ERROR;
		if (n > 0 && (pfd[0].revents & POLLIN) && (rc = on_keys(t)) != GO_ON)
			return rc;
		if (n > 0 && (pfd[1].revents & POLLIN) && (rc = on_signal(t)) != GO_ON)
			return rc;
		if (t->connected && n > 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
			on_socket(c, t);
		now = now_s();
		if (!t->connected && now >= t->retry_at && (rc = retry_connect(c, t, now)) != GO_ON)
			return rc;
		if (t->connected && now >= t->last_fetch + (t->want ? MIN_GAP_S : REFRESH_S)
			&& (rc = refresh(c, t, now)) != GO_ON)
			return rc;
		if (t->redraw)
			draw(c, t);
	}
}

/* top: one read, then --json prints it; else the full screen until q, Ctrl-C or a signal. */
int
cmd_top(Ctx *c, int argc, char **argv)
{
	Top			t = {.backoff = 1};
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if (!c->json && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)))
		return usage_error(c, "top needs a terminal "
						   "(for one snapshot as JSON: modelmine top --json)");
	if ((rc = attach(c, &t)) != EXIT_OK)
		return rc;
	measure(&t);
	if (fetch(c, &t, c->json ? 50 : t.njobs, c->json ? 100 : t.nnodes) != 0)
		return db_fail(c);
	if (c->json)
	{
		print_json(t.data);
		json_decref(t.data);
		return EXIT_OK;
	}
	if (follow_running(c, &t) != 0)
		return db_fail(c);
	if (sig_pipe_open() != 0 || screen_enter() != 0)
	{
		screen_close();
		fprintf(stderr, "modelmine: cannot take over the terminal (%s)\n", strerror(errno));
		return EXIT_ERROR;
	}
	snprintf(t.why, sizeof(t.why), "start");
	draw(c, &t);
	rc = run(c, &t);
	screen_close();
	if (rc != EXIT_OK && rc < 128 && c->err_msg)
	{
		db_set_hint(c, MM_SQLSTATE_NOT_SIGNED_IN, "sign in again with: modelmine login EMAIL");
		rc = db_fail(c);
	}
	json_decref(t.data);
	return rc;
}
