#!/usr/bin/env bash
# scripts/bench-socketio.sh: what modelmine-api's Socket.IO server costs and how fast a broadcast
# reaches its clients. Prints figures; asserts nothing.
#
#   1. a database: on the cluster PGHOST/PGPORT/PGUSER point to when they are set (a superuser; the
#      database bench_socketio is made and dropped there), else on a throwaway cluster with a private
#      PostgreSQL tree (scripts/lib/cluster.sh, as scripts/bench-queue.sh does)
#   2. the gateway (make -C api), logged in as mm_gateway, on a free port, --quiet
#   3. tests/js/bench-socketio.mjs (npm ci in tests/js first if needed): the gateway's RSS idle, N clients
#      connected from W worker threads, its RSS then; R broadcasts raised with NOTIFY, each carrying
#      clock_timestamp() from inside the NOTIFYing transaction, and the latency from there to each
#      client's receipt: p50/p90/p99/max over every delivery
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-socketio.sh [--clients N] [--rounds R] [--workers W] [--transport T] [--api BIN]
                                 [--help]

  --clients N     Socket.IO clients (default 1000)
  --rounds R      broadcasts measured (default 20)
  --workers W     node worker threads the clients are spread over (default: one per CPU)
  --transport T   websocket (default), polling, or default (polling, then the upgrade)
  --api BIN       the gateway binary to measure (default: api/modelmine-api, built first), to compare
                  two builds on the same machine and database

Environment: PGHOST/PGPORT/PGUSER to use a running cluster that has the modelmine extension (MM_BENCH_DB
names the database made there, default bench_socketio); else
PG_CONFIG and MM_PGTREE as for scripts/bench-queue.sh.
Example:
  scripts/bench-socketio.sh --clients 1000 --rounds 30
USAGE
}

clients=1000 rounds=20 workers=$(nproc) transport=websocket api_bin=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --clients) clients=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --transport) transport=$2; shift 2 ;;
        --api) api_bin=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-socketio.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $transport in websocket|polling|default) ;; *) echo "bench-socketio.sh: --transport $transport?" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG=bench-socketio
db=${MM_BENCH_DB:-bench_socketio}
cluster="" tree="" own_tree=0 api_pid="" tmp=$(mktemp -d /tmp/bench-socketio.XXXXXX)

cleanup() {
    set +e
    [[ -n $api_pid ]] && kill -TERM "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    [[ -n $cluster ]] && mm_cluster_stop "$cluster" && rm -rf "$cluster"
    [[ $own_tree == 1 ]] && rm -rf "$tree"
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "==== database"
if [[ -n ${PGHOST:-} && -n ${PGPORT:-} ]]; then
    echo "using the running cluster on $PGHOST:$PGPORT (database $db)"
else
    mm_bench_tree
    cluster=$(mm_tmpdir bench-socketio)
    mm_cluster_start "$cluster" "$(mm_free_port)"
fi
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION modelmine CASCADE;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
        CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
SQL

echo "==== gateway and client"
if [[ -z $api_bin ]]; then
    make -C "$repo/api" -s
    api_bin=$repo/api/modelmine-api
fi
[[ -d $repo/tests/js/node_modules/socket.io-client ]] || (cd "$repo/tests/js" && npm ci --no-audit --no-fund)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$api_bin" --db "postgresql://mm_gateway@${PGHOST:-127.0.0.1}:$PGPORT/$db" --listen "127.0.0.1:$port" \
    --quiet --max-sockets $(( clients + 100 )) --max-connections $(( 2 * clients + 100 )) >"$tmp/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
sleep 1
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); checkout $(git -C "$repo" rev-parse --short HEAD)" \
     "with $(git -C "$repo" status --short -- api 2>/dev/null | wc -l) uncommitted file(s) in api/"

echo "==== measure"
(cd "$repo/tests/js" && MODELMINE_API_URL="http://127.0.0.1:$port" BENCH_DB=$db BENCH_PID=$api_pid \
    BENCH_CLIENTS=$clients BENCH_ROUNDS=$rounds BENCH_WORKERS=$workers BENCH_TRANSPORT=$transport \
    node bench-socketio.mjs)
grep -v "^modelmine-api: serving" "$tmp/api.log" | tail -n 5 || true
