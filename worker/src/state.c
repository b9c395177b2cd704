/*
 * state.c — the worker's state file: its node id, key and name, JSON, mode 0600.  Written to a
 * temporary file in the same directory and renamed, so a crash never leaves half a key behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker.h"

/* $XDG_STATE_HOME/modelmine/worker-NAME.json (~/.local/state without XDG_STATE_HOME); malloc'd. */
char *
default_state_file(const char *name)
{
	const char *base = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char	   *path;
	size_t		n;

	if (base == NULL || base[0] == '\0')
	{
		static char buf[4096];

		snprintf(buf, sizeof(buf), "%s/.local/state", home ? home : ".");
		base = buf;
	}
	n = strlen(base) + strlen(name) + 64;
	path = malloc(n);
	snprintf(path, n, "%s/modelmine/worker-%s.json", base, name);
	return path;
}

/*
 * Reads the node's key, id and the name it registered under (*name NULL in a file without one; both
 * malloc'd).  1 when a key was loaded, 0 when the file does not exist, -1 on a bad file (logged).
 */
int
state_load(const char *path, char **node_key, long long *node_id, char **name)
{
	json_error_t err;
	json_t	   *s;
	const char *key,
			   *saved_name;
	struct stat st;

	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return 0;
		logmsg("cannot read state file %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & 077)
		logmsg("warning: state file %s is readable by others (mode %03o); "
			   "it holds the node key, chmod 600 it", path, (unsigned) (st.st_mode & 0777));
	s = json_load_file(path, 0, &err);
	if (s == NULL)
	{
		logmsg("state file %s is not valid JSON (line %d: %s)", path, err.line, err.text);
		return -1;
	}
	key = json_string_value(json_object_get(s, "node_key"));
	if (key == NULL)
	{
		logmsg("state file %s has no node_key", path);
		json_decref(s);
		return -1;
	}
	*node_key = strdup(key);
	*node_id = json_integer_value(json_object_get(s, "node_id"));
	saved_name = json_string_value(json_object_get(s, "name"));
	*name = saved_name && saved_name[0] ? strdup(saved_name) : NULL;
	json_decref(s);
	return 1;
}

/* Creates the directories above path (mode 0700), as far as they are missing. */
static void
mkdirs(const char *path)
{
	char	   *p = strdup(path);

	for (char *q = p + 1; *q; q++)
	{
		if (*q == '/')
		{
			*q = '\0';
			mkdir(p, 0700);
			*q = '/';
		}
	}
	free(p);
}

/* Saves the node's key, id and name atomically (temporary file, fsync, rename); 0, or -1 logged. */
int
state_save(const char *path, const char *node_key, long long node_id, const char *name)
{
	json_t	   *s = json_pack("{s:I, s:s, s:s}", "node_id", (json_int_t) node_id,
								"node_key", node_key, "name", name);
	char	   *text = json_dumps(s, JSON_INDENT(2));
	size_t		n = strlen(path) + 16;
	char	   *tmp = malloc(n);
	int			fd,
				ok;

	json_decref(s);
	mkdirs(path);
	snprintf(tmp, n, "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text) &&
		write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, path) == 0;
	if (!ok)
		logmsg("cannot write state file %s: %s", path, strerror(errno));
	free(tmp);
	free(text);
	return ok ? 0 : -1;
}
