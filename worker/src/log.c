/* log.c — one line per event on stderr: UTC time, the node's name, what happened and why. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "worker.h"

/* The node's name as registered (main.c sets it: --name, the state file's, or the host name). */
const char *log_name = "worker";

/* Writes one log line: "2024-05-01T12:00:00Z NAME: " and the formatted text. */
void
logmsg(const char *fmt,...)
{
	char		stamp[32];
	time_t		t = time(NULL);
	struct tm	tm;
	va_list		ap;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s: ", stamp, log_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}
