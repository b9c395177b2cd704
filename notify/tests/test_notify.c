/*
 * test_notify.c — modelmine-notify's parts that need no server: the webhook signature (against a
 * value computed independently, by Python's hmac), addresses, the email's headers (a title cannot
 * add one), the texts and links of each event, the webhook body, and the settings.
 */
#include "notify.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static nt_delivery
delivery(const char *event, const char *channel, const char *dest)
{
	nt_delivery d = {.id = 42, .event_id = "147360fa-319c-4673-a1d6-9ce46c9e22a8", .event = event,
	.channel = channel, .destination = dest, .secret_hex = NULL, .payload = "{}",
	.created_at = "2026-11-30T08:00:00.000000Z", .attempts = 1};

	return d;
}

static void
test_sign(void)
{
	char		out[160];
	const char *key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

	CHECK(nt_sign(key, 1700000000LL, "{\"id\":\"e1\"}", out, sizeof(out)) == 0, "sign");
	/* python3 -c 'import hmac,hashlib; print(hmac.new(bytes.fromhex(KEY), b"1700000000.{\"id\":\"e1\"}", hashlib.sha256).hexdigest())' */
	CHECK(strcmp(out, "t=1700000000,v1=f9953b46498ad7a6ecff3b7a17f350e547a9ebaf602761d8a671846b0076a6d5") == 0,
		  "got %s", out);
	CHECK(nt_sign("abc", 1, "x", out, sizeof(out)) != 0, "an odd number of hex digits is refused");
	CHECK(nt_sign("zz", 1, "x", out, sizeof(out)) != 0, "not hex is refused");
	CHECK(nt_sign(NULL, 1, "x", out, sizeof(out)) != 0, "no secret is refused");
}

static void
test_addresses(void)
{
	CHECK(nt_email_address_ok("ann@example.com"), "plain");
	CHECK(!nt_email_address_ok("ann example@example.com"), "space");
	CHECK(!nt_email_address_ok("a@b@c"), "two @");
	CHECK(!nt_email_address_ok("<ann@example.com>"), "brackets");
	CHECK(!nt_email_address_ok("ann@example.com\r\nBcc: eve@example.com"), "CRLF");
	CHECK(!nt_email_address_ok("@example.com"), "no local part");
	CHECK(!nt_email_address_ok("ann@"), "no domain");
}

static void
test_email(void)
{
	nt_config	c;
	nt_delivery d = delivery("job_completed", "email", "ann@example.com");
	nt_message	m = {.subject = strdup("Job 12 completed: x\r\nBcc: eve@example.com"),
	.text = strdup("line one\nline two\n"), .link = strdup("http://dash/#/jobs/12")};
	char	   *msg;

	nt_config_defaults(&c);
	nt_config_set(&c, "smtp-from", "ModelMine <noreply@modelmine.test>", NULL, 0);
	msg = nt_email_compose(&c, &d, &m, 1700000000L);
	CHECK(msg != NULL, "composed");
	CHECK(strstr(msg, "\r\nBcc:") == NULL, "a CRLF in the subject adds no header: %s", msg);
	CHECK(strstr(msg, "From: ModelMine <noreply@modelmine.test>\r\n") == msg, "From first");
	CHECK(strstr(msg, "\r\nTo: <ann@example.com>\r\n") != NULL, "To");
	CHECK(strstr(msg, "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n") != NULL, "Date, RFC 5322, UTC");
	CHECK(strstr(msg, "\r\nMessage-ID: <147360fa-319c-4673-a1d6-9ce46c9e22a8.42@modelmine.test>\r\n") != NULL,
		  "Message-ID");
	CHECK(strstr(msg, "\r\n\r\nline one\r\nline two\r\n\r\nhttp://dash/#/jobs/12\r\n") != NULL,
		  "body with CRLF line ends and the link: %s", msg);
	free(msg);
	free(m.subject);
	m.subject = strdup("Job 1 completed: λ résumé");
	msg = nt_email_compose(&c, &d, &m, 1700000000L);
	CHECK(strstr(msg, "\r\nSubject: =?UTF-8?B?") != NULL, "a UTF-8 subject is RFC 2047 encoded");
	free(msg);
	nt_message_free(&m);
}

static void
test_messages(void)
{
	nt_config	c;
	nt_message	m;
	char		err[NT_ERR_LEN];
	nt_delivery d = delivery("job_failed", "email", "ann@example.com");
	json_t	   *p = json_pack("{s:i, s:s, s:s, s:i, s:s}", "job_id", 12, "title", "night run",
							  "status", "FAILED", "stake", 25, "error", "out of memory");

	nt_config_defaults(&c);
	CHECK(nt_message_build(&c, &d, p, &m, err, sizeof(err)) == 0, "%s", err);
	CHECK(strcmp(m.subject, "Job 12 failed: night run") == 0, "subject %s", m.subject);
	CHECK(strstr(m.text, "Error: out of memory") != NULL, "the error is in the text");
	CHECK(m.link == NULL, "no dashboard, no link");
	nt_message_free(&m);
	nt_config_set(&c, "dashboard-url", "https://modelmine.example.com//", NULL, 0);
	CHECK(nt_message_build(&c, &d, p, &m, err, sizeof(err)) == 0, "%s", err);
	CHECK(m.link && strcmp(m.link, "https://modelmine.example.com/#/jobs/12") == 0, "link %s", m.link);
	{
		char	   *body = nt_webhook_body(&d, p, &m);
		json_t	   *b = json_loads(body, 0, NULL);

		CHECK(b != NULL, "the webhook body is JSON");
		CHECK(strcmp(json_string_value(json_object_get(b, "id")), d.event_id) == 0, "id is the event id");
		CHECK(strcmp(json_string_value(json_object_get(b, "type")), "job_failed") == 0, "type");
		CHECK(strcmp(json_string_value(json_object_get(json_object_get(b, "data"), "url")), m.link) == 0,
			  "data.url is the link");
		CHECK(json_integer_value(json_object_get(json_object_get(b, "data"), "job_id")) == 12, "data has the payload");
		json_decref(b);
		free(body);
	}
	nt_message_free(&m);
	json_decref(p);

	d = delivery("email_verification", "email", "ann@example.com");
	p = json_pack("{s:s}", "token", "abc123");
	CHECK(nt_message_build(&c, &d, p, &m, err, sizeof(err)) == 0, "%s", err);
	CHECK(strcmp(m.link, "https://modelmine.example.com/auth/verify?token=abc123") == 0, "link %s", m.link);
	nt_message_free(&m);
	nt_config_set(&c, "dashboard-url", "", NULL, 0);
	CHECK(nt_message_build(&c, &d, p, &m, err, sizeof(err)) != 0, "verification needs --dashboard-url");
	CHECK_MSG(err, "dashboard-url");
	json_decref(p);

	d = delivery("lottery_won", "email", "ann@example.com");
	p = json_object();
	CHECK(nt_message_build(&c, &d, p, &m, err, sizeof(err)) != 0, "an unknown event is refused");
	CHECK_MSG(err, "lottery_won");
	json_decref(p);
}

static void
test_config(void)
{
	nt_config	c;
	char		err[NT_ERR_LEN];
	FILE	   *f;
	char		path[] = "/tmp/test_notify_conf_XXXXXX";
	int			fd = mkstemp(path);

	nt_config_defaults(&c);
	CHECK(strcmp(nt_config_env_name("smtp-url"), "MODELMINE_SMTP_URL") == 0, "env name");
	CHECK(nt_config_set(&c, "smtp-url", "ftp://x", err, sizeof(err)) != 0, "ftp refused");
	CHECK_MSG(err, "smtp://");
	CHECK(nt_config_set(&c, "smtp_tls", "maybe", err, sizeof(err)) != 0, "bad tls mode");
	CHECK(nt_config_set(&c, "smtp-from", "ModelMine\r\nBcc: x@y", err, sizeof(err)) != 0, "CRLF in From");
	CHECK(nt_config_set(&c, "batch", "0", err, sizeof(err)) != 0, "batch 0");
	CHECK(nt_config_set(&c, "allow-net", "127.0.0.1/32, 10.0.0.0/8", err, sizeof(err)) == 0, "%s", err);
	CHECK(c.n_allow_net == 2, "two networks");
	CHECK(nt_config_set(&c, "allow-net", "10.1.2.3/8", err, sizeof(err)) != 0, "bits past the prefix");
	CHECK(nt_config_set(&c, "frobnicate", "1", err, sizeof(err)) != 0, "unknown setting");
	f = fdopen(fd, "w");
	fprintf(f, "# comment\n\nsmtp_url = smtps://mail.example.com:465\n  batch=7  \n");
	fclose(f);
	CHECK(nt_config_file(&c, path, err, sizeof(err)) == 0, "%s", err);
	CHECK(c.smtp_url && strcmp(c.smtp_url, "smtps://mail.example.com:465") == 0, "smtp_url from the file");
	CHECK(c.batch == 7, "batch from the file");
	f = fopen(path, "w");
	fprintf(f, "batch 7\n");
	fclose(f);
	CHECK(nt_config_file(&c, path, err, sizeof(err)) != 0, "a line without =");
	CHECK_MSG(err, ":1:");
	unlink(path);
}

int
main(void)
{
	test_sign();
	test_addresses();
	test_email();
	test_messages();
	test_config();
	return t_summary();
}
