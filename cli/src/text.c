/*
 * text.c — text as the terminal shows it: display widths of UTF-8 (wide CJK, zero-width combining
 * marks), text made safe to print (no control characters from the database reach the terminal), and
 * fitting or clipping text, with or without our own colour escapes, to a number of columns.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "cli.h"

static bool utf8;

/* Widths come from the C library's tables, in a UTF-8 locale whatever the user's LC_ALL says. */
void
text_init(void)
{
	utf8 = setlocale(LC_CTYPE, "C.UTF-8") || setlocale(LC_CTYPE, "C.utf8") ||
		setlocale(LC_CTYPE, "en_US.UTF-8");
}

/* Appends n bytes of s. */
void
str_addn(Str *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		b->cap = (b->len + n + 1) * 2 + 64;
		b->s = realloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Appends s. */
void
str_add(Str *b, const char *s)
{
	str_addn(b, s, strlen(s));
}

/* Appends a printf-formatted string. */
void
str_addf(Str *b, const char *fmt,...)
{
	va_list		ap;
	char	   *s;
	int			n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n >= 0)
	{
		str_addn(b, s, (size_t) n);
		free(s);
	}
}

/* Appends n spaces. */
void
str_pad(Str *b, int n)
{
	for (int i = 0; i < n; i++)
		str_addn(b, " ", 1);
}

/* The string (never NULL), leaving b empty. */
char *
str_take(Str *b)
{
	char	   *s = b->s ? b->s : strdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

/* Decodes one character at s; returns its byte length (1 for an invalid byte) and its width. */
static size_t
next_char(const char *s, int *width)
{
	mbstate_t	st;
	wchar_t		wc;
	size_t		n;
	int			w;

	if ((unsigned char) *s < 0x80 || !utf8)
	{
		*width = 1;
		return 1;
	}
	memset(&st, 0, sizeof(st));
	n = mbrtowc(&wc, s, MB_CUR_MAX, &st);
	if (n == (size_t) -1 || n == (size_t) -2 || n == 0)
	{
		*width = 1;
		return 1;
	}
	w = wcwidth(wc);
	*width = w < 0 ? 1 : w;
	return n;
}

/* Display width of UTF-8 text, in terminal columns. */
int
text_width(const char *s)
{
	int			total = 0,
				w;

	while (*s)
	{
		s += next_char(s, &w);
		total += w;
	}
	return total;
}

/* Length of an escape sequence we emit (CSI ... final byte) at s, or 0. */
static size_t
escape_len(const char *s)
{
	size_t		i;

	if (s[0] != '\033' || s[1] != '[')
		return 0;
	for (i = 2; s[i] && !(s[i] >= 0x40 && s[i] <= 0x7e); i++)
		;
	return s[i] ? i + 1 : i;
}

/* Display width of text that may hold our colour escapes (they take no columns). */
int
ansi_width(const char *s)
{
	int			total = 0,
				w;
	size_t		e;

	while (*s)
	{
		if ((e = escape_len(s)) > 0)
		{
			s += e;
			continue;
		}
		s += next_char(s, &w);
		total += w;
	}
	return total;
}

/* A copy safe to print: control characters (C0, DEL, C1) and invalid bytes become '?', tabs and
 * newlines a space. */
char *
text_clean(const char *s)
{
	Str			b = {0};
	int			w;

	while (*s)
	{
		unsigned char ch = (unsigned char) *s;
		size_t		n = next_char(s, &w);

		if (ch == '\t' || ch == '\n' || ch == '\r')
			str_add(&b, " ");
		else if (ch < 0x20 || ch == 0x7f)
			str_add(&b, "?");
		else if (ch >= 0x80 && (n == 1 || (ch == 0xc2 && (unsigned char) s[1] < 0xa0)))
			str_add(&b, "?");	/* an invalid byte, or U+0080..U+009F */
		else
			str_addn(&b, s, n);
		s += n;
	}
	return str_take(&b);
}

/* At most width columns; a cut is marked with "…". */
char *
text_fit(const char *s, int width)
{
	Str			b = {0};
	int			used = 0,
				w;

	if (text_width(s) <= width)
		return strdup(s);
	while (*s && width > 0)
	{
		size_t		n = next_char(s, &w);

		if (used + w > width - 1)
			break;
		str_addn(&b, s, n);
		used += w;
		s += n;
	}
	if (width > 0)
		str_add(&b, utf8 ? "…" : ">");
	return str_take(&b);
}

/* The first width columns of a line that may hold our colour escapes (kept, and closed). */
char *
ansi_clip(const char *s, int width)
{
	Str			b = {0};
	int			used = 0,
				w;
	bool		escaped = false;
	size_t		e;

	while (*s)
	{
		if ((e = escape_len(s)) > 0)
		{
			str_addn(&b, s, e);
			escaped = true;
			s += e;
			continue;
		}
		e = next_char(s, &w);
		if (used + w > width)
			break;
		str_addn(&b, s, e);
		used += w;
		s += e;
	}
	if (escaped)
		str_add(&b, C_RESET);
	return str_take(&b);
}
