/*
 * auth.c — signup, login, logout, whoami: the session file's life cycle.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelmine/protocol.h"

static const char whoami_sql[] =
	"SELECT pg_catalog.json_build_object('user_id', w.user_id, 'email', w.email, 'role', w.role, "
	"       'session_id', w.session_id, 'session_expires_at', w.session_expires_at, "
	"       'balance', modelmine.balance()) "
	"  FROM modelmine.whoami() w";

/* Binds the connection to token and prints who that is (headline first). */
static int
show_session(Ctx *c, const char *token, const char *headline)
{
	const char *args[1] = {token};
	PGresult   *r = db_query(c, "SELECT modelmine.authenticate($1)", 1, args);
	json_t	   *me;

	if (r == NULL)
		return db_fail(c);
	PQclear(r);
	if ((me = db_json(c, whoami_sql, 0, NULL)) == NULL)
		return db_fail(c);
	if (c->json)
		print_json(me);
	else
	{
		char	   *email = fmt_value(json_object_get(me, "email")),
				   *until = fmt_time(json_object_get(me, "session_expires_at"));
		long long	balance = json_integer_value(json_object_get(me, "balance"));

		printf("%s as %s (user %lld, %lld token%s); the session lasts until %s.\n", headline, email,
			   (long long) json_integer_value(json_object_get(me, "user_id")), balance,
			   balance == 1 ? "" : "s", until);
		free(email);
		free(until);
	}
	json_decref(me);
	return EXIT_OK;
}

/* Revokes the session this file held, now that a new login replaces it (best effort, quietly). */
static void
revoke_previous(Ctx *c)
{
	char	   *old = session_load();
	const char *args[1] = {old};
	PGresult   *r;

	if (old == NULL)
		return;
	if ((r = db_query(c, "SELECT modelmine.authenticate($1)", 1, args)) != NULL)
	{
		PQclear(r);
		if ((r = db_query(c, "SELECT modelmine.logout()", 0, NULL)) != NULL)
			PQclear(r);
	}
	free(old);
}

/*
 * Whether the database role may sign in: modelmine.authenticate is granted to modelmine_user, not
 * to modelmine_anon, which may only sign up and log in. 1 or 0; -1 on an error (kept for db_fail).
 */
static int
can_authenticate(Ctx *c)
{
	PGresult   *r = db_query(c, "SELECT pg_catalog.has_function_privilege("
							 "'modelmine.authenticate(text)', 'EXECUTE')", 0, NULL);
	int			can;

	if (r == NULL)
		return -1;
	can = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return can;
}

/* signup with a role that cannot sign in: the account exists; say so, and what signing in needs. */
static int
signed_up_only(Ctx *c, const char *email, const char *user_id)
{
	char	   *role = db_role(c);

	if (c->json)
	{
		json_t	   *j = json_pack("{s:I, s:b}", "user_id", (json_int_t) atoll(user_id),
								  "signed_in", 0);

		print_json(j);
		json_decref(j);
	}
	else
		printf("Signed up as %s (user %s); not signed in.\n", email, user_id);
	fprintf(stderr, "modelmine: the database role %s may create accounts but not sign in "
			"(it is not a member of " MM_ROLE_USER ") hint: sign in as a role that is, or have it "
			"granted (GRANT " MM_ROLE_USER " TO %s), then: modelmine login %s\n", role, role, email);
	free(role);
	return EXIT_OK;
}

/*
 * signup and login: EMAIL [--password-stdin]
 *
 * Whether the role may sign in is checked first, so that neither command stops half-way: login
 * fails before it creates a session; signup creates the account and stops there (signed_up_only).
 */
static int
sign_in(Ctx *c, int argc, char **argv, bool create)
{
	static const struct option opts[] = {{"password-stdin", no_argument, NULL, 'p'}, COMMON_OPTIONS,
	{NULL, 0, NULL, 0}};
	bool		from_stdin = false;
	const char *email;
	char	   *pw,
			   *token;
	const char *args[2];
	PGresult   *r;
	int			opt,
				rc,
				can;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
	{
		if (opt == 'p')
			from_stdin = true;
		else if ((rc = common_option(c, opt, optarg, argc, argv)) >= 0)
			return rc;
	}
	if ((rc = need_args(c, argc, argv, 1, 1)) >= 0)
		return rc;
	email = argv[optind];
	if ((pw = read_password(c, email, from_stdin, create)) == NULL)
		return EXIT_USAGE;
	c->role = create ? MM_ROLE_ANON : MM_ROLE_USER;
	if ((rc = db_open(c)) != EXIT_OK || (can = can_authenticate(c)) < 0)
	{
		free(pw);
		return rc != EXIT_OK ? rc : db_fail(c);
	}
	if (!create && !can)
	{
		char	   *role = db_role(c);

		free(pw);
		fprintf(stderr, "modelmine: the database role %s cannot sign in (it is not a member of "
				MM_ROLE_USER ") hint: connect as a role that is, or have it granted: "
				"GRANT " MM_ROLE_USER " TO %s\n", role, role);
		free(role);
		return EXIT_ERROR;
	}
	args[0] = email;
	args[1] = pw;
	if (create)
	{
		if ((r = db_query(c, "SELECT modelmine.signup($1, $2)", 2, args)) == NULL)
		{
			free(pw);
			db_set_hint(c, MM_SQLSTATE_DUPLICATE,
						"sign in with: modelmine login EMAIL, or sign up with another email");
			return db_fail(c);
		}
		if (!can)
		{
			free(pw);
			rc = signed_up_only(c, email, PQgetvalue(r, 0, 0));
			PQclear(r);
			return rc;
		}
		PQclear(r);
	}
	r = db_query(c, "SELECT modelmine.login($1, $2)", 2, args);
	free(pw);
	if (r == NULL)
	{
		db_set_hint(c, MM_SQLSTATE_BAD_PASSWORD,
					"check both, or create an account with: modelmine signup EMAIL");
		return db_fail(c);
	}
	token = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	revoke_previous(c);
	if (session_save(token) != 0)
		rc = EXIT_ERROR;
	else
		rc = show_session(c, token, create ? "Signed up and signed in" : "Signed in");
	free(token);
	return rc;
}

/* signup EMAIL: creates an account, then signs in. */
int
cmd_signup(Ctx *c, int argc, char **argv)
{
	return sign_in(c, argc, argv, true);
}

/* login EMAIL: signs in and keeps the session. */
int
cmd_login(Ctx *c, int argc, char **argv)
{
	return sign_in(c, argc, argv, false);
}

/* logout: revokes the session in the database and forgets it. */
int
cmd_logout(Ctx *c, int argc, char **argv)
{
	char	   *token;
	const char *args[1];
	PGresult   *r;
	bool		revoked = false;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 0, 0)) >= 0)
		return rc;
	c->role = MM_ROLE_USER;
	if ((token = session_load()) == NULL)
	{
		if (c->json)
			printf("{\"signed_out\": true, \"revoked\": false}\n");
		else
			printf("Not signed in; nothing to do.\n");
		return EXIT_OK;
	}
	if ((rc = db_open(c)) != EXIT_OK)
	{
		fprintf(stderr, "modelmine: the session file %s is kept, so that the session can be revoked "
				"later\n", session_path());
		free(token);
		return rc;
	}
	args[0] = token;
	r = db_query(c, "SELECT modelmine.authenticate($1)", 1, args);
	free(token);
	if (r == NULL && db_exit_code(c) != EXIT_AUTH)
		return db_fail(c);
	if (r != NULL)
	{
		PQclear(r);
		if ((r = db_query(c, "SELECT modelmine.logout()", 0, NULL)) == NULL)
			return db_fail(c);
		PQclear(r);
		revoked = true;
	}
	if (session_remove() != 0)
		return EXIT_ERROR;
	if (c->json)
		printf("{\"signed_out\": true, \"revoked\": %s}\n", revoked ? "true" : "false");
	else if (revoked)
		printf("Signed out; the session is revoked.\n");
	else
		printf("Signed out (the session had already ended).\n");
	return EXIT_OK;
}

/* whoami: who is signed in, and until when. */
int
cmd_whoami(Ctx *c, int argc, char **argv)
{
	json_t	   *me;
	int			rc;

	if ((rc = parse_plain(c, argc, argv, 0, 0)) >= 0)
		return rc;
	if ((rc = db_open_user(c)) != EXIT_OK)
		return rc;
	if ((me = db_json(c, whoami_sql, 0, NULL)) == NULL)
		return db_fail(c);
	if (c->json)
		print_json(me);
	else
	{
		const char *keys[] = {"email", "user id", "role", "balance", "session", "expires"};
		char	   *vals[6] = {
			fmt_value(json_object_get(me, "email")), fmt_value(json_object_get(me, "user_id")),
			fmt_value(json_object_get(me, "role")), fmt_value(json_object_get(me, "balance")),
			fmt_value(json_object_get(me, "session_id")),
			fmt_time(json_object_get(me, "session_expires_at"))
		};
		Lines		l = {0};

		kv_lines(keys, vals, 6, c->color, &l);
		lines_print(&l, stdout);
		lines_free(&l);
		for (int i = 0; i < 6; i++)
			free(vals[i]);
	}
	json_decref(me);
	return EXIT_OK;
}
