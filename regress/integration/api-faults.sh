#!/usr/bin/env bash
# api-faults: modelmine-api under faults, on a private throwaway cluster (restarting it disturbs nobody).
#
# (a) PostgreSQL stops (immediate: a crash) in the middle of traffic: four clients keep POSTing /jobs
#     across the outage. While the database is down every answer is 503 with Retry-After, at once (no
#     hang, no 500); after it is back, 201s resume within seconds. Every submission answered 201 exists
#     in the database with its title (the id from its Location header; no lost write), no submission
#     exists twice, anything else that exists was answered 503 "may not have been applied", and
#     check_invariants() is empty.
# (c) /health says 503 (with Retry-After) while the database is down and 200 after, listening again.
# (b) kill -9 of the gateway in the middle of a request: /rpc/test_slow_submit (made here, as the
#     superuser) submits a job and then sleeps 3 s; the gateway is killed while it sleeps. The database
#     must end with no transaction of the gateway left open and the half-done submission rolled back (no
#     job, balance unchanged); a new gateway then serves again.
# (d) --pool 1: while a slow call holds the only connection, another request gets 504 PGRST003 with
#     Retry-After after --acquire-timeout (no hang); a call past --statement-timeout gets 500 57014 and
#     its write is rolled back.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/lib/cluster.sh
. "$MM_REPO/scripts/lib/cluster.sh"
. "$(dirname "$0")/api-lib.sh"
: "${MM_PGTREE:?MM_PGTREE is not set: the private PostgreSQL tree with modelmine installed (scripts/test.sh sets it)}"
MM_LOG_TAG=api-faults

step "a private cluster"
CL=$(mm_tmpdir api-faults-cluster)
stop_cluster() { mm_cluster_stop "$CL" >/dev/null 2>&1 || true; rm -rf "$CL"; }
trap 'stop_cluster' EXIT
mm_cluster_start "$CL" "$(mm_free_port)"  # exports PGHOST, PGPORT, PGUSER for it
PG_BIN=$(cat "$CL/bindir")
pg_stop_immediate() { (cd "$CL" && mm_as_server "$PG_BIN/pg_ctl" stop -D "$CL/data" -m immediate -w -t 30 >/dev/null); }
pg_start() { (cd "$CL" && mm_as_server "$PG_BIN/pg_ctl" start -D "$CL/data" -l "$CL/postgres.log" -w -t 60 >/dev/null); }

it_begin api-faults
# it_cleanup ends with exit, so it runs in a subshell (with the exit status in $?), then the cluster goes.
faults_exit() {
    local rc=$?
    set +e
    trap - EXIT
    (exit "$rc")
    (it_cleanup)
    stop_cluster
    exit "$rc"
}
trap faults_exit EXIT
echo "cluster: 127.0.0.1:$PGPORT in $CL"

adm "UPDATE modelmine.settings SET value = 1000000 WHERE name = 'signup_grant'" >/dev/null  # stakes for thousands of jobs
adm "CREATE FUNCTION modelmine.test_slow_submit(title text, seconds double precision DEFAULT 3)
         RETURNS bigint LANGUAGE plpgsql VOLATILE AS \$\$
     DECLARE
         id bigint;
     BEGIN
         id := modelmine.submit_job(title, '{\"trainer\": \"noop\"}', NULL, 7);
         PERFORM pg_catalog.pg_sleep(seconds);
         RETURN id;
     END \$\$;
     GRANT EXECUTE ON FUNCTION modelmine.test_slow_submit(text, double precision) TO modelmine_user;" >/dev/null
api_start main
MAIN_PID=${API_PID[main]}

# health URL: prints "STATUS RETRY-AFTER DB-FIELD LISTENING"
health() {
    local out
    out=$(curl --noproxy '*' -s -m 5 -o "$IT_TMP/health.body" -w '%{http_code}|%header{retry-after}' "$API/health") || true
    printf '%s %s %s %s\n' "${out%%|*}" "${out#*|}" "$(jq -r '.database // "-"' "$IT_TMP/health.body" 2>/dev/null || echo -)" \
        "$(jq -r '.listening // "-"' "$IT_TMP/health.body" 2>/dev/null || echo -)"
}

step "(a) four clients POST /jobs in a loop"
# client N TOKEN: until $IT_TMP/stop exists, one POST /jobs per iteration with a unique title; one line
# per response in client-N.log: start end title status seconds location retry-after code
client() {
    local n=$1 tok=$2 i=0 t0 out status code
    while [[ ! -e $IT_TMP/stop ]]; do
        i=$((i + 1))
        t0=$EPOCHREALTIME
        out=$(curl --noproxy '*' -s -m 20 -o "$IT_TMP/client-$n.body" -X POST -H "Authorization: Bearer $tok" \
            -H 'Content-Type: application/json' \
            --data-binary "{\"title\": \"c$n-$i\", \"config\": {\"trainer\": \"noop\"}, \"stake\": 1}" \
            -w '%{http_code}|%{time_total}|%header{location}|%header{retry-after}' "$API/jobs") || true
        IFS='|' read -r status _ _ _ <<<"$out"
        code=-
        [[ $status == 201 ]] || code=$(jq -r '.code // "-"' "$IT_TMP/client-$n.body" 2>/dev/null || echo -)
        echo "$t0|$EPOCHREALTIME|c$n-$i|$out|${code:--}" >>"$IT_TMP/client-$n.log"
    done
}
declare -a CLIENTS=()
for n in 1 2 3 4; do
    tok=$(signup "client$n@example.com" "client$n password")
    : >"$IT_TMP/client-$n.log"
    client "$n" "$tok" &
    CLIENTS+=($!)
    IT_OTHER_PIDS+=($!)
done
# count_where N AWK-CONDITION: lines of client N's log matching (fields: $1 start $2 end $3 title $4 status
# $5 seconds $6 location $7 retry-after $8 code)
count_where() { awk -F'|' "$2 { n++ } END { print n + 0 }" "$IT_TMP/client-$1.log"; }
# wait_clients SECS DESC AWK-CONDITION MIN: until every client logged MIN lines matching the condition
wait_clients() {
    local deadline=$((SECONDS + $1)) n ok
    while ((SECONDS < deadline)); do
        ok=1
        for n in 1 2 3 4; do (($(count_where "$n" "$3") >= $4)) || ok=0; done
        if ((ok)); then echo "waited for: $2"; return 0; fi
        sleep 0.1
    done
    fail "$2: not reached within $1 s"
    return 1
}
# shellcheck disable=SC2016  # an awk condition
wait_clients 20 "each client has 5 submissions answered 201" '$4 == 201' 5
check "(c) /health before the outage: 200, database reachable, listening" "$(health)" "200  reachable true"

step "(a) PostgreSQL stops (immediate) under the traffic"
t_down=$EPOCHREALTIME
pg_stop_immediate
echo "      stopped (immediate) at $t_down"
wait_clients 20 "each client has 3 answers 503 from requests sent after the stop" "\$1 > $t_down && \$4 == 503" 3
read -r h_status h_retry h_db _ <<<"$(health)"
check "(c) /health while the database is down: 503, database down" "$h_status $h_db" "503 down"
check_true "(c) ... with Retry-After in whole seconds (got '$h_retry')" grep -qE '^[1-9][0-9]*$' <<<"$h_retry"
sleep 2  # the scenario: an outage of a few seconds, long enough for the pool's reconnect backoff to grow
t_start=$EPOCHREALTIME
pg_start
t_up=$EPOCHREALTIME
echo "      started again at $t_up (crash recovery took $(python3 -c "print(round($t_up - $t_start, 1))") s)"
wait_clients 30 "each client has a 201 for a request sent after the database came back" "\$1 > $t_up && \$4 == 201" 1
t_resumed=$(for n in 1 2 3 4; do awk -F'|' -v up="$t_up" '$1 > up && $4 == 201 { print $2 - up; exit }' "$IT_TMP/client-$n.log"; done | sort -g | tail -n 1)
check_true "201s resume for every client within 10 s of the database being back (the last after ${t_resumed} s)" \
    python3 -c "import sys; sys.exit(not $t_resumed < 10)"
deadline=$((SECONDS + 15))
until [[ $(health) == "200  reachable true" ]] || ((SECONDS >= deadline)); do sleep 0.2; done
check "(c) /health after the outage: 200, database reachable, LISTEN connection back (within 15 s)" "$(health)" "200  reachable true"
touch "$IT_TMP/stop"
for pid in "${CLIENTS[@]}"; do wait "$pid" || true; done

step "(a) what the clients were told"
cat "$IT_TMP"/client-?.log >"$IT_TMP/answers.txt"
echo "      answers: $(awk -F'|' '{ print $4 }' "$IT_TMP/answers.txt" | sort | uniq -c | tr -s ' \n' ' ')"
echo "      503 codes: $(awk -F'|' '$4 == 503 { print $8 }' "$IT_TMP/answers.txt" | sort | uniq -c | tr -s ' \n' ' ')"
check "every answer was 201 or 503 (no 500, no timeout; others listed)" \
    "$(awk -F'|' '$4 != 201 && $4 != 503 { print $3 " " $4 " " $8 }' "$IT_TMP/answers.txt" | head -n 5 | tr '\n' ';')" ""
check "every 503 carried Retry-After in whole seconds (violations)" \
    "$(awk -F'|' '$4 == 503 && $7 !~ /^[1-9][0-9]*$/ { print $3 " retry-after=" $7 }' "$IT_TMP/answers.txt" | head -n 5 | tr '\n' ';')" ""
check "no request hung: every answer within 6 s (slowest listed)" \
    "$(awk -F'|' '$5 + 0 >= 6 { print $3 " " $4 " " $5 "s" }' "$IT_TMP/answers.txt" | head -n 5 | tr '\n' ';')" ""
check "503s during the outage, for requests sent while the database was down" \
    "$(awk -F'|' -v d="$t_down" -v u="$t_start" '$1 > d && $2 < u && $4 == 503 { n++ } END { print (n > 0) }' "$IT_TMP/answers.txt")" 1
check "no 201 for a request sent and answered while the database was down" \
    "$(awk -F'|' -v d="$t_down" -v u="$t_start" '$1 > d + 0.5 && $2 < u && $4 == 201 { print $3 }' "$IT_TMP/answers.txt" | head -n 5 | tr '\n' ' ')" ""
check "every 201 has Location /jobs/<id> (violations)" \
    "$(awk -F'|' '$4 == 201 && $6 !~ /^\/jobs\/[0-9]+$/ { print $3 " " $6 }' "$IT_TMP/answers.txt" | head -n 5 | tr '\n' ';')" ""

step "(a) the database: no lost write, nothing twice"
awk -F'|' '$4 == 201 { sub(/^\/jobs\//, "", $6); print $6 "\t" $3 }' "$IT_TMP/answers.txt" >"$IT_TMP/created.tsv"
awk -F'|' '$4 == 503 && $8 == "PGRST001" { print $3 }' "$IT_TMP/answers.txt" >"$IT_TMP/maybe.txt"
echo "      $(wc -l <"$IT_TMP/created.tsv") answered 201, $(wc -l <"$IT_TMP/maybe.txt") answered 503 PGRST001 ('may not have been applied'), $(adm "SELECT count(*) FROM modelmine.jobs") jobs in the database"
adm "CREATE TABLE created (id bigint, title text); CREATE TABLE maybe (title text);" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$IT_DB" -c "\\copy created FROM '$IT_TMP/created.tsv'" -c "\\copy maybe FROM '$IT_TMP/maybe.txt'"
check "every submission answered 201 is in the database under its Location id with its title (missing listed)" \
    "$(adm "SELECT string_agg(c.title || ' id ' || c.id, ', ') FROM created c
             LEFT JOIN modelmine.jobs j ON j.id = c.id AND j.title = c.title WHERE j.id IS NULL")" ""
check "no submission is in the database twice" \
    "$(adm "SELECT string_agg(title, ', ') FROM (SELECT title FROM modelmine.jobs GROUP BY title HAVING count(*) > 1) d")" ""
check "every other job was answered 503 PGRST001 (may not have been applied; others listed)" \
    "$(adm "SELECT string_agg(j.title, ', ') FROM modelmine.jobs j
             WHERE NOT EXISTS (SELECT FROM created c WHERE c.title = j.title)
               AND NOT EXISTS (SELECT FROM maybe m WHERE m.title = j.title)")" ""
check "each client's balance is the grant minus one token per job it has" \
    "$(adm "SELECT string_agg(u.email, ', ') FROM modelmine.users u JOIN modelmine.account_balances a ON a.user_id = u.id
             WHERE u.email LIKE 'client%' AND a.balance <> 1000000 - (SELECT count(*) FROM modelmine.jobs j WHERE j.user_id = u.id)")" ""
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

step "(b) kill -9 of the gateway in the middle of a request"
slow=$(signup slow@example.com "slow password")
balance_before=$(adm "SELECT balance FROM modelmine.account_balances WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'slow@example.com')")
jobs_before=$(adm "SELECT count(*) FROM modelmine.jobs")
curl --noproxy '*' -s -m 20 -o "$IT_TMP/slow.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $slow" \
    -H 'Content-Type: application/json' --data-binary '{"title": "half-done", "seconds": 3}' \
    "$API/rpc/test_slow_submit" >"$IT_TMP/slow.out" 2>&1 &
slow_curl=$!
wait_until 10 "the gateway's backend is running test_slow_submit" \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'modelmine-api'
        AND state = 'active' AND query LIKE '%test_slow_submit%'"
kill -KILL "$MAIN_PID"
wait "$MAIN_PID" 2>/dev/null || true
echo "      killed the gateway (pid $MAIN_PID) with SIGKILL"
wait "$slow_curl" || true
check "the client got no answer (connection closed: 000)" "$(cat "$IT_TMP/slow.out")" 000
check_within 15 "no connection of the killed gateway is left (no transaction left open)" \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'modelmine-api%'"
check "the half-done submission was rolled back: no job 'half-done'" \
    "$(adm "SELECT count(*) FROM modelmine.jobs WHERE title = 'half-done'")" 0
check "... no job at all was added" "$(adm "SELECT count(*) FROM modelmine.jobs")" "$jobs_before"
check "... the balance is unchanged" \
    "$(adm "SELECT balance FROM modelmine.account_balances WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'slow@example.com')")" \
    "$balance_before"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
api_start again
check "a new gateway: /health 200, database reachable" "$(health)" "200  reachable true"
out=$(curl --noproxy '*' -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $slow" \
    -H 'Content-Type: application/json' --data-binary '{"title": "after the kill", "config": {"trainer": "noop"}, "stake": 1}' \
    "$API/jobs") || true
check "... and it serves: POST /jobs 201" "$out" 201
check_sql "... the job is there" "SELECT count(*) = 1 FROM modelmine.jobs WHERE title = 'after the kill'"
api_stop again TERM
check "the gateway exits 0 on SIGTERM" "$API_RC" 0

step "(d) a busy pool and a statement past --statement-timeout (--pool 1 --acquire-timeout 300 --statement-timeout 1500)"
api_start tight --pool 1 --acquire-timeout 300 --statement-timeout 1500
curl --noproxy '*' -s -m 20 -o "$IT_TMP/hold.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $slow" \
    -H 'Content-Type: application/json' --data-binary '{"title": "holds the pool", "seconds": 1.2}' \
    "$API/rpc/test_slow_submit" >"$IT_TMP/hold.out" 2>&1 &
hold=$!
wait_until 10 "the one pooled connection is busy with test_slow_submit" \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'modelmine-api'
        AND state = 'active' AND query LIKE '%test_slow_submit%'"
out=$(curl --noproxy '*' -s -m 10 -o "$IT_TMP/busy.body" -D "$IT_TMP/busy.headers" -w '%{http_code} %{time_total}' \
    -H "Authorization: Bearer $slow" "$API/balance") || true
check "meanwhile GET /balance: 504 PGRST003" "${out%% *} $(jq -r .code "$IT_TMP/busy.body" 2>/dev/null)" "504 PGRST003"
check_true "... after the acquire timeout, not a hang (took ${out#* } s)" python3 -c "import sys; sys.exit(not 0.25 <= ${out#* } < 2)"
check_true "... with Retry-After" grep -qiE '^retry-after: [1-9]' "$IT_TMP/busy.headers"
wait "$hold" || true
check "the call holding the pool ends normally: 200" "$(cat "$IT_TMP/hold.out")" 200
check_sql "... and its submission is there" "SELECT count(*) = 1 FROM modelmine.jobs WHERE title = 'holds the pool'"
balance_before=$(adm "SELECT balance FROM modelmine.account_balances WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'slow@example.com')")
out=$(curl --noproxy '*' -s -m 20 -o "$IT_TMP/late.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $slow" \
    -H 'Content-Type: application/json' --data-binary '{"title": "too slow", "seconds": 3}' \
    "$API/rpc/test_slow_submit") || true
check "a call running past --statement-timeout: 500 57014 (PostgREST's status for query_canceled)" \
    "$out $(jq -r .code "$IT_TMP/late.body" 2>/dev/null)" "500 57014"
check "... its submission was rolled back" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE title = 'too slow'")" 0
check "... the balance is unchanged" \
    "$(adm "SELECT balance FROM modelmine.account_balances WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'slow@example.com')")" \
    "$balance_before"
http_code=$(curl --noproxy '*' -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $slow" "$API/balance") || true
check "... and the connection serves the next request: GET /balance 200" "$http_code" 200
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
api_stop tight TERM
check "the gateway exits 0 on SIGTERM" "$API_RC" 0
it_end
