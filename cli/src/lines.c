/*
 * lines.c — a block of output lines.  Tables, charts and key/value lists render into one, so the
 * same block can go to stdout or be placed on top's screen.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

/* Takes ownership of line. */
void
lines_add(Lines *l, char *line)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = realloc(l->v, sizeof(char *) * l->cap);
	}
	l->v[l->n++] = line;
}

/* Moves src's lines to the end of dst. */
void
lines_append(Lines *dst, Lines *src)
{
	for (int i = 0; i < src->n; i++)
		lines_add(dst, src->v[i]);
	free(src->v);
	src->v = NULL;
	src->n = src->cap = 0;
}

/* Prints every line, each with its newline. */
void
lines_print(const Lines *l, FILE *f)
{
	for (int i = 0; i < l->n; i++)
	{
		fputs(l->v[i], f);
		fputc('\n', f);
	}
}

/* Frees the lines and leaves l empty. */
void
lines_free(Lines *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* The widest line, in terminal columns (colour escapes take none). */
int
lines_width(const Lines *l)
{
	int			w = 0;

	for (int i = 0; i < l->n; i++)
		if (ansi_width(l->v[i]) > w)
			w = ansi_width(l->v[i]);
	return w;
}
