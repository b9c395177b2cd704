/*
 * main.c — modelmine-notify: options, then one poll() loop over the database socket (LISTEN
 * modelmine_outbox), the signal pipe and a timer.  Each turn: detect offline nodes when due, then
 * claim and send due deliveries until a claim comes back short, then sleep until a notification, a
 * signal or poll-ms (retries come due without a NOTIFY).  A NOTIFY is only a wake-up: the claim is
 * what finds work.
 *
 * Exit status: 0 after SIGTERM/SIGINT (or --once), 2 for bad usage or configuration.
 */
#include "notify.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "modelmine/common.h"

static void
usage(FILE *f)
{
	fputs("modelmine-notify — sends ModelMine's notifications (email, webhooks).\n"
		  "\n"
		  "Usage: modelmine-notify [OPTION]...\n"
		  "\n"
		  "Every setting is also read from --config FILE (lines \"name = value\") and from the\n"
		  "environment variable in brackets; the command line wins over the environment, which\n"
		  "wins over the file.  Log in as a role granted modelmine_notifier (it may call the\n"
		  "outbox functions and nothing else).\n"
		  "\n"
		  "  --config FILE        settings file [MODELMINE_NOTIFY_CONFIG]\n"
		  "  --db CONNINFO        the database [MODELMINE_DB]; default: libpq's PG* variables\n"
		  "  --smtp-url URL       smtp://host:587 (STARTTLS) or smtps://host:465\n"
		  "                       [MODELMINE_SMTP_URL]; without it emails wait (and retry)\n"
		  "  --smtp-user NAME     AUTH user [MODELMINE_SMTP_USER]\n"
		  "  --smtp-password PW   AUTH password [MODELMINE_SMTP_PASSWORD]; prefer the environment\n"
		  "  --smtp-from ADDRESS  From: header [MODELMINE_SMTP_FROM];\n"
		  "                       default ModelMine <noreply@localhost>\n"
		  "  --smtp-tls MODE      for smtp://: require (STARTTLS, the default), try or none\n"
		  "                       [MODELMINE_SMTP_TLS]\n"
		  "  --cacert FILE        CA bundle for TLS [MODELMINE_CACERT]\n"
		  "  --dashboard-url URL  the dashboard, for links in messages [MODELMINE_DASHBOARD_URL]\n"
		  "  --allow-net CIDR     let webhooks reach this network, e.g. 10.0.0.0/8 (repeatable)\n"
		  "                       [MODELMINE_ALLOW_NET]; loopback and private targets are\n"
		  "                       refused otherwise\n"
		  "  --batch N            deliveries per claim, 1..1000 [MODELMINE_BATCH]; default 50\n"
		  "  --lease-seconds S    a claimed delivery is due again after S if not reported\n"
		  "                       [MODELMINE_LEASE_SECONDS]; default 60\n"
		  "  --poll-ms MS         look for due deliveries at least this often\n"
		  "                       [MODELMINE_POLL_MS]; default 250 (job events are found this\n"
		  "                       way; other events also wake it by NOTIFY)\n"
		  "  --offline-check S    announce silent nodes every S seconds, 0: never\n"
		  "                       [MODELMINE_OFFLINE_CHECK]; default 5\n"
		  "  --timeout S          per delivery [MODELMINE_TIMEOUT]; default 10\n"
		  "  --once               send what is due now, then exit\n"
		  "  --help               this text\n"
		  "\n"
		  "Exit status: 0 after SIGTERM, SIGINT or SIGHUP (or --once), 2 for bad usage.\n"
		  "\n"
		  "Examples:\n"
		  "  MODELMINE_SMTP_PASSWORD=... modelmine-notify \\\n"
		  "      --db 'dbname=modelmine user=notifier' \\\n"
		  "      --smtp-url smtp://mail.example.com:587 --smtp-user modelmine \\\n"
		  "      --smtp-from 'ModelMine <noreply@example.com>' \\\n"
		  "      --dashboard-url https://modelmine.example.com\n"
		  "  modelmine-notify --config /etc/modelmine/notify.conf\n", f);
}

/* Sends one claimed delivery and reports it. */
static void
deliver(const nt_config *c, nt_db *db, const nt_delivery *d)
{
	nt_result	r = {0};
	nt_message	m = {0};
	json_t	   *payload = json_loads(d->payload, 0, NULL);
	char		status[16] = "?";

	if (payload == NULL)
	{
		r.permanent = true;
		snprintf(r.error, sizeof(r.error), "the event's payload is not JSON");
	}
	else if (nt_message_build(c, d, payload, &m, r.error, sizeof(r.error)) != 0)
		r.permanent = strstr(r.error, "unknown event") != NULL;
	else if (strcmp(d->channel, "email") == 0)
		nt_send_email(c, d, &m, &r);
	else
		nt_send_webhook(c, d, payload, &m, &r);
	if (nt_db_done(db, d, &r, status, sizeof(status)))
	{
		if (r.delivered)
			nt_log("sent %s %lld (%s, event %s) to %s", d->channel, d->id, d->event, d->event_id,
				   d->destination);
		else
			nt_log("%s %lld (%s) to %s failed, attempt %d: %s; now %s", d->channel, d->id, d->event,
				   d->destination, d->attempts, r.error, status);
	}
	nt_message_free(&m);
	json_decref(payload);
}

/* Whether SIGTERM, SIGINT or SIGHUP came (without waiting); sets *stop. */
static bool
stop_requested(volatile bool *stop)
{
	struct pollfd p = {.fd = mm_sig_pipe_fd(), .events = POLLIN};

	if (!*stop && poll(&p, 1, 0) > 0)
	{
		int			sig = mm_sig_pipe_drain(0);

		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
		{
			nt_log("stopping on signal %d", sig);
			*stop = true;
		}
	}
	return *stop;
}

/*
 * Claims and sends until a claim comes back short; the number sent, or -1 on a database error.  A
 * signal, or a lost connection (nothing could be reported), ends the batch early: its unsent rows
 * come due again when their lease ends.
 */
static int
drain_outbox(const nt_config *c, nt_db *db, volatile bool *stop)
{
	int			total = 0;

	while (!stop_requested(stop))
	{
		nt_delivery *rows;
		int			n = nt_db_claim(db, c->batch, c->lease_seconds, &rows);

		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++)
		{
			if (stop_requested(stop) || !nt_db_connected(db))
			{
				nt_log("%d claimed notification(s) left unsent; they are due again in %d s",
					   n - i, c->lease_seconds);
				return -1;
			}
			deliver(c, db, &rows[i]);
		}
		total += n;
		if (n < c->batch)
			break;
	}
	return total;
}

/* Frees the settings and passes rc on: every exit of main goes through it. */
static int
config_done(nt_config *c, int rc)
{
	nt_config_free(c);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"db", required_argument, NULL, 0},
		{"smtp-url", required_argument, NULL, 0},
		{"smtp-user", required_argument, NULL, 0},
		{"smtp-password", required_argument, NULL, 0},
		{"smtp-from", required_argument, NULL, 0},
		{"smtp-tls", required_argument, NULL, 0},
		{"cacert", required_argument, NULL, 0},
		{"dashboard-url", required_argument, NULL, 0},
		{"allow-net", required_argument, NULL, 0},
		{"batch", required_argument, NULL, 0},
		{"lease-seconds", required_argument, NULL, 0},
		{"poll-ms", required_argument, NULL, 0},
		{"offline-check", required_argument, NULL, 0},
		{"timeout", required_argument, NULL, 0},
		{"once", no_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	nt_config	c;
	nt_db	   *db;
	char		err[NT_ERR_LEN];
	const char *config_file = getenv("MODELMINE_NOTIFY_CONFIG");
	int			o,
				idx;
	volatile bool stop = false;
	double		next_detect = 0;

	nt_config_defaults(&c);
	/* first pass: only --config and --help, so the file and the environment come first */
	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, &idx)) != -1)
	{
		if (o == 'c')
			config_file = optarg;
		else if (o == 'h')
		{
			usage(stdout);
			return config_done(&c, 0);
		}
	}
	if (config_file && nt_config_file(&c, config_file, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "modelmine-notify: %s\n", err);
		return config_done(&c, 2);
	}
	if (nt_config_env(&c, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "modelmine-notify: %s\n", err);
		return config_done(&c, 2);
	}
	opterr = 1;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, &idx)) != -1)
	{
		if (o == 0 && nt_config_set(&c, opts[idx].name, optarg, err, sizeof(err)) != 0)
		{
			fprintf(stderr, "modelmine-notify: --%s: %s\n", opts[idx].name, err);
			return config_done(&c, 2);
		}
		if (o == 'o')
			c.once = true;
		if (o == '?')
		{
			usage(stderr);
			return config_done(&c, 2);
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "modelmine-notify: unexpected argument \"%s\"\n", argv[optind]);
		return config_done(&c, 2);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || mm_sig_pipe_open(sigs, 3) != 0)
	{
		fprintf(stderr, "modelmine-notify: cannot initialise libcurl or the signal pipe\n");
		return config_done(&c, 2);
	}
	signal(SIGPIPE, SIG_IGN);
	if (c.smtp_url == NULL)
		nt_log("no smtp-url: emails stay pending until one is configured");
	else if (strncmp(c.smtp_url, "smtp://", 7) == 0 && strcmp(c.smtp_tls, "require") != 0)
		nt_log("smtp-tls %s: mail may travel unencrypted to %s", c.smtp_tls, c.smtp_url);
	db = nt_db_new(c.database);
	nt_log("started: batch %d, lease %d s, poll %d ms, offline check every %d s%s", c.batch,
		   c.lease_seconds, c.poll_ms, c.offline_check_s,
		   c.n_allow_net ? ", with allowed networks" : "");

	while (!stop)
	{
		struct pollfd fds[2];
		int			timeout = c.poll_ms,
					nfds = 1;

		if (nt_db_ensure(db))
		{
			if (c.offline_check_s > 0 && mm_now_s() >= next_detect)
			{
				int			n = nt_db_detect_offline(db);

				if (n > 0)
					nt_log("announced %d node(s) offline", n);
				next_detect = mm_now_s() + c.offline_check_s;
			}
			if (db && drain_outbox(&c, db, &stop) >= 0 && c.once)
				break;
		}
		fds[0].fd = mm_sig_pipe_fd();
		fds[0].events = POLLIN;
		if (nt_db_socket(db) >= 0)
		{
			fds[1].fd = nt_db_socket(db);
			fds[1].events = POLLIN;
			nfds = 2;
		}
		if (c.offline_check_s > 0)
		{
			double		left = (next_detect - mm_now_s()) * 1000;

			if (left < timeout)
				timeout = left < 0 ? 0 : (int) left;
		}
		if (poll(fds, (nfds_t) nfds, timeout) < 0 && errno != EINTR)
		{
			nt_log("poll failed: %s", strerror(errno));
			break;
		}
		if (fds[0].revents & POLLIN)
			stop_requested(&stop);
		if (nfds == 2 && fds[1].revents)
			nt_db_drain(db);
	}
	nt_db_free(db);
	curl_global_cleanup();
	return config_done(&c, 0);
}
