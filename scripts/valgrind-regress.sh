#!/usr/bin/env bash
# scripts/valgrind-regress.sh: the extension's pg_regress suite (regress/sql) against a postmaster
# running under valgrind (memcheck), PostgreSQL's own way: valgrind --trace-children=yes with
# PostgreSQL's suppressions (scripts/valgrind/postgres.supp, from src/tools/valgrind.supp), one log
# per process (scripts/valgrind/debian-pg15.supp adds the same padding suppressions for Debian's
# stripped binary). Not part of scripts/test.sh: every backend runs 20-50 times slower.
#
# What it can and cannot see: the server is Debian's, built without USE_VALGRIND, so palloc does not
# tell valgrind about its chunks. Memory inside a memory context's blocks is one malloc'd area to
# valgrind: an overrun into the next chunk, or a use after pfree, goes unseen (a USE_VALGRIND or
# --enable-cassert server build would catch those; the Debian server is neither). What remains visible:
# uninitialised reads (a fresh block's bytes are undefined until written, so a read of a palloc'd
# field never set is reported), overruns past a block or a malloc'd buffer (OpenSSL, libc), invalid
# frees, and bad syscall parameters. Errors outside modelmine.so (none in PostgreSQL itself is
# expected past the suppressions) are listed apart from those with a modelmine frame.
#
# Usage: scripts/valgrind-regress.sh [--tests "install ledger ..."] [--keep]
#   --tests LIST   only these regress/sql tests (default: all of them)
#   --keep         keep the cluster dir (logs) afterwards
# Exit status 0 when no valgrind error has a frame in modelmine.so, 1 otherwise, 2 for bad usage.
# The last line is "valgrind-regress: N tests, N ok; N errors in modelmine, N elsewhere: PASS|FAIL".
set -euo pipefail

tests="" keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --tests) tests=${2:?--tests needs a list}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "valgrind-regress.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ! command -v valgrind >/dev/null; then
    echo "valgrind-regress.sh: valgrind is not installed" >&2
    exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG=valgrind-regress
pg_config=$(mm_pg_config)
export PG_CONFIG=$pg_config

tree="" cluster=""
cleanup() {
    [[ -n $cluster ]] && { mm_cluster_stop "$cluster" || true; }
    [[ -n $tree ]] && rm -rf "$tree"
    if [[ $keep -eq 1 ]]; then echo "kept $cluster (valgrind logs in $cluster/valgrind)"
    elif [[ -n $cluster ]]; then rm -rf "$cluster"; fi
}
trap cleanup EXIT

make --no-print-directory -s PG_CONFIG="$pg_config" >/dev/null
tree=$(mm_tmpdir pgtree)
mm_pg_tree "$tree"
export MM_PGTREE=$tree
cluster=$(mm_tmpdir vgcluster)
mm_cluster_start "$cluster" "$(mm_free_port)"   # initdb and configuration, then a restart below
mm_cluster_stop "$cluster"
bindir=$(cat "$cluster/bindir")
mkdir -p "$cluster/valgrind"
cp scripts/valgrind/postgres.supp scripts/valgrind/debian-pg15.supp "$cluster/valgrind/"
cat >"$cluster/postgres-valgrind" <<WRAP
#!/bin/sh
exec valgrind --quiet --trace-children=yes --leak-check=no --num-callers=30 --read-var-info=no \\
    --suppressions=$cluster/valgrind/postgres.supp \\
    --suppressions=$cluster/valgrind/debian-pg15.supp \\
    --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \\
    --log-file=$cluster/valgrind/%p.log "$bindir/postgres" "\$@"
WRAP
chmod 755 "$cluster/postgres-valgrind"
[[ $EUID -ne 0 ]] || chown -R "${MM_SERVER_USER:-postgres}:" "$cluster"
# jit off: LLVM under valgrind is slow and not ours; timeouts long enough for a 50x slower server
(cd "$cluster" && mm_as_server "$bindir/pg_ctl" start -w -t 600 -p "$cluster/postgres-valgrind" \
    -D "$cluster/data" -l "$cluster/postgres.log" -o "-c jit=off -c max_connections=30" >/dev/null)
mm_cluster_env "$cluster"
export PGHOST PGPORT PGUSER PGDATABASE
echo "postmaster under valgrind on port $PGPORT; logs in $cluster/valgrind"

start=$SECONDS
rc=0
args=(ISOLATION=)
[[ -z $tests ]] || args+=(REGRESS="$tests")
make --no-print-directory installcheck PG_CONFIG="$pg_config" "${args[@]}" 2>&1 |
    tee "$cluster/regress.log" || rc=$?
n_ok=$(grep -cE '^(test +| +)[^ ]+ +\.\.\. +ok( |$)' "$cluster/regress.log" || true)
n_all=$(grep -cE '^(test +| +)[^ ]+ +\.\.\. ' "$cluster/regress.log" || true)
echo "pg_regress under valgrind: $n_ok of $n_all ok in $((SECONDS - start)) s (make exited $rc;" \
    "a diff here can be timing under valgrind: see regress/out/regression.diffs)"
mm_cluster_stop "$cluster"   # flush the logs of every process

ours=0 other=0
for f in "$cluster"/valgrind/*.log; do
    [[ -s $f ]] || continue
    # one error per VALGRINDERROR-BEGIN ... END block; ours if a frame is in modelmine.so
    read -r o x < <(awk '/VALGRINDERROR-BEGIN/ { inb = 1; mine = 0; next }
        /VALGRINDERROR-END/ { if (mine) o++; else x++; inb = 0; next }
        inb && /modelmine\.so|extension\/[a-z_]+\.c/ { mine = 1 }
        END { print o + 0, x + 0 }' "$f")
    ours=$((ours + o)) other=$((other + x))
    if [[ $((o + x)) -gt 0 ]]; then
        echo "---- ${f##*/}: $o error(s) with a modelmine frame, $x elsewhere (first 60 lines)"
        head -n 60 "$f"
    fi
done
verdict=PASS
[[ $ours -eq 0 ]] || verdict=FAIL
echo "valgrind-regress: $n_all tests, $n_ok ok;" \
    "$ours errors in modelmine, $other elsewhere: $verdict"
[[ $verdict == PASS ]]
