#!/usr/bin/env bash
# worker-ssrf: a job cannot make a node download from the node's own loopback (or any other non-public
# address), and its error text quotes nothing from there; the operator can allow networks.
#
# An HTTP server on 127.0.0.1 serves secret.txt and a small CSV. Worker A (default policy) gets a job
# whose dataset is http://127.0.0.1:PORT/secret.txt with a label that is not a column (which used to
# make the error quote the file's first line) and one via http://localhost:PORT/: both FAIL naming the
# refused address and --allow-net, quote nothing of the file, and the server sees no request at all.
# Worker B, with MODELMINE_ALLOW_NET=127.0.0.0/8, trains on the CSV from the same server. A bad
# --allow-net stops the worker at start with exit 2 and a message saying what is wrong.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-ssrf

step "an HTTP server on 127.0.0.1 with a secret and a CSV"
mkdir "$IT_TMP/www"
echo "SECRET-ON-LOOPBACK first line" >"$IT_TMP/www/secret.txt"
{
    echo "x1,x2,label"
    for i in $(seq 1 40); do echo "$i,$(( i % 3 )),$([[ $i -le 20 ]] && echo low || echo high)"; done
} >"$IT_TMP/www/data.csv"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$IT_TMP/www" "$port" >"$IT_TMP/http.log" 2>&1 &
IT_OTHER_PIDS+=($!)
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
check_true "the server answers on 127.0.0.1:$port" curl --noproxy '*' -fsS -o /dev/null "http://127.0.0.1:$port/data.csv"
requests() { grep -c "\"GET /${1:-}" "$IT_TMP/http.log" || true; }
before=$(requests)

user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
submit() { as_user "$user" "SELECT modelmine.submit_job('$1', '$2', NULL, 10)"; }

step "worker A, default policy: loopback datasets are refused"
secret=$(submit secret "{\"trainer\":\"logreg\",\"dataset\":{\"url\":\"http://127.0.0.1:$port/secret.txt\",\"label\":\"nope\"}}")
byname=$(submit by-name "{\"trainer\":\"logreg\",\"dataset\":{\"url\":\"http://localhost:$port/data.csv\",\"label\":\"label\"}}")
start_worker A --slots 2
wait_until 20 "both jobs finished" "SELECT count(*) = 2 FROM modelmine.jobs WHERE id IN ($secret, $byname) AND status <> 'PENDING' AND status <> 'RUNNING'"
check "the secret job FAILED, naming the address, the reason and --allow-net" \
    "$(adm "SELECT status || ': ' || error FROM modelmine.jobs WHERE id = $secret")" \
    "FAILED: cannot fetch http://127.0.0.1:$port/secret.txt: dataset address 127.0.0.1 is not allowed (loopback); a node operator can allow it with --allow-net"
check_sql "the localhost job FAILED the same way (the name is checked after DNS)" \
    "SELECT status = 'FAILED' AND error LIKE 'cannot fetch http://localhost:$port/data.csv: dataset address % is not allowed (loopback); %'
       FROM modelmine.jobs WHERE id = $byname"
check "no job error quotes the file" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE error LIKE '%SECRET%'")" 0
check "the server saw no request from A" "$(( $(requests) - before ))" 0
check "A's node was paid nothing" "$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $(node_of A)")" 0
stop_worker A TERM
check "A exits 0 on SIGTERM" "$IT_RC" 0

step "worker B, MODELMINE_ALLOW_NET=127.0.0.0/8: the CSV on loopback trains"
good=$(submit csv "{\"trainer\":\"logreg\",\"epochs\":5,\"dataset\":{\"url\":\"http://127.0.0.1:$port/data.csv\",\"label\":\"label\"}}")
MODELMINE_ALLOW_NET="127.0.0.0/8, ::1" start_worker B --slots 1
check_within 20 "job $good COMPLETED by B" \
    "SELECT status = 'COMPLETED' AND node_id = $(node_of B) FROM modelmine.jobs WHERE id = $good"
check "its classes come from the CSV" "$(adm "SELECT result->>'classes' FROM modelmine.jobs WHERE id = $good")" '["high", "low"]'
check "the server saw B's request" "$(requests data.csv)" 2  # the curl above, and B
check_true "B logged the networks it allows" grep -q "dataset downloads may also reach 127.0.0.0/8, ::1/128 (--allow-net)" "$IT_TMP/B.log"
stop_worker B TERM
check "B exits 0 on SIGTERM" "$IT_RC" 0

step "a bad --allow-net stops the worker at start"
rc=0
out=$("$MM_WORKER" --db "$(worker_url)" --node-key x --allow-net 10.1.2.3/8 2>&1) || rc=$?
check "exit 2" "$rc" 2
check "the message says what is wrong" "$(head -n 1 <<<"$out")" \
    'modelmine-worker: --allow-net: "10.1.2.3/8" has bits set past its /8 prefix; did you mean 10.0.0.0/8?'
rc=0
out=$(MODELMINE_ALLOW_NET="10.0.0.0/8 banana" "$MM_WORKER" --db "$(worker_url)" --node-key x 2>&1) || rc=$?
check "MODELMINE_ALLOW_NET with a bad entry: exit 2" "$rc" 2
check_true "... naming the entry and the variable" grep -q '"banana" is not a network.*MODELMINE_ALLOW_NET' <<<"${out//$'\n'/ }"
it_end
