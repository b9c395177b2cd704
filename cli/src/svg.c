/*
 * svg.c — the network's two charts as one standalone SVG 1.1 document: jobs per month by status (a
 * line chart, one <g class="series" data-status="..."> per status with a polyline and a point per
 * month) with a legend, and tokens earned per node (one <g class="bar" data-node-id="..."> per node).
 * Every text from the database is XML-escaped, and characters XML 1.0 forbids are dropped, so the
 * file always parses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const svg_colors[5] = {"#d4a000", "#1f8fd1", "#2e9e44", "#d93025", "#8e44ad"};

#define W 900
#define PAD_L 70
#define PAD_R 30
#define TL_TOP 90				/* timeline plot area */
#define TL_H 260
#define BAR_H 22
#define BAR_GAP 8

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

static long long
nice_ceiling(long long v)
{
	long long	step = 1;

	if (v <= 5)
		return v < 1 ? 1 : v;
	while (step * 10 <= v)
		step *= 10;
	for (long long k = 1; k <= 10; k++)
		if (k * step >= v)
			return k * step;
	return 10 * step;
}

int
svg_write(FILE *f, const json_t *stats, const json_t *timeline, const json_t *distribution)
{
	const char *months[120];
	long long	count[120][5] = {{0}};
	long long	max = 0,
				top,
				maxtok = 0;
	int			nm = 0,
				nbars = (int) json_array_size(distribution),
				dist_top = TL_TOP + TL_H + 110,
				height = dist_top + 40 + (nbars > 0 ? nbars : 1) * (BAR_H + BAR_GAP) + 20,
				plot_w = W - PAD_L - PAD_R;
	size_t		i;
	const json_t *row;

	json_array_foreach(timeline, i, row)
	{
		const char *m = json_string_value(json_object_get(row, "month"));
		const char *st = json_string_value(json_object_get(row, "status"));
		int			s = -1;

		for (int k = 0; st && k < 5; k++)
			if (strcmp(st, job_statuses[k]) == 0)
				s = k;
		if (m == NULL || s < 0)
			continue;
		if (nm == 0 || strcmp(months[nm - 1], m) != 0)
		{
			if (nm == 120)
				break;
			months[nm++] = m;
		}
		count[nm - 1][s] += json_integer_value(json_object_get(row, "jobs"));
		if (count[nm - 1][s] > max)
			max = count[nm - 1][s];
	}
	top = nice_ceiling(max);

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
			"font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n", W, height, W, height);
	fprintf(f, "<title>ModelMine network</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, height);
	fprintf(f, "<text x=\"%d\" y=\"30\" font-size=\"18\" font-weight=\"bold\">ModelMine network</text>\n", PAD_L);
	if (json_is_object(stats))
	{
		const json_t *acc = json_object_get(stats, "average_accuracy");
		char	   *a = json_is_number(acc) ? fmt_number(json_number_value(acc), 4) : strdup("-");

		fprintf(f, "<text class=\"summary\" x=\"%d\" y=\"50\" fill=\"#444444\">%lld of %lld nodes online, %lld tokens staked now, "
				"%lld jobs completed, average accuracy %s</text>\n", PAD_L,
				(long long) json_integer_value(json_object_get(stats, "nodes_online")),
				(long long) json_integer_value(json_object_get(stats, "nodes_total")),
				(long long) json_integer_value(json_object_get(stats, "staked_now")),
				(long long) json_integer_value(json_object_get(stats, "jobs_completed")), a);
		free(a);
	}

	/* ---- timeline ---- */
	fprintf(f, "<g class=\"chart timeline\">\n");
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">Jobs per month by status</text>\n",
			PAD_L, TL_TOP - 15);
	for (int k = 0; k <= 4; k++)
	{
		double		y = TL_TOP + TL_H - (double) TL_H * k / 4;

		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", PAD_L, y, PAD_L + plot_w, y);
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444444\">%lld</text>\n", PAD_L - 8, y + 4,
				(long long) ((double) top * k / 4 + 0.5));
	}
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", PAD_L, TL_TOP, PAD_L, TL_TOP + TL_H);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", PAD_L, TL_TOP + TL_H,
			PAD_L + plot_w, TL_TOP + TL_H);
#define X_OF(m) (PAD_L + (nm > 1 ? (double) plot_w * (m) / (nm - 1) : plot_w / 2.0))
#define Y_OF(v) (TL_TOP + TL_H - (double) TL_H * (v) / top)
	for (int m = 0; m < nm; m++)
	{
		char		ym[8];

		snprintf(ym, sizeof(ym), "%s", months[m]);	/* 2026-06-01 -> 2026-06 */
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#444444\">", X_OF(m), TL_TOP + TL_H + 18);
		xml_text(f, ym);
		fputs("</text>\n", f);
	}
	for (int s = 0; s < 5; s++)
	{
		fprintf(f, "<g class=\"series\" data-status=\"%s\" stroke=\"%s\" fill=\"%s\">\n", job_statuses[s],
				svg_colors[s], svg_colors[s]);
		fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" points=\"");
		for (int m = 0; m < nm; m++)
			fprintf(f, "%s%.1f,%.1f", m ? " " : "", X_OF(m), Y_OF(count[m][s]));
		fprintf(f, "\"/>\n");
		for (int m = 0; m < nm; m++)
		{
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>%s, ", X_OF(m), Y_OF(count[m][s]), job_statuses[s]);
			xml_text(f, months[m]);
			fprintf(f, ": %lld jobs</title></circle>\n", count[m][s]);
		}
		fprintf(f, "</g>\n");
	}
#undef X_OF
#undef Y_OF
	fprintf(f, "<g class=\"legend\">\n");
	for (int s = 0; s < 5; s++)
	{
		int			x = PAD_L + s * 130;
		int			y = TL_TOP + TL_H + 45;

		fprintf(f, "<g class=\"legend-item\" data-status=\"%s\"><rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>"
				"<text x=\"%d\" y=\"%d\">%s</text></g>\n", job_statuses[s], x, y - 11, svg_colors[s], x + 20, y,
				job_statuses[s]);
	}
	fprintf(f, "</g>\n</g>\n");

	/* ---- distribution ---- */
	json_array_foreach(distribution, i, row)
		if (json_integer_value(json_object_get(row, "tokens_earned")) > maxtok)
			maxtok = json_integer_value(json_object_get(row, "tokens_earned"));
	fprintf(f, "<g class=\"chart distribution\">\n");
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">Tokens earned per node</text>\n",
			PAD_L, dist_top);
	if (nbars == 0)
		fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#444444\">no nodes yet</text>\n", PAD_L, dist_top + 30);
	json_array_foreach(distribution, i, row)
	{
		long long	v = json_integer_value(json_object_get(row, "tokens_earned"));
		const char *name = json_string_value(json_object_get(row, "name"));
		int			label_w = 160,
					y = dist_top + 20 + (int) i * (BAR_H + BAR_GAP),
					bar_max = plot_w - label_w - 80;
		double		bw = maxtok > 0 ? (double) bar_max * v / maxtok : 0;
		char	   *shown = text_fit(name ? name : "?", 22);

		fprintf(f, "<g class=\"bar\" data-node-id=\"%lld\">", (long long) json_integer_value(json_object_get(row, "node_id")));
		fprintf(f, "<title>");
		xml_text(f, name);
		fprintf(f, " (node %lld): %lld tokens</title>", (long long) json_integer_value(json_object_get(row, "node_id")), v);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", PAD_L + label_w - 8, y + BAR_H / 2 + 4);
		xml_text(f, shown);
		fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#1f8fd1\"/>", PAD_L + label_w, y,
				bw, BAR_H);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\">%lld</text></g>\n", PAD_L + label_w + bw + 6, y + BAR_H / 2 + 4, v);
		free(shown);
	}
	fprintf(f, "</g>\n</svg>\n");
	return ferror(f) ? -1 : 0;
}
