#!/usr/bin/env bash
# scripts/demo.sh: ModelMine's main job, end to end, on a throwaway cluster.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_deps     scripts/install-deps.sh
#   step_build    make (extension + worker)
#   step_cluster  private PostgreSQL tree + cluster on a free 127.0.0.1 port (scripts/lib/cluster.sh),
#                 database `modelmine` with CREATE EXTENSION modelmine CASCADE
#   (workers)     none yet; the later 3-worker network starts here, see the bottom of this file
#   step_client   one psql session: sign up, log in, authenticate, submit a job, list, cancel, balance,
#                 dashboard, invariants (must be empty)
# The cluster is torn down on exit (also on error or Ctrl-C) unless --keep.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/demo.sh [--keep] [--help]

Runs ModelMine's main job on a throwaway PostgreSQL 15 cluster (127.0.0.1, free port, nothing installed
into the system): a user signs up, logs in, submits a training job, lists it, cancels it, and sees the
balance, the dashboard and the ledger invariants (which must hold).

  --keep   leave the cluster running afterwards and print how to connect to it
  --help   this text

Environment: PG_CONFIG (default pg_config), MM_PG_OPTS (extra server options).
Exit status: 0 when every step succeeded and no invariant is violated, non-zero otherwise
(2 for bad usage).

Example:
  scripts/demo.sh --keep
USAGE
}

keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="demo.sh"

tree=""
cluster=""
worker_pids=()
demo_db=modelmine

heading() { printf '\n==== %s\n' "$*"; }

# Stop workers and the cluster and remove temp dirs, or with --keep leave them and say how to connect.
cleanup() {
    local rc=$? pid
    for pid in "${worker_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    if [[ $keep -eq 1 && -n "$cluster" && -f "$cluster/data/postmaster.pid" ]]; then
        cat <<KEEP

==== cluster kept running (--keep)
  connect:  psql "host=127.0.0.1 port=$PGPORT user=postgres dbname=$demo_db"
  log:      $cluster/postgres.log
  stop:     bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster' && rm -rf $cluster $tree
KEEP
    else
        if [[ -n "$cluster" ]]; then
            echo "demo.sh: stopping the demo cluster and removing $cluster and $tree" >&2
            mm_cluster_stop "$cluster" || true
            rm -rf "$cluster"
        fi
        [[ -n "$tree" ]] && rm -rf "$tree"
    fi
    [[ $rc -eq 0 ]] || echo "demo.sh: FAILED (exit status $rc); see the output above" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step_deps() {
    heading "dependencies"
    scripts/install-deps.sh
}

step_build() {
    heading "build (make)"
    make --no-print-directory -s PG_CONFIG="$(mm_pg_config)"
    echo "build finished (make: extension and worker)"
}

step_cluster() {
    heading "throwaway cluster"
    tree=$(mm_tmpdir pgtree)
    mm_pg_tree "$tree"
    export MM_PGTREE=$tree
    cluster=$(mm_tmpdir cluster)
    mm_cluster_start "$cluster" "$(mm_free_port)"
    echo "PostgreSQL 15 on 127.0.0.1:$PGPORT (data $cluster/data)"
    mm_psql -q -c "CREATE DATABASE $demo_db"
    mm_psql -q -d "$demo_db" -c 'CREATE EXTENSION modelmine CASCADE'
    echo "database $demo_db: $(mm_psql -d "$demo_db" -Atc \
        "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'")"
}

# The main job as a user sees it. One psql session: authenticate() binds the session, so every call
# after it must run on the same connection.
step_client() {
    heading "client session (psql, one connection)"
    mm_psql -d "$demo_db" -P pager=off <<'SQL'
\echo
\echo '---- 1. sign up demo@modelmine.local'
SELECT modelmine.signup('demo@modelmine.local', 'demo-password');

\echo '---- 2. log in (returns a session token)'
SELECT modelmine.login('demo@modelmine.local', 'demo-password') AS token \gset
SELECT left(:'token', 24) || '...' AS token_prefix, length(:'token') AS token_length;

\echo '---- 3. bind this session to the token'
SELECT modelmine.authenticate(:'token');

\echo '---- 4. submit a job'
SELECT modelmine.submit_job('Iris classifier',
    '{"trainer":"logreg","dataset":{"synthetic":"blobs","classes":3}}'::jsonb) AS job_id \gset
\echo 'submitted job' :job_id
\echo

\echo '---- 5. my jobs'
SELECT * FROM modelmine.my_jobs();

\echo '---- 6. cancel the job'
SELECT modelmine.cancel_job(:'job_id');
SELECT * FROM modelmine.my_jobs();

\echo '---- 7. balance'
SELECT modelmine.balance();

\echo '---- 8. dashboard'
SELECT jsonb_pretty(modelmine.dashboard()) AS dashboard;

\echo '---- 9. invariants (no rows = all hold)'
SELECT * FROM modelmine.check_invariants();
SELECT count(*) = 0 AS invariants_hold FROM modelmine.check_invariants() \gset
\if :invariants_hold
\echo 'all invariants hold'
\else
DO $$ BEGIN RAISE EXCEPTION 'modelmine.check_invariants() returned violations (listed above)'; END $$;
\endif
SQL
}

step_deps
step_build
step_cluster
# The worker network (a later issue) starts here, e.g. `for i in 1 2 3; do step_worker "$i"; done`,
# where step_worker runs worker/modelmine-worker in the background against 127.0.0.1:$PGPORT/$demo_db,
# logs to $cluster/worker-$i.log and appends its pid to worker_pids (cleanup stops them).
step_client
heading "demo finished: every step succeeded and the invariants hold"
