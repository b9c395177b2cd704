/*
 * test_csv.c — the CSV reader (csv.c) and CSV-to-dataset loading
 * (dataset.c): RFC 4180 details, and that every error names the row,
 * column or field a user has to fix - without quoting cell values.
 */
#include "csv.h"
#include "dataset.h"
#include "rng.h"
#include "testutil.h"

#include <math.h>

#define LEN(s) (sizeof(s) - 1)

static char err[512];

/* Reads all records of s into out (out[r][f]: record r, field f); the record count, or -1. */
static int
read_all(const char *s, size_t len, char out[][8][32], size_t *nf, int maxrec)
{
	mm_csv		c;
	int			n = 0;
	int			rc;

	mm_csv_init(&c, s, len, 100);
	while ((rc = mm_csv_next(&c, err, sizeof(err))) == 1)
	{
		if (n < maxrec)
		{
			nf[n] = c.nfields;
			for (size_t i = 0; i < c.nfields && i < 8; i++)
				snprintf(out[n][i], 32, "%s", c.fields[i]);
		}
		n++;
	}
	mm_csv_free(&c);
	return rc < 0 ? -1 : n;
}

/* The CSV reader: quoting, line ends, a byte order mark, blank lines, empty fields, errors. */
static void
test_reader(void)
{
	char		f[4][8][32];
	size_t		nf[4];
	mm_csv		c;

	/* quoting: commas, doubled quotes, newlines (LF and CRLF) inside quotes */
	{
		static const char s[] = "a,\"b,c\",\"d\"\"e\",\"f\ng\"\r\nh,\"\",i\"j,\"k\r\nl\"\n";

		CHECK(read_all(s, LEN(s), f, nf, 4) == 2, "%s", err);
		CHECK(nf[0] == 4, "got %zu fields", nf[0]);
		CHECK(strcmp(f[0][0], "a") == 0 && strcmp(f[0][1], "b,c") == 0 &&
			  strcmp(f[0][2], "d\"e") == 0 && strcmp(f[0][3], "f\ng") == 0,
			  "fields [%s] [%s] [%s] [%s]", f[0][0], f[0][1], f[0][2], f[0][3]);
		CHECK(nf[1] == 4 && strcmp(f[1][1], "") == 0 && strcmp(f[1][2], "i\"j") == 0 &&
			  strcmp(f[1][3], "k\r\nl") == 0, "second record [%s] [%s]", f[1][2], f[1][3]);
	}

	/* BOM skipped, CRLF, no final newline */
	{
		static const char s[] = "\xEF\xBB\xBFx,y\r\n1,2";

		CHECK(read_all(s, LEN(s), f, nf, 4) == 2, "%s", err);
		CHECK(strcmp(f[0][0], "x") == 0, "BOM not skipped: [%s]", f[0][0]);
		CHECK(strcmp(f[1][1], "2") == 0, "last field [%s]", f[1][1]);
	}

	/* blank lines (trailing and in between) are skipped; lone CR ends a line */
	{
		static const char s[] = "x,y\n\n1,2\r3,4\r\n\r\n\n";

		CHECK(read_all(s, LEN(s), f, nf, 4) == 3, "%s", err);
		CHECK(strcmp(f[2][0], "3") == 0, "CR line end: [%s]", f[2][0]);
	}

	/* empty fields, trailing comma */
	{
		static const char s[] = ",,\na,\n";

		CHECK(read_all(s, LEN(s), f, nf, 4) == 2, "%s", err);
		CHECK(nf[0] == 3 && nf[1] == 2, "field counts %zu %zu", nf[0], nf[1]);
	}

	/* the start line of each record counts physical lines, quoted newlines included */
	{
		static const char s[] = "h1,h2\n\"multi\nline\",1\n\nnext,2\n";

		mm_csv_init(&c, s, LEN(s), 100);
		CHECK(mm_csv_next(&c, err, sizeof(err)) == 1 && c.record_line == 1, "line %zu",
			  c.record_line);
		CHECK(mm_csv_next(&c, err, sizeof(err)) == 1 && c.record_line == 2, "line %zu",
			  c.record_line);
		CHECK(mm_csv_next(&c, err, sizeof(err)) == 1 && c.record_line == 5, "line %zu",
			  c.record_line);
		CHECK(mm_csv_next(&c, err, sizeof(err)) == 0, "expected end");
		mm_csv_free(&c);
	}

	/* empty input and input of only blank lines: no records, no error */
	CHECK(read_all("", 0, f, nf, 4) == 0, "%s", err);
	CHECK(read_all("\n\r\n", 3, f, nf, 4) == 0, "%s", err);

	/* errors */
	{
		static const char s[] = "a,b\n1,\"never closed\n2,3\n";

		CHECK(read_all(s, LEN(s), f, nf, 4) == -1, "unterminated quote accepted");
		CHECK_MSG(err, "line 2");
		CHECK_MSG(err, "never closed");
	}
	{
		static const char s[] = "a,b\n\"x\"y,2\n";

		CHECK(read_all(s, LEN(s), f, nf, 4) == -1, "text after closing quote accepted");
		CHECK_MSG(err, "line 2, column 1");
	}
	{
		static const char s[] = "a,b\n1,2\x00z\n";

		CHECK(read_all(s, LEN(s), f, nf, 4) == -1, "NUL accepted");
		CHECK_MSG(err, "NUL");
	}
	{
		mm_csv_init(&c, "1,2,3,4\n", 8, 3);
		CHECK(mm_csv_next(&c, err, sizeof(err)) == -1, "column cap not enforced");
		CHECK_MSG(err, "more than 3 columns");
		mm_csv_free(&c);
	}
}

/* Loads CSV text as a dataset, its error in err. */
static int
load(const char *s, size_t len, const char *label, int regression, mm_dataset *ds)
{
	err[0] = '\0';
	return mm_dataset_from_csv(s, len, label, regression, ds, err, sizeof(err));
}

/* load must fail and name every needle */
static void
expect_load_error(const char *s, const char *label, int regression, const char *n1, const char *n2)
{
	mm_dataset	ds;
	int			rc = load(s, strlen(s), label, regression, &ds);

	CHECK(rc == -1, "accepted: %s", s);
	if (rc == 0)
	{
		mm_dataset_free(&ds);
		return;
	}
	CHECK_MSG(err, n1);
	if (n2)
		CHECK_MSG(err, n2);
	/* cell values never appear in messages */
	CHECK(strstr(err, "SECRET") == NULL, "message leaks a cell value: %s", err);
	CHECK(ds.x == NULL && ds.feature_names == NULL, "dataset not reset on error");
}

/* CSV to dataset: labels, classes, numbers, and every refusal with what it names. */
static void
test_dataset(void)
{
	mm_dataset	ds;

	/* a good file: quoted header and values, spaces around numbers, label in the middle */
	{
		static const char s[] = "\"x 1\",label,x2\n1.5, cat ,\" 2\"\n-3,dog,4e1\n0,cat,0\n";

		CHECK(load(s, LEN(s), "label", 0, &ds) == 0, "%s", err);
		CHECK(ds.n == 3 && ds.d == 2, "n=%zu d=%zu", ds.n, ds.d);
		CHECK(strcmp(ds.feature_names[0], "x 1") == 0 && strcmp(ds.feature_names[1], "x2") == 0,
			  "feature names");
		CHECK(ds.x[0] == 1.5 && ds.x[1] == 2 && ds.x[2] == -3 && ds.x[3] == 40, "values");
		/* label values are trimmed, then sorted: "cat" < "dog" */
		CHECK(ds.nclasses == 2 && strcmp(ds.class_names[0], "cat") == 0 &&
			  strcmp(ds.class_names[1], "dog") == 0, "classes");
		CHECK(ds.y[0] == 0 && ds.y[1] == 1 && ds.y[2] == 0, "labels mapped");
		mm_dataset_free(&ds);
	}

	/* numeric labels sort numerically: 2 before 10 */
	{
		static const char s[] = "x,y\n1,10\n2,2\n3,1\n4,2\n";

		CHECK(load(s, LEN(s), "y", 0, &ds) == 0, "%s", err);
		CHECK(ds.nclasses == 3 && strcmp(ds.class_names[0], "1") == 0 &&
			  strcmp(ds.class_names[1], "2") == 0 && strcmp(ds.class_names[2], "10") == 0,
			  "numeric class order");
		CHECK(ds.y[0] == 2 && ds.y[1] == 1 && ds.y[2] == 0, "labels remapped");
		mm_dataset_free(&ds);
	}

	/* regression keeps the label as a number */
	{
		static const char s[] = "x,y\n1,0.5\n2,-7\n";

		CHECK(load(s, LEN(s), "y", 1, &ds) == 0, "%s", err);
		CHECK(ds.nclasses == 0 && ds.y[0] == 0.5 && ds.y[1] == -7, "regression labels");
		mm_dataset_free(&ds);
	}

	expect_load_error("a,b,c\n1,2,3\n", "price", 0, "\"price\"",
					  "columns are: \"a\", \"b\", \"c\"");
	expect_load_error("x1,x2,y\n1,2,a\n3,SECRET,b\n", "y", 0, "row 2 (line 3)", "column \"x2\"");
	expect_load_error("x1,x2,y\n1,2,a\n3,nan,b\n", "y", 0, "row 2", "not a finite number");
	expect_load_error("x1,x2,y\n1,2,a\n3,1e999,b\n", "y", 0, "row 2", "x2");
	expect_load_error("x1,x2,y\n1,,a\n", "y", 0, "row 1 (line 2), column \"x2\"", "empty value");
	expect_load_error("x1,x2,y\n1,2,a\n3,4\n", "y", 0, "row 2 (line 3) has 2 fields", "3 columns");
	expect_load_error("x1,x2,y\n1,2,a\n3,4,b,5\n", "y", 0, "row 2", "4 fields");
	expect_load_error("", "y", 0, "empty", NULL);
	expect_load_error("\xEF\xBB\xBF\n\n", "y", 0, "empty", NULL);
	expect_load_error("x1,x2,y\n", "y", 0, "no data rows", NULL);
	expect_load_error("x1,x2,y\r\n\r\n", "y", 0, "no data rows", NULL);
	expect_load_error("x,y,x\n1,2,3\n", "y", 0, "duplicate column name \"x\"", "columns 1 and 3");
	expect_load_error("x,y\n1,a\n2,a\n3,a\n", "y", 0, "only one distinct value", "\"y\"");
	expect_load_error("y\na\nb\n", "y", 0, "feature column", NULL);
	expect_load_error("x,y\n1,SECRET\n", "y", 1, "row 1", "label column \"y\"");
	expect_load_error("x,y\n1,\n", "y", 0, "row 1", "empty");
	expect_load_error("x,y\n1,\"a\"b\n", "y", 0, "line 2", "closing quote");

	/* more than 1000 distinct labels: almost certainly a numeric target */
	{
		size_t		cap = 1100 * 16 + 16;
		char	   *s = malloc(cap);
		size_t		used = 0;

		used += (size_t) snprintf(s + used, cap - used, "x,y\n");
		for (int i = 0; i < 1100; i++)
			used += (size_t) snprintf(s + used, cap - used, "%d,%d\n", i, i);
		CHECK(load(s, used, "y", 0, &ds) == -1, "1100 classes accepted");
		CHECK_MSG(err, "linreg");
		free(s);
	}
}

/*
 * Mutation fuzzing: a valid file with a few random byte edits must load or
 * fail with a one-line message, never crash (the valgrind run covers this
 * too).
 */
static void
test_fuzz(void)
{
	static const char seed_csv[] = "a,b,\"c\"\nx,1,2.5\r\n\"y\",2,-1e3\nx,3,4\n\"z\"\"\",5,6\n";
	static const char alphabet[] = ",\"\n\r 1.-eax\xEF\xBB\xBF";
	mm_rng		rng;
	int			iters = t_quick() ? 300 : 20000;
	char		buf[256];
	int			ok = 0;
	int			bad_messages = 0;

	mm_rng_seed(&rng, 7, 0);
	for (int it = 0; it < iters; it++)
	{
		size_t		len = LEN(seed_csv);
		int			edits = 1 + (int) mm_rng_below(&rng, 4);
		mm_dataset	ds;

		memcpy(buf, seed_csv, len);
		for (int e = 0; e < edits; e++)
		{
			size_t		pos = (size_t) mm_rng_below(&rng, len + 1);
			char		ch = mm_rng_below(&rng, 8) == 0 ? (char) mm_rng_below(&rng, 256)
				: alphabet[mm_rng_below(&rng, sizeof(alphabet) - 1)];

			switch (mm_rng_below(&rng, 3))
			{
				case 0:			/* replace */
					if (pos < len)
						buf[pos] = ch;
					break;
				case 1:			/* insert */
					if (len < sizeof(buf))
					{
						memmove(buf + pos + 1, buf + pos, len - pos);
						buf[pos] = ch;
						len++;
					}
					break;
				default:		/* delete */
					if (pos < len)
					{
						memmove(buf + pos, buf + pos + 1, len - pos - 1);
						len--;
					}
					break;
			}
		}
		if (load(buf, len, "a", (int) (it & 1), &ds) == 0)
		{
			ok++;
			mm_dataset_free(&ds);
		}
		else if (err[0] == '\0' || strchr(err, '\n') != NULL)
			bad_messages++;
	}
	CHECK(bad_messages == 0, "%d errors without a one-line message", bad_messages);
	CHECK(ok > 0, "no mutated input loaded: the fuzzer is not reaching the data rows");
	printf("# fuzz: %d mutated inputs, %d loaded\n", iters, ok);
}

/* Runs the CSV tests. */
int
main(void)
{
	printf("# test_csv\n");
	test_reader();
	test_dataset();
	test_fuzz();
	return t_summary();
}
