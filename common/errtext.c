/*
 * errtext.c — libpq's and the server's texts on one line.  libpq's messages span lines ("server
 * closed the connection unexpectedly\n\tThis probably means ..."): a log has one line per event,
 * and a CLI prints one line per error.
 */
#include <string.h>

#include "modelmine/common.h"

/* In place: a run of newlines, tabs and carriage returns becomes one space; no trailing space. */
void
mm_one_line(char *s)
{
	char	   *w = s;

	for (const char *r = s; *r; r++)
	{
		if (*r == '\n' || *r == '\t' || *r == '\r')
		{
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
		}
		else
			*w++ = *r;
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
}
