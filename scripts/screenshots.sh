#!/usr/bin/env bash
# scripts/screenshots.sh: refreshes the dashboard screenshots that docs/WEB.md and the README show
# (docs/screenshots/*.png), taken in Debian's Chromium of a real network: a throwaway cluster, the
# gateway serving web/, three workers that train for real, and a user whose jobs they run
# (tests/browser/screenshots.mjs). The cluster is stopped and removed on exit.
#
# Usage: scripts/screenshots.sh [--out DIR]   (default docs/screenshots)
# Environment: MM_PGTREE (a private PostgreSQL tree to reuse), MM_CHROMIUM (default /usr/bin/chromium).
# Needs the built gateway and worker (make), node and npm. About a minute.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=$repo/docs/screenshots
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) [[ $# -ge 2 ]] || { echo "screenshots.sh: --out needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "screenshots.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG=screenshots.sh

[[ -x ${MM_CHROMIUM:-/usr/bin/chromium} ]] || { echo "screenshots.sh: no Chromium (apt-get install chromium)" >&2; exit 1; }
[[ -x worker/modelmine-worker && -x api/modelmine-api ]] || { echo "screenshots.sh: build first (make; make -C api)" >&2; exit 1; }
for d in web tests/browser; do
    [[ -d $d/node_modules ]] || (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
done
web/precompress.sh

tree="" own_tree=0 cluster="" work="" pids=()
cleanup() {
    local rc=$? p
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    [[ -n $cluster ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
    [[ $own_tree -eq 1 && -n $tree ]] && rm -rf "$tree"
    [[ -n $work ]] && rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

mm_bench_tree
cluster=$(mm_tmpdir screenshots)
work=$(mm_tmpdir screenshots-work)
mm_cluster_start "$cluster" "$(mm_free_port)"
db=screens
mm_psql -q -d postgres -c "CREATE DATABASE $db"
mm_psql -q -d "$db" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION modelmine CASCADE;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
        CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_worker') THEN
        CREATE ROLE mm_worker LOGIN IN ROLE modelmine_node, modelmine_user;
    END IF;
END $$;
SELECT modelmine.signup('operator@example.com', 'operator password');
SQL

port=$(mm_free_port)
api/modelmine-api --db "postgresql://mm_gateway@127.0.0.1:$PGPORT/$db" --listen "127.0.0.1:$port" --quiet \
    --web-root web --node-modules web/node_modules --heartbeat-view 1000 >"$work/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
for name in gpu-box-1 gpu-box-2 cpu-box-3; do
    MODELMINE_OPERATOR_PASSWORD='operator password' worker/modelmine-worker \
        --db "postgresql://mm_worker@127.0.0.1:$PGPORT/$db" --name "$name" --state-file "$work/$name.json" \
        --operator-email operator@example.com --heartbeat-interval 1 --poll-interval 1 </dev/null >"$work/$name.log" 2>&1 &
    pids+=($!)
done
(cd tests/browser && node screenshots.mjs --url "http://127.0.0.1:$port" --out "$out")
echo "screenshots.sh: $(find "$out" -name '*.png' | wc -l) screenshots in $out"
