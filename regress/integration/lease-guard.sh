#!/usr/bin/env bash
# lease-guard: only the node holding a job's lease can report on it, a job is paid once, and a job its
# owner cancels while it runs is stopped on the worker and never paid.
#
# Part 1, two SQL sessions as nodes A and B: A claims a job; B's report_progress, complete_job, fail_job
# and release_job on it are each refused with 42501 and change nothing (job, accounts, journal); A's
# progress and completion work; a second completion, a fail or a release by A afterwards get 55000 and
# pay nothing more; a session bound to no node gets 28000.
# Part 2, a real worker: the owner cancels a RUNNING slow job. The owner is refunded at once; the
# worker learns it from its next heartbeat or progress report, kills the trainer's process group and
# reports nothing; the job stays CANCELED and the node earns nothing. The worker then takes new work.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin lease-guard

user=$(signup user@example.com "user password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
read -r node_a key_a <<<"$(register_node "$op" A '{"trainers":["noop"]}')"
read -r node_b key_b <<<"$(register_node "$op" B '{"trainers":["noop"]}')"

# Everything a refused call could have touched: the job row, every balance, the journal.
snapshot() {
    adm "SELECT (SELECT format('%s %s node=%s attempts=%s progress=%s metrics=%s lease=%s error=%s', status,
                               stake, node_id, attempts, progress, metrics, lease_expires_at, error)
                   FROM modelmine.jobs WHERE id = $1)
             || ' | ' || (SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM modelmine.account_balances)
             || ' | journal rows ' || (SELECT count(*) FROM modelmine.journal)"
}

step "part 1: A claims a job; B may not touch it"
job=$(as_user "$user" "SELECT modelmine.submit_job('guarded', '{\"trainer\":\"noop\"}', NULL, 50)")
check "A claims job $job" "$(as_node "$key_a" "SELECT job_id FROM modelmine.claim_jobs(1, 60)")" "$job"
check "B finds nothing to claim" "$(as_node "$key_b" "SELECT count(*) FROM modelmine.claim_jobs(1, 60)")" 0
before=$(snapshot "$job")
echo "      state: $before"
for call in "report_progress($job, 50, '{\"epoch\": 1}')" \
            "complete_job($job, '{\"accuracy\": 0.9, \"loss\": 0.1, \"epochs\": 1}')" \
            "fail_job($job, 'stolen')" \
            "release_job($job)"; do
    check "B: ${call%%(*} refused with 42501" "$(sqlstate_as_node "$key_b" "SELECT modelmine.$call")" 42501
    check "B: ${call%%(*} changed nothing" "$(snapshot "$job")" "$before"
done
check "B's heartbeat does not list A's job" \
    "$(as_node "$key_b" "SELECT modelmine.heartbeat(1, 100, 1000)")" "{}"
check "the job is unchanged by B's heartbeat" "$(snapshot "$job")" "$before"
check "a session bound to no node is refused with 28000" "$(psql -X -At -q -U mm_worker -d "$IT_DB" 2>&1 \
    <<<"\\set VERBOSITY verbose
SELECT modelmine.complete_job($job, '{\"loss\": 0.1, \"epochs\": 1}');" | sed -n 's/.*ERROR: *\([0-9A-Z]\{5\}\):.*/\1/p')" 28000

step "part 1: A reports and completes; nothing is paid twice"
check "A's report_progress is accepted" \
    "$(sqlstate_as_node "$key_a" "SELECT modelmine.report_progress($job, 40, '{\"epoch\": 2}')")" ok
check "progress 40, metrics stored" "$(adm "SELECT progress || ' ' || metrics FROM modelmine.jobs WHERE id = $job")" \
    '40 {"epoch": 2}'
check "A's complete_job returns the reward floor(50 * 80 / 100)" \
    "$(as_node "$key_a" "SELECT modelmine.complete_job($job, '{\"accuracy\": 0.9, \"loss\": 0.1, \"epochs\": 1}')")" 40
after=$(snapshot "$job")
for call in "complete_job($job, '{\"accuracy\": 0.9, \"loss\": 0.1, \"epochs\": 1}')" \
            "fail_job($job, 'too late')" "release_job($job)" "report_progress($job, 100)"; do
    check "A again: ${call%%(*} refused with 55000" "$(sqlstate_as_node "$key_a" "SELECT modelmine.$call")" 55000
done
check "B: complete_job on the completed job refused with 42501" \
    "$(sqlstate_as_node "$key_b" "SELECT modelmine.complete_job($job, '{\"loss\": 0.1, \"epochs\": 1}')")" 42501
check "none of that changed anything" "$(snapshot "$job")" "$after"
check "journal for the job: stake, reward 40 to A, fee 10" "$(adm "
    SELECT string_agg(r.reason || ' ' || r.amount || coalesce(' node ' || a.node_id, ''), ', ' ORDER BY r.id)
      FROM modelmine.journal r JOIN modelmine.account_balances a ON a.id = r.credit_account WHERE r.job_id = $job")" \
    "stake 50, reward 40 node $node_a, fee 10"
check "B's node earned nothing" "$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $node_b")" 0

step "part 2: the owner cancels a job while a real worker runs it"
slow='{"trainer":"mlp","optimizer":"sgd","dataset":{"synthetic":"moons","n":4000,"seed":3},"hidden_layers":[32,32],"epochs":1500}'
start_worker W --slots 1
node_w=$(node_of W)
job2=$(as_user "$user" "SELECT modelmine.submit_job('to be canceled', '$slow', NULL, 60)")
wait_until 20 "job $job2 RUNNING on W's node $node_w with progress > 0" \
    "SELECT status = 'RUNNING' AND node_id = $node_w AND progress > 0 FROM modelmine.jobs WHERE id = $job2"
trainer=$(trainer_pid W "$job2")
check_true "W's trainer for job $job2 is running (pid ${trainer:-?})" group_alive "${trainer:-0}"
balance=$(as_user "$user" "SELECT modelmine.balance()")
check "cancel_job refunds the whole stake" "$(as_user "$user" "SELECT modelmine.cancel_job($job2)")" 60
check "the owner has it back" "$(as_user "$user" "SELECT modelmine.balance()")" $((balance + 60))
gone=no
for _ in $(seq 1 50); do group_alive "$trainer" || { gone=yes; break; }; sleep 0.1; done
check "W killed the trainer's process group within 5 s" "$gone" yes
check_true "W logged that it abandoned job $job2" grep -q ": job $job2 abandoned: " "$IT_TMP/W.log"
grep ": job $job2 " "$IT_TMP/W.log" | sed 's/^/      W: /'
sleep 2  # anything W might still report would arrive by now
check "the job is CANCELED, with no result" \
    "$(adm "SELECT status || ' ' || (result IS NULL) FROM modelmine.jobs WHERE id = $job2")" "CANCELED true"
check "journal for it: stake and refund only" "$(adm "
    SELECT string_agg(reason || ' ' || amount, ', ' ORDER BY id) FROM modelmine.journal WHERE job_id = $job2")" \
    "stake 60, refund 60"
check "W's node: balance 0, 0 completed" "$(adm "
    SELECT a.balance || ' ' || n.jobs_completed FROM modelmine.nodes n JOIN modelmine.account_balances a ON a.node_id = n.id
     WHERE n.id = $node_w")" "0 0"
check_false "W did not report the canceled job as failed" grep -q ": job $job2 failed" "$IT_TMP/W.log"

step "part 2: W keeps working"
job3=$(as_user "$user" "SELECT modelmine.submit_job('after the cancel', '{\"trainer\":\"noop\"}', NULL, 10)")
wait_until 20 "job $job3 COMPLETED" "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $job3"
check "by W" "$(adm "SELECT node_id FROM modelmine.jobs WHERE id = $job3")" "$node_w"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
stop_worker W TERM
check "W exits 0 on SIGTERM" "$IT_RC" 0
it_end
