/*
 * auth.c — accounts, login sessions and the identity of the calling database session.
 *
 * Identity comes from exactly two places, both verified here, never from a setting a client can
 * make up:
 *   1. a binding made by authenticate(token) / authenticate_local(token) after verifying the token;
 *   2. an "Authorization: Bearer <token>" entry in request.headers (PostgREST sets it per request),
 *      verified on every call.
 * A binding lives in backend memory and is only honoured while the private setting
 * modelmine.session_binding still holds the random nonce it was made with.  That setting is
 * superuser- only (clients can neither read nor set it), is SET LOCAL for authenticate_local (gone
 * at transaction end), reverts if the binding transaction aborts, and is cleared by RESET ALL /
 * DISCARD ALL, so a pooler's reset query also drops the binding.  Every use re-reads the session
 * row, so logout in any backend takes effect at once.
 */
#include "modelmine.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(mm_signup);
PG_FUNCTION_INFO_V1(mm_login);
PG_FUNCTION_INFO_V1(mm_authenticate);
PG_FUNCTION_INFO_V1(mm_authenticate_local);
PG_FUNCTION_INFO_V1(mm_deauthenticate);
PG_FUNCTION_INFO_V1(mm_logout);
PG_FUNCTION_INFO_V1(mm_current_user_id);
PG_FUNCTION_INFO_V1(mm_current_session_id);
PG_FUNCTION_INFO_V1(mm_request_role);

#define BINDING_GUC "modelmine.session_binding"

static char *binding_setting = NULL;	/* GUC storage: current nonce, or "" */
static bool bound = false;
static char bound_nonce[33];
static int64 bound_user;		/* a user binding (0 for a node binding) ... */
static pg_uuid_t bound_session;
static int64 bound_node;		/* ... or a node binding (0 for a user binding) */
static uint8 bound_key_hash[MM_KEY_HASH_LEN];

void		MmAuthInit(void);

/* Defines the superuser-only GUC that holds the binding nonce (called from _PG_init). */
void
MmAuthInit(void)
{
	DefineCustomStringVariable(BINDING_GUC,
							   "Internal: nonce of this session's ModelMine identity binding.",
							   NULL, &binding_setting, "", PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE |
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Input validation                                                                               */
/* ---------------------------------------------------------------------------------------------- */

/* Trims and lower-cases an email and checks its shape; raises 22023 naming the problem. */
char *
MmNormaliseEmail(text *email)
{
	char	   *raw,
			   *s,
			   *e,
			   *at,
			   *lower;
	const char *problem = NULL;
	size_t		len;

	if (email == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("email is required"),
						errhint("Pass an address such as 'ada@example.com'.")));
	raw = text_to_cstring(email);
	s = MmTrim(raw);
	len = strlen(s);
	e = s + len;
	at = strchr(s, '@');

	if (len == 0)
		problem = "The address is empty.";
	else if (len > MM_EMAIL_MAX_BYTES)
		problem = "The address is longer than " CppAsString2(MM_EMAIL_MAX_BYTES) " bytes.";
	else if (at == NULL || strchr(at + 1, '@') != NULL)
		problem = "An address has exactly one \"@\".";
	else if (at == s || at - s > 64)
		problem = "The part before \"@\" must be 1 to 64 characters.";
	else if (strchr(at + 1, '.') == NULL || at[1] == '.' || e[-1] == '.' ||
			 strstr(at, "..") != NULL)
		problem = "The domain after \"@\" must contain a dot and no empty labels.";
	else
	{
		for (const char *p = s; *p; p++)
		{
			unsigned char c = (unsigned char) *p;

			if (c <= ' ' || c == 0x7f || strchr("\"(),:;<>[\\]", c) != NULL)
			{
				problem = "The address contains a space, control character or one of "
						  "\"(),:;<>[\\].";
				break;
			}
		}
	}
	if (problem)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid email"),
						errdetail("%s", problem),
						errhint("Pass an address such as 'ada@example.com'.")));
	lower = str_tolower(s, len, DEFAULT_COLLATION_OID);
	pfree(raw);
	return lower;
}

/* The password as a C string, refused when too short or longer than bcrypt reads. */
static char *
CheckPassword(text *password)
{
	char	   *pw;
	int			chars;

	if (password == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("password is required"),
						errhint("Pass a password of at least " CppAsString2(MM_PASSWORD_MIN_CHARS)
								" characters.")));
	pw = text_to_cstring(password);
	chars = pg_mbstrlen(pw);
	if (chars < MM_PASSWORD_MIN_CHARS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("password is too short"),
						errdetail("It has %d characters.", chars),
						errhint("Pass a password of at least " CppAsString2(MM_PASSWORD_MIN_CHARS)
								" characters.")));
	if (strlen(pw) > MM_PASSWORD_MAX_BYTES)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("password is too long"),
						errdetail("It has %zu bytes; bcrypt uses only the first %d.", strlen(pw),
								  MM_PASSWORD_MAX_BYTES),
						errhint("Pass a password of at most " CppAsString2(MM_PASSWORD_MAX_BYTES)
								" bytes.")));
	return pw;
}

/* ---------------------------------------------------------------------------------------------- */
/* bcrypt through pgcrypto, found by extension membership (its schema is the installer's choice)  */
/* ---------------------------------------------------------------------------------------------- */

/* The oid of pgcrypto's two-argument function name, wherever pgcrypto is installed. */
static Oid
PgcryptoFunction(const char *name)
{
	static MmPlan plan = {
		"SELECT p.oid FROM pg_catalog.pg_proc p "
		"JOIN pg_catalog.pg_depend d ON d.objid = p.oid "
		" AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass "
		" AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e' "
		"JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid "
		"WHERE e.extname = 'pgcrypto' AND p.proname = $1 AND p.pronargs = 2",
	1, {TEXTOID}};
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		isnull;

	if (MmExec(&plan, args, NULL, true, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
						errmsg("pgcrypto function %s is missing", name),
						errhint("modelmine requires pgcrypto: CREATE EXTENSION pgcrypto.")));
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										  &isnull));
}

/* pgcrypto's crypt(): a new hash from a salt, or the stored hash recomputed from a password. */
static char *
Bcrypt(const char *password, const char *salt_or_hash)
{
	Datum		h = OidFunctionCall2(PgcryptoFunction("crypt"), CStringGetTextDatum(password),
									 CStringGetTextDatum(salt_or_hash));

	return TextDatumGetCString(h);
}

/* A fresh bcrypt salt at the cost of setting bcrypt_cost. */
static char *
BcryptNewSalt(void)
{
	Datum		s = OidFunctionCall2(PgcryptoFunction("gen_salt"), CStringGetTextDatum("bf"),
									 Int32GetDatum((int32) MmSetting("bcrypt_cost")));

	return TextDatumGetCString(s);
}

/* The work factor of a stored bcrypt hash ("$2a$10$..."), or -1 when it is not one. */
static int
BcryptCost(const char *hash)
{
	if (strlen(hash) < 7 || hash[0] != '$' || hash[3] != '$' || hash[6] != '$' ||
		hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9')
		return -1;
	return (hash[4] - '0') * 10 + (hash[5] - '0');
}

/* ---------------------------------------------------------------------------------------------- */
/* Signup and login                                                                               */
/* ---------------------------------------------------------------------------------------------- */

/* The id of the user with this (normalised) email, or 0. */
int64
MmUserIdByEmail(const char *email)
{
	static MmPlan plan = {"SELECT id FROM modelmine.users WHERE email = $1", 1, {TEXTOID}};
	Datum		args[1] = {CStringGetTextDatum(email)};

	if (MmExec(&plan, args, NULL, true, 1) != 1)
		return 0;
	return MmInt64(0, 1, NULL);
}

/* Creates a user and their account, grants signup_grant tokens; 23505 if the email is taken. */
static int64
Signup(text *email_in, text *password_in)
{
	static MmPlan ins_user = {
		"INSERT INTO modelmine.users (email, password_hash, grant_locked) VALUES ($1, $2, $3) "
		"ON CONFLICT (email) DO NOTHING RETURNING id", 3, {TEXTOID, TEXTOID, INT8OID}};
	static MmPlan ins_account = {
		"INSERT INTO modelmine.accounts (kind, user_id) VALUES ('user', $1) "
		"RETURNING id", 1, {INT8OID}};
	char	   *email = MmNormaliseEmail(email_in);
	char	   *password = CheckPassword(password_in);
	char	   *hash = Bcrypt(password, BcryptNewSalt());
	/* the grant stays locked in the account until it is unlocked (grants.c) */
	int64		grant = MmSetting("signup_grant");
	Datum		uargs[3] = {CStringGetTextDatum(email), CStringGetTextDatum(hash),
	Int64GetDatum(grant)};
	Datum		aargs[1];
	int64		user_id,
				account;

	/*
	 * an open transaction signing up the same email holds its index entry: wait, but not for
	 * long
	 */
	if (MmExecWaiting(&ins_user, uargs, NULL, 1, "this email address", 0) != 1)
		ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION), errmsg("email already registered"),
						errdetail("An account for %s exists.", email),
						errhint("Log in with modelmine.login(email, password), or sign up with "
								"another email.")));
	user_id = MmInt64(0, 1, NULL);
	aargs[0] = Int64GetDatum(user_id);
	MmExec(&ins_account, aargs, NULL, false, 1);
	account = MmInt64(0, 1, NULL);
	if (grant > 0)
	{
		MmCheckSupply(grant, "The signup grant");
		MmPayOut(MM_ISSUANCE_ACCOUNT, account, grant, "signup_grant", 0);
	}
	return user_id;
}

/* The per-database HS256 key made at install time (readable only by the extension owner). */
static bytea *
SigningKey(void)
{
	static MmPlan key = {"SELECT value FROM modelmine.secrets WHERE name = 'jwt_hs256'", 0, {0}};
	bool		isnull;

	if (MmExec(&key, NULL, NULL, true, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("modelmine signing key is missing"),
						errhint("Reinstall the extension, or restore the jwt_hs256 row in "
								"modelmine.secrets.")));
	return DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Re-hashes a password at today's bcrypt_cost after a successful login, so hashes made before the
 * cost changed converge on it (and a refused login costs the same whether or not the email exists).
 */
static void
Rehash(int64 user_id, const char *password)
{
	static MmPlan set = {
		"UPDATE modelmine.users SET password_hash = $2 WHERE id = $1", 2, {INT8OID, TEXTOID}};
	Datum		args[2] = {Int64GetDatum(user_id),
						   CStringGetTextDatum(Bcrypt(password, BcryptNewSalt()))};

	MmExecWaiting(&set, args, NULL, 0, "user", user_id);
}

/*
 * Returns a signed token for a new session, or raises 28P01 with the same message for any
 * mismatch.
 */
static char *
Login(text *email_in, text *password_in, MemoryContext result_cxt)
{
	static MmPlan find = {
		"SELECT id, password_hash, role FROM modelmine.users WHERE email = $1", 1, {TEXTOID}};
	static MmPlan new_session = {
		"WITH gc AS (DELETE FROM modelmine.sessions WHERE user_id = $1 "
		"            AND expires_at < pg_catalog.now() - interval '1 day') "
		"INSERT INTO modelmine.sessions (user_id, expires_at) "
		"VALUES ($1, pg_catalog.now() + pg_catalog.make_interval(secs => $2)) "
		"RETURNING id, pg_catalog.date_part('epoch', created_at)::bigint, "
		"          pg_catalog.date_part('epoch', expires_at)::bigint", 2, {INT8OID, FLOAT8OID}};
	char	   *email = MmNormaliseEmail(email_in);
	char	   *password = CheckPassword(password_in);
	Datum		args[2];
	bool		found,
				ok = false;
	int64		user_id = 0;
	char	   *role = NULL,
			   *payload;
	bytea	   *k;

	args[0] = CStringGetTextDatum(email);
	found = MmExec(&find, args, NULL, false, 1) == 1;
	if (found)
	{
		char	   *stored = MmText(0, 2);
		char	   *computed;
		bool		current;

		user_id = MmInt64(0, 1, NULL);
		role = MmText(0, 3);
		current = BcryptCost(stored) == MmSetting("bcrypt_cost");	/* replaces SPI_tuptable */
		computed = Bcrypt(password, stored);
		ok = strlen(computed) == strlen(stored) &&
			timingsafe_bcmp(computed, stored, strlen(stored)) == 0;
		if (ok && !current)
			Rehash(user_id, password);
		else if (!ok && !current)
			/* a refusal always costs one bcrypt at today's cost */
			(void) Bcrypt(password, BcryptNewSalt());
	}
	else
		/* same cost as a real check: no enumeration by timing */
		(void) Bcrypt(password, BcryptNewSalt());

	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PASSWORD), errmsg("invalid email or password"),
						errhint("Check both, or sign up with modelmine.signup(email, password).")));

	args[0] = Int64GetDatum(user_id);
	args[1] = Float8GetDatum((double) MmSetting("session_ttl_seconds"));
	MmExec(&new_session, args, NULL, false, 1);
	payload = psprintf("{\"iss\":\"modelmine\",\"sub\":\"" INT64_FORMAT "\",\"role\":\"%s\","
					   "\"sid\":\"%s\",\"iat\":" INT64_FORMAT ",\"exp\":" INT64_FORMAT "}",
					   user_id, strcmp(role, "admin") == 0 ? MM_ROLE_ADMIN : MM_ROLE_USER,
					   MmText(0, 1), MmInt64(0, 2, NULL), MmInt64(0, 3, NULL));

	k = SigningKey();
	{
		MemoryContext old = MemoryContextSwitchTo(result_cxt);
		char	   *token = MmJwtSign(payload, (uint8 *) VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k));

		MemoryContextSwitchTo(old);
		return token;
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Identity                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* Whether this backend's binding is still the one in the GUC (not reset, aborted or ended). */
static bool
BindingValid(void)
{
	if (!bound)
		return false;
	if (binding_setting == NULL || strcmp(binding_setting, bound_nonce) != 0)
	{
		bound = false;			/* reset, aborted or ended: never revive it */
		return false;
	}
	return true;
}

/*
 * Binds this backend to a user session or to a node (exactly one of user_id, node_id is
 * non-zero).
 */
static void
Bind(int64 user_id, pg_uuid_t *session, int64 node_id, const uint8 *key_hash, bool local)
{
	MmRandomHex((sizeof(bound_nonce) - 1) / 2, bound_nonce);
	(void) set_config_option(BINDING_GUC, bound_nonce, PGC_SUSET, PGC_S_SESSION,
							 local ? GUC_ACTION_LOCAL : GUC_ACTION_SET, true, 0, false);
	bound_user = user_id;
	if (session)
		bound_session = *session;
	bound_node = node_id;
	if (key_hash)
		memcpy(bound_key_hash, key_hash, MM_KEY_HASH_LEN);
	bound = true;
}

/* Binds this backend to a node whose key was just verified. */
void
MmBindNode(int64 node_id, const uint8 *key_hash, bool local)
{
	Bind(0, NULL, node_id, key_hash, local);
}

/* The node this backend is bound to (0 if none); key_hash receives the hash it was bound with. */
int64
MmBoundNode(uint8 *key_hash)
{
	if (!BindingValid() || bound_node == 0)
		return 0;
	memcpy(key_hash, bound_key_hash, MM_KEY_HASH_LEN);
	return bound_node;
}

/* A node whose key no longer matches (rotated or node removed) loses its binding for good. */
void
MmDropNodeBinding(void)
{
	bound = false;
}

/* Forgets this backend's identity. */
static void
Unbind(void)
{
	bound = false;
	(void) set_config_option(BINDING_GUC, "", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0,
							 false);
}

/* Raises 28000 for a revoked or expired session. */
static void
RefuseSession(bool revoked)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					errmsg(revoked ? "session has been revoked" : "session has expired"),
					errdetail(revoked ? "Logged out, or the user's role changed." :
							  "The token is past its expiry time."),
					errhint("Log in again with modelmine.login(email, password).")));
}

/* Verifies a token and its session; raises 28000 on anything wrong.  Returns the user id. */
static int64
IdentityFromToken(const char *token, bool read_only, pg_uuid_t *session)
{
	static MmPlan check = {
		"SELECT s.id, s.user_id, s.revoked_at IS NOT NULL, "
		"       s.expires_at <= pg_catalog.statement_timestamp() "
		"  FROM modelmine.sessions s "
		" WHERE s.id = ($1::pg_catalog.jsonb ->> 'sid')::pg_catalog.uuid "
		"   AND s.user_id = ($1::pg_catalog.jsonb ->> 'sub')::pg_catalog.int8", 1, {TEXTOID}};
	bool		isnull;
	bytea	   *k = SigningKey();
	const char *why = NULL;
	char	   *payload;
	Datum		args[1];

	payload = MmJwtVerify(token, (uint8 *) VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k), &why);
	if (payload == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("invalid token"),
						errdetail("%s", why),
						errhint("Use the token returned by modelmine.login(email, password).")));
	args[0] = CStringGetTextDatum(payload);
	if (MmExec(&check, args, NULL, read_only, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("invalid token"),
						errdetail("The token's session does not exist."),
						errhint("Log in again with modelmine.login(email, password).")));
	if (MmInt64(0, 3, NULL))
		RefuseSession(true);
	if (MmInt64(0, 4, NULL))
		RefuseSession(false);
	*session = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											&isnull));
	return MmInt64(0, 2, NULL);
}

/* The bearer token PostgREST passed in request.headers, or NULL when there is none. */
static char *
BearerFromHeaders(bool read_only)
{
	static MmPlan get = {"SELECT $1::pg_catalog.jsonb ->> 'authorization'", 1, {TEXTOID}};
	const char *headers = GetConfigOption("request.headers", true, false);
	Datum		args[1];
	char	   *auth;

	if (headers == NULL || headers[0] == '\0')
		return NULL;
	args[0] = CStringGetTextDatum(headers);
	MmExec(&get, args, NULL, read_only, 1);
	auth = MmText(0, 1);
	if (auth == NULL)
		return NULL;
	if (pg_strncasecmp(auth, "Bearer ", 7) != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("unsupported Authorization header"),
						errhint("Send \"Authorization: Bearer <token>\" with a token from "
								"modelmine.login.")));
	/* a node key names a node (bound by request_role), never a user */
	if (strncmp(auth + 7, MM_NODE_KEY_PREFIX, strlen(MM_NODE_KEY_PREFIX)) == 0)
		return NULL;
	return auth + 7;
}

/*
 * The role a gateway request runs as, from the bearer in its request.headers (the gateway passes
 * them in and SETs LOCAL the role this returns): nothing -> modelmine_anon; a node key ->
 * modelmine_node, with the node bound for this transaction; a user token -> modelmine_user or
 * modelmine_admin, as the user's row says now (a role change revokes sessions).  A bearer that does
 * not verify raises 28000, so a forged or revoked token never gets a role.
 */
static const char *
RequestRole(text *headers)
{
	static MmPlan get = {"SELECT $1::pg_catalog.jsonb ->> 'authorization'", 1, {TEXTOID}};
	static MmPlan role = {"SELECT role FROM modelmine.users WHERE id = $1", 1, {INT8OID}};
	Datum		args[1];
	char	   *auth,
			   *bearer;
	pg_uuid_t	session;

	if (headers == NULL)
		return MM_ROLE_ANON;
	args[0] = PointerGetDatum(headers);
	MmExec(&get, args, NULL, true, 1);
	auth = MmText(0, 1);
	if (auth == NULL)
		return MM_ROLE_ANON;
	if (pg_strncasecmp(auth, "Bearer ", 7) != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("unsupported Authorization header"),
						errhint("Send \"Authorization: Bearer <token>\" with a token from "
								"modelmine.login, or a node key.")));
	bearer = MmTrim(auth + 7);
	if (strncmp(bearer, MM_NODE_KEY_PREFIX, strlen(MM_NODE_KEY_PREFIX)) == 0)
	{
		(void) MmAuthenticateNode(bearer, true);
		return MM_ROLE_NODE;
	}
	args[0] = Int64GetDatum(IdentityFromToken(bearer, true, &session));
	if (MmExec(&role, args, NULL, true, 1) == 1 && strcmp(MmText(0, 1), "admin") == 0)
		return MM_ROLE_ADMIN;
	return MM_ROLE_USER;
}

/*
 * The signed-in user, or 0 when nobody is signed in.  Raises when a token or binding exists but is
 * no longer good, rather than silently acting as nobody.
 */
static int64
CurrentUser(bool read_only, pg_uuid_t *session)
{
	static MmPlan check = {
		"SELECT revoked_at IS NOT NULL, expires_at <= pg_catalog.statement_timestamp() "
		"  FROM modelmine.sessions WHERE id = $1", 1, {UUIDOID}};
	char	   *bearer = BearerFromHeaders(read_only);
	Datum		args[1];

	if (bearer != NULL)
		return IdentityFromToken(bearer, read_only, session);
	if (!BindingValid() || bound_user == 0)
		return 0;
	args[0] = UUIDPGetDatum(&bound_session);
	if (MmExec(&check, args, NULL, read_only, 1) != 1 || MmInt64(0, 1, NULL) || MmInt64(0, 2, NULL))
	{
		bool		revoked = SPI_processed != 1 || MmInt64(0, 1, NULL);

		bound = false;			/* revocation and expiry are permanent */
		RefuseSession(revoked);
	}
	*session = bound_session;
	return bound_user;
}

/* The signed-in user, or 0 when nobody is (raising only for a token or binding gone bad). */
int64
MmCurrentUser(bool read_only)
{
	pg_uuid_t	session;

	return CurrentUser(read_only, &session);
}

/* The signed-in user, or 28000 "not signed in"; session_out receives the session id. */
int64
MmRequireUser(bool read_only, pg_uuid_t *session_out)
{
	pg_uuid_t	session;
	int64		user_id = CurrentUser(read_only, &session);

	if (user_id == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("not signed in"),
						errdetail("This database session is not bound to a ModelMine user."),
						errhint("Call modelmine.authenticate(token) with a token from "
								"modelmine.login(email, password).")));
	if (session_out)
		*session_out = session;
	return user_id;
}

/* Revokes the caller's session, and unbinds this backend if it was bound to it. */
static void
Logout(void)
{
	static MmPlan revoke = {
		"UPDATE modelmine.sessions SET revoked_at = pg_catalog.now() "
		" WHERE id = $1 AND revoked_at IS NULL", 1, {UUIDOID}};
	pg_uuid_t	session;
	Datum		args[1];

	(void) MmRequireUser(false, &session);
	args[0] = UUIDPGetDatum(&session);
	MmExecWaiting(&revoke, args, NULL, 0, "session", 0);
	/*
	 * a PostgREST header token may be the one revoked: keep an unrelated binding of this
	 * connection
	 */
	if (bound && memcmp(&bound_session, &session, sizeof(session)) == 0)
		Unbind();
}

/* ---------------------------------------------------------------------------------------------- */
/* SQL-callable shims                                                                             */
/* ---------------------------------------------------------------------------------------------- */

/* signup(email, password) -> the new user id. */
Datum
mm_signup(PG_FUNCTION_ARGS)
{
	int64		id;

	MmConnect();
	id = Signup(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
				PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* login(email, password) -> a signed session token. */
Datum
mm_login(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *token;

	MmConnect();
	token = Login(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
				  PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1), cxt);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(token));
}

/*
 * authenticate(token) and authenticate_local(token): verify, then bind the session or
 * transaction.
 */
static Datum
AuthenticateShim(FunctionCallInfo fcinfo, bool local)
{
	pg_uuid_t	session;
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("token is required"),
						errhint("Pass the token returned by modelmine.login(email, password).")));
	MmConnect();
	id = IdentityFromToken(text_to_cstring(PG_GETARG_TEXT_PP(0)), false, &session);
	Bind(id, &session, 0, NULL, local);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* authenticate(token): binds this database session to the token's user. */
Datum
mm_authenticate(PG_FUNCTION_ARGS)
{
	return AuthenticateShim(fcinfo, false);
}

/* authenticate_local(token): binds this transaction only (pooled connections). */
Datum
mm_authenticate_local(PG_FUNCTION_ARGS)
{
	return AuthenticateShim(fcinfo, true);
}

/* deauthenticate(): drops this backend's identity; the session stays valid. */
Datum
mm_deauthenticate(PG_FUNCTION_ARGS)
{
	Unbind();
	PG_RETURN_VOID();
}

/* logout(): revokes the caller's session everywhere. */
Datum
mm_logout(PG_FUNCTION_ARGS)
{
	MmConnect();
	Logout();
	SPI_finish();
	PG_RETURN_VOID();
}

/* current_user_id() -> the signed-in user. */
Datum
mm_current_user_id(PG_FUNCTION_ARGS)
{
	int64		id;

	MmConnect();
	id = MmRequireUser(true, NULL);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* current_session_id() -> the signed-in session. */
Datum
mm_current_session_id(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *session = palloc(sizeof(pg_uuid_t));

	MmConnect();
	(void) MmRequireUser(true, session);
	SPI_finish();
	PG_RETURN_UUID_P(session);
}

/* request_role(headers) -> the role to SET LOCAL for a gateway request (see RequestRole). */
Datum
mm_request_role(PG_FUNCTION_ARGS)
{
	const char *role;

	MmConnect();
	role = RequestRole(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(role));
}
