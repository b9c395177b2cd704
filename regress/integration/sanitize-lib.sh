# shellcheck shell=bash
# regress/integration/sanitize-lib.sh: the integration tests against the AddressSanitizer + UBSan
# builds (`make sanitize`: worker/modelmine-worker-asan, cli/modelmine-asan, api/modelmine-api-asan,
# notify/modelmine-notify-asan). Sourced by lib.sh; everything here is off unless MM_SANITIZE=1
# (scripts/test-sanitize.sh, and the subset scripts/test.sh runs).
#
#   san_on           true with MM_SANITIZE=1 (a test skips what cannot hold under ASan, saying why)
#   san_binaries     point MM_WORKER, API_BIN, MM_CLI and NT_BIN at the -asan builds
#   san_begin DIR    export ASAN_OPTIONS/UBSAN_OPTIONS so every report lands in DIR/sanitizer.PID
#   san_check DIR    print every report in DIR; status 1 if there was one (the test then fails)
#
# A report aborts the program (halt_on_error, abort_on_error), so the test usually fails on its
# own too; san_check makes sure it does even for a background process nobody waited for.
# Leak checking (LeakSanitizer) is on for every program: each frees what it allocated by the time it
# exits normally. A process killed by a signal (SIGKILL in the *-kill9 tests) is not checked.

san_on() { [[ ${MM_SANITIZE:-0} == 1 ]]; }

san_binaries() {
    [[ ${MM_SANITIZE:-0} == 1 ]] || return 0
    MM_WORKER=$MM_REPO/worker/modelmine-worker-asan
    API_BIN=$MM_REPO/api/modelmine-api-asan
    MM_CLI=$MM_REPO/cli/modelmine-asan
    NT_BIN=$MM_REPO/notify/modelmine-notify-asan
    export MM_WORKER API_BIN MM_CLI NT_BIN
    local b
    for b in "$MM_WORKER" "$API_BIN" "$MM_CLI" "$NT_BIN"; do
        [[ -x $b ]] || { echo "sanitize-lib.sh: $b is not built: run make sanitize"; exit 1; }
    done
}

san_begin() {
    [[ ${MM_SANITIZE:-0} == 1 ]] || return 0
    local common="halt_on_error=1:abort_on_error=1:log_path=$1/sanitizer:print_stacktrace=1"
    export ASAN_OPTIONS="$common:detect_leaks=1:detect_stack_use_after_return=1"
    export UBSAN_OPTIONS=$common
    export LSAN_OPTIONS="print_suppressions=0"
    if command -v llvm-symbolizer >/dev/null; then
        export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
    fi
    echo "sanitizer builds: $MM_WORKER, $API_BIN, $MM_CLI, $NT_BIN; reports in $1/sanitizer.PID"
}

san_check() {
    [[ ${MM_SANITIZE:-0} == 1 ]] || return 0
    local f found=0
    for f in "$1"/sanitizer.*; do
        [[ -s $f ]] || continue
        found=1
        echo "FAIL  sanitizer report ${f##*/} (first 80 lines):"
        head -n 80 "$f" | sed 's/^/    /'
    done
    if [[ $found -eq 0 ]]; then echo "ok    no sanitizer report"; fi
    [[ $found -eq 0 ]]
}
