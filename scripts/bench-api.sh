#!/usr/bin/env bash
# scripts/bench-api.sh: requests per second through modelmine-api, next to pgbench running the same SQL
# the gateway runs, at the same concurrency, in the same run.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_cluster   private PostgreSQL tree and a throwaway cluster (scripts/lib/cluster.sh), database
#                  bench_api, CREATE EXTENSION modelmine, the gateway's login role mm_gateway
#   step_data      a user with a session token and one submitted job (for POST /rpc/job)
#   step_gateway   modelmine-api --pool C --quiet on a free port
#   step_wrk       wrk -c C -d D: GET /network (anonymous), then POST /rpc/job {"job_id":1} with the user's
#                  bearer (verified by request_role on every request, as the gateway does)
#   step_pgbench   pgbench -M prepared -c C -j 2 -T D with what the gateway sends per request: the
#                  set-up statement and the call in one pipeline (\startpipeline ... \endpipeline), so
#                  one implicit transaction and one round trip, for each of the two requests
#   step_memory    the gateway's resident memory idle (after the runs)
#   step_table     requests/s of each and the ratio gateway / pgbench
# Figures only; nothing asserts a timing.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-api.sh [--connections C] [--seconds D] [--keep] [--help]

Measures modelmine-api against pgbench on the same SQL at the same concurrency, on a throwaway PostgreSQL
15 cluster (127.0.0.1, free port, private install tree). About 1 minute with the defaults.

  --connections C  concurrent HTTP connections for wrk, pgbench clients, and the gateway's --pool (default 8)
  --seconds D      duration of each measured run (default 10)
  --keep           leave the cluster and gateway running afterwards and say how to reach them
  --help           this text

Environment: PG_CONFIG; MM_PGTREE (a private tree from mm_pg_tree to reuse, as scripts/bench.sh does).
Exit status: 0 when every step ran, 1 otherwise, 2 for bad usage.
USAGE
}

conns=8 seconds=10 keep=0
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench-api.sh: $1 needs a positive whole number, got '$2'" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --connections|--seconds)
            [[ $# -ge 2 ]] || { echo "bench-api.sh: $1 needs a value" >&2; exit 2; }
            positive "$1" "$2"
            [[ $1 == --connections ]] && conns=$2 || seconds=$2
            shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-api.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
(( conns <= 200 )) || { echo "bench-api.sh: at most 200 connections" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench-api.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-api.sh"
api_bin=$repo/api/modelmine-api

tree="" own_tree=0 cluster="" work="" gw_pid="" port=""
db=bench_api
declare -A fig=()

heading() { printf '\n==== %s\n' "$*"; }
sql() { mm_psql -At -q -d "$db" "$@"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    if [[ $keep -eq 1 && -n "$cluster" ]]; then
        echo "kept: cluster in $cluster (PGPORT=$PGPORT), gateway pid $gw_pid on http://127.0.0.1:$port/"
        exit "$rc"
    fi
    [[ -n "$gw_pid" ]] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
    [[ -n "$cluster" ]] && mm_cluster_stop "$cluster"
    [[ -n "$cluster" ]] && rm -rf "$cluster"
    [[ -n "$work" ]] && rm -rf "$work"
    [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
    exit "$rc"
}
trap cleanup EXIT

step_cluster() {
    heading "throwaway cluster"
    mm_bench_tree
    make -C "$repo/api" --no-print-directory -s >/dev/null
    cluster=$(mm_tmpdir bench-api)
    work=$(mm_tmpdir bench-api-work)
    MM_PG_OPTS="${MM_PG_OPTS:-} -c max_connections=$(( conns * 2 + 20 ))" mm_cluster_start "$cluster" "$(mm_free_port)"
    echo "PostgreSQL $(mm_psql -At -d postgres -c 'SHOW server_version') on 127.0.0.1:$PGPORT," \
         "checkout $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    mm_psql -q -d postgres -c "CREATE DATABASE $db"
    mm_psql -q -d "$db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION modelmine CASCADE'
    mm_psql -q -d "$db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
        CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
    END IF;
END $$;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
SQL
}

step_data() {
    heading "a user, a token, a job"
    sql -c "SELECT modelmine.signup('bench@bench.local', 'bench-password')" >/dev/null
    token=$(sql -c "SELECT modelmine.login('bench@bench.local', 'bench-password')")
    sql -c "SELECT modelmine.authenticate('$token')" \
        -c "SELECT modelmine.submit_job('bench job', '{\"trainer\": \"noop\"}', NULL, 10)" >/dev/null
}

step_gateway() {
    heading "modelmine-api --pool $conns"
    port=$(mm_free_port)
    "$api_bin" --db "postgresql://mm_gateway@127.0.0.1:$PGPORT/$db" --listen "127.0.0.1:$port" \
        --pool "$conns" --quiet >"$work/gateway.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break; sleep 0.1; done
    curl -fsS "http://127.0.0.1:$port/health"; echo
}

# wrk_rate NAME ARGS...: runs wrk, prints its summary, stores requests/s and the latency percentiles.
wrk_rate() {
    local name=$1 out
    shift
    out=$(wrk -t 2 -c "$conns" -d "${seconds}s" --latency "$@")
    echo "$out" | sed -n '/Latency Distribution/,/Requests\/sec/p'
    fig[$name]=$(echo "$out" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
    fig[$name:p99]=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    grep -q "Non-2xx" <<<"$out" && echo "WARNING: $(grep 'Non-2xx' <<<"$out")" || true
}

step_wrk() {
    heading "wrk: GET /network, $conns connections, ${seconds}s (load average $(loadavg))"
    wrk_rate gw_network "http://127.0.0.1:$port/network"
    cat >"$work/job.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"job_id": 1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
    heading "wrk: POST /rpc/job, $conns connections, ${seconds}s (load average $(loadavg))"
    wrk_rate gw_job -s "$work/job.lua" "http://127.0.0.1:$port/rpc/job"
}

# pgbench_rate NAME SCRIPT: runs it at the same concurrency, stores transactions/s.
pgbench_rate() {
    local name=$1 script=$2 out
    out=$(pgbench -n -M prepared -c "$conns" -j 2 -T "$seconds" -U mm_gateway -h 127.0.0.1 -p "$PGPORT" \
        -D headers="$3" -f "$script" "$db" 2>&1)
    echo "$out" | grep -E "latency average|tps|failed"
    fig[$name]=$(echo "$out" | awk '/^tps/ { printf "%.0f", $3 }')
}

step_pgbench() {
    # what call.c sends, as one pipeline: the set-up statement and the call (statement_timeout as the
    # gateway's default, read-only for a GET)
    cat >"$work/network.sql" <<'SQL'
\startpipeline
SELECT pg_catalog.set_config('role', modelmine.request_role(pg_catalog.set_config('request.headers', :headers, true)), true), pg_catalog.set_config('request.method', 'GET', true), pg_catalog.set_config('request.path', '/network', true), pg_catalog.set_config('statement_timeout', '10000', true), pg_catalog.set_config('transaction_read_only', 'on', true);
SELECT pg_catalog.row_to_json(_r)::text FROM modelmine."network_stats"() _r;
\endpipeline
SQL
    cat >"$work/job.sql" <<'SQL'
\startpipeline
SELECT pg_catalog.set_config('role', modelmine.request_role(pg_catalog.set_config('request.headers', :headers, true)), true), pg_catalog.set_config('request.method', 'POST', true), pg_catalog.set_config('request.path', '/rpc/job', true), pg_catalog.set_config('statement_timeout', '10000', true), pg_catalog.set_config('transaction_read_only', 'off', true);
SELECT pg_catalog.row_to_json(_r)::text FROM modelmine."job"("job_id" => 1::bigint) _r;
\endpipeline
SQL
    heading "pgbench -M prepared: the gateway's SQL for GET /network, $conns clients (load average $(loadavg))"
    pgbench_rate pg_network "$work/network.sql" '{"accept":"*/*"}'
    heading "pgbench -M prepared: the gateway's SQL for POST /rpc/job, $conns clients (load average $(loadavg))"
    pgbench_rate pg_job "$work/job.sql" "{\"authorization\":\"Bearer $token\",\"content-type\":\"application/json\"}"
}

step_memory() {
    heading "gateway memory"
    fig[rss_idle]=$(awk '/VmRSS/ { print $2 }' "/proc/$gw_pid/status")
    echo "modelmine-api resident memory after the runs, idle: ${fig[rss_idle]} kB"
}

step_table() {
    heading "requests per second ($conns connections, ${seconds}s each, 2 cores shared by wrk, gateway, PostgreSQL)"
    printf '  %-44s %12s %12s %10s\n' request modelmine-api "pgbench" ratio
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
    printf '  %-44s %12s %12s %10s\n' "GET /network (anonymous)" "${fig[gw_network]}" "${fig[pg_network]}" \
        "$(ratio "${fig[gw_network]}" "${fig[pg_network]}")"
    printf '  %-44s %12s %12s %10s\n' "POST /rpc/job (bearer verified per request)" "${fig[gw_job]}" "${fig[pg_job]}" \
        "$(ratio "${fig[gw_job]}" "${fig[pg_job]}")"
    echo "  gateway p99 latency: GET /network ${fig[gw_network:p99]}, POST /rpc/job ${fig[gw_job:p99]};" \
         "idle RSS ${fig[rss_idle]} kB"
}

step_cluster
step_data
step_gateway
step_wrk
step_pgbench
step_memory
step_table
