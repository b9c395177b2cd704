#!/usr/bin/env bash
# worker-lease: the worker keeps its leases with report_progress alone, declares its slots, and takes
# a busy database (SQLSTATE 55P03) as "try again", never as a refusal.
#
# Part 1, a silent job: runner "silent" prints nothing for 10 s, then its result. The worker has a
# 6 s lease, one slot (so it claims nothing that could re-queue the job) and heartbeats only once a
# minute, so only report_progress can hold the lease: sampled every half second, the lease never runs
# out, the progress stays 0, and the job completes on the first attempt.
# Part 2, a locked job row: the worker's role gets lock_timeout = 500ms in this database, and a session
# holds the job's row lock for 8 s just as runner "gated" prints its result. complete_job fails with
# 55P03 until the lock is gone; the worker logs that it will retry, then completes the job, once.
# That worker runs with --slots 3, which its capabilities declare.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-lease

cat >"$IT_TMP/silent.sh" <<'EOF'
cat >/dev/null
sleep 10
echo '{"result": {"loss": 0.5, "epochs": 1}}'
EOF
cat >"$IT_TMP/gated.sh" <<EOF
cat >/dev/null
echo '{"progress": 10}'
while [ ! -e "$IT_TMP/go" ]; do sleep 0.1; done
echo '{"result": {"loss": 0.25, "epochs": 1}}'
EOF

# wait_log NAME PATTERN SECS: a precondition, that NAME's log has a line matching PATTERN within SECS
wait_log() {
    local i
    for (( i = 0; i < $3 * 10; i++ )); do
        grep -q -- "$2" "$IT_TMP/$1.log" && { echo "waited for: $1 logged '$2'"; return 0; }
        sleep 0.1
    done
    fail "$1 did not log '$2' within $3 s"
    return 1
}

user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null

step "part 1: a job that prints nothing for 10 s, a 6 s lease, one heartbeat a minute"
job=$(as_user "$user" "SELECT modelmine.submit_job('silent', '{\"runner\":\"silent\"}', NULL, 10)")
start_worker S --slots 1 --lease-seconds 6 --heartbeat-interval 60 --runner silent="sh $IT_TMP/silent.sh"
node_s=$(node_of S)
wait_until 10 "job $job RUNNING on S" "SELECT status = 'RUNNING' AND node_id = $node_s FROM modelmine.jobs WHERE id = $job"
lapsed=0 samples=0 moved=0
while :; do
    read -r ok progress <<<"$(adm "SELECT lease_expires_at > pg_catalog.now() + interval '500 ms', progress
                                   FROM modelmine.jobs WHERE id = $job AND status = 'RUNNING'" | tr '|' ' ')"
    [[ -n "${ok:-}" ]] || break  # no longer RUNNING
    samples=$((samples + 1))
    [[ $ok == f ]] && lapsed=$((lapsed + 1))
    [[ $progress != 0 ]] && moved=$((moved + 1))
    (( samples > 60 )) && break
    sleep 0.5
done
echo "      $samples samples of the lease while the job ran, $lapsed within 0.5 s of running out"
check_true "the job ran for most of 10 s (at least 12 samples)" test "$samples" -ge 12
check "its lease never came within 0.5 s of running out" "$lapsed" 0
check "its progress stayed 0 while it ran (the keepalive re-sends 0)" "$moved" 0
wait_until 10 "job $job finished" "SELECT status <> 'RUNNING' FROM modelmine.jobs WHERE id = $job"
check "COMPLETED by S on the first attempt" \
    "$(adm "SELECT status || ' ' || node_id || ' ' || attempts FROM modelmine.jobs WHERE id = $job")" \
    "COMPLETED $node_s 1"

step "part 2: complete_job meets a locked job row (lock_timeout 500ms)"
adm "ALTER ROLE mm_worker IN DATABASE $IT_DB SET lock_timeout = '500ms'"
start_worker G --slots 3 --lease-seconds 30 --runner gated="sh $IT_TMP/gated.sh"
node_g=$(node_of G)
wait_until 10 "G connected" "SELECT last_seen IS NOT NULL FROM modelmine.nodes WHERE id = $node_g"
check "G declared its slots in its capabilities" \
    "$(adm "SELECT capabilities->'slots' FROM modelmine.nodes WHERE id = $node_g")" 3
job2=$(as_user "$user" "SELECT modelmine.submit_job('gated', '{\"runner\":\"gated\"}', NULL, 10)")
wait_until 15 "job $job2 RUNNING on G with progress 10" \
    "SELECT status = 'RUNNING' AND node_id = $node_g AND progress = 10 FROM modelmine.jobs WHERE id = $job2"
psql -X -q -d "$IT_DB" -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL &
SET application_name = 'mm-locker';
BEGIN;
SELECT 1 FROM modelmine.jobs WHERE id = $job2 FOR UPDATE;
SELECT pg_catalog.pg_sleep(8);
COMMIT;
SQL
IT_OTHER_PIDS+=($!)
wait_until 10 "a session holds job $job2's row lock" \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'mm-locker' AND query LIKE '%pg_sleep%'"
touch "$IT_TMP/go"
locked_at=$SECONDS
wait_log G "job $job2: complete_job deferred, the database is busy: .*\[55P03\]" 10
check_within 30 "job $job2 COMPLETED by G once the lock is gone" \
    "SELECT status = 'COMPLETED' AND node_id = $node_g AND attempts = 1 FROM modelmine.jobs WHERE id = $job2"
echo "      completed about $((SECONDS - locked_at)) s after the result was printed"
grep ": job $job2" "$IT_TMP/G.log" | sed 's/^/      G: /'
check "G logged the deferral once" "$(grep -c "job $job2: complete_job deferred" "$IT_TMP/G.log" || true)" 1
check "G completed the job once" "$(grep -c ": job $job2 completed" "$IT_TMP/G.log" || true)" 1
check "G neither abandoned nor failed it" "$(grep -cE ": job $job2 (abandoned|failed)" "$IT_TMP/G.log" || true)" 0
check "G's node was paid once: floor(10 * 0.8)" "$(adm "SELECT balance FROM modelmine.account_balances WHERE node_id = $node_g")" 8
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
for w in S G; do
    stop_worker "$w" TERM
    check "$w exits 0 on SIGTERM" "$IT_RC" 0
done
it_end
