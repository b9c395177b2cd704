#!/usr/bin/env bash
# scripts/bench-queue.sh: job throughput of ModelMine's work protocol, next to peer job queues measured
# on the same machine in the same run.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_cluster   private PostgreSQL tree (scripts/lib/cluster.sh; make + build unless MM_PGTREE is given)
#                  and a throwaway cluster with PostgreSQL's default settings (fsync and synchronous_commit
#                  on, shared_buffers 128MB), like the cluster the peers run on; database `bench_queue`,
#                  CREATE EXTENSION modelmine, login role mm_bench (modelmine_user + modelmine_node)
#   step_accounts  K users (bench1..K@bench.local) signed up and minted tokens, one operator with K nodes;
#                  their session tokens and node keys go into a table pgbench reads (bench.creds); with
#                  --notify each user is notified of every job's end by email and one webhook (two outbox
#                  rows per settled job, written by the settling transaction; nothing sends them)
#   step_sql_enqueue   (a) K pgbench sessions, each signed in as its own user, call
#                  submit_job('noop', {"trainer": "noop"}, stake 10) N/K times: one job per call and
#                  transaction. enqueue/s = pgbench's transactions per second
#   step_sql_process   (a) K pgbench sessions, each bound to its own node (authenticate_node), loop
#                  claim_jobs(B) then complete_job(id, <the noop trainer's result>) per claimed job, each
#                  call its own transaction, as the worker does. process/s = jobs completed / (last
#                  completion - first claim), from the jobs' own timestamps
#   step_sql_process_batched  (a) the same with complete_jobs: N more jobs (submitted untimed, 1000 per
#                  submit_jobs call), each session's claimed jobs reported in one complete_jobs call and
#                  transaction, as a worker's group commit does
#   step_batch_enqueue one session submits N more jobs, submit_jobs calls of 1000 jobs each, one
#                  transaction each (the peers enqueue in batches of 1,000 or 10,000 too)
#   step_workers   (b) M real workers (worker/modelmine-worker --slots S --exit-when-idle) drain those N
#                  jobs: each job runs the noop trainer in the slot's persistent trainer process; jobs/s
#                  from the first claim to the last completion, and the CPU time the workers and their
#                  children used per job
#   step_idle_rss  one more worker (--slots S) left idle for 3 s: its resident size (VmRSS; also PSS and
#                  private memory, which leave out library pages it shares) and each trainer process's
#   step_mlp       the demo's MLP job (mlp on moons, 2000 rows, hidden 32,32, 300 epochs) run 3 times in a row
#                  by one worker with one slot: each job's time from its claim to its completion, and
#                  the CPU time per job of the worker and its children
#   step_api_workers   (b) the same with N more jobs, the M workers going through the HTTP gateway
#                  (api/modelmine-api, started here) with --api: long-polling claims, no --exit-when-idle
#                  (it would make every claim a wait=0 poll); stopped with SIGTERM once every job is done
#   step_wake      wake-up latency, both ways: one idle worker (--db: LISTEN; --api: a long-polling claim)
#                  and W jobs submitted one at a time 100 to 200 ms apart; per job, from the submitting
#                  statement's clock_timestamp() read right before its commit (INSERT ... SELECT
#                  submit_job(...), clock_timestamp() in autocommit, so the commit's own WAL flush counts
#                  as latency) to the start of the claim transaction that leased it (jobs.started_at)
#   step_checks    check_invariants() must be empty after all of it
#   step_peers     (c) /work/shared/bench-peers/run.sh N K: Graphile Worker, pg-boss, BullMQ (on free ports)
#   step_table     one table with every figure
# Before each measured step the script waits (at most 30 s) for the machine to be quiet and prints the
# load average and how busy the CPUs were. Benchmarks print figures; nothing asserts a timing.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-queue.sh [--jobs N] [--sessions K] [--batch B] [--workers M] [--slots S]
                              [--wake W] [--notify] [--no-api] [--no-peers] [--keep] [--help]

Measures, on a throwaway PostgreSQL 15 cluster (127.0.0.1, free port, private install tree), how many noop
jobs per second ModelMine enqueues and processes through its real work protocol, at the SQL level and with
real workers, and runs the peer benchmark (Graphile Worker, pg-boss, BullMQ) on the same machine. Every
ModelMine job is settled like a paid one: stake to escrow at submit; at completion reward to the node, fee
to the network (double-entry journal), a ledger block and statistics deltas. The peers do no bookkeeping.
About 4 minutes with the defaults on 2 cores (the first peer run also installs their npm packages).

  --jobs N       jobs per phase (default 20000)
  --sessions K   parallel SQL sessions for (a), and the peers' concurrency argument (default 4)
  --batch B      claim_jobs batch size for (a), 1..64 (each SQL node declares B slots; default 10)
  --workers M    worker processes for (b) (default 4)
  --slots S      slots per worker for (b), 1..64 (default 24: Graphile Worker's own perf test, which
                 the peers' run uses, is 4 processes x 24 concurrent jobs; the same shape here)
  --wake W       wake-up latency samples per mode, 0 to skip (default 300; about 45 s per mode)
  --notify       every user chooses job_completed, job_failed and job_canceled notifications, by email
                 and one webhook: each settled job writes two outbox rows in its transaction
  --no-api       skip the workers through the gateway (--api) and its wake-up latency
  --no-peers     skip the peer benchmark (c)
  --keep         leave the cluster running afterwards and say how to connect to it
  --help         this text

Environment: PG_CONFIG; MM_BENCH_WORKER (the worker binary to measure, e.g. an older build to compare;
default worker/modelmine-worker); MM_PGTREE (a private tree from mm_pg_tree to reuse, as scripts/bench.sh does);
MM_PG_OPTS (extra server options, e.g. "-c synchronous_commit=off"; the default is none, like the peers'
cluster); MM_BENCH_PEERS (directory of the peer benchmark, default ../shared/bench-peers from the
repository root).
Exit status: 0 when every step ran and check_invariants() is empty, 1 otherwise, 2 for bad usage.

Example:
  scripts/bench-queue.sh --jobs 5000 --no-peers
USAGE
}

jobs=20000 sessions=4 batch=10 workers=4 slots=24 wake=300 api=1 peers=1 keep=0 notify=0
stake=10
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench-queue.sh: $1 needs a positive whole number, got '$2'" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --jobs|--sessions|--batch|--workers|--slots)
            [[ $# -ge 2 ]] || { echo "bench-queue.sh: $1 needs a value" >&2; exit 2; }
            positive "$1" "$2"
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        --wake)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "bench-queue.sh: --wake needs a whole number" >&2; exit 2; }
            wake=$2; shift 2 ;;
        --no-api) api=0; shift ;;
        --notify) notify=1; shift ;;
        --no-peers) peers=0; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-queue.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
(( batch <= 64 )) || { echo "bench-queue.sh: --batch must be 1..64 (a node's most slots)" >&2; exit 2; }
(( slots <= 64 )) || { echo "bench-queue.sh: --slots must be 1..64 (the worker's limit)" >&2; exit 2; }
(( sessions <= 50 && workers <= 50 )) || { echo "bench-queue.sh: at most 50 sessions and 50 workers" >&2; exit 2; }
(( jobs >= 1000 )) || { echo "bench-queue.sh: --jobs must be at least 1000" >&2; exit 2; }
jobs=$(( jobs / 1000 * 1000 ))   # whole statements of 1000 in the batched enqueue

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-queue.sh"
peers_dir=${MM_BENCH_PEERS:-$repo/../shared/bench-peers}
worker_bin=${MM_BENCH_WORKER:-$repo/worker/modelmine-worker}
gateway_bin=$repo/api/modelmine-api

tree="" own_tree=0 cluster="" work="" gateway_pid="" gateway_url=""
worker_pids=()
db=bench_queue
op_email=operator@bench.local
op_password=operator-password
noop_result='{"accuracy": null, "loss": 0, "train_loss": 0, "epochs": 0, "n_train": 0, "n_val": 0, "model": {"type": "noop"}}'
declare -A fig=()   # figures for the final table

heading() { printf '\n==== %s\n' "$*"; }

# Load figures: load averages, and how busy the CPUs are while this script waits (other users' work).
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
cpu_busy_pct() {    # CPU busy % of the whole machine over $1 s (default 3); call it while this script is idle
    local a b
    read -r _ a1 a2 a3 a4 a5 a6 a7 _ < /proc/stat; a=$((a1 + a2 + a3 + a6 + a7)); b=$((a + a4 + a5))
    sleep "${1:-3}"
    read -r _ c1 c2 c3 c4 c5 c6 c7 _ < /proc/stat
    awk -v busy=$((c1 + c2 + c3 + c6 + c7 - a)) -v all=$((c1 + c2 + c3 + c4 + c5 + c6 + c7 - b)) \
        'BEGIN { printf "%.0f", (all > 0) ? 100 * busy / all : 0 }'
}
# quiet: wait (at most 30 s) until other processes leave the CPUs at most 25% busy over 2 s; say how it was.
quiet() {
    local i busy
    for (( i = 0; i < 15; i++ )); do
        busy=$(cpu_busy_pct 2)
        (( busy <= 25 )) && break
    done
    echo "machine before this step: load average $(loadavg) on $(nproc) cores, CPU busy (others) ${busy}%$( \
        (( busy > 25 )) && echo " -- NOISY: another process is using the CPUs; rerun for clean figures")"
}

alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*zombie' "/proc/$1/status" 2>/dev/null; }

cleanup() {
    local rc=$? pid
    trap - EXIT
    set +e
    for pid in "${worker_pids[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null; done
    [[ -n "$gateway_pid" ]] && alive "$gateway_pid" && { kill -TERM "$gateway_pid"; wait "$gateway_pid" 2>/dev/null; }
    if [[ $keep -eq 1 && -n "$cluster" && -f "$cluster/data/postmaster.pid" ]]; then
        cat <<KEEP

==== cluster kept running (--keep)
  connect:  psql "host=127.0.0.1 port=$PGPORT user=postgres dbname=$db"
  logs:     $cluster/postgres.log, $work/w1.log ...
  stop:     bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster' && rm -rf $cluster $work$([[ $own_tree -eq 1 ]] && echo " $tree")
KEEP
    else
        [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
        [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
        [[ -n "$work" ]] && rm -rf "$work"
    fi
    [[ $rc -eq 0 ]] || echo "bench-queue.sh: FAILED (exit status $rc); see the output above" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench-queue.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

sql() { mm_psql -d "$db" -q -At "$@"; }
# seconds since the epoch with microseconds, for wall-clock spans
now_s() { date +%s.%N; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }'; }
# cpu_of FILE CMD...: runs CMD; FILE then holds the CPU seconds (user + system) that CMD and every
# descendant it waited for used (bash's `times`). CPU time suffers much less than wall-clock time from
# other people's work on the machine.
cpu_of() {
    local out=$1
    shift
    # `times` in the shell itself (in a pipeline it would run in a subshell, which has no children)
    bash -c '"$@"; rc=$?; times >"$0.times"; exit $rc' "$out" "$@"
    local rc=$?
    awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' \
        "$out.times" >"$out"
    return $rc
}
sum_files() { cat "$@" | awk '{ t += $1 } END { printf "%.3f", t }'; }

step_cluster() {
    heading "throwaway cluster"
    mm_bench_tree
    [[ -x "$worker_bin" ]] || { echo "bench-queue.sh: $worker_bin is not built (run make)" >&2; return 1; }
    [[ $api -eq 0 || -x "$gateway_bin" ]] || { echo "bench-queue.sh: $gateway_bin is not built (run make)" >&2; return 1; }
    echo "checkout: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
         "uncommitted changes in extension/ sql/ worker/: $(git status --short -- extension sql worker 2>/dev/null | wc -l) file(s)"
    cluster=$(mm_tmpdir bench-queue)
    work=$(mm_tmpdir bench-queue-work)
    mm_cluster_start "$cluster" "$(mm_free_port)"
    echo "PostgreSQL $(mm_psql -At -d postgres -c 'SHOW server_version') on 127.0.0.1:$PGPORT:" \
         "$(mm_psql -At -d postgres -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
                                       FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit',
                                                                       'max_connections', 'wal_level')")"
    mm_psql -q -d postgres -c "CREATE DATABASE $db"
    mm_psql -q -d "$db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION modelmine CASCADE'
    mm_psql -q -d "$db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_bench') THEN
        CREATE ROLE mm_bench LOGIN IN ROLE modelmine_user, modelmine_node;
    END IF;
    -- the gateway's authenticator (--api rows)
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_bench_gateway') THEN
        CREATE ROLE mm_bench_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node,
            modelmine_admin;
    END IF;
END $$;
-- Logins are not what is measured: the cheapest bcrypt cost keeps the set-up short.
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- Credentials pgbench's sessions pick up by client number (not part of ModelMine).
CREATE SCHEMA bench;
CREATE TABLE bench.creds (client int PRIMARY KEY, token text, node_key text);
-- wake-up latency: the clock right before each submit_job's commit
CREATE TABLE bench.wake (job_id bigint PRIMARY KEY, committed timestamptz NOT NULL);
GRANT USAGE ON SCHEMA bench TO mm_bench;
GRANT SELECT ON bench.creds TO mm_bench;
GRANT INSERT ON bench.wake TO mm_bench;
SQL
}

step_accounts() {
    local i tok op_tok key
    heading "accounts: $sessions users, an operator with $sessions nodes"
    # each user stakes $stake per job: its share of (a) and, for user 1, all of the batched enqueue
    for (( i = 0; i < sessions; i++ )); do
        sql -c "SELECT modelmine.signup('bench$((i + 1))@bench.local', 'bench-password')" >/dev/null
        # user 1 also stakes the batched jobs, the --api row's and the wake-up samples
        sql -c "SELECT modelmine.mint('bench$((i + 1))@bench.local', $(( stake * (jobs / sessions + 1 + (i == 0 ? 3 * jobs + 1000 + 2 * wake : 0)) )))" >/dev/null
        tok=$(sql -c "SELECT modelmine.login('bench$((i + 1))@bench.local', 'bench-password')")
        sql -c "INSERT INTO bench.creds (client, token) VALUES ($i, '$tok')"
        if (( notify )); then
            sql -v tok="$tok" <<SQL >/dev/null
SELECT modelmine.authenticate(:'tok');
SELECT modelmine.set_notification_prefs(ARRAY['job_completed', 'job_failed', 'job_canceled'], true);
SELECT modelmine.add_webhook('https://hooks.bench.local/user$((i + 1))');
SQL
        fi
    done
    (( notify )) && echo "--notify: every user is notified of every job's end by email and one webhook"
    sql -c "SELECT modelmine.signup('$op_email', '$op_password')" >/dev/null
    op_tok=$(sql -c "SELECT modelmine.login('$op_email', '$op_password')")
    for (( i = 0; i < sessions; i++ )); do
        key=$(sql -v tok="$op_tok" <<SQL
SELECT modelmine.authenticate(:'tok') \g /dev/null
SELECT node_key FROM modelmine.register_node('sql-node-$((i + 1))', '{"trainers": ["noop"], "slots": $batch}');
SQL
)
        # claiming needs a live node: one heartbeat, good for the whole run (offline_after_seconds 3600)
        sql -v key="$key" <<'SQL' >/dev/null
UPDATE modelmine.settings SET value = 3600 WHERE name = 'offline_after_seconds';
SELECT modelmine.authenticate_node(:'key'), modelmine.heartbeat(1, 1, 2);
SQL
        sql -c "UPDATE bench.creds SET node_key = '$key' WHERE client = $i"
    done
    echo "$sessions users minted $((stake)) tokens per job they submit; nodes sql-node-1..$sessions offer trainer noop"
}

# pgbench for K sessions as mm_bench; extra args follow. Output in $work/pgbench.out.
run_pgbench() {
    pgbench -n -M prepared -c "$sessions" -j "$sessions" -U mm_bench -d "$db" -D authed=0 "$@" \
        >"$work/pgbench.out" 2>&1 && return 0
    echo "bench-queue.sh: pgbench failed:" >&2
    tail -n 30 "$work/pgbench.out" >&2
    return 1
}
pgbench_tps() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$work/pgbench.out"; }

step_sql_enqueue() {
    local per=$(( jobs / sessions )) tps
    heading "(a) SQL: enqueue, $sessions sessions x $per submit_job calls, one job per call and transaction"
    quiet
    cat >"$work/enqueue.sql" <<'SQL'
\if :authed = 0
SELECT token FROM bench.creds WHERE client = :client_id \gset
SELECT modelmine.authenticate(:token);
\set authed 1
\endif
SELECT modelmine.submit_job('sql-noop', '{"trainer": "noop"}', NULL, :stake);
SQL
    run_pgbench -t "$per" -D stake="$stake" -f "$work/enqueue.sql"
    tps=$(pgbench_tps)
    fig[sql_enqueue]=$(awk -v t="$tps" 'BEGIN { printf "%.0f", t }')
    echo "submitted $(sql -c "SELECT count(*) FROM modelmine.jobs WHERE title = 'sql-noop'") jobs;" \
         "pgbench: $(grep -E '^latency average' "$work/pgbench.out"), tps $tps"
    echo "enqueue/s: ${fig[sql_enqueue]}"
}

# report_sql_process TITLE FIG ITERS: jobs/s of the jobs titled TITLE, from the first claim to the last
# completion (the jobs' own timestamps), into fig[FIG]
report_sql_process() {
    local done_n span left
    read -r done_n span left <<<"$(sql -F ' ' -c "
        SELECT count(*) FILTER (WHERE status = 'COMPLETED'),
               extract(epoch FROM max(finished_at) - min(started_at)),
               count(*) FILTER (WHERE status <> 'COMPLETED')
          FROM modelmine.jobs WHERE title = '$1'")"
    fig[$2]=$(per_s "$done_n" "$span")
    echo "completed $done_n jobs in ${span} s from the first claim to the last completion" \
         "(${left} not completed); pgbench: $(grep -E '^latency average' "$work/pgbench.out")"
    echo "process/s: ${fig[$2]}"
    [[ $left -eq 0 ]] || echo "note: $left jobs were left: the sessions ran out of iterations ($3 each)"
}

step_sql_process() {
    local per_client iters b
    per_client=$(( (jobs / sessions + batch - 1) / batch ))
    iters=$(( per_client + per_client / 4 + 5 ))   # a margin for uneven sessions; empty claims are cheap
    heading "(a) SQL: process, $sessions sessions each looping claim_jobs($batch) -> complete_job per job"
    quiet
    {
        printf '%s\n' '\if :authed = 0' 'SELECT node_key FROM bench.creds WHERE client = :client_id \gset' \
            'SELECT modelmine.authenticate_node(:node_key);' '\set authed 1' '\endif'
        printf 'SELECT count(*) AS n'
        for (( b = 1; b <= batch; b++ )); do printf ', COALESCE((array_agg(job_id))[%d], 0) AS j%d' "$b" "$b"; done
        printf ' FROM modelmine.claim_jobs(%d, 60) \\gset\n' "$batch"
        for (( b = 1; b <= batch; b++ )); do
            printf '\\if :n >= %d\nSELECT modelmine.complete_job(:j%d, :result);\n\\endif\n' "$b" "$b"
        done
    } >"$work/process.sql"
    run_pgbench -t "$iters" -D result="$noop_result" -f "$work/process.sql"
    report_sql_process sql-noop sql_process "$iters"
}

# One submit_jobs call of 1000 noop jobs titled $1, staking $stake each (the array built in SQL).
submit_1000() {
    echo "SELECT count(*) FROM modelmine.submit_jobs((SELECT jsonb_agg(jsonb_build_object('title', '$1'," \
         "'config', '{\"trainer\": \"noop\"}'::jsonb, 'stake', $stake)) FROM generate_series(1, 1000))) \\g /dev/null"
}

step_sql_process_batched() {
    local per_client iters b s
    per_client=$(( (jobs / sessions + batch - 1) / batch ))
    iters=$(( per_client + per_client / 4 + 5 ))
    heading "(a) SQL: process in batches, $sessions sessions each looping claim_jobs($batch) -> complete_jobs"
    {
        echo "SELECT modelmine.authenticate(token) FROM bench.creds WHERE client = 0 \\g /dev/null"
        for (( s = 0; s < (jobs + 999) / 1000; s++ )); do
            submit_1000 sql-batch
        done
    } >"$work/batch-submit.sql"
    mm_psql -q -U mm_bench -d "$db" -f "$work/batch-submit.sql"
    quiet
    {
        printf '%s\n' '\if :authed = 0' 'SELECT node_key FROM bench.creds WHERE client = :client_id \gset' \
            'SELECT modelmine.authenticate_node(:node_key);' '\set authed 1' '\endif'
        printf 'SELECT count(*) AS n, COALESCE(jsonb_agg(jsonb_build_object('"'"'job_id'"'"', job_id, '"'"'result'"'"', :result::jsonb)), '"'"'[]'"'"') AS done'
        printf ' FROM modelmine.claim_jobs(%d, 60) \\gset\n' "$batch"
        printf '\\if :n >= 1\nSELECT count(*) FROM modelmine.complete_jobs(:done::jsonb);\n\\endif\n'
    } >"$work/process-batched.sql"
    run_pgbench -t "$iters" -D result="$noop_result" -f "$work/process-batched.sql"
    report_sql_process sql-batch sql_process_batched "$iters"
}

step_batch_enqueue() {
    local t0 t1 s
    heading "(a) SQL: enqueue in batches, 1 session, $((jobs / 1000)) submit_jobs calls of 1000 jobs"
    quiet
    {
        echo "SELECT modelmine.authenticate(token) FROM bench.creds WHERE client = 0 \\g /dev/null"
        for (( s = 0; s < jobs / 1000; s++ )); do
            submit_1000 worker-noop
        done
    } >"$work/batch.sql"
    t0=$(now_s)
    mm_psql -q -U mm_bench -d "$db" -f "$work/batch.sql"
    t1=$(now_s)
    fig[batch_enqueue]=$(per_s "$jobs" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
    echo "submitted $(sql -c "SELECT count(*) FROM modelmine.jobs WHERE title = 'worker-noop'") jobs in" \
         "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s (wall clock, one psql session)"
    echo "enqueue/s: ${fig[batch_enqueue]}"
}

step_workers() {
    local i pid rc bad=0 start=$SECONDS done_n span left
    heading "(b) end to end: $workers workers x $slots slots drain $jobs noop jobs (--exit-when-idle)"
    # Registration (first start with operator credentials) happens before any claim, so it is not timed.
    quiet
    for (( i = 1; i <= workers; i++ )); do
        MODELMINE_OPERATOR_PASSWORD=$op_password cpu_of "$work/w$i.cpu" timeout -k 5 600 "$worker_bin" \
            --db "postgresql://mm_bench@127.0.0.1:$PGPORT/$db" --name "worker-$i" --slots "$slots" \
            --state-file "$work/w$i.json" --operator-email "$op_email" --lease-seconds 60 \
            --exit-when-idle </dev/null >"$work/w$i.log" 2>&1 &
        worker_pids+=($!)
    done
    for i in "${!worker_pids[@]}"; do
        pid=${worker_pids[$i]}
        rc=0
        wait "$pid" || rc=$?
        if [[ $rc -ne 0 ]]; then
            bad=1
            echo "worker-$((i + 1)) exited with status $rc$([[ $rc -eq 124 ]] && echo ' (killed after 600 s)'); its log:"
            tail -n 20 "$work/w$((i + 1)).log" | sed 's/^/    /'
        fi
    done
    worker_pids=()
    read -r done_n span left <<<"$(sql -F ' ' -c "
        SELECT count(*) FILTER (WHERE status = 'COMPLETED'),
               extract(epoch FROM max(finished_at) - min(started_at)),
               count(*) FILTER (WHERE status <> 'COMPLETED')
          FROM modelmine.jobs WHERE title = 'worker-noop'")"
    fig[workers_process]=$(per_s "$done_n" "$span")
    echo "all $workers workers exited after $((SECONDS - start)) s; completed $done_n jobs in ${span} s from" \
         "the first claim to the last completion (${left} not completed)"
    echo "jobs per node: $(sql -c "SELECT string_agg(n.name || '=' || n.jobs_completed, ' ' ORDER BY n.name)
                                    FROM modelmine.nodes n WHERE n.name LIKE 'worker-%'")"
    echo "process/s: ${fig[workers_process]}"
    fig[workers_cpu]=$(awk -v t="$(sum_files "$work"/w*.cpu)" -v n="$done_n" 'BEGIN { printf "%.3f", n ? 1000 * t / n : 0 }')
    echo "CPU time of the workers and their children: $(sum_files "$work"/w*.cpu) s, ${fig[workers_cpu]} ms per job"
    [[ $bad -eq 0 ]] || return 1
}

# mem_of PID: "RSS PSS private" in kB (private: Private_Clean + Private_Dirty of smaps_rollup)
mem_of() {
    awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Private_(Clean|Dirty):/ { v += $2 }
         END { print r + 0, p + 0, v + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo "- - -"
}

step_idle_rss() {
    local pid i child r p v rows=()
    heading "idle memory: one worker with $slots slots, connected, nothing to run"
    MODELMINE_OPERATOR_PASSWORD=$op_password "$worker_bin" \
        --db "postgresql://mm_bench@127.0.0.1:$PGPORT/$db" --name worker-idle --slots "$slots" \
        --state-file "$work/idle.json" --operator-email "$op_email" </dev/null >"$work/idle.log" 2>&1 &
    pid=$!
    worker_pids+=("$pid")
    for (( i = 0; i < 100; i++ )); do
        grep -q "connected as node" "$work/idle.log" && break
        sleep 0.1
    done
    sleep 3     # a few heartbeats and empty claims: what it holds while it waits for work
    read -r r p v <<<"$(mem_of "$pid")"
    fig[rss_worker]=$r fig[pss_worker]=$p fig[priv_worker]=$v
    echo "worker (pid $pid): RSS $r kB, PSS $p kB, private $v kB"
    for child in $(pgrep -P "$pid" || true); do
        read -r r p v <<<"$(mem_of "$child")"
        rows+=("$r $p $v")
        echo "  trainer process $child: RSS $r kB, PSS $p kB, private $v kB"
    done
    if [[ ${#rows[@]} -gt 0 ]]; then
        read -r r p v <<<"$(printf '%s\n' "${rows[@]}" | sort -n | tail -n 1)"
        fig[rss_trainer]=$r fig[pss_trainer]=$p fig[priv_trainer]=$v
        echo "largest trainer process: RSS $r kB"
    else
        echo "no trainer process while idle (this worker forks a child per job)"
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    worker_pids=()
}

step_mlp() {
    local pid times
    heading "the demo's MLP job: mlp on moons (2000 rows), hidden 32,32, 300 epochs, 3 times, one slot"
    quiet
    sql -c "SELECT modelmine.mint('bench1@bench.local', 3 * $stake)" >/dev/null
    sql -v tok="$(sql -c "SELECT token FROM bench.creds WHERE client = 0")" >/dev/null <<SQL
SELECT modelmine.authenticate(:'tok') \\g /dev/null
SELECT modelmine.submit_job('demo-mlp', '{"trainer": "mlp", "dataset": {"synthetic": "moons", "n": 2000}, "hidden_layers": [32, 32], "epochs": 300}', NULL, $stake)
  FROM generate_series(1, 3);
SQL
    MODELMINE_OPERATOR_PASSWORD=$op_password cpu_of "$work/mlp.cpu" "$worker_bin" \
        --db "postgresql://mm_bench@127.0.0.1:$PGPORT/$db" --name worker-mlp --slots 1 \
        --state-file "$work/mlp.json" --operator-email "$op_email" --exit-when-idle </dev/null >"$work/mlp.log" 2>&1 &
    pid=$!
    worker_pids+=("$pid")
    wait "$pid" || { echo "the worker failed; its log:"; tail -n 20 "$work/mlp.log" | sed 's/^/    /'; worker_pids=(); return 1; }
    worker_pids=()
    times=$(sql -c "SELECT string_agg(round(extract(epoch FROM finished_at - started_at)::numeric, 2)::text, ' ' ORDER BY id)
                      FROM modelmine.jobs WHERE title = 'demo-mlp' AND status = 'COMPLETED'")
    fig[mlp_all]=$times
    fig[mlp]=$(tr ' ' '\n' <<<"$times" | sort -n | sed -n 2p)
    fig[mlp_cpu]=$(awk -v t="$(cat "$work/mlp.cpu")" 'BEGIN { printf "%.2f", t / 3 }')
    echo "CPU time of the worker and its children: $(cat "$work/mlp.cpu") s, ${fig[mlp_cpu]} s per job"
    echo "job times (claim to completion): $times s; median ${fig[mlp]} s;" \
         "accuracy $(sql -c "SELECT min(result->>'accuracy') FROM modelmine.jobs WHERE title = 'demo-mlp'")"
}

# start_gateway: modelmine-api on a free port against the bench database, access log off (--quiet) and
# no sign-in rate limit (every worker signs in once to register); waits for /health.
start_gateway() {
    local port i
    port=$(free_port_from $((PGPORT + 200)))
    "$gateway_bin" --db "postgresql://mm_bench_gateway@127.0.0.1:$PGPORT/$db" --listen "127.0.0.1:$port" \
        --quiet --auth-rate 1000/60 </dev/null >"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    gateway_url=http://127.0.0.1:$port
    for (( i = 0; i < 100; i++ )); do
        [[ $(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' "$gateway_url/health") == 200 ]] && {
            echo "gateway (pid $gateway_pid) on $gateway_url: pool of 10 connections, access log off"; return 0; }
        sleep 0.1
    done
    echo "bench-queue.sh: the gateway did not come up; its log:" >&2
    tail -n 20 "$work/gateway.log" >&2
    return 1
}

# start_workers PREFIX N SLOTS ARGS...: N workers PREFIX-1..N, registering with the operator's credentials.
start_workers() {
    local prefix=$1 n=$2 s=$3 i
    shift 3
    for (( i = 1; i <= n; i++ )); do
        MODELMINE_OPERATOR_PASSWORD=$op_password timeout -k 5 600 "$worker_bin" "$@" --name "$prefix-$i" \
            --slots "$s" --state-file "$work/$prefix-$i.json" --operator-email "$op_email" \
            </dev/null >"$work/$prefix-$i.log" 2>&1 &
        worker_pids+=($!)
    done
}

# stop_workers: SIGTERM to every worker started, and wait for them; 1 if one of them did not exit 0.
stop_workers() {
    local pid rc bad=0
    for pid in "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${worker_pids[@]}"; do
        rc=0
        wait "$pid" || rc=$?
        [[ $rc -eq 0 ]] || { bad=1; echo "a worker (pid $pid) exited with status $rc"; }
    done
    worker_pids=()
    return $bad
}

# wait_done TITLE SECS: until no job titled TITLE is left uncompleted (false after SECS).
wait_done() {
    local deadline=$((SECONDS + $2))
    while (( SECONDS < deadline )); do
        [[ $(sql -c "SELECT count(*) FROM modelmine.jobs WHERE title = '$1' AND status <> 'COMPLETED'") -eq 0 ]] && return 0
        sleep 0.5
    done
    return 1
}

step_api_workers() {
    local s done_n span left bad=0 start
    heading "(b) end to end through the gateway: $workers workers x $slots slots (--api) drain $jobs noop jobs"
    if [[ $api -eq 0 ]]; then echo "skipped (--no-api)"; return 0; fi
    {
        echo "SELECT modelmine.authenticate(token) FROM bench.creds WHERE client = 0 \\g /dev/null"
        for (( s = 0; s < jobs / 1000; s++ )); do
            submit_1000 api-noop
        done
    } >"$work/api-batch.sql"
    mm_psql -q -U mm_bench -d "$db" -f "$work/api-batch.sql"
    echo "submitted $(sql -c "SELECT count(*) FROM modelmine.jobs WHERE title = 'api-noop'") jobs (not timed)"
    start_gateway
    quiet
    start=$SECONDS
    start_workers api-worker "$workers" "$slots" --api "$gateway_url" --lease-seconds 60
    wait_done api-noop 600 || { echo "bench-queue.sh: the --api workers did not finish in 600 s" >&2; bad=1; }
    stop_workers || bad=1
    read -r done_n span left <<<"$(sql -F ' ' -c "
        SELECT count(*) FILTER (WHERE status = 'COMPLETED'),
               extract(epoch FROM max(finished_at) - min(started_at)),
               count(*) FILTER (WHERE status <> 'COMPLETED')
          FROM modelmine.jobs WHERE title = 'api-noop'")"
    fig[api_workers_process]=$(per_s "$done_n" "$span")
    echo "completed $done_n jobs in ${span} s from the first claim to the last completion (${left} not completed);" \
         "all done $((SECONDS - start)) s after the workers started"
    echo "jobs per node: $(sql -c "SELECT string_agg(n.name || '=' || n.jobs_completed, ' ' ORDER BY n.name)
                                    FROM modelmine.nodes n WHERE n.name LIKE 'api-worker-%'")"
    echo "process/s: ${fig[api_workers_process]}"
    [[ $bad -eq 0 ]] || { tail -n 20 "$work/api-worker-1.log"; return 1; }
}

# wake_mode MODE ARGS...: one idle worker (ARGS say how it reaches the network), $wake jobs submitted one
# at a time; the latency figures go into fig[wake_MODE].
wake_mode() {
    local mode=$1 i n p50 p99 max min
    shift
    start_workers "wake-$mode" 1 2 "$@" --heartbeat-interval 5
    for (( i = 0; i < 100; i++ )); do
        [[ $(sql -c "SELECT count(*) FROM modelmine.nodes WHERE name = 'wake-$mode-1' AND last_seen IS NOT NULL") -eq 1 ]] && break
        sleep 0.1
    done
    sleep 1  # its first claim (an empty queue) is done: it waits for a wake-up
    {
        echo "SELECT modelmine.authenticate(token) FROM bench.creds WHERE client = 0 \\g /dev/null"
        for (( i = 0; i < wake; i++ )); do
            # one statement (autocommit): the clock is read after submit_job, right before the commit
            echo "INSERT INTO bench.wake (job_id, committed) SELECT modelmine.submit_job('wake-$mode'," \
                 "'{\"trainer\": \"noop\"}', NULL, $stake), pg_catalog.clock_timestamp();"
            echo "SELECT pg_catalog.pg_sleep(0.1 + 0.1 * random()) \\g /dev/null"
        done
    } >"$work/wake-$mode.sql"
    mm_psql -q -U mm_bench -d "$db" -f "$work/wake-$mode.sql" >/dev/null
    wait_done "wake-$mode" 60 || echo "note: not every wake-$mode job completed within 60 s"
    stop_workers || return 1
    read -r n p50 p99 max min d50 d99 <<<"$(sql -F ' ' -c "
        SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2),
               round(max(ms)::numeric, 2), round(min(ms)::numeric, 2),
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY done_ms)::numeric, 2),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY done_ms)::numeric, 2)
          FROM (SELECT extract(epoch FROM j.started_at - w.committed) * 1000 AS ms,
                       extract(epoch FROM j.finished_at - w.committed) * 1000 AS done_ms
                  FROM bench.wake w JOIN modelmine.jobs j ON j.id = w.job_id
                 WHERE j.title = 'wake-$mode' AND j.finished_at IS NOT NULL) s")"
    fig[wake_$mode]="$p50 $p99 $d50 $d99"
    echo "$mode: $n samples: to the claim p50 $p50 ms, p99 $p99 ms, max $max ms, min $min ms;" \
         "to the completion (fork, noop, complete_job) p50 $d50 ms, p99 $d99 ms"
}

step_wake() {
    heading "wake-up latency: from a submit's commit to the claim, $wake jobs one at a time, one idle worker each way"
    if [[ $wake -eq 0 ]]; then echo "skipped (--wake 0)"; return 0; fi
    quiet
    wake_mode db --db "postgresql://mm_bench@127.0.0.1:$PGPORT/$db"
    if [[ $api -eq 1 ]]; then
        [[ -n "$gateway_pid" ]] || start_gateway
        quiet
        wake_mode api --api "$gateway_url"
    fi
}

step_checks() {
    heading "invariants after all of it (no rows = the books balance)"
    mm_psql -d "$db" -P pager=off -c "SELECT * FROM modelmine.check_invariants()"
    [[ $(sql -c "SELECT count(*) FROM modelmine.check_invariants()") -eq 0 ]] || {
        echo "bench-queue.sh: check_invariants() returned violations (listed above)" >&2; return 1; }
    echo "all invariants hold; per job: 1 stake, 1 reward, 1 fee journal row and 1 ledger block:" \
         "$(sql -c "SELECT count(*) FROM modelmine.journal WHERE job_id IS NOT NULL") journal rows," \
         "$(sql -c "SELECT count(*) - 1 FROM modelmine.ledger") blocks"
    echo "outbox rows written by settling transactions: $(sql -c "SELECT count(*) FROM modelmine.outbox")"
}

# free_port_from P: the first port from P on (at most 100 tried) with nothing listening on 127.0.0.1.
free_port_from() {
    local p
    for (( p = $1; p < $1 + 100; p++ )); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    echo "bench-queue.sh: no free port in $1..$(( $1 + 99 ))" >&2
    return 1
}

peer_names=()
step_peers() {
    local pg_port redis_port line name
    heading "(c) peers: $peers_dir/run.sh $jobs $sessions"
    if [[ $peers -eq 0 ]]; then
        echo "skipped (--no-peers)"
        return 0
    fi
    if [[ ! -x "$peers_dir/run.sh" ]]; then
        echo "skipped: $peers_dir/run.sh not found (set MM_BENCH_PEERS)"
        return 0
    fi
    # our cluster stays up but idle; the peers get their own PostgreSQL and Redis on free ports
    pg_port=$(free_port_from $((PGPORT + 1)))
    redis_port=$(free_port_from $((pg_port + 1)))
    quiet
    echo "PostgreSQL for the peers on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port (at most 15 minutes)"
    if ! (cd "$peers_dir" && PEERS_PG_PORT=$pg_port PEERS_REDIS_PORT=$redis_port \
            timeout -k 10 900 ./run.sh "$jobs" "$sessions") >"$work/peers.out" 2>"$work/peers.err"; then
        echo "the peer benchmark failed; its output:"
        sed 's/^/    /' "$work/peers.out" "$work/peers.err" | tail -n 30
        return 0
    fi
    while IFS= read -r line; do
        [[ $line == \{* ]] || continue
        echo "  $line"
        name=$(sed -n 's/.*"peer":"\([^"]*\)".*/\1/p' <<<"$line")
        peer_names+=("$name")
        fig["peer:$name"]="$(sed -n 's/.*"enqueue_per_s":\([0-9]*\).*/\1/p' <<<"$line") $(sed -n 's/.*"process_per_s":\([0-9]*\).*/\1/p' <<<"$line")"
    done <"$work/peers.out"
}

step_table() {
    local k e p
    heading "throughput, noop jobs, this machine ($(nproc) cores), this run (N = $jobs)"
    printf '  %-58s %11s %11s\n' system enqueue/s process/s
    row() { printf '  %-58s %11s %11s\n' "$1" "${2:--}" "${3:--}"; }
    row "ModelMine SQL: submit_job, $sessions sessions, 1 per call" "${fig[sql_enqueue]:-}" ""
    row "ModelMine SQL: submit_job, 1 session, 1000 per statement" "${fig[batch_enqueue]:-}" ""
    row "ModelMine SQL: claim_jobs($batch) + complete_job, $sessions sessions" "" "${fig[sql_process]:-}"
    row "ModelMine SQL: claim_jobs($batch) + complete_jobs, $sessions sessions" "" "${fig[sql_process_batched]:-}"
    row "ModelMine workers: $workers x $slots slots (${fig[workers_cpu]:--} ms CPU per job)" "" "${fig[workers_process]:-}"
    row "ModelMine workers --api: the same through the gateway" "" "${fig[api_workers_process]:-}"
    for k in "${peer_names[@]}"; do
        read -r e p <<<"${fig[peer:$k]}"
        row "$k" "$e" "$p"
    done
    cat <<NOTE

  ModelMine's processing settles every job: escrow -> node reward and network fee (two double-entry journal
  rows and four balance updates), node counters, a hash-chained ledger block and statistics deltas, each
  completion its own transaction with a synchronous commit. The peers only mark a job done; their enqueue
  inserts 1,000 (pg-boss, BullMQ) or 10,000 (Graphile Worker) jobs per call.
  Peer settings (run.sh): Graphile Worker 4 processes x 24, pg-boss $sessions workers fetching batches of 100,
  BullMQ one worker at concurrency 50. Machine after the run: load average $(loadavg).
NOTE
    heading "worker memory (idle, kB) and the demo's MLP job (s)"
    echo "  worker, $slots slots: RSS ${fig[rss_worker]:--} (PSS ${fig[pss_worker]:--}, private ${fig[priv_worker]:--});" \
         "each trainer process: RSS ${fig[rss_trainer]:--} (PSS ${fig[pss_trainer]:--}, private ${fig[priv_trainer]:--})"
    echo "  mlp on moons, 2000 rows, 32,32, 300 epochs: ${fig[mlp]:--} s per job (median of 3: ${fig[mlp_all]:--});" \
         "${fig[mlp_cpu]:--} s CPU per job"
    if [[ $wake -gt 0 ]]; then
        heading "wake-up latency in ms, from a submit's commit to the claim / to the completion ($wake samples each)"
        printf '  %-50s %9s %9s %9s %9s\n' worker "claim p50" "claim p99" "done p50" "done p99"
        printf '  %-50s %9s %9s %9s %9s\n' "--db: LISTEN modelmine_work, then claim_jobs" ${fig[wake_db]:-- - - -}
        [[ $api -eq 0 ]] || printf '  %-50s %9s %9s %9s %9s\n' "--api: a long-polling claim (the gateway LISTENs)" \
            ${fig[wake_api]:-- - - -}
    fi
}

step_cluster
step_accounts
step_sql_enqueue
step_sql_process
step_sql_process_batched
step_batch_enqueue
step_workers
step_idle_rss
step_mlp
step_api_workers
step_wake
step_checks
step_peers
step_table
