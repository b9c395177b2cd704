-- scheduling (issue 19): deadlines (extension/deadlines.c), resource-aware placement (placement.c,
-- lease.c) and fair share between users (fairshare.c), with the explanation of a wait (queue.c).
-- Races are in regress/specs/sched-*.spec.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';

SELECT modelmine.signup('ops@example.com', 'ops password') AS ops,
       modelmine.signup('ann@example.com', 'ann password') AS ann,
       modelmine.signup('ben@example.com', 'ben password') AS ben;
SELECT modelmine.login('ops@example.com', 'ops password') AS tok_ops \gset
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset
\set as_ops 'SELECT modelmine.authenticate(' :'tok_ops' ') IS NOT NULL AS ops;'
\set as_ann 'SELECT modelmine.authenticate(' :'tok_ann' ') IS NOT NULL AS ann;'
\set as_ben 'SELECT modelmine.authenticate(' :'tok_ben' ') IS NOT NULL AS ben;'
\set result '''{"accuracy": 0.9, "loss": 0.25, "epochs": 5}'''

-------------------------------------------------------------------------------------------------------
-- Capacity: a node advertises memory_mb, cores and labels in its capabilities.
-------------------------------------------------------------------------------------------------------
:as_ops
SELECT node_id AS big, node_key AS key_big FROM modelmine.register_node('big',
    '{"trainers": ["noop"], "slots": 4, "memory_mb": 8192, "cores": 4, "labels": ["gpu"]}') \gset
SELECT node_id AS small, node_key AS key_small FROM modelmine.register_node('small',
    '{"trainers": ["noop"], "slots": 4, "memory_mb": 1024, "cores": 1}') \gset
SELECT name, slots, memory_mb, cores, labels FROM modelmine.nodes ORDER BY id;
\set as_big 'SELECT modelmine.authenticate_node(' :'key_big' ') IS NOT NULL AS big, modelmine.heartbeat(1, 1, 2) IS NOT NULL AS beat;'
\set as_small 'SELECT modelmine.authenticate_node(' :'key_small' ') IS NOT NULL AS small, modelmine.heartbeat(1, 1, 2) IS NOT NULL AS beat;'
-- bad capacity is refused like any bad capability
SELECT v.label, e.* FROM (VALUES
    ('memory a string', '{"trainers": ["noop"], "memory_mb": "lots"}'),
    ('negative cores', '{"trainers": ["noop"], "cores": -1}'),
    ('fractional memory', '{"trainers": ["noop"], "memory_mb": 1.5}'),
    ('labels a string', '{"trainers": ["noop"], "labels": "gpu"}'),
    ('bad label', '{"trainers": ["noop"], "labels": ["GPU!"]}'),
    ('17 labels', '{"trainers": ["noop"], "labels": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}')
  ) v(label, caps)
 CROSS JOIN LATERAL err(format('SELECT modelmine.register_node(%L, %L)', v.label, v.caps)) e;

-------------------------------------------------------------------------------------------------------
-- Submit: deadlines and requirements are checked before anything is staked.
-------------------------------------------------------------------------------------------------------
:as_ann
SELECT modelmine.balance() AS ann_before;
SELECT v.label, e.code, e.message,
       regexp_replace(e.detail, 'Got [0-9]{4}-[0-9-]+ [0-9:.+-]+;', 'Got <now>;') AS detail, e.hint FROM (VALUES
    ('start_by in the past', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', start_by => now() - interval '1 minute')$$),
    ('finish_by now', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', finish_by => now())$$),
    ('start_by infinity', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', start_by => 'infinity')$$),
    ('finish_by before start_by', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', start_by => '2999-01-02', finish_by => '2999-01-01')$$),
    ('start_by not a time', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', start_by => 'soon')$$),
    ('requirements an array', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', requirements => '[1]')$$),
    ('unknown requirement', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', requirements => '{"disk_gb": 1}')$$),
    ('memory too large', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', requirements => '{"memory_mb": 99999999}')$$),
    ('16 GB nowhere', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', requirements => '{"memory_mb": 16384}')$$),
    ('8 cores nowhere', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', requirements => '{"cores": 8}')$$),
    ('label nowhere', $$SELECT modelmine.submit_job('t', '{"trainer": "noop"}', requirements => '{"labels": ["tpu"]}')$$),
    ('trainer nowhere', $$SELECT modelmine.submit_job('t', '{"trainer": "mlp"}', requirements => '{"memory_mb": 512}')$$)
  ) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT modelmine.balance() AS ann_after_refusals, (SELECT count(*) FROM modelmine.jobs) AS jobs;

-------------------------------------------------------------------------------------------------------
-- Placement: a node gets only jobs that fit what it has free, counting the jobs it runs.
-------------------------------------------------------------------------------------------------------
SELECT modelmine.submit_job('big 1', '{"trainer": "noop"}', NULL, 10, 0, requirements => '{"memory_mb": 4096, "cores": 2}') AS big1,
       modelmine.submit_job('big 2', '{"trainer": "noop"}', NULL, 10, 0, requirements => '{"memory_mb": 4096, "cores": 2}') AS big2,
       modelmine.submit_job('big 3', '{"trainer": "noop"}', NULL, 10, 0, requirements => '{"memory_mb": 4096}') AS big3,
       modelmine.submit_job('gpu', '{"trainer": "noop"}', NULL, 10, 0, requirements => '{"labels": ["gpu"]}') AS gpu,
       modelmine.submit_job('plain', '{"trainer": "noop"}', NULL, 10) AS plain \gset
-- small (1024 MB, 1 core) can run only the job without requirements
:as_small
SELECT job_id, title FROM modelmine.claim_jobs(4, 60);
-- big (8192 MB, 4 cores) takes big 1 and big 2 (8192 MB, 4 cores in all) and gpu (no memory or
-- cores), but not big 3 as well: each fits alone, not all together
:as_big
SELECT job_id, title FROM modelmine.claim_jobs(4, 60);
-- it has 0 MB and 0 cores free: big 3 does not fit (it has a slot)
SELECT job_id, title FROM modelmine.claim_jobs(4, 60);
SELECT modelmine.complete_job(:big1, :result) > 0 AS paid;
-- big 1 done: 4096 MB and 2 cores free again, and big 3 fits
SELECT job_id, title FROM modelmine.claim_jobs(4, 60);
SELECT j.title, j.status, n.name AS node FROM modelmine.jobs j LEFT JOIN modelmine.nodes n ON n.id = j.node_id ORDER BY j.id;

-------------------------------------------------------------------------------------------------------
-- Deadlines: expire_jobs cancels unstarted jobs past start_by (or past finish_by: they can no longer
-- finish in time) and fails running ones past finish_by, refunding each once; a node is counted only
-- when its lease had expired.
-------------------------------------------------------------------------------------------------------
:as_ann
SELECT modelmine.submit_job('late start', '{"trainer": "noop"}', NULL, 7, 0, start_by => clock_timestamp() + interval '1 second') AS late_start,
       modelmine.submit_job('late finish', '{"trainer": "noop"}', NULL, 8, 100, finish_by => clock_timestamp() + interval '1 second') AS late_finish,
       modelmine.submit_job('lapsed', '{"trainer": "noop"}', NULL, 9, 99, finish_by => clock_timestamp() + interval '1 second') AS lapsed,
       modelmine.submit_job('in time', '{"trainer": "noop"}', NULL, 6, -5, start_by => '2999-01-01', finish_by => '2999-01-02') AS in_time,
       modelmine.submit_job('unfinishable', '{"trainer": "noop"}', NULL, 5, -10, finish_by => clock_timestamp() + interval '1 second') AS unfinishable \gset
:as_small
SELECT job_id, title FROM modelmine.claim_jobs(2, 60);
-- small stops reporting on 'lapsed': its lease has run out
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = :lapsed;
:as_ann
SELECT modelmine.balance() AS ann_before_expiry;
SELECT pg_sleep(1.1);
SELECT modelmine.expire_jobs();
SELECT modelmine.expire_jobs() AS again;
SELECT title, status, regexp_replace(error, '\(.*\)', '(...)') AS error FROM modelmine.jobs WHERE id IN (:late_start, :late_finish, :lapsed, :in_time, :unfinishable) ORDER BY id;
SELECT r.status, n.name FROM modelmine.job_replicas r JOIN modelmine.nodes n ON n.id = r.node_id
 WHERE r.job_id IN (:late_finish, :lapsed) ORDER BY r.job_id;
SELECT j.title, pg_catalog.count(*) AS refunds, pg_catalog.sum(jn.amount) AS refunded
  FROM modelmine.journal jn JOIN modelmine.jobs j ON j.id = jn.job_id
 WHERE jn.reason = 'refund' AND jn.job_id IN (:late_start, :late_finish, :lapsed, :unfinishable) GROUP BY j.title ORDER BY j.title;
:as_ann
SELECT modelmine.balance() AS ann_after_expiry;
-- small had stopped reporting on 'lapsed' only: one failure, counted at commit
SELECT name, jobs_failed FROM modelmine.nodes ORDER BY id;
-- the node learns at once that the jobs are gone
:as_small
SELECT modelmine.complete_job(:late_finish, :result);
SELECT err('SELECT modelmine.expire_jobs(0)');

-------------------------------------------------------------------------------------------------------
-- Fair share: the next job goes to the user with the least decayed usage per share.
-------------------------------------------------------------------------------------------------------
-- a clean slate: finish what runs, cancel what waits
:as_big
SELECT pg_catalog.count(modelmine.complete_job(j, :result)) AS completed FROM unnest(modelmine.heartbeat(1, 1, 2)) j;
:as_small
SELECT pg_catalog.count(modelmine.complete_job(j, :result)) AS completed FROM unnest(modelmine.heartbeat(1, 1, 2)) j;
:as_ann
SELECT pg_catalog.count(modelmine.cancel_job(id)) AS canceled FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING');
SELECT u.email, f.share, f.queued, round(pg_catalog.power(2, f.usage_log - extract(epoch FROM now() - '2000-01-01 00:00:00+00') / 3600)::numeric) AS usage
  FROM modelmine.fair_share f JOIN modelmine.users u ON u.id = f.user_id ORDER BY u.email;
-- ann floods the queue with 20 jobs; three nodes claim one at a time and finish at once
:as_ops
SELECT node_id AS third, node_key AS key_third FROM modelmine.register_node('third', '{"trainers": ["noop"]}') \gset
CREATE TABLE claims (n serial, job bigint, owner text);
-- run_claim(node name): one claim of one job, completed at once, in a transaction of its own (run by
-- \gexec one statement at a time, so each claim's usage is folded at its commit, as in production)
CREATE TABLE node_keys (name text, key text);
INSERT INTO node_keys VALUES ('big', :'key_big'), ('small', :'key_small'), ('third', :'key_third');
CREATE FUNCTION run_claim(node text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    PERFORM modelmine.authenticate_node((SELECT key FROM node_keys WHERE name = node));
    PERFORM modelmine.heartbeat(1, 1, 2);
    FOR c IN SELECT job_id FROM modelmine.claim_jobs(1, 60) LOOP
        INSERT INTO claims (job, owner)
        SELECT c.job_id, u.email FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id
         WHERE j.id = c.job_id;
        PERFORM modelmine.complete_job(c.job_id, '{"accuracy": 0.9, "loss": 0.25, "epochs": 5}');
    END LOOP;
END $$;
:as_ann
SELECT pg_catalog.count(modelmine.submit_job('flood ' || i, '{"trainer": "noop"}', NULL, 1)) AS flooded FROM generate_series(1, 20) i;
RESET ROLE;
SELECT format('SELECT run_claim(%L)', k) FROM generate_series(1, 2) r, unnest(ARRAY['big', 'small', 'third']) WITH ORDINALITY u(k, o) ORDER BY r, o \gexec
-- ben submits 5 jobs: they are the next 5 claims (ben has used nothing, ann 6 starts plus earlier)
:as_ben
SELECT pg_catalog.count(modelmine.submit_job('ben ' || i, '{"trainer": "noop"}', NULL, 1)) AS submitted FROM generate_series(1, 5) i;
SELECT id AS ben5 FROM modelmine.jobs WHERE title = 'ben 5' \gset
SELECT modelmine.job_queue(:ben5);
SELECT modelmine.queue_position(:ben5);
:as_ann
SELECT id AS flood20 FROM modelmine.jobs WHERE title = 'flood 20' \gset
SELECT modelmine.job_queue(:flood20);
RESET ROLE;
SELECT format('SELECT run_claim(%L)', k) FROM generate_series(1, 3) r, unnest(ARRAY['big', 'small', 'third']) WITH ORDINALITY u(k, o) ORDER BY r, o \gexec
SELECT n, owner FROM claims WHERE n > 6 ORDER BY n;
-- the bound: every one of ben's 5 jobs started within the first 5 claims after it was submitted
SELECT max(n) - 6 AS claims_until_bens_last FROM claims WHERE owner = 'ben@example.com';
-- a user alone gets every claim: ann's remaining jobs go to all three nodes
SELECT format('SELECT run_claim(%L)', k) FROM generate_series(1, 1) r, unnest(ARRAY['big', 'small', 'third']) WITH ORDINALITY u(k, o) ORDER BY r, o \gexec
SELECT owner, count(*) FROM claims WHERE n > 15 GROUP BY owner;
-- shares: with share 4, ben is served as if he had used a quarter as much
SELECT err($$SELECT modelmine.set_user_share('ben@example.com', 0)$$);
SELECT err($$SELECT modelmine.set_user_share('nobody@example.com', 2)$$);
SELECT modelmine.set_user_share('ben@example.com', 4);
SELECT u.email, f.share, f.queued, f.rank - f.usage_log AS minus_log2_share
  FROM modelmine.fair_share f JOIN modelmine.users u ON u.id = f.user_id ORDER BY u.email;
-- a user idle for thousands of half-lives: 2^-5000 would underflow; the fold and the explanation
-- take it as 0 (this failed the fold and job_queue before)
UPDATE modelmine.fair_share SET usage_log = usage_log - 5000, rank = rank - 5000
 WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'ann@example.com');
SELECT format('SELECT run_claim(%L)', 'big') \gexec
SELECT (SELECT count(*) FROM modelmine.usage_deltas) AS unfolded,
       round(pg_catalog.power(2, GREATEST(f.usage_log - extract(epoch FROM now() - '2000-01-01 00:00:00+00') / 3600, -1000))::numeric) AS ann_usage
  FROM modelmine.fair_share f WHERE f.user_id = (SELECT id FROM modelmine.users WHERE email = 'ann@example.com');
:as_ann
SELECT modelmine.job_queue(id) ->> 'reason' AS reason FROM modelmine.jobs WHERE status = 'PENDING' ORDER BY id LIMIT 1;
RESET ROLE;
-- users without open jobs drop out of the walk at commit
SELECT u.email, f.queued FROM modelmine.fair_share f JOIN modelmine.users u ON u.id = f.user_id ORDER BY u.email;

-------------------------------------------------------------------------------------------------------
-- Why a job waits.
-------------------------------------------------------------------------------------------------------
:as_ann
SELECT modelmine.submit_job('needs gpu and 8 GB', '{"trainer": "noop"}', NULL, 1, requirements => '{"memory_mb": 8192, "labels": ["gpu"]}') AS gpu8 \gset
SELECT modelmine.job_queue(:gpu8);
RESET ROLE;
UPDATE modelmine.nodes SET last_seen = now() - interval '1 hour' WHERE name = 'big';
:as_ann
SELECT modelmine.job_queue(:gpu8);
SELECT modelmine.job_queue(:big1);
-- big now offers only 4096 MB: no node could run it any more
:as_big
SELECT modelmine.set_capabilities('{"trainers": ["noop"], "slots": 4, "memory_mb": 4096, "labels": ["gpu"]}');
:as_ann
SELECT modelmine.job_queue(:gpu8);
-- another user (not an admin: this script runs as a superuser, who is) learns nothing of it
CREATE ROLE regress_mm_sched_user IN ROLE modelmine_user;
SET ROLE regress_mm_sched_user;
:as_ben
SELECT err('SELECT modelmine.job_queue(' || :gpu8 || ')');
SELECT err('SELECT modelmine.queue_position(' || :gpu8 || ')');
RESET ROLE;
DROP ROLE regress_mm_sched_user;
-- a batch (submit_jobs) puts its user in the walk as submit_job does
:as_ops
SELECT count(*) AS batch FROM modelmine.submit_jobs('[{"title": "b1", "config": {"trainer": "noop"}, "stake": 1}]');
SELECT f.queued FROM modelmine.fair_share f JOIN modelmine.users u ON u.id = f.user_id
 WHERE u.email = 'ops@example.com';
SELECT * FROM modelmine.check_invariants();
