#!/usr/bin/env bash
# worker-batch: a worker reports jobs that end together in one complete_jobs call (issue 15).
#
# One worker with 8 slots drains 64 noop jobs that are queued before it starts, so each claim leases 8
# jobs that end within milliseconds of each other.  complete_jobs settles a batch in one transaction,
# and a job's finished_at is its transaction's now(): jobs that share a finished_at were settled by one
# call.  The test requires batches (fewer distinct finished_at than jobs), every job settled exactly
# once with its journal rows and block, and the worker's log to name no refusal.  With --db the
# settlement and the claim of the slots it frees go in one transaction (libpq pipeline mode).
# Then EXECUTE on complete_jobs is revoked (what a 1.0 database looks like to the worker: no batch
# call): the worker says once that it reports jobs one at a time, and the next 16 jobs settle singly.
# IT_WORKER_API=1 (worker-api-batch.sh) runs the same through the gateway's POST /nodes/complete.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-batch

step "a user with 64 queued noop jobs, a worker with 8 slots"
ann=$(signup ann@example.com "ann password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
as_user "$ann" "SELECT count(modelmine.submit_job('noop ' || i, '{\"trainer\": \"noop\"}', NULL, 10))
                  FROM generate_series(1, 64) i" >/dev/null
start_worker w1 --slots 8 --group-ms 50
wait_until 30 "all 64 jobs COMPLETED" "SELECT count(*) = 64 FROM modelmine.jobs WHERE status = 'COMPLETED'"

step "batches"
calls=$(adm "SELECT count(DISTINCT finished_at) FROM modelmine.jobs WHERE status = 'COMPLETED'")
echo "      64 jobs settled in $calls transactions"
check_true "fewer settling transactions than jobs (some were batched)" test "$calls" -lt 64
check_sql "at least one batch settled 4 jobs or more" \
    "SELECT max(n) >= 4 FROM (SELECT count(*) AS n FROM modelmine.jobs GROUP BY finished_at) c"
check "each job: one stake, one reward, one fee (violations)" "$(adm "
    SELECT string_agg(j.id::text, ',') FROM modelmine.jobs j
     WHERE (SELECT array_agg(reason ORDER BY reason) FROM modelmine.journal WHERE job_id = j.id)
           <> ARRAY['fee', 'reward', 'stake']")" ""
check "one ledger block per completed job" \
    "$(adm "SELECT count(*) FROM modelmine.ledger WHERE job_id IS NOT NULL")" 64
check "the node counted 64 completions" \
    "$(adm "SELECT jobs_completed FROM modelmine.nodes WHERE name = 'w1'")" 64
check "the worker logged no refusal" "$(grep -c 'refused' "$IT_TMP/w1.log" || true)" 0
if [[ ${IT_WORKER_API:-0} != 1 ]]; then
    # --db: a batch's settlement and the claim of the slots it frees commit in one transaction, so
    # jobs leased by it started at the same now() as the batch finished
    check_sql "claims committed with settlements (jobs started in the transaction that finished others)" \
        "SELECT count(DISTINCT b.finished_at) >= 2 FROM modelmine.jobs a
           JOIN modelmine.jobs b ON a.started_at = b.finished_at AND a.id <> b.id"
fi
check "the worker logged each job's reward" "$(grep -c 'completed: node earned 8 tokens' "$IT_TMP/w1.log")" 64

step "no complete_jobs for nodes: the worker falls back to one call per job"
adm "REVOKE EXECUTE ON FUNCTION modelmine.complete_jobs(jsonb) FROM modelmine_node"
as_user "$ann" "SELECT count(modelmine.submit_job('single ' || i, '{\"trainer\": \"noop\"}', NULL, 10))
                  FROM generate_series(1, 16) i" >/dev/null
wait_until 30 "all 80 jobs COMPLETED" "SELECT count(*) = 80 FROM modelmine.jobs WHERE status = 'COMPLETED'"
check "the worker said once that it reports jobs one at a time" \
    "$(grep -c 'complete_jobs refused: .*one at a time\|call of its own from now on' "$IT_TMP/w1.log")" 1
check "the 16 later jobs settled in 16 transactions" "$(adm "SELECT count(DISTINCT finished_at)
    FROM modelmine.jobs WHERE title LIKE 'single %'")" 16
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
adm "GRANT EXECUTE ON FUNCTION modelmine.complete_jobs(jsonb) TO modelmine_node"

if [[ ${IT_WORKER_API:-0} != 1 ]]; then
    step "claim_jobs refused inside a settle-and-claim: nothing of it happened, the batch settles once"
    cat >"$IT_TMP/gated.sh" <<EOF
cat >/dev/null
while [ ! -e "$IT_TMP/go" ]; do sleep 0.05; done
echo '{"result": {"loss": 0.5, "epochs": 1}}'
EOF
    start_worker w2 --slots 4 --group-ms 500 --runner gated="sh $IT_TMP/gated.sh"
    as_user "$ann" "SELECT count(modelmine.submit_job('gated ' || i, '{\"runner\": \"gated\"}', NULL, 10))
                      FROM generate_series(1, 4) i" >/dev/null
    wait_until 30 "the 4 gated jobs RUNNING on w2" "SELECT count(*) = 4 FROM modelmine.jobs j
        JOIN modelmine.nodes n ON n.id = j.node_id WHERE j.title LIKE 'gated %' AND j.status = 'RUNNING' AND n.name = 'w2'"
    adm "REVOKE EXECUTE ON FUNCTION modelmine.claim_jobs(integer, integer) FROM modelmine_node"
    touch "$IT_TMP/go"
    wait_until 30 "the 4 gated jobs COMPLETED" "SELECT count(*) = 4 FROM modelmine.jobs
        WHERE title LIKE 'gated %' AND status = 'COMPLETED'"
    check "w2 said the combination was refused, once" \
        "$(grep -c 'settling and claiming in one transaction was refused: .*claim_jobs' "$IT_TMP/w2.log")" 1
    check "the 4 settled in one transaction (complete_jobs alone)" "$(adm "SELECT count(DISTINCT finished_at)
        FROM modelmine.jobs WHERE title LIKE 'gated %'")" 1
    check "each gated job: one stake, one reward, one fee (violations)" "$(adm "
        SELECT string_agg(j.id::text, ',') FROM modelmine.jobs j WHERE j.title LIKE 'gated %'
           AND (SELECT array_agg(reason ORDER BY reason) FROM modelmine.journal WHERE job_id = j.id)
               <> ARRAY['fee', 'reward', 'stake']")" ""
    check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
    adm "GRANT EXECUTE ON FUNCTION modelmine.claim_jobs(integer, integer) TO modelmine_node"
    stop_worker w2 TERM
    check "w2 exits 0 on SIGTERM" "$IT_RC" 0
fi

stop_worker w1 TERM
check "w1 exits 0 on SIGTERM" "$IT_RC" 0
it_end
