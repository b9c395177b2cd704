#!/usr/bin/env bash
# worker-sigterm: SIGTERM drains a worker: it stops claiming, gives a job that does not finish within
# --drain-timeout back to the queue (the attempt still counts), and exits 0; another worker finishes it.
#
# Worker A (--drain-timeout 2, a 30 s lease so that only the release can make the job PENDING again)
# runs a slow job. We send SIGTERM and at once submit a quick job: A must not claim it while draining.
# After about 2 s A kills its trainer, releases the slow job (PENDING, attempts 1, no node) and
# exits 0. Worker B then runs both jobs; A's node is paid nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-sigterm

slow='{"trainer":"mlp","optimizer":"sgd","dataset":{"synthetic":"moons","n":4000,"seed":5},"hidden_layers":[32,32],"epochs":1500}'

step "worker A runs a slow job"
user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
job=$(as_user "$user" "SELECT modelmine.submit_job('slow mlp', '$slow', NULL, 40)")
start_worker A --slots 2 --lease-seconds 30 --drain-timeout 2
node_a=$(node_of A)
wait_until 20 "job $job RUNNING on A's node $node_a with progress > 0" \
    "SELECT status = 'RUNNING' AND node_id = $node_a AND progress > 0 FROM modelmine.jobs WHERE id = $job"
trainer=$(trainer_pid A "$job")

step "SIGTERM A (drain timeout 2 s), then submit a quick job"
kill -TERM "$(worker_pid A)"
sent=$SECONDS
quick=$(as_user "$user" "SELECT modelmine.submit_job('quick', '{\"trainer\":\"noop\"}', NULL, 10)")
wait_worker A 10  # not stop_worker: a second SIGTERM would skip the drain
check "A exits 0" "$IT_RC" 0
echo "      A exited $((SECONDS - sent)) s after SIGTERM"
check_true "A stopped within drain timeout + 3 s" test $((SECONDS - sent)) -le 5
check_true "A logged the stop request" grep -q "stop requested: claiming no more jobs" "$IT_TMP/A.log"
check_true "A logged the release" grep -q ": job $job released back to the queue" "$IT_TMP/A.log"
check_false "A's trainer (process group $trainer) is gone" group_alive "$trainer"
check "the slow job is PENDING again, its attempt counted (1), no node, no lease" "$(adm "
    SELECT status || ' ' || attempts || ' ' || coalesce(node_id::text, '-') || ' ' || coalesce(lease_expires_at::text, '-')
      FROM modelmine.jobs WHERE id = $job")" "PENDING 1 - -"
check "A did not claim the quick job while draining" \
    "$(adm "SELECT status || ' ' || attempts FROM modelmine.jobs WHERE id = $quick")" "PENDING 0"
check "A's node status: MAINTENANCE (its last heartbeat, while draining)" \
    "$(adm "SELECT status FROM modelmine.nodes WHERE id = $node_a")" MAINTENANCE

step "worker B finishes both"
start_worker B --slots 2
node_b=$(node_of B)
wait_until 45 "both jobs COMPLETED" \
    "SELECT count(*) = 2 FROM modelmine.jobs WHERE id IN ($job, $quick) AND status = 'COMPLETED'"
check "both by B's node: the released job on its attempt 2, the quick one on its first" "$(adm "
    SELECT string_agg(node_id || ':' || attempts, ' ' ORDER BY id) FROM modelmine.jobs WHERE id IN ($job, $quick)")" \
    "$node_b:2 $node_b:1"
check "A's node earned nothing" "$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $node_a")" 0
check "B's node earned floor(40 * 0.8) + floor(10 * 0.8)" \
    "$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $node_b")" 40
check "A's node is not charged a lost job (the release is not a failure)" \
    "$(adm "SELECT jobs_failed FROM modelmine.nodes WHERE id = $node_a")" 0
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
stop_worker B TERM
check "B exits 0 on SIGTERM" "$IT_RC" 0
it_end
