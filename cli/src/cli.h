/*
 * cli.h — modelmine, the command-line client of ModelMine: shared types and the functions one file
 * offers the others.
 *
 * Every command is a function run(Ctx *, argc, argv) listed in main.c.  It talks to the database only
 * through db.c (one connection, parameters always passed separately, errors kept for one-line
 * reporting) and prints through out.c (tables, key/value lists, JSON, colour).  Long-running views
 * (watch.c, top.c) drive their connection from one poll() loop, like the worker.
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "modelmine/common.h"

/* Exit codes (docs/CLI.md lists them). */
enum
{
	EXIT_OK = 0,
	EXIT_ERROR = 1,				/* the database refused something, or the job failed */
	EXIT_USAGE = 2,
	EXIT_CANCELED = 3,			/* watch: the job was canceled */
	EXIT_AUTH = 4,				/* not signed in, or the session expired or was revoked */
	EXIT_CONN = 5				/* cannot reach the database, or lost it */
};

typedef struct Ctx
{
	const char *cmd;			/* command name, for messages */
	const char *db;				/* --db / MODELMINE_DB; NULL: libpq's PG* variables */
	bool		json;			/* --json */
	bool		color;			/* stdout is a terminal and NO_COLOR is not set */
	PGconn	   *conn;
	long long	user_id;		/* after db_open_user */
	/* the last database error, kept by db_query for db_fail */
	char		sqlstate[6];
	char	   *err_msg;
	char	   *err_detail;
	char	   *err_hint;
	bool		conn_lost;
	bool		quiet;			/* db_open: no message on failure (reconnect loops) */
	const char *role;			/* the group role the command needs, named in the hint for a missing
								 * grant: modelmine_user to act as a user (db_open_user sets it);
								 * NULL: modelmine_anon (signup, public figures) */
} Ctx;

/* ---- args.c: per-command option parsing ---- */
enum
{
	OPT_DB = 1000, OPT_JSON, OPT_HELP, OPT_FIRST_COMMAND_OPTION
};
#define COMMON_OPTIONS \
	{"db", required_argument, NULL, OPT_DB}, {"json", no_argument, NULL, OPT_JSON}, \
	{"help", no_argument, NULL, OPT_HELP}

int			common_option(Ctx *c, int opt, const char *arg, int argc, char **argv);
int			usage_error(Ctx *c, const char *fmt,...) __attribute__((format(printf, 2, 3)));
int			need_args(Ctx *c, int argc, char **argv, int min, int max);
int			parse_plain(Ctx *c, int argc, char **argv, int min, int max);
int			parse_int64(Ctx *c, const char *what, const char *s, long long lo, long long hi, long long *out);
int			parse_double(Ctx *c, const char *what, const char *s, double lo, double hi, double *out);
void		print_command_help(const char *name, FILE *f);
int			cli_main(int argc, char **argv);	/* main.c: the whole program */

/* ---- db.c ---- */
int			db_open(Ctx *c);
int			db_open_user(Ctx *c);
PGresult   *db_query(Ctx *c, const char *sql, int n, const char *const *params);
json_t	   *db_json(Ctx *c, const char *sql, int n, const char *const *params);
int			db_fail(Ctx *c);
int			db_exit_code(const Ctx *c);
void		db_set_hint(Ctx *c, const char *sqlstate, const char *hint);
char	   *db_role(Ctx *c);
int			db_listen(Ctx *c, const char *channel, bool on);
int			db_consume(Ctx *c);
void		db_close(Ctx *c);
bool		ended_names(const char *payload, const long long *ids, int n);	/* ended.c */

/* ---- session.c ---- */
const char *session_path(void);
char	   *session_load(void);
int			session_save(const char *token);
int			session_remove(void);

/* ---- password.c ---- */
char	   *read_password(Ctx *c, const char *email, bool from_stdin, bool confirm);

/* ---- text.c: UTF-8 aware widths, safe text, a growable string ---- */
typedef struct Str
{
	char	   *s;
	size_t		len,
				cap;
} Str;

void		str_add(Str *b, const char *s);
void		str_addn(Str *b, const char *s, size_t n);
void		str_addf(Str *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		str_pad(Str *b, int n);
char	   *str_take(Str *b);
void		text_init(void);
int			text_width(const char *s);
int			ansi_width(const char *s);
char	   *text_clean(const char *s);
char	   *text_fit(const char *s, int width);
char	   *ansi_clip(const char *s, int width);

/* ---- lines.c: a block of output lines (may hold colour escapes) ---- */
typedef struct Lines
{
	char	  **v;
	int			n,
				cap;
} Lines;

void		lines_add(Lines *l, char *line);
void		lines_append(Lines *dst, Lines *src);
void		lines_print(const Lines *l, FILE *f);
void		lines_free(Lines *l);
int			lines_width(const Lines *l);

/* ---- out.c: colours, values, tables, key/value lists, JSON ---- */
#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BLUE "\033[34m"
#define C_MAGENTA "\033[35m"
#define C_CYAN "\033[36m"

const char *status_color(const char *status);
char	   *colored(bool on, const char *color, const char *text);
char	   *fmt_value(const json_t *v);
char	   *fmt_time(const json_t *v);
char	   *fmt_ago(const json_t *v);
char	   *fmt_number(double v, int decimals);

typedef char *(*CellFn) (const json_t *row, const char *key);
typedef struct Column
{
	const char *key;
	const char *header;
	bool		right;			/* right-aligned (numbers) */
	int			max;			/* widest cell, 0 = no limit */
	CellFn		fn;				/* NULL: fmt_value of row[key] */
	bool		status;			/* colour the cell by its value (job or node status) */
} Column;

char	   *cell_time(const json_t *row, const char *key);
char	   *cell_ago(const json_t *row, const char *key);
char	   *cell_pct(const json_t *row, const char *key);
void		table_lines(const json_t *rows, const Column *cols, int ncols, bool color, Lines *out);
void		print_table(Ctx *c, const json_t *rows, const Column *cols, int ncols);
void		kv_lines(const char *const *keys, char *const *vals, int n, bool color, Lines *out);
void		print_json(const json_t *j);

/* ---- chart.c (terminal) and svg.c ---- */
extern const char *const job_statuses[5];
void		chart_timeline(const json_t *rows, int height, bool color, Lines *out);
void		chart_distribution(const json_t *rows, int width, bool color, Lines *out);
int			svg_write(FILE *f, const json_t *stats, const json_t *timeline, const json_t *distribution);

/* ---- term.c: terminal size, full-screen mode, the signals a command reacts to ---- */
int			term_columns(int fd, int fallback);
int			term_rows(int fd, int fallback);
int			sig_pipe_open(void);
int			sig_pipe_drain(void);
int			screen_enter(void);
void		screen_close(void);

/* the self-pipe's end to poll, and the monotonic clock: common/'s (sigpipe.c, clock.c) */
static inline int
sig_pipe_fd(void)
{
	return mm_sig_pipe_fd();
}

static inline double
now_s(void)
{
	return mm_now_s();
}

/* ---- commands ---- */
int			cmd_signup(Ctx *c, int argc, char **argv);
int			cmd_login(Ctx *c, int argc, char **argv);
int			cmd_logout(Ctx *c, int argc, char **argv);
int			cmd_whoami(Ctx *c, int argc, char **argv);
int			cmd_balance(Ctx *c, int argc, char **argv);
int			cmd_transfer(Ctx *c, int argc, char **argv);
int			cmd_withdraw(Ctx *c, int argc, char **argv);
int			cmd_withdrawal(Ctx *c, int argc, char **argv);
int			cmd_transactions(Ctx *c, int argc, char **argv);
int			cmd_withdrawals(Ctx *c, int argc, char **argv);
int			cmd_admin(Ctx *c, int argc, char **argv);
int			cmd_notifications(Ctx *c, int argc, char **argv);
int			cmd_submit(Ctx *c, int argc, char **argv);
int			cmd_submit_batch(Ctx *c, int argc, char **argv);
int			cmd_jobs(Ctx *c, int argc, char **argv);
int			cmd_job(Ctx *c, int argc, char **argv);
int			cmd_cancel(Ctx *c, int argc, char **argv);
int			cmd_result(Ctx *c, int argc, char **argv);
int			cmd_watch(Ctx *c, int argc, char **argv);
int			cmd_nodes(Ctx *c, int argc, char **argv);
int			cmd_node(Ctx *c, int argc, char **argv);
int			cmd_network(Ctx *c, int argc, char **argv);
int			cmd_ledger(Ctx *c, int argc, char **argv);
int			cmd_top(Ctx *c, int argc, char **argv);

/* nodes.c: the nodes table, also on top's screen */
extern const Column node_columns[];
extern const int node_ncolumns;

/* jobs.c */
char	   *describe_metrics(const json_t *m);

/* network.c: the network figures and both charts' data in one JSON object (top reuses it) */
extern const char *const network_sql;
void		stats_lines(const json_t *stats, bool color, Lines *out);

#endif
