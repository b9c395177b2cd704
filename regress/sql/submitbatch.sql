-- submitbatch: submit_jobs submits many jobs in one call (extension/submitbatch.c).  Each job is
-- checked as submit_job checks it; all or nothing: the first refusal names the element and nothing
-- is staked.  One debit of the total, a stake journal row per job to its escrow shard.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann;
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
-- what the tests look at: jobs, stake rows, balance, invariants
CREATE FUNCTION books() RETURNS TABLE (jobs bigint, stakes bigint, staked numeric, balance bigint, violations bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM modelmine.jobs), (SELECT count(*) FROM modelmine.journal WHERE reason = 'stake'),
           (SELECT sum(amount) FROM modelmine.journal WHERE reason = 'stake'), modelmine.balance(),
           (SELECT count(*) FROM modelmine.check_invariants())
$$;

-------------------------------------------------------------------------------------------------------
-- The batch's shape, and every job's own checks: refused as a whole (22023) naming the element
-------------------------------------------------------------------------------------------------------
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs(NULL)$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('{"title": "a"}')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs(
    (SELECT jsonb_agg(jsonb_build_object('title', 't', 'config', '{"trainer": "noop"}'::jsonb, 'stake', 1))
       FROM generate_series(1, 1001)))$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}}, 7]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "stak": 5}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": 5, "config": {"trainer": "noop"}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "stake": 5.5}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "stake": "5"}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "stake": 1e30}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "priority": 1001}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "priority": -99999999999}]')$$);
-- the element's own checks, as submit_job makes them, with its index: the second element is refused
-- after the first passed, and nothing of the first is left
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "ok", "config": {"trainer": "noop"}, "stake": 5},
                                                           {"title": "  ", "config": {"trainer": "noop"}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "ok", "config": {"trainer": "noop"}, "stake": 5},
                                                           {"title": "b"}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "ok", "config": {"trainer": "noop"}, "stake": 0}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "ok", "config": {"trainer": "noop", "epochs": 3}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "ok", "config": {"trainer": "logreg"}}]')$$);
-- a config the same as the element before's is not checked again; the next different one is
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "ok", "config": {"trainer": "noop"}, "stake": 5},
    {"title": "ok", "config": {"trainer": "noop"}, "stake": 5},
    {"title": "ok", "config": {"trainer": "noop", "epochs": 3}, "stake": 5}]')$$);
SELECT * FROM books();

-------------------------------------------------------------------------------------------------------
-- All or nothing: 3 stakes of 400 against a balance of 1000 stake none of them
-------------------------------------------------------------------------------------------------------
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs(
    (SELECT jsonb_agg(jsonb_build_object('title', 'big ' || i, 'config', '{"trainer": "noop"}'::jsonb, 'stake', 400))
       FROM generate_series(1, 3) i))$$);
SELECT * FROM books();

-------------------------------------------------------------------------------------------------------
-- Accepted: ids in the order given, each job as submit_job makes it, a stake row per job
-------------------------------------------------------------------------------------------------------
-- (refused batches used up ids: a sequence does not roll back, as with submit_job)
SELECT array_agg(job_id ORDER BY job_id) = array_agg(job_id) AS ids_ascend_in_order, count(*) AS submitted,
       min(job_id) AS t0
  FROM modelmine.submit_jobs('[
    {"title": "  one  ", "config": {"trainer": "noop"}, "stake": 7},
    {"title": "two", "config": {"trainer": "noop", "replicas": 3}, "stake": 30, "priority": 5,
     "description": "three replicas"},
    {"title": "three", "config": {"trainer": "noop"}, "description": null, "stake": null, "priority": null},
    {"title": "four", "config": {"runner": "torch-cnn"}, "stake": 1}]') \gset
SELECT :'ids_ascend_in_order' AS ids_ascend_in_order, :submitted AS submitted;
-- twins of the same four through submit_job: the rows must match but for ids and times
SELECT modelmine.submit_job('  one  ', '{"trainer": "noop"}', NULL, 7) IS NOT NULL AS one,
       modelmine.submit_job('two', '{"trainer": "noop", "replicas": 3}', 'three replicas', 30, 5) IS NOT NULL AS two,
       modelmine.submit_job('three', '{"trainer": "noop"}') IS NOT NULL AS three,
       modelmine.submit_job('four', '{"runner": "torch-cnn"}', NULL, 1) IS NOT NULL AS four;
CREATE FUNCTION job_rows(j bigint) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('job %s %s %s %s %s %s %s %s %s %s %s %s', user_id, title, description, config, stake,
                  priority, status, replicas, replicas_wanted, open_replicas, validation, requirement)
      FROM modelmine.jobs WHERE id = j
    UNION ALL
    SELECT format('journal %s %s %s %s', reason, amount, debit_account,
                  CASE WHEN credit_account < 1000 THEN (credit_account - j % 16)::text ELSE 'own' END)
      FROM modelmine.journal WHERE job_id = j
$$;
SELECT i AS twin, a AS submit_jobs, b AS submit_job
  FROM generate_series(0, 3) i,
       LATERAL (SELECT array_agg(x ORDER BY x) a FROM job_rows(:t0 + i) x) p,
       LATERAL (SELECT array_agg(x ORDER BY x) b FROM job_rows(:t0 + 4 + i) x) q
 WHERE a IS DISTINCT FROM b;
SELECT i AS job, array_agg(x ORDER BY x) AS rows FROM generate_series(0, 3) i, job_rows(:t0 + i) x GROUP BY i ORDER BY i;
SELECT * FROM books();
DROP FUNCTION job_rows(bigint);

-------------------------------------------------------------------------------------------------------
-- A balance threshold is announced once when a batch crosses it (one debit, a row per stake)
-------------------------------------------------------------------------------------------------------
SELECT modelmine.set_notification_prefs(ARRAY['balance_low'], true, 500) IS NOT NULL AS prefs_set;
SELECT modelmine.balance() AS before;
-- 10 stakes of 20: the balance goes from 724 to 524 (above 500), then 5 more from 524 to 424
SELECT count(*) AS submitted FROM modelmine.submit_jobs(
    (SELECT jsonb_agg(jsonb_build_object('title', 'small ' || i, 'config', '{"trainer": "noop"}'::jsonb, 'stake', 20))
       FROM generate_series(1, 10) i));
SELECT count(*) AS announced FROM modelmine.outbox WHERE event = 'balance_low';
SELECT count(*) AS submitted FROM modelmine.submit_jobs(
    (SELECT jsonb_agg(jsonb_build_object('title', 'more ' || i, 'config', '{"trainer": "noop"}'::jsonb, 'stake', 20))
       FROM generate_series(1, 5) i));
-- crossed by the second stake (504 to 484): announced once, with the balance after it
SELECT payload - 'job_id' AS payload, (payload ->> 'job_id')::bigint = (SELECT id FROM modelmine.jobs WHERE title = 'more 2')
       AS by_the_second_stake
  FROM modelmine.outbox WHERE event = 'balance_low' AND channel = 'email';
SELECT * FROM books();

-------------------------------------------------------------------------------------------------------
-- Deadlines and requirements, as submit_job takes them; placement checked per distinct need
-------------------------------------------------------------------------------------------------------
SELECT modelmine.signup('ops@example.com', 'ops password') AS ops \gset
SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password')) AS ops_signed_in;
SELECT node_id AS big FROM modelmine.register_node('big',
    '{"trainers": ["noop"], "slots": 4, "memory_mb": 8192, "cores": 4, "labels": ["gpu"]}') \gset
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
SELECT count(*) AS submitted, min(job_id) AS d0 FROM modelmine.submit_jobs('[
    {"title": "timed", "config": {"trainer": "noop"}, "stake": 1, "start_by": "2099-01-01T00:00:00Z",
     "finish_by": "2099-01-02T00:00:00Z", "requirements": {"memory_mb": 4096, "cores": 2, "labels": ["gpu"]}},
    {"title": "timed too", "config": {"trainer": "noop"}, "stake": 1, "finish_by": "2099-01-02T00:00:00Z",
     "requirements": {"memory_mb": 4096, "cores": 2, "labels": ["gpu"]}}]') \gset
SELECT :submitted AS submitted;
SELECT modelmine.submit_job('timed', '{"trainer": "noop"}', NULL, 1, NULL, '2099-01-01T00:00:00Z',
                            '2099-01-02T00:00:00Z', '{"memory_mb": 4096, "cores": 2, "labels": ["gpu"]}')
       AS twin \gset
SELECT a.start_by IS NOT DISTINCT FROM b.start_by AND a.finish_by = b.finish_by
       AND a.need_memory_mb = b.need_memory_mb AND a.need_cores = b.need_cores AND a.need_labels = b.need_labels
       AS same_as_submit_job, a.start_by, a.finish_by, a.need_memory_mb, a.need_cores, a.need_labels
  FROM modelmine.jobs a, modelmine.jobs b WHERE a.id = :d0 AND b.id = :twin;
SELECT start_by IS NULL AS no_start_by, finish_by FROM modelmine.jobs WHERE id = :d0 + 1;
SELECT * FROM books();
-- refusals name the element; nothing staked
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "stake": 1},
    {"title": "huge", "config": {"trainer": "noop"}, "requirements": {"memory_mb": 99999}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"},
    "requirements": {"labels": ["tpu"]}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"},
    "requirements": {"ram": 5}}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"},
    "start_by": "2000-01-01T00:00:00Z"}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"},
    "start_by": "2099-01-02T00:00:00Z", "finish_by": "2099-01-01T00:00:00Z"}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"},
    "start_by": "not a time"}]')$$);
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"},
    "finish_by": 20990101}]')$$);
SELECT * FROM books();
-- jobs with and without labels in one batch: each keeps its own (none: {})
SELECT min(job_id) AS l0 FROM modelmine.submit_jobs('[
    {"title": "l1", "config": {"trainer": "noop"}, "stake": 1, "requirements": {"labels": ["gpu"]}},
    {"title": "l2", "config": {"trainer": "noop"}, "stake": 1},
    {"title": "l3", "config": {"trainer": "noop"}, "stake": 1, "requirements": {"labels": ["gpu", "gpu"]}}]') \gset
SELECT string_agg(title || ' ' || need_labels::text, ', ' ORDER BY id) AS labels
  FROM modelmine.jobs WHERE id >= :l0;
SELECT * FROM books();

-------------------------------------------------------------------------------------------------------
-- Who may call it
-------------------------------------------------------------------------------------------------------
SELECT modelmine.deauthenticate();
SELECT * FROM err($$SELECT * FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}}]')$$);
SELECT has_function_privilege('public', 'modelmine.submit_jobs(jsonb)', 'EXECUTE') AS public_may_call,
       has_function_privilege('modelmine_user', 'modelmine.submit_jobs(jsonb)', 'EXECUTE') AS users_may_call,
       has_function_privilege('modelmine_node', 'modelmine.submit_jobs(jsonb)', 'EXECUTE') AS nodes_may_call;
DROP FUNCTION books();
