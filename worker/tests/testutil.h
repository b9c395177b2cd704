/*
 * testutil.h — the unit tests' tiny harness: CHECK macros, a summary line
 * "N passed, N failed" (what `make check` sums), a scratch directory.
 */
#ifndef MM_TESTUTIL_H
#define MM_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int	t_passed;
static int	t_failed;

#define CHECK(cond, ...) \
	do { \
		if (cond) \
			t_passed++; \
		else \
		{ \
			t_failed++; \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

/* err must mention needle (a field name, row number...) */
#define CHECK_MSG(err, needle) \
	CHECK(strstr((err), (needle)) != NULL, "expected \"%s\" in message \"%s\"", (needle), (err))

/* Prints the summary line "N passed, N failed"; the exit status: 1 if any check failed. */
static inline int
t_summary(void)
{
	printf("%d passed, %d failed\n", t_passed, t_failed);
	return t_failed ? 1 : 0;
}

/* MM_TEST_QUICK=1 (used under valgrind) skips the slowest cases */
static inline int
t_quick(void)
{
	const char *q = getenv("MM_TEST_QUICK");

	return q != NULL && *q != '\0' && strcmp(q, "0") != 0;
}

static char t_dir[64];
static char *t_files[64];
static int	t_nfiles;

/* The scratch directory, made on first use. */
static inline const char *
t_tempdir(void)
{
	if (t_dir[0] == '\0')
	{
		strcpy(t_dir, "/tmp/mmtrain-test.XXXXXX");
		if (mkdtemp(t_dir) == NULL)
		{
			perror("mkdtemp");
			exit(2);
		}
	}
	return t_dir;
}

/* Track a path for t_cleanup (files and symlinks; directories with is_dir). */
static inline char *
t_track(const char *name)
{
	char	   *path = malloc(strlen(t_tempdir()) + strlen(name) + 2);

	if (path == NULL || t_nfiles >= 64)
		exit(2);
	sprintf(path, "%s/%s", t_dir, name);
	t_files[t_nfiles++] = path;
	return path;
}

/* Write a file in the scratch directory; returns its path (owned by the harness). */
static inline const char *
t_write(const char *name, const char *data, size_t len)
{
	char	   *path = t_track(name);
	FILE	   *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		perror(path);
		exit(2);
	}
	return path;
}

/* Removes the tracked files and the scratch directory. */
static inline void
t_cleanup(void)
{
	/* reverse order: files before the directories holding them */
	while (t_nfiles > 0)
	{
		char	   *p = t_files[--t_nfiles];

		if (unlink(p) != 0)
			rmdir(p);
		free(p);
	}
	if (t_dir[0] != '\0')
		rmdir(t_dir);
}

#endif							/* MM_TESTUTIL_H */
