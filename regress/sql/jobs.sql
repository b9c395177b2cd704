-- jobs: submitting, listing, reading and canceling jobs, the status lifecycle every writer must
-- follow, and the dashboard.  User calls run as a login role that is only a member of modelmine_user;
-- admin calls as a member of modelmine_admin; direct table changes as the superuser.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_client;
DROP ROLE IF EXISTS regress_mm_admin;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
CREATE ROLE regress_mm_client LOGIN;
GRANT modelmine_user TO regress_mm_client;
CREATE ROLE regress_mm_admin LOGIN;
GRANT modelmine_admin TO regress_mm_admin;
-- Test scaffolding: views (running with their owner's rights) through which the test roles can
-- inspect the tables.  Not part of the API.
CREATE OR REPLACE VIEW jobs AS
    SELECT id, user_id, title, status, stake, priority, description, config
      FROM modelmine.jobs ORDER BY id;
CREATE OR REPLACE VIEW journal AS
    SELECT id, debit_account AS debit, credit_account AS credit, amount, reason, job_id
      FROM modelmine.journal ORDER BY id;
CREATE OR REPLACE VIEW escrow AS
    SELECT id, shard, balance FROM modelmine.account_balances WHERE kind = 'escrow' AND balance <> 0 ORDER BY id;
GRANT SELECT ON jobs, journal, escrow TO regress_mm_client, regress_mm_admin;

SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ben@example.com', 'ben password') AS ben,
       modelmine.signup('cal@example.com', 'cal password') AS cal, modelmine.signup('dan@example.com', 'dan password') AS dan;
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset
SELECT modelmine.login('cal@example.com', 'cal password') AS tok_cal \gset
SELECT modelmine.login('dan@example.com', 'dan password') AS tok_dan \gset

SET ROLE regress_mm_client;

-------------------------------------------------------------------------------------------------------
-- submit_job
-------------------------------------------------------------------------------------------------------
SELECT * FROM err($$SELECT modelmine.submit_job('t', '{}')$$);
SELECT modelmine.authenticate(:'tok_ann');

-- The happy path: stake defaults to the default_stake setting (100), moved from the user's account to
-- escrow shard 16 + id % 16 in the same transaction; the job is PENDING.
SELECT modelmine.submit_job('Iris classifier', '{"trainer": "logreg", "epochs": 10, "dataset": {"synthetic": "blobs"}}') AS job;
SELECT modelmine.balance();
SELECT * FROM jobs;
SELECT * FROM journal WHERE job_id IS NOT NULL;
SELECT * FROM escrow;
SELECT id, title, status, stake, priority, progress, attempts, node_id, finished_at FROM modelmine.my_jobs();
SELECT id, owner_email, title, description, config, status, stake, priority, progress, metrics, result, error,
       node_id, attempts, lease_expires_at, started_at, finished_at, created_at = updated_at AS untouched
  FROM modelmine.job(1);

-- Everything given: description, stake, priority; the title is trimmed of surrounding spaces.
SELECT modelmine.submit_job(E'  MNIST \t', '{"trainer": "mlp", "dataset": {"synthetic": "moons"}}', 'Handwritten digits.', 250, 7) AS job;
SELECT * FROM jobs WHERE id = 2;
SELECT * FROM escrow;
-- Priority and description bounds are accepted; a title of 200 characters counts characters, not bytes.
SELECT modelmine.submit_job(repeat('é', 200), '{"trainer": "noop"}', repeat('d', 10000), 1, 1000) AS job,
       modelmine.submit_job('low', '{"trainer": "noop"}', NULL, 1, -1000) AS job2;
SELECT id, char_length(title) AS title_chars, octet_length(title) AS title_bytes, char_length(description) AS description_chars,
       priority FROM jobs WHERE id IN (3, 4);
-- Explicit NULLs for stake and priority mean the defaults.
SELECT modelmine.submit_job('defaults', '{"trainer": "noop"}', NULL, NULL, NULL) AS job;
SELECT id, stake, priority FROM jobs WHERE id = 5;

-- Every escrow shard is used, always shard id % 16: 16 more jobs of stake 1.
SELECT count(modelmine.submit_job('bulk ' || i, '{"trainer": "noop"}', NULL, 1)) AS submitted FROM generate_series(1, 16) i;
SELECT count(*) AS stakes, count(DISTINCT credit) AS shards, bool_and(credit = 16 + job_id % 16) AS shard_is_id_mod_16
  FROM journal WHERE reason = 'stake';
SELECT modelmine.balance();

-- Refused submissions: 22023 naming the problem; nothing written.
SELECT count(*) AS jobs_before FROM jobs \gset
SELECT count(*) AS journal_before FROM journal \gset
SELECT modelmine.balance() AS balance_before \gset
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('title NULL', $$SELECT modelmine.submit_job(NULL, '{}')$$),
               ('title empty', $$SELECT modelmine.submit_job('', '{}')$$),
               ('title of spaces', $$SELECT modelmine.submit_job(E'  \t ', '{}')$$),
               ('title 201 characters', $$SELECT modelmine.submit_job(repeat('x', 201), '{}')$$),
               ('title 201 two-byte characters', $$SELECT modelmine.submit_job(repeat('é', 201), '{}')$$),
               ('config NULL', $$SELECT modelmine.submit_job('t', NULL)$$),
               ('config array', $$SELECT modelmine.submit_job('t', '[]')$$),
               ('config string', $$SELECT modelmine.submit_job('t', '"x"')$$),
               ('config number', $$SELECT modelmine.submit_job('t', '1')$$),
               ('config boolean', $$SELECT modelmine.submit_job('t', 'true')$$),
               ('config JSON null', $$SELECT modelmine.submit_job('t', 'null')$$),
               ('description 10001 characters', $$SELECT modelmine.submit_job('t', '{}', repeat('d', 10001))$$),
               ('stake 0', $$SELECT modelmine.submit_job('t', '{}', NULL, 0)$$),
               ('stake -5', $$SELECT modelmine.submit_job('t', '{}', NULL, -5)$$),
               ('stake 10^15 + 1', $$SELECT modelmine.submit_job('t', '{}', NULL, 1000000000000001)$$),
               ('priority 1001', $$SELECT modelmine.submit_job('t', '{}', NULL, 1, 1001)$$),
               ('priority -1001', $$SELECT modelmine.submit_job('t', '{}', NULL, 1, -1001)$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- config.trainer names a built-in trainer (logreg, mlp, linreg, noop), config.runner an external
-- runner; a job names at most one of them, so that some node can run it.
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('unknown trainer', '{"trainer": "torch-cnn"}'),
               ('trainer in upper case', '{"trainer": "LOGREG"}'),
               ('trainer a number', '{"trainer": 1}'),
               ('trainer JSON null', '{"trainer": null}'),
               ('trainer empty', '{"trainer": ""}'),
               ('runner in upper case', '{"runner": "Torch"}'),
               ('runner starting with -', '{"runner": "-x"}'),
               ('runner 65 characters', json_build_object('runner', repeat('r', 65))::text),
               ('runner an array', '{"runner": ["a"]}'),
               ('trainer and runner', '{"trainer": "logreg", "runner": "torch-cnn"}'),
               ('unknown trainer and runner', '{"trainer": "torch", "runner": "torch-cnn"}')) v(label, config)
 CROSS JOIN LATERAL err(format('SELECT modelmine.submit_job(%L, %L)', 't', v.config)) e;
-- A stake over the balance: MM001, and no job row, journal row or balance change is left behind.
SELECT * FROM err(format('SELECT modelmine.submit_job(%L, %L, NULL, %s)', 't', '{"trainer": "noop"}', :balance_before + 1));
SELECT * FROM err(format('SELECT modelmine.submit_job(%L, %L, NULL, %s)', 't', '{"trainer": "noop"}', 1000000000000000));
SELECT (SELECT count(*) FROM jobs) = :jobs_before AS no_job_added,
       (SELECT count(*) FROM journal) = :journal_before AS no_journal_row_added,
       modelmine.balance() = :balance_before AS balance_unchanged;

-- A config over max_config_bytes (lowered here to keep it small).  The limit is on the bytes of the
-- config's JSON text as jsonb prints it (what the user sees), not on jsonb's internal size.
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('max_config_bytes', 64);
SET ROLE regress_mm_client;
SELECT octet_length(jsonb_build_object('data', repeat('x', 100))::text) AS text_bytes;
SELECT * FROM err(format('SELECT modelmine.submit_job(%L, %L)', 't', jsonb_build_object('data', repeat('x', 100))));
SELECT modelmine.submit_job('small config', '{"trainer": "noop"}') AS job;
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('max_config_bytes', 65536);
SET ROLE regress_mm_client;

-------------------------------------------------------------------------------------------------------
-- job(id): your own job; anyone else's is "not found", exactly like a job that does not exist
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ben');
SELECT * FROM err('SELECT * FROM modelmine.job(1)');
SELECT * FROM err('SELECT * FROM modelmine.job(999999)');
-- A missing id is bad input, not a job that cannot be found.
SELECT * FROM err('SELECT * FROM modelmine.job(NULL)');
SELECT count(*) AS bens_jobs FROM modelmine.my_jobs();
-- An admin sees any job through job() and admin_job(), without signing in as a user.
SELECT modelmine.deauthenticate();
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT id, owner_email, title, status, stake FROM modelmine.job(2);
SELECT id, owner_email, title, status, stake FROM modelmine.admin_job(2);
SELECT count(*) AS rows FROM modelmine.admin_job(999999);
-- For an admin, "not found" means the job does not exist at all (not "that you own").
SELECT * FROM err('SELECT * FROM modelmine.job(999999)');
SELECT * FROM err('SELECT * FROM modelmine.job(NULL)');
RESET ROLE;
SET ROLE regress_mm_client;

-------------------------------------------------------------------------------------------------------
-- cancel_job
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ann');
SELECT modelmine.balance() AS balance_before \gset
-- A pending job: canceled, its whole stake refunded from its escrow shard.
SELECT modelmine.cancel_job(2) AS refund;
SELECT modelmine.balance() - :balance_before AS balance_change;
SELECT id, status, finished_at IS NOT NULL AS finished FROM modelmine.my_jobs('CANCELED');
SELECT * FROM journal WHERE job_id = 2;
SELECT * FROM escrow WHERE id = 18;
-- Again: 55000, nothing refunded twice.
SELECT * FROM err('SELECT modelmine.cancel_job(2)');
SELECT count(*) AS refunds FROM journal WHERE job_id = 2 AND reason = 'refund';
SELECT * FROM err('SELECT modelmine.cancel_job(999999)');
SELECT * FROM err('SELECT modelmine.cancel_job(NULL)');
-- Someone else's job: not found, and untouched.
SELECT modelmine.authenticate(:'tok_ben');
SELECT * FROM err('SELECT modelmine.cancel_job(1)');
SELECT modelmine.authenticate(:'tok_ann');
SELECT id, status FROM jobs WHERE id = 1;

-------------------------------------------------------------------------------------------------------
-- The lifecycle guard holds for every writer, the superuser included
-------------------------------------------------------------------------------------------------------
RESET ROLE;
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('PENDING -> COMPLETED', $$UPDATE modelmine.jobs SET status = 'COMPLETED' WHERE id = 1$$),
               ('PENDING -> FAILED', $$UPDATE modelmine.jobs SET status = 'FAILED' WHERE id = 1$$),
               ('CANCELED -> PENDING', $$UPDATE modelmine.jobs SET status = 'PENDING' WHERE id = 2$$),
               ('CANCELED -> RUNNING', $$UPDATE modelmine.jobs SET status = 'RUNNING' WHERE id = 2$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- A statement over many jobs fails on the first (which one depends on the plan) and changes none.
SELECT code, message, regexp_replace(detail, '^Job \d+ ', 'Job N ') AS detail
  FROM err($$UPDATE modelmine.jobs SET status = 'COMPLETED' WHERE status = 'PENDING'$$);
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('stake', $$UPDATE modelmine.jobs SET stake = stake + 1 WHERE id = 1$$),
               ('owner', $$UPDATE modelmine.jobs SET user_id = 2 WHERE id = 1$$),
               ('config', $$UPDATE modelmine.jobs SET config = '{"trainer": "other"}' WHERE id = 1$$),
               ('created_at', $$UPDATE modelmine.jobs SET created_at = created_at - interval '1 day' WHERE id = 1$$),
               ('stake of a canceled job', $$UPDATE modelmine.jobs SET stake = 1 WHERE id = 2$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- Setting a fixed column to the value it holds (a new copy of it) is no change: it passes.
BEGIN;
UPDATE modelmine.jobs SET stake = stake + 0, config = config || '{}', created_at = created_at + interval '0 s',
       need_labels = need_labels || '{}'::text[] WHERE id IN (1, 2) RETURNING id, stake, config;
ROLLBACK;
SELECT count(*) AS pending FROM jobs WHERE status = 'PENDING';
-- Allowed moves: PENDING -> RUNNING -> PENDING (lease expiry) -> RUNNING -> COMPLETED; the guard keeps
-- updated_at.  (Settling money is the node's job, not the guard's, so this runs in a transaction that
-- is rolled back.)
BEGIN;
UPDATE modelmine.jobs SET status = 'RUNNING', progress = 10 WHERE id = 1;
UPDATE modelmine.jobs SET status = 'PENDING', progress = 0 WHERE id = 1;
UPDATE modelmine.jobs SET status = 'RUNNING' WHERE id = 1;
UPDATE modelmine.jobs SET progress = 50 WHERE id = 1;
UPDATE modelmine.jobs SET status = 'COMPLETED', progress = 100 WHERE id = 1;
SELECT id, status, progress, updated_at = now() AS updated_now FROM modelmine.jobs WHERE id = 1;
SELECT * FROM err($$UPDATE modelmine.jobs SET status = 'FAILED' WHERE id = 1$$);
SELECT * FROM err($$UPDATE modelmine.jobs SET status = 'CANCELED' WHERE id = 1$$);
ROLLBACK;

-------------------------------------------------------------------------------------------------------
-- my_jobs: filters, sorting, paging; and the dashboard
-------------------------------------------------------------------------------------------------------
-- Cal submits five jobs; one is canceled.  RUNNING, COMPLETED and FAILED are set by nodes (not part of
-- the core), so the superuser sets them inside a transaction that is rolled back afterwards.
SET ROLE regress_mm_client;
SELECT modelmine.authenticate(:'tok_cal');
SELECT modelmine.submit_job('c1', '{"trainer": "noop"}', NULL, 50) AS c1, modelmine.submit_job('c2', '{"trainer": "noop"}', NULL, 10) AS c2,
       modelmine.submit_job('c3', '{"trainer": "noop"}', NULL, 40) AS c3, modelmine.submit_job('c4', '{"trainer": "noop"}', NULL, 20) AS c4,
       modelmine.submit_job('c5', '{"trainer": "noop"}', NULL, 30) AS c5;
SELECT modelmine.cancel_job(29);
BEGIN;
RESET ROLE;
UPDATE modelmine.jobs SET status = 'RUNNING' WHERE id IN (26, 27, 28);
UPDATE modelmine.jobs SET status = 'COMPLETED' WHERE id = 27;
UPDATE modelmine.jobs SET status = 'FAILED' WHERE id = 28;
SET ROLE regress_mm_client;
SELECT id, title, status, stake FROM modelmine.my_jobs();
-- Each status; lower case is accepted too.
SELECT s AS filter, (SELECT array_agg(id) FROM modelmine.my_jobs(s)) AS ids
  FROM unnest(ARRAY['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED', 'pending', 'Canceled', NULL]) s;
-- Sorting: created (submission order), stake, status (lifecycle order); ascending or descending.
SELECT s AS sort, d AS descending, (SELECT array_agg(id) FROM modelmine.my_jobs(NULL, s, d)) AS ids
  FROM unnest(ARRAY['created', 'stake', 'status']) s, unnest(ARRAY[true, false, NULL]) d;
-- The sort key is case-insensitive, like the status filter.
SELECT s AS sort, (SELECT array_agg(id) FROM modelmine.my_jobs(NULL, s, false))
                = (SELECT array_agg(id) FROM modelmine.my_jobs(NULL, lower(s), false)) AS same_as_lower_case
  FROM unnest(ARRAY['Created', 'STAKE', 'Status']) s;
-- Paging.
SELECT l AS "limit", o AS "offset", (SELECT array_agg(id) FROM modelmine.my_jobs(NULL, 'created', false, l, o)) AS ids
  FROM (VALUES (0, 0), (2, 0), (2, 2), (2, 4), (10000, 0), (1, 1000)) v(l, o);
-- Filter and sort together.
SELECT id, status, stake FROM modelmine.my_jobs('RUNNING', 'stake', false);
-- The dashboard: counts per status and total, balance, tokens in escrow (PENDING + RUNNING), latest jobs
-- and transactions.
SELECT d - 'recent_jobs' - 'recent_transactions' AS summary,
       jsonb_path_query_array(d, '$.recent_jobs[*].id') AS recent_job_ids,
       jsonb_path_query_array(d, '$.recent_transactions[*].reason') AS recent_reasons,
       jsonb_path_query_array(d, '$.recent_transactions[*].amount') AS recent_amounts
  FROM modelmine.dashboard() d;
-- A RUNNING job can be canceled too, with a full refund; COMPLETED and FAILED ones cannot.
SELECT modelmine.cancel_job(26) AS refund;
SELECT * FROM err('SELECT modelmine.cancel_job(27)');
SELECT * FROM err('SELECT modelmine.cancel_job(28)');
ROLLBACK;
SET ROLE regress_mm_client;
SELECT id, status FROM modelmine.my_jobs();

-- Bad filters are refused with 22023, even for a user who has no jobs at all.
SELECT modelmine.authenticate(:'tok_dan');
SELECT count(*) AS dans_jobs FROM modelmine.my_jobs();
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('status BOGUS', $$SELECT * FROM modelmine.my_jobs('BOGUS')$$),
               ('status empty', $$SELECT * FROM modelmine.my_jobs('')$$),
               ('status with a space', $$SELECT * FROM modelmine.my_jobs(' PENDING')$$),
               ('sort bogus', $$SELECT * FROM modelmine.my_jobs(NULL, 'bogus')$$),
               ('sort NULL', $$SELECT * FROM modelmine.my_jobs(NULL, NULL)$$),
               ('limit -1', $$SELECT * FROM modelmine.my_jobs(NULL, 'created', true, -1)$$),
               ('limit 10001', $$SELECT * FROM modelmine.my_jobs(NULL, 'created', true, 10001)$$),
               ('limit NULL', $$SELECT * FROM modelmine.my_jobs(NULL, 'created', true, NULL)$$),
               ('offset -1', $$SELECT * FROM modelmine.my_jobs(NULL, 'created', true, 50, -1)$$),
               ('offset NULL', $$SELECT * FROM modelmine.my_jobs(NULL, 'created', true, 50, NULL)$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
-- A user with no jobs: a dashboard of zeros.
SELECT d - 'recent_transactions' AS summary,
       jsonb_path_query_array(d, '$.recent_transactions[*].reason') AS recent_reasons
  FROM modelmine.dashboard() d;
SELECT modelmine.deauthenticate();
SELECT * FROM err('SELECT * FROM modelmine.my_jobs()');
SELECT * FROM err('SELECT modelmine.dashboard()');

-------------------------------------------------------------------------------------------------------
-- all_jobs (admin): everyone's jobs, with the same filters
-------------------------------------------------------------------------------------------------------
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT count(*) AS all_jobs FROM modelmine.all_jobs(NULL, 'created', true, 10000);
SELECT id, title, status, stake FROM modelmine.all_jobs('CANCELED', 'created', false);
SELECT id, title, stake FROM modelmine.all_jobs('PENDING', 'stake', true, 3);
SELECT * FROM err($$SELECT * FROM modelmine.all_jobs('BOGUS')$$);
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- max_config_bytes counts the bytes of the config's JSON text; direct inserts
-- (at the end: the jobs made here, and the ids a rolled-back insert uses up, would renumber the above)
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_client;
SELECT modelmine.authenticate(:'tok_dan');
-- The size is checked before the config's contents: at the smallest allowed limit (2) '{}' fits and is
-- then refused by the workers' validator (a logreg job needs a dataset), '{"a": 1}' is refused for its
-- size.  A config of exactly the limit is accepted, one byte more is not; spacing in the input does not
-- count (the text is jsonb's own rendering); and bytes are counted, not characters: '{"a": "ééé"}' is
-- 12 characters but 15 bytes, over 14.
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('max_config_bytes', 2);
SET ROLE regress_mm_client;
SELECT code, message FROM err($$SELECT modelmine.submit_job('empty config', '{}')$$);
SELECT * FROM err($$SELECT modelmine.submit_job('over 2', '{"a": 1}')$$);
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('max_config_bytes', octet_length('{"trainer": "noop"}'));
SET ROLE regress_mm_client;
SELECT octet_length('{"trainer": "noop"}') AS at_limit, octet_length('{"runner": "abcdef"}') AS one_over;
SELECT modelmine.submit_job('at the limit', '{"trainer": "noop"}') AS job;
SELECT modelmine.submit_job('spaced', '{   "trainer"   :   "noop"   }') AS job;
SELECT * FROM err($$SELECT modelmine.submit_job('one over', '{"runner": "abcdef"}')$$);
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('max_config_bytes', 14);
SET ROLE regress_mm_client;
SELECT char_length('{"a": "ééé"}') AS chars, octet_length('{"a": "ééé"}') AS bytes;
SELECT * FROM err($$SELECT modelmine.submit_job('multibyte', '{"a": "ééé"}')$$);
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('max_config_bytes', 65536);
SET ROLE regress_mm_client;
SELECT id, title, config FROM modelmine.my_jobs() JOIN jobs USING (id, title) ORDER BY id;
SELECT modelmine.deauthenticate();

-- A job inserted directly (admin tooling, a restore) is accepted, several in one statement: the AFTER
-- INSERT statement trigger that wakes workers follows the trigger protocol (that it notifies once per
-- statement is in specs/notify.spec).
RESET ROLE;
BEGIN;
INSERT INTO modelmine.jobs (user_id, title, config, stake) VALUES (4, 'direct', '{}', 1), (4, 'direct 2', '{}', 1);
SELECT title, status FROM modelmine.jobs WHERE title LIKE 'direct%' ORDER BY id;
ROLLBACK;

-- The books balance after all of the above.
SET ROLE regress_mm_admin;
SELECT * FROM modelmine.check_invariants();
RESET ROLE;

DROP VIEW jobs;
DROP VIEW journal;
DROP VIEW escrow;
DROP ROLE regress_mm_client;
DROP ROLE regress_mm_admin;
DROP FUNCTION err(text);
