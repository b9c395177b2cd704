/*
 * static.c — the dashboard's files from --web-root, served at / for GET and HEAD: "/" and any path
 * without a file extension get index.html (the pages route in the browser).  Paths are resolved
 * inside the root only (no "..", no symlink out of it), and each file gets its content type, an
 * ETag and no-cache revalidation, so a deploy shows at the next load.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"

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
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* Serves one file that exists under a trusted directory (also used for the Socket.IO bundle). */
enum MHD_Result
static_send_file(Request *r, const char *file)
{
	int			fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	struct MHD_Response *resp;
	char		etag[64];
	const char *inm = req_header(r, "If-None-Match");
	enum MHD_Result out;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		if (fd >= 0)
			close(fd);
		return reply_error(r, 404, "PGRST125", "Not found", NULL, NULL);
	}
	snprintf(etag, sizeof(etag), "\"%lx-%lx\"", (unsigned long) st.st_mtime, (unsigned long) st.st_size);
	if (inm && strcmp(inm, etag) == 0)
	{
		ReplyHeader h = {"ETag", etag};

		close(fd);
		return reply(r, 304, NULL, NULL, 0, &h, 1);
	}
	resp = MHD_create_response_from_fd((uint64_t) st.st_size, fd);
	if (resp == NULL)
	{
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(file));
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (strstr(content_type(file), "text/html"))
		MHD_add_response_header(resp, "Content-Security-Policy",
								"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
								"style-src 'self'; script-src 'self'; frame-ancestors 'none'");
	reply_add_common(r, resp);
	out = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	r->status = 200;
	r->replied = true;
	return out;
}

/* GET and HEAD under --web-root; *handled false when there is no root or the method is not a read. */
enum MHD_Result
static_handle(Request *r, bool *handled)
{
	char		want[PATH_MAX + 600],
				real[PATH_MAX],
				root[PATH_MAX];
	const char *last;

	*handled = false;
	if (api_cfg.web_root == NULL || !req_is_read(r) || realpath(api_cfg.web_root, root) == NULL)
		return MHD_NO;
	*handled = true;
	last = strrchr(r->path, '/');
	if (strstr(r->path, "..") || strlen(r->path) > 512)
		return reply_error(r, 404, "PGRST125", "Not found", NULL, NULL);
	if (strcmp(r->path, "/") == 0 || (last && strchr(last, '.') == NULL))
		snprintf(want, sizeof(want), "%s/index.html", root);
	else
		snprintf(want, sizeof(want), "%s%s", root, r->path);
	if (realpath(want, real) == NULL || strncmp(real, root, strlen(root)) != 0 ||
		(real[strlen(root)] != '/' && real[strlen(root)] != '\0'))
		return reply_error(r, 404, "PGRST125", "Not found", NULL, "No such file in the dashboard.");
	return static_send_file(r, real);
}
