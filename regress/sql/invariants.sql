-- invariants: check_invariants_incremental() (issue 20).  The first run is the full check and takes a
-- checkpoint; later runs check what changed since it and advance it only while they find nothing.
-- The bases it advances equal the bases a full run builds from scratch; each kind of damage made
-- after the checkpoint is reported, with check_invariants()'s names; what it does not read again (a job
-- finished before the checkpoint, changed behind the triggers' back) the full run finds.  The wait for
-- open transactions is in regress/specs/invariants-wait.spec.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- fold at every commit: the tampering below edits job_stats rows, which an amortised fold (at most
-- once per fold_interval_ms per backend) may not have written yet when the statements run fast
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ben@example.com', 'ben password') AS ben,
       modelmine.signup('ops@example.com', 'ops password') AS ops, modelmine.signup('adm@example.com', 'adm password') AS adm;
SELECT modelmine.set_user_role('adm@example.com', 'admin');
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset
SELECT modelmine.login('adm@example.com', 'adm password') AS tok_adm \gset
SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password')) AS ops;
SELECT node_id, node_key FROM modelmine.register_node('node 1', '{"trainers": ["noop"], "slots": 8}') \gset
-- some history: ann's jobs completed, failed, canceled, running and pending; ben's completed
CREATE FUNCTION work(who text, n integer, complete integer, fail integer, cancel integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM modelmine.authenticate(who);
    SELECT array_agg(modelmine.submit_job('job ' || i, '{"trainer": "noop"}', NULL, 10 + i) ORDER BY i)
      INTO ids FROM generate_series(1, n) i;
    PERFORM modelmine.cancel_job(x) FROM unnest(ids[1:cancel]) x;
    PERFORM modelmine.authenticate_node(current_setting('regress.node_key'));
    PERFORM modelmine.heartbeat(5, 100, 1000);
    PERFORM modelmine.claim_jobs(n, 300);
    PERFORM modelmine.complete_job(x, jsonb_build_object('accuracy', 0.5 + x / 1000.0, 'loss', 0.1, 'epochs', 1))
       FROM unnest(ids[cancel + 1:cancel + complete]) x;
    PERFORM modelmine.fail_job(x, 'out of memory') FROM unnest(ids[cancel + complete + 1:cancel + complete + fail]) x;
END
$$;
SELECT set_config('regress.node_key', :'node_key', false) IS NOT NULL AS node_key_set;
SELECT work(:'tok_ann', 8, 4, 1, 1), work(:'tok_ben', 3, 3, 0, 0);
SELECT status, count(*) FROM modelmine.jobs GROUP BY 1 ORDER BY 1;
-- what the checkpoint says, in a form that does not depend on ids
CREATE VIEW checkpoint AS
    SELECT c.journal_id = (SELECT max(id) FROM modelmine.journal) AS journal_all,
           c.job_id = (SELECT max(id) FROM modelmine.jobs) AS jobs_all,
           c.ledger_height = (SELECT COALESCE(max(height), 0) FROM modelmine.ledger) AS ledger_all,
           c.fees_paid, c.full_at = c.taken_at AS taken_by_full_run,
           (SELECT count(*) FROM modelmine.invariant_open_jobs) AS open_jobs
      FROM modelmine.invariant_checkpoint c;

-------------------------------------------------------------------------------------------------------
-- Only admins; the first run is a full one
-------------------------------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_inv_user;
DROP ROLE IF EXISTS regress_mm_inv_admin;
RESET client_min_messages;
CREATE ROLE regress_mm_inv_user;
GRANT modelmine_user TO regress_mm_inv_user;
CREATE ROLE regress_mm_inv_admin;
GRANT modelmine_admin TO regress_mm_inv_admin;
SET ROLE regress_mm_inv_user;
SELECT * FROM err('SELECT * FROM modelmine.check_invariants_incremental()');
SELECT * FROM err('SELECT * FROM modelmine.invariant_checkpoint');
RESET ROLE;
SELECT * FROM checkpoint;
SET ROLE regress_mm_inv_admin;
SELECT * FROM modelmine.check_invariants_incremental();
RESET ROLE;
-- a checkpoint over everything so far: the running and pending jobs are recounted on every run
SELECT * FROM checkpoint;

-------------------------------------------------------------------------------------------------------
-- More work, then an incremental run: nothing found, the checkpoint moves up
-------------------------------------------------------------------------------------------------------
SELECT work(:'tok_ben', 4, 2, 1, 1);
SELECT modelmine.seal_ledger(100) >= 0 AS sealed;
SELECT * FROM modelmine.check_invariants_incremental();
SELECT * FROM checkpoint;
SELECT work(:'tok_ann', 2, 2, 0, 0);
SELECT * FROM modelmine.check_invariants_incremental();
SELECT * FROM checkpoint;
-- The bases the runs advanced equal the bases a full run builds from scratch.
-- bases: every row of the bases as text, to compare two states
CREATE TEMP VIEW bases AS
    SELECT 'job ' || month || ' ' || status AS k, jobs::text || '/' || stake || '/' || acc_n || '/' || round(acc_sum::numeric, 9) AS v
      FROM modelmine.invariant_job_base
    UNION ALL SELECT 'user ' || user_id || ' ' || status, jobs || '/' || stake FROM modelmine.invariant_user_base
    UNION ALL SELECT 'account ' || account_id, net::text FROM modelmine.invariant_account_nets
    UNION ALL SELECT 'withdrawals ' || user_id, held || '/' || released FROM modelmine.invariant_withdrawal_sums
    UNION ALL SELECT 'open ' || job_id, '' FROM modelmine.invariant_open_jobs;
CREATE TEMP TABLE advanced AS SELECT * FROM bases;
SELECT * FROM modelmine.check_invariants_incremental(full => true);
SELECT * FROM checkpoint;
CREATE TEMP TABLE rebuilt AS SELECT * FROM bases;
SELECT (SELECT count(*) FROM rebuilt) AS rows, (SELECT count(*) FROM (SELECT * FROM advanced EXCEPT SELECT * FROM rebuilt) x) AS only_advanced,
       (SELECT count(*) FROM (SELECT * FROM rebuilt EXCEPT SELECT * FROM advanced) x) AS only_rebuilt;

-------------------------------------------------------------------------------------------------------
-- Damage made after the checkpoint is found (each in a transaction rolled back, as the superuser
-- with the guarding triggers off), and the checkpoint stays where it was
-------------------------------------------------------------------------------------------------------
-- a balance changed without a journal row
BEGIN;
UPDATE modelmine.accounts SET balance = balance + 5 WHERE user_id = 1;
SELECT invariant, detail LIKE 'account % (user): balance %, journal says %' AS names_account
  FROM modelmine.check_invariants_incremental() ORDER BY 1;
SELECT journal_all, taken_by_full_run FROM checkpoint;
ROLLBACK;
-- a job that finished before the checkpoint paid a second time (the journal row and both balances
-- agree, so only the job's own books show it)
BEGIN;
SELECT id AS old_job, (SELECT a.id FROM modelmine.accounts a WHERE a.node_id = :node_id) AS node_account
  FROM modelmine.jobs WHERE status = 'COMPLETED' ORDER BY id LIMIT 1 \gset
INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, job_id)
SELECT 1, :node_account, 7, 'reward', :old_job;
UPDATE modelmine.accounts SET balance = balance + 7 WHERE id = :node_account;
UPDATE modelmine.accounts SET balance = balance - 7 WHERE id = 1;
SELECT invariant, detail ~ '^job \d+ \(COMPLETED, stake \d+\): staked \d+, refunded 0, paid out \d+$' AS names_job
  FROM modelmine.check_invariants_incremental() ORDER BY 1;
ROLLBACK;
-- a running job marked COMPLETED behind the statistics and the books: escrow and the statistics
-- show it (its settlement and ledger record are checked again when its money moves; the full check
-- names them at once)
BEGIN;
ALTER TABLE modelmine.jobs DISABLE TRIGGER USER;
UPDATE modelmine.jobs SET status = 'COMPLETED' WHERE id = (SELECT min(id) FROM modelmine.jobs WHERE status = 'RUNNING');
SELECT invariant FROM modelmine.check_invariants_incremental() GROUP BY 1 ORDER BY 1;
ROLLBACK;
-- the maintained monthly statistics changed
BEGIN;
UPDATE modelmine.job_stats SET jobs = jobs + 1 WHERE status = 'FAILED';
SELECT invariant FROM modelmine.check_invariants_incremental() ORDER BY 1;
ROLLBACK;
-- a job completed since the checkpoint lost its ledger record (sealed or still queued)
SELECT work(:'tok_ann', 1, 1, 0, 0);
BEGIN;
ALTER TABLE modelmine.ledger DISABLE TRIGGER USER;
DELETE FROM modelmine.ledger_queue WHERE job_id = (SELECT max(id) FROM modelmine.jobs);
DELETE FROM modelmine.ledger WHERE job_id = (SELECT max(id) FROM modelmine.jobs);
SELECT invariant, detail ~ '^job \d+ \(COMPLETED\) has 0 ledger records$' AS names_job
  FROM modelmine.check_invariants_incremental();
ROLLBACK;
-- Every user's statistics are compared, also those of a user with no job in play.
BEGIN;
UPDATE modelmine.user_job_stats SET jobs = jobs + 1 WHERE user_id = 2 AND status = 'COMPLETED';
SELECT invariant FROM modelmine.check_invariants_incremental();
ROLLBACK;
-- What an incremental run does not read again: a job that had finished by the checkpoint, changed
-- behind the triggers' back (its stake, against its journal rows and the statistics, which both still
-- count the old one).  The full run finds it.
BEGIN;
ALTER TABLE modelmine.jobs DISABLE TRIGGER jobs_transition_guard;
UPDATE modelmine.jobs SET stake = stake + 1 WHERE id = (SELECT min(id) FROM modelmine.jobs WHERE status = 'FAILED');
SELECT count(*) AS incremental_finds FROM modelmine.check_invariants_incremental();
SELECT invariant FROM modelmine.check_invariants_incremental(full => true) ORDER BY 1;
ROLLBACK;
-- A violation keeps being reported (the checkpoint did not move past it), until it is repaired.
BEGIN;
UPDATE modelmine.accounts SET balance = balance + 5 WHERE user_id = 1;
SELECT count(*) AS first_run FROM modelmine.check_invariants_incremental();
SELECT count(*) AS second_run FROM modelmine.check_invariants_incremental();
UPDATE modelmine.accounts SET balance = balance - 5 WHERE user_id = 1;
SELECT count(*) AS repaired FROM modelmine.check_invariants_incremental();
ROLLBACK;
-- A REPEATABLE READ transaction took its snapshot before the check could wait: refused.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM err('SELECT * FROM modelmine.check_invariants_incremental()');
ROLLBACK;
-- Healthy again, and the checkpoint still agrees with a full rebuild.
SELECT * FROM modelmine.check_invariants_incremental();
SELECT * FROM checkpoint;
SELECT * FROM modelmine.check_invariants();
DROP VIEW checkpoint;
DROP FUNCTION work(text, integer, integer, integer, integer);
