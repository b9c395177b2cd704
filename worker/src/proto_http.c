/*
 * proto_http.c — the node protocol over HTTP (--api): the gateway's node routes with libcurl, the
 * node key as the bearer of every request.
 *
 * Two keep-alive connections, each reused from call to call: one for the long-polling claim
 * (http_claim.c), driven from the loop's poll(), and one for everything else (heartbeat, progress,
 * complete, fail, release), whose calls are synchronous like the libpq ones: the loop issues one
 * at a time and acts on the outcome at once.  A claim that waits on the gateway therefore never
 * holds up a heartbeat or a lease's progress report, and HTTP/1.1 needs no multiplexing.
 *
 * "Connected" means the gateway took the node's key and capabilities (POST /nodes/capabilities).
 * Whatever breaks that (no answer, an answer that is not the gateway's, the gateway saying it
 * cannot reach the database, a key refused in the middle of a session) ends the session like a
 * lost database connection: the claim in flight is called off, the loop keeps its jobs and
 * results, reconnects with backoff (no sooner than a Retry-After) and heartbeats before claiming.
 * What an answer means is http_answer.c's to say.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* What this implementation keeps in Proto.impl. */
typedef struct Http
{
	char	   *base;			/* --api without its trailing slashes */
	CURLSH	   *share;			/* DNS and TLS sessions, for both connections */
	CURL	   *conn;			/* every call but the claim */
	HttpReply	reply;
	struct curl_slist *headers; /* the node key as bearer, JSON */
	HttpClaim	claim;			/* the long-poll, on its own connection */
	double		wait;			/* its ?wait=: --claim-wait, 0 with --exit-when-idle */
	bool		answered;		/* a claim ended; answer holds it until proto_claim takes it */
	Answer		answer;
} Http;

/* The implementation's state. */
static Http *
http(Proto *p)
{
	return p->impl;
}

/* Sets up h's handles for o (no connection is made yet); -1 if libcurl cannot. */
static int
http_init(Http *h, const Options *o)
{
	size_t		n = strlen(o->api);

	while (n > 0 && o->api[n - 1] == '/')
		n--;
	h->base = strndup(o->api, n);
	h->share = curl_share_init();
	if (h->share)
	{
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	}
	h->conn = http_easy(o, h->share);
	h->wait = o->exit_when_idle ? 0 : o->claim_wait;
	if (h->base == NULL || h->conn == NULL || http_claim_init(&h->claim, http_easy(o, h->share)))
	{
		logmsg("cannot set up libcurl for the gateway %s", o->api);
		return -1;
	}
	return 0;
}

/* Frees what h holds. */
static void
http_free(Http *h)
{
	http_claim_free(&h->claim);
	json_decref(h->answer.json);
	if (h->conn)
		curl_easy_cleanup(h->conn);
	if (h->share)
		curl_share_cleanup(h->share);
	curl_slist_free_all(h->headers);
	http_reply_free(&h->reply);
	free(h->base);
}

/* Prepares the handles and says which gateway the node works through, and how it checks it. */
static int
http_open(Proto *p)
{
	p->impl = calloc(1, sizeof(Http));
	if (p->impl == NULL || http_init(http(p), p->o) != 0)
		return -1;
	if (strncmp(http(p)->base, "https:", 6) == 0)
		logmsg("working through the gateway %s (HTTPS; its certificate is checked against %s%s)",
			   http(p)->base, p->o->cacert ? "the CA in " : "the system's CAs",
			   p->o->cacert ? p->o->cacert : "");
	else
		logmsg("working through the gateway %s (plain HTTP)", http(p)->base);
	return 0;
}

/* One request on the keep-alive connection: POST body (JSON, consumed; NULL: none) to path. */
static void
exchange(Http *h, const char *path, json_t *body, Answer *a)
{
	char		url[2048];
	char	   *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(body);
	snprintf(url, sizeof(url), "%s%s", h->base, path);
	http_request(h->conn, &h->reply, url, text, h->headers, HTTP_CALL_TIMEOUT * 1000L);
	http_perform(h->conn, &h->reply);
	free(text);
	http_answer(&h->reply, a);
}

/* The answer is about the node's key (SQLSTATE class 28: the gateway's 401). */
static bool
key_error(const Answer *a)
{
	return strncmp(a->sqlstate, MM_SQLSTATE_CLASS_AUTH, strlen(MM_SQLSTATE_CLASS_AUTH)) == 0;
}

/* The gateway refused the node's key. */
static bool
key_refused(const Answer *a)
{
	return a->rc == PROTO_REFUSED && key_error(a);
}

/* The session is over (a->error says why): the claim is called off, the loop reconnects. */
static void
session_lost(Proto *p, const Answer *a)
{
	char		why[sizeof(a->error) + 64];

	http_claim_abort(&http(p)->claim);
	if (a->db_lost)
		snprintf(why, sizeof(why), "the gateway cannot reach it: %s", a->error);
	else if (key_error(a))
		snprintf(why, sizeof(why), "the gateway refused the node key: %s", a->error);
	else
		snprintf(why, sizeof(why), "%s", a->error);
	proto_lost(p, a->db_lost ? "database" : "gateway", why);
}

/*
 * A call on the keep-alive connection, with its outcome in p: a refusal logged (unless quiet: the
 * loop paces and logs the calls it repeats), a lost session or a key refused mid-session ended
 * (PROTO_LOST: the reconnect then finds out whether the key is still good).  *json: a 2xx
 * answer's body, or NULL.
 */
static int
call(Proto *p, const char *what, const char *path, json_t *body, bool quiet, json_t **json)
{
	Answer		a;

	exchange(http(p), path, body, &a);
	if (key_refused(&a))
		a.rc = PROTO_LOST;
	answer_to_proto(&a, p);
	if (a.rc == PROTO_LOST)
		session_lost(p, &a);
	else if (a.rc == PROTO_REFUSED && !quiet)
		logmsg("%s refused: %s", what, p->error);
	if (json && a.rc == PROTO_OK)
		*json = a.json;
	else
		json_decref(a.json);
	return a.rc;
}

/* A 2xx answer that is not what the route returns: the gateway is not speaking its protocol. */
static int
bad_answer(Proto *p, const char *what, json_t *json)
{
	Answer		a = {.rc = PROTO_LOST};
	char	   *text = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	snprintf(a.error, sizeof(a.error), "the gateway's answer to %s is not what the route "
			 "returns: %.80s", what, text ? text : "(nothing)");
	free(text);
	answer_to_proto(&a, p);
	session_lost(p, &a);
	return PROTO_LOST;
}

/* The node id in a node key ("mmn_<id>_<secret>", protocol.h), for the log; 0 if it has none. */
static long long
key_node_id(const char *key)
{
	size_t		n = strlen(MM_NODE_KEY_PREFIX);

	return strncmp(key, MM_NODE_KEY_PREFIX, n) == 0 ? strtoll(key + n, NULL, 10) : 0;
}

/*
 * Starts a session: the gateway checks the node key and takes the node's capabilities.
 * PROTO_REFUSED only when it refuses the key (401): retrying cannot help.  Anything else (no
 * gateway, no database behind it, a refusal) is retried with backoff: PROTO_LOST.
 */
static int
http_connect(Proto *p, const char *node_key, json_t *caps)
{
	Http	   *h = http(p);
	Answer		a;
	char		why[sizeof(a.error) + 128];

	if (h->headers == NULL)
		h->headers = http_headers(node_key);
	exchange(h, "/nodes/capabilities", json_pack("{s:O}", "capabilities", caps), &a);
	json_decref(a.json);
	proto_clear_error(p);
	answer_to_proto(&a, p);
	if (a.rc == PROTO_OK)
	{
		p->up = true;
		p->heartbeat_ok = false;
		p->node_id = key_node_id(node_key);
		backoff_ok(&p->connect);
		logmsg("connected as node %lld", p->node_id);
		return PROTO_OK;
	}
	if (key_refused(&a))
	{
		logmsg("authenticate_node refused: %s", p->error);
		return PROTO_REFUSED;
	}
	if (a.rc == PROTO_LOST && a.db_lost)
		snprintf(why, sizeof(why), "cannot connect to the database through the gateway: %s",
				 a.error);
	else if (a.rc == PROTO_LOST)
		snprintf(why, sizeof(why), "cannot connect to the gateway %s: %s", h->base, a.error);
	else
		snprintf(why, sizeof(why), "connected, but set_capabilities %s: %s",
				 a.rc == PROTO_BUSY ? "found the database busy" : "was refused", a.error);
	proto_connect_failed(p, why);
	return PROTO_LOST;
}

/* Ends the session (logging why, if it was up): the claim is called off; the loop reconnects. */
static void
http_disconnect(Proto *p, const char *why)
{
	http_claim_abort(&http(p)->claim);
	proto_lost(p, "gateway", why);
}

/* The ids in the heartbeat's {"jobs": [5, 6]}, malloc'd into *held; false if it is not that. */
static bool
parse_held(json_t *answer, long long **held, int *nheld)
{
	json_t	   *jobs = json_object_get(answer, "jobs");
	size_t		i;
	json_t	   *id;

	if (!json_is_array(jobs))
		return false;
	*held = malloc(sizeof(long long) * (json_array_size(jobs) + 1));
	json_array_foreach(jobs, i, id)
	{
		if (!json_is_integer(id))
			return false;
		(*held)[(*nheld)++] = (long long) json_integer_value(id);
	}
	return true;
}

/* Says the node is alive, with its load and status; *held: the jobs still leased to it. */
static int
http_heartbeat(Proto *p, const char *status, long long **held, int *nheld)
{
	int			used,
				total,
				rc;
	json_t	   *answer = NULL;

	memory_mb(&used, &total);
	rc = call(p, "heartbeat", "/nodes/heartbeat",
			  json_pack("{s:f, s:i, s:i, s:s}", "cpu_load", cpu_load_percent(),
						"memory_used_mb", used, "memory_total_mb", total, "status", status),
			  true, &answer);
	*nheld = 0;
	if (rc == PROTO_OK && !parse_held(answer, held, nheld))
		rc = bad_answer(p, "heartbeat", answer);
	else if (rc == PROTO_OK)
		p->heartbeat_ok = true;
	json_decref(answer);
	return rc;
}

/* Sends a claim for max_jobs on the claim's own connection; it waits up to h->wait for work. */
static void
start_claim(Http *h, int max_jobs, int lease_seconds)
{
	char		url[2048],
				body[96];

	snprintf(url, sizeof(url), "%s/nodes/claim?wait=%g", h->base, h->wait);
	snprintf(body, sizeof(body), "{\"max_jobs\":%d,\"lease_seconds\":%d}", max_jobs,
			 lease_seconds);
	http_claim_start(&h->claim, url, body, h->headers,
					 (long) ((h->wait + HTTP_CLAIM_SLACK) * 1000));
}

/* A claim's answer is a list of {job_id: a positive integer, config: an object, ...}. */
static bool
valid_jobs(json_t *jobs)
{
	size_t		i;
	json_t	   *j;

	if (!json_is_array(jobs))
		return false;
	json_array_foreach(jobs, i, j)
	{
		json_t	   *id = json_object_get(j, "job_id");

		if (!json_is_integer(id) || json_integer_value(id) <= 0 ||
			!json_is_object(json_object_get(j, "config")))
			return false;
	}
	return true;
}

static int	http_release(Proto *p, long long job_id);

/* More jobs than were asked for (a gateway gone wrong): the node gives the rest back at once. */
static void
give_back_extra(Proto *p, json_t *jobs, int max_jobs)
{
	logmsg("the gateway leased %zu jobs for %d free slots; giving the rest back",
		   json_array_size(jobs), max_jobs);
	while ((int) json_array_size(jobs) > max_jobs)
	{
		size_t		last = json_array_size(jobs) - 1;
		json_t	   *id = json_object_get(json_array_get(jobs, last), "job_id");

		http_release(p, (long long) json_integer_value(id));
		json_array_remove(jobs, last);
	}
}

/*
 * Hands over the claim's answer.  While the loop has free slots a claim stays out, so the next one
 * starts here at once, for the slots these jobs leave free (with --exit-when-idle the loop paces
 * the claims itself).
 */
static int
take_answer(Proto *p, int max_jobs, int lease_seconds, json_t **jobs)
{
	Http	   *h = http(p);
	int			n;

	h->answered = false;
	answer_to_proto(&h->answer, p);
	if (h->answer.rc != PROTO_OK)
	{
		json_decref(h->answer.json);
		h->answer.json = NULL;
		return h->answer.rc;
	}
	json_decref(*jobs);
	*jobs = h->answer.json;
	h->answer.json = NULL;
	if ((int) json_array_size(*jobs) > max_jobs)
		give_back_extra(p, *jobs, max_jobs);
	n = (int) json_array_size(*jobs);
	if (p->up && h->wait > 0 && n < max_jobs)
		start_claim(h, max_jobs - n, lease_seconds);
	return PROTO_OK;
}

/*
 * Claims up to max_jobs: the answer of the claim that ended, if one did (see take_answer); else a
 * claim is sent, or is still out: PROTO_PENDING, and its answer wakes the loop.
 */
static int
http_claim(Proto *p, int max_jobs, int lease_seconds, json_t **jobs)
{
	Http	   *h = http(p);

	*jobs = json_array();
	proto_clear_error(p);
	if (h->answered)
		return take_answer(p, max_jobs, lease_seconds, jobs);
	if (!h->claim.in_flight && !h->claim.done)
		start_claim(h, max_jobs, lease_seconds);
	return PROTO_PENDING;
}

/* The node stops claiming: the claim in flight is called off; jobs already leased are returned. */
static json_t *
http_claim_cancel(Proto *p)
{
	Http	   *h = http(p);
	json_t	   *jobs = NULL;

	http_claim_abort(&h->claim);
	if (h->answered && h->answer.rc == PROTO_OK && json_array_size(h->answer.json) > 0)
	{
		jobs = h->answer.json;
		h->answer.json = NULL;
	}
	json_decref(h->answer.json);
	h->answer.json = NULL;
	h->answered = false;
	return jobs;
}

/*
 * The gateway refused the claim's ?wait= (longer than its --max-wait): the next claims wait half as
 * long, until one is short enough; said once per change.
 */
static void
shorter_wait(Http *h, const Answer *a)
{
	double		was = h->wait;

	h->wait = floor(h->wait / 2);
	logmsg("the gateway refused a claim waiting %g s (%s); claims wait %g s from now on "
		   "(lower --claim-wait to the gateway's --max-wait)", was, a->error, h->wait);
}

/* A finished claim's answer, kept for proto_claim; false (the session ended) if it was none. */
static bool
keep_answer(Proto *p)
{
	Http	   *h = http(p);
	Answer		a;

	http_answer(&h->claim.reply, &a);
	if (a.rc == PROTO_OK && !valid_jobs(a.json))
	{
		bad_answer(p, "a claim", a.json);
		json_decref(a.json);
		return false;
	}
	if (key_refused(&a))
		a.rc = PROTO_LOST;
	if (a.rc == PROTO_LOST)
	{
		answer_to_proto(&a, p);
		session_lost(p, &a);
		json_decref(a.json);
		return false;
	}
	if (a.rc == PROTO_REFUSED && strcmp(a.code, "PGRST100") == 0 && h->wait > 1)
		shorter_wait(h, &a);
	h->answer = a;
	h->answered = true;
	return true;
}

/* The path of a call on one job: /nodes/jobs/<id>/<action>. */
static const char *
job_path(char *buf, size_t len, long long job_id, const char *action)
{
	snprintf(buf, len, "/nodes/jobs/%lld/%s", job_id, action);
	return buf;
}

/*
 * Reports a job's progress, which also extends its lease.  metrics may be absent (a keepalive
 * re-sending the last progress): the job keeps its metrics.
 */
static int
http_progress(Proto *p, long long job_id, json_t *progress)
{
	char		path[96];
	json_t	   *m = json_object_get(progress, "metrics");
	json_t	   *body = json_pack("{s:f}", "progress",
								 json_number_value(json_object_get(progress, "progress")));

	if (m && !json_is_null(m))
		json_object_set(body, "metrics", m);
	return call(p, "report_progress", job_path(path, sizeof(path), job_id, "progress"), body,
				false, NULL);
}

/* The value of key in a call's answer, as text for the log ("?" when the answer lacks it). */
static void
answer_value(json_t *answer, const char *key, char *out, size_t outlen)
{
	json_t	   *v = json_object_get(answer, key);
	char	   *text = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;

	snprintf(out, outlen, "%s", text ? text : "?");
	free(text);
}

/* Settles a job with its result: the node is paid. */
static int
http_complete(Proto *p, long long job_id, json_t *result)
{
	char		path[96],
				earned[32];
	json_t	   *answer = NULL;
	int			rc = call(p, "complete_job", job_path(path, sizeof(path), job_id, "complete"),
						 json_pack("{s:O}", "result", result), false, &answer);

	if (rc == PROTO_OK)
	{
		answer_value(answer, "reward", earned, sizeof(earned));
		/* 0: a replicated job whose other results are awaited, or a result the quorum rejected */
		if (strcmp(earned, "0") == 0)
			logmsg("job %lld completed: result submitted, nothing paid now (replicated jobs "
				   "pay the agreeing nodes once validated)", job_id);
		else
			logmsg("job %lld completed: node earned %s tokens", job_id, earned);
	}
	json_decref(answer);
	return rc;
}

/* A field of a complete_jobs row as text for proto_done_answer: NULL when absent or null. */
static const char *
row_text(json_t *row, const char *key, char *buf, size_t len)
{
	json_t	   *v = json_object_get(row, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return buf;
}

/* Settles n jobs with their results in one transaction (POST /nodes/complete); see proto.h. */
static int
http_complete_many(Proto *p, ProtoDone *d, int n)
{
	json_t	   *answer = NULL;
	int			rc = call(p, "complete_jobs", "/nodes/complete",
						 json_pack("{s:o}", "completions", proto_done_batch(d, n)), true, &answer);

	if (rc == PROTO_OK && (!json_is_array(answer) || json_array_size(answer) != (size_t) n))
		rc = bad_answer(p, "complete_jobs", answer);
	for (int i = 0; rc == PROTO_OK && i < n; i++)
	{
		json_t	   *row = json_array_get(answer, i);	/* in the order given */
		char		reward[32];

		proto_done_answer(&d[i], "complete_job", row_text(row, "reward", reward, sizeof(reward)),
						  row_text(row, "sqlstate", NULL, 0), row_text(row, "error", NULL, 0),
						  row_text(row, "hint", NULL, 0));
	}
	json_decref(answer);
	return rc;
}

/* Settles a job as failed, with why: its owner is refunded. */
static int
http_fail(Proto *p, long long job_id, const char *error)
{
	char		path[96],
				refunded[32];
	json_t	   *answer = NULL;
	int			rc = call(p, "fail_job", job_path(path, sizeof(path), job_id, "fail"),
						 json_pack("{s:s}", "error", error), false, &answer);

	if (rc == PROTO_OK)
	{
		answer_value(answer, "refunded", refunded, sizeof(refunded));
		logmsg("job %lld failed (%s); its owner was refunded %s tokens", job_id, error, refunded);
	}
	json_decref(answer);
	return rc;
}

/* Gives a job back to the queue unfinished (a stopping worker). */
static int
http_release(Proto *p, long long job_id)
{
	char		path[96];
	int			rc = call(p, "release_job", job_path(path, sizeof(path), job_id, "release"), NULL,
						  false, NULL);

	if (rc == PROTO_OK)
		logmsg("job %lld released back to the queue", job_id);
	return rc;
}

/* The claim's sockets, and its timer, for the loop's poll(). */
static int
http_pollfds(Proto *p, struct pollfd *pfd, int max, double *until)
{
	return http_claim_pollfds(&http(p)->claim, pfd, max, until);
}

/* Drives the claim with what poll() saw: true when its answer came (work may be waiting). */
static bool
http_after_poll(Proto *p, const struct pollfd *pfd, int n)
{
	return http_claim_after_poll(&http(p)->claim, pfd, n) && keep_answer(p);
}

/* The worker is done: closes both connections without a "lost" line. */
static void
http_close(Proto *p)
{
	http_free(http(p));
	free(p->impl);
	p->impl = NULL;
	p->up = false;
}

/* One call of the registration (login, register, logout) as the operator, its outcome in p. */
static int
register_call(Proto *p, const char *what, const char *path, json_t *body, json_t **json)
{
	Answer		a;

	exchange(http(p), path, body, &a);
	answer_to_proto(&a, p);
	if (a.rc == PROTO_REFUSED)
		logmsg("%s refused: %s", what, p->error);
	else if (a.rc == PROTO_BUSY)
		logmsg("registering the node failed, the database was busy: %s; start the worker again",
			   p->error);
	else if (a.rc == PROTO_LOST)
		logmsg("cannot reach the gateway %s to register the node: %s", http(p)->base, p->error);
	if (json && a.rc == PROTO_OK)
		*json = a.json;
	else
		json_decref(a.json);
	return a.rc;
}

/*
 * First start with operator credentials: sign in through the gateway (POST /auth/login), register
 * this node (POST /nodes/register) and sign the session out again; one connection throughout.
 */
int
http_register(const Options *o, json_t *caps, char **node_key, long long *node_id)
{
	Http		h = {0};
	Proto		p = {.ops = &proto_http_ops, .o = o, .impl = &h};
	json_t	   *answer = NULL;
	const char *token,
			   *key;
	int			rc = -1;

	if (http_init(&h, o) != 0)
		goto done;
	h.headers = http_headers(NULL);
	if (register_call(&p, "operator login", "/auth/login",
					  json_pack("{s:s, s:s}", "email", o->operator_email,
								"password", o->operator_password), &answer) != PROTO_OK)
		goto done;
	token = json_string_value(json_object_get(answer, "token"));
	if (token == NULL)
	{
		logmsg("the gateway's answer to the operator login holds no token");
		goto done;
	}
	curl_slist_free_all(h.headers);
	h.headers = http_headers(token);
	json_decref(answer);
	answer = NULL;
	if (register_call(&p, "register_node", "/nodes/register",
					  json_pack("{s:s, s:O}", "name", o->name, "capabilities", caps),
					  &answer) != PROTO_OK)
		goto done;
	key = json_string_value(json_object_get(answer, "node_key"));
	if (key == NULL || !json_is_integer(json_object_get(answer, "node_id")))
	{
		logmsg("the gateway's answer to register_node holds no node_id and node_key");
		goto done;
	}
	*node_key = strdup(key);
	*node_id = (long long) json_integer_value(json_object_get(answer, "node_id"));
	register_call(&p, "operator logout", "/auth/logout", NULL, NULL);
	rc = 0;
done:
	json_decref(answer);
	http_free(&h);
	return rc;
}

const ProtoOps proto_http_ops = {
	.peer = "gateway",
	.open = http_open,
	.connect = http_connect,
	.disconnect = http_disconnect,
	.heartbeat = http_heartbeat,
	.claim = http_claim,
	.claim_cancel = http_claim_cancel,
	.progress = http_progress,
	.complete = http_complete,
	.complete_many = http_complete_many,
	.fail = http_fail,
	.release = http_release,
	.pollfds = http_pollfds,
	.after_poll = http_after_poll,
	.close = http_close,
};
