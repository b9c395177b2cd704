#!/usr/bin/env bash
# worker-kill9: a worker killed with SIGKILL mid-job takes its trainer along, and the job is not lost.
#
# Worker A claims a slow job (mlp on moons, a few seconds of training) and we kill -9 it while the
# trainer is running. The trainer (its own process group; the worker sets PR_SET_PDEATHSIG) must die
# with it. The job stays RUNNING on A until A's lease runs out; worker B, started right after the kill,
# must not get it before that, then re-claims it (attempt 2) and completes it. B's node is paid once,
# A's node nothing; A's node is charged one lost job.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-kill9

slow='{"trainer":"mlp","optimizer":"sgd","dataset":{"synthetic":"moons","n":4000,"seed":7},"hidden_layers":[32,32],"epochs":1000}'

step "a user submits a slow job; worker A (lease 5 s) takes it"
user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
job=$(as_user "$user" "SELECT modelmine.submit_job('slow mlp', '$slow', NULL, 57)")
start_worker A --slots 1 --lease-seconds 5
node_a=$(node_of A)
wait_until 20 "job $job RUNNING on A's node $node_a with progress > 0" \
    "SELECT status = 'RUNNING' AND node_id = $node_a AND progress > 0 FROM modelmine.jobs WHERE id = $job"
trainer=$(trainer_pid A "$job")
check_true "A's log names the trainer's pid ($trainer)" test -n "$trainer"
check "the trainer is A's child" "$(proc_stat "$trainer" | awk '{ print $2 }')" "$(worker_pid A)"
check_true "the trainer leads its own process group" group_alive "$trainer"

step "kill -9 A"
kill -KILL "$(worker_pid A)"
stop_worker A KILL 5
check "A died of SIGKILL (exit status 137)" "$IT_RC" 137
gone=no
for _ in $(seq 1 30); do group_alive "$trainer" || { gone=yes; break; }; sleep 0.1; done
check "no process of A's trainer (process group $trainer) is left within 3 s" "$gone" yes
lease=$(adm "SELECT lease_expires_at FROM modelmine.jobs WHERE id = $job")
check "the job is still RUNNING on A (nobody noticed yet)" \
    "$(adm "SELECT status || ' ' || node_id || ' ' || attempts FROM modelmine.jobs WHERE id = $job")" "RUNNING $node_a 1"

step "worker B takes over once A's lease ($lease) has expired"
start_worker B --slots 1 --lease-seconds 5
node_b=$(node_of B)
wait_until 45 "job $job COMPLETED" "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $job"
check "completed by B's node, attempt 2" \
    "$(adm "SELECT status || ' ' || node_id || ' ' || attempts FROM modelmine.jobs WHERE id = $job")" \
    "COMPLETED $node_b 2"
check_sql "B did not start it before A's lease expired" \
    "SELECT started_at >= '$lease'::timestamptz FROM modelmine.jobs WHERE id = $job"
check_sql "result: accuracy >= 0.95 after $(adm "SELECT result->>'epochs' FROM modelmine.jobs WHERE id = $job") epochs" \
    "SELECT (result->>'accuracy')::float8 >= 0.95 FROM modelmine.jobs WHERE id = $job"
check "B's log: started the job once, completed it once" \
    "$(grep -c ": job $job started" "$IT_TMP/B.log")/$(grep -c ": job $job completed" "$IT_TMP/B.log")" 1/1

step "money"
check "one reward row for the job, to B's node, floor(57 * 80 / 100) = 45" "$(adm "
    SELECT count(*) || ' ' || sum(r.amount) || ' ' || bool_and(a.node_id = $node_b)
      FROM modelmine.journal r JOIN modelmine.account_balances a ON a.id = r.credit_account
     WHERE r.job_id = $job AND r.reason = 'reward'")" "1 45 true"
check "one fee row (12)" "$(adm "SELECT count(*) || ' ' || sum(amount) FROM modelmine.journal
                                 WHERE job_id = $job AND reason = 'fee'")" "1 12"
check "no refund" "$(adm "SELECT count(*) FROM modelmine.journal WHERE job_id = $job AND reason = 'refund'")" 0
check "A's node: balance 0, nothing ever credited to it" "$(adm "
    SELECT a.balance || ' ' || (SELECT count(*) FROM modelmine.journal WHERE credit_account = a.id)
      FROM modelmine.account_balances a WHERE a.node_id = $node_a")" "0 0"
check "B's node: balance 45, tokens_earned 45, 1 completed" "$(adm "
    SELECT a.balance || ' ' || n.tokens_earned || ' ' || n.jobs_completed
      FROM modelmine.nodes n JOIN modelmine.account_balances a ON a.node_id = n.id WHERE n.id = $node_b")" "45 45 1"
check "A's node is charged the lost lease (jobs_failed 1)" \
    "$(adm "SELECT jobs_failed FROM modelmine.nodes WHERE id = $node_a")" 1
check "the user paid the stake once" "$(as_user "$user" "SELECT modelmine.balance()")" $((1000 - 57))
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

stop_worker B TERM
check "B exits 0 on SIGTERM" "$IT_RC" 0
it_end
