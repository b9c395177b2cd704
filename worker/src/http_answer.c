/*
 * http_answer.c — what one answer of the gateway means for the node, as proto.h's outcomes.
 *
 *   2xx with JSON (or 204)                       PROTO_OK
 *   the gateway's error body {code, message, details, hint}:
 *     401 (a bad, revoked or missing key)        PROTO_REFUSED, SQLSTATE 28000: the key is refused
 *     413 (a body over its --max-body)           PROTO_REFUSED, SQLSTATE 22023: the data is refused
 *     PGRST001, 08xxx, 57Pxx: no database        PROTO_LOST (db_lost)
 *     55P03, 40001, 40P01; PGRST003; other 503s  PROTO_BUSY: nothing happened, ask again later
 *     anything else                              PROTO_REFUSED, with the code it came with
 *   anything that is not the gateway speaking    PROTO_LOST: no answer, a cut-off or unreadable
 *   (HTML from a proxy, a body cut short, no     body, another server: the state is kept and the
 *   connection, TLS refused, a timeout)          call made again after a reconnect
 *
 * The SQLSTATE in "code" means what it means over libpq (common/sqlstate.c), so the loop reacts
 * to a job that is gone, a busy row or a refused key the same way in both modes.  Retry-After is
 * kept for every answer that carries it (seconds or an HTTP date, at most HTTP_RETRY_AFTER_MAX).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* Seconds to wait from a Retry-After value (delta-seconds or an HTTP date) at now; 0 if none. */
double
http_retry_after(const char *value, time_t now)
{
	const char *p = value;
	double		s;

	if (value == NULL || *value == '\0')
		return 0;
	while (isdigit((unsigned char) *p))
		p++;
	if (p > value && *p == '\0')
		s = strtod(value, NULL);
	else
	{
		time_t		at = curl_getdate(value, NULL);

		if (at == (time_t) -1)
			return 0;
		s = difftime(at, now);
	}
	return s < 0 ? 0 : s > HTTP_RETRY_AFTER_MAX ? HTTP_RETRY_AFTER_MAX : s;
}

/* The content type is JSON (application/json, with or without parameters). */
static bool
is_json_type(const char *ct)
{
	return strncasecmp(ct, "application/json", 16) == 0 &&
		(ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/*
 * A few printable words of a body that is not JSON, for the log: an HTML page's <title>, else its
 * start.  Control and non-ASCII bytes become '?': the body is whatever a stranger sent.
 */
static void
body_excerpt(const HttpReply *r, char *out, size_t outlen)
{
	const char *from = r->body ? r->body : "";
	size_t		n = r->len;
	const char *title = n ? strcasestr(from, "<title>") : NULL;
	size_t		w = 0;

	if (title)
	{
		const char *end = strcasestr(title, "</title>");

		from = title + 7;
		n = end ? (size_t) (end - from) : n - (size_t) (from - r->body);
	}
	for (size_t i = 0; i < n && w + 1 < outlen && w < 80; i++)
	{
		unsigned char c = (unsigned char) from[i];

		out[w++] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c < 0x20 || c > 0x7e ? '?' : c;
	}
	out[w] = '\0';
	mm_one_line(out);
}

/* What to do about a transfer that brought no whole answer; appended to the error. */
static const char *
transport_hint(const HttpReply *r)
{
	switch (r->curl)
	{
		case CURLE_PEER_FAILED_VERIFICATION:
			if (strstr(r->curl_error, "name"))
				return "the gateway's certificate names another host: use a host name it names "
					"in --api";
			return "the gateway's certificate is not signed by a CA this node trusts: pass the "
				"CA that signed it with --cacert FILE (MODELMINE_CACERT)";
		case CURLE_SSL_CACERT_BADFILE:
			return "--cacert must name a readable PEM file of CA certificates";
		case CURLE_SSL_CONNECT_ERROR:
			return "does the gateway serve HTTPS (modelmine-api --tls-cert)? If not, use http://";
		case CURLE_GOT_NOTHING:	/* what a TLS server answers to plain HTTP */
			return r->tls ? NULL :
				"if the gateway serves HTTPS (--tls-cert), use https:// in --api";
		default:
			return NULL;
	}
}

/* No whole answer: no connection, TLS refused, a timeout, a body cut short or too large. */
static void
transport_failure(const HttpReply *r, Answer *a)
{
	const char *hint = transport_hint(r);

	a->rc = PROTO_LOST;
	if (r->too_large)
		snprintf(a->error, sizeof(a->error), "the gateway's answer is larger than %d MiB",
				 HTTP_MAX_ANSWER >> 20);
	else if (r->curl == CURLE_PARTIAL_FILE)
		snprintf(a->error, sizeof(a->error), "the gateway's answer was cut short (%s)",
				 r->curl_error);
	else if (r->curl == CURLE_OPERATION_TIMEDOUT)
		snprintf(a->error, sizeof(a->error), "no answer from the gateway in time (%s)",
				 r->curl_error);
	else
		snprintf(a->error, sizeof(a->error), "%s%s%s", r->curl_error, hint ? "; hint: " : "",
				 hint ? hint : "");
}

/* An answer that is not the gateway's JSON: a proxy's page, another server, a body cut short. */
static void
foreign_answer(const HttpReply *r, Answer *a)
{
	char		excerpt[96];

	body_excerpt(r, excerpt, sizeof(excerpt));
	a->rc = PROTO_LOST;
	snprintf(a->error, sizeof(a->error), "the gateway answered %ld with %s, not its JSON%s%s%s%s",
			 r->status, r->len == 0 ? "no body" : r->content_type[0] ? r->content_type :
			 "no content type", excerpt[0] ? " (\"" : "", excerpt, excerpt[0] ? "\")" : "",
			 (r->status >= 300 && r->status < 400) || r->status == 404 ?
			 "; hint: is --api the gateway's base URL (where modelmine-api --listen serves)?" : "");
}

/* A string field of the error body, or NULL. */
static const char *
field(json_t *err, const char *key)
{
	return json_string_value(json_object_get(err, key));
}

/* The gateway's own error body {code, message, details, hint}: its meaning for the node. */
static void
gateway_error(const HttpReply *r, json_t *err, Answer *a)
{
	const char *code = field(err, "code");
	const char *message = field(err, "message");
	const char *hint = field(err, "hint");

	snprintf(a->code, sizeof(a->code), "%s", code);
	if (r->status == 401)
		snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", MM_SQLSTATE_NOT_SIGNED_IN);
	else if (r->status == 413)
		snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", MM_SQLSTATE_BAD_INPUT);
	else if (strlen(code) == 5)
		snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", code);
	snprintf(a->error, sizeof(a->error), "%s [%s]%s%s", message ? message : "?", code,
			 hint ? "; hint: " : "", hint ? hint : "");
	mm_one_line(a->error);
	if (strcmp(code, "PGRST001") == 0 || mm_sqlstate_lost(a->sqlstate))
	{
		a->rc = PROTO_LOST;
		a->db_lost = true;
	}
	else if (mm_sqlstate_busy(a->sqlstate) || strcmp(code, "PGRST003") == 0 || r->status == 503)
		a->rc = PROTO_BUSY;
	else
	{
		a->rc = PROTO_REFUSED;
		a->job_gone = mm_job_gone(a->sqlstate, hint, NULL);
	}
}

/* What the answer in r means (see the top of this file); a->json is the caller's to decref. */
void
http_answer(const HttpReply *r, Answer *a)
{
	json_t	   *body = NULL;

	memset(a, 0, sizeof(*a));
	a->retry_after = http_retry_after(r->retry_after, time(NULL));
	if (r->curl != CURLE_OK || r->too_large)
	{
		transport_failure(r, a);
		return;
	}
	if (r->len > 0 && is_json_type(r->content_type))
		body = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
	if (r->status >= 200 && r->status < 300 && (body || r->status == 204))
	{
		a->rc = PROTO_OK;
		a->json = body;
		return;
	}
	if (r->status >= 300 && json_is_string(json_object_get(body, "code")))
		gateway_error(r, body, a);
	else
		foreign_answer(r, a);
	json_decref(body);
}

/* The answer's outcome as the loop reads it, in p. */
void
answer_to_proto(const Answer *a, Proto *p)
{
	snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", a->sqlstate);
	snprintf(p->error, sizeof(p->error), "%s", a->error);
	p->job_gone = a->job_gone;
	p->retry_after = a->retry_after;
}
