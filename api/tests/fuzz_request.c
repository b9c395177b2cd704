/*
 * fuzz_request.c — libFuzzer target for the gateway's request parsing and argument mapping:
 * /rpc/<function> (src/rpc.c: query arguments, duplicate keys, PostgREST modifiers and filters, the
 * JSON body and its content type) and the REST routes (src/routes.c: path segments, query and body
 * keys into a function's arguments, ?wait=, order=asc|desc), each value checked against its SQL
 * argument's type (src/args.c).  The input is a request as lines: method, path ("/jobs/7", or a
 * bare name for /rpc/<name>), query string ("k=v&k=v", as MHD hands over its decoded pairs),
 * Content-Type (empty: none), then the body.  It is dispatched as http.c does, against the real
 * catalog's functions and argument types (tests/fuzz/request/catalog.json, a snapshot; regenerate
 * it with the query at the end of this file when the SQL API changes).  MHD, call.c, reply.c and
 * listen.c are stubs; the call that would be made is checked instead of run: only arguments of the
 * matched function, each once, typed values that fit their type (all given for /rpc), filters
 * "key=value", a sane limit/offset, and exactly one answer per request.
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

/* ---- the catalog: tests/fuzz/request/catalog.json, read as catalog.c reads pg_proc ---- */
static CatFunc *funcs;
static int	nfuncs;

/* Reads the snapshot next to the binary: [[name, volatility, [[arg, type]...], ndefaults]...]. */
static void
catalog_read(const char *argv0)
{
	char		path[4096];
	const char *slash = strrchr(argv0, '/');
	json_error_t e;
	json_t	   *all;
	size_t		i;
	json_t	   *row;

	snprintf(path, sizeof(path), "%.*sfuzz/request/catalog.json",
			 slash ? (int) (slash - argv0 + 1) : 0, argv0);
	all = json_load_file(path, 0, &e);
	if (!json_is_array(all))
	{
		fprintf(stderr, "fuzz_request: %s: %s\n", path, e.text);
		exit(1);
	}
	funcs = calloc(json_array_size(all), sizeof(CatFunc));
	json_array_foreach(all, i, row)
	{
		CatFunc    *f = &funcs[nfuncs++];
		json_t	   *args = json_array_get(row, 2);
		int			ndefaults = (int) json_integer_value(json_array_get(row, 3));

		f->name = strdup(json_string_value(json_array_get(row, 0)));
		f->volatility = json_string_value(json_array_get(row, 1))[0];
		f->ret = RET_SCALAR;
		f->nargs = (int) json_array_size(args);
		MUST(f->nargs <= CAT_MAX_ARGS);
		for (int k = 0; k < f->nargs; k++)
		{
			CatArg	   *a = &f->args[k];
			size_t		tl;

			a->name = strdup(json_string_value(json_array_get(json_array_get(args, k), 0)));
			a->type = strdup(json_string_value(json_array_get(json_array_get(args, k), 1)));
			tl = strlen(a->type);
			a->is_array = tl > 2 && strcmp(a->type + tl - 2, "[]") == 0;
			a->is_json = strcmp(a->type, "json") == 0 || strcmp(a->type, "jsonb") == 0;
			a->has_default = k >= f->nargs - ndefaults;
		}
		if (i > 0 && strcmp(funcs[i - 1].name, f->name) == 0)
		{
			CatFunc    *first = &funcs[i - 1];

			while (first > funcs && strcmp(first[-1].name, f->name) == 0)
				first--;
			while (first->next_overload)
				first = first->next_overload;
			first->next_overload = f;
		}
	}
	json_decref(all);
}

const CatFunc *
catalog_find(const char *name)
{
	for (int i = 0; i < nfuncs; i++)
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
	(void) r, (void) details, (void) hint, (void) headers, (void) nheaders;
	MUST(status >= 400 && status < 600 && code && message);
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

static bool via_rpc;			/* /rpc/<name>, else a REST route */

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
		if (!via_rpc)
		{
			const char *v = s->arg_values[i];

			if (v && (strcmp(a->type, "integer") == 0 || strcmp(a->type, "bigint") == 0))
			{
				char	   *end;

				errno = 0;
				(void) strtoll(v, &end, 10);
				MUST(*v != '\0' && *end == '\0' && errno == 0);
			}
		}
		else if (get)
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
	for (int a = 0; a < s->func->nargs && via_rpc; a++)
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
	out->body = strdup("7");	/* a scalar, as a new id: what CREATED and WRAP routes answer */
}

void
call_result_free(CallResult *res)
{
	free(res->body);
	free(res->message);
	free(res->details);
	free(res->hint);
	res->body = res->message = res->details = res->hint = NULL;
}

enum MHD_Result
reply(Request *r, int status, const char *content_type, const char *body, size_t len,
	  const ReplyHeader *headers, int nheaders)
{
	(void) r, (void) content_type, (void) headers, (void) nheaders;
	MUST(status >= 200 && status < 300 && (body != NULL || len == 0));
	req.replies++;
	return MHD_YES;
}

/* ---- listen.c, MHD: no long-poll waits (the gateway is "draining") ---- */
ApiConfig	api_cfg = {.max_wait_s = 30};

uint64_t
listen_work_generation(void)
{
	return 0;
}

bool
listen_wait_work(uint64_t gen, double deadline)
{
	(void) gen, (void) deadline;
	return false;
}

bool
listen_connected(void)
{
	return true;
}

bool
listen_draining(void)
{
	return true;
}

const union MHD_ConnectionInfo *
MHD_get_connection_info(struct MHD_Connection *connection, enum MHD_ConnectionInfoType info_type,
						...)
{
	(void) connection, (void) info_type;
	return NULL;
}

enum MHD_Result
call_reply(Request *r, const CallSpec *spec, CallResult *res)
{
	(void) r, (void) spec;
	MUST(res->status >= 200 && res->status < 600);
	if (res->status >= 400)
		MUST(res->message != NULL && res->code[0] != '\0');
	call_result_free(res);
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

int			LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	catalog_read((*argv)[0]);
	return 0;
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

	/* http.c's dispatch: /rpc/<name>, else the routes (a bare name is taken as /rpc/<name>) */
	via_rpc = fname[0] != '/' || strncmp(fname, "/rpc/", 5) == 0;
	if (via_rpc)
		rpc_handle(&r, fname[0] == '/' ? fname + 5 : fname);
	else
	{
		bool		handled;

		r.path = fname;
		if (routes_handle(&r, &handled) == MHD_NO && !handled)
			req.replies++;		/* not a route: http.c tries static files, then 404 */
	}
	MUST(req.replies == 1);

	free(r.body);
	free(req.ct);
	free(query);
	free(fname);
	free(method);
	return 0;
}

/*
 * tests/fuzz/request/catalog.json comes from a database with the extension, as catalog.c's query:
 *
 *   SELECT json_agg(json_build_array(p.proname, p.provolatile::text,
 *       (SELECT COALESCE(json_agg(json_build_array(COALESCE((p.proargnames)[i], ''),
 *                                                  format_type(x, NULL)) ORDER BY i), '[]')
 *          FROM unnest(COALESCE(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY u(x, i)
 *         WHERE COALESCE((p.proargmodes)[i], 'i') IN ('i', 'b', 'v')),
 *       p.pronargdefaults) ORDER BY p.proname, p.pronargs, p.oid)
 *     FROM pg_proc p
 *    WHERE p.pronamespace = 'modelmine'::regnamespace AND p.prokind = 'f'
 *      AND p.proname NOT LIKE '\\_%' AND p.proname NOT IN ('authenticate', 'authenticate_local',
 *          'authenticate_node', 'authenticate_node_local', 'deauthenticate', 'request_role')
 *      AND (has_function_privilege('modelmine_anon', p.oid, 'EXECUTE')
 *        OR has_function_privilege('modelmine_user', p.oid, 'EXECUTE')
 *        OR has_function_privilege('modelmine_node', p.oid, 'EXECUTE')
 *        OR has_function_privilege('modelmine_admin', p.oid, 'EXECUTE'));
 *
 * (one function per line in the file).
 */
