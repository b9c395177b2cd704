-- nodes: compute nodes (registration, node keys, capabilities, heartbeats, uptime) and the lease-based
-- work protocol (claim, progress, complete, fail, release), node earnings and job results.
-- User calls run as a login role that is only a member of modelmine_user, node calls as one that is only
-- a member of modelmine_node; direct table changes (moving clocks back, expiring leases) as the
-- superuser.  The identity binding belongs to the database session, not to the role, so every switch
-- below re-binds: :as_ann, :as_ben, ... sign in as that user, :as_node1, ... as that node.
-- Keys, tokens and times vary between runs: they are kept in psql variables, and only facts about them
-- are printed.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_client;
DROP ROLE IF EXISTS regress_mm_worker;
DROP ROLE IF EXISTS regress_mm_admin;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- accepts(statement): runs a statement that must succeed, then undoes it (a subtransaction rolled back
-- by a private error), so one running job can show that many different inputs are accepted.
CREATE OR REPLACE FUNCTION accepts(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE stmt;
        RAISE EXCEPTION USING ERRCODE = 'XX999';
    EXCEPTION
        WHEN SQLSTATE 'XX999' THEN RETURN 'accepted';
        WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM;
    END;
END
$$;

CREATE ROLE regress_mm_client LOGIN;
GRANT modelmine_user TO regress_mm_client;
CREATE ROLE regress_mm_worker LOGIN;
GRANT modelmine_node TO regress_mm_worker;
CREATE ROLE regress_mm_admin LOGIN;
GRANT modelmine_admin TO regress_mm_admin;
-- Test scaffolding: views (running with their owner's rights) through which the test roles can
-- inspect the tables.  Not part of the API.
CREATE OR REPLACE VIEW jobs AS
    SELECT id, user_id, status, node_id, attempts, progress, metrics, error, requirement, stake, priority,
           lease_seconds, lease_expires_at IS NOT NULL AS leased
      FROM modelmine.jobs ORDER BY id;
CREATE OR REPLACE VIEW journal AS
    SELECT id, debit_account AS debit, credit_account AS credit, amount, reason, job_id
      FROM modelmine.journal ORDER BY id;
CREATE OR REPLACE VIEW nodes AS
    SELECT n.id, n.operator_id, n.name, n.status, n.requirements, n.slots, n.jobs_completed, n.jobs_failed,
           n.tokens_earned, a.id AS account, a.balance
      FROM modelmine.nodes n JOIN modelmine.account_balances a ON a.node_id = n.id ORDER BY n.id;
GRANT SELECT ON jobs, journal, nodes TO regress_mm_client, regress_mm_worker, regress_mm_admin;

-- Ann and Cal operate nodes; Ben submits jobs; Dan registers the nodes that probe the limits.
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ben@example.com', 'ben password') AS ben,
       modelmine.signup('cal@example.com', 'cal password') AS cal, modelmine.signup('dan@example.com', 'dan password') AS dan;
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset
SELECT modelmine.login('cal@example.com', 'cal password') AS tok_cal \gset
SELECT modelmine.login('dan@example.com', 'dan password') AS tok_dan \gset
\set as_ann 'RESET ROLE; SET ROLE regress_mm_client; SELECT modelmine.authenticate(' :'tok_ann' ') AS bound \\gset'
\set as_ben 'RESET ROLE; SET ROLE regress_mm_client; SELECT modelmine.authenticate(' :'tok_ben' ') AS bound \\gset'
\set as_cal 'RESET ROLE; SET ROLE regress_mm_client; SELECT modelmine.authenticate(' :'tok_cal' ') AS bound \\gset'
\set as_dan 'RESET ROLE; SET ROLE regress_mm_client; SELECT modelmine.authenticate(' :'tok_dan' ') AS bound \\gset'

-------------------------------------------------------------------------------------------------------
-- register_node
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_client;
SELECT * FROM err($$SELECT * FROM modelmine.register_node('alpha', '{"trainers": ["logreg"]}')$$);
:as_ann
-- The happy path: the node id and its key, "mmn_<node id>_<64 hex digits>", shown this once.  Alpha
-- runs up to 4 jobs at once (slots); the others, declaring none, 1.
SELECT node_id AS n1, node_key AS key1
  FROM modelmine.register_node('alpha', '{"trainers": ["logreg", "mlp"], "slots": 4}') \gset
SELECT :n1 AS node_id, :'key1' ~ ('^mmn_' || :n1 || '_[0-9a-f]{64}$') AS key_format, length(:'key1') AS key_length;
SELECT node_id AS n2, node_key AS key2 FROM modelmine.register_node('beta', '{"trainers": ["noop"]}') \gset
SELECT :n2 AS node_id, :'key2' ~ ('^mmn_' || :n2 || '_[0-9a-f]{64}$') AS key_format,
       split_part(:'key1', '_', 3) <> split_part(:'key2', '_', 3) AS different_secrets;
-- What a node can run is derived from its capabilities; each node gets an empty token account.
SELECT * FROM nodes;
-- Cal may use a name Ann uses; his node offers one external runner and no built-in trainer.
:as_cal
SELECT node_id AS n3, node_key AS key3
  FROM modelmine.register_node('alpha', '{"trainers": [], "runners": ["torch-cnn"]}') \gset
SELECT id, operator_id, name, requirements FROM nodes WHERE id = :n3;

-- Only a SHA-256 of the key's random part is stored: not the key, nor the secret, in any column.
RESET ROLE;
SELECT id, key_hash = sha256(convert_to(split_part(:'key1', '_', 3), 'UTF8')) AS hash_of_secret,
       length(key_hash) AS hash_bytes
  FROM modelmine.nodes WHERE id = :n1;
SELECT count(*) AS rows_holding_a_secret
  FROM modelmine.nodes n
 WHERE n::text LIKE '%' || split_part(:'key1', '_', 3) || '%' OR n::text LIKE '%' || split_part(:'key2', '_', 3) || '%'
    OR encode(n.key_hash, 'hex') IN (split_part(:'key1', '_', 3), split_part(:'key2', '_', 3));
-- No function gives a key back: my_nodes() has no key column, and nothing in it holds a secret.
:as_ann
SELECT pg_get_function_result('modelmine.my_nodes()'::regprocedure);
SELECT count(*) AS nodes, count(*) FILTER (WHERE m::text LIKE '%' || split_part(:'key1', '_', 3) || '%') AS holding_the_secret
  FROM modelmine.my_nodes() m;
-- A node that never sent a heartbeat is OFFLINE; the rows are the operator's own, in id order.
SELECT id, name, status, capabilities, last_seen, jobs_completed, jobs_failed, tokens_earned, balance
  FROM modelmine.my_nodes();

-- A name the operator already uses: 23505, and no node or account is added.
SELECT count(*) AS nodes_before FROM nodes \gset
SELECT * FROM err($$SELECT * FROM modelmine.register_node('alpha', '{"trainers": ["logreg"]}')$$);
SELECT count(*) = :nodes_before AS no_node_added, (SELECT count(*) FROM modelmine.my_nodes()) AS anns_nodes FROM nodes;

-- Refused registrations: 22023 naming the problem; nothing written.
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('name NULL', NULL, '{}'),
               ('name empty', '', '{}'),
               ('name 101 characters', repeat('n', 101), '{}'),
               ('name 101 two-byte characters', repeat('é', 101), '{}'),
               ('capabilities NULL', 'x', NULL),
               ('capabilities an array', 'x', '[]'),
               ('capabilities a string', 'x', '"logreg"'),
               ('capabilities a number', 'x', '1'),
               ('capabilities JSON null', 'x', 'null'),
               ('trainers a string', 'x', '{"trainers": "logreg"}'),
               ('trainers an object', 'x', '{"trainers": {"logreg": true}}'),
               ('runners a number', 'x', '{"runners": 1}'),
               ('trainer in upper case', 'x', '{"trainers": ["LogReg"]}'),
               ('trainer of 65 characters', 'x', json_build_object('trainers', json_build_array(repeat('t', 65)))::text),
               ('trainer a number', 'x', '{"trainers": [1]}'),
               ('trainer JSON null', 'x', '{"trainers": [null]}'),
               ('trainer empty', 'x', '{"trainers": [""]}'),
               ('trainer starting with -', 'x', '{"trainers": ["-x"]}'),
               ('trainer with a space', 'x', '{"trainers": ["log reg"]}'),
               ('second trainer bad', 'x', '{"trainers": ["logreg", "MLP"]}'),
               ('runner bad', 'x', '{"trainers": ["logreg"], "runners": ["torch/cnn"]}'),
               ('65 trainers', 'x', json_build_object('trainers', (SELECT json_agg('t' || i) FROM generate_series(1, 65) i))::text),
               ('65 runners', 'x', json_build_object('runners', (SELECT json_agg('r' || i) FROM generate_series(1, 65) i))::text),
               ('capabilities over 4 kB', 'x', json_build_object('trainers', (SELECT json_agg(repeat('t', 60) || i) FROM generate_series(1, 64) i))::text),
               ('an unknown key', 'x', '{"gpus": 2, "trainers": ["mlp"]}'),
               ('an unknown key with a newline', 'x', json_build_object(E'notes\n', 1)::text),
               ('slots 0', 'x', '{"slots": 0}'),
               ('slots 65', 'x', '{"slots": 65}'),
               ('slots 1.5', 'x', '{"slots": 1.5}'),
               ('slots "2"', 'x', '{"slots": "2"}'),
               ('name with a newline', E'gpu\nbox', '{}'),
               ('name with an escape sequence', E'gpu\u001b[31mbox', '{}'),
               ('name with a C1 control', E'gpu\u0085box', '{}'),
               ('name with a right-to-left override', E'gpu-\u202eexe.txt', '{}'),
               ('name with a left-to-right isolate', E'gpu\u2066box', '{}'),
               ('name with a zero-width space', E'gpu\u200bbox', '{}'))
       v(label, name, caps)
 CROSS JOIN LATERAL err(format('SELECT * FROM modelmine.register_node(%L, %L)', v.name, v.caps)) e;
SELECT count(*) = :nodes_before AS no_node_added FROM nodes;

-- The limits themselves are accepted: 100 characters (not bytes), a 64-character name, exactly 64
-- names, a null list (as if absent), slots 1 and 64, printable Unicode (accents, CJK, emoji), and the
-- default capabilities '{}', with which a node can run nothing.
:as_dan
SELECT count(*) AS registered
  FROM (VALUES (repeat('n', 100), '{}'::jsonb),
               (repeat('é', 100), '{}'),
               ('64-character name', json_build_object('trainers', json_build_array(repeat('t', 64)))::jsonb),
               ('64 names', json_build_object('trainers', (SELECT json_agg('t' || i) FROM generate_series(1, 64) i))::jsonb),
               ('null list', '{"trainers": null, "runners": ["torch-cnn"]}'),
               ('slots 1', '{"slots": 1, "trainers": ["mlp"]}'),
               ('slots 64', '{"slots": 64, "trainers": ["mlp"]}'),
               ('gpu-box 東京 🚀', '{}')) v(name, caps),
       LATERAL modelmine.register_node(v.name, v.caps) r;
SELECT node_id AS n_default FROM modelmine.register_node('default capabilities') \gset
SELECT name, char_length(name) AS chars, cardinality(requirements) AS requirements, requirements[1] AS first_requirement,
       slots
  FROM nodes WHERE operator_id = 4 ORDER BY id;
SELECT capabilities FROM modelmine.my_nodes() WHERE name IN ('slots 64', 'default capabilities') ORDER BY id;

-------------------------------------------------------------------------------------------------------
-- authenticate_node, and who counts as a node
-------------------------------------------------------------------------------------------------------
-- Signed in as a user (Ann is bound from above), the node functions still say "not signed in as a node".
RESET ROLE;
SET ROLE regress_mm_worker;
SELECT v.call, e.code, e.message, e.detail, e.hint
  FROM (VALUES ($$SELECT modelmine.set_capabilities('{}')$$),
               ('SELECT modelmine.heartbeat(1, 1, 2)'),
               ('SELECT * FROM modelmine.claim_jobs(1, 30)'),
               ('SELECT modelmine.report_progress(1, 50)'),
               ($$SELECT modelmine.complete_job(1, '{"loss": 0, "epochs": 1}')$$),
               ($$SELECT modelmine.fail_job(1, 'broken')$$),
               ('SELECT modelmine.release_job(1)')) v(call)
 CROSS JOIN LATERAL err(v.call) e;
-- Nor does a user's token in request.headers (PostgREST) make a node.
BEGIN;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'tok_ann')::text, true) IS NOT NULL AS header_set;
SELECT * FROM err('SELECT modelmine.heartbeat(1, 1, 2)');
COMMIT;

-- Keys that are not exactly what register_node printed: 28000, all with the same message, so a
-- caller learns nothing about which part was wrong.
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('NULL', NULL),
               ('empty', ''),
               ('garbage', 'not a key'),
               ('wrong secret', 'mmn_' || :n1 || '_' || repeat('0', 64)),
               ('node 2''s id, node 1''s secret', 'mmn_' || :n2 || '_' || split_part(:'key1', '_', 3)),
               ('unknown node id', 'mmn_999_' || split_part(:'key1', '_', 3)),
               ('secret in upper case', 'mmn_' || :n1 || '_' || upper(split_part(:'key1', '_', 3))),
               ('secret one digit short', left(:'key1', -1)),
               ('secret one digit long', :'key1' || '0'),
               ('prefix in upper case', 'MMN_' || substr(:'key1', 5)),
               ('surrounding space', ' ' || :'key1'),
               ('no node id', 'mmn__' || split_part(:'key1', '_', 3)),
               ('negative node id', 'mmn_-' || :n1 || '_' || split_part(:'key1', '_', 3)),
               ('a user''s login token', :'tok_ann')) v(label, node_key)
 CROSS JOIN LATERAL err(format('SELECT modelmine.authenticate_node(%L)', v.node_key)) e;
SELECT count(DISTINCT (e.code, e.message, e.detail, e.hint)) AS distinct_errors
  FROM (VALUES ('mmn_' || :n1 || '_' || repeat('0', 64)), ('mmn_' || :n2 || '_' || split_part(:'key1', '_', 3)),
               ('mmn_999_' || split_part(:'key1', '_', 3)), ('x')) v(node_key)
 CROSS JOIN LATERAL err(format('SELECT modelmine.authenticate_node(%L)', v.node_key)) e;

-- The right key binds this database session to the node and returns its id.
SELECT modelmine.authenticate_node(:'key1') AS node_id;
SELECT modelmine.heartbeat(10, 100, 1000) AS held;
-- A refused key leaves that binding alone.
SELECT * FROM err($$SELECT modelmine.authenticate_node('not a key')$$);
SELECT modelmine.heartbeat(10, 100, 1000) AS still_node_1;
-- A node binding is not a user: the user API says "not signed in".
RESET ROLE;
SET ROLE regress_mm_client;
SELECT * FROM err('SELECT modelmine.balance()');
SELECT * FROM err('SELECT * FROM modelmine.my_nodes()');
-- Signing in as a user replaces the node binding, and signing in as a node replaces a user binding.
SELECT modelmine.authenticate(:'tok_ann') AS user_id;
RESET ROLE;
SET ROLE regress_mm_worker;
SELECT * FROM err('SELECT modelmine.heartbeat(10, 100, 1000)');
SELECT modelmine.authenticate_node(:'key2') AS node_id;
RESET ROLE;
SET ROLE regress_mm_client;
SELECT * FROM err('SELECT modelmine.current_user_id()');
RESET ROLE;
SET ROLE regress_mm_worker;
-- The binding lasts across transactions (failed ones too) until RESET ALL or DISCARD ALL; one made in a
-- transaction that rolls back binds nothing.
BEGIN;
SELECT 1 / 0;
ROLLBACK;
SELECT modelmine.heartbeat(10, 100, 1000) AS held;
RESET ALL;
SELECT * FROM err('SELECT modelmine.heartbeat(10, 100, 1000)');
SET ROLE regress_mm_worker;
SELECT modelmine.authenticate_node(:'key2') AS node_id;
DISCARD ALL;
SELECT * FROM err('SELECT modelmine.heartbeat(10, 100, 1000)');
SET ROLE regress_mm_worker;
BEGIN;
SELECT modelmine.authenticate_node(:'key2') AS node_id;
ROLLBACK;
SELECT * FROM err('SELECT modelmine.heartbeat(10, 100, 1000)');

-- Every node call re-checks the key: once the stored hash changes (a replaced key), a session still
-- bound with the old key is cut off for good, and the old key no longer authenticates.
SELECT modelmine.authenticate_node(:'key2') AS node_id;
RESET ROLE;
SELECT key_hash AS key2_hash FROM modelmine.nodes WHERE id = :n2 \gset
UPDATE modelmine.nodes SET key_hash = sha256('another secret') WHERE id = :n2;
SET ROLE regress_mm_worker;
SELECT * FROM err('SELECT modelmine.heartbeat(10, 100, 1000)');
SELECT * FROM err('SELECT modelmine.heartbeat(10, 100, 1000)');
SELECT * FROM err(format('SELECT modelmine.authenticate_node(%L)', :'key2'));
RESET ROLE;
UPDATE modelmine.nodes SET key_hash = :'key2_hash' WHERE id = :n2;
\set as_node1 'RESET ROLE; SET ROLE regress_mm_worker; SELECT modelmine.authenticate_node(' :'key1' ') AS bound \\gset'
\set as_node2 'RESET ROLE; SET ROLE regress_mm_worker; SELECT modelmine.authenticate_node(' :'key2' ') AS bound \\gset'
\set as_node3 'RESET ROLE; SET ROLE regress_mm_worker; SELECT modelmine.authenticate_node(' :'key3' ') AS bound \\gset'
:as_node2
SELECT :bound = :n2 AS key2_works_again;

-------------------------------------------------------------------------------------------------------
-- set_capabilities (node)
-------------------------------------------------------------------------------------------------------
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('NULL', NULL),
               ('an array', '["noop"]'),
               ('trainers a string', '{"trainers": "noop"}'),
               ('bad name', '{"trainers": ["noop", "No Op"]}'),
               ('65 runners', json_build_object('runners', (SELECT json_agg('r' || i) FROM generate_series(1, 65) i))::text),
               ('unknown key', '{"trainers": ["noop"], "disk_gb": 4096}'),
               ('slots 100', '{"trainers": ["noop"], "slots": 100}')) v(label, caps)
 CROSS JOIN LATERAL err(format('SELECT modelmine.set_capabilities(%L)', v.caps)) e;
SELECT requirements AS unchanged FROM nodes WHERE id = :n2;
-- Replacing them replaces what the node can run; then back to noop only.
SELECT modelmine.set_capabilities('{"trainers": ["noop", "linreg"], "runners": ["jax"]}');
SELECT requirements FROM nodes WHERE id = :n2;
SELECT modelmine.set_capabilities('{"trainers": ["noop"]}');
SELECT requirements FROM nodes WHERE id = :n2;
:as_ann
SELECT name, capabilities FROM modelmine.my_nodes() WHERE id = :n2;

-------------------------------------------------------------------------------------------------------
-- heartbeat (node) and the derived OFFLINE status
-------------------------------------------------------------------------------------------------------
:as_node1
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('status OFFLINE', $$SELECT modelmine.heartbeat(1, 1, 2, 'OFFLINE')$$),
               ('status in lower case', $$SELECT modelmine.heartbeat(1, 1, 2, 'online')$$),
               ('status unknown', $$SELECT modelmine.heartbeat(1, 1, 2, 'IDLE')$$),
               ('status empty', $$SELECT modelmine.heartbeat(1, 1, 2, '')$$),
               ('status NULL', 'SELECT modelmine.heartbeat(1, 1, 2, NULL)'),
               ('cpu_load NULL', 'SELECT modelmine.heartbeat(NULL, 1, 2)'),
               ('memory_used_mb NULL', 'SELECT modelmine.heartbeat(1, NULL, 2)'),
               ('memory_total_mb NULL', 'SELECT modelmine.heartbeat(1, 1, NULL)'),
               ('cpu_load -1', 'SELECT modelmine.heartbeat(-1, 1, 2)'),
               ('cpu_load 100.5', 'SELECT modelmine.heartbeat(100.5, 1, 2)'),
               ('cpu_load 101', 'SELECT modelmine.heartbeat(101, 1, 2)'),
               ('cpu_load NaN', $$SELECT modelmine.heartbeat('NaN', 1, 2)$$),
               ('cpu_load Infinity', $$SELECT modelmine.heartbeat('Infinity', 1, 2)$$),
               ('memory used > total', 'SELECT modelmine.heartbeat(1, 9, 8)'),
               ('memory used -1', 'SELECT modelmine.heartbeat(1, -1, 8)'),
               ('memory total 0', 'SELECT modelmine.heartbeat(1, 0, 0)'),
               ('memory total -8', 'SELECT modelmine.heartbeat(1, -9, -8)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- The bounds are accepted: load 0 and 100, memory fully used, the smallest total (1 MB).
SELECT modelmine.heartbeat(0, 0, 1) AS held, modelmine.heartbeat(100, 8, 8) AS held_too;
-- A heartbeat records the figures and the time, and (with no gap before it) keeps the online stretch;
-- a node holding no jobs gets an empty list back.  The status my_nodes() shows is what the node
-- reported...  (Each heartbeat and its check share a transaction, so they share now(): a slow test
-- machine cannot turn a node OFFLINE in between.)
BEGIN;
SELECT modelmine.heartbeat(12.5, 2048, 8192, 'BUSY') AS held;
RESET ROLE;
SELECT status, cpu_load, memory_used_mb, memory_total_mb, last_seen = now() AS seen_now
  FROM modelmine.nodes WHERE id = :n1;
:as_ann
SELECT id, name, status FROM modelmine.my_nodes() WHERE id = :n1;
COMMIT;
:as_node1
BEGIN;
SELECT modelmine.heartbeat(3, 2048, 8192, 'MAINTENANCE') AS held;
:as_ann
SELECT id, name, status FROM modelmine.my_nodes() WHERE id = :n1;
COMMIT;
:as_node1
BEGIN;
SELECT modelmine.heartbeat(3, 2048, 8192) AS held;
:as_ann
SELECT id, name, status AS default_status FROM modelmine.my_nodes() WHERE id = :n1;
COMMIT;
-- ... until no heartbeat came for more than offline_after_seconds (15): exactly 15 s ago is still the
-- reported status, a microsecond more is OFFLINE.  The setting decides.
BEGIN;
RESET ROLE;
UPDATE modelmine.nodes SET last_seen = now() - interval '15 seconds' WHERE id = :n1;
SET ROLE regress_mm_client;
SELECT id, status AS at_15_s FROM modelmine.my_nodes() WHERE id = :n1;
RESET ROLE;
UPDATE modelmine.nodes SET last_seen = now() - interval '15.000001 seconds' WHERE id = :n1;
SET ROLE regress_mm_client;
SELECT id, status AS past_15_s FROM modelmine.my_nodes() WHERE id = :n1;
RESET ROLE;
UPDATE modelmine.settings SET value = 60 WHERE name = 'offline_after_seconds';
SET ROLE regress_mm_client;
SELECT id, status AS past_15_s_limit_60 FROM modelmine.my_nodes() WHERE id = :n1;
ROLLBACK;

-- Uptime history: the current online stretch is (online_since, last_seen).  A heartbeat after a gap
-- longer than offline_after_seconds closes it into node_uptime and starts a new one; a heartbeat
-- without a gap adds nothing.  (The clock is moved back by hand: the stretch ran from 2 minutes ago to
-- 1 minute ago.)
RESET ROLE;
UPDATE modelmine.nodes SET online_since = now() - interval '2 minutes', last_seen = now() - interval '1 minute'
 WHERE id = :n1 RETURNING online_since AS stretch_start, last_seen AS stretch_end \gset
:as_node1
BEGIN;
SELECT modelmine.heartbeat(5, 100, 1000) AS held;
RESET ROLE;
SELECT node_id, started_at = :'stretch_start' AS started_then, ended_at = :'stretch_end' AS ended_at_last_beat
  FROM modelmine.node_uptime WHERE node_id = :n1 AND ended_at >= :'stretch_end';
SELECT online_since = now() AS new_stretch_now, last_seen = now() AS seen_now FROM modelmine.nodes WHERE id = :n1;
COMMIT;
:as_node1
SELECT modelmine.heartbeat(5, 100, 1000) AS held;
RESET ROLE;
SELECT count(*) AS uptime_rows_since FROM modelmine.node_uptime WHERE node_id = :n1 AND ended_at >= :'stretch_end';
SELECT online_since < last_seen AS same_stretch FROM modelmine.nodes WHERE id = :n1;

-------------------------------------------------------------------------------------------------------
-- claim_jobs (node): capabilities, order, attempts
-------------------------------------------------------------------------------------------------------
-- Ben's jobs.  Node 1 offers trainers logreg and mlp, node 2 noop, node 3 the runner torch-cnn; nobody
-- offers linreg or the runner jax.
:as_ben
SELECT modelmine.submit_job('logreg by default', '{"dataset": {"synthetic": "blobs"}}', NULL, 10) AS j1,
       modelmine.submit_job('noop', '{"trainer": "noop"}', NULL, 10) AS j2,
       modelmine.submit_job('torch runner', '{"runner": "torch-cnn"}', NULL, 10) AS j3,
       modelmine.submit_job('jax runner', '{"runner": "jax"}', NULL, 10) AS j4,
       modelmine.submit_job('mlp, priority 5', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 7, 5) AS j5,
       modelmine.submit_job('logreg, priority 5', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}', NULL, 10, 5) AS j6,
       modelmine.submit_job('linreg', '{"trainer": "linreg", "dataset": {"synthetic": "linear"}}', NULL, 10) AS j7;
SELECT id, status, requirement, stake, priority FROM jobs;

:as_node1
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('max_jobs 0', 'SELECT * FROM modelmine.claim_jobs(0, 30)'),
               ('max_jobs -1', 'SELECT * FROM modelmine.claim_jobs(-1, 30)'),
               ('max_jobs 101', 'SELECT * FROM modelmine.claim_jobs(101, 30)'),
               ('lease_seconds 4', 'SELECT * FROM modelmine.claim_jobs(1, 4)'),
               ('lease_seconds 3601', 'SELECT * FROM modelmine.claim_jobs(1, 3601)'),
               ('lease_seconds 0', 'SELECT * FROM modelmine.claim_jobs(1, 0)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- NULL is refused too (its detail is covered in the report, not pinned here: it says "Got -1.").
SELECT v.label, e.code, e.message, e.hint
  FROM (VALUES ('max_jobs NULL', 'SELECT * FROM modelmine.claim_jobs(NULL, 30)'),
               ('lease_seconds NULL', 'SELECT * FROM modelmine.claim_jobs(1, NULL)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT count(*) AS running FROM jobs WHERE status = 'RUNNING';

-- A node gets only jobs whose requirement it advertises, however many it asks for: node 2 (noop)
-- gets the noop job and never a logreg or runner job; node 3 gets only the torch-cnn runner job.
-- (A node claims only while it is ONLINE: each sends a heartbeat first, as a worker does.)
:as_node2
SELECT modelmine.heartbeat(1, 1, 2) AS held;
SELECT job_id, title, config, attempt, lease_expires_at = now() + interval '60 seconds' AS lease_60_s
  FROM modelmine.claim_jobs(100, 60);
SELECT job_id FROM modelmine.claim_jobs(100, 60);
:as_node3
SELECT modelmine.heartbeat(1, 1, 2) AS held;
SELECT job_id, title, config, attempt FROM modelmine.claim_jobs(100, 3600);
SELECT job_id FROM modelmine.claim_jobs(100, 3600);
-- Node 1 (logreg, mlp), one job at a time: highest priority first, then the oldest; then nothing
-- (the jax runner and linreg jobs wait for a node that offers them).
:as_node1
SELECT modelmine.heartbeat(1, 1, 2) AS held;
SELECT job_id, title, attempt FROM modelmine.claim_jobs(1, 60);
SELECT job_id, title, attempt FROM modelmine.claim_jobs(1, 60);
SELECT job_id, title, attempt FROM modelmine.claim_jobs(1, 60);
SELECT job_id, title, attempt FROM modelmine.claim_jobs(1, 5);
SELECT job_id, title, attempt FROM modelmine.claim_jobs();
SELECT id, status, node_id, attempts, progress, lease_seconds, leased FROM jobs;
RESET ROLE;
SELECT id, extract(epoch FROM lease_expires_at - started_at)::integer AS lease_seconds FROM modelmine.jobs WHERE status = 'RUNNING' ORDER BY id;
-- heartbeat returns the ids of the jobs the node holds, and leaves their leases alone: only progress on
-- a job keeps its lease, so a node cannot hoard jobs by beating.
:as_node1
RESET ROLE;
SELECT id, lease_expires_at AS lease_before FROM modelmine.jobs WHERE node_id = :n1 ORDER BY id LIMIT 1 \gset
:as_node1
BEGIN;
SELECT modelmine.heartbeat(50, 100, 1000, 'BUSY') AS held;
RESET ROLE;
SELECT id, lease_expires_at = :'lease_before' AS lease_unchanged,
       lease_expires_at = now() + make_interval(secs => lease_seconds) AS lease_extended
  FROM modelmine.jobs WHERE id = :id;
COMMIT;

-------------------------------------------------------------------------------------------------------
-- report_progress (node holding the lease)
-------------------------------------------------------------------------------------------------------
-- Node 1 holds jobs 1, 5 and 6; node 2 holds job 2; node 3 holds job 3.
-- The limit is on the metrics' JSON text (what the job:{id}:progress NOTIFY carries), not jsonb's size.
SELECT length(jsonb_build_object('h', repeat('x', 3991))::text) AS metrics_4000_bytes,
       length(jsonb_build_object('h', repeat('x', 3992))::text) AS metrics_4001_bytes,
       length(jsonb_build_object('s', repeat(chr(1), 3900))::text) AS escaped_control_chars_bytes;
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('job_id NULL', 'SELECT modelmine.report_progress(NULL, 10)'),
               ('progress NULL', 'SELECT modelmine.report_progress(5, NULL)'),
               ('progress -1', 'SELECT modelmine.report_progress(5, -1)'),
               ('progress 100.01', 'SELECT modelmine.report_progress(5, 100.01)'),
               ('progress 101', 'SELECT modelmine.report_progress(5, 101)'),
               ('progress NaN', $$SELECT modelmine.report_progress(5, 'NaN')$$),
               ('progress -Infinity', $$SELECT modelmine.report_progress(5, '-Infinity')$$),
               ('metrics an array', $$SELECT modelmine.report_progress(5, 10, '[1, 2]')$$),
               ('metrics a number', $$SELECT modelmine.report_progress(5, 10, '0.5')$$),
               ('metrics JSON null', $$SELECT modelmine.report_progress(5, 10, 'null')$$),
               ('metrics 4001 bytes', format('SELECT modelmine.report_progress(5, 10, %L)',
                                             jsonb_build_object('h', repeat('x', 3992)))),
               ('metrics small jsonb, long text', format('SELECT modelmine.report_progress(5, 10, %L)',
                                             jsonb_build_object('s', repeat(chr(1), 3900))))) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT id, progress, metrics FROM jobs WHERE id = 5;
-- Accepted: 0, 100, 4000 bytes of metrics.
SELECT accepts('SELECT modelmine.report_progress(5, 0)') AS progress_0,
       accepts('SELECT modelmine.report_progress(5, 100)') AS progress_100,
       accepts(format('SELECT modelmine.report_progress(5, 10, %L)', jsonb_build_object('h', repeat('x', 3991)))) AS metrics_4000_bytes;
-- A report records progress and metrics and extends the lease (its new expiry comes back).
SELECT modelmine.report_progress(5, 25, '{"epoch": 1, "loss": 0.7}') = now() + interval '60 seconds' AS lease_extended;
SELECT id, progress, metrics FROM jobs WHERE id = 5;
-- Within an attempt progress never goes backwards; metrics NULL keeps the last metrics.
SELECT modelmine.report_progress(5, 10) IS NOT NULL AS reported;
SELECT id, progress, metrics FROM jobs WHERE id = 5;
SELECT modelmine.report_progress(5, 60.5, '{"epoch": 2, "loss": 0.4}') IS NOT NULL AS reported;
SELECT id, progress, metrics FROM jobs WHERE id = 5;
-- Only the lease holder may report: another node's job, a job no node holds, a job that does not exist.
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('another node''s job', 'SELECT modelmine.report_progress(3, 10)'),
               ('a pending job', 'SELECT modelmine.report_progress(4, 10)'),
               ('no such job', 'SELECT modelmine.report_progress(999999, 10)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT id, progress FROM jobs WHERE id IN (3, 4);
-- A job its owner canceled while it ran: its node is told so by every call, and heartbeats stop
-- listing it.
:as_ben
SELECT modelmine.cancel_job(2) AS refund;
:as_node2
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('report_progress', 'SELECT modelmine.report_progress(2, 50)'),
               ('complete_job', $$SELECT modelmine.complete_job(2, '{"loss": 0, "epochs": 1}')$$),
               ('fail_job', $$SELECT modelmine.fail_job(2, 'stopped')$$),
               ('release_job', 'SELECT modelmine.release_job(2)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT modelmine.heartbeat(1, 1, 2) AS held;
SELECT count(*) AS payments FROM journal WHERE job_id = 2 AND reason IN ('reward', 'fee');

-------------------------------------------------------------------------------------------------------
-- complete_job (node holding the lease): result checks, settlement once
-------------------------------------------------------------------------------------------------------
:as_node1
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('job_id NULL', $$SELECT modelmine.complete_job(NULL, '{"loss": 0, "epochs": 1}')$$),
               ('result NULL', 'SELECT modelmine.complete_job(5, NULL)'),
               ('result an array', $$SELECT modelmine.complete_job(5, '[]')$$),
               ('result a string', $$SELECT modelmine.complete_job(5, '"done"')$$),
               ('accuracy 1.5', $$SELECT modelmine.complete_job(5, '{"accuracy": 1.5, "loss": 0.1, "epochs": 1}')$$),
               ('accuracy -0.1', $$SELECT modelmine.complete_job(5, '{"accuracy": -0.1, "loss": 0.1, "epochs": 1}')$$),
               ('accuracy "x"', $$SELECT modelmine.complete_job(5, '{"accuracy": "x", "loss": 0.1, "epochs": 1}')$$),
               ('accuracy "0.9"', $$SELECT modelmine.complete_job(5, '{"accuracy": "0.9", "loss": 0.1, "epochs": 1}')$$),
               ('accuracy true', $$SELECT modelmine.complete_job(5, '{"accuracy": true, "loss": 0.1, "epochs": 1}')$$),
               ('loss missing', $$SELECT modelmine.complete_job(5, '{"accuracy": 0.9, "epochs": 1}')$$),
               ('loss null', $$SELECT modelmine.complete_job(5, '{"loss": null, "epochs": 1}')$$),
               ('loss "x"', $$SELECT modelmine.complete_job(5, '{"loss": "x", "epochs": 1}')$$),
               ('epochs missing', $$SELECT modelmine.complete_job(5, '{"loss": 0.1}')$$),
               ('epochs -1', $$SELECT modelmine.complete_job(5, '{"loss": 0.1, "epochs": -1}')$$),
               ('epochs 2.5', $$SELECT modelmine.complete_job(5, '{"loss": 0.1, "epochs": 2.5}')$$),
               ('epochs 10^9 + 1', $$SELECT modelmine.complete_job(5, '{"loss": 0.1, "epochs": 1000000001}')$$),
               ('epochs "3"', $$SELECT modelmine.complete_job(5, '{"loss": 0.1, "epochs": "3"}')$$),
               ('loss 1e400', $$SELECT modelmine.complete_job(5, '{"loss": 1e400, "epochs": 3}')$$),
               ('accuracy 1e400', $$SELECT modelmine.complete_job(5, '{"accuracy": 1e400, "loss": 0.1, "epochs": 3}')$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- Accepted: accuracy 0, 1 or null (regression), any finite loss, 0 and 10^9 epochs, extra keys.
SELECT v.result, accepts(format('SELECT modelmine.complete_job(5, %L)', v.result)) AS outcome
  FROM (VALUES ('{"accuracy": 0, "loss": 0.1, "epochs": 1}'),
               ('{"accuracy": 1, "loss": 0.1, "epochs": 1}'),
               ('{"accuracy": null, "loss": -3.5, "epochs": 1}'),
               ('{"loss": 0, "epochs": 0}'),
               ('{"loss": 1e-7, "epochs": 1000000000}'),
               ('{"loss": 0.1, "epochs": 2.0, "model": {"weights": [1, 2]}}')) v(result);
SELECT status, progress FROM jobs WHERE id = 5;
-- The result's size is limited by max_result_bytes (bytes of jsonb; lowered here to its minimum, 1024).
RESET ROLE;
UPDATE modelmine.settings SET value = 1024 WHERE name = 'max_result_bytes';
:as_node1
SELECT pg_column_size(jsonb_build_object('loss', 0.25, 'epochs', 10, 'accuracy', 0.9, 'model_weights', repeat('w', 932))) - 4 AS result_1024_bytes,
       pg_column_size(jsonb_build_object('loss', 0.25, 'epochs', 10, 'accuracy', 0.9, 'model_weights', repeat('w', 933))) - 4 AS result_1025_bytes;
SELECT * FROM err(format('SELECT modelmine.complete_job(5, %L)',
                         jsonb_build_object('loss', 0.25, 'epochs', 10, 'accuracy', 0.9, 'model_weights', repeat('w', 933))));
-- Completing job 5 (stake 7) at exactly the limit: the node gets floor(7 * 80 / 100) = 5, the network
-- the remaining 2; the reward comes back.
SELECT modelmine.complete_job(5, jsonb_build_object('loss', 0.25, 'epochs', 10, 'accuracy', 0.9, 'model_weights', repeat('w', 932))) AS reward;
RESET ROLE;
UPDATE modelmine.settings SET value = 16777216 WHERE name = 'max_result_bytes';
SET ROLE regress_mm_worker;
-- Accounts: 1001 is Ben's, 21 the escrow shard of job 5 (16 + 5 % 16), 1004 node 1's, 37 the fee shard.
SELECT * FROM journal WHERE job_id = 5;
SELECT id, status, progress, node_id, leased, error FROM jobs WHERE id = 5;
SELECT id, name, jobs_completed, jobs_failed, tokens_earned, balance FROM nodes WHERE id = :n1;
-- A second completion (or any other report) is refused, and pays nothing again.
SELECT count(*) AS journal_before FROM journal \gset
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('complete again', $$SELECT modelmine.complete_job(5, '{"loss": 0.1, "epochs": 1}')$$),
               ('fail', $$SELECT modelmine.fail_job(5, 'oops')$$),
               ('report', 'SELECT modelmine.report_progress(5, 100)'),
               ('release', 'SELECT modelmine.release_job(5)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
:as_node2
SELECT * FROM err($$SELECT modelmine.complete_job(5, '{"loss": 0.1, "epochs": 1}')$$);
SELECT count(*) - :journal_before AS journal_rows_added FROM journal;
SELECT id, jobs_completed, tokens_earned, balance FROM nodes WHERE id = :n1;

-- The split at the edges of reward_pct: 0 (node 3's job 3, stake 10: all of it to the network, no
-- reward row) and 100 (all of it to the node, no fee row); and floor rounding leaves a node nothing of
-- a stake of 1 at 80 %.
RESET ROLE;
UPDATE modelmine.settings SET value = 0 WHERE name = 'reward_pct';
:as_node3
SELECT modelmine.complete_job(3, '{"loss": 0.5, "epochs": 3}') AS reward_at_0_pct;
RESET ROLE;
UPDATE modelmine.settings SET value = 100 WHERE name = 'reward_pct';
:as_ben
SELECT modelmine.submit_job('mlp, stake 9', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 9) AS j8;
:as_node1
SELECT job_id FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(8, '{"accuracy": 0.5, "loss": 1, "epochs": 2}') AS reward_at_100_pct;
RESET ROLE;
UPDATE modelmine.settings SET value = 80 WHERE name = 'reward_pct';
:as_ben
SELECT modelmine.submit_job('mlp, stake 1', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 1) AS j9;
:as_node1
SELECT job_id FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(9, '{"loss": 1, "epochs": 1}') AS reward_of_stake_1;
SELECT job_id, reason, amount, debit, credit FROM journal WHERE job_id IN (3, 8, 9) ORDER BY id;
SELECT id, name, jobs_completed, tokens_earned, balance FROM nodes WHERE id IN (:n1, :n3);
-- Each completion is recorded once in the ledger, with the split.
SELECT job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs
  FROM modelmine.ledger WHERE job_id IS NOT NULL ORDER BY height;

-------------------------------------------------------------------------------------------------------
-- fail_job (node holding the lease): refund, counters
-------------------------------------------------------------------------------------------------------
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('job_id NULL', $$SELECT modelmine.fail_job(NULL, 'x')$$),
               ('error NULL', 'SELECT modelmine.fail_job(6, NULL)'),
               ('error empty', $$SELECT modelmine.fail_job(6, '')$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
:as_node2
SELECT * FROM err($$SELECT modelmine.fail_job(6, 'not mine')$$);
:as_ben
SELECT modelmine.balance() AS ben_before \gset
-- The whole stake goes back to the owner; the error is kept (at most 4000 characters of it).
:as_node1
SELECT modelmine.fail_job(6, 'out of memory: ' || repeat('x', 5000)) AS refund;
SELECT id, status, node_id, leased, left(error, 14) AS error, char_length(error) AS error_chars FROM jobs WHERE id = 6;
SELECT job_id, reason, amount, debit, credit FROM journal WHERE job_id = 6 ORDER BY id;
SELECT id, jobs_completed, jobs_failed, tokens_earned FROM nodes WHERE id = :n1;
SELECT * FROM err($$SELECT modelmine.fail_job(6, 'again')$$);
SELECT count(*) AS refunds FROM journal WHERE job_id = 6 AND reason = 'refund';
:as_ben
SELECT modelmine.balance() - :ben_before AS ben_refunded;

-------------------------------------------------------------------------------------------------------
-- release_job (node holding the lease): back to the queue; the attempt still counts (before 1.1 a
-- release gave it back, so release and claim again could hold a job past max_attempts forever)
-------------------------------------------------------------------------------------------------------
:as_node2
SELECT * FROM err('SELECT modelmine.release_job(1)');
:as_node1
SELECT * FROM err('SELECT modelmine.release_job(NULL)');
SELECT * FROM err('SELECT modelmine.release_job(999999)');
SELECT modelmine.report_progress(1, 40, '{"epoch": 4}') IS NOT NULL AS reported;
SELECT id, status, node_id, attempts, progress, metrics, leased FROM jobs WHERE id = 1;
SELECT modelmine.release_job(1);
SELECT id, status, node_id, attempts, progress, metrics, lease_seconds, leased FROM jobs WHERE id = 1;
SELECT id, jobs_failed FROM nodes WHERE id = :n1;
SELECT * FROM err('SELECT modelmine.release_job(1)');
SELECT modelmine.heartbeat(1, 1, 2) AS held;
-- Claimed again, it is attempt 2.
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 60);

-------------------------------------------------------------------------------------------------------
-- Expired leases: re-queued by the next claim (anyone's), failed and refunded after max_attempts (4
-- for this section, 3 by default)
-------------------------------------------------------------------------------------------------------
RESET ROLE;
UPDATE modelmine.settings SET value = 4 WHERE name = 'max_attempts';
:as_node1
SELECT modelmine.report_progress(1, 40, '{"epoch": 4}') IS NOT NULL AS reported;
RESET ROLE;
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = 1 AND status = 'RUNNING';
-- Node 2 cannot run job 1, but its claim re-queues it: PENDING, no node, progress and metrics reset, the
-- attempt counted; the lost lease counts as a failure of node 1 (appended by node 2's claim, folded
-- into node 1's row when that claim commits: node 2 never waits on node 1's row).
:as_node2
SELECT modelmine.heartbeat(1, 1, 2) AS held;
SELECT job_id FROM modelmine.claim_jobs(10, 60);
SELECT id, status, node_id, attempts, progress, metrics, leased FROM jobs WHERE id = 1;
SELECT id, jobs_failed FROM nodes WHERE id = :n1;
-- Node 1 has lost it: its reports are refused and its heartbeat no longer lists it.
:as_node1
SELECT * FROM err('SELECT modelmine.report_progress(1, 50)');
SELECT modelmine.heartbeat(1, 1, 2) AS held;
-- Attempt 3 starts from progress 0 (a lower figure than attempt 2's is fine).
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.report_progress(1, 10) IS NOT NULL AS reported;
SELECT id, progress FROM jobs WHERE id = 1;
-- Expired again: one claim both re-queues it and hands it out again, as attempt 4.
RESET ROLE;
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = 1 AND status = 'RUNNING';
:as_node1
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 60);
-- The fourth attempt's expiry is the last: FAILED with the reason, the stake refunded to Ben, nothing paid.
:as_ben
SELECT modelmine.balance() AS ben_before \gset
RESET ROLE;
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = 1 AND status = 'RUNNING';
:as_node2
SELECT job_id FROM modelmine.claim_jobs(10, 60);
SELECT id, status, node_id, attempts, error, leased FROM jobs WHERE id = 1;
SELECT job_id, reason, amount FROM journal WHERE job_id = 1 ORDER BY id;
SELECT id, jobs_failed FROM nodes WHERE id = :n1;
:as_ben
SELECT modelmine.balance() - :ben_before AS ben_refunded;
SELECT id, status, attempts, finished_at IS NOT NULL AS finished FROM modelmine.my_jobs() WHERE id = 1;
:as_node1
SELECT * FROM err($$SELECT modelmine.complete_job(1, '{"loss": 0.1, "epochs": 1}')$$);
-- The setting decides: with max_attempts 1, the first expiry fails a job.
RESET ROLE;
UPDATE modelmine.settings SET value = 1 WHERE name = 'max_attempts';
:as_ben
SELECT modelmine.submit_job('logreg, one attempt', '{"dataset": {"synthetic": "blobs"}}', NULL, 10) AS j10;
:as_node1
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 60);
RESET ROLE;
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = 10 AND status = 'RUNNING';
:as_node2
SELECT job_id FROM modelmine.claim_jobs(10, 60);
SELECT id, status, attempts, error FROM jobs WHERE id = 10;
RESET ROLE;
UPDATE modelmine.settings SET value = 3 WHERE name = 'max_attempts';

-------------------------------------------------------------------------------------------------------
-- withdraw_node_earnings (operator)
-------------------------------------------------------------------------------------------------------
-- Node 1 earned 5 (job 5) + 9 (job 8) + 0 (job 9) = 14.
:as_ann
SELECT id, name, tokens_earned, balance FROM modelmine.my_nodes() WHERE id = :n1;
SELECT modelmine.balance() AS ann_before \gset
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('node_id NULL', 'SELECT modelmine.withdraw_node_earnings(NULL, 1)'),
               ('Cal''s node', format('SELECT modelmine.withdraw_node_earnings(%s, 1)', :n3)),
               ('no such node', 'SELECT modelmine.withdraw_node_earnings(999999, 1)'),
               ('amount 0', format('SELECT modelmine.withdraw_node_earnings(%s, 0)', :n1)),
               ('amount -1', format('SELECT modelmine.withdraw_node_earnings(%s, -1)', :n1)),
               ('amount 10^15 + 1', format('SELECT modelmine.withdraw_node_earnings(%s, 1000000000000001)', :n1)),
               ('more than earned', format('SELECT modelmine.withdraw_node_earnings(%s, 15)', :n1))) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- Part of it, then the rest (NULL = all of it), then nothing is left: 0, and no journal row.
SELECT modelmine.withdraw_node_earnings(:n1, 4) AS withdrawn;
SELECT modelmine.withdraw_node_earnings(:n1) AS withdrawn;
SELECT count(*) AS journal_before FROM journal \gset
SELECT modelmine.withdraw_node_earnings(:n1, NULL) AS withdrawn;
SELECT count(*) - :journal_before AS journal_rows_added FROM journal;
SELECT modelmine.balance() - :ann_before AS ann_received;
-- Each withdrawal is a journal row from the node's account to Ann's own.
SELECT reason, amount, debit = (SELECT account FROM nodes WHERE id = :n1) AS from_node_1, job_id
  FROM journal WHERE reason = 'withdrawal' ORDER BY id;
SELECT amount, direction, reason, counterparty FROM modelmine.my_transactions(2);
-- tokens_earned keeps counting what the node earned; the balance is what is left to withdraw.
SELECT id, name, tokens_earned, balance FROM modelmine.my_nodes() WHERE id = :n1;
-- Only a signed-in user may withdraw: a node binding is not one.
:as_node1
RESET ROLE;
SET ROLE regress_mm_client;
SELECT * FROM err(format('SELECT modelmine.withdraw_node_earnings(%s)', :n1));

-------------------------------------------------------------------------------------------------------
-- job_result (owner): only for COMPLETED jobs
-------------------------------------------------------------------------------------------------------
:as_ben
SELECT modelmine.job_result(5) - 'model_weights' AS result, length(modelmine.job_result(5) ->> 'model_weights') AS model_weights_chars;
SELECT modelmine.job_result(8) AS result;
SELECT v.job, e.code, e.message, e.detail, e.hint
  FROM (VALUES (1), (2), (4), (6), (7), (999999)) v(job)
 CROSS JOIN LATERAL err(format('SELECT modelmine.job_result(%s)', v.job)) e;
-- Someone else's completed job: not found, like a job that does not exist.
:as_ann
SELECT * FROM err('SELECT modelmine.job_result(5)');
SELECT modelmine.deauthenticate();
SELECT * FROM err('SELECT modelmine.job_result(5)');

-------------------------------------------------------------------------------------------------------
-- Where everything ended up
-------------------------------------------------------------------------------------------------------
:as_ann
-- Node 1: jobs 5, 8 and 9 completed; job 6 failed, job 1's lease lost three times and job 10's once.
SELECT id, name, jobs_completed, jobs_failed, tokens_earned, balance FROM modelmine.my_nodes() WHERE id IN (:n1, :n2);
:as_cal
SELECT id, name, status, jobs_completed, jobs_failed, tokens_earned, balance FROM modelmine.my_nodes();
SELECT modelmine.deauthenticate();
RESET ROLE;
SELECT id, status, node_id, attempts, stake FROM jobs;
SET ROLE regress_mm_admin;
SELECT * FROM modelmine.check_invariants();
RESET ROLE;

DROP VIEW jobs;
DROP VIEW journal;
DROP VIEW nodes;
DROP ROLE regress_mm_client;
DROP ROLE regress_mm_worker;
DROP ROLE regress_mm_admin;
DROP FUNCTION err(text);
DROP FUNCTION accepts(text);
