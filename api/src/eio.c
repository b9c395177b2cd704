/*
 * eio.c — Engine.IO v4 at /socket.io/: the session table, packets in and out of a session, the
 * server's heartbeat, and the HTTP side (handshake, long-polling GET, POST, errors, the browser
 * bundle).  WebSocket framing and the event thread are in ws.c, Socket.IO in sio.c; the locking
 * rules and the Session structure are in eio.h.
 *
 * A session has one outgoing queue, whatever carries it: a polling GET takes everything queued
 * (joined by \x1e) or sleeps on the session's condition variable until something is queued, the
 * session closes or an upgrade starts; over a WebSocket the event thread drains it, one frame per
 * packet.  The queue is bounded (EIO_QUEUE_MAX_PACKETS, EIO_QUEUE_MAX_BYTES): a client that does
 * not read is disconnected, and reconnects, rather than growing the gateway's memory.
 *
 * MHD closes a connection whose request has been handled for longer than --timeout without
 * activity, so a GET never sleeps past --timeout minus a second: it answers noop ("6") then, and
 * the client polls again at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "api.h"
#include "eio.h"
#include "modelmine/common.h"

#define HASH_SIZE 4096
#define RS "\x1e"				/* Engine.IO's record separator between packets of a payload */

/* Engine.IO's error codes (engine.io's Server.errors) */
enum
{
	ERR_UNKNOWN_TRANSPORT = 0, ERR_UNKNOWN_SID = 1, ERR_BAD_HANDSHAKE_METHOD = 2,
	ERR_BAD_REQUEST = 3, ERR_FORBIDDEN = 4, ERR_UNSUPPORTED_PROTOCOL = 5
};

static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static Session *buckets[HASH_SIZE];	/* tab_mu */
static Session *all_head;		/* tab_mu: every open session */
static atomic_int nsessions = 0;
static atomic_bool stopping = false;
static pthread_condattr_t mono_attr;

/* ---- messages ---- */

/* A shared outgoing packet with one reference. */
EioMsg *
eio_msg_new(const char *text, size_t len)
{
	EioMsg	   *m = malloc(sizeof(EioMsg) + len + 1);

	if (m == NULL)
		return NULL;
	atomic_init(&m->refs, 1);
	m->len = len;
	memcpy(m->text, text, len);
	m->text[len] = '\0';
	return m;
}

/* Drops a reference to a packet. */
void
eio_msg_unref(EioMsg *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1)
		free(m);
}

/* A random id of EIO_ID_LEN base64url characters (sids and Socket.IO ids). */
void
eio_random_id(char out[EIO_ID_LEN + 1])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[15];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
	{
		/* OpenSSL seeds from the kernel; failing here means the process cannot be trusted */
		fprintf(stderr, "modelmine-api: no random bytes for a session id\n");
		abort();
	}
	for (int i = 0, o = 0; i < 15; i += 3, o += 4)
	{
		unsigned	v = (unsigned) raw[i] << 16 | (unsigned) raw[i + 1] << 8 | raw[i + 2];

		out[o] = b64[v >> 18 & 63];
		out[o + 1] = b64[v >> 12 & 63];
		out[o + 2] = b64[v >> 6 & 63];
		out[o + 3] = b64[v & 63];
	}
	out[EIO_ID_LEN] = '\0';
}

/* ---- the session table ---- */

/* The hash bucket of a sid. */
static unsigned
bucket_of(const char *sid)
{
	unsigned	h = 2166136261u;

	for (const char *p = sid; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	return h % HASH_SIZE;
}

/* The open session with this sid, or NULL.  Caller holds tab_mu. */
static Session *
lookup_locked(const char *sid)
{
	for (Session *s = buckets[bucket_of(sid)]; s; s = s->hnext)
		if (strcmp(s->sid, sid) == 0)
			return s;
	return NULL;
}

/* A new session, in the table, with a reference for the caller; NULL when full or shutting down. */
Session *
eio_session_new(EioTransport transport)
{
	Session    *s = calloc(1, sizeof(Session));
	double		now = mm_now_s();
	unsigned	b;

	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 2);	/* the table's and the caller's */
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, &mono_attr);
	s->transport = transport;
	s->next_ping = now + EIO_PING_INTERVAL_MS / 1000.0;
	s->connect_deadline = now + EIO_CONNECT_TIMEOUT_S;
	pthread_mutex_lock(&tab_mu);
	if (atomic_load(&stopping) || atomic_load(&nsessions) >= api_cfg.max_sockets)
	{
		pthread_mutex_unlock(&tab_mu);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return NULL;
	}
	do
		eio_random_id(s->sid);
	while (lookup_locked(s->sid) != NULL);
	b = bucket_of(s->sid);
	s->hnext = buckets[b];
	buckets[b] = s;
	s->next = all_head;
	if (all_head)
		all_head->prev = s;
	all_head = s;
	atomic_fetch_add(&nsessions, 1);
	pthread_mutex_unlock(&tab_mu);
	return s;
}

/* The open session with this sid, with a reference for the caller; NULL when there is none. */
Session *
eio_session_find(const char *sid)
{
	Session    *s;

	pthread_mutex_lock(&tab_mu);
	s = lookup_locked(sid);
	if (s)
		eio_ref(s);
	pthread_mutex_unlock(&tab_mu);
	return s;
}

/* Takes a reference. */
void
eio_ref(Session *s)
{
	atomic_fetch_add(&s->refs, 1);
}

/* Frees a list of queued packets. */
static void
free_items(EioItem *it)
{
	while (it)
	{
		EioItem    *next = it->next;

		eio_msg_unref(it->msg);
		free(it);
		it = next;
	}
}

/* Drops a reference; the last one frees the session. */
void
eio_unref(Session *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	free_items(s->qhead);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Takes s out of the table; true if it was there.  Caller holds tab_mu. */
static bool
unlist_locked(Session *s)
{
	Session   **pp = &buckets[bucket_of(s->sid)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp == NULL)
		return false;
	*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		all_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = s->hnext = NULL;
	atomic_fetch_sub(&nsessions, 1);
	return true;
}

/* Wakes whoever drains s's queue.  Caller holds s->mu. */
static void
wake_locked(Session *s)
{
	if (s->get_active)
		pthread_cond_broadcast(&s->cv);
	if (s->ws || s->probe || s->transport == EIO_WEBSOCKET)
		ws_kick(s);
}

/*
 * Closes a session (once; later calls do nothing): out of the table, queue dropped, a waiting GET
 * answers close, its WebSockets are closed by the event thread.  why, when given, is logged.
 * Sends no Socket.IO DISCONNECT: the client's reconnection logic takes over.
 */
void
eio_close(Session *s, const char *why)
{
	bool		listed;

	pthread_mutex_lock(&tab_mu);
	listed = unlist_locked(s);
	pthread_mutex_unlock(&tab_mu);
	pthread_mutex_lock(&s->mu);
	if (!s->closed)
	{
		s->closed = true;
		free_items(s->qhead);
		s->qhead = s->qtail = NULL;
		s->qcount = 0;
		s->qbytes = 0;
		pthread_cond_broadcast(&s->cv);
		if (s->ws || s->probe)
			ws_kick(s);
		if (why)
			fprintf(stderr, "modelmine-api: socket.io: closed session %s: %s\n", s->sid, why);
	}
	pthread_mutex_unlock(&s->mu);
	if (listed)
		eio_unref(s);
}

/* Live sessions (for /health and the LISTEN thread). */
int
eio_session_count(void)
{
	return atomic_load(&nsessions);
}

/* Whether eio_shutdown has run: no new sessions. */
bool
eio_stopping(void)
{
	return atomic_load(&stopping);
}

/* ---- the outgoing queue ---- */

/* Appends m to s's queue and wakes its reader.  Caller holds s->mu; closes s after PUSH_FULL. */
PushResult
eio_push_locked(Session *s, EioMsg *m)
{
	EioItem    *it;

	if (s->closed)
		return PUSH_CLOSED;
	if (s->qcount >= EIO_QUEUE_MAX_PACKETS || s->qbytes + m->len > EIO_QUEUE_MAX_BYTES)
		return PUSH_FULL;
	it = malloc(sizeof(EioItem));
	if (it == NULL)
		return PUSH_FULL;
	atomic_fetch_add(&m->refs, 1);
	it->msg = m;
	it->next = NULL;
	if (s->qtail)
		s->qtail->next = it;
	else
		s->qhead = it;
	s->qtail = it;
	s->qcount++;
	s->qbytes += m->len;
	wake_locked(s);
	return PUSH_OK;
}

/* Queues a packet for s; false when s is closed, or was closed now because its queue is full. */
bool
eio_send(Session *s, EioMsg *m)
{
	PushResult	r;

	pthread_mutex_lock(&s->mu);
	r = eio_push_locked(s, m);
	pthread_mutex_unlock(&s->mu);
	if (r == PUSH_FULL)
		eio_close(s, "the client does not read: its outgoing queue is full");
	return r == PUSH_OK;
}

/* eio_send for a packet written as text. */
bool
eio_send_text(Session *s, const char *text)
{
	EioMsg	   *m = eio_msg_new(text, strlen(text));
	bool		ok;

	if (m == NULL)
		return false;
	ok = eio_send(s, m);
	eio_msg_unref(m);
	return ok;
}

/* Takes up to max packets (all when max < 0) off the front of s's queue.  Caller holds s->mu. */
EioItem *
eio_take_queue(Session *s, int max)
{
	EioItem    *head = s->qhead,
			   *last = NULL,
			   *it = head;
	int			n = 0;

	if (max < 0)
		max = INT_MAX;
	while (it && n < max)
	{
		s->qbytes -= it->msg->len;
		last = it;
		it = it->next;
		n++;
	}
	if (n == 0)
		return NULL;
	last->next = NULL;
	s->qhead = it;
	if (it == NULL)
		s->qtail = NULL;
	s->qcount -= n;
	return head;
}

/*
 * Queues m for every open session that want (called with the session's mu held) accepts.  The
 * packet is shared, not copied; sessions whose queue is full are closed afterwards.
 */
void
eio_broadcast(EioMsg *m, bool (*want) (Session *s, void *arg), void *arg)
{
	Session   **full = NULL;
	size_t		nfull = 0,
				cap = 0;

	pthread_mutex_lock(&tab_mu);
	for (Session *s = all_head; s; s = s->next)
	{
		pthread_mutex_lock(&s->mu);
		if (want(s, arg) && eio_push_locked(s, m) == PUSH_FULL)
		{
			if (nfull == cap)
			{
				Session   **f = realloc(full, (cap = cap ? cap * 2 : 16) * sizeof(Session *));

				if (f)
					full = f;
			}
			if (nfull < cap)
			{
				eio_ref(s);
				full[nfull++] = s;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&tab_mu);
	for (size_t i = 0; i < nfull; i++)
	{
		eio_close(full[i], "the client does not read: its outgoing queue is full");
		eio_unref(full[i]);
	}
	free(full);
}

/* ---- packets in ---- */

/* One Engine.IO packet from the client (either transport). */
void
eio_on_packet(Session *s, const char *p, size_t len)
{
	if (len == 0)
		return;
	switch (p[0])
	{
		case '1':				/* close */
			eio_close(s, NULL);
			break;
		case '3':				/* pong: the client is alive; the next ping in pingInterval */
			pthread_mutex_lock(&s->mu);
			s->pong_deadline = 0;
			s->next_ping = mm_now_s() + EIO_PING_INTERVAL_MS / 1000.0;
			pthread_mutex_unlock(&s->mu);
			break;
		case '4':				/* message: Socket.IO */
			sio_on_message(s, p + 1, len - 1);
			break;
		case '2':				/* a v4 client pings only to probe, and that is ws.c's */
		case '5':				/* upgrade: ws.c's, on the probing socket */
		case '6':				/* noop */
		case 'b':				/* binary (base64 over polling): Socket.IO attachments, unused */
			break;
		default:
			eio_close(s, "parse error: unknown Engine.IO packet type");
			break;
	}
}

/* ---- the heartbeat (run by the event thread every few hundred ms) ---- */

/* Sends due pings and closes sessions that missed a pong or never CONNECTed. */
void
eio_tick(double now)
{
	static EioMsg *ping = NULL;
	Session   **doomed = NULL;
	const char **whys = NULL;
	size_t		n = 0,
				cap = 0;

	if (ping == NULL)
		ping = eio_msg_new("2", 1);	/* kept for the life of the process */
	pthread_mutex_lock(&tab_mu);
	for (Session *s = all_head; s; s = s->next)
	{
		const char *why = NULL;

		pthread_mutex_lock(&s->mu);
		if (s->pong_deadline > 0 && now >= s->pong_deadline)
			why = "ping timeout: no pong within pingTimeout";
		else if (s->connect_deadline > 0 && now >= s->connect_deadline)
			why = "no Socket.IO CONNECT within 45 s";
		else if (s->pong_deadline == 0 && now >= s->next_ping && ping)
		{
			if (eio_push_locked(s, ping) == PUSH_FULL)
				why = "the client does not read: its outgoing queue is full";
			s->pong_deadline = now + EIO_PING_TIMEOUT_MS / 1000.0;
		}
		pthread_mutex_unlock(&s->mu);
		if (why)
		{
			if (n == cap)
			{
				Session   **d = realloc(doomed, (cap ? cap * 2 : 16) * sizeof(Session *));
				const char **w = d ? realloc(whys, (cap ? cap * 2 : 16) * sizeof(char *)) : NULL;

				if (d)
					doomed = d;
				if (w)
				{
					whys = w;
					cap = cap ? cap * 2 : 16;
				}
			}
			if (n < cap)
			{
				eio_ref(s);
				doomed[n] = s;
				whys[n++] = why;
			}
		}
	}
	pthread_mutex_unlock(&tab_mu);
	for (size_t i = 0; i < n; i++)
	{
		eio_close(doomed[i], whys[i]);
		eio_unref(doomed[i]);
	}
	free(doomed);
	free(whys);
}

/* ---- HTTP ---- */

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

/* The open packet of a new session: a polling handshake's answer, a WebSocket's first frame. */
void
eio_open_packet(Session *s, char *out, size_t len)
{
	snprintf(out, len, "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%d,\"pingTimeout\":%d,"
			 "\"maxPayload\":%d}", s->sid, s->transport == EIO_POLLING ? "\"websocket\"" : "",
			 EIO_PING_INTERVAL_MS, EIO_PING_TIMEOUT_MS, EIO_MAX_PAYLOAD);
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
				body[len++] = RS[0];
			memcpy(body + len, it->msg->text, it->msg->len);
			len += it->msg->len;
		}
	}
	s->get_active = false;
	pthread_mutex_unlock(&s->mu);
	free_items(items);
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
	const char *p = r->body,
			   *end = r->body ? r->body + r->body_len : NULL;

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
	while (p && p < end)
	{
		const char *sep = memchr(p, RS[0], (size_t) (end - p));
		const char *stop = sep ? sep : end;

		eio_on_packet(s, p, (size_t) (stop - p));
		p = stop + 1;
	}
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

/* Serves socket.io-client's dist/ file from --node-modules, ../tests/js/node_modules beside the
 * binary's directory, or web/node_modules under the working directory: the first that has it. */
static enum MHD_Result
serve_bundle(Request *r, const char *file)
{
	char		exe[PATH_MAX],
				dirs[3][PATH_MAX + 64],
				want[sizeof(dirs[0]) + 128];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int			ndirs = 0;

	if (api_cfg.node_modules)
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "%.*s", PATH_MAX, api_cfg.node_modules);
	else
	{
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

/* ---- start and stop ---- */

/* Starts the event thread and the token checkers. */
int
eio_init(void)
{
	pthread_condattr_init(&mono_attr);
	pthread_condattr_setclock(&mono_attr, CLOCK_MONOTONIC);
	if (ws_start() != 0 || sio_start() != 0)
		return -1;
	return 0;
}

/*
 * SIGTERM: no new sessions; every session closed without a Socket.IO DISCONNECT (waiting GETs
 * answer close at once, WebSockets get a close frame), so clients reconnect to another gateway.
 * Returns once every WebSocket is handed back to MHD.
 */
void
eio_shutdown(void)
{
	Session   **all = NULL;
	size_t		n = 0;

	atomic_store(&stopping, true);
	pthread_mutex_lock(&tab_mu);
	all = malloc(((size_t) atomic_load(&nsessions) + 1) * sizeof(Session *));
	for (Session *s = all_head; s && all; s = s->next)
	{
		eio_ref(s);
		all[n++] = s;
	}
	pthread_mutex_unlock(&tab_mu);
	for (size_t i = 0; i < n; i++)
	{
		eio_close(all[i], NULL);
		eio_unref(all[i]);
	}
	free(all);
	fprintf(stderr, "modelmine-api: socket.io: closed %zu session(s) for the drain\n", n);
	ws_stop();
	sio_stop();
}
