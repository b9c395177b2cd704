/*
 * test_http.c — what the worker makes of the gateway's answers (--api), without a network: JSON
 * and not JSON, the gateway's {code, message, details, hint} errors mapped onto the loop's
 * outcomes (a refused key, a job that is gone, a busy or unreachable database), answers that are
 * not the gateway speaking (HTML from a proxy, a body cut short, TLS refused), Retry-After, and the
 * checks on an --api URL.
 */
#include "testutil.h"
#include "http.h"

/* A reply as http_collect would leave it. */
static HttpReply
reply(long status, const char *content_type, const char *body)
{
	HttpReply	r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	snprintf(r.content_type, sizeof(r.content_type), "%s", content_type ? content_type : "");
	if (body)
	{
		r.body = strdup(body);
		r.len = r.cap = strlen(body);
	}
	return r;
}

/* The outcome of one answer (a->json decref'd by the caller). */
static Answer
answer(HttpReply r)
{
	Answer		a;

	http_answer(&r, &a);
	free(r.body);
	return a;
}

#define JSON "application/json; charset=utf-8"

/* 2xx: JSON bodies are the call's answer; 204 has none; anything else is no answer at all. */
static void
test_success(void)
{
	Answer		a = answer(reply(200, JSON, "{\"jobs\":[5,6]}"));

	CHECK(a.rc == PROTO_OK && json_is_array(json_object_get(a.json, "jobs")), "rc %d", a.rc);
	json_decref(a.json);
	a = answer(reply(200, "application/json", "[]"));
	CHECK(a.rc == PROTO_OK && json_is_array(a.json) && a.error[0] == '\0', "rc %d", a.rc);
	json_decref(a.json);
	a = answer(reply(204, NULL, NULL));
	CHECK(a.rc == PROTO_OK && a.json == NULL, "204: rc %d", a.rc);

	/* HTML where JSON should be (a captive portal, a proxy): lost, state kept, retried */
	a = answer(reply(200, "text/html", "<html><head><title>Sign in to the\nWi-Fi</title>"));
	CHECK(a.rc == PROTO_LOST && !a.db_lost, "HTML 200: rc %d", a.rc);
	CHECK_MSG(a.error, "the gateway answered 200 with text/html, not its JSON");
	CHECK_MSG(a.error, "(\"Sign in to the Wi-Fi\")");
	/* a JSON body cut short, whose Content-Length said so */
	a = answer(reply(200, JSON, "[{\"job_id\": 7, \"con"));
	CHECK(a.rc == PROTO_LOST && a.json == NULL, "truncated JSON: rc %d", a.rc);
	CHECK_MSG(a.error, "not its JSON");
	/* application/jsonp is not JSON */
	a = answer(reply(200, "application/jsonp", "{}"));
	CHECK(a.rc == PROTO_LOST, "application/jsonp: rc %d", a.rc);
}

/* The gateway's own errors mean what their SQLSTATE means over libpq. */
static void
test_gateway_errors(void)
{
	Answer		a = answer(reply(401, JSON,
								 "{\"code\":\"PGRST301\",\"details\":\"The key does not belong to "
								 "any registered node.\",\"hint\":\"Use the node_key printed by "
								 "modelmine.register_node(name, capabilities).\","
								 "\"message\":\"invalid node key\"}"));

	CHECK(a.rc == PROTO_REFUSED && strcmp(a.sqlstate, MM_SQLSTATE_NOT_SIGNED_IN) == 0,
		  "401: rc %d sqlstate %s", a.rc, a.sqlstate);
	CHECK(strcmp(a.error, "invalid node key [PGRST301]; hint: Use the node_key printed by "
				 "modelmine.register_node(name, capabilities).") == 0, "401 text: %s", a.error);

	a = answer(reply(403, JSON, "{\"code\":\"42501\",\"details\":null,\"hint\":\"A node may only "
					 "report on jobs it holds; claim work with modelmine.claim_jobs().\","
					 "\"message\":\"job 99 is not leased to this node\"}"));
	CHECK(a.rc == PROTO_REFUSED && a.job_gone && strcmp(a.sqlstate, "42501") == 0,
		  "not leased: rc %d gone %d", a.rc, a.job_gone);
	a = answer(reply(403, JSON, "{\"code\":\"42501\",\"details\":null,\"hint\":null,"
					 "\"message\":\"permission denied for function report_progress\"}"));
	CHECK(a.rc == PROTO_REFUSED && !a.job_gone, "a missing grant is not a lost job");
	CHECK(strcmp(a.error, "permission denied for function report_progress [42501]") == 0,
		  "no hint: %s", a.error);
	a = answer(reply(409, JSON, "{\"code\":\"55000\",\"message\":\"job 1 is already COMPLETED\"}"));
	CHECK(a.rc == PROTO_REFUSED && a.job_gone, "already settled: rc %d", a.rc);
	a = answer(reply(404, JSON, "{\"code\":\"P0002\",\"message\":\"job 7 not found\"}"));
	CHECK(a.rc == PROTO_REFUSED && a.job_gone, "not found: rc %d", a.rc);
	a = answer(reply(400, JSON, "{\"code\":\"22023\",\"message\":\"invalid result\"}"));
	CHECK(a.rc == PROTO_REFUSED && strcmp(a.sqlstate, MM_SQLSTATE_BAD_INPUT) == 0 && !a.job_gone,
		  "bad input: rc %d", a.rc);
	a = answer(reply(413, JSON, "{\"code\":\"PGRST413\",\"message\":\"Payload Too Large\"}"));
	CHECK(a.rc == PROTO_REFUSED && strcmp(a.sqlstate, MM_SQLSTATE_BAD_INPUT) == 0,
		  "413 is a refused result: rc %d sqlstate %s", a.rc, a.sqlstate);
	a = answer(reply(500, JSON, "{\"code\":\"XX000\",\"message\":\"internal error\"}"));
	CHECK(a.rc == PROTO_REFUSED, "XX000: rc %d", a.rc);
	a = answer(reply(404, JSON, "{\"code\":\"PGRST202\",\"message\":\"this route's function is "
					 "missing from the database\",\"hint\":\"Update the extension\"}"));
	CHECK(a.rc == PROTO_REFUSED && a.sqlstate[0] == '\0', "PGRST202: rc %d", a.rc);
}

/* A busy or unreachable database, and Retry-After. */
static void
test_unavailable(void)
{
	HttpReply	r = reply(503, JSON, "{\"code\":\"PGRST001\",\"details\":null,\"hint\":\"The "
						  "database cannot be reached now; retry after the time in Retry-After.\","
						  "\"message\":\"Database client error. Retrying the connection.\"}");
	Answer		a;

	snprintf(r.retry_after, sizeof(r.retry_after), "4");
	a = answer(r);
	CHECK(a.rc == PROTO_LOST && a.db_lost && a.retry_after == 4,
		  "PGRST001: rc %d db_lost %d retry_after %g", a.rc, a.db_lost, a.retry_after);
	a = answer(reply(503, JSON, "{\"code\":\"57P01\",\"message\":\"terminating connection\"}"));
	CHECK(a.rc == PROTO_LOST && a.db_lost, "57P01: rc %d", a.rc);
	r = reply(503, JSON, "{\"code\":\"55P03\",\"message\":\"job 7 is busy\"}");
	snprintf(r.retry_after, sizeof(r.retry_after), "1");
	a = answer(r);
	CHECK(a.rc == PROTO_BUSY && a.retry_after == 1, "55P03: rc %d", a.rc);
	a = answer(reply(500, JSON, "{\"code\":\"40001\",\"message\":\"could not serialize\"}"));
	CHECK(a.rc == PROTO_BUSY, "40001: rc %d", a.rc);
	a = answer(reply(504, JSON, "{\"code\":\"PGRST003\",\"message\":\"Timed out acquiring "
					 "connection from connection pool.\"}"));
	CHECK(a.rc == PROTO_BUSY, "PGRST003: rc %d", a.rc);
	a = answer(reply(503, JSON, "{\"code\":\"53300\",\"message\":\"too many connections\"}"));
	CHECK(a.rc == PROTO_BUSY, "another 503: rc %d", a.rc);
	a = answer(reply(429, JSON, "{\"code\":\"PGRST429\",\"message\":\"too many requests\"}"));
	CHECK(a.rc == PROTO_REFUSED, "429: rc %d", a.rc);
}

/* Answers that are not the gateway speaking: lost, never a refusal that would drop a result. */
static void
test_foreign(void)
{
	HttpReply	r = reply(502, "text/html", "<html><head><title>502 Bad Gateway</title></head>"
						  "<body>nginx</body></html>");
	Answer		a;

	snprintf(r.retry_after, sizeof(r.retry_after), "10");
	a = answer(r);
	CHECK(a.rc == PROTO_LOST && !a.db_lost && a.retry_after == 10, "502 HTML: rc %d", a.rc);
	CHECK_MSG(a.error, "answered 502 with text/html, not its JSON (\"502 Bad Gateway\")");
	a = answer(reply(401, "text/html", "<h1>Authorization Required</h1>"));
	CHECK(a.rc == PROTO_LOST, "a proxy's 401 is not the gateway refusing the key: rc %d", a.rc);
	a = answer(reply(404, "text/plain", "Not found\x01\x7f\xc3\xa9"));
	CHECK(a.rc == PROTO_LOST, "404 text: rc %d", a.rc);
	CHECK_MSG(a.error, "(\"Not found????\")");
	CHECK_MSG(a.error, "hint: is --api the gateway's base URL");
	a = answer(reply(301, NULL, NULL));
	CHECK(a.rc == PROTO_LOST, "redirect: rc %d", a.rc);
	CHECK_MSG(a.error, "answered 301 with no body");
	a = answer(reply(500, JSON, "{\"error\":\"not ours\"}"));
	CHECK(a.rc == PROTO_LOST, "JSON without code: rc %d", a.rc);
}

/* A transfer that brought no whole answer. */
static void
test_transport(void)
{
	HttpReply	r = reply(0, NULL, NULL);
	Answer		a;

	r.curl = CURLE_COULDNT_CONNECT;
	snprintf(r.curl_error, sizeof(r.curl_error),
			 "Failed to connect to 127.0.0.1 port 9 after 0 ms: Connection refused");
	a = answer(r);
	CHECK(a.rc == PROTO_LOST && strcmp(a.error, r.curl_error) == 0, "refused: %s", a.error);

	r = reply(200, JSON, "[{\"job_id\":");
	r.curl = CURLE_PARTIAL_FILE;
	snprintf(r.curl_error, sizeof(r.curl_error), "transfer closed with 20 bytes remaining to read");
	a = answer(r);
	CHECK(a.rc == PROTO_LOST, "cut short: rc %d", a.rc);
	CHECK_MSG(a.error, "the gateway's answer was cut short (transfer closed with 20 bytes");

	r = reply(0, NULL, NULL);
	r.curl = CURLE_PEER_FAILED_VERIFICATION;
	r.tls = true;
	snprintf(r.curl_error, sizeof(r.curl_error),
			 "SSL certificate problem: unable to get local issuer certificate");
	a = answer(r);
	CHECK(a.rc == PROTO_LOST, "TLS: rc %d", a.rc);
	CHECK_MSG(a.error, "SSL certificate problem: unable to get local issuer certificate; hint: "
			  "the gateway's certificate is not signed by a CA this node trusts: pass the CA that "
			  "signed it with --cacert FILE");
	snprintf(r.curl_error, sizeof(r.curl_error), "SSL: no alternative certificate subject name "
			 "matches target host name 'gw.example'");
	a = answer(r);
	CHECK_MSG(a.error, "names another host");

	r = reply(0, NULL, NULL);
	r.curl = CURLE_GOT_NOTHING;
	snprintf(r.curl_error, sizeof(r.curl_error), "Empty reply from server");
	a = answer(r);
	CHECK_MSG(a.error, "use https:// in --api");

	r = reply(200, JSON, "[]");
	r.too_large = true;
	r.curl = CURLE_WRITE_ERROR;
	a = answer(r);
	CHECK(a.rc == PROTO_LOST, "too large: rc %d", a.rc);
	CHECK_MSG(a.error, "larger than 16 MiB");
}

/* Retry-After: seconds or an HTTP date, never negative, at most HTTP_RETRY_AFTER_MAX. */
static void
test_retry_after(void)
{
	time_t		now = 1800000000;	/* 2027-01-15T08:00:00Z */

	CHECK(http_retry_after("5", now) == 5, "5");
	CHECK(http_retry_after("0", now) == 0, "0");
	CHECK(http_retry_after("", now) == 0 && http_retry_after(NULL, now) == 0, "none");
	CHECK(http_retry_after("soon", now) == 0, "garbage");
	CHECK(http_retry_after("86400", now) == HTTP_RETRY_AFTER_MAX, "capped");
	CHECK(http_retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now) == 30, "a date: %g",
		  http_retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now));
	CHECK(http_retry_after("Fri, 15 Jan 2027 07:00:00 GMT", now) == 0, "a past date");
}

/* The --api URL: http(s), a host, nothing but a base. */
static void
test_url(void)
{
	char		why[512];
	bool		loopback;

	CHECK(http_check_url("https://gw.example:8080", &loopback, why, sizeof(why)) == 0 &&
		  !loopback, "https: %s", why);
	CHECK(http_check_url("http://127.0.0.1:18080/", &loopback, why, sizeof(why)) == 0 &&
		  loopback, "loopback");
	CHECK(http_check_url("http://localhost:1", &loopback, why, sizeof(why)) == 0 && loopback,
		  "localhost");
	CHECK(http_check_url("ftp://gw.example", &loopback, why, sizeof(why)) != 0, "ftp");
	CHECK_MSG(why, "https://");
	CHECK(http_check_url("https://gw.example/?debug=1", &loopback, why, sizeof(why)) != 0,
		  "a query");
	CHECK(http_check_url("https://ops@gw.example", &loopback, why, sizeof(why)) != 0,
		  "a user name");
	CHECK(http_check_url("gw.example:8080", &loopback, why, sizeof(why)) != 0, "no scheme");
}

/* Runs the HTTP answer tests. */
int
main(void)
{
	printf("# test_http\n");
	test_success();
	test_gateway_errors();
	test_unavailable();
	test_foreign();
	test_transport();
	test_retry_after();
	test_url();
	return t_summary();
}
