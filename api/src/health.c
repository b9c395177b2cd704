/*
 * health.c — GET /health: whether the database answers (a round trip on a pooled connection), the
 * extension version the gateway found, the pool, the LISTEN connection and the Socket.IO sessions.
 * 200 when the database answers, else 503 with Retry-After; a load balancer can poll it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "modelmine/common.h"

/* GET /health */
enum MHD_Result
health_handle(Request *r)
{
	PoolConn   *c;
	PoolStatus	ps = pool_acquire(&c, 2000);
	bool		db_ok = false,
				down;
	char		version[32] = "",
				retry[16];
	double		t0 = mm_now_s(),
				ms = 0;
	int			size,
				open,
				busy,
				waiting;
	json_t	   *j = json_object(),
			   *pool = json_object();

	if (ps == POOL_OK)
	{
		PGresult   *res = PQexec(pool_pg(c), "SELECT extversion FROM pg_catalog.pg_extension "
								 "WHERE extname = 'modelmine'");

		db_ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		if (db_ok && PQntuples(res) == 1)
			snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		ms = (mm_now_s() - t0) * 1000.0;
		pool_release(c, !db_ok);
	}
	pool_stats(&size, &open, &busy, &waiting, &down);
	json_object_set_new(j, "status", json_string(db_ok ? "ok" : "unavailable"));
	json_object_set_new(j, "database", json_string(db_ok ? "reachable" : ps == POOL_TIMEOUT ? "busy" : "down"));
	if (db_ok)
		json_object_set_new(j, "database_ms", json_real(ms));
	json_object_set_new(j, "extension_version", version[0] ? json_string(version) : json_null());
	json_object_set_new(j, "gateway_built_for", json_string(MM_SCHEMA_VERSION));
	json_object_set_new(pool, "size", json_integer(size));
	json_object_set_new(pool, "open", json_integer(open));
	json_object_set_new(pool, "busy", json_integer(busy));
	json_object_set_new(pool, "waiting", json_integer(waiting));
	json_object_set_new(j, "pool", pool);
	json_object_set_new(j, "listening", json_boolean(listen_connected()));
	json_object_set_new(j, "sockets", json_integer(eio_session_count()));
	json_object_set_new(j, "requests_in_flight", json_integer(http_active_requests()));
	if (!db_ok)
	{
		char	   *text = json_dumps(j, JSON_COMPACT);
		ReplyHeader h = {"Retry-After", retry};
		enum MHD_Result out;

		json_decref(j);
		snprintf(retry, sizeof(retry), "%d", pool_retry_after_s() > 0 ? pool_retry_after_s() : 1);
		out = reply(r, 503, "application/json; charset=utf-8", text, strlen(text), &h, 1);
		free(text);
		return out;
	}
	return reply_json(r, 200, j);
}
