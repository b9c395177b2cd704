#!/usr/bin/env bash
# scripts/bench-ledger.sh: how the ledger performs at a million blocks, on a throwaway cluster.
#
# Builds the private PostgreSQL tree (scripts/lib/cluster.sh), starts a cluster on a free port with
# shared_buffers=1GB, and measures:
#   1. sealing: N queue entries (INSERT ... generate_series) sealed by one seal_ledger(N) call, and
#      100,000 more sealed in passes of 1000 (what completions and claims do);
#   2. VACUUM (ANALYZE) of the ledger: what autovacuum does to an insert-only table once enough rows
#      arrived (autovacuum_vacuum_insert_threshold), setting hint bits and the visibility map, so the
#      verification runs measure reading, not first-touch hint-bit writes;
#   3. verify_ledger(), 3 runs in one session, and the backend's memory: private memory (RssAnon)
#      sampled every 10 ms before and during the runs, and VmHWM (peak RSS, which also counts the
#      shared buffers the backend touched);
#   4. scripts/verify-ledger (psql COPY + python3), with its peak RSS;
#   5. the completion path: pgbench, K clients each bound to its own node, claim_jobs(1) then
#      complete_job in separate transactions, on top of the big chain.
# Then it stops the cluster and removes everything. No figure is asserted; this is not part of
# scripts/test.sh. It takes a few minutes.
#
# Usage: scripts/bench-ledger.sh [--blocks N] [--completions N] [--clients K] [--help]
#   --blocks N        blocks to load and verify (default 1000000, at most 1000000)
#   --completions N   jobs completed through claim_jobs/complete_job (default 4000)
#   --clients K       parallel pgbench clients, one node each (default 8)
# Environment: PG_CONFIG, MM_PG_OPTS (added after shared_buffers=1GB), MM_PGTREE (a private tree from
# mm_pg_tree to reuse, as scripts/bench.sh does; otherwise the script builds one).
# Exit status: 0 when every step ran (and the chain verified), 1 otherwise, 2 for bad usage.
set -euo pipefail

blocks=1000000
completions=4000
clients=8
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --blocks) blocks=${2:?--blocks needs a number}; shift 2 ;;
        --completions) completions=${2:?--completions needs a number}; shift 2 ;;
        --clients) clients=${2:?--clients needs a number}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-ledger: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$blocks" "$completions" "$clients"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench-ledger: not a positive number: $n" >&2; exit 2; }
done
(( blocks <= 1000000 )) || { echo "bench-ledger: --blocks is at most 1000000 (one seal_ledger call)" >&2; exit 2; }
per_client=$(( (completions + clients - 1) / clients ))
completions=$(( per_client * clients ))

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG=bench-ledger
export MM_PG_OPTS="-c shared_buffers=1GB${MM_PG_OPTS:+ $MM_PG_OPTS}"
for tool in psql pgbench python3; do
    command -v "$tool" >/dev/null || { echo "bench-ledger: $tool is required" >&2; exit 1; }
done

tree="" own_tree=0 cluster="" tmp=""
cleanup() {
    [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster" || true; rm -rf "$cluster"; }
    [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
    [[ -n "$tmp" ]] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "bench-ledger: interrupted; stopping the cluster" >&2; exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
q() { psql -X -At -q -v ON_ERROR_STOP=1 -d bench "$@"; }
rows=()   # "label|count|seconds|rate unit" for the final table
row() { rows+=("$1|$2|$3|$4"); printf '  %-44s %9s in %8s s  = %s\n' "$1" "$2" "$3" "$4"; }

say "throwaway cluster (shared_buffers=1GB, set by this script through MM_PG_OPTS: $MM_PG_OPTS)"
tmp=$(mktemp -d /tmp/mm-bench-out.XXXXXX)
mm_bench_tree >"$tmp/tree.log" 2>&1 || { cat "$tmp/tree.log" >&2; exit 1; }
cluster=$(mm_tmpdir bench)
mm_cluster_start "$cluster" "$(mm_free_port)"
echo "PostgreSQL $(psql -X -At -d postgres -c 'SHOW server_version') on 127.0.0.1:$PGPORT," \
     "shared_buffers=$(psql -X -At -d postgres -c 'SHOW shared_buffers'), $(nproc) CPUs" \
     "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
psql -X -q -d postgres -c "CREATE DATABASE bench"
q -c "SET client_min_messages = warning; CREATE EXTENSION modelmine CASCADE;
      UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
      UPDATE modelmine.settings SET value = 1000000000 WHERE name = 'signup_grant';"

say "sealing $blocks blocks"
t0=$(now)
q -c "INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at)
      SELECT 1000000000 + i, 1 + i % 1000, 1 + i % 50, 100 + i % 900, (100 + i % 900) * 80 / 100,
             (100 + i % 900) - (100 + i % 900) * 80 / 100, '0.' || (9000 + i % 1000), '0.' || (1000 + i % 8999),
             1 + i % 200, timestamptz '2026-01-01 00:00:00+00' + i * interval '37 ms'
        FROM generate_series(1, $blocks) i"
t1=$(now)
row "queue $blocks entries (INSERT)" "$blocks" "$(secs "$t0" "$t1")" "$(rate "$blocks" "$(secs "$t0" "$t1")") rows/s"
sealed=$(q -c "SELECT modelmine.seal_ledger($blocks)")
t2=$(now)
[[ $sealed == "$blocks" ]] || { echo "bench-ledger: seal_ledger sealed $sealed, not $blocks" >&2; exit 1; }
row "seal_ledger($blocks), one pass" "$blocks" "$(secs "$t1" "$t2")" "$(rate "$blocks" "$(secs "$t1" "$t2")") blocks/s"

say "VACUUM (ANALYZE) modelmine.ledger (as autovacuum would for an insert-only table)"
t0=$(now)
q -c "VACUUM (ANALYZE) modelmine.ledger"
t1=$(now)
row "VACUUM (ANALYZE) modelmine.ledger" "$((blocks + 1))" "$(secs "$t0" "$t1")" \
    "$(q -c "SELECT pg_size_pretty(pg_table_size('modelmine.ledger')) || ' heap, ' || pg_size_pretty(pg_indexes_size('modelmine.ledger')) || ' indexes'")"

say "verify_ledger(), 3 runs in one session, with its memory"
# The session writes its pid, waits for the sampler, runs verify 3 times (elapsed seconds from
# clock_timestamp), and copies /proc/PID/status before and after.
cat >"$tmp/verify.sql" <<SQL
\o $tmp/pid
SELECT pg_backend_pid();
\o
SELECT pg_sleep(0.5);
\! cat /proc/\$(cat $tmp/pid)/status > $tmp/status.before
SQL
for r in 1 2 3; do
    cat >>"$tmp/verify.sql" <<SQL
SELECT clock_timestamp() AS t0 \gset
SELECT ok AND blocks_checked = $((blocks + 1)) AS ok FROM modelmine.verify_ledger() \gset
SELECT 'run $r ' || :'ok' || ' ' || extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
SQL
done
echo "\\! cat /proc/\$(cat $tmp/pid)/status > $tmp/status.after" >>"$tmp/verify.sql"
q -f "$tmp/verify.sql" >"$tmp/verify.out" &
psql_pid=$!
while [[ ! -s "$tmp/pid" ]] && kill -0 "$psql_pid" 2>/dev/null; do sleep 0.01; done
backend=$(tr -dc 0-9 <"$tmp/pid")
# Sampler: RssAnon (private memory) of the backend every 10 ms until the session ends.
max_anon=0
while kill -0 "$psql_pid" 2>/dev/null; do
    a=$(awk '/^RssAnon:/ { print $2 }' "/proc/$backend/status" 2>/dev/null || echo 0)
    [[ -n "$a" && $a -gt $max_anon ]] && max_anon=$a
    sleep 0.01
done
wait "$psql_pid"
kb() { awk -v k="$1" "/^$1:/ { print \$2 }" "$2"; }
anon_before=$(kb RssAnon "$tmp/status.before")
for r in 1 2 3; do
    read -r _ _ ok s < <(grep "^run $r " "$tmp/verify.out")
    [[ $ok == t ]] || { echo "bench-ledger: verify_ledger() run $r did not verify $((blocks + 1)) blocks" >&2; exit 1; }
    row "verify_ledger() run $r" "$((blocks + 1))" "$(printf '%.3f' "$s")" "$(rate $((blocks + 1)) "$s") blocks/s"
done
mem_backend="backend $backend: RssAnon (private) $anon_before kB before, peak $max_anon kB while verifying;"
mem_backend+=" VmHWM $(kb VmHWM "$tmp/status.before") kB before, $(kb VmHWM "$tmp/status.after") kB after"
mem_backend+=" (VmHWM counts the shared buffers it read: the table is $(q -c "SELECT pg_size_pretty(pg_table_size('modelmine.ledger'))"))"
echo "  $mem_backend"

say "scripts/verify-ledger (psql COPY + python3 hashlib)"
t0=$(now)
if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%M' -o "$tmp/time" scripts/verify-ledger -d bench >"$tmp/vl.out"
    mem_tool="scripts/verify-ledger: peak RSS $(cat "$tmp/time") kB (largest of python3 and psql)"
else
    scripts/verify-ledger -d bench >"$tmp/vl.out"
    mem_tool="scripts/verify-ledger: peak RSS not measured (no /usr/bin/time)"
fi
t1=$(now)
grep -q "^ok height=$blocks " "$tmp/vl.out" || { echo "bench-ledger: verify-ledger said: $(cat "$tmp/vl.out")" >&2; exit 1; }
row "scripts/verify-ledger" "$((blocks + 1))" "$(secs "$t0" "$t1")" "$(rate $((blocks + 1)) "$(secs "$t0" "$t1")") blocks/s"
echo "  $mem_tool"

say "sealing 100000 more in passes of 1000 (the completion path's batch)"
q -c "INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at)
      SELECT 2000000000 + i, 1, 1, 100, 80, 20, '0.95', '0.05', 10, now() FROM generate_series(1, 100000) i"
t0=$(now)
q -c "DO \$\$ BEGIN FOR i IN 1..100 LOOP PERFORM modelmine.seal_ledger(1000); COMMIT; END LOOP; END \$\$"
t1=$(now)
[[ $(q -c "SELECT count(*) FROM modelmine.ledger_queue") == 0 ]] || { echo "bench-ledger: entries left queued" >&2; exit 1; }
row "seal 100000 in 100 passes of 1000" 100000 "$(secs "$t0" "$t1")" "$(rate 100000 "$(secs "$t0" "$t1")") blocks/s"

say "completions: $clients clients x $per_client claim_jobs + complete_job (pgbench)"
q -c "SELECT modelmine.signup('ann@example.com', 'ann password'), modelmine.signup('ops@example.com', 'ops password')" >/dev/null
q -c "CREATE TABLE bench_nodes (client integer PRIMARY KEY, node_key text)"
q >/dev/null <<SQL
SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password'));
INSERT INTO bench_nodes SELECT c, (modelmine.register_node('node ' || c, '{"trainers": ["noop"]}')).node_key
  FROM generate_series(0, $((clients - 1))) c;
-- claiming needs a live node: one heartbeat each, good for the whole run
UPDATE modelmine.settings SET value = 3600 WHERE name = 'offline_after_seconds';
SELECT modelmine.authenticate_node(node_key), modelmine.heartbeat(1, 1, 2) FROM bench_nodes;
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password'));
SELECT count(modelmine.submit_job('job ' || i, '{"trainer": "noop"}', NULL, 10 + i % 90)) FROM generate_series(1, $completions) i;
SQL
cat >"$tmp/complete.sql" <<'SQL'
SELECT modelmine.authenticate_node(node_key) AS node FROM bench_nodes WHERE client = :client_id \gset
SELECT COALESCE((SELECT job_id FROM modelmine.claim_jobs(1, 300)), 0) AS job \gset
SELECT CASE WHEN :job > 0 THEN modelmine.complete_job(:job, jsonb_build_object('accuracy', 0.9, 'loss', 0.1, 'epochs', 1)) END;
SQL
head0=$(q -c "SELECT max(height) FROM modelmine.ledger")
t0=$(now)
pgbench -n -d bench -c "$clients" -j "$clients" -t "$per_client" -f "$tmp/complete.sql" >"$tmp/pgbench.log" 2>&1 \
    || { cat "$tmp/pgbench.log" >&2; exit 1; }
t1=$(now)
q -c "SELECT modelmine.ledger_digest()" >/dev/null
done_jobs=$(q -c "SELECT count(*) FROM modelmine.jobs WHERE status = 'COMPLETED'")
row "completions ($clients clients, claim + complete)" "$done_jobs" "$(secs "$t0" "$t1")" \
    "$(rate "$done_jobs" "$(secs "$t0" "$t1")") completions/s"
echo "  pgbench: $(grep -E '^tps' "$tmp/pgbench.log" | head -n 1); blocks added: $(( $(q -c "SELECT max(height) FROM modelmine.ledger") - head0 ))"
final=$(q -c "SELECT ok || ' height ' || height FROM modelmine.verify_ledger()")
[[ $final == true\ * ]] || { echo "bench-ledger: the chain does not verify at the end: $final" >&2; exit 1; }

say "results (PostgreSQL 15, shared_buffers=1GB, $(nproc) CPUs; the chain verifies: $final)"
printf '%-44s %10s %10s  %s\n' "operation" "count" "seconds" "rate"
printf '%-44s %10s %10s  %s\n' "---------" "-----" "-------" "----"
for r in "${rows[@]}"; do
    IFS='|' read -r a b c d <<<"$r"
    printf '%-44s %10s %10s  %s\n' "$a" "$b" "$c" "$d"
done
echo
echo "memory: $mem_backend"
echo "memory: $mem_tool"
