/*
 * fetch.c — dataset download (see fetch.h).
 *
 * http(s) goes through the libcurl easy API restricted to http and https
 * (redirects too, at most 5), with connect and total timeouts and the size
 * cap enforced in the write callback, so an endless or huge body is cut off
 * rather than buffered.
 *
 * Every address libcurl is about to connect to passes mm_addr_refusal()
 * first, in libcurl's open-socket callback: that is the address DNS gave
 * libcurl this time (so a name that re-resolves to 127.0.0.1 is caught) and
 * the address of every redirect target. A refused address is never
 * connected to, so nothing of what it would have served can reach a
 * message. Proxies are switched off (http_proxy and friends are ignored):
 * through a proxy the callback would only see the proxy's address.
 * On failure messages give the status or the reason, never the body.
 *
 * file:// is opt-in per node (mm_limits.file_root) and is read here with
 * open(2) rather than by curl: the path is first checked lexically, then
 * resolved with realpath(3) and checked against the resolved root, and the
 * resolved path is opened with O_NOFOLLOW. So a job cannot reach files
 * outside the root by "..", by symlinks, or by probing: paths outside the
 * root are refused before the file system is asked whether they exist.
 */
#include "fetch.h"
#include "netguard.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REDIRECTS 5L
#define CONNECT_TIMEOUT_S 15L

/* Writes the URL as messages show it: no credentials, no query, sanitised (see fetch.h). */
void
mm_fetch_show_url(char *out, size_t outlen, const char *url)
{
	char		tmp[512];
	const char *sep = strstr(url, "://");
	const char *auth = sep ? sep + 3 : url;
	size_t		auth_len = strcspn(auth, "/?#");
	const char *at = NULL;
	const char *rest;
	size_t		rest_len;

	for (size_t i = 0; i < auth_len; i++)
		if (auth[i] == '@')
			at = auth + i;
	rest = at ? at + 1 : auth;
	rest_len = strcspn(rest, "?#");
	snprintf(tmp, sizeof(tmp), "%.*s%s%.*s%s",
			 (int) (auth - url), url,
			 at ? "***@" : "",
			 (int) (rest_len > 400 ? 400 : rest_len), rest,
			 rest[rest_len] == '?' ? "?..." : "");
	mm_sanitize(out, outlen, tmp, 200);
}

/* ---------- file:// ---------- */

/* Lexically normalise an absolute path: collapse "//", ".", "..". */
static char *
normalize_path(const char *path)
{
	char	   *out = malloc(strlen(path) + 2);
	size_t		n = 0;
	const char *p = path;

	if (out == NULL)
		return NULL;
	while (*p)
	{
		const char *s;
		size_t		cl;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		cl = (size_t) (p - s);
		if (cl == 1 && s[0] == '.')
			continue;
		if (cl == 2 && s[0] == '.' && s[1] == '.')
		{
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		out[n++] = '/';
		memcpy(out + n, s, cl);
		n += cl;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

/* Is path root itself or below it? Both normalised. */
static int
path_under(const char *path, const char *root)
{
	size_t		rl = strlen(root);

	if (strcmp(root, "/") == 0)
		return path[0] == '/';
	return strncmp(path, root, rl) == 0 && (path[rl] == '\0' || path[rl] == '/');
}

/* The value of one hex digit, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode %XX in the n bytes at s; NULL for a bad escape or %00. */
static char *
percent_decode(const char *s, size_t n)
{
	char	   *out = malloc(n + 1);
	size_t		o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
	{
		int			h;
		int			l;

		if (s[i] != '%')
		{
			out[o++] = s[i];
			continue;
		}
		h = i + 2 < n ? hexval(s[i + 1]) : -1;
		l = i + 2 < n ? hexval(s[i + 2]) : -1;
		if (h < 0 || l < 0 || (h == 0 && l == 0))
		{
			free(out);
			return NULL;
		}
		out[o++] = (char) (h * 16 + l);
		i += 2;
	}
	out[o] = '\0';
	return out;
}

/* Reads a file:// dataset: a local path below lim->file_root only, at most cap bytes. */
static int
fetch_file(const char *url, const char *shown, const mm_limits *lim, size_t cap,
		   char **data, size_t *len, char *err, size_t errlen)
{
	const char *hoststart = url + 7;	/* after "file://" */
	size_t		hostlen = strcspn(hoststart, "/");
	const char *pathstart = hoststart + hostlen;
	size_t		pathlen = strcspn(pathstart, "?#");
	char	   *path = NULL;
	char	   *norm = NULL;
	char	   *root_norm = NULL;
	char	   *rroot = NULL;
	char	   *rpath = NULL;
	char	   *buf = NULL;
	size_t		used = 0;
	size_t		bufcap;
	struct stat st;
	int			fd = -1;
	int			rc = -1;

	if (lim == NULL || lim->file_root == NULL)
		return mm_err(err, errlen, "file:// URLs are not allowed on this node (no file root "
								   "configured): %s", shown);
	if (hostlen != 0 && !(hostlen == 9 && strncasecmp(hoststart, "localhost", 9) == 0))
		return mm_err(err, errlen, "file:// URL must not name a host other than localhost: %s",
					  shown);
	if (pathlen == 0)
		return mm_err(err, errlen, "file:// URL has no path: %s", shown);
	if (lim->file_root[0] != '/')
		return mm_err(err, errlen, "the node's file root is not an absolute path; file:// is "
								   "unavailable");

	path = percent_decode(pathstart, pathlen);
	if (path == NULL)
	{
		mm_err(err, errlen, "file:// URL has a bad percent-escape: %s", shown);
		goto done;
	}
	norm = normalize_path(path);
	root_norm = normalize_path(lim->file_root);
	if (norm == NULL || root_norm == NULL)
	{
		mm_err(err, errlen, "out of memory");
		goto done;
	}
	rroot = realpath(lim->file_root, NULL);
	if (rroot == NULL)
	{
		mm_err(err, errlen, "the node's file root cannot be resolved (%s); file:// is unavailable",
			   strerror(errno));
		goto done;
	}
	if (!path_under(norm, root_norm) && !path_under(norm, rroot))
	{
		mm_err(err, errlen, "%s is outside the directory this node serves file:// datasets from",
			   shown);
		goto done;
	}
	rpath = realpath(norm, NULL);
	if (rpath == NULL)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			mm_err(err, errlen, "file not found: %s", shown);
		else
			mm_err(err, errlen, "cannot open %s: %s", shown, strerror(errno));
		goto done;
	}
	if (!path_under(rpath, rroot))
	{
		/* a symlink inside the root pointing out of it */
		mm_err(err, errlen, "%s is outside the directory this node serves file:// datasets from",
			   shown);
		goto done;
	}
	fd = open(rpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
	{
		mm_err(err, errlen, "cannot open %s: %s", shown, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		mm_err(err, errlen, "%s is not a regular file", shown);
		goto done;
	}
	if ((unsigned long long) st.st_size > (unsigned long long) cap)
	{
		mm_err(err, errlen, "%s is %lld bytes, over the download limit of %zu bytes",
			   shown, (long long) st.st_size, cap);
		goto done;
	}

	/* read to EOF, not just st_size: the file may be growing */
	bufcap = (size_t) st.st_size + 1;
	buf = malloc(bufcap + 1);
	if (buf == NULL)
	{
		mm_err(err, errlen, "out of memory reading %s", shown);
		goto done;
	}
	for (;;)
	{
		ssize_t		r;

		if (used == bufcap)
		{
			size_t		ncap = bufcap * 2 > cap + 1 ? cap + 1 : bufcap * 2;
			char	   *nb;

			if (used > cap)
			{
				mm_err(err, errlen, "%s is over the download limit of %zu bytes", shown, cap);
				goto done;
			}
			nb = realloc(buf, ncap + 1);
			if (nb == NULL)
			{
				mm_err(err, errlen, "out of memory reading %s", shown);
				goto done;
			}
			buf = nb;
			bufcap = ncap;
		}
		r = read(fd, buf + used, bufcap - used);
		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			mm_err(err, errlen, "cannot read %s: %s", shown, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		used += (size_t) r;
	}
	if (used > cap)
	{
		mm_err(err, errlen, "%s is over the download limit of %zu bytes", shown, cap);
		goto done;
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	buf = NULL;
	rc = 0;

done:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	free(norm);
	free(root_norm);
	free(rroot);
	free(rpath);
	return rc;
}

/* ---------- http(s) ---------- */

typedef struct sink
{
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t		limit;
	int			too_big;
	int			nomem;
} sink;

/* libcurl's write callback: keeps the body in memory, stops the transfer past the limit. */
static size_t
sink_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	sink	   *s = userdata;
	size_t		n = size * nmemb;

	if (n > s->limit - s->len)
	{
		s->too_big = 1;
		return 0;				/* makes curl abort with CURLE_WRITE_ERROR */
	}
	if (s->len + n + 1 > s->cap)
	{
		size_t		ncap = s->cap ? s->cap : 65536;
		char	   *nb;

		while (ncap < s->len + n + 1)
			ncap *= 2;
		if (ncap > s->limit + 1)
			ncap = s->limit + 1;
		nb = realloc(s->buf, ncap);
		if (nb == NULL)
		{
			s->nomem = 1;
			return 0;
		}
		s->buf = nb;
		s->cap = ncap;
	}
	memcpy(s->buf + s->len, ptr, n);
	s->len += n;
	return n;
}

/* The first address the open-socket callback refused, for the message. */
typedef struct guard
{
	const mm_limits *lim;
	const char *why;
	char		addr[64];
} guard;

/* libcurl's socket callback: refuses an address netguard.c forbids (after DNS and redirects). */
static curl_socket_t
open_checked(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	guard	   *g = clientp;
	const char *why = mm_addr_refusal(&a->addr, a->addrlen, g->lim ? g->lim->allow_net : NULL,
									  g->lim ? g->lim->n_allow_net : 0);

	(void) purpose;
	if (why != NULL)
	{
		if (g->why == NULL)
		{
			g->why = why;
			mm_addr_format(&a->addr, a->addrlen, g->addr, sizeof(g->addr));
		}
		return CURL_SOCKET_BAD; /* libcurl tries the name's next address, if any */
	}
	return socket(a->family, a->socktype, a->protocol);
}

/* Downloads an http(s) dataset within the size cap and timeout, to allowed addresses only. */
static int
fetch_http(const char *url, const char *shown, const mm_limits *lim, size_t cap, long timeout,
		   char **data, size_t *len, char *err, size_t errlen)
{
	CURL	   *h = curl_easy_init();
	sink		s = {0};
	guard		g = {.lim = lim};
	char		ebuf[CURL_ERROR_SIZE];
	char		reason[CURL_ERROR_SIZE + 8];
	CURLcode	rc;

	if (h == NULL)
		return mm_err(err, errlen, "cannot fetch %s: libcurl initialisation failed", shown);
	s.limit = cap;
	ebuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
					 timeout < CONNECT_TIMEOUT_S ? timeout : CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) cap);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "modelmine-worker");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &g);
	curl_easy_setopt(h, CURLOPT_PROXY, "");

	rc = curl_easy_perform(h);
	mm_sanitize(reason, sizeof(reason), ebuf[0] ? ebuf : curl_easy_strerror(rc), 200);
	if (rc != CURLE_OK)
	{
		long		status = 0;

		if (g.why != NULL && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT))
		{
			long		redirects = 0;

			curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects);
			mm_err(err, errlen, "cannot fetch %s: %sdataset address %s is not allowed (%s); a node "
								"operator can allow it with --allow-net",
				   shown, redirects > 0 ? "after a redirect, " : "", g.addr, g.why);
		}
		else if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED)
			mm_err(err, errlen, "%s is over the download limit of %zu bytes", shown, cap);
		else if (s.nomem)
			mm_err(err, errlen, "out of memory downloading %s", shown);
		else if (rc == CURLE_HTTP_RETURNED_ERROR &&
				 curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status >= 400)
			mm_err(err, errlen, "HTTP status %ld fetching %s", status, shown);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			mm_err(err, errlen, "timed out fetching %s (limit %ld s): %s", shown, timeout, reason);
		else
			mm_err(err, errlen, "cannot fetch %s: %s", shown, reason);
		curl_easy_cleanup(h);
		free(s.buf);
		return -1;
	}
	curl_easy_cleanup(h);

	if (s.buf == NULL)
	{
		s.buf = malloc(1);
		if (s.buf == NULL)
			return mm_err(err, errlen, "out of memory downloading %s", shown);
	}
	s.buf[s.len] = '\0';
	*data = s.buf;
	*len = s.len;
	return 0;
}

/* Fetches a dataset URL into memory within the node's limits (see fetch.h). */
int
mm_fetch(const char *url, const mm_limits *lim, char **data, size_t *len,
		 char *err, size_t errlen)
{
	size_t		cap = lim && lim->max_download_bytes ? lim->max_download_bytes :
		MM_DEFAULT_MAX_DOWNLOAD;
	long		timeout = lim && lim->download_timeout_s > 0 ? lim->download_timeout_s :
		MM_DEFAULT_TIMEOUT_S;
	char		shown[256];

	*data = NULL;
	*len = 0;
	if (cap > SIZE_MAX / 4)
		cap = SIZE_MAX / 4;		/* keeps the buffer arithmetic below from overflowing */
	mm_fetch_show_url(shown, sizeof(shown), url);
	if (strncasecmp(url, "file://", 7) == 0)
		return fetch_file(url, shown, lim, cap, data, len, err, errlen);
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
		return fetch_http(url, shown, lim, cap, timeout, data, len, err, errlen);
	return mm_err(err, errlen, "unsupported URL scheme in %s: use file://, http:// or https://",
				  shown);
}
