#!/usr/bin/env bash
# scripts/bench-stats.sh: latency of ModelMine's statistics and listing calls at scale.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_cluster   private PostgreSQL tree (scripts/lib/cluster.sh; built unless MM_PGTREE is given) and a
#                  throwaway cluster on a free 127.0.0.1 port with shared_buffers=1GB and a larger
#                  max_wal_size (MM_PG_OPTS is appended, so it can override both); database `bench`,
#                  CREATE EXTENSION modelmine, login role mm_bench (modelmine_user + modelmine_admin)
#   step_load      as superuser, with set-based SQL (generate_series): 10,000 users with their signup
#                  grants, 10,000 nodes (10 per operator) with accounts and 30 days of heartbeat history
#                  (node_uptime), 1,000,000 jobs created over the last 12 months (85% COMPLETED with a
#                  result, 7% FAILED, 5% CANCELED, 2% PENDING, 1% RUNNING), 20,000 of them owned by
#                  bench@bench.local and the rest spread over the others, among them typical@bench.local
#                  (about 100 jobs; these two signed up for real); the journal for all of it (mint,
#                  stake, reward, fee, refund), balances recomputed from the journal, node counters, the
#                  statistics deltas (the stats trigger records every inserted job) folded into
#                  job_stats and user_job_stats, and one ledger block per completed job (queued, then
#                  sealed by seal_ledger)
#   step_checks    check_invariants() must be empty: the books balance, the statistics equal a recount;
#                  then verify_ledger() over every block, timed (twice: cold, then cached)
#   step_incremental  check_invariants_incremental() timed: its first (full) run, a run with nothing
#                  changed, and one after 1,000 jobs claimed and completed through the node API
#   step_measure   after VACUUM ANALYZE, each call run --calls times (after 10 warm-up calls) by pgbench
#                  (-M prepared, one client, per-transaction log) as role mm_bench: median and p95 in ms;
#                  a call slow enough to blow its ~20 s budget gets fewer runs (at least 3). Each row
#                  first waits (at most 30 s) for the machine to be quiet and shows how busy it was
#   step_explain   for every call whose median misses the target: how many times each ModelMine function
#                  ran for one call (pg_stat_xact_user_functions), and the plan: EXPLAIN (ANALYZE, BUFFERS)
#                  for a query on a view, auto_explain of the statements inside a function
# The cluster is always stopped and the temp dirs removed on exit unless --keep.
# Benchmarks print figures; nothing here asserts a timing. The only failure is a broken setup or a
# violated invariant.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench-stats.sh [--jobs N] [--nodes N] [--users N] [--heavy N] [--calls N] [--keep] [--help]

Loads a throwaway PostgreSQL 15 cluster (127.0.0.1, free port, private install tree, nothing installed into
the system) with a year of ModelMine history and prints the median and p95 latency of the statistics and
listing calls (network_stats, job_timeline, token_distribution, nodes, node_stats, my_jobs and dashboard
for a user with many jobs and for a typical one, ledger_digest, the admin views' first page, all_jobs)
against the target of 5 ms each, and shows why the calls that miss it are slow. 12 to 17 minutes with
the defaults on 2 cores (the slowest calls are measured fewer times: about 20 s per call).

  --jobs N    jobs to load (default 1000000)
  --nodes N   nodes to load, 10 per operator (default 10000)
  --users N   users (default 10000); bench@ and typical@bench.local sign up for real
  --heavy N   jobs of bench@bench.local, whose my_jobs() and dashboard() are measured (default 20000)
  --calls N   measured calls per function, after 10 warm-up calls (default 200)
  --keep      leave the loaded cluster running afterwards and say how to connect to it
  --help      this text

Environment: PG_CONFIG; MM_PGTREE (a private tree from mm_pg_tree to reuse, as scripts/bench.sh does;
otherwise the script runs make and builds one); MM_PG_OPTS (server options appended to ours:
"-c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min").
Exit status: 0 when the load and measurements ran and check_invariants() is empty, 1 otherwise, 2 for
bad usage.

Examples:
  scripts/bench-stats.sh --jobs 100000 --nodes 1000 --users 1000 --heavy 2000
  # ten times the defaults (docs/BENCHMARKS.md): 10M jobs, 100k nodes; about 12 minutes of loading on
  # 2 cores, 25 GB of disk, and shared_buffers large enough for the hot part of the data
  MM_PG_OPTS="-c shared_buffers=4GB" \
      scripts/bench-stats.sh --jobs 10000000 --nodes 100000 --users 100000 --heavy 200000
USAGE
}

jobs=1000000 nodes=10000 users=10000 heavy=20000 calls=200 keep=0
warmup=10
target_ms=5
check_timeout_s=300  # check_invariants() is stopped after this long (and retried with more work_mem)
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench-stats.sh: $1 needs a positive whole number, got '$2'" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --jobs|--nodes|--users|--heavy|--calls)
            [[ $# -ge 2 ]] || { echo "bench-stats.sh: $1 needs a value" >&2; exit 2; }
            positive "$1" "$2"
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-stats.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
(( users >= 3 )) || { echo "bench-stats.sh: --users must be at least 3" >&2; exit 2; }
(( heavy <= jobs / 2 )) || { echo "bench-stats.sh: --heavy must be at most half of --jobs" >&2; exit 2; }
(( nodes <= (users - 2) * 10 )) || { echo "bench-stats.sh: --nodes must be at most 10 per user (10 per operator)" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="bench-stats.sh"

tree="" own_tree=0 cluster="" work=""
db=bench
email=bench@bench.local          # the user with --heavy jobs
typical_email=typical@bench.local # a user like most others (about jobs/users jobs)
password=bench-password
token="" typical_token=""

heading() { printf '\n==== %s\n' "$*"; }

# Load figures: the load averages, and how busy the CPUs are while this script waits (other users).
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
cpu_busy_pct() {    # CPU busy % of the whole machine over $1 s (default 3); call it while this script is idle
    local a b
    read -r _ a1 a2 a3 a4 a5 a6 a7 _ < /proc/stat; a=$((a1 + a2 + a3 + a6 + a7)); b=$((a + a4 + a5))
    sleep "${1:-3}"
    read -r _ c1 c2 c3 c4 c5 c6 c7 _ < /proc/stat
    awk -v busy=$((c1 + c2 + c3 + c6 + c7 - a)) -v all=$((c1 + c2 + c3 + c4 + c5 + c6 + c7 - b)) \
        'BEGIN { printf "%.0f", (all > 0) ? 100 * busy / all : 0 }'
}
machine_note() { echo "load average $(loadavg) on $(nproc) cores; CPU busy (others, 3 s sample): $(cpu_busy_pct)%"; }
# wait_quiet: waits (at most 30 s) until other processes leave the CPUs at most 25% busy over 2 s; prints
# the last sample, so a row measured on a busy machine says so.
quiet_pct=25
wait_quiet() {
    local i busy
    for (( i = 0; i < 15; i++ )); do
        busy=$(cpu_busy_pct 2)
        (( busy <= quiet_pct )) && break
    done
    echo "$busy"
}

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    if [[ $keep -eq 1 && -n "$cluster" && -f "$cluster/data/postmaster.pid" ]]; then
        cat <<KEEP

==== cluster kept running (--keep)
  connect:  psql "host=127.0.0.1 port=$PGPORT user=postgres dbname=$db"
  log:      $cluster/postgres.log
  stop:     bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster' && rm -rf $cluster$([[ $own_tree -eq 1 ]] && echo " $tree")
KEEP
    else
        [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster"; rm -rf "$cluster"; }
        [[ $own_tree -eq 1 && -n "$tree" ]] && rm -rf "$tree"
    fi
    [[ -n "$work" ]] && rm -rf "$work"
    [[ $rc -eq 0 ]] || echo "bench-stats.sh: FAILED (exit status $rc); see the output above" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench-stats.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

sql() { mm_psql -d "$db" -q -At "$@"; }

step_cluster() {
    heading "throwaway cluster"
    mm_bench_tree
    echo "checkout: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
         "uncommitted changes in extension/ sql/: $(git status --short -- extension sql 2>/dev/null | wc -l) file(s)"
    cluster=$(mm_tmpdir bench-stats)
    work=$(mm_tmpdir bench-stats-work)
    # shared_buffers 1GB: the whole data set (about 1.5 GB with indexes) mostly fits, as on a real server
    # with 24 GiB; a large max_wal_size keeps checkpoints out of the bulk load.
    MM_PG_OPTS="-c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min${MM_PG_OPTS:+ $MM_PG_OPTS}" \
        mm_cluster_start "$cluster" "$(mm_free_port)"
    echo "PostgreSQL $(mm_psql -At -d postgres -c 'SHOW server_version') on 127.0.0.1:$PGPORT:" \
         "$(mm_psql -At -d postgres -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
                                       FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'max_wal_size', 'fsync',
                                                                       'synchronous_commit', 'jit')")"
    mm_psql -q -d postgres -c "CREATE DATABASE $db"
    mm_psql -q -d "$db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION modelmine CASCADE'
    mm_psql -q -d "$db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_bench') THEN
        CREATE ROLE mm_bench LOGIN IN ROLE modelmine_user, modelmine_admin;
    END IF;
END $$;
SQL
}

step_load() {
    local start=$SECONDS sealed n i
    heading "load: $users users, $nodes nodes, $jobs jobs over 12 months ($heavy of them for $email)"
    sql -c "SELECT modelmine.signup('$email', '$password')" >/dev/null
    sql -c "SELECT modelmine.signup('$typical_email', '$password')" >/dev/null
    mm_psql -d "$db" -q -v jobs="$jobs" -v nodes="$nodes" -v users="$users" -v heavy="$heavy" <<'SQL'
SET client_min_messages = warning;
SET work_mem = '256MB';
SET maintenance_work_mem = '1GB';
SELECT pg_catalog.setseed(0.42) \g /dev/null
SELECT value AS pct FROM modelmine.settings WHERE name = 'reward_pct' \gset
SELECT value AS grant FROM modelmine.settings WHERE name = 'signup_grant' \gset
SELECT id AS heavy_uid FROM modelmine.users WHERE email = 'bench@bench.local' \gset
SELECT id AS typical_uid FROM modelmine.users WHERE email = 'typical@bench.local' \gset
\timing on

\echo users and their signup grants
INSERT INTO modelmine.users (email, password_hash, created_at)
SELECT 'user' || g || '@bench.local', '!no-login', now() - interval '400 days' FROM generate_series(3, :users) g;
INSERT INTO modelmine.accounts (kind, user_id)
SELECT 'user', u.id FROM modelmine.users u WHERE u.email LIKE 'user%@bench.local' ORDER BY u.id;
INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, created_at)
SELECT 1, a.id, :grant, 'signup_grant', u.created_at
  FROM modelmine.users u JOIN modelmine.accounts a ON a.user_id = u.id
 WHERE u.email LIKE 'user%@bench.local' ORDER BY u.id;
SELECT min(id) AS op0 FROM modelmine.users WHERE email LIKE 'user%@bench.local' \gset
-- random owners: typical@ and user3.. have consecutive ids (a fresh table), :users - 1 of them
SELECT max(id) - :typical_uid = :users - 2 AS ids_consecutive FROM modelmine.users \gset
\if :ids_consecutive
\else
\echo 'user ids are not consecutive: the random owners below would miss users'
\quit
\endif

\echo nodes (10 per operator; every 5th offline for up to 10 days), their accounts, 30 days of uptime history
INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, status, cpu_load,
                             memory_used_mb, memory_total_mb, registered_at, last_seen, online_since)
SELECT :op0 + (g - 1) / 10, 'node-' || g, sha256(convert_to('bench-node-key-' || g, 'UTF8')),
       '{"trainers": ["logreg", "mlp", "linreg", "noop"], "runners": []}',
       ARRAY['trainer:logreg', 'trainer:mlp', 'trainer:linreg', 'trainer:noop'],
       CASE WHEN g % 7 = 0 THEN 'BUSY' ELSE 'ONLINE' END, (random() * 100)::real,
       mem / 2 + (random() * mem / 2)::int, mem, reg, seen, seen - make_interval(secs => random() * 3 * 86400)
  FROM (SELECT g, 4096 * (1 + g % 8) AS mem,
               now() - interval '400 days' + random() * interval '60 days' AS reg,
               CASE WHEN g % 5 = 0 THEN now() - random() * interval '10 days'
                    ELSE now() - random() * interval '5 seconds' END AS seen
          FROM generate_series(1, :nodes) g) x;
INSERT INTO modelmine.accounts (kind, node_id) SELECT 'node', id FROM modelmine.nodes ORDER BY id;
SELECT min(id) AS nid0 FROM modelmine.nodes \gset
-- one stretch a day (2 to 20 hours), each ending before the node's current online stretch began
INSERT INTO modelmine.node_uptime (node_id, started_at, ended_at)
SELECT node_id, s, e
  FROM (SELECT n.id AS node_id, n.online_since, t.st AS s, t.st + make_interval(secs => 7200 + random() * 64800) AS e
          FROM modelmine.nodes n, generate_series(1, 30) d,
               LATERAL (SELECT now() - make_interval(days => d) + make_interval(secs => random() * 14400) AS st) t) x
 WHERE e < online_since;

\echo jobs, in order of creation (the stats trigger appends a delta for each)
INSERT INTO modelmine.jobs (user_id, title, config, stake, priority, status, progress, result, error, node_id,
                            attempts, lease_seconds, lease_expires_at, created_at, updated_at, started_at, finished_at)
SELECT user_id, title, config, stake, 0, status, progress,
       CASE WHEN status = 'COMPLETED' THEN
           CASE kind WHEN 2 THEN jsonb_build_object('accuracy', NULL, 'r2', round(r1::numeric, 4),
                                                    'loss', round(r2::numeric, 4), 'epochs', 60)
                     WHEN 3 THEN '{"accuracy": null, "loss": 0, "epochs": 0, "model": {"type": "noop"}}'::jsonb
                     ELSE jsonb_build_object('accuracy', round((0.6 + 0.4 * r1)::numeric, 4),
                                             'loss', round(r2::numeric, 4), 'epochs', 50) END
       END,
       CASE WHEN status = 'FAILED' THEN 'bench: simulated training failure' END,
       CASE WHEN status IN ('RUNNING', 'COMPLETED', 'FAILED') THEN node_id END,
       CASE WHEN status IN ('RUNNING', 'COMPLETED', 'FAILED') THEN 1 ELSE 0 END,
       CASE WHEN status = 'RUNNING' THEN 3600 END,
       CASE WHEN status = 'RUNNING' THEN now() + interval '1 hour' END,
       created, COALESCE(finished, started, created), started, finished
  FROM (SELECT *,
               CASE WHEN status IN ('RUNNING', 'COMPLETED', 'FAILED') THEN created + make_interval(secs => 1 + 60 * r1) END AS started,
               CASE WHEN status IN ('COMPLETED', 'FAILED') THEN created + make_interval(secs => 61 + 600 * r2)
                    WHEN status = 'CANCELED' THEN created + make_interval(secs => 3600 * r2) END AS finished,
               CASE status WHEN 'COMPLETED' THEN 100 WHEN 'RUNNING' THEN round(100 * r1) ELSE 0 END AS progress
          FROM (SELECT g, g % 4 AS kind, random() AS r1, random() AS r2,
                       CASE WHEN g % (:jobs / :heavy) = 0 AND g / (:jobs / :heavy) <= :heavy THEN :heavy_uid
                            ELSE :typical_uid + floor(random() * (:users - 1))::int END AS user_id,
                       'bench job ' || g AS title,
                       (ARRAY['{"trainer": "logreg", "dataset": {"synthetic": "blobs"}, "epochs": 50}',
                              '{"trainer": "mlp", "dataset": {"synthetic": "moons"}, "epochs": 50}',
                              '{"trainer": "linreg", "dataset": {"synthetic": "linear"}, "epochs": 60}',
                              '{"trainer": "noop"}'])[1 + g % 4]::jsonb AS config,
                       10 + (random() * 190)::int AS stake,
                       :nid0 + floor(random() * :nodes)::int AS node_id,
                       t.st::modelmine.job_status AS status,
                       CASE WHEN t.st IN ('PENDING', 'RUNNING') THEN now() - random() * interval '2 hours'
                            ELSE now() - interval '3 hours' - random() * interval '365 days' END AS created
                  FROM (SELECT g, random() AS rs FROM generate_series(1, :jobs) g) s,
                       LATERAL (SELECT CASE WHEN rs < 0.85 THEN 'COMPLETED' WHEN rs < 0.92 THEN 'FAILED'
                                            WHEN rs < 0.97 THEN 'CANCELED' WHEN rs < 0.99 THEN 'PENDING'
                                            ELSE 'RUNNING' END AS st) t) y) z
 ORDER BY created;

\echo journal: a mint per user funding what their completed and open jobs keep, then per job stake, reward + fee or refund
INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, job_id, created_at)
SELECT debit, credit, amount, reason, job_id, at
  FROM (SELECT 1 AS debit, a.id AS credit, s.spent AS amount, 'mint' AS reason, NULL::bigint AS job_id,
               s.first - interval '1 minute' AS at, 0 AS ord
          FROM (SELECT user_id, sum(stake) FILTER (WHERE status IN ('COMPLETED', 'PENDING', 'RUNNING')) AS spent,
                       min(created_at) AS first
                  FROM modelmine.jobs GROUP BY user_id) s
          JOIN modelmine.accounts a ON a.user_id = s.user_id
         WHERE s.spent > 0
        UNION ALL
        SELECT a.id, 16 + j.id % 16, j.stake, 'stake', j.id, j.created_at, 1
          FROM modelmine.jobs j JOIN modelmine.accounts a ON a.user_id = j.user_id
        UNION ALL
        SELECT 16 + j.id % 16, a.id, j.stake * :pct / 100, 'reward', j.id, j.finished_at, 2
          FROM modelmine.jobs j JOIN modelmine.accounts a ON a.node_id = j.node_id
         WHERE j.status = 'COMPLETED' AND j.stake * :pct / 100 > 0
        UNION ALL
        SELECT 16 + j.id % 16, 32 + j.id % 16, j.stake - j.stake * :pct / 100, 'fee', j.id, j.finished_at, 3
          FROM modelmine.jobs j
         WHERE j.status = 'COMPLETED' AND j.stake - j.stake * :pct / 100 > 0
        UNION ALL
        SELECT 16 + j.id % 16, a.id, j.stake, 'refund', j.id, j.finished_at, 4
          FROM modelmine.jobs j JOIN modelmine.accounts a ON a.user_id = j.user_id
         WHERE j.status IN ('FAILED', 'CANCELED')) m
 ORDER BY at, job_id, ord;

\echo balances recomputed from the journal; node counters from the jobs
UPDATE modelmine.accounts a SET balance = b.balance
  FROM (SELECT id, sum(delta) AS balance
          FROM (SELECT credit_account AS id, amount AS delta FROM modelmine.journal
                UNION ALL SELECT debit_account, -amount FROM modelmine.journal) x
         GROUP BY id) b
 WHERE a.id = b.id AND a.balance <> b.balance;
UPDATE modelmine.nodes n
   SET jobs_completed = c.completed, jobs_failed = c.failed, tokens_earned = c.earned
  FROM (SELECT node_id, count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
               count(*) FILTER (WHERE status = 'FAILED') AS failed,
               COALESCE(sum(stake * :pct / 100) FILTER (WHERE status = 'COMPLETED'), 0) AS earned
          FROM modelmine.jobs WHERE node_id IS NOT NULL GROUP BY node_id) c
 WHERE n.id = c.node_id;

\echo statistics: the deltas the trigger appended, folded into job_stats and user_job_stats at this commit
SELECT modelmine._housekeeping_at_commit();
SELECT count(*) AS deltas_left_unfolded FROM modelmine.job_stat_deltas;

\echo ledger: one entry per completed job, queued in completion order
INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at)
SELECT id, user_id, node_id, stake, stake * :pct / 100, stake - stake * :pct / 100, result ->> 'accuracy',
       result ->> 'loss', (result ->> 'epochs')::numeric::bigint, finished_at
  FROM modelmine.jobs WHERE status = 'COMPLETED' ORDER BY finished_at, id;
SQL
    echo "ledger: sealing the queue, 100,000 blocks per transaction"
    n=0
    for (( i = 0; i <= jobs / 100000 + 1; i++ )); do
        sealed=$(sql -c "SELECT modelmine.seal_ledger(100000)")
        n=$((n + sealed))
        [[ $sealed -eq 0 ]] && break
    done
    [[ $(sql -c "SELECT count(*) FROM modelmine.ledger_queue") -eq 0 ]] || {
        echo "bench-stats.sh: the ledger queue did not drain in $i seal_ledger calls" >&2; return 1; }
    echo "sealed $n blocks"
    echo "load finished in $((SECONDS - start)) s"
    sql -c "VACUUM ANALYZE"
    mm_psql -d "$db" -P pager=off -P footer=off -c "
        SELECT (SELECT count(*) FROM modelmine.users) AS users, (SELECT count(*) FROM modelmine.nodes) AS nodes,
               (SELECT count(*) FROM modelmine.node_uptime) AS uptime_rows, (SELECT count(*) FROM modelmine.jobs) AS jobs,
               (SELECT count(*) FROM modelmine.journal) AS journal_rows, (SELECT count(*) FROM modelmine.ledger) AS blocks,
               (SELECT min(created_at)::date || ' .. ' || max(created_at)::date FROM modelmine.jobs) AS created,
               pg_size_pretty(pg_database_size(current_database())) AS db_size"
    mm_psql -d "$db" -P pager=off -P footer=off -c \
        "SELECT status, count(*) AS jobs FROM modelmine.jobs GROUP BY 1 ORDER BY 1"
}

check_note=""
step_checks() {
    local t0 rc=0 out
    heading "invariants (no rows = the books balance and the statistics equal a recount)"
    # bounded: at 1M jobs this takes seconds when its plan is sound; a plan that degrades with the size of
    # the data (a non-hashed subplan, say) is stopped and reported, then retried with a larger work_mem
    t0=$SECONDS
    out=$(PGOPTIONS="-c statement_timeout=${check_timeout_s}s" mm_psql -d "$db" -P pager=off \
          -c "SELECT * FROM modelmine.check_invariants()" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] && grep -q "statement timeout" <<<"$out"; then
        check_note="check_invariants() did not finish within ${check_timeout_s} s at work_mem=$(sql -c 'SHOW work_mem'); finished with work_mem=1GB"
        echo "check_invariants() did not finish within ${check_timeout_s} s (statement_timeout) at work_mem=$(sql -c 'SHOW work_mem')."
        echo "The plan of its body (one SELECT); look for a SubPlan that is not hashed (a Materialize scanned per row):"
        sql -c "SELECT prosrc FROM pg_proc WHERE oid = 'modelmine.check_invariants()'::regprocedure" >"$work/check.sql"
        { echo "EXPLAIN"; cat "$work/check.sql"; } | mm_psql -d "$db" -q -At | sed 's/^/    /'
        echo "retrying with work_mem = 1GB, so that subqueries over ~1M rows can be hashed"
        t0=$SECONDS rc=0
        out=$(PGOPTIONS="-c work_mem=1GB -c statement_timeout=${check_timeout_s}s" mm_psql -d "$db" -P pager=off \
              -c "SELECT * FROM modelmine.check_invariants()" 2>&1) || rc=$?
    fi
    printf '%s\n' "$out"
    [[ $rc -eq 0 ]] || { echo "bench-stats.sh: check_invariants() failed (above)" >&2; return 1; }
    echo "check_invariants() took $((SECONDS - t0)) s"
    [[ $(grep -c '^(0 rows)$' <<<"$out") -eq 1 ]] || {
        echo "bench-stats.sh: check_invariants() returned violations (listed above)" >&2; return 1; }
    echo "all invariants hold"
    step_verify_ledger
}

# check_invariants_incremental(): its first run is the full check plus its bases (journal sums, the
# statistics of finished jobs); then a run with nothing changed, and one after 1,000 jobs were claimed
# and completed through the node API by a node registered for it (32 per claim, each batch committed).
step_incremental() {
    local t0 out n
    heading "check_invariants_incremental(): the first (full) run, then only what changed"
    for n in "first run: the full check, then the bases" "second run: nothing changed" \
             "after 1,000 jobs completed through the node API"; do
        if [[ $n == after* ]]; then
            sql -v e="$email" -v p="$password" >/dev/null <<'SQL'
SELECT modelmine.authenticate(modelmine.login(:'e', :'p'));
SELECT set_config('bench.node_key', node_key, false)
  FROM modelmine.register_node('incremental-check node',
                               '{"trainers": ["logreg", "mlp", "linreg", "noop"], "slots": 32}');
DO $$
DECLARE
    done integer := 0;
    batch jsonb;
BEGIN
    PERFORM modelmine.authenticate_node(current_setting('bench.node_key'));
    WHILE done < 1000 LOOP
        PERFORM modelmine.heartbeat(5, 100, 1000);
        SELECT jsonb_agg(jsonb_build_object('job_id', c.job_id,
                                            'result', '{"accuracy": 0.9, "loss": 0.1, "epochs": 1}'::jsonb))
          INTO batch FROM modelmine.claim_jobs(32, 300) c;
        EXIT WHEN batch IS NULL;
        PERFORM modelmine.complete_jobs(batch);
        done := done + jsonb_array_length(batch);
        COMMIT;
    END LOOP;
END
$$;
SQL
            echo "  (settled through the node API: $(sql -c "SELECT n.jobs_completed FROM modelmine.nodes n
                                                          WHERE n.name = 'incremental-check node'") jobs)"
            # what the settlements left for commit-time housekeeping (ledger blocks, folds), done, and the
            # dead rows the folds leave in the delta tables vacuumed, so the latencies below read a steady state
            sql -c "SELECT modelmine.seal_ledger(100000)" -c "SELECT modelmine._housekeeping_at_commit()" \
                -c "VACUUM ANALYZE modelmine.job_stat_deltas, modelmine.account_deltas, modelmine.node_deltas,
                                   modelmine.usage_deltas, modelmine.ledger_queue, modelmine.jobs" >/dev/null
        fi
        t0=$(date +%s%N)
        out=$(sql -c "SELECT count(*) FROM modelmine.check_invariants_incremental()") || return 1
        printf '  %-50s %8.2f s, %s violation(s)\n' "$n" "$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN { print ns / 1e9 }')" "$out"
        [[ $out -eq 0 ]] || { echo "bench-stats.sh: check_invariants_incremental() found violations" >&2; return 1; }
    done
}

# verify_ledger(): every block's hash and link from genesis, timed twice (the first run reads the
# ledger from disk, the second mostly from shared buffers).
step_verify_ledger() {
    local r t0 t1 out
    heading "verify_ledger() over the whole chain"
    for r in 1 2; do
        t0=$(date +%s%N)
        out=$(sql -F ' ' -c "SELECT ok, blocks_checked FROM modelmine.verify_ledger()")
        t1=$(date +%s%N)
        echo "run $r: ok and blocks checked: $out; $(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ns / 1e9 }') s"
        [[ ${out%% *} == t ]] || { echo "bench-stats.sh: verify_ledger() failed" >&2; return 1; }
    done
}

# The calls measured: "name|auth|SQL". auth=heavy or typical runs modelmine.authenticate(token) once per
# connection (in the first, warm-up, transaction), as bench@ (--heavy jobs) or typical@ (about
# jobs/users jobs, like everyone else).
calls_list() {
    cat <<'LIST'
network_stats()|-|SELECT * FROM modelmine.network_stats();
job_timeline(6)|-|SELECT * FROM modelmine.job_timeline(6);
token_distribution(20)|-|SELECT * FROM modelmine.token_distribution(20);
nodes(100, 0)|-|SELECT * FROM modelmine.nodes(100, 0);
node_stats(id)|-|SELECT * FROM modelmine.node_stats(:nid);
my_jobs() heavy user|heavy|SELECT * FROM modelmine.my_jobs();
dashboard() heavy user|heavy|SELECT modelmine.dashboard();
my_jobs() typical user|typical|SELECT * FROM modelmine.my_jobs();
dashboard() typical user|typical|SELECT modelmine.dashboard();
ledger_digest()|-|SELECT modelmine.ledger_digest();
admin_users page 1|-|SELECT * FROM modelmine.admin_users ORDER BY id LIMIT 50;
admin_jobs page 1|-|SELECT * FROM modelmine.admin_jobs ORDER BY id DESC LIMIT 50;
admin_nodes page 1|-|SELECT * FROM modelmine.admin_nodes ORDER BY id LIMIT 50;
admin_network|-|SELECT * FROM modelmine.admin_network;
admin_ledger page 1|-|SELECT * FROM modelmine.admin_ledger ORDER BY height DESC LIMIT 50;
all_jobs() page 1|-|SELECT * FROM modelmine.all_jobs();
LIST
}

missed=()   # "name|auth|SQL" of calls whose median missed the target
budget_s=20 # time budget per row

# run_pgbench SCRIPT N: N transactions of SCRIPT, one client, as mm_bench; log in $work/log*.
run_pgbench() {
    rm -f "$work"/log*
    pgbench -n -M prepared -c 1 -t "$2" -D authed=0 -D tok="$tok" -U mm_bench -d "$db" \
        -f "$1" -l --log-prefix="$work/log" >"$work/pgbench.out" 2>&1 && return 0
    echo "bench-stats.sh: pgbench failed for $name:" >&2
    cat "$work/pgbench.out" >&2
    return 1
}

step_measure() {
    local name auth q f nid0 nid1 median p95 mean verdict busy probe_us n w tok
    heading "latency: $calls calls each (after $warmup warm-up calls), pgbench -M prepared, 1 client, role mm_bench"
    echo "(a call slower than $((budget_s * 1000 / calls)) ms gets fewer calls, at least 5, or 3 when one takes over 2 s:"
    echo " about ${budget_s} s per row)"
    token=$(sql -v e="$email" -v p="$password" <<<"SELECT modelmine.login(:'e', :'p');")
    typical_token=$(sql -v e="$typical_email" -v p="$password" <<<"SELECT modelmine.login(:'e', :'p');")
    echo "users measured: $email with $(sql -c "SELECT count(*) FROM modelmine.jobs j JOIN modelmine.users u
        ON u.id = j.user_id WHERE u.email = '$email'") jobs; $typical_email with $(sql -c "SELECT count(*)
        FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id WHERE u.email = '$typical_email'") jobs"
    read -r nid0 nid1 <<<"$(sql -F ' ' -c "SELECT min(id), max(id) FROM modelmine.nodes")"
    # Nodes heartbeat every few seconds on a live network: make the online ones recent again (the load
    # took minutes), so network_stats and nodes() see the usual mix of online and offline nodes.
    # The fold at that commit empties node_seen_deltas, leaving 160,000 dead rows that every read of the
    # counts would scan until autovacuum came by: vacuumed here too (docs/BENCHMARKS.md shows both).
    sql -c "UPDATE modelmine.nodes SET last_seen = now() WHERE id % 5 <> 0" -c "SELECT modelmine._housekeeping_at_commit()" \
        -c "VACUUM ANALYZE modelmine.nodes, modelmine.node_seen_deltas, modelmine.node_seen_stats"
    echo "before measuring: $(machine_note)"
    echo "nodes online now: $(sql -c "SELECT nodes_online FROM modelmine.network_stats()") of $nodes" \
         "(offline_after_seconds = $(sql -c "SELECT value FROM modelmine.settings WHERE name = 'offline_after_seconds'"))"
    echo "each row waits (at most 30 s) until the machine is quiet: at most ${quiet_pct}% CPU busy over 2 s;"
    echo "'busy' is that last sample, taken just before the row (noisy: above ${quiet_pct}%; rerun then)"
    printf '\n  %-24s %10s %10s %10s %6s %6s   %s\n' call "median ms" "p95 ms" "mean ms" calls busy "target <= $target_ms ms"
    while IFS='|' read -r name auth q; do
        f=$work/script.sql
        {
            if [[ $auth != - ]]; then
                printf '\\if :authed = 0\nSELECT modelmine.authenticate(:tok);\n\\set authed 1\n\\endif\n'
            fi
            printf '\\set nid random(%s, %s)\n%s\n' "$nid0" "$nid1" "$q"
        } >"$f"
        busy=$(wait_quiet)
        # one probe call sizes the run: about $budget_s s per row, so a very slow call (seconds) still
        # finishes in bounded time, with at least 5 measured calls (3 for calls over 2 s)
        tok=$token
        [[ $auth == typical ]] && tok=$typical_token
        run_pgbench "$f" 1 || return 1
        probe_us=$(awk 'NR == 1 { print $3; exit }' "$work"/log*)
        n=$(awk -v c="$calls" -v us="$probe_us" -v b="$budget_s" 'BEGIN { n = int(b * 1e6 / (us + 1)); if (n > c) n = c
                                                                     m = (us > 2e6) ? 3 : 5; if (n < m) n = m; print n }')
        w=$(awk -v w="$warmup" -v n="$n" -v c="$calls" 'BEGIN { x = int(w * n / c); if (x < 1) x = 1; print x }')
        run_pgbench "$f" $((w + n)) || return 1
        # per-transaction log: client tx latency_us ...; drop the warm-up transactions
        read -r median p95 mean < <(awk -v w="$w" 'NR > w { print $3 }' "$work"/log* | sort -n |
            awk '{ v[NR] = $1; s += $1 } END {
                     m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                     i = int(0.95 * NR + 0.999999); if (i < 1) i = 1
                     printf "%.3f %.3f %.3f\n", m / 1000, v[i] / 1000, s / NR / 1000 }')
        verdict=ok
        if awk -v m="$median" -v t="$target_ms" 'BEGIN { exit !(m > t) }'; then
            verdict="MISSED"
            missed+=("$name|$auth|${q//:nid/$(( (nid0 + nid1) / 2 ))}")
        fi
        (( busy > quiet_pct )) && verdict="$verdict (noisy)"
        printf '  %-24s %10s %10s %10s %6s %5s%%   %s\n' "$name" "$median" "$p95" "$mean" "$n" "$busy" "$verdict"
    done < <(calls_list)
    echo
    echo "after measuring: $(machine_note)"
}

step_explain() {
    local entry name auth q out tok
    heading "why the calls that missed $target_ms ms are slow"
    if [[ ${#missed[@]} -eq 0 ]]; then
        echo "none: every call met the target"
        return 0
    fi
    echo "(one call each, as superuser; EXPLAIN ANALYZE and auto_explain add instrumentation overhead)"
    for entry in "${missed[@]}"; do
        IFS='|' read -r name auth q <<<"$entry"
        out=$work/explain.out
        tok=$token
        [[ $auth == typical ]] && tok=$typical_token
        echo
        echo "---- $name: $q"
        # 1. how often each ModelMine function ran for this one call (functions that are not inlined)
        {
            [[ $auth != - ]] && echo "SELECT modelmine.authenticate(:'tok') \\g /dev/null"
            echo "BEGIN;"
            echo "SET LOCAL track_functions = 'all';"
            echo "${q%;} \\g /dev/null"
            echo "SELECT funcname AS function, calls, round(total_time::numeric, 1) AS total_ms,"
            echo "       round(self_time::numeric, 1) AS self_ms"
            echo "  FROM pg_stat_xact_user_functions WHERE schemaname = 'modelmine' ORDER BY total_time DESC;"
            echo "COMMIT;"
        } | mm_psql -d "$db" -q -P pager=off -P footer=off -v tok="$tok" >"$out" 2>&1 || true
        echo "  functions executed by this one call (pg_stat_xact_user_functions):"
        sed -e 's/^/    /' "$out"
        # 2. the plan: EXPLAIN ANALYZE for a query on a view; auto_explain for what runs inside functions
        {
            echo "SET client_min_messages = log;"
            [[ $auth != - ]] && echo "SELECT modelmine.authenticate(:'tok') \\g /dev/null"
            if [[ $q =~ ^SELECT\ \*\ FROM\ modelmine\.admin_ ]]; then
                echo "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${q}"
            else
                echo "LOAD 'auto_explain';"
                echo "SET auto_explain.log_min_duration = '${target_ms}ms'; SET auto_explain.log_analyze = on;"
                echo "SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;"
                echo "SET auto_explain.log_level = notice;"
                echo "${q%;} \\g /dev/null"
            fi
        } | mm_psql -d "$db" -q -P pager=off -v tok="$tok" >"$out" 2>&1 || true
        echo "  plan (statements taking ${target_ms} ms or more, innermost first; first 120 lines):"
        sed -n -e '1,120s/^/    /p' "$out"
    done
}

step_summary() {
    local entry names=""
    heading "summary"
    for entry in "${missed[@]}"; do names+="${names:+, }${entry%%|*}"; done
    echo "calls over $target_ms ms (median): ${#missed[@]}${names:+: $names}"
    [[ -n "$check_note" ]] && echo "note: $check_note"
    echo "machine now: load average $(loadavg)"
}

step_cluster
step_load
step_checks
step_incremental
step_measure
step_explain
step_summary
