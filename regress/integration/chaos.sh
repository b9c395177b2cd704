#!/usr/bin/env bash
# chaos: the short chaos run of the suite: scripts/chaos.sh, two fixed seeds, 40 s of operations
# and faults each (then up to 45 s for every job to end, faults off). It drives the whole network
# on the suite's cluster (crash-restarting it when the schedule says so) and checks the invariants
# every few seconds and at the end; a violation prints the seed and last actions (docs/CHAOS.md).
# Each seed meets every fault kind (scripts/chaos.sh --print-schedule shows the schedules).
# Then the checks' self-test: a 10 s run that breaks the books on purpose (--inject) must fail, with
# each of the three breaks reported.
set -euo pipefail
: "${MM_REPO:?run integration tests through scripts/test.sh (MM_REPO is not set)}"
: "${MM_CLUSTER_DIR:?MM_CLUSTER_DIR is not set}"
fails=0

echo "== seeds 1 and 2, 40 s each"
if "$MM_REPO/scripts/chaos.sh" --seed 1 --seed 2 --seconds 40 --drain 45; then
    echo "ok    seeds 1 and 2 ran clean"
else
    echo "FAIL  a seed found a violation (above: the seed, what failed, the last actions)"
    fails=1
fi

echo "== self-test: seed 3, 10 s; a lost submit, a double refund, a rewritten block injected"
rc=0
out=$("$MM_REPO/scripts/chaos.sh" --seed 3 --seconds 10 --drain 20 \
      --inject lost_submit,double_settle,ledger 2>&1) || rc=$?
work=$(sed -n 's/^== chaos: seed 3, .*logs: \(.*\)$/\1/p' <<<"$out")
[[ -z "$work" ]] || rm -rf "$work"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS chaos_3 WITH (FORCE)" >/dev/null 2>&1 || true
want=("acknowledged submit lost: job 1000000000" "settled twice: job" "verify_ledger (digest first)"
      "check_invariants: job_settled_once")
missing=()
for w in "${want[@]}"; do grep -qF "$w" <<<"$out" || missing+=("$w"); done
if [[ $rc -eq 1 && ${#missing[@]} -eq 0 ]]; then
    echo "ok    the injected run failed (exit 1) and reported all of: ${want[*]}"
else
    echo "FAIL  the injected run exited $rc (want 1); not reported: ${missing[*]}"
    echo "$out" | tail -n 60
    fails=1
fi
exit "$fails"
