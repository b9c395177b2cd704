/*
 * smtp.c — email over SMTP with libcurl: smtp:// with STARTTLS (required by default, --smtp-tls),
 * smtps:// with TLS from the start, AUTH when a user is set.  A message is plain text with From,
 * To, Subject, Date and Message-ID; libcurl dot-stuffs the body.  A 5xx answer (an unknown mailbox)
 * is permanent: the delivery is dead-lettered with the server's words; anything else, and a refused
 * STARTTLS or AUTH (the sender's set-up, fixed by its operator), is retried.
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "util.h"

/* A bare address: one @, no spaces, brackets, quotes or control characters, at most 254 bytes. */
bool
nt_email_address_ok(const char *a)
{
	const char *at = strchr(a, '@');
	size_t		n = strlen(a);

	if (n < 3 || n > 254 || at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	for (const char *p = a; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f || strchr("<>()[]\\,;:\"", *p))
			return false;
	return true;
}

/* The address inside "Name <addr>", or the whole text. */
static void
bare_address(const char *from, char *out, size_t outlen)
{
	const char *lt = strrchr(from, '<'),
			   *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt && gt > lt + 1)
		snprintf(out, outlen, "%.*s", (int) (gt - lt - 1), lt + 1);
	else
		snprintf(out, outlen, "%s", from);
}

/* The subject as a header value: ASCII as is, else RFC 2047 base64; controls become spaces. */
static char *
encode_subject(const char *s)
{
	size_t		n = strlen(s);
	char	   *clean = malloc(n + 1),
			   *out;
	bool		ascii = true;

	if (clean == NULL)
		return NULL;
	for (size_t i = 0; i <= n; i++)
	{
		unsigned char ch = (unsigned char) s[i];

		clean[i] = (ch != 0 && (ch < ' ' || ch == 0x7f)) ? ' ' : (char) ch;
		if (ch >= 0x80)
			ascii = false;
	}
	if (ascii)
		return clean;
	out = malloc(4 * ((n + 2) / 3) + 16);
	if (out != NULL)
	{
		int			len;

		memcpy(out, "=?UTF-8?B?", 10);
		len = EVP_EncodeBlock((unsigned char *) out + 10, (unsigned char *) clean, (int) n);
		memcpy(out + 10 + len, "?=", 3);
	}
	free(clean);
	return out;
}

/* The whole message, CRLF line ends; NULL when out of memory. */
char *
nt_email_compose(const nt_config *c, const nt_delivery *d, const nt_message *m, long now)
{
	char		date[64],
				from[256],
				*subject = encode_subject(m->subject),
				*body,
				*msg = NULL;
	const char *domain;
	time_t		t = (time_t) now;
	struct tm	tm;
	size_t		n = 0;

	if (subject == NULL)
		return NULL;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	bare_address(c->smtp_from, from, sizeof(from));
	domain = strchr(from, '@') ? strchr(from, '@') + 1 : "modelmine";
	/* the text with CRLF line ends */
	body = malloc(2 * strlen(m->text) + (m->link ? 2 * strlen(m->link) : 0) + 8);
	if (body == NULL)
	{
		free(subject);
		return NULL;
	}
	for (const char *p = m->text; *p; p++)
	{
		if (*p == '\n')
			body[n++] = '\r';
		if (*p != '\r')
			body[n++] = *p;
	}
	if (m->link)
		n += (size_t) sprintf(body + n, "\r\n%s\r\n", m->link);
	body[n] = '\0';
	if (asprintf(&msg,
				 "From: %s\r\n"
				 "To: <%s>\r\n"
				 "Subject: %s\r\n"
				 "Date: %s\r\n"
				 "Message-ID: <%s.%lld@%s>\r\n"
				 "MIME-Version: 1.0\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\n"
				 "Content-Transfer-Encoding: 8bit\r\n"
				 "Auto-Submitted: auto-generated\r\n"
				 "X-ModelMine-Event: %s\r\n"
				 "X-ModelMine-Event-Id: %s\r\n"
				 "\r\n"
				 "%s",
				 c->smtp_from, d->destination, subject, date, d->event_id, d->id, domain, d->event,
				 d->event_id, body) < 0)
		msg = NULL;
	free(subject);
	free(body);
	return msg;
}

typedef struct reader
{
	const char *data;
	size_t		left;
} reader;

static size_t
read_message(char *buf, size_t size, size_t nmemb, void *userp)
{
	reader	   *r = userp;
	size_t		n = size * nmemb < r->left ? size * nmemb : r->left;

	memcpy(buf, r->data, n);
	r->data += n;
	r->left -= n;
	return n;
}

void
nt_send_email(const nt_config *c, const nt_delivery *d, const nt_message *m, nt_result *r)
{
	static CURL *h = NULL;		/* kept: libcurl reuses the connection for the next mail */
	char		from[256],
				rcpt[300],
				ebuf[CURL_ERROR_SIZE],
				reason[CURL_ERROR_SIZE + 8];
	struct curl_slist *to = NULL;
	char	   *msg;
	reader		rd;
	CURLcode	rc;
	long		code = 0;

	if (c->smtp_url == NULL)
	{
		/* not permanent: the operator may configure SMTP within outbox_max_age_seconds */
		snprintf(r->error, sizeof(r->error), "no SMTP server is configured (smtp-url)");
		return;
	}
	if (!nt_email_address_ok(d->destination))
	{
		r->permanent = true;
		mm_sanitize(reason, sizeof(reason), d->destination, 100);
		snprintf(r->error, sizeof(r->error), "invalid recipient address \"%s\"", reason);
		return;
	}
	msg = nt_email_compose(c, d, m, (long) time(NULL));
	if (msg == NULL)
	{
		snprintf(r->error, sizeof(r->error), "out of memory composing the email");
		return;
	}
	if (h == NULL && (h = curl_easy_init()) == NULL)
	{
		free(msg);
		snprintf(r->error, sizeof(r->error), "libcurl initialisation failed");
		return;
	}
	curl_easy_reset(h);
	bare_address(c->smtp_from, from, sizeof(from));
	snprintf(rcpt, sizeof(rcpt), "<%s>", d->destination);
	to = curl_slist_append(NULL, rcpt);
	rd.data = msg;
	rd.left = strlen(msg);
	ebuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, c->smtp_url);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, to);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_message);
	curl_easy_setopt(h, CURLOPT_READDATA, &rd);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) c->timeout_s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	if (strncmp(c->smtp_url, "smtp://", 7) == 0)
		curl_easy_setopt(h, CURLOPT_USE_SSL,
						 strcmp(c->smtp_tls, "require") == 0 ? (long) CURLUSESSL_ALL :
						 strcmp(c->smtp_tls, "try") == 0 ? (long) CURLUSESSL_TRY :
						 (long) CURLUSESSL_NONE);
	if (c->smtp_user)
	{
		curl_easy_setopt(h, CURLOPT_USERNAME, c->smtp_user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->smtp_password ? c->smtp_password : "");
	}
	if (c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	rc = curl_easy_perform(h);
	curl_slist_free_all(to);
	free(msg);
	if (rc == CURLE_OK)
	{
		r->delivered = true;
		return;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	mm_sanitize(reason, sizeof(reason), ebuf[0] ? ebuf : curl_easy_strerror(rc), 200);
	/* 530, 534, 535, 538: TLS or AUTH refused: the operator's set-up, not the recipient; retry */
	r->permanent = code >= 500 && code <= 599 && code != 530 && code != 534 && code != 535 &&
		code != 538 && rc != CURLE_LOGIN_DENIED;
	if (code >= 400)			/* a refusal; a lower code is only the last step that went well */
		snprintf(r->error, sizeof(r->error), "SMTP %ld from %s: %s", code, c->smtp_url, reason);
	else
		snprintf(r->error, sizeof(r->error), "SMTP to %s failed: %s", c->smtp_url, reason);
}
