#!/usr/bin/env bash
# workers-30-jobs: three real workers (2 slots each) drain 28 jobs from two users, and the books add up.
#
# 27 good jobs (logreg on blobs, mlp on moons, linreg on linear data, noop) and one no node can run (a
# runner nobody offers); two more with bad configs (epochs 0, no dataset) are refused at submit by the
# workers' own validator (issue 21) and never exist. Each job's description says what must become of
# it, so every check below compares the database with what the test intended, not with itself:
#   accuracy / r2 / noop   COMPLETED, accuracy >= 0.95 (classification) or r2 >= 0.95 (regression)
#   pending:trainer        never claimed (a runner no node advertises; an unknown built-in trainer
#                          is refused at submit); the owner cancels it
# Money: each user ends with grant - sum of completed stakes; the nodes' accounts plus what the operator
# withdrew equal sum(floor(stake * 80 / 100)) over completed jobs, the fee shards the rest; one stake row
# per job, one reward and one fee row per completed job, one refund per failed or canceled job.
# Spread: the workers connect before the jobs are submitted, so one NOTIFY wakes all three; each job
# takes long enough (mlp: about a second) that every worker gets work. All three must have done some.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin workers-30-jobs

step "users, operator and three workers"
alice=$(signup alice@example.com "alice password")
bob=$(signup bob@example.com "bob password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
check "reward_pct is the default 80" "$(adm "SELECT value FROM modelmine.settings WHERE name = 'reward_pct'")" 80
check "signup grant is the default 1000" "$(adm "SELECT value FROM modelmine.settings WHERE name = 'signup_grant'")" 1000
for w in w1 w2 w3; do start_worker "$w" --slots 2; done
wait_until 20 "all three workers registered and heartbeating" \
    "SELECT count(*) = 3 FROM modelmine.nodes WHERE last_seen IS NOT NULL"

step "28 jobs: alice 15 (1 nobody can run), bob 13; two bad configs refused at submit"
# Job k (0-based over the good ones) cycles through four kinds; seeds vary the data.
good_job() {
    local k=$1
    case $((k % 4)) in
        0) echo "logreg blobs $k|accuracy|{\"trainer\":\"logreg\",\"dataset\":{\"synthetic\":\"blobs\",\"classes\":3,\"features\":4,\"n\":3000,\"seed\":$k},\"epochs\":60}" ;;
        1) echo "mlp moons $k|accuracy|{\"trainer\":\"mlp\",\"dataset\":{\"synthetic\":\"moons\",\"n\":1500,\"seed\":$k},\"hidden_layers\":[32,32],\"epochs\":200}" ;;
        2) echo "linreg linear $k|r2|{\"trainer\":\"linreg\",\"dataset\":{\"synthetic\":\"linear\",\"features\":4,\"n\":3000,\"seed\":$k},\"epochs\":60}" ;;
        3) echo "noop $k|noop|{\"trainer\":\"noop\"}" ;;
    esac
}
# submit_sql USER_TAG STAKE_BASE STAKE_STEP LINES...: one transaction, so one NOTIFY wakes every worker.
submit_sql() {
    local base=$1 stepsz=$2 i=0 title desc config
    shift 2
    echo "BEGIN;"
    for line in "$@"; do
        IFS='|' read -r title desc config <<<"$line"
        echo "SELECT modelmine.submit_job('$title', '$config', '$desc', $((base + stepsz * i)));"
        i=$((i + 1))
    done
    echo "COMMIT;"
}
alice_jobs=() bob_jobs=()
for k in $(seq 0 13); do alice_jobs+=("$(good_job "$k")"); done
for k in $(seq 14 26); do bob_jobs+=("$(good_job "$k")"); done
alice_jobs+=("unknown runner|pending:trainer|{\"runner\":\"gpt5\",\"dataset\":{\"synthetic\":\"blobs\"}}")
# Stakes 13, 16, ..., 58 (alice) and 9, 11, ..., 35 (bob): most are not multiples of 5, so the
# floor in the 80/20 split matters.
as_user "$alice" "$(submit_sql 13 3 "${alice_jobs[@]}")" >/dev/null
as_user "$bob" "$(submit_sql 9 2 "${bob_jobs[@]}")" >/dev/null
check "28 jobs submitted" "$(adm "SELECT count(*) FROM modelmine.jobs")" 28
balances_before=$(adm "SELECT sum(balance) FROM modelmine.account_balances WHERE kind = 'user'")
# refused_as USER_TOKEN SQL: the first error's "SQLSTATE: message" of SQL in the user's session
refused_as() {
    psql -X -At -q -v ON_ERROR_STOP=1 -U mm_client -d "$IT_DB" -v tok="$1" 2>&1 <<SQL |
\\set VERBOSITY verbose
SELECT modelmine.authenticate(:'tok') \\g /dev/null
$2
SQL
        sed -n 's/^.*ERROR: *//p' | head -n 1
}
check "epochs 0: refused at submit, naming the field" "$(refused_as "$alice" "SELECT modelmine.submit_job(
    'bad epochs', '{\"trainer\": \"logreg\", \"epochs\": 0, \"dataset\": {\"synthetic\": \"blobs\"}}', NULL, 10)")" \
    "22023: invalid config: epochs must be an integer from 1 to 10000 (got 0)"
check "no dataset: refused at submit, naming the field" "$(refused_as "$bob" "SELECT modelmine.submit_job(
    'no dataset', '{\"trainer\": \"mlp\", \"epochs\": 10}', NULL, 10)")" \
    '22023: invalid config: dataset is required: {"url": ..., "label": ...} or {"synthetic": ...}'
check "... nothing staked, no job made" "$(adm "SELECT count(*) || ' ' || (SELECT sum(balance)
    FROM modelmine.account_balances WHERE kind = 'user') FROM modelmine.jobs")" "28 $balances_before"

step "waiting for the queue to drain"
wait_until 60 "no job RUNNING and only the unclaimable one PENDING" \
    "SELECT count(*) FILTER (WHERE status = 'RUNNING') = 0
        AND count(*) FILTER (WHERE status = 'PENDING') = 1
        AND bool_and(status <> 'PENDING' OR description = 'pending:trainer')
       FROM modelmine.jobs"
# Give the workers two more poll intervals: the unclaimable job must still be untouched.
sleep 2

step "outcomes"
check "every classification job COMPLETED with accuracy >= 0.95 (list of violations)" "$(adm "
    SELECT string_agg(id || ' ' || title || ' ' || status || ' ' || coalesce(result->>'accuracy', '-'), '; ')
      FROM modelmine.jobs WHERE description = 'accuracy'
       AND NOT (status = 'COMPLETED' AND (result->>'accuracy')::float8 >= 0.95)")" ""
check "every linreg job COMPLETED with r2 >= 0.95 (list of violations)" "$(adm "
    SELECT string_agg(id || ' ' || title || ' ' || status || ' ' || coalesce(result->>'r2', '-'), '; ')
      FROM modelmine.jobs WHERE description = 'r2'
       AND NOT (status = 'COMPLETED' AND (result->>'r2')::float8 >= 0.95)")" ""
check "every noop job COMPLETED" \
    "$(adm "SELECT count(*) FROM modelmine.jobs WHERE description = 'noop' AND status = 'COMPLETED'")" 6
check "classification jobs counted" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE description = 'accuracy'")" 14
check "unknown runner: never claimed (PENDING, 0 attempts, no node)" "$(adm "
    SELECT status || ' ' || attempts || ' ' || coalesce(node_id::text, 'none')
      FROM modelmine.jobs WHERE description = 'pending:trainer'")" "PENDING 0 none"
unknown=$(adm "SELECT id FROM modelmine.jobs WHERE description = 'pending:trainer'")
check "unknown trainer: alice cancels it and gets the whole stake back" \
    "$(as_user "$alice" "SELECT modelmine.cancel_job($unknown)")" \
    "$(adm "SELECT stake FROM modelmine.jobs WHERE id = $unknown")"
check "no job was claimed twice" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE attempts > 1")" 0

step "spread over the nodes"
echo "      jobs per node: $(adm "SELECT string_agg(n.name || '=' || coalesce(c.n, 0), ' ' ORDER BY n.name)
    FROM modelmine.nodes n LEFT JOIN (SELECT node_id, count(*) AS n FROM modelmine.jobs GROUP BY 1) c
      ON c.node_id = n.id")"
check "all three nodes ran jobs" \
    "$(adm "SELECT count(DISTINCT node_id) FROM modelmine.jobs WHERE status IN ('COMPLETED', 'FAILED')")" 3

step "operator withdraws: all of w1's earnings, 5 tokens of w2's"
n1=$(node_of w1)
n2=$(node_of w2)
w1_balance=$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $n1")
check "withdraw all of w1's earnings returns its balance" \
    "$(as_user "$op" "SELECT modelmine.withdraw_node_earnings($n1)")" "$w1_balance"
check "withdraw 5 of w2's earnings" "$(as_user "$op" "SELECT modelmine.withdraw_node_earnings($n2, 5)")" 5
check "operator's balance: grant + withdrawn" "$(as_user "$op" "SELECT modelmine.balance()")" "$((1000 + w1_balance + 5))"

step "money"
# Expected figures come from the descriptions (what the test meant to happen), not from job statuses.
completes="description IN ('accuracy', 'r2', 'noop')"
for u in alice bob; do
    tok=$alice
    [[ $u == bob ]] && tok=$bob
    check "$u: balance = 1000 - stakes of completed jobs" "$(as_user "$tok" "SELECT modelmine.balance()")" \
        "$(adm "SELECT 1000 - sum(j.stake) FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id
                 WHERE u.email = '$u@example.com' AND $completes")"
done
check "node accounts + withdrawn = sum(floor(stake * 80 / 100)) over completed jobs" \
    "$(adm "SELECT (SELECT sum(balance) FROM modelmine.account_balances WHERE kind = 'node')
                 + (SELECT coalesce(sum(amount), 0) FROM modelmine.journal WHERE reason = 'withdrawal')")" \
    "$(adm "SELECT sum(stake * 80 / 100) FROM modelmine.jobs WHERE $completes")"
check "fee shards = sum(stake - floor(stake * 80 / 100)) over completed jobs" \
    "$(adm "SELECT sum(balance) FROM modelmine.account_balances WHERE kind = 'fee'")" \
    "$(adm "SELECT sum(stake - stake * 80 / 100) FROM modelmine.jobs WHERE $completes")"
check "escrow is empty" "$(adm "SELECT sum(balance) FROM modelmine.account_balances WHERE kind = 'escrow'")" 0
# Per job: the journal rows it must have, each once, with the right amount to the right account.
check "journal per job: 1 stake; completed: 1 reward to its node + 1 fee; others: 1 refund (violations)" "$(adm "
    WITH per_job AS (
        SELECT j.id, j.status, j.stake, j.node_id,
               count(*) FILTER (WHERE r.reason = 'stake' AND r.amount = j.stake) AS stakes,
               count(*) FILTER (WHERE r.reason = 'reward' AND r.amount = j.stake * 80 / 100
                                  AND r.credit_account = a.id) AS rewards,
               count(*) FILTER (WHERE r.reason = 'fee' AND r.amount = j.stake - j.stake * 80 / 100) AS fees,
               count(*) FILTER (WHERE r.reason = 'refund' AND r.amount = j.stake) AS refunds,
               count(*) AS all_rows
          FROM modelmine.jobs j
          LEFT JOIN modelmine.account_balances a ON a.node_id = j.node_id
          LEFT JOIN modelmine.journal r ON r.job_id = j.id
         GROUP BY j.id, j.status, j.stake, j.node_id)
    SELECT string_agg(format('job %s %s: %s stake, %s reward, %s fee, %s refund, %s rows', id, status,
                             stakes, rewards, fees, refunds, all_rows), '; ')
      FROM per_job
     WHERE NOT CASE status WHEN 'COMPLETED' THEN (stakes, rewards, fees, refunds, all_rows) = (1, 1, 1, 0, 3)
                           ELSE (stakes, rewards, fees, refunds, all_rows) = (1, 0, 0, 1, 2) END")" ""
check "node counters (tokens_earned, jobs_completed, jobs_failed) match the journal and jobs (violations)" "$(adm "
    WITH c AS (
        SELECT n.name, n.tokens_earned, n.jobs_completed, n.jobs_failed,
               (SELECT coalesce(sum(amount), 0) FROM modelmine.journal
                 WHERE reason = 'reward' AND credit_account = a.id) AS earned,
               (SELECT count(*) FROM modelmine.jobs WHERE node_id = n.id AND status = 'COMPLETED') AS completed,
               (SELECT count(*) FROM modelmine.jobs WHERE node_id = n.id AND status = 'FAILED') AS failed
          FROM modelmine.nodes n JOIN modelmine.account_balances a ON a.node_id = n.id)
    SELECT string_agg(format('%s has %s/%s/%s, jobs and journal say %s/%s/%s', name, tokens_earned,
                             jobs_completed, jobs_failed, earned, completed, failed), '; ' ORDER BY name)
      FROM c WHERE (tokens_earned, jobs_completed, jobs_failed) <> (earned, completed, failed)")" ""
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

step "stopping the workers"
for w in w1 w2 w3; do
    stop_worker "$w" TERM
    check "$w exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
