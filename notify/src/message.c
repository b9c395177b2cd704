/*
 * message.c — what each event says, for people: a subject, a few lines of plain text and a link to
 * the page of the dashboard it is about (--dashboard-url).  Webhooks carry the same link next to
 * the event's data.  Text from users (a job's title, an error) is only ever data here, never a
 * header: smtp.c encodes the subject and checks addresses.
 */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static char *
fmt(const char *f,...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f,...)
{
	va_list		ap;
	char	   *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static const char *
str(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

static long long
num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The dashboard page for path ("jobs/12"), or NULL without --dashboard-url. */
static char *
link_to(const nt_config *c, const char *path)
{
	return c->dashboard_url ? fmt("%s/#/%s", c->dashboard_url, path) : NULL;
}

int
nt_message_build(const nt_config *c, const nt_delivery *d, json_t *p, nt_message *m, char *err,
				 size_t errlen)
{
	char		path[64];

	memset(m, 0, sizeof(*m));
	if (strncmp(d->event, "job_", 4) == 0)
	{
		const char *status = str(p, "status", "?");
		const char *error = str(p, "error", NULL);

		snprintf(path, sizeof(path), "jobs/%lld", num(p, "job_id"));
		m->link = link_to(c, path);
		m->subject = fmt("Job %lld %s: %s", num(p, "job_id"),
						 strcmp(status, "COMPLETED") == 0 ? "completed" :
						 strcmp(status, "FAILED") == 0 ? "failed" : "was canceled",
						 str(p, "title", ""));
		m->text = fmt("Your job %lld, \"%s\", is %s (stake %lld tokens).\n%s%s%s",
					  num(p, "job_id"), str(p, "title", ""), status, num(p, "stake"),
					  error ? "Error: " : "", error ? error : "", error ? "\n" : "");
	}
	else if (strcmp(d->event, "node_offline") == 0)
	{
		m->link = link_to(c, "my-nodes");
		m->subject = fmt("Node %s is offline", str(p, "name", "?"));
		m->text = fmt("Your node %lld, \"%s\", has sent no heartbeat since %s.\n",
					  num(p, "node_id"), str(p, "name", "?"), str(p, "last_seen", "?"));
	}
	else if (strcmp(d->event, "balance_low") == 0)
	{
		m->link = link_to(c, "dashboard");
		m->subject = fmt("Your balance is %lld tokens", num(p, "balance"));
		m->text = fmt("Your balance fell to %lld tokens, below your threshold of %lld (a %s of "
					  "%lld tokens).\n", num(p, "balance"), num(p, "threshold"),
					  str(p, "reason", "debit"), num(p, "amount"));
	}
	else if (strcmp(d->event, "withdrawal_decided") == 0)
	{
		bool		ok = strcmp(str(p, "status", ""), "APPROVED") == 0;

		m->link = link_to(c, "dashboard");
		m->subject = fmt("Withdrawal %lld %s", num(p, "withdrawal_id"),
						 ok ? "approved" : "rejected");
		m->text = ok ?
			fmt("Your withdrawal %lld of %lld tokens to %s was approved and paid out (%s).\n",
				num(p, "withdrawal_id"), num(p, "amount"), str(p, "destination", "?"),
				str(p, "payout_reference", "?")) :
			fmt("Your withdrawal %lld of %lld tokens to %s was rejected: %s\nThe tokens are back "
				"in your balance.\n", num(p, "withdrawal_id"), num(p, "amount"),
				str(p, "destination", "?"), str(p, "reason", "?"));
	}
	else if (strcmp(d->event, "email_verification") == 0)
	{
		const char *token = str(p, "token", NULL);

		if (token == NULL || c->dashboard_url == NULL)
			return mm_err(err, errlen, "a verification email needs its token and --dashboard-url");
		/* the gateway's route: GET /auth/verify?token= */
		m->link = fmt("%s/auth/verify?token=%s", c->dashboard_url, token);
		m->subject = fmt("Confirm your email address");
		m->text = fmt("Someone, hopefully you, signed up for ModelMine with this address.\n"
					  "Open the link below to confirm it; this unlocks your signup grant.\n"
					  "If it was not you, ignore this message.\n");
	}
	else
		return mm_err(err, errlen, "unknown event \"%s\"", d->event);
	if (m->subject == NULL || m->text == NULL)
		return mm_err(err, errlen, "out of memory");
	return 0;
}

void
nt_message_free(nt_message *m)
{
	free(m->subject);
	free(m->text);
	free(m->link);
	memset(m, 0, sizeof(*m));
}
