/*
 * openapi.c — GET /openapi.json: an OpenAPI 3 document written from the catalog and the route
 * table, so it always describes the database the gateway is talking to.  Descriptions are the
 * functions' COMMENT ON texts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "args.h"

/* One /rpc/<function> path item. */
static void
add_rpc(const CatFunc *f, void *arg)
{
	json_t	   *paths = arg,
			   *item = json_object(),
			   *props = json_object(),
			   *required = json_array(),
			   *params = json_array();
	char		path[96];
	json_t	   *post;

	for (int i = 0; i < f->nargs; i++)
	{
		json_object_set_new(props, f->args[i].name, openapi_type(f->args[i].type));
		if (!f->args[i].has_default)
			json_array_append_new(required, json_string(f->args[i].name));
		json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:o}", "name", f->args[i].name, "in", "query",
												"required", !f->args[i].has_default, "schema",
												openapi_type(f->args[i].type)));
	}
	post = json_pack("{s:s, s:s, s:{s:{s:{s:{s:s, s:O, s:O}}}}, s:{s:{s:s}, s:{s:s}}}",
					 "summary", f->name, "description", f->comment,
					 "requestBody", "content", "application/json", "schema", "type", "object", "properties",
					 props, "required", required,
					 "responses", f->ret == RET_VOID ? "204" : "200", "description", "success", "default",
					 "description", "an error: {code, message, details, hint}");
	json_object_set_new(item, "post", post);
	if (f->volatility != 'v')
		json_object_set_new(item, "get", json_pack("{s:s, s:s, s:O, s:{s:{s:s}}}", "summary", f->name,
												   "description", f->comment, "parameters", params, "responses",
												   "200", "description", "success"));
	json_decref(props);
	json_decref(required);
	json_decref(params);
	snprintf(path, sizeof(path), "/rpc/%s", f->name);
	if (json_object_get(paths, path) == NULL)	/* the first overload describes the path */
		json_object_set_new(paths, path, item);
	else
		json_decref(item);
}

/* GET /openapi.json */
enum MHD_Result
openapi_handle(Request *r)
{
	json_t	   *doc,
			   *paths;

	if (!catalog_ensure())
		return reply_unavailable(r);
	paths = json_object();
	routes_openapi(paths);
	catalog_each(add_rpc, paths);
	json_object_set_new(paths, "/health", json_pack("{s:{s:s, s:{s:{s:s}, s:{s:s}}}}", "get", "summary",
													"Database, pool, LISTEN and sockets", "responses", "200",
													"description", "healthy", "503", "description",
													"the database cannot be reached"));
	doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:{s:{s:s, s:s}}}, s:[{s:[]}]}",
					"openapi", "3.0.3",
					"info", "title", "ModelMine API", "version", MM_SCHEMA_VERSION[0] ? MM_SCHEMA_VERSION : "?",
					"description", "The REST routes, PostgREST-compatible /rpc and Socket.IO events of a "
					"ModelMine network. Authenticate with Authorization: Bearer <token from /auth/login> "
					"(users) or <node key> (nodes).",
					"paths", paths,
					"components", "securitySchemes", "bearer", "type", "http", "scheme", "bearer",
					"security", "bearer");
	return reply_json(r, 200, doc);
}
