#!/usr/bin/env bash
# api-socketio: modelmine-api's Socket.IO server with the real npm socket.io-client (tests/js/sio.test.mjs,
# socket.io-client pinned in tests/js/package.json): raw Engine.IO answers (handshake, errors, a second
# concurrent GET, namespaces, acks), the default polling->websocket upgrade, websocket-only clients, a
# NOTIFY reaching both, events for one user kept from anonymous sockets, a bad token's connect_error,
# 200 polling-only clients, the heartbeat (a missed pong or a missing CONNECT closes a session at 45 s),
# tokens checked again every 2 s (MODELMINE_SIO_RECHECK_S): a logged-out token's socket is disconnected,
# a demoted admin's socket sees only its own events; a SIGTERM drain the clients reconnect from, and
# SIGKILL + restart. About 75 s.
#
# The gateway runs under a small supervisor (its own process group) that restarts it whenever it exits,
# on the same port, so that the node test can kill it (MODELMINE_TEST_RESTART, MODELMINE_TEST_TERM)
# and watch its clients come back by themselves. The supervisor records each exit status and the
# TERM command records how long the drain took; both are checked here afterwards.
# Needs node (skipped without it) and tests/js/node_modules (installed with npm ci when missing).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if ! command -v node >/dev/null 2>&1; then
    echo "api-socketio: skipped: node is not installed (the test drives the npm socket.io-client)"
    exit 0
fi
it_begin api-socketio
. "$(dirname "$0")/api-lib.sh"
js=$MM_REPO/tests/js

step "the gateway binary and the npm client"
make -C "$MM_REPO/api" -s >"$IT_TMP/make.log" 2>&1 || { cat "$IT_TMP/make.log"; fail "make -C api"; it_end; }
if [[ ! -d $js/node_modules/socket.io-client ]]; then
    (cd "$js" && npm ci --no-audit --no-fund) >"$IT_TMP/npm.log" 2>&1 || { tail -n 20 "$IT_TMP/npm.log"; fail "npm ci in tests/js"; it_end; }
fi
check "socket.io-client is the pinned version" \
    "$(node -p "require('$js/node_modules/socket.io-client/package.json').version")" \
    "$(node -p "require('$js/package.json').dependencies['socket.io-client']")"

step "the gateway, under a supervisor that restarts it on the same port"
api_role
port=$(api_free_port)
recheck_s=2  # socket tokens are checked again every 2 s here (60 by default)
url=http://127.0.0.1:$port
cat >"$IT_TMP/supervise.sh" <<EOF
child=""
stop() {
    rc=0
    kill -TERM "\$child" 2>/dev/null
    wait "\$child" 2>/dev/null || rc=\$?
    echo "\$rc" >>"$IT_TMP/api.exits"
    exit 0
}
trap stop TERM
while :; do
    MODELMINE_SIO_RECHECK_S=$recheck_s "$API_BIN" --db "postgresql://mm_gateway@$PGHOST:$PGPORT/$IT_DB" --listen 127.0.0.1:$port --quiet \
        --drain 5 </dev/null >>"$IT_TMP/api.log" 2>&1 &
    child=\$!
    echo "\$child" >"$IT_TMP/api.pid"
    rc=0
    wait "\$child" || rc=\$?
    echo "\$rc" >>"$IT_TMP/api.exits"
    sleep 0.5
done
EOF
setsid bash "$IT_TMP/supervise.sh" </dev/null >>"$IT_TMP/supervisor.log" 2>&1 &
supervisor=$!
IT_OTHER_PIDS+=("$supervisor")
IT_GROUPS+=("$supervisor")
for _ in $(seq 1 100); do [[ $(api_health_code "$url") == 200 ]] && break; sleep 0.1; done
check "the gateway answers /health on $url" "$(api_health_code "$url")" 200
wait_until 10 "the gateway's LISTEN connection is up" \
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'modelmine-api listen'"

# SIGTERM, then wait for the process to end: how long the drain took goes to drain.ms
cat >"$IT_TMP/term.sh" <<EOF
pid=\$(cat "$IT_TMP/api.pid")
t0=\$(date +%s%N)
kill -TERM "\$pid"
for _ in \$(seq 1 300); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.05; done
echo \$(( (\$(date +%s%N) - t0) / 1000000 )) >"$IT_TMP/drain.ms"
EOF

step "a user token, when this tree's extension verifies tokens for the gateway (modelmine.request_role)"
if [[ $(adm "SELECT count(*) FROM pg_catalog.pg_proc WHERE proname = 'request_role' AND pronamespace = 'modelmine'::regnamespace") == 1 ]]; then
    MODELMINE_TEST_TOKEN=$(signup sio-user@example.com "sio user password")
    MODELMINE_TEST_USER_ID=$(adm "SELECT id FROM modelmine.users WHERE email = 'sio-user@example.com'")
    MODELMINE_TEST_EMAIL=sio-user@example.com MODELMINE_TEST_PASSWORD="sio user password"
    MODELMINE_TEST_RECHECK_S=$recheck_s
    export MODELMINE_TEST_TOKEN MODELMINE_TEST_USER_ID MODELMINE_TEST_EMAIL MODELMINE_TEST_PASSWORD \
        MODELMINE_TEST_RECHECK_S
else
    echo "modelmine.request_role is not in this tree's extension: the authenticated CONNECT check is skipped"
fi

step "tests/js/sio.test.mjs"
rc=0
(cd "$js" && MODELMINE_API_URL=$url MODELMINE_TEST_DB=$IT_DB MODELMINE_TEST_RESTART="kill -KILL \$(cat $IT_TMP/api.pid)" \
    MODELMINE_TEST_TERM="bash $IT_TMP/term.sh" timeout 240 node sio.test.mjs) || rc=$?
check "sio.test.mjs: every check passed" "$rc" 0

step "what the gateway logged, and what the supervisor saw"
check_true "it closed a session for a missed pong" grep -q "closed session .*: ping timeout" "$IT_TMP/api.log"
check_true "it closed a session for a missing CONNECT" grep -q "closed session .*: no Socket.IO CONNECT within 45 s" "$IT_TMP/api.log"
if [[ -n ${MODELMINE_TEST_EMAIL:-} ]]; then
    check_true "it logged why it disconnected the logged-out sockets" \
        grep -q "its token no longer verifies (invalid token); sent DISCONNECT" "$IT_TMP/api.log"
    check_true "it logged the demoted admin's socket" grep -q "its user's role changed" "$IT_TMP/api.log"
fi
kill -TERM "$supervisor"
wait "$supervisor" 2>/dev/null || true
check "exit statuses: the SIGTERM'd gateway 0, the SIGKILL'd one 137, the last one 0" \
    "$(paste -sd, "$IT_TMP/api.exits" 2>/dev/null)" "0,137,0"
drain=$(cat "$IT_TMP/drain.ms" 2>/dev/null || echo none)
check_true "the drain ended within 3 s although polling GETs were waiting (took $drain ms)" \
    test "$drain" != none -a "${drain/none/99999}" -lt 3000
check_true "the drain log says the sessions were closed" grep -q "closed [0-9]* session(s) for the drain" "$IT_TMP/api.log"
it_end
