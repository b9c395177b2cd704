/*
 * sioauth.c — the identity behind a Socket.IO CONNECT: its token goes through the same set-up as an
 * HTTP request (modelmine.request_role verifies it), then whoami() says who it is.  The gateway
 * never reads a token itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* Verifies a CONNECT token; false with a reason for CONNECT_ERROR. */
bool
sio_authenticate(const char *token, SioIdentity *out, char *reason, size_t reasonlen)
{
	CallResult	err;
	char	   *json = NULL;
	json_t	   *j;

	memset(out, 0, sizeof(*out));
	if (token == NULL || token[0] == '\0')
		return true;			/* anonymous: broadcasts only */
	if (call_sql_simple(NULL, token, "SELECT pg_catalog.row_to_json(w)::text FROM modelmine.whoami() w",
						NULL, 0, true, &json, &err) != 0)
	{
		snprintf(reason, reasonlen, "%s", err.status == 401 || err.status == 403 ? "invalid token"
				 : err.status == 503 ? "database unavailable, retry" : err.message ? err.message : "refused");
		call_result_free(&err);
		return false;
	}
	j = json ? json_loads(json, 0, NULL) : NULL;
	out->user_id = (int64_t) json_integer_value(json_object_get(j, "user_id"));
	out->admin = json_string_value(json_object_get(j, "role")) &&
		strcmp(json_string_value(json_object_get(j, "role")), "admin") == 0;
	json_decref(j);
	free(json);
	if (out->user_id <= 0)
	{
		snprintf(reason, reasonlen, "invalid token");
		return false;
	}
	return true;
}
