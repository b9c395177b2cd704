/* log.c — one line per event on stderr: UTC time, the program, what happened and why. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void
nt_log(const char *fmt,...)
{
	char		stamp[32];
	time_t		t = time(NULL);
	struct tm	tm;
	va_list		ap;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s modelmine-notify: ", stamp);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}
