#!/usr/bin/env bash
# scripts/bench-instructions.sh: CPU instructions PostgreSQL spends per enqueued and per settled job
# (issue 15), counted by callgrind, so that two builds compare on a machine whose speed moves.
#
# Wall-clock figures on this 2-core machine move by a quarter from one minute to the next; an
# instruction count does not. The backend runs single-user (postgres --single) under
# valgrind --tool=callgrind on a throwaway cluster (scripts/lib/cluster.sh; PostgreSQL's defaults),
# reading a fixed script, once short and once long; the difference over the jobs in between is the
# cost of a job, start-up and warm-up left out.
#   enqueue  submit_jobs calls of 1,000 noop jobs staking 10 each, the array built in SQL as
#            bench-queue.sh builds it (about 26 k instructions of the figure are that input)
#   drain    one node (24 slots) loops claim_jobs(24) and complete_jobs of what it claimed, each its
#            own transaction, as the worker does; folds of credits and statistics deferred
#            (fold_interval_ms 60000) as in a real drain, where a backend folds at most every 100 ms
# Instructions are not time (cache misses are not counted): use it to see what a change does to
# the work, and bench-queue.sh for throughput. Figures are printed, never asserted.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-instructions.sh [--enqueue-calls A,B] [--drain-rounds A,B] [--keep-profiles DIR]

  --enqueue-calls A,B  submit_jobs calls in the short and the long enqueue run (default 2,10)
  --drain-rounds A,B   claim-and-settle rounds in the short and the long drain run (default 10,60)
  --keep-profiles DIR  keep the long runs' callgrind files there (for callgrind_annotate)
About 3 minutes on 2 cores. Needs valgrind (apt-get install valgrind; not part of the test suite).
Environment: PG_CONFIG; MM_PGTREE (a private tree from mm_pg_tree to reuse).
USAGE
}

enqueue_calls=2,10 drain_rounds=10,60 keep=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --enqueue-calls|--drain-rounds)
            [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*,[1-9][0-9]*$ ]] && (( ${2%,*} < ${2#*,} )) ||
                { echo "bench-instructions.sh: $1 needs two whole numbers A,B with A < B" >&2; exit 2; }
            if [[ $1 == --enqueue-calls ]]; then enqueue_calls=$2; else drain_rounds=$2; fi
            shift 2 ;;
        --keep-profiles)
            [[ $# -ge 2 ]] || { echo "bench-instructions.sh: --keep-profiles needs a directory" >&2; exit 2; }
            keep=$2; mkdir -p "$keep"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-instructions.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "bench-instructions.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-instructions.sh"
tree="" own_tree=0 cluster=""
db=bench_instructions
# the noop trainer's result, as the worker reports it
noop_result='{"accuracy": null, "loss": 0, "train_loss": 0, "epochs": 0, "n_train": 0, "n_val": 0, "model": {"type": "noop"}}'

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
    [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
sql() { mm_psql -d "$db" -q -At -v ON_ERROR_STOP=1 "$@"; }
heading() { printf '\n==== %s\n' "$*"; }

# One submit_jobs call of 1,000 noop jobs (as bench-queue.sh's submit_1000).
submit_1000() {
    echo "SELECT count(*) FROM modelmine.submit_jobs((SELECT jsonb_agg(jsonb_build_object('title', 'b'," \
         "'config', '{\"trainer\": \"noop\"}'::jsonb, 'stake', 10)) FROM generate_series(1, 1000)))"
}

# A fresh database with a user holding enough tokens, signed in by the session token in $cluster/token.
fresh_db() {
    mm_psql -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db"
    sql >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION modelmine CASCADE;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
UPDATE modelmine.settings SET value = max_value WHERE name = 'offline_after_seconds';
UPDATE modelmine.settings SET value = 60000 WHERE name = 'fold_interval_ms';
SELECT modelmine.signup('bench@bench.local', 'bench password');
SELECT modelmine.mint('bench@bench.local', 10000000);
SQL
    sql -c "SELECT modelmine.login('bench@bench.local', 'bench password')" >"$cluster/token"
}

# Runs the statements in file $1 (one per line) in a single-user backend under callgrind; prints the
# instructions it executed. The cluster is stopped for it and started again after.
count() {
    local input=$1 out=$cluster/callgrind.out
    chmod 644 "$input"
    mm_cluster_stop "$cluster"
    rm -f "$out"
    if ! (cd "$cluster" && mm_as_server valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$(mm__bindir "$cluster")/postgres" --single -D "$cluster/data" "$db" \
            <"$input" >"$cluster/single.log" 2>&1); then
        mm_die "the single-user backend failed; last lines:"; tail -n 20 "$cluster/single.log" >&2; return 1
    fi
    if grep -q 'ERROR:' "$cluster/single.log"; then
        mm_die "a statement failed:"; grep -m3 'ERROR:' "$cluster/single.log" >&2; return 1
    fi
    (cd "$cluster" && mm_as_server "$(mm__bindir "$cluster")/pg_ctl" start -w -t 60 -D "$cluster/data" \
        -l "$cluster/postgres.log" >/dev/null) || { mm_die "the server did not start again"; return 1; }
    [[ -z "$keep" ]] || cp "$out" "$keep/$(basename "$input" .in).callgrind"
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

enqueue_run() { # $1 calls
    fresh_db
    { echo "SELECT modelmine.authenticate('$(cat "$cluster/token")')"
      for (( i = 0; i < $1; i++ )); do submit_1000; done; } >"$cluster/enqueue-$1.in"
    count "$cluster/enqueue-$1.in"
}

drain_run() { # $1 rounds
    local key
    fresh_db
    # enough pending jobs for every round (24 a round), submitted before the count
    { echo "SELECT modelmine.authenticate('$(cat "$cluster/token")');"
      for (( i = 0; i < ($1 * 24 + 999) / 1000 + 1; i++ )); do echo "$(submit_1000);"; done; } | sql >/dev/null
    key=$(sql -c "SELECT modelmine.authenticate('$(cat "$cluster/token")')" \
              -c "SELECT node_key FROM modelmine.register_node('bench', '{\"trainers\": [\"noop\"], \"slots\": 24}')" | tail -n 1)
    sql -c 'CREATE UNLOGGED TABLE public.claimed (job_id bigint)'
    { echo "SELECT modelmine.authenticate_node('$key')"
      echo "SELECT modelmine.heartbeat(0.1, 100, 1000)"
      for (( i = 0; i < $1; i++ )); do
          echo "INSERT INTO public.claimed SELECT job_id FROM modelmine.claim_jobs(24, 60)"
          echo "WITH d AS (DELETE FROM public.claimed RETURNING job_id) SELECT count(*) FROM modelmine.complete_jobs((SELECT jsonb_agg(jsonb_build_object('job_id', job_id, 'result', '$noop_result'::jsonb)) FROM d))"
      done; } >"$cluster/drain-$1.in"
    count "$cluster/drain-$1.in"
}

heading "throwaway cluster"
mm_bench_tree
echo "checkout: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(valgrind --version)"
cluster=$(mm_tmpdir bench-instructions)
mm_cluster_start "$cluster" "$(mm_free_port)"

heading "enqueue: submit_jobs of 1,000 noop jobs, ${enqueue_calls%,*} and ${enqueue_calls#*,} calls"
a=$(enqueue_run "${enqueue_calls%,*}"); b=$(enqueue_run "${enqueue_calls#*,}")
jobs=$(sql -c "SELECT count(*) FROM modelmine.jobs")
echo "instructions: $a and $b; $jobs jobs in the long run"
awk -v a="$a" -v b="$b" -v n=$(( (${enqueue_calls#*,} - ${enqueue_calls%,*}) * 1000 )) \
    'BEGIN { printf "enqueue: %.1f k instructions a job\n", (b - a) / n / 1000 }'

heading "drain: claim_jobs(24) then complete_jobs, ${drain_rounds%,*} and ${drain_rounds#*,} rounds"
a=$(drain_run "${drain_rounds%,*}"); b=$(drain_run "${drain_rounds#*,}")
done_n=$(sql -c "SELECT count(*) FROM modelmine.jobs WHERE status = 'COMPLETED'")
[[ $done_n -eq $(( ${drain_rounds#*,} * 24 )) ]] ||
    { mm_die "the long drain settled $done_n jobs, not $(( ${drain_rounds#*,} * 24 ))"; exit 1; }
echo "instructions: $a and $b; $done_n jobs settled in the long run; check_invariants(): $(sql -c "SELECT count(*) FROM modelmine.check_invariants()") rows"
awk -v a="$a" -v b="$b" -v n=$(( (${drain_rounds#*,} - ${drain_rounds%,*}) * 24 )) \
    'BEGIN { printf "drain: %.1f k instructions a settled job\n", (b - a) / n / 1000 }'
