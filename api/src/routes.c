/*
 * routes.c — the REST routes: each maps a method and a path to one SQL function of schema modelmine,
 * its arguments to body fields, query parameters or path segments, and its result to a response.
 * Nothing is computed here that the extension does not compute; a route is a row of the table below.
 *
 * An argument the function requires but the request leaves out is passed as NULL, so the
 * extension's own message ("title is required") answers; an optional one left out takes the SQL
 * default.  A body field or query parameter the route does not know is refused with 400 naming it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "args.h"
#include "modelmine/common.h"

typedef enum Source
{
	BODY,						/* a field of the JSON body */
	QUERY,						/* a query-string parameter */
	PATH						/* the :id segment */
} Source;

typedef enum Xform
{
	AS_GIVEN,
	ORDER_TO_DESCENDING			/* order=asc|desc -> descending false|true */
} Xform;

/* arguments a route passes at most (submit_job's eight) */
#define ROUTE_MAX_ARGS 8

typedef struct RouteArg
{
	const char *arg;			/* the SQL argument */
	Source		src;
	const char *key;			/* the field or parameter name, when it differs from arg */
	Xform		xform;
} RouteArg;

typedef enum Shape
{
	AS_IS,						/* the JSON of the result (array, object or value) */
	WRAP,						/* {"<wrap>": value} */
	CREATED,					/* 201, Location, {"<wrap>": value} or the object */
	DOWNLOAD,					/* the value as a JSON file (Content-Disposition) */
	EMPTY						/* 204 */
} Shape;

#define LONG_POLL 1				/* ?wait=N: hold the request until work is announced (claims) */
#define GET_WRITES 2			/* a GET that writes (a link in an email): run read-write */

typedef struct Route
{
	const char *method;
	const char *path;			/* segments; ":id" matches a whole number */
	const char *func;
	RouteArg	args[ROUTE_MAX_ARGS];
	Shape		shape;
	const char *wrap;			/* WRAP and CREATED of a scalar: the key */
	const char *location;		/* CREATED: "/jobs/%s", filled with the new id */
	const char *location_key;	/* ... taken from this key of an object result (NULL: the value) */
	int			flags;
	const char *summary;
} Route;

#define B(a) {a, BODY, NULL, AS_GIVEN}
#define Q(a, k) {a, QUERY, k, AS_GIVEN}
#define P(a) {a, PATH, NULL, AS_GIVEN}

static const Route routes[] = {
	{"POST", "/auth/signup", "signup", {B("email"), B("password")}, CREATED, "user_id", NULL, NULL, 0,
	"Create an account; the signup grant is credited"},
	{"POST", "/auth/login", "login", {B("email"), B("password")}, WRAP, "token", NULL, NULL, 0,
	"Sign in: a bearer token for a new session"},
	{"POST", "/auth/logout", "logout", {{0}}, EMPTY, NULL, NULL, NULL, 0, "Revoke the current session"},
	{"GET", "/auth/me", "whoami", {{0}}, AS_IS, NULL, NULL, NULL, 0, "Who the token belongs to"},
	{"GET", "/auth/verify", "verify_email", {Q("token", NULL)}, WRAP, "user_id", NULL, NULL, GET_WRITES,
	"Follow an email verification link: verifies the address, unlocks the signup grant"},

	{"POST", "/jobs", "submit_job", {B("title"), B("config"), B("description"), B("stake"), B("priority"),
	B("start_by"), B("finish_by"), B("requirements")}, CREATED, "id", "/jobs/%s", NULL, 0,
	"Submit a training job (deadlines, requirements optional); its stake moves to escrow"},
	{"POST", "/jobs/batch", "submit_jobs", {B("jobs")}, AS_IS, NULL, NULL, NULL, 0,
	"Submit up to 1000 jobs at once, all or nothing; one debit, a stake row per job"},
	{"GET", "/jobs", "list_jobs", {Q("status", NULL), Q("sort", NULL), {"descending", QUERY, "order",
	ORDER_TO_DESCENDING}, Q("max_rows", "limit"), Q("skip", "offset"), Q("user_id", NULL)}, AS_IS, NULL,
	NULL, NULL, 0, "Your jobs (admins: everyone's, or one user's with user_id)"},
	{"GET", "/jobs/config-schema", "config_schema", {{0}}, AS_IS, NULL, NULL, NULL, 0,
	"The keys a built-in trainer's config may have, checked at submit"},
	{"GET", "/jobs/:id", "job", {P("job_id")}, AS_IS, NULL, NULL, NULL, 0, "One of your jobs, in full"},
	{"POST", "/jobs/:id/cancel", "cancel_job", {P("job_id")}, WRAP, "refunded", NULL, NULL, 0,
	"Cancel a pending or running job; the whole stake is refunded"},
	{"GET", "/jobs/:id/queue", "job_queue", {P("job_id")}, AS_IS, NULL, NULL, NULL, 0,
	"Why one of your jobs waits, and an estimate of the starts before it"},
	{"GET", "/jobs/:id/result", "job_result", {P("job_id")}, DOWNLOAD, NULL, NULL, NULL, 0,
	"Download a completed job's result"},

	{"GET", "/dashboard", "dashboard", {{0}}, AS_IS, NULL, NULL, NULL, 0, "Your job counts, balance, recent jobs"},
	{"GET", "/balance", "balance", {{0}}, WRAP, "balance", NULL, NULL, 0, "Your spendable balance"},
	{"POST", "/transfers", "transfer", {B("to_email"), B("amount")}, CREATED, "transaction_id", NULL, NULL, 0,
	"Send tokens to another user"},
	{"GET", "/transactions", "my_transactions", {Q("max_rows", "limit")}, AS_IS, NULL, NULL, NULL, 0,
	"Your recent token movements"},
	{"POST", "/withdrawals", "request_withdrawal", {B("amount"), B("destination")}, CREATED,
	"withdrawal_id", NULL, NULL, 0, "Ask to take tokens out of the system; they are held meanwhile"},
	{"GET", "/withdrawals", "my_withdrawals", {Q("max_rows", "limit")}, AS_IS, NULL, NULL, NULL, 0,
	"Your withdrawals and how each was decided"},

	{"GET", "/notifications", "my_notifications", {Q("status", NULL), Q("max_rows", "limit")}, AS_IS, NULL,
	NULL, NULL, 0, "Your notifications, newest first, with the reasons of dead letters"},
	{"GET", "/notifications/preferences", "notification_prefs", {{0}}, AS_IS, NULL, NULL, NULL, 0,
	"Your notification preferences and webhooks"},
	{"POST", "/notifications/preferences", "set_notification_prefs", {B("events"), B("email"),
	B("balance_threshold")}, AS_IS, NULL, NULL, NULL, 0, "Choose events, email on or off, a balance threshold"},
	{"POST", "/notifications/webhooks", "add_webhook", {B("url")}, CREATED, NULL, NULL, NULL, 0,
	"Add a webhook; its signing secret is shown once"},
	{"POST", "/notifications/webhooks/:id/remove", "remove_webhook", {P("webhook_id")}, WRAP, "dead_lettered",
	NULL, NULL, 0, "Remove a webhook; what it has not received is dead-lettered"},

	{"POST", "/nodes/register", "register_node", {B("name"), B("capabilities")}, CREATED, NULL, "/nodes/%s",
	"node_id", 0, "Register a compute node you operate; its key is shown once"},
	{"POST", "/nodes/heartbeat", "heartbeat", {B("cpu_load"), B("memory_used_mb"), B("memory_total_mb"),
	B("status")}, WRAP, "jobs", NULL, NULL, 0, "Node: report load; returns the jobs it holds"},
	{"POST", "/nodes/capabilities", "set_capabilities", {B("capabilities")}, EMPTY, NULL, NULL, NULL, 0,
	"Node: replace the trainers, runners and slots it advertises"},
	{"POST", "/nodes/claim", "claim_jobs", {B("max_jobs"), B("lease_seconds")}, AS_IS, NULL, NULL, NULL,
	LONG_POLL, "Node: lease pending jobs; ?wait=N holds the request until work comes"},
	{"POST", "/nodes/jobs/:id/progress", "report_progress", {P("job_id"), B("progress"), B("metrics")}, WRAP,
	"lease_expires_at", NULL, NULL, 0, "Node: report progress; extends the lease"},
	{"POST", "/nodes/complete", "complete_jobs", {B("completions")}, AS_IS, NULL, NULL, NULL, 0,
	"Node: complete up to 32 leased jobs in one transaction; one answer per job"},
	{"POST", "/nodes/jobs/:id/complete", "complete_job", {P("job_id"), B("result")}, WRAP, "reward", NULL, NULL,
	0, "Node: complete a leased job; returns the reward"},
	{"POST", "/nodes/jobs/:id/fail", "fail_job", {P("job_id"), B("error")}, WRAP, "refunded", NULL, NULL, 0,
	"Node: fail a leased job; its owner is refunded"},
	{"POST", "/nodes/jobs/:id/release", "release_job", {P("job_id")}, EMPTY, NULL, NULL, NULL, 0,
	"Node: give a leased job back to the queue"},
	{"GET", "/nodes/mine", "my_nodes", {{0}}, AS_IS, NULL, NULL, NULL, 0, "The nodes you operate"},
	{"GET", "/nodes", "nodes", {Q("max_rows", "limit"), Q("skip", "offset")}, AS_IS, NULL, NULL, NULL, 0,
	"Every node with status, load, uptime and earnings"},
	{"GET", "/nodes/:id", "node_stats", {P("node_id"), Q("window_hours", NULL)}, AS_IS, NULL, NULL, NULL, 0,
	"One node's statistics"},
	{"POST", "/nodes/:id/maintenance", "set_node_maintenance", {P("node_id"), B("maintenance")}, WRAP,
	"status", NULL, NULL, 0, "Operator: put a node in or out of maintenance"},
	{"POST", "/nodes/:id/withdraw", "withdraw_node_earnings", {P("node_id"), B("amount")}, WRAP, "withdrawn",
	NULL, NULL, 0, "Operator: move a node's earnings to your balance"},
	{"GET", "/nodes/:id/transactions", "node_transactions", {P("node_id"), Q("max_rows", "limit")}, AS_IS,
	NULL, NULL, NULL, 0, "Operator: a node's rewards, fee shares and withdrawals"},

	{"GET", "/network", "network_stats", {{0}}, AS_IS, NULL, NULL, NULL, 0, "Network statistics"},
	{"GET", "/network/timeline", "job_timeline", {Q("months", NULL)}, AS_IS, NULL, NULL, NULL, 0,
	"Jobs per month and status"},
	{"GET", "/network/tokens", "token_distribution", {Q("max_rows", "limit")}, AS_IS, NULL, NULL, NULL, 0,
	"Tokens earned per node"},

	{"GET", "/ledger", "ledger", {Q("from_height", "from"), Q("max_rows", "limit")}, AS_IS, NULL, NULL, NULL, 0,
	"Ledger blocks in height order"},
	{"GET", "/ledger/digest", "ledger_digest", {{0}}, AS_IS, NULL, NULL, NULL, 0, "The chain head, to keep"},
	{"GET", "/ledger/verify", "verify_ledger", {Q("digest", NULL)}, AS_IS, NULL, NULL, NULL, 0,
	"Verify the whole chain, optionally against a digest"},

	{"GET", "/admin/users", "users", {{0}}, AS_IS, NULL, NULL, NULL, 0, "Admin: every user"},
	{"GET", "/admin/jobs", "all_jobs", {Q("status", NULL), Q("sort", NULL), {"descending", QUERY, "order",
	ORDER_TO_DESCENDING}, Q("max_rows", "limit"), Q("skip", "offset")}, AS_IS, NULL, NULL, NULL, 0,
	"Admin: every job"},
	{"GET", "/admin/nodes", "admin_node_page", {Q("max_rows", "limit"), Q("skip", "offset")}, AS_IS, NULL, NULL,
	NULL, 0, "Admin: every node with its operator"},
	{"GET", "/admin/network", "admin_network_report", {{0}}, AS_IS, NULL, NULL, NULL, 0,
	"Admin: statistics, supply and the invariant checks"},
	{"GET", "/admin/ledger", "admin_ledger_page", {Q("from_height", "from"), Q("max_rows", "limit")}, AS_IS, NULL,
	NULL, NULL, 0, "Admin: ledger blocks with their users and nodes"},
	{"POST", "/admin/users/verify", "verify_user", {B("email")}, WRAP, "unlocked", NULL, NULL, 0,
	"Admin: verify a user, unlocking their signup grant"},
	{"GET", "/admin/withdrawals", "withdrawals", {Q("status", NULL), Q("max_rows", "limit"), Q("skip", "offset")},
	AS_IS, NULL, NULL, NULL, 0, "Admin: withdrawals, pending first"},
	{"POST", "/admin/withdrawals/:id/approve", "approve_withdrawal", {P("withdrawal_id"), B("payout_reference")},
	WRAP, "amount", NULL, NULL, 0, "Admin: approve a paid-out withdrawal (burns the held tokens)"},
	{"POST", "/admin/withdrawals/:id/reject", "reject_withdrawal", {P("withdrawal_id"), B("reason")}, WRAP,
	"amount", NULL, NULL, 0, "Admin: reject a withdrawal (releases the held tokens)"},
	{"POST", "/admin/fees/distribute", "distribute_fees", {B("period")}, AS_IS, NULL, NULL, NULL, 0,
	"Admin: pay a month's network fee to the nodes, once"},
	{"POST", "/admin/users/share", "set_user_share", {B("email"), B("share")}, EMPTY, NULL, NULL, NULL, 0,
	"Admin: set a user's fair share (default 1)"},
	{"POST", "/admin/jobs/expire", "expire_jobs", {B("max_jobs")}, WRAP, "expired", NULL, NULL, 0,
	"Admin: end jobs past their deadlines now (claims do it too)"},
	{"GET", "/admin/fees", "fee_distributions", {{0}}, AS_IS, NULL, NULL, NULL, 0,
	"Admin: the months whose fee was distributed"},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Whether path matches the route's pattern; the :id segment is copied to id. */
static bool
match(const char *pattern, const char *path, char *id, size_t idlen)
{
	while (*pattern && *path)
	{
		if (strncmp(pattern, ":id", 3) == 0)
		{
			size_t		n = 0;

			while (path[n] >= '0' && path[n] <= '9')
				n++;
			if (n == 0 || n >= idlen || (path[n] && path[n] != '/'))
				return false;
			memcpy(id, path, n);
			id[n] = '\0';
			path += n;
			pattern += 3;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++, path++;
	}
	if (*path == '/' && path[1] == '\0')
		path++;					/* a trailing slash is the same route */
	return *pattern == '\0' && *path == '\0';
}

/* The request key of a route argument. */
static const char *
key_of(const RouteArg *a)
{
	return a->key ? a->key : a->arg;
}

/* A refusal prepared in res, sent. */
static enum MHD_Result
send_refusal(Request *r, CallResult *res)
{
	static const CatFunc none = {.ret = RET_VOID};
	CallSpec	s = {.func = &none};

	return call_reply(r, &s, &res[0]);
}

/* 400 for a body field or query parameter the route does not take, listing those it does. */
static void
unknown_key(CallResult *res, const Route *rt, const char *what, const char *key, Source src)
{
	char		hint[512];
	size_t		n = 0;

	n += (size_t) snprintf(hint + n, sizeof(hint) - n, "%s %s takes ", rt->method, rt->path);
	for (int i = 0, k = 0; i < ROUTE_MAX_ARGS && rt->args[i].arg; i++)
		if (rt->args[i].src == src)
			n += (size_t) snprintf(hint + n, sizeof(hint) - n, "%s%s", k++ ? ", " : "", key_of(&rt->args[i]));
	if (n == strlen(rt->method) + strlen(rt->path) + 8)
		snprintf(hint + n, sizeof(hint) - n, "none");
	res->status = 400;
	snprintf(res->code, sizeof(res->code), "PGRST100");
	res->message = malloc(strlen(what) + strlen(key) + 16);
	sprintf(res->message, "unknown %s \"%.60s\"", what, key);
	res->hint = strdup(hint);
}

/* Counts one key's occurrences in the query string (MHD keeps every repetition). */
static enum MHD_Result
count_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	void	  **c = cls;

	(void) kind;
	(void) value;
	if (strcmp(key, c[0]) == 0)
		(*(int *) c[1])++;
	return MHD_YES;
}

/* How many times key is in the request's query string. */
static int
count_key(struct MHD_Connection *conn, const char *key)
{
	int			n = 0;
	void	   *c[2] = {(void *) key, &n};

	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_one, c);
	return n;
}

/* Checks the query string: only the route's parameters (and wait on long-polls). */
static enum MHD_Result
check_query_key(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	void	  **ctx = cls;
	const Route *rt = ctx[0];
	CallResult *res = ctx[1];

	(void) kind;
	(void) value;
	if (count_key(ctx[2], key) > 1)
	{
		char		msg[128];

		res->status = 400;
		snprintf(res->code, sizeof(res->code), "PGRST100");
		snprintf(msg, sizeof(msg), "query parameter \"%.60s\" given twice", key);
		res->message = strdup(msg);
		res->hint = strdup("Give each parameter once.");
		return MHD_NO;
	}
	if ((rt->flags & LONG_POLL) && strcmp(key, "wait") == 0)
		return MHD_YES;
	for (int i = 0; i < ROUTE_MAX_ARGS && rt->args[i].arg; i++)
		if (rt->args[i].src == QUERY && strcmp(key_of(&rt->args[i]), key) == 0)
			return MHD_YES;
	unknown_key(res, rt, "query parameter", key, QUERY);
	return MHD_NO;
}

/* The response for a route's successful call: the result's JSON text as PostgreSQL wrote it. */
static enum MHD_Result
respond(Request *r, const Route *rt, const char *id, CallSpec *s, CallResult *res)
{
	char		loc[128],
				disp[128];
	ReplyHeader h[2];
	int			nh = 0;
	const char *body = res->body ? res->body : "null";
	char	   *text;
	enum MHD_Result out;

	if (res->status >= 300 || rt->shape == AS_IS)
		return call_reply(r, s, res);
	r->role = res->role ? res->role : "-";
	switch (rt->shape)
	{
		case EMPTY:
			call_result_free(res);
			return reply(r, 204, NULL, NULL, 0, NULL, 0);
		case DOWNLOAD:
			snprintf(disp, sizeof(disp), "attachment; filename=\"job-%s-result.json\"", id);
			h[nh++] = (ReplyHeader) {"Content-Disposition", disp};
			/* as stored: re-encoding would round 0.1 and drop integers beyond 64 bits */
			out = reply(r, 200, "application/json; charset=utf-8", body, strlen(body), h, nh);
			call_result_free(res);
			return out;
		case CREATED:
			if (rt->location)
			{
				json_t	   *v = json_loads(body, JSON_DECODE_ANY, NULL);	/* ids fit 64 bits */
				json_t	   *idv = rt->location_key ? json_object_get(v, rt->location_key) : v;
				char	   *idt = idv ? json_dumps(idv, JSON_ENCODE_ANY) : NULL;

				snprintf(loc, sizeof(loc), rt->location, idt ? idt : "");
				free(idt);
				json_decref(v);
				h[nh++] = (ReplyHeader) {"Location", loc};
			}
			/* FALLTHROUGH */
		case WRAP:
			/* {"<wrap>": <the value as PostgreSQL wrote it>}, or the object itself */
			if (rt->wrap)
			{
				text = malloc(strlen(rt->wrap) + strlen(body) + 8);
				sprintf(text, "{\"%s\":%s}", rt->wrap, body);
			}
			else
				text = strdup(body);
			out = reply(r, rt->shape == CREATED ? 201 : 200, "application/json; charset=utf-8", text,
						strlen(text), h, nh);
			free(text);
			call_result_free(res);
			return out;
		case AS_IS:
			break;
	}
	return call_reply(r, s, res);
}

/* Whether the client of a request has closed its connection (a long-poll's client gave up). */
static bool
client_gone(Request *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char		c;
	ssize_t		n;

	if (ci == NULL)
		return false;
	n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The wait of a long-poll, from ?wait= (0 when absent); false with res set when malformed. */
static bool
wait_seconds(Request *r, double *out, CallResult *res)
{
	const char *w = req_query(r, "wait");
	char	   *end;
	double		d;

	*out = 0;
	if (w == NULL)
		return true;
	d = strtod(w, &end);
	if (*w == '\0' || *end != '\0' || !(d >= 0) || d > api_cfg.max_wait_s)
	{
		char		det[96];

		res->status = 400;
		snprintf(res->code, sizeof(res->code), "PGRST100");
		res->message = strdup("invalid wait");
		snprintf(det, sizeof(det), "Got \"%.40s\".", w);
		res->details = strdup(det);
		res->hint = malloc(96);
		snprintf(res->hint, 96, "Pass a number of seconds from 0 to %d (--max-wait).", api_cfg.max_wait_s);
		return false;
	}
	*out = d;
	return true;
}

/* Runs one route. */
static enum MHD_Result
run_route(Request *r, const Route *rt, const char *id)
{
	CallSpec	s = {0};
	CallResult	res = {0};
	json_t	   *body = NULL;
	void	   *ctx[3] = {(void *) rt, &res, r->conn};
	double		wait = 0;
	enum MHD_Result out;

	if (!catalog_ensure())
		return reply_unavailable(r);
	rpc_preferences(r, &s);
	s.func = catalog_find(rt->func);
	s.writes_on_get = (rt->flags & GET_WRITES) != 0;
	if (s.func == NULL)
		return reply_error(r, 404, "PGRST202", "this route's function is missing from the database",
						   rt->func, "Update the extension: ALTER EXTENSION modelmine UPDATE.");
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_query_key, ctx);
	if (res.status)
		return send_refusal(r, &res);
	if ((rt->flags & LONG_POLL) && !wait_seconds(r, &wait, &res))
		return send_refusal(r, &res);
	if (strcmp(r->method, "POST") == 0)
	{
		const char *k;
		json_t	   *v;

		if (!rpc_body(r, &body, &res))
			return send_refusal(r, &res);
		json_object_foreach(body, k, v)
		{
			bool		known = false;

			for (int i = 0; i < ROUTE_MAX_ARGS && rt->args[i].arg && !known; i++)
				known = rt->args[i].src == BODY && strcmp(key_of(&rt->args[i]), k) == 0;
			if (!known)
			{
				unknown_key(&res, rt, "field", k, BODY);
				json_decref(body);
				return send_refusal(r, &res);
			}
		}
	}
	s.body = r->body;
	for (int i = 0; i < ROUTE_MAX_ARGS && rt->args[i].arg; i++)
	{
		const RouteArg *ra = &rt->args[i];
		const CatArg *a = args_find(s.func, ra->arg);
		const char *v = NULL;
		bool		given = false,
					ok = true;

		if (a == NULL)
			continue;			/* an older extension without this argument */
		if (ra->src == PATH)
		{
			v = id;
			given = true;
			ok = args_check_named(a, "id", v, &res);
		}
		else if (ra->src == QUERY)
		{
			v = req_query(r, key_of(ra));
			given = v != NULL;
			if (given && ra->xform == ORDER_TO_DESCENDING)
			{
				if (strcmp(v, "asc") == 0 || strcmp(v, "desc") == 0)
					v = strcmp(v, "desc") == 0 ? "true" : "false";
				else
				{
					res.status = 400;
					snprintf(res.code, sizeof(res.code), "22023");
					res.message = strdup("invalid order");
					res.details = malloc(96);
					snprintf(res.details, 96, "Got \"%.40s\".", v);
					res.hint = strdup("Pass asc or desc.");
					ok = false;
				}
			}
			if (ok && given)
				ok = args_check_named(a, key_of(ra), v, &res);
		}
		else if (body && json_object_get(body, key_of(ra)))
		{
			given = true;
			ok = args_check_json(a, key_of(ra), json_object_get(body, key_of(ra)), &res);
			s.arg_keys[s.nargs] = key_of(ra);
		}
		if (!ok)
		{
			out = send_refusal(r, &res);
			goto done;
		}
		if (!given && a->has_default)
			continue;
		s.arg_names[s.nargs] = a->name;
		s.arg_values[s.nargs++] = v;
	}
	{
		double		deadline = mm_now_s() + wait;

		for (;;)
		{
			uint64_t	gen = listen_work_generation();
			bool		woke = false;

			call_run(r, &s, &res);
			if (!(rt->flags & LONG_POLL) || res.status != 200 || res.rows > 0 || mm_now_s() >= deadline ||
				listen_draining())
				break;

			/*
			 * Nothing to claim: wait for a wake-up without holding a connection, a second at a time,
			 * then claim again: on a wake-up, every second while the LISTEN connection is down, and
			 * once more at the deadline.  Before claiming, make sure the client is still there: work
			 * leased to a client that hung up would sit RUNNING, unseen, until its lease expired.
			 */
			call_result_free(&res);
			while (!woke && mm_now_s() < deadline && !client_gone(r) && !listen_draining())
			{
				woke = listen_wait_work(gen, fmin(mm_now_s() + 1.0, deadline));
				if (!listen_connected())
					break;
			}
			if (client_gone(r))
			{
				out = MHD_NO;	/* close the connection; nothing was claimed */
				goto done;
			}
		}
	}
	out = respond(r, rt, id, &s, &res);
done:
	json_decref(body);
	return out;
}

/* Dispatches to the route for the path and method; *handled false when no route has the path. */
enum MHD_Result
routes_handle(Request *r, bool *handled)
{
	char		id[32],
				allow[128] = "";
	const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;

	*handled = false;
	for (size_t i = 0; i < NROUTES; i++)
	{
		if (!match(routes[i].path, r->path, id, sizeof(id)))
			continue;
		*handled = true;
		if (strcmp(routes[i].method, method) == 0)
			return run_route(r, &routes[i], id);
		if (strstr(allow, routes[i].method) == NULL)
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "",
					 routes[i].method);
	}
	if (*handled)
	{
		ReplyHeader h = {"Allow", allow};

		if (strstr(allow, "GET"))
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), ", HEAD");
		return reply_error_h(r, 405, "PGRST117", "Method not allowed", NULL, NULL, &h, 1);
	}
	return MHD_NO;
}

/* The OpenAPI schema of an argument's SQL type. */
json_t *
openapi_type(const char *type)
{
	size_t		n = strlen(type);

	if (n > 2 && strcmp(type + n - 2, "[]") == 0)
	{
		char		elem[64];

		snprintf(elem, sizeof(elem), "%.*s", (int) (n - 2 > 60 ? 60 : n - 2), type);
		return json_pack("{s:s, s:o}", "type", "array", "items", openapi_type(elem));
	}
	if (strcmp(type, "bigint") == 0 || strcmp(type, "integer") == 0 || strcmp(type, "smallint") == 0)
		return json_pack("{s:s, s:s}", "type", "integer", "format", strcmp(type, "bigint") == 0 ? "int64" : "int32");
	if (strcmp(type, "real") == 0 || strcmp(type, "double precision") == 0 || strcmp(type, "numeric") == 0)
		return json_pack("{s:s}", "type", "number");
	if (strcmp(type, "boolean") == 0)
		return json_pack("{s:s}", "type", "boolean");
	if (strcmp(type, "json") == 0 || strcmp(type, "jsonb") == 0)
		return json_object();	/* any JSON value */
	if (strcmp(type, "timestamp with time zone") == 0)
		return json_pack("{s:s, s:s}", "type", "string", "format", "date-time");
	if (strcmp(type, "uuid") == 0)
		return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
	return json_pack("{s:s}", "type", "string");
}

/* The routes as OpenAPI path items, added to paths. */
void
routes_openapi(json_t *paths)
{
	for (size_t i = 0; i < NROUTES; i++)
	{
		const Route *rt = &routes[i];
		const CatFunc *f = catalog_find(rt->func);
		char		path[128];
		const char *id = strstr(rt->path, ":id");
		json_t	   *item,
				   *op = json_object(),
				   *params = json_array(),
				   *props = json_object(),
				   *required = json_array(),
				   *lower;
		char		method[8];

		if (id)
			snprintf(path, sizeof(path), "%.*s{id}%s", (int) (id - rt->path), rt->path, id + 3);
		else
			snprintf(path, sizeof(path), "%s", rt->path);
		item = json_object_get(paths, path);
		if (item == NULL)
		{
			item = json_object();
			json_object_set_new(paths, path, item);
		}
		json_object_set_new(op, "summary", json_string(rt->summary));
		json_object_set_new(op, "description", json_string(f && f->comment[0] ? f->comment : rt->func));
		json_object_set_new(op, "operationId", json_sprintf("%s %s", rt->method, rt->path));
		if (id)
			json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "name", "id", "in", "path",
													"required", 1, "schema", "type", "integer", "format",
													"int64"));
		if (rt->flags & LONG_POLL)
			json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "wait", "in", "query",
													"description", "seconds to hold the request until work comes",
													"schema", "type", "number"));
		for (int k = 0; k < ROUTE_MAX_ARGS && rt->args[k].arg; k++)
		{
			const RouteArg *ra = &rt->args[k];
			const CatArg *a = f ? args_find(f, ra->arg) : NULL;
			json_t	   *schema = ra->xform == ORDER_TO_DESCENDING
				? json_pack("{s:s, s:[s,s]}", "type", "string", "enum", "asc", "desc")
				: openapi_type(a ? a->type : "text");

			if (ra->src == QUERY)
				json_array_append_new(params, json_pack("{s:s, s:s, s:o}", "name", key_of(ra), "in", "query",
														"schema", schema));
			else if (ra->src == BODY)
			{
				json_object_set_new(props, key_of(ra), schema);
				if (a && !a->has_default)
					json_array_append_new(required, json_string(key_of(ra)));
			}
			else
				json_decref(schema);
		}
		json_object_set_new(op, "parameters", params);
		if (json_object_size(props) > 0 || strcmp(rt->method, "POST") == 0)
			json_object_set_new(op, "requestBody",
								json_pack("{s:{s:{s:{s:s, s:o, s:o}}}}", "content", "application/json", "schema",
										  "type", "object", "properties", props, "required", required));
		else
		{
			json_decref(props);
			json_decref(required);
		}
		json_object_set_new(op, "responses",
							json_pack("{s:{s:s}, s:{s:s}}", rt->shape == CREATED ? "201" : rt->shape == EMPTY ? "204"
									  : "200", "description", "success", "default", "description",
									  "an error: {code, message, details, hint}"));
		snprintf(method, sizeof(method), "%s", rt->method);
		for (char *m = method; *m; m++)
			*m = (char) (*m + 32);
		lower = json_object_get(item, method);
		if (lower == NULL)
			json_object_set_new(item, method, op);
		else
			json_decref(op);
	}
}

/* Calls fn for every route (for /openapi.json). */
void
routes_each(void (*fn) (const char *method, const char *path, const char *func, const char *summary,
						void *arg), void *arg)
{
	for (size_t i = 0; i < NROUTES; i++)
		fn(routes[i].method, routes[i].path, routes[i].func, routes[i].summary, arg);
}
