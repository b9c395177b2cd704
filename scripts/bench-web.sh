#!/usr/bin/env bash
# scripts/bench-web.sh: the web dashboard's first load at scale, in Debian's Chromium.
#
# Loads the statistics benchmark's data set (scripts/bench-stats.sh: its cluster and load steps, run from
# that file so both benchmarks measure the same data: by default 10,000 users, 10,000 nodes and 1,000,000
# jobs over 12 months, 20,000 of them owned by bench@bench.local), starts modelmine-api on it serving
# web/, and measures with tests/browser/measure.mjs, for bench@bench.local (the user with 20,000 jobs):
#   - bytes on the wire of the first load (compressed, headers included, empty cache), and
#   - the time from navigation to the first complete render (data fetched and drawn, charts included)
# of the dashboard and the network page, --runs loads each (median, min, max). The target is under 1 s.
# Prints figures; asserts nothing about them. The cluster is stopped and removed on exit unless --keep.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-web.sh [--jobs N] [--nodes N] [--users N] [--heavy N] [--runs N] [--keep] [--help]

  --jobs N    jobs to load (default 1000000)        --nodes N   nodes (default 10000)
  --users N   users (default 10000)                 --heavy N   jobs of bench@bench.local (default 20000)
  --runs N    first loads measured per page (default 5)
  --keep      leave the cluster running afterwards

Needs node, npm and /usr/bin/chromium (MM_CHROMIUM overrides); installs web/ and tests/browser/ with
npm ci when their node_modules are missing. 6 to 10 minutes with the defaults on 2 cores, most of it
the load.
Example: scripts/bench-web.sh --jobs 100000 --nodes 1000 --users 1000 --heavy 2000
USAGE
}

jobs=1000000 nodes=10000 users=10000 heavy=20000 runs=5 keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --jobs|--nodes|--users|--heavy|--runs)
            [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench-web.sh: $1 needs a positive whole number" >&2; exit 2; }
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-web.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
command -v node >/dev/null || { echo "bench-web.sh: node is not installed" >&2; exit 1; }
[[ -x ${MM_CHROMIUM:-/usr/bin/chromium} ]] || { echo "bench-web.sh: no Chromium at ${MM_CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)" >&2; exit 1; }
for d in web tests/browser; do
    [[ -d $d/node_modules ]] || (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
done
web/precompress.sh
make -s -C api

# bench-stats.sh's option parsing, helpers and steps, without running its steps (the file ends by
# calling them, from "step_cluster" on): the same cluster settings and the same data set
stats_script=$repo/scripts/bench-stats.sh
grep -qx 'step_cluster' "$stats_script" || { echo "bench-web.sh: $stats_script no longer ends with its steps; update this script" >&2; exit 1; }
bench_args=(--jobs "$jobs" --nodes "$nodes" --users "$users" --heavy "$heavy")
[[ $keep -eq 1 ]] && bench_args+=(--keep)
set -- "${bench_args[@]}"
# shellcheck source=/dev/null
source <(sed -e '/^step_cluster$/,$d' -e "s|^repo=.*|repo=$repo|" "$stats_script")
MM_LOG_TAG="bench-web.sh"

api_pid=""
web_cleanup() {
    local rc=$?
    [[ -n $api_pid ]] && { kill -TERM "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null || true; }
    (exit "$rc")
    cleanup  # bench-stats.sh's: stops the cluster unless --keep
}
trap web_cleanup EXIT

step_cluster
step_load

heading "the gateway on the loaded database, serving web/"
mm_psql -q -d "$db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
        CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
    END IF;
END $$;
VACUUM ANALYZE;
SQL
port=$(mm_free_port)
api/modelmine-api --db "postgresql://mm_gateway@127.0.0.1:$PGPORT/$db" --listen "127.0.0.1:$port" --quiet \
    --web-root web --node-modules web/node_modules >"$work/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
echo "modelmine-api on http://127.0.0.1:$port ($(curl -s "http://127.0.0.1:$port/network" | head -c 200))"

heading "first load in Chromium ($runs loads per page, empty cache each): $email"
echo "machine: $(machine_note)"
(cd tests/browser && node measure.mjs --url "http://127.0.0.1:$port" --email "$email" --password "$password" --runs "$runs")
heading "the same for $typical_email"
(cd tests/browser && node measure.mjs --url "http://127.0.0.1:$port" --email "$typical_email" --password "$password" --runs "$runs" --pages dashboard)
