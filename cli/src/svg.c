/*
 * svg.c — the network's two charts as one standalone SVG 1.1 document: jobs per month by status (a
 * line chart, one <g class="series" data-status="..."> per status with a polyline and a point per
 * month, on a y axis of whole-number ticks, <g class="tick" data-value="N">) with a legend, and
 * tokens earned per node (one <g class="bar" data-node-id="..."> per node).  Every text from the
 * database is XML-escaped, and characters XML 1.0 forbids are dropped, so the file always parses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

static const char *const svg_colors[MM_NSTATUSES] = {
	"#d4a000", "#1f8fd1", "#2e9e44", "#d93025", "#8e44ad"
};

#define W 900
#define PAD_L 70
#define PAD_R 30
#define PLOT_W (W - PAD_L - PAD_R)
#define TL_TOP 90				/* timeline plot area */
#define TL_H 260
#define BAR_H 22
#define BAR_GAP 8
#define MAX_MONTHS 120
#define MAX_TICKS 5				/* intervals on the y axis, at most */

/* Jobs per month and status, from the job_timeline rows. */
typedef struct Timeline
{
	const char *months[MAX_MONTHS];
	long long	count[MAX_MONTHS][MM_NSTATUSES];
	int			nm;
	long long	max;
} Timeline;

/* Writes s escaped for XML text and attribute values. */
static void
xml_text(FILE *f, const char *s)
{
	char	   *clean = text_clean(s ? s : "");

	for (const char *p = clean; *p; p++)
	{
		switch (*p)
		{
			case '&':
				fputs("&amp;", f);
				break;
			case '<':
				fputs("&lt;", f);
				break;
			case '>':
				fputs("&gt;", f);
				break;
			case '"':
				fputs("&quot;", f);
				break;
			case '\'':
				fputs("&apos;", f);
				break;
			default:
				fputc(*p, f);
		}
	}
	free(clean);
}

/*
 * The y axis for counts up to max: a step of 1, 2 or 5 times a power of ten, the smallest that
 * needs at most MAX_TICKS intervals, and a top at the first step at or above max (at least one
 * step), so that every tick is a whole number and sits where that count is drawn.
 */
static void
axis_ticks(long long max, long long *step, long long *top)
{
	static const int mult[] = {1, 2, 5};

	for (long long p = 1;; p *= 10)
		for (int i = 0; i < 3; i++)
		{
			long long	s = mult[i] * p;

			if (max <= MAX_TICKS * s)
			{
				*step = s;
				*top = max > 0 ? (max + s - 1) / s * s : s;
				return;
			}
		}
}

/* Sums the timeline rows into t, month by month in the order they come. */
static void
read_timeline(const json_t *rows, Timeline *t)
{
	size_t		i;
	const json_t *row;

	json_array_foreach(rows, i, row)
	{
		const char *m = json_string_value(json_object_get(row, "month"));
		const char *st = json_string_value(json_object_get(row, "status"));
		int			s = -1;

		for (int k = 0; st && k < MM_NSTATUSES; k++)
			if (strcmp(st, job_statuses[k]) == 0)
				s = k;
		if (m == NULL || s < 0)
			continue;
		if (t->nm == 0 || strcmp(t->months[t->nm - 1], m) != 0)
		{
			if (t->nm == MAX_MONTHS)
				break;
			t->months[t->nm++] = m;
		}
		t->count[t->nm - 1][s] += json_integer_value(json_object_get(row, "jobs"));
		if (t->count[t->nm - 1][s] > t->max)
			t->max = t->count[t->nm - 1][s];
	}
}

/* The title and the line of figures under it. */
static void
write_header(FILE *f, const json_t *stats)
{
	const json_t *acc = json_object_get(stats, "average_accuracy");
	long long	staked = json_integer_value(json_object_get(stats, "staked_now")),
				done = json_integer_value(json_object_get(stats, "jobs_completed"));
	char	   *a;

	fprintf(f, "<text x=\"%d\" y=\"30\" font-size=\"18\" font-weight=\"bold\">"
			"ModelMine network</text>\n", PAD_L);
	if (!json_is_object(stats))
		return;
	a = json_is_number(acc) ? fmt_number(json_number_value(acc), 4) : strdup("-");
	fprintf(f, "<text class=\"summary\" x=\"%d\" y=\"50\" fill=\"#444444\">%lld of %lld nodes online, "
			"%lld token%s staked now, %lld job%s completed, average accuracy %s</text>\n", PAD_L,
			(long long) json_integer_value(json_object_get(stats, "nodes_online")),
			(long long) json_integer_value(json_object_get(stats, "nodes_total")),
			staked, staked == 1 ? "" : "s", done, done == 1 ? "" : "s", a);
	free(a);
}

/* Jobs per month by status: the axes and their ticks, a series per status, the legend. */
static void
write_timeline(FILE *f, const Timeline *t)
{
	long long	step,
				top;

	axis_ticks(t->max, &step, &top);
#define X_OF(m) (PAD_L + (t->nm > 1 ? (double) PLOT_W * (m) / (t->nm - 1) : PLOT_W / 2.0))
#define Y_OF(v) (TL_TOP + TL_H - (double) TL_H * (v) / top)
	fprintf(f, "<g class=\"chart timeline\">\n");
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">"
			"Jobs per month by status</text>\n", PAD_L, TL_TOP - 15);
	for (long long v = 0; v <= top; v += step)
		fprintf(f, "<g class=\"tick\" data-value=\"%lld\">"
				"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>"
				"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444444\">%lld</text></g>\n",
				v, PAD_L, Y_OF(v), PAD_L + PLOT_W, Y_OF(v), PAD_L - 8, Y_OF(v) + 4, v);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n",
			PAD_L, TL_TOP, PAD_L, TL_TOP + TL_H);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n",
			PAD_L, TL_TOP + TL_H, PAD_L + PLOT_W, TL_TOP + TL_H);
	for (int m = 0; m < t->nm; m++)
	{
		char		ym[8];

		snprintf(ym, sizeof(ym), "%s", t->months[m]);	/* 2026-06-01 -> 2026-06 */
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#444444\">", X_OF(m),
				TL_TOP + TL_H + 18);
		xml_text(f, ym);
		fputs("</text>\n", f);
	}
	for (int s = 0; s < MM_NSTATUSES; s++)
	{
		fprintf(f, "<g class=\"series\" data-status=\"%s\" stroke=\"%s\" fill=\"%s\">\n",
				job_statuses[s], svg_colors[s], svg_colors[s]);
		fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" points=\"");
		for (int m = 0; m < t->nm; m++)
			fprintf(f, "%s%.1f,%.1f", m ? " " : "", X_OF(m), Y_OF(t->count[m][s]));
		fprintf(f, "\"/>\n");
		for (int m = 0; m < t->nm; m++)
		{
			long long	n = t->count[m][s];

			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>%s, ", X_OF(m), Y_OF(n),
					job_statuses[s]);
			xml_text(f, t->months[m]);
			fprintf(f, ": %lld job%s</title></circle>\n", n, n == 1 ? "" : "s");
		}
		fprintf(f, "</g>\n");
	}
#undef X_OF
#undef Y_OF
	fprintf(f, "<g class=\"legend\">\n");
	for (int s = 0; s < MM_NSTATUSES; s++)
	{
		int			x = PAD_L + s * 130;
		int			y = TL_TOP + TL_H + 45;

		fprintf(f, "<g class=\"legend-item\" data-status=\"%s\">"
				"<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>"
				"<text x=\"%d\" y=\"%d\">%s</text></g>\n",
				job_statuses[s], x, y - 11, svg_colors[s], x + 20, y, job_statuses[s]);
	}
	fprintf(f, "</g>\n</g>\n");
}

/* Tokens earned per node: a bar per node, scaled to the largest, from the top of the chart down. */
static void
write_distribution(FILE *f, const json_t *distribution, int top_y)
{
	long long	maxtok = 0;
	int			label_w = 160,
				bar_max = PLOT_W - label_w - 80;
	size_t		i;
	const json_t *row;

	json_array_foreach(distribution, i, row)
		if (json_integer_value(json_object_get(row, "tokens_earned")) > maxtok)
			maxtok = json_integer_value(json_object_get(row, "tokens_earned"));
	fprintf(f, "<g class=\"chart distribution\">\n");
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">"
			"Tokens earned per node</text>\n", PAD_L, top_y);
	if (json_array_size(distribution) == 0)
		fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#444444\">no nodes yet</text>\n",
				PAD_L, top_y + 30);
	json_array_foreach(distribution, i, row)
	{
		long long	v = json_integer_value(json_object_get(row, "tokens_earned")),
					node = json_integer_value(json_object_get(row, "node_id"));
		const char *name = json_string_value(json_object_get(row, "name"));
		int			y = top_y + 20 + (int) i * (BAR_H + BAR_GAP);
		double		bw = maxtok > 0 ? (double) bar_max * v / maxtok : 0;
		char	   *shown = text_fit(name ? name : "?", 22);

		fprintf(f, "<g class=\"bar\" data-node-id=\"%lld\">", node);
		fprintf(f, "<title>");
		xml_text(f, name);
		fprintf(f, " (node %lld): %lld token%s</title>", node, v, v == 1 ? "" : "s");
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", PAD_L + label_w - 8,
				y + BAR_H / 2 + 4);
		xml_text(f, shown);
		fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#1f8fd1\"/>",
				PAD_L + label_w, y, bw, BAR_H);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\">%lld</text></g>\n", PAD_L + label_w + bw + 6,
				y + BAR_H / 2 + 4, v);
		free(shown);
	}
	fprintf(f, "</g>\n");
}

/* The whole document; -1 if writing failed. */
int
svg_write(FILE *f, const json_t *stats, const json_t *timeline, const json_t *distribution)
{
	Timeline	t = {.nm = 0};
	int			nbars = (int) json_array_size(distribution),
				dist_top = TL_TOP + TL_H + 110,
				height = dist_top + 40 + (nbars > 0 ? nbars : 1) * (BAR_H + BAR_GAP) + 20;

	read_timeline(timeline, &t);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
			"viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
			"font-size=\"12\">\n", W, height, W, height);
	fprintf(f, "<title>ModelMine network</title>\n"
			"<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, height);
	write_header(f, stats);
	write_timeline(f, &t);
	write_distribution(f, distribution, dist_top);
	fprintf(f, "</svg>\n");
	return ferror(f) ? -1 : 0;
}
