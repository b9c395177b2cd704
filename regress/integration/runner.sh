#!/usr/bin/env bash
# runner: external runners configured by the operator (--runner NAME=COMMAND).
#
# Worker R1 offers echo-cnn (reads the job config on stdin, prints 5 progress lines, then a result that
# echoes the config), garbage (prints a line that is not JSON) and crash (exits 3 without a result).
# Worker R2 offers only sleepy (never finishes) and has --job-timeout 2. Then:
#   echo-cnn job       COMPLETED on R1, its result shows the runner saw the config; its progress
#                      reached a psql session LISTENing on job:<id>:progress, and the metrics were kept
#   not-offered job    never claimed by anyone (PENDING, 0 attempts), canceled at the end
#   garbage job        FAILED: "output line 1 is not a JSON object ..."
#   crash job          FAILED: "exited with status 3 without a result"
#   sleepy job         claimed by R2 only, FAILED "time limit of 2 s exceeded", its processes killed
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin runner

cat >"$IT_TMP/echo-cnn.sh" <<'EOF'
config=$(cat)
for e in 1 2 3 4 5; do
    sleep 0.3
    echo "{\"progress\": $((e * 20)), \"metrics\": {\"epoch\": $e, \"loss\": 0.$((6 - e))}}"
done
echo "{\"result\": {\"accuracy\": 0.97, \"loss\": 0.08, \"epochs\": 5, \"input\": $config}}"
EOF
cat >"$IT_TMP/garbage.sh" <<'EOF'
cat >/dev/null
echo "this is not JSON"
echo '{"result": {"accuracy": 1, "loss": 0, "epochs": 1}}'
EOF
cat >"$IT_TMP/crash.sh" <<'EOF'
cat >/dev/null
echo "crash.sh: giving up" >&2
exit 3
EOF
cat >"$IT_TMP/sleepy.sh" <<'EOF'
cat >/dev/null
echo '{"progress": 1}'
sleep 60
echo '{"result": {"loss": 0, "epochs": 1}}'
EOF

step "a user submits five runner jobs"
user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
submit() { as_user "$user" "SELECT modelmine.submit_job('$1', '$2', NULL, 20)"; }
echo_job=$(submit echo-cnn '{"runner":"echo-cnn","x":42}')
other_job=$(submit not-offered '{"runner":"not-offered"}')
garbage_job=$(submit garbage '{"runner":"garbage"}')
crash_job=$(submit crash '{"runner":"crash"}')
sleepy_job=$(submit sleepy '{"runner":"sleepy"}')

step "a psql session LISTENs on job:$echo_job:progress; two workers start"
{
    echo "LISTEN \"job:$echo_job:progress\";"
    for _ in $(seq 1 60); do echo "SELECT pg_sleep(0.25);"; done
} | psql -X -At -q -U mm_client -d "$IT_DB" >"$IT_TMP/listen.out" 2>&1 &
IT_OTHER_PIDS+=($!)
sleep 0.5  # the LISTEN must be in place before the runner reports
start_worker R1 --slots 3 --runner echo-cnn="sh $IT_TMP/echo-cnn.sh" --runner garbage="sh $IT_TMP/garbage.sh" \
    --runner crash="sh $IT_TMP/crash.sh"
start_worker R2 --slots 1 --job-timeout 2 --runner sleepy="sh $IT_TMP/sleepy.sh"
r1=$(node_of R1)
r2=$(node_of R2)
wait_until 30 "every job but the not-offered one finished" \
    "SELECT count(*) = 4 FROM modelmine.jobs WHERE status IN ('COMPLETED', 'FAILED')"
sleep 2  # two more poll intervals: nobody may claim the not-offered job

step "outcomes"
# Numbers pass through the worker's JSON library as doubles (0.97 may come back as 0.96999999999999997),
# so they are compared as float8.
check "echo-cnn: COMPLETED on R1 with the runner's accuracy" \
    "$(adm "SELECT status || ' ' || node_id || ' ' || ((result->>'accuracy')::float8 = 0.97)
              FROM modelmine.jobs WHERE id = $echo_job")" "COMPLETED $r1 true"
check "echo-cnn: the runner read the job config on stdin" \
    "$(adm "SELECT result->'input' FROM modelmine.jobs WHERE id = $echo_job")" '{"x": 42, "runner": "echo-cnn"}'
check "echo-cnn: the last progress metrics (epoch 5, loss 0.1) are kept on the job" \
    "$(adm "SELECT (metrics->>'epoch') || ' ' || ((metrics->>'loss')::float8 = 0.1) FROM modelmine.jobs WHERE id = $echo_job")" \
    "5 true"
kill -TERM "${IT_OTHER_PIDS[0]}" 2>/dev/null || true
wait "${IT_OTHER_PIDS[0]}" 2>/dev/null || true
notes=$(grep -c "^Asynchronous notification \"job:$echo_job:progress\" with payload \"{.*\"progress\": [0-9]" \
    "$IT_TMP/listen.out" || true)
echo "      LISTEN saw $notes notification(s); the first:"
grep -m1 '^Asynchronous notification' "$IT_TMP/listen.out" | sed 's/^/      /' || true
check_true "LISTEN on job:$echo_job:progress received progress payloads" test "$notes" -ge 1
check "not-offered: never claimed (PENDING, 0 attempts, no node)" \
    "$(adm "SELECT status || ' ' || attempts || ' ' || coalesce(node_id::text, '-') FROM modelmine.jobs WHERE id = $other_job")" \
    "PENDING 0 -"
check_sql "garbage: FAILED, the error says the output is not JSON" "SELECT status = 'FAILED'
    AND error ~ '^output line 1 is not a JSON object' FROM modelmine.jobs WHERE id = $garbage_job"
check "crash: FAILED, the error gives the exit status" \
    "$(adm "SELECT status || ': ' || error FROM modelmine.jobs WHERE id = $crash_job")" \
    "FAILED: exited with status 3 without a result"
check "sleepy: claimed only by R2 (the node offering it), FAILED on the time limit" \
    "$(adm "SELECT status || ' ' || node_id || ' ' || error FROM modelmine.jobs WHERE id = $sleepy_job")" \
    "FAILED $r2 time limit of 2 s exceeded"
sleepy_pid=$(trainer_pid R2 "$sleepy_job")
IT_GROUPS+=("${sleepy_pid:-0}")
check_false "sleepy: no process of the runner (process group ${sleepy_pid:-?}) is left" group_alive "${sleepy_pid:-0}"
for j in "$echo_job $r1" "$garbage_job $r1" "$crash_job $r1"; do
    read -r id node <<<"$j"
    check "job $id ran on R1" "$(adm "SELECT node_id FROM modelmine.jobs WHERE id = $id")" "$node"
done

step "money"
check "the not-offered job is canceled with a full refund" "$(as_user "$user" "SELECT modelmine.cancel_job($other_job)")" 20
check "the user paid for the one completed job only" "$(as_user "$user" "SELECT modelmine.balance()")" 980
check "R1 earned floor(20 * 0.8) for it, R2 nothing" "$(adm "
    SELECT (SELECT balance FROM modelmine.account_balances WHERE node_id = $r1) || ' '
        || (SELECT balance FROM modelmine.account_balances WHERE node_id = $r2)")" "16 0"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
for w in R1 R2; do
    stop_worker "$w" TERM
    check "$w exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
