-- tokens: the signup grant, transfers, minting, the append-only journal and the invariants that say
-- the books balance.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_admin;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- books: every account that holds or owes tokens, with its owner.
CREATE OR REPLACE VIEW books AS
    SELECT a.id, a.kind, u.email, a.balance
      FROM modelmine.account_balances a LEFT JOIN modelmine.users u ON u.id = a.user_id
     WHERE a.balance <> 0 OR a.kind IN ('issuance', 'user')
     ORDER BY a.id;
CREATE OR REPLACE VIEW journal AS
    SELECT j.id, j.debit_account AS debit, j.credit_account AS credit, j.amount, j.reason, j.job_id
      FROM modelmine.journal j ORDER BY j.id;

-- An administrator: a login role that is a member of modelmine_admin (not a superuser).
CREATE ROLE regress_mm_admin LOGIN;
GRANT modelmine_admin TO regress_mm_admin;

-------------------------------------------------------------------------------------------------------
-- Signup grant
-------------------------------------------------------------------------------------------------------
-- 1000 tokens by default, issued from account 1 and journaled.
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ben@example.com', 'ben password') AS ben;
SELECT * FROM books;
SELECT * FROM journal;

-- The grant follows the setting: 5, then 0 (no tokens and no journal row at all).
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('signup_grant', 5);
RESET ROLE;
SELECT modelmine.signup('cat@example.com', 'cat password') AS cat;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('signup_grant', 0);
RESET ROLE;
SELECT count(*) AS journal_rows_before FROM modelmine.journal \gset
SELECT modelmine.signup('dan@example.com', 'dan password') AS dan;
SELECT count(*) - :journal_rows_before AS journal_rows_added FROM modelmine.journal;
SET ROLE regress_mm_admin;
SELECT modelmine.set_setting('signup_grant', 1000);
SELECT email, balance FROM modelmine.users() ORDER BY id;
RESET ROLE;

-- A signup grant cannot leave the account until the user is verified (tokenloop.sql tests the lock):
-- verified here, these users can move all their tokens.
SET ROLE regress_mm_admin;
SELECT email, modelmine.verify_user(email) AS unlocked FROM modelmine.users() ORDER BY id;
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- Transfer
-------------------------------------------------------------------------------------------------------
SELECT * FROM err($$SELECT modelmine.transfer('ben@example.com', 10)$$);

SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ben@example.com', 'ben password') AS tok_ben \gset
SELECT modelmine.authenticate(:'tok_ann');
-- A transfer returns its journal entry; the recipient's email is normalised like at signup.
SELECT modelmine.transfer('  BEN@example.com ', 250) AS journal_id;
SELECT * FROM journal WHERE reason = 'transfer';
SELECT modelmine.balance() AS ann_balance;
SELECT email, balance FROM modelmine.users() WHERE email IN ('ann@example.com', 'ben@example.com');
-- Both sides see it in their transactions, newest first, with the counterparty.
SELECT id, amount, direction, reason, job_id, counterparty FROM modelmine.my_transactions();
SELECT modelmine.authenticate(:'tok_ben');
SELECT id, amount, direction, reason, job_id, counterparty FROM modelmine.my_transactions();
SELECT modelmine.authenticate(:'tok_ann');

-- Refused transfers change nothing.
SELECT count(*) AS journal_rows_before FROM modelmine.journal \gset
SELECT v.label, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('to yourself', $$SELECT modelmine.transfer('ann@example.com', 1)$$),
               ('to yourself, other spelling', $$SELECT modelmine.transfer(' Ann@Example.com', 1)$$),
               ('unknown recipient', $$SELECT modelmine.transfer('nobody@example.com', 1)$$),
               ('malformed recipient', $$SELECT modelmine.transfer('nobody', 1)$$),
               ('NULL recipient', $$SELECT modelmine.transfer(NULL, 1)$$),
               ('amount 0', $$SELECT modelmine.transfer('ben@example.com', 0)$$),
               ('amount -1', $$SELECT modelmine.transfer('ben@example.com', -1)$$),
               ('amount NULL', $$SELECT modelmine.transfer('ben@example.com', NULL)$$),
               ('amount 10^15 + 1', $$SELECT modelmine.transfer('ben@example.com', 1000000000000001)$$),
               ('one more than the balance', $$SELECT modelmine.transfer('ben@example.com', 751)$$),
               ('amount 10^15', $$SELECT modelmine.transfer('ben@example.com', 1000000000000000)$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT count(*) = :journal_rows_before AS no_journal_row_added FROM modelmine.journal;
SELECT modelmine.balance() AS ann_balance;
-- The whole balance can go, and come back.
SELECT modelmine.transfer('ben@example.com', 750) > 0 AS sent_all;
SELECT modelmine.balance() AS ann_balance;
SELECT modelmine.authenticate(:'tok_ben');
SELECT modelmine.transfer('ann@example.com', 1000) > 0 AS sent_back;
SELECT modelmine.balance() AS ben_balance;
SELECT * FROM modelmine.check_invariants();

-- my_transactions(max_rows): at most that many, 0 to 1000 (both accepted); NULL, a negative count or
-- more than 1000 is refused with 22023 rather than silently read as "none" or "all".
SELECT count(*) AS all_rows FROM modelmine.my_transactions();
SELECT id, amount, direction, reason, counterparty FROM modelmine.my_transactions(1);
SELECT (SELECT count(*) FROM modelmine.my_transactions(0)) AS zero,
       (SELECT count(*) FROM modelmine.my_transactions(1000)) AS thousand;
SELECT v.max_rows, e.code, e.message, e.detail, e.hint
  FROM (VALUES (NULL::integer), (-1), (-5), (1001), (100000)) v(max_rows)
 CROSS JOIN LATERAL err(format('SELECT * FROM modelmine.my_transactions(%s)', coalesce(v.max_rows::text, 'NULL'))) e;

-------------------------------------------------------------------------------------------------------
-- Mint (admin)
-------------------------------------------------------------------------------------------------------
SELECT modelmine.deauthenticate();
SET ROLE regress_mm_admin;
-- Minting needs no signed-in user, only the admin role; issuance goes (further) negative.
SELECT modelmine.mint(' Cat@example.com', 495) > 0 AS minted;
SELECT v.label, e.code, e.message, e.detail
  FROM (VALUES ('amount 0', $$SELECT modelmine.mint('cat@example.com', 0)$$),
               ('amount NULL', $$SELECT modelmine.mint('cat@example.com', NULL)$$),
               ('amount 10^15 + 1', $$SELECT modelmine.mint('cat@example.com', 1000000000000001)$$),
               ('unknown email', $$SELECT modelmine.mint('nobody@example.com', 1)$$)) v(label, stmt)
 CROSS JOIN LATERAL err(v.stmt) e;
SELECT * FROM modelmine.check_invariants();
RESET ROLE;
SELECT * FROM books;
SELECT * FROM journal WHERE reason = 'mint';
-- Supply (every balance but issuance) equals what was issued.
SELECT sum(balance) FILTER (WHERE kind <> 'issuance') AS supply, -sum(balance) FILTER (WHERE kind = 'issuance') AS issued
  FROM modelmine.account_balances;

-------------------------------------------------------------------------------------------------------
-- The journal is append-only, for every role including the superuser
-------------------------------------------------------------------------------------------------------
SELECT current_setting('is_superuser') AS superuser;
SELECT * FROM err('UPDATE modelmine.journal SET amount = amount + 1');
SELECT * FROM err('DELETE FROM modelmine.journal WHERE id = 1');
SELECT * FROM err('TRUNCATE modelmine.journal');
SELECT count(*) AS journal_rows, sum(amount) AS journal_total FROM modelmine.journal;
-- The journal names accounts by id, checked once per statement (no foreign key: it share-locked the
-- escrow and fee shards every settlement names); accounts are never removed, so the check holds.
SELECT * FROM err('INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason)
                   VALUES (1, 1000, 5, ''mint''), (1, 999999, 5, ''mint'')');
SELECT * FROM err('DELETE FROM modelmine.accounts WHERE id = 1000');
SELECT * FROM err('TRUNCATE modelmine.accounts CASCADE');
SELECT count(*) AS journal_rows, sum(amount) AS journal_total FROM modelmine.journal;

-------------------------------------------------------------------------------------------------------
-- check_invariants reports books that do not balance
-------------------------------------------------------------------------------------------------------
-- A balance changed behind the journal's back breaks two invariants; putting it back heals them.
UPDATE modelmine.accounts SET balance = balance + 7 WHERE user_id = 1;
SELECT * FROM modelmine.check_invariants();
UPDATE modelmine.accounts SET balance = balance - 7 WHERE user_id = 1;
SELECT * FROM modelmine.check_invariants();
-- Tokens moved between two accounts without a journal row: supply is intact, both balances are off.
UPDATE modelmine.accounts SET balance = balance + 10 WHERE user_id = 1;
UPDATE modelmine.accounts SET balance = balance - 10 WHERE user_id = 2;
SELECT * FROM modelmine.check_invariants();
UPDATE modelmine.accounts SET balance = balance - 10 WHERE user_id = 1;
UPDATE modelmine.accounts SET balance = balance + 10 WHERE user_id = 2;
SELECT * FROM modelmine.check_invariants();
-- Only the issuance account may be negative; the table refuses it for any other.
SELECT * FROM err('UPDATE modelmine.accounts SET balance = -1 WHERE user_id = 4');

-------------------------------------------------------------------------------------------------------
-- Settings (admin)
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_admin;
SELECT v.name, v.value, e.code, e.message, e.detail, e.hint
  FROM (VALUES ('bogus', 1::bigint), (NULL, 1), ('signup_grant', -1), ('signup_grant', NULL),
               ('signup_grant', 1000000001), ('reward_pct', 101), ('bcrypt_cost', 3), ('bcrypt_cost', 17),
               ('max_config_bytes', 1), ('session_ttl_seconds', 59), ('default_stake', 0),
               ('max_attempts', 0), ('max_attempts', 101), ('offline_after_seconds', 5),
               ('offline_after_seconds', 3601), ('max_result_bytes', 1023), ('max_result_bytes', 268435457),
               ('heartbeat_notify_seconds', -1), ('heartbeat_notify_seconds', 86401)) v(name, value)
 CROSS JOIN LATERAL err(format('SELECT modelmine.set_setting(%L, %L)', v.name, v.value)) e;
-- The bounds themselves are accepted.
SELECT modelmine.set_setting('reward_pct', 100), modelmine.set_setting('reward_pct', 0),
       modelmine.set_setting('reward_pct', 80);
SELECT modelmine.set_setting('max_attempts', 1), modelmine.set_setting('max_attempts', 100),
       modelmine.set_setting('max_attempts', 3);
SELECT modelmine.set_setting('offline_after_seconds', 6), modelmine.set_setting('offline_after_seconds', 3600),
       modelmine.set_setting('offline_after_seconds', 15);
SELECT modelmine.set_setting('heartbeat_notify_seconds', 0), modelmine.set_setting('heartbeat_notify_seconds', 86400),
       modelmine.set_setting('heartbeat_notify_seconds', 60);
SELECT modelmine.set_setting('max_result_bytes', 1024), modelmine.set_setting('max_result_bytes', 268435456),
       modelmine.set_setting('max_result_bytes', 16777216);
SELECT name, value FROM modelmine.settings()
 WHERE name IN ('reward_pct', 'signup_grant', 'max_attempts', 'offline_after_seconds', 'heartbeat_notify_seconds',
                'max_result_bytes');
RESET ROLE;

SELECT * FROM modelmine.check_invariants();

DROP ROLE regress_mm_admin;
DROP VIEW books;
DROP VIEW journal;
DROP FUNCTION err(text);
