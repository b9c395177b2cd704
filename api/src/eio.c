/*
 * eio.c — Engine.IO v4's sessions: the session table, packets in and out of a session,
 * broadcasts, and the heartbeat.  The HTTP side (handshake, polling) is eiohttp.c, parsing
 * eiopacket.c, WebSocket framing and the event threads ws.c, Socket.IO sio.c; the locking rules
 * and the Session structure are in eio.h.
 *
 * A session has one outgoing queue, whatever carries it: a polling GET takes everything queued,
 * over a WebSocket its event thread drains it, one frame per packet.  The queue is bounded
 * (EIO_QUEUE_MAX_PACKETS, EIO_QUEUE_MAX_BYTES): a client that does not read is disconnected, and
 * reconnects, rather than growing the gateway's memory.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "api.h"
#include "eio.h"
#include "eiopacket.h"
#include "modelmine/common.h"

#define HASH_SIZE 4096

static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static Session *buckets[HASH_SIZE];	/* tab_mu */
static Session *all_head;		/* tab_mu: every open session */
static atomic_int nsessions = 0;
static atomic_uint nextseq = 0;
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
	s->seq = atomic_fetch_add(&nextseq, 1);
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

/* The open packet of a new session: a polling handshake's answer, a WebSocket's first frame. */
void
eio_open_packet(Session *s, char *out, size_t len)
{
	snprintf(out, len, "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%d,\"pingTimeout\":%d,"
			 "\"maxPayload\":%d}", s->sid, s->transport == EIO_POLLING ? "\"websocket\"" : "",
			 EIO_PING_INTERVAL_MS, EIO_PING_TIMEOUT_MS, EIO_MAX_PAYLOAD);
}

/* Takes a reference. */
void
eio_ref(Session *s)
{
	atomic_fetch_add(&s->refs, 1);
}

/* Frees a list of queued packets. */
void
eio_free_items(EioItem *it)
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
	eio_free_items(s->qhead);
	free(s->sio_token);
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
		eio_free_items(s->qhead);
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

/* A session picked while walking the table, to act on once the locks are released. */
typedef struct Pick
{
	Session    *s;				/* a reference */
	const char *why;
} Pick;

/* Appends s (taking a reference) and why to a growing array; false when out of memory. */
static bool
pick(Pick **arr, size_t *n, size_t *cap, Session *s, const char *why)
{
	if (*n == *cap)
	{
		size_t		c = *cap ? *cap * 2 : 16;
		Pick	   *a = realloc(*arr, c * sizeof(Pick));

		if (a == NULL)
			return false;
		*arr = a;
		*cap = c;
	}
	eio_ref(s);
	(*arr)[*n].s = s;
	(*arr)[(*n)++].why = why;
	return true;
}

/* Closes every picked session (with its why) and drops the references. */
static void
close_picked(Pick *arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		eio_close(arr[i].s, arr[i].why);
		eio_unref(arr[i].s);
	}
	free(arr);
}

/*
 * Queues m for every open session that want (called with the session's mu held) accepts.  The
 * packet is shared, not copied; sessions whose queue is full are closed afterwards.
 */
void
eio_broadcast(EioMsg *m, bool (*want) (Session *s, void *arg), void *arg)
{
	Pick	   *full = NULL;
	size_t		nfull = 0,
				cap = 0;

	pthread_mutex_lock(&tab_mu);
	for (Session *s = all_head; s; s = s->next)
	{
		pthread_mutex_lock(&s->mu);
		if (want(s, arg) && eio_push_locked(s, m) == PUSH_FULL)
			pick(&full, &nfull, &cap, s, "the client does not read: its outgoing queue is full");
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&tab_mu);
	close_picked(full, nfull);
}

/* ---- packets in ---- */

/* One Engine.IO packet from the client (either transport); an empty one is ignored. */
void
eio_on_packet(Session *s, const char *p, size_t len)
{
	EioPacket	pk;

	if (len == 0)
		return;
	switch (eio_packet_parse(p, len, &pk))
	{
		case EIO_CLOSE:
			eio_close(s, NULL);
			break;
		case EIO_PONG:			/* the client is alive; the next ping in pingInterval */
			pthread_mutex_lock(&s->mu);
			s->pong_deadline = 0;
			s->next_ping = mm_now_s() + EIO_PING_INTERVAL_MS / 1000.0;
			pthread_mutex_unlock(&s->mu);
			break;
		case EIO_MESSAGE:		/* Socket.IO */
			sio_on_message(s, pk.data, pk.len);
			break;
		case EIO_PING:			/* a v4 client pings only to probe, and that is ws.c's */
		case EIO_UPGRADE:		/* ws.c's, on the probing socket */
		case EIO_NOOP:
		case EIO_BINARY:		/* base64 over polling: Socket.IO attachments, unused */
			break;
		case EIO_OPEN:			/* the server's to send */
		case EIO_BAD:
			eio_close(s, "parse error: unknown Engine.IO packet type");
			break;
	}
}

/* ---- the heartbeat (run by the first event thread every few hundred ms) ---- */

/*
 * Sends due pings, closes sessions that missed a pong or never CONNECTed, and hands the sessions
 * whose token is due for another check to the token-check threads (sioauth.c: the check itself
 * never runs here, on an event thread).
 */
void
eio_tick(double now)
{
	static EioMsg *ping = NULL;
	Pick	   *doomed = NULL,
			   *due = NULL;
	size_t		n = 0,
				cap = 0,
				ndue = 0,
				capdue = 0;

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
		if (why)
			pick(&doomed, &n, &cap, s, why);
		else if (s->recheck_at > 0 && now >= s->recheck_at && s->sio_connected &&
				 pick(&due, &ndue, &capdue, s, NULL))
			s->recheck_at = 0;	/* under way: sio_reverified sets the next one */
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&tab_mu);
	close_picked(doomed, n);
	for (size_t i = 0; i < ndue; i++)
	{
		sio_recheck(due[i].s);
		eio_unref(due[i].s);
	}
	free(due);
}

/* ---- start and stop ---- */

/* Starts the event threads and the token-check threads. */
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
