/*
 * http_conn.c — one keep-alive connection to the gateway: a libcurl easy handle with the worker's
 * settings, and one request on it.  A handle keeps its connection open between requests (HTTP/1.1
 * keep-alive) and opens a new one only when the gateway closed it.
 *
 * Settings: TLS verification stays on (libcurl's default; --cacert only adds the CA to trust), no
 * redirects (a bearer must not follow one elsewhere), http and https only, a connect timeout and a
 * total one per request, TCP keepalives, and close-on-exec sockets: an external runner the worker
 * execs gets no descriptor of the gateway's connections.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* Every socket libcurl opens for the gateway is closed across exec. */
static int
set_cloexec(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	(void) clientp;
	(void) purpose;
	fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	return CURL_SOCKOPT_OK;
}

/* Appends a piece of the body to the reply, up to HTTP_MAX_ANSWER; 0 stops the transfer. */
static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	HttpReply  *r = arg;
	size_t		len = size * n;

	if (r->len + len > HTTP_MAX_ANSWER)
	{
		r->too_large = true;
		return 0;
	}
	if (r->len + len + 1 > r->cap)
	{
		size_t		cap = (r->len + len + 1) * 2;
		char	   *grown = realloc(r->body, cap);

		if (grown == NULL)
			return 0;
		r->body = grown;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* Keeps the Retry-After header of the answer (a status line starts a new answer: forgets it). */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	HttpReply  *r = arg;
	size_t		len = size * n;
	static const char name[] = "Retry-After:";

	if (len > 5 && strncmp(data, "HTTP/", 5) == 0)
		r->retry_after[0] = '\0';
	else if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0)
	{
		const char *v = data + sizeof(name) - 1;
		size_t		vlen = len - (sizeof(name) - 1);

		while (vlen > 0 && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		if (vlen >= sizeof(r->retry_after))
			vlen = sizeof(r->retry_after) - 1;
		memcpy(r->retry_after, v, vlen);
		r->retry_after[vlen] = '\0';
	}
	return len;
}

/* A handle with the worker's settings (see the top of this file); share: DNS and TLS sessions. */
CURL *
http_easy(const Options *o, CURLSH *share)
{
	CURL	   *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);	/* no SIGALRM in the middle of the loop */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long) HTTP_CONNECT_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "modelmine-worker/" MM_SCHEMA_VERSION);
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, set_cloexec);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	if (o->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->cacert);
	if (share)
		curl_easy_setopt(e, CURLOPT_SHARE, share);
	return e;
}

/* Empties r for a new request (keeping its buffer); tls: the URL is https://. */
void
http_reply_reset(HttpReply *r, bool tls)
{
	r->curl = CURLE_OK;
	r->curl_error[0] = '\0';
	r->tls = tls;
	r->status = 0;
	r->content_type[0] = '\0';
	r->retry_after[0] = '\0';
	r->len = 0;
	r->too_large = false;
	if (r->body)
		r->body[0] = '\0';
}

/* Frees r's buffer. */
void
http_reply_free(HttpReply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/*
 * Sets up e for one POST of body (JSON text, or NULL for none) to url, the answer into r.  body
 * must live until the transfer ends: libcurl reads it from there.
 */
void
http_request(CURL *e, HttpReply *r, const char *url, const char *body,
			 struct curl_slist *headers, long timeout_ms)
{
	http_reply_reset(r, strncasecmp(url, "https:", 6) == 0);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (body ? strlen(body) : 0));
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_error);
}

/* Runs the request set up on e to its end (blocking, within its timeouts). */
void
http_perform(CURL *e, HttpReply *r)
{
	http_collect(e, r, curl_easy_perform(e));
}

/* A finished transfer's outcome, status and content type into r. */
void
http_collect(CURL *e, HttpReply *r, CURLcode rc)
{
	long		status = 0;
	char	   *ct = NULL;

	r->curl = rc;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	r->status = status;
	if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
	if (rc != CURLE_OK && r->curl_error[0] == '\0')
		snprintf(r->curl_error, sizeof(r->curl_error), "%s", curl_easy_strerror(rc));
	mm_one_line(r->curl_error);
}

/*
 * The headers of every request: the bearer, if any (a node key or an operator's session token: the
 * list holds the only copy, never logged), JSON both ways, and no "Expect: 100-continue" wait
 * before a large result.
 */
struct curl_slist *
http_headers(const char *bearer)
{
	static const char prefix[] = "Authorization: Bearer ";
	struct curl_slist *h = NULL;

	if (bearer)
	{
		size_t		n = sizeof(prefix) + strlen(bearer);
		char	   *auth = malloc(n);

		if (auth == NULL)
			return NULL;
		snprintf(auth, n, "%s%s", prefix, bearer);
		h = curl_slist_append(NULL, auth);
		memset(auth, 0, n);
		free(auth);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Accept: application/json");
	return curl_slist_append(h, "Expect:");
}

/*
 * Checks a gateway URL (--api): http or https, a host, no query, fragment or credentials.  0, or -1
 * with why; *loopback says whether the host is this machine (plain HTTP is then no risk).
 */
int
http_check_url(const char *url, bool *loopback, char *why, size_t whylen)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *query = NULL,
			   *fragment = NULL,
			   *user = NULL;
	int			rc = -1;

	*loopback = false;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		snprintf(why, whylen, "\"%s\" is not a URL (want e.g. https://gateway.example:8080)", url);
	else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
			 (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		snprintf(why, whylen, "\"%s\": the gateway is reached over https:// (or http://)", url);
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
		snprintf(why, whylen, "\"%s\" names no host", url);
	else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
			 curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK ||
			 curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		snprintf(why, whylen, "\"%s\": give the gateway's base URL, without a query, fragment "
				 "or user name", url);
	else
	{
		*loopback = strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
			strcmp(host, "[::1]") == 0;
		rc = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(query);
	curl_free(fragment);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}
