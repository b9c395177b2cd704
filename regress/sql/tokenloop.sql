-- tokenloop: closing the token loop (issue 14).  Signup grants are locked (they stake jobs but cannot
-- be farmed out by transfer or withdrawal) until an admin verifies the user or node earnings reach
-- them; withdrawals are held, then approved (burnt into the withdrawn account) or rejected (released),
-- decided once; a month's network fee is paid to the nodes pro rata to their work, once.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_admin;
DROP ROLE IF EXISTS regress_mm_client;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
CREATE ROLE regress_mm_admin LOGIN;
GRANT modelmine_admin TO regress_mm_admin;
CREATE ROLE regress_mm_client LOGIN;
GRANT modelmine_user TO regress_mm_client;
-- books: the system accounts and every account holding tokens.
CREATE OR REPLACE VIEW books AS
    SELECT a.id, a.kind, COALESCE(u.email, n.name) AS owner, a.balance
      FROM modelmine.account_balances a LEFT JOIN modelmine.users u ON u.id = a.user_id
      LEFT JOIN modelmine.nodes n ON n.id = a.node_id
     WHERE a.balance <> 0 OR a.kind IN ('issuance', 'held', 'withdrawn')
     ORDER BY a.id;
CREATE OR REPLACE VIEW locks AS
    SELECT u.email, u.grant_locked, u.verified_at IS NOT NULL AS verified FROM modelmine.users u ORDER BY u.id;

-------------------------------------------------------------------------------------------------------
-- Signup grants
-------------------------------------------------------------------------------------------------------
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ben@example.com', 'ben password') AS ben,
       modelmine.signup('ops@example.com', 'ops password') AS ops, modelmine.signup('opb@example.com', 'opb password') AS opb;
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset
SELECT modelmine.login('ops@example.com', 'ops password') AS tok_ops \gset
SELECT modelmine.login('opb@example.com', 'opb password') AS tok_opb \gset
-- The admin who decides: who decided is recorded (their email when signed in).
SELECT modelmine.signup('adm@example.com', 'adm password') AS adm;
SELECT modelmine.set_user_role('adm@example.com', 'admin');
SELECT modelmine.login('adm@example.com', 'adm password') AS tok_adm \gset
-- The whole grant is locked at signup.
SELECT * FROM locks;
-- Ann can neither transfer nor withdraw any of it; the error names the locked part and how to unlock it.
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT * FROM err($$SELECT modelmine.transfer('ben@example.com', 1)$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(1, 'bank account 1')$$);
-- But it stakes jobs (what it is for), and a refund comes back as the same locked grant.
SELECT modelmine.submit_job('from the grant', '{"trainer": "noop"}', NULL, 900) AS job_from_grant \gset
SELECT modelmine.balance() AS ann_balance;
SELECT modelmine.cancel_job(:job_from_grant) AS refunded;
SELECT * FROM err($$SELECT modelmine.transfer('ben@example.com', 1)$$);

-- The Sybil loop: 20 signups, each transferring its grant to one account, move nothing.
SELECT modelmine.signup('sink@example.com', 'sink password') AS sink;
DO $$
DECLARE
    moved int := 0;
BEGIN
    FOR i IN 1..20 LOOP
        PERFORM modelmine.signup('sybil' || i || '@example.com', 'sybil password');
        PERFORM modelmine.authenticate(modelmine.login('sybil' || i || '@example.com', 'sybil password'));
        BEGIN
            PERFORM modelmine.transfer('sink@example.com', 1000);
            moved := moved + 1000;
        EXCEPTION WHEN SQLSTATE 'MM001' THEN
            NULL;
        END;
        BEGIN
            PERFORM modelmine.request_withdrawal(1000, 'sybil bank');
            moved := moved + 1000;
        EXCEPTION WHEN SQLSTATE 'MM001' THEN
            NULL;
        END;
    END LOOP;
    RAISE NOTICE 'tokens moved out of 20 sybil accounts: %', moved;
END
$$;
SELECT email, balance FROM modelmine.users() WHERE email = 'sink@example.com';
SELECT count(*) AS transfers, count(*) FILTER (WHERE reason LIKE 'withdrawal%') AS withdrawals
  FROM modelmine.journal WHERE reason IN ('transfer', 'withdrawal_hold');

-- Tokens received are not locked: above the grant, Ann's balance is hers to move.
SET ROLE regress_mm_admin;
SELECT modelmine.mint('ann@example.com', 50);
RESET ROLE;
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.transfer('ben@example.com', 50) > 0 AS sent_50;
SELECT * FROM err($$SELECT modelmine.transfer('ben@example.com', 1)$$);

-- verify_user (admin only) unlocks the grant, and says how much; a second call unlocks nothing.
SET ROLE regress_mm_client;
SELECT * FROM err($$SELECT modelmine.verify_user('ann@example.com')$$);
RESET ROLE;
SET ROLE regress_mm_admin;
SELECT modelmine.verify_user(' ANN@example.com ') AS unlocked;
SELECT modelmine.verify_user('ann@example.com') AS unlocked_again;
SELECT * FROM err($$SELECT modelmine.verify_user('nobody@example.com')$$);
RESET ROLE;
SELECT * FROM locks WHERE email IN ('ann@example.com', 'ben@example.com');
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.transfer('ben@example.com', 100) > 0 AS sent_100;

-- Node earnings withdrawn to the operator unlock as much of the operator's grant (tokens earned by
-- work), not more.  Ann's jobs: 100 and 33 run on ops's node, 50 on opb's node (settings: 80% reward).
SELECT modelmine.submit_job('job ' || s, '{"trainer": "noop"}', NULL, s) FROM unnest(ARRAY[100, 33, 50]) s;
SELECT modelmine.authenticate(:'tok_ops') IS NOT NULL AS ops;
SELECT node_id AS node_a, node_key AS key_a FROM modelmine.register_node('node a', '{"trainers": ["noop"], "slots": 2}') \gset
SELECT modelmine.authenticate(:'tok_opb') IS NOT NULL AS opb;
SELECT node_id AS node_b, node_key AS key_b FROM modelmine.register_node('node b', '{"trainers": ["noop"]}') \gset
SELECT modelmine.authenticate_node(:'key_a') IS NOT NULL AS node_a;
SELECT modelmine.heartbeat(1, 1, 10) IS NOT NULL AS beat;
SELECT count(*) AS claimed FROM modelmine.claim_jobs(2, 60);
SELECT modelmine.complete_job(id, '{"loss": 0.1, "epochs": 1}') AS reward FROM modelmine.jobs
 WHERE node_id = :node_a ORDER BY id;
SELECT modelmine.authenticate_node(:'key_b') IS NOT NULL AS node_b;
SELECT modelmine.heartbeat(1, 1, 10) IS NOT NULL AS beat;
SELECT count(*) AS claimed FROM modelmine.claim_jobs(1, 60);
SELECT modelmine.complete_job(id, '{"loss": 0.1, "epochs": 1}') AS reward FROM modelmine.jobs WHERE node_id = :node_b;
SELECT modelmine.authenticate(:'tok_ops') IS NOT NULL AS ops;
SELECT modelmine.withdraw_node_earnings(:node_a, 6) AS withdrawn;
-- 994 stay locked: ops may move the 6 earned and the 6 of the grant they unlocked, not a token more.
SELECT * FROM locks WHERE email = 'ops@example.com';
SELECT modelmine.transfer('ben@example.com', 12) > 0 AS sent_12;
SELECT * FROM err($$SELECT modelmine.transfer('ben@example.com', 1)$$);
SELECT count(*) AS violations FROM modelmine.check_invariants();

-------------------------------------------------------------------------------------------------------
-- Withdrawals
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.balance() AS ann_balance;
-- Refused input, each naming its field; nothing is held.
SELECT * FROM err($$SELECT modelmine.request_withdrawal(0, 'bank')$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(NULL, 'bank')$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(10, '   ')$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(10, NULL)$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(10, repeat('x', 201))$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(10, E'bank\u202Eknab')$$);
SELECT * FROM err($$SELECT modelmine.request_withdrawal(100000, 'bank')$$);
SELECT count(*) AS withdrawals FROM modelmine.withdrawals;
-- Two requests: the tokens move to held at once.
SELECT modelmine.request_withdrawal(300, '  IBAN DE00 1234  ') AS w1 \gset
SELECT modelmine.request_withdrawal(200, 'IBAN DE00 1234') AS w2 \gset
SELECT modelmine.balance() AS ann_balance;
SELECT id = :w1 AS is_w1, amount, destination, status, payout_reference, reason, decided_at FROM modelmine.my_withdrawals();
SELECT * FROM books WHERE kind IN ('held', 'withdrawn');
SELECT count(*) AS violations FROM modelmine.check_invariants();
-- Only admins list and decide withdrawals.
SET ROLE regress_mm_client;
SELECT * FROM err($$SELECT modelmine.withdrawals()$$);
SELECT * FROM err(format('SELECT modelmine.approve_withdrawal(%s, %L)', :w1, 'paid'));
RESET ROLE;
SELECT modelmine.authenticate(:'tok_adm') IS NOT NULL AS adm;
SET ROLE regress_mm_admin;
SELECT id = :w1 AS is_w1, email, amount, status FROM modelmine.withdrawals('PENDING');
SELECT * FROM err($$SELECT modelmine.withdrawals('DONE')$$);
SELECT * FROM err(format('SELECT modelmine.approve_withdrawal(%s, %L)', :w1, ''));
-- Approve the first (burnt into withdrawn, with the payout reference), reject the second (released).
SELECT modelmine.approve_withdrawal(:w1, 'SEPA 2026-11-30/0042') AS approved;
SELECT modelmine.reject_withdrawal(:w2, 'destination account is closed') AS rejected;
-- Each is decided once: a second decision, either way, is refused and moves nothing.
RESET ROLE;
SELECT count(*) AS journal_rows FROM modelmine.journal \gset
SET ROLE regress_mm_admin;
SELECT * FROM err(format('SELECT modelmine.approve_withdrawal(%s, %L)', :w1, 'again'));
SELECT * FROM err(format('SELECT modelmine.reject_withdrawal(%s, %L)', :w1, 'too late'));
SELECT * FROM err(format('SELECT modelmine.approve_withdrawal(%s, %L)', :w2, 'after all'));
SELECT * FROM err($$SELECT modelmine.reject_withdrawal(999, 'no such')$$);
RESET ROLE;
SELECT count(*) - :journal_rows AS journal_rows_added FROM modelmine.journal;
SET ROLE regress_mm_admin;
SELECT id = :w1 AS is_w1, email, amount, status, payout_reference, reason, decided_by FROM modelmine.withdrawals();
RESET ROLE;
SELECT * FROM books WHERE kind IN ('held', 'withdrawn');
-- Ann's history: both requests held, the rejected one released; her list says how each ended.
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.balance() AS ann_balance;
SELECT amount, direction, reason, counterparty FROM modelmine.my_transactions(3);
SELECT amount, status, payout_reference, reason, decided_at IS NOT NULL AS decided FROM modelmine.my_withdrawals();
-- Ben sees none of Ann's withdrawals.
SELECT modelmine.authenticate(:'tok_ben') IS NOT NULL AS ben;
SELECT count(*) AS bens_withdrawals FROM modelmine.my_withdrawals();
-- supply = balances + escrow + fee + held + withdrawn, and the new states are checked: a forged
-- pending withdrawal with no tokens held for it is reported.
SELECT count(*) AS violations FROM modelmine.check_invariants();
INSERT INTO modelmine.withdrawals (user_id, amount, destination) VALUES (2, 7, 'forged');
SELECT * FROM modelmine.check_invariants();
DELETE FROM modelmine.withdrawals WHERE destination = 'forged';

-------------------------------------------------------------------------------------------------------
-- Fee distribution
-------------------------------------------------------------------------------------------------------
-- The jobs above settled this month.  To have a month that has ended, their rewards and fees are
-- moved to last month (the journal refuses changes; its trigger is bypassed for this fixture only).
SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date AS last_month,
       (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 month')::date AS month_before,
       date_trunc('month', now() AT TIME ZONE 'UTC')::date AS this_month \gset
SET session_replication_role = replica;
UPDATE modelmine.journal SET created_at = :'last_month'::timestamp AT TIME ZONE 'UTC' + interval '10 days'
 WHERE reason IN ('reward', 'fee');
RESET session_replication_role;
-- The month's pool is 20 + 7 + 10 = 37 (fees), the work 80 + 26 (node a) and 40 (node b) tokens of
-- rewards: node a gets floor(37 * 106 / 146) = 26, node b floor(37 * 40 / 146) = 10; 1 stays.
SELECT reason, sum(amount) FROM modelmine.journal WHERE reason IN ('reward', 'fee') GROUP BY 1 ORDER BY 1;
SELECT sum(balance) AS fee_shards FROM modelmine.account_balances WHERE kind = 'fee';
-- Admins only; a month that has not ended, a day that is not the first, and NULL are refused.
SET ROLE regress_mm_client;
SELECT * FROM err(format('SELECT modelmine.distribute_fees(%L)', :'last_month'));
RESET ROLE;
SELECT modelmine.authenticate(:'tok_adm') IS NOT NULL AS adm;
SET ROLE regress_mm_admin;
SELECT code, message LIKE 'period % has not ended' AS not_ended, detail, hint LIKE 'Distribute an earlier month, or this one after %' AS hint
  FROM err(format('SELECT modelmine.distribute_fees(%L)', :'this_month'));
SELECT * FROM err($$SELECT modelmine.distribute_fees('2026-10-15')$$);
SELECT * FROM err($$SELECT modelmine.distribute_fees(NULL)$$);
SELECT * FROM err($$SELECT modelmine.distribute_fees('infinity')$$);
-- Paid once.
SELECT r - 'period' - 'distributed_at' AS first_run, (r ->> 'period')::date = :'last_month'::date AS period_matches
  FROM modelmine.distribute_fees(:'last_month') r;
RESET ROLE;
SELECT count(*) AS journal_rows FROM modelmine.journal \gset
SET ROLE regress_mm_admin;
SELECT r - 'period' - 'distributed_at' AS second_run FROM modelmine.distribute_fees(:'last_month') r;
RESET ROLE;
SELECT count(*) - :journal_rows AS journal_rows_added FROM modelmine.journal;
SET ROLE regress_mm_admin;
-- A month with no fees distributes nothing, once.
SELECT r - 'period' - 'distributed_at' AS empty_month FROM modelmine.distribute_fees(:'month_before') r;
SELECT period = :'last_month' AS last_month, pool, paid, nodes, distributed_by FROM modelmine.fee_distributions();
RESET ROLE;
SELECT j.debit_account BETWEEN 32 AND 47 AS from_fee_shard, n.name, sum(j.amount)
  FROM modelmine.journal j JOIN modelmine.accounts a ON a.id = j.credit_account JOIN modelmine.nodes n ON n.id = a.node_id
 WHERE j.reason = 'fee_distribution' GROUP BY 1, 2 ORDER BY 2;
SELECT sum(balance) AS fee_shards FROM modelmine.account_balances WHERE kind = 'fee';
-- Operators see their node's share in its transactions; only their own nodes.
SELECT modelmine.authenticate(:'tok_ops') IS NOT NULL AS ops;
SELECT amount, direction, reason, counterparty FROM modelmine.node_transactions(:node_a, 2);
SELECT * FROM err(format('SELECT * FROM modelmine.node_transactions(%s)', :node_b));
SELECT count(*) AS violations FROM modelmine.check_invariants();
-- A forged distribution record is reported.
INSERT INTO modelmine.fee_distributions (period, pool, paid, distributed_by) VALUES ('2000-01-01', 5, 5, 'forger');
SELECT * FROM modelmine.check_invariants();
DELETE FROM modelmine.fee_distributions WHERE period = '2000-01-01';
SELECT * FROM modelmine.check_invariants();

RESET ROLE;
DROP VIEW books, locks;
DROP OWNED BY regress_mm_admin, regress_mm_client;
DROP ROLE regress_mm_admin;
DROP ROLE regress_mm_client;
