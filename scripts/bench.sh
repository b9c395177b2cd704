#!/usr/bin/env bash
# scripts/bench.sh: every ModelMine benchmark, one after the other.
#
# Builds once (make, then a private PostgreSQL tree with modelmine installed: scripts/lib/cluster.sh) and
# passes the tree to each benchmark in MM_PGTREE, so none of them rebuilds it; then runs, in turn:
#   scripts/bench-stats.sh    statistics and listing latency at 1M jobs and 10k nodes
#   scripts/bench-queue.sh    throughput of the work protocol, next to Graphile Worker, pg-boss, BullMQ
#   scripts/bench-ledger.sh   the ledger at a million blocks (when present)
# Each starts and removes its own throwaway cluster, so they never measure each other. A benchmark that
# fails does not stop the others; the last line says which ran and which failed.
# Benchmarks print figures; nothing here asserts a timing.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench.sh [--help]

Runs scripts/bench-stats.sh, scripts/bench-queue.sh and (if present) scripts/bench-ledger.sh in turn,
each on its own throwaway PostgreSQL 15 cluster on 127.0.0.1, with their default sizes; about 25 minutes
on 2 cores. Run one of them directly to change its sizes (each has --help). docs/BENCHMARKS.md explains
what each measures and lists figures measured on the development machine.

Environment: PG_CONFIG, MM_PG_OPTS (passed on to each benchmark).
Exit status: 0 when every benchmark exited 0, 1 otherwise, 2 for bad usage.
USAGE
}

while [[ $# -gt 0 ]]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench.sh"

tree=""
cleanup() {
    local rc=$?
    trap - EXIT
    [[ -n "$tree" ]] && rm -rf "$tree"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

printf '==== bench.sh: build once\n'
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); code: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
make --no-print-directory -s PG_CONFIG="$(mm_pg_config)"
tree=$(mm_tmpdir pgtree)
mm_pg_tree "$tree"
export MM_PGTREE=$tree

ran=() failed=()
for b in bench-stats bench-queue bench-ledger; do
    if [[ ! -x scripts/$b.sh ]]; then
        echo
        echo "==== bench.sh: scripts/$b.sh is not there (or not executable); skipped"
        continue
    fi
    printf '\n==== bench.sh: scripts/%s.sh (started %s)\n' "$b" "$(date -u +%H:%M:%SZ)"
    start=$SECONDS
    rc=0
    scripts/$b.sh </dev/null || rc=$?
    echo "==== bench.sh: scripts/$b.sh exited $rc after $((SECONDS - start)) s"
    ran+=("$b")
    [[ $rc -eq 0 ]] || failed+=("$b (exit $rc)")
done

echo
echo "bench.sh: ran ${ran[*]:-nothing}; failed: ${failed[*]:-none}; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
[[ ${#failed[@]} -eq 0 && ${#ran[@]} -gt 0 ]]
