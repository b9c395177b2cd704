/*
 * fuzz_csv.c — libFuzzer target for the CSV reader (train/csv.c), which reads a dataset fetched
 * from a user's URL.  The first input byte picks the column limit (1 to 64, so the "too many
 * columns" path is reached), the rest is the CSV text.  Besides what the sanitizers catch, it
 * checks what the reader promises: every record has 1 to max_fields NUL-terminated fields inside
 * its buffer, line numbers never go back, and an error has a message.
 *
 *   make -C worker fuzz                            build (scripts/fuzz.sh runs it)
 *   worker/tests/fuzz_csv FILE...                  replay inputs
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_csv: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mm_csv		c;
	char		err[256] = "";
	size_t		max_fields,
				last_line = 0;
	char	   *text;
	int			rc;

	if (size == 0)
		return 0;
	max_fields = 1 + data[0] % 64;
	/* a copy of exactly the text, so reading one byte past it is caught */
	text = malloc(size - 1 ? size - 1 : 1);
	memcpy(text, data + 1, size - 1);
	mm_csv_init(&c, text, size - 1, max_fields);
	while ((rc = mm_csv_next(&c, err, sizeof(err))) == 1)
	{
		MUST(c.nfields >= 1 && c.nfields <= max_fields);
		MUST(c.record_line >= last_line && c.line >= c.record_line);
		last_line = c.record_line;
		for (size_t i = 0; i < c.nfields; i++)
		{
			MUST(c.fields[i] >= c.buf && c.fields[i] < c.buf + c.buflen + 1);
			MUST(strlen(c.fields[i]) <= c.buflen);
		}
	}
	MUST(rc == 0 || rc == -1);
	if (rc < 0)
		MUST(err[0] != '\0');
	mm_csv_free(&c);
	free(text);
	return 0;
}
