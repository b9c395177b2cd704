#!/usr/bin/env bash
# notify-wakeup: new work wakes idle workers through NOTIFY modelmine_work, not only their poll timer.
#
# The worker here polls every 15 s, so within the few seconds this test waits only a notification can
# make it claim. Checked: a job given back with release_job wakes it; a psql session LISTENing on
# modelmine_work is notified by submit_job; a job submitted while the worker idles starts within 3 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin notify-wakeup

user=$(signup user@example.com "user password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
read -r _ key_a <<<"$(register_node "$op" A '{"trainers":["noop"]}')"

step "release_job wakes an idle worker"
job=$(as_user "$user" "SELECT modelmine.submit_job('released', '{\"trainer\":\"noop\"}', NULL, 10)")
check "SQL node A claims job $job" "$(as_node "$key_a" "SELECT job_id FROM modelmine.claim_jobs(1, 60)")" "$job"
start_worker W --slots 1 --poll-interval 15
node_w=$(node_of W)
wait_until 10 "W connected" "SELECT last_seen IS NOT NULL FROM modelmine.nodes WHERE id = $node_w"
sleep 1  # W's first claim (at connect) has found nothing; from now on it waits for NOTIFY or 15 s
as_node "$key_a" "SELECT modelmine.release_job($job)" >/dev/null
check_within 3 "job $job COMPLETED by W after the release" \
    "SELECT status = 'COMPLETED' AND node_id = $node_w FROM modelmine.jobs WHERE id = $job"

step "submit_job notifies modelmine_work"
{
    echo "LISTEN modelmine_work;"
    echo "SELECT pg_sleep(1.5);"
} | psql -X -At -q -U mm_client -d "$IT_DB" >"$IT_TMP/listen.out" 2>&1 &
listener=$!
IT_OTHER_PIDS+=("$listener")
sleep 0.5
job2=$(as_user "$user" "SELECT modelmine.submit_job('notified', '{\"trainer\":\"noop\"}', NULL, 10)")
wait "$listener" || true
check_true "a session LISTENing on modelmine_work was notified of job $job2" \
    grep -q '^Asynchronous notification "modelmine_work"' "$IT_TMP/listen.out"

step "a job submitted while W idles starts at once"
check_within 3 "job $job2 COMPLETED by W after submit_job" \
    "SELECT status = 'COMPLETED' AND node_id = $node_w FROM modelmine.jobs WHERE id = $job2"
sleep 1
job3=$(as_user "$user" "SELECT modelmine.submit_job('notified too', '{\"trainer\":\"noop\"}', NULL, 10)")
check_within 3 "job $job3 COMPLETED by W after submit_job" \
    "SELECT status = 'COMPLETED' AND node_id = $node_w FROM modelmine.jobs WHERE id = $job3"

# Whatever the timing, the jobs finish (by the poll timer at the latest) and the books balance.
wait_until 40 "all jobs finished" "SELECT count(*) = 0 FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING')" || true
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
stop_worker W TERM
check "W exits 0 on SIGTERM" "$IT_RC" 0
it_end
