-- gateway: what an HTTP gateway (modelmine-api) asks of the extension.  request_role verifies the
-- bearer in the request's headers and names the role to SET LOCAL: anon without one, node for a node
-- key (bound for the transaction only), user or admin for a token as the user's row says now; a
-- forged, revoked or unknown bearer gets no role at all.  Also: authenticate_node_local, node_beats
-- (the heartbeat view), list_jobs (own jobs; admins everyone's) and the admin reports.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_gateway;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- The gateway's login role: a member of the client roles, as PostgREST's authenticator is.
CREATE ROLE regress_mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
-- headers(bearer): request.headers as the gateway builds them.
CREATE FUNCTION headers(bearer text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT json_build_object('authorization', 'Bearer ' || bearer, 'user-agent', 'regress')::text $$;

SELECT modelmine.signup('ann@example.com', 'ann password') AS ann,
       modelmine.signup('root@example.com', 'root password') AS root;
SELECT modelmine.set_user_role('root@example.com', 'admin');
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('root@example.com', 'root password') AS tok_root \gset
SELECT modelmine.authenticate(:'tok_ann');
SELECT node_key AS key1 FROM modelmine.register_node('node 1', '{"trainers": ["logreg"]}') \gset
SELECT modelmine.submit_job('ann job', '{"trainer": "noop"}', NULL, 10) AS job1, modelmine.submit_job('ann job 2', '{"trainer": "noop"}', NULL, 20) AS job2;
SELECT modelmine.deauthenticate();
SET ROLE regress_mm_gateway;

-------------------------------------------------------------------------------------------------------
-- request_role
-------------------------------------------------------------------------------------------------------
-- No Authorization header (or no headers at all): anonymous.
SELECT modelmine.request_role('{"user-agent": "x"}') AS no_bearer, modelmine.request_role(NULL) AS no_headers;
-- A user's token: modelmine_user; an admin's: modelmine_admin (from the user row, not the token).
SELECT modelmine.request_role(headers(:'tok_ann')) AS ann, modelmine.request_role(headers(:'tok_root')) AS root;
-- The scheme is case-insensitive and blanks around the token are ignored, as in HTTP.
SELECT modelmine.request_role(json_build_object('authorization', 'bearer  ' || :'tok_ann' || ' ')::text) AS lower_case;
-- A node key: modelmine_node, and the node is bound for this transaction only.
BEGIN;
SELECT modelmine.request_role(headers(:'key1')) AS node;
SET LOCAL ROLE modelmine_node;
SELECT modelmine.heartbeat(5, 100, 1000) AS held_in_transaction;
COMMIT;
SET ROLE regress_mm_gateway;
SET ROLE modelmine_node;
SELECT * FROM err($$SELECT modelmine.heartbeat(5, 100, 1000)$$);
SET ROLE regress_mm_gateway;
-- Every bad bearer raises 28000 naming what is wrong; none gets a role.
SELECT * FROM err($$SELECT modelmine.request_role(headers('not-a-token'))$$);
SELECT * FROM err(format($$SELECT modelmine.request_role(headers(%L))$$, left(:'tok_ann', -2) || 'xx'));
SELECT * FROM err(format($$SELECT modelmine.request_role(headers(%L))$$,
                         left(:'key1', -1) || CASE WHEN right(:'key1', 1) = 'a' THEN 'b' ELSE 'a' END));
SELECT * FROM err($$SELECT modelmine.request_role('{"authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}')$$);
SELECT * FROM err($$SELECT modelmine.request_role('not json')$$);
-- A token whose session was revoked (logout, or a role change) gets no role.
RESET ROLE;
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_gone \gset
SELECT modelmine.authenticate(:'tok_gone');
SELECT modelmine.logout();
SELECT modelmine.deauthenticate();
SET ROLE regress_mm_gateway;
SELECT * FROM err(format($$SELECT modelmine.request_role(headers(%L))$$, :'tok_gone'));
-- A user's calls in the same transaction run as that user through request.headers, as with PostgREST.
BEGIN;
SELECT set_config('role', modelmine.request_role(set_config('request.headers', headers(:'tok_ann'), true)), true) AS role;
SELECT current_user, modelmine.current_user_id() AS me, modelmine.balance() AS balance;
COMMIT;
SELECT current_user AS after_commit;

-------------------------------------------------------------------------------------------------------
-- authenticate_node_local: bound until the transaction ends, and only with a good key
-------------------------------------------------------------------------------------------------------
SET ROLE modelmine_node;
BEGIN;
SELECT modelmine.authenticate_node_local(:'key1') = 1 AS bound;
SELECT modelmine.heartbeat(6, 100, 1000) AS held;
COMMIT;
SELECT * FROM err($$SELECT modelmine.heartbeat(6, 100, 1000)$$);
SELECT * FROM err($$SELECT modelmine.authenticate_node_local('mmn_1_00')$$);
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- node_beats: nodes seen after a time (default: the last minute), for the gateway's heartbeat view
-------------------------------------------------------------------------------------------------------
SET ROLE modelmine_anon;
SELECT node_id, name, status, cpu_load FROM modelmine.node_beats();
SELECT count(*) AS after_last_beat FROM modelmine.node_beats((SELECT max(last_seen) FROM modelmine.node_beats()));
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- list_jobs: one's own jobs; an admin's everyone's or one user's
-------------------------------------------------------------------------------------------------------
SET ROLE modelmine_user;
SELECT modelmine.authenticate(:'tok_ann');
SELECT id, title, stake FROM modelmine.list_jobs();
SELECT id, title FROM modelmine.list_jobs(sort => 'stake', descending => false, max_rows => 1);
SELECT id FROM modelmine.list_jobs(user_id => 1);
SELECT * FROM err($$SELECT * FROM modelmine.list_jobs(user_id => 2)$$);
SELECT * FROM err($$SELECT * FROM modelmine.list_jobs(status => 'DONE')$$);
SELECT * FROM err($$SELECT * FROM modelmine.admin_network_report()$$);
SELECT modelmine.authenticate(:'tok_root');
SELECT count(*) AS all_jobs FROM modelmine.list_jobs();
SELECT count(*) AS anns_jobs FROM modelmine.list_jobs(user_id => 1);
SELECT count(*) AS roots_jobs FROM modelmine.list_jobs(user_id => 2);
SELECT modelmine.deauthenticate();
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- Admin reports
-------------------------------------------------------------------------------------------------------
SET ROLE modelmine_admin;
SELECT id, name, status, operator_email, slots, maintenance, requirements, jobs_completed, balance
  FROM modelmine.admin_node_page();
SELECT r -> 'stats' ->> 'jobs_pending' AS pending, r ->> 'issued' AS issued, r ->> 'users' AS users,
       r -> 'ledger' ->> 'height' AS height, r -> 'invariant_violations' AS violations
  FROM modelmine.admin_network_report() r;
SELECT height, job_id, job_title, user_email, node_name FROM modelmine.admin_ledger_page();
SELECT * FROM err($$SELECT * FROM modelmine.admin_node_page(1001)$$);
SELECT * FROM err($$SELECT * FROM modelmine.admin_ledger_page(-1)$$);
RESET ROLE;
SELECT * FROM modelmine.check_invariants();
