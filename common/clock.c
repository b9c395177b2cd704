/* clock.c — the monotonic clock every client paces its loop by (the wall clock jumps). */
#include <time.h>

#include "modelmine/common.h"

/* Seconds on CLOCK_MONOTONIC: for deadlines and intervals, not for showing a time. */
double
mm_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
