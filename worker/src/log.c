/* log.c — one line per event on stderr: UTC time, worker name, what happened and why. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "worker.h"

const char *log_name = "worker";

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

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
