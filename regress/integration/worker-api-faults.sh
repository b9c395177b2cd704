#!/usr/bin/env bash
# worker-api-faults: a worker on the gateway (--api) meets answers that are not what the routes
# return, and a revoked key; it never crashes, never loses a job, and every job settles once.
#
# The worker W reaches the gateway through http-faults.py, a proxy that spoils the answers a rule
# names:
#   part 1  a complete_job's answer is an HTML page (200 text/html) though the gateway completed
#           the job: W logs the lost connection, reconnects, reports the result again and takes
#           the refusal ("already COMPLETED") as settled. One reward.
#   part 2  a claim's answer is cut short (half the body, then the connection closes) though the
#           gateway leased the job: W cannot know it has it; the lease runs out, the job is
#           claimed again (attempt 2) and completed once.
#   part 3  heartbeats answered 502 text/html with Retry-After: 2: W waits the 2 s (not its own
#           first 1 s), reconnects, and goes on working.
#   part 4  W's node key is revoked in the database while W runs a job: the gateway answers 401,
#           W logs the refused key and exits 1 (not a crash), its trainer dies with it, and worker
#           V completes the job once its lease has run out.
# The node key appears in no log.
set -euo pipefail
IT_WORKER_API=1
IT_WORKER_API_TLS=0  # the proxy speaks plain HTTP on both sides
. "$(dirname "$0")/lib.sh"
it_begin worker-api-faults

# wait_log NAME PATTERN SECS: a precondition, that NAME's log has a line matching PATTERN
wait_log() {
    local i
    for (( i = 0; i < $3 * 10; i++ )); do
        grep -q -- "$2" "$IT_TMP/$1.log" && { echo "waited for: $1 logged '$2'"; return 0; }
        sleep 0.1
    done
    fail "$1 did not log '$2' within $3 s"
    return 1
}
count_log() { grep -c -- "$2" "$IT_TMP/$1.log" || true; }
rules() { printf '%s\n' "$@" >"$IT_TMP/rules"; }

cat >"$IT_TMP/gated.sh" <<EOF
cat >/dev/null
echo '{"progress": 10}'
while [ ! -e "$IT_TMP/go" ]; do sleep 0.1; done
echo '{"result": {"loss": 0.25, "epochs": 1}}'
EOF
cat >"$IT_TMP/held.sh" <<EOF
cat >/dev/null
echo '{"progress": 10}'
while [ ! -e "$IT_TMP/go2" ]; do sleep 0.1; done
echo '{"result": {"loss": 0.5, "epochs": 1}}'
EOF
runners=(--runner gated="sh $IT_TMP/gated.sh" --runner held="sh $IT_TMP/held.sh")

step "a gateway, and the fault proxy in front of it"
user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
gw_start
rules
proxy_port=$(api_free_port)
python3 "$(dirname "$0")/http-faults.py" "$proxy_port" "$IT_GW_URL" "$IT_TMP/rules" >"$IT_TMP/proxy.log" 2>&1 &
IT_OTHER_PIDS+=($!)
for (( i = 0; i < 50; i++ )); do
    [[ $(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$proxy_port/health") == 200 ]] && break
    sleep 0.1
done
IT_GW_URL=http://127.0.0.1:$proxy_port  # the workers started from here on go through the proxy
echo "proxy on $IT_GW_URL"
start_worker W --slots 1 --lease-seconds 5 --claim-wait 2 "${runners[@]}"
node_w=$(node_of W)
wait_until 10 "W heartbeated" "SELECT last_seen IS NOT NULL FROM modelmine.nodes WHERE id = $node_w"
submit() { as_user "$user" "SELECT modelmine.submit_job('$1', '$2', NULL, 10)"; }

step "part 1: complete_job answered with an HTML page, after the gateway completed the job"
rules 'POST ^/nodes/jobs/[0-9]+/complete$ html200 1'
job1=$(submit html '{"trainer":"noop"}')
wait_log W "lost gateway connection: the gateway answered 200 with text/html, not its JSON (\"Welcome to nginx!\")" 15
wait_log W "complete_job refused: job $job1 is already COMPLETED \[55000\]" 15
check "job $job1 COMPLETED by W on its first attempt" \
    "$(adm "SELECT status || ' ' || node_id || ' ' || attempts FROM modelmine.jobs WHERE id = $job1")" "COMPLETED $node_w 1"
check "one reward row for it" "$(adm "SELECT count(*) FROM modelmine.journal WHERE job_id = $job1 AND reason = 'reward'")" 1
check "W reconnected" "$(( $(count_log W ": connected as node $node_w") >= 2 ))" 1
check_true "W is still running" proc_alive "$(worker_pid W)"

step "part 2: a claim's answer cut short, after the gateway leased the job"
rules
rm -f "$IT_TMP/go"
busy=$(submit busy '{"runner":"gated"}')
wait_until 15 "W runs job $busy (its only slot)" \
    "SELECT status = 'RUNNING' AND node_id = $node_w FROM modelmine.jobs WHERE id = $busy"
job2=$(submit truncated '{"trainer":"noop"}')
rules 'POST ^/nodes/claim$ truncate 1'
touch "$IT_TMP/go"   # the slot frees; W's next claim leases job 2 and gets half an answer
wait_log W "lost gateway connection: the gateway's answer was cut short" 15
check_true "the proxy cut a claim's answer short" grep -q "injected truncate on POST /nodes/claim" "$IT_TMP/proxy.log"
check_within 40 "job $job2 COMPLETED once its first lease ran out" \
    "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $job2"
check "job $job2: by W, attempt 2 (the lease W never saw was lost)" \
    "$(adm "SELECT node_id || ' ' || attempts FROM modelmine.jobs WHERE id = $job2")" "$node_w 2"
check "job $job2 settled once: 1 stake, 1 reward, 1 fee" "$(adm "SELECT string_agg(reason, ' ' ORDER BY reason)
    FROM modelmine.journal WHERE job_id = $job2")" "fee reward stake"
check "job $busy COMPLETED by W" "$(adm "SELECT status || ' ' || node_id FROM modelmine.jobs WHERE id = $busy")" "COMPLETED $node_w"

step "part 3: heartbeats answered 502 text/html with Retry-After: 2"
rules 'POST ^/nodes/heartbeat$ html502 2'
wait_log W "lost gateway connection: the gateway answered 502 with text/html, not its JSON (\"502 Bad Gateway\"); retrying in 2 s" 10
check_within 20 "W heartbeats again" \
    "SELECT last_seen > pg_catalog.now() - interval '1 s' FROM modelmine.nodes WHERE id = $node_w"
rules
job3=$(submit after-502 '{"trainer":"noop"}')
check_within 20 "W completes a job after it" "SELECT status = 'COMPLETED' AND node_id = $node_w FROM modelmine.jobs WHERE id = $job3"

step "part 4: W's node key is revoked while W runs a job"
rm -f "$IT_TMP/go2"
job4=$(submit revoked '{"runner":"held"}')
wait_until 15 "W runs job $job4 with progress 10" \
    "SELECT status = 'RUNNING' AND node_id = $node_w AND progress = 10 FROM modelmine.jobs WHERE id = $job4"
trainer=$(trainer_pid W "$job4")
adm "UPDATE modelmine.nodes SET key_hash = pg_catalog.sha256('revoked'::bytea) WHERE id = $node_w"
wait_worker W 20
check "W exits 1 (the key was refused), not by a signal" "$IT_RC" 1
check_true "W logged the key refused mid-session, with the gateway's reason" grep -q \
    "lost gateway connection: the gateway refused the node key: invalid node key \[PGRST301\]" "$IT_TMP/W.log"
check_true "... and at the reconnect" grep -q \
    "authenticate_node refused: invalid node key \[PGRST301\]" "$IT_TMP/W.log"
check_true "W said it exits" grep -q "the gateway refused this node's key; exiting (exit 1)" "$IT_TMP/W.log"
gone=no
for _ in $(seq 1 30); do group_alive "$trainer" || { gone=yes; break; }; sleep 0.1; done
check "W's trainer for job $job4 (process group $trainer) is gone" "$gone" yes
touch "$IT_TMP/go2"
start_worker V --slots 1 --lease-seconds 5 --claim-wait 2 "${runners[@]}"
node_v=$(node_of V)
check_within 40 "V completes job $job4 once W's lease has run out" \
    "SELECT status = 'COMPLETED' AND node_id = $node_v FROM modelmine.jobs WHERE id = $job4"
check "job $job4: attempt 2, settled once" "$(adm "SELECT attempts || ' ' || (SELECT string_agg(reason, ' ' ORDER BY reason)
    FROM modelmine.journal WHERE job_id = $job4) FROM modelmine.jobs WHERE id = $job4")" "2 fee reward stake"

step "books and secrets"
check "every job settled once: no job with more than one reward, fee or refund" "$(adm "
    SELECT count(*) FROM (SELECT job_id, reason FROM modelmine.journal WHERE job_id IS NOT NULL
                           GROUP BY 1, 2 HAVING count(*) > 1) d")" 0
check "no job left PENDING or RUNNING" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING')")" 0
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
key=$(sed -n 's/.*"node_key": *"\([^"]*\)".*/\1/p' "$IT_TMP/W.json")
check_true "W's state file holds its key" test -n "$key"
check "W's state file is mode 600" "$(stat -c %a "$IT_TMP/W.json")" 600
check "the key appears in no log (workers, gateway, proxy)" \
    "$(cat "$IT_TMP"/*.log | grep -cF "${key:-no key}" || true)" 0
stop_worker V TERM
check "V exits 0 on SIGTERM" "$IT_RC" 0
it_end
