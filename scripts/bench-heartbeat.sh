#!/usr/bin/env bash
# scripts/bench-heartbeat.sh: what a heartbeat costs, with and without the maintained node counts.
#
# Issue 20 made network_stats() read nodes online from counts maintained by a trigger on nodes
# (extension/nodeseen.c): every heartbeat appends two delta rows, folded at commit at most every
# fold_interval_ms per backend.  This measures heartbeats per second with pgbench, alternating runs
# with the trigger enabled (the shipped state) and disabled (what a heartbeat cost before: the
# heartbeat code is otherwise the same), so both see the same machine load.
#
# Steps: a private PostgreSQL tree (scripts/lib/cluster.sh; MM_PGTREE to reuse one) and a throwaway
# cluster; one operator registers --nodes nodes through register_node; then --rounds rounds of two
# pgbench runs (--clients clients, --seconds each, -M prepared), each transaction one random node's
#   BEGIN; authenticate_node_local(key); heartbeat(...); COMMIT
# as a login role in modelmine_node, as the gateway runs it.  Prints tps per run and the medians,
# then check_invariants() (which compares the counts with a recount).  Nothing is asserted on the
# timings.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-heartbeat.sh [--nodes N] [--clients N] [--seconds N] [--rounds N] [--help]

  --nodes N    nodes registered, each beating at random (default 10000)
  --clients N  pgbench clients (default 4)
  --seconds N  length of each pgbench run (default 20)
  --rounds N   rounds of (with counts, without counts) runs (default 3)

Environment: PG_CONFIG; MM_PGTREE (a private tree from mm_pg_tree to reuse); MM_PG_OPTS.
USAGE
}

nodes=10000 clients=4 seconds=20 rounds=3
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench-heartbeat.sh: $1 needs a positive whole number" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --nodes|--clients|--seconds|--rounds)
            [[ $# -ge 2 ]] || { echo "bench-heartbeat.sh: $1 needs a value" >&2; exit 2; }
            positive "$1" "$2"; printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-heartbeat.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-heartbeat.sh"
tree="" own_tree=0 cluster="" work="" db=bench

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
    [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
    [[ -n "$work" ]] && rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
sql() { mm_psql -d "$db" -q -At "$@"; }

mm_bench_tree
echo "checkout: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
cluster=$(mm_tmpdir bench-heartbeat)
work=$(mm_tmpdir bench-heartbeat-work)
MM_PG_OPTS="-c shared_buffers=512MB${MM_PG_OPTS:+ $MM_PG_OPTS}" mm_cluster_start "$cluster" "$(mm_free_port)"
mm_psql -q -d postgres -c "CREATE DATABASE $db"
mm_psql -q -d "$db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION modelmine CASCADE'
echo "registering $nodes nodes"
sql -v nodes="$nodes" <<'SQL'
SET client_min_messages = warning;
DROP ROLE IF EXISTS mm_bench_node;
CREATE ROLE mm_bench_node LOGIN IN ROLE modelmine_node;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
UPDATE modelmine.settings SET value = 100000 WHERE name = 'max_nodes_per_operator';
SELECT modelmine.signup('ops@bench.local', 'bench-password') \gset
SELECT modelmine.authenticate(modelmine.login('ops@bench.local', 'bench-password')) \gset
CREATE TABLE bench_keys (id integer PRIMARY KEY, node_key text NOT NULL);
INSERT INTO bench_keys
SELECT g, (modelmine.register_node('node-' || g, '{"trainers": ["noop"]}')).node_key
  FROM generate_series(1, :nodes) g;
GRANT SELECT ON bench_keys TO mm_bench_node;
-- every node beats once, so each beat below moves a node from one time to another
SELECT count(*) FROM (SELECT modelmine.authenticate_node_local(node_key), modelmine.heartbeat(10, 100, 1000)
                        FROM bench_keys) x;
VACUUM ANALYZE;
SQL
cat >"$work/beat.sql" <<SQL
\\set id random(1, $nodes)
BEGIN;
SELECT modelmine.authenticate_node_local(node_key) FROM bench_keys WHERE id = :id;
SELECT modelmine.heartbeat(10, 100, 1000);
COMMIT;
SQL
# run MODE: one pgbench run; prints its tps
run() {
    local state=ENABLE
    [[ $1 == without ]] && state=DISABLE
    sql -c "ALTER TABLE modelmine.nodes $state TRIGGER nodes_seen_update" \
        -c "ALTER TABLE modelmine.nodes $state TRIGGER nodes_seen_insert_delete"
    pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -U mm_bench_node -d "$db" -f "$work/beat.sql" \
        2>&1 | awk '/^tps/ { printf "%.0f\n", $3; exit }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "heartbeats/s: $rounds rounds of ${seconds}-second pgbench runs, $clients clients, $nodes nodes"
echo "(with = nodes_seen triggers enabled, as shipped; without = disabled, the cost before issue 20)"
: >"$work/with"; : >"$work/without"
for (( r = 1; r <= rounds; r++ )); do
    w=$(run with); wo=$(run without)
    echo "$w" >>"$work/with"; echo "$wo" >>"$work/without"
    printf '  round %d: with %s/s, without %s/s   (load %s)\n' "$r" "$w" "$wo" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
mw=$(median <"$work/with") mwo=$(median <"$work/without")
printf 'median: with %s/s, without %s/s: %s%%\n' "$mw" "$mwo" \
    "$(awk -v a="$mw" -v b="$mwo" 'BEGIN { printf "%+.1f", 100 * (a - b) / b }')"
# the counts were not maintained while the triggers were disabled: rebuild them as the update script
# does
sql -c "ALTER TABLE modelmine.nodes ENABLE TRIGGER nodes_seen_update" \
    -c "ALTER TABLE modelmine.nodes ENABLE TRIGGER nodes_seen_insert_delete"
sql <<'SQL'
BEGIN;
SELECT modelmine._housekeeping_at_commit();
COMMIT;
BEGIN;
DELETE FROM modelmine.node_seen_deltas;
DELETE FROM modelmine.node_seen_stats;
INSERT INTO modelmine.node_seen_stats (width, at, nodes)
SELECT 0, '-infinity', count(*) FROM modelmine.nodes HAVING count(*) > 0
UNION ALL
SELECT w.width, CASE w.width WHEN 1000000 THEN date_trunc('second', n.last_seen)
                             WHEN 1000 THEN date_trunc('milliseconds', n.last_seen) ELSE n.last_seen END, count(*)
  FROM modelmine.nodes n, (VALUES (1000000::bigint), (1000), (1)) w(width)
 WHERE n.last_seen IS NOT NULL GROUP BY 1, 2;
COMMIT;
SQL
# and heartbeats with the counts maintained once more, checked against a recount afterwards
echo "a last run with the counts maintained: $(run with)/s"
echo "network_stats: $(sql -F ' ' -c 'SELECT nodes_online, nodes_total FROM modelmine.network_stats()') (online, total)"
echo "check_invariants(): $(sql -c 'SELECT count(*) FROM modelmine.check_invariants()') violation(s)"
