#!/usr/bin/env bash
# scripts/bench-claim.sh: claim_jobs latency with a deep queue, fair share and placement on (issue 19).
#
# Loads, on a throwaway cluster (scripts/lib/cluster.sh; PostgreSQL's default settings), N pending jobs
# from U users and M nodes of mixed capacities, then has K sessions claim one job at a time, each claim
# from a random node, and prints the latency of the claim_jobs call and of the call with its commit
# (the commit runs the claim's housekeeping: folding usage into fair share, node counters, sealing).
#
# The load is direct INSERTs, not submit_job: 1,000,000 submits would take most of an hour and measure
# submit, not claim. So the stakes are not in escrow (check_invariants() reports that; it is not run),
# and jobs are inserted with their statistics trigger on, as submit would.
#   users  U users; fair_share rows with usage from 1 to 50 starts (decayed) and share 1, or 2 for
#          one user in ten
#   nodes  M nodes of one operator each (user i % U), 64 slots, memory 2048..65536 MB, 1..32 cores,
#          one in ten labelled gpu (those with 65536 MB), all online (offline_after_seconds 3600)
#   jobs   N noop jobs, user i % U, priority -2..2; 60% need nothing, 25% 2048 MB and 1 core, 12% 8192
#          MB and 4 cores, 3% 32768 MB, 8 cores and the gpu label
# Each session runs a procedure that, per claim, binds a random node (authenticate_node, untimed),
# then times claim_jobs(1, 3600) and its COMMIT with clock_timestamp(). Figures are printed, never
# asserted.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-claim.sh [--jobs N] [--users U] [--nodes M] [--claims C] [--sessions K] [--keep]

  --jobs N      pending jobs to load (default 1000000)
  --users U     users who own them (default 10000)
  --nodes M     nodes that claim (default 1000)
  --claims C    claims timed, in all (default 4000; the first 20 of each session are warm-up)
  --sessions K  concurrent claiming sessions (default 2)
  --keep        leave the cluster running afterwards and say how to connect to it
About 4 minutes at the defaults on 2 cores, most of it the load.
Environment: PG_CONFIG; MM_PGTREE (a private tree from mm_pg_tree to reuse); MM_PG_OPTS.
USAGE
}

jobs=1000000 users=10000 nodes=1000 claims=4000 sessions=2 keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --jobs|--users|--nodes|--claims|--sessions)
            [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench-claim.sh: $1 needs a positive whole number" >&2; exit 2; }
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-claim.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-claim.sh"
tree="" own_tree=0 cluster=""
db=bench_claim

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    if [[ $keep -eq 1 && -n "$cluster" ]]; then
        echo "cluster kept: psql \"host=127.0.0.1 port=$PGPORT user=postgres dbname=$db\"; stop: bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster'"
    else
        [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
        [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
    fi
    exit "$rc"
}
trap cleanup EXIT
sql() { mm_psql -d "$db" -q -At -v ON_ERROR_STOP=1 "$@"; }
heading() { printf '\n==== %s\n' "$*"; }
timed() { local t0=$SECONDS; "$@"; echo "($((SECONDS - t0)) s)"; }

heading "throwaway cluster"
if [[ -n "${MM_PGTREE:-}" && -d "$MM_PGTREE" ]]; then
    tree=$MM_PGTREE
else
    make --no-print-directory -s PG_CONFIG="$(mm_pg_config)"
    tree=$(mm_tmpdir pgtree); own_tree=1
    mm_pg_tree "$tree"
    export MM_PGTREE=$tree
fi
echo "checkout: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
cluster=$(mm_tmpdir bench-claim)
mm_cluster_start "$cluster" "$(mm_free_port)"
mm_psql -q -d postgres -c "CREATE DATABASE $db"
sql -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION modelmine CASCADE'
echo "PostgreSQL $(sql -c 'SHOW server_version'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: $(sql -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
                          FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync')")"

heading "load: $users users, $nodes nodes, $jobs pending jobs"
load_users() {
    sql -v users="$users" <<'SQL'
UPDATE modelmine.settings SET value = 3600 WHERE name = 'offline_after_seconds';
INSERT INTO modelmine.users (email, password_hash)
SELECT 'u' || i || '@bench.local', 'x' FROM generate_series(1, :users) i;
INSERT INTO modelmine.accounts (kind, user_id) SELECT 'user', id FROM modelmine.users;
INSERT INTO modelmine.fair_share (user_id, share, usage_log, rank, queued)
SELECT id, s.share, s.u, s.u - ln(s.share) / ln(2), true
  FROM modelmine.users,
       LATERAL (SELECT CASE WHEN id % 10 = 0 THEN 2 ELSE 1 END AS share,
                       extract(epoch FROM now() - '2000-01-01 00:00:00+00') / 3600
                       + ln(1 + random() * 49) / ln(2) AS u) s;
SQL
}
load_nodes() {
    sql -v users="$users" -v nodes="$nodes" <<'SQL'
CREATE SCHEMA bench;
INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, slots,
                             memory_mb, cores, labels, last_seen, online_since)
SELECT 1 + i % :users, 'n' || i,
       sha256(convert_to(encode(sha256(convert_to('s' || i, 'UTF8')), 'hex'), 'UTF8')),
       '{"trainers": ["noop"], "slots": 64}', '{trainer:noop}', 64,
       (ARRAY[2048, 4096, 8192, 16384, 65536])[1 + i % 5], (ARRAY[1, 2, 4, 8, 32])[1 + (i / 5) % 5],
       CASE WHEN i % 10 = 4 THEN '{gpu}'::text[] ELSE '{}' END, now(), now()
  FROM generate_series(1, :nodes) i;
INSERT INTO modelmine.accounts (kind, node_id) SELECT 'node', id FROM modelmine.nodes;
CREATE TABLE bench.keys (n integer PRIMARY KEY, key text NOT NULL);
INSERT INTO bench.keys
SELECT row_number() OVER (ORDER BY id),
       'mmn_' || id || '_' || encode(sha256(convert_to('s' || substr(name, 2), 'UTF8')), 'hex')
  FROM modelmine.nodes;
SQL
}
load_jobs() {
    local done=0 chunk=100000 n
    while (( done < jobs )); do
        n=$(( jobs - done < chunk ? jobs - done : chunk ))
        sql -v users="$users" -v from=$((done + 1)) -v to=$((done + n)) <<'SQL'
INSERT INTO modelmine.jobs (user_id, title, config, stake, priority, need_memory_mb, need_cores, need_labels)
SELECT 1 + i % :users, 'j' || i, '{"trainer": "noop"}', 1, (i * 7) % 5 - 2,
       CASE WHEN r < 0.60 THEN 0 WHEN r < 0.85 THEN 2048 WHEN r < 0.97 THEN 8192 ELSE 32768 END,
       CASE WHEN r < 0.60 THEN 0 WHEN r < 0.85 THEN 1 WHEN r < 0.97 THEN 4 ELSE 8 END,
       CASE WHEN r < 0.97 THEN '{}'::text[] ELSE '{gpu}' END
  FROM (SELECT i, random() AS r FROM generate_series(:from, :to) i) s;
SQL
        done=$(( done + n ))
        printf '  %d jobs\n' "$done"
    done
}
timed load_users
timed load_nodes
timed load_jobs
echo "folding the statistics and vacuuming"
timed sql -c "SELECT modelmine._housekeeping_at_commit()" -c "VACUUM ANALYZE"
sql -c "SELECT 'queue: ' || count(*) || ' claimable jobs, ' || count(DISTINCT user_id) || ' users'
          FROM modelmine.jobs WHERE open_replicas > 0 AND status IN ('PENDING', 'RUNNING')"

heading "claims: $claims in all from $sessions sessions, each from a random node"
sql -v nodes="$nodes" <<'SQL'
CREATE UNLOGGED TABLE bench.lat (session integer, i integer, call_ms float8, commit_ms float8, got integer);
CREATE PROCEDURE bench.claims(session integer, n integer, nodes integer) LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    got integer;
    node integer;
BEGIN
    FOR i IN 1 .. n LOOP
        node := 1 + (random() * (nodes - 1))::integer;
        PERFORM modelmine.authenticate_node(key) FROM bench.keys WHERE bench.keys.n = node;
        COMMIT;
        t0 := clock_timestamp();
        SELECT count(*) INTO got FROM modelmine.claim_jobs(1, 3600);
        t1 := clock_timestamp();
        COMMIT;
        INSERT INTO bench.lat VALUES (session, i, extract(epoch FROM t1 - t0) * 1000,
                                      extract(epoch FROM clock_timestamp() - t0) * 1000, got);
    END LOOP;
    COMMIT;
END $$;
SQL
sql -c "CREATE TABLE bench.rank_before AS
         SELECT user_id, percent_rank() OVER (ORDER BY rank, user_id) AS pct FROM modelmine.fair_share"
per=$(( claims / sessions ))
pids=()
t0=$(date +%s.%N)
for (( s = 1; s <= sessions; s++ )); do
    sql -c "CALL bench.claims($s, $((per + 20)), $nodes)" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t1=$(date +%s.%N)
echo "machine after the claims: load average $(cut -d' ' -f1-3 /proc/loadavg)"
sql <<'SQL'
SELECT format('%s claims timed (%s jobs leased); claim_jobs call: p50 %s ms, p99 %s ms, max %s ms; '
              'with its commit: p50 %s ms, p99 %s ms',
              count(*), sum(got),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY call_ms)::numeric, 3),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY call_ms)::numeric, 3),
              round(max(call_ms)::numeric, 3),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY commit_ms)::numeric, 3),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY commit_ms)::numeric, 3))
  FROM bench.lat WHERE i > 20;
SQL
echo "wall clock: $(awk -v a="$t0" -v b="$t1" -v n="$(( (per + 20) * sessions ))" 'BEGIN { printf "%.1f s, %.0f claims/s", b - a, n / (b - a) }')"
sql <<'SQL'
SELECT 'fairness: ' || count(DISTINCT j.user_id) || ' distinct users among ' || count(*) || ' leased jobs; '
       || 'their owners'' places in the fair-share order before the run (0: least usage per share): '
       || 'median ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.pct)::numeric, 3)
       || ', 99th percentile ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY p.pct)::numeric, 3)
  FROM modelmine.jobs j JOIN bench.rank_before p ON p.user_id = j.user_id
 WHERE j.status = 'RUNNING';
SELECT 'placement: ' || count(*) FILTER (WHERE j.need_memory_mb > n.memory_mb OR j.need_cores > n.cores
                                          OR NOT n.labels @> j.need_labels)
       || ' leased jobs on a node that does not offer what they need'
  FROM modelmine.jobs j JOIN modelmine.nodes n ON n.id = j.node_id
 WHERE j.status = 'RUNNING';
SELECT 'over-committed nodes (running jobs need more memory or cores than offered): ' || count(*)
  FROM (SELECT n.id FROM modelmine.nodes n JOIN modelmine.jobs j ON j.node_id = n.id AND j.status = 'RUNNING'
         GROUP BY n.id, n.memory_mb, n.cores
        HAVING sum(j.need_memory_mb) > n.memory_mb OR sum(j.need_cores) > n.cores) o;
SQL
