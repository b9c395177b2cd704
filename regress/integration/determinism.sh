#!/usr/bin/env bash
# determinism: honest replicas of a job agree.  The built-in trainers are deterministic given the
# config and its seed, and a config without a seed trains with the job id as its seed (worker/src/
# task.c task_default_seed).  This builds the training library and a one-job driver
# (train-replica.c) at -O0, -O2, -O3 -march=native, and -O3 -march=native -std=gnu11
# -ffp-contract=fast (fused multiply-adds where the CPU has them: what a node's own build might do;
# the worker's Makefile builds ISO C11, which contracts nothing), runs every built-in trainer on the
# same job at each build (with epochs given, and with the defaults: L-BFGS to convergence, Adam with
# early stopping), and checks that the results agree as the validator requires: the same epochs,
# loss within loss_tolerance_ppm and accuracy within accuracy_tolerance_ppm (defaults, 1000
# millionths).  It prints the largest
# differences seen.  A different job id gives a different seed, so different weights: the check that
# the seed really comes from the job id.  No database is needed.
set -euo pipefail
. "$MM_REPO/regress/integration/lib.sh"
IT_NAME=determinism
IT_CHECKS=0
IT_FAILS=0
IT_STARTED=$SECONDS
tmp=$(mktemp -d /tmp/mm-determinism.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

step "build the trainers at four optimisation settings"
pkg=$(pkg-config --cflags --libs jansson libcurl)
builds=("-O0" "-O2" "-O3 -march=native" "-O3 -march=native -std=gnu11 -ffp-contract=fast")
for i in "${!builds[@]}"; do
    # shellcheck disable=SC2086  # the flags and pkg-config's output are word lists
    cc -std=c11 -D_XOPEN_SOURCE=700 ${builds[$i]} -I"$MM_REPO/worker/train" \
        -o "$tmp/train-$i" "$MM_REPO/regress/integration/train-replica.c" "$MM_REPO"/worker/train/*.c \
        $pkg -lm
done
pass "built at ${builds[*]}"

step "every built-in trainer, one job (id 4242, no seed in its config), on every build"
configs=(
    '{"trainer": "logreg", "epochs": 30, "dataset": {"synthetic": "blobs", "n": 600}}'
    '{"trainer": "mlp", "epochs": 30, "hidden_layers": [16, 8], "dataset": {"synthetic": "moons", "n": 600}}'
    '{"trainer": "mlp", "epochs": 20, "activation": "tanh", "dataset": {"synthetic": "spirals", "n": 600}}'
    '{"trainer": "linreg", "epochs": 30, "dataset": {"synthetic": "linear", "n": 600, "features": 4}}'
    '{"trainer": "noop"}'
    # the defaults (issue 18): lbfgs to convergence, adam with early stopping, no epochs given
    '{"trainer": "logreg", "dataset": {"synthetic": "blobs", "n": 600, "classes": 4, "noise": 3}}'
    '{"trainer": "mlp", "dataset": {"synthetic": "moons", "n": 600, "noise": 0.25}}'
    '{"trainer": "linreg", "dataset": {"synthetic": "linear", "n": 600, "features": 4}}'
)
tol=0.001  # loss_tolerance_ppm and accuracy_tolerance_ppm, 1000 millionths
for c in "${configs[@]}"; do
    name=$(jq -r '.trainer + (if .activation then "/" + .activation else "" end)
                  + (if .epochs or .trainer == "noop" then "" else " (defaults)" end)' <<<"$c")
    ref=$("$tmp/train-0" "$c" 4242)
    for ((i = 1; i < ${#builds[@]}; i++)); do
        got=$("$tmp/train-$i" "$c" 4242)
        verdict=$(awk -v a="$ref" -v b="$got" -v tol="$tol" 'BEGIN {
            split(a, x, " "); split(b, y, " ");
            dl = x[2] - y[2]; if (dl < 0) dl = -dl;
            scale = (x[2] < 0 ? -x[2] : x[2]); if (scale < 1) scale = 1;
            da = 0; if (x[3] != "null") { da = x[3] - y[3]; if (da < 0) da = -da }
            ok = (x[1] == y[1]) && (dl <= tol * scale) && (x[3] == "null") == (y[3] == "null") && da <= tol;
            printf "%s %.3g %.3g", ok ? "agree" : "DISAGREE", dl, da }')
        check "$name: -O0 and ${builds[$i]} agree (epochs, |loss diff|, |accuracy diff|: ${verdict#* })" \
            "${verdict%% *}" agree
    done
    if [[ $name != noop ]]; then
        other=$("$tmp/train-0" "$c" 4243)
        check_true "$name: another job id trains from another seed (different loss)" \
            test "$(cut -d' ' -f2 <<<"$ref")" != "$(cut -d' ' -f2 <<<"$other")"
    fi
done
it_end
