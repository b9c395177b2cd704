/*
 * sio.c — Socket.IO v5 over an Engine.IO session, namespace "/" only:
 *
 *   CONNECT     "40" or "40{"token":"..."}": no token makes an anonymous socket (broadcasts only);
 *               a token is checked on the token-check threads (sioauth.c), so neither an event
 *               thread nor a polling request waits on the database; the answer is "40{"sid":...}"
 *               (sio_accept) or "44{"message":...}" (sio_refuse).  Another namespace gets
 *               "44/ns,{"message":"Invalid namespace"}".
 *   re-checks   the token of a connected socket is checked again every interval (sioauth.c); one
 *               that no longer verifies (logged out, expired) gets DISCONNECT "41" and no more
 *               events, and a changed role changes what it sees (sio_reverified).
 *   EVENT       from a browser: accepted and ignored; an ack id is answered "43<id>[]".
 *   DISCONNECT  "41" closes the session.
 *   sio_publish the LISTEN thread's events, built once as one shared packet "42["event",data]" and
 *               queued by reference to every socket that may see it.
 *
 * Packets are parsed by eiopacket.c; one that socket.io-parser would refuse closes the session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "eio.h"
#include "eiopacket.h"
#include "modelmine/common.h"

/* "44" (with the namespace unless it is "/") and {"message": message}. */
static void
send_connect_error(Session *s, const char *nsp, size_t nsp_len, const char *message)
{
	json_t	   *j = json_pack("{s:s}", "message", message);
	char	   *text = json_dumps(j, JSON_COMPACT);
	char		buf[SIO_MAX_NSP + 512];

	json_decref(j);
	if (nsp_len == 1)
		snprintf(buf, sizeof(buf), "44%s", text ? text : "{}");
	else
		snprintf(buf, sizeof(buf), "44%.*s,%s", (int) nsp_len, nsp, text ? text : "{}");
	free(text);
	eio_send_text(s, buf);
}

/*
 * Marks s connected as who and queues "40{"sid":...}", in one step so no event overtakes it.
 * token (taken; NULL: anonymous) is kept for the re-checks.
 */
void
sio_accept(Session *s, const SioIdentity *who, char *token)
{
	char		reply[64];
	EioMsg	   *m;
	PushResult	r = PUSH_CLOSED;

	pthread_mutex_lock(&s->mu);
	s->sio_pending = false;
	if (!s->closed)
	{
		s->sio_connected = true;
		s->who = *who;
		s->connect_deadline = 0;
		s->sio_gen++;
		free(s->sio_token);
		s->sio_token = token;
		token = NULL;
		s->recheck_at = s->sio_token ? sio_recheck_at(mm_now_s(), true) : 0;
		eio_random_id(s->sio_id);
		snprintf(reply, sizeof(reply), "40{\"sid\":\"%s\"}", s->sio_id);
		if ((m = eio_msg_new(reply, strlen(reply))) != NULL)
		{
			r = eio_push_locked(s, m);
			eio_msg_unref(m);
		}
	}
	pthread_mutex_unlock(&s->mu);
	free(token);
	if (r == PUSH_FULL)
		eio_close(s, "the client does not read: its outgoing queue is full");
}

/* Answers a CONNECT whose token was refused: CONNECT_ERROR, and the session may CONNECT again. */
void
sio_refuse(Session *s, const char *reason)
{
	pthread_mutex_lock(&s->mu);
	s->sio_pending = false;
	pthread_mutex_unlock(&s->mu);
	send_connect_error(s, "/", 1, reason);
}

/*
 * What a re-check of the token s CONNECTed with (CONNECT number gen) found.  Verified: the role
 * may have changed, so the admin flag is taken again.  Refused: DISCONNECT "41" (the client does
 * not reconnect by itself: its user has to sign in again) and, from the same moment, no event;
 * the Engine.IO session stays for a new CONNECT, and is closed if none comes within 45 s.  The
 * database unavailable: what is known stands until the next check.
 */
void
sio_reverified(Session *s, unsigned gen, SioVerdict v, const SioIdentity *who,
			   const char *reason)
{
	PushResult	r = PUSH_CLOSED;
	bool		role_changed = false,
				revoked = false;
	EioMsg	   *m;

	pthread_mutex_lock(&s->mu);
	if (s->closed || !s->sio_connected || s->sio_gen != gen)
		;						/* gone, or CONNECTed again since: that CONNECT's check decides */
	else if (v == SIO_UNAVAILABLE ||
			 (v == SIO_VERIFIED && who->user_id == s->who.user_id))
	{
		if (v == SIO_VERIFIED)
		{
			role_changed = s->who.admin != who->admin;
			s->who.admin = who->admin;
		}
		s->recheck_at = sio_recheck_at(mm_now_s(), false);
	}
	else
	{
		revoked = true;
		s->sio_connected = false;
		s->who = (SioIdentity) {0, false};
		free(s->sio_token);
		s->sio_token = NULL;
		s->recheck_at = 0;
		s->connect_deadline = mm_now_s() + EIO_CONNECT_TIMEOUT_S;
		if ((m = eio_msg_new("41", 2)) != NULL)
		{
			r = eio_push_locked(s, m);
			eio_msg_unref(m);
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (revoked)
		fprintf(stderr, "modelmine-api: socket.io: session %s: its token no longer verifies (%s); "
				"sent DISCONNECT\n", s->sid, reason && reason[0] ? reason : "refused");
	if (role_changed)
		fprintf(stderr, "modelmine-api: socket.io: session %s: its user's role changed; it now "
				"sees %s\n", s->sid, who->admin ? "every user's events (admin)" : "its own events");
	if (r == PUSH_FULL)
		eio_close(s, "the client does not read: its outgoing queue is full");
}

/* CONNECT to "/": anonymous at once, or with a token through the token-check threads. */
static void
on_connect(Session *s, const SioPacket *pk)
{
	const char *token = sio_connect_token(pk);
	bool		busy;
	SioIdentity anon = {0, false};

	pthread_mutex_lock(&s->mu);
	busy = s->sio_connected || s->sio_pending;
	if (!busy && token)
		s->sio_pending = true;
	pthread_mutex_unlock(&s->mu);
	if (busy)
		;						/* a repeated CONNECT: the first one stands */
	else if (token)
		sio_check_connect(s, token);
	else
		sio_accept(s, &anon, NULL);
}

/* One Socket.IO packet from the client (the payload of an Engine.IO message). */
void
sio_on_message(Session *s, const char *p, size_t len)
{
	SioPacket	pk;
	const char *why = sio_packet_parse(p, len, &pk);
	bool		root,
				connected;

	if (why)
	{
		eio_close(s, why);
		return;
	}
	root = sio_packet_root(&pk);
	switch (pk.type)
	{
		case SIO_CONNECT:
			if (root)
				on_connect(s, &pk);
			else
				send_connect_error(s, pk.nsp, pk.nsp_len, "Invalid namespace");
			break;
		case SIO_DISCONNECT:	/* the client leaves: nothing else runs on this session */
			if (root)
				eio_close(s, NULL);
			break;
		case SIO_EVENT:
			pthread_mutex_lock(&s->mu);
			connected = s->sio_connected;
			pthread_mutex_unlock(&s->mu);
			if (root && connected && pk.ack >= 0)
			{
				char		ack[48];

				snprintf(ack, sizeof(ack), "43%lld[]", pk.ack);
				eio_send_text(s, ack);
			}
			break;
		case SIO_ACK:			/* the server asks for no acks */
		case SIO_CONNECT_ERROR:	/* the server's to send */
		case SIO_BINARY_EVENT:	/* attachments are not used here */
		case SIO_BINARY_ACK:
			break;
	}
	sio_packet_free(&pk);
}

/* ---- publishing ---- */

/* Whether a session's socket may see an event for owner (0: everyone). Called with s->mu held. */
static bool
may_see(Session *s, void *arg)
{
	int64_t		owner = *(int64_t *) arg;

	return s->sio_connected && !s->closed &&
		(owner == 0 || s->who.user_id == owner || s->who.admin);
}

/* Broadcast an event: to everyone (owner 0), or to one user's sockets and admins' sockets. */
void
sio_publish(const char *event, const char *json_data, int64_t owner)
{
	json_t	   *name = json_string(event ? event : "");
	char	   *name_text = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
	char	   *data_text = NULL;
	json_t	   *data;
	char	   *packet;
	size_t		len;
	EioMsg	   *m;

	json_decref(name);
	if (eio_session_count() == 0 || name_text == NULL)
	{
		free(name_text);
		return;
	}
	/* a payload that is not JSON would make every client drop its connection: send a string */
	if (json_data == NULL)
		data_text = strdup("null");
	else if ((data = json_loads(json_data, JSON_DECODE_ANY, NULL)) != NULL)
		json_decref(data);		/* valid: sent as it came */
	else if ((data = json_string(json_data)) != NULL)
	{
		data_text = json_dumps(data, JSON_ENCODE_ANY);
		json_decref(data);
	}
	else
	{
		fprintf(stderr, "modelmine-api: socket.io: event %s dropped: its payload is not UTF-8\n",
				event);
		free(name_text);
		return;
	}
	len = strlen(name_text) + strlen(data_text ? data_text : json_data) + 8;
	packet = malloc(len);
	if (packet)
	{
		snprintf(packet, len, "42[%s,%s]", name_text, data_text ? data_text : json_data);
		if ((m = eio_msg_new(packet, strlen(packet))) != NULL)
		{
			eio_broadcast(m, may_see, &owner);
			eio_msg_unref(m);
		}
	}
	free(packet);
	free(name_text);
	free(data_text);
}
