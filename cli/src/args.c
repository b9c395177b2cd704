/*
 * args.c — what every command's option parsing shares: --db, --json, --help, usage errors (exit 2,
 * one line and where to find help) and strict number parsing.
 *
 * Commands call getopt_long with opterr = 0 and a leading ':' in the short options, so the messages
 * here are the only ones the user sees.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Prints a usage error in one line, with where to find help; returns EXIT_USAGE. */
int
usage_error(Ctx *c, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "modelmine%s%s: ", c->cmd ? " " : "", c->cmd ? c->cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; try 'modelmine %s%s--help'\n", c->cmd ? c->cmd : "", c->cmd ? " " : "");
	return EXIT_USAGE;
}

/* Handles an option every command accepts; returns -1 to go on, or the exit code to return now. */
int
common_option(Ctx *c, int opt, const char *arg, int argc, char **argv)
{
	const char *bad = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";

	switch (opt)
	{
		case OPT_DB:
			c->db = arg;
			return -1;
		case OPT_JSON:
			c->json = true;
			return -1;
		case OPT_HELP:
		case 'h':
			print_command_help(c->cmd, stdout);
			return EXIT_OK;
		case ':':
			return usage_error(c, "option %s needs a value", bad);
		case '?':
			if (optopt && optopt < 256)
				return usage_error(c, "unknown option -%c", optopt);
			return usage_error(c, "unknown option %s", bad);
	}
	return usage_error(c, "unexpected option %s", bad);
}

/* Checks the count of positional arguments left after the options; returns -1 when it is right. */
int
need_args(Ctx *c, int argc, char **argv, int min, int max)
{
	int			n = argc - optind;

	if (n < min)
		return usage_error(c, "missing argument%s", min - n > 1 ? "s" : "");
	if (n > max)
		return usage_error(c, "unexpected argument \"%s\"", argv[optind + max]);
	return -1;
}

/* Parses a whole number from lo to hi into out; -1 after a usage error naming what. */
int
parse_int64(Ctx *c, const char *what, const char *s, long long lo, long long hi, long long *out)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno == ERANGE || v < lo || v > hi)
	{
		usage_error(c, "%s must be a whole number from %lld to %lld, got \"%s\"", what, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Parses a number above lo and at most hi into out; -1 after a usage error naming what. */
int
parse_double(Ctx *c, const char *what, const char *s, double lo, double hi, double *out)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v) || v <= lo || v > hi)
	{
		usage_error(c, "%s must be a number above %g and at most %g, got \"%s\"", what, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Option parsing for commands without options of their own; -1 to go on, else the exit code. */
int
parse_plain(Ctx *c, int argc, char **argv, int min, int max)
{
	static const struct option opts[] = {COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
			return rc;
	return need_args(c, argc, argv, min, max);
}
