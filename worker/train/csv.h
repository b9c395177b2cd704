/*
 * csv.h — RFC 4180 CSV record reader over a memory buffer.
 *
 * Reads one record at a time so a large file is never held twice as
 * strings: the caller converts each record and moves on. Accepts "" escapes,
 * quoted commas and newlines, CRLF / LF / CR line ends, a UTF-8 BOM, a
 * missing final newline, and skips blank lines. A '"' inside an unquoted
 * field is kept as a literal character (as Python's csv module does).
 */
#ifndef MM_CSV_H
#define MM_CSV_H

#include <stddef.h>

typedef struct mm_csv
{
	const char *p;				/* next unread byte */
	const char *end;
	size_t		line;			/* physical line of p, 1-based */
	size_t		record_line;	/* line where the last record started */
	size_t		max_fields;

	/* the last record: fields[i] points into buf, NUL-terminated */
	char	  **fields;
	size_t		nfields;

	char	   *buf;
	size_t		buflen;
	size_t		bufcap;
	size_t	   *offs;
	size_t		offcap;			/* capacity of offs and fields */
	int			saw_nul;
} mm_csv;

void		mm_csv_init(mm_csv *c, const char *data, size_t len, size_t max_fields);
/* 1 = a record is in fields/nfields, 0 = end of input, -1 = error in err */
int			mm_csv_next(mm_csv *c, char *err, size_t errlen);
void		mm_csv_free(mm_csv *c);

#endif							/* MM_CSV_H */
