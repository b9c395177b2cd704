/*
 * config.c — modelmine-notify's settings.  Each has one name, used as the long option (--smtp-url),
 * as the key in the configuration file (smtp_url or smtp-url), and, upper-cased with MODELMINE_ in
 * front, as the environment variable (MODELMINE_SMTP_URL).  Later sources win: the file, then the
 * environment, then the command line, so a secret such as the SMTP password can stay out of both
 * the command line (visible in ps) and a file.
 */
#include "notify.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Every setting, as the option names it. */
static const char *const names[] = {
	"db", "smtp-url", "smtp-user", "smtp-password", "smtp-from", "smtp-tls", "cacert",
	"dashboard-url", "allow-net", "batch", "lease-seconds", "poll-ms", "offline-check", "timeout",
	NULL
};

void
nt_config_defaults(nt_config *c)
{
	memset(c, 0, sizeof(*c));
	c->database = strdup("");
	c->smtp_tls = strdup("require");
	c->smtp_from = strdup("ModelMine <noreply@localhost>");
	c->batch = 50;
	c->lease_seconds = 60;
	c->poll_ms = 250;
	c->offline_check_s = 5;
	c->timeout_s = 10;
}

/* Frees the settings' strings (the defaults and set_str copy them). */
void
nt_config_free(nt_config *c)
{
	free(c->database);
	free(c->smtp_url);
	free(c->smtp_user);
	free(c->smtp_password);
	free(c->smtp_from);
	free(c->smtp_tls);
	free(c->cacert);
	free(c->dashboard_url);
	memset(c, 0, sizeof(*c));
}

/* "smtp-url" -> "MODELMINE_SMTP_URL" (a static buffer). */
const char *
nt_config_env_name(const char *name)
{
	static char buf[64];
	size_t		n = (size_t) snprintf(buf, sizeof(buf), "MODELMINE_");

	for (const char *p = name; *p && n + 1 < sizeof(buf); p++)
		buf[n++] = *p == '-' ? '_' : (char) toupper((unsigned char) *p);
	buf[n] = '\0';
	return buf;
}

static int
set_int(int *dst, const char *name, const char *value, int lo, int hi, char *err, size_t errlen)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi)
		return mm_err(err, errlen, "%s must be a whole number from %d to %d, got \"%s\"", name, lo,
					  hi, value);
	*dst = (int) v;
	return 0;
}

static void
set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = *value ? strdup(value) : NULL;
}

/* Sets one setting by name (dashes or underscores); -1 with a message for a bad name or value. */
int
nt_config_set(nt_config *c, const char *name_in, const char *value, char *err, size_t errlen)
{
	char		name[32];
	size_t		i;

	for (i = 0; name_in[i] && i + 1 < sizeof(name); i++)
		name[i] = name_in[i] == '_' ? '-' : name_in[i];
	name[i] = '\0';

	if (strcmp(name, "db") == 0)
		set_str(&c->database, value);
	else if (strcmp(name, "smtp-url") == 0)
	{
		if (*value && strncmp(value, "smtp://", 7) != 0 && strncmp(value, "smtps://", 8) != 0)
			return mm_err(err, errlen, "smtp-url must start with smtp:// (STARTTLS per "
						  "smtp-tls) or smtps:// (TLS from the start), got \"%s\"", value);
		set_str(&c->smtp_url, value);
	}
	else if (strcmp(name, "smtp-user") == 0)
		set_str(&c->smtp_user, value);
	else if (strcmp(name, "smtp-password") == 0)
		set_str(&c->smtp_password, value);
	else if (strcmp(name, "smtp-from") == 0)
	{
		if (strpbrk(value, "\r\n") != NULL || strchr(value, '@') == NULL)
			return mm_err(err, errlen, "smtp-from must be one line with an address, such as "
								  "\"ModelMine <noreply@example.com>\"");
		set_str(&c->smtp_from, value);
	}
	else if (strcmp(name, "smtp-tls") == 0)
	{
		if (strcmp(value, "require") != 0 && strcmp(value, "try") != 0 &&
			strcmp(value, "none") != 0)
			return mm_err(err, errlen, "smtp-tls must be require, try or none, got \"%s\"", value);
		set_str(&c->smtp_tls, value);
	}
	else if (strcmp(name, "cacert") == 0)
		set_str(&c->cacert, value);
	else if (strcmp(name, "dashboard-url") == 0)
	{
		if (*value && strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
			return mm_err(err, errlen, "dashboard-url must be an http:// or https:// URL, "
						  "got \"%s\"", value);
		set_str(&c->dashboard_url, value);
		if (c->dashboard_url)	/* links append "/#/..." */
		{
			size_t		n = strlen(c->dashboard_url);

			while (n > 0 && c->dashboard_url[n - 1] == '/')
				c->dashboard_url[--n] = '\0';
		}
	}
	else if (strcmp(name, "allow-net") == 0)
	{
		/* a list: commas or whitespace; each occurrence adds to it */
		char	   *copy = strdup(value),
				   *save = NULL;

		for (char *tok = strtok_r(copy, ", \t\n", &save); tok;
			 tok = strtok_r(NULL, ", \t\n", &save))
		{
			if (c->n_allow_net >= NT_MAX_ALLOW_NET)
			{
				free(copy);
				return mm_err(err, errlen, "at most %d allow-net networks", NT_MAX_ALLOW_NET);
			}
			if (mm_cidr_parse(tok, &c->allow_net[c->n_allow_net], err, errlen) != 0)
			{
				free(copy);
				return -1;
			}
			c->n_allow_net++;
		}
		free(copy);
	}
	else if (strcmp(name, "batch") == 0)
		return set_int(&c->batch, name, value, 1, 1000, err, errlen);
	else if (strcmp(name, "lease-seconds") == 0)
		return set_int(&c->lease_seconds, name, value, 1, 3600, err, errlen);
	else if (strcmp(name, "poll-ms") == 0)
		return set_int(&c->poll_ms, name, value, 10, 600000, err, errlen);
	else if (strcmp(name, "offline-check") == 0)
		return set_int(&c->offline_check_s, name, value, 0, 86400, err, errlen);
	else if (strcmp(name, "timeout") == 0)
		return set_int(&c->timeout_s, name, value, 1, 600, err, errlen);
	else
		return mm_err(err, errlen, "unknown setting \"%s\"", name_in);
	return 0;
}

/* Lines "name = value"; blank lines and lines starting with # are skipped. */
int
nt_config_file(nt_config *c, const char *path, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			lineno = 0;

	if (f == NULL)
		return mm_err(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *p = line,
				   *eq,
				   *end;
		char		why[NT_ERR_LEN];

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (eq == NULL)
		{
			fclose(f);
			return mm_err(err, errlen, "%s:%d: expected \"name = value\"", path, lineno);
		}
		end = eq;
		while (end > p && isspace((unsigned char) end[-1]))
			end--;
		*end = '\0';
		eq++;
		while (isspace((unsigned char) *eq))
			eq++;
		end = eq + strlen(eq);
		while (end > eq && isspace((unsigned char) end[-1]))
			*--end = '\0';
		if (nt_config_set(c, p, eq, why, sizeof(why)) != 0)
		{
			fclose(f);
			return mm_err(err, errlen, "%s:%d: %s", path, lineno, why);
		}
	}
	fclose(f);
	return 0;
}

/* Every MODELMINE_<NAME> that is set. */
int
nt_config_env(nt_config *c, char *err, size_t errlen)
{
	for (int i = 0; names[i]; i++)
	{
		const char *env = nt_config_env_name(names[i]);
		const char *v = getenv(env);
		char		why[NT_ERR_LEN];

		if (v != NULL && nt_config_set(c, names[i], v, why, sizeof(why)) != 0)
			return mm_err(err, errlen, "%s: %s", env, why);
	}
	return 0;
}
