-- stats: network_stats, job_timeline, token_distribution, nodes, node_stats, the admin views, and the
-- maintained job statistics behind them (insert-only deltas folded into job_stats and user_job_stats,
-- extension/stats.c).
-- The data set is built through the real API; every figure below is computed by hand in a comment.
-- Public statistics are read as a login role in modelmine_anon, user calls as one in modelmine_user,
-- node calls as one in modelmine_node, admin reads as one in modelmine_admin; times and tampering as
-- the superuser.  Months are counted back from the current UTC month (months_ago 0 = this month), so
-- the expected output does not depend on today's date.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_stats_anon;
DROP ROLE IF EXISTS regress_mm_stats_user;
DROP ROLE IF EXISTS regress_mm_stats_node;
DROP ROLE IF EXISTS regress_mm_stats_admin;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- Fold at every commit (not at most every fold_interval_ms), so this file can show what is left unfolded.
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';
-- How many months before the current UTC month a month is (0 = this month).
CREATE OR REPLACE FUNCTION months_ago(m date) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT ((date_part('year', c) - date_part('year', m)) * 12 + date_part('month', c) - date_part('month', m))::integer
      FROM (SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date AS c) x
$$;
-- The first day (UTC) of the month k months back, plus one day, as a timestamptz.
CREATE OR REPLACE FUNCTION in_month(k integer) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => k) + interval '1 day') AT TIME ZONE 'UTC'
$$;
-- job_timeline(n) one line per month, in the order the rows came back: the row numbers of the month's
-- first and last rows, its statuses and counts.
CREATE OR REPLACE FUNCTION timeline(n integer)
    RETURNS TABLE (months_ago integer, first_row bigint, last_row bigint, first_day boolean, statuses text[], jobs bigint[])
    LANGUAGE sql AS $$
    SELECT months_ago(t.month), min(t.ord), max(t.ord), bool_and(date_part('day', t.month) = 1),
           array_agg(t.status ORDER BY t.ord), array_agg(t.jobs ORDER BY t.ord)
      FROM modelmine.job_timeline(n) WITH ORDINALITY t(month, status, jobs, ord)
     GROUP BY t.month ORDER BY min(t.ord)
$$;
-- check_invariants() with the month in a job_stats detail replaced by months_ago.
CREATE OR REPLACE FUNCTION invariants() RETURNS TABLE (invariant text, months_ago integer, detail text)
    LANGUAGE sql AS $$
    SELECT i.invariant,
           CASE WHEN i.invariant = 'job_stats_match_jobs' THEN months_ago(split_part(i.detail, ' ', 1)::date) END,
           CASE WHEN i.invariant = 'job_stats_match_jobs' THEN substr(i.detail, strpos(i.detail, ' ') + 1) ELSE i.detail END
      FROM modelmine.check_invariants() i ORDER BY 1, 2, 3
$$;
-- The folded statistics as stored (the deltas not folded yet are in modelmine.job_stat_deltas).
CREATE OR REPLACE VIEW job_stats AS
    SELECT months_ago(month) AS months_ago, status, jobs, stake, accuracy_sum, accuracy_n
      FROM modelmine.job_stats WHERE jobs <> 0 OR stake <> 0 ORDER BY month, status;
CREATE OR REPLACE VIEW user_job_stats AS
    SELECT u.email, s.status, s.jobs, s.stake
      FROM modelmine.user_job_stats s JOIN modelmine.users u ON u.id = s.user_id
     WHERE s.jobs <> 0 OR s.stake <> 0 ORDER BY u.email, s.status;

CREATE ROLE regress_mm_stats_anon LOGIN;
GRANT modelmine_anon TO regress_mm_stats_anon;
CREATE ROLE regress_mm_stats_user LOGIN;
GRANT modelmine_user TO regress_mm_stats_user;
CREATE ROLE regress_mm_stats_node LOGIN;
GRANT modelmine_node TO regress_mm_stats_node;
CREATE ROLE regress_mm_stats_admin LOGIN;
GRANT modelmine_admin TO regress_mm_stats_admin;

-------------------------------------------------------------------------------------------------------
-- An empty network
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_stats_anon;
-- No node, no job: every count and sum is 0, the average accuracy NULL (there is nothing to average).
SELECT * FROM modelmine.network_stats();
-- Six months, each with all five statuses at 0: oldest first (months_ago 5 .. 0), the current month
-- last, the statuses of a month on five consecutive rows in enum order, every month its first day.
SELECT * FROM timeline(6);
SELECT (SELECT count(*) FROM modelmine.token_distribution()) AS token_rows,
       (SELECT count(*) FROM modelmine.nodes()) AS node_rows;
SELECT * FROM err('SELECT modelmine.node_stats(999)');
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- Bad arguments: 22023 with what was given and what to pass; nothing is read
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_stats_anon;
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('job_timeline 0', 'SELECT * FROM modelmine.job_timeline(0)'),
               ('job_timeline 121', 'SELECT * FROM modelmine.job_timeline(121)'),
               ('job_timeline NULL', 'SELECT * FROM modelmine.job_timeline(NULL)'),
               ('token_distribution 0', 'SELECT * FROM modelmine.token_distribution(0)'),
               ('token_distribution 1001', 'SELECT * FROM modelmine.token_distribution(1001)'),
               ('token_distribution NULL', 'SELECT * FROM modelmine.token_distribution(NULL)'),
               ('nodes -1', 'SELECT * FROM modelmine.nodes(-1)'),
               ('nodes 1001', 'SELECT * FROM modelmine.nodes(1001)'),
               ('nodes NULL', 'SELECT * FROM modelmine.nodes(NULL)'),
               ('nodes skip -1', 'SELECT * FROM modelmine.nodes(10, -1)'),
               ('nodes skip NULL', 'SELECT * FROM modelmine.nodes(10, NULL)'),
               ('node_stats window 0', 'SELECT modelmine.node_stats(1, 0)'),
               ('node_stats window 8761', 'SELECT modelmine.node_stats(1, 8761)'),
               ('node_stats window NULL', 'SELECT modelmine.node_stats(1, NULL)'),
               ('node_stats window -24', 'SELECT modelmine.node_stats(1, -24)')) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- The bounds themselves are accepted: 1 and 120 months (5 and 600 rows), 1 and 1000 nodes, a page of 0.
SELECT (SELECT count(*) FROM modelmine.job_timeline(1)) AS one_month,
       (SELECT count(*) FROM modelmine.job_timeline(120)) AS ten_years,
       (SELECT count(*) FROM modelmine.token_distribution(1)) AS top_1,
       (SELECT count(*) FROM modelmine.token_distribution(1000)) AS top_1000,
       (SELECT count(*) FROM modelmine.nodes(0)) AS page_0,
       (SELECT count(*) FROM modelmine.nodes(1000, 0)) AS page_1000;
-- The window is checked before the node is looked up: a bad window on a missing node is 22023.
SELECT * FROM err('SELECT modelmine.node_stats(999, 0)');
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- The data set, through the API
-------------------------------------------------------------------------------------------------------
-- Two users with the 1000-token signup grant: ann submits jobs, ben operates three nodes and submits too.
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ben@example.com', 'ben password') AS ben;
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset

-- Nodes: alpha trains mlp, beta logreg, gamma logreg and noop (a trainer whose result has no accuracy),
-- three jobs at once.
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ben');
SELECT node_id AS alpha, node_key AS key_alpha FROM modelmine.register_node('alpha', '{"trainers": ["mlp"]}') \gset
SELECT node_id AS beta, node_key AS key_beta FROM modelmine.register_node('beta', '{"trainers": ["logreg"]}') \gset
SELECT node_id AS gamma, node_key AS key_gamma FROM modelmine.register_node('gamma', '{"trainers": ["logreg", "noop"], "slots": 3}') \gset
SELECT :alpha AS alpha, :beta AS beta, :gamma AS gamma;
RESET ROLE;

-- Registered nodes that never sent a heartbeat: OFFLINE, 0 % uptime over the 24 h window (which starts
-- at registration), reputation 0, nothing earned.  network_stats counts them, none online.
SET ROLE regress_mm_stats_anon;
SELECT id, name, status, cpu_load, memory_used_mb, memory_total_mb, last_seen, uptime_pct, jobs_handled,
       jobs_completed, jobs_failed, tokens_earned, reputation, window_hours
  FROM modelmine.nodes();
SELECT nodes_online, nodes_total FROM modelmine.network_stats();
RESET ROLE;

-- Jobs (stake, then what happens to it; reward = floor(stake * 80 / 100), fee = stake - reward):
--   1 ann logreg 100  gamma completes, accuracy 1      reward 80, fee 20
--   2 ann logreg  55  gamma completes, accuracy 0      reward 44, fee 11
--   3 ann noop    33  gamma completes, accuracy null   reward 26, fee  7
--   4 ann mlp      1  alpha completes, accuracy 0.5    reward  0, fee  1
--   5 ann logreg  50  beta fails it                    refund 50
--   6 ann logreg  20  beta holds it                    RUNNING
--   7 ann mlp     10  alpha claims it and gives it back PENDING
--   8 ann logreg  40  ann cancels it while PENDING     refund 40
--   9 ben mlp     15  nobody claims it                 PENDING
--  10 ben mlp      2  priority 5: alpha claims it, ben cancels it while RUNNING   refund 2
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann');
SELECT modelmine.submit_job('one', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}', NULL, 100) AS j1,
       modelmine.submit_job('two', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}', NULL, 55) AS j2,
       modelmine.submit_job('three', '{"trainer": "noop"}', NULL, 33) AS j3;
SET ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_gamma');
SELECT modelmine.heartbeat(10, 1024, 4096);
SELECT job_id, attempt FROM modelmine.claim_jobs(3, 3600) ORDER BY job_id;
SELECT modelmine.complete_job(1, '{"accuracy": 1, "loss": 0.01, "epochs": 10}') AS reward_1,
       modelmine.complete_job(2, '{"accuracy": 0, "loss": 2.5, "epochs": 10}') AS reward_2,
       modelmine.complete_job(3, '{"accuracy": null, "loss": 0, "epochs": 0}') AS reward_3;
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann');
SELECT modelmine.submit_job('four', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 1) AS j4;
SET ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_alpha');
SELECT modelmine.heartbeat(20, 2048, 8192);
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 3600);
SELECT modelmine.complete_job(4, '{"accuracy": 0.5, "loss": 0.7, "epochs": 3}') AS reward_4;
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann');
SELECT modelmine.submit_job('five', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}', NULL, 50) AS j5;
SET ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_beta');
SELECT modelmine.heartbeat(30, 512, 1024, 'BUSY');
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 3600);
SELECT modelmine.fail_job(5, 'out of memory') AS refund_5;
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann');
SELECT modelmine.submit_job('six', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}', NULL, 20) AS j6;
SET ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_beta');
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 3600);
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann');
SELECT modelmine.submit_job('seven', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 10) AS j7,
       modelmine.submit_job('eight', '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}', NULL, 40) AS j8;
SELECT modelmine.cancel_job(8) AS refund_8;
SELECT modelmine.authenticate(:'tok_ben');
SELECT modelmine.submit_job('nine', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 15) AS j9,
       modelmine.submit_job('ten', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 2, 5) AS j10;
SET ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_alpha');
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 3600);
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ben');
SELECT modelmine.cancel_job(10) AS refund_10;
-- fair share would serve ben (one start) before ann (six): a large share puts ann first for job 7
RESET ROLE;
SELECT modelmine.set_user_share('ann@example.com', 1000);
SET ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_alpha');
SELECT job_id, attempt FROM modelmine.claim_jobs(1, 3600);
SELECT modelmine.release_job(7);
RESET ROLE;
SELECT id, status, stake, node_id FROM modelmine.jobs ORDER BY id;

-- The network, with every node's last heartbeat at this transaction's now() (so all three are online
-- whatever the machine's speed):
--   nodes 3 online of 3
--   staked_now      = open stakes = 20 (6) + 10 (7) + 15 (9)                           = 45
--   staked_all_time = 100 + 55 + 33 + 1 + 50 + 20 + 10 + 40 + 15 + 2                 = 326
--   PENDING 2 (7, 9), RUNNING 1 (6), COMPLETED 4 (1-4), FAILED 1 (5), CANCELED 2 (8, 10)
--   average_accuracy = (1 + 0 + 0.5) / 3 = 0.5; job 3 reported none and does not count (counting it
--                      as 0 would give 0.375; skipping the 0 of job 2 would give 0.75)
--   paid_to_nodes = 80 + 44 + 26 + 0 = 150;  network_fees = 20 + 11 + 7 + 1 = 39;  150 + 39 = 189 =
--                   the completed stakes 100 + 55 + 33 + 1.
BEGIN;
SET LOCAL ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_alpha') AS alpha, modelmine.heartbeat(20, 2048, 8192) AS alpha_holds;
SELECT modelmine.authenticate_node(:'key_beta') AS beta, modelmine.heartbeat(30, 512, 1024, 'BUSY') AS beta_holds;
SELECT modelmine.authenticate_node(:'key_gamma') AS gamma, modelmine.heartbeat(10, 1024, 4096) AS gamma_holds;
SET LOCAL ROLE regress_mm_stats_anon;
SELECT * FROM modelmine.network_stats();
-- token_distribution: tokens desc, then id: gamma 150 (80 + 44 + 26), then alpha 0 before beta 0 (ids
-- 1 < 2).  The limit takes the top rows.
SELECT * FROM modelmine.token_distribution();
SELECT * FROM modelmine.token_distribution(1);
-- nodes(): by id, a page at a time, each with the status and load of its last heartbeat (beta reported
-- BUSY).  Counters: alpha completed 1 (job 4; jobs 7 and 10 were given back or canceled, neither
-- counts), beta failed 1 (job 5; job 6 still runs), gamma completed 3.
SELECT id, name, status, cpu_load, memory_used_mb, memory_total_mb, jobs_handled, jobs_completed,
       jobs_failed, tokens_earned, window_hours, capabilities
  FROM modelmine.nodes();
SELECT id, name FROM modelmine.nodes(2);
SELECT id, name FROM modelmine.nodes(2, 2);
SELECT count(*) AS past_the_end FROM modelmine.nodes(10, 3);
COMMIT;
-- The same figures recounted from the tables.
SELECT count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING')) AS open_jobs,
       sum(stake) FILTER (WHERE status IN ('PENDING', 'RUNNING')) AS open_stakes, sum(stake) AS all_stakes,
       avg((result ->> 'accuracy')::float8) FILTER (WHERE status = 'COMPLETED') AS average_accuracy,
       sum(stake * 80 / 100) FILTER (WHERE status = 'COMPLETED') AS rewards,
       sum(stake - stake * 80 / 100) FILTER (WHERE status = 'COMPLETED') AS fees
  FROM modelmine.jobs;
-- Each commit folded its deltas (none are left) into one row per status of this month: stakes
-- 25 = 10 + 15, 20, 189, 50, 42 = 40 + 2 (326 in all); accuracy_sum 1.5 over accuracy_n 3.
SELECT * FROM job_stats;
SELECT count(*) AS unfolded_deltas FROM modelmine.job_stat_deltas;
-- The same fold filled the per-user rows behind dashboard(); they equal a recount per user and status
-- (statuses a user's jobs only passed through net to zero).
SELECT * FROM user_job_stats;
SELECT u.email, j.status, count(*) AS jobs, sum(j.stake) AS stake
  FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id GROUP BY 1, 2 ORDER BY 1, 2;

-- Readers are exact before the deltas are folded too.  Job 11 (ann, stake 3) is submitted and canceled
-- in a REPEATABLE READ transaction, which never folds at commit (its snapshot could predate another
-- folder's work): three deltas (PENDING +1, PENDING -1, CANCELED +1) wait to be folded.  A REPEATABLE
-- READ reader reads job_stats plus those deltas: CANCELED 3 (8, 10, 11), staked_all_time 326 + 3 = 329,
-- staked_now still 45, this month's timeline the same counts.
SET ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT modelmine.submit_job('eleven', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', NULL, 3) AS j11;
SELECT modelmine.cancel_job(11) AS refund_11;
COMMIT;
RESET ROLE;
SELECT count(*) AS unfolded_deltas FROM modelmine.job_stat_deltas;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL ROLE regress_mm_stats_anon;
SELECT staked_now, staked_all_time, jobs_pending, jobs_running, jobs_completed, jobs_failed, jobs_canceled
  FROM modelmine.network_stats();
SELECT * FROM timeline(1);
-- ann's dashboard adds her unfolded deltas too: job 11 among her CANCELED jobs, not in escrow.
SET LOCAL ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS signed_in;
SELECT d -> 'jobs' AS jobs, d -> 'in_escrow' AS in_escrow FROM modelmine.dashboard() d;
COMMIT;
SELECT count(*) AS still_unfolded FROM modelmine.job_stat_deltas;
-- The next READ COMMITTED reader folds them, at its commit, not inside its call; it read the same.
SET ROLE regress_mm_stats_anon;
SELECT staked_all_time, jobs_canceled FROM modelmine.network_stats();
RESET ROLE;
SELECT count(*) AS unfolded_after_a_reader_committed FROM modelmine.job_stat_deltas;

-------------------------------------------------------------------------------------------------------
-- Months without jobs
-------------------------------------------------------------------------------------------------------
-- Jobs submitted in earlier months cannot be made through the API, and created_at is fixed at
-- submission: the transition guard refuses to move it, even for the superuser.
SELECT * FROM err($$UPDATE modelmine.jobs SET created_at = in_month(1) WHERE id = 8$$);
-- With triggers off (session_replication_role = replica, as a careless restore would run) it moves,
-- and the statistics, kept per creation month by the INSERT and status UPDATE triggers, no longer
-- match.  check_invariants() says so: job 8 (CANCELED, 40) moved to last month leaves this month's
-- CANCELED row at 3 jobs / 45 staked (8, 10, 11) against a recount of 2 / 5 (10, 11), and last month's
-- at 0 / 0 against 1 / 40.  Moving it back heals it.
SELECT created_at AS j8_created FROM modelmine.jobs WHERE id = 8 \gset
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE modelmine.jobs SET created_at = in_month(1) WHERE id = 8;
SELECT * FROM invariants();
UPDATE modelmine.jobs SET created_at = :'j8_created' WHERE id = 8;
SELECT * FROM invariants();
ROLLBACK;

-- So earlier months are filled as the superuser by inserting finished jobs with a past created_at
-- (the INSERT trigger files them under that month) and the stake and refund journal entries an
-- API-made job would have (net zero on every balance, so the books still balance):
--   12 ann stake 5, CANCELED, two months ago;  13 ben stake 6, FAILED, four months ago.
INSERT INTO modelmine.jobs (user_id, title, config, stake, status, error, created_at, updated_at, finished_at)
VALUES (1, 'old canceled', '{}', 5, 'CANCELED', NULL, in_month(2), in_month(2), in_month(2)),
       (2, 'old failed', '{}', 6, 'FAILED', 'lost', in_month(4), in_month(4), in_month(4));
INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, job_id)
SELECT x.debit, x.credit, j.stake, x.reason, j.id
  FROM modelmine.jobs j JOIN modelmine.accounts u ON u.user_id = j.user_id,
       LATERAL (VALUES (u.id, 16 + j.id % 16, 'stake', 1), (16 + j.id % 16, u.id, 'refund', 2)) x(debit, credit, reason, n)
 WHERE j.id IN (12, 13) ORDER BY j.id, x.n;
SELECT * FROM invariants();
-- Six months: 5 empty, 4 one FAILED, 3 empty, 2 one CANCELED, 1 empty, this month PENDING 2,
-- RUNNING 1, COMPLETED 4, FAILED 1, CANCELED 3 (8, 10, 11).  Three months stop at months_ago 2.
SET ROLE regress_mm_stats_anon;
SELECT * FROM timeline(6);
SELECT * FROM timeline(3);
-- The totals take every month: FAILED 2, CANCELED 4, staked_all_time 329 + 5 + 6 = 340.
SELECT staked_now, staked_all_time, jobs_pending, jobs_running, jobs_completed, jobs_failed, jobs_canceled,
       average_accuracy, paid_to_nodes, network_fees
  FROM modelmine.network_stats();
RESET ROLE;
SELECT * FROM job_stats;

-------------------------------------------------------------------------------------------------------
-- Tampering with the maintained statistics is visible to check_invariants() and to readers
-------------------------------------------------------------------------------------------------------
-- One PENDING job too many in this month's folded row: reported (3 against a recount of 2), and
-- network_stats() reads it (jobs_pending 3): readers use the maintained rows, not a recount.
BEGIN;
UPDATE modelmine.job_stats SET jobs = jobs + 1 WHERE status = 'PENDING' AND months_ago(month) = 0;
SELECT * FROM invariants();
SELECT jobs_pending FROM modelmine.network_stats();
ROLLBACK;
-- A stray unfolded delta that only moves a stake (7 tokens onto last month's FAILED row, on ben's
-- FAILED row: 6 + 7 = 13) is reported by both checks, before and after it is folded (by the next
-- reader's commit); taking the 7 back out of the folded rows heals it.
INSERT INTO modelmine.job_stat_deltas (month, user_id, status, jobs, stake, accuracy_sum, accuracy_n)
VALUES (date_trunc('month', in_month(1) AT TIME ZONE 'UTC'), (SELECT id FROM modelmine.users WHERE email = 'ben@example.com'),
        'FAILED', 0, 7, 0, 0);
SELECT * FROM invariants();
SELECT jobs_failed FROM modelmine.network_stats();
SELECT count(*) AS unfolded FROM modelmine.job_stat_deltas;
SELECT * FROM invariants();
UPDATE modelmine.job_stats SET stake = stake - 7 WHERE status = 'FAILED' AND months_ago(month) = 1;
UPDATE modelmine.user_job_stats SET stake = stake - 7
 WHERE status = 'FAILED' AND user_id = (SELECT id FROM modelmine.users WHERE email = 'ben@example.com');
SELECT * FROM invariants();
-- One COMPLETED job too many in ann's per-user row: reported, and her dashboard reads it.
BEGIN;
UPDATE modelmine.user_job_stats SET jobs = jobs + 1
 WHERE status = 'COMPLETED' AND user_id = (SELECT id FROM modelmine.users WHERE email = 'ann@example.com');
SELECT * FROM invariants();
SET LOCAL ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS signed_in;
SELECT d -> 'jobs' -> 'COMPLETED' AS ann_completed FROM modelmine.dashboard() d;
ROLLBACK;
SELECT * FROM invariants();

-------------------------------------------------------------------------------------------------------
-- Offline nodes, uptime and reputation
-------------------------------------------------------------------------------------------------------
-- One transaction, so now() is one instant and every figure exact.  Set as the superuser:
--   alpha registered 48 h ago, online since 30 h ago, seen now: up the whole 24 h window       100.0 %
--   beta  registered 10 h ago (the 24 h window starts there: 10 h), up from -10 h to -6 h (a closed
--         stretch in node_uptime, 4 h) and since -90 min (open, seen now, 1.5 h): 5.5 / 10  =   55.0 %
--   gamma registered 10 h ago, online from -4 h, last seen 2 h ago: OFFLINE; its open stretch ends at
--         its last heartbeat, not now: 2 / 10                                                 =  20.0 %
-- Reputation = round(100 * (completed + 1) / (completed + failed + 2) * uptime / 100):
--   alpha 2/3 * 100 = 66.7 -> 67;  beta 1/3 * 55 = 18.3 -> 18;  gamma 4/5 * 20 = 16.
SELECT count(*) AS uptime_rows FROM modelmine.node_uptime;
BEGIN;
UPDATE modelmine.nodes SET registered_at = now() - interval '48 hours', online_since = now() - interval '30 hours',
                           last_seen = now() WHERE id = 1;
UPDATE modelmine.nodes SET registered_at = now() - interval '10 hours', online_since = now() - interval '90 minutes',
                           last_seen = now() WHERE id = 2;
INSERT INTO modelmine.node_uptime (node_id, started_at, ended_at)
VALUES (2, now() - interval '10 hours', now() - interval '6 hours');
UPDATE modelmine.nodes SET registered_at = now() - interval '10 hours', online_since = now() - interval '4 hours',
                           last_seen = now() - interval '2 hours' WHERE id = 3;
SET LOCAL ROLE regress_mm_stats_anon;
SELECT id, name, status, now() - last_seen AS seen_ago, uptime_pct, jobs_handled, jobs_completed, jobs_failed,
       tokens_earned, reputation, now() - registered_at AS registered_ago, window_hours
  FROM modelmine.nodes();
-- One node offline: nodes_online 2 of 3.
SELECT nodes_online, nodes_total FROM modelmine.network_stats();
-- node_stats(beta, window): the window ends now and starts window_hours back, but never before
-- registration:
--   24 h and 10 h: from registration, (4 + 1.5) / 10                = 55.0 %, reputation 1/3 * 55   = 18
--    8 h: -8 h .. -6 h of the closed stretch + 1.5 h = 3.5 / 8    = 43.75 -> 43.8 %, 1/3 * 43.8 = 14.6 -> 15
--    2 h: the closed stretch is outside; 1.5 / 2                  = 75.0 %, 1/3 * 75   = 25
--    1 h: inside the open stretch                                 = 100.0 %, 1/3 * 100 = 33.3 -> 33
SELECT w.hours, s.status, s.uptime_pct, s.reputation, s.window_hours
  FROM unnest(ARRAY[24, 10, 8, 2, 1]) w(hours), LATERAL modelmine.node_stats(2, w.hours) s;
-- gamma over a year: the window still starts at registration, 20.0 %.  alpha's default window is 24 h.
SELECT id, name, status, uptime_pct, reputation, window_hours FROM modelmine.node_stats(3, 8760);
-- Over the last hour gamma was not up at all (its stretch ended 2 h ago): 0.0 %, reputation 0.
SELECT id, name, status, uptime_pct, reputation, window_hours FROM modelmine.node_stats(3, 1);
SELECT id, name, status, uptime_pct, reputation, window_hours FROM modelmine.node_stats(1);
-- The admin view shows the same (24 h) figures with the operator.
SET LOCAL ROLE regress_mm_stats_admin;
SELECT id, name, status, uptime_pct, jobs_handled, tokens_earned, reputation, operator_email FROM modelmine.admin_nodes ORDER BY id;
-- OFFLINE starts strictly after offline_after_seconds (15): seen 15 s ago is still ONLINE, 15.001 s not.
RESET ROLE;
UPDATE modelmine.nodes SET last_seen = now() - interval '15 seconds' WHERE id = 1;
SELECT status AS seen_15s_ago FROM modelmine.node_stats(1);
UPDATE modelmine.nodes SET last_seen = now() - interval '15.001 seconds' WHERE id = 1;
SELECT status AS seen_15_001s_ago FROM modelmine.node_stats(1);
-- The listings read offline_after_seconds from the settings cache (_setting): a change is seen by the
-- next statement, the same in node_stats, nodes(), admin_node_page() and admin_nodes (read as admin).
-- (a name that is no setting: 42704, naming it)
SELECT * FROM err($$SELECT modelmine._setting('offline_after')$$);
SELECT modelmine.set_setting('offline_after_seconds', 16);
SELECT (SELECT status FROM modelmine.node_stats(1)) AS node_stats,
       (SELECT status FROM modelmine.nodes() WHERE id = 1) AS nodes,
       (SELECT status FROM modelmine.admin_node_page() WHERE id = 1) AS admin_node_page;
SET LOCAL ROLE regress_mm_stats_admin;
SELECT status AS admin_nodes FROM modelmine.admin_nodes WHERE id = 1;
RESET ROLE;
SELECT modelmine.set_setting('offline_after_seconds', 15);
SELECT (SELECT status FROM modelmine.node_stats(1)) AS node_stats,
       (SELECT status FROM modelmine.nodes() WHERE id = 1) AS nodes,
       (SELECT status FROM modelmine.admin_node_page() WHERE id = 1) AS admin_node_page;
SET LOCAL ROLE regress_mm_stats_admin;
SELECT status AS admin_nodes FROM modelmine.admin_nodes WHERE id = 1;
-- every figure of every node, the same through nodes(), node_stats(), admin_nodes and admin_node_page()
RESET ROLE;
SELECT count(*) AS nodes, count(*) FILTER (WHERE x = s) AS same_in_node_stats,
       count(*) FILTER (WHERE (x.id, x.name, x.status, x.uptime_pct, x.reputation, x.tokens_earned, x.spotcheck_pct)
                              IS NOT DISTINCT FROM (v.id, v.name, v.status, v.uptime_pct, v.reputation,
                                                    v.tokens_earned, v.spotcheck_pct)) AS same_in_admin_nodes,
       count(*) FILTER (WHERE (x.id, x.name, x.status, x.uptime_pct, x.reputation, x.tokens_earned)
                              IS NOT DISTINCT FROM (p.id, p.name, p.status, p.uptime_pct, p.reputation,
                                                    p.tokens_earned)) AS same_in_admin_node_page
  FROM modelmine.nodes() x
 CROSS JOIN LATERAL modelmine.node_stats(x.id) s
  JOIN modelmine.admin_nodes v ON v.id = x.id
  JOIN modelmine.admin_node_page() p ON p.id = x.id;
UPDATE modelmine.nodes SET last_seen = now() WHERE id = 1;
-- A heartbeat after the gap brings gamma back: its stretch -4 h .. -2 h is closed into node_uptime and
-- a new one opens now (0 s long in this instant), so uptime stays 20.0 and all three are online again.
SET LOCAL ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_gamma') AS gamma, modelmine.heartbeat(5, 100, 4096) AS gamma_holds;
RESET ROLE;
SELECT node_id, now() - started_at AS started_ago, now() - ended_at AS ended_ago FROM modelmine.node_uptime
 ORDER BY node_id, started_at;
SELECT now() - online_since AS online_for FROM modelmine.nodes WHERE id = 3;
SET LOCAL ROLE regress_mm_stats_anon;
SELECT id, name, status, uptime_pct, reputation FROM modelmine.node_stats(3);
SELECT nodes_online, nodes_total FROM modelmine.network_stats();
ROLLBACK;

-- A node asked about in the transaction that registered it has a window of no length: uptime NULL
-- (not a division by zero), reputation 0.
BEGIN;
SET LOCAL ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ben');
SELECT node_id AS delta FROM modelmine.register_node('delta', '{}') \gset
SELECT name, status, uptime_pct, reputation FROM modelmine.node_stats(:delta);
ROLLBACK;

-------------------------------------------------------------------------------------------------------
-- Admin views: modelmine_admin only, never a password or key hash
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_stats_user;
SELECT v.name, e.code, e.message, e.detail, e.hint
  FROM unnest(ARRAY['admin_users', 'admin_jobs', 'admin_nodes', 'admin_network', 'admin_ledger']) v(name)
 CROSS JOIN LATERAL err(format('SELECT * FROM modelmine.%I', v.name)) e;
RESET ROLE;
SET ROLE regress_mm_stats_anon;
SELECT * FROM err('SELECT * FROM modelmine.admin_network');
RESET ROLE;
SET ROLE regress_mm_stats_node;
SELECT * FROM err('SELECT * FROM modelmine.admin_nodes');
RESET ROLE;
-- Every column of every admin view and of the node rows nodes()/node_stats() return, reviewed here: no
-- password_hash, no key_hash (admin_ledger's hash and prev_hash are the public block hashes).
SELECT c.relname, string_agg(a.attname, ', ' ORDER BY a.attnum) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'modelmine'::regnamespace AND (c.relname LIKE 'admin\_%' OR c.relname = 'node_summary')
 GROUP BY c.relname ORDER BY c.relname;
SELECT count(*) AS secret_columns FROM information_schema.columns
 WHERE table_schema = 'modelmine' AND table_name LIKE 'admin\_%' AND column_name IN ('password_hash', 'key_hash');
-- Read as an admin.  Balances: ann 1000 - (100 + 55 + 33 + 1 + 50 + 20 + 10 + 40 + 3) + 50 + 40 + 3
-- = 781; ben 1000 - 15 - 2 + 2 = 985 (the inserted old jobs are net zero).
SET ROLE regress_mm_stats_admin;
SELECT id, email, role, balance FROM modelmine.admin_users ORDER BY id;
SELECT id, owner_email, title, status, stake, priority, node_id, attempts, error FROM modelmine.admin_jobs ORDER BY id;
-- admin_network is network_stats(): 340 staked all time, FAILED 2, CANCELED 4 (nodes_online is left
-- out: the last heartbeats are a moment old by now, the offline threshold is a wall-clock 15 s).
SELECT nodes_total, staked_now, staked_all_time, jobs_pending, jobs_running, jobs_completed, jobs_failed,
       jobs_canceled, average_accuracy, paid_to_nodes, network_fees
  FROM modelmine.admin_network;
-- The ledger: genesis and the four completions; job 3's accuracy is NULL.
SELECT height, job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs FROM modelmine.admin_ledger ORDER BY height;
-- And the books balance.
SELECT * FROM modelmine.check_invariants();
RESET ROLE;

-- A new backend whose first read of the settings is by a function running with the caller's rights
-- (admin_nodes calls _spotcheck_pct and _record_score, C functions that read cached settings): the
-- cache is loaded as the extension's owner, so an admin, who may not read modelmine.settings, gets
-- the page (before, 42501 "permission denied for table settings" in every new connection).
\c
SET ROLE regress_mm_stats_admin;
SELECT count(*) AS admin_nodes_in_a_new_backend FROM modelmine.admin_nodes;
SELECT * FROM err('SELECT count(*) FROM modelmine.settings');
RESET ROLE;

-- A statement appends one delta row per month, owner and status, not one per job: in a REPEATABLE READ
-- transaction (no fold at its commit) ann submits three jobs in one submit_jobs call (one row:
-- PENDING +3, staked 6) and a node claims two of them in one claim_jobs call (two rows: PENDING -2,
-- RUNNING +2, staked 3).  Readers add them as before; the transaction is rolled back.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS rows_before FROM modelmine.job_stat_deltas \gset
SET LOCAL ROLE regress_mm_stats_user;
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS signed_in;
SELECT count(*) AS submitted FROM modelmine.submit_jobs('[{"title": "a", "config": {"trainer": "noop"}, "stake": 1},
    {"title": "b", "config": {"trainer": "noop"}, "stake": 2}, {"title": "c", "config": {"trainer": "noop"}, "stake": 3}]');
SELECT jobs_pending AS pending_seen FROM modelmine.network_stats();
SET LOCAL ROLE regress_mm_stats_node;
SELECT modelmine.authenticate_node(:'key_gamma') IS NOT NULL AS gamma;
SELECT count(*) AS claimed FROM modelmine.claim_jobs(2, 60);
RESET ROLE;
SELECT status, jobs, stake FROM modelmine.job_stat_deltas ORDER BY status, jobs;
SELECT count(*) - :rows_before AS rows_appended FROM modelmine.job_stat_deltas;
SELECT * FROM modelmine.check_invariants();
ROLLBACK;

DROP VIEW job_stats;
DROP VIEW user_job_stats;
DROP FUNCTION invariants();
DROP FUNCTION timeline(integer);
DROP FUNCTION in_month(integer);
DROP FUNCTION months_ago(date);
DROP FUNCTION err(text);
DROP ROLE regress_mm_stats_anon;
DROP ROLE regress_mm_stats_user;
DROP ROLE regress_mm_stats_node;
DROP ROLE regress_mm_stats_admin;
