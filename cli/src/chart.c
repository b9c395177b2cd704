/*
 * chart.c — the two network charts for the terminal, drawn into Lines:
 *   - jobs per month by status: a column chart, one group of five columns per month (pending,
 *     running, completed, failed, canceled), with eighth-block tops in colour, or the statuses'
 *     initials (P R C F X) without colour, so the chart still reads on a monochrome log;
 *   - tokens earned per node: a horizontal bar chart, names aligned, bars scaled to the largest.
 * The job_timeline rows (month, status, jobs) and token_distribution rows (node_id, name,
 * tokens_earned) arrive as JSON arrays, exactly as network.c fetched them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

const char *const job_statuses[MM_NSTATUSES] = MM_JOB_STATUSES;
static const char initials[MM_NSTATUSES] = {'P', 'R', 'C', 'F', 'X'};
static const char *const colors[MM_NSTATUSES] = {C_YELLOW, C_CYAN, C_GREEN, C_RED, C_MAGENTA};

#define MAX_MONTHS 120
#define GROUP_GAP 2

/* A job status's place in job_statuses, or -1. */
static int
status_index(const char *s)
{
	for (int i = 0; s && i < MM_NSTATUSES; i++)
		if (strcmp(s, job_statuses[i]) == 0)
			return i;
	return -1;
}

static const char *const month_names[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* "2026-06-01" -> "Jun" (and the year when asked) */
static void
month_label(const char *iso, bool year, char *out, size_t n)
{
	int			y = 0,
				m = 0;

	if (iso == NULL || sscanf(iso, "%4d-%2d", &y, &m) != 2 || m < 1 || m > 12)
		snprintf(out, n, "?");
	else if (year)
		snprintf(out, n, "%s %d", month_names[m - 1], y);
	else
		snprintf(out, n, "%s", month_names[m - 1]);
}

/* One cell of a column of value v (scaled to rows of height) at row r (1 = bottom). */
static void
add_cell(Str *b, long long v, long long max, int height, int r, int status, bool color)
{
	static const char *const eighths[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	double		h = max > 0 ? (double) v * height / max : 0;
	int			e;

	if (v > 0 && h < 0.125)
		h = 0.125;				/* a job is never invisible */
	if (!color)
	{
		/* letters: whole rows, rounded, at least one for any job */
		int			rows = (int) (h + 0.5);

		if (v > 0 && rows == 0)
			rows = 1;
		str_addn(b, r <= rows ? &initials[status] : " ", 1);
		return;
	}
	e = h >= r ? 8 : h <= r - 1 ? 0 : (int) ((h - (r - 1)) * 8 + 0.5);
	if (e == 0 && h > r - 1 && v > 0)
		e = 1;
	if (e == 0)
	{
		str_add(b, " ");
		return;
	}
	str_add(b, colors[status]);
	str_add(b, eighths[e]);
	str_add(b, C_RESET);
}

/*
 * The row nearest the middle whose top stands for a whole number of jobs (r * max / height exact),
 * so its label is true of the bars; 0 when no row between the bottom and the top does.
 */
static int
middle_tick(long long max, int height)
{
	int			best = 0;

	if (height < 4)
		return 0;
	for (int r = 1; r < height; r++)
		if ((long long) r * max % height == 0 && (long long) r * max / height >= 1 &&
			(best == 0 || abs(2 * r - height) < abs(2 * best - height)))
			best = r;
	return best;
}

/* Jobs per month by status as a column chart of height rows, with axis, months and legend. */
void
chart_timeline(const json_t *rows, int height, bool color, Lines *out)
{
	const char *months[MAX_MONTHS];
	long long	count[MAX_MONTHS][MM_NSTATUSES] = {{0}};
	long long	max = 0;
	int			nm = 0,
				axis,
				mid;
	char		lab[32],
				first[32],
				last[32];
	size_t		i;
	const json_t *row;
	Str			b = {0};

	json_array_foreach(rows, i, row)
	{
		const char *m = json_string_value(json_object_get(row, "month"));
		int			s = status_index(json_string_value(json_object_get(row, "status")));

		if (m == NULL || s < 0)
			continue;
		if (nm == 0 || strcmp(months[nm - 1], m) != 0)
		{
			if (nm == MAX_MONTHS)
				break;
			months[nm++] = m;
		}
		count[nm - 1][s] += json_integer_value(json_object_get(row, "jobs"));
	}
	for (int m = 0; m < nm; m++)
		for (int s = 0; s < MM_NSTATUSES; s++)
			if (count[m][s] > max)
				max = count[m][s];
	if (nm == 0)
	{
		lines_add(out, strdup("(no months to show)"));
		return;
	}
	month_label(months[0], true, first, sizeof(first));
	month_label(months[nm - 1], true, last, sizeof(last));
	str_addf(&b, "Jobs per month by status, %s to %s", first, last);
	lines_add(out, colored(color, C_BOLD, b.s));
	free(str_take(&b));

	snprintf(lab, sizeof(lab), "%lld", max);
	axis = (int) strlen(lab);
	mid = middle_tick(max, height);
	for (int r = height; r >= 1; r--)
	{
		if (r == height)
			str_addf(&b, "%*lld ┤ ", axis, max);
		else if (r == mid)
			str_addf(&b, "%*lld ┤ ", axis, (long long) r * max / height);
		else
			str_addf(&b, "%*s │ ", axis, "");
		for (int m = 0; m < nm; m++)
		{
			for (int s = 0; s < MM_NSTATUSES; s++)
				add_cell(&b, count[m][s], max, height, r, s, color);
			if (m < nm - 1)
				str_pad(&b, GROUP_GAP);
		}
		lines_add(out, str_take(&b));
	}
	str_addf(&b, "%*d └", axis, 0);
	for (int k = 0; k < nm * (MM_NSTATUSES + GROUP_GAP); k++)
		str_add(&b, "─");
	lines_add(out, str_take(&b));
	str_pad(&b, axis + 3);
	for (int m = 0; m < nm; m++)
	{
		month_label(months[m], false, lab, sizeof(lab));
		str_add(&b, lab);
		if (m < nm - 1)
			str_pad(&b, MM_NSTATUSES + GROUP_GAP - (int) strlen(lab));
	}
	lines_add(out, str_take(&b));
	str_pad(&b, axis + 3);
	for (int s = 0; s < MM_NSTATUSES; s++)
	{
		char		key[2] = {initials[s], '\0'};
		char	   *mark = colored(color, colors[s], color ? "█" : key);
		char		name[16];

		snprintf(name, sizeof(name), "%s", job_statuses[s]);
		for (char *p = name + 1; *p; p++)
			*p = (char) (*p - 'A' + 'a');
		str_addf(&b, "%s%s %s", s ? "  " : "", mark, name);
		free(mark);
	}
	lines_add(out, str_take(&b));
}

/* Tokens earned per node as horizontal bars fitted to width columns. */
void
chart_distribution(const json_t *rows, int width, bool color, Lines *out)
{
	static const char *const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
	long long	max = 0;
	int			namew = 4,
				valw = 1,
				barw;
	size_t		i;
	const json_t *row;

	lines_add(out, colored(color, C_BOLD, "Tokens earned per node"));
	if (json_array_size(rows) == 0)
	{
		lines_add(out, strdup("(no nodes yet)"));
		return;
	}
	json_array_foreach(rows, i, row)
	{
		long long	v = json_integer_value(json_object_get(row, "tokens_earned"));
		char	   *name = fmt_value(json_object_get(row, "name"));
		char		num[32];

		if (v > max)
			max = v;
		if (text_width(name) > namew)
			namew = text_width(name);
		free(name);
		if ((int) snprintf(num, sizeof(num), "%lld", v) > valw)
			valw = (int) strlen(num);
	}
	if (namew > 20)
		namew = 20;
	barw = width - namew - valw - 4;
	if (barw < 5)
		barw = 5;
	json_array_foreach(rows, i, row)
	{
		long long	v = json_integer_value(json_object_get(row, "tokens_earned"));
		char	   *raw = fmt_value(json_object_get(row, "name")),
				   *name = text_fit(raw, namew);
		double		cells = max > 0 ? (double) v * barw / max : 0;
		int			full = (int) cells,
					part = (int) ((cells - full) * 8);
		Str			b = {0};

		if (v > 0 && full == 0 && part == 0)
			part = 1;
		str_add(&b, name);
		str_pad(&b, namew - text_width(name) + 2);
		if (color)
			str_add(&b, C_CYAN);
		for (int k = 0; k < full; k++)
			str_add(&b, "█");
		str_add(&b, eighths[part]);
		if (color)
			str_add(&b, C_RESET);
		str_addf(&b, " %lld", v);
		lines_add(out, str_take(&b));
		free(raw);
		free(name);
	}
}
