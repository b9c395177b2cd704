#!/usr/bin/env bash
# api-postgrest: the real @supabase/postgrest-js client (tests/js/postgrest.test.mjs, run with node) against
# modelmine-api's /rpc, then the database side of what it did.
#
# The node test signs up and logs in through rpc('signup') / rpc('login'), submits three jobs with a
# bearer token, reads them back with select/order/limit, .single(), count: 'exact', get: true, head and a
# filter, and checks how postgrest-js surfaces the gateway's errors (status, code, message, details,
# hint): a taken email (409 23505), a stake above the balance (402 MM001), no token (401 42501), a bad
# token (401 PGRST301), an unknown function or argument set (404 PGRST202), .single() on three rows (406
# PGRST116). It prints one line per check; each is counted here. Then the database must hold exactly
# what the client was told: the three jobs (one canceled), their configs as sent, no job for the refused
# submission, the balance, a revoked session after logout, and check_invariants() empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api-lib.sh"
it_begin api-postgrest

JS=$MM_REPO/tests/js
step "prerequisites"
if ! command -v node >/dev/null; then fail "node is not installed (Node 20 or later)"; it_end; fi
if [[ ! -d $JS/node_modules/@supabase/postgrest-js ]]; then
    fail "@supabase/postgrest-js is not installed: run (cd $JS && npm ci)"
    it_end
fi
pass "node $(node --version), @supabase/postgrest-js $(jq -r .version "$JS/node_modules/@supabase/postgrest-js/package.json")"

step "gateway"
api_start main

step "tests/js/postgrest.test.mjs"
email=pgjs@example.com
rc=0
(cd "$JS" && API_URL=$API MM_TEST_EMAIL=$email timeout 60 node postgrest.test.mjs) >"$IT_TMP/node.out" 2>&1 || rc=$?
jobs=""
while IFS= read -r line; do
    case $line in
        "ok    "*) pass "${line#ok    }" ;;
        "FAIL  "*) fail "${line#FAIL  }" ;;
        "jobs: "*) jobs=${line#jobs: } ;;
        *) echo "      $line" ;;
    esac
done <"$IT_TMP/node.out"
check "node exits 0" "$rc" 0

step "the database side"
user=$(adm "SELECT id FROM modelmine.users WHERE email = '$email'")
check "the user exists" "$([[ -n $user ]] && echo yes)" yes
read -r j1 j2 j3 <<<"$jobs"
check "three job ids came back" "$([[ -n ${j3:-} ]] && echo yes)" yes
if [[ -n ${j3:-} ]]; then
    check "the user's jobs are exactly those three: titles, stakes and statuses" \
        "$(adm "SELECT string_agg(id || ' ' || title || ' ' || stake || ' ' || status, '; ' ORDER BY id) FROM modelmine.jobs WHERE user_id = $user")" \
        "$j1 pgjs one 11 CANCELED; $j2 pgjs two 12 PENDING; $j3 pgjs three 13 PENDING"
    check "the configs are stored as sent (0.1 stays 0.1)" \
        "$(adm "SELECT string_agg(config::text, '; ' ORDER BY id) FROM modelmine.jobs WHERE user_id = $user")" \
        '{"lr": 0.1, "note": "first", "runner": "pgjs"}; {"layers": [32, 16], "runner": "pgjs"}; {"nested": {"a": {"b": true}}, "runner": "pgjs"}'
fi
check "no job for the refused submission" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE title = 'too dear'")" 0
check "balance: 1000 - 12 - 13 (the canceled job refunded)" \
    "$(adm "SELECT balance FROM modelmine.account_balances WHERE user_id = $user")" 975
check "the session is revoked after rpc('logout')" \
    "$(adm "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) || '/' || count(*) FROM modelmine.sessions WHERE user_id = $user")" 1/1
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
api_stop main TERM
check "the gateway exits 0 on SIGTERM" "$API_RC" 0
it_end
