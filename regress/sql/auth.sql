-- auth: signup, login, tokens, and how long a database session stays bound to a user.
-- Tokens, uuids and times vary between runs: they are kept in psql variables and only facts about
-- them are printed.
\i regress/include/fresh.sql
\i regress/include/jwt.sql
-- flip(token, position): the token with the character at that position changed.
CREATE OR REPLACE FUNCTION flip(tok text, pos int) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT overlay(tok PLACING CASE WHEN substr(tok, pos, 1) = 'A' THEN 'B' ELSE 'A' END FROM pos FOR 1) $$;

-------------------------------------------------------------------------------------------------------
-- signup
-------------------------------------------------------------------------------------------------------
-- The email is trimmed and lower-cased; the user id comes back.  The first signup runs at the default
-- bcrypt cost (10); the password is stored only as a bcrypt hash.
SELECT modelmine.signup(E'  Ada@Example.COM \t', 'correct horse');
SELECT id, email, role, left(password_hash, 7) AS hash_prefix, length(password_hash) AS hash_length,
       password_hash <> 'correct horse' AS not_plain, password_hash = crypt('correct horse', password_hash) AS verifies
  FROM modelmine.users;
-- The rest of this file hashes at the lowest cost, to run fast.
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
SELECT modelmine.signup('bob@example.com', 'bobs password');
SELECT email, left(password_hash, 7) AS hash_prefix FROM modelmine.users ORDER BY id;

-- An address that is taken, in any case and with any surrounding spaces: 23505, nothing written.
SELECT count(*) AS users_before FROM modelmine.users \gset
SELECT * FROM err($$SELECT modelmine.signup('ada@example.com', 'another password')$$);
SELECT * FROM err($$SELECT modelmine.signup('  ADA@example.COM  ', 'another password')$$);
SELECT count(*) = :users_before AS no_user_added FROM modelmine.users;

-- Malformed addresses: 22023 "invalid email" with a detail naming the problem (NULL: "email is required").
SELECT v.label, e.code, e.message, e.detail
  FROM (VALUES ('NULL', NULL),
               ('empty', ''),
               ('only spaces', '   '),
               ('no @', 'ada.example.com'),
               ('two @', 'ada@home@example.com'),
               ('@@', 'ada@@example.com'),
               ('domain without dot', 'ada@example'),
               ('nothing before @', '@example.com'),
               ('65-char local part', repeat('a', 65) || '@example.com'),
               ('domain starts with dot', 'ada@.example.com'),
               ('empty domain label', 'ada@example..com'),
               ('domain ends with dot', 'ada@example.com.'),
               ('space inside', 'ada lovelace@example.com'),
               ('space in domain', 'ada@exa mple.com'),
               ('quote', 'ada"@example.com'),
               ('angle bracket', '<ada@example.com>'),
               ('control character', E'ada\x01@example.com'),
               ('255 bytes', repeat('a', 64) || '@' || repeat('b', 186) || '.com')) v(label, email)
 CROSS JOIN LATERAL err(format('SELECT modelmine.signup(%L, %L)', v.email, 'long enough')) e;
-- All of them carry the same hint.
SELECT DISTINCT e.hint
  FROM (VALUES (NULL), (''), ('a@b'), ('@x.com')) v(email)
 CROSS JOIN LATERAL err(format('SELECT modelmine.signup(%L, %L)', v.email, 'long enough')) e;
-- The limits themselves are accepted: a 64-character local part, a 254-byte address.
SELECT length(repeat('c', 64) || '@' || repeat('d', 185) || '.com') AS bytes,
       modelmine.signup(repeat('c', 64) || '@' || repeat('d', 185) || '.com', 'long enough') AS id;

-- Passwords: 8 characters (not bytes) at least, 72 bytes (bcrypt's limit) at most.
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('NULL', NULL),
               ('empty', ''),
               ('7 characters', '1234567'),
               ('7 two-byte characters (14 bytes)', 'ääääääß'),
               ('73 bytes', repeat('x', 73)),
               ('37 two-byte characters (74 bytes)', repeat('ä', 37))) v(label, password)
 CROSS JOIN LATERAL err(format('SELECT modelmine.signup(%L, %L)', 'pw@example.com', v.password)) e;
SELECT count(*) AS pw_users FROM modelmine.users WHERE email = 'pw@example.com';
-- 8 multibyte characters, and exactly 72 bytes, are fine.
SELECT modelmine.signup('umlaut@example.com', 'ääääääää') > 0 AS eight_chars_ok,
       modelmine.signup('long@example.com', repeat('y', 72)) > 0 AS seventy_two_bytes_ok;
SELECT modelmine.login('umlaut@example.com', 'ääääääää') IS NOT NULL AS multibyte_login_ok;

-- users() (admin) shows no password hash, under any column name.
SELECT pg_get_function_result('modelmine.users()'::regprocedure);
SELECT count(*) AS rows_containing_a_hash FROM modelmine.users() u WHERE u::text LIKE '%$2a$%';

-------------------------------------------------------------------------------------------------------
-- login
-------------------------------------------------------------------------------------------------------
-- Right credentials (the email is normalised here too): a compact JWT, header.payload.signature.
SELECT modelmine.login('  ADA@example.com', 'correct horse') AS tok_a \gset
SELECT length(:'tok_a') > 100 AS long_enough,
       :'tok_a' ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' AS jwt_shape,
       convert_from(b64url_decode(split_part(:'tok_a', '.', 1)), 'UTF8') AS header;
-- Its claims: issuer, subject (user id), role claim, session id, issued/expiry times one TTL apart.
SELECT c - 'sid' - 'iat' - 'exp' AS fixed_claims,
       (c ->> 'exp')::bigint - (c ->> 'iat')::bigint AS lifetime_seconds,
       (c ->> 'sid')::uuid = (SELECT id FROM modelmine.sessions WHERE user_id = 1) AS sid_is_the_session
  FROM (SELECT convert_from(b64url_decode(split_part(:'tok_a', '.', 2)), 'UTF8')::jsonb AS c) s;
SELECT count(*) AS sessions, bool_and(expires_at - created_at = interval '1 day') AS ttl_one_day,
       bool_and(revoked_at IS NULL) AS none_revoked
  FROM modelmine.sessions WHERE user_id = 1;
-- Each login is a new session: another token for the same user.
SELECT modelmine.login('ada@example.com', 'correct horse') AS tok_a2 \gset
SELECT :'tok_a' <> :'tok_a2' AS new_token, count(*) AS sessions FROM modelmine.sessions WHERE user_id = 1;

-- A wrong password and an unknown email fail identically (28P01), and open no session.
SELECT count(*) AS sessions_before FROM modelmine.sessions \gset
SELECT * FROM err($$SELECT modelmine.login('ada@example.com', 'wrong horse')$$);
SELECT * FROM err($$SELECT modelmine.login('nobody@example.com', 'correct horse')$$);
SELECT (SELECT row(e.*) FROM err($$SELECT modelmine.login('ada@example.com', 'wrong horse')$$) e)
     = (SELECT row(e.*) FROM err($$SELECT modelmine.login('nobody@example.com', 'wrong horse')$$) e) AS same_error;
SELECT count(*) = :sessions_before AS no_session_added FROM modelmine.sessions;
-- Input that could never have signed up is refused as bad input, before any lookup.
SELECT * FROM err($$SELECT modelmine.login('not an email', 'correct horse')$$);
SELECT * FROM err($$SELECT modelmine.login('ada@example.com', 'short')$$);
SELECT * FROM err($$SELECT modelmine.login('ada@example.com', NULL)$$);

-------------------------------------------------------------------------------------------------------
-- authenticate, whoami
-------------------------------------------------------------------------------------------------------
-- Not signed in yet.
SELECT * FROM err('SELECT modelmine.balance()');
SELECT * FROM err('SELECT modelmine.current_user_id()');
SELECT * FROM err('SELECT * FROM modelmine.whoami()');

SELECT modelmine.authenticate(:'tok_a');
SELECT modelmine.current_user_id(), modelmine.balance();
SELECT user_id, email, role, session_id = (c ->> 'sid')::uuid AS session_from_token,
       abs(extract(epoch FROM session_expires_at) - (c ->> 'exp')::bigint) <= 0.5 AS expiry_from_token
  FROM modelmine.whoami(),
       (SELECT convert_from(b64url_decode(split_part(:'tok_a', '.', 2)), 'UTF8')::jsonb AS c) s;
SELECT modelmine.current_session_id() = (SELECT (convert_from(b64url_decode(split_part(:'tok_a', '.', 2)), 'UTF8')::jsonb ->> 'sid')::uuid)
       AS current_session_is_the_tokens;

-- Tokens that are not exactly what login issued: 28000 "invalid token", with the reason.
SELECT v.label, e.code, e.message, e.detail
  FROM (VALUES ('payload char flipped', flip(:'tok_a', strpos(:'tok_a', '.') + 20)),
               ('signature char flipped', flip(:'tok_a', length(:'tok_a') - 10)),
               ('header char flipped', flip(:'tok_a', 5)),
               ('signature cut short', left(:'tok_a', -1)),
               ('signature removed', left(:'tok_a', -43)),
               ('signature of another token', split_part(:'tok_a', '.', 1) || '.' || split_part(:'tok_a', '.', 2)
                                              || '.' || split_part(:'tok_a2', '.', 3)),
               ('alg none, no signature', b64url(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8')) || '.'
                                          || split_part(:'tok_a', '.', 2) || '.'),
               ('alg none, original signature', b64url(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8')) || '.'
                                          || split_part(:'tok_a', '.', 2) || '.' || split_part(:'tok_a', '.', 3)),
               ('garbage', 'not a token'),
               ('two parts', 'abc.def'),
               ('four parts', :'tok_a' || '.x'),
               ('non-base64url signature', left(:'tok_a', -1) || '*'),
               ('empty', ''),
               ('9000 characters', repeat('a', 9000))) v(label, token)
 CROSS JOIN LATERAL err(format('SELECT modelmine.authenticate(%L)', v.token)) e;
SELECT * FROM err('SELECT modelmine.authenticate(NULL)');
-- A signature in non-canonical base64url is not the token login issued, even though it decodes to the
-- same bytes: the last of its 43 characters carries 4 bits and 2 unused ones, which login always sets
-- to zero (an index in the alphabet divisible by 4).  The next character of the alphabet sets an unused
-- bit and nothing else: refused like any other altered signature.
\set abc 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
SELECT left(:'tok_a', -1) || substr(:'abc', strpos(:'abc', right(:'tok_a', 1)) + 1, 1) AS tok_a_noncanonical \gset
SELECT :'tok_a' <> :'tok_a_noncanonical' AS altered, strpos(:'abc', right(:'tok_a', 1)) % 4 = 1 AS canonical_before,
       b64url_decode(split_part(:'tok_a', '.', 3)) = b64url_decode(split_part(:'tok_a_noncanonical', '.', 3)) AS same_bytes;
SELECT code, message, detail FROM err(format('SELECT modelmine.authenticate(%L)', :'tok_a_noncanonical'));
-- A refused token leaves the existing binding alone.
SELECT modelmine.current_user_id();

-- Tokens built in SQL with the real key (read here as superuser) pass; the checks above are about
-- the token, not about how it was built.  But the key alone is not enough: the header must be the
-- exact one login issues, and the session must exist and belong to the subject.
SELECT value AS key FROM modelmine.secrets WHERE name = 'jwt_hs256' \gset
SELECT convert_from(b64url_decode(split_part(:'tok_a', '.', 2)), 'UTF8') AS claims_a \gset
SELECT modelmine.authenticate(jwt_hs256('{"alg":"HS256","typ":"JWT"}', :'claims_a', :'key'::bytea)) AS rebuilt_token_accepted;
SELECT v.label, e.code, e.message, e.detail
  FROM (VALUES ('reordered header', jwt_hs256('{"typ":"JWT","alg":"HS256"}', :'claims_a', :'key'::bytea)),
               ('header with spaces', jwt_hs256('{"alg": "HS256", "typ": "JWT"}', :'claims_a', :'key'::bytea)),
               ('unknown session', jwt_hs256('{"alg":"HS256","typ":"JWT"}',
                    jsonb_set(:'claims_a'::jsonb, '{sid}', '"00000000-0000-4000-8000-000000000000"')::text, :'key'::bytea)),
               ('session of another subject', jwt_hs256('{"alg":"HS256","typ":"JWT"}',
                    jsonb_set(:'claims_a'::jsonb, '{sub}', '"2"')::text, :'key'::bytea)),
               ('wrong key', jwt_hs256('{"alg":"HS256","typ":"JWT"}', :'claims_a', '\x00'::bytea || :'key'::bytea))) v(label, token)
 CROSS JOIN LATERAL err(format('SELECT modelmine.authenticate(%L)', v.token)) e;

-------------------------------------------------------------------------------------------------------
-- logout and expiry
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_a');
SELECT modelmine.logout();
-- logout also unbinds this database session...
SELECT * FROM err('SELECT modelmine.balance()');
-- ...and the token is refused from now on, while the same user's other session still works.
SELECT * FROM err(format('SELECT modelmine.authenticate(%L)', :'tok_a'));
SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked, count(*) FILTER (WHERE revoked_at IS NULL) AS live
  FROM modelmine.sessions WHERE user_id = 1;
SELECT modelmine.authenticate(:'tok_a2');
-- logout needs a signed-in session.
SELECT modelmine.deauthenticate();
SELECT * FROM err('SELECT modelmine.logout()');

-- logout through a PostgREST header token revokes that token's session, and leaves an unrelated binding
-- of the same database session in place (a pooled connection may carry one).
SELECT modelmine.login('ada@example.com', 'correct horse') AS tok_a3 \gset
SELECT modelmine.authenticate(:'tok_a2');
BEGIN;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'tok_a3')::text, true)
       IS NOT NULL AS header_set;
SELECT modelmine.current_session_id() = (convert_from(b64url_decode(split_part(:'tok_a3', '.', 2)), 'UTF8')::jsonb ->> 'sid')::uuid
       AS acting_as_header_session;
SELECT modelmine.logout();
COMMIT;
SELECT modelmine.current_session_id() = (convert_from(b64url_decode(split_part(:'tok_a2', '.', 2)), 'UTF8')::jsonb ->> 'sid')::uuid
       AS binding_kept;
SELECT * FROM err(format('SELECT modelmine.authenticate(%L)', :'tok_a3'));
-- But when the header names the bound session itself, logout ends the binding too.
BEGIN;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'tok_a2')::text, true)
       IS NOT NULL AS header_set;
SELECT modelmine.logout();
COMMIT;
SELECT * FROM err('SELECT modelmine.current_user_id()');
-- (log in again: the rest of this file uses a live second session of Ada's)
SELECT modelmine.login('ada@example.com', 'correct horse') AS tok_a2 \gset
SELECT modelmine.authenticate(:'tok_a2');

-- An expired session: refused when bound, and when presented again.  Expiry drops the binding.
SELECT modelmine.login('bob@example.com', 'bobs password') AS tok_b \gset
SELECT modelmine.authenticate(:'tok_b');
SELECT modelmine.current_session_id() AS sid_b \gset
UPDATE modelmine.sessions SET expires_at = now() - interval '1 second' WHERE id = :'sid_b';
SELECT * FROM err('SELECT modelmine.balance()');
SELECT * FROM err('SELECT modelmine.balance()');
SELECT * FROM err(format('SELECT modelmine.authenticate(%L)', :'tok_b'));
-- A session expired for more than a day is deleted at that user's next login.
UPDATE modelmine.sessions SET expires_at = now() - interval '2 days' WHERE id = :'sid_b';
SELECT modelmine.login('bob@example.com', 'bobs password') AS tok_b \gset
SELECT count(*) AS old_session_left FROM modelmine.sessions WHERE id = :'sid_b';
-- (a correctly signed token for that deleted session: it no longer exists)
SELECT * FROM err(format('SELECT modelmine.authenticate(%L)', jwt_hs256('{"alg":"HS256","typ":"JWT"}',
    jsonb_build_object('iss', 'modelmine', 'sub', '2', 'role', 'modelmine_user', 'sid', :'sid_b')::text,
    :'key'::bytea)));

-------------------------------------------------------------------------------------------------------
-- How long a binding lasts
-------------------------------------------------------------------------------------------------------
-- authenticate_local: until the end of the transaction, committed or rolled back.
BEGIN;
SELECT modelmine.authenticate_local(:'tok_a2');
SELECT modelmine.balance();
COMMIT;
SELECT * FROM err('SELECT modelmine.balance()');
BEGIN;
SELECT modelmine.authenticate_local(:'tok_a2');
SELECT modelmine.balance();
ROLLBACK;
SELECT * FROM err('SELECT modelmine.balance()');
-- Outside a transaction block it lasts for its own statement only.
SELECT modelmine.authenticate_local(:'tok_a2'), modelmine.balance();
SELECT * FROM err('SELECT modelmine.balance()');

-- authenticate: across transactions, including failed ones...
SELECT modelmine.authenticate(:'tok_a2');
BEGIN;
SELECT modelmine.balance();
COMMIT;
BEGIN;
SELECT 1 / 0;
ROLLBACK;
SELECT modelmine.balance();
-- ...until RESET ALL,
RESET ALL;
SELECT * FROM err('SELECT modelmine.balance()');
-- DISCARD ALL (a pooler's reset query),
SELECT modelmine.authenticate(:'tok_a2');
DISCARD ALL;
SELECT * FROM err('SELECT modelmine.balance()');
-- or deauthenticate(), which leaves the token usable.
SELECT modelmine.authenticate(:'tok_a2');
SELECT modelmine.deauthenticate();
SELECT * FROM err('SELECT modelmine.balance()');
SELECT modelmine.authenticate(:'tok_a2') AS token_still_good;
SELECT modelmine.deauthenticate();

-- An authenticate() in a transaction (or savepoint) that rolls back binds nothing.
BEGIN;
SELECT modelmine.authenticate(:'tok_a2');
ROLLBACK;
SELECT * FROM err('SELECT modelmine.balance()');
BEGIN;
SAVEPOINT s;
SELECT modelmine.authenticate(:'tok_a2');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM err('SELECT modelmine.balance()');
COMMIT;

-- Two users: authenticating as B replaces A.
SELECT modelmine.authenticate(:'tok_a2');
SELECT modelmine.authenticate(:'tok_b');
SELECT modelmine.current_user_id(), email FROM modelmine.whoami();
-- Re-binding that rolls back, or a local binding that ends, does not fall back to the earlier
-- binding: the session is then bound to nobody.
BEGIN;
SELECT modelmine.authenticate(:'tok_a2');
ROLLBACK;
SELECT * FROM err('SELECT modelmine.current_user_id()');
SELECT modelmine.authenticate(:'tok_b');
BEGIN;
SELECT modelmine.authenticate_local(:'tok_a2');
SELECT modelmine.current_user_id();
COMMIT;
SELECT * FROM err('SELECT modelmine.current_user_id()');

-------------------------------------------------------------------------------------------------------
-- set_user_role (admin): a token carries the role it was issued with, so a change of role revokes the
-- user's sessions everywhere; the next login carries the new role.
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_b');
SELECT modelmine.set_user_role(' BOB@example.com', 'admin');
SELECT * FROM err('SELECT email, role FROM modelmine.whoami()');
SELECT modelmine.login('bob@example.com', 'bobs password') AS tok_b_admin \gset
SELECT convert_from(b64url_decode(split_part(:'tok_b', '.', 2)), 'UTF8')::jsonb ->> 'role' AS old_token_claim,
       convert_from(b64url_decode(split_part(:'tok_b_admin', '.', 2)), 'UTF8')::jsonb ->> 'role' AS new_token_claim;
SELECT modelmine.authenticate(:'tok_b_admin');
SELECT email, role FROM modelmine.whoami();
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('unknown role', $$SELECT modelmine.set_user_role('bob@example.com', 'root')$$),
               ('role NULL', $$SELECT modelmine.set_user_role('bob@example.com', NULL)$$),
               ('unknown user', $$SELECT modelmine.set_user_role('nobody@example.com', 'user')$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- Setting the role a user already has changes nothing and revokes nothing.
SELECT modelmine.set_user_role('bob@example.com', 'admin');
SELECT email, role FROM modelmine.whoami();
-- Demotion: the admin token dies at once, in this connection and for anyone holding it (before 1.1 it
-- kept its modelmine_admin claim until it expired).
SELECT modelmine.set_user_role('bob@example.com', 'user');
SELECT * FROM err('SELECT modelmine.current_user_id()');
SELECT * FROM err(format('SELECT modelmine.authenticate(%L)', :'tok_b_admin'));
SELECT count(*) FILTER (WHERE revoked_at IS NULL) AS bob_live_sessions
  FROM modelmine.sessions WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'bob@example.com');
SELECT email, role FROM modelmine.users() ORDER BY id LIMIT 2;
SELECT modelmine.deauthenticate();

-------------------------------------------------------------------------------------------------------
-- Login timing across a bcrypt_cost change.  Hashes keep the cost they were made with until a
-- successful login re-hashes them at today's cost, and a refused login always spends one bcrypt at
-- today's cost: so "unknown email" and "wrong password" take about as long even for a hash made at the
-- old cost (before 1.1 the wrong password took the old cost's 1 ms, the unknown email 60 ms: an
-- attacker could tell which addresses have accounts).  Medians of 3, compared with a wide margin.
-------------------------------------------------------------------------------------------------------
SELECT modelmine.signup('oldcost@example.com', 'old cost password') > 0 AS signed_up_at_cost_4;
UPDATE modelmine.settings SET value = 10 WHERE name = 'bcrypt_cost';
CREATE TEMP TABLE login_times (kind text, ms float8);
DO $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR i IN 1..3 LOOP
        t0 := clock_timestamp();
        PERFORM err($q$SELECT modelmine.login('nobody-here@example.com', 'some password')$q$);
        INSERT INTO login_times VALUES ('unknown email', extract(epoch FROM clock_timestamp() - t0) * 1000);
        t0 := clock_timestamp();
        PERFORM err($q$SELECT modelmine.login('oldcost@example.com', 'wrong password')$q$);
        INSERT INTO login_times VALUES ('wrong password', extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END
$$;
SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM login_times WHERE kind = 'wrong password')
       / (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM login_times WHERE kind = 'unknown email')
       BETWEEN 0.5 AND 2 AS refusals_take_alike;
-- A successful login re-hashes at today's cost; the password still works.
SELECT substr(password_hash, 1, 7) AS hash_before FROM modelmine.users WHERE email = 'oldcost@example.com';
SELECT modelmine.login('oldcost@example.com', 'old cost password') IS NOT NULL AS logged_in;
SELECT substr(password_hash, 1, 7) AS hash_after FROM modelmine.users WHERE email = 'oldcost@example.com';
SELECT modelmine.login('oldcost@example.com', 'old cost password') IS NOT NULL AS logged_in_again;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
DROP TABLE login_times;

SELECT * FROM modelmine.check_invariants();

DROP FUNCTION err(text);
DROP FUNCTION jwt_hs256(text, text, bytea);
DROP FUNCTION b64url(bytea);
DROP FUNCTION b64url_decode(text);
DROP FUNCTION flip(text, int);
