/*
 * ratelimit.c — at most --auth-rate requests per window per client address on the /auth routes (signup and
 * login each cost a bcrypt in the database: the limit keeps one address from spending the pool on
 * password guessing).  A fixed table of windows, replaced oldest-first, so memory is bounded
 * whatever the number of addresses.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "modelmine/common.h"

#define SLOTS 4096

typedef struct Window
{
	char		ip[64];
	double		start;
	int			count;
} Window;

static Window table[SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a of the address, for the slot. */
static unsigned
slot_of(const char *ip)
{
	unsigned	h = 2166136261u;

	for (const char *p = ip; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	return h % SLOTS;
}

/*
 * Counts one request from ip; false when it is over the limit, with *retry_after_s set to the
 * seconds until its window ends.
 */
bool
ratelimit_take(const char *ip, int *retry_after_s)
{
	double		now = mm_now_s();
	Window	   *w;
	bool		ok;

	pthread_mutex_lock(&mu);
	w = &table[slot_of(ip)];
	if (strcmp(w->ip, ip) != 0 || now - w->start >= api_cfg.auth_window_s)
	{
		/* a new window (a colliding address takes the slot over: the limit errs towards allowing) */
		snprintf(w->ip, sizeof(w->ip), "%s", ip);
		w->start = now;
		w->count = 0;
	}
	ok = w->count < api_cfg.auth_rate;
	if (ok)
		w->count++;
	else
		*retry_after_s = (int) (w->start + api_cfg.auth_window_s - now) + 1;
	pthread_mutex_unlock(&mu);
	return ok;
}
