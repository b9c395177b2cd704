/*
 * args.h — request values into SQL argument text (args.c), for rpc.c and routes.c.
 */
#ifndef MODELMINE_API_ARGS_H
#define MODELMINE_API_ARGS_H

#include "api.h"

bool		args_check_text(const CatArg *a, const char *v, CallResult *res);
bool		args_check_named(const CatArg *a, const char *shown, const char *v, CallResult *res);
void		args_ints_as_reals(bool on);
bool		args_check_json(const CatArg *a, const char *shown, json_t *v, CallResult *res);
const CatArg *args_find(const CatFunc *f, const char *name);

/* routes.c: OpenAPI pieces */
json_t	   *openapi_type(const char *type);
void		routes_openapi(json_t *paths);

#endif							/* MODELMINE_API_ARGS_H */
