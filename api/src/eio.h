/*
 * eio.h — private to eio.c, ws.c and sio.c: the Engine.IO session, its outgoing queue, and the
 * calls between the three files.
 *
 *   eio.c  the session table, packets in and out, heartbeats, the HTTP side (handshake, polling)
 *   ws.c   WebSocket: the 101 answer, the one event thread serving every upgraded socket
 *   sio.c  Socket.IO on top: CONNECT (and its token check on worker threads), events, publish
 *
 * Locking.  Three kinds of lock, always taken in this order, never the other way round:
 *   tab_mu (eio.c)  the session table: the hash by sid, the list of all sessions, the count
 *   Session.mu      everything in a session marked "mu" below
 *   ev_mu (ws.c)    the event thread's inbox: new sockets, sessions with work (Session.kicked)
 * A WsConn is touched only by the event thread; other threads see Session.ws and Session.probe
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

	bool		kicked;			/* under ev_mu: on the event thread's list of work */
	struct Session *kick_next;	/* under ev_mu */
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

/* ---- eio.c ---- */
EioMsg	   *eio_msg_new(const char *text, size_t len);
void		eio_msg_unref(EioMsg *m);
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
int			sio_start(void);
void		sio_stop(void);
void		sio_on_message(Session *s, const char *p, size_t len);

#endif							/* MODELMINE_EIO_H */
