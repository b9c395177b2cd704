#!/usr/bin/env bash
# notify-delivery: modelmine-notify sends what the outbox holds, by email and by signed webhook, and
# only what committed; failures are retried until delivered or dead-lettered with their reason.
#
# A local SMTP sink (aiosmtpd) and a local webhook receiver (it verifies signatures and refuses
# replays, as the docs ask receivers to) stand in for the world; the notifier may reach loopback only
# because the test allows 127.0.0.1/32 (--allow-net), so a private address stays refused.  Checked:
# the mail's headers and body (From, To, Subject, Date, Message-ID, the dashboard link); the signature
# and the event id; email verification through its link's token; a rolled-back cancel sends nothing;
# a 550 mailbox, a 410 receiver and a private address are dead-lettered with reasons the user sees;
# the receiver down for a while gets every event once it is back, one logical event per event id.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin notify-delivery
. "$(dirname "$0")/notify-lib.sh"
nt_setup
adm "UPDATE modelmine.settings SET value = 1 WHERE name = 'email_verification'"
nt_start_sink
nt_start_receiver

step "ann signs up (a verification mail is written) and chooses job events, by email and three webhooks"
ann=$(signup ann@example.com "ann password")
as_user "$ann" "SELECT modelmine.set_notification_prefs(ARRAY['job_completed', 'job_failed', 'job_canceled'], true)" >/dev/null
as_user "$ann" "SELECT modelmine.add_webhook('http://127.0.0.1:$NT_HOOK_PORT/hook') ->> 'secret'" >>"$NT_SECRETS"
as_user "$ann" "SELECT modelmine.add_webhook('http://127.0.0.1:$NT_HOOK_PORT/gone') ->> 'secret'" >/dev/null
as_user "$ann" "SELECT modelmine.add_webhook('http://10.255.255.1:9/private') ->> 'secret'" >/dev/null
bounce=$(signup bounce@example.com "bounce password")
as_user "$bounce" "SELECT modelmine.set_notification_prefs(ARRAY['job_canceled'], true)" >/dev/null
adm "UPDATE modelmine.settings SET value = 0 WHERE name = 'email_verification'"

step "the notifier starts; ann cancels a job"
nt_start_notifier
job=$(as_user "$ann" "SELECT modelmine.submit_job('night run', '{\"trainer\": \"noop\"}', NULL, 25)")
as_user "$ann" "SELECT modelmine.cancel_job($job)" >/dev/null
wait_until 20 "ann's cancel mail, her verification mail and the /hook webhook are SENT" \
    "SELECT count(*) = 3 FROM modelmine.outbox o JOIN modelmine.users u ON u.id = o.user_id
      WHERE u.email = 'ann@example.com' AND o.status = 'SENT'"

step "the mail: headers and body"
cancel_mail=$(grep -l '^X-ModelMine-Event: job_canceled' "$NT_MAIL"/*.eml | head -1)
check_true "the sink received the job_canceled mail" test -n "$cancel_mail"
hdr() { grep -m1 -i "^$1:" "$cancel_mail" | sed -e "s/^$1: *//I" -e 's/\r$//'; }
check "From" "$(hdr From)" "ModelMine <noreply@modelmine.test>"
check "To" "$(hdr To)" "<ann@example.com>"
check "Subject" "$(hdr Subject)" "Job $job was canceled: night run"
check_true "Date is RFC 5322 (UTC)" grep -qE '^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} \+0000' "$cancel_mail"
event_id=$(adm "SELECT event_id FROM modelmine.outbox WHERE channel = 'email' AND event = 'job_canceled' AND destination = 'ann@example.com'")
check_true "Message-ID names the event (<$event_id.N@modelmine.test>)" grep -qE "^Message-ID: <$event_id\.[0-9]+@modelmine\.test>" "$cancel_mail"
check_true "the body says what happened" grep -q "Your job $job, \"night run\", is CANCELED" "$cancel_mail"
check_true "the body links the job's page in the dashboard" grep -q "^http://dash.modelmine.test/#/jobs/$job" "$cancel_mail"
check "the envelope: from the From address, to ann" "$(tr '\n' ' ' < "${cancel_mail%.eml}.env")" "noreply@modelmine.test ann@example.com "

step "the webhook: signed, with the event id in body and header"
check "/hook got one verified job_canceled event" \
    "$(hook_count '.path == "/hook" and .type == "job_canceled" and .verified and .status == 200')" 1
check "its id is the event id the email carries" \
    "$(jq -r 'select(.path == "/hook") | .event_id' "$NT_HOOK_LOG" | head -1)" "$event_id"
check "the ModelMine-Event-Id header matches the body" "$(hook_count '.path == "/hook" and .header_id_matches')" 1
check "the data links the job's page" \
    "$(jq -r 'select(.path == "/hook") | .data.url' "$NT_HOOK_LOG" | head -1)" "http://dash.modelmine.test/#/jobs/$job"

step "dead letters, with reasons the user sees"
check_within 10 "the /gone webhook (410) is DEAD" \
    "SELECT status = 'DEAD' AND last_error LIKE 'HTTP status 410 from http://127.0.0.1:%/gone' FROM modelmine.outbox WHERE destination LIKE '%/gone'"
check_sql "the private address is DEAD, refused by the URL policy without --allow-net for it" \
    "SELECT status = 'DEAD' AND last_error LIKE 'webhook address 10.255.255.1 of % is not allowed (private)%' FROM modelmine.outbox WHERE destination LIKE '%/private'"
check_within 10 "bounce@example.com's verification mail (550) is DEAD with the server's answer" \
    "SELECT status = 'DEAD' AND last_error LIKE 'SMTP 550 %' FROM modelmine.outbox WHERE destination = 'bounce@example.com'"
check "ann sees her two dead letters" \
    "$(as_user "$ann" "SELECT count(*) FROM modelmine.my_notifications('DEAD') WHERE last_error IS NOT NULL")" 2
check "the receiver found every /hook request signed" "$(hook_count '.path == "/hook" and (.verified | not)')" 0

step "email verification: the link's token verifies ann and unlocks her grant"
verify_mail=$(grep -l '^X-ModelMine-Event: email_verification' "$NT_MAIL"/*.eml | head -1)
check_true "the verification mail went to ann" grep -q '^To: <ann@example.com>' "$verify_mail"
token=$(grep -o 'http://dash.modelmine.test/auth/verify?token=[0-9a-f]*' "$verify_mail" | sed 's/.*token=//')
check "the link carries a 64-digit token" "${#token}" 64
check "verify_email(token) returns ann's id" "$(adm "SELECT modelmine.verify_email('$token') = u.id FROM modelmine.users u WHERE email = 'ann@example.com'")" t
check_sql "ann is verified and her grant unlocked" \
    "SELECT verified_at IS NOT NULL AND grant_locked = 0 FROM modelmine.users WHERE email = 'ann@example.com'"

step "a rolled-back cancel sends nothing"
job2=$(as_user "$ann" "SELECT modelmine.submit_job('kept', '{\"trainer\": \"noop\"}', NULL, 5)")
mails=$(mail_count)
as_user "$ann" "BEGIN; SELECT modelmine.cancel_job($job2); ROLLBACK;" >/dev/null
sleep 2
check "no mail" "$(mail_count)" "$mails"
check "no webhook about job $job2" "$(hook_count ".data.job_id == $job2")" 0
check_sql "no outbox row about job $job2" "SELECT count(*) = 0 FROM modelmine.outbox WHERE (payload ->> 'job_id')::bigint = $job2"

step "the receiver is down for a while: its events wait, retried, and arrive once it is back"
kill -TERM "$NT_HOOK_PID"; wait "$NT_HOOK_PID" 2>/dev/null || true
for i in 1 2 3; do
    j=$(as_user "$ann" "SELECT modelmine.submit_job('while down $i', '{\"trainer\": \"noop\"}', NULL, 5)")
    as_user "$ann" "SELECT modelmine.cancel_job($j)" >/dev/null
done
wait_until 20 "the three /hook deliveries failed at least twice each, still PENDING" \
    "SELECT count(*) = 3 FROM modelmine.outbox WHERE destination LIKE '%/hook' AND status = 'PENDING'
        AND attempts >= 2 AND last_error LIKE 'POST % failed: %'"
nt_start_receiver
check_within 30 "all three are SENT once the receiver is back" \
    "SELECT count(*) = 0 FROM modelmine.outbox WHERE destination LIKE '%/hook' AND status <> 'SENT'"
check "the receiver saw 4 events at /hook, each id once" \
    "$(jq -r 'select(.path == "/hook" and .verified) | .event_id' "$NT_HOOK_LOG" | sort -u | wc -l)" 4
check "every /hook event id is one the outbox has" \
    "$(adm "SELECT count(DISTINCT event_id) FROM modelmine.outbox WHERE destination LIKE '%/hook'")" 4
check_sql "the books are untouched" "SELECT count(*) = 0 FROM modelmine.check_invariants()"
check_true "the notifier never logged a secret" bash -c "! grep -q whsec_ '$IT_TMP/notify.log'"
check_true "the notifier is still running" proc_alive "$NT_PID"
it_end
