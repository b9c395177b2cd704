/*
 * top.c — top: a full-screen live dashboard of your jobs, the nodes, the network's figures and both
 * charts.
 *
 * One poll() loop waits on the keyboard (raw mode), the self-pipe for signals and the database
 * socket.  The screen is re-read from the database (one query, top_sql) when a NOTIFY arrives on
 * node:heartbeat, node:registered, modelmine_work or a progress channel of one of your RUNNING jobs
 * (the set is re-LISTENed after every read), at most 4 times a second, and at least every 5 s: job
 * ends are not notified, and heartbeats notify only on status changes.  SIGWINCH redraws at the new
 * size from the data in hand.  q or Ctrl-C quits with status 0; SIGTERM and SIGHUP quit with 128+N;
 * every way out restores the terminal (term.c).  A lost connection is retried every few seconds while
 * the last screen stays up, with the reason in the bottom line.
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

#define REFRESH_S 5.0
#define MIN_GAP_S 0.25
#define MAX_WATCHED 100

static const char *const fixed_channels[] = {"node:heartbeat", "node:registered", "modelmine_work"};

typedef struct Top
{
	json_t	   *data;
	long long	watched[MAX_WATCHED];	/* running jobs whose progress channel we LISTEN on */
	int			nwatched;
	bool		connected;
	double		last_fetch,
				retry_at,
				backoff;
	char		why[64];		/* what caused the last read */
	char		problem[300];	/* shown in the bottom line while it lasts */
	char		updated[16];
} Top;

/* $1 months, $2 nodes in the distribution (network_sql), $3 jobs, $4 nodes listed */
static char *
top_sql(void)
{
	char	   *sql;

	if (asprintf(&sql,
				 "SELECT pg_catalog.json_build_object("
				 "  'me', (SELECT pg_catalog.to_json(w) FROM modelmine.whoami() w),"
				 "  'dashboard', modelmine.dashboard(),"
				 "  'jobs', (SELECT COALESCE(pg_catalog.json_agg(j), '[]') FROM modelmine.my_jobs(NULL, 'created', true, $3::int, 0) j),"
				 "  'running', (SELECT COALESCE(pg_catalog.json_agg(j.id), '[]') FROM modelmine.my_jobs('RUNNING', 'created', true, %d, 0) j),"
				 "  'nodes', (SELECT COALESCE(pg_catalog.json_agg(n), '[]') FROM modelmine.nodes($4::int, 0) n),"
				 "  'network', (%s))", MAX_WATCHED, network_sql) < 0)
		return NULL;
	return sql;
}

static int
fetch(Ctx *c, Top *t, int jobs, int nodes)
{
	static char *sql;
	char		j[16],
				n[16];
	const char *args[4] = {"6", "12", j, n};
	json_t	   *d;

	if (sql == NULL && (sql = top_sql()) == NULL)
		return -1;
	snprintf(j, sizeof(j), "%d", jobs);
	snprintf(n, sizeof(n), "%d", nodes);
	if ((d = db_json(c, sql, 4, args)) == NULL)
		return -1;
	json_decref(t->data);
	t->data = d;
	t->last_fetch = now_s();
	{
		time_t		now = time(NULL);
		struct tm	tm;

		localtime_r(&now, &tm);
		strftime(t->updated, sizeof(t->updated), "%H:%M:%S", &tm);
	}
	return 0;
}

/* LISTEN on the progress channels of the running jobs just read; UNLISTEN the ones that ended. */
static int
follow_running(Ctx *c, Top *t)
{
	const json_t *running = json_object_get(t->data, "running");
	char		ch[64];
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
		snprintf(ch, sizeof(ch), "job:%lld:progress", t->watched[k]);
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
		snprintf(ch, sizeof(ch), "job:%lld:progress", (long long) json_integer_value(v));
		if (db_listen(c, ch, true) != 0)
			return -1;
		t->watched[t->nwatched++] = json_integer_value(v);
	}
	return 0;
}

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

static void
draw(Ctx *c, Top *t, int rows, int cols, int jobs_shown)
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
	const json_t *d = t->data,
			   *dash = json_object_get(d, "dashboard"),
			   *counts = json_object_get(dash, "jobs"),
			   *net = json_object_get(d, "network"),
			   *jobs = json_object_get(d, "jobs"),
			   *nodes = json_object_get(d, "nodes");
	Lines		l = {0},
				left = {0},
				right = {0};
	Str			b = {0},
				frame = {0};
	char	   *email = fmt_value(json_object_get(json_object_get(d, "me"), "email"));

	/* title bar */
	str_addf(&b, " ModelMine top   %s   balance %lld (%lld in escrow)   my jobs: %lld pending, %lld running, %lld completed, %lld failed ",
			 email, (long long) json_integer_value(json_object_get(dash, "balance")),
			 (long long) json_integer_value(json_object_get(dash, "in_escrow")),
			 (long long) json_integer_value(json_object_get(counts, "PENDING")),
			 (long long) json_integer_value(json_object_get(counts, "RUNNING")),
			 (long long) json_integer_value(json_object_get(counts, "COMPLETED")),
			 (long long) json_integer_value(json_object_get(counts, "FAILED")));
	free(email);
	{
		char	   *fit = text_fit(b.s, cols);
		int			pad = cols - text_width(fit);

		free(str_take(&b));
		str_add(&b, c->color ? "\033[7m" : "");
		str_add(&b, fit);
		str_pad(&b, pad);
		str_add(&b, c->color ? C_RESET : "");
		lines_add(&l, str_take(&b));
		free(fit);
	}

	section(&l, c->color, "MY JOBS");
	if (json_array_size(jobs) == 0)
		lines_add(&l, strdup("no jobs yet: modelmine submit --trainer logreg --dataset blobs"));
	else
	{
		json_t	   *shown = json_array();

		for (size_t i = 0; i < json_array_size(jobs) && (int) i < jobs_shown; i++)
			json_array_append(shown, json_array_get(jobs, i));
		table_lines(shown, job_cols, sizeof(job_cols) / sizeof(job_cols[0]), c->color, &l);
		json_decref(shown);
	}

	section(&l, c->color, "NODES");
	if (json_array_size(nodes) == 0)
		lines_add(&l, strdup("no nodes registered"));
	else
		table_lines(nodes, node_columns, node_ncolumns, c->color, &l);

	section(&l, c->color, "NETWORK");
	stats_lines(json_object_get(net, "stats"), c->color, &l);
	lines_add(&l, strdup(""));
	chart_timeline(json_object_get(net, "timeline"), 6, c->color, &left);
	chart_distribution(json_object_get(net, "distribution"),
					   cols - lines_width(&left) - 4 >= 30 ? cols - lines_width(&left) - 4 : cols, c->color, &right);
	side_by_side(&left, &right, cols, &l);

	/* the frame: every row written (and cleared to its end), the bottom line last */
	str_add(&frame, "\033[H");
	for (int r = 0; r < rows - 1; r++)
	{
		char	   *line = ansi_clip(r < l.n ? l.v[r] : "", cols);

		str_add(&frame, line);
		str_add(&frame, "\033[K\r\n");
		free(line);
	}
	if (t->problem[0])
		str_addf(&b, "%s%s%s", c->color ? C_RED : "", t->problem, c->color ? C_RESET : "");
	else
		str_addf(&b, "%sq quit · r refresh · updated %s (%s)%s", c->color ? C_DIM : "", t->updated, t->why,
				 c->color ? C_RESET : "");
	{
		char	   *line = ansi_clip(b.s, cols - 1);

		str_add(&frame, line);
		str_add(&frame, "\033[K");
		free(line);
	}
	free(b.s);
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

/* Rows of jobs and nodes to ask for, given the screen height. */
static void
budget(int rows, int *jobs, int *nodes)
{
	int			spare = rows - 30;		/* bars, headings, figures, charts */

	*jobs = spare / 2 > 3 ? spare / 2 : 3;
	*nodes = spare - *jobs > 2 ? spare - *jobs : 2;
}

int
cmd_top(Ctx *c, int argc, char **argv)
{
	Top			t = {.backoff = 1};
	bool		want = false;
	int			rc,
				rows,
				cols,
				njobs,
				nnodes;

	if ((rc = parse_plain(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if (!c->json && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)))
		return usage_error(c, "top needs a terminal (for one snapshot as JSON: modelmine top --json)");
	if ((rc = attach(c, &t)) != EXIT_OK)
		return rc;
	rows = term_rows(STDOUT_FILENO, 24);
	cols = term_columns(STDOUT_FILENO, 80);
	budget(rows, &njobs, &nnodes);
	if (fetch(c, &t, c->json ? 50 : njobs, c->json ? 100 : nnodes) != 0)
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
	draw(c, &t, rows, cols, njobs);

	for (;;)
	{
		double		now = now_s(),
					due = t.connected ? (want ? t.last_fetch + MIN_GAP_S : t.last_fetch + REFRESH_S) : t.retry_at;
		struct pollfd pfd[3] = {
			{.fd = STDIN_FILENO, .events = POLLIN},
			{.fd = sig_pipe_fd(), .events = POLLIN},
			{.fd = t.connected ? PQsocket(c->conn) : -1, .events = POLLIN},
		};
		int			n = poll(pfd, 3, due > now ? (int) ((due - now) * 1000) + 1 : 0);
		bool		redraw = false;

		if (n < 0 && errno != EINTR)
		{
			rc = EXIT_ERROR;
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN))
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
					want = true;
					snprintf(t.why, sizeof(t.why), "key r");
					t.last_fetch = 0;
				}
			}
			if (quit)
			{
				rc = EXIT_OK;
				break;
			}
		}
		if (n > 0 && (pfd[1].revents & POLLIN))
		{
			int			sig = sig_pipe_drain();

			if (sig == SIGINT)
			{
				rc = EXIT_OK;
				break;
			}
			if (sig != 0 && sig != SIGWINCH)
			{
				rc = 128 + sig;
				break;
			}
			if (sig == SIGWINCH)
			{
				rows = term_rows(STDOUT_FILENO, rows);
				cols = term_columns(STDOUT_FILENO, cols);
				budget(rows, &njobs, &nnodes);
				redraw = true;
			}
		}
		if (t.connected && n > 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
		{
			PGnotify   *note;

			if (db_consume(c) != 0)
			{
				snprintf(t.problem, sizeof(t.problem), "lost the database connection (%s); retrying",
						 c->err_msg ? c->err_msg : "no reason given");
				db_close(c);
				t.connected = false;
				t.retry_at = now_s() + t.backoff;
				redraw = true;
			}
			else
				while ((note = PQnotifies(c->conn)) != NULL)
				{
					want = true;
					snprintf(t.why, sizeof(t.why), "NOTIFY %s", note->relname);
					PQfreemem(note);
				}
		}
		now = now_s();
		if (!t.connected && now >= t.retry_at)
		{
			c->quiet = true;
			rc = attach(c, &t);
			if (rc == EXIT_OK)
			{
				t.problem[0] = '\0';
				want = true;
				t.last_fetch = 0;
				snprintf(t.why, sizeof(t.why), "reconnected");
			}
			else if (rc != EXIT_CONN)
				break;
			else
			{
				db_close(c);
				t.backoff = t.backoff * 2 > 8 ? 8 : t.backoff * 2;
				t.retry_at = now + t.backoff;
			}
		}
		if (t.connected && ((want && now >= t.last_fetch + MIN_GAP_S) || now >= t.last_fetch + REFRESH_S))
		{
			if (!want)
				snprintf(t.why, sizeof(t.why), "every %.0f s", REFRESH_S);
			if (fetch(c, &t, njobs, nnodes) != 0 || follow_running(c, &t) != 0)
			{
				rc = db_exit_code(c);
				if (rc == EXIT_AUTH)
					break;
				snprintf(t.problem, sizeof(t.problem), "%s%s%s", c->err_msg ? c->err_msg : "error",
						 c->err_hint ? "; hint: " : "", c->err_hint ? c->err_hint : "");
				if (rc == EXIT_CONN)
				{
					db_close(c);
					t.connected = false;
					t.retry_at = now + t.backoff;
				}
				t.last_fetch = now;
			}
			else
				t.problem[0] = '\0';
			want = false;
			redraw = true;
			if (t.connected)
			{
				PGnotify   *note;

				/* notifications that came in during the read: they may postdate it */
				while ((note = PQnotifies(c->conn)) != NULL)
				{
					want = true;
					PQfreemem(note);
				}
			}
		}
		if (redraw)
			draw(c, &t, rows, cols, njobs);
	}
	screen_close();
	if (rc != EXIT_OK && rc < 128 && c->err_msg)
	{
		db_set_hint(c, "28000", "sign in again with: modelmine login EMAIL");
		rc = db_fail(c);
	}
	json_decref(t.data);
	return rc;
}
