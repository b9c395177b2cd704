#!/usr/bin/env bash
# chaos: the short chaos run of the suite: scripts/chaos.sh, two fixed seeds, 45 s of operations
# and faults each (then up to 45 s for every job to end, faults off). It drives the whole network
# on the suite's cluster (crash-restarting it when the schedule says so) and checks the invariants
# every few seconds and at the end; a violation prints the seed and the last actions (docs/CHAOS.md).
# Each seed meets every fault kind (scripts/chaos.sh --print-schedule shows the schedules).
set -euo pipefail
: "${MM_REPO:?run integration tests through scripts/test.sh (MM_REPO is not set)}"
: "${MM_CLUSTER_DIR:?MM_CLUSTER_DIR is not set}"
exec "$MM_REPO/scripts/chaos.sh" --seed 1 --seed 2 --seconds 45 --drain 45
