/*
 * notify.h — modelmine-notify, the sender of ModelMine's notifications.
 *
 * The extension writes one outbox row per delivery (an email or a webhook) in the transaction of
 * its event; this program claims due rows (modelmine.outbox_claim: SKIP LOCKED, with a lease),
 * sends them with libcurl and reports each back (modelmine.outbox_done: SENT, a retry with backoff,
 * or DEAD with the reason).  It logs in as a member of modelmine_notifier, which may call those
 * functions and detect_offline_nodes() and read no table.
 *
 *   main.c     options, the poll loop, signals
 *   log.c      one line per event on stderr
 *   config.c   settings from a file, the environment and the command line
 *   db.c       the database: connect, LISTEN, claim, report, detect offline nodes
 *   message.c  what each event says: subject, text, the dashboard link
 *   smtp.c     email over SMTP (smtp://, STARTTLS, smtps://, AUTH)
 *   webhook.c  signed HTTP POSTs, to addresses the worker's URL policy allows (netguard.c)
 *   sign.c     HMAC-SHA256 in hex
 */
#ifndef MM_NOTIFY_H
#define MM_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "netguard.h"

#define NT_MAX_ALLOW_NET 32
#define NT_ERR_LEN 512

typedef struct nt_config
{
	char	   *database;		/* libpq conninfo; empty: the PG* environment */
	char	   *smtp_url;		/* smtp://host:587 or smtps://host:465; NULL: no email */
	char	   *smtp_user;
	char	   *smtp_password;
	char	   *smtp_from;		/* "ModelMine <noreply@example.com>" */
	char	   *smtp_tls;		/* for smtp://: "require" (STARTTLS), "try" or "none" */
	char	   *cacert;			/* CA bundle for smtps/STARTTLS and https webhooks */
	char	   *dashboard_url;	/* "https://modelmine.example.com": links in messages */
	mm_cidr		allow_net[NT_MAX_ALLOW_NET];
	int			n_allow_net;
	int			batch;			/* rows per claim */
	int			lease_seconds;	/* a claimed row is due again after this long */
	int			poll_ms;		/* look for due rows at least this often (retries come due) */
	int			offline_check_s;	/* call detect_offline_nodes() this often; 0: never */
	int			timeout_s;		/* per delivery */
	bool		once;			/* send what is due, then exit */
} nt_config;

/* One claimed delivery, as outbox_claim returns it. */
typedef struct nt_delivery
{
	long long	id;
	const char *event_id;
	const char *event;
	const char *channel;		/* "email" or "webhook" */
	const char *destination;	/* an address or a URL */
	const char *secret_hex;		/* webhooks: the signing key, hex */
	const char *payload;		/* JSON text */
	const char *created_at;		/* ISO 8601 */
	int			attempts;
} nt_delivery;

/* The outcome of one delivery attempt. */
typedef struct nt_result
{
	bool		delivered;
	bool		permanent;		/* retrying cannot help: dead-letter now */
	char		error[NT_ERR_LEN];
} nt_result;

/* ---- log (main.c) ---- */
void		nt_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* ---- config.c ---- */
void		nt_config_defaults(nt_config *c);
void		nt_config_free(nt_config *c);
int			nt_config_set(nt_config *c, const char *name, const char *value, char *err,
						  size_t errlen);
int			nt_config_file(nt_config *c, const char *path, char *err, size_t errlen);
int			nt_config_env(nt_config *c, char *err, size_t errlen);
const char *nt_config_env_name(const char *name);

/* ---- db.c ---- */
typedef struct nt_db nt_db;
nt_db	   *nt_db_new(const char *conninfo);
bool		nt_db_ensure(nt_db *db);	/* connected and listening; logs why not */
bool		nt_db_connected(nt_db *db);
int			nt_db_socket(nt_db *db);
void		nt_db_drain(nt_db *db);
int			nt_db_claim(nt_db *db, int batch, int lease_seconds, nt_delivery **out);
void		nt_db_claimed_free(nt_db *db);
bool		nt_db_done(nt_db *db, const nt_delivery *d, const nt_result *r, char *status,
					   size_t len);
int			nt_db_detect_offline(nt_db *db);
void		nt_db_free(nt_db *db);

/* ---- message.c ---- */
typedef struct nt_message
{
	char	   *subject;		/* one line, may be UTF-8 */
	char	   *text;			/* lines separated by \n */
	char	   *link;			/* the dashboard page, or NULL */
} nt_message;
int			nt_message_build(const nt_config *c, const nt_delivery *d, json_t *payload,
							 nt_message *m, char *err, size_t errlen);
void		nt_message_free(nt_message *m);

/* ---- smtp.c ---- */
void		nt_send_email(const nt_config *c, const nt_delivery *d, const nt_message *m,
						  nt_result *r);
char	   *nt_email_compose(const nt_config *c, const nt_delivery *d, const nt_message *m,
							 long now);
bool		nt_email_address_ok(const char *addr);

/* ---- webhook.c ---- */
void		nt_send_webhook(const nt_config *c, const nt_delivery *d, json_t *payload,
							const nt_message *m, nt_result *r);
char	   *nt_webhook_body(const nt_delivery *d, json_t *payload, const nt_message *m);

/* ---- sign.c ---- */
int			nt_sign(const char *secret_hex, long long t, const char *body, char *out,
					size_t outlen);

#endif							/* MM_NOTIFY_H */
