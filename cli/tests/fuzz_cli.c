/*
 * fuzz_cli.c — libFuzzer target for the CLI's argument handling: cli_main (src/main.c) with an
 * argv made of the input split on NUL bytes ("modelmine" is argv[0]), so the global options, the
 * command lookup, each command's getopt_long loop and its number and value parsing (args.c and the
 * command files) all run.  The database layer (db.c) is replaced by stubs that refuse to connect,
 * so a command stops where it would first talk to the database; stdin is /dev/null and the
 * session file does not exist.  Checks: the exit status is one of the documented codes.
 *
 *   make -C cli fuzz                               build (scripts/fuzz.sh runs it)
 *   cli/tests/fuzz_cli FILE...                     replay inputs
 */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_cli: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

#define MAX_ARGS 64

/* ---- db.c: no database ---- */
int
db_open(Ctx *c)
{
	(void) c;
	return EXIT_CONN;
}

int
db_open_user(Ctx *c)
{
	(void) c;
	return EXIT_CONN;
}

PGresult *
db_query(Ctx *c, const char *sql, int n, const char *const *params)
{
	(void) c, (void) sql, (void) n, (void) params;
	return NULL;
}

json_t *
db_json(Ctx *c, const char *sql, int n, const char *const *params)
{
	(void) c, (void) sql, (void) n, (void) params;
	return NULL;
}

int
db_fail(Ctx *c)
{
	(void) c;
	return EXIT_CONN;
}

int
db_exit_code(const Ctx *c)
{
	(void) c;
	return EXIT_CONN;
}

void
db_set_hint(Ctx *c, const char *sqlstate, const char *hint)
{
	(void) c, (void) sqlstate, (void) hint;
}

char *
db_role(Ctx *c)
{
	(void) c;
	return NULL;
}

int
db_listen(Ctx *c, const char *channel, bool on)
{
	(void) c, (void) channel, (void) on;
	return -1;
}

int
db_consume(Ctx *c)
{
	(void) c;
	return -1;
}

void
db_close(Ctx *c)
{
	(void) c;
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc, (void) argv;
	if (freopen("/dev/null", "r", stdin) == NULL || freopen("/dev/null", "w", stdout) == NULL)
		abort();
	setenv("MODELMINE_SESSION_FILE", "/nonexistent/modelmine-fuzz/session", 1);
	setenv("NO_COLOR", "1", 1);
	unsetenv("MODELMINE_DB");
	unsetenv("MODELMINE_PASSWORD");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *buf = malloc(size + 1);
	char	   *argv[MAX_ARGS + 2];
	int			argc = 0,
				rc;

	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "modelmine";
	for (size_t i = 0; i <= size && argc <= MAX_ARGS; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;
	optind = 0;					/* a fresh getopt for every input, as for a fresh process */
	rc = cli_main(argc, argv);
	MUST(rc >= EXIT_OK && rc <= EXIT_CONN);
	free(buf);
	return 0;
}
