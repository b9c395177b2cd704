#!/usr/bin/env bash
# api-socketio-worker: the real npm socket.io-client (tests/js/sio-worker.test.mjs) against
# modelmine-api while a real modelmine-worker, working through that gateway (--api), registers,
# heartbeats and trains a job: the owner's socket (default transports) gets job:{id}:progress with
# the metrics as epochs arrive and job:{id}:status for each transition; another user's socket
# (websocket only) and an anonymous one get none of that job's events; all three get node:registered,
# node:heartbeat (the gateway's --heartbeat-view) and network:stats. About 20 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api-lib.sh"
it_begin api-socketio-worker

js=$MM_REPO/tests/js
if ! command -v node >/dev/null 2>&1; then fail "node is not installed"; it_end; fi
if [[ ! -d $js/node_modules/socket.io-client ]]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error) >"$IT_TMP/npm.log" 2>&1 ||
        { tail -n 20 "$IT_TMP/npm.log"; fail "npm ci in tests/js"; it_end; }
fi

step "accounts, and the gateway (heartbeat view every 500 ms)"
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
owner=$(signup owner@example.com "owner password")
other=$(signup other@example.com "other password")
IT_WORKER_API=1  # start_worker goes through the gateway below
gw_start --quiet --heartbeat-view 500

step "tests/js/sio-worker.test.mjs, the worker started once the sockets are connected"
ready=$IT_TMP/ready
rc=0
(cd "$js" && MODELMINE_API_URL=$IT_GW_URL MM_OWNER_TOKEN=$owner MM_OTHER_TOKEN=$other \
    MM_READY=$ready MM_NODE_NAME=sio-node timeout 180 node sio-worker.test.mjs) &
tester=$!
for (( i = 0; i < 300; i++ )); do [[ -e $ready ]] && break; proc_alive "$tester" || break; sleep 0.1; done
[[ -e $ready ]] && start_worker sio-node --slots 1
wait "$tester" || rc=$?
check "sio-worker.test.mjs: every check passed" "$rc" 0
check_sql "the job completed once, on the worker's node" \
    "SELECT count(*) = 1 FROM modelmine.jobs j JOIN modelmine.nodes n ON n.id = j.node_id WHERE j.status = 'COMPLETED' AND n.name = 'sio-node'"
check_sql "the books balance" "SELECT count(*) = 0 FROM modelmine.check_invariants()"
it_end
