#!/usr/bin/env bash
# worker-backoff: a call the database keeps refusing is retried with backoff and logged once per reason,
# a node claims only after a heartbeat went through, and setup errors name their fix.
#
# Part 1, claim_jobs refused: EXECUTE on modelmine.claim_jobs is revoked from modelmine_node and a job
# is submitted (its NOTIFY wakes the worker). For 5 s the worker may log the failure a handful of times
# at most (it used to retry on every turn of its loop: hundreds of lines), with the SQLSTATE and the
# GRANT that fixes it. After the GRANT it logs that claiming works again and finishes the job.
# Part 2, heartbeat refused: the same for heartbeat; and once the connection is cut, the reconnected
# worker claims nothing until a heartbeat goes through, then finishes the job waiting for it.
# Part 3, a login role without modelmine_node: the worker logs "permission denied" once with the
# GRANT to run, keeps retrying instead of exiting, and works once the GRANT is made.
# Part 4, the extension dropped, then its schema: a running and a starting worker log the CREATE
# EXTENSION to run, once per reason.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-backoff

user=$(signup user@example.com "user password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
noop='{"trainer":"noop"}'

# lines_since NAME FROM PATTERN: how many lines of NAME's log after line FROM match PATTERN
lines_since() { tail -n "+$(( $2 + 1 ))" "$IT_TMP/$1.log" | grep -c -- "$3" || true; }
log_lines() { wc -l <"$IT_TMP/$1.log"; }
# wait_log NAME PATTERN N SECS: a precondition, that NAME's log holds N lines matching PATTERN within SECS
wait_log() {
    local i
    for (( i = 0; i < $4 * 10; i++ )); do
        [[ $(grep -c -- "$2" "$IT_TMP/$1.log" || true) -ge $3 ]] && { echo "waited for: $1 logged '$2' $3 time(s)"; return 0; }
        sleep 0.1
    done
    fail "$1 did not log '$2' $3 time(s) within $4 s"
    return 1
}

step "worker W starts and idles"
start_worker W --slots 1
node_w=$(node_of W)
wait_until 10 "W heartbeated" "SELECT last_seen IS NOT NULL FROM modelmine.nodes WHERE id = $node_w"
sleep 1  # its first claim (empty queue) is done

step "part 1: claim_jobs revoked for 5 s while a job waits"
from=$(log_lines W)
adm "REVOKE EXECUTE ON FUNCTION modelmine.claim_jobs(integer, integer) FROM modelmine_node"
job1=$(as_user "$user" "SELECT modelmine.submit_job('claimed after the grant', '$noop', NULL, 10)")
sleep 5
failed=$(lines_since W "$from" "claim_jobs")
echo "      W logged $failed line(s) about claim_jobs in 5 s; the first ones:"
tail -n "+$(( from + 1 ))" "$IT_TMP/W.log" >"$IT_TMP/W.part1"
grep -m 5 "claim_jobs" "$IT_TMP/W.part1" | sed 's/^/      /' || true
check_true "a handful of failure lines at most (1..3), not one per loop turn" test "$failed" -ge 1 -a "$failed" -le 3
check_true "the line gives the error, its SQLSTATE and the GRANT" grep -q \
    "claim_jobs failed: permission denied for function claim_jobs \[42501\]; hint: the login role mm_worker needs membership in modelmine_node: GRANT modelmine_node TO mm_worker" \
    "$IT_TMP/W.log"
check "the job waits, unclaimed" "$(adm "SELECT status || ' ' || attempts FROM modelmine.jobs WHERE id = $job1")" "PENDING 0"
adm "GRANT EXECUTE ON FUNCTION modelmine.claim_jobs(integer, integer) TO modelmine_node"
check_within 40 "after the GRANT W finishes job $job1" \
    "SELECT status = 'COMPLETED' AND node_id = $node_w FROM modelmine.jobs WHERE id = $job1"
check "W logged once that claiming works again" "$(lines_since W "$from" "claim_jobs works again after")" 1

step "part 2: heartbeat revoked for 5 s"
from=$(log_lines W)
adm "REVOKE EXECUTE ON FUNCTION modelmine.heartbeat(real, integer, integer, text) FROM modelmine_node"
sleep 5
failed=$(lines_since W "$from" "heartbeat")
echo "      W logged $failed line(s) about heartbeat in 5 s"
check_true "a handful of heartbeat failure lines at most (1..3)" test "$failed" -ge 1 -a "$failed" -le 3

step "part 2: the connection is cut; the reconnected W may not claim before a heartbeat goes through"
adm "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'modelmine-worker'" >/dev/null
wait_log W ": connected as node" 2 10
job2=$(as_user "$user" "SELECT modelmine.submit_job('claimed after a heartbeat', '$noop', NULL, 10)")
sleep 4
check "job $job2 is not claimed while W's heartbeats fail" \
    "$(adm "SELECT status || ' ' || attempts FROM modelmine.jobs WHERE id = $job2")" "PENDING 0"
adm "GRANT EXECUTE ON FUNCTION modelmine.heartbeat(real, integer, integer, text) TO modelmine_node"
check_within 40 "after the GRANT W heartbeats, then finishes job $job2" \
    "SELECT status = 'COMPLETED' AND node_id = $node_w FROM modelmine.jobs WHERE id = $job2"
check_true "W logged that the heartbeat works again" grep -q "heartbeat works again after" "$IT_TMP/W.log"
check_true "W logged the lost connection" grep -q "lost database connection" "$IT_TMP/W.log"

step "part 3: a login role without modelmine_node"
# Login roles are cluster-wide: create it only when missing, and take away a grant a previous run made.
adm "SET client_min_messages = error;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_worker_nogrant') THEN
        CREATE ROLE mm_worker_nogrant LOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN NULL;
END \$\$;
REVOKE modelmine_node FROM mm_worker_nogrant;"
read -r node_n key_n <<<"$(register_node "$op" N '{"trainers":["noop"]}')"
start_worker N --db "postgresql://mm_worker_nogrant@$PGHOST:$PGPORT/$IT_DB" --node-key "$key_n"
sleep 4
check_true "N is still running (a missing grant is not a refused key)" proc_alive "$(worker_pid N)"
check "N logged the refusal once, with the GRANT to run" \
    "$(grep -c "permission denied for schema modelmine \[42501\]; hint: the login role mm_worker_nogrant needs membership in modelmine_node: GRANT modelmine_node TO mm_worker_nogrant" "$IT_TMP/N.log")" 1
check "N did not claim the key was refused" "$(grep -c "refused this node's key" "$IT_TMP/N.log" || true)" 0
adm "GRANT modelmine_node TO mm_worker_nogrant"
check_within 40 "after the GRANT N connects and heartbeats" \
    "SELECT last_seen IS NOT NULL FROM modelmine.nodes WHERE id = $node_n"
stop_worker N TERM
check "N exits 0 on SIGTERM" "$IT_RC" 0
adm "REVOKE modelmine_node FROM mm_worker_nogrant"

step "part 4: the extension is dropped under a running worker, then its schema, and a worker starts"
from=$(log_lines W)
adm "SET client_min_messages = warning; DROP EXTENSION modelmine CASCADE"
wait_log W "does not exist \[42883\]; hint: is the modelmine extension in database $IT_DB installed and as new as this worker? Run CREATE EXTENSION modelmine CASCADE (or ALTER EXTENSION modelmine UPDATE) there" 1 10
adm "SET client_min_messages = warning; DROP SCHEMA IF EXISTS modelmine CASCADE"
start_worker X --node-key "mmn_1_$(printf '0%.0s' {1..64})"
hint="schema \"modelmine\" does not exist \[3F000\]; hint: database $IT_DB has no modelmine extension: run CREATE EXTENSION modelmine CASCADE in it"
wait_log X "$hint" 1 10
wait_log W "$hint" 1 10
sleep 3
check "X logged it once" "$(grep -c "$hint" "$IT_TMP/X.log")" 1
check_true "X is still running" proc_alive "$(worker_pid X)"
failed=$(lines_since W "$from" " failed: ")
echo "      W logged $failed failure line(s) since the extension was dropped"
check_true "W: once per call and reason (heartbeat, claim_jobs; 42883, then 3F000), at most 4" test "$failed" -le 4
for w in W X; do
    stop_worker "$w" TERM
    check "$w exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
