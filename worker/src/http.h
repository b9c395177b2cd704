/*
 * http.h — the parts of the node protocol over HTTP (--api), for proto_http.c and the unit tests:
 *
 *   http_conn.c    one keep-alive connection: a libcurl easy handle with the worker's settings
 *                  (TLS verification, timeouts, no redirects, close-on-exec sockets), one request
 *   http_answer.c  what an answer means: JSON or not, the gateway's {code, message, details,
 *                  hint} errors mapped onto proto.h's outcomes, Retry-After
 *   http_claim.c   the long-polling claim on a connection of its own, driven from the loop's poll()
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "proto.h"

/* the largest answer read: a claim of 64 jobs with their configs is far smaller */
#define HTTP_MAX_ANSWER (16 << 20)
/* a call but the claim: the gateway gives up after its --acquire-timeout + --statement-timeout */
#define HTTP_CALL_TIMEOUT 30
#define HTTP_CONNECT_TIMEOUT 10
/* a long-poll may take this much longer than the wait it asked for */
#define HTTP_CLAIM_SLACK 30
/* the longest Retry-After honoured, in seconds */
#define HTTP_RETRY_AFTER_MAX 300

/* What came back for one request. */
typedef struct HttpReply
{
	CURLcode	curl;			/* the transfer's outcome */
	char		curl_error[CURL_ERROR_SIZE];
	bool		tls;			/* the URL was https:// */
	long		status;			/* 0 when no answer came */
	char		content_type[128];
	char		retry_after[64];	/* the header's value, as sent */
	char	   *body;			/* NUL-terminated */
	size_t		len,
				cap;
	bool		too_large;		/* the body passed HTTP_MAX_ANSWER: the transfer was stopped */
} HttpReply;

/* What an answer means (http_answer). */
typedef struct Answer
{
	int			rc;				/* PROTO_OK, PROTO_REFUSED, PROTO_BUSY or PROTO_LOST */
	bool		db_lost;		/* lost because the gateway cannot reach the database */
	bool		job_gone;		/* a refusal saying the job is no longer the node's */
	char		code[16];		/* the gateway's error code as sent: a SQLSTATE or PGRSTnnn */
	char		sqlstate[6];	/* "28000" for a refused key, "22023" for a refused size */
	char		error[1536];	/* on one line: message [code]; hint: ... */
	double		retry_after;	/* seconds; 0: none */
	json_t	   *json;			/* a 2xx answer's body (NULL for 204); the caller owns it */
} Answer;

/* http_conn.c */
CURL	   *http_easy(const Options *o, CURLSH *share);
void		http_reply_reset(HttpReply *r, bool tls);
void		http_reply_free(HttpReply *r);
void		http_request(CURL *e, HttpReply *r, const char *url, const char *body,
						 struct curl_slist *headers, long timeout_ms);
void		http_perform(CURL *e, HttpReply *r);
void		http_collect(CURL *e, HttpReply *r, CURLcode rc);
struct curl_slist *http_headers(const char *bearer);
int			http_check_url(const char *url, bool *loopback, char *why, size_t whylen);

/* http_answer.c */
void		http_answer(const HttpReply *r, Answer *a);
void		answer_to_proto(const Answer *a, Proto *p);
double		http_retry_after(const char *value, time_t now);

/* http_claim.c */
typedef struct HttpClaim
{
	CURLM	   *multi;
	CURL	   *easy;
	HttpReply	reply;			/* of the transfer in flight, then of the last one */
	char	   *url,
			   *body;			/* kept for the transfer's life */
	bool		in_flight;
	bool		done;			/* the transfer ended; its answer is in reply, not yet taken */
	struct
	{
		curl_socket_t fd;
		int			what;		/* CURL_POLL_IN, _OUT or _INOUT */
	}			socks[PROTO_MAX_FDS];
	int			nsocks;
	double		timer_at;		/* mm_now_s() when curl wants to be called again; < 0: never */
} HttpClaim;

int			http_claim_init(HttpClaim *c, CURL *easy);
void		http_claim_start(HttpClaim *c, const char *url, const char *body,
							 struct curl_slist *headers, long timeout_ms);
int			http_claim_pollfds(HttpClaim *c, struct pollfd *pfd, int max, double *until);
bool		http_claim_after_poll(HttpClaim *c, const struct pollfd *pfd, int n);
void		http_claim_abort(HttpClaim *c);
void		http_claim_free(HttpClaim *c);

#endif							/* HTTP_H */
