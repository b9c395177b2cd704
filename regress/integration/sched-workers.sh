#!/usr/bin/env bash
# sched-workers (issue 19): scheduling with real workers.
#
# Placement: three workers advertise what they offer (small: --memory-mb 1024 --cores 1; big:
# --memory-mb 8192 --cores 4 --label gpu; auto: what /proc says). Jobs that need 4096 MB never run
# on small, jobs that need the gpu label only on big; a job no node offers is refused at submit
# (MM003) and nothing is staked.
#
# Fair share: ann floods the queue with 200 jobs; once the three workers are busy with them, ben
# submits 5. The bound: after ben's submit commits, a claim takes one of ann's jobs before ben's
# last has started only while every one of ben's unclaimed jobs is held by a concurrent claim (SKIP
# LOCKED), so at most one per worker: at most 3 of ann's jobs start between ben's submit and the start
# of ben's last job.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin sched-workers

signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
ann=$(signup ann@example.com "ann password")
ben=$(signup ben@example.com "ben password")

step "three workers advertise their capacity"
start_worker small --memory-mb 1024 --cores 1
start_worker big --memory-mb 8192 --cores 4 --label gpu
start_worker auto
small=$(node_of small)
big=$(node_of big)
auto=$(node_of auto)
wait_until 20 "all three set their capabilities" \
    "SELECT count(*) = 3 FROM modelmine.nodes WHERE capabilities ? 'memory_mb'"
check "small offers 1024 MB, 1 core, no label" \
    "$(adm "SELECT memory_mb || ' ' || cores || ' ' || labels::text FROM modelmine.nodes WHERE id = $small")" "1024 1 {}"
check "big offers 8192 MB, 4 cores, gpu" \
    "$(adm "SELECT memory_mb || ' ' || cores || ' ' || labels::text FROM modelmine.nodes WHERE id = $big")" "8192 4 {gpu}"
check "auto offers MemTotal from /proc/meminfo" \
    "$(adm "SELECT memory_mb FROM modelmine.nodes WHERE id = $auto")" "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
check "auto offers the online processors" "$(adm "SELECT cores FROM modelmine.nodes WHERE id = $auto")" "$(getconf _NPROCESSORS_ONLN)"

step "placement: jobs that need 4096 MB never run on small, gpu jobs only on big"
check "9999999 MB is refused at submit (MM003)" "$(as_user "$ann" "
    SELECT modelmine.submit_job('too big', '{\"trainer\": \"noop\"}', requirements => '{\"memory_mb\": 9999999}')" 2>&1 |
    grep -c 'no node offers 9999999 MB of memory' || true)" 1
check "and nothing was staked" "$(as_user "$ann" "SELECT modelmine.balance()")" 1000
as_user "$ann" "
    SELECT count(modelmine.submit_job('mem ' || i, '{\"trainer\": \"noop\"}', NULL, 1,
                                      requirements => '{\"memory_mb\": 4096}')) FROM generate_series(1, 6) i;
    SELECT count(modelmine.submit_job('gpu ' || i, '{\"trainer\": \"noop\"}', NULL, 1,
                                      requirements => '{\"labels\": [\"gpu\"]}')) FROM generate_series(1, 4) i;
    SELECT count(modelmine.submit_job('plain ' || i, '{\"trainer\": \"noop\"}', NULL, 1)) FROM generate_series(1, 6) i;
" >/dev/null
check_within 30 "all 16 completed" "SELECT count(*) = 16 FROM modelmine.jobs WHERE status = 'COMPLETED'"
check "no job that needs 4096 MB ran on small" \
    "$(adm "SELECT count(*) FROM modelmine.jobs WHERE need_memory_mb > 0 AND node_id = $small")" 0
check "every gpu job ran on big" \
    "$(adm "SELECT count(*) FROM modelmine.jobs WHERE need_labels <> '{}' AND node_id <> $big")" 0

step "fair share: ann floods the queue with 200 jobs, ben submits 5"
as_user "$ann" "SELECT count(modelmine.submit_job('flood ' || i, '{\"trainer\": \"noop\"}', NULL, 1))
                  FROM generate_series(1, 200) i" >/dev/null
wait_until 30 "the workers are busy with ann's flood" \
    "SELECT count(*) >= 20 FROM modelmine.jobs WHERE title LIKE 'flood %' AND started_at IS NOT NULL"
as_user "$ben" "SELECT count(modelmine.submit_job('ben ' || i, '{\"trainer\": \"noop\"}', NULL, 1))
                  FROM generate_series(1, 5) i" >/dev/null
t_ben=$(adm "SELECT clock_timestamp()")
check_within 30 "ben's 5 jobs completed" "SELECT count(*) = 5 FROM modelmine.jobs WHERE title LIKE 'ben %' AND status = 'COMPLETED'"
between=$(adm "SELECT count(*) FROM modelmine.jobs
                WHERE title LIKE 'flood %' AND started_at > '$t_ben'
                  AND started_at < (SELECT max(started_at) FROM modelmine.jobs WHERE title LIKE 'ben %')")
echo "ann's jobs started between ben's submit and ben's last start: $between"
check_true "at most 3 (one per worker) of ann's jobs started before ben's last" test "$between" -le 3
check "ann still has work queued (ben did not wait for the flood to drain)" \
    "$(adm "SELECT count(*) > 0 FROM modelmine.jobs WHERE title LIKE 'flood %' AND status = 'PENDING'")" t
for w in small big auto; do stop_worker "$w" TERM 20; done
check "no invariant is violated" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
it_end
