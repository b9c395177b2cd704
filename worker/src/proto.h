/*
 * proto.h — the node protocol: every call a worker makes as a node, behind one interface with two
 * implementations, chosen once at start (proto_open):
 *
 *   proto_pg.c    --db:  the modelmine SQL functions over a libpq connection; wake-ups by LISTEN
 *   proto_http.c  --api: the gateway's node routes over libcurl; wake-ups by a long-polling claim
 *
 * The loop (loop.c) sees only this file.  Each call returns PROTO_OK when the node's request was
 * done; PROTO_REFUSED when it was refused (sqlstate and error say why, job_gone whether the job is
 * no longer this node's); PROTO_BUSY when the database was too busy to do it (nothing happened, ask
 * again later, not before retry_after); PROTO_LOST when the connection broke: the implementation
 * has disconnected (logged), and the caller keeps its state and retries after the loop reconnects.
 * What a SQLSTATE means is common/sqlstate.c's to say, whichever way it came.
 *
 * A claim may stay in flight (over HTTP it is a long-poll on its own connection, so that it never
 * holds up a heartbeat or a progress report): proto_claim then returns PROTO_PENDING, the answer
 * wakes the loop through proto_after_poll, and the next proto_claim returns it.
 */
#ifndef PROTO_H
#define PROTO_H

#include <poll.h>
#include <stdbool.h>

#include <jansson.h>

#include "worker.h"

enum
{
	PROTO_OK = 0,
	PROTO_REFUSED = -1,			/* refused for good; sqlstate and error say why */
	PROTO_LOST = -2,			/* the connection broke: retry after the loop reconnects */
	PROTO_BUSY = -3,			/* busy (55P03, 40001, 40P01): nothing happened, retry later */
	PROTO_PENDING = -4			/* a claim is in flight: its answer wakes the loop */
};

/* the most descriptors an implementation asks the loop to poll */
#define PROTO_MAX_FDS 4

typedef struct Proto Proto;

/*
 * One job of a batched completion (proto_complete_many).  The loop fills job_id and result; a call
 * that went through fills rc (PROTO_OK, PROTO_REFUSED or PROTO_BUSY) and, unless OK, the rest.
 */
typedef struct ProtoDone
{
	long long	job_id;
	json_t	   *result;
	int			rc;
	bool		job_gone;		/* refused because the job is no longer this node's */
	char		sqlstate[6];
	char		error[512];		/* message [code]; hint: ... */
	double		retry_after;	/* busy: the server's Retry-After, 0 when none */
} ProtoDone;

/* One implementation: what each call does (the shims below document the contract). */
typedef struct ProtoOps
{
	const char *peer;			/* whom the node talks to, for log lines: "database", "gateway" */
	int			(*open) (Proto *p);
	int			(*connect) (Proto *p, const char *node_key, json_t *caps);
	void		(*disconnect) (Proto *p, const char *why);
	int			(*heartbeat) (Proto *p, const char *status, long long **held, int *nheld);
	int			(*claim) (Proto *p, int max_jobs, int lease_seconds, json_t **jobs);
	json_t	   *(*claim_cancel) (Proto *p);
	int			(*progress) (Proto *p, long long job_id, json_t *progress);
	int			(*complete) (Proto *p, long long job_id, json_t *result);
	int			(*complete_many) (Proto *p, ProtoDone *d, int n);
	/* optional (NULL: the loop settles and claims in calls of their own) */
	int			(*complete_claim) (Proto *p, ProtoDone *d, int n, int max_jobs, int lease_seconds,
								   json_t **jobs);
	int			(*fail) (Proto *p, long long job_id, const char *error);
	int			(*release) (Proto *p, long long job_id);
	int			(*pollfds) (Proto *p, struct pollfd *pfd, int max, double *until);
	bool		(*after_poll) (Proto *p, const struct pollfd *pfd, int n);
	void		(*close) (Proto *p);
} ProtoOps;

/* The session with the database or the gateway: what every call leaves for the loop to read. */
struct Proto
{
	const ProtoOps *ops;
	const Options *o;
	void	   *impl;			/* the implementation's own state */
	bool		up;				/* connected, and the node's key accepted */
	bool		heartbeat_ok;	/* a heartbeat went through on this connection: claims may start */
	Backoff		connect;		/* reconnecting */
	long long	node_id;
	bool		job_gone;		/* the last refusal means the job is no longer ours */
	char		sqlstate[6];	/* of the last error ("28000" for a refused key, however it came) */
	char		error[1536];	/* the last error on one line: message [code]; hint: ... */
	double		retry_after;	/* seconds the server asked us to wait (Retry-After); 0: none */
	bool		no_batch;		/* the peer has no complete_jobs (an older version) */
	bool		no_combine;		/* a settle-and-claim was refused: separate calls from now on */
};

extern const ProtoOps proto_pg_ops;
extern const ProtoOps proto_http_ops;

/* proto.c: choosing the implementation, and the shims the loop calls */
int			proto_open(Proto *p, const Options *o);
int			proto_register(const Options *o, json_t *caps, char **node_key, long long *node_id);
const char *proto_peer(const Proto *p);
int			proto_connect(Proto *p, const char *node_key, json_t *caps);
void		proto_disconnect(Proto *p, const char *why);
int			proto_heartbeat(Proto *p, const char *status, long long **held, int *nheld);
int			proto_claim(Proto *p, int max_jobs, int lease_seconds, json_t **jobs);
json_t	   *proto_claim_cancel(Proto *p);
int			proto_progress(Proto *p, long long job_id, json_t *progress);
int			proto_complete(Proto *p, long long job_id, json_t *result);
int			proto_complete_many(Proto *p, ProtoDone *d, int n);
bool		proto_can_complete_claim(const Proto *p);
int			proto_complete_claim(Proto *p, ProtoDone *d, int n, int max_jobs, int lease_seconds,
								 json_t **jobs);
json_t	   *proto_done_batch(const ProtoDone *d, int n);
void		proto_done_answer(ProtoDone *d, const char *what, const char *reward,
							  const char *sqlstate, const char *message, const char *hint);
int			proto_fail(Proto *p, long long job_id, const char *error);
int			proto_release(Proto *p, long long job_id);
int			proto_pollfds(Proto *p, struct pollfd *pfd, int max, double *until);
bool		proto_after_poll(Proto *p, const struct pollfd *pfd, int n);
void		proto_close(Proto *p);
void		proto_clear_error(Proto *p);
void		proto_connect_failed(Proto *p, const char *why);
void		proto_lost(Proto *p, const char *peer, const char *why);

/* proto_pg.c, proto_http.c: first-start registration with the operator's credentials */
int			pg_register(const Options *o, json_t *caps, char **node_key, long long *node_id);
int			http_register(const Options *o, json_t *caps, char **node_key, long long *node_id);

#endif							/* PROTO_H */
