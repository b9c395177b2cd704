/*
 * fuzz_ws.c — libFuzzer target for the gateway's WebSocket side (src/ws.c with wslay): the input
 * is the bytes a client sends after the 101 answer (frames: masking, fragments, ping/pong/close,
 * lengths), handed to a socket as ws.c adopts it (the bytes MHD read past the request, c->pre), so
 * wslay_event_recv parses them with the gateway's own callbacks (recv_cb, send_cb, on_msg) and the
 * answers (pong, close, "3probe", echoed packets) go out through send_cb to a socketpair that is
 * drained.  The first byte picks a probing socket (an upgrade from polling) or a WebSocket-only
 * session.  ws.c is included whole; the Engine.IO session functions it calls are stubs here that
 * parse each packet with the real eiopacket.c and echo it into the session's queue, so the pump
 * path runs too.  Checks: every message reaching Engine.IO is valid UTF-8 text, at most
 * EIO_MAX_PAYLOAD long, and the session is released exactly once.
 *
 *   make -C api fuzz-build                         build (scripts/fuzz.sh runs it)
 *   api/tests/fuzz_ws FILE...                      replay inputs
 */
#include "../src/ws.c"

#include <stdint.h>

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_ws: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

ApiConfig	api_cfg;
static int	sessions_live;

/* ---- stubs for eio.c, http.c and reply.c ---- */
void
eio_ref(Session *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void
eio_unref(Session *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1)
	{
		for (EioItem *it = s->qhead; it;)
		{
			EioItem    *next = it->next;

			eio_msg_unref(it->msg);
			free(it);
			it = next;
		}
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
		free(s);
		sessions_live--;
	}
}

void
eio_close(Session *s, const char *why)
{
	(void) why;
	pthread_mutex_lock(&s->mu);
	s->closed = true;
	pthread_mutex_unlock(&s->mu);
}

void
eio_msg_unref(EioMsg *m)
{
	if (atomic_fetch_sub(&m->refs, 1) == 1)
		free(m);
}

EioItem *
eio_take_queue(Session *s, int max)
{
	EioItem    *head = s->qhead,
			   *it = head;

	MUST(max > 0);
	for (int n = 1; it && n < max; n++)
		it = it->next;
	if (it)
	{
		s->qhead = it->next;
		it->next = NULL;
	}
	else
		s->qhead = NULL;
	if (s->qhead == NULL)
		s->qtail = NULL;
	return head;
}

/* Queues text on s as eio_send_text does. */
static void
queue_text(Session *s, const char *p, size_t len)
{
	EioMsg	   *m = malloc(sizeof(EioMsg) + len + 1);
	EioItem    *it = malloc(sizeof(EioItem));

	atomic_init(&m->refs, 1);
	m->len = len;
	if (len > 0)
		memcpy(m->text, p, len);	/* an empty message: wslay passes NULL */
	m->text[len] = '\0';
	it->msg = m;
	it->next = NULL;
	if (s->qtail)
		s->qtail->next = it;
	else
		s->qhead = it;
	s->qtail = it;
}

bool
eio_send_text(Session *s, const char *text)
{
	queue_text(s, text, strlen(text));
	return true;
}

/* A packet from the socket: parsed as eio.c and sio.c do, and echoed. */
void
eio_on_packet(Session *s, const char *p, size_t len)
{
	EioPacket	pk;

	MUST(len <= EIO_MAX_PAYLOAD);
	MUST(eio_utf8_valid(p, len));
	if (eio_packet_parse(p, len, &pk) == EIO_MESSAGE)
	{
		SioPacket	sp;

		MUST(pk.data >= p && pk.data + pk.len <= p + len);
		if (sio_packet_parse(pk.data, pk.len, &sp) == NULL)
			sio_packet_free(&sp);
	}
	pthread_mutex_lock(&s->mu);
	queue_text(s, p, len < 64 ? len : 64);
	pthread_mutex_unlock(&s->mu);
}

void
eio_open_packet(Session *s, char *out, size_t len)
{
	(void) s;
	snprintf(out, len, "0{}");
}

Session *
eio_session_find(const char *sid)
{
	(void) sid;
	return NULL;
}

Session *
eio_session_new(EioTransport transport)
{
	(void) transport;
	return NULL;
}

bool
eio_stopping(void)
{
	return false;
}

void
eio_tick(double now)
{
	(void) now;
}

const char *
req_header(Request *r, const char *name)
{
	(void) r, (void) name;
	return NULL;
}

enum MHD_Result
reply_error(Request *r, int status, const char *code, const char *message, const char *details,
			const char *hint)
{
	(void) r, (void) status, (void) code, (void) message, (void) details, (void) hint;
	return MHD_YES;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			sv[2];
	char		sink[65536];
	Session    *s;
	WsConn	   *c;

	if (size < 2)
		return 0;
	if (nloops == 0)
	{
		loops[0].ep = epoll_create1(EPOLL_CLOEXEC);
		MUST(loops[0].ep >= 0);
		nloops = 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	s = calloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);	/* the WsConn's reference */
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->transport = (data[0] & 1) ? EIO_POLLING : EIO_WEBSOCKET;
	sessions_live++;
	c = calloc(1, sizeof(*c));
	c->loop = &loops[0];
	c->fd = sv[0];
	c->s = s;
	c->probing = data[0] & 1;
	c->pre_len = size - 1;
	c->pre = malloc(c->pre_len);
	memcpy(c->pre, data + 1, c->pre_len);

	adopt(c);					/* reads the frames that came with the request */
	while (read(sv[1], sink, sizeof(sink)) > 0)
		;
	if (loops[0].live)
	{
		MUST(loops[0].live == c && c->pre_off == c->pre_len);
		pump(c);				/* the socket has room again */
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	if (loops[0].live)
		conn_teardown(c);
	MUST(loops[0].live == NULL);
	MUST(sessions_live == 0);
	close(sv[1]);
	return 0;
}
