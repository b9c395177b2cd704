/*
 * out.c — how values look: colours (only when asked), numbers, times, aligned tables and key/value
 * lists for people, JSON for programs.
 *
 * Database text is cleaned (text_clean) before it reaches a table, so a node name or job title
 * cannot move the cursor or recolour the terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "modelmine/protocol.h"

/* The colour of a job or node status ("" for anything else). */
const char *
status_color(const char *status)
{
	static const struct
	{
		const char *status,
				   *color;
	}			map[] = {
		{MM_STATUS_PENDING, C_YELLOW}, {MM_STATUS_RUNNING, C_CYAN}, {MM_STATUS_COMPLETED, C_GREEN},
		{MM_STATUS_FAILED, C_RED}, {MM_STATUS_CANCELED, C_MAGENTA},
		{MM_NODE_ONLINE, C_GREEN}, {MM_NODE_BUSY, C_YELLOW}, {MM_NODE_OFFLINE, C_RED},
		{MM_NODE_MAINTENANCE, C_MAGENTA},
		{MM_WITHDRAWAL_APPROVED, C_GREEN}, {MM_WITHDRAWAL_REJECTED, C_RED},	/* PENDING as jobs */
	};

	for (size_t i = 0; status && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(status, map[i].status) == 0)
			return map[i].color;
	return "";
}

/* text wrapped in a colour when on (and the colour is not empty); always a new string. */
char *
colored(bool on, const char *color, const char *text)
{
	char	   *s;

	if (!on || color == NULL || color[0] == '\0')
		return strdup(text);
	if (asprintf(&s, "%s%s%s", color, text, C_RESET) < 0)
		return strdup(text);
	return s;
}

/* v with at most `decimals` decimals, trailing zeros dropped: 47.5, 0.9123, 12. */
char *
fmt_number(double v, int decimals)
{
	char		buf[64];
	char	   *dot;

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	if ((dot = strchr(buf, '.')) != NULL)
	{
		char	   *end = buf + strlen(buf) - 1;

		while (end > dot && *end == '0')
			*end-- = '\0';
		if (end == dot)
			*end = '\0';
	}
	if (strcmp(buf, "-0") == 0)
		strcpy(buf, "0");
	return strdup(buf);
}

/* Any JSON value as text for people: strings cleaned, reals to 4 decimals, null as "-". */
char *
fmt_value(const json_t *v)
{
	char		buf[32];

	if (v == NULL || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))
		return text_clean(json_string_value(v));
	if (json_is_integer(v))
	{
		snprintf(buf, sizeof(buf), "%lld", (long long) json_integer_value(v));
		return strdup(buf);
	}
	if (json_is_real(v))
		return fmt_number(json_real_value(v), 4);
	if (json_is_boolean(v))
		return strdup(json_is_true(v) ? "yes" : "no");
	{
		char	   *dump = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15)),
				   *clean = text_clean(dump ? dump : "?");

		free(dump);
		return clean;
	}
}

/* An ISO 8601 timestamp from the database as "YYYY-MM-DD HH:MM:SS" (the session's time zone). */
char *
fmt_time(const json_t *v)
{
	const char *s = json_string_value(v);
	char	   *t,
			   *clean;

	if (s == NULL || strlen(s) < 19)
		return fmt_value(v);
	t = strndup(s, 19);
	if (t[10] == 'T')
		t[10] = ' ';
	clean = text_clean(t);
	free(t);
	return clean;
}

/* Seconds since the epoch of an ISO 8601 timestamp with offset; -1 if unreadable. */
static double
iso_epoch(const char *s)
{
	struct tm	tm = {0};
	const char *p;
	double		frac = 0;
	int			oh = 0,
				om = 0,
				sign = 1;

	if (sscanf(s, "%4d-%2d-%2d%*c%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6 || strlen(s) < 19)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	p = s + 19;
	if (*p == '.')
	{
		char	   *end;

		frac = strtod(p, &end);
		p = end;
	}
	if (*p == '+' || *p == '-')
	{
		sign = *p == '-' ? -1 : 1;
		sscanf(p + 1, "%2d:%2d", &oh, &om);
	}
	return (double) timegm(&tm) + frac - sign * (oh * 3600 + om * 60);
}

/* "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
char *
fmt_ago(const json_t *v)
{
	const char *s = json_string_value(v);
	double		t = s ? iso_epoch(s) : -1,
				d;
	char		buf[48];

	if (t < 0)
		return fmt_value(v);
	d = (double) time(NULL) - t;
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(buf, sizeof(buf), "%.0f s ago", d);
	else if (d < 7200)
		snprintf(buf, sizeof(buf), "%.0f min ago", d / 60);
	else if (d < 172800)
		snprintf(buf, sizeof(buf), "%.0f h ago", d / 3600);
	else
		snprintf(buf, sizeof(buf), "%.0f d ago", d / 86400);
	return strdup(buf);
}

/* A table cell: a timestamp as "YYYY-MM-DD HH:MM:SS". */
char *
cell_time(const json_t *row, const char *key)
{
	return fmt_time(json_object_get(row, key));
}

/* A table cell: the age of a timestamp ("5 min ago"). */
char *
cell_ago(const json_t *row, const char *key)
{
	return fmt_ago(json_object_get(row, key));
}

/* A table cell: a percentage to one decimal ("47.5%"), or "-". */
char *
cell_pct(const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);
	char	   *n,
			   *s;

	if (!json_is_number(v))
		return strdup("-");
	n = fmt_number(json_number_value(v), 1);
	if (asprintf(&s, "%s%%", n) < 0)
		s = NULL;
	free(n);
	return s ? s : strdup("?");
}

/* Rows as an aligned table (header in bold), cells fitted to their column's max. */
void
table_lines(const json_t *rows, const Column *cols, int ncols, bool color, Lines *out)
{
	size_t		nrows = json_array_size(rows);
	char	  **cell = calloc((nrows + 1) * ncols, sizeof(char *));
	int		   *width = calloc(ncols, sizeof(int));

	for (int k = 0; k < ncols; k++)
	{
		cell[k] = strdup(cols[k].header);
		width[k] = text_width(cols[k].header);
	}
	for (size_t i = 0; i < nrows; i++)
	{
		const json_t *row = json_array_get(rows, i);

		for (int k = 0; k < ncols; k++)
		{
			const Column *col = &cols[k];
			char	   *raw = col->fn ? col->fn(row, col->key)
				: fmt_value(json_object_get(row, col->key));
			char	   *clean = text_clean(raw);
			char	   *fit = col->max > 0 ? text_fit(clean, col->max) : strdup(clean);
			int			w = text_width(fit);

			free(raw);
			free(clean);
			cell[(i + 1) * ncols + k] = fit;
			if (w > width[k])
				width[k] = w;
		}
	}
	for (size_t i = 0; i <= nrows; i++)
	{
		Str			b = {0};
		int			pending_pad = 0;

		for (int k = 0; k < ncols; k++)
		{
			const char *text = cell[i * ncols + k];
			int			pad = width[k] - text_width(text);
			const char *col = i == 0 ? C_BOLD : cols[k].status ? status_color(text) : "";
			char	   *shown = colored(color, col, text);

			str_pad(&b, pending_pad + (k > 0 ? 2 : 0));
			pending_pad = 0;
			if (cols[k].right)
				str_pad(&b, pad);
			else
				pending_pad = pad;	/* only written if another column follows: no trailing blanks */
			str_add(&b, shown);
			free(shown);
		}
		lines_add(out, str_take(&b));
	}
	for (size_t i = 0; i < (nrows + 1) * ncols; i++)
		free(cell[i]);
	free(cell);
	free(width);
}

/* Rows as an aligned table on stdout. */
void
print_table(Ctx *c, const json_t *rows, const Column *cols, int ncols)
{
	Lines		l = {0};

	table_lines(rows, cols, ncols, c->color, &l);
	lines_print(&l, stdout);
	lines_free(&l);
}

/* "key   value" lines, keys aligned; the values are taken as they are (already cleaned). */
void
kv_lines(const char *const *keys, char *const *vals, int n, bool color, Lines *out)
{
	int			w = 0;

	for (int i = 0; i < n; i++)
		if (text_width(keys[i]) > w)
			w = text_width(keys[i]);
	for (int i = 0; i < n; i++)
	{
		Str			b = {0};
		char	   *k = colored(color, C_BOLD, keys[i]);

		str_add(&b, k);
		str_pad(&b, w - text_width(keys[i]) + 2);
		str_add(&b, vals[i] ? vals[i] : "-");
		free(k);
		lines_add(out, str_take(&b));
	}
}

/* JSON for programs on stdout, indented, with a newline. */
void
print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}
