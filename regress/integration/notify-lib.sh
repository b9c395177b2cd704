# shellcheck shell=bash
# regress/integration/notify-lib.sh: what the notifier's tests (notify-*.sh) share, sourced after lib.sh
# and it_begin (not executable, so scripts/test.sh skips it).
#
#   nt_setup                  a login role in modelmine_notifier; fast retries; sets NT_BIN
#   nt_start_sink             the SMTP sink (smtp-sink.py) on a free port: NT_SMTP_PORT, mail in NT_MAIL
#   nt_start_receiver         the webhook receiver (webhook-receiver.py): NT_HOOK_PORT, NT_HOOK_PID;
#                             secrets it verifies in NT_SECRETS, its requests in NT_HOOK_LOG
#   nt_start_notifier ARGS... modelmine-notify against the sink, loopback allowed: NT_PID; log notify.log
#   nt_wait_port PORT         wait for something to listen on 127.0.0.1:PORT
#   mail_count                messages the sink has received
#   hook_count JQ-FILTER      receiver requests matching a jq select() filter

# shellcheck source=scripts/lib/cluster.sh
. "$MM_REPO/scripts/lib/cluster.sh"   # mm_free_port
NT_BIN=${NT_BIN:-$MM_REPO/notify/modelmine-notify}  # lib.sh sets it with MM_SANITIZE=1
# Debian's python3-aiosmtpd is installed for the system python, not for one a PATH may put first
NT_PYTHON=${NT_PYTHON:-$( [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || echo python3)}

nt_setup() {
    [[ -x "$NT_BIN" ]] || { echo "build modelmine-notify first (make)"; exit 1; }
    adm "DO \$\$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_notifier') THEN
                CREATE ROLE mm_notifier LOGIN IN ROLE modelmine_notifier;
            END IF;
         EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
         UPDATE modelmine.settings SET value = 200 WHERE name = 'outbox_retry_base_ms';"
}

nt_wait_port() {
    local i
    for (( i = 0; i < 100; i++ )); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1"; return 1
}

nt_start_sink() {
    NT_SMTP_PORT=$(mm_free_port)
    NT_MAIL=$IT_TMP/mail
    mkdir -p "$NT_MAIL"
    "$NT_PYTHON" "$MM_REPO/regress/integration/smtp-sink.py" "$NT_SMTP_PORT" "$NT_MAIL" >"$IT_TMP/smtp-sink.log" 2>&1 &
    IT_OTHER_PIDS+=($!)
    nt_wait_port "$NT_SMTP_PORT"
}

nt_start_receiver() {
    NT_HOOK_PORT=${NT_HOOK_PORT:-$(mm_free_port)}
    NT_SECRETS=$IT_TMP/secrets
    NT_HOOK_LOG=$IT_TMP/hooks.jsonl
    touch "$NT_SECRETS" "$NT_HOOK_LOG"
    "$NT_PYTHON" "$MM_REPO/regress/integration/webhook-receiver.py" "$NT_HOOK_PORT" "$NT_SECRETS" "$NT_HOOK_LOG" \
        >>"$IT_TMP/receiver.log" 2>&1 &
    NT_HOOK_PID=$!
    IT_OTHER_PIDS+=("$NT_HOOK_PID")
    nt_wait_port "$NT_HOOK_PORT"
}

nt_start_notifier() {
    PGUSER=mm_notifier PGDATABASE=$IT_DB "$NT_BIN" --smtp-url "smtp://127.0.0.1:$NT_SMTP_PORT" --smtp-tls none \
        --smtp-from 'ModelMine <noreply@modelmine.test>' --dashboard-url http://dash.modelmine.test/ \
        --allow-net 127.0.0.1/32 --poll-ms 200 "$@" >>"$IT_TMP/notify.log" 2>&1 &
    NT_PID=$!
    IT_OTHER_PIDS+=("$NT_PID")
}

mail_count() { find "$NT_MAIL" -name 'mail-*.env' | wc -l; }
hook_count() { jq -c "select($1)" "$NT_HOOK_LOG" | wc -l; }
