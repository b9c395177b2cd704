-- hardening: what an attacker tried against 1.0 (a signed-up user, a node, an operator), each case
-- reproduced here and refused or harmless now.  The lock-hostage attacks need two sessions: they are
-- in regress/specs/lock-hostage.spec; the ledger's reason text in ledger.sql; display names, slots and
-- the unleaked lease errors in nodes.sql; role changes and login timing in auth.sql.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';  -- fold at every commit: the counts below are exact

SELECT modelmine.signup('mallory@example.com', 'mallory password') AS mallory,
       modelmine.signup('ops@example.com', 'ops password') AS ops,
       modelmine.signup('vic@example.com', 'vic password') AS vic;
SELECT modelmine.login('mallory@example.com', 'mallory password') AS tok_m \gset
SELECT modelmine.login('ops@example.com', 'ops password') AS tok_ops \gset
SELECT modelmine.login('vic@example.com', 'vic password') AS tok_v \gset

-------------------------------------------------------------------------------------------------------
-- Work hoarding.  1.0: a node advertising a runner nobody else had claimed 100 jobs three times and
-- kept all of them alive with heartbeats, and release_job gave the attempt back.  Now a node holds at
-- most the slots it declared, heartbeats keep no lease, a release counts as an attempt, and a node in
-- MAINTENANCE or OFFLINE gets nothing.
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ops');
SELECT node_id AS hoarder, node_key AS key_h
  FROM modelmine.register_node('hoarder', '{"runners": ["rare"], "slots": 2}') \gset
SELECT modelmine.authenticate(:'tok_v');
SELECT count(modelmine.submit_job('rare ' || i, '{"runner": "rare"}', NULL, 1)) AS submitted
  FROM generate_series(1, 120) i;
SELECT modelmine.authenticate_node(:'key_h') = :hoarder AS bound, modelmine.heartbeat(1, 1, 2) AS holds;
-- Three greedy claims: two jobs, then none, then none.
SELECT count(*) AS first_claim FROM modelmine.claim_jobs(100, 3600);
SELECT count(*) AS second_claim FROM modelmine.claim_jobs(100, 3600);
SELECT count(*) AS third_claim FROM modelmine.claim_jobs(100, 3600);
SELECT count(*) AS running FROM modelmine.jobs WHERE status = 'RUNNING';
-- Heartbeats keep listing the jobs but extend no lease: once the leases run out, anyone's next claim
-- takes them back (moved back by hand here).
SELECT cardinality(modelmine.heartbeat(1, 1, 2)) AS still_listed;
UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE status = 'RUNNING';
SELECT cardinality(modelmine.heartbeat(1, 1, 2)) AS listed_after_expiry;
-- Release and claim again, over and over: each claim is an attempt, and a release on the last one
-- (max_attempts, 3) fails the job and refunds its owner instead of handing it back.
SELECT job_id AS hoarded, attempt AS second_attempt FROM modelmine.claim_jobs(1, 3600) \gset
SELECT :second_attempt AS second_attempt, count(*) AS other_claimed FROM modelmine.claim_jobs(1, 3600);
SELECT modelmine.release_job(:hoarded);
SELECT attempt AS third_attempt FROM modelmine.claim_jobs(1, 3600) WHERE job_id = :hoarded;
SELECT modelmine.release_job(:hoarded);
SELECT status, attempts, error FROM modelmine.jobs WHERE id = :hoarded;
SELECT reason, amount FROM modelmine.journal WHERE job_id = :hoarded ORDER BY id;

-- MAINTENANCE, reported by the node (a draining worker) or set by its operator: claims give nothing.
SELECT count(*) AS running FROM modelmine.jobs WHERE status = 'RUNNING' AND node_id = :hoarder;
SELECT modelmine.fail_job(id, 'not really run') IS NOT NULL AS failed
  FROM modelmine.jobs WHERE status = 'RUNNING' AND node_id = :hoarder;
SELECT modelmine.heartbeat(1, 1, 2, 'MAINTENANCE') AS holds;
SELECT count(*) AS claimed_in_reported_maintenance FROM modelmine.claim_jobs(2, 3600);
SELECT modelmine.authenticate(:'tok_ops');
SELECT modelmine.set_node_maintenance(:hoarder) AS status;
SELECT modelmine.authenticate_node(:'key_h') = :hoarder AS bound;
-- the operator's choice outlasts the node's own report of ONLINE
SELECT modelmine.heartbeat(1, 1, 2, 'ONLINE') AS holds;
SELECT status FROM modelmine.nodes() WHERE id = :hoarder;
SELECT count(*) AS claimed_in_operator_maintenance FROM modelmine.claim_jobs(2, 3600);
SELECT modelmine.authenticate(:'tok_ops');
SELECT modelmine.set_node_maintenance(:hoarder, false) AS status;
-- Only the operator may, and bad input is refused.
SELECT modelmine.authenticate(:'tok_m');
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('someone else''s node', format('SELECT modelmine.set_node_maintenance(%s)', :hoarder)),
               ('no such node', 'SELECT modelmine.set_node_maintenance(999999)'),
               ('node_id NULL', 'SELECT modelmine.set_node_maintenance(NULL)'),
               ('maintenance NULL', format('SELECT modelmine.set_node_maintenance(%s, NULL)', :hoarder))) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- OFFLINE (no heartbeat for offline_after_seconds): a claim is refused, saying why.
SELECT modelmine.authenticate_node(:'key_h') = :hoarder AS bound;
UPDATE modelmine.nodes SET last_seen = now() - interval '16 seconds' WHERE id = :hoarder;
SELECT * FROM err('SELECT * FROM modelmine.claim_jobs(2, 3600)');
SELECT modelmine.heartbeat(1, 1, 2) AS holds;
SELECT count(*) AS claimed_when_online_again FROM modelmine.claim_jobs(2, 3600);

-- A node may register at most max_nodes_per_operator nodes (1 here, for the test).
UPDATE modelmine.settings SET value = 1 WHERE name = 'max_nodes_per_operator';
SELECT modelmine.authenticate(:'tok_m');
SELECT node_id > 0 AS first_node FROM modelmine.register_node('m1');
SELECT * FROM err($$SELECT * FROM modelmine.register_node('m2')$$);
SELECT count(*) AS mallorys_nodes FROM modelmine.my_nodes();
UPDATE modelmine.settings SET value = 100 WHERE name = 'max_nodes_per_operator';

-------------------------------------------------------------------------------------------------------
-- Progress: stored on every report, announced at most once per progress_notify_ms per job (1.0 sent a
-- NOTIFY per report, so a node could fill the NOTIFY queue).  progress_notified_at marks an
-- announcement; report_progress raises job:{id}:progress exactly when it moves.
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate_node(:'key_h') = :hoarder AS bound;
SELECT id AS pj FROM modelmine.jobs WHERE status = 'RUNNING' AND node_id = :hoarder ORDER BY id LIMIT 1 \gset
SELECT modelmine.report_progress(:pj, 10) IS NOT NULL AS reported;
SELECT progress, progress_notified_at AS first_announced FROM modelmine.jobs WHERE id = :pj \gset
SELECT modelmine.report_progress(:pj, 20) IS NOT NULL AS reported, modelmine.report_progress(:pj, 30) IS NOT NULL AS reported_again;
SELECT progress AS stored, progress_notified_at = :'first_announced' AS not_announced_again FROM modelmine.jobs WHERE id = :pj;
-- Once progress_notify_ms has passed (the last announcement moved back by hand), the next is announced.
UPDATE modelmine.jobs SET progress_notified_at = progress_notified_at - interval '1 second' WHERE id = :pj;
SELECT modelmine.report_progress(:pj, 40) IS NOT NULL AS reported;
SELECT progress AS stored, progress_notified_at > :'first_announced' AS announced FROM modelmine.jobs WHERE id = :pj;

-------------------------------------------------------------------------------------------------------
-- Amortised folding: with fold_interval_ms set, a backend folds appended credits and statistics at
-- most that often when a write commits.  Readers still see exact figures (folded plus unfolded), and a
-- reader's commit folds at once.  (This file otherwise folds at every commit: fold_interval_ms 0.)
-------------------------------------------------------------------------------------------------------
UPDATE modelmine.settings SET value = 60000 WHERE name = 'fold_interval_ms';
SELECT modelmine.authenticate(:'tok_v');
SELECT modelmine.balance() AS vic_before \gset
SELECT jobs_pending AS pending_before FROM modelmine.network_stats() \gset
SELECT modelmine.submit_job('amortised ' || i, '{"trainer": "noop"}', NULL, 5) > 0 AS submitted FROM generate_series(1, 3) i;
SELECT modelmine.submit_job('amortised 4', '{"trainer": "noop"}', NULL, 5) > 0 AS submitted_alone;
SELECT (SELECT count(*) FROM modelmine.job_stat_deltas) AS unfolded_stats,
       (SELECT count(*) FROM modelmine.account_deltas) AS unfolded_credits;
SELECT :vic_before - modelmine.balance() AS vic_staked, jobs_pending - :pending_before AS pending_added
  FROM modelmine.network_stats();
SELECT (SELECT count(*) FROM modelmine.job_stat_deltas) AS unfolded_after_a_reader,
       (SELECT count(*) FROM modelmine.account_deltas) AS credits_after_a_reader;
SELECT count(*) AS violations FROM modelmine.check_invariants();
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';
SELECT modelmine.authenticate_node(:'key_h') = :hoarder AS bound;

-------------------------------------------------------------------------------------------------------
-- One reading of results: 1.0 accepted an accuracy that underflows a double (0.000...1) and then failed
-- in the statistics trigger.  Now validation and statistics read it the same way (as 0).
-------------------------------------------------------------------------------------------------------
SELECT modelmine.complete_job(:pj, jsonb_build_object('accuracy', ('0.' || repeat('0', 400) || '1')::numeric,
                                                      'loss', 0.5, 'epochs', 1)) AS reward;
SELECT status, length(result ->> 'accuracy') AS accuracy_digits FROM modelmine.jobs WHERE id = :pj;
SELECT average_accuracy FROM modelmine.network_stats();

-------------------------------------------------------------------------------------------------------
-- Overflowing the books' statistics.  1.0: with an admin-minted balance of 10^15, 9,300 submit + cancel
-- pairs of stake 10^15 pushed the all-time stake sum past bigint and the statistics fold failed for
-- good, taking claim_jobs, network_stats, dashboard and job_timeline down for everyone.  All-time sums
-- are numeric now; supply and single stakes are capped.
-------------------------------------------------------------------------------------------------------
-- The caps, with clear errors: max_supply (10^15) for mints and signup grants, max_stake per job.
SELECT (SELECT -balance FROM modelmine.account_balances WHERE id = 1) AS issued \gset
SELECT * FROM err(format('SELECT modelmine.mint(%L, %s)', 'mallory@example.com', 1000000000000000 - :issued + 1));
SELECT modelmine.mint('mallory@example.com', 1000000000000000 - :issued) > 0 AS minted_to_the_cap;
SELECT * FROM err($$SELECT modelmine.signup('late@example.com', 'late password')$$);
SELECT count(*) AS late_users FROM modelmine.users WHERE email = 'late@example.com';
UPDATE modelmine.settings SET value = 1000000 WHERE name = 'max_stake';
SELECT modelmine.authenticate(:'tok_m');
SELECT * FROM err('SELECT modelmine.submit_job(''big'', ''{}'', NULL, 1000001)');
UPDATE modelmine.settings SET value = 1000000000000000 WHERE name = 'max_stake';
-- The attack itself: 9,300 pairs at a stake of nearly 10^15 (all Mallory has), committed 100 at a time.
DO $$
BEGIN
    FOR i IN 1..9300 LOOP
        PERFORM modelmine.cancel_job(modelmine.submit_job('x', '{"trainer": "noop"}', NULL, 999999999000000));
        IF i % 100 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;
-- Readers and claims work, the sums are exact, and the books balance.
SELECT staked_all_time, staked_all_time > 9223372036854775807 AS beyond_bigint, jobs_canceled
  FROM modelmine.network_stats();
SELECT sum(jobs) AS canceled_this_month FROM modelmine.job_timeline(1) WHERE status = 'CANCELED';
SELECT d -> 'jobs' -> 'CANCELED' AS mallory_canceled FROM modelmine.dashboard() d;
SELECT modelmine.authenticate_node(:'key_h') = :hoarder AS bound, modelmine.heartbeat(1, 1, 2) AS holds;
SELECT count(*) AS claim_works FROM modelmine.claim_jobs(1, 60);
SELECT count(*) AS unfolded_deltas FROM modelmine.job_stat_deltas;
SELECT * FROM modelmine.check_invariants();

-- A fold that cannot be done (the folded FAILED count tampered to the top of bigint, then one more job
-- fails) is skipped at commit with a WARNING and takes nothing down: the failure that carried it
-- commits, the next claim works, and check_invariants() says why the deltas wait.
UPDATE modelmine.job_stats SET jobs = 9223372036854775807
 WHERE status = 'FAILED' AND month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
RETURNING jobs AS tampered_failed_jobs;
SELECT modelmine.fail_job(id, 'gave up') AS refund FROM modelmine.jobs
 WHERE status = 'RUNNING' AND node_id = :hoarder ORDER BY id LIMIT 1;
SELECT modelmine.heartbeat(1, 1, 2) AS holds;
SELECT count(*) AS claimed FROM modelmine.claim_jobs(1, 60);
SELECT count(*) > 0 AS deltas_wait FROM modelmine.job_stat_deltas;
SELECT invariant FROM modelmine.check_invariants() GROUP BY invariant ORDER BY invariant;

DROP FUNCTION err(text);
