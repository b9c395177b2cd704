#!/usr/bin/env bash
# scripts/bench-train.sh: the built-in trainers with their default config against scikit-learn, side by
# side on identical splits (issue 18).
#
#   scripts/bench-train.sh [--seeds N] [--sets "iris moons ..."]
#
# Steps:
#   1. python3-sklearn (Debian's, with numpy and scipy) is installed with apt-get when missing (as root, or
#      through sudo -n); the script uses /usr/bin/python3, whatever python3 is first on PATH.
#   2. The training library is built (make -C worker) and linked into a small driver,
#      scripts/lib/train-bench.c, which runs one job through mm_train_run exactly as the worker's trainer
#      does (file:// dataset, the job config as given) and writes the split the library made.
#   3. scripts/lib/bench-train.py generates the six data sets (iris, make_moons(1000, noise 0.25),
#      make_blobs(1000, 4 centres, std 2), breast_cancer, digits, make_regression(1000, 8 features, noise
#      10)) as CSV, and for each trainer (logreg and mlp on the classification sets, linreg on the
#      regression set) and each seed 1..N runs the driver with {"trainer", "seed", "dataset"} and nothing
#      else (the defaults), then fits scikit-learn's LogisticRegression(), MLPClassifier(random_state=seed)
#      or LinearRegression() with its defaults on the same training rows, standardised like the library
#      does, and scores both on the same validation rows. digits gets one more row, mlp with
#      "hidden_layers": [100], scikit-learn's default architecture, for fit times on equal terms.
# Prints a Markdown table: mean ± sd over the seeds of validation accuracy (R^2 for regression) in %, the
# gap in points (ModelMine minus scikit-learn), the mean fit time of each side and their ratio, the
# library's whole job time (reading the CSV included) and the epochs it ran. Everything runs on one
# thread (OMP/OpenBLAS/MKL threads = 1, as the worker trains one job per process). Figures only: nothing
# here asserts a timing or an accuracy (the floors are worker/tests/test_defaults.c).
set -euo pipefail

seeds=5
sets=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --seeds) seeds=$2; shift 2 ;;
        --sets) sets=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-train: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3

if ! "$py" -c 'import sklearn' 2>/dev/null; then
    echo "bench-train: installing python3-sklearn"
    if [[ $EUID -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "bench-train: error: python3-sklearn is missing and cannot be installed without root;" \
             "run: apt-get install --no-install-recommends python3-sklearn" >&2
        exit 1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends python3-sklearn </dev/null
fi

tmp=$(mktemp -d /tmp/mm-bench-train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

make --no-print-directory -s -C "$repo/worker" train/libmmtrain.a
# shellcheck disable=SC2046  # pkg-config's output is a word list
cc -std=c11 -D_XOPEN_SOURCE=700 -O2 -I"$repo/worker/train" -o "$tmp/train-bench" \
    "$repo/scripts/lib/train-bench.c" "$repo/worker/train/libmmtrain.a" \
    $(pkg-config --cflags --libs jansson libcurl) -lm

# getconf, not nproc: nproc obeys OMP_NUM_THREADS
echo "bench-train: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "?")," \
     "$(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCH_SETS="$sets" \
    "$py" "$repo/scripts/lib/bench-train.py" "$tmp/train-bench" "$tmp" "$seeds"
