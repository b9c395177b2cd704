#!/usr/bin/env bash
# cheater: a scripted cheating node fabricates results alongside three honest workers of three other
# operators, on 100 jobs with replicas 2, then on 20 single-replica jobs.
#
# The cheater (Mallory's node, driven from psql) claims like a worker and completes every job at once
# with {"accuracy": 1, "loss": 0, "epochs": <the config's>} without training.  The honest workers
# (modelmine-worker, logreg on noisy blobs) train; replicas of a job go to different operators, so a
# job holds at most one cheating result, and the validator's quorum is honest: a job with the cheater's
# result finds no quorum between two, gets a third replica, and completes with the honest pair.
# Checks: every job COMPLETED and VALID, once, with an honest canonical result and ledger node; the
# cheater is never paid (no reward row to its account, every result DISSENT and counted invalid); the
# honest nodes are paid exactly what their AGREE replicas record, the pool split over the quorum; the
# cheater's record score falls to a few points and its spot-check rate rises to 100 %, while the honest nodes,
# with 20+ validated results and none invalid, are trusted (rate 0).  Then, on single-replica jobs,
# every job the cheater claims is spot-checked, even while no other node is online, and it earns
# nothing; the honest nodes run theirs alone.
# check_invariants() stays empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cheater

step "three honest operators with a worker each, and Mallory's cheating node"
declare -A op
for o in 1 2 3; do op[$o]=$(signup "op$o@example.com" "$IT_OP_PW"); done
mallory=$(signup mallory@example.com "mallory password")
adm "UPDATE modelmine.settings SET value = 10 WHERE name = 'spotcheck_pct'"  # the default (lib.sh sets 0)
adm "UPDATE modelmine.settings SET value = 20000 WHERE name = 'signup_grant'"
owner=$(signup owner@example.com "owner password")
adm "UPDATE modelmine.settings SET value = 1000 WHERE name = 'signup_grant'"
for o in 1 2 3; do start_worker "w$o" --slots 2 --operator-email "op$o@example.com"; done
read -r cheat_id cheat_key <<<"$(register_node "$mallory" cheat '{"trainers": ["logreg"], "slots": 16}')"
wait_until 20 "the three workers registered and heartbeating" \
    "SELECT count(*) = 4 FROM modelmine.nodes WHERE last_seen IS NOT NULL"
# score and rate as claims compute them (extension/replicas.c)
rates="SELECT n.id, n.name, n.results_valid, n.results_invalid, s.score,
              modelmine._spotcheck_pct(n.results_valid, n.results_invalid, s.score) AS pct
         FROM modelmine.nodes n,
              LATERAL modelmine._record_score(n.jobs_completed, n.jobs_failed, n.results_invalid) s(score)"
check "before it cheats, the new node has record score 50 and spot-check rate spotcheck_pct (10 %)" \
    "$(adm "SELECT score || ' ' || pct FROM ($rates) r WHERE id = $cheat_id")" "50 10"

# cheat_round: one claim of up to 16 replicas, each completed at once with a made-up result.
cheat_round() {
    as_node "$cheat_key" "
        SELECT modelmine.heartbeat(1, 100, 1000) \g /dev/null
        CREATE TEMP TABLE c AS SELECT job_id, config FROM modelmine.claim_jobs(16, 60);
        SELECT count(modelmine.complete_job(job_id, jsonb_build_object('accuracy', 1, 'loss', 0,
                                                    'epochs', (config ->> 'epochs')::int)))
          FROM c;"
}
# cheat_until SQL: the cheater keeps cheating until SQL (as the superuser) is true, 90 s at most.
cheat_until() {
    local deadline=$((SECONDS + 90))
    while [[ $(adm "$1") != t ]]; do
        ((SECONDS < deadline)) || { fail "timed out waiting for: $1"; it_end; }
        cheat_round >/dev/null
        sleep 0.2
    done
}
# maintenance true|false: the honest operators pause or resume their nodes, so the cheater claims first.
maintenance() {
    for o in 1 2 3; do
        as_user "${op[$o]}" "SELECT modelmine.set_node_maintenance($(node_of "w$o"), $1)" >/dev/null
    done
}
job_config() {
    echo "{\"trainer\": \"logreg\", \"replicas\": $2, \"epochs\": 5,
           \"dataset\": {\"synthetic\": \"blobs\", \"n\": 400, \"noise\": 4, \"seed\": $1}}"
}

step "100 jobs with replicas 2 (stakes 50..149)"
{
    echo "BEGIN;"
    for k in $(seq 0 99); do
        echo "SELECT modelmine.submit_job('replicated $k', '$(job_config "$k" 2)', 'phase 1', $((50 + k)));"
    done
    echo "COMMIT;"
} >"$IT_TMP/phase1.sql"
maintenance true
as_user "$owner" "$(cat "$IT_TMP/phase1.sql")" >/dev/null
cheat_round >/dev/null
maintenance false
cheat_until "SELECT count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING')) = 0 FROM modelmine.jobs"

step "phase 1: outcomes"
check "every job COMPLETED and VALID (other outcomes)" "$(adm "
    SELECT string_agg(id || ' ' || status || ' ' || coalesce(validation, '-'), '; ')
      FROM modelmine.jobs WHERE description = 'phase 1' AND (status, validation) <> ('COMPLETED', 'VALID')")" ""
cheated=$(adm "SELECT count(*) FROM modelmine.job_replicas WHERE node_id = $cheat_id AND status = 'SUBMITTED'")
echo "      the cheater submitted $cheated results; replicas per job: $(adm "
    SELECT string_agg(n || ' results: ' || jobs || ' jobs', ', ' ORDER BY n) FROM (
        SELECT n, count(*) AS jobs FROM (SELECT job_id, count(*) AS n FROM modelmine.job_replicas
                                          WHERE status = 'SUBMITTED' GROUP BY 1) x GROUP BY n) y")"
check_true "the cheater took part (16 results or more: it claimed first)" test "$cheated" -ge 16
check "no job holds two results of one operator" "$(adm "
    SELECT count(*) FROM (SELECT job_id, operator_id FROM modelmine.job_replicas WHERE status = 'SUBMITTED'
                          GROUP BY 1, 2 HAVING count(*) > 1) x")" 0
check "every cheating result was rejected (DISSENT, reward 0)" "$(adm "
    SELECT count(*) FILTER (WHERE verdict = 'DISSENT' AND reward = 0) || '/' || count(*)
      FROM modelmine.job_replicas WHERE node_id = $cheat_id AND status = 'SUBMITTED'")" "$cheated/$cheated"
check "the cheater was never paid: no reward to its account, tokens_earned 0, balance 0" "$(adm "
    SELECT (SELECT count(*) FROM modelmine.journal r JOIN modelmine.accounts a ON a.id = r.credit_account
             WHERE a.node_id = $cheat_id) || ' ' || n.tokens_earned || ' ' || b.balance
      FROM modelmine.nodes n JOIN modelmine.account_balances b ON b.node_id = n.id WHERE n.id = $cheat_id")" "0 0 0"
check "its rejected results are counted: results_invalid = results submitted, none valid" \
    "$(adm "SELECT results_invalid || ' ' || results_valid FROM modelmine.nodes WHERE id = $cheat_id")" "$cheated 0"
check "the canonical result and the ledger's node are never the cheater's" "$(adm "
    SELECT count(*) FROM modelmine.jobs j LEFT JOIN modelmine.ledger l ON l.job_id = j.id
      LEFT JOIN modelmine.ledger_queue q ON q.job_id = j.id
     WHERE j.node_id = $cheat_id OR l.node_id = $cheat_id OR q.node_id = $cheat_id
        OR (j.result ->> 'loss')::float8 = 0")" 0
check "one ledger entry per job" "$(adm "
    SELECT (SELECT count(*) FROM modelmine.ledger WHERE job_id IS NOT NULL)
         + (SELECT count(*) FROM modelmine.ledger_queue)")" 100
check "honest nodes are paid exactly what their AGREE replicas record: floor(stake * 80 / 100) / quorum (violations)" "$(adm "
    WITH q AS (SELECT job_id, count(*) AS n FROM modelmine.job_replicas WHERE verdict = 'AGREE' GROUP BY 1)
    SELECT string_agg(format('job %s node %s: %s', r.job_id, r.node_id, r.reward), '; ')
      FROM modelmine.job_replicas r JOIN q ON q.job_id = r.job_id JOIN modelmine.jobs j ON j.id = r.job_id
     WHERE r.verdict = 'AGREE' AND r.reward <> j.stake * 80 / 100 / q.n")" ""
check "each honest node's journal rewards equal its replicas' rewards, and it earned some (violations)" "$(adm "
    SELECT string_agg(format('%s: journal %s, replicas %s', n.name, j.s, r.s), '; ')
      FROM modelmine.nodes n JOIN modelmine.accounts a ON a.node_id = n.id
      LEFT JOIN (SELECT credit_account, sum(amount) AS s FROM modelmine.journal WHERE reason = 'reward' GROUP BY 1) j
        ON j.credit_account = a.id
      LEFT JOIN (SELECT node_id, sum(reward) AS s FROM modelmine.job_replicas GROUP BY 1) r ON r.node_id = n.id
     WHERE n.id <> $cheat_id AND (j.s IS DISTINCT FROM r.s OR coalesce(j.s, 0) = 0)")" ""
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

step "phase 1: reputation and spot-check rates"
echo "      $(adm "SELECT string_agg(format('%s: valid %s invalid %s record score %s spot-check %s%%', name,
    results_valid, results_invalid, score, pct), '; ' ORDER BY id) FROM ($rates) r")"
check "the cheater's record score is round(100 * 1 / (10 * invalid + 2)), at most 5, and its spot-check rate 100 %" \
    "$(adm "SELECT score = round(100.0 / (10 * results_invalid + 2)) AND score <= 5 AND pct = 100
              FROM ($rates) r WHERE id = $cheat_id")" t
check "the honest nodes have 20+ validated results, none invalid: trusted, spot-check rate 0" "$(adm "
    SELECT count(*) FROM ($rates) r WHERE id <> $cheat_id AND results_valid >= 20 AND results_invalid = 0
       AND pct = 0")" 3

step "phase 2: 20 single-replica jobs; the cheater claims 16 first"
{
    echo "BEGIN;"
    for k in $(seq 100 119); do
        echo "SELECT modelmine.submit_job('single $k', '$(job_config "$k" 1)', 'phase 2', 100);"
    done
    echo "COMMIT;"
} >"$IT_TMP/phase2.sql"
# The honest nodes pause (maintenance) while the jobs are submitted and the cheater claims: it alone
# is online, and it was caught, so its claims are checked anyway.
maintenance true
as_user "$owner" "$(cat "$IT_TMP/phase2.sql")" >/dev/null
cheat_round >/dev/null
maintenance false
wait_until 60 "the honest nodes finished the rest" \
    "SELECT count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING')) = 0 FROM modelmine.jobs"
spotted=$(adm "SELECT count(DISTINCT job_id) FROM modelmine.job_replicas r JOIN modelmine.jobs j ON j.id = r.job_id
               WHERE j.description = 'phase 2' AND r.node_id = $cheat_id")
echo "      the cheater claimed $spotted of the 20"
check "the cheater claimed 16 (it claimed alone first)" "$spotted" 16
check "every job the cheater claimed was spot-checked (wanted 2+, VALID without it)" "$(adm "
    SELECT count(*) FILTER (WHERE j.replicas_wanted >= 2 AND j.validation = 'VALID' AND r.verdict = 'DISSENT')
      FROM modelmine.job_replicas r JOIN modelmine.jobs j ON j.id = r.job_id
     WHERE j.description = 'phase 2' AND r.node_id = $cheat_id")" "$spotted"
check "the honest, trusted nodes ran the others alone (replicas_wanted 1, validation NULL)" "$(adm "
    SELECT count(*) FROM modelmine.jobs j WHERE j.description = 'phase 2' AND j.status = 'COMPLETED'
       AND j.replicas_wanted = 1 AND j.validation IS NULL
       AND NOT EXISTS (SELECT 1 FROM modelmine.job_replicas r WHERE r.job_id = j.id AND r.node_id = $cheat_id)")" \
    "$((20 - spotted))"
check "the cheater still earned nothing" "$(adm "SELECT tokens_earned FROM modelmine.nodes WHERE id = $cheat_id")" 0
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

step "stopping the workers"
for o in 1 2 3; do
    stop_worker "w$o" TERM
    check "w$o exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
