/*
 * test_fetch.c — dataset download limits: file:// only inside the node's
 * file root (no "..", no symlink escape, no existence probing outside it),
 * the size cap, unsupported schemes, URL redaction in messages; and http
 * against a throwaway python3 http.server on loopback when python3 exists:
 * loopback (and every other non-public address) refused before connecting
 * unless allowed, redirects included, and no body in any message.
 */
#include "fetch.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char err[1024];
static char url[1024];

/* Fetches u, its error in err. */
static int
fetch(const char *u, const mm_limits *lim, char **data, size_t *len)
{
	err[0] = '\0';
	*data = NULL;
	return mm_fetch(u, lim, data, len, err, sizeof(err));
}

/* Checks that fetching u fails, names n1 (and n2 unless NULL), and returns no data. */
static void
expect_fetch_error(const char *u, const mm_limits *lim, const char *n1, const char *n2)
{
	char	   *data;
	size_t		len;
	int			rc = fetch(u, lim, &data, &len);

	CHECK(rc == -1 && data == NULL, "fetch of %s succeeded", u);
	if (rc == 0)
	{
		free(data);
		return;
	}
	CHECK_MSG(err, n1);
	if (n2)
		CHECK_MSG(err, n2);
	CHECK(strstr(err, "SECRET") == NULL, "message leaks file contents: %s", err);
}

/* file:// datasets: only below the node's data directory, within the size cap. */
static void
test_file(void)
{
	const char *root = t_tempdir();
	char		outside_dir[] = "/tmp/mmtrain-outside.XXXXXX";
	char		outside[128];
	char	   *data;
	size_t		len;
	mm_limits	lim = {.max_download_bytes = 1000, .download_timeout_s = 5, .file_root = root};
	char		big[2000];
	char	   *sub;

	t_write("ok.csv", "x,y\n1,SECRET\n", 13);
	t_write("a b.csv", "x,y\n", 4);
	memset(big, 'x', sizeof(big));
	t_write("big.csv", big, sizeof(big));
	t_write("exact.csv", big, 1000);
	sub = t_track("subdir");
	CHECK(mkdir(sub, 0700) == 0, "mkdir: %s", strerror(errno));

	/* a secret file outside the root, and a symlink inside the root pointing at it */
	CHECK(mkdtemp(outside_dir) != NULL, "mkdtemp");
	snprintf(outside, sizeof(outside), "%s/secret.csv", outside_dir);
	{
		FILE	   *f = fopen(outside, "w");

		fputs("SECRET\n", f);
		fclose(f);
	}
	CHECK(symlink(outside, t_track("link.csv")) == 0, "symlink: %s", strerror(errno));
	CHECK(symlink(root, t_track("self")) == 0, "symlink: %s", strerror(errno));

	/* inside the root */
	snprintf(url, sizeof(url), "file://%s/ok.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0, "%s", err);
	CHECK(data != NULL && len == 13 && memcmp(data, "x,y\n1,SECRET\n", 13) == 0 &&
		  data[len] == '\0',
		  "contents");
	free(data);
	snprintf(url, sizeof(url), "FILE://localhost%s/./subdir/../ok.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 13, "localhost host, dot segments: %s", err);
	free(data);
	snprintf(url, sizeof(url), "file://%s/a%%20b.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 4, "percent-encoded name: %s", err);
	free(data);
	snprintf(url, sizeof(url), "file://%s/self/ok.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 13, "symlink staying inside the root: %s",
		  err);
	free(data);
	snprintf(url, sizeof(url), "file://%s/exact.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 1000, "file exactly at the cap: %s", err);
	free(data);

	/* outside the root, by path, "..", or symlink */
	expect_fetch_error("file:///etc/passwd", &lim, "outside the directory", "file:///etc/passwd");
	snprintf(url, sizeof(url), "file://%s/../../etc/passwd", root);
	expect_fetch_error(url, &lim, "outside the directory", NULL);
	snprintf(url, sizeof(url), "file://%s/link.csv", root);
	expect_fetch_error(url, &lim, "outside the directory", NULL);
	snprintf(url, sizeof(url), "file://%s", outside);
	expect_fetch_error(url, &lim, "outside the directory", NULL);
	/* existence outside the root is not revealed */
	expect_fetch_error("file:///no/such/file.csv", &lim, "outside the directory", NULL);
	/* a prefix that is not a path component boundary is still outside */
	snprintf(url, sizeof(url), "file://%s-evil/x.csv", root);
	expect_fetch_error(url, &lim, "outside the directory", NULL);

	/* no root: file:// refused outright */
	snprintf(url, sizeof(url), "file://%s/ok.csv", root);
	expect_fetch_error(url, NULL, "not allowed", "no file root");
	{
		mm_limits	noroot = {.max_download_bytes = 1000};

		expect_fetch_error(url, &noroot, "not allowed", NULL);
	}

	snprintf(url, sizeof(url), "file://%s/missing.csv", root);
	expect_fetch_error(url, &lim, "file not found", "missing.csv");
	snprintf(url, sizeof(url), "file://%s/big.csv", root);
	expect_fetch_error(url, &lim, "2000 bytes", "limit of 1000 bytes");
	snprintf(url, sizeof(url), "file://%s/subdir", root);
	expect_fetch_error(url, &lim, "not a regular file", NULL);
	snprintf(url, sizeof(url), "file://%s/bad%%zz.csv", root);
	expect_fetch_error(url, &lim, "percent-escape", NULL);
	snprintf(url, sizeof(url), "file://%s/ok.csv%%00.txt", root);
	expect_fetch_error(url, &lim, "percent-escape", NULL);
	snprintf(url, sizeof(url), "file://example.com%s/ok.csv", root);
	expect_fetch_error(url, &lim, "host", NULL);

	expect_fetch_error("ftp://example.com/x.csv", &lim, "unsupported URL scheme",
					   "ftp://example.com/x.csv");
	expect_fetch_error("gopher://example.com/x", &lim, "unsupported URL scheme", NULL);
	expect_fetch_error("x.csv", &lim, "unsupported URL scheme", NULL);

	unlink(outside);
	rmdir(outside_dir);
}

/* How URLs appear in messages: no credentials, no query, no control characters. */
static void
test_show_url(void)
{
	char		out[256];

	mm_fetch_show_url(out, sizeof(out),
					  "https://user:pw@example.com/data.csv?X-Amz-Signature=abc#frag");
	CHECK(strcmp(out, "https://***@example.com/data.csv?...") == 0, "redacted as %s", out);
	mm_fetch_show_url(out, sizeof(out), "http://example.com/a\nb");
	CHECK(strchr(out, '\n') == NULL, "control character kept");
}

/* ---------- http against a python3 http.server on loopback ---------- */

/*
 * Serves the scratch directory, plus /redirect?to=URL (a 302 to URL) and
 * /fail (a 500); both answers carry a body a message must never quote.
 * Each request is appended to requests.log as "BIND PATH", so a test can
 * tell whether an address was contacted at all.
 */
static const char server_py[] =
	"import http.server, sys\n"
	"bind, port = sys.argv[1], int(sys.argv[2])\n"
	"class H(http.server.SimpleHTTPRequestHandler):\n"
	"    def answer(self, status, headers, body):\n"
	"        self.send_response(status)\n"
	"        for k, v in headers: self.send_header(k, v)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.end_headers()\n"
	"        self.wfile.write(body)\n"
	"    def do_GET(self):\n"
	"        with open('requests.log', 'a') as f: f.write(bind + ' ' + self.path + '\\n')\n"
	"        if self.path.startswith('/redirect?to='):\n"
	"            self.answer(302, [('Location', self.path[13:])], b'SECRET-REDIRECT-BODY')\n"
	"        elif self.path == '/fail':\n"
	"            self.answer(500, [], b'SECRET-ERROR-BODY')\n"
	"        else:\n"
	"            super().do_GET()\n"
	"    def log_message(self, *args): pass\n"
	"http.server.ThreadingHTTPServer((bind, port), H).serve_forever()\n";

/* A TCP port nothing listens on now, or -1. */
static int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t	alen = sizeof(a);
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	int			port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && bind(s, (struct sockaddr *) &a, sizeof(a)) == 0 &&
		getsockname(s, (struct sockaddr *) &a, &alen) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

/* Something accepts connections on ip:port. */
static int
port_open(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	int			ok;

	inet_pton(AF_INET, ip, &a.sin_addr);
	ok = s >= 0 && connect(s, (struct sockaddr *) &a, sizeof(a)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

/* Sleeps ms milliseconds. */
static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Start the server on ip:port serving dir; returns its pid, 0 if python3 is unavailable. */
static pid_t
start_http(const char *dir, const char *ip, int port)
{
	char		portstr[16];
	pid_t		pid;

	snprintf(portstr, sizeof(portstr), "%d", port);
	fflush(stdout);				/* or the child repeats our buffered output */
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0)
	{
		FILE	   *devnull = freopen("/dev/null", "w", stdout);

		(void) devnull;
		devnull = freopen("/dev/null", "w", stderr);
		if (chdir(dir) != 0)
			_exit(127);
		execlp("python3", "python3", "server.py", ip, portstr, (char *) NULL);
		_exit(127);
	}
	/* wait up to 10 s for it to listen; give up if it exits */
	for (int i = 0; i < 200; i++)
	{
		int			status;

		if (port_open(ip, port))
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 0;
		sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

/* Stops a test HTTP server. */
static void
stop_http(pid_t pid)
{
	if (pid > 0)
	{
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/* Did the servers log a request containing needle? */
static int
requested(const char *needle)
{
	char		line[2048];
	int			found = 0;
	FILE	   *f;

	snprintf(line, sizeof(line), "%s/requests.log", t_tempdir());
	f = fopen(line, "r");
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* The refusal message for an address, and that it holds no content. */
static void
expect_refused(const char *u, const mm_limits *lim, const char *addr, const char *why)
{
	char		want[128];

	snprintf(want, sizeof(want), "dataset address %s is not allowed (%s)", addr, why);
	expect_fetch_error(u, lim, want, "a node operator can allow it with --allow-net");
	CHECK(strncmp(err, "cannot fetch http://", 20) == 0, "message does not start with the URL: %s",
		  err);
}

/* http(s) datasets: loopback refused however spelled, --allow-net, redirects, statuses, limits. */
static void
test_http(void)
{
	int			port = free_port();
	pid_t		pid,
				pid2;
	char	   *data;
	size_t		len;
	mm_cidr		nets[2];
	mm_limits	lim = {.max_download_bytes = 1000, .download_timeout_s = 10, .allow_net = nets,
					   .n_allow_net = 1};
	mm_limits	deflt = {.max_download_bytes = 1000, .download_timeout_s = 10};

	t_write("server.py", server_py, sizeof(server_py) - 1);
	t_write("secret.txt", "SECRET first line\nSECRET second line\n", 37);
	t_track("requests.log");
	CHECK(mm_cidr_parse("127.0.0.1/32", &nets[0], err, sizeof(err)) == 0, "%s", err);
	CHECK(mm_cidr_parse("::1", &nets[1], err, sizeof(err)) == 0, "%s", err);
	if (port <= 0 || (pid = start_http(t_tempdir(), "127.0.0.1", port)) == 0)
	{
		printf("# http: skipped (python3 http.server not available)\n");
		return;
	}
	/* a second server on another loopback address: a redirect target to refuse */
	pid2 = start_http(t_tempdir(), "127.0.0.2", port);
	CHECK(pid2 != 0, "no server on 127.0.0.2:%d", port);

	/* by default loopback is refused, before connecting, however it is spelled */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok.csv?probe-default", port);
	expect_refused(url, &deflt, "127.0.0.1", "loopback");
	CHECK(!requested("probe-default"), "the refused address was contacted");
	expect_refused(url, NULL, "127.0.0.1", "loopback");
	snprintf(url, sizeof(url), "http://localhost:%d/ok.csv?probe-name", port);
	expect_fetch_error(url, &deflt, "is not allowed (loopback)", "--allow-net");
	CHECK(!requested("probe-name"), "a name resolving to loopback was contacted");
	snprintf(url, sizeof(url), "http://[::1]:%d/ok.csv", port);
	expect_refused(url, &deflt, "::1", "loopback");
	snprintf(url, sizeof(url), "http://[::ffff:127.0.0.1]:%d/ok.csv?probe-mapped", port);
	expect_refused(url, &deflt, "::ffff:127.0.0.1", "loopback");
	CHECK(!requested("probe-mapped"), "an IPv4-mapped loopback address was contacted");
	snprintf(url, sizeof(url), "http://169.254.169.254:%d/latest/meta-data/", port);
	expect_refused(url, &deflt, "169.254.169.254", "cloud metadata");
	snprintf(url, sizeof(url), "http://0.0.0.0:%d/ok.csv", port);
	expect_refused(url, &deflt, "0.0.0.0", "unspecified");

	/* allowed with --allow-net 127.0.0.1/32 */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok.csv", port);
	CHECK(fetch(url, &lim, &data, &len) == 0, "%s", err);
	CHECK(data != NULL && len == 13 && memcmp(data, "x,y\n1,SECRET\n", 13) == 0, "http contents");
	free(data);

	/* ::1 allowed by ::1/128: no longer refused (nothing listens there, so it fails otherwise) */
	lim.n_allow_net = 2;
	snprintf(url, sizeof(url), "http://[::1]:%d/ok.csv", port);
	if (fetch(url, &lim, &data, &len) == 0)
		free(data);
	else
		CHECK(strstr(err, "not allowed") == NULL, "::1 refused although allowed: %s", err);
	lim.n_allow_net = 1;

	/* a redirect from the allowed 127.0.0.1 to the refused 127.0.0.2: refused, never contacted */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/redirect?to=http://127.0.0.2:%d/secret.txt",
			 port, port);
	expect_fetch_error(url, &lim, "after a redirect, dataset address 127.0.0.2 is not allowed "
					   "(loopback)", NULL);
	CHECK(!requested("127.0.0.2 /secret.txt"), "the redirect target was contacted");
	/* ... with 127.0.0.0/8 allowed the same redirect is followed: the refusal was the guard's */
	CHECK(mm_cidr_parse("127.0.0.0/8", &nets[0], err, sizeof(err)) == 0, "%s", err);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 37, "allowed redirect: %s", err);
	free(data);
	CHECK(requested("127.0.0.2 /secret.txt"), "the allowed redirect target was not contacted");
	CHECK(mm_cidr_parse("127.0.0.1", &nets[0], err, sizeof(err)) == 0, "%s", err);

	/* failed downloads: the status, never the body */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/fail", port);
	expect_fetch_error(url, &lim, "HTTP status 500", "/fail");
	CHECK(strstr(err, "ERROR-BODY") == NULL, "error body quoted: %s", err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/missing.csv?token=SECRET", port);
	expect_fetch_error(url, &lim, "HTTP status 404", "/missing.csv?...");
	CHECK(strstr(err, "Error response") == NULL && strstr(err, "Nothing matches") == NULL,
		  "404 body quoted: %s", err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/redirect?to=/fail", port);
	expect_fetch_error(url, &lim, "HTTP status 500", NULL);
	CHECK(strstr(err, "REDIRECT-BODY") == NULL && strstr(err, "ERROR-BODY") == NULL,
		  "a body quoted: %s", err);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big.csv", port);
	expect_fetch_error(url, &lim, "over the download limit of 1000 bytes", "big.csv");

	/* python's server redirects a directory without a slash: followed (http -> http) */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/subdir", port);
	CHECK(fetch(url, &lim, &data, &len) == 0, "redirect not followed: %s", err);
	free(data);

	/*
	 * The whole job, as a job owner would send it: a loopback URL whose first
	 * line would show up in the "not a column" message if it were fetched.
	 */
	{
		char		config[512];
		json_t	   *cfg,
				   *result = NULL;

		snprintf(config, sizeof(config), "{\"trainer\":\"logreg\",\"dataset\":"
				 "{\"url\":\"http://127.0.0.1:%d/secret.txt\",\"label\":\"nope\"}}", port);
		cfg = json_loads(config, 0, NULL);
		err[0] = '\0';
		CHECK(mm_train_run(cfg, &deflt, NULL, NULL, &result, err, sizeof(err)) == -1 &&
			  result == NULL,
			  "the job ran");
		CHECK_MSG(err, "dataset address 127.0.0.1 is not allowed (loopback)");
		CHECK(strstr(err, "SECRET") == NULL && strstr(err, "first line") == NULL,
			  "job error quotes the file: %s", err);
		json_decref(cfg);
	}

	stop_http(pid);
	stop_http(pid2);

	/* nothing listening any more */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok.csv", port);
	expect_fetch_error(url, &lim, "cannot fetch", "127.0.0.1");
}

/* Runs the download tests. */
int
main(void)
{
	printf("# test_fetch\n");
	test_show_url();
	test_file();
	test_http();
	t_cleanup();
	return t_summary();
}
