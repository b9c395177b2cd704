#!/usr/bin/env bash
# postgres-restart: PostgreSQL crash-restarts under three busy workers; they reconnect and every job
# settles exactly once.
#
# 20 jobs of about a second of training each, 3 workers with 2 slots. Once some jobs are done and some
# are running, the shared cluster is restarted with `pg_ctl restart -m immediate` (crash recovery).
# Trainers keep running through the outage; a result that could not be reported, or whose reply was
# lost, is reported again after the reconnect and must not be paid twice. Afterwards: every worker
# logged the lost connection and a reconnect and is still running; per job exactly one stake row and
# either exactly one reward + fee pair (COMPLETED) or exactly one refund; check_invariants() empty;
# the workers exit 0 on SIGTERM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/lib/cluster.sh
. "$MM_REPO/scripts/lib/cluster.sh"
: "${MM_CLUSTER_DIR:?MM_CLUSTER_DIR is not set}"
it_begin postgres-restart

step "3 workers, 20 jobs"
user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
for w in w1 w2 w3; do start_worker "$w" --slots 2 --lease-seconds 10; done
wait_until 20 "all three workers registered and heartbeating" \
    "SELECT count(*) = 3 FROM modelmine.nodes WHERE last_seen IS NOT NULL"
as_user "$user" "SELECT count(modelmine.submit_job('moons ' || s,
    jsonb_build_object('trainer', 'mlp', 'optimizer', 'sgd', 'epochs', 200, 'hidden_layers', jsonb_build_array(32, 32),
                       'dataset', jsonb_build_object('synthetic', 'moons', 'n', 1500, 'seed', s)),
    NULL, 20 + s)) FROM generate_series(1, 20) s" >/dev/null
check "20 jobs submitted" "$(adm "SELECT count(*) FROM modelmine.jobs")" 20

step "crash-restart PostgreSQL mid-run"
wait_until 40 "at least 3 jobs COMPLETED and 3 RUNNING" \
    "SELECT count(*) FILTER (WHERE status = 'COMPLETED') >= 3 AND count(*) FILTER (WHERE status = 'RUNNING') >= 3
       FROM modelmine.jobs"
echo "      before: $(adm "SELECT string_agg(status || '=' || n, ' ') FROM
    (SELECT status, count(*) AS n FROM modelmine.jobs GROUP BY 1 ORDER BY 1) s")"
mm_cluster_restart "$MM_CLUSTER_DIR"
echo "      restarted (immediate): $(date -u +%H:%M:%S)"

step "waiting for every job to finish"
wait_until 60 "no job PENDING or RUNNING" \
    "SELECT count(*) = 0 FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING')"
echo "      after: $(adm "SELECT string_agg(status || '=' || n, ' ') FROM
    (SELECT status, count(*) AS n FROM modelmine.jobs GROUP BY 1 ORDER BY 1) s")"
echo "      attempts: $(adm "SELECT string_agg(attempts || 'x' || n, ' ') FROM
    (SELECT attempts, count(*) AS n FROM modelmine.jobs GROUP BY 1 ORDER BY 1) s")"

step "workers"
for w in w1 w2 w3; do
    check_true "$w is still running" proc_alive "$(worker_pid "$w")"
    check_true "$w logged the lost connection" grep -q "lost database connection" "$IT_TMP/$w.log"
    # a worker whose retries backed off (1, 2, 4 s ...) may still be waiting when the others have
    # finished every job: give it up to its longest backoff (30 s) to reconnect
    for (( i = 0; i < 320; i++ )); do
        (( $(grep -c ": connected as node" "$IT_TMP/$w.log") >= 2 )) && break
        sleep 0.1
    done
    check "$w reconnected (connected twice or more)" \
        "$(( $(grep -c ": connected as node" "$IT_TMP/$w.log") >= 2 ))" 1
done
echo "      refusals logged by the workers (repeated reports after the outage): $(cat "$IT_TMP"/w?.log | grep -c ' refused: ' || true)"

step "settlement"
check "journal per job: exactly 1 stake, then 1 reward + 1 fee (COMPLETED) or 1 refund (violations)" "$(adm "
    WITH per_job AS (
        SELECT j.id, j.status,
               count(*) FILTER (WHERE r.reason = 'stake' AND r.amount = j.stake) AS stakes,
               count(*) FILTER (WHERE r.reason = 'reward' AND r.amount = j.stake * 80 / 100) AS rewards,
               count(*) FILTER (WHERE r.reason = 'fee' AND r.amount = j.stake - j.stake * 80 / 100) AS fees,
               count(*) FILTER (WHERE r.reason = 'refund' AND r.amount = j.stake) AS refunds,
               count(r.id) AS all_rows
          FROM modelmine.jobs j LEFT JOIN modelmine.journal r ON r.job_id = j.id
         GROUP BY j.id, j.status)
    SELECT string_agg(format('job %s %s: %s stake, %s reward, %s fee, %s refund, %s rows', id, status,
                             stakes, rewards, fees, refunds, all_rows), '; ')
      FROM per_job
     WHERE NOT CASE status WHEN 'COMPLETED' THEN (stakes, rewards, fees, refunds, all_rows) = (1, 1, 1, 0, 3)
                           WHEN 'FAILED' THEN (stakes, rewards, fees, refunds, all_rows) = (1, 0, 0, 1, 2)
                           ELSE false END")" ""
check "every job COMPLETED (the outage is shorter than the 10 s lease)" \
    "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'COMPLETED'")" 20
check "the nodes earned exactly sum(floor(stake * 80 / 100)) over completed jobs" \
    "$(adm "SELECT sum(balance) FROM modelmine.account_balances WHERE kind = 'node'")" \
    "$(adm "SELECT sum(stake * 80 / 100) FROM modelmine.jobs WHERE status = 'COMPLETED'")"
check "the user's balance: 1000 - completed stakes" "$(as_user "$user" "SELECT modelmine.balance()")" \
    "$(adm "SELECT 1000 - coalesce(sum(stake), 0) FROM modelmine.jobs WHERE status = 'COMPLETED'")"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

step "stopping the workers"
for w in w1 w2 w3; do
    stop_worker "$w" TERM
    check "$w exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
