#!/usr/bin/env bash
# worker-restart-name: a worker restarted from its state file logs under the name its node registered
# with, not the host name, so an operator reading the log of many nodes sees which one speaks.
#
# Worker gpu-box-7 registers (first start with operator credentials; its state file keeps id, key and
# name) and stops. Started again from that state file without --name, it must log as gpu-box-7 from its
# first line to its last, and not register again. Started with another --name and the same state file,
# it is still node gpu-box-7: it logs as gpu-box-7 and says that --name names a node only when it
# registers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-restart-name

signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
state=$IT_TMP/gpu-box-7.json
host=$(hostname)

# restart NAME ARGS...: the worker again from gpu-box-7's state file, until the (empty) queue is
# drained; log in $IT_TMP/NAME.log. Not start_worker: that always passes --name.
restart() {
    local name=$1
    shift
    "$MM_WORKER" --db "$(worker_url)" --state-file "$state" --heartbeat-interval 1 --poll-interval 1 \
        --exit-when-idle "$@" </dev/null >>"$IT_TMP/$name.log" 2>&1 &
    IT_WORKERS[$name]=$!
    wait_worker "$name" 20
    check "$name exits 0 once the queue is empty" "$IT_RC" 0
}

step "first start: gpu-box-7 registers"
start_worker gpu-box-7 --exit-when-idle
node=$(node_of gpu-box-7)
wait_worker gpu-box-7 20
check "gpu-box-7 exits 0 once the queue is empty" "$IT_RC" 0
check "the state file keeps the name" "$(sed -n 's/.*"name": *"\([^"]*\)".*/\1/p' "$state")" gpu-box-7

step "restart from the state file, without --name (host name: $host)"
restart again
sed 's/^/      /' "$IT_TMP/again.log"
check_true "it logs as gpu-box-7" grep -q "Z gpu-box-7: connected as node $node\$" "$IT_TMP/again.log"
check "every line is gpu-box-7's" "$(grep -vc "^[0-9T:-]*Z gpu-box-7: " "$IT_TMP/again.log" || true)" 0
check "no line under the host name" "$(grep -c "Z $host: " "$IT_TMP/again.log" || true)" 0
check "no second registration" "$(adm "SELECT count(*) FROM modelmine.nodes")" 1

step "restart from the state file with --name other-name"
restart other --name other-name
sed 's/^/      /' "$IT_TMP/other.log"
check_true "it still logs as gpu-box-7" grep -q "Z gpu-box-7: connected as node $node\$" "$IT_TMP/other.log"
check_true "and says that --name names a node only when it registers" grep -q \
    "Z gpu-box-7: state file $state holds node \"gpu-box-7\": working as it (--name other-name names a node only when it registers)" \
    "$IT_TMP/other.log"
check "no line under other-name" "$(grep -c "Z other-name: " "$IT_TMP/other.log" || true)" 0
check "still one node" "$(adm "SELECT count(*) FROM modelmine.nodes")" 1
it_end
