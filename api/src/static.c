/*
 * static.c — the dashboard's files, served at / for GET and HEAD from --web-root, or by default from
 * ../web beside the binary's directory (api/modelmine-api -> web/) when that holds an index.html, so
 * `modelmine-api --db ...` in a checkout serves the dashboard with no flag; --web-root "" serves
 * none.  "/" gets index.html; the pages route after the # in the browser, so any other path is a
 * file or a JSON 404 (an API client's typo never gets a page of HTML).
 *
 * Paths are resolved inside the root only (no "..", no symlink out of it); node_modules and the npm
 * manifests under the root are not served.  The browser libraries the dashboard uses are served from
 * an explicit list under /vendor/, read from the npm packages in <root>/node_modules (or
 * --node-modules): nothing else of node_modules is reachable.
 *
 * Caching: the dashboard's own files get an ETag and "no-cache" (revalidate: a deploy shows at the
 * next load); the vendored libraries, which the pages ask for with their version in the query
 * (?v=4.6.1), may be kept a week.  Compression: when the client accepts gzip and FILE.gz exists and
 * is not older than FILE, FILE.gz is sent with Content-Encoding: gzip (web/precompress.sh makes them;
 * without them everything is sent as it is).  HTML carries the Content-Security-Policy: scripts,
 * styles and connections from this origin only, no inline script or style, no framing.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"

#define CSP "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; " \
	"script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#define VENDOR_CACHE "public, max-age=604800"

/* The browser libraries under /vendor/: URL name -> file under node_modules. */
static const struct
{
	const char *name;
	const char *file;
}			vendor[] = {
	{"chart.umd.js", "chart.js/dist/chart.umd.js"},
	{"chart.umd.js.map", "chart.js/dist/chart.umd.js.map"},
};

/* The content type for a file name. */
static const char *
content_type(const char *path)
{
	static const struct
	{
		const char *ext;
		const char *type;
	}			types[] = {
		{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
		{".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
		{".json", "application/json; charset=utf-8"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
		{".ico", "image/x-icon"}, {".map", "application/json; charset=utf-8"}, {".txt", "text/plain; charset=utf-8"},
		{".webmanifest", "application/manifest+json"}, {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* Whether Accept-Encoding takes gzip: "gzip" or "*" listed, without q=0. */
static bool
accepts_gzip(Request *r)
{
	const char *ae = req_header(r, "Accept-Encoding");
	char		buf[512];
	char	   *save = NULL;

	if (ae == NULL)
		return false;
	snprintf(buf, sizeof(buf), "%s", ae);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *semi = strchr(tok, ';');
		const char *q;
		size_t		n;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		n = semi ? (size_t) (semi - tok) : strlen(tok);
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			n--;
		if (!(n == 4 && strncasecmp(tok, "gzip", 4) == 0) && !(n == 1 && tok[0] == '*'))
			continue;
		q = semi ? strstr(semi, "q=") : NULL;
		return q == NULL || strtod(q + 2, NULL) > 0;
	}
	return false;
}

/* Serves one file that exists under a trusted directory (also used for the Socket.IO bundle). */
enum MHD_Result
static_send_file(Request *r, const char *file)
{
	int			fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st,
				gzst;
	struct MHD_Response *resp;
	char		etag[80],
				gz[PATH_MAX + 8];
	const char *inm = req_header(r, "If-None-Match");
	const char *type = content_type(file);
	bool		vendored = strstr(file, "/node_modules/") != NULL;
	bool		compressible = strncmp(type, "text/", 5) == 0 || strstr(type, "json") || strstr(type, "svg");
	bool		gzipped = false;
	enum MHD_Result out;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		if (fd >= 0)
			close(fd);
		return reply_error(r, 404, "PGRST125", "Not found", NULL, NULL);
	}
	/* FILE.gz, when the client takes gzip and it was made from this FILE (not older than it) */
	if (compressible && accepts_gzip(r) && snprintf(gz, sizeof(gz), "%s.gz", file) < (int) sizeof(gz))
	{
		int			gfd = open(gz, O_RDONLY | O_CLOEXEC);

		if (gfd >= 0 && fstat(gfd, &gzst) == 0 && S_ISREG(gzst.st_mode) && gzst.st_mtime >= st.st_mtime)
		{
			close(fd);
			fd = gfd;
			gzipped = true;
		}
		else if (gfd >= 0)
			close(gfd);
	}
	snprintf(etag, sizeof(etag), "\"%lx-%lx%s\"", (unsigned long) st.st_mtime, (unsigned long) st.st_size,
			 gzipped ? "-gz" : "");
	if (inm && strcmp(inm, etag) == 0)
	{
		ReplyHeader h[] = {{"ETag", etag}, {"Cache-Control", vendored ? VENDOR_CACHE : "no-cache"},
		{"Vary", compressible ? "Accept-Encoding" : NULL}};

		close(fd);
		return reply(r, 304, NULL, NULL, 0, h, 3);
	}
	resp = MHD_create_response_from_fd((uint64_t) (gzipped ? gzst.st_size : st.st_size), fd);
	if (resp == NULL)
	{
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Cache-Control", vendored ? VENDOR_CACHE : "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (compressible)
		MHD_add_response_header(resp, "Vary", "Accept-Encoding");
	if (gzipped)
		MHD_add_response_header(resp, "Content-Encoding", "gzip");
	if (strstr(type, "text/html"))
	{
		MHD_add_response_header(resp, "Content-Security-Policy", CSP);
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	}
	reply_add_common(r, resp);
	out = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	r->status = 200;
	r->replied = true;
	return out;
}

/* ../web beside the binary's directory, when it holds index.html; "" when not (found once). */
static char default_root[PATH_MAX];
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void
find_default_root(void)
{
	char		exe[PATH_MAX],
				want[PATH_MAX + 16],
				index[PATH_MAX + 16];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char	   *slash;

	default_root[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	snprintf(want, sizeof(want), "%s/../web", exe);
	if (realpath(want, default_root) == NULL)
	{
		default_root[0] = '\0';
		return;
	}
	snprintf(index, sizeof(index), "%s/index.html", default_root);
	if (access(index, R_OK) != 0)
		default_root[0] = '\0';
}

/* The web root in use: --web-root, else the default; NULL when there is none. */
const char *
static_web_root(void)
{
	if (api_cfg.web_root)
		return api_cfg.web_root[0] ? api_cfg.web_root : NULL;	/* --web-root "": no dashboard */
	pthread_once(&default_once, find_default_root);
	return default_root[0] ? default_root : NULL;
}

/* /vendor/NAME: one of the listed files from --node-modules or <root>/node_modules. */
static enum MHD_Result
send_vendor(Request *r, const char *root, const char *name)
{
	char		file[PATH_MAX + 256];

	for (size_t i = 0; i < sizeof(vendor) / sizeof(vendor[0]); i++)
	{
		if (strcmp(name, vendor[i].name) != 0)
			continue;
		if (api_cfg.node_modules)
			snprintf(file, sizeof(file), "%s/%s", api_cfg.node_modules, vendor[i].file);
		else
			snprintf(file, sizeof(file), "%s/node_modules/%s", root, vendor[i].file);
		if (access(file, R_OK) == 0)
			return static_send_file(r, file);
		return reply_error(r, 404, "PGRST125", "Not found", NULL,
						   "Install the dashboard's browser libraries: npm ci in web/.");
	}
	return reply_error(r, 404, "PGRST125", "Not found", NULL, "No such file in the dashboard.");
}

/* GET and HEAD under the web root; *handled false when there is no root or the method is not a read. */
enum MHD_Result
static_handle(Request *r, bool *handled)
{
	char		want[PATH_MAX + 600],
				real[PATH_MAX],
				root[PATH_MAX];
	const char *configured = static_web_root();

	*handled = false;
	if (configured == NULL || !req_is_read(r) || realpath(configured, root) == NULL)
		return MHD_NO;
	*handled = true;
	if (strstr(r->path, "..") || strlen(r->path) > 512)
		return reply_error(r, 404, "PGRST125", "Not found", NULL, NULL);
	if (strncmp(r->path, "/vendor/", 8) == 0)
		return send_vendor(r, root, r->path + 8);
	/* the npm side of the web root is not part of the site */
	if (strncmp(r->path, "/node_modules/", 14) == 0 || strcmp(r->path, "/node_modules") == 0 ||
		strcmp(r->path, "/package.json") == 0 || strcmp(r->path, "/package-lock.json") == 0 ||
		strstr(r->path, "/.") != NULL)
		return reply_error(r, 404, "PGRST125", "Not found", NULL, "No such file in the dashboard.");
	if (strcmp(r->path, "/") == 0)
		snprintf(want, sizeof(want), "%s/index.html", root);
	else
		snprintf(want, sizeof(want), "%s%s", root, r->path);
	if (realpath(want, real) == NULL || strncmp(real, root, strlen(root)) != 0 ||
		(real[strlen(root)] != '/' && real[strlen(root)] != '\0'))
		return reply_error(r, 404, "PGRST125", "Not found", NULL, "No such file in the dashboard.");
	return static_send_file(r, real);
}
