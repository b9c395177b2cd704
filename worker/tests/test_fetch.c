/*
 * test_fetch.c - dataset download limits: file:// only inside the node's
 * file root (no "..", no symlink escape, no existence probing outside it),
 * the size cap, unsupported schemes, URL redaction in messages; and http
 * against a throwaway python3 http.server on loopback when python3 exists.
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

static int
fetch(const char *u, const mm_limits *lim, char **data, size_t *len)
{
	err[0] = '\0';
	*data = NULL;
	return mm_fetch(u, lim, data, len, err, sizeof(err));
}

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
	CHECK(data != NULL && len == 13 && memcmp(data, "x,y\n1,SECRET\n", 13) == 0 && data[len] == '\0',
		  "contents");
	free(data);
	snprintf(url, sizeof(url), "FILE://localhost%s/./subdir/../ok.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 13, "localhost host, dot segments: %s", err);
	free(data);
	snprintf(url, sizeof(url), "file://%s/a%%20b.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 4, "percent-encoded name: %s", err);
	free(data);
	snprintf(url, sizeof(url), "file://%s/self/ok.csv", root);
	CHECK(fetch(url, &lim, &data, &len) == 0 && len == 13, "symlink staying inside the root: %s", err);
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

	expect_fetch_error("ftp://example.com/x.csv", &lim, "unsupported URL scheme", "ftp://example.com/x.csv");
	expect_fetch_error("gopher://example.com/x", &lim, "unsupported URL scheme", NULL);
	expect_fetch_error("x.csv", &lim, "unsupported URL scheme", NULL);

	unlink(outside);
	rmdir(outside_dir);
}

static void
test_show_url(void)
{
	char		out[256];

	mm_fetch_show_url(out, sizeof(out), "https://user:pw@example.com/data.csv?X-Amz-Signature=abc#frag");
	CHECK(strcmp(out, "https://***@example.com/data.csv?...") == 0, "redacted as %s", out);
	mm_fetch_show_url(out, sizeof(out), "http://example.com/a\nb");
	CHECK(strchr(out, '\n') == NULL, "control character kept");
}

/* ---------- http against python3 -m http.server on loopback ---------- */

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

static int
port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	int			ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = s >= 0 && connect(s, (struct sockaddr *) &a, sizeof(a)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Start the server serving dir; returns its pid, 0 if python3 is unavailable. */
static pid_t
start_http(const char *dir, int port)
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
		execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", portstr, (char *) NULL);
		_exit(127);
	}
	/* wait up to 10 s for it to listen; give up if it exits */
	for (int i = 0; i < 200; i++)
	{
		int			status;

		if (port_open(port))
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 0;
		sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

static void
test_http(void)
{
	int			port = free_port();
	pid_t		pid;
	char	   *data;
	size_t		len;
	mm_limits	lim = {.max_download_bytes = 1000, .download_timeout_s = 10, .file_root = NULL};

	if (port <= 0 || (pid = start_http(t_tempdir(), port)) == 0)
	{
		printf("# http: skipped (python3 http.server not available)\n");
		return;
	}

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok.csv", port);
	CHECK(fetch(url, &lim, &data, &len) == 0, "%s", err);
	CHECK(data != NULL && len == 13 && memcmp(data, "x,y\n1,SECRET\n", 13) == 0, "http contents");
	free(data);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/missing.csv?token=SECRET", port);
	expect_fetch_error(url, &lim, "HTTP status 404", "/missing.csv?...");

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big.csv", port);
	expect_fetch_error(url, &lim, "over the download limit of 1000 bytes", "big.csv");

	/* python's server redirects a directory without a slash: followed (http -> http) */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/subdir", port);
	CHECK(fetch(url, &lim, &data, &len) == 0, "redirect not followed: %s", err);
	free(data);

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);

	/* nothing listening any more */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok.csv", port);
	expect_fetch_error(url, &lim, "cannot fetch", "127.0.0.1");
}

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
