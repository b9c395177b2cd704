/*
 * session.c — the session file: the JWT from modelmine.login, alone on one line, mode 0600.
 *
 * Path: $MODELMINE_SESSION_FILE, else $XDG_CONFIG_HOME/modelmine/session, else
 * ~/.config/modelmine/session.  The default directory is kept at mode 0700.  The file is written to
 * a temporary file in the same directory and renamed, so a crash never leaves half a token behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static bool custom_path;

/* The session file's path (worked out once). */
const char *
session_path(void)
{
	static char path[4096];
	const char *env = getenv("MODELMINE_SESSION_FILE");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (path[0])
		return path;
	if (env && env[0])
	{
		custom_path = true;
		snprintf(path, sizeof(path), "%s", env);
	}
	else if (xdg && xdg[0] == '/')	/* the XDG spec: a relative value is invalid and ignored */
		snprintf(path, sizeof(path), "%s/modelmine/session", xdg);
	else
		snprintf(path, sizeof(path), "%s/.config/modelmine/session", home && home[0] ? home : ".");
	return path;
}

/* The token, or NULL when there is no session (a bad file is reported). */
char *
session_load(void)
{
	const char *path = session_path();
	FILE	   *f = fopen(path, "r");
	char		buf[8192];
	struct stat st;

	if (f == NULL)
	{
		if (errno != ENOENT)
			fprintf(stderr, "modelmine: cannot read the session file %s (%s)\n", path,
					strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "modelmine: warning: the session file %s is readable by others (mode %03o); "
				"chmod 600 it, or log out and in again\n", path, (unsigned) (st.st_mode & 0777));
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf[0] ? strdup(buf) : NULL;
}

/* mkdir -p for the file's parent directories, each new one 0700. */
static int
make_parents(const char *path)
{
	char	   *p = strdup(path);
	int			rc = 0;

	for (char *q = p + 1; *q && rc == 0; q++)
	{
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			rc = -1;
		*q = '/';
	}
	if (rc == 0 && !custom_path)
	{
		/* the default directory is ours alone: keep it 0700 even if something loosened it */
		char	   *slash = strrchr(p, '/');

		if (slash)
		{
			*slash = '\0';
			if (chmod(p, 0700) != 0)
				rc = -1;
		}
	}
	free(p);
	return rc;
}

/* Writes the token to the session file atomically, mode 0600; -1 after a message. */
int
session_save(const char *token)
{
	const char *path = session_path();
	size_t		n = strlen(path) + 16;
	char	   *tmp = malloc(n);
	int			fd = -1,
				ok;

	snprintf(tmp, n, "%s.XXXXXX", path);
	ok = make_parents(path) == 0 && (fd = mkstemp(tmp)) >= 0;	/* mkstemp creates 0600 */
	ok = ok && fchmod(fd, 0600) == 0 &&
		write(fd, token, strlen(token)) == (ssize_t) strlen(token) && write(fd, "\n", 1) == 1 &&
		fsync(fd) == 0;
	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	ok = ok && rename(tmp, path) == 0;
	if (!ok)
	{
		fprintf(stderr, "modelmine: cannot write the session file %s (%s)\n", path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
	free(tmp);
	return ok ? 0 : -1;
}

/* 0 when removed or already absent. */
int
session_remove(void)
{
	const char *path = session_path();

	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	fprintf(stderr, "modelmine: cannot remove the session file %s (%s)\n", path, strerror(errno));
	return -1;
}
