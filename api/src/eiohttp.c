/*
 * eiohttp.c — Engine.IO v4's HTTP side at /socket.io/: the polling handshake, the long-polling
 * GET and the POST of a polling session, Engine.IO's error answers, the WebSocket handshake
 * handed to ws.c, and socket.io-client's browser bundle.  The sessions themselves are eio.c's.
 *
 * A polling GET takes everything queued for its session (joined by \x1e) or sleeps on the session's
 * condition variable until something is queued, the session closes or an upgrade starts.  MHD
 * closes a connection whose request has been handled for longer than --timeout without activity,
 * so a GET never sleeps past --timeout minus a second: it answers noop ("6") then, and the client
 * polls again at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "eio.h"
#include "eiopacket.h"
#include "modelmine/common.h"

#define RS '\x1e'				/* Engine.IO's record separator between packets of a payload */

/* Engine.IO's error codes (engine.io's Server.errors) */
enum
{
	ERR_UNKNOWN_TRANSPORT = 0, ERR_UNKNOWN_SID = 1, ERR_BAD_HANDSHAKE_METHOD = 2,
	ERR_BAD_REQUEST = 3, ERR_FORBIDDEN = 4, ERR_UNSUPPORTED_PROTOCOL = 5
};

/* Engine.IO's error body {"code":N,"message":"..."} with an HTTP status. */
static enum MHD_Result
eio_error(Request *r, int status, int code, const char *message)
{
	json_t	   *j = json_pack("{s:i,s:s}", "code", code, "message", message);
	char	   *text = json_dumps(j, JSON_COMPACT);
	enum MHD_Result res;

	json_decref(j);
	res = reply(r, status, "application/json", text ? text : "{}", text ? strlen(text) : 2,
				NULL, 0);
	free(text);
	return res;
}

/* The standard message of an Engine.IO error code. */
static const char *
eio_error_message(int code)
{
	static const char *const msgs[] = {"Transport unknown", "Session ID unknown",
		"Bad handshake method", "Bad request", "Forbidden", "Unsupported protocol version"};

	return code >= 0 && code <= 5 ? msgs[code] : "Bad request";
}

/* An Engine.IO error with its standard message. */
static enum MHD_Result
eio_fail(Request *r, int status, int code)
{
	return eio_error(r, status, code, eio_error_message(code));
}

/* A polling answer: packets as text/plain, never cached. */
static enum MHD_Result
reply_payload(Request *r, const char *body, size_t len)
{
	ReplyHeader h = {"Cache-Control", "no-store"};

	return reply(r, 200, "text/plain; charset=UTF-8", body, len, &h, 1);
}

/* A new polling session: the open packet is the answer. */
static enum MHD_Result
handshake_polling(Request *r)
{
	Session    *s = eio_session_new(EIO_POLLING);
	char		open[256];

	if (s == NULL)
		return eio_error(r, 503, ERR_FORBIDDEN, eio_stopping()
						 ? "This gateway is shutting down; connect again"
						 : "Too many Socket.IO sessions on this gateway; retry later");
	eio_open_packet(s, open, sizeof(open));
	eio_unref(s);
	return reply_payload(r, open, strlen(open));
}

/* How long a GET may sleep: under MHD's idle timeout, and no longer than a ping interval. */
static double
poll_wait_s(void)
{
	double		w = api_cfg.connection_timeout_s - 1.0;

	if (w > EIO_PING_INTERVAL_MS / 1000.0 + 5)
		w = EIO_PING_INTERVAL_MS / 1000.0 + 5;
	return w < 1.0 ? 1.0 : w;
}

/* Sleeps on s->cv until deadline (mm_now_s); false on timeout.  Caller holds s->mu. */
static bool
wait_until(Session *s, double deadline)
{
	double		left = deadline - mm_now_s();
	struct timespec ts;

	if (left <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t) left;
	ts.tv_nsec += (long) ((left - (double) (time_t) left) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
	{
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT;
}

/* A polling GET: what is queued, or wait for it. */
static enum MHD_Result
poll_get(Request *r, Session *s)
{
	double		deadline = mm_now_s() + poll_wait_s();
	EioItem    *items = NULL;
	char	   *body;
	size_t		len = 0;
	enum MHD_Result res;

	pthread_mutex_lock(&s->mu);
	if (s->get_active)
	{
		pthread_mutex_unlock(&s->mu);
		eio_close(s, "overlapping polling GET from the client");
		return eio_fail(r, 400, ERR_BAD_REQUEST);
	}
	s->get_active = true;
	while (!s->closed && s->transport == EIO_POLLING && !s->upgrading && s->qhead == NULL &&
		   wait_until(s, deadline))
		;
	if (s->closed)
		body = strdup("1");		/* close: the client reconnects */
	else if (s->transport != EIO_POLLING || s->qhead == NULL)
		body = strdup("6");		/* noop: upgraded, upgrading, or nothing within the wait */
	else
	{
		items = eio_take_queue(s, -1);
		for (EioItem *it = items; it; it = it->next)
			len += it->msg->len + 1;
		body = malloc(len);
		len = 0;
		for (EioItem *it = items; it && body; it = it->next)
		{
			if (len > 0)
				body[len++] = RS;
			memcpy(body + len, it->msg->text, it->msg->len);
			len += it->msg->len;
		}
	}
	s->get_active = false;
	pthread_mutex_unlock(&s->mu);
	eio_free_items(items);
	if (body == NULL)
		return MHD_NO;
	if (len == 0)
		len = strlen(body);
	res = reply_payload(r, body, len);
	free(body);
	return res;
}

/* A polling POST: one or more packets separated by \x1e. */
static enum MHD_Result
poll_post(Request *r, Session *s)
{
	const char *ct = req_header(r, "Content-Type");
	const char *cursor = r->body,
			   *end = r->body ? r->body + r->body_len : NULL,
			   *packet;
	size_t		len;

	if (ct && strncmp(ct, "application/octet-stream", 24) == 0)
	{
		eio_close(s, "binary POST body (not Engine.IO v4)");
		return eio_fail(r, 400, ERR_BAD_REQUEST);
	}
	if (r->body_len > EIO_MAX_PAYLOAD)
	{
		eio_close(s, "POST body larger than maxPayload");
		return eio_error(r, 413, ERR_BAD_REQUEST, "Payload too large");
	}
	pthread_mutex_lock(&s->mu);
	if (s->post_active)
	{
		pthread_mutex_unlock(&s->mu);
		eio_close(s, "overlapping polling POST from the client");
		return eio_fail(r, 400, ERR_BAD_REQUEST);
	}
	s->post_active = true;
	pthread_mutex_unlock(&s->mu);
	while (eio_payload_next(&cursor, end, &packet, &len))
		eio_on_packet(s, packet, len);
	pthread_mutex_lock(&s->mu);
	s->post_active = false;
	pthread_mutex_unlock(&s->mu);
	return reply(r, 200, "text/html", "ok", 2, NULL, 0);
}

/* Whether path names the browser bundle as Socket.IO serves it; file gets the dist/ file name. */
static bool
bundle_name(const char *path, char *file, size_t len)
{
	static const char *const names[] = {"socket.io.js", "socket.io.min.js", "socket.io.esm.min.js",
	"socket.io.msgpack.min.js"};
	const char *name = path + strlen("/socket.io/");

	if (strncmp(path, "/socket.io/", 11) != 0)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		size_t		n = strlen(names[i]);

		if (strncmp(name, names[i], n) == 0 && (name[n] == '\0' || strcmp(name + n, ".map") == 0))
		{
			snprintf(file, len, "%s", name);
			return true;
		}
	}
	return false;
}

/* Serves socket.io-client's dist/ file from --node-modules, else the web root's node_modules (the
 * dashboard's pinned copy, precompressed), ../tests/js/node_modules beside the binary's directory, or
 * web/node_modules under the working directory: the first that has it. */
static enum MHD_Result
serve_bundle(Request *r, const char *file)
{
	char		exe[PATH_MAX],
				dirs[4][PATH_MAX + 64],
				want[sizeof(dirs[0]) + 128];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int			ndirs = 0;

	if (api_cfg.node_modules)
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "%.*s", PATH_MAX, api_cfg.node_modules);
	else
	{
		const char *root = static_web_root();

		if (root)
			snprintf(dirs[ndirs++], sizeof(dirs[0]), "%.*s/node_modules", PATH_MAX, root);
		if (n > 0)
		{
			char	   *slash;

			exe[n] = '\0';
			slash = strrchr(exe, '/');
			if (slash)
				*slash = '\0';
			snprintf(dirs[ndirs++], sizeof(dirs[0]), "%.*s/../tests/js/node_modules",
					 PATH_MAX, exe);
		}
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "web/node_modules");
	}
	for (int i = 0; i < ndirs; i++)
	{
		snprintf(want, sizeof(want), "%.*s/socket.io-client/dist/%.40s", PATH_MAX + 32, dirs[i],
				 file);
		if (access(want, R_OK) == 0)
			return static_send_file(r, want);
	}
	return reply_error(r, 404, "PGRST125", "Not found", NULL,
					   "npm install socket.io-client where --node-modules points.");
}

/* Every request under /socket.io/: the bundle, or Engine.IO. */
enum MHD_Result
eio_handle(Request *r)
{
	const char *eio = req_query(r, "EIO");
	const char *transport = req_query(r, "transport");
	const char *sid = req_query(r, "sid");
	bool		websocket;
	char		file[64];
	Session    *s;
	enum MHD_Result res;

	if (bundle_name(r->path, file, sizeof(file)))
	{
		if (!req_is_read(r))
			return reply_error(r, 405, "PGRST117", "Method not allowed", NULL, "Use GET.");
		return serve_bundle(r, file);
	}
	if (eio == NULL || strcmp(eio, "4") != 0)
		return eio_fail(r, 400, ERR_UNSUPPORTED_PROTOCOL);
	if (transport == NULL ||
		(strcmp(transport, "polling") != 0 && strcmp(transport, "websocket") != 0))
		return eio_fail(r, 400, ERR_UNKNOWN_TRANSPORT);
	websocket = strcmp(transport, "websocket") == 0;
	if (sid == NULL || sid[0] == '\0')
	{
		if (strcmp(r->method, "GET") != 0)
			return eio_fail(r, 400, ERR_BAD_HANDSHAKE_METHOD);
		if (!websocket)
			return handshake_polling(r);
		if (!ws_is_upgrade(r))
			return eio_fail(r, 400, ERR_BAD_REQUEST);
		if (eio_stopping() || eio_session_count() >= api_cfg.max_sockets)
			return eio_error(r, 503, ERR_FORBIDDEN, eio_stopping()
							 ? "This gateway is shutting down; connect again"
							 : "Too many Socket.IO sessions on this gateway; retry later");
		return ws_answer_upgrade(r);	/* the session is made once the socket is ours */
	}
	s = eio_session_find(sid);
	if (s == NULL)
		return eio_fail(r, 400, ERR_UNKNOWN_SID);
	if (websocket)
	{
		bool		ok;

		pthread_mutex_lock(&s->mu);
		ok = s->transport == EIO_POLLING && s->probe == NULL && !s->closed;
		pthread_mutex_unlock(&s->mu);
		res = ok && ws_is_upgrade(r) && strcmp(r->method, "GET") == 0 ? ws_answer_upgrade(r)
			: eio_fail(r, 400, ERR_BAD_REQUEST);
	}
	else
	{
		EioTransport t;

		pthread_mutex_lock(&s->mu);
		t = s->transport;
		pthread_mutex_unlock(&s->mu);
		if (t != EIO_POLLING)	/* upgraded: polling is over for this session */
			res = eio_fail(r, 400, ERR_BAD_REQUEST);
		else if (strcmp(r->method, "GET") == 0)
			res = poll_get(r, s);
		else if (strcmp(r->method, "POST") == 0)
			res = poll_post(r, s);
		else
			res = eio_fail(r, 400, ERR_BAD_REQUEST);
	}
	eio_unref(s);
	return res;
}
