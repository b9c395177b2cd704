# shellcheck shell=bash
# shellcheck disable=SC2034  # API_* variables are read by the tests that source this file
# regress/integration/api-lib.sh: run modelmine-api (api/modelmine-api) inside an integration test.
# Sourced after lib.sh and it_begin (not executable, so scripts/test.sh skips it).
#
#   api_role                    create the authenticator login role mm_gateway if missing (cluster-wide;
#                               member of modelmine_anon, _user, _node and _admin)
#   api_free_port               print a TCP port with nothing listening on 127.0.0.1
#   api_start NAME [ARGS...]    start a gateway NAME against IT_DB (API_DB_URL overrides) on a free port,
#                               extra ARGS passed on; log in $IT_TMP/api-NAME.log; waits until /health
#                               answers 200 (API_HEALTH_ANY=1: any status). Sets API_URL[NAME],
#                               API_PORT[NAME], API_PID[NAME] and API (the URL of the last one started).
#                               Its pid is in IT_OTHER_PIDS, so it_cleanup stops it.
#   api_stop NAME [SIG] [SECS]  send SIG (default TERM), wait up to SECS (default 15) for it to exit;
#                               the exit status in API_RC ("timeout" if it is still running)
#   api_alive NAME              true while the gateway's process runs
#   api_health_code URL         print the status /health answers (000: no answer)
#
# The binary is $MM_REPO/api/modelmine-api (API_BIN overrides); a test that needs it and finds it
# missing fails at once with the make command to run.

API_BIN=${API_BIN:-$MM_REPO/api/modelmine-api}
API=""
declare -A API_URL=() API_PORT=() API_PID=()
API_RC=""

api_role() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$IT_DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
        CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently by another test
END $$;
SQL
}

# The kernel picks a free port for a socket bound to port 0; the port is free again once it closes.
api_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The HTTP status of GET URL/health, or 000 when nothing answers within 3 s.
api_health_code() {
    curl --noproxy '*' -s -o /dev/null -m 3 -w '%{http_code}' "$1/health" 2>/dev/null || true
}

api_alive() { proc_alive "${API_PID[$1]:-0}"; }

api_start() {
    local name=$1 attempt port pid url log i code
    shift
    [[ -x "$API_BIN" ]] || { fail "no gateway binary $API_BIN (run: make -C $MM_REPO/api)"; return 1; }
    api_role
    log=$IT_TMP/api-$name.log
    for attempt in 1 2 3; do
        port=$(api_free_port)
        url=http://127.0.0.1:$port
        "$API_BIN" --db "${API_DB_URL:-postgresql://mm_gateway@$PGHOST:$PGPORT/$IT_DB}" \
            --listen "127.0.0.1:$port" "$@" </dev/null >>"$log" 2>&1 &
        pid=$!
        IT_OTHER_PIDS+=("$pid")
        for (( i = 0; i < 150; i++ )); do
            proc_alive "$pid" || break
            code=$(api_health_code "$url")
            if [[ $code == 200 || ( ${API_HEALTH_ANY:-0} == 1 && $code != 000 ) ]]; then
                API_URL[$name]=$url API_PORT[$name]=$port API_PID[$name]=$pid API=$url
                echo "started gateway $name (pid $pid) on $url${*:+ with $*}"
                return 0
            fi
            sleep 0.1
        done
        if proc_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            fail "gateway $name did not answer /health with 200 within 15 s (last: $code); see $log"
            tail -n 20 "$log"
            return 1
        fi
        wait "$pid" 2>/dev/null
        # lost the race for the port to another process: try another one
        grep -q "cannot serve on 127.0.0.1:$port" "$log" && continue
        fail "gateway $name exited at start; its log:"
        tail -n 20 "$log"
        return 1
    done
    fail "gateway $name: no free port after 3 attempts"
    return 1
}

api_stop() {
    local name=$1 sig=${2:-TERM} secs=${3:-15} pid i
    pid=${API_PID[$name]}
    kill "-$sig" "$pid" 2>/dev/null || true
    for (( i = 0; i < secs * 10; i++ )); do
        proc_alive "$pid" || break
        sleep 0.1
    done
    if proc_alive "$pid"; then
        API_RC=timeout
        return 0
    fi
    API_RC=0
    wait "$pid" 2>/dev/null || API_RC=$?
}
