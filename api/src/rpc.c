/*
 * rpc.c — /rpc/<function>, the PostgREST contract that postgrest-js speaks.
 *
 * POST takes a JSON object of named arguments (the set of names picks the overload; arguments left
 * out take their defaults); GET and HEAD take them from the query string, for functions that are not
 * VOLATILE.  Other query parameters shape a set result: select, order, limit, offset and filters
 * "column=op.value".  An unknown function or argument set is 404 PGRST202.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "args.h"

#define MAX_QUERY 24
#define CppStr2(x) #x
#define CppStr(x) CppStr2(x)

typedef struct QueryArg
{
	const char *key;
	const char *value;
} QueryArg;

typedef struct QueryArgs
{
	QueryArg	a[MAX_QUERY];
	int			n;
	bool		overflow;
} QueryArgs;

/* Collects the query string's arguments. */
static enum MHD_Result
collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	QueryArgs  *q = cls;

	(void) kind;
	if (q->n == MAX_QUERY)
	{
		q->overflow = true;
		return MHD_NO;
	}
	q->a[q->n].key = key;
	q->a[q->n].value = value ? value : "";
	q->n++;
	return MHD_YES;
}

/* Whether a query key is one of PostgREST's reserved modifiers. */
static bool
reserved(const char *key)
{
	static const char *const keys[] = {"select", "order", "limit", "offset", "columns", "on_conflict",
	"and", "or"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* A non-negative whole number from the query, or a 400 naming it. */
static bool
query_long(const char *name, const char *v, long *out, CallResult *res)
{
	char	   *end;
	long		n = strtol(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n < 0)
	{
		char		det[128];

		res->status = 400;
		snprintf(res->code, sizeof(res->code), "PGRST100");
		res->message = malloc(strlen(name) + 16);
		sprintf(res->message, "invalid %s", name);
		snprintf(det, sizeof(det), "Got \"%.60s\".", v);
		res->details = strdup(det);
		res->hint = strdup("Pass a whole number of 0 or more.");
		return false;
	}
	*out = n;
	return true;
}

/* Prefer: count=exact, and Accept: application/vnd.pgrst.object+json. */
void
rpc_preferences(Request *r, CallSpec *s)
{
	const char *prefer = req_header(r, "Prefer");
	const char *accept = req_header(r, "Accept");

	s->limit = -1;
	s->count_exact = prefer && strstr(prefer, "count=exact") != NULL;
	s->single_object = accept && strstr(accept, "application/vnd.pgrst.object+json") != NULL;
}

/*
 * The request body as a JSON object: an empty body is {}; a body that is not JSON is 400 PGRST102;
 * a content type other than JSON is 415.  False with res set on refusal.
 */
bool
rpc_body(Request *r, json_t **out, CallResult *res)
{
	const char *ct = req_header(r, "Content-Type");
	json_error_t e;

	*out = NULL;
	args_ints_as_reals(false);
	if (r->body_len == 0)
	{
		*out = json_object();
		return true;
	}
	if (ct && strncasecmp(ct, "application/json", 16) != 0 &&
		strncasecmp(ct, "application/vnd.pgrst.object+json", 33) != 0)
	{
		char		det[160];

		res->status = 415;
		snprintf(res->code, sizeof(res->code), "PGRST107");
		res->message = strdup("Unsupported Media Type");
		snprintf(det, sizeof(det), "Got Content-Type: %.100s.", ct);
		res->details = strdup(det);
		res->hint = strdup("Send the body as JSON with Content-Type: application/json.");
		return false;
	}
	/*
	 * For checks only (the body goes to PostgreSQL as sent): integers exactly as written, and only
	 * when one is beyond 64 bits (which jsonb keeps) everything parsed again with integers as reals.
	 */
	*out = json_loadb(r->body, r->body_len, 0, &e);
	args_ints_as_reals(false);
	if (*out == NULL && strstr(e.text, "too big integer"))
	{
		*out = json_loadb(r->body, r->body_len, JSON_DECODE_INT_AS_REAL, &e);
		args_ints_as_reals(true);
	}
	if (*out == NULL || !json_is_object(*out))
	{
		char		det[256];

		if (*out)
			snprintf(det, sizeof(det), "The body is JSON but not an object.");
		else
			snprintf(det, sizeof(det), "%s at line %d, column %d.", e.text, e.line, e.column);
		json_decref(*out);
		*out = NULL;
		res->status = 400;
		snprintf(res->code, sizeof(res->code), "PGRST102");
		res->message = strdup("Empty or invalid json");
		res->details = strdup(det);
		res->hint = strdup("Send a JSON object of named arguments, e.g. {\"job_id\": 7}.");
		return false;
	}
	return true;
}

/* Applies a reserved query modifier to the spec; false with res set when it is malformed. */
static bool
modifier(CallSpec *s, const char *key, const char *v, CallResult *res)
{
	if (strcmp(key, "select") == 0)
		s->select = v;
	else if (strcmp(key, "order") == 0)
		s->order = v;
	else if (strcmp(key, "limit") == 0)
		return query_long("limit", v, &s->limit, res);
	else if (strcmp(key, "offset") == 0)
		return query_long("offset", v, &s->offset, res);
	/* columns, on_conflict, and, or: accepted and ignored (no tables are written through /rpc) */
	return true;
}

/* 404 PGRST202 for a name and argument set no function has. */
static void
not_found(CallResult *res, const char *fname, const char *const *keys, int nkeys)
{
	const CatFunc *f = catalog_find(fname);
	char		msg[512],
				hint[512];
	size_t		n;

	n = (size_t) snprintf(msg, sizeof(msg), "Could not find the function modelmine.%.64s(", fname);
	for (int i = 0; i < nkeys && n < sizeof(msg) - 80; i++)
		n += (size_t) snprintf(msg + n, sizeof(msg) - n, "%s%.40s", i ? ", " : "", keys[i]);
	snprintf(msg + n, sizeof(msg) - n, ") in the schema cache");
	if (f)
	{
		n = (size_t) snprintf(hint, sizeof(hint), "It takes: ");
		for (int i = 0; i < f->nargs && n < sizeof(hint) - 80; i++)
			n += (size_t) snprintf(hint + n, sizeof(hint) - n, "%s%s%s", i ? ", " : "", f->args[i].name,
								   f->args[i].has_default ? " (optional)" : "");
		if (f->nargs == 0)
			snprintf(hint + n, sizeof(hint) - n, "no arguments");
	}
	else
		snprintf(hint, sizeof(hint), "See /openapi.json for the functions this server exposes.");
	res->status = 404;
	snprintf(res->code, sizeof(res->code), "PGRST202");
	res->message = strdup(msg);
	res->hint = strdup(hint);
}

/* Sends an error prepared in res (no call was made). */
static enum MHD_Result
refuse(Request *r, CallResult *res)
{
	static const CatFunc none = {.ret = RET_VOID};
	CallSpec	s = {.func = &none};

	return call_reply(r, &s, res);
}

/* /rpc/<fname> */
enum MHD_Result
rpc_handle(Request *r, const char *fname)
{
	CallSpec	s = {0};
	CallResult	res = {0};
	QueryArgs	q = {0};
	json_t	   *body = NULL;
	const char *keys[CAT_MAX_ARGS];
	int			nkeys = 0;
	bool		get = req_is_read(r);
	enum MHD_Result out;

	res.total = -1;
	if (!get && strcmp(r->method, "POST") != 0)
	{
		ReplyHeader allow = {"Allow", "GET, HEAD, POST, OPTIONS"};

		return reply_error_h(r, 405, "PGRST117", "Unsupported HTTP method", NULL,
							 "Call a function with POST (or GET when it is not VOLATILE).", &allow, 1);
	}
	if (!catalog_ensure())
		return reply_unavailable(r);
	rpc_preferences(r, &s);
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect, &q);
	if (q.overflow)
		return reply_error(r, 400, "PGRST100", "too many query parameters", NULL,
						   "Pass at most " CppStr(MAX_QUERY) " query parameters.");
	for (int i = 0; i < q.n; i++)
		for (int k = 0; k < i; k++)
			if (strcmp(q.a[i].key, q.a[k].key) == 0 && !reserved(q.a[i].key))
			{
				char		msg[128];

				snprintf(msg, sizeof(msg), "query parameter \"%.60s\" given twice", q.a[i].key);
				return reply_error(r, 400, "PGRST100", msg, NULL, "Give each argument once.");
			}
	if (!get && !rpc_body(r, &body, &res))
		return refuse(r, &res);

	/* the argument names: the body's keys, or the query keys that are not modifiers */
	if (get)
	{
		for (int i = 0; i < q.n; i++)
			if (!reserved(q.a[i].key) && strchr(q.a[i].value, '.') == NULL && nkeys < CAT_MAX_ARGS)
				keys[nkeys++] = q.a[i].key;
			else if (!reserved(q.a[i].key) && nkeys < CAT_MAX_ARGS)
			{
				/* "x=eq.1" is a filter, unless x is an argument of the function */
				const CatFunc *f = catalog_find(fname);

				if (f && args_find(f, q.a[i].key))
					keys[nkeys++] = q.a[i].key;
			}
	}
	else
	{
		const char *k;
		json_t	   *v;

		json_object_foreach(body, k, v)
		{
			if (nkeys == CAT_MAX_ARGS)
				break;
			keys[nkeys++] = k;
		}
	}
	s.func = catalog_match(fname, keys, nkeys);
	if (s.func == NULL)
	{
		not_found(&res, fname, keys, nkeys);
		json_decref(body);
		return refuse(r, &res);
	}
	if (get && s.func->volatility == 'v')
	{
		ReplyHeader allow = {"Allow", "POST"};

		json_decref(body);
		return reply_error_h(r, 405, "PGRST101", "Cannot use the GET method on RPC to a volatile function",
							 NULL, "Call it with POST.", &allow, 1);
	}
	for (int i = 0; i < nkeys; i++)
	{
		const CatArg *a = args_find(s.func, keys[i]);
		bool		ok;

		s.arg_names[i] = a->name;
		if (get)
		{
			const char *v = req_query(r, keys[i]);

			ok = args_check_text(a, v, &res);
			s.arg_values[i] = v;
		}
		else
		{
			ok = args_check_json(a, a->name, json_object_get(body, keys[i]), &res);
			s.arg_keys[i] = a->name;
		}
		if (!ok)
		{
			out = refuse(r, &res);
			goto done;
		}
	}
	s.nargs = nkeys;
	s.body = r->body;
	for (int i = 0; i < q.n; i++)
	{
		bool		is_arg = false;

		for (int k = 0; k < nkeys && get; k++)
			is_arg = is_arg || strcmp(keys[k], q.a[i].key) == 0;
		if (is_arg)
			continue;
		if (reserved(q.a[i].key))
		{
			if (!modifier(&s, q.a[i].key, q.a[i].value, &res))
			{
				out = refuse(r, &res);
				goto done;
			}
		}
		else if (s.nfilters < (int) (sizeof(s.filters) / sizeof(s.filters[0])))
		{
			char	   *f = malloc(strlen(q.a[i].key) + strlen(q.a[i].value) + 2);

			sprintf(f, "%s=%s", q.a[i].key, q.a[i].value);
			s.filters[s.nfilters++] = f;
		}
		else
		{
			out = reply_error(r, 400, "PGRST100", "too many filters", NULL,
							  "Filter a call's result on at most 8 columns.");
			goto done;
		}
	}
	call_run(r, &s, &res);
	out = call_reply(r, &s, &res);
done:
	for (int i = 0; i < s.nfilters; i++)
		free((char *) s.filters[i]);
	json_decref(body);
	return out;
}
