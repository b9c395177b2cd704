/*
 * eio.h — private to the Socket.IO server's files: the Engine.IO session, its outgoing queue, and
 * the calls between them.
 *
 *   eio.c        the session table, the outgoing queue, packets in, broadcasts, the heartbeat
 *   eiohttp.c    the HTTP side at /socket.io/: handshake, long-polling GET and POST, the bundle
 *   eiopacket.c  parsing: Engine.IO packets and payloads, Socket.IO packets (eiopacket.h)
 *   ws.c         WebSocket: the 101 answer, the event threads serving every upgraded socket
 *   sio.c        Socket.IO on top: CONNECT, events, publish, and what a token check decides
 *   sioauth.c    the token-check threads: a CONNECT's token, and each token again every interval
 *
 * Locking.  Three kinds of lock, always taken in this order, never the other way round:
 *   tab_mu (eio.c)      the session table: the hash by sid, the list of all sessions, the count
 *   Session.mu          everything in a session marked "mu" below
 *   EvLoop.mu (ws.c)    one event thread's inbox: new sockets, sessions with work (Session.kicked);
 *                       a session always goes to the same event thread, so only ever one of these
 * and a fourth taken with none of those held:
 *   auth_mu (sioauth.c) the token-check threads' queues
 * A WsConn is touched only by its event thread; other threads see Session.ws and Session.probe
 * only to know whether a WebSocket is attached, and ask the event thread to act (ws_kick).
 *
 * Lifetime.  A session is reference counted: the table holds one reference while the session is
 * open, and so does every thread working on it (a polling request, a WebSocket, a pending token
 * check, a kick).  eio_close takes it out of the table; the last eio_unref frees it.
 */
#ifndef MODELMINE_EIO_H
#define MODELMINE_EIO_H

#include <pthread.h>
#include <stdatomic.h>

#include "api.h"

#define EIO_PING_INTERVAL_MS 25000
#define EIO_PING_TIMEOUT_MS 20000
#define EIO_MAX_PAYLOAD 1000000		/* bytes in one POST body or one WebSocket message */
#define EIO_CONNECT_TIMEOUT_S 45.0	/* a session that has not CONNECTed by then is closed */
#define EIO_UPGRADE_TIMEOUT_S 10.0	/* a probe that has not sent "5" by then is closed */
#define EIO_QUEUE_MAX_PACKETS 1000	/* a client that lets more pile up is disconnected */
#define EIO_QUEUE_MAX_BYTES (1024 * 1024)
#define EIO_ID_LEN 20				/* 15 random bytes in base64url */

/* One outgoing Engine.IO packet as text ("42[...]"), shared by every queue it is in. */
typedef struct EioMsg
{
	atomic_int	refs;
	size_t		len;
	char		text[];			/* NUL-terminated */
} EioMsg;

typedef struct EioItem
{
	EioMsg	   *msg;
	struct EioItem *next;
} EioItem;

typedef enum EioTransport
{
	EIO_POLLING,
	EIO_WEBSOCKET
} EioTransport;

typedef struct WsConn WsConn;

typedef struct Session
{
	atomic_int	refs;
	char		sid[EIO_ID_LEN + 1];
	unsigned	seq;			/* creation number: picks the session's event thread (ws.c) */
	pthread_mutex_t mu;
	pthread_cond_t cv;			/* a waiting polling GET sleeps here */

	/* Engine.IO, under mu */
	EioTransport transport;
	bool		closed;
	bool		upgrading;		/* "3probe" sent: a waiting GET answers noop, the client pauses */
	bool		get_active;		/* a polling GET is in progress */
	bool		post_active;
	EioItem    *qhead,
			   *qtail;			/* packets not yet sent */
	int			qcount;
	size_t		qbytes;
	double		next_ping;		/* mm_now_s() when the next ping is due */
	double		pong_deadline;	/* 0, or when a ping sent is unanswered by then */
	double		connect_deadline;	/* 0 once CONNECTed */
	WsConn	   *ws;				/* the WebSocket carrying it (set by the event thread) */
	WsConn	   *probe;			/* a WebSocket probing for an upgrade (likewise) */

	/* Socket.IO, under mu */
	bool		sio_connected;
	bool		sio_pending;	/* a CONNECT's token is being checked */
	char		sio_id[EIO_ID_LEN + 1];
	SioIdentity who;
	char	   *sio_token;		/* the token it CONNECTed with (NULL: anonymous), checked again */
	unsigned	sio_gen;		/* counts CONNECTs: a late check of an older one changes nothing */
	double		recheck_at;		/* when its token is checked again; 0: never, or under way */

	bool		kicked;			/* under EvLoop.mu: on its event thread's list of work */
	struct Session *kick_next;	/* under EvLoop.mu */
	struct Session *hnext,
			   *prev,
			   *next;			/* under tab_mu: hash chain, list of all sessions */
} Session;

typedef enum PushResult
{
	PUSH_OK,
	PUSH_CLOSED,				/* the session is closed: nothing queued */
	PUSH_FULL					/* the queue is full: the caller closes the session, unlocked */
} PushResult;

/* What a token check says. */
typedef enum SioVerdict
{
	SIO_VERIFIED,
	SIO_REFUSED,				/* the token does not verify (revoked, expired, forged) */
	SIO_UNAVAILABLE				/* the database could not say: keep what is known, ask later */
} SioVerdict;

/* ---- eio.c ---- */
EioMsg	   *eio_msg_new(const char *text, size_t len);
void		eio_msg_unref(EioMsg *m);
void		eio_free_items(EioItem *it);
void		eio_random_id(char out[EIO_ID_LEN + 1]);
Session    *eio_session_new(EioTransport transport);
Session    *eio_session_find(const char *sid);
void		eio_open_packet(Session *s, char *out, size_t len);
void		eio_ref(Session *s);
void		eio_unref(Session *s);
void		eio_close(Session *s, const char *why);
PushResult	eio_push_locked(Session *s, EioMsg *m);
bool		eio_send(Session *s, EioMsg *m);
bool		eio_send_text(Session *s, const char *text);
void		eio_on_packet(Session *s, const char *p, size_t len);
EioItem    *eio_take_queue(Session *s, int max);
void		eio_broadcast(EioMsg *m, bool (*want) (Session *s, void *arg), void *arg);
void		eio_tick(double now);
bool		eio_stopping(void);

/* ---- ws.c ---- */
int			ws_start(void);
void		ws_stop(void);
void		ws_kick(Session *s);
bool		ws_is_upgrade(Request *r);
enum MHD_Result ws_answer_upgrade(Request *r);

/* ---- sio.c ---- */
void		sio_on_message(Session *s, const char *p, size_t len);
void		sio_accept(Session *s, const SioIdentity *who, char *token);
void		sio_refuse(Session *s, const char *reason);
void		sio_reverified(Session *s, unsigned gen, SioVerdict v, const SioIdentity *who,
						   const char *reason);

/* ---- sioauth.c ---- */
int			sio_start(void);
void		sio_stop(void);
void		sio_check_connect(Session *s, const char *token);
void		sio_recheck(Session *s);
double		sio_recheck_at(double now, bool first);
SioVerdict	sio_verify(const char *token, SioIdentity *out, char *reason, size_t reasonlen);

#endif							/* MODELMINE_EIO_H */
