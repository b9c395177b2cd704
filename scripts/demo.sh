#!/usr/bin/env bash
# scripts/demo.sh: ModelMine as a running local network, on a throwaway cluster, driven mostly with its
# command-line client (cli/modelmine; docs/CLI.md).  Each command is printed before it runs.
#
# Steps, one function each, run in order at the bottom of this file:
#   step_deps      scripts/install-deps.sh
#   step_build     make (extension, worker, CLI)
#   step_cluster   private PostgreSQL tree + cluster on a free 127.0.0.1 port (scripts/lib/cluster.sh),
#                  database `modelmine` with CREATE EXTENSION modelmine CASCADE, login roles mm_worker
#                  (for workers) and mm_client (for the CLI)
#   step_gateway   modelmine-api (api/) on a free 127.0.0.1 port, logged in as mm_gateway, serving the
#                  web dashboard (web/: `npm ci` for its pinned browser libraries, then precompress.sh)
#   step_accounts  an operator and a user sign up with `modelmine signup` (each keeps a session file)
#   step_workers   3 workers (worker/modelmine-worker, 2 slots each) register with the operator's
#                  credentials, two with a database login (--db), one through the gateway (--api, as a
#                  stranger's node would); state files and logs in a temp dir; `modelmine nodes` lists them
#   step_submit    the user submits five jobs with `modelmine submit`: logreg on blobs, mlp on moons, mlp
#                  on spirals, linreg, noop; a sixth, whose config is wrong, is refused at submit with
#                  the field named (exit 1, nothing staked)
#   step_watch     `modelmine watch` follows the longest job live (a bar on a terminal, a line per 20%
#                  otherwise), then every job finishes (at most 45 s in all) and `modelmine jobs` lists
#                  them
#   step_results   `modelmine job` and `modelmine result -o` for one job; every job's figures through
#                  SQL; `modelmine balance` and the user's transactions
#   step_operator  `modelmine nodes --mine`, then `modelmine withdraw` for each node
#   step_network   `modelmine network`: the figures and the terminal charts
#   step_ledger    `modelmine ledger`, `ledger digest -o FILE`, `ledger verify --digest FILE`
#   step_http      the same network over HTTP with curl: sign in, the user's jobs, the network's
#                  figures, the ledger's verdict (docs/API.md)
#   step_checks    check_invariants() must be empty
#   step_serve     on a terminal (stdin and stdout), the network keeps running for the browser: it prints
#                  the dashboard's URL and the demo accounts and waits for Ctrl-C
#   step_stop      SIGTERM to the workers; each must exit 0
# Everything is torn down on exit (also on error or Ctrl-C) unless --keep, which leaves the cluster and
# the gateway running and prints how to reach them with psql, a worker, the CLI and a browser.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/demo.sh [--keep] [--help]

Runs a local ModelMine network on a throwaway PostgreSQL 15 cluster (127.0.0.1, free port, nothing
installed into the system; works as root or as a normal user), driven with the modelmine CLI: three
workers register for an operator, a user signs up, submits six training jobs and watches them run,
then sees results and balance; the operator collects the nodes' earnings; the network's figures and
charts; the hash-chained ledger is verified; the ledger invariants must hold. About 30 s once built.
On a terminal it then keeps the network running and prints the web dashboard's URL; Ctrl-C stops it.

  --keep   leave the cluster and the HTTP gateway running (and the workers' state files, logs and
           the CLI's session files) and say how to use them: CLI, psql, curl, browser
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
gateway_pid=""
gateway_url=""
demo_db=modelmine
operator_email=operator@modelmine.local
operator_password="operator-password"
user_email=demo@modelmine.local
user_password="demo-password"
worker=$repo/worker/modelmine-worker
modelmine=$repo/cli/modelmine
api=$repo/api/modelmine-api
declare -A job=()       # the demo's jobs by short name (blobs, moons, spirals, linreg, noop)

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
    if [[ $keep -eq 0 && -n "$gateway_pid" ]] && alive "$gateway_pid"; then
        kill -TERM "$gateway_pid"
        wait "$gateway_pid" 2>/dev/null
    fi
    if [[ $keep -eq 1 && -n "$cluster" && -f "$cluster/data/postmaster.pid" ]]; then
        cat <<KEEP

==== cluster and gateway kept running (--keep)
  browser:  $gateway_url/  (the dashboard: sign in as $user_email / $user_password; docs/WEB.md)
  API:      $gateway_url/openapi.json  (docs/API.md; gateway pid $gateway_pid, log $work/gateway.log)
  curl:     curl -s $gateway_url/network; curl -s $gateway_url/health
  connect:  psql "host=127.0.0.1 port=$PGPORT user=postgres dbname=$demo_db"
  worker:   $worker --db postgresql://mm_worker@127.0.0.1:$PGPORT/$demo_db --state-file $work/w1.json
  logs:     $cluster/postgres.log, $work/w1.log ...
  stop:     kill $gateway_pid; bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster' && rm -rf $cluster $tree $work

  the CLI, signed in as $user_email (the workers are stopped: start one as above to run new jobs):
    export MODELMINE_DB=postgresql://mm_client@127.0.0.1:$PGPORT/$demo_db
    export MODELMINE_SESSION_FILE=$work/user.session
    export PATH=$repo/cli:\$PATH
    modelmine whoami; modelmine jobs; modelmine network; modelmine top
  as the operator ($operator_email): MODELMINE_SESSION_FILE=$work/operator.session modelmine nodes --mine
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

# sql_as_user SQL: run SQL in a session bound to the demo user, signed in with the CLI's session token
# (authenticate binds one connection, so each call authenticates first). -P footer=off: tables without
# "(N rows)".
sql_as_user() {
    mm_psql -d "$demo_db" -q -P pager=off -P footer=off -v token="$(cat "$work/user.session")" <<SQL
SELECT modelmine.authenticate(:'token') \g /dev/null
$1
SQL
}

# shown WHO ARGS...: print the command line as one would type it, after the account it runs as (user or
# operator). Arguments with spaces or brackets are put in single quotes (the demo's hold none).
shown() {
    local who=$1 arg line
    shift
    line="[$who] \$ modelmine"
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then line+=" $arg"; else line+=" '$arg'"; fi
    done
    printf '%s\n' "$line"
}

# as WHO ARGS...: run the CLI as WHO (user or operator: each has its session file).
as() {
    local who=$1
    shift
    MODELMINE_SESSION_FILE=$work/$who.session "$modelmine" "$@"
}

# mm WHO ARGS...: print the command, then run it.
mm() {
    shown "$@"
    as "$@"
}

step_deps() {
    heading "dependencies"
    scripts/install-deps.sh
}

step_build() {
    heading "build (make)"
    make --no-print-directory -s PG_CONFIG="$(mm_pg_config)"
    echo "build finished (make: extension, worker and the CLI, $modelmine)"
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
    # Roles are cluster-wide: create the login roles only when missing.
    mm_psql -q -d "$demo_db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_worker') THEN
        CREATE ROLE mm_worker LOGIN IN ROLE modelmine_node, modelmine_user;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_client') THEN
        CREATE ROLE mm_client LOGIN IN ROLE modelmine_user;
    END IF;
END $$;
SQL
    echo "database $demo_db: $(mm_psql -d "$demo_db" -Atc \
        "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'")"
    echo "login roles: mm_worker for workers (modelmine_node, modelmine_user), mm_client for the CLI (modelmine_user)"
    export MODELMINE_DB=postgresql://mm_client@127.0.0.1:$PGPORT/$demo_db
    echo "the CLI connects with MODELMINE_DB=$MODELMINE_DB"
}

step_gateway() {
    local port
    heading "the HTTP gateway (modelmine-api): REST routes, PostgREST-compatible /rpc, Socket.IO events"
    mm_psql -q -d "$demo_db" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
        CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
    END IF;
END $$;
SQL
    # the dashboard's browser libraries (Chart.js, socket.io-client), as web/package-lock.json pins them,
    # and their gzip copies; installed again only when the lockfile changed
    if [[ -f web/package-lock.json ]] &&
        ! cmp -s web/package-lock.json web/node_modules/.package-lock.json.installed 2>/dev/null; then
        echo "\$ (cd web && npm ci)"
        (cd web && npm ci --no-audit --no-fund --loglevel=error) || {
            echo "demo.sh: npm ci in web/ failed: the gateway serves the dashboard without its charts" >&2; }
        cp web/package-lock.json web/node_modules/.package-lock.json.installed 2>/dev/null || true
    fi
    web/precompress.sh
    port=$(mm_free_port)
    gateway_url=http://127.0.0.1:$port
    "$api" --db "postgresql://mm_gateway@127.0.0.1:$PGPORT/$demo_db" --listen "127.0.0.1:$port" \
        >"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "$gateway_url/health" 2>/dev/null && break; sleep 0.1; done
    echo "\$ curl -s $gateway_url/health"
    curl -fsS "$gateway_url/health"; echo
    echo "the gateway logs in as mm_gateway (a member of the four modelmine roles) and runs each request as"
    echo "the role its bearer token gives; open $gateway_url/openapi.json for every route"
    echo "the web dashboard: $gateway_url/"
}

step_accounts() {
    heading "accounts: an operator (runs the nodes) and a user (submits jobs), with modelmine signup"
    echo "(the password comes from MODELMINE_PASSWORD here; on a terminal signup asks for it twice)"
    MODELMINE_PASSWORD=$operator_password mm operator signup "$operator_email"
    MODELMINE_PASSWORD=$user_password mm user signup "$user_email"
    mm user whoami
}

step_workers() {
    local i n
    local peer
    heading "3 workers register with the operator's credentials (2 with a database login, 1 over HTTP)"
    for i in 1 2 3; do
        peer=(--db "postgresql://mm_worker@127.0.0.1:$PGPORT/$demo_db")
        [[ $i -eq 3 ]] && peer=(--api "$gateway_url")  # no database login: only the gateway's URL
        MODELMINE_OPERATOR_PASSWORD=$operator_password "$worker" "${peer[@]}" --name "demo-node-$i" \
            --slots 2 --state-file "$work/w$i.json" --operator-email "$operator_email" \
            --heartbeat-interval 1 --poll-interval 1 </dev/null >"$work/w$i.log" 2>&1 &
        worker_pids+=($!)
        echo "worker demo-node-$i (${peer[0]} ${peer[1]}): pid $!, log $work/w$i.log"
    done
    for (( i = 0; i < 100; i++ )); do
        n=$(mm_psql -d "$demo_db" -At -c "SELECT count(*) FROM modelmine.nodes WHERE last_seen IS NOT NULL")
        [[ $n -eq 3 ]] && break
        sleep 0.1
    done
    [[ $n -eq 3 ]] || { echo "demo.sh: only $n of 3 workers came up within 10 s; their logs:" >&2; tail -n 5 "$work"/w?.log >&2; return 1; }
    mm user nodes
}

# submit NAME CONFIG ARGS...: `modelmine submit ARGS` as the user, with CONFIG (JSON, or "" for none)
# on stdin for --config -; the job's id (its output) into job[NAME].
submit() {
    local name=$1 config=$2 id
    shift 2
    if [[ -n $config ]]; then
        printf "%s <<<'%s'\n" "$(shown user submit --config - "$@")" "$config"
        id=$(as user submit --config - "$@" <<<"$config")
    else
        shown user submit "$@"
        id=$(as user submit "$@")
    fi
    job[$name]=$id
    echo "$id"
}

step_submit() {
    heading "$user_email submits five jobs with modelmine submit (stake 100 each); each prints its id"
    # flags for what they can say; a --config file (here stdin) for the rest, flags over it
    submit blobs '{"dataset": {"synthetic": "blobs", "classes": 4, "n": 3000}}' --trainer logreg --epochs 100 \
        --title "Blob classifier" --description "logistic regression, 4 classes" --stake 100
    submit moons "" --trainer mlp --dataset moons --samples 2000 --hidden 32,32 --epochs 300 \
        --title "Moons MLP" --description "two interleaved half circles" --stake 100
    submit spirals '{"dataset": {"synthetic": "spirals", "classes": 3, "n": 1500}}' --trainer mlp --hidden 64,64 \
        --epochs 400 --lr 0.05 --title "Spirals MLP" --description "three spiral arms, the hard one" --stake 100
    submit linreg '{"dataset": {"synthetic": "linear", "features": 5, "n": 3000}}' --trainer linreg --epochs 100 \
        --title "House prices" --description "linear regression" --stake 100
    submit noop "" --trainer noop --title "Smoke test" --description "does nothing, at once" --stake 100
    submit_refused
}

# A config no worker would run is refused at submit by the workers' own validator (docs/CONFIG.md):
# exit 1, the field named, nothing staked.
submit_refused() {
    local config='{"trainer": "mlp", "dataset": {"synthetic": "moons", "classes": 3}}' rc=0 before after
    heading "a sixth job with a typo in its config: refused at submit, naming the field, nothing staked"
    before=$(as user balance --json | sed -n 's/.*"balance": *\([0-9]*\).*/\1/p')
    printf "%s <<<'%s'\n" "$(shown user submit --config - --title "Typo in config" --stake 100)" "$config"
    as user submit --config - --title "Typo in config" --stake 100 <<<"$config" || rc=$?
    after=$(as user balance --json | sed -n 's/.*"balance": *\([0-9]*\).*/\1/p')
    echo "(exit status $rc; balance $before before and $after after)"
    [[ $rc -eq 1 && -n $before && $before == "$after" ]] ||
        { echo "demo.sh: the config with a typo should be refused at submit, nothing staked" >&2; return 1; }
}

step_watch() {
    local start=$SECONDS rc=0 open
    heading "follow the longest job live, until it ends (modelmine watch)"
    shown user watch "${job[spirals]}"
    if [[ -t 1 ]]; then
        # a bar redrawn in place (--foreground: Ctrl-C reaches watch)
        MODELMINE_SESSION_FILE=$work/user.session timeout --foreground 45 "$modelmine" watch "${job[spirals]}" \
            || rc=$?
    else
        # off a terminal watch logs a line per whole percent: one per 20% is shown, and the end
        { MODELMINE_SESSION_FILE=$work/user.session timeout 45 "$modelmine" watch "${job[spirals]}" \
            | awk '$4 ~ /%$/ { p = int($4); if (p < next_p) next; next_p = p - p % 20 + 20 } { print }'
          rc=${PIPESTATUS[0]}; } || true
    fi
    [[ $rc -eq 0 ]] || { echo "demo.sh: modelmine watch ${job[spirals]} exited $rc (0 means COMPLETED)" >&2; return 1; }
    while :; do
        open=$(mm_psql -d "$demo_db" -At -c "SELECT count(*) FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING')")
        [[ $open -eq 0 ]] && break
        if (( SECONDS - start >= 45 )); then
            echo "demo.sh: $open job(s) still open after 45 s; the workers' logs:" >&2
            tail -n 5 "$work"/w?.log >&2
            return 1
        fi
        sleep 0.5
    done
    heading "every job, as modelmine jobs lists them"
    mm user jobs --asc
}

step_results() {
    heading "one job in full, and its trained model written to a file"
    mm user job "${job[moons]}"
    mm user result "${job[moons]}" -o "$work/moons-model.json"
    heading "every job's figures, through SQL (modelmine.job(id) for each of my jobs)"
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
    heading "$user_email: balance and transactions"
    mm user balance
    sql_as_user "$(cat <<'SQL'
SELECT t.id, to_char(t.created_at, 'HH24:MI:SS') AS at, t.amount, t.reason, t.job_id AS job, t.counterparty
  FROM modelmine.my_transactions(20) t ORDER BY t.id;
SQL
)"
    echo "(every completed job cost its stake of 100; the failed job's stake came back as a refund)"
}

step_operator() {
    local node
    heading "$operator_email: nodes and earnings, then withdraw them"
    mm operator nodes --mine
    for node in $(mm_psql -d "$demo_db" -At -c "SELECT id FROM modelmine.nodes WHERE tokens_earned > 0 ORDER BY id"); do
        mm operator withdraw "$node"
    done
    mm operator balance
    echo "(a node earns floor(stake * 80 / 100) = 80 per completed job; the other 20 go to the network fee)"
}

step_network() {
    heading "the network: figures and charts (no session needed)"
    mm user network
    echo "(modelmine network --svg FILE writes the two charts as an SVG image; modelmine top shows them live)"
}

step_ledger() {
    heading "the hash-chained ledger: a block per completed job, checked from genesis"
    mm user ledger
    mm user ledger digest -o "$work/head.json"
    mm user ledger verify --digest "$work/head.json"
}

# curl_shown SHOWN ARGS...: print SHOWN (the command as one would type it), then run curl with ARGS.
curl_shown() {
    printf '$ %s\n' "$1"
    shift
    curl -fsS "$@"
    echo
}

step_http() {
    local token
    heading "the same network over HTTP (modelmine-api at $gateway_url)"
    echo "\$ TOKEN=\$(curl -s -X POST $gateway_url/auth/login -H 'Content-Type: application/json' \\"
    echo "      -d '{\"email\": \"$user_email\", \"password\": \"...\"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')"
    token=$(curl -fsS -X POST "$gateway_url/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\": \"$user_email\", \"password\": \"$user_password\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    curl_shown "curl -s '$gateway_url/jobs?status=COMPLETED&sort=stake&limit=2' -H \"Authorization: Bearer \$TOKEN\"" \
        "$gateway_url/jobs?status=COMPLETED&sort=stake&limit=2" -H "Authorization: Bearer $token"
    curl_shown "curl -s $gateway_url/network" "$gateway_url/network"
    curl_shown "curl -s $gateway_url/ledger/verify" "$gateway_url/ledger/verify"
}

step_checks() {
    heading "invariants (no rows = the books balance)"
    mm_psql -d "$demo_db" -P pager=off -c "SELECT * FROM modelmine.check_invariants()"
    [[ $(mm_psql -d "$demo_db" -At -c "SELECT count(*) FROM modelmine.check_invariants()") -eq 0 ]] || {
        echo "demo.sh: modelmine.check_invariants() returned violations (listed above)" >&2; return 1; }
    echo "all invariants hold"
}

# On a terminal, leave the network running for the browser until Ctrl-C.
step_serve() {
    local serving=1
    [[ -t 0 && -t 1 && $keep -eq 0 ]] || return 0
    heading "the network is running: open the dashboard"
    echo "  dashboard:  $gateway_url/"
    echo "  sign in as: $user_email / $user_password (a user with jobs), or"
    echo "              $operator_email / $operator_password (the nodes' operator)"
    echo "  the CLI:    MODELMINE_DB=$MODELMINE_DB MODELMINE_SESSION_FILE=$work/user.session $modelmine top"
    echo "Ctrl-C stops the workers, the gateway and the cluster."
    trap 'serving=0' INT
    while (( serving )); do sleep 1 || true; done
    trap - INT
    echo
}

step_stop() {
    local i pid rc bad=0
    heading "stopping the workers (SIGTERM)"
    # (after Ctrl-C in step_serve the workers got SIGINT too, and may be gone already)
    for pid in "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
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
step_gateway
step_accounts
step_workers
step_submit
step_watch
step_results
step_operator
step_network
step_ledger
step_http
step_checks
step_serve
step_stop
heading "demo finished: every step succeeded and the invariants hold"
