#!/usr/bin/env bash
# worker-api-gateway-restart: the gateway goes away twice under three busy workers (--api), once
# with SIGTERM (its drain) and once with SIGKILL (a crash, requests cut mid-way), and comes back on
# the same port; the workers reconnect and every job settles exactly once.
#
# 20 jobs of about a second of training, 3 workers with 2 slots and a 10 s lease. Trainers keep
# running while the gateway is away; a result that could not be reported, or whose answer was lost
# with the gateway, is reported again after the reconnect and must not be paid twice. Afterwards:
# every worker logged the lost gateway connection, reconnected after each restart and is still
# running; per job exactly one stake row and one reward + fee pair; check_invariants() empty;
# SIGTERM exits 0.
set -euo pipefail
IT_WORKER_API=1
. "$(dirname "$0")/lib.sh"
it_begin worker-api-gateway-restart

# wait_progress N: a precondition, that at least N jobs are COMPLETED and 2 RUNNING
wait_progress() {
    wait_until 60 "at least $1 jobs COMPLETED and 2 RUNNING" \
        "SELECT count(*) FILTER (WHERE status = 'COMPLETED') >= $1 AND count(*) FILTER (WHERE status = 'RUNNING') >= 2
           FROM modelmine.jobs"
    echo "      $(adm "SELECT string_agg(status || '=' || n, ' ') FROM
        (SELECT status, count(*) AS n FROM modelmine.jobs GROUP BY 1 ORDER BY 1) s")"
}

step "3 workers through the gateway, 20 jobs"
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

step "the gateway stops (SIGTERM) mid-run and starts again 2 s later"
wait_progress 3
gw_stop TERM
check "the gateway drained and exited 0" "$IT_GW_RC" 0
sleep 2
gw_start

step "the gateway is killed (SIGKILL) mid-run and starts again 2 s later"
wait_progress 9
gw_stop KILL 5
check "the gateway died of SIGKILL" "$IT_GW_RC" 137
sleep 2
gw_start

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
    check_true "$w logged the lost gateway connection" grep -q "lost gateway connection: " "$IT_TMP/$w.log"
    check "$w reconnected after each restart (connected 3 times or more)" \
        "$(( $(grep -c ": connected as node" "$IT_TMP/$w.log") >= 3 ))" 1
done
echo "      refusals logged by the workers (results reported again after a lost answer): $(cat "$IT_TMP"/w?.log | grep -c ' refused: ' || true)"
grep -h "lost gateway connection\|refused: " "$IT_TMP"/w?.log | sed 's/^/      /' | head -12

step "settlement"
check "journal per job: exactly 1 stake, 1 reward and 1 fee (violations)" "$(adm "
    WITH per_job AS (
        SELECT j.id, j.status,
               count(*) FILTER (WHERE r.reason = 'stake' AND r.amount = j.stake) AS stakes,
               count(*) FILTER (WHERE r.reason = 'reward' AND r.amount = j.stake * 80 / 100) AS rewards,
               count(*) FILTER (WHERE r.reason = 'fee' AND r.amount = j.stake - j.stake * 80 / 100) AS fees,
               count(r.id) AS all_rows
          FROM modelmine.jobs j LEFT JOIN modelmine.journal r ON r.job_id = j.id
         GROUP BY j.id, j.status)
    SELECT string_agg(format('job %s %s: %s stake, %s reward, %s fee, %s rows', id, status,
                             stakes, rewards, fees, all_rows), '; ')
      FROM per_job WHERE (status, stakes, rewards, fees, all_rows) <> ('COMPLETED', 1, 1, 1, 3)")" ""
check "every job COMPLETED (each outage is shorter than the 10 s lease)" \
    "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'COMPLETED'")" 20
check "the nodes earned exactly sum(floor(stake * 80 / 100))" \
    "$(adm "SELECT sum(balance) FROM modelmine.account_balances WHERE kind = 'node'")" \
    "$(adm "SELECT sum(stake * 80 / 100) FROM modelmine.jobs")"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

step "stopping the workers"
for w in w1 w2 w3; do
    stop_worker "$w" TERM
    check "$w exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
