/*
 * backoff.c — pacing and logging for a call the loop repeats (connect, heartbeat, claim_jobs).
 *
 * A call the database keeps refusing (a revoked grant, a bug) must neither hammer the database nor
 * flood the log: each failure in a row doubles the wait before the next attempt (1, 2, 4 ... up to
 * BACKOFF_MAX s, or a smaller cap), and the caller logs a failure only when its reason differs from
 * the last one it logged, and once when the call works again.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

/* The paced call may be tried again at now. */
bool
backoff_ready(const Backoff *b, double now)
{
	return now >= b->next;
}

/* Records a failure at now and when to try next; true when its reason is news, to be logged. */
bool
backoff_fail(Backoff *b, double now, const char *reason)
{
	bool		changed = b->failures == 0 || strcmp(b->reason, reason) != 0;
	double		cap = b->cap > 0 ? b->cap : BACKOFF_MAX;

	b->delay = b->failures == 0 ? BACKOFF_MIN : b->delay * 2;
	if (b->delay > cap)
		b->delay = cap;
	b->next = now + b->delay;
	b->failures++;
	snprintf(b->reason, sizeof(b->reason), "%s", reason);
	return changed;
}

/* Records a success and resets the pacing; returns how many failures in a row it ends. */
int
backoff_ok(Backoff *b)
{
	int			failures = b->failures;

	b->failures = 0;
	b->delay = 0;
	b->next = 0;
	b->reason[0] = '\0';
	return failures;
}

/*
 * The server asked for seconds of quiet (an HTTP Retry-After): the next attempt comes no sooner,
 * even when the backoff alone would allow it.
 */
void
backoff_not_before(Backoff *b, double now, double seconds)
{
	if (seconds <= 0 || now + seconds <= b->next)
		return;
	b->next = now + seconds;
	if (seconds > b->delay)
		b->delay = seconds;
}

/* "retrying in 1 s, then less often up to every 30 s", or "retrying every 5 s" at the cap. */
void
backoff_describe(const Backoff *b, char *out, size_t outlen)
{
	double		cap = b->cap > 0 ? b->cap : BACKOFF_MAX;

	if (b->delay >= cap)
		snprintf(out, outlen, "retrying every %.0f s", b->delay);
	else
		snprintf(out, outlen, "retrying in %.0f s, then less often up to every %.0f s",
				 b->delay, cap);
}
