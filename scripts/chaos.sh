#!/usr/bin/env bash
# scripts/chaos.sh: the deterministic chaos run (docs/CHAOS.md). A whole local network (PostgreSQL,
# two gateways, workers through --db and --api, the notifier with an SMTP sink and a webhook target)
# runs random users and nodes while faults hit it from a seeded schedule; the invariants are checked
# every few seconds and at the end. The driver is scripts/chaos.py.
#
# Inside scripts/test.sh (MM_CLUSTER_DIR and MM_PGTREE set) it uses that cluster (and crash-restarts
# it, as integration tests may); otherwise it builds, makes a private tree and a throwaway cluster.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/chaos.sh [--seed S]... [--minutes M | --seconds N] [--drain N] [--verbose] [--keep]
                        [--print-schedule]

  --seed S          a seed (repeatable: one run per seed); default: one random seed, printed
  --minutes M       time with operations and faults per seed (default 1)
  --seconds N       the same in seconds
  --drain N         then, faults off, up to N seconds for every job to end (default 60)
  --verbose         print every action as it runs (it is always logged)
  --keep            keep the database and the logs of a clean run too
  --print-schedule  print each seed's schedule of operations and faults, run nothing
  --inject KINDS    break the books on purpose halfway (lost_submit, double_settle, ledger; comma-
                    separated), to see the checks catch it: the self-test (exit 1 expected)

Exit status: 0 every seed ran clean; 1 an invariant was violated (the seed and the last actions are
printed); 2 bad usage or a setup failure.
USAGE
}

seeds=() seconds=60 drain=60 verbose=() keep=0 print=0 inject=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seed) seeds+=("${2:?--seed needs a value}"); shift 2 ;;
        --minutes) seconds=$(( ${2:?--minutes needs a value} * 60 )); shift 2 ;;
        --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
        --drain) drain=${2:?--drain needs a value}; shift 2 ;;
        --verbose) verbose=(--verbose); shift ;;
        --inject) inject=(--inject "${2:?--inject needs a value}"); shift 2 ;;
        --keep) keep=1; shift ;;
        --print-schedule) print=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "chaos.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for s in "${seeds[@]}" "$seconds" "$drain"; do
    [[ $s =~ ^[0-9]+$ ]] || { echo "chaos.sh: not a non-negative integer: $s" >&2; exit 2; }
done
[[ ${#seeds[@]} -gt 0 ]] || seeds=($(( (RANDOM << 15 | RANDOM) % 1000000 )))

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MM_REPO=$repo
if [[ $print -eq 1 ]]; then
    for s in "${seeds[@]}"; do
        echo "== seed $s, $seconds s"
        python3 "$repo/scripts/chaos.py" --seed "$s" --seconds "$seconds" --print-schedule
    done
    exit 0
fi

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
# shellcheck disable=SC2034  # read by cluster.sh's mm_log
MM_LOG_TAG=chaos.sh
tree="" cluster="" own=0 rc=0
# Our own cluster goes, unless --keep or a seed failed (its database is kept for a look).
# shellcheck disable=SC2317  # only reached from the EXIT trap
cleanup() {
    [[ $own -eq 1 ]] || return 0
    if [[ $keep -eq 1 || $rc -ne 0 ]]; then
        echo "chaos.sh: kept the cluster $cluster (stopped: pg_ctl -D $cluster/data start," \
            "as user postgres when root; binaries in $tree)"
        [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster" || true; }
        return 0
    fi
    [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster" || true; rm -rf "$cluster"; }
    [[ -n "$tree" ]] && rm -rf "$tree"
    return 0
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [[ -n "${MM_CLUSTER_DIR:-}" && -f "${MM_CLUSTER_DIR}/port" ]]; then
    mm_cluster_env "$MM_CLUSTER_DIR"
    echo "chaos.sh: using the cluster in $MM_CLUSTER_DIR (port $PGPORT)"
else
    own=1
    make -C "$repo" --no-print-directory -s PG_CONFIG="$(mm_pg_config)" || exit 2
    tree=$(mm_tmpdir pgtree) && mm_pg_tree "$tree" || exit 2
    export MM_PGTREE=$tree
    cluster=$(mm_tmpdir chaos-cluster) || exit 2
    MM_PG_OPTS=${MM_PG_OPTS:-"-c fsync=off"} mm_cluster_start "$cluster" "$(mm_free_port)" || exit 2
fi
for b in worker/modelmine-worker api/modelmine-api notify/modelmine-notify; do
    [[ -x "$repo/$b" ]] || { echo "chaos.sh: $b is not built (run make)" >&2; exit 2; }
done
[[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ]] ||
    { echo "chaos.sh: libfaketime is missing (scripts/install-deps.sh installs it)" >&2; exit 2; }

for s in "${seeds[@]}"; do
    db=chaos_$s
    work=$(mm_tmpdir "chaos-$s")
    echo "== chaos: seed $s, $seconds s of operations and faults, up to $drain s drain; logs: $work"
    psql -X -q -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" || exit 2
    started=$SECONDS
    one=0
    python3 "$repo/scripts/chaos.py" --seed "$s" --seconds "$seconds" --drain "$drain" --db "$db" \
        --workdir "$work" --repo "$repo" "${verbose[@]}" "${inject[@]}" || one=$?
    echo "== seed $s: exit $one after $(( SECONDS - started )) s"
    if [[ $one -eq 0 && $keep -eq 0 ]]; then
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
        rm -rf "$work"
    else
        echo "kept database $db and $work (actions.log, one log per process)"
        for f in "$work"/*.log; do
            [[ $one -ne 0 && $f != */actions.log ]] || continue
            echo "---- ${f##*/} (last 15 lines)"
            tail -n 15 "$f"
        done
    fi
    [[ $one -eq 0 ]] || rc=$one
done
exit "$rc"
