/*
 * catalog.c — the functions /rpc can call: those of schema modelmine that one of the client roles
 * (modelmine_anon, _user, _node, _admin) may execute, read from pg_proc with their argument names,
 * types and defaults, volatility and result shape.  Helpers whose names start with "_" are never
 * exposed.  Read on the first connection and again when a new connection finds another extension
 * version (after ALTER EXTENSION UPDATE).
 *
 * A replaced catalog is not freed: requests running may still hold pointers into it, and it changes
 * only when the extension is upgraded.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

typedef struct Catalog
{
	CatFunc    *funcs;			/* by name, overloads chained */
	int			nfuncs;
	char		version[32];
} Catalog;

static Catalog *current = NULL;
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;

static const char version_sql[] = "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'modelmine'";

static const char functions_sql[] =
	"SELECT p.proname, p.provolatile, p.proretset, t.typtype, "
	"       pg_catalog.format_type(p.prorettype, NULL), p.prorettype = 'pg_catalog.void'::pg_catalog.regtype, "
	"       COALESCE(pg_catalog.obj_description(p.oid, 'pg_proc'), ''), p.pronargdefaults, "
	"       COALESCE(pg_catalog.array_to_json(p.proargnames), '[]'), "
	"       COALESCE(pg_catalog.array_to_json(p.proargmodes), '[]'), "
	"       (SELECT pg_catalog.json_agg(pg_catalog.format_type(x, NULL) ORDER BY i) "
	"          FROM pg_catalog.unnest(COALESCE(p.proallargtypes, p.proargtypes::pg_catalog.oid[])) "
	"               WITH ORDINALITY u(x, i)), "
	"       (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, "
	"                                   pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum) "
	"          FROM pg_catalog.pg_attribute a "
	"         WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) "
	"  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_type t ON t.oid = p.prorettype "
	" WHERE p.pronamespace = 'modelmine'::pg_catalog.regnamespace AND p.prokind = 'f' "
	"   AND p.proname NOT LIKE '\\_%' "
	/* identity over HTTP comes from the bearer of each request: binding calls would only leave a
	 * binding behind on a pooled connection for the next request */
	"   AND p.proname NOT IN ('authenticate', 'authenticate_local', 'authenticate_node', "
	"                         'authenticate_node_local', 'deauthenticate', 'request_role') "
	"   AND (pg_catalog.has_function_privilege('" MM_ROLE_ANON "', p.oid, 'EXECUTE') "
	"     OR pg_catalog.has_function_privilege('" MM_ROLE_USER "', p.oid, 'EXECUTE') "
	"     OR pg_catalog.has_function_privilege('" MM_ROLE_NODE "', p.oid, 'EXECUTE') "
	"     OR pg_catalog.has_function_privilege('" MM_ROLE_ADMIN "', p.oid, 'EXECUTE')) "
	" ORDER BY p.proname, p.pronargs, p.oid";

/* The JSON array at column col of row i, parsed (caller decrefs), or an empty array. */
static json_t *
json_col(PGresult *res, int i, int col)
{
	json_t	   *j = PQgetisnull(res, i, col) ? NULL : json_loads(PQgetvalue(res, i, col), 0, NULL);

	return j ? j : json_array();
}

/* One pg_proc row as a CatFunc; false when it has more arguments than CAT_MAX_ARGS. */
static bool
read_func(PGresult *res, int i, CatFunc *f)
{
	json_t	   *names = json_col(res, i, 8),
			   *modes = json_col(res, i, 9),
			   *types = json_col(res, i, 10),
			   *attrs = json_col(res, i, 11);
	bool		retset = PQgetvalue(res, i, 2)[0] == 't';
	char		typtype = PQgetvalue(res, i, 3)[0];
	bool		is_void = PQgetvalue(res, i, 5)[0] == 't';
	int			ndefaults = atoi(PQgetvalue(res, i, 7));
	int			nout = 0,
				nin = 0;
	bool		ok = true;

	memset(f, 0, sizeof(*f));
	f->name = strdup(PQgetvalue(res, i, 0));
	f->volatility = PQgetvalue(res, i, 1)[0];
	f->ret_type = strdup(PQgetvalue(res, i, 4));
	f->comment = strdup(PQgetvalue(res, i, 6));
	f->cols = calloc(json_array_size(types) + json_array_size(attrs) + 1, sizeof(char *));
	f->col_types = calloc(json_array_size(types) + json_array_size(attrs) + 1, sizeof(char *));
	for (size_t k = 0; k < json_array_size(types); k++)
	{
		const char *mode = json_string_value(json_array_get(modes, k));
		const char *name = json_string_value(json_array_get(names, k));
		const char *type = json_string_value(json_array_get(types, k));

		if (mode == NULL || strcmp(mode, "i") == 0 || strcmp(mode, "b") == 0 || strcmp(mode, "v") == 0)
		{
			CatArg	   *a;

			if (nin == CAT_MAX_ARGS)
			{
				ok = false;
				break;
			}
			a = &f->args[nin++];
			a->name = strdup(name && *name ? name : "");
			a->type = strdup(type ? type : "text");
			a->is_array = strlen(a->type) > 2 && strcmp(a->type + strlen(a->type) - 2, "[]") == 0;
			a->is_json = strcmp(a->type, "json") == 0 || strcmp(a->type, "jsonb") == 0;
		}
		if (mode && (strcmp(mode, "o") == 0 || strcmp(mode, "t") == 0 || strcmp(mode, "b") == 0))
		{
			f->cols[nout] = strdup(name ? name : "");
			f->col_types[nout++] = strdup(type ? type : "text");
		}
	}
	f->nargs = nin;
	for (int k = nin - ndefaults; k < nin; k++)
		if (k >= 0)
			f->args[k].has_default = true;
	if (nout == 0 && typtype == 'c')
		for (size_t k = 0; k < json_array_size(attrs); k++)
		{
			json_t	   *pair = json_array_get(attrs, k);

			f->cols[nout] = strdup(json_string_value(json_array_get(pair, 0)));
			f->col_types[nout++] = strdup(json_string_value(json_array_get(pair, 1)));
		}
	f->ncols = nout;
	if (is_void)
		f->ret = RET_VOID;
	else if (nout > 1 || typtype == 'c')
		f->ret = retset ? RET_SET : RET_COMPOSITE;
	else
		f->ret = retset ? RET_SET_SCALAR : RET_SCALAR;
	json_decref(names);
	json_decref(modes);
	json_decref(types);
	json_decref(attrs);
	return ok;
}

/* Reads the catalog if not read yet or if the extension version changed; 0, or -1 with err set. */
int
catalog_load(PGconn *pg, char *err, size_t errlen)
{
	PGresult   *res = PQexec(pg, version_sql);
	char		version[32];
	Catalog    *cat;
	int			n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		snprintf(err, errlen, "the modelmine extension is not installed in this database "
				 "(CREATE EXTENSION modelmine CASCADE, as a superuser)%s%s",
				 PQresultStatus(res) != PGRES_TUPLES_OK ? ": " : "",
				 PQresultStatus(res) != PGRES_TUPLES_OK ? PQresultErrorMessage(res) : "");
		PQclear(res);
		return -1;
	}
	snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	pthread_rwlock_rdlock(&lock);
	n = current && strcmp(current->version, version) == 0;
	pthread_rwlock_unlock(&lock);
	if (n)
		return 0;
	if (strcmp(version, MM_SCHEMA_VERSION) != 0)
		fprintf(stderr, "modelmine-api: the database has extension version %s; this gateway was built "
				"for %s (routes calling functions it lacks will answer 404)\n", version, MM_SCHEMA_VERSION);

	res = PQexec(pg, functions_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "cannot read the functions of schema modelmine: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	cat = calloc(1, sizeof(Catalog));
	n = PQntuples(res);
	cat->funcs = calloc((size_t) n + 1, sizeof(CatFunc));
	snprintf(cat->version, sizeof(cat->version), "%s", version);
	for (int i = 0; i < n; i++)
	{
		CatFunc    *f = &cat->funcs[cat->nfuncs];

		if (!read_func(res, i, f))
			continue;
		/* overloads come together (ORDER BY name): chain them from the first */
		if (cat->nfuncs > 0 && strcmp(cat->funcs[cat->nfuncs - 1].name, f->name) == 0)
		{
			CatFunc    *first = &cat->funcs[cat->nfuncs - 1];

			while (first > cat->funcs && strcmp(first[-1].name, f->name) == 0)
				first--;
			{
				CatFunc    *tail = first;

				while (tail->next_overload)
					tail = tail->next_overload;
				tail->next_overload = f;
			}
		}
		cat->nfuncs++;
	}
	PQclear(res);
	pthread_rwlock_wrlock(&lock);
	current = cat;
	pthread_rwlock_unlock(&lock);
	return 0;
}

/* The first function (of any overload) with this name, or NULL. */
const CatFunc *
catalog_find(const char *name)
{
	const CatFunc *found = NULL;

	pthread_rwlock_rdlock(&lock);
	if (current)
		for (int i = 0; i < current->nfuncs && !found; i++)
			if (strcmp(current->funcs[i].name, name) == 0)
				found = &current->funcs[i];
	pthread_rwlock_unlock(&lock);
	return found;
}

/*
 * The overload whose arguments fit the given names: every name is one of its arguments, and every
 * argument without a default is given.  NULL when none fits (404 PGRST202).
 */
const CatFunc *
catalog_match(const char *name, const char *const *keys, int nkeys)
{
	for (const CatFunc *f = catalog_find(name); f; f = f->next_overload)
	{
		bool		fits = true;

		for (int k = 0; k < nkeys && fits; k++)
		{
			bool		known = false;

			for (int a = 0; a < f->nargs && !known; a++)
				known = strcmp(f->args[a].name, keys[k]) == 0;
			fits = known;
		}
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

/* Calls fn for every function (first overloads first), e.g. to write /openapi.json. */
void
catalog_each(void (*fn) (const CatFunc *f, void *arg), void *arg)
{
	pthread_rwlock_rdlock(&lock);
	if (current)
		for (int i = 0; i < current->nfuncs; i++)
			fn(&current->funcs[i], arg);
	pthread_rwlock_unlock(&lock);
}

/*
 * Whether the catalog has been read; if not (the gateway started while the database was down), a
 * connection is taken once to read it.  False when the database still cannot be reached.
 */
bool
catalog_ensure(void)
{
	PoolConn   *c;

	if (catalog_version()[0] != '\0')
		return true;
	if (pool_acquire(&c, api_cfg.acquire_timeout_ms) == POOL_OK)
		pool_release(c, false);
	return catalog_version()[0] != '\0';
}

/* The extension version the catalog was read from ("" before the first connection). */
const char *
catalog_version(void)
{
	const char *v;

	pthread_rwlock_rdlock(&lock);
	v = current ? current->version : "";
	pthread_rwlock_unlock(&lock);
	return v;
}
