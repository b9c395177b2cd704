/*
 * notifications.c — what modelmine-notify sends you: notifications (the list, with the reasons of
 * dead letters), notifications settings (events, email, a balance threshold) and notifications
 * webhook add | remove.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

enum
{
	O_LIMIT = OPT_FIRST_COMMAND_OPTION, O_STATUS, O_EVENTS, O_EMAIL, O_BALANCE_BELOW
};

static const Column columns[] = {
	{.key = "id", .header = "ID", .right = true},
	{.key = "event", .header = "EVENT"},
	{.key = "channel", .header = "CHANNEL"},
	{.key = "destination", .header = "TO", .max = 40},
	{.key = "state", .header = "STATUS", .status = true},
	{.key = "attempts", .header = "TRIES", .right = true},
	{.key = "created_at", .header = "CREATED", .fn = cell_ago},
	{.key = "last_error", .header = "LAST ERROR", .max = 60},
};

typedef struct Opts
{
	const char *limit;
	const char *status;
	const char *events;			/* "{a,b}" for SQL */
	const char *email;			/* "true" / "false" */
	const char *balance_below;
	char		events_buf[512];
} Opts;

/* --events a,b,c as a SQL array literal; the server checks the names. */
static int
parse_events(Ctx *c, const char *s, Opts *o)
{
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == ','))
			return usage_error(c, "--events takes event names separated by commas, e.g. "
							   "job_completed,job_failed (got \"%s\")", s);
	if (strlen(s) + 3 > sizeof(o->events_buf))
		return usage_error(c, "--events is too long");
	snprintf(o->events_buf, sizeof(o->events_buf), "{%s}", s);
	o->events = o->events_buf;
	return -1;
}

static int
parse_opts(Ctx *c, int argc, char **argv, Opts *o)
{
	static const struct option opts[] = {
		{"limit", required_argument, NULL, O_LIMIT}, {"status", required_argument, NULL, O_STATUS},
		{"events", required_argument, NULL, O_EVENTS}, {"email", required_argument, NULL, O_EMAIL},
		{"balance-below", required_argument, NULL, O_BALANCE_BELOW},
		COMMON_OPTIONS, {NULL, 0, NULL, 0}
	};
	long long	n;
	int			opt,
				rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case O_LIMIT:
				if (parse_int64(c, "--limit", optarg, 0, 1000, &n) != 0)
					return EXIT_USAGE;
				o->limit = optarg;
				break;
			case O_STATUS:
				o->status = optarg;
				break;
			case O_EVENTS:
				if ((rc = parse_events(c, optarg, o)) >= 0)
					return rc;
				break;
			case O_EMAIL:
				if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
					return usage_error(c, "--email takes on or off (got \"%s\")", optarg);
				o->email = strcmp(optarg, "on") == 0 ? "true" : "false";
				break;
			case O_BALANCE_BELOW:
				if (parse_int64(c, "--balance-below", optarg, 0, MM_MAX_AMOUNT, &n) != 0)
					return EXIT_USAGE;
				o->balance_below = optarg;
				break;
			default:
				if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
					return rc;
		}
	}
	return -1;
}

/* notifications [--status S] [--limit N] */
static int
list(Ctx *c, const Opts *o)
{
	const char *args[2] = {o->status, o->limit ? o->limit : "20"};
	json_t	   *rows;
	int			rc;

	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	rows = db_json(c, "SELECT COALESCE(pg_catalog.json_agg(n), '[]') FROM "
				   "modelmine.my_notifications(pg_catalog.upper($1), $2::int) n", 2, args);
	if (rows == NULL)
		return db_fail(c);
	if (c->json)
		print_json(rows);
	else if (json_array_size(rows) == 0)
		printf("No notifications. Choose events with: modelmine notifications settings --events "
			   "job_completed,job_failed\n");
	else
		print_table(c, rows, columns, sizeof(columns) / sizeof(columns[0]));
	json_decref(rows);
	return EXIT_OK;
}

/* Prints the preferences document. */
static void
print_settings(Ctx *c, json_t *p)
{
	json_t	   *hooks = json_object_get(p, "webhooks"),
			   *ev,
			   *h;
	size_t		i;

	if (c->json)
	{
		print_json(p);
		return;
	}
	printf("Events:        ");
	if (json_array_size(json_object_get(p, "events")) == 0)
		printf("none");
	json_array_foreach(json_object_get(p, "events"), i, ev)
		printf("%s%s", i ? ", " : "", json_string_value(ev));
	printf("\nEmail:         %s\n", json_is_true(json_object_get(p, "email")) ? "on" : "off");
	if (json_is_integer(json_object_get(p, "balance_threshold")))
		printf("Balance below: %lld tokens\n",
			   (long long) json_integer_value(json_object_get(p, "balance_threshold")));
	else
		printf("Balance below: no threshold\n");
	printf("Webhooks:      %s\n", json_array_size(hooks) ? "" : "none");
	json_array_foreach(hooks, i, h)
	{
		char	   *url = text_clean(json_string_value(json_object_get(h, "url")));

		printf("  %lld  %s\n", (long long) json_integer_value(json_object_get(h, "id")), url);
		free(url);
	}
}

/* notifications settings [--events LIST] [--email on|off] [--balance-below N] */
static int
settings(Ctx *c, const Opts *o)
{
	const char *args[3] = {o->events, o->email, o->balance_below};
	bool		change = o->events || o->email || o->balance_below;
	json_t	   *p;
	int			rc;

	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	p = change ? db_json(c, "SELECT modelmine.set_notification_prefs($1::text[], $2::boolean, "
						 "$3::bigint)", 3, args)
		: db_json(c, "SELECT modelmine.notification_prefs()", 0, NULL);
	if (p == NULL)
		return db_fail(c);
	print_settings(c, p);
	json_decref(p);
	return EXIT_OK;
}

/* notifications webhook add URL | remove ID */
static int
webhook(Ctx *c, int argc, char **argv)
{
	const char *sub = optind + 1 < argc ? argv[optind + 1] : "";
	const char *args[1];
	long long	id;
	json_t	   *r;
	int			rc;

	if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0)
		return usage_error(c, "no subcommand \"webhook %s\" (want add URL or remove ID)", sub);
	if ((rc = need_args(c, argc, argv, 3, 3)) >= 0)
		return rc;
	args[0] = argv[optind + 2];
	if (strcmp(sub, "remove") == 0 && parse_int64(c, "ID", args[0], 1, LLONG_MAX, &id) != 0)
		return EXIT_USAGE;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	if (strcmp(sub, "add") == 0)
	{
		if ((r = db_json(c, "SELECT modelmine.add_webhook($1)", 1, args)) == NULL)
			return db_fail(c);
		if (c->json)
			print_json(r);
		else
		{
			char	   *url = text_clean(json_string_value(json_object_get(r, "url")));

			printf("Webhook %lld: %s\nSigning secret (shown only now; keep it to verify the "
				   MM_SIGNATURE_HEADER " header):\n%s\n",
				   (long long) json_integer_value(json_object_get(r, "id")), url,
				   json_string_value(json_object_get(r, "secret")));
			free(url);
		}
	}
	else
	{
		if ((r = db_json(c, "SELECT pg_catalog.to_json(modelmine.remove_webhook($1::bigint))", 1,
						 args)) == NULL)
		{
			db_set_hint(c, MM_SQLSTATE_NOT_FOUND,
						"list yours with: modelmine notifications settings");
			return db_fail(c);
		}
		if (c->json)
		{
			json_t	   *j = json_pack("{s:I, s:O}", "webhook_id", (json_int_t) id,
									  "dead_lettered", r);

			print_json(j);
			json_decref(j);
		}
		else
			printf("Removed webhook %lld; %lld undelivered notification%s dead-lettered.\n", id,
				   (long long) json_integer_value(r), json_integer_value(r) == 1 ? "" : "s");
	}
	json_decref(r);
	return EXIT_OK;
}

int
cmd_notifications(Ctx *c, int argc, char **argv)
{
	Opts		o = {0};
	const char *sub;
	int			rc;

	if ((rc = parse_opts(c, argc, argv, &o)) >= 0)
		return rc;
	sub = optind < argc ? argv[optind] : "";
	if (sub[0] == '\0')
	{
		if (o.events || o.email || o.balance_below)
			return usage_error(c, "--events, --email and --balance-below go with: "
							   "modelmine notifications settings");
		return list(c, &o);
	}
	if (o.limit || o.status)
		return usage_error(c, "--status and --limit go with the plain listing");
	if (strcmp(sub, "settings") == 0)
	{
		if ((rc = need_args(c, argc, argv, 1, 1)) >= 0)
			return rc;
		return settings(c, &o);
	}
	if (o.events || o.email || o.balance_below)
		return usage_error(c, "--events, --email and --balance-below go with: "
						   "modelmine notifications settings");
	if (strcmp(sub, "webhook") == 0)
		return webhook(c, argc, argv);
	return usage_error(c, "no subcommand \"%s\" (want settings or webhook)", sub);
}
