#!/usr/bin/env bash
# scripts/demo.sh: ModelMine as a running local network, on a throwaway cluster.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_deps      scripts/install-deps.sh
#   step_build     make (extension + worker)
#   step_cluster   private PostgreSQL tree + cluster on a free 127.0.0.1 port (scripts/lib/cluster.sh),
#                  database `modelmine` with CREATE EXTENSION modelmine CASCADE, login role mm_worker
#   step_accounts  an operator and a user sign up; the user logs in (a session token)
#   step_workers   3 workers (worker/modelmine-worker, 2 slots each) register with the operator's
#                  credentials; state files and logs in a temp dir
#   step_submit    the user submits six jobs: logreg on blobs, mlp on moons, mlp on spirals, linreg,
#                  noop, and one whose config is wrong (it fails on a worker and is refunded)
#   step_watch     live progress, refreshed every second, until every job is finished (at most 45 s):
#                  a table redrawn in place on a terminal, one line per change otherwise
#   step_results   per job: status, accuracy / r2, loss, epochs or the error; balance and dashboard
#   step_operator  the operator's nodes and earnings, then withdraw_node_earnings for each
#   step_checks    check_invariants() must be empty
#   step_stop      SIGTERM to the workers; each must exit 0
# Everything is torn down on exit (also on error or Ctrl-C) unless --keep.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/demo.sh [--keep] [--help]

Runs a local ModelMine network on a throwaway PostgreSQL 15 cluster (127.0.0.1, free port, nothing
installed into the system; works as root or as a normal user): three workers register for an operator,
a user submits six training jobs and watches them run, then sees results, balance and dashboard; the
operator collects the nodes' earnings; the ledger invariants must hold. About 30 s once built.

  --keep   leave the cluster (and the workers' state files and logs) afterwards and say how to use them
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
work=""                 # worker state files and logs
worker_pids=()
demo_db=modelmine
operator_email=operator@modelmine.local
operator_password="operator-password"
user_email=demo@modelmine.local
user_password="demo-password"
token=""                # the demo user's session token
worker=$repo/worker/modelmine-worker

heading() { printf '\n==== %s\n' "$*"; }

alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*zombie' "/proc/$1/status" 2>/dev/null; }

# Stop workers and the cluster and remove temp dirs, or with --keep leave them and say how to use them.
cleanup() {
    local rc=$? pid i
    trap - EXIT
    set +e
    for pid in "${worker_pids[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for (( i = 0; i < 50; i++ )); do
        local left=0
        for pid in "${worker_pids[@]}"; do alive "$pid" && left=1; done
        [[ $left -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${worker_pids[@]}"; do
        alive "$pid" && { echo "demo.sh: worker $pid did not stop; killing it" >&2; kill -KILL "$pid"; }
        wait "$pid" 2>/dev/null  # 2>: no "Killed" notice from bash
    done
    if [[ $keep -eq 1 && -n "$cluster" && -f "$cluster/data/postmaster.pid" ]]; then
        cat <<KEEP

==== cluster kept running (--keep)
  connect:  psql "host=127.0.0.1 port=$PGPORT user=postgres dbname=$demo_db"
  worker:   $worker --db postgresql://mm_worker@127.0.0.1:$PGPORT/$demo_db --state-file $work/w1.json
  logs:     $cluster/postgres.log, $work/w1.log ...
  stop:     bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster' && rm -rf $cluster $tree $work
KEEP
    else
        if [[ -n "$cluster" ]]; then
            echo "demo.sh: stopping the demo cluster and removing $cluster, $tree and $work" >&2
            mm_cluster_stop "$cluster"
            rm -rf "$cluster"
        fi
        [[ -n "$tree" ]] && rm -rf "$tree"
        [[ -n "$work" ]] && rm -rf "$work"
    fi
    [[ $rc -eq 0 ]] || echo "demo.sh: FAILED (exit status $rc); see the output above" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# sql_as_user SQL: run SQL in a session bound to the demo user (authenticate binds one connection, so
# each call authenticates first). -P footer=off: tables without "(N rows)".
sql_as_user() {
    mm_psql -d "$demo_db" -q -P pager=off -P footer=off -v token="$token" <<SQL
SELECT modelmine.authenticate(:'token') \g /dev/null
$1
SQL
}

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
    work=$(mm_tmpdir demo)
    echo "PostgreSQL 15 on 127.0.0.1:$PGPORT (data $cluster/data); worker files in $work"
    mm_psql -q -c "CREATE DATABASE $demo_db"
    mm_psql -q -d "$demo_db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION modelmine CASCADE'
    # Roles are cluster-wide: create the workers' login role only when missing.
    mm_psql -q -d "$demo_db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_worker') THEN
        CREATE ROLE mm_worker LOGIN IN ROLE modelmine_node, modelmine_user;
    END IF;
END $$;
SQL
    echo "database $demo_db: $(mm_psql -d "$demo_db" -Atc \
        "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'")"
    echo "login role for workers: mm_worker (member of modelmine_node, modelmine_user)"
}

step_accounts() {
    heading "accounts: an operator (runs the nodes) and a user (submits jobs)"
    mm_psql -d "$demo_db" -q -At -c "SELECT modelmine.signup('$operator_email', '$operator_password')" >/dev/null
    mm_psql -d "$demo_db" -q -At -c "SELECT modelmine.signup('$user_email', '$user_password')" >/dev/null
    token=$(mm_psql -d "$demo_db" -q -At -v e="$user_email" -v p="$user_password" <<<"SELECT modelmine.login(:'e', :'p');")
    echo "signed up $operator_email and $user_email (1000 tokens each)"
    echo "$user_email logged in: session token ${token:0:24}... (${#token} characters)"
}

step_workers() {
    local i n
    heading "3 workers register with the operator's credentials"
    for i in 1 2 3; do
        MODELMINE_OPERATOR_PASSWORD=$operator_password "$worker" \
            --db "postgresql://mm_worker@127.0.0.1:$PGPORT/$demo_db" --name "demo-node-$i" --slots 2 \
            --state-file "$work/w$i.json" --operator-email "$operator_email" \
            --heartbeat-interval 1 --poll-interval 1 </dev/null >"$work/w$i.log" 2>&1 &
        worker_pids+=($!)
        echo "worker demo-node-$i: pid $!, log $work/w$i.log"
    done
    for (( i = 0; i < 100; i++ )); do
        n=$(mm_psql -d "$demo_db" -At -c "SELECT count(*) FROM modelmine.nodes WHERE last_seen IS NOT NULL")
        [[ $n -eq 3 ]] && break
        sleep 0.1
    done
    [[ $n -eq 3 ]] || { echo "demo.sh: only $n of 3 workers came up within 10 s; their logs:" >&2; tail -n 5 "$work"/w?.log >&2; return 1; }
    mm_psql -d "$demo_db" -P pager=off -P footer=off -c \
        "SELECT id AS node, name, status, requirements AS offers FROM modelmine.nodes ORDER BY id"
}

step_submit() {
    heading "$user_email submits six jobs (stake 100 each)"
    sql_as_user "$(cat <<'SQL'
SELECT modelmine.submit_job(t.title, t.config::jsonb, t.description, 100) AS job, t.title, t.config
  FROM (VALUES
    (1, 'Blob classifier', '{"trainer":"logreg","dataset":{"synthetic":"blobs","classes":4,"n":3000},"epochs":100}',
        'logistic regression, 4 classes'),
    (2, 'Moons MLP', '{"trainer":"mlp","dataset":{"synthetic":"moons","n":2000},"hidden_layers":[32,32],"epochs":300}',
        'two interleaved half circles'),
    (3, 'Spirals MLP', '{"trainer":"mlp","dataset":{"synthetic":"spirals","classes":3,"n":1500},"hidden_layers":[64,64],"epochs":400,"learning_rate":0.05}',
        'three spiral arms, the hard one'),
    (4, 'House prices', '{"trainer":"linreg","dataset":{"synthetic":"linear","features":5,"n":3000},"epochs":100}',
        'linear regression'),
    (5, 'Smoke test', '{"trainer":"noop"}', 'does nothing, at once'),
    (6, 'Typo in config', '{"trainer":"mlp","dataset":{"synthetic":"moons","classes":3}}',
        'moons has no classes option: the worker rejects it')
  ) AS t(n, title, config, description)
 ORDER BY t.n;
SQL
)"
}

# One row per job: id|title|status|progress|node|epoch|epochs|loss|accuracy.
watch_rows() {
    sql_as_user "$(cat <<'SQL'
\pset format unaligned
\pset tuples_only on
-- A running job's latest metrics; a completed job's result (its last progress report may be older).
SELECT j.id, j.title, j.status, round(j.progress)::int, coalesce(j.node_id::text, '-'),
       coalesce(d.result->>'epochs', d.metrics->>'epoch', ''), coalesce(d.result->>'epochs', d.metrics->>'epochs', ''),
       coalesce(round(coalesce(d.result->>'loss', d.metrics->>'loss')::numeric, 3)::text, ''),
       coalesce(round(coalesce(d.result->>'accuracy', d.metrics->>'accuracy')::numeric, 3)::text, '')
  FROM modelmine.my_jobs(NULL, 'created', false) j CROSS JOIN LATERAL modelmine.job(j.id) d
 ORDER BY j.id;
SQL
)"
}

step_watch() {
    local start=$SECONDS tty=0 drawn=0 rows id title status pct node epoch epochs loss acc open line
    local -A seen=()
    heading "live progress (my_jobs + job metrics, every second)"
    [[ -t 1 ]] && tty=1
    while :; do
        rows=$(watch_rows)
        open=0
        if [[ $tty -eq 1 ]]; then
            # Redraw the table in place: cursor up over the previous one, clear each line as we go.
            [[ $drawn -gt 0 ]] && printf '\033[%dA' "$drawn"
            drawn=0
            printf '\033[K  %3s  %-16s %-9s %5s  %4s  %-11s %7s %7s   (%d s)\n' \
                job title status "done" node epoch loss acc $((SECONDS - start))
            drawn=1
        fi
        while IFS='|' read -r id title status pct node epoch epochs loss acc; do
            [[ -n "$id" ]] || continue
            [[ $status == PENDING || $status == RUNNING ]] && open=$((open + 1))
            if [[ $tty -eq 1 ]]; then
                printf '\033[K  %3s  %-16s %-9s %4s%%  %4s  %-11s %7s %7s\n' "$id" "$title" "$status" "$pct" \
                    "$node" "${epoch:+$epoch/$epochs}" "$loss" "$acc"
                drawn=$((drawn + 1))
            else
                # Not a terminal: one line when a job changes status or passes a quarter of its epochs.
                line=$status
                [[ $status == RUNNING ]] && line="RUNNING $((pct / 25))"
                if [[ "${seen[$id]:-}" != "$line" ]]; then
                    seen[$id]=$line
                    printf '  [%2d s] job %s %-16s %-9s %3s%%  node %s%s\n' $((SECONDS - start)) "$id" "$title" \
                        "$status" "$pct" "$node" "${epoch:+  epoch $epoch/$epochs  loss $loss${acc:+  accuracy $acc}}"
                fi
            fi
        done <<<"$rows"
        [[ $open -eq 0 ]] && break
        if (( SECONDS - start >= 45 )); then
            echo "demo.sh: $open job(s) still open after 45 s; the workers' logs:" >&2
            tail -n 5 "$work"/w?.log >&2
            return 1
        fi
        sleep 1
    done
    echo "all jobs finished in $((SECONDS - start)) s"
}

step_results() {
    heading "results (modelmine.job(id) for each of my jobs)"
    sql_as_user "$(cat <<'SQL'
SELECT d.id AS job, d.title, d.status, d.node_id AS node, d.attempts,
       round((d.result->>'accuracy')::numeric, 3) AS accuracy, round((d.result->>'r2')::numeric, 3) AS r2,
       round((d.result->>'loss')::numeric, 4) AS loss, d.result->>'epochs' AS epochs,
       round(extract(epoch FROM d.finished_at - d.started_at)::numeric, 1) AS seconds,
       d.error
  FROM modelmine.my_jobs(NULL, 'created', false) j CROSS JOIN LATERAL modelmine.job(j.id) d
 ORDER BY d.id;
SQL
)"
    heading "$user_email: balance, dashboard, transactions"
    sql_as_user "$(cat <<'SQL'
SELECT modelmine.balance() AS balance;
SELECT jsonb_pretty(modelmine.dashboard() - 'recent_jobs' - 'recent_transactions') AS dashboard;
SELECT t.id, to_char(t.created_at, 'HH24:MI:SS') AS at, t.amount, t.reason, t.job_id AS job, t.counterparty
  FROM modelmine.my_transactions(20) t ORDER BY t.id;
SQL
)"
    echo "(every completed job cost its stake of 100; the failed job's stake came back as a refund)"
}

step_operator() {
    local op_token
    heading "$operator_email: nodes and earnings, then withdraw them"
    op_token=$(mm_psql -d "$demo_db" -q -At -v e="$operator_email" -v p="$operator_password" \
        <<<"SELECT modelmine.login(:'e', :'p');")
    mm_psql -d "$demo_db" -q -P pager=off -P footer=off -v token="$op_token" <<'SQL'
SELECT modelmine.authenticate(:'token') \g /dev/null
SELECT id AS node, name, status, jobs_completed, jobs_failed, tokens_earned, balance FROM modelmine.my_nodes();
SELECT name, modelmine.withdraw_node_earnings(id) AS withdrawn FROM modelmine.my_nodes() ORDER BY id;
SELECT modelmine.balance() AS operator_balance;
SQL
    echo "(a node earns floor(stake * 80 / 100) = 80 per completed job; the other 20 go to the network fee)"
}

step_checks() {
    heading "invariants (no rows = the books balance)"
    mm_psql -d "$demo_db" -P pager=off -c "SELECT * FROM modelmine.check_invariants()"
    [[ $(mm_psql -d "$demo_db" -At -c "SELECT count(*) FROM modelmine.check_invariants()") -eq 0 ]] || {
        echo "demo.sh: modelmine.check_invariants() returned violations (listed above)" >&2; return 1; }
    echo "all invariants hold"
}

step_stop() {
    local i pid rc bad=0
    heading "stopping the workers (SIGTERM)"
    for pid in "${worker_pids[@]}"; do kill -TERM "$pid"; done
    for i in "${!worker_pids[@]}"; do
        pid=${worker_pids[$i]}
        rc=0
        wait "$pid" || rc=$?
        echo "demo-node-$((i + 1)) (pid $pid) exited with status $rc; its log:"
        sed 's/^/    /' "$work/w$((i + 1)).log"
        [[ $rc -eq 0 ]] || bad=1
    done
    worker_pids=()
    [[ $bad -eq 0 ]] || { echo "demo.sh: a worker did not exit cleanly" >&2; return 1; }
}

step_deps
step_build
step_cluster
step_accounts
step_workers
step_submit
step_watch
step_results
step_operator
step_checks
step_stop
heading "demo finished: every step succeeded and the invariants hold"
