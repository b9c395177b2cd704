/*
 * http_claim.c — the long-polling claim, POST /nodes/claim?wait=N, on a connection of its own.
 *
 * The gateway holds the request until work is announced or N seconds pass, so it must not block
 * the loop: it runs in libcurl's multi interface, driven from the loop's poll().  libcurl says
 * which sockets to watch (socket callback) and when it wants to run again (timer callback);
 * proto_pollfds hands those to poll(), proto_after_poll hands back what poll() saw.  Every other
 * call goes on the other connection (proto_http.c), so a heartbeat or a progress report never
 * waits behind a claim, and HTTP/1.1 needs no multiplexing.  Between claims the connection stays
 * open in the multi handle's cache and is reused.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"

/* libcurl's socket callback: start, change or stop watching s. */
static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	HttpClaim  *c = userp;
	int			i = 0;

	(void) e;
	(void) socketp;
	while (i < c->nsocks && c->socks[i].fd != s)
		i++;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < c->nsocks)
			c->socks[i] = c->socks[--c->nsocks];
		return 0;
	}
	if (i == c->nsocks)
	{
		if (c->nsocks == PROTO_MAX_FDS)
			return -1;			/* one transfer never has this many */
		c->nsocks++;
		c->socks[i].fd = s;
	}
	c->socks[i].what = what;
	return 0;
}

/* libcurl's timer callback: when it wants to run again (ms from now; -1: no timer). */
static int
on_timer(CURLM *m, long ms, void *userp)
{
	HttpClaim  *c = userp;

	(void) m;
	c->timer_at = ms < 0 ? -1 : mm_now_s() + ms / 1000.0;
	return 0;
}

/* Prepares c around easy (a handle from http_easy, now c's); -1 if libcurl cannot. */
int
http_claim_init(HttpClaim *c, CURL *easy)
{
	memset(c, 0, sizeof(*c));
	c->easy = easy;
	c->timer_at = -1;
	c->multi = curl_multi_init();
	if (c->multi == NULL || easy == NULL)
		return -1;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return 0;
}

/* Lets libcurl act on fd (mask: CURL_CSELECT_*), or on its timer (CURL_SOCKET_TIMEOUT). */
static void
drive(HttpClaim *c, curl_socket_t fd, int mask)
{
	int			running;

	curl_multi_socket_action(c->multi, fd, mask, &running);
}

/* Collects the transfer's end, if it came: the answer stays in c->reply, c->done says so. */
static void
collect_end(HttpClaim *c)
{
	CURLMsg    *m;
	int			left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL)
	{
		if (m->msg != CURLMSG_DONE || m->easy_handle != c->easy)
			continue;
		http_collect(c->easy, &c->reply, m->data.result);
		curl_multi_remove_handle(c->multi, c->easy);	/* its connection stays cached */
		c->in_flight = false;
		c->done = true;
		return;
	}
}

/* Sends the claim (body: JSON text) to url; its answer comes through http_claim_after_poll. */
void
http_claim_start(HttpClaim *c, const char *url, const char *body,
				 struct curl_slist *headers, long timeout_ms)
{
	free(c->url);
	free(c->body);
	c->url = strdup(url);
	c->body = strdup(body);
	http_request(c->easy, &c->reply, c->url, c->body, headers, timeout_ms);
	c->done = false;
	c->in_flight = curl_multi_add_handle(c->multi, c->easy) == CURLM_OK;
	if (!c->in_flight)
	{
		http_collect(c->easy, &c->reply, CURLE_FAILED_INIT);
		c->done = true;
		return;
	}
	drive(c, CURL_SOCKET_TIMEOUT, 0);	/* connect and send now, not at the next turn */
	collect_end(c);
}

/* The sockets to poll (at most max), and *until brought forward to libcurl's timer. */
int
http_claim_pollfds(HttpClaim *c, struct pollfd *pfd, int max, double *until)
{
	int			n = 0;

	if (c->done)
		*until = mm_now_s();	/* an answer is waiting to be taken */
	else if (c->in_flight && c->timer_at >= 0 && c->timer_at < *until)
		*until = c->timer_at;
	for (int i = 0; c->in_flight && i < c->nsocks && n < max; i++)
	{
		pfd[n].fd = c->socks[i].fd;
		pfd[n].events = (short) (((c->socks[i].what & CURL_POLL_IN) ? POLLIN : 0) |
								 ((c->socks[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
		pfd[n++].revents = 0;
	}
	return n;
}

/* Hands libcurl what poll() saw on its sockets, and its due timer; true when the claim ended. */
bool
http_claim_after_poll(HttpClaim *c, const struct pollfd *pfd, int n)
{
	for (int i = 0; c->in_flight && i < n; i++)
	{
		int			mask = 0;

		if (pfd[i].revents & (POLLIN | POLLHUP))
			mask |= CURL_CSELECT_IN;
		if (pfd[i].revents & POLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (pfd[i].revents & (POLLERR | POLLNVAL))
			mask |= CURL_CSELECT_ERR;
		if (mask)
			drive(c, pfd[i].fd, mask);
	}
	if (c->in_flight && c->timer_at >= 0 && mm_now_s() >= c->timer_at)
	{
		c->timer_at = -1;
		drive(c, CURL_SOCKET_TIMEOUT, 0);
	}
	if (c->in_flight)
		collect_end(c);
	if (!c->done)
		return false;
	c->done = false;
	return true;
}

/*
 * Calls the claim off (a stop, a lost session).  The socket is shut down before libcurl closes
 * it, so the gateway reads the end of the connection at once, and claims nothing more for this
 * request, even where a TLS close_notify alert would come first or a forked trainer still holds a
 * copy of the descriptor.
 */
void
http_claim_abort(HttpClaim *c)
{
	c->done = false;
	if (!c->in_flight)
		return;
	for (int i = 0; i < c->nsocks; i++)
		shutdown(c->socks[i].fd, SHUT_RDWR);
	curl_multi_remove_handle(c->multi, c->easy);
	c->in_flight = false;
	c->nsocks = 0;
	c->timer_at = -1;
}

/* Frees everything c holds. */
void
http_claim_free(HttpClaim *c)
{
	http_claim_abort(c);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	http_reply_free(&c->reply);
	free(c->url);
	free(c->body);
	memset(c, 0, sizeof(*c));
}
