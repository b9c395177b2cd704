/*
 * call.c — one request's transaction, as PostgREST runs it, in one round trip (two when it may write).
 *
 * Two statements and a Sync go down a pooled connection in libpq's pipeline mode, so they form one
 * implicit transaction, committed at the Sync, rolled back as a whole if either fails (a transaction
 * that may write sends its Sync only once the call's result is in: see run_pipeline):
 *   1. the set-up: request.headers (the Authorization bearer among them), request.method and
 *      request.path, a statement_timeout and, for GET, HEAD and functions that are not VOLATILE,
 *      transaction_read_only, all local to the transaction; and the role, SET LOCAL to what
 *      modelmine.request_role() says after it has verified the bearer (a user token, a node key,
 *      or nothing: modelmine_anon).  The gateway never decides identity: a bad, expired or
 *      revoked token fails the set-up, which answers 401.
 *   2. the call, with its result shaped into JSON by PostgreSQL (json_agg, row_to_json, to_json).
 * Both statements are prepared once per connection.  A 2xx is sent only after the commit was
 * acknowledged, so a client never sees success for a write that did not happen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "modelmine/common.h"

/* $1 headers, $2 method, $3 path, $4 statement_timeout, $5 transaction_read_only */
static const char setup_sql[] =
	"SELECT pg_catalog.set_config('role', "
	"           modelmine.request_role(pg_catalog.set_config('request.headers', $1, true)), true), "
	"       pg_catalog.set_config('request.method', $2, true), "
	"       pg_catalog.set_config('request.path', $3, true), "
	"       pg_catalog.set_config('statement_timeout', $4, true), "
	"       pg_catalog.set_config('transaction_read_only', $5, true)";

typedef struct Sql
{
	char	   *text;
	size_t		len,
				cap;
	const char *params[CALL_MAX_PARAMS];
	int			nparams;
	bool		overflow;
} Sql;

/* Appends to the statement text. */
static void
sql_add(Sql *q, const char *s)
{
	size_t		n = strlen(s);

	if (q->len + n + 1 > q->cap)
	{
		size_t		cap = (q->cap ? q->cap * 2 : 512) + n;
		char	   *t = realloc(q->text, cap);

		if (t == NULL)
		{
			q->overflow = true;
			return;
		}
		q->text = t;
		q->cap = cap;
	}
	memcpy(q->text + q->len, s, n + 1);
	q->len += n;
}

/* Appends a parameter reference ($n) for value (NULL: SQL NULL), with a cast when type is given. */
static void
sql_param(Sql *q, const char *value, const char *type)
{
	char		ref[16];

	if (q->nparams == CALL_MAX_PARAMS)
	{
		q->overflow = true;
		return;
	}
	q->params[q->nparams++] = value;
	snprintf(ref, sizeof(ref), "$%d", q->nparams);
	sql_add(q, ref);
	if (type)
	{
		sql_add(q, "::");
		sql_add(q, type);
	}
}

/* Appends an identifier, double-quoted (names come from the catalog or were checked against it). */
static void
sql_ident(Sql *q, const char *name)
{
	sql_add(q, "\"");
	for (const char *p = name; *p; p++)
	{
		char		c[3] = {*p, *p == '"' ? '"' : '\0', '\0'};

		sql_add(q, c);
	}
	sql_add(q, "\"");
}

/* The index of a result column of f, or -1. */
static int
col_index(const CatFunc *f, const char *name, size_t len)
{
	for (int i = 0; i < f->ncols; i++)
		if (strlen(f->cols[i]) == len && strncmp(f->cols[i], name, len) == 0)
			return i;
	return -1;
}

/* Sets a 400 error on res for a query modifier naming what is wrong. */
static void
bad_modifier(CallResult *res, const char *code, const char *msg, const char *what)
{
	char		details[256];

	res->status = 400;
	snprintf(res->code, sizeof(res->code), "%s", code);
	res->message = strdup(msg);
	snprintf(details, sizeof(details), "%s", what);
	res->details = strdup(details);
	res->hint = strdup("See the function's result columns in /openapi.json.");
}

/* Appends a string literal ('...', quotes doubled): body keys, which come from the route table or the
 * catalog, never from the client unchecked. */
static void
sql_literal(Sql *q, const char *s)
{
	sql_add(q, "'");
	for (const char *p = s; *p; p++)
	{
		char		c[3] = {*p, *p == '\'' ? '\'' : '\0', '\0'};

		sql_add(q, c);
	}
	sql_add(q, "'");
}

/*
 * An argument taken from the JSON body, extracted by PostgreSQL from the body as sent: re-encoding
 * the value here would round 0.1 to 0.10000000000000001 and lose integers beyond 64 bits.  The body
 * is one jsonb parameter, parsed once however many arguments use it.  JSON null is SQL NULL.
 */
static void
sql_body_arg(Sql *q, const CallSpec *s, const CatArg *a, const char *key, int *body_param)
{
	char		ref[32];

	if (*body_param == 0)
	{
		if (q->nparams == CALL_MAX_PARAMS)
		{
			q->overflow = true;
			return;
		}
		q->params[q->nparams++] = s->body;
		*body_param = q->nparams;
	}
	snprintf(ref, sizeof(ref), "$%d::pg_catalog.jsonb", *body_param);
	if (a->is_json)
	{
		sql_add(q, "NULLIF(");
		sql_add(q, ref);
		sql_add(q, " -> ");
		sql_literal(q, key);
		sql_add(q, ", 'null'::pg_catalog.jsonb)::");
		sql_add(q, a->type);
	}
	else if (a->is_array)
	{
		sql_add(q, "CASE WHEN pg_catalog.jsonb_typeof(");
		sql_add(q, ref);
		sql_add(q, " -> ");
		sql_literal(q, key);
		sql_add(q, ") = 'array' THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(");
		sql_add(q, ref);
		sql_add(q, " -> ");
		sql_literal(q, key);
		sql_add(q, "))::");
		sql_add(q, a->type);
		sql_add(q, " END");
	}
	else
	{
		sql_add(q, "(");
		sql_add(q, ref);
		sql_add(q, " ->> ");
		sql_literal(q, key);
		sql_add(q, ")::");
		sql_add(q, a->type);
	}
}

/* modelmine.fn(a => $1::type, b => ($2::jsonb ->> 'b')::type, ...) */
static void
sql_call(Sql *q, const CallSpec *s)
{
	int			body_param = 0;

	sql_add(q, "modelmine.");
	sql_ident(q, s->func->name);
	sql_add(q, "(");
	for (int i = 0; i < s->nargs; i++)
	{
		const CatArg *a = NULL;

		for (int k = 0; k < s->func->nargs && !a; k++)
			if (strcmp(s->func->args[k].name, s->arg_names[i]) == 0)
				a = &s->func->args[k];
		if (i)
			sql_add(q, ", ");
		sql_ident(q, s->arg_names[i]);
		sql_add(q, " => ");
		if (s->arg_keys[i] && a)
			sql_body_arg(q, s, a, s->arg_keys[i], &body_param);
		else
			sql_param(q, s->arg_values[i], a ? a->type : NULL);
	}
	sql_add(q, ")");
}

/* The select list of _p over _src: "*" or the named columns (alias:col allowed); false if unknown. */
static bool
sql_select(Sql *q, const CallSpec *s, CallResult *res)
{
	const char *p = s->select;

	if (p == NULL || strcmp(p, "*") == 0 || *p == '\0')
	{
		sql_add(q, "_r.*");
		return true;
	}
	for (bool first = true; *p; first = false)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		const char *colon = memchr(p, ':', len);
		const char *name = colon ? colon + 1 : p;
		size_t		nlen = colon ? len - (size_t) (colon + 1 - p) : len;
		int			c;
		char		alias[128];

		while (nlen && *name == ' ')
			name++, nlen--;
		if (nlen == 1 && *name == '*')
		{
			sql_add(q, first ? "_r.*" : ", _r.*");
			p = end ? end + 1 : p + len;
			continue;
		}
		c = col_index(s->func, name, nlen);
		if (c < 0)
		{
			char		what[160];

			snprintf(what, sizeof(what), "column \"%.*s\" does not exist in the result of %s",
					 (int) (nlen > 64 ? 64 : nlen), name, s->func->name);
			bad_modifier(res, "42703", "unknown column in select", what);
			return false;
		}
		if (!first)
			sql_add(q, ", ");
		sql_add(q, "_r.");
		sql_ident(q, s->func->cols[c]);
		if (colon && (size_t) (colon - p) < sizeof(alias))
		{
			memcpy(alias, p, (size_t) (colon - p));
			alias[colon - p] = '\0';
			sql_add(q, " AS ");
			sql_ident(q, alias);
		}
		p = end ? end + 1 : p + len;
	}
	return true;
}

/* WHERE for PostgREST filters "col=op.value" (eq neq gt gte lt lte like ilike is in, not.op). */
static bool
sql_filters(Sql *q, const CallSpec *s, CallResult *res, char **owned, int *nowned)
{
	static const struct
	{
		const char *op;
		const char *sql;
	}			ops[] = {
		{"eq", " = "}, {"neq", " <> "}, {"gt", " > "}, {"gte", " >= "}, {"lt", " < "}, {"lte", " <= "},
		{"like", " LIKE "}, {"ilike", " ILIKE "},
	};

	for (int i = 0; i < s->nfilters; i++)
	{
		const char *f = s->filters[i];
		const char *eq = strchr(f, '=');
		const char *op,
				   *dot;
		int			c;
		bool		neg = false;

		if (eq == NULL || (c = col_index(s->func, f, (size_t) (eq - f))) < 0)
		{
			char		what[160];

			snprintf(what, sizeof(what), "\"%.*s\" is neither an argument of %s nor a column of its result",
					 (int) (eq ? (eq - f > 64 ? 64 : eq - f) : 64), f, s->func->name);
			bad_modifier(res, "PGRST100", "unknown query parameter", what);
			return false;
		}
		op = eq + 1;
		if (strncmp(op, "not.", 4) == 0)
		{
			neg = true;
			op += 4;
		}
		dot = strchr(op, '.');
		sql_add(q, i ? " AND " : " WHERE ");
		if (neg)
			sql_add(q, "NOT ");
		sql_add(q, "(_r.");
		sql_ident(q, s->func->cols[c]);
		if (dot && strncmp(op, "is.", 3) == 0)
		{
			const char *v = dot + 1;

			if (strcmp(v, "null") == 0)
				sql_add(q, " IS NULL)");
			else if (strcmp(v, "true") == 0)
				sql_add(q, " IS TRUE)");
			else if (strcmp(v, "false") == 0)
				sql_add(q, " IS FALSE)");
			else
			{
				bad_modifier(res, "PGRST100", "invalid filter", "is. takes null, true or false");
				return false;
			}
			continue;
		}
		if (dot && strncmp(op, "in.", 3) == 0)
		{
			/* in.(a,b,c) -> = ANY ('{a,b,c}'::type[]) */
			const char *v = dot + 1;
			size_t		n = strlen(v);
			char	   *arr,
					   *typ;

			if (n < 2 || v[0] != '(' || v[n - 1] != ')')
			{
				bad_modifier(res, "PGRST100", "invalid filter", "in. takes a list in parentheses: in.(1,2,3)");
				return false;
			}
			arr = malloc(n + 1);
			arr[0] = '{';
			memcpy(arr + 1, v + 1, n - 2);
			arr[n - 1] = '}';
			arr[n] = '\0';
			typ = malloc(strlen(s->func->col_types[c]) + 3);
			sprintf(typ, "%s[]", s->func->col_types[c]);
			owned[(*nowned)++] = arr;
			owned[(*nowned)++] = typ;
			sql_add(q, " = ANY (");
			sql_param(q, arr, typ);
			sql_add(q, "))");
			continue;
		}
		{
			bool		found = false;

			for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]) && dot; k++)
				if ((size_t) (dot - op) == strlen(ops[k].op) && strncmp(op, ops[k].op, strlen(ops[k].op)) == 0)
				{
					sql_add(q, ops[k].sql);
					if (strcmp(ops[k].op, "like") == 0 || strcmp(ops[k].op, "ilike") == 0)
					{
						/* PostgREST writes * for % in like patterns */
						char	   *pat = strdup(dot + 1);

						for (char *x = pat; *x; x++)
							if (*x == '*')
								*x = '%';
						owned[(*nowned)++] = pat;
						sql_param(q, pat, "text");
					}
					else
						sql_param(q, dot + 1, s->func->col_types[c]);
					sql_add(q, ")");
					found = true;
					break;
				}
			if (!found)
			{
				bad_modifier(res, "PGRST100", "invalid filter operator",
							 "use eq, neq, gt, gte, lt, lte, like, ilike, is or in, e.g. status=eq.RUNNING");
				return false;
			}
		}
	}
	return true;
}

/* ORDER BY for "col.desc.nullslast,col2" (columns checked against the result). */
static bool
sql_order(Sql *q, const CallSpec *s, CallResult *res)
{
	const char *p = s->order;

	if (p == NULL || *p == '\0')
		return true;
	sql_add(q, " ORDER BY ");
	for (bool first = true; *p; first = false)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		const char *dot = memchr(p, '.', len);
		size_t		nlen = dot ? (size_t) (dot - p) : len;
		int			c = col_index(s->func, p, nlen);

		if (c < 0)
		{
			char		what[160];

			snprintf(what, sizeof(what), "cannot order by \"%.*s\": not a column of the result of %s",
					 (int) (nlen > 64 ? 64 : nlen), p, s->func->name);
			bad_modifier(res, "PGRST100", "unknown column in order", what);
			return false;
		}
		if (!first)
			sql_add(q, ", ");
		sql_add(q, "_r.");
		sql_ident(q, s->func->cols[c]);
		if (dot)
		{
			char		mods[64];
			size_t		mlen = len - nlen - 1;

			snprintf(mods, sizeof(mods), "%.*s", (int) (mlen > 60 ? 60 : mlen), dot + 1);
			for (char *m = strtok(mods, "."); m; m = strtok(NULL, "."))
			{
				if (strcmp(m, "asc") == 0)
					sql_add(q, " ASC");
				else if (strcmp(m, "desc") == 0)
					sql_add(q, " DESC");
				else if (strcmp(m, "nullsfirst") == 0)
					sql_add(q, " NULLS FIRST");
				else if (strcmp(m, "nullslast") == 0)
					sql_add(q, " NULLS LAST");
				else
				{
					bad_modifier(res, "PGRST100", "invalid order modifier",
								 "use asc, desc, nullsfirst or nullslast, e.g. order=created_at.desc");
					return false;
				}
			}
		}
		p = end ? end + 1 : p + len;
	}
	return true;
}

/*
 * The statement for a call: its text and parameters in q.  Result columns: (total, json, rows) for
 * sets, (json) otherwise, none for void.  False with res set on a bad modifier.
 */
static bool
build(Sql *q, const CallSpec *s, CallResult *res, char **owned, int *nowned, char *limit_buf,
	  char *offset_buf)
{
	const CatFunc *f = s->func;
	bool		modifiers = s->select || s->order || s->nfilters;

	switch (f->ret)
	{
		case RET_VOID:
			sql_add(q, "SELECT ");
			sql_call(q, s);
			break;
		case RET_SCALAR:
			sql_add(q, "SELECT pg_catalog.to_json(");
			sql_call(q, s);
			sql_add(q, ")::text");
			break;
		case RET_SET_SCALAR:
			sql_add(q, "SELECT NULL::bigint, COALESCE(pg_catalog.json_agg(_r), '[]')::text, pg_catalog.count(*) "
					"FROM ");
			sql_call(q, s);
			sql_add(q, " _r");
			break;
		case RET_COMPOSITE:
			if (!modifiers)
			{
				sql_add(q, "SELECT pg_catalog.row_to_json(_r)::text FROM ");
				sql_call(q, s);
				sql_add(q, " _r");
				break;
			}
			/* select or filter a one-row result: as a set of one (null when filtered out) */
			/* FALLTHROUGH */
		case RET_SET:
			sql_add(q, "WITH _src AS (SELECT _r.* FROM ");
			sql_call(q, s);
			sql_add(q, " _r");
			if (!sql_filters(q, s, res, owned, nowned))
				return false;
			sql_add(q, ") SELECT ");
			sql_add(q, s->count_exact ? "(SELECT pg_catalog.count(*) FROM _src)" : "NULL::bigint");
			/* one object for vnd.pgrst.object+json, taken out by PostgreSQL: never re-encoded here */
			sql_add(q, f->ret == RET_COMPOSITE ? ", pg_catalog.row_to_json(_p)::text, 1::bigint FROM (SELECT "
					: s->single_object ? ", (pg_catalog.json_agg(_p) -> 0)::text, pg_catalog.count(*) FROM (SELECT "
					: ", COALESCE(pg_catalog.json_agg(_p), '[]')::text, pg_catalog.count(*) FROM (SELECT ");
			if (!sql_select(q, s, res))
				return false;
			sql_add(q, " FROM _src _r");
			if (!sql_order(q, s, res))
				return false;
			snprintf(limit_buf, 24, "%ld", s->limit);
			snprintf(offset_buf, 24, "%ld", s->offset);
			sql_add(q, " LIMIT ");
			sql_param(q, s->limit >= 0 ? limit_buf : NULL, "bigint");
			sql_add(q, " OFFSET ");
			sql_param(q, offset_buf, "bigint");
			sql_add(q, ") _p");
			break;
	}
	if (q->overflow)
	{
		bad_modifier(res, "PGRST100", "request too complex", "too many arguments or filters");
		return false;
	}
	return true;
}

/* Copies an error's fields from a result into res, with the HTTP status for its SQLSTATE. */
static void
take_error(PGresult *pr, CallResult *res, bool anon)
{
	const char *state = PQresultErrorField(pr, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(pr, PG_DIAG_MESSAGE_PRIMARY);
	const char *det = PQresultErrorField(pr, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(pr, PG_DIAG_MESSAGE_HINT);

	snprintf(res->sqlstate, sizeof(res->sqlstate), "%s", state ? state : "");
	snprintf(res->code, sizeof(res->code), "%s", state ? state : "PGRST000");
	res->message = strdup(msg ? msg : PQresultErrorMessage(pr));
	res->details = det ? strdup(det) : NULL;
	res->hint = hint ? strdup(hint) : NULL;
	res->status = status_for_sqlstate(state, anon);
	if (state && strcmp(state, MM_SQLSTATE_BUSY) == 0)
		res->retry_after = 1;
}

/* The request's headers as PostgREST passes them: a JSON object, lower-case names, no Cookie. */
static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	json_t	   *obj = cls;
	char		lower[128];
	size_t		n = strlen(key);

	(void) kind;
	if (n >= sizeof(lower) || strcasecmp(key, "cookie") == 0 || value == NULL)
		return MHD_YES;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char) (key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
	json_object_set_new(obj, lower, json_string(value));
	return MHD_YES;
}

/* request.headers for a request, or for a bare bearer (Socket.IO CONNECT, internal checks). */
static char *
headers_json(Request *r, const char *bearer)
{
	json_t	   *h = json_object();
	char	   *text;

	if (r)
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_header, h);
	if (bearer)
	{
		char	   *auth = malloc(strlen(bearer) + 8);

		sprintf(auth, "Bearer %s", bearer);
		json_object_set_new(h, "authorization", json_string(auth));
		free(auth);
	}
	text = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	return text;
}

/* Sends one statement in the pipeline, preparing it on this connection the first time. */
static bool
send_prepared(PoolConn *c, const char *sql, int nparams, const char *const *params, bool *prepared_now,
			  char *name, size_t namelen)
{
	static unsigned long counter = 0;
	PGconn	   *pg = pool_pg(c);
	const char *known = pool_prepared(c, sql);

	*prepared_now = false;
	if (known)
		snprintf(name, namelen, "%s", known);
	else
	{
		snprintf(name, namelen, "mm%lu", __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
		if (!PQsendPrepare(pg, name, sql, 0, NULL))
			return false;
		*prepared_now = true;
	}
	return PQsendQueryPrepared(pg, name, nparams, params, NULL, NULL, 0) == 1;
}

/* Reads the results of one pipelined command: the last one is kept, errors are copied. */
static PGresult *
read_command(PGconn *pg, bool *failed, bool *aborted)
{
	PGresult   *last = NULL,
			   *pr;

	while ((pr = PQgetResult(pg)) != NULL)
	{
		ExecStatusType st = PQresultStatus(pr);

		if (st == PGRES_FATAL_ERROR)
			*failed = true;
		if (st == PGRES_PIPELINE_ABORTED)
			*aborted = true;
		if (last && PQresultStatus(last) == PGRES_FATAL_ERROR)
			PQclear(pr);		/* keep the first error */
		else
		{
			PQclear(last);
			last = pr;
		}
	}
	return last;
}

/* Notices (the extension's WARNINGs of a skipped housekeeping task) go to the gateway's log. */
static void
on_notice(void *arg, const PGresult *pr)
{
	const char *sev = PQresultErrorField(pr, PG_DIAG_SEVERITY_NONLOCALIZED);
	char		msg[512];

	(void) arg;
	if (sev && strcmp(sev, "WARNING") == 0)
	{
		snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(pr));
		mm_one_line(msg);
		fprintf(stderr, "modelmine-api: database warning: %s\n", msg);
	}
}

/* The error for a request whose connection broke mid-way: 503, the request may or may not have run. */
static void
lost_connection(CallResult *res)
{
	res->status = 503;
	snprintf(res->code, sizeof(res->code), "PGRST001");
	res->message = strdup("Database client error. Retrying the connection.");
	res->hint = strdup("The connection to the database was lost; the request may not have been "
					   "applied. Retry it.");
	res->retry_after = 1;
}

/*
 * Whether a set-like call result (total, json, rows) has exactly one row: what an
 * application/vnd.pgrst.object+json request needs; a writing one that has not is rolled back.
 */
static bool
one_row(PGresult *pr)
{
	return PQnfields(pr) == 3 && PQntuples(pr) == 1 && atol(PQgetvalue(pr, 0, 2)) == 1;
}

/*
 * Runs set-up + sql on a pooled connection, as one transaction.  On success *out holds the call's
 * result (the caller clears it) and res->role the role it ran as; otherwise res carries the error
 * and status.
 *
 * Read-only: set-up, call and Sync in one round trip (an implicit transaction).  Writing: BEGIN,
 * set-up and call, flushed; then, once the call's result is in, COMMIT (or ROLLBACK: on an error,
 * or when need_one_row and the result has not exactly one row) with the Sync.  A gateway that
 * dies mid-call never sends the COMMIT, so the backend rolls back when the connection drops.
 */
static bool
run_pipeline(Request *r, const char *bearer, const char *sql, const char *const *params, int nparams,
			 bool read_only, bool need_one_row, PGresult **out, CallResult *res)
{
	PoolConn   *c;
	PoolStatus	ps = pool_acquire(&c, api_cfg.acquire_timeout_ms);
	PGconn	   *pg;
	char	   *headers = headers_json(r, bearer);
	char		timeout[16];
	const char *setup_params[5];
	char		setup_name[32],
				call_name[32];
	bool		setup_prepared,
				call_prepared,
				failed = false,
				aborted = false,
				broken = false,
				rolled_back = false;
	PGresult   *setup = NULL,
			   *result = NULL,
			   *first_error = NULL,
			   *pr;
	bool		error_in_setup = false;
	static __thread char role[64];
	enum
	{
		BEGIN_CMD, SETUP_PREP, SETUP, CALL_PREP, CALL
	}			stages[5];
	int			nstages = 0;

	*out = NULL;
	if (ps != POOL_OK)
	{
		free(headers);
		res->status = ps == POOL_TIMEOUT ? 504 : 503;
		snprintf(res->code, sizeof(res->code), "%s", ps == POOL_TIMEOUT ? "PGRST003" : "PGRST001");
		res->message = strdup(ps == POOL_TIMEOUT ? "Timed out acquiring connection from connection pool."
							  : "Database client error. Retrying the connection.");
		res->hint = strdup(ps == POOL_TIMEOUT ? "The server is busy; retry shortly."
						   : "The database cannot be reached now; retry after the time in Retry-After.");
		res->retry_after = ps == POOL_TIMEOUT ? 1 : pool_retry_after_s();
		return false;
	}
	pg = pool_pg(c);
	PQsetNoticeReceiver(pg, on_notice, NULL);
	snprintf(timeout, sizeof(timeout), "%d", api_cfg.statement_timeout_ms);
	setup_params[0] = headers;
	setup_params[1] = r ? r->method : "GET";
	setup_params[2] = r ? r->path : "/socket.io/";
	setup_params[3] = timeout;
	setup_params[4] = read_only ? "on" : "off";

	if (!PQenterPipelineMode(pg) ||
		(!read_only && !PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) ||
		!send_prepared(c, setup_sql, 5, setup_params, &setup_prepared, setup_name, sizeof(setup_name)) ||
		!send_prepared(c, sql, nparams, params, &call_prepared, call_name, sizeof(call_name)) ||
		!(read_only ? PQpipelineSync(pg) : PQsendFlushRequest(pg) && PQflush(pg) == 0))
		broken = true;
	else
	{
		if (!read_only)
			stages[nstages++] = BEGIN_CMD;
		if (setup_prepared)
			stages[nstages++] = SETUP_PREP;
		stages[nstages++] = SETUP;
		if (call_prepared)
			stages[nstages++] = CALL_PREP;
		stages[nstages++] = CALL;
		for (int i = 0; i < nstages; i++)
		{
			pr = read_command(pg, &failed, &aborted);
			if (pr && PQresultStatus(pr) == PGRES_FATAL_ERROR && first_error == NULL)
			{
				first_error = pr;
				error_in_setup = stages[i] != CALL_PREP && stages[i] != CALL;
				continue;
			}
			if (pr && PQresultStatus(pr) == PGRES_COMMAND_OK && stages[i] == SETUP_PREP)
				pool_remember(c, setup_sql, setup_name);
			else if (pr && PQresultStatus(pr) == PGRES_COMMAND_OK && stages[i] == CALL_PREP)
				pool_remember(c, sql, call_name);
			else if (stages[i] == SETUP && first_error == NULL)
			{
				setup = pr;
				continue;
			}
			else if (stages[i] == CALL && first_error == NULL)
			{
				result = pr;
				continue;
			}
			PQclear(pr);
		}
		if (!read_only)
		{
			/*
			 * The end of a writing transaction, now that the call's result is in.  After an error the
			 * server skips everything up to a Sync, so the ROLLBACK follows one.
			 */
			rolled_back = first_error != NULL || (need_one_row && result && !one_row(result));
			if ((first_error && !PQpipelineSync(pg)) ||
				!PQsendQueryParams(pg, rolled_back ? "ROLLBACK" : "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
				!PQpipelineSync(pg))
				broken = true;
			if (!broken && first_error)
			{
				pr = PQgetResult(pg);	/* the first Sync */
				broken = pr == NULL || PQresultStatus(pr) != PGRES_PIPELINE_SYNC;
				PQclear(pr);
			}
			if (!broken)
			{
				pr = read_command(pg, &failed, &aborted);	/* COMMIT or ROLLBACK */
				if (pr && PQresultStatus(pr) == PGRES_FATAL_ERROR && first_error == NULL)
					first_error = pr;	/* the commit itself failed */
				else
					PQclear(pr);
			}
		}
		pr = broken ? NULL : PQgetResult(pg);	/* the (last) Sync */
		if (pr == NULL || PQresultStatus(pr) != PGRES_PIPELINE_SYNC)
			broken = true;
		PQclear(pr);
		if (!PQexitPipelineMode(pg))
			broken = true;
	}
	if (broken || PQstatus(pg) != CONNECTION_OK)
	{
		PQclear(setup);
		PQclear(result);
		PQclear(first_error);
		free(headers);
		pool_release(c, true);
		lost_connection(res);
		return false;
	}
	free(headers);
	pool_release(c, false);
	snprintf(role, sizeof(role), "%s", setup && PQntuples(setup) == 1 ? PQgetvalue(setup, 0, 0) : "-");
	res->role = role;
	res->rolled_back = rolled_back;
	PQclear(setup);
	if (first_error)
	{
		take_error(first_error, res, strcmp(role, MM_ROLE_ANON) == 0 || error_in_setup);
		/* the bearer was refused by the set-up: 401, as PostgREST answers a bad JWT */
		if (error_in_setup && strncmp(res->sqlstate, MM_SQLSTATE_CLASS_AUTH, 2) == 0)
		{
			res->status = 401;
			snprintf(res->code, sizeof(res->code), "PGRST301");
		}
		/* the gateway's own login role cannot take the role: the operator's problem, not the client's */
		else if (error_in_setup && strcmp(res->sqlstate, MM_SQLSTATE_FORBIDDEN) == 0)
		{
			res->status = 500;
			snprintf(res->code, sizeof(res->code), "PGRST000");
			free(res->hint);
			res->hint = strdup("The gateway's database role must be a member (with INHERIT) of "
							   MM_ROLE_ANON ", " MM_ROLE_USER ", " MM_ROLE_NODE " and " MM_ROLE_ADMIN ".");
			fprintf(stderr, "modelmine-api: the set-up was refused: %s (check the --db role's grants)\n",
					res->message);
		}
		PQclear(first_error);
		PQclear(result);
		return false;
	}
	if (result == NULL || PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		res->status = 500;
		snprintf(res->code, sizeof(res->code), "PGRST000");
		res->message = strdup("the database returned no result");
		PQclear(result);
		return false;
	}
	*out = result;
	return true;
}

/* Runs a call spec and shapes its result (res->body) and status, PostgREST's way. */
void
call_run(Request *r, const CallSpec *s, CallResult *res)
{
	Sql			q = {0};
	char	   *owned[16];
	int			nowned = 0;
	char		limit_buf[24],
				offset_buf[24];
	PGresult   *pr = NULL;
	bool		set_like;

	memset(res, 0, sizeof(*res));
	res->total = -1;
	res->role = "-";
	if (!build(&q, s, res, owned, &nowned, limit_buf, offset_buf))
		goto done;
	/* a function that is not VOLATILE cannot write (PostgreSQL enforces it): read-only, whatever the method */
	if (!run_pipeline(r, NULL, q.text, q.params, q.nparams,
					  (req_is_read(r) && !s->writes_on_get) || s->func->volatility != 'v',
					  s->single_object && s->func->ret == RET_SET, &pr, res))
		goto done;
	set_like = PQnfields(pr) == 3;
	if (s->func->ret == RET_VOID)
	{
		res->status = 204;
		goto done;
	}
	if (PQntuples(pr) < 1 || PQgetisnull(pr, 0, set_like ? 1 : 0))
	{
		res->body = strdup(set_like && s->func->ret != RET_COMPOSITE ? "[]" : "null");
		res->rows = 0;
	}
	else
	{
		res->body = strdup(PQgetvalue(pr, 0, set_like ? 1 : 0));
		res->rows = set_like ? atol(PQgetvalue(pr, 0, 2)) : 1;
		if (set_like && !PQgetisnull(pr, 0, 0))
			res->total = atol(PQgetvalue(pr, 0, 0));
	}
	res->status = 200;
	if (s->single_object && set_like && s->func->ret != RET_COMPOSITE)
	{
		if (res->rows != 1)
		{
			char		det[96];

			snprintf(det, sizeof(det), "The result contains %ld rows%s", res->rows,
					 res->rolled_back ? "; nothing was changed" : "");
			free(res->body);
			res->body = NULL;
			res->status = 406;
			snprintf(res->code, sizeof(res->code), "PGRST116");
			res->message = strdup("Cannot coerce the result to a single JSON object");
			res->details = strdup(det);
			goto done;
		}
		/* the body is the one row already, as PostgreSQL wrote it (see build) */
	}
done:
	PQclear(pr);
	for (int i = 0; i < nowned; i++)
		free(owned[i]);
	free(q.text);
}

/*
 * Runs any statement as the holder of bearer (NULL: anonymous) in the same kind of transaction,
 * for the gateway's own checks (Socket.IO CONNECT).  *json_out gets the first column of the first
 * row (malloc'd; NULL when none).  0, or -1 with err set.
 */
int
call_sql_simple(Request *r, const char *bearer, const char *sql, const char *const *params, int nparams,
				bool read_only, char **json_out, CallResult *err)
{
	PGresult   *pr = NULL;

	memset(err, 0, sizeof(*err));
	*json_out = NULL;
	if (!run_pipeline(r, bearer, sql, params, nparams, read_only, false, &pr, err))
		return -1;
	if (PQntuples(pr) > 0 && PQnfields(pr) > 0 && !PQgetisnull(pr, 0, 0))
		*json_out = strdup(PQgetvalue(pr, 0, 0));
	PQclear(pr);
	return 0;
}

/* Frees what a CallResult owns. */
void
call_result_free(CallResult *res)
{
	free(res->body);
	free(res->message);
	free(res->details);
	free(res->hint);
	res->body = res->message = res->details = res->hint = NULL;
}

/* Sends a call's result or error as PostgREST would: status, body, Content-Range, and auth headers. */
enum MHD_Result
call_reply(Request *r, const CallSpec *s, CallResult *res)
{
	char		range[64],
				retry[16];
	ReplyHeader h[4];
	int			nh = 0;
	enum MHD_Result out;

	r->role = res->role ? res->role : "-";
	if (res->status >= 400)
	{
		if (res->status == 401 && res->hint == NULL)
			res->hint = strdup("Sign in: send Authorization: Bearer <token from POST /auth/login> "
							   "(a node: its node key).");
		if (res->status == 401)
			h[nh++] = (ReplyHeader) {"WWW-Authenticate", res->sqlstate[0] && strcmp(res->code, "PGRST301") == 0
				? "Bearer error=\"invalid_token\", error_description=\"the token was refused\"" : "Bearer"};
		if (res->retry_after > 0)
		{
			snprintf(retry, sizeof(retry), "%d", res->retry_after);
			h[nh++] = (ReplyHeader) {"Retry-After", retry};
		}
		out = reply_error_h(r, res->status, res->code, res->message, res->details, res->hint, h, nh);
		call_result_free(res);
		return out;
	}
	if (s->func->ret == RET_SET || s->func->ret == RET_SET_SCALAR)
	{
		char		total[24];

		snprintf(total, sizeof(total), res->total >= 0 ? "%ld" : "*", res->total);
		if (res->rows > 0)
			snprintf(range, sizeof(range), "%ld-%ld/%s", s->offset, s->offset + res->rows - 1, total);
		else
			snprintf(range, sizeof(range), "*/%s", total);
		if (res->total >= 0 && res->rows == 0 && s->offset > 0 && s->offset >= res->total)
		{
			h[nh++] = (ReplyHeader) {"Content-Range", range};
			out = reply_error_h(r, 416, "PGRST103", "Requested range not satisfiable", NULL,
								"Ask for an offset below the total in Content-Range.", h, nh);
			call_result_free(res);
			return out;
		}
		if (res->total >= 0 && s->offset + res->rows < res->total && res->status == 200)
			res->status = 206;
	}
	else
		snprintf(range, sizeof(range), res->status == 204 ? "*/*" : "0-0/*");
	h[nh++] = (ReplyHeader) {"Content-Range", range};
	if (s->count_exact)
		h[nh++] = (ReplyHeader) {"Preference-Applied", "count=exact"};
	out = reply(r, res->status, s->single_object ? "application/vnd.pgrst.object+json; charset=utf-8"
				: "application/json; charset=utf-8", res->body, res->body ? strlen(res->body) : 0, h, nh);
	call_result_free(res);
	return out;
}
