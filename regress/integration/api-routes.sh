#!/usr/bin/env bash
# api-routes: every REST route of modelmine-api over real HTTP (curl), a whole job's life, every kind of
# bad input, the long-poll claim, CORS, the /auth rate limit and the connection timeout.
#
# Each response is checked for its status, the shape of its JSON body (jq) and the headers a client
# relies on (Location on 201, Content-Disposition on the result download, Content-Range on listings and
# /rpc, WWW-Authenticate on 401, Allow on 405, Retry-After on 429). Every refused request is sent by
# `refused`, which also checks that nothing was partially applied: jobs, journal, balances, nodes, users
# and sessions are exactly as before, and check_invariants() is empty. At the end every route of the
# table in api/src/routes.c must have answered 2xx at least once (a new route without a test fails
# here), and /openapi.json must describe every one of them.
#
# Gateways: "main" (--auth-rate 1000/60, so this test's own logins are not limited) and "strict"
# (--auth-rate 3/60 --timeout 2) for the rate limit and the slow-client checks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api-lib.sh"
it_begin api-routes

RESP_B=$IT_TMP/resp.body
RESP_H=$IT_TMP/resp.headers
SEEN=$IT_TMP/seen
: >"$SEEN"
S=""        # status of the last response
T_TOTAL=""  # its duration in seconds

# http METHOD PATH TOKEN BODY [CURL-ARGS...]: one request to $API (TOKEN and BODY may be ""). Sets S and
# T_TOTAL; the body is in $RESP_B, the headers in $RESP_H. The route it hit is recorded for the
# coverage check at the end (numbers in the path stand for :id).
http() {
    local method=$1 path=$2 tok=$3 body=$4 out pattern
    shift 4
    local args=(--noproxy '*' -s -m 30 -o "$RESP_B" -D "$RESP_H" -w '%{http_code} %{time_total}')
    if [[ $method == HEAD ]]; then args+=(--head); else args+=(-X "$method"); fi
    [[ -n $tok ]] && args+=(-H "Authorization: Bearer $tok")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    : >"$RESP_B"
    out=$(curl "${args[@]}" "$@" "$API$path") || true
    S=${out%% *} T_TOTAL=${out#* }
    [[ -n $S ]] || S=000
    pattern=$(sed -E 's/\?.*//; s#/[0-9]+(/|$)#/:id\1#g' <<<"$path")
    [[ $method == HEAD ]] && method=GET
    echo "$method $pattern $S" >>"$SEEN"
}

# The last response's header NAME (case-insensitive; the last one if repeated), without the CR.
hdr() { awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$1")" 'BEGIN { FS = ": " } tolower($1) == n { sub(/^[^:]*: /, ""); v = $0 } END { sub(/\r$/, "", v); print v }' "$RESP_H"; }
# jq -r over the last body.
jb() { jq -r "$1" "$RESP_B"; }
body_excerpt() { head -c 300 "$RESP_B" | tr '\n' ' '; }

# expect DESC STATUS [JQ-TEST]: one check of the last response: the status, and the jq test (run with
# -e over the body) when given.
expect() {
    local desc=$1 want=$2 test=${3:-}
    if [[ $S != "$want" ]]; then
        fail "$desc: status $S, want $want; body: $(body_excerpt)"
    elif [[ -n $test ]] && ! jq -e "$test" "$RESP_B" >/dev/null 2>&1; then
        fail "$desc: the body does not satisfy $test; body: $(body_excerpt)"
    else
        pass "$desc"
    fi
}
# expect_hdr DESC NAME REGEX: one check that the last response's header NAME matches REGEX (bash =~).
expect_hdr() {
    local got
    got=$(hdr "$2")
    if [[ $got =~ $3 ]]; then pass "$1"; else fail "$1: $2 is '$got', want /$3/"; fi
}

# Everything a request could change: jobs (and their status), journal, balances, nodes, users, sessions;
# and the number of violated invariants.
state() {
    adm "SELECT concat_ws(' | ',
        (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM modelmine.jobs),
        (SELECT count(*) FROM modelmine.journal),
        (SELECT string_agg(id || '=' || balance, ',' ORDER BY id) FROM modelmine.account_balances),
        (SELECT string_agg(id || ':' || status || ':' || maintenance, ',' ORDER BY id) FROM modelmine.nodes),
        (SELECT count(*) FROM modelmine.users),
        (SELECT count(*) || '/' || count(revoked_at) FROM modelmine.sessions),
        (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM modelmine.withdrawals),
        (SELECT string_agg(period || ':' || paid, ',' ORDER BY period) FROM modelmine.fee_distributions),
        (SELECT string_agg(id || ':' || grant_locked, ',' ORDER BY id) FROM modelmine.users),
        (SELECT 'invariant violations: ' || count(*) FROM modelmine.check_invariants()))"
}

# refused DESC STATUS JQ-TEST METHOD PATH TOKEN BODY [CURL-ARGS...]: a request that must be refused with
# STATUS (and a body passing JQ-TEST) and change nothing; one check.
refused() {
    local desc=$1 want=$2 test=$3 before after
    shift 3
    before=$(state)
    http "$@"
    after=$(state)
    if [[ $S != "$want" ]]; then
        fail "$desc: status $S, want $want; body: $(body_excerpt)"
    elif [[ -n $test ]] && ! jq -e "$test" "$RESP_B" >/dev/null 2>&1; then
        fail "$desc: the body does not satisfy $test; body: $(body_excerpt)"
    elif [[ $before != "$after" ]]; then
        fail "$desc: answered $S, but the database changed: before [$before], after [$after]"
    elif [[ $after != *"invariant violations: 0" ]]; then
        fail "$desc: answered $S, but check_invariants() is not empty: ${after##*| }"
    else
        pass "$desc (nothing changed)"
    fi
}

# PostgREST's error body: exactly code, details, hint, message.
ERR='(keys == ["code","details","hint","message"])'
err() { echo "$ERR and .code == \"$1\""; }
balance_of() { adm "SELECT balance FROM modelmine.account_balances WHERE user_id = (SELECT id FROM modelmine.users WHERE email = '$1')"; }
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

step "the gateway binary: --help and usage errors"
rc=0
out=$("$API_BIN" --help 2>&1) || rc=$?
check "--help exits 0" "$rc" 0
check_true "--help prints the usage and the options" grep -q -- '^Usage: modelmine-api --db URL' <<<"$out"
rc=0
out=$("$API_BIN" --db x --bogus 2>&1) || rc=$?
check "an unknown option exits 2" "$rc" 2
check_true "... saying which option and where to look" grep -q -- "unrecognized option '--bogus'" <<<"$out"
rc=0
out=$("$API_BIN" --db x --pool lots 2>&1) || rc=$?
check "--pool lots exits 2" "$rc" 2
check_true "... naming the option and what it wants" grep -q -- 'invalid --pool: lots (want a whole number from 1 to 500)' <<<"$out"
rc=0
out=$(env -u MODELMINE_DB "$API_BIN" --listen 127.0.0.1:1 2>&1) || rc=$?
check "no --db (and no MODELMINE_DB) exits 2" "$rc" 2
check_true "... saying --db is required" grep -q -- '--db is required' <<<"$out"

step "gateway"
api_start main --auth-rate 1000/60
MAIN=$API

step "/health and /openapi.json"
http GET /health "" ""
expect "GET /health: 200 with status, database, extension_version, pool and listening" 200 \
    ".status == \"ok\" and .database == \"reachable\" and .extension_version == \"$(adm "SELECT extversion FROM pg_extension WHERE extname = 'modelmine'")\" and (.pool | .size == 10 and .open >= 1) and .listening == true"
expect_hdr "GET /health: Content-Type application/json" Content-Type '^application/json'
http GET /openapi.json "" ""
expect "GET /openapi.json: valid JSON, openapi 3.0.3, a path per /rpc function" 200 \
    '.openapi == "3.0.3" and (.paths | has("/rpc/submit_job") and has("/rpc/login") and has("/health"))'
cp "$RESP_B" "$IT_TMP/openapi.json"

step "accounts: signup, login, me, logout"
http POST /auth/signup "" '{"email": "alice@example.com", "password": "alice password"}'
expect "POST /auth/signup: 201 {user_id}" 201 '.user_id | type == "number"'
alice_id=$(jb .user_id)
check "... the user exists with that id" "$(adm "SELECT email FROM modelmine.users WHERE id = $alice_id")" alice@example.com
http POST /auth/signup "" '{"email": "bob@example.com", "password": "bob password"}'
expect "POST /auth/signup bob: 201" 201
bob_id=$(jb .user_id)
refused "POST /auth/signup with a taken email: 409 23505" 409 "$(err 23505)" \
    POST /auth/signup "" '{"email": "Alice@Example.com", "password": "another password"}'
refused "POST /auth/signup with a short password: 400 22023" 400 "$(err 22023) and (.message | test(\"password\"))" \
    POST /auth/signup "" '{"email": "short@example.com", "password": "short"}'
refused "POST /auth/signup without a password: 400 naming it" 400 "$ERR and (.message | test(\"password\"))" \
    POST /auth/signup "" '{"email": "nopw@example.com"}'
http POST /auth/login "" '{"email": "alice@example.com", "password": "alice password"}'
expect "POST /auth/login: 200 {token}, a JWT" 200 '.token | type == "string" and (split(".") | length == 3)'
alice=$(jb .token)
http POST /auth/login "" '{"email": "bob@example.com", "password": "bob password"}'
bob=$(jb .token)
refused "POST /auth/login with a wrong password: 403 28P01" 403 "$(err 28P01)" \
    POST /auth/login "" '{"email": "alice@example.com", "password": "wrong password"}'
http GET /auth/me "$alice" ""
expect "GET /auth/me: 200 {user_id, email, role, session_id, session_expires_at}" 200 \
    ".user_id == $alice_id and .email == \"alice@example.com\" and .role == \"user\" and (.session_id | type == \"string\")"
http GET /auth/me "" "" -H "Authorization: bearer $alice"
expect "GET /auth/me with a lower-case 'bearer': 200" 200 ".user_id == $alice_id"
http POST /auth/login "" '{"email": "alice@example.com", "password": "alice password"}'
second=$(jb .token)
http POST /auth/logout "$second" ""
expect "POST /auth/logout: 204, no body" 204
check "... the body is empty" "$(wc -c <"$RESP_B")" 0
check_sql "... the session is revoked" "SELECT count(*) = 1 FROM modelmine.sessions WHERE user_id = $alice_id AND revoked_at IS NOT NULL"
refused "GET /auth/me with the logged-out token: 401 PGRST301" 401 "$(err PGRST301)" GET /auth/me "$second" ""
expect_hdr "... with WWW-Authenticate: Bearer error=\"invalid_token\"" WWW-Authenticate '^Bearer error="invalid_token"'
http GET /auth/me "$alice" ""
expect "... alice's other session still works" 200 ".user_id == $alice_id"

step "admin: carol"
http POST /auth/signup "" '{"email": "carol@example.com", "password": "carol password"}'
adm "SELECT modelmine.set_user_role('carol@example.com', 'admin')" >/dev/null
http POST /auth/login "" '{"email": "carol@example.com", "password": "carol password"}'
carol=$(jb .token)
http GET /auth/me "$carol" ""
expect "carol, made admin with set_user_role and logged in again, is admin" 200 '.role == "admin"'

step "a job's life: submit"
http POST /jobs "$alice" '{"title": "typo", "config": {"trainer": "noop", "epochs": 3}, "stake": 50}'
expect "POST /jobs with a config no worker would run: 400, 22023 naming the key, details, hint" 400 \
    '.code == "22023" and (.message | test("^invalid config: epochs does not apply to trainer .noop.")) and (.details | test("nothing was staked")) and (.hint | test("config_schema"))'
http POST /jobs "$alice" '{"title": "life", "config": {"trainer": "noop"}, "description": "the whole life", "stake": 50, "priority": 1}'
expect "POST /jobs: 201 {id}" 201 '.id | type == "number"'
job=$(jb .id)
expect_hdr "... Location: /jobs/<the id>" Location "^/jobs/$job\$"
check "... the job is in the database: alice's, PENDING, stake 50, priority 1" \
    "$(adm "SELECT user_id || ' ' || status || ' ' || stake || ' ' || priority || ' ' || title FROM modelmine.jobs WHERE id = $job")" \
    "$alice_id PENDING 50 1 life"
check "... alice's balance is 1000 - 50" "$(balance_of alice@example.com)" 950
http GET "/jobs/$job" "$alice" ""
expect "... GET of the Location: 200, that job" 200 ".id == $job"
check "... the config is stored as sent" "$(adm "SELECT config FROM modelmine.jobs WHERE id = $job")" '{"trainer": "noop"}'
http GET /jobs "$alice" ""
expect "GET /jobs: 200, an array of job summaries with the job" 200 \
    "type == \"array\" and length == 1 and .[0].id == $job and (.[0] | has(\"title\") and has(\"status\") and has(\"stake\"))"
expect_hdr "... Content-Range 0-0/*" Content-Range '^0-0/\*$'
http GET "/jobs?status=PENDING&sort=stake&order=asc&limit=5&offset=0" "$alice" ""
expect "GET /jobs?status=PENDING&sort=stake&order=asc&limit=5&offset=0: 200 with the job" 200 ".[0].id == $job"
http GET "/jobs?status=COMPLETED" "$alice" ""
expect "GET /jobs?status=COMPLETED: 200 []" 200 '. == []'
expect_hdr "... Content-Range */*" Content-Range '^\*/\*$'
http GET "/jobs/$job" "$alice" ""
expect "GET /jobs/:id: 200, the job in full" 200 \
    ".id == $job and .owner_email == \"alice@example.com\" and .config.trainer == \"noop\" and .description == \"the whole life\" and .status == \"PENDING\""
refused "GET /jobs/:id of alice's job as bob: 404 P0002" 404 "$(err P0002)" GET "/jobs/$job" "$bob" ""
refused "GET /jobs/:id/result of a PENDING job: 409 55000" 409 "$(err 55000)" GET "/jobs/$job/result" "$alice" ""

step "a job's life: a node"
http POST /nodes/register "$alice" '{"name": "rig-1", "capabilities": {"trainers": ["noop"], "slots": 2}}'
expect "POST /nodes/register: 201 {node_id, node_key}" 201 '(.node_id | type == "number") and (.node_key | startswith("mmn_"))'
node=$(jb .node_id)
key=$(jb .node_key)
expect_hdr "... Location: /nodes/<node_id>" Location "^/nodes/$node\$"
check "... the node is alice's" "$(adm "SELECT operator_id FROM modelmine.nodes WHERE id = $node")" "$alice_id"
http GET "/nodes/$node" "" ""
expect "... GET of the Location: 200, that node" 200 ".id == $node and .name == \"rig-1\""
refused "POST /nodes/heartbeat with a user token: 403 42501" 403 "$(err 42501)" \
    POST /nodes/heartbeat "$alice" '{"cpu_load": 0.5, "memory_used_mb": 1, "memory_total_mb": 2}'
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.25, "memory_used_mb": 512, "memory_total_mb": 4096}'
expect "POST /nodes/heartbeat (node key): 200 {jobs: []}" 200 '.jobs == []'
check "... the node's load is stored" "$(adm "SELECT cpu_load || ' ' || memory_used_mb || ' ' || memory_total_mb FROM modelmine.nodes WHERE id = $node")" "0.25 512 4096"
http POST /nodes/capabilities "$key" '{"capabilities": {"trainers": ["noop"], "slots": 3}}'
expect "POST /nodes/capabilities: 204" 204
check "... slots is now 3" "$(adm "SELECT slots FROM modelmine.nodes WHERE id = $node")" 3
http POST /nodes/claim "$key" '{"max_jobs": 1, "lease_seconds": 60}'
expect "POST /nodes/claim: 200, the job with its config and lease" 200 \
    "length == 1 and .[0].job_id == $job and .[0].config.trainer == \"noop\" and .[0].attempt == 1 and (.[0].lease_expires_at | type == \"string\")"
expect_hdr "... Content-Range 0-0/*" Content-Range '^0-0/\*$'
check "... the job is RUNNING on the node" "$(adm "SELECT status || ' ' || node_id FROM modelmine.jobs WHERE id = $job")" "RUNNING $node"
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.5, "memory_used_mb": 512, "memory_total_mb": 4096, "status": "BUSY"}'
expect "POST /nodes/heartbeat: the node holds the job" 200 ".jobs == [$job]"
refused "POST /nodes/jobs/:id/progress with alice's user token: 403 42501" 403 "$(err 42501)" \
    POST "/nodes/jobs/$job/progress" "$alice" '{"progress": 10}'
http POST "/nodes/jobs/$job/progress" "$key" '{"progress": 50, "metrics": {"loss": 0.5}}'
expect "POST /nodes/jobs/:id/progress: 200 {lease_expires_at}" 200 '.lease_expires_at | type == "string"'
check "... progress 50 and the metrics are stored" "$(adm "SELECT progress || ' ' || (metrics->>'loss') FROM modelmine.jobs WHERE id = $job")" "50 0.5"
http POST "/nodes/jobs/$job/complete" "$key" '{"result": {"accuracy": 0.9, "loss": 0.25, "epochs": 3}}'
expect "POST /nodes/jobs/:id/complete: 200 {reward: floor(50 * 80 / 100)}" 200 '.reward == 40'
check "... the job is COMPLETED" "$(adm "SELECT status FROM modelmine.jobs WHERE id = $job")" COMPLETED
check "... the result is stored as sent (0.9 stays 0.9)" "$(adm "SELECT result->>'accuracy' FROM modelmine.jobs WHERE id = $job")" 0.9
http GET "/jobs/$job/result" "$alice" ""
expect "GET /jobs/:id/result: 200, the stored result" 200 '.epochs == 3 and .loss == 0.25'
expect_hdr "... Content-Disposition: attachment; filename=\"job-<id>-result.json\"" Content-Disposition \
    "^attachment; filename=\"job-$job-result.json\"\$"
expect_hdr "... Content-Type application/json" Content-Type '^application/json'
refused "GET /jobs/:id/result of alice's job as bob: 404 P0002" 404 "$(err P0002)" GET "/jobs/$job/result" "$bob" ""

step "a job's life: ledger and network"
http GET "/ledger?from=1&limit=10" "" ""
expect "GET /ledger?from=1&limit=10: 200, a block for the job (stake 50, reward 40, fee 10)" 200 \
    "type == \"array\" and (map(select(.job_id == $job)) | length == 1 and .[0].stake == 50 and .[0].reward == 40 and .[0].fee == 10 and .[0].node_id == $node)"
expect_hdr "... Content-Range 0-0/*" Content-Range '^0-0/\*$'
http GET /ledger/digest "" ""
expect "GET /ledger/digest: 200 {height >= 1, hash (64 hex), time, pending}" 200 \
    '.height >= 1 and (.hash | test("^[0-9a-f]{64}$")) and has("time") and has("pending")'
digest=$(jq -c . "$RESP_B")
http GET /ledger/verify "" ""
expect "GET /ledger/verify: 200 {ok: true}" 200 '.ok == true and .first_bad_height == null and .blocks_checked >= 2'
http GET "/ledger/verify?digest=$(urlenc "$digest")" "" ""
expect "GET /ledger/verify?digest=<the digest>: ok" 200 '.ok == true'
http GET /jobs/config-schema "" ""
expect "GET /jobs/config-schema: 200 for anyone, version 2, hidden_layers for mlp only" 200 \
    '.version == 2 and .keys.hidden_layers.trainers == ["mlp"] and (.dataset_keys | has("synthetic"))'
http GET /network "" ""
expect "GET /network: 200, counts the completed job and the node's pay" 200 \
    '.jobs_completed == 1 and .paid_to_nodes == 40 and .network_fees == 10 and .nodes_total == 1 and .jobs_pending == 0'
http GET "/network/timeline?months=3" "" ""
expect "GET /network/timeline?months=3: 200, this month has 1 COMPLETED" 200 \
    'type == "array" and (map(select(.status == "COMPLETED") | .jobs) | add) == 1'
http GET "/network/tokens?limit=5" "" ""
expect "GET /network/tokens?limit=5: 200, rig-1 earned 40" 200 \
    "map(select(.node_id == $node)) | length == 1 and .[0].tokens_earned == 40 and .[0].name == \"rig-1\""

step "nodes"
http GET /nodes/mine "$alice" ""
expect "GET /nodes/mine: 200, rig-1 with its earnings" 200 \
    "length == 1 and .[0].id == $node and .[0].balance == 40 and .[0].jobs_completed == 1"
http GET /nodes/mine "$bob" ""
expect "GET /nodes/mine as bob: 200 []" 200 '. == []'
http GET "/nodes?limit=10&offset=0" "" ""
expect "GET /nodes?limit=10&offset=0 (no token): 200, rig-1" 200 "length == 1 and .[0].id == $node and .[0].name == \"rig-1\""
http GET "/nodes/$node?window_hours=24" "" ""
expect "GET /nodes/:id?window_hours=24: 200, its figures" 200 ".id == $node and .jobs_completed == 1 and .tokens_earned == 40"
refused "GET /nodes/:id of no node: 404 P0002" 404 "$(err P0002)" GET /nodes/99999 "" ""
refused "GET /nodes/:id?window_hours=abc: 400 naming window_hours" 400 "$ERR and .message == \"invalid window_hours\"" \
    GET "/nodes/$node?window_hours=abc" "" ""
refused "POST /nodes/:id/withdraw of alice's node as bob: 404 P0002" 404 "$(err P0002)" \
    POST "/nodes/$node/withdraw" "$bob" '{"amount": 5}'
http POST "/nodes/$node/withdraw" "$alice" '{"amount": 10}'
expect "POST /nodes/:id/withdraw {amount: 10}: 200 {withdrawn: 10}" 200 '.withdrawn == 10'
check "... alice's balance is 950 + 10" "$(balance_of alice@example.com)" 960
check "... the node keeps 30" "$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $node")" 30
http POST "/nodes/$node/maintenance" "$alice" '{"maintenance": true}'
expect "POST /nodes/:id/maintenance {maintenance: true}: 200 {status: MAINTENANCE}" 200 '.status == "MAINTENANCE"'
http POST "/nodes/$node/maintenance" "$alice" '{"maintenance": false}'
expect "POST /nodes/:id/maintenance {maintenance: false}: 200, no longer MAINTENANCE" 200 '.status != "MAINTENANCE" and (.status | type == "string")'

step "fail, release, cancel"
http POST /jobs "$alice" '{"title": "to fail", "config": {"trainer": "noop"}, "stake": 20}'
job_fail=$(jb .id)
http POST /jobs "$alice" '{"title": "to release", "config": {"trainer": "noop"}, "stake": 30}'
job_rel=$(jb .id)
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'
http POST /nodes/claim "$key" '{"max_jobs": 2}'
expect "POST /nodes/claim {max_jobs: 2}: both jobs" 200 "map(.job_id) | sort == ([$job_fail, $job_rel] | sort)"
http POST "/nodes/jobs/$job_fail/fail" "$key" '{"error": "out of memory"}'
expect "POST /nodes/jobs/:id/fail: 200 {refunded: 20}" 200 '.refunded == 20'
check "... the job FAILED with the error" "$(adm "SELECT status || ': ' || error FROM modelmine.jobs WHERE id = $job_fail")" "FAILED: out of memory"
refused "POST /nodes/jobs/:id/complete of the FAILED job: 409 55000" 409 "$(err 55000)" \
    POST "/nodes/jobs/$job_fail/complete" "$key" '{"result": {"accuracy": 0.5, "loss": 0.7, "epochs": 1}}'
http POST "/nodes/jobs/$job_rel/release" "$key" ""
expect "POST /nodes/jobs/:id/release (no body): 204" 204
check "... the job is PENDING again" "$(adm "SELECT status || ' ' || coalesce(node_id::text, '-') FROM modelmine.jobs WHERE id = $job_rel")" "PENDING -"
http POST "/jobs/$job_rel/cancel" "$alice" ""
expect "POST /jobs/:id/cancel: 200 {refunded: 30}" 200 '.refunded == 30'
check "... the job is CANCELED" "$(adm "SELECT status FROM modelmine.jobs WHERE id = $job_rel")" CANCELED
check "... alice has 960 back (both stakes refunded)" "$(balance_of alice@example.com)" 960
refused "POST /jobs/:id/cancel again: 409 55000" 409 "$(err 55000)" POST "/jobs/$job_rel/cancel" "$alice" ""
refused "POST /jobs/:id/cancel of alice's job as bob: 404 P0002" 404 "$(err P0002)" POST "/jobs/$job_rel/cancel" "$bob" ""

step "money"
http GET /balance "$alice" ""
expect "GET /balance: 200 {balance: 960}" 200 '.balance == 960'
http GET /dashboard "$alice" ""
expect "GET /dashboard: 200, balance and job counts" 200 \
    '.balance == 960 and .jobs.total == 3 and .jobs.COMPLETED == 1 and .jobs.FAILED == 1 and .jobs.CANCELED == 1 and (.recent_jobs | length == 3)'
# alice's signup grant is locked but for the 10 node earnings she withdrew: 990 of her 960 stay
refused "POST /transfers from a locked signup grant: 402 MM001 naming it" 402 \
    "$(err MM001) and .message == \"insufficient transferable balance\" and (.details | test(\"990\"))" \
    POST /transfers "$alice" '{"to_email": "bob@example.com", "amount": 25}'
refused "POST /admin/users/verify as a user: 403 42501" 403 "$(err 42501)" \
    POST /admin/users/verify "$alice" '{"email": "alice@example.com"}'
refused "POST /admin/users/verify of nobody: 404 P0002" 404 "$(err P0002)" \
    POST /admin/users/verify "$carol" '{"email": "nobody@example.com"}'
http POST /admin/users/verify "$carol" '{"email": "alice@example.com"}'
expect "POST /admin/users/verify {email}: 200 {unlocked: 990}" 200 '.unlocked == 990'
http POST /transfers "$alice" '{"to_email": "bob@example.com", "amount": 25}'
expect "POST /transfers: 201 {transaction_id}" 201 '.transaction_id | type == "number"'
tx=$(jb .transaction_id)
check "... alice 960 - 25, bob 1000 + 25" "$(balance_of alice@example.com) $(balance_of bob@example.com)" "935 1025"
refused "POST /transfers of more than the balance: 402 MM001" 402 "$(err MM001)" \
    POST /transfers "$alice" '{"to_email": "bob@example.com", "amount": 1000000}'
refused "POST /transfers to nobody: 404 P0002" 404 "$ERR" \
    POST /transfers "$alice" '{"to_email": "nobody@example.com", "amount": 1}'
http GET "/transactions?limit=5" "$alice" ""
expect "GET /transactions?limit=5: 200, newest first: the transfer to bob" 200 \
    "length == 5 and .[0].id == $tx and .[0].amount == -25 and .[0].reason == \"transfer\" and .[0].counterparty == \"bob@example.com\""
expect_hdr "... Content-Range 0-4/*" Content-Range '^0-4/\*$'
http GET "/nodes/$node/transactions?limit=5" "$alice" ""
expect "GET /nodes/:id/transactions: 200, the reward in and the 10 withdrawn, newest first" 200 \
    'map(.amount) == [-10, 40] and .[1].reason == "reward" and .[0].reason == "withdrawal"'
refused "GET /nodes/:id/transactions of alice's node as bob: 404 P0002" 404 "$(err P0002)" \
    GET "/nodes/$node/transactions" "$bob" ""

step "withdrawals"
# bob has 1000 locked (his grant) and the 25 alice sent him
refused "POST /withdrawals of the locked grant: 402 MM001" 402 "$(err MM001)" \
    POST /withdrawals "$bob" '{"amount": 26, "destination": "IBAN DE00 1234"}'
refused "POST /withdrawals without a destination: 400 naming it" 400 "$(err 22023) and (.message | test(\"destination\"))" \
    POST /withdrawals "$bob" '{"amount": 5}'
refused "POST /withdrawals {amount: 0}: 400 22023" 400 "$(err 22023)" \
    POST /withdrawals "$bob" '{"amount": 0, "destination": "IBAN DE00 1234"}'
http POST /withdrawals "$bob" '{"amount": 20, "destination": "IBAN DE00 1234"}'
expect "POST /withdrawals: 201 {withdrawal_id}" 201 '.withdrawal_id | type == "number"'
w1=$(jb .withdrawal_id)
http POST /withdrawals "$bob" '{"amount": 5, "destination": "IBAN DE00 1234"}'
w2=$(jb .withdrawal_id)
check "... bob 1025 - 25 held" "$(balance_of bob@example.com)" 1000
http GET /withdrawals "$bob" ""
expect "GET /withdrawals: 200, bob's two, newest first, PENDING" 200 \
    "map(.id) == [$w2, $w1] and map(.status) == [\"PENDING\", \"PENDING\"] and .[1].amount == 20"
http GET /withdrawals "$alice" ""
expect "GET /withdrawals as alice: 200 []" 200 '. == []'
refused "GET /admin/withdrawals as a user: 403 42501" 403 "$(err 42501)" GET /admin/withdrawals "$bob" ""
refused "POST /admin/withdrawals/:id/approve as a user: 403 42501" 403 "$(err 42501)" \
    POST "/admin/withdrawals/$w1/approve" "$bob" '{"payout_reference": "self-service"}'
http GET "/admin/withdrawals?status=PENDING&limit=10" "$carol" ""
expect "GET /admin/withdrawals?status=PENDING (admin): 200, oldest first, with the email" 200 \
    "map(.id) == [$w1, $w2] and .[0].email == \"bob@example.com\""
refused "GET /admin/withdrawals?status=DONE: 400 22023" 400 "$(err 22023)" GET "/admin/withdrawals?status=DONE" "$carol" ""
refused "POST /admin/withdrawals/:id/approve without a payout_reference: 400 naming it" 400 \
    "$(err 22023) and (.message | test(\"payout_reference\"))" POST "/admin/withdrawals/$w1/approve" "$carol" '{}'
http POST "/admin/withdrawals/$w1/approve" "$carol" '{"payout_reference": "SEPA 0042"}'
expect "POST /admin/withdrawals/:id/approve: 200 {amount: 20}" 200 '.amount == 20'
http POST "/admin/withdrawals/$w2/reject" "$carol" '{"reason": "closed account"}'
expect "POST /admin/withdrawals/:id/reject: 200 {amount: 5}" 200 '.amount == 5'
refused "POST /admin/withdrawals/:id/reject of an approved one: 409 55000" 409 "$(err 55000)" \
    POST "/admin/withdrawals/$w1/reject" "$carol" '{"reason": "too late"}'
refused "POST /admin/withdrawals/:id/approve of no withdrawal: 404 P0002" 404 "$(err P0002)" \
    POST /admin/withdrawals/99999/approve "$carol" '{"payout_reference": "x"}'
check "... bob has the 5 back; held 0, withdrawn 20" \
    "$(balance_of bob@example.com) $(adm "SELECT string_agg(balance::text, ' ' ORDER BY id) FROM modelmine.account_balances WHERE kind IN ('held', 'withdrawn')")" \
    "1005 0 20"
http GET /withdrawals "$bob" ""
expect "GET /withdrawals: 200, one APPROVED with its reference, one REJECTED with its reason" 200 \
    '.[1].status == "APPROVED" and .[1].payout_reference == "SEPA 0042" and .[0].status == "REJECTED" and .[0].reason == "closed account"'
http GET "/transactions?limit=3" "$bob" ""
expect "GET /transactions: 200, the holds and the release" 200 \
    'map(.reason) == ["withdrawal_release", "withdrawal_hold", "withdrawal_hold"] and map(.amount) == [5, -5, -20]'

step "network fee"
last_month=$(adm "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', 'YYYY-MM-DD')")
this_month=$(adm "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD')")
refused "POST /admin/fees/distribute as a user: 403 42501" 403 "$(err 42501)" \
    POST /admin/fees/distribute "$alice" "{\"period\": \"$last_month\"}"
refused "POST /admin/fees/distribute of this month: 409 55000" 409 "$(err 55000)" \
    POST /admin/fees/distribute "$carol" "{\"period\": \"$this_month\"}"
refused "POST /admin/fees/distribute of a mid-month day: 400 22023" 400 "$(err 22023)" \
    POST /admin/fees/distribute "$carol" '{"period": "2026-10-15"}'
# this test's jobs settled this month: last month's pool is empty, and is distributed once
http POST /admin/fees/distribute "$carol" "{\"period\": \"$last_month\"}"
expect "POST /admin/fees/distribute {period}: 200, the month's figures" 200 \
    ".period == \"$last_month\" and .pool == 0 and .paid == 0 and .paid_now == true and .distributed_by == \"carol@example.com\""
http POST /admin/fees/distribute "$carol" "{\"period\": \"$last_month\"}"
expect "POST /admin/fees/distribute again: 200, the same figures, paid_now false" 200 \
    ".period == \"$last_month\" and .paid == 0 and .paid_now == false"
http GET /admin/fees "$carol" ""
expect "GET /admin/fees: 200, that month" 200 "length == 1 and .[0].period == \"$last_month\""

step "admin routes: admin 200, user 403, no token 401"
http GET /admin/users "$carol" ""
expect "GET /admin/users (admin): 200, every user, no password hash" 200 \
    'length == 3 and (map(keys) | add | unique | map(select(test("hash|password"))) == [])'
http GET "/admin/jobs?status=COMPLETED&limit=10" "$carol" ""
expect "GET /admin/jobs?status=COMPLETED&limit=10 (admin): 200, the completed job" 200 "length == 1 and .[0].id == $job"
http GET /admin/nodes "$carol" ""
expect "GET /admin/nodes (admin): 200, rig-1 with its operator" 200 \
    "type == \"array\" and length == 1 and .[0].id == $node and .[0].operator_email == \"alice@example.com\""
http GET /admin/network "$carol" ""
expect "GET /admin/network (admin): 200, statistics and no invariant violations" 200 \
    '.stats.jobs_completed == 1 and .invariant_violations == []'
http GET "/admin/ledger?from=0&limit=10" "$carol" ""
expect "GET /admin/ledger?from=0&limit=10 (admin): 200, the job's block with its title and node" 200 \
    "map(select(.job_id == $job)) | length == 1 and .[0].job_title == \"life\" and .[0].node_name == \"rig-1\""
http GET "/jobs?user_id=$alice_id" "$carol" ""
expect "GET /jobs?user_id=<alice> as admin: 200, alice's 3 jobs" 200 'length == 3'
http GET "/jobs?user_id=$bob_id" "$carol" ""
expect "GET /jobs?user_id=<bob> as admin: 200 [] (bob has no jobs)" 200 '. == []'
refused "GET /jobs?user_id=<alice> as bob: 403 42501" 403 "$(err 42501)" GET "/jobs?user_id=$alice_id" "$bob" ""
for p in users jobs nodes network ledger; do
    refused "GET /admin/$p as a user: 403 42501" 403 "$(err 42501)" GET "/admin/$p" "$alice" ""
    refused "GET /admin/$p without a token: 401" 401 "$ERR" GET "/admin/$p" "" ""
    expect_hdr "... with WWW-Authenticate: Bearer" WWW-Authenticate '^Bearer'
done

step "/rpc (the PostgREST contract)"
http POST /rpc/my_jobs "$alice" '{}'
expect "POST /rpc/my_jobs: 200, alice's 3 jobs" 200 'length == 3'
expect_hdr "... Content-Range 0-2/*" Content-Range '^0-2/\*$'
http POST "/rpc/my_jobs?limit=1" "$alice" '{}' -H 'Prefer: count=exact'
expect "POST /rpc/my_jobs?limit=1 with Prefer: count=exact: 206" 206 'length == 1'
expect_hdr "... Content-Range 0-0/3" Content-Range '^0-0/3$'
expect_hdr "... Preference-Applied: count=exact" Preference-Applied '^count=exact$'
http GET "/rpc/my_jobs?status=COMPLETED&select=id,title" "$alice" ""
expect "GET /rpc/my_jobs?status=COMPLETED&select=id,title: 200, just those columns" 200 \
    "length == 1 and .[0] == {\"id\": $job, \"title\": \"life\"}"
http GET /rpc/balance "$alice" ""
expect "GET /rpc/balance: 200, a bare number" 200 '. == 935'
expect_hdr "... Content-Range 0-0/*" Content-Range '^0-0/\*$'
refused "POST /rpc/no_such_function: 404 PGRST202" 404 "$(err PGRST202)" POST /rpc/no_such_function "$alice" '{}'
refused "GET /rpc/submit_job (VOLATILE): 405 with Allow: POST" 405 "$ERR" GET "/rpc/submit_job?title=x&config=%7B%7D" "$alice" ""
expect_hdr "... Allow: POST" Allow '^POST$'
refused "POST /rpc/my_jobs?offset=99 with count=exact: 416" 416 "$ERR" POST "/rpc/my_jobs?offset=99" "$alice" '{}' -H 'Prefer: count=exact'

step "bad input: every refusal leaves the database as it was"
python3 -c 'import sys; sys.stdout.write("{\"title\": \"" + "a" * (1024 * 1024) + "\", \"config\": {}}")' >"$IT_TMP/big.json"
python3 -c 'import sys; sys.stdout.write("{\"title\": \"" + "a" * (1024 * 1024 - 100) + "\", \"config\": {}}")' >"$IT_TMP/under.json"
refused "POST /jobs with a body over 1 MB (Content-Length): 413" 413 "$(err PGRST413)" \
    POST /jobs "$alice" "" -H 'Content-Type: application/json' --data-binary "@$IT_TMP/big.json"
refused "POST /jobs with a body over 1 MB (chunked): 413" 413 "$(err PGRST413)" \
    POST /jobs "$alice" "" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "@$IT_TMP/big.json"
refused "POST /jobs with a body just under 1 MB is read: the extension refuses the title (400, not 413)" 400 \
    "$(err 22023) and (.message | test(\"title\"))" \
    POST /jobs "$alice" "" -H 'Content-Type: application/json' --data-binary "@$IT_TMP/under.json"
refused "POST /jobs with malformed JSON: 400 PGRST102" 400 "$(err PGRST102)" POST /jobs "$alice" '{"title": "x", '
refused "POST /jobs with a JSON array: 400 PGRST102" 400 "$(err PGRST102)" POST /jobs "$alice" '[1, 2]'
refused "POST /jobs with Content-Type: text/plain: 415" 415 "$(err PGRST107)" \
    POST /jobs "$alice" "" -H 'Content-Type: text/plain' --data-binary '{"title": "x", "config": {}}'
refused "GET /no/such/route: 404" 404 "$ERR" GET /no/such/route "$alice" ""
refused "POST /jobs/:id/explode: 404" 404 "$ERR" POST "/jobs/$job/explode" "$alice" ""
refused "GET /jobs/abc (not an id): 404" 404 "$ERR" GET /jobs/abc "$alice" ""
refused "GET /jobs/<a number beyond bigint>: 400 naming id" 400 "$ERR and .message == \"invalid id\"" \
    GET /jobs/99999999999999999999 "$alice" ""
refused "DELETE /jobs: 405" 405 "$ERR" DELETE /jobs "$alice" ""
expect_hdr "... with Allow: GET, POST (and HEAD)" Allow '^(POST, GET|GET, POST)(, HEAD)?$'
refused "PUT /balance: 405" 405 "$ERR" PUT /balance "$alice" ""
expect_hdr "... with Allow: GET, HEAD" Allow '^GET(, HEAD)?$'
refused "GET /jobs/:id/cancel: 405 with Allow: POST" 405 "$ERR" GET "/jobs/$job/cancel" "$alice" ""
expect_hdr "... Allow: POST" Allow '^POST$'
refused "POST /jobs with an unknown field: 400 naming it" 400 "$(err PGRST100) and (.message | test(\"colour\"))" \
    POST /jobs "$alice" '{"title": "x", "config": {"trainer": "noop"}, "colour": "red"}'
refused "GET /jobs with an unknown query parameter: 400 naming it" 400 "$(err PGRST100) and (.message | test(\"colour\"))" \
    GET "/jobs?colour=red" "$alice" ""
refused "GET /jobs?limit=abc: 400 naming limit" 400 "$ERR and .message == \"invalid limit\"" GET "/jobs?limit=abc" "$alice" ""
refused "GET /jobs?order=sideways: 400 naming order" 400 "$ERR and .message == \"invalid order\"" GET "/jobs?order=sideways" "$alice" ""
refused "GET /jobs?status=LOST: 400 22023" 400 "$(err 22023)" GET "/jobs?status=LOST" "$alice" ""
refused "POST /jobs {stake: \"lots\"}: 400 naming stake" 400 "$ERR and .message == \"invalid stake\"" \
    POST /jobs "$alice" '{"title": "x", "config": {"trainer": "noop"}, "stake": "lots"}'
refused "POST /jobs {title: {..}}: 400 naming title" 400 "$ERR and .message == \"invalid title\"" \
    POST /jobs "$alice" '{"title": {"a": 1}, "config": {"trainer": "noop"}}'
refused "POST /jobs without a title: 400 (the extension names it)" 400 "$ERR and (.message | test(\"title\"))" \
    POST /jobs "$alice" '{"config": {"trainer": "noop"}}'
refused "POST /jobs with a stake above the balance: 402 MM001" 402 "$(err MM001)" \
    POST /jobs "$alice" '{"title": "too dear", "config": {"trainer": "noop"}, "stake": 5000}'
refused "POST /jobs without a token: 401" 401 "$ERR" POST /jobs "" '{"title": "x", "config": {"trainer": "noop"}}'
expect_hdr "... with WWW-Authenticate: Bearer" WWW-Authenticate '^Bearer'
refused "GET /jobs with a malformed token: 401 PGRST301" 401 "$(err PGRST301)" GET /jobs "not.a.token" ""
expect_hdr "... with WWW-Authenticate: Bearer error=\"invalid_token\"" WWW-Authenticate '^Bearer error="invalid_token"'
forged="${alice%.*}.$(printf 'x%.0s' {1..43})"
refused "GET /jobs with a token whose signature is wrong: 401 PGRST301" 401 "$(err PGRST301)" GET /jobs "$forged" ""
expect_hdr "... with WWW-Authenticate: Bearer error=\"invalid_token\"" WWW-Authenticate '^Bearer error="invalid_token"'
refused "POST /nodes/claim with a made-up node key: 401" 401 "$ERR" POST /nodes/claim "mmn_${node}_$(printf '0%.0s' {1..64})" ""
expect_hdr "... with WWW-Authenticate" WWW-Authenticate '^Bearer'

step "long-poll claims"
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'
check "no job is PENDING" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'PENDING'")" 0
http POST "/nodes/claim?wait=5" "$key" ""
expect "POST /nodes/claim?wait=5 with nothing pending: 200 []" 200 '. == []'
check_true "... after about 5 s (took $T_TOTAL s)" python3 -c "import sys; sys.exit(not 4.5 <= $T_TOTAL <= 7)"
curl --noproxy '*' -s -m 30 -o "$IT_TMP/lp.body" -w '%{http_code} %{time_total}' -X POST \
    -H "Authorization: Bearer $key" "$API/nodes/claim?wait=5" >"$IT_TMP/lp.out" &
lp=$!
sleep 1  # the scenario: the job arrives 1 s into the wait
http POST /jobs "$alice" '{"title": "wake up", "config": {"trainer": "noop"}, "stake": 5}'
woke=$(jb .id)
wait "$lp" || true
read -r lp_status lp_time <"$IT_TMP/lp.out" || true  # curl's -w output has no newline
echo "POST /nodes/claim $lp_status" >>"$SEEN"
check "POST /nodes/claim?wait=5, a job submitted 1 s in: 200 with that job" \
    "$lp_status $(jq -c 'map(.job_id)' "$IT_TMP/lp.body")" "200 [$woke]"
check_true "... well before 5 s: under 3 s (took $lp_time s)" python3 -c "import sys; sys.exit(not $lp_time < 3)"
refused "POST /nodes/claim?wait=abc: 400 naming wait" 400 "$(err PGRST100) and .message == \"invalid wait\"" \
    POST "/nodes/claim?wait=abc" "$key" ""
refused "POST /nodes/claim?wait=100000 (over --max-wait): 400" 400 "$(err PGRST100)" POST "/nodes/claim?wait=100000" "$key" ""
refused "POST /nodes/claim?lease=9 (unknown parameter): 400 naming it" 400 "$(err PGRST100) and (.message | test(\"lease\"))" \
    POST "/nodes/claim?lease=9" "$key" ""
http POST "/nodes/jobs/$woke/complete" "$key" '{"result": {"accuracy": 1, "loss": 0, "epochs": 1}}'
expect "... and the node completes it" 200 '.reward == 4'
# A node whose HTTP client gives up on a long-poll (timeout, restart, network) must not be leased work that
# arrives afterwards: nobody would receive it, and the job would sit RUNNING until its lease expires.
claims() { grep -c ' POST /nodes/claim ' "$IT_TMP/api-main.log" || true; }
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'  # online
claims_before=$(claims)
rc=0
curl --noproxy '*' -s -m 1 -o /dev/null -X POST -H "Authorization: Bearer $key" "$API/nodes/claim?wait=8" || rc=$?
check "a long-poll (wait=8) whose client gives up after 1 s: curl times out (28)" "$rc" 28
http POST /jobs "$alice" '{"title": "after the client left", "config": {"trainer": "noop"}, "stake": 5}'
orphan=$(jb .id)
deadline=$((SECONDS + 12))
while (( $(claims) == claims_before && SECONDS < deadline )); do sleep 0.2; done
check "... the abandoned claim has ended (the access log has its line)" "$(( $(claims) > claims_before ))" 1
check "... the job that came after the client left is still PENDING, leased to nobody" \
    "$(adm "SELECT status || ' ' || coalesce(node_id::text, '-') FROM modelmine.jobs WHERE id = $orphan")" "PENDING -"
# if the abandoned claim did lease it, end that lease now so the rest of the test can go on
adm "UPDATE modelmine.job_replicas SET lease_expires_at = now() - interval '1 second' WHERE job_id = $orphan AND status = 'RUNNING'" >/dev/null
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'
http POST /nodes/claim "$key" ""
expect "... a live claim gets it" 200 "map(.job_id) == [$orphan]"
http POST "/nodes/jobs/$orphan/complete" "$key" '{"result": {"accuracy": 1, "loss": 0, "epochs": 1}}'
# One object asked for (Accept: application/vnd.pgrst.object+json), two rows come: 406, and a claim that
# would have leased both is rolled back, as PostgREST does: nothing was leased.
http POST /jobs "$alice" '{"title": "one of two", "config": {"trainer": "noop"}, "stake": 5}'
two_a=$(jb .id)
http POST /jobs "$alice" '{"title": "two of two", "config": {"trainer": "noop"}, "stake": 5}'
two_b=$(jb .id)
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'
refused "POST /rpc/claim_jobs for 2 with Accept: vnd.pgrst.object+json: 406, both jobs left PENDING" 406 \
    "$(err PGRST116) and (.details | test(\"2 rows\"))" POST /rpc/claim_jobs "$key" '{"max_jobs": 2, "lease_seconds": 30}' \
    -H 'Accept: application/vnd.pgrst.object+json'
http POST "/jobs/$two_a/cancel" "$alice" ""
http POST "/jobs/$two_b/cancel" "$alice" ""
refused "GET /jobs?limit=1&limit=2 (a parameter twice): 400 naming it" 400 \
    "$(err PGRST100) and (.message | test(\"limit\"))" GET "/jobs?limit=1&limit=2" "$alice" ""

step "JSON the gateway passes through: numbers as sent, numbers beyond 64 bits"
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'
http POST /jobs "$alice" '{"title": "exact", "config": {"trainer": "noop"}, "stake": 5}'
exact=$(jb .id)
http POST /nodes/claim "$key" '{"max_jobs": 1}'
expect "the node claims it" 200 ".[0].job_id == $exact"
as_node "$key" "SELECT modelmine.complete_job($exact, '{\"accuracy\": 0.9, \"loss\": 0.1, \"epochs\": 2, \"seed\": 12345678901234567890, \"model\": {\"w\": [0.1, 0.2, 0.3]}}')" >/dev/null
adm "SELECT result::text FROM modelmine.jobs WHERE id = $exact" >"$IT_TMP/stored.json"
http GET "/jobs/$exact/result" "$alice" ""
expect "GET /jobs/:id/result of a result with 0.1 and a 20-digit integer: 200" 200
check "... the download holds the stored result exactly (numbers compared as decimals)" "$(python3 - "$RESP_B" "$IT_TMP/stored.json" <<'PY'
import json, sys
from decimal import Decimal
def load(p):
    with open(p) as f:
        return json.load(f, parse_float=Decimal)
got, want = load(sys.argv[1]), load(sys.argv[2])
print("same" if got == want else "download %s, stored %s" % (json.dumps(got, default=str), json.dumps(want, default=str)))
PY
)" same
# a runner's config is the runner's to read (the workers' validator, whose JSON reader stops at 64-bit
# integers, checks only built-in trainers' configs)
http POST /jobs "$alice" '{"title": "big seed", "config": {"runner": "exotic", "seed": 12345678901234567890, "lr": 0.1}, "stake": 1}'
expect "POST /jobs with a 20-digit integer in a runner's config (valid JSON; jsonb takes it): 201" 201 '.id | type == "number"'
if [[ $S == 201 ]]; then
    big=$(jb .id)
    check "... stored exactly" "$(adm "SELECT config->>'seed' FROM modelmine.jobs WHERE id = $big")" 12345678901234567890
    check "... 0.1 stays 0.1" "$(adm "SELECT config->>'lr' FROM modelmine.jobs WHERE id = $big")" 0.1
    http POST "/jobs/$big/cancel" "$alice" ""
fi

step "CORS"
http OPTIONS /jobs "" "" -H 'Origin: https://app.example.org' -H 'Access-Control-Request-Method: POST' \
    -H 'Access-Control-Request-Headers: authorization, content-type, prefer'
check_true "OPTIONS /jobs preflight with Origin: 2xx (got $S)" test "${S:0:1}" = 2
expect_hdr "... Access-Control-Allow-Origin echoes the origin" Access-Control-Allow-Origin '^https://app\.example\.org$'
expect_hdr "... Access-Control-Allow-Methods has GET and POST" Access-Control-Allow-Methods 'GET.*POST|POST.*GET'
expect_hdr "... Access-Control-Allow-Headers has the requested headers" Access-Control-Allow-Headers '[Cc]ontent-[Tt]ype.*[Pp]refer'
expect_hdr "... Access-Control-Allow-Credentials: true" Access-Control-Allow-Credentials '^true$'
expect_hdr "... Access-Control-Max-Age: 86400" Access-Control-Max-Age '^86400$'
http GET /network "" "" -H 'Origin: https://app.example.org'
expect "GET /network with Origin: 200" 200
expect_hdr "... Access-Control-Allow-Origin echoed" Access-Control-Allow-Origin '^https://app\.example\.org$'
expect_hdr "... Access-Control-Expose-Headers has Content-Range" Access-Control-Expose-Headers 'Content-Range'
http GET /jobs "" "" -H 'Origin: https://app.example.org'
expect "GET /jobs without a token, with Origin: 401" 401
expect_hdr "... the error is readable cross-origin (Access-Control-Allow-Origin)" Access-Control-Allow-Origin '^https://app\.example\.org$'
http GET /network "" ""
check "GET /network without Origin: no Access-Control-Allow-Origin" "$(hdr Access-Control-Allow-Origin)" ""
http HEAD /network "" ""
expect "HEAD /network: 200" 200
expect_hdr "... Content-Type application/json" Content-Type '^application/json'

step "a second gateway: --auth-rate 3/60 --timeout 2"
api_start strict --auth-rate 3/60 --timeout 2
STRICT=$API
API=$STRICT
for i in 1 2 3; do
    http POST /auth/login "" '{"email": "alice@example.com", "password": "alice password"}'
    expect "login $i of 3: 200" 200 '.token | type == "string"'
done
refused "login 4 of 3: 429" 429 "$(err PGRST429)" POST /auth/login "" '{"email": "alice@example.com", "password": "alice password"}'
expect_hdr "... Retry-After: seconds until the window ends (1..60)" Retry-After '^([1-9]|[1-5][0-9]|60)$'
refused "POST /rpc/login shares the limit: 429" 429 "$(err PGRST429)" POST /rpc/login "" '{"email": "alice@example.com", "password": "alice password"}'
refused "POST /auth/signup shares the limit: 429" 429 "$(err PGRST429)" POST /auth/signup "" '{"email": "dave@example.com", "password": "dave password"}'
http GET /network "" ""
expect "other routes are not limited: GET /network 200" 200
http GET /auth/me "$alice" ""
expect "reads under /auth are not limited: GET /auth/me 200" 200 '.email == "alice@example.com"'

# slow clients: python3 sockets against the strict gateway (--timeout 2)
slow_client() {
    python3 - "${API_PORT[strict]}" "$1" <<'PY'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
def closed_within(limit, feed=None):
    """Seconds until the server closes the connection (or answers), or None if open after limit."""
    s.settimeout(0.25)
    while time.time() - t0 < limit:
        if feed:
            try:
                feed()
            except socket.timeout:
                pass                     # the server is not reading just now
            except OSError:
                return time.time() - t0, b""
        try:
            d = s.recv(4096)
            return time.time() - t0, d
        except socket.timeout:
            continue
        except OSError:
            return time.time() - t0, b""
    return None, b""
if mode == "stall":
    s.sendall(b"GET /heal")              # a partial request line, then nothing
    took, data = closed_within(10)
    print("open" if took is None else "closed %.1f %d" % (took, len(data)))
elif mode == "dribble":
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    last = [time.time()]
    def feed():                          # one more header byte every 0.5 s, never the blank line
        if time.time() - last[0] >= 0.5:
            s.sendall(b"X")
            last[0] = time.time()
    took, data = closed_within(6, feed)
    print("open" if took is None else "closed %.1f %d" % (took, len(data)))
elif mode == "stream":
    s.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    s.settimeout(5)
    try:
        for _ in range(256):             # up to 16 MB, 16 times the limit, never the last chunk
            s.sendall(frame)
            sent += len(chunk)
    except OSError:                      # reset or closed by the server (or a 5 s stall)
        print("closed %.1f %d" % (time.time() - t0, sent))
        sys.exit(0)
    print("open - %d" % sent)
PY
}
slow_client stall >"$IT_TMP/stall.out" &
stall=$!
sleep 0.5  # let the stalled connection open first
http GET /health "" ""
expect "while a connection stalls mid request line, /health answers 200" 200 '.status == "ok"'
check_true "... at once (took $T_TOTAL s)" python3 -c "import sys; sys.exit(not $T_TOTAL < 1)"
wait "$stall" || true
read -r st_state st_took _ <"$IT_TMP/stall.out" || true
check "a connection that sends 'GET /heal' and stalls is closed by the server" "$st_state" closed
check_true "... after about --timeout 2 s (took ${st_took:-?} s)" python3 -c "import sys; sys.exit(not 1.5 <= ${st_took:-99} <= 5)"
read -r dr_state _ < <(slow_client dribble) || true
check "a connection that dribbles a header byte every 0.5 s (never finishing its headers) is closed within 6 s" \
    "$dr_state" closed
read -r sm_state _ sm_sent < <(slow_client stream) || true
check "a chunked body that never ends is cut off (413 or closed) before 16 MB, 16 times the limit, are read (${sm_sent:-?} bytes were accepted)" \
    "${sm_state:-}" closed
API=$MAIN

step "notifications: preferences, webhooks, the list with dead letters, the verification link"
http GET /notifications/preferences "$alice" ""
expect "GET /notifications/preferences: 200, nothing chosen yet" 200 '.events == [] and .email == true and .webhooks == []'
http POST /notifications/preferences "$alice" '{"events": ["job_canceled", "job_failed"], "balance_threshold": 100}'
expect "POST /notifications/preferences: 200 with what is now set" 200 \
    '.events == ["job_canceled", "job_failed"] and .email == true and .balance_threshold == 100'
refused "POST /notifications/preferences with an unknown event: 400 22023 naming it" 400 \
    "$(err 22023) and (.message | test(\"job_exploded\"))" POST /notifications/preferences "$alice" '{"events": ["job_exploded"]}'
http POST /notifications/webhooks "$alice" '{"url": "https://hooks.example.com/modelmine"}'
expect "POST /notifications/webhooks: 201 {id, url, secret}, the secret shown once" 201 \
    '(.id | type == "number") and .url == "https://hooks.example.com/modelmine" and (.secret | test("^whsec_[0-9a-f]{64}$"))'
hook=$(jb .id)
http GET /notifications/preferences "$alice" ""
expect "... listed without its secret" 200 ".webhooks[0].id == $hook and (tostring | test(\"secret\") | not)"
refused "POST /notifications/webhooks with an ftp URL: 400 22023" 400 "$(err 22023)" \
    POST /notifications/webhooks "$alice" '{"url": "ftp://hooks.example.com/x"}'
http POST /jobs "$alice" '{"title": "to cancel", "config": {"trainer": "noop"}, "stake": 5}'
http POST "/jobs/$(jb .id)/cancel" "$alice" ""
expect "a canceled job (refunded in full)..." 200
http GET /notifications "$alice" ""
expect "GET /notifications: ... is announced by email and to the webhook, one event id" 200 \
    'length == 2 and ([.[].channel] | sort) == ["email", "webhook"] and (map(.event_id) | unique | length) == 1
     and all(.[]; .event == "job_canceled" and .state == "PENDING")'
adm "UPDATE modelmine.outbox SET status = 'DEAD', last_error = 'HTTP status 410 from test'
      WHERE user_id = $alice_id AND channel = 'webhook'" >/dev/null
http GET "/notifications?status=DEAD&limit=5" "$alice" ""
expect "GET /notifications?status=DEAD: the dead letter with its reason" 200 \
    'length == 1 and .[0].state == "DEAD" and .[0].last_error == "HTTP status 410 from test"'
http POST "/notifications/webhooks/$hook/remove" "$alice" ""
expect "POST /notifications/webhooks/:id/remove: 200 {dead_lettered}" 200 '.dead_lettered | type == "number"'
refused "... again: 404 P0002" 404 "$(err P0002)" POST "/notifications/webhooks/$hook/remove" "$alice" ""
adm "UPDATE modelmine.settings SET value = 1 WHERE name = 'email_verification'" >/dev/null
http POST /auth/signup "" '{"email": "dave@example.com", "password": "dave password"}'
dave_id=$(jb .user_id)
adm "UPDATE modelmine.settings SET value = 0 WHERE name = 'email_verification'" >/dev/null
vtoken=$(adm "SELECT payload ->> 'token' FROM modelmine.outbox WHERE user_id = $dave_id AND event = 'email_verification'")
refused "GET /auth/verify with a wrong token: 400 22023" 400 "$(err 22023)" GET "/auth/verify?token=0123abcd" "" ""
http GET "/auth/verify?token=$vtoken" "" ""
expect "GET /auth/verify?token= (no login: the link in the email): 200 {user_id}, though a GET, it writes" 200 \
    ".user_id == $dave_id"
check_sql "... dave is verified and his grant unlocked" \
    "SELECT verified_at IS NOT NULL AND grant_locked = 0 FROM modelmine.users WHERE id = $dave_id"
refused "... the same link again: 400 22023" 400 "$(err 22023)" GET "/auth/verify?token=$vtoken" "" ""

step "several completions in one call (POST /nodes/complete, complete_jobs)"
http POST /jobs "$alice" '{"title": "batch a", "config": {"trainer": "noop"}, "stake": 10}'
job_a=$(jb .id)
http POST /jobs "$alice" '{"title": "batch b", "config": {"trainer": "noop"}, "stake": 20}'
job_b=$(jb .id)
http POST /nodes/heartbeat "$key" '{"cpu_load": 0.1, "memory_used_mb": 512, "memory_total_mb": 4096}'
http POST /nodes/claim "$key" '{"max_jobs": 2}'
expect "POST /nodes/claim {max_jobs: 2}: both jobs" 200 "map(.job_id) | sort == ([$job_a, $job_b] | sort)"
http POST /nodes/complete "$key" "{\"completions\": [{\"job_id\": $job_a, \"result\": {\"loss\": 0, \"epochs\": 1}},
    {\"job_id\": $job_b, \"result\": {\"accuracy\": 2, \"loss\": 0, \"epochs\": 1}}, {\"job_id\": $job_fail, \"result\": {\"loss\": 0, \"epochs\": 1}}]}"
expect "POST /nodes/complete: 200, one answer per job in order: paid, invalid result, already FAILED" 200 \
    "length == 3 and .[0].job_id == $job_a and .[0].reward == 8 and .[0].sqlstate == null and .[1].sqlstate == \"22023\" and (.[1].error | test(\"accuracy\")) and .[2].sqlstate == \"55000\""
check "... a is COMPLETED, b still RUNNING" "$(adm "SELECT string_agg(status::text, ' ' ORDER BY id) FROM modelmine.jobs WHERE id IN ($job_a, $job_b)")" "COMPLETED RUNNING"
refused "POST /nodes/complete with a job named twice: 400 22023, nothing settled" 400 "$(err 22023)" \
    POST /nodes/complete "$key" "{\"completions\": [{\"job_id\": $job_b, \"result\": {\"loss\": 0, \"epochs\": 1}}, {\"job_id\": $job_b}]}"
http POST "/nodes/jobs/$job_b/complete" "$key" '{"result": {"loss": 0, "epochs": 1}}'
expect "... b completes on its own afterwards: 200 {reward: 16}" 200 '.reward == 16'

step "submitting in batches: POST /jobs/batch (erin, a user of her own)"
http POST /auth/signup "" '{"email": "erin@example.com", "password": "erin password"}'
http POST /auth/login "" '{"email": "erin@example.com", "password": "erin password"}'
erin=$(jb .token)
http POST /jobs/batch "$erin" '{"jobs": [{"title": "sweep 1", "config": {"trainer": "noop"}, "stake": 10}, {"title": "sweep 2", "config": {"trainer": "noop"}, "stake": 20, "priority": 3}]}'
expect "POST /jobs/batch: 200, the two ids in order" 200 'length == 2 and .[0] < .[1]'
sweep=($(jb '.[]'))
check "... both are erin's, PENDING, staked; her balance is 1000 - 30" \
    "$(adm "SELECT string_agg(title || ' ' || status || ' ' || stake || ' ' || priority, ', ' ORDER BY j.id) FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id WHERE u.email = 'erin@example.com'") $(balance_of erin@example.com)" \
    "sweep 1 PENDING 10 0, sweep 2 PENDING 20 3 970"
refused "POST /jobs/batch with a bad second job: 400 22023 naming jobs[1], nothing staked" 400 \
    "$(err 22023) and (.message == \"jobs[1]: invalid stake\")" \
    POST /jobs/batch "$erin" '{"jobs": [{"title": "ok", "config": {"trainer": "noop"}, "stake": 5}, {"title": "bad", "config": {"trainer": "noop"}, "stake": 0}]}'
refused "POST /jobs/batch over erin's balance: 402 MM001, nothing staked" 402 "$(err MM001)" \
    POST /jobs/batch "$erin" '{"jobs": [{"title": "a", "config": {"trainer": "noop"}, "stake": 600}, {"title": "b", "config": {"trainer": "noop"}, "stake": 600}]}'
refused "POST /jobs/batch signed out: 401" 401 "$(err 42501)" \
    POST /jobs/batch "" '{"jobs": [{"title": "a", "config": {"trainer": "noop"}}]}'
# out of the way of the work protocol's steps below: canceled and refunded
http POST "/jobs/${sweep[0]}/cancel" "$erin" ""
http POST "/jobs/${sweep[1]}/cancel" "$erin" ""
check "... erin cancels both: refunded" "$(balance_of erin@example.com)" 1000

step "scheduling (issue 19): requirements, deadlines, why a job waits, shares, expiry"
refused "POST /jobs needing 9999999 MB: 422 MM003 naming the requirement, nothing staked" 422 \
    "$(err MM003) and (.message | test(\"requirements.memory_mb\"))" \
    POST /jobs "$alice" '{"title": "huge", "config": {"trainer": "noop"}, "requirements": {"memory_mb": 9999999}}'
refused "POST /jobs with start_by in the past: 400 22023 naming start_by" 400 "$(err 22023) and .message == \"invalid start_by\"" \
    POST /jobs "$alice" '{"title": "late", "config": {"trainer": "noop"}, "start_by": "2000-01-01T00:00:00Z"}'
http POST /jobs "$alice" '{"title": "timed", "config": {"trainer": "noop"}, "stake": 5, "start_by": "2999-01-01T00:00:00Z",
    "finish_by": "2999-01-02T00:00:00Z", "requirements": {"cores": 0}}'
expect "POST /jobs with start_by, finish_by and requirements: 201" 201 '.id | type == "number"'
timed=$(jb .id)
check "... the deadlines are stored" "$(adm "SELECT start_by < finish_by FROM modelmine.jobs WHERE id = $timed")" t
http GET "/jobs/$timed/queue" "$alice" ""
expect "GET /jobs/:id/queue: 200, PENDING with a position and a reason" 200 \
    ".job_id == $timed and .status == \"PENDING\" and (.queue_position | type == \"number\") and (.reason | type == \"string\")"
refused "GET /jobs/:id/queue of alice's job as bob: 404 P0002" 404 "$(err P0002)" GET "/jobs/$timed/queue" "$bob" ""
http POST "/jobs/$timed/cancel" "$alice" ""
expect "... canceled: refunded 5" 200 '.refunded == 5'
http POST /admin/users/share "$carol" '{"email": "alice@example.com", "share": 2}'
expect "POST /admin/users/share (admin): 204" 204
check "... alice's share is 2" "$(adm "SELECT share FROM modelmine.fair_share WHERE user_id = $alice_id")" 2
refused "POST /admin/users/share as a user: 403 42501" 403 "$(err 42501)" \
    POST /admin/users/share "$alice" '{"email": "alice@example.com", "share": 100}'
http POST /admin/jobs/expire "$carol" '{}'
expect "POST /admin/jobs/expire (admin): 200 {expired: 0}" 200 '.expired == 0'

step "every route answered 2xx, and /openapi.json describes it"
openapi_has() { jq -e --arg p "$1" --arg m "$2" '.paths[$p][$m] | type == "object"' "$IT_TMP/openapi.json" >/dev/null; }
while read -r method path; do
    if grep -q "^$method $path 2[0-9][0-9]\$" "$SEEN"; then
        pass "route $method $path answered 2xx"
    else
        fail "route $method $path never answered 2xx (answers: $(grep "^$method $path " "$SEEN" | awk '{ print $3 }' | sort | uniq -c | tr -s ' \n' ' ' || true))"
    fi
    oapath=${path//:id/\{id\}}
    lower=$(tr '[:upper:]' '[:lower:]' <<<"$method")
    check_true "/openapi.json has $lower $oapath" openapi_has "$oapath" "$lower"
done < <(sed -nE 's/^[[:space:]]*\{"(GET|POST|PUT|PATCH|DELETE)", "([^"]+)".*/\1 \2/p' "$MM_REPO/api/src/routes.c")
check "routes.c has the 58 routes this test knows" "$(grep -cE '^[[:space:]]*\{"(GET|POST|PUT|PATCH|DELETE)", "/' "$MM_REPO/api/src/routes.c")" 58

step "the books"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
check "alice: 1000 - 50 + 10 (withdrawn) - 25 (to bob) - 5 - 5 - 5 (three more jobs) - big seed (refunded) - 10 - 20 (batch a, b)" \
    "$(balance_of alice@example.com)" 890
check "the access log names a role or '-' for every request, never '(null)' (lines listed)" \
    "$(grep -h '(null)' "$IT_TMP"/api-*.log | head -n 3 | tr '\n' ';' || true)" ""
api_stop strict TERM
check "the strict gateway exits 0 on SIGTERM" "$API_RC" 0
api_stop main TERM
check "the main gateway exits 0 on SIGTERM" "$API_RC" 0
it_end
