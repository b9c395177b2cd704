-- batch: complete_jobs settles several of a node's leased jobs in one call (extension/batch.c).  Each
-- job gets what complete_job would have done: one row per job in the order given, the reward or
-- the error complete_job would have raised, and a refused job is left exactly as it was.  Free
-- single-replica jobs are settled set-based (extension/settle.c), the rest one by one; the last
-- section proves the two write the same rows.  A batch of
-- the wrong shape is refused as a whole before anything is settled.  Races with a cancel and with
-- lease expiry are in regress/specs/complete-jobs-race.spec.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ops@example.com', 'ops password') AS ops;
SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password')) AS ops;
SELECT node_id, node_key FROM modelmine.register_node('node 1', '{"trainers": ["noop"], "slots": 8}') \gset
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
SELECT count(modelmine.submit_job('job ' || i, '{"trainer": "noop"}', NULL, 10 * i)) AS submitted
  FROM generate_series(1, 6) i;
-- what every test below looks at: each job's status, its settlement rows and the invariants
CREATE FUNCTION books() RETURNS TABLE (id bigint, status text, progress real, settled text)
LANGUAGE sql AS $$
    SELECT j.id, j.status::text, j.progress,
           (SELECT string_agg(reason || ' ' || amount, ', ' ORDER BY x.id) FROM modelmine.journal x
             WHERE x.job_id = j.id AND reason <> 'stake')
      FROM modelmine.jobs j ORDER BY j.id
$$;
SELECT modelmine.authenticate_node(:'node_key') = :node_id AS bound_to_node,
       modelmine.heartbeat(5, 100, 1000) AS holds;
SELECT job_id FROM modelmine.claim_jobs(5, 300) ORDER BY job_id;

-------------------------------------------------------------------------------------------------------
-- The batch's shape: refused as a whole, 22023 naming the element, nothing settled
-------------------------------------------------------------------------------------------------------
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs(NULL)$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('{"job_id": 1}')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs(
    (SELECT jsonb_agg(jsonb_build_object('job_id', i, 'result', '{}'::jsonb)) FROM generate_series(1, 33) i))$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": 1, "result": {"loss": 0, "epochs": 1}}, 7]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"result": {"loss": 0, "epochs": 1}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": null}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": "1"}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": 0}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": -3}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": 1.5}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": 99999999999999999999}]')$$);
-- 1e3 is the whole number 1000 in JSON: a job id like any other (here nobody's: its own answer)
SELECT job_id, reward, sqlstate, error FROM modelmine.complete_jobs('[{"job_id": 1e3, "result": {"loss": 0, "epochs": 1}}]');
-- a repeated job: refused before job 1 is settled, even though its first mention is valid
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs(
    '[{"job_id": 1, "result": {"loss": 0, "epochs": 1}}, {"job_id": 2, "result": {"loss": 0, "epochs": 1}},
      {"job_id": 1, "result": {"loss": 0, "epochs": 1}}]')$$);
SELECT * FROM books();

-------------------------------------------------------------------------------------------------------
-- Each job its own answer
-------------------------------------------------------------------------------------------------------
-- Job 1 is completed, job 2's result is invalid (22023, and it stays RUNNING with its lease), job 6
-- was never claimed (not this node's), job 3 has no result (22023), job 4 is completed, job 77 does
-- not exist (the same answer as someone else's job: no probing).
SELECT job_id, reward, sqlstate, error, hint FROM modelmine.complete_jobs('[
    {"job_id": 1, "result": {"accuracy": 0.9, "loss": 0.1, "epochs": 3}},
    {"job_id": 2, "result": {"accuracy": 1.5, "loss": 0.1, "epochs": 3}},
    {"job_id": 6, "result": {"loss": 0, "epochs": 1}},
    {"job_id": 3},
    {"job_id": 4, "result": {"accuracy": null, "loss": 2.5, "epochs": 1}},
    {"job_id": 77, "result": {"loss": 0, "epochs": 1}}]');
SELECT * FROM books();
-- Each completed job has its ledger entry (sealed at commit) and its node counted once.
SELECT count(*) AS blocks FROM modelmine.ledger WHERE job_id IN (1, 4);
-- Reporting job 1 again: "already COMPLETED", nothing paid again; job 2 and 3 now go through.
SELECT job_id, reward, sqlstate, error FROM modelmine.complete_jobs('[
    {"job_id": 1, "result": {"loss": 0, "epochs": 1}},
    {"job_id": 2, "result": {"accuracy": 0.5, "loss": 0.7, "epochs": 2}},
    {"job_id": 3, "result": {"loss": 0, "epochs": 1}}]');
SELECT * FROM books();
SELECT jobs_completed FROM modelmine.nodes WHERE id = :node_id;
SELECT * FROM modelmine.check_invariants();

-------------------------------------------------------------------------------------------------------
-- Who may call it
-------------------------------------------------------------------------------------------------------
-- A user session (not a node) is refused as a whole; so is a role without modelmine_node.
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
SELECT * FROM err($$SELECT * FROM modelmine.complete_jobs('[{"job_id": 5, "result": {"loss": 0, "epochs": 1}}]')$$);
SELECT has_function_privilege('public', 'modelmine.complete_jobs(jsonb)', 'EXECUTE') AS public_may_call,
       has_function_privilege('modelmine_node', 'modelmine.complete_jobs(jsonb)', 'EXECUTE') AS nodes_may_call,
       has_function_privilege('modelmine_user', 'modelmine.complete_jobs(jsonb)', 'EXECUTE') AS users_may_call;
SELECT * FROM books();

-------------------------------------------------------------------------------------------------------
-- Set-based settlement (settle.c) writes what complete_job writes
-------------------------------------------------------------------------------------------------------
-- Twin jobs (same stake, same result; stakes where the reward rounds down, is 0, or is the whole
-- pool) settled one by one (complete_job's own code) and set-based: every row each wrote
-- must match, escrow and fee shards taken relative to the job id.
SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password')) AS ops;
SELECT node_id AS twin_node, node_key AS twin_key
  FROM modelmine.register_node('node 2', '{"trainers": ["noop"], "slots": 16}') \gset
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
SELECT count(modelmine.submit_job('twin ' || s, '{"trainer": "noop"}', NULL, s)) AS submitted
  FROM unnest(ARRAY[1, 7, 13, 250, 1, 7, 13, 250]) s;
SELECT modelmine.authenticate_node(:'twin_key') = :twin_node AS bound_to_node,
       modelmine.heartbeat(5, 100, 1000) AS holds;
SELECT min(id) AS t0 FROM modelmine.jobs WHERE title LIKE 'twin %' \gset
-- job 6, left pending above, is claimed too
SELECT array_agg(job_id - :t0 ORDER BY job_id) AS claimed FROM modelmine.claim_jobs(9, 300);
-- one by one: job 6's invalid result sends this batch down the per-job path (each job as complete_job)
SELECT job_id - :t0 AS twin, reward, sqlstate FROM modelmine.complete_jobs(
    (SELECT jsonb_agg(jsonb_build_object('job_id', id, 'result',
                      jsonb_build_object('accuracy', CASE WHEN id < :t0 THEN 1.5 ELSE 0.5 END,
                                         'loss', id - :t0, 'epochs', 3)) ORDER BY id)
       FROM modelmine.jobs WHERE id BETWEEN :t0 - 1 AND :t0 + 3));
-- set-based: all four at once
SELECT job_id - :t0 AS twin, reward, sqlstate FROM modelmine.complete_jobs(
    (SELECT jsonb_agg(jsonb_build_object('job_id', id, 'result',
                      jsonb_build_object('accuracy', 0.5, 'loss', id - :t0 - 4, 'epochs', 3)) ORDER BY id)
       FROM modelmine.jobs WHERE id BETWEEN :t0 + 4 AND :t0 + 7));
-- which path each batch took: a subtransaction per job, or one for the set
SELECT (SELECT count(DISTINCT xmin::text) FROM modelmine.job_replicas WHERE job_id BETWEEN :t0 AND :t0 + 3)
       AS one_by_one_transactions, count(DISTINCT xmin::text) AS set_based_transactions
  FROM modelmine.job_replicas WHERE job_id BETWEEN :t0 + 4 AND :t0 + 7;
CREATE FUNCTION twin_rows(j bigint) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('job %s %s %s %s %s %s %s %s', status, result, node_id, progress, validation,
                  open_replicas, lease_expires_at, finished_at IS NOT NULL)
      FROM modelmine.jobs WHERE id = j
    UNION ALL
    SELECT format('replica %s %s %s %s %s %s %s', status, result, progress, verdict, reward,
                  lease_expires_at, finished_at IS NOT NULL)
      FROM modelmine.job_replicas WHERE job_id = j
    UNION ALL
    SELECT format('journal %s %s %s %s', reason, amount,
                  CASE WHEN debit_account < 1000 THEN (debit_account - j % 16)::text ELSE 'own' END,
                  CASE WHEN credit_account < 1000 THEN (credit_account - j % 16)::text ELSE 'own' END)
      FROM modelmine.journal WHERE job_id = j AND reason <> 'stake'
    UNION ALL
    SELECT format('ledger %s %s %s %s %s %s %s', node_id, stake, reward, fee, accuracy, loss, epochs)
      FROM modelmine.ledger WHERE job_id = j
$$;
SELECT t.i AS twin, a AS one_by_one, b AS batched
  FROM generate_series(0, 3) t(i),
       LATERAL (SELECT array_agg(x ORDER BY x) a FROM twin_rows(:t0 + t.i) x) p,
       LATERAL (SELECT array_agg(x ORDER BY x) b FROM twin_rows(:t0 + 4 + t.i) x) q
 WHERE a IS DISTINCT FROM b;
SELECT t.i AS twin, array_agg(x ORDER BY x) AS rows FROM generate_series(4, 7) t(i), twin_rows(:t0 + t.i) x
 GROUP BY t.i ORDER BY t.i;
SELECT jobs_completed AS completed, tokens_earned AS earned FROM modelmine.nodes WHERE id = :twin_node;
SELECT * FROM modelmine.check_invariants();
DROP FUNCTION twin_rows(bigint);
DROP FUNCTION books();
