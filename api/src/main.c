/*
 * main.c — modelmine-api: options and environment, start-up, and the SIGTERM drain.
 *
 * Every option has an environment variable (MODELMINE_API_*, and MODELMINE_DB for the database), so a
 * service manager can configure it without a command line; an option given wins over its variable.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "modelmine/common.h"

ApiConfig	api_cfg = {
	.listen_host = "127.0.0.1",
	.listen_port = 8080,
	.pool_size = 10,
	.acquire_timeout_ms = 10000,
	.statement_timeout_ms = 10000,
	.max_body = 1024 * 1024,
	.auth_rate = 20,
	.auth_window_s = 60,
	.max_sockets = 10000,
	.max_connections = 4000,
	.connection_timeout_s = 30,
	.max_wait_s = 60,
	.heartbeat_view_ms = 5000,
	.drain_s = 10,
	.access_log = true,
};

static const char usage[] =
	"Usage: modelmine-api --db URL [options]\n"
	"\n"
	"The HTTP face of a ModelMine database: the REST routes, PostgREST-compatible /rpc, Socket.IO\n"
	"events, node endpoints, /health and /openapi.json.  It logs in as an authenticator role that is a\n"
	"member (with INHERIT, the default) of modelmine_anon, modelmine_user, modelmine_node and\n"
	"modelmine_admin, and runs each request as the role its token gives (see docs/API.md):\n"
	"  CREATE ROLE authenticator LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node,\n"
	"      modelmine_admin;\n"
	"\n"
	"Options (environment variable in brackets):\n"
	"  --db URL                 PostgreSQL connection string of the authenticator [MODELMINE_DB]\n"
	"  --listen HOST:PORT       address to serve on (default 127.0.0.1:8080) [MODELMINE_API_LISTEN]\n"
	"  --pool N                 database connections (default 10) [MODELMINE_API_POOL]\n"
	"  --acquire-timeout MS     wait for a free connection, then 504 (default 10000)\n"
	"                           [MODELMINE_API_ACQUIRE_TIMEOUT]\n"
	"  --statement-timeout MS   per request (default 10000) [MODELMINE_API_STATEMENT_TIMEOUT]\n"
	"  --max-body BYTES         request body limit, then 413 (default 1048576) [MODELMINE_API_MAX_BODY]\n"
	"  --auth-rate N/SECONDS    sign-up, sign-in and sign-out POSTs per client address (/auth/...,\n"
	"                           /rpc/signup, /rpc/login), then 429 (default 20/60)\n"
	"                           [MODELMINE_API_AUTH_RATE]\n"
	"  --max-sockets N          concurrent Socket.IO sessions (default 10000) [MODELMINE_API_MAX_SOCKETS]\n"
	"  --max-connections N      concurrent HTTP connections (default 4000)\n"
	"                           [MODELMINE_API_MAX_CONNECTIONS]\n"
	"  --timeout SECONDS        idle or slow (slowloris) connections are closed (default 30)\n"
	"                           [MODELMINE_API_TIMEOUT]\n"
	"  --max-wait SECONDS       longest long-poll of POST /nodes/claim?wait= (default 60)\n"
	"                           [MODELMINE_API_MAX_WAIT]\n"
	"  --heartbeat-view MS      how often node:heartbeat events are refreshed (default 5000)\n"
	"                           [MODELMINE_API_HEARTBEAT_VIEW]\n"
	"  --drain SECONDS          on SIGTERM, time given to requests in flight (default 10)\n"
	"                           [MODELMINE_API_DRAIN]\n"
	"  --tls-cert FILE, --tls-key FILE\n"
	"                           serve HTTPS with this PEM certificate and key\n"
	"                           [MODELMINE_API_TLS_CERT, MODELMINE_API_TLS_KEY]\n"
	"  --web-root DIR           the dashboard's files, served at / (default: ../web beside the binary\n"
	"                           when it holds index.html; \"\" for none) [MODELMINE_API_WEB_ROOT]\n"
	"  --node-modules DIR       where the browser libraries are found (socket.io-client, chart.js;\n"
	"                           default: the web root's node_modules)\n"
	"                           [MODELMINE_API_NODE_MODULES]\n"
	"  --forwarded-for          behind a reverse proxy: the client address (rate limit, access log) is\n"
	"                           the last hop of X-Forwarded-For [MODELMINE_API_FORWARDED_FOR=1]\n"
	"  --quiet                  no access log [MODELMINE_API_QUIET=1]\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0 after a SIGTERM or SIGINT drain, 1 when it cannot start, 2 on a usage error.\n";

/* Prints a usage error and exits 2. */
static void
die_usage(const char *fmt, const char *what, const char *value)
{
	fprintf(stderr, "modelmine-api: ");
	fprintf(stderr, fmt, what, value);
	fprintf(stderr, "\nTry modelmine-api --help.\n");
	exit(2);
}

/* A whole number from lo to hi, or a usage error naming the option. */
static long
parse_long(const char *what, const char *s, long lo, long hi)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
	{
		char		range[96];

		snprintf(range, sizeof(range), "%s (want a whole number from %ld to %ld)", s, lo, hi);
		die_usage("invalid %s: %s", what, range);
	}
	return v;
}

/* HOST:PORT (IPv6 as [addr]:port). */
static void
parse_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	static char host[256];
	size_t		n;

	if (colon == NULL || colon == s)
		die_usage("invalid %s: %s (want HOST:PORT, e.g. 127.0.0.1:8080)", "--listen", s);
	n = (size_t) (colon - s);
	if (s[0] == '[' && n >= 2 && s[n - 1] == ']')
	{
		s++;
		n -= 2;
	}
	if (n >= sizeof(host))
		die_usage("invalid %s: %s (host too long)", "--listen", s);
	memcpy(host, s, n);
	host[n] = '\0';
	api_cfg.listen_host = host;
	api_cfg.listen_port = (int) parse_long("--listen port", colon + 1, 1, 65535);
}

/* N/SECONDS */
static void
parse_rate(const char *s)
{
	const char *slash = strchr(s, '/');
	char		n[32];

	if (slash == NULL || (size_t) (slash - s) >= sizeof(n))
		die_usage("invalid %s: %s (want N/SECONDS, e.g. 20/60)", "--auth-rate", s);
	memcpy(n, s, (size_t) (slash - s));
	n[slash - s] = '\0';
	api_cfg.auth_rate = (int) parse_long("--auth-rate count", n, 1, 1000000);
	api_cfg.auth_window_s = (int) parse_long("--auth-rate seconds", slash + 1, 1, 86400);
}

enum
{
	OPT_DB = 256, OPT_LISTEN, OPT_POOL, OPT_ACQUIRE, OPT_STMT, OPT_BODY, OPT_RATE, OPT_SOCKETS,
	OPT_CONNS, OPT_TIMEOUT, OPT_WAIT, OPT_BEAT, OPT_DRAIN, OPT_CERT, OPT_KEY, OPT_WEB, OPT_MODULES,
	OPT_QUIET, OPT_XFF
};

/* Applies one option (from the command line or its environment variable). */
static void
apply(int opt, const char *v)
{
	switch (opt)
	{
		case OPT_DB:
			api_cfg.db_url = v;
			break;
		case OPT_LISTEN:
			parse_listen(v);
			break;
		case OPT_POOL:
			api_cfg.pool_size = (int) parse_long("--pool", v, 1, 500);
			break;
		case OPT_ACQUIRE:
			api_cfg.acquire_timeout_ms = (int) parse_long("--acquire-timeout", v, 1, 600000);
			break;
		case OPT_STMT:
			api_cfg.statement_timeout_ms = (int) parse_long("--statement-timeout", v, 1, 3600000);
			break;
		case OPT_BODY:
			api_cfg.max_body = (size_t) parse_long("--max-body", v, 1024, 1L << 30);
			break;
		case OPT_RATE:
			parse_rate(v);
			break;
		case OPT_SOCKETS:
			api_cfg.max_sockets = (int) parse_long("--max-sockets", v, 0, 1000000);
			break;
		case OPT_CONNS:
			api_cfg.max_connections = (int) parse_long("--max-connections", v, 4, 1000000);
			break;
		case OPT_TIMEOUT:
			api_cfg.connection_timeout_s = (int) parse_long("--timeout", v, 1, 3600);
			break;
		case OPT_WAIT:
			api_cfg.max_wait_s = (int) parse_long("--max-wait", v, 0, 3600);
			break;
		case OPT_BEAT:
			api_cfg.heartbeat_view_ms = (int) parse_long("--heartbeat-view", v, 100, 3600000);
			break;
		case OPT_DRAIN:
			api_cfg.drain_s = (int) parse_long("--drain", v, 0, 3600);
			break;
		case OPT_CERT:
			api_cfg.tls_cert = v;
			break;
		case OPT_KEY:
			api_cfg.tls_key = v;
			break;
		case OPT_WEB:
			api_cfg.web_root = v;
			break;
		case OPT_MODULES:
			api_cfg.node_modules = v;
			break;
		case OPT_QUIET:
			api_cfg.access_log = !(v == NULL || strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
			break;
		case OPT_XFF:
			api_cfg.forwarded_for = v == NULL || strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
			break;
	}
}

static const struct option options[] = {
	{"db", required_argument, NULL, OPT_DB},
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"pool", required_argument, NULL, OPT_POOL},
	{"acquire-timeout", required_argument, NULL, OPT_ACQUIRE},
	{"statement-timeout", required_argument, NULL, OPT_STMT},
	{"max-body", required_argument, NULL, OPT_BODY},
	{"auth-rate", required_argument, NULL, OPT_RATE},
	{"max-sockets", required_argument, NULL, OPT_SOCKETS},
	{"max-connections", required_argument, NULL, OPT_CONNS},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"max-wait", required_argument, NULL, OPT_WAIT},
	{"heartbeat-view", required_argument, NULL, OPT_BEAT},
	{"drain", required_argument, NULL, OPT_DRAIN},
	{"tls-cert", required_argument, NULL, OPT_CERT},
	{"tls-key", required_argument, NULL, OPT_KEY},
	{"web-root", required_argument, NULL, OPT_WEB},
	{"node-modules", required_argument, NULL, OPT_MODULES},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"forwarded-for", no_argument, NULL, OPT_XFF},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0}
};

static const struct
{
	const char *var;
	int			opt;
}			env_vars[] = {
	{"MODELMINE_DB", OPT_DB}, {"MODELMINE_API_LISTEN", OPT_LISTEN}, {"MODELMINE_API_POOL", OPT_POOL},
	{"MODELMINE_API_ACQUIRE_TIMEOUT", OPT_ACQUIRE},
	{"MODELMINE_API_STATEMENT_TIMEOUT", OPT_STMT}, {"MODELMINE_API_MAX_BODY", OPT_BODY},
	{"MODELMINE_API_AUTH_RATE", OPT_RATE}, {"MODELMINE_API_MAX_SOCKETS", OPT_SOCKETS},
	{"MODELMINE_API_MAX_CONNECTIONS", OPT_CONNS}, {"MODELMINE_API_TIMEOUT", OPT_TIMEOUT},
	{"MODELMINE_API_MAX_WAIT", OPT_WAIT}, {"MODELMINE_API_HEARTBEAT_VIEW", OPT_BEAT},
	{"MODELMINE_API_DRAIN", OPT_DRAIN}, {"MODELMINE_API_TLS_CERT", OPT_CERT},
	{"MODELMINE_API_TLS_KEY", OPT_KEY}, {"MODELMINE_API_WEB_ROOT", OPT_WEB},
	{"MODELMINE_API_NODE_MODULES", OPT_MODULES}, {"MODELMINE_API_QUIET", OPT_QUIET},
	{"MODELMINE_API_FORWARDED_FOR", OPT_XFF},
};

/* Environment first, then the command line over it. */
static void
configure(int argc, char **argv)
{
	int			c;

	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
	{
		const char *v = getenv(env_vars[i].var);

		if (v && *v)
			apply(env_vars[i].opt, v);
	}
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1)
	{
		if (c == 'h')
		{
			fputs(usage, stdout);
			exit(0);
		}
		if (c == '?')
		{
			fprintf(stderr, "Try modelmine-api --help.\n");
			exit(2);
		}
		apply(c, optarg);
	}
	if (optind < argc)
		die_usage("unexpected %s: %s", "argument", argv[optind]);
	if (api_cfg.db_url == NULL)
		die_usage("%s%s is required (or set MODELMINE_DB), e.g. postgresql://authenticator@/modelmine",
				  "--db", "");
	if ((api_cfg.tls_cert == NULL) != (api_cfg.tls_key == NULL))
		die_usage("%s%s: give both --tls-cert and --tls-key, or neither", "TLS", "");
}

/* Waits for SIGTERM or SIGINT. */
static void
wait_for_signal(void)
{
	struct pollfd p = {.fd = mm_sig_pipe_fd(), .events = POLLIN};

	for (;;)
	{
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		if (p.revents & POLLIN)
		{
			int			sig = mm_sig_pipe_drain(0);

			if (sig == SIGTERM || sig == SIGINT)
				return;
		}
	}
}

/* Stops taking work, lets requests in flight finish for up to drain_s, then closes everything. */
static void
drain(void)
{
	double		deadline = mm_now_s() + api_cfg.drain_s;

	fprintf(stderr, "modelmine-api: draining: no new connections, up to %d s for %d request(s)\n",
			api_cfg.drain_s, http_active_requests());
	http_quiesce();
	listen_drain();				/* long-polling claims answer now instead of holding the drain */
	eio_shutdown();
	while (http_active_requests() > 0 && mm_now_s() < deadline)
		usleep(20000);
	if (http_active_requests() > 0)
		fprintf(stderr, "modelmine-api: %d request(s) still running after %d s; closing\n",
				http_active_requests(), api_cfg.drain_s);
	http_stop();
	listen_stop();
	pool_close_all();
	fprintf(stderr, "modelmine-api: stopped\n");
}

int
main(int argc, char **argv)
{
	static const int sigs[] = {SIGTERM, SIGINT};

	configure(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (mm_sig_pipe_open(sigs, 2) < 0)
	{
		perror("modelmine-api: signal pipe");
		return 1;
	}
	if (pool_init() != 0 || eio_init() != 0 || listen_start() != 0 || http_start() != 0)
		return 1;
	fprintf(stderr, "modelmine-api: serving %s://%s:%d/ (pool %d, database %s)\n",
			api_cfg.tls_cert ? "https" : "http", api_cfg.listen_host, api_cfg.listen_port,
			api_cfg.pool_size, pool_retry_after_s() > 0 ? "not reachable yet" : "reachable");
	wait_for_signal();
	drain();
	return 0;
}
