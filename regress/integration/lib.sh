# shellcheck shell=bash
# shellcheck disable=SC2034  # the IT_* variables are read by the tests that source this file
# regress/integration/lib.sh: helpers shared by the integration tests (sourced, not run: not executable,
# so scripts/test.sh skips it).
#
# A test sources this file, then calls it_begin NAME, which creates the test's own database it_NAME with
# the extension, the login roles, and a temp dir, and installs the EXIT trap that stops every process the
# test started (workers, listeners) and drops the database. Checks print one line each ("ok" / "FAIL");
# it_end prints the summary and exits 1 if any check failed. A precondition that is not met (wait_until)
# or a psql error ends the test at once (set -e), with the workers' logs and the jobs table printed.
#
#   it_begin NAME                 start the test (see above); sets IT_DB and IT_TMP
#   step TEXT                     print a heading for what comes next
#   adm SQL                       run SQL as the superuser in IT_DB (psql -At, stops at the first error)
#   adm_try SQL                   the same, but a failed connection or statement is not fatal
#   signup EMAIL PW               create a user; prints a session token for it
#   as_user TOKEN SQL             run SQL in a session bound to that user, as role mm_client
#   as_node KEY SQL               run SQL in a session bound to that node, as role mm_worker
#   sqlstate_as_node KEY SQL      like as_node but prints the SQLSTATE of the error, or "ok"
#   register_node TOKEN NAME CAPS register a node for that operator, with one heartbeat (so it may claim
#                                 for offline_after_seconds); prints "id key"
#   start_worker NAME ARGS...     start modelmine-worker (registering with IT_OP_EMAIL/IT_OP_PW on first
#                                 start) in the background; log in $IT_TMP/NAME.log. With --db, or with
#                                 --api through the test's gateway in API mode (below)
#   worker_peer                   the worker's --db or --api (and --cacert) arguments, one per line (API
#                                 mode: once the gateway runs)
#   worker_pid NAME               its pid
#   node_of NAME                  its node id (from its state file)
#   wait_worker NAME SECS         wait up to SECS for it to exit; its exit code in IT_RC ("timeout" if not)
#   stop_worker NAME SIG [SECS]   send SIG, then wait_worker NAME SECS (default 10)
#   trainer_pid NAME JOB          pid of the child the worker started for JOB (from the worker's log)
#   group_alive PGID              true if a (non-zombie) process of that process group is left
#   proc_alive PID                true if PID is a running (non-zombie) process
#   poll_until SECS SQL           true once SQL (as the superuser) returns t, false after SECS
#   wait_until SECS DESC SQL      poll_until, printing DESC; a failed check (and status 1) if not reached
#   check_within SECS DESC SQL    one check: SQL must return t within SECS (see poll_until)
#   check DESC GOT WANT           one check: GOT must equal WANT
#   check_sql DESC SQL            one check: SQL (as the superuser) must return t
#   check_true DESC CMD...        one check: CMD must succeed
#   check_false DESC CMD...       one check: CMD must fail
#   it_end                        print the summary; exit 1 if any check failed
#
# API mode (IT_WORKER_API=1; the worker-api-*.sh tests set it and run a libpq test as it is): every
# start_worker goes through a gateway (api/modelmine-api) that the first start_worker starts on a port
# kept for the whole test, so the gateway can be restarted under running workers. IT_WORKER_API_TLS=1
# serves it over HTTPS with a CA the test makes (the workers get --cacert). The test's database is
# then it_NAME_api (unless NAME says api already), and lost-connection log lines may name the gateway
# as well as the database.
#   it_api_mode                   true in API mode
#   gw_start [ARGS...]            (re)start the gateway on IT_GW_PORT (extra ARGS to modelmine-api);
#                                 waits for /health; sets IT_GW_URL, IT_GW_PID; log $IT_TMP/gateway.log
#   gw_stop [SIG] [SECS]          send SIG (default TERM) and wait up to SECS (default 15); IT_GW_RC
#   it_make_ca DIR NAME           make a CA and a server certificate for 127.0.0.1/localhost signed by
#                                 it with openssl: DIR/NAME-ca.pem, DIR/NAME-cert.pem, DIR/NAME-key.pem
#
# Environment (from scripts/test.sh): PGHOST, PGPORT, PGUSER (a superuser), MM_WORKER, MM_REPO,
# MM_CLUSTER_DIR. Set IT_KEEP=1 to keep the database and the temp dir (logs) afterwards.
# MM_SANITIZE=1 runs the programs' sanitizer builds instead (sanitize-lib.sh).

: "${PGHOST:?run integration tests through scripts/test.sh (PGHOST is not set)}"
: "${PGPORT:?PGPORT is not set}" "${PGUSER:?PGUSER is not set}" "${MM_WORKER:?MM_WORKER is not set}"
: "${MM_REPO:?MM_REPO is not set}"
# MM_SANITIZE=1: the programs' ASan/UBSan builds, and a sanitizer report fails the test
# shellcheck source=regress/integration/sanitize-lib.sh
. "$MM_REPO/regress/integration/sanitize-lib.sh"
san_binaries

IT_NAME=""
IT_DB=""
IT_TMP=""
IT_CHECKS=0
IT_FAILS=0
IT_OP_EMAIL=operator@example.com
IT_OP_PW="operator password"
IT_STARTED=$SECONDS
IT_RC=""
declare -A IT_WORKERS=()  # name -> pid
IT_OTHER_PIDS=()          # other background processes (listeners)
IT_GROUPS=()              # process groups to kill at exit if anything is left (runner leftovers)
IT_GW_PORT="" IT_GW_URL="" IT_GW_PID="" IT_GW_RC="" IT_GW_CACERT="" IT_GW_TLS_ARGS=()

step() { printf '\n== %s\n' "$*"; }

# Stop everything we started, drop the database, remove the temp dir. Runs once, from the EXIT trap.
it_cleanup() {
    local rc=$? name pid g i
    trap - EXIT
    set +e  # best effort from here on: a failed kill must not skip the rest
    for name in "${!IT_WORKERS[@]}"; do
        pid=${IT_WORKERS[$name]}
        proc_alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${IT_OTHER_PIDS[@]}"; do
        proc_alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    # SIGTERM makes a worker release its jobs; give it a moment, then SIGKILL what is left.
    for (( i = 0; i < 30; i++ )); do
        local left=0
        for name in "${!IT_WORKERS[@]}"; do proc_alive "${IT_WORKERS[$name]}" && left=1; done
        [[ $left -eq 0 ]] && break
        sleep 0.1
    done
    for name in "${!IT_WORKERS[@]}"; do
        pid=${IT_WORKERS[$name]}
        proc_alive "$pid" && { echo "cleanup: worker $name (pid $pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
    done
    for pid in "${IT_OTHER_PIDS[@]}"; do proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    for g in "${IT_GROUPS[@]}"; do group_alive "$g" && kill -KILL -- "-$g" 2>/dev/null; done
    for pid in "${IT_WORKERS[@]}" "${IT_OTHER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n "$IT_TMP" ]] && ! san_check "$IT_TMP"; then
        IT_FAILS=$((IT_FAILS + 1))
        [[ $rc -ne 0 ]] || rc=1
    fi
    if [[ $rc -ne 0 || $IT_FAILS -gt 0 ]] && [[ -n "$IT_TMP" ]]; then
        for f in "$IT_TMP"/*.log; do
            [[ -f "$f" ]] || continue
            echo "---- ${f##*/} (last 40 lines)"
            tail -n 40 "$f"
        done
        if [[ -n "$IT_DB" ]]; then
            echo "---- jobs in $IT_DB"
            adm_try "SELECT id, status, node_id, attempts, progress, left(coalesce(error, ''), 80) FROM modelmine.jobs ORDER BY id" || true
        fi
    fi
    if [[ "${IT_KEEP:-0}" == 1 ]]; then
        echo "IT_KEEP=1: kept database $IT_DB and $IT_TMP"
    else
        [[ -n "$IT_DB" ]] && psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $IT_DB WITH (FORCE)" >/dev/null 2>&1
        [[ -n "$IT_TMP" ]] && rm -rf "$IT_TMP"
    fi
    exit "$rc"
}

it_api_mode() { [[ ${IT_WORKER_API:-0} == 1 ]]; }

it_begin() {
    IT_NAME=$1
    it_api_mode && [[ $1 != *-api-* ]] && IT_NAME=$1-api
    IT_DB=it_${IT_NAME//-/_}
    IT_TMP=$(mktemp -d "/tmp/mm-it-$IT_NAME.XXXXXX")
    chmod 755 "$IT_TMP"
    san_begin "$IT_TMP"
    trap it_cleanup EXIT
    trap 'echo "$IT_NAME: interrupted (SIGTERM)"; exit 143' TERM
    trap 'echo "$IT_NAME: interrupted (SIGINT)"; exit 130' INT
    step "$IT_NAME: database $IT_DB on $PGHOST:$PGPORT, logs in $IT_TMP"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $IT_DB WITH (FORCE)" \
        -c "CREATE DATABASE $IT_DB" >/dev/null
    # Login roles are cluster-wide: create them only when missing (another test may have).
    psql -X -q -v ON_ERROR_STOP=1 -d "$IT_DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION modelmine CASCADE;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';  -- fast logins; tests only
-- no random spot-checks: tests with several operators stay deterministic (cheater.sh turns them on)
UPDATE modelmine.settings SET value = 0 WHERE name = 'spotcheck_pct';
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_worker') THEN
        CREATE ROLE mm_worker LOGIN IN ROLE modelmine_node, modelmine_user;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_client') THEN
        CREATE ROLE mm_client LOGIN IN ROLE modelmine_user;
    END IF;
EXCEPTION WHEN duplicate_object THEN NULL;  -- created concurrently
END $$;
SQL
}

adm() { psql -X -At -q -v ON_ERROR_STOP=1 -d "$IT_DB" <<<"$1"; }
adm_try() { psql -X -At -q -v ON_ERROR_STOP=1 -d "$IT_DB" <<<"$1" 2>/dev/null; }

signup() {
    adm "SELECT modelmine.signup('$1', '$2')" >/dev/null
    psql -X -At -q -v ON_ERROR_STOP=1 -U mm_client -d "$IT_DB" -v email="$1" -v pw="$2" \
        <<<"SELECT modelmine.login(:'email', :'pw');"
}

as_user() {
    psql -X -At -q -v ON_ERROR_STOP=1 -U mm_client -d "$IT_DB" -v tok="$1" <<SQL
SELECT modelmine.authenticate(:'tok') \g /dev/null
$2
SQL
}

as_node() {
    psql -X -At -q -v ON_ERROR_STOP=1 -U mm_worker -d "$IT_DB" -v key="$1" <<SQL
SELECT modelmine.authenticate_node(:'key') \g /dev/null
$2
SQL
}

# Prints the SQLSTATE of the first error SQL raises in a session bound to the node, or "ok".
sqlstate_as_node() {
    local out
    out=$(psql -X -At -q -v ON_ERROR_STOP=1 -U mm_worker -d "$IT_DB" -v key="$1" 2>&1 <<SQL
\set VERBOSITY verbose
SELECT modelmine.authenticate_node(:'key') \g /dev/null
$2
SQL
) && { echo ok; return; }
    if [[ $out =~ ERROR:\ +([0-9A-Z]{5}): ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo "no SQLSTATE in: $out"
    fi
}

register_node() {
    local id key
    read -r id key <<<"$(as_user "$1" "SELECT node_id || ' ' || node_key FROM modelmine.register_node('$2', '$3')")"
    # online, as a worker is before its first claim (claim_jobs refuses an OFFLINE node)
    as_node "$key" "SELECT modelmine.heartbeat(1, 100, 1000)" >/dev/null
    printf '%s %s\n' "$id" "$key"
}

worker_url() { printf 'postgresql://mm_worker@%s:%s/%s\n' "$PGHOST" "$PGPORT" "$IT_DB"; }

# How a worker reaches the network: --db, or in API mode --api through the test's gateway (started).
worker_peer() {
    if it_api_mode; then
        printf '%s\n' --api "$IT_GW_URL"
        [[ -z "$IT_GW_CACERT" ]] || printf '%s\n' --cacert "$IT_GW_CACERT"
    else
        printf '%s\n' --db "$(worker_url)"
    fi
}

# Test defaults: short lease, heartbeat and poll so failures show in seconds; ARGS override them.
start_worker() {
    local name=$1 peer
    shift
    if it_api_mode && [[ -z "$IT_GW_URL" ]]; then gw_start || return 1; fi
    mapfile -t peer < <(worker_peer)
    MODELMINE_OPERATOR_PASSWORD=$IT_OP_PW "$MM_WORKER" "${peer[@]}" --name "$name" \
        --state-file "$IT_TMP/$name.json" --operator-email "$IT_OP_EMAIL" \
        --lease-seconds 5 --heartbeat-interval 1 --poll-interval 1 "$@" \
        </dev/null >>"$IT_TMP/$name.log" 2>&1 &
    IT_WORKERS[$name]=$!
    echo "started worker $name (pid $!)${IT_GW_URL:+ through the gateway $IT_GW_URL}: $*"
}

# it_make_ca DIR NAME: a CA and a server certificate it signs, for 127.0.0.1 and localhost.
it_make_ca() {
    local dir=$1 name=$2
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$name test CA" \
        -keyout "$dir/$name-ca-key.pem" -out "$dir/$name-ca.pem" >/dev/null 2>&1 &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" >/dev/null 2>&1 &&
    printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' >"$dir/$name.ext" &&
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$name-ca.pem" -CAkey "$dir/$name-ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$dir/$name.ext" -out "$dir/$name-cert.pem" >/dev/null 2>&1 ||
        { fail "openssl could not make the test CA $name in $dir"; return 1; }
}

# gw_start [ARGS...]: the test's gateway on IT_GW_PORT (picked at the first start, kept across restarts).
gw_start() {
    local i code scheme=http curl_ca=()
    [[ -x "${API_BIN:-$MM_REPO/api/modelmine-api}" ]] || { fail "no gateway binary (run: make -C $MM_REPO/api)"; return 1; }
    # shellcheck source=regress/integration/api-lib.sh
    declare -F api_role >/dev/null || . "$MM_REPO/regress/integration/api-lib.sh"
    api_role
    [[ -n "$IT_GW_PORT" ]] || IT_GW_PORT=$(api_free_port)
    if [[ ${IT_WORKER_API_TLS:-0} == 1 && ${#IT_GW_TLS_ARGS[@]} -eq 0 ]]; then
        it_make_ca "$IT_TMP" gw || return 1
        IT_GW_CACERT=$IT_TMP/gw-ca.pem
        IT_GW_TLS_ARGS=(--tls-cert "$IT_TMP/gw-cert.pem" --tls-key "$IT_TMP/gw-key.pem")
    fi
    [[ ${#IT_GW_TLS_ARGS[@]} -eq 0 ]] || { scheme=https; curl_ca=(--cacert "$IT_GW_CACERT"); }
    "$API_BIN" --db "postgresql://mm_gateway@$PGHOST:$PGPORT/$IT_DB" --listen "127.0.0.1:$IT_GW_PORT" \
        "${IT_GW_TLS_ARGS[@]}" "$@" </dev/null >>"$IT_TMP/gateway.log" 2>&1 &
    IT_GW_PID=$!
    IT_OTHER_PIDS+=("$IT_GW_PID")
    IT_GW_URL=$scheme://127.0.0.1:$IT_GW_PORT
    for (( i = 0; i < 150; i++ )); do
        proc_alive "$IT_GW_PID" || break
        code=$(curl --noproxy '*' -s -o /dev/null -m 3 -w '%{http_code}' "${curl_ca[@]}" "$IT_GW_URL/health" 2>/dev/null || true)
        [[ $code == 200 ]] && { echo "started gateway (pid $IT_GW_PID) on $IT_GW_URL${*:+ with $*}"; return 0; }
        sleep 0.1
    done
    fail "gateway on $IT_GW_URL did not answer /health with 200 within 15 s (last: ${code:-none})"
    tail -n 20 "$IT_TMP/gateway.log"
    return 1
}

# gw_stop [SIG] [SECS]: stop the test's gateway; its exit status in IT_GW_RC ("timeout" if still running).
gw_stop() {
    local i
    kill "-${1:-TERM}" "$IT_GW_PID" 2>/dev/null || true
    {   # 2>/dev/null: no "Killed" job notice from bash
        for (( i = 0; i < ${2:-15} * 10; i++ )); do
            proc_alive "$IT_GW_PID" || break
            sleep 0.1
        done
        if proc_alive "$IT_GW_PID"; then IT_GW_RC=timeout; return 0; fi
        IT_GW_RC=0
        wait "$IT_GW_PID" || IT_GW_RC=$?
    } 2>/dev/null
}

worker_pid() { echo "${IT_WORKERS[$1]}"; }

# The node id the worker registered as (its state file appears once registration succeeded).
node_of() {
    local i
    for (( i = 0; i < 100; i++ )); do
        if [[ -s "$IT_TMP/$1.json" ]]; then
            sed -n 's/.*"node_id": *\([0-9]*\).*/\1/p' "$IT_TMP/$1.json"
            return 0
        fi
        sleep 0.1
    done
    echo "worker $1 did not register within 10 s" >&2
    return 1
}

# Not in $(...): only this shell can wait for its children. Leaves the exit code in IT_RC
# ("timeout" if the worker is still running after SECS).
wait_worker() {
    local name=$1 secs=$2 pid i
    pid=${IT_WORKERS[$name]}
    for (( i = 0; i < secs * 10; i++ )); do
        proc_alive "$pid" || break
        sleep 0.1
    done
    if proc_alive "$pid"; then
        IT_RC=timeout
        return 0
    fi
    IT_RC=0
    wait "$pid" 2>/dev/null || IT_RC=$?  # 2>: no "Killed" job notice from bash
}
stop_worker() {
    kill "-$2" "${IT_WORKERS[$1]}" 2>/dev/null || true
    wait_worker "$1" "${3:-10}"
}

trainer_pid() {
    sed -n "s/.*: job $2 started (.*, pid \([0-9]*\))\$/\1/p" "$IT_TMP/$1.log" | tail -n 1
}

# /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after the last ")".
proc_stat() {
    local line
    { line=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
    echo "${line##*) }"
}
proc_alive() {
    local st
    st=$(proc_stat "$1") || return 1
    [[ ${st%% *} != Z ]]
}
group_alive() {
    local f pid st state pgrp
    for f in /proc/[0-9]*; do
        pid=${f#/proc/}
        st=$(proc_stat "$pid") || continue
        read -r state _ pgrp _ <<<"$st"
        [[ $pgrp == "$1" && $state != Z ]] && return 0
    done
    return 1
}

# poll_until SECS SQL: true once SQL returns t (polled every 0.2 s as the superuser), false after SECS.
# Connection errors just mean "not yet" (the cluster may be restarting).
poll_until() {
    local deadline=$(( SECONDS + $1 ))
    while (( SECONDS < deadline )); do
        [[ "$(adm_try "$2")" == t ]] && return 0
        sleep 0.2
    done
    return 1
}

# A precondition: prints what it waited for, or records a failed check and returns 1.
wait_until() {
    if poll_until "$1" "$3"; then echo "waited for: $2"; return 0; fi
    fail "$2: not reached within $1 s"
    return 1
}

# A check that SQL becomes true within SECS.
check_within() {
    if poll_until "$1" "$3"; then pass "$2 (within $1 s)"; else fail "$2: not within $1 s"; fi
}

pass() { IT_CHECKS=$((IT_CHECKS + 1)); printf 'ok    %s\n' "$1"; }
fail() { IT_CHECKS=$((IT_CHECKS + 1)); IT_FAILS=$((IT_FAILS + 1)); printf 'FAIL  %s\n' "$1"; }

check() {
    if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi
}
check_sql() {
    local got
    got=$(adm_try "$2")
    if [[ "$got" == t ]]; then pass "$1"; else fail "$1: the query returned '${got:-an error}'"$'\n'"      $2"; fi
}
check_true() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}
check_false() {
    local desc=$1
    shift
    if "$@"; then fail "$desc"; else pass "$desc"; fi
}

it_end() {
    step "$IT_NAME: $IT_CHECKS checks, $IT_FAILS failed ($((SECONDS - IT_STARTED)) s)"
    [[ $IT_FAILS -eq 0 ]] || exit 1
    exit 0
}
