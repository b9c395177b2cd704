/*
 * http.c — the libmicrohttpd daemon: reads a request and its body, dispatches it, writes the access
 * log line when it completes.
 *
 * One thread per connection (MHD_USE_THREAD_PER_CONNECTION): a handler may block on the pool, on a
 * long-poll claim or on an Engine.IO poll without stalling other clients.  Connections idle or slow
 * for --timeout seconds are closed, and so are those whose headers take longer (slowloris, below);
 * at most --max-connections are open.  A body larger than --max-body is refused with 413 as soon as
 * its Content-Length says so; a chunked one is read (and dropped) to its end to answer 413, or the
 * connection is closed once it runs past twice the limit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "modelmine/common.h"

#define THREAD_STACK (256 * 1024)	/* per connection thread: handlers keep little on the stack */

static struct MHD_Daemon *daemon_ = NULL;
static atomic_int active = 0;
static char *tls_cert_pem = NULL;
static char *tls_key_pem = NULL;

/*
 * The header deadline (slowloris): libmicrohttpd's --timeout closes only idle connections, so a client
 * sending a header byte now and then would hold its connection (and its thread) for ever.  Each
 * connection is watched while it waits for a request's headers (the first, and each next one on a
 * keep-alive connection); a watchdog shuts down those that took longer than --timeout, and
 * libmicrohttpd then closes them.  A connection upgraded to a WebSocket is never watched again.
 */
typedef struct Watch
{
	struct Watch *next,
			   *prev;
	MHD_socket	fd;
	double		since;
	bool		done;			/* headers complete, or shut down */
} Watch;

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static Watch *watches = NULL;
static pthread_t watchdog;
static atomic_bool watchdog_stop = false;

/* MHD's connection notifier: a new connection is watched until its headers are in; a closed one is not. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	Watch	   *w = *socket_context;

	(void) cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (ci == NULL || (w = calloc(1, sizeof(Watch))) == NULL)
			return;
		w->fd = ci->connect_fd;
		w->since = mm_now_s();
		pthread_mutex_lock(&watch_mu);
		w->next = watches;
		if (watches)
			watches->prev = w;
		watches = w;
		pthread_mutex_unlock(&watch_mu);
		*socket_context = w;
	}
	else if (w)
	{
		pthread_mutex_lock(&watch_mu);
		if (w->prev)
			w->prev->next = w->next;
		else
			watches = w->next;
		if (w->next)
			w->next->prev = w->prev;
		pthread_mutex_unlock(&watch_mu);
		free(w);
		*socket_context = NULL;
	}
}

/* A request's headers are complete (done), or it ended and the next one's are awaited (!done). */
static void
headers_done(struct MHD_Connection *conn, bool done)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	Watch	   *w = ci ? ci->socket_context : NULL;

	if (w)
	{
		pthread_mutex_lock(&watch_mu);
		w->done = done;
		w->since = mm_now_s();
		pthread_mutex_unlock(&watch_mu);
	}
}

/* The watchdog thread: every 250 ms, shuts down connections past the header deadline. */
static void *
watchdog_main(void *arg)
{
	(void) arg;
	while (!atomic_load(&watchdog_stop))
	{
		double		now = mm_now_s();

		pthread_mutex_lock(&watch_mu);
		for (Watch *w = watches; w; w = w->next)
			if (!w->done && now - w->since > api_cfg.connection_timeout_s)
			{
				shutdown(w->fd, SHUT_RDWR);
				w->done = true;
			}
		pthread_mutex_unlock(&watch_mu);
		usleep(250000);
	}
	return NULL;
}

/* A request header by name (case-insensitive), or NULL. */
const char *
req_header(Request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* A query-string argument, decoded, or NULL. */
const char *
req_query(Request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* GET or HEAD: run read-only. */
bool
req_is_read(Request *r)
{
	return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

/* Requests being handled now (for the drain). */
int
http_active_requests(void)
{
	return atomic_load(&active);
}

/* The client's address as text. */
static void
client_ip(struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	snprintf(out, len, "?");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *) ci->client_addr)->sin_addr, out, (socklen_t) len);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) ci->client_addr)->sin6_addr, out,
				  (socklen_t) len);
}

/*
 * Behind a proxy (--forwarded-for): the client is the last address the proxy appended to
 * X-Forwarded-For (earlier ones are the client's own claims); without the header, the peer stays.
 */
static void
forwarded_ip(struct MHD_Connection *conn, char *out, size_t len)
{
	const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	const char *last;
	size_t		n;

	if (xff == NULL || *xff == '\0')
		return;
	last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	while (*last == ' ')
		last++;
	n = strcspn(last, " ");
	if (n == 0 || n >= len)
		return;
	memcpy(out, last, n);
	out[n] = '\0';
}

/* CORS preflight, as PostgREST answers it. */
static enum MHD_Result
preflight(Request *r)
{
	const char *asked = req_header(r, "Access-Control-Request-Headers");
	char		allow[1024];
	ReplyHeader h[] = {
		{"Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"},
		{"Access-Control-Allow-Headers", allow},
		{"Access-Control-Max-Age", "86400"},
	};

	snprintf(allow, sizeof(allow), "Authorization%s%s", asked && *asked ? ", " : "", asked ? asked : "");
	return reply(r, 200, NULL, "", 0, h, 3);
}

/* Chooses the handler for a complete request. */
static enum MHD_Result
dispatch(Request *r)
{
	bool		handled = false;
	enum MHD_Result res;

	if (strcmp(r->method, "OPTIONS") == 0)
	{
		ReplyHeader allow = {"Allow", "GET, HEAD, POST, OPTIONS"};

		return req_header(r, "Origin") ? preflight(r) : reply(r, 204, NULL, NULL, 0, &allow, 1);
	}
	if (strncmp(r->path, "/socket.io/", 11) == 0 || strcmp(r->path, "/socket.io") == 0)
		return eio_handle(r);
	if (strcmp(r->path, "/health") == 0 && req_is_read(r))
		return health_handle(r);
	if (strcmp(r->path, "/openapi.json") == 0 && req_is_read(r))
		return openapi_handle(r);
	/* signing up, in and out (each login a bcrypt in the database): limited per address; reads are not */
	if (strcmp(r->method, "POST") == 0 &&
		(strncmp(r->path, "/auth/", 6) == 0 || strcmp(r->path, "/rpc/signup") == 0 ||
		 strcmp(r->path, "/rpc/login") == 0))
	{
		int			retry_s = 0;

		if (!ratelimit_take(r->ip, &retry_s))
		{
			char		retry[16];
			ReplyHeader h = {"Retry-After", retry};

			snprintf(retry, sizeof(retry), "%d", retry_s);
			return reply_error_h(r, 429, "PGRST429", "Too many requests", NULL,
								 "Sign-in attempts from this address are limited (--auth-rate); "
								 "retry after the time in Retry-After.", &h, 1);
		}
	}
	if (strncmp(r->path, "/rpc/", 5) == 0)
		return rpc_handle(r, r->path + 5);
	res = routes_handle(r, &handled);
	if (handled)
		return res;
	res = static_handle(r, &handled);
	if (handled)
		return res;
	return reply_error(r, 404, "PGRST125", "Not found", NULL,
					   "See /openapi.json for the routes this server has.");
}

/* MHD's access handler: called for the headers, for each piece of the body, and once at the end. */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	Request    *r = *con_cls;

	(void) cls;
	(void) version;
	if (r == NULL)
	{
		const char *cl;

		headers_done(conn, true);
		r = calloc(1, sizeof(Request));
		if (r == NULL)
			return MHD_NO;
		r->conn = conn;
		r->method = method;
		r->path = url;
		r->started = mm_now_s();
		r->role = "-";
		client_ip(conn, r->ip, sizeof(r->ip));
		if (api_cfg.forwarded_for)
			forwarded_ip(conn, r->ip, sizeof(r->ip));
		*con_cls = r;
		atomic_fetch_add(&active, 1);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > api_cfg.max_body)
		{
			r->body_too_large = true;
			return reply_error(r, 413, "PGRST413", "Payload too large", NULL,
							   "Send a body of at most --max-body bytes.");
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		size_t		n = *upload_data_size;

		*upload_data_size = 0;
		if (r->body_too_large)
		{
			/*
			 * discard the rest so the 413 can be sent at the end (libmicrohttpd 0.9.75 cannot answer
			 * in the middle of a body), but not without bound: past twice the limit, close
			 */
			r->discarded += n;
			return r->discarded > api_cfg.max_body ? MHD_NO : MHD_YES;
		}
		if (r->body_len + n > api_cfg.max_body)
		{
			r->body_too_large = true;
			free(r->body);
			r->body = NULL;
			r->body_len = 0;
			return MHD_YES;
		}
		{
			char	   *b = realloc(r->body, r->body_len + n + 1);

			if (b == NULL)
				return MHD_NO;
			memcpy(b + r->body_len, upload_data, n);
			r->body = b;
			r->body_len += n;
			r->body[r->body_len] = '\0';
		}
		return MHD_YES;
	}
	if (r->replied)
		return MHD_YES;
	if (r->body_too_large)
		return reply_error(r, 413, "PGRST413", "Payload too large", NULL,
						   "Send a body of at most --max-body bytes.");
	return dispatch(r);
}

/* One access log line per request: time, client, method, path, status, milliseconds, role. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	Request    *r = *con_cls;

	(void) cls;
	if (r == NULL)
		return;
	if (api_cfg.access_log)
	{
		char		when[32];
		time_t		now = time(NULL);
		struct tm	tm;

		gmtime_r(&now, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stdout, "%s %s %s %s %d %.1fms %s%s\n", when, r->ip, r->method, r->path,
				r->status ? r->status : 0, (mm_now_s() - r->started) * 1000.0, r->role,
				toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
		fflush(stdout);
	}
	{
		const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");

		/* a keep-alive connection waits for its next request's headers: watched again */
		if (up == NULL || strcasecmp(up, "websocket") != 0)
			headers_done(conn, false);
	}
	free(r->body);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&active, 1);
}

/* Reads a whole file (for the TLS PEMs), or NULL. */
static char *
slurp(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	long		n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
		(buf = malloc((size_t) n + 1)) != NULL)
	{
		if (fread(buf, 1, (size_t) n, f) != (size_t) n)
		{
			free(buf);
			buf = NULL;
		}
		else
			buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

/* MHD's own errors, on one line each. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void) cls;
	fprintf(stderr, "modelmine-api: http: ");
	vfprintf(stderr, fmt, ap);
}

/* Starts serving on --listen; 0, or -1 with the reason printed. */
int
http_start(void)
{
	struct sockaddr_storage ss;
	socklen_t	sslen;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_USE_POLL;
	struct MHD_OptionItem opts[16];
	int			n = 0;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, api_cfg.listen_host, &((struct sockaddr_in *) &ss)->sin_addr) == 1)
	{
		((struct sockaddr_in *) &ss)->sin_family = AF_INET;
		((struct sockaddr_in *) &ss)->sin_port = htons((uint16_t) api_cfg.listen_port);
		sslen = sizeof(struct sockaddr_in);
	}
	else if (inet_pton(AF_INET6, api_cfg.listen_host, &((struct sockaddr_in6 *) &ss)->sin6_addr) == 1)
	{
		((struct sockaddr_in6 *) &ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *) &ss)->sin6_port = htons((uint16_t) api_cfg.listen_port);
		sslen = sizeof(struct sockaddr_in6);
		flags |= MHD_USE_IPv6;
	}
	else
	{
		fprintf(stderr, "modelmine-api: --listen host %s is not an IPv4 or IPv6 address\n",
				api_cfg.listen_host);
		return -1;
	}
	/* the logger first, so MHD's own start-up messages use it too */
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t) on_mhd_log, NULL};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_SOCK_ADDR, 0, &ss};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_CONNECTION_LIMIT, (intptr_t) api_cfg.max_connections, NULL};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t) api_cfg.connection_timeout_s, NULL};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_THREAD_STACK_SIZE, THREAD_STACK, NULL};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) on_completed, NULL};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t) on_connection, NULL};
	if (api_cfg.tls_cert)
	{
		tls_cert_pem = slurp(api_cfg.tls_cert);
		tls_key_pem = slurp(api_cfg.tls_key);
		if (tls_cert_pem == NULL || tls_key_pem == NULL)
		{
			fprintf(stderr, "modelmine-api: cannot read %s\n", tls_cert_pem ? api_cfg.tls_key : api_cfg.tls_cert);
			return -1;
		}
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert_pem};
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key_pem};
	}
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_END, 0, NULL};
	(void) sslen;
	daemon_ = MHD_start_daemon(flags, (uint16_t) api_cfg.listen_port, NULL, NULL, on_request, NULL,
							   MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (daemon_ == NULL)
	{
		fprintf(stderr, "modelmine-api: cannot serve on %s:%d (address in use, or not this host's?)\n",
				api_cfg.listen_host, api_cfg.listen_port);
		return -1;
	}
	if (pthread_create(&watchdog, NULL, watchdog_main, NULL) != 0)
		return -1;
	return 0;
}

/* Stops accepting connections; those open are served to the end. */
void
http_quiesce(void)
{
	if (daemon_)
	{
		MHD_socket s = MHD_quiesce_daemon(daemon_);

		if (s != MHD_INVALID_SOCKET)
			close(s);
	}
}

/* Closes every connection and stops the daemon. */
void
http_stop(void)
{
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}
