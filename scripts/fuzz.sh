#!/usr/bin/env bash
# scripts/fuzz.sh: build and run the coverage-guided fuzzers (libFuzzer, ASan, UBSan; clang).
#
# Every parser of outside input has a target (docs/TESTING.md says what each feeds):
#   packets  api/tests/fuzz_packets      Engine.IO payloads and Socket.IO packets (eiopacket.c)
#   ws       api/tests/fuzz_ws           WebSocket frames through wslay into ws.c's callbacks
#   request  api/tests/fuzz_request      /rpc requests: query arguments, body, types (rpc.c, args.c)
#   jwt      extension/tests/fuzz_jwt    the bearer token: MmJwtVerify (jwt.c, out of the backend)
#   config   worker/tests/fuzz_config    a job's config JSON (train/config.c)
#   csv      worker/tests/fuzz_csv       the CSV reader (train/csv.c)
#   dataset  worker/tests/fuzz_dataset   CSV into a dataset, split, standardised (train/dataset.c)
#   jsonl    worker/tests/fuzz_jsonl     a training child's output lines (src/task.c, task_read)
#   cli      cli/tests/fuzz_cli          the CLI's arguments (cli_main, every command's getopt)
# Each NAME has DIR/tests/fuzz/NAME/seeds (committed), DIR/tests/fuzz/NAME/regress (committed:
# inputs that once crashed, replayed first by every run, so a fixed crash stays fixed) and, for long
# runs, DIR/tests/fuzz/NAME/corpus (the grown corpus, git-ignored, kept between runs).  A crash,
# leak, timeout or failed check is saved by libFuzzer into regress/ and the target counts as
# failed: fix the code, then commit the input with the fix.
#
# --suite is the short run scripts/test.sh makes (--only fuzz): a fresh corpus per run, two
# targets at a time, and a time per target chosen to keep the fuzz part near 5 minutes of wall time
# (9 targets do not fit 60 s each in that): 60 s for the parsers of network input (packets, ws,
# request, jwt, config, csv), 30 s for dataset (the same CSV reader underneath), jsonl (the
# worker's own child) and cli (the local user's own arguments): 450 CPU-seconds, ~4 minutes.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/fuzz.sh [--seconds N] [--only NAME[,NAME...]] [--jobs J] [--suite] [--no-build]

  --seconds N   run each target N seconds (default 600); with --suite, the suite's times
  --only NAMES  only these targets (packets ws request jwt config csv dataset jsonl cli)
  --jobs J      targets run at a time (default 2)
  --suite       the short run of scripts/test.sh: 60 s or 30 s per target, a fresh corpus
  --no-build    do not run `make fuzz` first
The last line is "N passed, N failed"; exit 0 only when every target ran clean.
USAGE
}

seconds=600
only=""
jobs=2
suite=0
build=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --jobs) jobs=${2:?}; shift 2 ;;
        --suite) suite=1; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "fuzz.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 && $jobs =~ ^[0-9]+$ && $jobs -gt 0 ]] ||
    { echo "fuzz.sh: --seconds and --jobs take a positive whole number" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# name  binary  suite-seconds  extra libFuzzer options
targets=(
    "packets  api/tests/fuzz_packets     60  -dict=api/tests/fuzz_packets.dict"
    "ws       api/tests/fuzz_ws          60"
    "request  api/tests/fuzz_request     60"
    "jwt      extension/tests/fuzz_jwt   60"
    "config   worker/tests/fuzz_config   60  -dict=worker/tests/fuzz_config.dict"
    "csv      worker/tests/fuzz_csv      60"
    "dataset  worker/tests/fuzz_dataset  30"
    "jsonl    worker/tests/fuzz_jsonl    30"
    "cli      cli/tests/fuzz_cli         30  -close_fd_mask=2"
)
chosen=()
for t in "${targets[@]}"; do
    read -r name _ <<<"$t"
    if [[ -z $only || ",$only," == *",$name,"* ]]; then chosen+=("$t"); fi
done
if [[ -n $only ]]; then
    for n in ${only//,/ }; do
        printf '%s\n' "${targets[@]}" | grep -q "^$n " ||
            { echo "fuzz.sh: no target '$n'" >&2; exit 2; }
    done
fi

if [[ $build -eq 1 ]]; then
    cc=${FUZZ_CC:-clang}
    command -v "$cc" >/dev/null 2>&1 ||
        { echo "fuzz.sh: $cc not found (scripts/install-deps.sh installs clang)" >&2; exit 1; }
    echo "fuzz.sh: make fuzz"
    build_s=$SECONDS
    build_log=${TMPDIR:-/tmp}/mm-fuzz-build.$$.log
    make --no-print-directory -j"$jobs" fuzz >"$build_log" 2>&1 || {
        tail -n 40 "$build_log"; rm -f "$build_log"
        echo "fuzz.sh: make fuzz failed"; echo "0 passed, ${#chosen[@]} failed"; exit 1; }
    rm -f "$build_log"
    echo "fuzz.sh: built in $((SECONDS - build_s)) s"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mm-fuzz.XXXXXX")
declare -A pid_name=() name_line=()
# shellcheck disable=SC2317  # reached from the trap
stop() {
    for p in "${!pid_name[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0
failures=()
cpu=0

# Starts one target in the background; its log is $work/NAME.log.
start() {
    local name=$1 bin=$2 secs=$3 dir corpus
    shift 3
    dir=$(dirname "$bin")/fuzz/$name
    mkdir -p "$dir/regress"
    if [[ $suite -eq 1 ]]; then corpus=$work/$name.corpus; else corpus=$dir/corpus; fi
    mkdir -p "$corpus"
    cpu=$((cpu + secs))
    "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=1536 -print_final_stats=1 \
        -artifact_prefix="$dir/regress/" "$@" "$corpus" "$dir/seeds" "$dir/regress" \
        >"$work/$name.log" 2>&1 </dev/null &
    pid_name[$!]=$name
    name_line[$name]="$bin ${secs}s"
}

# Waits for one running target and reports it.
reap() {
    local p rc=0 name log runs cov
    wait -n -p p || rc=$?
    name=${pid_name[$p]}
    unset "pid_name[$p]"
    log=$work/$name.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "ok    $name (${name_line[$name]}, ${runs:-?} runs, ${cov:-cov ?})"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL  $name (${name_line[$name]}, exit $rc); the end of its log:"
        grep -vE '^#[0-9]+' "$log" | tail -n 40 | sed 's/^/    /'
        echo "    the input is saved in $(dirname "${name_line[$name]%% *}")/fuzz/$name/regress/"
    fi
}

echo "fuzz.sh: ${#chosen[@]} target(s), $jobs at a time"
start_s=$SECONDS
for t in "${chosen[@]}"; do
    read -r name bin suite_s extra <<<"$t"
    if [[ ! -x $bin ]]; then
        failed=$((failed + 1))
        failures+=("$name (not built)")
        echo "FAIL  $name: $bin not built"
        continue
    fi
    while [[ ${#pid_name[@]} -ge $jobs ]]; do reap; done
    # shellcheck disable=SC2086  # extra is a list of options
    start "$name" "$bin" "$([[ $suite -eq 1 ]] && echo "$suite_s" || echo "$seconds")" $extra
done
while [[ ${#pid_name[@]} -gt 0 ]]; do reap; done

echo "fuzz.sh: $cpu CPU-seconds of fuzzing in $((SECONDS - start_s)) s"
[[ ${#failures[@]} -eq 0 ]] || echo "fuzz.sh: failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
