#!/usr/bin/env bash
# scripts/bench-outbox.sh: how fast modelmine-notify empties the outbox into local sinks, and how long
# an event waits for its delivery.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_cluster   private PostgreSQL tree (MM_PGTREE, or make + build) and a throwaway cluster with
#                  PostgreSQL's default settings; database bench_outbox; login role mm_bench_notifier in
#                  modelmine_notifier
#   step_sinks     the SMTP sink (regress/integration/smtp-sink.py, aiosmtpd) and the webhook receiver
#                  (regress/integration/webhook-receiver.py: it verifies every signature), on loopback
#   step_drain     for each channel (webhook, email, both): N canceled jobs queue N events (2N for
#                  both) while no notifier runs; then one modelmine-notify (--batch B) starts and the
#                  clock runs until every delivery is SENT: deliveries/s = N / that time
#   step_latency   one idle notifier (--poll-ms 250); L job cancels and L withdrawal decisions, one at a
#                  time 100 to 200 ms apart; per event, from its commit (clock_timestamp() right before it)
#                  to sent_at: a job's end is found by the poll, a decision wakes the notifier (NOTIFY)
#   step_settle    what the outbox costs settlement, A/B interleaved so that the load of a shared machine
#                  falls on both alike: R rounds; in each, J jobs of a user notified of every job's end (an
#                  email and a webhook: two outbox rows per settling transaction) and J of a user with no
#                  notifications (the triggers still run and find no preferences), in alternating order,
#                  each drained by 4 pgbench sessions looping claim_jobs(10) + complete_job as nodes
#                  (bench-queue.sh's (a) process step); jobs/s per block, medians per side
#   step_table     the figures
# Python sinks are slower than real mail and web servers: the figures are the notifier's floor.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-outbox.sh [--events N] [--batch B] [--latency L] [--rounds R] [--jobs J] [--keep]

  --events N    events per drain phase (default 2000)
  --batch B     the notifier's --batch (default 50)
  --latency L   samples of event-to-delivery latency (default 100; 0 to skip)
  --rounds R    A/B rounds of settlement with and without notifications (default 6; 0 to skip)
  --jobs J      jobs per side and round (default 1000)
  --keep        leave the cluster running afterwards
  --help        this text

Environment: PG_CONFIG; MM_PGTREE (a private tree from mm_pg_tree to reuse).
Example:
  scripts/bench-outbox.sh --events 1000
USAGE
}

events=2000 batch=50 latency=100 rounds=6 jobs=1000 keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --events|--batch|--latency|--rounds|--jobs)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "bench-outbox.sh: $1 needs a whole number" >&2; exit 2; }
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-outbox.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-outbox.sh"
notify_bin=$repo/notify/modelmine-notify
python=$([[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || echo python3)
db=bench_outbox
tree="" own_tree=0 cluster="" work="" pids=() notifier=""
declare -A rate ab lat

heading() { printf '\n==== %s\n' "$*"; }
sql() { mm_psql -d "$db" -q -At "$@"; }
# as TOKEN SQL: SQL in a session signed in with TOKEN (psql -c would not expand :'tok')
as() { sql -v tok="$1" <<<"SELECT modelmine.authenticate(:'tok') \g /dev/null
$2"; }
now_s() { date +%s.%N; }
alive() { kill -0 "$1" 2>/dev/null; }
# all_sent: wait (at most 300 s) until the outbox holds nothing but SENT rows
all_sent() {
    local deadline=$((SECONDS + 300))
    until [[ $(sql -c "SELECT count(*) FROM modelmine.outbox WHERE status <> 'SENT'") == 0 ]]; do
        (( SECONDS < deadline )) || { echo "bench-outbox.sh: deliveries left after 300 s (see $work/notify.log)" >&2; return 1; }
        sleep 0.1
    done
}

cleanup() {
    local rc=$? pid
    trap - EXIT
    set +e
    for pid in "${pids[@]}" $notifier; do alive "$pid" && kill -TERM "$pid"; done
    for pid in "${pids[@]}" $notifier; do wait "$pid" 2>/dev/null; done
    if [[ $keep -eq 1 && -n "$cluster" ]]; then
        echo "cluster kept: psql \"host=127.0.0.1 port=$PGPORT user=postgres dbname=$db\"; logs in $work"
    else
        [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
        [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
        [[ -n "$work" ]] && rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT

step_cluster() {
    heading "throwaway cluster"
    mm_bench_tree
    [[ -x "$notify_bin" ]] || { echo "bench-outbox.sh: $notify_bin is not built (run make)" >&2; return 1; }
    cluster=$(mm_tmpdir bench-outbox)
    work=$(mm_tmpdir bench-outbox-work)
    mm_cluster_start "$cluster" "$(mm_free_port)"
    mm_psql -q -d postgres -c "CREATE DATABASE $db"
    mm_psql -q -d "$db" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION modelmine CASCADE;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_bench_notifier') THEN
        CREATE ROLE mm_bench_notifier LOGIN IN ROLE modelmine_notifier;
    END IF;
END $$;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
CREATE TABLE public.committed (job_id bigint PRIMARY KEY, at timestamptz NOT NULL);
SQL
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
}

# serve NAME CMD...: start a sink whose last argument-to-be is its port, on a free port; retries when
# another process takes the port first. Sets port.
serve() {
    local name=$1 try i pid
    shift
    for (( try = 0; try < 5; try++ )); do
        port=$(mm_free_port)
        "$@" "$port" >"$work/$name.log" 2>&1 &
        pid=$!
        for (( i = 0; i < 50; i++ )); do
            grep -q listening "$work/$name.log" 2>/dev/null && { pids+=("$pid"); return 0; }
            alive "$pid" || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    done
    echo "bench-outbox.sh: the $name would not start (see $work/$name.log)" >&2
    return 1
}
smtp_sink() { exec "$python" regress/integration/smtp-sink.py "$1" "$work"; }
receiver() { exec "$python" regress/integration/webhook-receiver.py "$1" "$work/secrets" "$work/hooks.jsonl"; }

step_sinks() {
    heading "local sinks"
    touch "$work/secrets"
    serve smtp-sink smtp_sink
    smtp_port=$port
    serve receiver receiver
    hook_port=$port
    echo "SMTP sink on 127.0.0.1:$smtp_port, webhook receiver on 127.0.0.1:$hook_port"
}

start_notifier() {
    PGUSER=mm_bench_notifier PGDATABASE=$db "$notify_bin" --smtp-url "smtp://127.0.0.1:$smtp_port" \
        --smtp-tls none --smtp-from 'ModelMine <bench@modelmine.test>' --dashboard-url http://dash.test \
        --allow-net 127.0.0.1/32 --batch "$batch" --offline-check 0 "$@" >>"$work/notify.log" 2>&1 &
    notifier=$!
}
stop_notifier() { kill -TERM "$notifier"; wait "$notifier" 2>/dev/null || true; notifier=""; }

# user EMAIL CHANNEL: a user notified of job_canceled by CHANNEL (webhook, email, both); prints a token
user() {
    local tok
    sql -c "SELECT modelmine.signup('$1', 'bench password')" >/dev/null
    sql -c "SELECT modelmine.mint('$1', 1000000)" >/dev/null
    tok=$(sql -c "SELECT modelmine.login('$1', 'bench password')")
    sql -v tok="$tok" <<SQL >/dev/null
SELECT modelmine.authenticate(:'tok');
SELECT modelmine.set_notification_prefs(ARRAY['job_canceled'], $([[ $2 == webhook ]] && echo false || echo true));
SQL
    [[ $2 == email ]] || as "$tok" "SELECT modelmine.add_webhook('http://127.0.0.1:$hook_port/$1') ->> 'secret'" \
        >>"$work/secrets"
    echo "$tok"
}

step_drain() {
    local channel tok n t0 t1 s
    for channel in webhook email both; do
        heading "drain: $events events, $channel"
        tok=$(user "$channel@bench.local" "$channel")
        as "$tok" "SELECT count(modelmine.cancel_job(modelmine.submit_job('j' || i, '{\"trainer\": \"noop\"}', NULL, 1)))
                      FROM generate_series(1, $events) i" >/dev/null
        n=$(sql -c "SELECT count(*) FROM modelmine.outbox WHERE status = 'PENDING'")
        echo "$n deliveries queued; load average $(cut -d' ' -f1-3 /proc/loadavg)"
        t0=$(now_s)
        start_notifier --poll-ms 50
        all_sent
        t1=$(now_s)
        stop_notifier
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
        rate[$channel]=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
        echo "$n deliveries in $s s: ${rate[$channel]}/s (dead: $(sql -c "SELECT count(*) FROM modelmine.outbox WHERE status = 'DEAD'"))"
        sql -c "DELETE FROM modelmine.outbox"
    done
}

step_latency() {
    local tok i w
    (( latency > 0 )) || return 0
    heading "latency: $latency events of each kind one at a time, 100 to 200 ms apart, an idle notifier (--poll-ms 250)"
    tok=$(user "latency@bench.local" webhook)
    as "$tok" "SELECT modelmine.set_notification_prefs(ARRAY['job_canceled', 'withdrawal_decided'])" >/dev/null
    start_notifier --poll-ms 250
    sleep 1
    # the clock is read in the event's own statement, right before its commit; first the jobs' ends
    # (found by the notifier's poll), then the withdrawals' decisions (each wakes it with a NOTIFY),
    # so that no NOTIFY wakes the notifier for a job's row
    for (( i = 0; i < latency; i++ )); do
        sql -v tok="$tok" <<'SQL' >/dev/null
SELECT modelmine.authenticate(:'tok') \g /dev/null
SELECT modelmine.submit_job('l', '{"trainer": "noop"}', NULL, 1) AS j \gset
INSERT INTO public.committed SELECT :j, clock_timestamp() FROM (SELECT modelmine.cancel_job(:j)) x;
SQL
        sleep "0.$(( 100 + RANDOM % 100 ))"
    done
    for (( i = 0; i < latency; i++ )); do
        sql -v tok="$tok" <<'SQL' >/dev/null
SELECT modelmine.authenticate(:'tok') \g /dev/null
SELECT modelmine.request_withdrawal(1, 'bench') AS w \gset
INSERT INTO public.committed SELECT -:w, clock_timestamp() FROM (SELECT modelmine.reject_withdrawal(:w, 'bench')) x;
SQL
        sleep "0.$(( 100 + RANDOM % 100 ))"
    done
    all_sent
    stop_notifier
    for w in job_canceled withdrawal_decided; do
        lat[$w]=$(sql -c "SELECT format('median %s ms, p95 %s ms, max %s ms',
                    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1))
                  FROM (SELECT extract(epoch FROM o.sent_at - c.at) * 1000 AS ms
                          FROM modelmine.outbox o JOIN public.committed c
                            ON c.job_id = CASE WHEN o.event = 'job_canceled' THEN (o.payload ->> 'job_id')::bigint
                                               ELSE -(o.payload ->> 'withdrawal_id')::bigint END
                         WHERE o.event = '$w') x")
        echo "$w, commit to delivery: ${lat[$w]}"
    done
}

step_settle() {
    local r side order tok key i script=$work/settle.sql per n span
    (( rounds > 0 )) || return 0
    heading "settlement A/B: $rounds rounds x $jobs jobs per side, 4 sessions of claim_jobs(10) + complete_job"
    sql <<'SQL' >/dev/null
UPDATE modelmine.settings SET value = 3600 WHERE name = 'offline_after_seconds';
CREATE TABLE public.nodekeys (client int PRIMARY KEY, node_key text);
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_bench_node') THEN
        CREATE ROLE mm_bench_node LOGIN IN ROLE modelmine_node, modelmine_user;
    END IF;
END $$;
GRANT SELECT ON public.nodekeys TO mm_bench_node;
SQL
    tok=$(user "op@bench.local" webhook)
    for (( i = 0; i < 4; i++ )); do
        key=$(sql -v tok="$tok" <<SQL
SELECT modelmine.authenticate(:'tok') \g /dev/null
SELECT node_key FROM modelmine.register_node('n$i', '{"trainers": ["noop"], "slots": 10}');
SQL
)
        sql -c "SELECT modelmine.authenticate_node('$key'), modelmine.heartbeat(1, 1, 2)" >/dev/null
        sql -c "INSERT INTO public.nodekeys VALUES ($i, '$key')"
    done
    tok_a=$(user "notified@bench.local" both)
    as "$tok_a" "SELECT modelmine.set_notification_prefs(ARRAY['job_completed', 'job_failed', 'job_canceled'])" >/dev/null
    # no preferences at all: the triggers run and find none
    sql -c "SELECT modelmine.signup('silent@bench.local', 'bench password')" \
        -c "SELECT modelmine.mint('silent@bench.local', 1000000)" >/dev/null
    tok_b=$(sql -c "SELECT modelmine.login('silent@bench.local', 'bench password')")
    {
        printf '%s\n' '\if :authed = 0' 'SELECT node_key FROM public.nodekeys WHERE client = :client_id \gset' \
            'SELECT modelmine.authenticate_node(:node_key);' '\set authed 1' '\endif'
        printf 'SELECT count(*) AS n'
        for (( i = 1; i <= 10; i++ )); do printf ', COALESCE((array_agg(job_id))[%d], 0) AS j%d' "$i" "$i"; done
        printf ' FROM modelmine.claim_jobs(10, 60) \\gset\n'
        for (( i = 1; i <= 10; i++ )); do
            printf '\\if :n >= %d\nSELECT modelmine.complete_job(:j%d, :result);\n\\endif\n' "$i" "$i"
        done
    } >"$script"
    for (( r = 1; r <= rounds; r++ )); do
        order="notified silent"; (( r % 2 == 0 )) && order="silent notified"
        for side in $order; do
            tok=$tok_a; [[ $side == silent ]] && tok=$tok_b
            as "$tok" "SELECT count(modelmine.submit_job('ab-$r-$side', '{\"trainer\": \"noop\"}', NULL, 1))
                         FROM generate_series(1, $jobs)" >/dev/null
            per=$(( jobs / 40 + jobs / 160 + 5 ))
            pgbench -n -M prepared -c 4 -j 4 -U mm_bench_node -d "$db" -D authed=0 -t "$per" \
                -D result='{"loss": 0.1, "epochs": 1}' -f "$script" >"$work/pgbench.out" 2>&1 ||
                { cat "$work/pgbench.out"; return 1; }
            read -r n span <<<"$(sql -F ' ' -c "SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at))
                                                 FROM modelmine.jobs WHERE title = 'ab-$r-$side' AND status = 'COMPLETED'")"
            ab[$r-$side]=$(awk -v n="$n" -v s="$span" 'BEGIN { printf "%.0f", n / s }')
            echo "round $r, $side: $n jobs in $span s: ${ab[$r-$side]}/s (load average $(cut -d' ' -f1 /proc/loadavg))"
        done
    done
    med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
    local na=() nb=()
    for (( r = 1; r <= rounds; r++ )); do na+=("${ab[$r-notified]}"); nb+=("${ab[$r-silent]}"); done
    settle_a=$(med "${na[@]}") settle_b=$(med "${nb[@]}")
    echo "outbox rows written by the notified side: $(sql -c "SELECT count(*) FROM modelmine.outbox o JOIN modelmine.users u ON u.id = o.user_id WHERE u.email = 'notified@bench.local'")"
    echo "median jobs/s: notified $settle_a (${na[*]}), not notified $settle_b (${nb[*]})"
}

step_table() {
    heading "figures (deliveries per second, one notifier, batch $batch)"
    printf '| %-40s | %10s |\n' "phase" "per second"
    printf '| %-40s | %10s |\n' "webhooks (signed POST, verified)" "${rate[webhook]}"
    printf '| %-40s | %10s |\n' "emails (SMTP, one connection reused)" "${rate[email]}"
    printf '| %-40s | %10s |\n' "both (an email and a webhook per event)" "${rate[both]}"
    [[ -n "${lat[job_canceled]:-}" ]] && echo "latency, commit to delivery: job_canceled (poll) ${lat[job_canceled]};" \
        "withdrawal_decided (NOTIFY) ${lat[withdrawal_decided]}"
    [[ -n "${settle_a:-}" ]] && echo "settlement (claim_jobs + complete_job, 4 sessions), median jobs/s: every job notified $settle_a, none $settle_b"
    echo "receiver: $(grep -c '"verified": true' "$work/hooks.jsonl") verified requests, $(grep -c '"verified": false' "$work/hooks.jsonl" || true) unverified"
    echo "check_invariants: $(sql -c "SELECT count(*) FROM modelmine.check_invariants()") violations"
}

step_cluster
step_sinks
step_drain
step_latency
step_settle
step_table
