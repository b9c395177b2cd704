#!/usr/bin/env bash
# notify-kill9: modelmine-notify killed with SIGKILL in the middle of a batch loses nothing.
#
# 150 events wait in the outbox (an email and a webhook each) before the notifier starts with batches
# of 50 and a 3 s lease; the receiver answers in 20 ms, so a batch takes a while.  We kill -9 it once
# some deliveries are SENT: the rows of its open batch are claimed but not reported (PENDING with an
# attempt and a lease).  A new notifier must deliver every one of them once the lease ends: each event
# id reaches the receiver and the mailbox at least once, and the repeats are at most the killed batch.
# SIGTERM mid-batch stops it at once (exit 0); the batch's unsent rows wait for their lease.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin notify-kill9
. "$(dirname "$0")/notify-lib.sh"
nt_setup
nt_start_sink
nt_start_receiver

step "150 canceled jobs wait in the outbox: 300 deliveries"
ann=$(signup ann@example.com "ann password")
as_user "$ann" "SELECT modelmine.set_notification_prefs(ARRAY['job_canceled'], true)" >/dev/null
as_user "$ann" "SELECT modelmine.add_webhook('http://127.0.0.1:$NT_HOOK_PORT/slow') ->> 'secret'" >>"$NT_SECRETS"
as_user "$ann" "SELECT count(modelmine.cancel_job(modelmine.submit_job('job ' || i, '{\"trainer\": \"noop\"}', NULL, 1)))
                  FROM generate_series(1, 150) i" >/dev/null
check "300 PENDING deliveries" "$(adm "SELECT count(*) FROM modelmine.outbox WHERE status = 'PENDING'")" 300

step "the notifier starts (batch 50, lease 3 s) and is killed with SIGKILL mid-batch"
nt_start_notifier --batch 50 --lease-seconds 3
wait_until 20 "some deliveries SENT" "SELECT count(*) >= 10 FROM modelmine.outbox WHERE status = 'SENT'"
kill -KILL "$NT_PID"; wait "$NT_PID" 2>/dev/null || true
sent=$(adm "SELECT count(*) FROM modelmine.outbox WHERE status = 'SENT'")
inflight=$(adm "SELECT count(*) FROM modelmine.outbox WHERE status = 'PENDING' AND attempts > 0")
echo "at the kill: $sent SENT, $inflight claimed but not reported"
check_sql "the kill left claimed, unreported deliveries (a batch in flight)" \
    "SELECT count(*) > 0 FROM modelmine.outbox WHERE status = 'PENDING' AND attempts > 0 AND next_attempt_at > now()"
check_sql "and none was lost: every delivery is SENT or PENDING" \
    "SELECT count(*) = 300 FROM modelmine.outbox WHERE status IN ('SENT', 'PENDING')"

step "a new notifier delivers everything once the lease ends"
nt_start_notifier --batch 50 --lease-seconds 3
check_within 60 "all 300 deliveries SENT" "SELECT count(*) = 300 FROM modelmine.outbox WHERE status = 'SENT'"
check "the receiver got each of the 150 event ids" \
    "$(jq -r 'select(.path == "/slow" and .verified and .status == 200) | .event_id' "$NT_HOOK_LOG" | sort -u | wc -l)" 150
check "the mailbox got each of the 150 event ids" \
    "$(grep -h '^X-ModelMine-Event-Id:' "$NT_MAIL"/*.eml | sort -u | wc -l)" 150
repeats=$(( $(hook_count '.path == "/slow" and .status == 200') - 150 ))
echo "webhook repeats (at least once: the killed batch may be sent again): $repeats"
check_true "repeats are at most the killed batch (50): $repeats" test "$repeats" -le 50
check_sql "the outbox ids the receiver saw are the outbox's event ids" \
    "SELECT count(DISTINCT event_id) = 150 FROM modelmine.outbox"

step "SIGTERM mid-batch: the notifier stops at once (exit 0), and a restart sends the rest"
as_user "$ann" "SELECT count(modelmine.cancel_job(modelmine.submit_job('more ' || i, '{\"trainer\": \"noop\"}', NULL, 1)))
                  FROM generate_series(1, 150) i" >/dev/null
wait_until 20 "the running notifier has sent some of them" \
    "SELECT count(*) >= 310 FROM modelmine.outbox WHERE status = 'SENT'"
kill -TERM "$NT_PID"
t0=$SECONDS rc=0
wait "$NT_PID" || rc=$?
check "it exits 0" "$rc" 0
check_true "within 3 s (took $((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 3
check_true "it logged the stop" grep -q "stopping on signal 15" "$IT_TMP/notify.log"
nt_start_notifier --batch 50 --lease-seconds 3
check_within 60 "all 600 deliveries SENT after a restart" "SELECT count(*) = 600 FROM modelmine.outbox WHERE status = 'SENT'"
it_end
