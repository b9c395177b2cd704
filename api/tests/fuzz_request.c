/*
 * fuzz_request.c — libFuzzer target for the gateway's request parsing on /rpc/<function>
 * (src/rpc.c: query arguments, duplicate keys, PostgREST modifiers and filters, the JSON body and
 * its content type; src/args.c: each value checked against its SQL argument's type).  The input
 * is a request as lines: method, function name, query string ("k=v&k=v", as MHD hands over its
 * decoded pairs), Content-Type (empty: none), then the body.  rpc_handle runs for real against a
 * fixed catalog (stubs below stand in for MHD, the catalog, call.c and reply.c); the call it would
 * make is checked instead of run: only arguments of the matched function, each once, every
 * required one given, typed values that fit their type, filters "key=value", a sane limit/offset.
 *
 *   make -C api fuzz-build                         build (scripts/fuzz.sh runs it)
 *   api/tests/fuzz_request FILE...                 replay inputs
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "args.h"

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_request: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

#define MAX_PAIRS 40

static struct
{
	char	   *ct;
	char	   *key[MAX_PAIRS];
	char	   *value[MAX_PAIRS];
	int			n;
	int			replies;
} req;

/* ---- a fixed catalog: the argument types and shapes the real one has ---- */
static CatFunc funcs[] = {
	{.name = "submit_job", .volatility = 'v', .ret = RET_SCALAR, .nargs = 3,
		.args = {{"config", "jsonb", false, false, true}, {"max_price", "bigint", true, false, false},
	{"priority", "integer", true, false, false}}},
	{.name = "list_jobs", .volatility = 's', .ret = RET_SET, .nargs = 3,
		.args = {{"status", "text", true, false, false}, {"max_rows", "integer", true, false, false},
	{"before_id", "bigint", true, false, false}}},
	{.name = "list_jobs", .volatility = 's', .ret = RET_SET, .nargs = 1,
	.args = {{"node_id", "bigint", false, false, false}}},
	{.name = "transfer", .volatility = 'v', .ret = RET_COMPOSITE, .nargs = 2,
		.args = {{"to_email", "text", false, false, false}, {"amount", "numeric", false, false,
	false}}},
	{.name = "set_flags", .volatility = 'i', .ret = RET_VOID, .nargs = 5,
		.args = {{"on", "boolean", false, false, false}, {"ratio", "double precision", true, false,
			false}, {"tags", "text[]", true, true, false}, {"small", "smallint", true, false, false},
	{"r", "real", true, false, false}}},
	{.name = "stats", .volatility = 's', .ret = RET_SET_SCALAR, .nargs = 0},
};

const CatFunc *
catalog_find(const char *name)
{
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
		if (strcmp(funcs[i].name, name) == 0)
			return &funcs[i];
	return NULL;
}

/* catalog.c's rule: every key is an argument, every argument without a default is a key. */
const CatFunc *
catalog_match(const char *name, const char *const *keys, int nkeys)
{
	for (const CatFunc *f = catalog_find(name); f; f = f->next_overload)
	{
		bool		fits = true;

		for (int k = 0; k < nkeys && fits; k++)
			fits = args_find(f, keys[k]) != NULL;
		for (int a = 0; a < f->nargs && fits; a++)
		{
			bool		given = f->args[a].has_default;

			for (int k = 0; k < nkeys && !given; k++)
				given = strcmp(f->args[a].name, keys[k]) == 0;
			fits = given;
		}
		if (fits)
			return f;
	}
	return NULL;
}

bool
catalog_ensure(void)
{
	return true;
}

/* ---- MHD and http.c: the request ---- */
int
MHD_get_connection_values(struct MHD_Connection *conn, enum MHD_ValueKind kind,
						  MHD_KeyValueIterator it, void *cls)
{
	int			n = 0;

	(void) conn, (void) kind;
	for (int i = 0; i < req.n; i++)
	{
		n++;
		if (it(cls, MHD_GET_ARGUMENT_KIND, req.key[i], req.value[i]) != MHD_YES)
			break;
	}
	return n;
}

const char *
req_header(Request *r, const char *name)
{
	(void) r;
	return strcasecmp(name, "Content-Type") == 0 ? req.ct : NULL;
}

const char *
req_query(Request *r, const char *name)
{
	(void) r;
	for (int i = 0; i < req.n; i++)
		if (strcmp(req.key[i], name) == 0)
			return req.value[i];
	return NULL;
}

bool
req_is_read(Request *r)
{
	return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

/* ---- reply.c and call.c: what would be sent, checked ---- */
enum MHD_Result
reply_error_h(Request *r, int status, const char *code, const char *message, const char *details,
			  const char *hint, const ReplyHeader *headers, int nheaders)
{
	(void) r, (void) details, (void) headers, (void) nheaders;
	MUST(status >= 400 && status < 600 && code && message && hint);
	req.replies++;
	return MHD_YES;
}

enum MHD_Result
reply_error(Request *r, int status, const char *code, const char *message, const char *details,
			const char *hint)
{
	return reply_error_h(r, status, code, message, details, hint, NULL, 0);
}

enum MHD_Result
reply_unavailable(Request *r)
{
	(void) r;
	abort();					/* catalog_ensure never fails here */
}

void
call_run(Request *r, const CallSpec *s, CallResult *out)
{
	bool		get = req_is_read(r);

	MUST(s->func != NULL && s->nargs >= 0 && s->nargs <= s->func->nargs);
	for (int i = 0; i < s->nargs; i++)
	{
		const CatArg *a = args_find(s->func, s->arg_names[i]);

		MUST(a != NULL && a->name == s->arg_names[i]);
		for (int k = 0; k < i; k++)
			MUST(strcmp(s->arg_names[k], s->arg_names[i]) != 0);
		if (get)
		{
			MUST(s->arg_values[i] != NULL);
			MUST(strcmp(s->arg_values[i], req_query(r, a->name)) == 0);
			if (strcmp(a->type, "integer") == 0)
			{
				char	   *end;
				long long	v;

				errno = 0;
				v = strtoll(s->arg_values[i], &end, 10);
				MUST(*end == '\0' && errno == 0 && v >= -2147483648LL && v <= 2147483647LL);
			}
		}
		else
			MUST(s->arg_keys[i] == a->name);
	}
	for (int a = 0; a < s->func->nargs; a++)
	{
		bool		given = s->func->args[a].has_default;

		for (int i = 0; i < s->nargs && !given; i++)
			given = s->arg_names[i] == s->func->args[a].name;
		MUST(given);
	}
	for (int i = 0; i < s->nfilters; i++)
		MUST(strchr(s->filters[i], '=') != NULL);
	MUST(s->limit >= -1 && s->offset >= 0);
	MUST(get || s->body == r->body);
	out->status = 200;
}

enum MHD_Result
call_reply(Request *r, const CallSpec *spec, CallResult *res)
{
	(void) r, (void) spec;
	MUST(res->status >= 200 && res->status < 600);
	if (res->status >= 400)
		MUST(res->message != NULL && res->code[0] != '\0');
	free(res->body);
	free(res->message);
	free(res->details);
	free(res->hint);
	req.replies++;
	return MHD_YES;
}

/* The next line of [*p, end) as a string (malloc'd), moving *p past it. */
static char *
next_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t) (end - *p));
	size_t		len = (size_t) ((nl ? nl : end) - *p);
	char	   *s = malloc(len + 1);

	memcpy(s, *p, len);
	s[len] = '\0';
	*p = nl ? nl + 1 : end;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *) data,
			   *end = p + size;
	char	   *method = next_line(&p, end),
			   *fname = next_line(&p, end),
			   *query = next_line(&p, end);
	Request		r = {0};
	char	   *save = NULL;

	funcs[1].next_overload = &funcs[2];	/* list_jobs has two overloads */
	memset(&req, 0, sizeof(req));
	req.ct = next_line(&p, end);
	if (req.ct[0] == '\0')
	{
		free(req.ct);
		req.ct = NULL;
	}
	for (char *pair = strtok_r(query, "&", &save); pair && req.n < MAX_PAIRS;
		 pair = strtok_r(NULL, "&", &save))
	{
		char	   *eq = strchr(pair, '=');

		req.key[req.n] = pair;
		req.value[req.n] = eq ? eq + 1 : "";
		if (eq)
			*eq = '\0';
		req.n++;
	}
	r.method = method;
	r.body_len = (size_t) (end - p);
	r.body = malloc(r.body_len + 1);
	memcpy(r.body, p, r.body_len);
	r.body[r.body_len] = '\0';

	rpc_handle(&r, fname);
	MUST(req.replies == 1);

	free(r.body);
	free(req.ct);
	free(query);
	free(fname);
	free(method);
	return 0;
}
