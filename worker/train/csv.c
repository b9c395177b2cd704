/*
 * csv.c — RFC 4180 CSV record reader (see csv.h).
 *
 * Errors name the physical line; they never quote file contents.
 */
#include "csv.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Starts reading data (len bytes): skips a UTF-8 byte order mark. */
void
mm_csv_init(mm_csv *c, const char *data, size_t len, size_t max_fields)
{
	memset(c, 0, sizeof(*c));
	c->p = data;
	c->end = data + len;
	c->line = 1;
	c->max_fields = max_fields;
	/* UTF-8 byte order mark */
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		c->p += 3;
}

/* Frees the reader's buffers. */
void
mm_csv_free(mm_csv *c)
{
	free(c->buf);
	free(c->offs);
	free(c->fields);
	memset(c, 0, sizeof(*c));
}

/* Make room for n more bytes in buf. */
static int
reserve(mm_csv *c, size_t n)
{
	size_t		cap;
	char	   *nb;

	if (c->bufcap - c->buflen >= n)
		return 0;
	cap = c->bufcap ? c->bufcap : 256;
	while (cap - c->buflen < n)
	{
		if (cap > ((size_t) -1) / 2)
			return -1;
		cap *= 2;
	}
	nb = realloc(c->buf, cap);
	if (nb == NULL)
		return -1;
	c->buf = nb;
	c->bufcap = cap;
	return 0;
}

/* Appends n bytes to the current field; notes a NUL byte, which a CSV file must not hold. */
static int
append(mm_csv *c, const char *s, size_t n)
{
	if (n == 0)
		return 0;				/* an empty field: buf may still be NULL, and NULL + 0 is undefined */
	if (reserve(c, n) != 0)
		return -1;
	if (memchr(s, '\0', n) != NULL)
		c->saw_nul = 1;
	memcpy(c->buf + c->buflen, s, n);
	c->buflen += n;
	return 0;
}

/* Starts a new field of the current record at the buffer's end; -1 when out of memory. */
static int
start_field(mm_csv *c)
{
	if (c->nfields == c->offcap)
	{
		size_t		cap = c->offcap ? c->offcap * 2 : 16;
		size_t	   *no = realloc(c->offs, cap * sizeof(*no));
		char	  **nf;

		if (no == NULL)
			return -1;
		c->offs = no;
		nf = realloc(c->fields, cap * sizeof(*nf));
		if (nf == NULL)
			return -1;
		c->fields = nf;
		c->offcap = cap;
	}
	c->offs[c->nfields++] = c->buflen;
	return 0;
}

/* A line end character (CR or LF). */
static inline int
is_eol(char ch)
{
	return ch == '\n' || ch == '\r';
}

/* Consume one line end (CRLF, LF or CR) at p. */
static void
skip_eol(mm_csv *c)
{
	if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
		c->p += 2;
	else
		c->p++;
	c->line++;
}

/* Reads the next record into fields/nfields: 1 a record, 0 end of input, -1 an error (err). */
int
mm_csv_next(mm_csv *c, char *err, size_t errlen)
{
	/* blank lines anywhere are skipped, so trailing ones vanish too */
	while (c->p < c->end && is_eol(*c->p))
		skip_eol(c);
	if (c->p >= c->end)
		return 0;

	c->record_line = c->line;
	c->buflen = 0;
	c->nfields = 0;
	c->saw_nul = 0;

	for (;;)
	{
		if (c->nfields >= c->max_fields)
			return mm_err(err, errlen, "line %zu has more than %zu columns",
						  c->record_line, c->max_fields);
		if (start_field(c) != 0)
			return mm_err(err, errlen, "out of memory reading CSV");

		if (c->p < c->end && *c->p == '"')
		{
			size_t		qline = c->line;

			c->p++;
			for (;;)
			{
				const char *q = c->p;

				/* copy the run up to the next quote in one go */
				while (q < c->end && *q != '"')
				{
					if (*q == '\n' || (*q == '\r' && (q + 1 >= c->end || q[1] != '\n')))
						c->line++;
					q++;
				}
				if (append(c, c->p, (size_t) (q - c->p)) != 0)
					return mm_err(err, errlen, "out of memory reading CSV");
				c->p = q;
				if (c->p >= c->end)
					return mm_err(err, errlen, "line %zu: quoted field is never closed",
								  qline);
				c->p++;			/* the quote */
				if (c->p < c->end && *c->p == '"')
				{
					if (append(c, "\"", 1) != 0)
						return mm_err(err, errlen, "out of memory reading CSV");
					c->p++;
					continue;
				}
				break;
			}
			if (c->p < c->end && *c->p != ',' && !is_eol(*c->p))
				return mm_err(err, errlen,
							  "line %zu, column %zu: unexpected character after a closing quote (a "
							  "quote inside a quoted field must be doubled)",
							  c->line, c->nfields);
		}
		else
		{
			const char *q = c->p;

			while (q < c->end && *q != ',' && !is_eol(*q))
				q++;
			if (append(c, c->p, (size_t) (q - c->p)) != 0)
				return mm_err(err, errlen, "out of memory reading CSV");
			c->p = q;
		}
		if (reserve(c, 1) != 0)
			return mm_err(err, errlen, "out of memory reading CSV");
		c->buf[c->buflen++] = '\0';

		if (c->p < c->end && *c->p == ',')
		{
			c->p++;
			continue;
		}
		if (c->p < c->end)
			skip_eol(c);
		break;
	}

	/* a NUL inside a field would silently cut it short: this is not a text CSV */
	if (c->saw_nul)
		return mm_err(err, errlen, "line %zu: NUL byte in the data; is this a text CSV file?",
					  c->record_line);
	for (size_t i = 0; i < c->nfields; i++)
		c->fields[i] = c->buf + c->offs[i];
	return 1;
}
