/*
 * ws.c — Engine.IO's WebSocket transport: the 101 answer, and the event threads that serve the
 * upgraded sockets with wslay (framing, masking, ping/pong and close frames, fragments), one text
 * frame per Engine.IO packet.
 *
 * Event threads.  One per online CPU (MODELMINE_WS_THREADS, read at start-up, overrides: 1 to 64),
 * each with its own epoll set, eventfd, inbox and kick list (an EvLoop).  A session belongs to one
 * of them for its whole life, chosen round-robin by its creation number (Session.seq), so its probe
 * and its WebSocket are served by the same thread and a kick needs no look-up.  Why several: a
 * broadcast's cost is one send() per socket, and over loopback or a fast network most of a send is
 * the kernel's TCP work, done on the sending thread; with one thread 1,000 sockets took 17-47 ms
 * on 2 cores, with one per core the sends run side by side.
 *
 * How a socket gets here.  eio.c answers a valid upgrade request with ws_answer_upgrade; MHD sends
 * the 101 and calls on_upgrade on the connection's thread with the socket.  Over plain TCP we
 * keep a duplicate of it and give MHD's back at once (see on_upgrade for why); over TLS it is
 * MHD's end of a socketpair that the connection's thread keeps forwarding through until we close
 * it, and the same code serves it.  on_upgrade finds the session (an upgrade from polling,
 * ?sid=) or makes one (WebSocket only), wraps the socket in a WsConn and puts it in the inbox; the
 * session's event thread adopts it.  From then on only that thread touches it.
 *
 * Other threads never write to a socket.  A thread that queued packets for a session (the LISTEN
 * thread publishing, a token check answering a CONNECT, the heartbeat) calls ws_kick: the session
 * goes on its event thread's kick list (once, however often it is kicked; served in the order
 * kicked) and an eventfd wakes the thread, which moves the session's queue into wslay, at most
 * WS_INFLIGHT packets at a time, so the session's own bounded queue is where a slow reader's
 * backlog is measured.
 *
 * Upgrade from polling: the probing socket answers "2probe" with "3probe" and marks the session
 * upgrading (a waiting polling GET answers noop, so the client pauses polling); "5" makes it the
 * session's transport.  A probe that has not upgraded within EIO_UPGRADE_TIMEOUT_S is closed and
 * the session stays on polling.
 *
 * The first event thread also runs the heartbeat (eio_tick, for every session) every TICK_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "api.h"
#include "eio.h"
#include "eiopacket.h"
#include "modelmine/common.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_INFLIGHT 64			/* packets handed to wslay per socket at a time */
#define TICK_MS 250
#define CLOSE_GRACE_S 2.0		/* how long a close frame may take to leave before we hang up */
#define WS_MAX_THREADS 64

typedef struct EvLoop EvLoop;

struct WsConn
{
	EvLoop	   *loop;			/* the event thread serving it */
	int			fd;				/* ours (plain TCP), or MHD's socketpair end (TLS) */
	struct MHD_UpgradeResponseHandle *urh;	/* TLS only: MHD's until we close */
	wslay_event_context_ptr ctx;
	Session    *s;				/* a reference; NULL: refused, closed at once */
	bool		probing;		/* the session's probe until "5" */
	bool		closing;		/* a close frame is queued: hang up once it is sent */
	double		deadline;		/* probing: upgrade timeout; closing: give up on the close */
	uint32_t	events;			/* what epoll watches for it now */
	uint8_t		hdr[16];		/* a frame header held back to go out with its payload */
	size_t		hdr_len;
	unsigned char *pre;			/* bytes MHD read past the request: the first frames */
	size_t		pre_len,
				pre_off;
	struct WsConn *prev,
			   *next;			/* its event thread's list of live sockets */
	struct WsConn *inbox_next;	/* loop->mu */
};

/* One event thread and what other threads hand it; mu is "ev_mu" in eio.h's lock order. */
struct EvLoop
{
	pthread_mutex_t mu;
	WsConn	   *inbox;			/* mu: sockets waiting to be adopted */
	Session    *kick_head,
			   *kick_tail;		/* mu: sessions with work, each holding a reference */
	bool		wake_pending;	/* mu: the eventfd has been written since the last drain */
	bool		stop_asked;		/* mu */
	bool		stopped;		/* mu: the thread takes nothing more */
	int			evfd;
	int			ep;
	pthread_t	thread;
	bool		started;
	bool		heartbeat;		/* this one runs eio_tick */
	WsConn	   *live;			/* the thread's own */
};

static EvLoop loops[WS_MAX_THREADS];
static int	nloops;
static atomic_uint next_loop;	/* round-robin for sockets without a session */

static void conn_close(WsConn *c, uint16_t code);
static void conn_teardown(WsConn *c);

/* ---- the HTTP side ---- */

/* Whether a header's comma-separated value has token (case-insensitive). */
static bool
has_token(const char *value, const char *token)
{
	size_t		n = strlen(token);

	for (const char *p = value; p && *p;)
	{
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

/* Whether r asks for a WebSocket upgrade (RFC 6455 section 4.2.1). */
bool
ws_is_upgrade(Request *r)
{
	const char *upgrade = req_header(r, "Upgrade");
	const char *connection = req_header(r, "Connection");
	const char *key = req_header(r, "Sec-WebSocket-Key");
	const char *version = req_header(r, "Sec-WebSocket-Version");

	return upgrade && has_token(upgrade, "websocket") && connection &&
		has_token(connection, "upgrade") && key && strlen(key) == 24 && version &&
		strcmp(version, "13") == 0;
}

/* Sec-WebSocket-Accept for a key: base64(SHA1(key + GUID)). */
static bool
accept_key(const char *key, char out[29])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char		buf[64];
	int			n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);

	if (n <= 0 || (size_t) n >= sizeof(buf) ||
		!EVP_Digest(buf, (size_t) n, digest, &dlen, EVP_sha1(), NULL) || dlen != 20)
		return false;
	return EVP_EncodeBlock((unsigned char *) out, digest, 20) == 28;
}

static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
					   const char *extra_in, size_t extra_in_size, MHD_socket sock,
					   struct MHD_UpgradeResponseHandle *urh);

/* Answers 101 Switching Protocols; MHD then hands the socket to on_upgrade. */
enum MHD_Result
ws_answer_upgrade(Request *r)
{
	char		accept[29];
	struct MHD_Response *resp;
	enum MHD_Result res;

	if (!accept_key(req_header(r, "Sec-WebSocket-Key"), accept))
		return reply_error(r, 500, "PGRST000", "could not compute Sec-WebSocket-Accept", NULL,
						   NULL);
	resp = MHD_create_response_for_upgrade(on_upgrade, NULL);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	res = MHD_queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	r->status = 101;
	r->replied = true;
	return res;
}

/* Ends the TCP connection (ours) or hands the socket back to MHD (TLS), and frees c. */
static void
hang_up(WsConn *c)
{
	if (c->urh)
		MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
	else
	{
		shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
	}
	free(c->pre);
	free(c);
}

/* ---- wake-ups from other threads ---- */

/* The event thread that serves s's WebSockets. */
static EvLoop *
loop_of(const Session *s)
{
	return &loops[s->seq % (unsigned) nloops];
}

/* Wakes l's thread (once until it drains the eventfd).  Caller holds l->mu. */
static bool
need_wake_locked(EvLoop *l)
{
	bool		w = !l->wake_pending;

	l->wake_pending = true;
	return w;
}

/* Writes l's eventfd. */
static void
wake(EvLoop *l)
{
	uint64_t	one = 1;

	if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("modelmine-api: socket.io: eventfd");
}

/* Asks s's event thread to serve s: send what is queued, or close its sockets when s is closed. */
void
ws_kick(Session *s)
{
	EvLoop	   *l = loop_of(s);
	bool		w = false;

	pthread_mutex_lock(&l->mu);
	if (!s->kicked && !l->stopped)
	{
		s->kicked = true;
		eio_ref(s);
		s->kick_next = NULL;
		if (l->kick_tail)
			l->kick_tail->kick_next = s;
		else
			l->kick_head = s;
		l->kick_tail = s;
		w = need_wake_locked(l);
	}
	pthread_mutex_unlock(&l->mu);
	if (w)
		wake(l);
}

/* MHD hands over an upgraded socket (on the connection's thread): to the event thread with it. */
static void
on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
		   size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	const char *sid = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "sid");
	WsConn	   *c = calloc(1, sizeof(WsConn));
	int			one = 1;
	bool		w = false,
				refused = false;
	EvLoop	   *l;

	(void) cls;
	(void) con_cls;
	if (c == NULL)
	{
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	if (api_cfg.tls_cert)
	{
		c->fd = sock;			/* MHD's end of its socketpair: it forwards until we close */
		c->urh = urh;
	}
	else
	{
		/*
		 * Plain TCP: keep a duplicate of the socket and hand MHD's back at once, while this thread
		 * still holds the connection.  Closing it later from the event thread races MHD 0.9.75's
		 * cleanup (MHD_upgrade_action writes to the connection after marking it closed, and the
		 * daemon thread may free it in between: heap corruption under many closes at once; fixed
		 * in 0.9.76).  Now MHD frees its side when this thread ends and the socket lives on.
		 */
		c->fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		if (c->fd < 0)
		{
			perror("modelmine-api: socket.io: dup of an upgraded socket");
			free(c);
			return;
		}
	}
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	/* MHD turned Nagle back on for the upgrade; small frames must leave at once */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (extra_in_size > 0 && (c->pre = malloc(extra_in_size)) != NULL)
	{
		memcpy(c->pre, extra_in, extra_in_size);
		c->pre_len = extra_in_size;
	}
	if (sid && sid[0])
	{
		c->s = eio_session_find(sid);
		c->probing = true;
	}
	else if ((c->s = eio_session_new(EIO_WEBSOCKET)) != NULL)
	{
		char		open[256];

		eio_open_packet(c->s, open, sizeof(open));
		eio_send_text(c->s, open);
	}
	l = c->s ? loop_of(c->s) : &loops[atomic_fetch_add(&next_loop, 1) % (unsigned) nloops];
	c->loop = l;
	pthread_mutex_lock(&l->mu);
	if (l->stopped)
		refused = true;
	else
	{
		c->inbox_next = l->inbox;
		l->inbox = c;
		w = need_wake_locked(l);
	}
	pthread_mutex_unlock(&l->mu);
	if (w)
		wake(l);
	if (refused)				/* shutting down: no event thread to serve it */
	{
		if (c->s)
		{
			eio_close(c->s, NULL);
			eio_unref(c->s);
		}
		hang_up(c);
	}
}

/* ---- wslay callbacks (event thread) ---- */

/* Reads from the bytes MHD had already read, then from the socket. */
static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	WsConn	   *c = user;
	ssize_t		n;

	(void) flags;
	if (c->pre_off < c->pre_len)
	{
		n = (ssize_t) (c->pre_len - c->pre_off < len ? c->pre_len - c->pre_off : len);
		memcpy(buf, c->pre + c->pre_off, (size_t) n);
		c->pre_off += (size_t) n;
		return n;
	}
	n = recv(c->fd, buf, len, 0);
	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);	/* EOF or a reset */
	return -1;
}

/*
 * Writes to the socket without blocking.  wslay hands over a frame's header and its payload in
 * two calls, the header flagged WSLAY_MSG_MORE: the header is kept here and goes out with the
 * payload in one sendmsg, so a packet costs one system call and one TCP segment (two segments with
 * TCP_NODELAY would also wake the client twice).  Header bytes not sent yet stay here, ahead of
 * what follows.
 */
static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	WsConn	   *c = user;
	struct iovec iov[2] = {{c->hdr, c->hdr_len}, {(void *) data, len}};
	struct msghdr mh = {.msg_iov = iov + (c->hdr_len ? 0 : 1), .msg_iovlen = c->hdr_len ? 2 : 1};
	ssize_t		n;

	if ((flags & WSLAY_MSG_MORE) && c->hdr_len + len <= sizeof(c->hdr))
	{
		memcpy(c->hdr + c->hdr_len, data, len);
		c->hdr_len += len;
		return (ssize_t) len;
	}
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
	{
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
							  ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if ((size_t) n < c->hdr_len || ((size_t) n == c->hdr_len && len > 0))
	{
		/* only (part of) the header left: keep the rest, and wslay keeps the payload */
		memmove(c->hdr, c->hdr + n, c->hdr_len - (size_t) n);
		c->hdr_len -= (size_t) n;
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	n -= (ssize_t) c->hdr_len;
	c->hdr_len = 0;
	return n;
}

/* Queues one text frame. */
static void
send_text(WsConn *c, const char *text, size_t len)
{
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *) text, len};

	wslay_event_queue_msg(c->ctx, &m);
}

/* A probing socket's packets: "2probe", then "5". */
static void
on_probe_packet(WsConn *c, const char *p, size_t len)
{
	Session    *s = c->s;

	if (len == 6 && memcmp(p, "2probe", 6) == 0)
	{
		send_text(c, "3probe", 6);
		pthread_mutex_lock(&s->mu);
		s->upgrading = true;	/* a waiting GET answers noop: the client pauses polling */
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	else if (len == 1 && p[0] == '5')
	{
		bool		ok;

		pthread_mutex_lock(&s->mu);
		ok = !s->closed && s->transport == EIO_POLLING && s->probe == c;
		if (ok)
		{
			s->transport = EIO_WEBSOCKET;
			s->ws = c;
			s->probe = NULL;
			s->upgrading = false;
			pthread_cond_broadcast(&s->cv);	/* a GET still waiting answers noop */
		}
		pthread_mutex_unlock(&s->mu);
		c->probing = false;
		if (!ok)
			conn_close(c, 1000);
	}
	else
		conn_close(c, 1002);	/* not Engine.IO's upgrade: a protocol error */
}

/* A whole message from the client (wslay has joined fragments and unmasked it). */
static void
on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	WsConn	   *c = user;

	(void) ctx;
	if (arg->opcode != WSLAY_TEXT_FRAME || c->s == NULL || c->closing)
		return;					/* control frames are wslay's; binary attachments are unused */
	if (!eio_utf8_valid((const char *) arg->msg, arg->msg_length))
	{
		conn_close(c, 1007);	/* RFC 6455 8.1: a text frame must be UTF-8 */
		return;
	}
	if (c->probing)
		on_probe_packet(c, (const char *) arg->msg, arg->msg_length);
	else
		eio_on_packet(c->s, (const char *) arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks callbacks = {
	.recv_callback = recv_cb,
	.send_callback = send_cb,
	.on_msg_recv_callback = on_msg,
};

/* ---- the event thread ---- */

/*
 * Watches for writability only while wslay has something it could not send, and stops reading once
 * closing (what comes after a close is of no use, and level-triggered EPOLLIN would spin).
 */
static void
update_events(WsConn *c)
{
	uint32_t	want = (c->closing ? 0 : EPOLLIN) | (wslay_event_want_write(c->ctx) ? EPOLLOUT : 0);
	struct epoll_event ev = {.events = want, .data.ptr = c};

	if (want != c->events && epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/* Sends what wslay holds; false when the socket failed (then it is torn down). */
static bool
flush(WsConn *c)
{
	if (wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0)
	{
		conn_teardown(c);
		return false;
	}
	if (c->closing && !wslay_event_want_write(c->ctx))
	{
		conn_teardown(c);		/* the close frame is out */
		return false;
	}
	update_events(c);
	return true;
}

/* Moves the session's queue into wslay while the socket takes it. */
static void
pump(WsConn *c)
{
	for (;;)
	{
		EioItem    *items = NULL;
		size_t		room = wslay_event_get_queued_msg_count(c->ctx);

		room = room < WS_INFLIGHT ? WS_INFLIGHT - room : 0;
		if (c->s && !c->closing && !c->probing && room > 0)
		{
			pthread_mutex_lock(&c->s->mu);
			if (c->s->ws == c)
				items = eio_take_queue(c->s, (int) room);
			pthread_mutex_unlock(&c->s->mu);
		}
		for (EioItem *it = items; it;)
		{
			EioItem    *next = it->next;

			send_text(c, it->msg->text, it->msg->len);
			eio_msg_unref(it->msg);
			free(it);
			it = next;
		}
		if (!flush(c))
			return;
		if (items == NULL || wslay_event_want_write(c->ctx))
			return;				/* nothing more, or the socket is full: EPOLLOUT resumes */
	}
}

/* Reads what the socket has; frames go to on_msg.  hangup: epoll saw the peer go. */
static void
on_readable(WsConn *c, bool hangup)
{
	if (c->closing && hangup)
	{
		conn_teardown(c);		/* no one is left to read our close frame */
		return;
	}
	if (wslay_event_recv(c->ctx) != 0)
	{
		conn_teardown(c);		/* EOF, reset, or a protocol error */
		return;
	}
	if (!wslay_event_get_read_enabled(c->ctx) && !c->closing)
	{
		c->closing = true;		/* the client's close frame: wslay queued the answer */
		c->deadline = mm_now_s() + CLOSE_GRACE_S;
	}
	pump(c);
}

/* Starts closing from our side: a close frame, then hang up once it is sent (or after a grace). */
static void
conn_close(WsConn *c, uint16_t code)
{
	if (c->closing)
		return;
	c->closing = true;
	c->deadline = mm_now_s() + CLOSE_GRACE_S;
	wslay_event_queue_close(c->ctx, code, NULL, 0);
}

/* Takes a socket out of the event loop and hangs up; its session closes too unless a probe. */
static void
conn_teardown(WsConn *c)
{
	Session    *s = c->s;
	bool		was_transport = false;

	epoll_ctl(c->loop->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else if (c->loop->live == c)
		c->loop->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (s)
	{
		pthread_mutex_lock(&s->mu);
		if (s->ws == c)
		{
			s->ws = NULL;
			was_transport = true;
		}
		if (s->probe == c)
		{
			s->probe = NULL;
			s->upgrading = false;	/* the upgrade failed: the session stays on polling */
			pthread_cond_broadcast(&s->cv);
		}
		pthread_mutex_unlock(&s->mu);
		if (was_transport)
			eio_close(s, NULL);
		eio_unref(s);
	}
	wslay_event_context_free(c->ctx);
	hang_up(c);
}

/* Takes over a socket from the inbox: attach it to its session and send what is queued. */
static void
adopt(WsConn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	bool		ok = false;

	if (wslay_event_context_server_init(&c->ctx, &callbacks, c) != 0)
	{
		if (c->s)
		{
			eio_close(c->s, "out of memory for a WebSocket");
			eio_unref(c->s);
		}
		hang_up(c);
		return;
	}
	wslay_event_config_set_max_recv_msg_length(c->ctx, EIO_MAX_PAYLOAD);
	c->events = EPOLLIN;
	c->next = c->loop->live;
	if (c->loop->live)
		c->loop->live->prev = c;
	c->loop->live = c;
	if (epoll_ctl(c->loop->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
	{
		perror("modelmine-api: socket.io: epoll_ctl");
		conn_teardown(c);
		return;
	}
	if (c->s)
	{
		pthread_mutex_lock(&c->s->mu);
		if (c->s->closed)
			ok = false;
		else if (c->probing)
		{
			ok = c->s->transport == EIO_POLLING && c->s->probe == NULL;
			if (ok)
				c->s->probe = c;
		}
		else
		{
			ok = c->s->ws == NULL;
			if (ok)
				c->s->ws = c;
		}
		pthread_mutex_unlock(&c->s->mu);
	}
	if (!ok)
	{
		/* no such session (any more), already upgraded, or the gateway is full: try again later */
		conn_close(c, c->probing || c->s ? 1008 : 1013);
		flush(c);
		return;
	}
	c->deadline = c->probing ? mm_now_s() + EIO_UPGRADE_TIMEOUT_S : 0;
	if (c->pre_len > 0)
		on_readable(c, false);	/* frames that came with the request */
	else
		pump(c);
}

/* Serves one kicked session: send its queue, or close its sockets when it is closed. */
static void
serve(Session *s)
{
	WsConn	   *ws,
			   *probe;
	bool		closed;

	pthread_mutex_lock(&s->mu);
	ws = s->ws;
	probe = s->probe;
	closed = s->closed;
	pthread_mutex_unlock(&s->mu);
	if (closed)
	{
		uint16_t	code = eio_stopping() ? 1001 : 1000;	/* going away: reconnect elsewhere */

		if (ws)
		{
			conn_close(ws, code);
			flush(ws);
		}
		if (probe)
		{
			conn_close(probe, code);
			flush(probe);
		}
	}
	else if (ws)
		pump(ws);
}

/* Takes l's inbox and kick list, and serves them. */
static void
drain_inbox(EvLoop *l)
{
	WsConn	   *in;
	Session    *k;
	uint64_t	n;

	if (read(l->evfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		perror("modelmine-api: socket.io: eventfd");
	pthread_mutex_lock(&l->mu);
	in = l->inbox;
	l->inbox = NULL;
	k = l->kick_head;
	l->kick_head = l->kick_tail = NULL;
	for (Session *s = k; s; s = s->kick_next)
		s->kicked = false;
	l->wake_pending = false;
	pthread_mutex_unlock(&l->mu);
	while (in)
	{
		WsConn	   *next = in->inbox_next;

		adopt(in);
		in = next;
	}
	while (k)
	{
		Session    *next = k->kick_next;

		serve(k);
		eio_unref(k);
		k = next;
	}
}

/* Upgrade timeouts of l's probes, and close frames that never left. */
static void
check_timers(EvLoop *l, double now)
{
	WsConn	   *c = l->live;

	while (c)
	{
		WsConn	   *next = c->next;

		if (c->closing && now >= c->deadline)
			conn_teardown(c);
		else if (c->probing && !c->closing && c->deadline > 0 && now >= c->deadline)
		{
			conn_close(c, 1000);
			flush(c);
		}
		c = next;
	}
}

/* Closes l's sockets for the drain and stops taking work. */
static void
stop_all(EvLoop *l)
{
	drain_inbox(l);
	pthread_mutex_lock(&l->mu);
	l->stopped = true;
	pthread_mutex_unlock(&l->mu);
	drain_inbox(l);				/* whatever came in before stopped was set */
	while (l->live)
	{
		WsConn	   *c = l->live;

		conn_close(c, 1001);
		if (wslay_event_want_write(c->ctx))
			wslay_event_send(c->ctx);	/* one try: the gateway is going away */
		conn_teardown(c);
	}
}

/* An event thread: epoll over its eventfd and its upgraded sockets. */
static void *
ev_main(void *arg)
{
	EvLoop	   *l = arg;
	struct epoll_event evs[256];
	double		next_tick = mm_now_s() + TICK_MS / 1000.0;

	for (;;)
	{
		double		now = mm_now_s();
		int			timeout = next_tick > now ? (int) ((next_tick - now) * 1000) + 1 : 0;
		int			n = epoll_wait(l->ep, evs, 256, timeout);
		bool		stop;

		if (n < 0 && errno != EINTR)
		{
			perror("modelmine-api: socket.io: epoll_wait");
			n = 0;
		}
		for (int i = 0; i < n; i++)
		{
			WsConn	   *c = evs[i].data.ptr;

			if (c == NULL)
				continue;		/* the eventfd: below, every round */
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))	/* may tear c down */
				on_readable(c, (evs[i].events & (EPOLLERR | EPOLLHUP)) != 0);
			else if (evs[i].events & EPOLLOUT)
				pump(c);
		}
		pthread_mutex_lock(&l->mu);
		stop = l->stop_asked;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		drain_inbox(l);
		now = mm_now_s();
		if (now >= next_tick)
		{
			if (l->heartbeat)
				eio_tick(now);
			check_timers(l, now);
			next_tick = now + TICK_MS / 1000.0;
		}
	}
	stop_all(l);
	return NULL;
}

/* How many event threads: MODELMINE_WS_THREADS, else one per online CPU. */
static int
thread_count(void)
{
	const char *env = getenv("MODELMINE_WS_THREADS");
	long		n = env && env[0] ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);

	if (env && env[0] && (n < 1 || n > WS_MAX_THREADS))
		fprintf(stderr, "modelmine-api: socket.io: MODELMINE_WS_THREADS=%s is not 1 to %d; "
				"using %d\n", env, WS_MAX_THREADS, n < 1 ? 1 : WS_MAX_THREADS);
	return n < 1 ? 1 : n > WS_MAX_THREADS ? WS_MAX_THREADS : (int) n;
}

/* Creates the epoll sets and eventfds, and starts the event threads. */
int
ws_start(void)
{
	nloops = thread_count();
	for (int i = 0; i < nloops; i++)
	{
		EvLoop	   *l = &loops[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

		pthread_mutex_init(&l->mu, NULL);
		l->heartbeat = i == 0;
		l->ep = epoll_create1(EPOLL_CLOEXEC);
		l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (l->ep < 0 || l->evfd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &ev) != 0 ||
			pthread_create(&l->thread, NULL, ev_main, l) != 0)
		{
			perror("modelmine-api: socket.io: cannot start an event thread");
			return -1;
		}
		l->started = true;
	}
	return 0;
}

/* Closes every WebSocket (close frame 1001) and stops the event threads. */
void
ws_stop(void)
{
	for (int i = 0; i < nloops; i++)
	{
		EvLoop	   *l = &loops[i];

		if (!l->started)
			continue;
		pthread_mutex_lock(&l->mu);
		l->stop_asked = true;
		pthread_mutex_unlock(&l->mu);
		wake(l);
	}
	for (int i = 0; i < nloops; i++)
		if (loops[i].started)
		{
			pthread_join(loops[i].thread, NULL);
			loops[i].started = false;
		}
}
