/*
 * webhook.c — a notification as a signed HTTP POST.  The body is JSON:
 *   {"id": "<event id>", "type": "<event>", "created": "<time of the event>", "attempt": N,
 *    "data": {...the event's fields..., "url": "<dashboard page>"}}
 * with headers ModelMine-Event-Id (the same for every delivery and retry of an event: receivers
 * drop repeats by it) and ModelMine-Signature (sign.c).  Only a 2xx answer delivers; redirects are
 * not followed.  Every address libcurl connects to passes the worker's URL policy (netguard.c): no
 * loopback, private, link-local or metadata targets unless the operator allows them (--allow-net).
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "modelmine/protocol.h"
#include "util.h"

typedef struct guard
{
	const nt_config *c;
	const char *why;
	char		addr[64];
} guard;

/* libcurl's socket callback: refuses an address netguard.c forbids (after DNS). */
static curl_socket_t
open_checked(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	guard	   *g = clientp;
	const char *why = mm_addr_refusal(&a->addr, a->addrlen, g->c->allow_net,
									  (size_t) g->c->n_allow_net);

	(void) purpose;
	if (why != NULL)
	{
		if (g->why == NULL)
		{
			g->why = why;
			mm_addr_format(&a->addr, a->addrlen, g->addr, sizeof(g->addr));
		}
		return CURL_SOCKET_BAD; /* libcurl tries the name's next address, if any */
	}
	return socket(a->family, a->socktype, a->protocol);
}

/* Receivers' answers are not read, only counted against a cap. */
static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userp)
{
	(void) ptr;
	(void) userp;
	return size * nmemb;
}

char *
nt_webhook_body(const nt_delivery *d, json_t *payload, const nt_message *m)
{
	json_t	   *data = json_deep_copy(payload),
			   *body;
	char	   *text;

	if (data == NULL)
		data = json_object();
	if (m->link)
		json_object_set_new(data, "url", json_string(m->link));
	body = json_pack("{s:s, s:s, s:s, s:i, s:o}", "id", d->event_id, "type", d->event,
					 "created", d->created_at, "attempt", d->attempts, "data", data);
	if (body == NULL)
		return NULL;
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	return text;
}

void
nt_send_webhook(const nt_config *c, const nt_delivery *d, json_t *payload, const nt_message *m,
				nt_result *r)
{
	static CURL *h = NULL;		/* kept: libcurl reuses connections to the same receiver */
	char	   *body = nt_webhook_body(d, payload, m);
	char		sig[160],
				hdr_sig[200],
				hdr_id[120],
				ebuf[CURL_ERROR_SIZE],
				reason[CURL_ERROR_SIZE + 8],
				shown[120];
	struct curl_slist *headers = NULL;
	guard		g = {.c = c};
	CURLcode	rc;
	long		status = 0;

	mm_sanitize(shown, sizeof(shown), d->destination, 100);
	if (body == NULL)
	{
		snprintf(r->error, sizeof(r->error), "out of memory building the webhook body");
		return;
	}
	if (strncmp(d->destination, "https://", 8) != 0 && strncmp(d->destination, "http://", 7) != 0)
	{
		r->permanent = true;
		snprintf(r->error, sizeof(r->error), "webhook URL %s is not http:// or https://", shown);
		free(body);
		return;
	}
	if (nt_sign(d->secret_hex, (long long) time(NULL), body, sig, sizeof(sig)) != 0)
	{
		r->permanent = true;
		snprintf(r->error, sizeof(r->error), "the webhook has no usable secret");
		free(body);
		return;
	}
	if (h == NULL && (h = curl_easy_init()) == NULL)
	{
		snprintf(r->error, sizeof(r->error), "libcurl initialisation failed");
		free(body);
		return;
	}
	curl_easy_reset(h);
	snprintf(hdr_sig, sizeof(hdr_sig), MM_SIGNATURE_HEADER ": %s", sig);
	snprintf(hdr_id, sizeof(hdr_id), MM_EVENT_ID_HEADER ": %s", d->event_id);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, hdr_sig);
	headers = curl_slist_append(headers, hdr_id);
	headers = curl_slist_append(headers, "Expect:");	/* no 100-continue round trip */
	ebuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, d->destination);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "modelmine-notify");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) c->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long) (c->timeout_s < 5 ? c->timeout_s : 5));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &g);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	rc = curl_easy_perform(h);
	curl_slist_free_all(headers);
	free(body);
	mm_sanitize(reason, sizeof(reason), ebuf[0] ? ebuf : curl_easy_strerror(rc), 200);
	if (g.why != NULL && rc != CURLE_OK)
	{
		r->permanent = true;	/* the policy will not change by itself */
		snprintf(r->error, sizeof(r->error), "webhook address %s of %s is not allowed (%s); an "
				 "operator can allow it with --allow-net", g.addr, shown, g.why);
		return;
	}
	if (rc != CURLE_OK)
	{
		snprintf(r->error, sizeof(r->error), "POST %s failed: %s", shown, reason);
		return;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status <= 299)
	{
		r->delivered = true;
		return;
	}
	/* a 4xx says the receiver refuses this request, except "later" (408, 425, 429) */
	r->permanent = status >= 300 && status <= 499 && status != 408 && status != 425 &&
		status != 429;
	snprintf(r->error, sizeof(r->error), "HTTP status %ld from %s%s", status, shown,
			 status >= 300 && status <= 399 ? " (redirects are not followed)" : "");
}
