#!/usr/bin/env bash
# worker-trainer-children: built-in trainers run in one persistent trainer process per slot, reused
# from job to job, and replaced after a crash, a cancel, a memory limit, a hang, or --child-max-jobs.
#
# Worker A (one slot, --child-memory-limit 200, --job-timeout 8) runs:
#   reuse     three noop jobs on the same trainer process, which A forked at start: A's child,
#             leading its own process group
#   crash     a slow job whose trainer we kill with SIGSEGV mid-job (a real crash from outside: no
#             test hook in the product, and the worker cannot tell it from a bug in the trainer):
#             the job FAILS saying the trainer crashed
#   cancel    a slow job the user cancels mid-job: A kills its trainer; the job stays CANCELED
#   memory    a job whose data set (1,000,000 x 40 doubles, 320 MB) needs more than 200 MB: it FAILS
#             naming the limit, and the process is replaced
#   hung      a slow job whose trainer we stop (SIGSTOP) mid-job: no output, no exit; A kills it at
#             the job's time limit and the job FAILS with it
#   hung idle a trainer stopped between jobs does not take the next job within 4 s (half the job's
#             time limit; at most 10 s): A kills it and
#             gives the job back to the queue, which runs it on a fresh trainer (attempt 2)
# After each, the next job completes on a fresh trainer process and check_invariants() is empty.
#   flat RSS  200 noop and 20 small mlp jobs on one trainer process: its idle resident size after
#             them is within 1 MB of its size after 12 warm-up jobs of both kinds (nothing of a job
#             is kept; worker/tests/test_trainer.c checks the job loop for leaks under valgrind)
# Worker B (--child-max-jobs 3) replaces its trainer after every 3 jobs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin worker-trainer-children
# ASan's own SEGV handler would turn the SIGSEGV this test sends a trainer into an abort (signal 6)
if san_on; then ASAN_OPTIONS+=:handle_segv=0; fi

slow='{"trainer":"mlp","optimizer":"sgd","dataset":{"synthetic":"moons","n":4000,"seed":3},"hidden_layers":[32,32],"epochs":1500}'
big='{"trainer":"logreg","dataset":{"synthetic":"blobs","n":1000000,"features":40,"seed":1},"epochs":1}'
small='{"trainer":"mlp","dataset":{"synthetic":"moons","n":200,"seed":4},"hidden_layers":[8],"epochs":5}'

user=$(signup user@example.com "user password")
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
submit() { as_user "$user" "SELECT modelmine.submit_job('$1', '$2', NULL, ${3:-1})"; }
status_of() { adm "SELECT status FROM modelmine.jobs WHERE id = $1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
invariants() { check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0; }

# next_job_fresh OLD: a noop job completes on a trainer process other than OLD (which is gone)
next_job_fresh() {
    local j pid
    j=$(submit "after $1" '{"trainer":"noop"}')
    wait_until 20 "the next job $j COMPLETED" "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $j"
    pid=$(trainer_pid A "$j")
    check_true "the next job ran on a fresh trainer process ($pid, not $1)" test -n "$pid" -a "$pid" != "$1"
    check_false "the old trainer process $1 (its process group) is gone" group_alive "$1"
    fresh=$pid
}

# running_slow TITLE: submits the slow job and waits until its trainer reported progress
running_slow() {
    slow_job=$(submit "$1" "$slow")
    wait_until 20 "job $slow_job RUNNING with progress > 0" \
        "SELECT status = 'RUNNING' AND progress > 0 FROM modelmine.jobs WHERE id = $slow_job"
    slow_pid=$(trainer_pid A "$slow_job")
}

step "reuse: three noop jobs on the trainer process A forked at start"
start_worker A --slots 1 --child-memory-limit 200 --job-timeout 8
for i in 1 2 3; do ids[i]=$(submit "noop $i" '{"trainer":"noop"}'); done
wait_until 20 "the three jobs COMPLETED" \
    "SELECT count(*) = 3 FROM modelmine.jobs WHERE id IN (${ids[1]}, ${ids[2]}, ${ids[3]}) AND status = 'COMPLETED'"
first=$(trainer_pid A "${ids[1]}")
check "all three ran on one trainer process" \
    "$(trainer_pid A "${ids[2]}") $(trainer_pid A "${ids[3]}")" "$first $first"
check "it is A's child" "$(proc_stat "$first" | awk '{ print $2 }')" "$(worker_pid A)"
check_true "it leads its own process group" group_alive "$first"
check "A forked no other process for them" "$(grep -c 'ended with the job\|replaced' "$IT_TMP/A.log" || true)" 0
echo "      idle RSS: worker A $(rss_kb "$(worker_pid A)") kB, its trainer process $(rss_kb "$first") kB"

step "crash: the trainer dies of SIGSEGV mid-job"
running_slow crash
kill -SEGV "$slow_pid"
wait_until 10 "job $slow_job FAILED" "SELECT status = 'FAILED' FROM modelmine.jobs WHERE id = $slow_job"
check "its error says the trainer crashed" \
    "$(adm "SELECT error FROM modelmine.jobs WHERE id = $slow_job")" "the trainer crashed (signal 11: Segmentation fault)"
next_job_fresh "$slow_pid"
invariants

step "cancel: the user cancels a job mid-job"
running_slow cancel
as_user "$user" "SELECT modelmine.cancel_job($slow_job)" >/dev/null
gone=no
for _ in $(seq 1 30); do group_alive "$slow_pid" || { gone=yes; break; }; sleep 0.1; done
check "its trainer process (group $slow_pid) is killed within 3 s" "$gone" yes
check "the job stays CANCELED" "$(status_of "$slow_job")" CANCELED
next_job_fresh "$slow_pid"
invariants

step "memory: a job needing more than --child-memory-limit 200 MB"
if san_on; then
    echo "      skipped (MM_SANITIZE=1): ASan builds set no RLIMIT_AS (the shadow fits under none)"
else
before=$fresh
job=$(submit memory "$big")
wait_until 20 "job $job FAILED" "SELECT status = 'FAILED' FROM modelmine.jobs WHERE id = $job"
check "it ran on the idle trainer process" "$(trainer_pid A "$job")" "$before"
check_sql "its error names the limit" "SELECT error LIKE 'trainer process exceeded the memory limit of 200 MB (out of memory %' FROM modelmine.jobs WHERE id = $job"
check_true "A logged the replacement" grep -q "trainer process $before replaced after running out of memory" "$IT_TMP/A.log"
next_job_fresh "$before"
small_job=$(submit "fits the limit" "$small")
wait_until 20 "a small mlp job then COMPLETED" "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $small_job"
invariants
fi

step "hung: the trainer stops (SIGSTOP) mid-job; --job-timeout 8"
running_slow hung
kill -STOP "$slow_pid"
wait_until 15 "job $slow_job FAILED" "SELECT status = 'FAILED' FROM modelmine.jobs WHERE id = $slow_job"
check "its error: the time limit" "$(adm "SELECT error FROM modelmine.jobs WHERE id = $slow_job")" "time limit of 8 s exceeded"
next_job_fresh "$slow_pid"
invariants

step "hung idle: the trainer stops between jobs and does not take the next one"
idle=$fresh
kill -STOP "$idle"
job=$(submit "hung idle" '{"trainer":"noop"}')
wait_until 30 "job $job COMPLETED" "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $job"
check_true "A logged the hang" grep -q "job $job: trainer process $idle did not take it within 4 s (hung)" "$IT_TMP/A.log"
check_true "A gave the job back to the queue" grep -q ": job $job released back to the queue" "$IT_TMP/A.log"
check "it completed on its attempt 2" "$(adm "SELECT attempts FROM modelmine.jobs WHERE id = $job")" 2
check_true "... on a fresh trainer process" test "$(trainer_pid A "$job")" != "$idle"
check_false "the hung trainer process $idle is gone" group_alive "$idle"
invariants

step "flat RSS: 200 noop and 20 small mlp jobs on one trainer process"
as_user "$user" "SELECT count(modelmine.submit_job('warm', '{\"trainer\":\"noop\"}', NULL, 1)) FROM generate_series(1, 10)" >/dev/null
warm=$(as_user "$user" "SELECT max(modelmine.submit_job('warm', '$small', NULL, 1)) FROM generate_series(1, 2)")
wait_until 20 "12 warm-up jobs COMPLETED" "SELECT count(*) = 12 FROM modelmine.jobs WHERE title = 'warm' AND status = 'COMPLETED'"
pid=$(trainer_pid A "$warm")
rss0=$(rss_kb "$pid")
as_user "$user" "SELECT count(modelmine.submit_job('noop', '{\"trainer\":\"noop\"}', NULL, 1)) FROM generate_series(1, 200)" >/dev/null
last=$(as_user "$user" "SELECT max(modelmine.submit_job('mlp', '$small', NULL, 1)) FROM generate_series(1, 20)")
wait_until 120 "the 220 jobs COMPLETED" "SELECT count(*) = 0 FROM modelmine.jobs WHERE status <> 'COMPLETED' AND id > $warm"
rss1=$(rss_kb "$pid")
check "they all ran on trainer process $pid" "$(trainer_pid A "$last")" "$pid"
echo "      trainer process $pid: ${rss0} kB after the warm-up, ${rss1} kB after 220 more jobs"
if san_on; then  # ASan keeps freed memory in quarantine; LeakSanitizer checks for leaks instead
    echo "      RSS check skipped (MM_SANITIZE=1): ASan's quarantine holds freed memory"
else
    check_true "its RSS stayed within 1 MB (${rss0} -> ${rss1} kB)" \
        test "$rss1" -le $((rss0 + 1024))
fi
echo "      idle RSS: worker A $(rss_kb "$(worker_pid A)") kB, its trainer process $(rss_kb "$pid") kB"
invariants
stop_worker A TERM
check "A exits 0 on SIGTERM" "$IT_RC" 0
check_false "A's trainer process $pid is gone" group_alive "$pid"

step "--child-max-jobs 3: worker B replaces its trainer process after every 3 jobs"
start_worker B --slots 1 --child-max-jobs 3
first=$(as_user "$user" "SELECT min(modelmine.submit_job('max', '{\"trainer\":\"noop\"}', NULL, 1)) FROM generate_series(1, 5)")
wait_until 20 "the 5 jobs COMPLETED" "SELECT count(*) = 5 FROM modelmine.jobs WHERE id >= $first AND status = 'COMPLETED'"
pids=()
for (( j = first; j < first + 5; j++ )); do pids+=("$(trainer_pid B "$j")"); done
check "jobs 1-3 on one process, 4-5 on another" \
    "$([[ ${pids[0]} == "${pids[1]}" && ${pids[1]} == "${pids[2]}" && ${pids[3]} == "${pids[4]}" && ${pids[2]} != "${pids[3]}" ]] && echo yes)" yes
check_true "B logged why" grep -q "trainer process ${pids[0]} replaced after 3 jobs (--child-max-jobs)" "$IT_TMP/B.log"
invariants
stop_worker B TERM
check "B exits 0 on SIGTERM" "$IT_RC" 0
it_end
