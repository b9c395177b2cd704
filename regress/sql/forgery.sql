-- forgery: a client that is only a member of modelmine_user cannot make itself someone else, read or
-- write the tables, call admin functions, or touch the identity binding.  Only a token that login
-- issued, presented through authenticate or PostgREST's request.headers, identifies a user.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
\i regress/include/jwt.sql
-- bearer(token): what PostgREST puts in request.headers for "Authorization: Bearer <token>".
CREATE OR REPLACE FUNCTION bearer(tok text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT json_build_object('authorization', 'Bearer ' || tok)::text $$;

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_client;
RESET client_min_messages;
CREATE ROLE regress_mm_client LOGIN;
GRANT modelmine_user TO regress_mm_client;

-- Alice (user 1) has a pending job; Bob (user 2) is the attacker's own account.
SELECT modelmine.signup('alice@example.com', 'alice password'), modelmine.signup('bob@example.com', 'bobs password');
SELECT modelmine.login('alice@example.com', 'alice password') AS tok_a \gset
SELECT modelmine.login('bob@example.com', 'bobs password') AS tok_b \gset
SELECT modelmine.authenticate(:'tok_a');
SELECT modelmine.submit_job('alice''s job', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}') AS job_a;
SELECT modelmine.deauthenticate();
-- Alice's exact claims (user id, session id): the forger is assumed to know them all.
SELECT convert_from(b64url_decode(split_part(:'tok_a', '.', 2)), 'UTF8') AS claims_a \gset

SET SESSION AUTHORIZATION regress_mm_client;
SELECT current_user, pg_has_role('modelmine_user', 'MEMBER') AS is_user, pg_has_role('modelmine_admin', 'MEMBER') AS is_admin;

-------------------------------------------------------------------------------------------------------
-- Settings a client can make are not identity
-------------------------------------------------------------------------------------------------------
-- PostgREST's claim settings are ignored: still not signed in.
SET request.jwt.claims = '{"sub":"1","role":"modelmine_admin"}';
SET request.jwt.claim.sub = '1';
SET request.jwt.claim.role = 'modelmine_admin';
SELECT * FROM err('SELECT modelmine.balance()');
SELECT * FROM err('SELECT modelmine.current_user_id()');
RESET request.jwt.claims;
RESET request.jwt.claim.sub;
RESET request.jwt.claim.role;
-- Nor can the client take the admin role itself.
SELECT * FROM err('SET ROLE modelmine_admin');

-- The binding's private setting can be neither set, reset nor read, and is not listed.
SELECT * FROM err($$SET modelmine.session_binding = 'x'$$);
SELECT * FROM err($$SELECT set_config('modelmine.session_binding', 'x', false)$$);
SELECT * FROM err('RESET modelmine.session_binding');
SELECT * FROM err($$SELECT current_setting('modelmine.session_binding')$$);
SELECT * FROM err($$SELECT current_setting('modelmine.session_binding', true)$$);
SELECT * FROM err('SHOW modelmine.session_binding');
SELECT count(*) AS listed FROM pg_settings WHERE name LIKE 'modelmine.%';

-------------------------------------------------------------------------------------------------------
-- Forged tokens, through request.headers and through authenticate
-------------------------------------------------------------------------------------------------------
-- Alice's claims with: no signature (alg none), an empty HS256 signature, a made-up key's HMAC, and
-- Bob's genuine signature.  Each is refused with 28000, never treated as absent.
SELECT v.label, e.code, e.message, e.detail
  FROM (VALUES ('alg none', b64url(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8')) || '.'
                            || b64url(convert_to(:'claims_a', 'UTF8')) || '.'),
               ('HS256, no signature', b64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.'
                            || b64url(convert_to(:'claims_a', 'UTF8')) || '.'),
               ('HS256, made-up key', jwt_hs256('{"alg":"HS256","typ":"JWT"}', :'claims_a', 'not the key')),
               ('HS256, empty key', jwt_hs256('{"alg":"HS256","typ":"JWT"}', :'claims_a', '')),
               ('Bob''s signature', b64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.'
                            || b64url(convert_to(:'claims_a', 'UTF8')) || '.' || split_part(:'tok_b', '.', 3))) v(label, tok)
 CROSS JOIN LATERAL (SELECT 'request.headers' AS via, h.* FROM err(format(
                         $$SELECT set_config('request.headers', %L, true), modelmine.balance()$$, bearer(v.tok))) h
                     UNION ALL
                     SELECT 'authenticate', a.* FROM err(format('SELECT modelmine.authenticate(%L)', v.tok)) a) e
 ORDER BY v.label, e.via;
-- Only a Bearer Authorization header is understood; anything else there is refused, not ignored.
SELECT set_config('request.headers', '{"authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}', false);
SELECT * FROM err('SELECT modelmine.balance()');
SELECT set_config('request.headers', '{"authorization": "Bearer "}', false);
SELECT * FROM err('SELECT modelmine.balance()');
SELECT set_config('request.headers', 'not json', false);
SELECT * FROM err('SELECT modelmine.balance()');
RESET request.headers;

-- While bound as Bob, a forged header naming Alice is refused: it neither acts as Alice nor falls
-- back to Bob.  Headers without an Authorization entry leave the binding in charge.
SELECT modelmine.authenticate(:'tok_b');
SELECT set_config('request.headers', bearer(jwt_hs256('{"alg":"HS256","typ":"JWT"}', :'claims_a', 'not the key')), false)
       IS NOT NULL AS forged_header_set;
SELECT * FROM err('SELECT modelmine.balance()');
SELECT * FROM err('SELECT modelmine.cancel_job(1)');
SELECT set_config('request.headers', '{"user-agent": "curl"}', false);
SELECT modelmine.current_user_id() AS bound_user;
RESET request.headers;

-------------------------------------------------------------------------------------------------------
-- The PostgREST path: a valid token in request.headers, per transaction
-------------------------------------------------------------------------------------------------------
SELECT modelmine.deauthenticate();
BEGIN;
SELECT set_config('request.headers', bearer(:'tok_b'), true) IS NOT NULL AS header_set;
SELECT modelmine.current_user_id(), modelmine.balance(), (SELECT email FROM modelmine.whoami());
SELECT count(*) AS bobs_jobs FROM modelmine.my_jobs();
COMMIT;
-- The header was transaction-local: gone now, and no binding was left behind.
SELECT * FROM err('SELECT modelmine.current_user_id()');
-- A header token wins over the binding: bound as Bob, Alice's real token in the header acts as Alice.
SELECT modelmine.authenticate(:'tok_b');
BEGIN;
SELECT set_config('request.headers', bearer(:'tok_a'), true) IS NOT NULL AS header_set;
SELECT modelmine.current_user_id() AS header_user;
COMMIT;
SELECT modelmine.current_user_id() AS bound_user;

-------------------------------------------------------------------------------------------------------
-- Bob cannot see or cancel Alice's job: the same "not found" as for a job that does not exist
-------------------------------------------------------------------------------------------------------
SELECT * FROM err('SELECT * FROM modelmine.job(1)');
SELECT * FROM err('SELECT * FROM modelmine.job(999999)');
SELECT * FROM err('SELECT modelmine.cancel_job(1)');
SELECT * FROM err('SELECT modelmine.cancel_job(999999)');
SELECT (SELECT (e.code, regexp_replace(e.message, '\d+', 'N'), e.detail, e.hint) FROM err('SELECT * FROM modelmine.job(1)') e)
     = (SELECT (e.code, regexp_replace(e.message, '\d+', 'N'), e.detail, e.hint) FROM err('SELECT * FROM modelmine.job(999999)') e)
       AS job_same_as_missing,
       (SELECT (e.code, regexp_replace(e.message, '\d+', 'N'), e.detail, e.hint) FROM err('SELECT modelmine.cancel_job(1)') e)
     = (SELECT (e.code, regexp_replace(e.message, '\d+', 'N'), e.detail, e.hint) FROM err('SELECT modelmine.cancel_job(999999)') e)
       AS cancel_same_as_missing;
SELECT count(*) AS jobs_listed FROM modelmine.my_jobs();
SELECT d -> 'jobs' ->> 'total' AS dashboard_jobs, d ->> 'in_escrow' AS in_escrow FROM modelmine.dashboard() d;
-- Bob's own balance is untouched by all of the above.
SELECT modelmine.balance();

-------------------------------------------------------------------------------------------------------
-- No direct table access, no admin or node functions
-------------------------------------------------------------------------------------------------------
-- The ledger's blocks are the one table anyone may read (so anyone can verify the chain); like every
-- other table, it cannot be written.
SELECT v.tbl, v.op, e.code, e.message
  FROM (VALUES ('users', 'email'), ('accounts', 'balance'), ('journal', 'amount'), ('jobs', 'status'),
               ('sessions', 'revoked_at'), ('secrets', 'value'), ('settings', 'value'), ('nodes', 'key_hash'),
               ('node_uptime', 'ended_at'), ('ledger', 'hash'), ('ledger_queue', 'reward'), ('job_stats', 'jobs'),
               ('job_stat_deltas', 'jobs'), ('user_job_stats', 'jobs'), ('admin_users', 'email'), ('admin_nodes', 'name')) t(tbl, col)
 CROSS JOIN LATERAL (VALUES (t.tbl, 'SELECT', format('SELECT * FROM modelmine.%I', t.tbl)),
                            (t.tbl, 'UPDATE', format('UPDATE modelmine.%I SET %I = %I', t.tbl, t.col, t.col)),
                            (t.tbl, 'INSERT', format('INSERT INTO modelmine.%I DEFAULT VALUES', t.tbl)),
                            (t.tbl, 'DELETE', format('DELETE FROM modelmine.%I', t.tbl)),
                            (t.tbl, 'TRUNCATE', format('TRUNCATE modelmine.%I', t.tbl))) v(tbl, op, stmt)
 CROSS JOIN LATERAL err(v.stmt) e
 ORDER BY 1, 2;
SELECT v.call, e.code, e.message
  FROM (VALUES ($$SELECT modelmine.mint('bob@example.com', 1000000)$$),
               ('SELECT * FROM modelmine.users()'),
               ('SELECT * FROM modelmine.all_jobs()'),
               ('SELECT * FROM modelmine.admin_job(1)'),
               ($$SELECT modelmine.set_setting('signup_grant', 1000000)$$),
               ($$SELECT modelmine.set_user_role('bob@example.com', 'admin')$$),
               ('SELECT * FROM modelmine.check_invariants()'),
               ('SELECT * FROM modelmine._list_jobs(NULL, NULL, $$created$$, true, 50, 0)'),
               ('SELECT * FROM modelmine._job_detail(1, NULL)'),
               ($$SELECT modelmine._refuse_change()$$),
               ($$SELECT modelmine._node_status('ONLINE', now())$$),
               ($$SELECT modelmine._ledger_genesis()$$),
               -- the work protocol belongs to modelmine_node: a user can neither bind as a node nor act as one
               ($$SELECT modelmine.authenticate_node('mmn_1_' || repeat('0', 64))$$),
               ($$SELECT modelmine.set_capabilities('{}')$$),
               ($$SELECT modelmine.heartbeat(0, 0, 1)$$),
               ('SELECT * FROM modelmine.claim_jobs()'),
               ('SELECT modelmine.report_progress(1, 50)'),
               ($$SELECT modelmine.complete_job(1, '{"loss": 0, "epochs": 1}')$$),
               ($$SELECT modelmine.fail_job(1, 'x')$$),
               ('SELECT modelmine.release_job(1)')) v(call)
 CROSS JOIN LATERAL err(v.call) e;
-- Nor can it add objects to the schema (to shadow a function, say).
SELECT * FROM err('CREATE FUNCTION modelmine.balance(int) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$');
SELECT * FROM err('CREATE TABLE modelmine.sessions2 (id int)');

RESET SESSION AUTHORIZATION;
SELECT modelmine.deauthenticate();
-- Nothing the client tried changed anything.
SELECT id, user_id, status, stake FROM modelmine.jobs;
SELECT email, role, balance FROM modelmine.users() ORDER BY id;
SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked_sessions FROM modelmine.sessions;
SELECT * FROM modelmine.check_invariants();

DROP ROLE regress_mm_client;
DROP FUNCTION err(text);
DROP FUNCTION jwt_hs256(text, text, bytea);
DROP FUNCTION b64url(bytea);
DROP FUNCTION b64url_decode(text);
DROP FUNCTION bearer(text);
