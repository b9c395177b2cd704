#!/usr/bin/env bash
# probe-plans: the claim and settlement statements keep per-key plans whatever the statistics say.
#
# A backend keeps the plans of the extension's statements for its whole life, made from the
# statistics of their first use.  This test makes those statistics as misleading as a fresh network
# makes them: the jobs table is analyzed while 300 jobs wait and none runs, then another node leases
# 60 of them.  A node then claims and settles a batch with auto_explain showing every nested plan.
# The statements marked as probes (MmPlan.probe) must read the batch's jobs by key: no plan of theirs
# may scan jobs or job_replicas (seq or bitmap) or hash-join them; before they were probes, the
# settlement's UPDATE hashed every RUNNING job via jobs_open_idx, and the fair-share idleness check
# scanned jobs from its first page.  Nor may the settlement's and the lease's statements walk an
# index whole (an index scan without a condition on the job's id): a status test let them walk
# jobs_open_idx's RUNNING entries (since dropped; any partial index of open jobs would do), or a
# partial index of live replicas, for every batch.  The checks
# of what the claim's rows name (refs.c) must probe the named rows by key as well, and the commit's
# "anything left?" checks must not seq-scan their churning tables.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin probe-plans

step "300 queued jobs, the jobs table analyzed with none running; another node leases 60"
ann=$(signup ann@example.com "ann password")
ops=$(signup ops@example.com "ops password")
as_user "$ann" "SELECT count(*) FROM modelmine.submit_jobs((SELECT jsonb_agg(jsonb_build_object(
                  'title', 'j' || i, 'config', '{\"trainer\": \"noop\"}'::jsonb, 'stake', 3))
                  FROM generate_series(1, 300) i))" >/dev/null
read -r _ key_a <<<"$(register_node "$ops" a '{"trainers": ["noop"], "slots": 64}')"
read -r _ key_b <<<"$(register_node "$ops" b '{"trainers": ["noop"], "slots": 64}')"
adm "ANALYZE modelmine.jobs; ANALYZE modelmine.job_replicas;"
check "node b leased 60 jobs" "$(as_node "$key_b" "SELECT count(*) FROM modelmine.claim_jobs(60, 300)")" 60

step "node a claims 8 and settles them, every nested plan shown"
# auto_explain is loaded by the superuser, who then acts as the worker's role and node
psql -X -At -q -v ON_ERROR_STOP=1 -d "$IT_DB" -v key="$key_a" >"$IT_TMP/out" 2>"$IT_TMP/plans" <<'SQL'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SET ROLE mm_worker;
SELECT modelmine.authenticate_node(:'key') \g /dev/null
CREATE TEMP TABLE mine AS SELECT job_id FROM modelmine.claim_jobs(8, 300);
SELECT count(*) FILTER (WHERE reward IS NOT NULL) FROM modelmine.complete_jobs(
    (SELECT jsonb_agg(jsonb_build_object('job_id', job_id,
                      'result', jsonb_build_object('accuracy', 0.9, 'loss', 0.1, 'epochs', 1)))
       FROM mine));
SQL
check "complete_jobs settled the 8 jobs it was given" "$(tail -n 1 "$IT_TMP/out")" 8

# plans PREFIX: the plans auto_explain showed for statements whose text starts with PREFIX
plans() {
    awk -v p="$1" '/duration: .* plan:/ { keep = 0 }
                   /Query Text: / { keep = index($0, "Query Text: " p) > 0 }
                   keep' "$IT_TMP/plans"
}
# bad PREFIX: the lines of those plans that scan or hash jobs or job_replicas
bad() {
    plans "$1" | grep -E "(Seq|Bitmap Heap) Scan on (jobs|job_replicas)|Bitmap Index Scan on (jobs|job_replicas)|Hash (Join|Semi Join|Anti Join)" || true
}
for stmt in "UPDATE modelmine.jobs j SET status = 'COMPLETED', result = c.result" \
            "UPDATE modelmine.job_replicas r SET status = 'SUBMITTED'" \
            "UPDATE modelmine.job_replicas r SET status = 'RELEASED'" \
            "SELECT j.id, j.stake FROM pg_catalog.unnest" \
            "INSERT INTO modelmine.ledger_queue" \
            "SELECT c.id, c.need_memory_mb" \
            "WITH c AS (SELECT * FROM ROWS FROM" \
            "SELECT f.user_id"; do
    check_true "a plan was shown for: $stmt" test -n "$(plans "$stmt")"
    check "no scan or hash of jobs or replicas in: $stmt" "$(bad "$stmt")" ""
done
# The statements a batch's ids drive probe each id by key: every scan of jobs or job_replicas in them
# has an index condition on the job's id.  With these statistics (RUNNING: none; job_replicas empty), a status test
# such as j.status = 'RUNNING' let the kept plans walk every RUNNING job of the network in
# jobs_open_idx, or every live replica in a partial index of job_replicas, and match the batch's ids
# against them.
walks() {
    plans "$1" | awk '/(Index|Index Only) Scan using [a-z_]+ on (jobs|job_replicas) / { scan = $0; next }
                      scan != "" { if ($0 !~ /Index Cond: .*[( ](job_)?id = /) print scan; scan = "" }'
}
for stmt in "UPDATE modelmine.jobs j SET status = 'COMPLETED', result = c.result" \
            "UPDATE modelmine.job_replicas r SET status = 'SUBMITTED'" \
            "UPDATE modelmine.job_replicas r SET status = 'RELEASED'" \
            "SELECT j.id, j.stake FROM pg_catalog.unnest" \
            "WITH c AS (SELECT * FROM ROWS FROM"; do
    check "every scan of jobs or replicas probes by key in: $stmt" "$(walks "$stmt")" ""
done
# The statement checks of what the claim's jobs and replicas name (refs.c) probe the named rows by key
# too, even in tables as small as this test's nodes, where a plan left alone would read them whole.
for stmt in "SELECT 'node', d.id" "SELECT 'job', d.id"; do
    check_true "a plan was shown for: $stmt" test -n "$(plans "$stmt")"
    check "no scan or hash of jobs, nodes or users in: $stmt" \
        "$(plans "$stmt" | grep -E "(Seq|Bitmap Heap) Scan on (jobs|nodes|users)|Hash (Join|Semi Join|Anti Join)" || true)" ""
done
# The commit's checks for work left to fold or seal go by the index: these tables churn, and a seq scan
# reads every row deleted since the last vacuum.
for stmt in "SELECT EXISTS (SELECT 1 FROM modelmine.ledger_queue)" \
            "SELECT EXISTS (SELECT 1 FROM modelmine.account_deltas)"; do
    check_true "a plan was shown for: $stmt" test -n "$(plans "$stmt")"
    check "no seq scan in: $stmt" "$(plans "$stmt" | grep -E "Seq Scan" || true)" ""
done
check "the invariants hold" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
it_end
