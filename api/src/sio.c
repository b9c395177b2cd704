/*
 * sio.c — Socket.IO v5 over an Engine.IO session, namespace "/" only:
 *
 *   CONNECT     "40" or "40{"token":"..."}": no token makes an anonymous socket (broadcasts only);
 *               a token is checked by sio_authenticate (a database round trip) on one of the
 *               AUTH_THREADS token-check threads, so neither the event thread nor a polling request
 *               waits on the database; the answer is "40{"sid":...}" or "44{"message":...}".
 *               Another namespace gets "44/ns,{"message":"Invalid namespace"}".
 *   EVENT       from a browser: accepted and ignored; an ack id is answered "43<id>[]".
 *   DISCONNECT  "41" closes the session.
 *   sio_publish the LISTEN thread's events, built once as one shared packet "42["event",data]" and
 *               queued by reference to every socket that may see it.
 *
 * A packet is <type>[<attachments>-][<namespace>,][<ack id>][<JSON>] (socket.io-parser).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "eio.h"

#define AUTH_THREADS 4
#define MAX_NSP 128

typedef struct SioPacket
{
	char		type;			/* '0' CONNECT ... '6' BINARY_ACK */
	const char *nsp;			/* "/" when absent */
	size_t		nsp_len;
	long long	ack;			/* -1: none */
	const char *data;			/* JSON text, maybe empty */
	size_t		data_len;
} SioPacket;

typedef struct AuthJob
{
	Session    *s;				/* a reference */
	char	   *token;
	struct AuthJob *next;
} AuthJob;

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t auth_cv = PTHREAD_COND_INITIALIZER;
static AuthJob *auth_head,
		   *auth_tail;			/* auth_mu */
static bool auth_stop;			/* auth_mu */
static pthread_t auth_threads[AUTH_THREADS];
static int	nauth_threads;

/* Splits a Socket.IO packet into its parts; false when it is not one. */
static bool
sio_parse(const char *p, size_t len, SioPacket *out)
{
	size_t		i = 1;

	if (len < 1 || p[0] < '0' || p[0] > '6')
		return false;
	out->type = p[0];
	out->nsp = "/";
	out->nsp_len = 1;
	out->ack = -1;
	if (out->type == '5' || out->type == '6')	/* binary: the attachment count, then '-' */
	{
		while (i < len && isdigit((unsigned char) p[i]))
			i++;
		if (i == 1 || i >= len || p[i] != '-')
			return false;
		i++;
	}
	if (i < len && p[i] == '/')
	{
		size_t		start = i;

		while (i < len && p[i] != ',')
			i++;
		out->nsp = p + start;
		out->nsp_len = i - start;
		if (i < len)
			i++;				/* the ',' */
	}
	if (i < len && isdigit((unsigned char) p[i]))
	{
		size_t		start = i;

		out->ack = 0;
		while (i < len && isdigit((unsigned char) p[i]))
			out->ack = out->ack * 10 + (p[i++] - '0');
		if (i - start > 15)
			return false;		/* beyond what a JavaScript number holds exactly */
	}
	out->data = p + i;
	out->data_len = len - i;
	return true;
}

/* Whether a namespace is safe to echo back in a packet (printable ASCII, short). */
static bool
nsp_printable(const SioPacket *pk)
{
	if (pk->nsp_len > MAX_NSP)
		return false;
	for (size_t i = 0; i < pk->nsp_len; i++)
		if (pk->nsp[i] < 0x21 || pk->nsp[i] > 0x7e || pk->nsp[i] == ',')
			return false;
	return true;
}

/* "44" (with the namespace unless it is "/") and {"message": message}. */
static void
send_connect_error(Session *s, const SioPacket *pk, const char *message)
{
	json_t	   *j = json_pack("{s:s}", "message", message);
	char	   *text = json_dumps(j, JSON_COMPACT);
	char		buf[MAX_NSP + 512];

	json_decref(j);
	if (pk->nsp_len == 1)
		snprintf(buf, sizeof(buf), "44%s", text ? text : "{}");
	else
		snprintf(buf, sizeof(buf), "44%.*s,%s", (int) pk->nsp_len, pk->nsp, text ? text : "{}");
	free(text);
	eio_send_text(s, buf);
}

/* Marks s connected as who and queues "40{"sid":...}", in one step so no event overtakes it. */
static void
accept_connect(Session *s, const SioIdentity *who)
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
		eio_random_id(s->sio_id);
		snprintf(reply, sizeof(reply), "40{\"sid\":\"%s\"}", s->sio_id);
		if ((m = eio_msg_new(reply, strlen(reply))) != NULL)
		{
			r = eio_push_locked(s, m);
			eio_msg_unref(m);
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (r == PUSH_FULL)
		eio_close(s, "the client does not read: its outgoing queue is full");
}

/* A token-check thread: one CONNECT at a time, answered when the database has spoken. */
static void *
auth_main(void *arg)
{
	(void) arg;
	for (;;)
	{
		AuthJob    *job;
		SioIdentity who;
		char		reason[256] = "";
		bool		closed;

		pthread_mutex_lock(&auth_mu);
		while (auth_head == NULL && !auth_stop)
			pthread_cond_wait(&auth_cv, &auth_mu);
		job = auth_head;
		if (job)
		{
			auth_head = job->next;
			if (auth_head == NULL)
				auth_tail = NULL;
		}
		pthread_mutex_unlock(&auth_mu);
		if (job == NULL)
			return NULL;		/* stopping, nothing left */
		pthread_mutex_lock(&job->s->mu);
		closed = job->s->closed;
		pthread_mutex_unlock(&job->s->mu);
		if (!closed)			/* a session gone meanwhile costs no round trip */
		{
			if (sio_authenticate(job->token, &who, reason, sizeof(reason)))
				accept_connect(job->s, &who);
			else
			{
				SioPacket	root = {.nsp = "/", .nsp_len = 1};

				pthread_mutex_lock(&job->s->mu);
				job->s->sio_pending = false;
				pthread_mutex_unlock(&job->s->mu);
				send_connect_error(job->s, &root, reason[0] ? reason : "refused");
			}
		}
		eio_unref(job->s);
		free(job->token);
		free(job);
	}
}

/* Hands a CONNECT's token to the token-check threads. */
static void
queue_auth(Session *s, const char *token)
{
	AuthJob    *job = calloc(1, sizeof(AuthJob));

	if (job == NULL || (job->token = strdup(token)) == NULL)
	{
		free(job);
		eio_close(s, "out of memory for a CONNECT");
		return;
	}
	eio_ref(s);
	job->s = s;
	pthread_mutex_lock(&auth_mu);
	if (auth_tail)
		auth_tail->next = job;
	else
		auth_head = job;
	auth_tail = job;
	pthread_cond_signal(&auth_cv);
	pthread_mutex_unlock(&auth_mu);
}

/* CONNECT to "/": anonymous at once, or with a token through the token-check threads. */
static void
on_connect(Session *s, const SioPacket *pk)
{
	json_t	   *auth = NULL;
	const char *token = NULL;
	bool		busy;
	SioIdentity anon = {0, false};

	if (pk->data_len > 0)
	{
		auth = json_loadb(pk->data, pk->data_len, 0, NULL);
		if (!json_is_object(auth))
		{
			json_decref(auth);
			eio_close(s, "parse error: CONNECT payload is not a JSON object");
			return;
		}
		token = json_string_value(json_object_get(auth, "token"));
	}
	pthread_mutex_lock(&s->mu);
	busy = s->sio_connected || s->sio_pending;
	if (!busy && token && token[0])
		s->sio_pending = true;
	pthread_mutex_unlock(&s->mu);
	if (busy)
		;						/* a repeated CONNECT: the first one stands */
	else if (token && token[0])
		queue_auth(s, token);
	else
		accept_connect(s, &anon);
	json_decref(auth);
}

/* One Socket.IO packet from the client (the payload of an Engine.IO message). */
void
sio_on_message(Session *s, const char *p, size_t len)
{
	SioPacket	pk;
	bool		root;

	if (!sio_parse(p, len, &pk) || !nsp_printable(&pk))
	{
		eio_close(s, "parse error: not a Socket.IO packet");
		return;
	}
	root = pk.nsp_len == 1 && pk.nsp[0] == '/';
	switch (pk.type)
	{
		case '0':
			if (root)
				on_connect(s, &pk);
			else
				send_connect_error(s, &pk, "Invalid namespace");
			break;
		case '1':				/* the client leaves: nothing else runs on this session */
			if (root)
				eio_close(s, NULL);
			break;
		case '2':
			{
				json_t	   *args = json_loadb(pk.data, pk.data_len, 0, NULL);
				bool		connected;

				if (!json_is_array(args) || !json_is_string(json_array_get(args, 0)))
				{
					json_decref(args);
					eio_close(s, "parse error: EVENT payload is not [\"name\", ...]");
					return;
				}
				json_decref(args);
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
			}
		default:				/* ACK, CONNECT_ERROR, binary packets: nothing to do */
			break;
	}
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

/* ---- start and stop ---- */

/* Starts the token-check threads. */
int
sio_start(void)
{
	for (nauth_threads = 0; nauth_threads < AUTH_THREADS; nauth_threads++)
		if (pthread_create(&auth_threads[nauth_threads], NULL, auth_main, NULL) != 0)
		{
			perror("modelmine-api: socket.io: token-check thread");
			return -1;
		}
	return 0;
}

/* Stops them once the checks under way are answered; drops CONNECTs not started. */
void
sio_stop(void)
{
	AuthJob    *left;

	pthread_mutex_lock(&auth_mu);
	auth_stop = true;
	left = auth_head;
	auth_head = auth_tail = NULL;
	pthread_cond_broadcast(&auth_cv);
	pthread_mutex_unlock(&auth_mu);
	while (left)
	{
		AuthJob    *next = left->next;

		eio_unref(left->s);
		free(left->token);
		free(left);
		left = next;
	}
	for (int i = 0; i < nauth_threads; i++)
		pthread_join(auth_threads[i], NULL);
	nauth_threads = 0;
}
