/*
 * worker.h — modelmine-worker: shared types.
 *
 * The worker is one process with one poll() loop (loop.c).  Each claimed job runs in a child
 * process (task.c): a built-in trainer's in the slot's persistent trainer process (trainer.c), an
 * operator-configured external runner's in a process forked for the job.
 * Children talk to the loop only through a pipe of JSON lines, so a crashing trainer cannot take
 * the worker down; the node protocol (proto.h: the database over libpq, or the HTTP gateway) is
 * spoken by the parent alone.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "modelmine/common.h"
#include "modelmine/protocol.h"
#include "netguard.h"

#define MAX_RUNNERS 32
#define MAX_ALLOW_NET 64

typedef struct Runner
{
	char	   *name;
	char	   *command;		/* run with /bin/sh -c, as the operator configured it */
} Runner;

typedef struct Options
{
	const char *db;				/* libpq connection string or URL; NULL = PG* environment */
	const char *api;			/* the gateway's base URL (--api): HTTP instead of libpq */
	const char *cacert;			/* --cacert: PEM file of the CA that signed the gateway's cert */
	double		claim_wait;		/* --api: how long one long-polling claim waits for work */
	const char *name;
	int			slots;
	int			memory_mb;		/* --memory-mb: offered to jobs; -1: MemTotal from /proc/meminfo */
	int			cores;			/* --cores: offered to jobs; -1: the online processors */
	char	   *labels[MM_MAX_LABELS];	/* --label: such as gpu */
	int			nlabels;
	const char *state_file;
	char	   *state_file_buf;	/* default_state_file()'s path when state_file is it: freed */
	const char *node_key;
	const char *operator_email;
	const char *operator_password;
	const char *data_dir;		/* file:// datasets only below this directory */
	mm_cidr		allow_net[MAX_ALLOW_NET];	/* http(s) datasets may also come from these networks */
	int			nallow_net;
	Runner		runners[MAX_RUNNERS];
	int			nrunners;
	int			lease_seconds;
	int			job_timeout;
	double		poll_interval;
	double		heartbeat_interval;
	double		drain_timeout;
	size_t		max_output;		/* bytes a runner may print before it is killed */
	size_t		max_download;
	long		download_timeout;
	bool		exit_when_idle; /* for tests and benchmarks: stop once the queue is empty */
	int			child_memory_limit; /* MB of address space per trainer process; 0: no limit */
	int			child_max_jobs; /* jobs per trainer process before it is replaced; 0: no limit */
	int			group_ms;		/* a finished job waits this long for others to report with it */
} Options;

/* One slot's persistent trainer process (trainer.c). */
typedef struct Trainer
{
	pid_t		pid;			/* 0: none (forked at the next job) */
	int			req_fd;			/* write end of its request pipe; -1 when none */
	int			out_fd;			/* read end of its output pipe; -1 when none */
	int			jobs;			/* jobs this process has run */
	bool		busy;			/* a Task holds it */
} Trainer;

typedef struct Task
{
	long long	job_id;
	Trainer    *trainer;		/* the trainer process running the job; NULL: a runner, or done */
	pid_t		pid;			/* 0 once reaped (or, a trainer's, once the job's last line came) */
	int			fd;				/* read end of the child's stdout; -1 once closed */
	int			exit_status;
	char	   *buf;			/* partial line */
	size_t		len,
				cap,
				total_out;
	int			lines;
	double		started,
				deadline,
				last_report,	/* last report_progress the database took (or the claim) */
				reported,		/* the progress it took then, re-sent to keep the lease */
				retry_at;		/* the database was busy: no call for this job before this */
	bool		busy_logged;	/* "busy, will retry" logged since the job's last accepted call */
	bool		release;		/* abandoned by a stopping worker: give the job back to the queue */
	double		release_until;	/* ... retrying until then */
	json_t	   *progress;		/* latest unsent {"progress":..,"metrics":..} */
	json_t	   *result;			/* final result object, once the child printed it */
	char	   *error;			/* final error (child's, or ours: crash, timeout, bad output) */
	bool		abandoned;		/* lease lost or job canceled: kill, report nothing */
	bool		settled;		/* reported in a batch (complete_jobs), accepted or refused for good */
	double		done_at;		/* when the loop first saw the job done (0: not yet) */
	double		ack_deadline;	/* a trainer must take the job before this; 0 once it has */
	bool		last_line;		/* the child printed its result or error */
	bool		retire;			/* the trainer asks to be replaced (it ran out of memory) */
	bool		killed;			/* task_kill sent SIGKILL */
} Task;

/* log.c */
extern const char *log_name;
void		logmsg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* sysinfo.c */
double		cpu_load_percent(void);
void		memory_mb(int *used, int *total);

/* state.c */
int			state_load(const char *path, char **node_key, long long *node_id, char **name);
int			state_save(const char *path, const char *node_key, long long node_id, const char *name);
char	   *default_state_file(const char *name);

/* backoff.c */
#define BACKOFF_MIN 1.0
#define BACKOFF_MAX 30.0
typedef struct Backoff
{
	double		cap;			/* longest wait; 0: BACKOFF_MAX */
	int			failures;		/* in a row; 0 while the call works */
	double		delay;			/* seconds before the next attempt */
	double		next;			/* mm_now_s() of the next attempt */
	char		reason[512];	/* the last failure: logged again only when it changes */
} Backoff;

bool		backoff_ready(const Backoff *b, double now);
bool		backoff_fail(Backoff *b, double now, const char *reason);
int			backoff_ok(Backoff *b);
void		backoff_not_before(Backoff *b, double now, double seconds);
void		backoff_describe(const Backoff *b, char *out, size_t outlen);

/* pgerr.c */
bool		pg_setup_hint(char *out, size_t outlen, const char *sqlstate, const char *message,
						  const char *hint, const char *source_file, const char *role,
						  const char *needs, const char *dbname);

/* trainer.c */
int			child_write_line(int fd, json_t *line);
int			trainer_spawn(Trainer *tr, const Options *o);
void		trainer_gone(Trainer *tr);
void		trainer_stop(Trainer *tr, const char *why);
void		trainers_start(Trainer *pool, int n, const Options *o);
void		trainers_stop(Trainer *pool, int n);
Trainer    *trainer_free_one(Trainer *pool, int n);
int			trainer_send(Trainer *tr, const Options *o, long long job_id, json_t *config,
						 char *err, size_t errlen);
void		trainer_job_done(Trainer *tr, const Options *o, bool retire);
double		trainer_ack_seconds(const Options *o);
long		proc_rss_kb(pid_t pid);

/* task.c */
int			task_start(Task *t, const Options *o, long long job_id, json_t *config,
					   Trainer *tr);
void		task_default_seed(json_t *config, long long job_id);
int			task_read(Task *t, const Options *o);
void		task_kill(Task *t);
bool		task_reap(Task *t);
void		task_conclude(Task *t);
void		task_free(Task *t);
json_t	   *task_report_due(const Task *t, double now, double keepalive);
void		task_report_taken(Task *t, json_t *sent, double now);
json_t	   *capabilities(const Options *o);

/* loop.c */
int			run_loop(const Options *o, const char *node_key);

#endif							/* WORKER_H */
