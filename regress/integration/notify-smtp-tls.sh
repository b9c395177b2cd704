#!/usr/bin/env bash
# notify-smtp-tls: modelmine-notify's SMTP security: STARTTLS (required by default) with the server's
# certificate checked, AUTH, and smtps:// (TLS from the first byte).
#
# The sink requires STARTTLS before MAIL and AUTH (only over TLS) with a certificate from a CA the
# test makes.  Without --cacert the certificate is not trusted; with a wrong password AUTH fails;
# both are the operator's to fix, so the mail stays PENDING (retried), not dead.  With both right it is
# SENT over TLS.  A second sink speaks smtps.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin notify-smtp-tls
. "$(dirname "$0")/notify-lib.sh"
nt_setup
it_make_ca "$IT_TMP" smtp
NT_MAIL=$IT_TMP/mail
mkdir -p "$NT_MAIL" "$IT_TMP/mail2"
NT_SMTP_PORT=$(mm_free_port)
"$NT_PYTHON" "$MM_REPO/regress/integration/smtp-sink.py" "$NT_SMTP_PORT" "$NT_MAIL" \
    --tls "$IT_TMP/smtp-cert.pem" "$IT_TMP/smtp-key.pem" --auth mailer:right-password >"$IT_TMP/smtp-sink.log" 2>&1 &
IT_OTHER_PIDS+=($!)
nt_wait_port "$NT_SMTP_PORT"

ann=$(signup ann@example.com "ann password")
as_user "$ann" "SELECT modelmine.set_notification_prefs(ARRAY['job_canceled'], true)" >/dev/null
cancel() {
    local j
    j=$(as_user "$ann" "SELECT modelmine.submit_job('$1', '{\"trainer\": \"noop\"}', NULL, 5)")
    as_user "$ann" "SELECT modelmine.cancel_job($j)" >/dev/null
}
# notifier ARGS...: (re)start modelmine-notify against the STARTTLS sink
notifier() {
    [[ -z "${NT_PID:-}" ]] || { kill -TERM "$NT_PID"; wait "$NT_PID" 2>/dev/null || true; }
    PGUSER=mm_notifier PGDATABASE=$IT_DB "$NT_BIN" --smtp-from 'ModelMine <noreply@modelmine.test>' \
        --dashboard-url http://dash.modelmine.test --poll-ms 200 "$@" >>"$IT_TMP/notify.log" 2>&1 &
    NT_PID=$!
    IT_OTHER_PIDS+=("$NT_PID")
}

step "STARTTLS, but the test CA is not trusted (no --cacert): the mail waits"
cancel first
MODELMINE_SMTP_PASSWORD=right-password notifier --smtp-url "smtp://localhost:$NT_SMTP_PORT" --smtp-user mailer
check_within 15 "PENDING, retried, the certificate named in the error" \
    "SELECT status = 'PENDING' AND attempts >= 2 AND last_error ILIKE '%certificate%' FROM modelmine.outbox"
check "the sink received nothing" "$(find "$NT_MAIL" -name '*.eml' | wc -l)" 0

step "the CA trusted, a wrong password: AUTH fails, the mail waits (not dead)"
MODELMINE_SMTP_PASSWORD=wrong-password notifier --smtp-url "smtp://localhost:$NT_SMTP_PORT" --smtp-user mailer \
    --cacert "$IT_TMP/smtp-ca.pem" --timeout 3
# (after refusing the password, this sink leaves libcurl's next AUTH step unanswered: a timeout)
check_within 15 "PENDING, retried again" \
    "SELECT status = 'PENDING' AND attempts >= 4 AND last_error NOT ILIKE '%certificate%' FROM modelmine.outbox"
check_true "the sink saw a failed AUTH" test -s "$NT_MAIL/auth-failures"

step "--smtp-tls none against a server that requires STARTTLS: refused, waits (not dead)"
MODELMINE_SMTP_PASSWORD=right-password notifier --smtp-url "smtp://localhost:$NT_SMTP_PORT" --smtp-user mailer \
    --smtp-tls none
check_within 15 "PENDING, the server's refusal named" \
    "SELECT status = 'PENDING' AND last_error ~ 'SMTP 5[0-9][0-9]' FROM modelmine.outbox"

step "the password from the environment, the CA trusted: SENT over STARTTLS"
MODELMINE_SMTP_PASSWORD=right-password notifier --smtp-url "smtp://localhost:$NT_SMTP_PORT" --smtp-user mailer \
    --cacert "$IT_TMP/smtp-ca.pem"
check_within 20 "SENT" "SELECT status = 'SENT' FROM modelmine.outbox"
check "one mail in the sink" "$(find "$NT_MAIL" -name '*.eml' | wc -l)" 1
check_true "the session that carried it had switched to TLS" grep -q 'tls=True' "$NT_MAIL/sessions.log"
check_true "To: ann" grep -q '^To: <ann@example.com>' "$NT_MAIL"/mail-1.eml
check_true "the password is in no log line" bash -c "! grep -q right-password '$IT_TMP/notify.log'"

step "smtps:// (TLS from the first byte)"
port2=$(mm_free_port)
"$NT_PYTHON" "$MM_REPO/regress/integration/smtp-sink.py" "$port2" "$IT_TMP/mail2" \
    --tls "$IT_TMP/smtp-cert.pem" "$IT_TMP/smtp-key.pem" --implicit --auth mailer:right-password \
    >"$IT_TMP/smtps-sink.log" 2>&1 &
IT_OTHER_PIDS+=($!)
nt_wait_port "$port2"
MODELMINE_SMTP_PASSWORD=right-password notifier --smtp-url "smtps://localhost:$port2" --smtp-user mailer \
    --cacert "$IT_TMP/smtp-ca.pem"
cancel second
check_within 20 "the second cancel is SENT" "SELECT count(*) = 2 FROM modelmine.outbox WHERE status = 'SENT'"
check "one mail in the smtps sink" "$(find "$IT_TMP/mail2" -name '*.eml' | wc -l)" 1
check_true "... the second job's" grep -q '^Subject: Job [0-9]* was canceled: second' "$IT_TMP"/mail2/mail-1.eml
it_end
