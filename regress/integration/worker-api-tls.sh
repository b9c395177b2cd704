#!/usr/bin/env bash
# worker-api-tls: a worker reaches the gateway over HTTPS and checks its certificate; a certificate
# its CA file does not vouch for is refused with an error that says what to do, and nothing is sent.
#
# The test makes two CAs with openssl: "gw", which signs the gateway's certificate (127.0.0.1 and
# localhost), and "other", which signs nothing of ours.
#   good      --cacert gw-ca.pem: registers, works a job
#   wrong     --cacert other-ca.pem, first start: refused with the TLS error and the --cacert hint,
#             exits 1, registers nothing
#   system    no --cacert (the system's CAs): the same
#   plain     http:// to the HTTPS gateway: refused, with the hint to use https://
#   keyed     a registered node's key and the wrong CA: keeps retrying (the CA file may be
#             fixed), logs the refusal once, never reaches the gateway; with the right CA it
#             connects
# No worker has a switch to skip the check (there is none to test). The node keys appear in no log.
set -euo pipefail
IT_WORKER_API=1
IT_WORKER_API_TLS=1
. "$(dirname "$0")/lib.sh"
it_begin worker-api-tls

# first_start NAME ARGS...: a first start (registration) with ARGS, waited for (at most 15 s)
first_start() {
    local name=$1
    shift
    MODELMINE_OPERATOR_PASSWORD=$IT_OP_PW "$MM_WORKER" --name "$name" --state-file "$IT_TMP/$name.json" \
        --operator-email "$IT_OP_EMAIL" --heartbeat-interval 1 "$@" </dev/null >>"$IT_TMP/$name.log" 2>&1 &
    IT_WORKERS[$name]=$!
    wait_worker "$name" 15
}
nodes_named() { adm "SELECT count(*) FROM modelmine.nodes WHERE name = '$1'"; }

step "a gateway on HTTPS, its CA, and another CA"
user=$(signup user@example.com "user password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
gw_start
it_make_ca "$IT_TMP" other
check "the gateway serves https" "${IT_GW_URL%%:*}" https

step "good: --cacert with the gateway's CA"
start_worker good --slots 1
node_good=$(node_of good)
check_true "good logs the CA it checks the gateway against" grep -q \
    "working through the gateway $IT_GW_URL (HTTPS; its certificate is checked against the CA in $IT_GW_CACERT)" \
    "$IT_TMP/good.log"
job=$(as_user "$user" "SELECT modelmine.submit_job('over https', '{\"trainer\":\"noop\"}', NULL, 10)")
check_within 20 "good completes a job" \
    "SELECT status = 'COMPLETED' AND node_id = $node_good FROM modelmine.jobs WHERE id = $job"

tls_refusal="SSL certificate problem: unable to get local issuer certificate; hint: the gateway's certificate is not signed by a CA this node trusts: pass the CA that signed it with --cacert FILE (MODELMINE_CACERT)"
step "wrong: a first start with a CA that did not sign the gateway's certificate"
first_start wrong --api "$IT_GW_URL" --cacert "$IT_TMP/other-ca.pem"
check "wrong exits 1" "$IT_RC" 1
check_true "wrong says why, and what to do" grep -qF \
    "cannot reach the gateway $IT_GW_URL to register the node: $tls_refusal" "$IT_TMP/wrong.log"
check "no node registered for wrong" "$(nodes_named wrong)" 0
check_false "no state file for wrong" test -e "$IT_TMP/wrong.json"

step "system: a first start trusting the system's CAs only"
first_start system --api "$IT_GW_URL"
check "system exits 1" "$IT_RC" 1
check_true "system says why" grep -qF "$tls_refusal" "$IT_TMP/system.log"
check "no node registered for system" "$(nodes_named system)" 0

step "plain: http:// to the HTTPS gateway"
first_start plain --api "http://127.0.0.1:$IT_GW_PORT"
check "plain exits 1" "$IT_RC" 1
check_true "plain is told to use https://" grep -qF \
    "Empty reply from server; hint: if the gateway serves HTTPS (--tls-cert), use https:// in --api" "$IT_TMP/plain.log"
check "no node registered for plain" "$(nodes_named plain)" 0

step "keyed: a registered node's key, the wrong CA"
read -r node_k key_k <<<"$(register_node "$op" keyed '{"trainers":["noop"]}')"
seen=$(adm "SELECT last_seen FROM modelmine.nodes WHERE id = $node_k")
"$MM_WORKER" --api "$IT_GW_URL" --cacert "$IT_TMP/other-ca.pem" --node-key "$key_k" --name keyed \
    --state-file "$IT_TMP/keyed.json" --heartbeat-interval 1 </dev/null >>"$IT_TMP/keyed.log" 2>&1 &
IT_WORKERS[keyed]=$!
sleep 5
check_true "keyed is still running (retrying: the CA file may be fixed)" proc_alive "$(worker_pid keyed)"
check "keyed logged the refusal once in 5 s" \
    "$(grep -cF "cannot connect to the gateway $IT_GW_URL: $tls_refusal" "$IT_TMP/keyed.log" || true)" 1
check "keyed never reached the gateway (no heartbeat since its registration)" \
    "$(adm "SELECT last_seen = '$seen' FROM modelmine.nodes WHERE id = $node_k")" t
stop_worker keyed TERM
check "keyed exits 0 on SIGTERM" "$IT_RC" 0
"$MM_WORKER" --api "$IT_GW_URL" --cacert "$IT_GW_CACERT" --node-key "$key_k" --name keyed \
    --state-file "$IT_TMP/keyed.json" --heartbeat-interval 1 </dev/null >>"$IT_TMP/keyed.log" 2>&1 &
IT_WORKERS[keyed]=$!
check_within 10 "with the gateway's CA keyed connects and heartbeats" \
    "SELECT last_seen > '$seen' FROM modelmine.nodes WHERE id = $node_k"
stop_worker keyed TERM
check "keyed exits 0 on SIGTERM" "$IT_RC" 0

step "usage and secrets"
"$MM_WORKER" --api "$IT_GW_URL" --cacert "$IT_TMP/missing.pem" --node-key "$key_k" >"$IT_TMP/usage.out" 2>&1 && rc=0 || rc=$?
check "--cacert naming no file: usage error (exit 2)" "$rc" 2
check_true "... that names the file" grep -q "missing.pem: No such file or directory" "$IT_TMP/usage.out"
key_good=$(sed -n 's/.*"node_key": *"\([^"]*\)".*/\1/p' "$IT_TMP/good.json")
check "no node key appears in any log" "$(cat "$IT_TMP"/*.log | grep -cF -e "$key_good" -e "$key_k" || true)" 0
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
stop_worker good TERM
check "good exits 0 on SIGTERM" "$IT_RC" 0
it_end
