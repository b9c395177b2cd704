/*
 * api.h — modelmine-api, the HTTP face of a ModelMine database: shared types and the interface
 * between its parts.
 *
 *   main.c      options and environment, start-up, SIGTERM drain
 *   http.c      the libmicrohttpd daemon: reading a request, dispatch, access log
 *   reply.c     responses: JSON bodies, PostgREST's error body, CORS, Content-Range
 *   pool.c      the database connection pool (acquire with a deadline, reconnect with backoff)
 *   call.c      one request's transaction: identity and role set up, the call, shaped results
 *   catalog.c   the callable functions of schema modelmine, read from pg_proc
 *   rpc.c       /rpc/<function>, the PostgREST contract
 *   routes.c    the REST route table: path, method and arguments mapped to one SQL function
 *   status.c    SQLSTATE -> HTTP status (PostgREST's table)
 *   ratelimit.c per-IP rate limit on the /auth routes
 *   listen.c    the LISTEN connection: wake-ups for long-polling claims, events for Socket.IO
 *   health.c    /health;  openapi.c: /openapi.json
 *   eio.c, ws.c, sio.c  Engine.IO v4 (polling and WebSocket) and Socket.IO v5
 *
 * Threads: libmicrohttpd runs one thread per connection, so a handler may block (on the pool, on a
 * long-poll, on an Engine.IO poll).  Upgraded WebSocket connections leave MHD and are served by one
 * event thread (ws.c).  The LISTEN connection has its own thread.
 */
#ifndef MODELMINE_API_H
#define MODELMINE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>

#include "modelmine/protocol.h"

/* ---- main.c: configuration ---- */
typedef struct ApiConfig
{
	const char *db_url;			/* --db / MODELMINE_DB: the authenticator's connection string */
	const char *listen_host;	/* --listen host:port */
	int			listen_port;
	int			pool_size;		/* --pool: database connections */
	int			acquire_timeout_ms; /* waiting for a pooled connection, then 504 */
	int			statement_timeout_ms;	/* per request */
	size_t		max_body;		/* request body limit, then 413 */
	int			auth_rate;		/* requests per auth_window_s per client address on the /auth routes */
	int			auth_window_s;
	int			max_sockets;	/* concurrent Socket.IO sessions */
	int			max_connections;	/* concurrent HTTP connections */
	int			connection_timeout_s;	/* idle or slow connections are closed after this */
	int			max_wait_s;		/* longest long-poll of a claim */
	int			heartbeat_view_ms;	/* how often node:heartbeat is refreshed for browsers */
	int			drain_s;		/* SIGTERM: how long in-flight requests may finish */
	const char *tls_cert;		/* PEM files: HTTPS when both are given */
	const char *tls_key;
	const char *web_root;		/* static files served at / (the dashboard) */
	const char *node_modules;	/* where socket.io-client's browser bundle is found */
	bool		access_log;
	bool		forwarded_for;	/* the client address is X-Forwarded-For's last hop (behind a proxy) */
} ApiConfig;

extern ApiConfig api_cfg;

/* ---- http.c: one HTTP request ---- */
typedef struct Request
{
	struct MHD_Connection *conn;
	const char *method;			/* as MHD gives it */
	const char *path;			/* decoded, without the query string */
	char	   *body;			/* NUL-terminated; NULL when none */
	size_t		body_len;
	bool		body_too_large;
	size_t		discarded;		/* bytes of a too large body thrown away */
	double		started;		/* mm_now_s() */
	char		ip[64];			/* the client address, for rate limits and the log */
	const char *role;			/* the role the request ran as, for the access log */
	int			status;			/* the status sent */
	bool		replied;
} Request;

const char *req_header(Request *r, const char *name);
const char *req_query(Request *r, const char *name);
bool		req_is_read(Request *r);	/* GET or HEAD */
int			http_start(void);
void		http_quiesce(void);
void		http_stop(void);
int			http_active_requests(void);

/* ---- reply.c ---- */
typedef struct ReplyHeader
{
	const char *name;
	const char *value;
} ReplyHeader;

enum MHD_Result reply(Request *r, int status, const char *content_type, const char *body, size_t len,
					  const ReplyHeader *headers, int nheaders);
enum MHD_Result reply_json(Request *r, int status, json_t *body /* stolen */ );
enum MHD_Result reply_error(Request *r, int status, const char *code, const char *message,
							const char *details, const char *hint);
enum MHD_Result reply_error_h(Request *r, int status, const char *code, const char *message,
							  const char *details, const char *hint, const ReplyHeader *headers,
							  int nheaders);
void		reply_add_common(Request *r, struct MHD_Response *resp);
enum MHD_Result reply_unavailable(Request *r);

/* ---- pool.c ---- */
typedef struct PoolConn PoolConn;
typedef enum PoolStatus
{
	POOL_OK = 0,
	POOL_TIMEOUT,				/* every connection stayed busy past the deadline: 504 */
	POOL_DOWN					/* the database cannot be reached now: 503 + Retry-After */
} PoolStatus;

int			pool_init(void);
PoolStatus	pool_acquire(PoolConn **out, int timeout_ms);
void		pool_release(PoolConn *c, bool broken);
PGconn	   *pool_pg(PoolConn *c);
const char *pool_prepared(PoolConn *c, const char *sql);	/* statement name if prepared here */
void		pool_remember(PoolConn *c, const char *sql, const char *name);
int			pool_retry_after_s(void);
void		pool_stats(int *size, int *open, int *busy, int *waiting, bool *down);
void		pool_close_all(void);

/* ---- catalog.c: the functions of schema modelmine ---- */
#define CAT_MAX_ARGS 16

typedef enum RetKind
{
	RET_VOID,
	RET_SCALAR,					/* one value */
	RET_COMPOSITE,				/* one row: an object */
	RET_SET,					/* rows (SETOF composite, RETURNS TABLE): an array of objects */
	RET_SET_SCALAR				/* SETOF a scalar: an array of values */
} RetKind;

typedef struct CatArg
{
	char	   *name;
	char	   *type;			/* format_type, for the $n::type cast */
	bool		has_default;
	bool		is_array;
	bool		is_json;
} CatArg;

typedef struct CatFunc
{
	char	   *name;
	char	   *comment;
	char		volatility;		/* 'i', 's' or 'v' */
	RetKind		ret;
	char	   *ret_type;
	int			nargs;
	CatArg		args[CAT_MAX_ARGS];
	int			ncols;			/* output columns of RET_SET / RET_COMPOSITE */
	char	  **cols;
	char	  **col_types;
	struct CatFunc *next_overload;
} CatFunc;

int			catalog_load(PGconn *pg, char *err, size_t errlen);
const CatFunc *catalog_find(const char *name);
const CatFunc *catalog_match(const char *name, const char *const *keys, int nkeys);
void		catalog_each(void (*fn) (const CatFunc *f, void *arg), void *arg);
const char *catalog_version(void);
bool		catalog_ensure(void);

/* ---- call.c: one request's transaction ---- */
#define CALL_MAX_PARAMS 32

typedef struct CallSpec
{
	const CatFunc *func;
	const char *arg_names[CAT_MAX_ARGS];	/* the arguments given, by name */
	const char *arg_values[CAT_MAX_ARGS];	/* their text (NULL: SQL NULL) */
	const char *arg_keys[CAT_MAX_ARGS];	/* or the key of the JSON body they come from */
	int			nargs;
	const char *body;			/* the request's JSON body, passed to PostgreSQL as sent */
	/* PostgREST's query modifiers, applied to a set or composite result */
	const char *select;			/* "a,b" or NULL for all */
	const char *order;			/* "a.desc,b" */
	const char *filters[8];		/* "col=op.value" */
	int			nfilters;
	long		limit;			/* -1: none */
	long		offset;
	bool		count_exact;
	bool		single_object;	/* Accept: application/vnd.pgrst.object+json */
	bool		writes_on_get;	/* a route whose GET writes (an email's link): not read-only */
} CallSpec;

typedef struct CallResult
{
	int			status;			/* HTTP status */
	char	   *body;			/* JSON text (malloc'd), or NULL for 204 */
	long		rows;			/* rows in a set result */
	long		total;			/* with count_exact; else -1 */
	const char *role;			/* the role the call ran as */
	char		sqlstate[6];
	char	   *message,
			   *details,
			   *hint;			/* the error's, malloc'd */
	char		code[16];		/* PostgREST-style code ("PGRST116") or the SQLSTATE */
	int			retry_after;	/* seconds, for 503 */
	bool		rolled_back;	/* a writing call undone (vnd.pgrst.object+json with not one row) */
} CallResult;

void		call_run(Request *r, const CallSpec *spec, CallResult *out);
void		call_result_free(CallResult *res);
enum MHD_Result call_reply(Request *r, const CallSpec *spec, CallResult *res);
int			call_sql_simple(Request *r, const char *bearer, const char *sql, const char *const *params,
							int nparams, bool read_only, char **json_out, CallResult *err);

/* ---- status.c ---- */
int			status_for_sqlstate(const char *sqlstate, bool anon);

/* ---- rpc.c, routes.c ---- */
enum MHD_Result rpc_handle(Request *r, const char *fname);
void		rpc_preferences(Request *r, CallSpec *s);
bool		rpc_body(Request *r, json_t **out, CallResult *res);
enum MHD_Result routes_handle(Request *r, bool *handled);
void		routes_each(void (*fn) (const char *method, const char *path, const char *func,
									 const char *summary, void *arg), void *arg);

/* ---- ratelimit.c ---- */
bool		ratelimit_take(const char *ip, int *retry_after_s);

/* ---- listen.c ---- */
int			listen_start(void);
void		listen_stop(void);
uint64_t	listen_work_generation(void);
bool		listen_wait_work(uint64_t gen, double deadline);	/* true when work was announced */
bool		listen_connected(void);
void		listen_drain(void);
bool		listen_draining(void);

/* ---- health.c, openapi.c ---- */
enum MHD_Result health_handle(Request *r);
enum MHD_Result openapi_handle(Request *r);

/* ---- static.c: the dashboard's files ---- */
enum MHD_Result static_handle(Request *r, bool *handled);
enum MHD_Result static_send_file(Request *r, const char *file);
const char *static_web_root(void);

/* ---- eio.c, sio.c: Engine.IO v4 and Socket.IO v5 ---- */
typedef struct SioIdentity
{
	int64_t		user_id;
	bool		admin;
} SioIdentity;

int			eio_init(void);
enum MHD_Result eio_handle(Request *r);
void		eio_shutdown(void);
int			eio_session_count(void);
/* Broadcast an event: to everyone (owner 0), or to one user's sockets and admins' sockets. */
void		sio_publish(const char *event, const char *json_data, int64_t owner);
/* Verifies a CONNECT token (call.c); false with a reason on refusal. */
bool		sio_authenticate(const char *token, SioIdentity *out, char *reason, size_t reasonlen);

#endif							/* MODELMINE_API_H */
