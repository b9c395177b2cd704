#!/usr/bin/env bash
# ledger-concurrency: 8 nodes complete 800 jobs at once, and the ledger is still one linear chain.
#
# pgbench runs 8 clients, each bound to its own node (authenticate_node, as a worker would), each doing
# 100 times: claim_jobs(1) in one transaction, complete_job in the next. Completions overlap, so many
# find the seal lock taken and leave their entry queued for the next sealer. Meanwhile a reader
# verifies the chain and reads the digest (which seals) in a loop. Afterwards:
#   - every job is COMPLETED, and recorded in exactly one block;
#   - heights are 0..800 with no gap; every prev_hash is the hash of the block before; no two blocks
#     share a prev_hash (no fork); nothing is left queued;
#   - verify_ledger() and scripts/verify-ledger (python3) agree the chain is ok, with the same head;
#   - every verification run during the load said ok; check_invariants() is empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin ledger-concurrency

clients=8
per_client=100
jobs=$((clients * per_client))
command -v pgbench >/dev/null || { fail "pgbench is required (postgresql-client)"; it_end; }

step "$clients nodes, $jobs jobs"
adm "UPDATE modelmine.settings SET value = 1000000 WHERE name = 'signup_grant'" >/dev/null
ann=$(signup ann@example.com "ann password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
adm "CREATE TABLE bench_nodes (client integer PRIMARY KEY, node_id bigint, node_key text);
     GRANT SELECT ON bench_nodes TO mm_worker;" >/dev/null
for (( c = 0; c < clients; c++ )); do
    read -r id key <<<"$(register_node "$op" "node $c" '{"trainers": ["noop"]}')"
    adm "INSERT INTO bench_nodes VALUES ($c, $id, '$key')" >/dev/null
done
as_user "$ann" "SELECT count(modelmine.submit_job('job ' || i, '{\"trainer\": \"noop\"}', NULL, 10 + i % 37))
                  FROM generate_series(1, $jobs) i" >/dev/null
check "$jobs jobs pending" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'PENDING'")" "$jobs"

# One pgbench transaction = four statements, each its own transaction (no BEGIN in the script); the
# heartbeat keeps the node ONLINE however long the run takes.
cat >"$IT_TMP/complete.sql" <<'SQL'
SELECT modelmine.authenticate_node(node_key) AS node FROM bench_nodes WHERE client = :client_id \gset
SELECT modelmine.heartbeat(1, 100, 1000) IS NOT NULL AS online \gset
SELECT COALESCE((SELECT job_id FROM modelmine.claim_jobs(1, 300)), 0) AS job \gset
SELECT CASE WHEN :job > 0 THEN modelmine.complete_job(:job, jsonb_build_object('accuracy', (:job % 100) / 100.0, 'loss', 1.0 / :job, 'epochs', :job % 7)) END;
SQL

# The reader: one session that, until no job is open (at most 120 s), verifies the chain, records the
# verdict, reads the digest (which asks for sealing at its commit) and commits, every 10 ms.
adm "CREATE TABLE reader_runs (ok boolean, height bigint, reason text)" >/dev/null
reader() {
    adm "DO \$\$
         DECLARE
             deadline timestamptz := clock_timestamp() + interval '120 s';
         BEGIN
             LOOP
                 INSERT INTO reader_runs SELECT v.ok, v.height, v.reason FROM modelmine.verify_ledger() v;
                 PERFORM modelmine.ledger_digest();
                 COMMIT;
                 EXIT WHEN clock_timestamp() > deadline
                        OR NOT EXISTS (SELECT FROM modelmine.jobs WHERE status IN ('PENDING', 'RUNNING'));
                 PERFORM pg_sleep(0.01);
             END LOOP;
         END \$\$" >/dev/null
}

step "pgbench: $clients clients x $per_client claim + complete"
reader &
IT_OTHER_PIDS+=($!)
reader_pid=$!
rc=0
pgbench -n -U mm_worker -d "$IT_DB" -c "$clients" -j "$clients" -t "$per_client" -f "$IT_TMP/complete.sql" \
    >"$IT_TMP/pgbench.log" 2>&1 || rc=$?
wait "$reader_pid" || fail "the reader session failed"
sed -n 's/^\(number of failed transactions\|latency average\|tps\) /  &/p' "$IT_TMP/pgbench.log"
check "pgbench finished without errors" "$rc" 0
# A claim that found nothing (every pending row locked by other claimers) leaves a job pending; finish
# those in one more session, so the count below is exact either way.
left=$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'PENDING'")
echo "jobs left pending by empty claims: $left"
if [[ $left -gt 0 ]]; then
    as_node "$(adm "SELECT node_key FROM bench_nodes WHERE client = 0")" "
        SELECT modelmine.heartbeat(1, 100, 1000);
        DO \$\$
        DECLARE
            j bigint;
        BEGIN
            LOOP  -- one slot: claim one, complete it, claim the next
                SELECT job_id INTO j FROM modelmine.claim_jobs(1, 300);
                EXIT WHEN j IS NULL;
                PERFORM modelmine.complete_job(j, '{\"loss\": 1, \"epochs\": 1}');
            END LOOP;
        END \$\$" >/dev/null
fi

step "one linear chain"
adm "SELECT modelmine.ledger_digest()" >/dev/null  # seals what is still queued
check "every job COMPLETED" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'COMPLETED'")" "$jobs"
check "heights 0..$jobs, no gap" "$(adm "SELECT count(*) || ' ' || min(height) || '..' || max(height) FROM modelmine.ledger")" \
    "$((jobs + 1)) 0..$jobs"
check "genesis links to 32 zero bytes, every other block to the hash before it" "$(adm "
    SELECT count(*) FROM modelmine.ledger l LEFT JOIN modelmine.ledger p ON p.height = l.height - 1
     WHERE l.prev_hash = COALESCE(p.hash, decode(repeat('00', 32), 'hex'))")" "$((jobs + 1))"
check "no two blocks share a prev_hash (no fork)" "$(adm "SELECT count(DISTINCT prev_hash) FROM modelmine.ledger")" "$((jobs + 1))"
check "every completed job in exactly one block, and no other job" "$(adm "
    SELECT count(*) FILTER (WHERE n = 1) || ' once, ' || count(*) FILTER (WHERE n <> 1) || ' not once, '
           || (SELECT count(*) FROM modelmine.ledger l LEFT JOIN modelmine.jobs j ON j.id = l.job_id
                WHERE l.height > 0 AND j.status IS DISTINCT FROM 'COMPLETED') || ' other'
      FROM (SELECT j.id, (SELECT count(*) FROM modelmine.ledger l WHERE l.job_id = j.id) AS n
              FROM modelmine.jobs j WHERE j.status = 'COMPLETED') x")" "$jobs once, 0 not once, 0 other"
check "every block's fields are its job's" "$(adm "
    SELECT count(*) FROM modelmine.ledger l JOIN modelmine.jobs j ON j.id = l.job_id
     WHERE l.user_id = j.user_id AND l.node_id = j.node_id AND l.stake = j.stake AND l.reward = j.stake * 80 / 100
       AND l.fee = j.stake - l.reward AND l.completed_at = j.finished_at AND l.loss = j.result ->> 'loss'")" "$jobs"
check "nothing left queued" "$(adm "SELECT count(*) FROM modelmine.ledger_queue")" 0
check "verify_ledger() ok" "$(adm "SELECT ok || ' ' || height || ' ' || blocks_checked FROM modelmine.verify_ledger()")" \
    "true $jobs $((jobs + 1))"
head=$(adm "SELECT encode(hash, 'hex') FROM modelmine.ledger WHERE height = $jobs")
check "scripts/verify-ledger agrees" "$("$MM_REPO/scripts/verify-ledger" -U mm_client -d "$IT_DB" 2>&1)" \
    "ok height=$jobs head=$head"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
check "every verification during the load said ok" \
    "$(adm "SELECT count(*) FILTER (WHERE NOT ok) || ' bad, ' || CASE WHEN count(*) > 10 THEN 'over 10' ELSE count(*)::text END || ' runs'
              FROM reader_runs")" "0 bad, over 10 runs"
echo "verifications during the load: $(adm "SELECT count(*) || ', at heights ' || min(height) || '..' || max(height) FROM reader_runs")"
echo "sealing passes: $(adm "SELECT count(*) || ' for ' || sum(n) || ' blocks, up to ' || max(n) || ' blocks in one pass'
                             FROM (SELECT created_at, count(*) AS n FROM modelmine.ledger WHERE height > 0 GROUP BY 1) p")"
echo "completions per node: $(adm "SELECT string_agg(n::text, ' ' ORDER BY node_id) FROM
                                   (SELECT node_id, count(*) AS n FROM modelmine.ledger WHERE height > 0 GROUP BY 1) x")"
it_end
