-- outbox: the notification outbox (issue 16).  Events are written by triggers in the transaction of
-- the event (a rollback leaves nothing), one row per delivery (email, each webhook) sharing an event
-- id, only as the user's preferences say; modelmine-notify claims them with a lease, and a failure is
-- retried with backoff until it is dead-lettered with its reason, which the user can see.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_client;
DROP ROLE IF EXISTS regress_mm_notifier;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
CREATE ROLE regress_mm_client LOGIN;
GRANT modelmine_user TO regress_mm_client;
CREATE ROLE regress_mm_notifier LOGIN;
GRANT modelmine_notifier TO regress_mm_notifier;
-- outbox: what a test can compare (no uuids or times)
CREATE OR REPLACE VIEW outbox AS
    SELECT o.id, u.email AS user_email, o.event, o.channel, o.destination, o.status, o.attempts, o.last_error,
           o.payload - 'finished_at' - 'decided_at' - 'last_seen' - 'token' AS payload
      FROM modelmine.outbox o JOIN modelmine.users u ON u.id = o.user_id ORDER BY o.id;

SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ops@example.com', 'ops password') AS ops,
       modelmine.signup('adm@example.com', 'adm password') AS adm;
SELECT modelmine.set_user_role('adm@example.com', 'admin');
SELECT modelmine.login('ann@example.com', 'ann password') AS tok_ann \gset
SELECT modelmine.login('ops@example.com', 'ops password') AS tok_ops \gset
SELECT modelmine.login('adm@example.com', 'adm password') AS tok_adm \gset
-- Without email_verification (the default) signup writes no outbox row.
SELECT count(*) AS outbox_rows FROM modelmine.outbox;

-------------------------------------------------------------------------------------------------------
-- Preferences
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
-- No row: nothing is sent.
SELECT modelmine.notification_prefs();
SELECT * FROM err($$SELECT modelmine.set_notification_prefs(ARRAY['job_completed', 'job_exploded'])$$);
SELECT * FROM err($$SELECT modelmine.set_notification_prefs(ARRAY['email_verification'])$$);
SELECT * FROM err($$SELECT modelmine.set_notification_prefs(ARRAY[NULL]::text[])$$);
SELECT * FROM err($$SELECT modelmine.set_notification_prefs(balance_threshold => -1)$$);
SELECT modelmine.set_notification_prefs(ARRAY['job_completed', 'job_failed', 'job_canceled', 'job_completed'], true, 500);
-- NULL keeps a value (events too: an empty ARRAY() over NULL once cleared them), 0 clears the threshold.
SELECT modelmine.set_notification_prefs(email => false);
SELECT modelmine.set_notification_prefs(balance_threshold => 0);
SELECT modelmine.set_notification_prefs(ARRAY['job_completed', 'job_failed', 'job_canceled', 'balance_low',
                                              'withdrawal_decided'], true, 850);
-- Webhooks: only http(s), no credentials in the URL; the secret is shown once and never listed.
SELECT * FROM err($$SELECT modelmine.add_webhook('ftp://example.com/hook')$$);
SELECT * FROM err($$SELECT modelmine.add_webhook('https://user:pw@example.com/hook')$$);
SELECT * FROM err($$SELECT modelmine.add_webhook('https://exa mple.com/hook')$$);
SELECT modelmine.add_webhook('https://hooks.example.com/a') AS hook \gset
SELECT (:'hook'::jsonb) ->> 'url' AS url, (:'hook'::jsonb) ->> 'secret' ~ '^whsec_[0-9a-f]{64}$' AS secret_shape;
SELECT modelmine.add_webhook('http://hooks.example.com/b') ->> 'url' AS url;
SELECT jsonb_path_query_array(modelmine.notification_prefs(), '$.webhooks[*].url') AS webhooks,
       modelmine.notification_prefs()::text LIKE '%secret%' AS shows_secret;
-- At most 10 webhooks.
SELECT count(modelmine.add_webhook('https://hooks.example.com/n' || i)) FROM generate_series(3, 10) i;
SELECT * FROM err($$SELECT modelmine.add_webhook('https://hooks.example.com/11')$$);
SELECT sum(modelmine.remove_webhook(w.id)) AS dead_lettered FROM modelmine.notification_webhooks w
 WHERE w.url LIKE '%/n%';
SELECT * FROM err($$SELECT modelmine.remove_webhook(-1)$$);
-- Users and the notifier read no table: secrets stay with the extension.
SET ROLE regress_mm_client;
SELECT * FROM err($$SELECT secret FROM modelmine.notification_webhooks$$);
SELECT * FROM err($$SELECT * FROM modelmine.outbox$$);
SELECT * FROM err($$SELECT modelmine.outbox_claim()$$);
SET ROLE regress_mm_notifier;
SELECT * FROM err($$SELECT secret FROM modelmine.notification_webhooks$$);
SELECT * FROM err($$SELECT modelmine.notification_prefs()$$);
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- Job events: one row per delivery, one event id per event, only for the owner's chosen events
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.submit_job('to cancel', '{"trainer": "noop"}', NULL, 50) AS job_cancel \gset
-- A rolled-back cancel announces nothing.
BEGIN;
SELECT modelmine.cancel_job(:job_cancel) AS refunded;
SELECT count(*) AS in_transaction FROM modelmine.outbox;
ROLLBACK;
SELECT count(*) AS after_rollback FROM modelmine.outbox;
SELECT modelmine.cancel_job(:job_cancel) AS refunded;
SELECT * FROM outbox;
SELECT count(DISTINCT event_id) AS event_ids, count(*) AS deliveries FROM modelmine.outbox;
-- A node completes one job and fails another.
SELECT modelmine.submit_job('to complete', '{"trainer": "noop"}', NULL, 60) AS job_done \gset
SELECT modelmine.submit_job('to fail', '{"trainer": "noop"}', NULL, 40) AS job_fail \gset
SELECT modelmine.authenticate(:'tok_ops') IS NOT NULL AS ops;
SELECT node_id AS node_a, node_key AS key_a FROM modelmine.register_node('node a', '{"trainers": ["noop"], "slots": 2}') \gset
SELECT modelmine.authenticate_node(:'key_a') IS NOT NULL AS node_a;
SELECT modelmine.heartbeat(1, 1, 10) IS NOT NULL AS beat;
SELECT count(*) AS claimed FROM modelmine.claim_jobs(2, 60);
SELECT modelmine.complete_job(:job_done, '{"loss": 0.1, "epochs": 1}') > 0 AS completed;
SELECT modelmine.fail_job(:job_fail, 'out of memory') IS NOT NULL AS failed;
SELECT * FROM outbox WHERE id > 2;
-- A batch settled in one statement (complete_jobs): one event per job that ended, none for a claim.
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT count(modelmine.submit_job('batch ' || i, '{"trainer": "noop"}', NULL, 5)) AS submitted
  FROM generate_series(1, 2) i;
SELECT modelmine.authenticate_node(:'key_a') IS NOT NULL AS node_a;
SELECT max(id) AS before_claim FROM modelmine.outbox \gset
SELECT array_agg(job_id ORDER BY job_id) AS batch FROM modelmine.claim_jobs(2, 60) \gset
SELECT count(*) AS written_by_the_claim FROM modelmine.outbox WHERE id > :before_claim;
SELECT job_id = ANY (:'batch') AS in_batch, reward, sqlstate, error FROM modelmine.complete_jobs(
    (SELECT jsonb_agg(jsonb_build_object('job_id', j, 'result', '{"loss": 0.2, "epochs": 1}'::jsonb))
       FROM unnest(:'batch'::bigint[]) j));
SELECT event, channel, payload ->> 'status' AS status, (payload ->> 'job_id')::bigint = ANY (:'batch') AS in_batch
  FROM modelmine.outbox WHERE id > :before_claim ORDER BY id;
-- The operator chose nothing, so nothing is written for ops.
SELECT count(*) AS for_ops FROM modelmine.outbox o JOIN modelmine.users u ON u.id = o.user_id
 WHERE u.email = 'ops@example.com';

-------------------------------------------------------------------------------------------------------
-- Balance threshold (850): announced when a debit crosses it, once, not on every debit below it
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.balance() AS ann_balance;
SELECT modelmine.submit_job('crosses', '{"trainer": "noop"}', NULL, 100) IS NOT NULL AS submitted;
SELECT modelmine.submit_job('below already', '{"trainer": "noop"}', NULL, 10) IS NOT NULL AS submitted;
SELECT event, channel, payload FROM outbox WHERE event = 'balance_low';

-------------------------------------------------------------------------------------------------------
-- Withdrawal decided
-------------------------------------------------------------------------------------------------------
SELECT modelmine.verify_user('ann@example.com') AS unlocked;
SELECT modelmine.request_withdrawal(5, 'bank account 1') AS wd \gset
SELECT modelmine.authenticate(:'tok_adm') IS NOT NULL AS adm;
SELECT modelmine.reject_withdrawal(:wd, 'unknown bank') AS released;
SELECT event, channel, payload FROM outbox WHERE event = 'withdrawal_decided';

-------------------------------------------------------------------------------------------------------
-- Node OFFLINE, from missed heartbeats: once per silence, however often or by how many it is checked
-------------------------------------------------------------------------------------------------------
SELECT modelmine.authenticate(:'tok_ops') IS NOT NULL AS ops;
SELECT modelmine.set_notification_prefs(ARRAY['node_offline'], true);
SELECT modelmine.detect_offline_nodes() AS offline_now;
UPDATE modelmine.nodes SET last_seen = now() - interval '16 seconds' WHERE id = :node_a;
SELECT modelmine.detect_offline_nodes() AS offline_now, modelmine.detect_offline_nodes() AS again;
SELECT event, channel, destination, payload FROM outbox WHERE event = 'node_offline';
-- Back, then silent again: a new silence, a new event.
UPDATE modelmine.nodes SET last_seen = now() - interval '15.5 seconds' WHERE id = :node_a;
SELECT modelmine.detect_offline_nodes() AS offline_now;
-- Nodes silent for over a day are not announced (no flood after an upgrade or a long stop).
UPDATE modelmine.nodes SET last_seen = now() - interval '2 days' WHERE id = :node_a;
DELETE FROM modelmine.node_offline_events;
SELECT modelmine.detect_offline_nodes() AS offline_now;
SET ROLE regress_mm_notifier;
SELECT modelmine.detect_offline_nodes() AS notifier_may_call;
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- The sender: claim with a lease, retry with backoff, dead-letter with the reason
-------------------------------------------------------------------------------------------------------
SET ROLE regress_mm_notifier;
SELECT * FROM err($$SELECT * FROM modelmine.outbox_claim(0, 60)$$);
SELECT * FROM err($$SELECT * FROM modelmine.outbox_claim(10, 0)$$);
-- Webhook deliveries come with the secret to sign with; email ones without.
CREATE TEMP TABLE claimed AS SELECT * FROM modelmine.outbox_claim(3, 60);
SELECT event, channel, destination, secret ~ '^[0-9a-f]{64}$' AS has_secret, attempts FROM claimed ORDER BY id;
SELECT min(id) AS c1, min(id) + 1 AS c2, max(id) AS c3 FROM claimed \gset
-- Claimed rows are leased: no other sender gets them until the lease ends.
SELECT count(*) AS claimed_again FROM modelmine.outbox_claim(1000, 60) WHERE id <= :c3;
RESET ROLE;
SELECT status, attempts, next_attempt_at > now() + interval '59 s' AS leased
  FROM modelmine.outbox WHERE id <= :c3 ORDER BY id;
SET ROLE regress_mm_notifier;
SELECT * FROM err($$SELECT modelmine.outbox_done(1, false)$$);
SELECT * FROM err($$SELECT modelmine.outbox_done(-5, true)$$);
SELECT modelmine.outbox_done(:c1, true) AS first, modelmine.outbox_done(:c1, false, 'late') AS already;
SELECT modelmine.outbox_done(:c2, false, 'HTTP status 503') AS transient;
SELECT modelmine.outbox_done(:c3, false, 'webhook address 10.0.0.1 is not allowed (private)', true) AS permanent;
RESET ROLE;
SELECT id, status, attempts, last_error, sent_at IS NOT NULL AS sent,
       next_attempt_at BETWEEN now() + interval '0.49 s' AND now() + interval '1.01 s' AS backoff_1s
  FROM modelmine.outbox WHERE id <= :c3 ORDER BY id;
-- The backoff doubles with each attempt (with jitter in its upper half), capped at an hour.
UPDATE modelmine.outbox SET attempts = 5 WHERE id = :c2;
SET ROLE regress_mm_notifier;
SELECT modelmine.outbox_done(:c2, false, 'HTTP status 503') AS transient;
RESET ROLE;
SELECT next_attempt_at BETWEEN now() + interval '7.99 s' AND now() + interval '16.01 s' AS backoff_16s
  FROM modelmine.outbox WHERE id = :c2;
-- Past outbox_max_age_seconds the next failure dead-letters it.
UPDATE modelmine.outbox SET created_at = now() - interval '1 day' WHERE id = :c2;
SET ROLE regress_mm_notifier;
SELECT modelmine.outbox_done(:c2, false, 'HTTP status 503') AS too_old;
RESET ROLE;
-- The user sees dead letters with their reasons, and never another user's.
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT event, channel, destination, state, attempts, last_error FROM modelmine.my_notifications('DEAD');
SELECT * FROM err($$SELECT * FROM modelmine.my_notifications('LOST')$$);
SELECT count(*) AS ann_sees FROM modelmine.my_notifications();
SELECT modelmine.authenticate(:'tok_ops') IS NOT NULL AS ops;
SELECT count(*) AS ops_sees FROM modelmine.my_notifications();
-- Removing a webhook dead-letters what it has not received.
SELECT modelmine.authenticate(:'tok_ann') IS NOT NULL AS ann;
SELECT modelmine.remove_webhook(w.id) AS dead_lettered FROM modelmine.notification_webhooks w
 WHERE w.url = 'http://hooks.example.com/b';
SELECT status, count(*) FROM modelmine.outbox WHERE destination = 'http://hooks.example.com/b' GROUP BY 1;

-------------------------------------------------------------------------------------------------------
-- Email verification: the link's token unlocks the signup grant, once
-------------------------------------------------------------------------------------------------------
UPDATE modelmine.settings SET value = 1 WHERE name = 'email_verification';
SELECT modelmine.signup('new@example.com', 'new password') AS new_user \gset
SELECT event, channel, destination, status FROM modelmine.outbox WHERE user_id = :new_user;
SELECT payload ->> 'token' AS token FROM modelmine.outbox WHERE user_id = :new_user \gset
SELECT length(:'token') AS token_length,
       (SELECT count(*) FROM modelmine.email_verifications WHERE token_hash = sha256(convert_to(:'token', 'UTF8'))) AS stored_hashed;
SET ROLE regress_mm_client;
SELECT * FROM err($$SELECT modelmine.verify_email('not a token')$$);
SELECT modelmine.verify_email(:'token') = :new_user AS verified;
SELECT * FROM err(format('SELECT modelmine.verify_email(%L)', :'token'));
RESET ROLE;
SELECT grant_locked, verified_at IS NOT NULL AS verified FROM modelmine.users WHERE id = :new_user;
-- Once sent, the outbox keeps no token: the link lives only in the email.
SELECT id AS vrow FROM modelmine.outbox WHERE user_id = :new_user \gset
SET ROLE regress_mm_notifier;
SELECT modelmine.outbox_done(:vrow, true) AS sent;
RESET ROLE;
SELECT payload ? 'token' AS token_kept, payload ->> 'email' AS email FROM modelmine.outbox WHERE id = :vrow;
-- An expired link is refused.
SELECT modelmine.signup('late@example.com', 'late password') AS late_user \gset
SELECT payload ->> 'token' AS late_token FROM modelmine.outbox WHERE user_id = :late_user \gset
UPDATE modelmine.email_verifications SET expires_at = now() - interval '1 second' WHERE user_id = :late_user;
SELECT * FROM err(format('SELECT modelmine.verify_email(%L)', :'late_token'));
UPDATE modelmine.settings SET value = 0 WHERE name = 'email_verification';

-- The books are untouched by all of it.
SELECT * FROM modelmine.check_invariants();
DROP VIEW outbox;
