-- replication: replicas of a job go to nodes of different operators; the validator settles by quorum
-- (extension/validate.c), pays the quorum from the stake and marks dissenters; no quorum adds a replica
-- up to max_extra_replicas, then fails and refunds; spot-checks and the claim order follow the record
-- score (extension/replicas.c).  Racing completions and claims are in regress/specs/replica-race.spec.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';  -- exact counters below
UPDATE modelmine.settings SET value = 0 WHERE name = 'spotcheck_pct';     -- no random spot-checks yet

SELECT modelmine.signup('vic@example.com', 'vic password') AS vic,
       modelmine.signup('alice@example.com', 'alice password') AS alice,
       modelmine.signup('bob@example.com', 'bob password') AS bob,
       modelmine.signup('carol@example.com', 'carol password') AS carol;
SELECT modelmine.login('vic@example.com', 'vic password') AS tok_v \gset
SELECT modelmine.login('alice@example.com', 'alice password') AS tok_a \gset
SELECT modelmine.login('bob@example.com', 'bob password') AS tok_b \gset
SELECT modelmine.login('carol@example.com', 'carol password') AS tok_c \gset
-- Alice operates two nodes, Bob and Carol one each.
SELECT modelmine.authenticate(:'tok_a') IS NOT NULL AS alice;
SELECT node_id AS a1, node_key AS key_a1 FROM modelmine.register_node('a1', '{"trainers": ["noop"], "slots": 8}') \gset
SELECT node_id AS a2, node_key AS key_a2 FROM modelmine.register_node('a2', '{"trainers": ["noop"], "slots": 8}') \gset
SELECT modelmine.authenticate(:'tok_b') IS NOT NULL AS bob;
SELECT node_id AS b1, node_key AS key_b1 FROM modelmine.register_node('b1', '{"trainers": ["noop"], "slots": 8}') \gset
SELECT modelmine.authenticate(:'tok_c') IS NOT NULL AS carol;
SELECT node_id AS c1, node_key AS key_c1 FROM modelmine.register_node('c1', '{"trainers": ["noop"], "slots": 8}') \gset
\set as_a1 'SELECT modelmine.authenticate_node(' :'key_a1' ') IS NOT NULL AS a1, modelmine.heartbeat(1, 1, 2) IS NOT NULL AS beat;'
\set as_a2 'SELECT modelmine.authenticate_node(' :'key_a2' ') IS NOT NULL AS a2, modelmine.heartbeat(1, 1, 2) IS NOT NULL AS beat;'
\set as_b1 'SELECT modelmine.authenticate_node(' :'key_b1' ') IS NOT NULL AS b1, modelmine.heartbeat(1, 1, 2) IS NOT NULL AS beat;'
\set as_c1 'SELECT modelmine.authenticate_node(' :'key_c1' ') IS NOT NULL AS c1, modelmine.heartbeat(1, 1, 2) IS NOT NULL AS beat;'
\set as_vic 'SELECT modelmine.authenticate(' :'tok_v' ') IS NOT NULL AS vic;'
\set honest '''{"accuracy": 0.9, "loss": 0.25, "epochs": 5}'''
-- close enough: within the default tolerances (1000 millionths)
\set close '''{"accuracy": 0.9005, "loss": 0.2504, "epochs": 5}'''
\set fabricated '''{"accuracy": 1, "loss": 0, "epochs": 0}'''
-- replicas(job): what the job's replicas say, node names instead of ids
CREATE FUNCTION replicas(job bigint) RETURNS TABLE (node text, status text, verdict text, reward bigint)
LANGUAGE sql AS $$
    SELECT n.name, r.status, r.verdict, r.reward FROM modelmine.job_replicas r
      JOIN modelmine.nodes n ON n.id = r.node_id WHERE r.job_id = job ORDER BY r.id
$$;
CREATE FUNCTION job_state(job bigint)
    RETURNS TABLE (status text, replicas smallint, wanted smallint, open smallint, validation text, node text)
LANGUAGE sql AS $$
    SELECT j.status, j.replicas, j.replicas_wanted, j.open_replicas, j.validation, n.name
      FROM modelmine.jobs j LEFT JOIN modelmine.nodes n ON n.id = j.node_id WHERE j.id = job
$$;
CREATE FUNCTION moves(job bigint) RETURNS TABLE (reason text, amount bigint, to_kind text, to_node text)
LANGUAGE sql AS $$
    SELECT jn.reason, jn.amount, a.kind, n.name FROM modelmine.journal jn
      JOIN modelmine.accounts a ON a.id = jn.credit_account LEFT JOIN modelmine.nodes n ON n.id = a.node_id
     WHERE jn.job_id = job ORDER BY jn.id
$$;
CREATE FUNCTION counters() RETURNS TABLE (node text, completed bigint, failed bigint, valid bigint, invalid bigint,
                                          earned numeric)
LANGUAGE sql AS $$
    SELECT name, jobs_completed, jobs_failed, results_valid, results_invalid, tokens_earned FROM modelmine.nodes ORDER BY id
$$;

-------------------------------------------------------------------------------------------------------
-- The replicas a job asks for: config key "replicas", a whole number from 1 to max_replicas (3).
-------------------------------------------------------------------------------------------------------
:as_vic
SELECT * FROM err($$SELECT modelmine.submit_job('r', '{"trainer": "noop", "replicas": 0}')$$);
SELECT * FROM err($$SELECT modelmine.submit_job('r', '{"trainer": "noop", "replicas": 4}')$$);
SELECT * FROM err($$SELECT modelmine.submit_job('r', '{"trainer": "noop", "replicas": 1.5}')$$);
SELECT * FROM err($$SELECT modelmine.submit_job('r', '{"trainer": "noop", "replicas": "two"}')$$);
SELECT modelmine.balance() AS balance_unchanged;

-------------------------------------------------------------------------------------------------------
-- Two replicas that agree: two operators, one replica each; the job completes once, VALID; the reward
-- pool (80 of 100) is split over the quorum; the ledger records the canonical (first) result's node.
-------------------------------------------------------------------------------------------------------
SELECT modelmine.submit_job('agree', '{"trainer": "noop", "replicas": 2}', NULL, 100) AS j1 \gset
SELECT * FROM job_state(:j1);
:as_a1
SELECT job_id = :j1 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
-- Alice's other node is never served a job on which Alice already has a replica.
:as_a2
SELECT count(*) AS a2_claimed FROM modelmine.claim_jobs(5, 60);
:as_b1
SELECT job_id = :j1 AS b1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT * FROM job_state(:j1);
:as_a1
SELECT modelmine.complete_job(:j1, :honest) AS a1_paid_now;
SELECT * FROM job_state(:j1);
SELECT * FROM err($$SELECT modelmine.complete_job($$ || :j1 || $$, '{"loss": 0, "epochs": 0}')$$);
:as_b1
SELECT modelmine.complete_job(:j1, :close) AS b1_paid;
SELECT * FROM job_state(:j1);
SELECT * FROM replicas(:j1);
SELECT * FROM moves(:j1);
SELECT l.reward, l.fee, l.accuracy, l.loss, l.epochs, n.name AS ledger_node
  FROM modelmine.ledger_queue l JOIN modelmine.nodes n ON n.id = l.node_id WHERE l.job_id = :j1
UNION ALL
SELECT l.reward, l.fee, l.accuracy, l.loss, l.epochs, n.name
  FROM modelmine.ledger l JOIN modelmine.nodes n ON n.id = l.node_id WHERE l.job_id = :j1;
SELECT (SELECT result FROM modelmine.jobs WHERE id = :j1) = :honest::jsonb AS canonical_is_first;
SELECT * FROM err($$SELECT modelmine.complete_job($$ || :j1 || $$, '{"loss": 0, "epochs": 0}')$$);

-------------------------------------------------------------------------------------------------------
-- A fabricated result: no quorum between two, so a third replica is issued; the third agrees with the
-- honest one; the fabricator gets nothing and a mark.
-------------------------------------------------------------------------------------------------------
:as_vic
SELECT modelmine.submit_job('cheated', '{"trainer": "noop", "replicas": 2}', NULL, 100) AS j2 \gset
:as_c1
SELECT job_id = :j2 AS c1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j2, :fabricated) AS c1_paid_now;
:as_a1
SELECT job_id = :j2 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j2, :honest) AS a1_paid_now;
SELECT * FROM job_state(:j2);
:as_b1
SELECT job_id = :j2 AS b1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j2, :honest) AS b1_paid;
SELECT * FROM job_state(:j2);
SELECT * FROM replicas(:j2);
SELECT * FROM moves(:j2);
SELECT * FROM counters();

-------------------------------------------------------------------------------------------------------
-- No quorum and no extra replica allowed (max_extra_replicas 0): the job fails and is refunded; no node
-- is paid or marked.
-------------------------------------------------------------------------------------------------------
UPDATE modelmine.settings SET value = 0 WHERE name = 'max_extra_replicas';
:as_vic
SELECT modelmine.submit_job('split', '{"trainer": "noop", "replicas": 2}', NULL, 100) AS j3 \gset
:as_c1
SELECT job_id = :j3 AS c1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j3, :fabricated) AS c1_paid;
:as_a1
SELECT job_id = :j3 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j3, :honest) AS a1_paid;
SELECT status, validation, error FROM modelmine.jobs WHERE id = :j3;
SELECT * FROM replicas(:j3);
SELECT * FROM moves(:j3);
UPDATE modelmine.settings SET value = 2 WHERE name = 'max_extra_replicas';

-------------------------------------------------------------------------------------------------------
-- One replica (the default): settled at once, as before replication; unchecked (validation NULL).
-------------------------------------------------------------------------------------------------------
:as_vic
SELECT modelmine.submit_job('single', '{"trainer": "noop"}', NULL, 100) AS j4 \gset
:as_a1
SELECT job_id = :j4 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j4, :honest) AS a1_paid;
SELECT * FROM job_state(:j4);
SELECT * FROM replicas(:j4);

-------------------------------------------------------------------------------------------------------
-- Leases are per replica: one expires, the job stays RUNNING with the other, and the lost replica is
-- handed to another operator's node; the node that lost it can no longer report on it.
-------------------------------------------------------------------------------------------------------
:as_vic
SELECT modelmine.submit_job('expiry', '{"trainer": "noop", "replicas": 2}', NULL, 100) AS j5 \gset
:as_a1
SELECT job_id = :j5 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
:as_b1
SELECT job_id = :j5 AS b1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.report_progress(:j5, 40) IS NOT NULL AS b1_progress;
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = :j5 AND node_id = :a1;
:as_c1
SELECT job_id = :j5 AS c1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT status, progress, attempts FROM modelmine.jobs WHERE id = :j5;
SELECT * FROM replicas(:j5);
:as_a1
SELECT * FROM err($$SELECT modelmine.complete_job($$ || :j5 || $$, '{"loss": 0.25, "epochs": 5}')$$);
:as_b1
SELECT modelmine.complete_job(:j5, :honest) AS b1_paid_now;
-- A release is per replica too: the replica goes back, the job keeps b1's result.
:as_c1
SELECT modelmine.release_job(:j5);
SELECT * FROM job_state(:j5);
:as_a2
SELECT job_id = :j5 AS a2_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:j5, :close) AS a2_paid;
SELECT * FROM job_state(:j5);
SELECT * FROM replicas(:j5);

-------------------------------------------------------------------------------------------------------
-- A failure ends the job (a trainer's error is deterministic): refunded once, other replicas released,
-- no node paid.  Cancel releases the live replicas too.
-------------------------------------------------------------------------------------------------------
:as_vic
SELECT modelmine.submit_job('fails', '{"trainer": "noop", "replicas": 2}', NULL, 100) AS j6 \gset
SELECT modelmine.submit_job('canceled', '{"trainer": "noop", "replicas": 3}', NULL, 100) AS j7 \gset
:as_a1
SELECT count(*) AS a1_claimed FROM modelmine.claim_jobs(2, 60);
:as_b1
SELECT count(*) AS b1_claimed FROM modelmine.claim_jobs(2, 60);
SELECT modelmine.complete_job(:j6, :honest) AS b1_paid_now;
:as_a1
SELECT modelmine.fail_job(:j6, 'dataset unreachable') AS refunded;
SELECT status, validation, error FROM modelmine.jobs WHERE id = :j6;
SELECT * FROM replicas(:j6);
SELECT * FROM moves(:j6);
:as_vic
SELECT modelmine.cancel_job(:j7) AS refunded;
SELECT * FROM replicas(:j7);
:as_a1
SELECT * FROM err($$SELECT modelmine.report_progress($$ || :j7 || $$, 50)$$);

-------------------------------------------------------------------------------------------------------
-- Spot-checks.  The chance is 0 for a long clean record (trusted_after_results validated, none
-- invalid), 100 for a caught node (fewer than trusted_after_results validated results per invalid one),
-- else at least spotcheck_pct, and 100 - 2 * record score when more.  At 100% every unproven claim of a
-- single-replica job wants a second result from another operator; a trusted node still runs alone.
-------------------------------------------------------------------------------------------------------
UPDATE modelmine.settings SET value = 10 WHERE name = 'spotcheck_pct';  -- the default
SELECT name, results_valid AS valid, results_invalid AS invalid, s.score,
       modelmine._spotcheck_pct(results_valid, results_invalid, s.score) AS spot_pct
  FROM modelmine.nodes, LATERAL modelmine._record_score(jobs_completed, jobs_failed, results_invalid) s(score)
 ORDER BY id;
SELECT modelmine._spotcheck_pct(0, 0, 50) AS new_node, modelmine._spotcheck_pct(19, 0, 95) AS short_record,
       modelmine._spotcheck_pct(20, 0, 95) AS trusted, modelmine._spotcheck_pct(39, 2, 70) AS caught,
       modelmine._spotcheck_pct(40, 2, 70) AS redeemed, modelmine._spotcheck_pct(40, 2, 30) AS poor;
UPDATE modelmine.settings SET value = 100 WHERE name = 'spotcheck_pct';
:as_vic
SELECT modelmine.submit_job('spot 1', '{"trainer": "noop"}', NULL, 10) AS spot_1 \gset
SELECT modelmine.submit_job('spot 2', '{"trainer": "noop"}', NULL, 10) AS spot_2 \gset
:as_c1
SELECT job_id = :spot_1 AS c1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT * FROM job_state(:spot_1);
SELECT modelmine.complete_job(:spot_1, :fabricated) AS c1_paid_now;
:as_b1
SELECT job_id = :spot_1 AS b1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:spot_1, :honest) AS b1_paid;
:as_a1
SELECT job_id = :spot_1 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:spot_1, :honest) AS a1_paid;
SELECT * FROM job_state(:spot_1);
SELECT * FROM replicas(:spot_1);
-- Alice's a1 with 20 validated results and none invalid is trusted: it runs alone.
UPDATE modelmine.nodes SET results_valid = 20 WHERE id = :a1;
:as_a1
SELECT job_id = :spot_2 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT * FROM job_state(:spot_2);
SELECT modelmine.complete_job(:spot_2, :honest) AS a1_paid;
UPDATE modelmine.settings SET value = 0 WHERE name = 'spotcheck_pct';
-- A caught node is checked even with spotcheck_pct 0, and on a re-issued job too: a1's lease on
-- "spot 3" expires, Carol's c1 takes it over, and the job then wants a second result.
:as_vic
SELECT modelmine.submit_job('spot 3', '{"trainer": "noop"}', NULL, 10) AS spot_3 \gset
:as_a1
SELECT job_id = :spot_3 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT * FROM job_state(:spot_3);
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = :spot_3;
:as_c1
SELECT job_id = :spot_3 AS c1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT * FROM job_state(:spot_3);
SELECT modelmine.complete_job(:spot_3, :fabricated) AS c1_paid_now;
:as_b1
SELECT job_id = :spot_3 AS b1_claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:spot_3, :honest) AS b1_paid_now;
:as_a1
SELECT job_id = :spot_3 AS a1_claimed_again FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(:spot_3, :honest) AS a1_paid;
SELECT * FROM job_state(:spot_3);
SELECT * FROM replicas(:spot_3);

-------------------------------------------------------------------------------------------------------
-- Scarce work: a node sees a job (100 - record score)% of scarce_delay_ms after it was submitted.  With
-- 10 minutes, a job submitted 5 minutes ago is served to Alice's good node, not to Carol's poor one.
-------------------------------------------------------------------------------------------------------
UPDATE modelmine.settings SET value = 600000 WHERE name = 'scarce_delay_ms';
:as_vic
SELECT modelmine.submit_job('scarce', '{"trainer": "noop"}', NULL, 10) AS j8 \gset
-- (created_at is fixed after submission: the guard is set aside to move the clock back)
ALTER TABLE modelmine.jobs DISABLE TRIGGER jobs_transition_guard;
UPDATE modelmine.jobs SET created_at = now() - interval '5 minutes' WHERE id = :j8;
ALTER TABLE modelmine.jobs ENABLE TRIGGER jobs_transition_guard;
:as_c1
SELECT count(*) AS c1_claimed FROM modelmine.claim_jobs(1, 60);
:as_a1
SELECT job_id = :j8 AS a1_claimed FROM modelmine.claim_jobs(1, 60);
UPDATE modelmine.settings SET value = 0 WHERE name = 'scarce_delay_ms';

SELECT * FROM counters();

-------------------------------------------------------------------------------------------------------
-- What users see: listings show replicas and the validation state, a job's details every replica's
-- figures and verdict, nodes() the validated and rejected results, reputation and spot-check rate.
-------------------------------------------------------------------------------------------------------
:as_vic
SELECT id, title, status, replicas, validation FROM modelmine.my_jobs(sort => 'created', descending => false);
SELECT replicas, replicas_wanted, validation, jsonb_array_length(replica_results) AS results
  FROM modelmine.job(:j2);
SELECT r ->> 'status' AS status, r ->> 'verdict' AS verdict, r ->> 'reward' AS reward, r ->> 'epochs' AS epochs,
       r ->> 'loss' AS loss, r ->> 'accuracy' AS accuracy, (r ->> 'node_id')::bigint = :c1 AS carols
  FROM modelmine.job(:j2) j, jsonb_array_elements(j.replica_results) r;
-- (uptime varies with timing: reputation is shown as what its documented formula gives)
SELECT name, jobs_completed, jobs_failed, results_valid, results_invalid, spotcheck_pct,
       reputation = round(100.0 * (jobs_completed + 1) / (jobs_completed + jobs_failed + 10 * results_invalid + 2)
                          * uptime_pct / 100) AS reputation_as_documented, reputation < 10 AS below_10
  FROM modelmine.nodes();
-- The books balance: every replica's recorded reward is what the journal paid, nothing paid twice.
SELECT * FROM modelmine.check_invariants();
-- A replica's operator is its node's: the statement check on (node, operator) refuses any other, even
-- from the superuser (before, node and operator were separate keys and nothing tied them together).
RESET ROLE;
INSERT INTO modelmine.job_replicas (job_id, node_id, operator_id, lease_seconds)
SELECT :j2, :c1, u.id, 60 FROM modelmine.users u
 WHERE u.id <> (SELECT operator_id FROM modelmine.nodes WHERE id = :c1) ORDER BY u.id LIMIT 1;

-------------------------------------------------------------------------------------------------------
-- What jobs and replicas name is checked once per statement (refs.c), not by foreign keys that locked
-- the user's row per job; so what is named never goes or changes its id.  Each refusal is 23503 or
-- 42501 and changes nothing, even for the superuser.
-------------------------------------------------------------------------------------------------------
\i regress/include/err.sql
SELECT count(*) AS jobs, (SELECT count(*) FROM modelmine.job_replicas) AS replicas FROM modelmine.jobs;
SET client_min_messages = warning;  -- TRUNCATE ... CASCADE lists every table it would reach
SELECT s.what, e.code, e.message, e.detail, e.hint
  FROM (VALUES
    ('job of a missing user', $$INSERT INTO modelmine.jobs (user_id, title, config, stake)
                                 VALUES (999999, 'x', '{"trainer": "noop"}', 1)$$),
    ('one bad user in a batch', $$INSERT INTO modelmine.jobs (user_id, title, config, stake)
                                   SELECT CASE WHEN g = 3 THEN 999998 ELSE 1 END, 'x', '{"trainer": "noop"}', 1
                                     FROM generate_series(1, 5) g$$),
    ('job on a missing node', $$UPDATE modelmine.jobs SET node_id = 999999 WHERE id = $$ || :j4),
    ('replica of a missing job', $$INSERT INTO modelmine.job_replicas (job_id, node_id, operator_id, lease_seconds)
                                    SELECT 999999, id, operator_id, 60 FROM modelmine.nodes WHERE id = $$ || :c1),
    ('replica on a missing node', $$INSERT INTO modelmine.job_replicas (job_id, node_id, operator_id, lease_seconds)
                                     VALUES ($$ || :j4 || $$, 999999, 1, 60)$$),
    ('a job changes user', $$UPDATE modelmine.jobs SET user_id = user_id + 1 WHERE id = $$ || :j4),
    ('a job changes id', $$UPDATE modelmine.jobs SET id = DEFAULT WHERE id = $$ || :j4),
    ('a job removed', $$DELETE FROM modelmine.jobs WHERE id = $$ || :j4),
    ('jobs truncated', $$TRUNCATE modelmine.jobs CASCADE$$),
    ('a replica changes node', $$UPDATE modelmine.job_replicas SET node_id = $$ || :a1 || $$ WHERE job_id = $$ || :j2),
    ('a replica changes job', $$UPDATE modelmine.job_replicas SET job_id = $$ || :j4 || $$ WHERE job_id = $$ || :j2),
    ('a user removed', $$DELETE FROM modelmine.users WHERE email = 'vic@example.com'$$),
    ('a user changes id', $$UPDATE modelmine.users SET id = DEFAULT WHERE email = 'vic@example.com'$$),
    ('users truncated', $$TRUNCATE modelmine.users CASCADE$$),
    ('a node changes operator', $$UPDATE modelmine.nodes SET operator_id = operator_id + 1 WHERE id = $$ || :c1),
    ('a node that held jobs removed', $$DELETE FROM modelmine.nodes WHERE id = $$ || :c1)
  ) s(what, stmt)
 CROSS JOIN LATERAL err(s.stmt) e;
RESET client_min_messages;
SELECT count(*) AS jobs, (SELECT count(*) FROM modelmine.job_replicas) AS replicas FROM modelmine.jobs;
-- A node nothing names can still go (its account, if it has one, keeps it: accounts are never removed).
INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements)
VALUES (1, 'never-claimed', '\x00', '{}', '{}') RETURNING name;
DELETE FROM modelmine.nodes WHERE name = 'never-claimed' RETURNING name;
-- What the extension writes passes: a batch of jobs and a claim of two of them.
:as_vic
SELECT count(*) AS submitted FROM modelmine.submit_jobs('[{"title": "r1", "config": {"trainer": "noop"}, "stake": 1},
                                                        {"title": "r2", "config": {"trainer": "noop"}, "stake": 1}]');
:as_a1
SELECT count(*) AS claimed FROM modelmine.claim_jobs(2, 60);
RESET ROLE;
SELECT * FROM modelmine.check_invariants();
DROP FUNCTION err(text);
