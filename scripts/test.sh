#!/usr/bin/env bash
# scripts/test.sh: build ModelMine and run every test suite against a throwaway PostgreSQL 15 cluster.
#
# Steps: scripts/install-deps.sh; make (extension + worker); a private PostgreSQL tree with modelmine
# installed (scripts/lib/cluster.sh, mm_pg_tree: nothing is installed into the system) and a cluster
# on a free port on 127.0.0.1; then the suites, each test counted:
#   regress      pg_regress (regress/sql + regress/expected), then isolation (regress/specs), both via
#                `make installcheck`. Output in regress/out and regress/out-isolation.
#   unit         `make -C worker check`, `make -C api check` and `make -C notify check`, when the Makefile
#                has a check target.
#                Each output must end with a line "N passed, N failed".
#   fuzz         scripts/fuzz.sh --suite: each libFuzzer target (clang, ASan, UBSan) replays its seeds
#                and regression inputs, then fuzzes for 60 s (network input) or 30 s, two at a time:
#                ~4 minutes; each target one test.  Needs no cluster.
#   integration  every executable regress/integration/*.sh, sorted, each one test (exit 0 = pass),
#                each under `timeout 300`, with cwd = repository root and stdin from /dev/null.
#   sanitize     SANITIZE_SUBSET below, run again against the AddressSanitizer + UBSan builds of the
#                worker, CLI, gateway and notifier (`make sanitize`; MM_SANITIZE=1, see
#                regress/integration/sanitize-lib.sh: a sanitizer report fails the test). With
#                --sanitize, every integration test runs that way instead
#                (scripts/test-sanitize.sh).
# The cluster is always stopped and the temp dirs removed on exit (also on Ctrl-C), unless --keep.
# The last line of output is always "N passed, N failed"; the exit status is 0 only if at least one
# test ran and none failed.
#
# Conventions for integration tests (regress/integration/NAME.sh):
#   - They get PGHOST, PGPORT, PGUSER, PGDATABASE (the shared cluster's postgres db), MM_PGTREE (the
#     private PostgreSQL tree), MM_CLUSTER_DIR, MM_REPO (repository root), MM_WORKER (absolute path of
#     the built worker/modelmine-worker) and PG_CONFIG.
#   - Each creates its OWN database, named after the test (`createdb it_NAME`, then
#     `CREATE EXTENSION modelmine CASCADE` in it), so tests never see each other's rows; drop it at the
#     end. Never use the `postgres` database for test data.
#   - They may crash-restart the shared cluster: `. "$MM_REPO/scripts/lib/cluster.sh";
#     mm_cluster_restart "$MM_CLUSTER_DIR"`. They must leave it running (test.sh restarts it if not).
#   - They kill what they start (trap ... EXIT) and print what they checked; on failure, what differed.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/test.sh [--only regress|unit|fuzz|integration|sanitize] [--sanitize] [--keep] [--help]

Builds ModelMine, starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 (private install tree, nothing
installed into the system, works as root or as a normal user) and runs the test suites.

  --only SUITE   run one suite: regress (pg_regress + isolation), unit (worker, api, notify),
                 fuzz (scripts/fuzz.sh --suite, ~4 min), integration, sanitize (a subset of the
                 integration tests against the ASan/UBSan builds)
  --sanitize     the integration suite (all of it) against the ASan/UBSan builds only
  --keep         leave the cluster running afterwards and print how to connect to it
  --help         this text

Environment: PG_CONFIG (default pg_config), MM_PG_OPTS (extra server options, e.g. "-c fsync=off").
Exit status: 0 if at least one test ran and all passed, 1 otherwise, 2 for bad usage.

Examples:
  scripts/test.sh
  scripts/test.sh --only regress --keep
USAGE
}

only=""
keep=0
sanitize_all=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --only)
            [[ $# -ge 2 ]] || { echo "test.sh: --only needs a suite name" >&2; usage >&2; exit 2; }
            only=$2; shift 2 ;;
        --only=*) only=${1#--only=}; shift ;;
        --keep) keep=1; shift ;;
        --sanitize) sanitize_all=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $only in
    ""|regress|unit|fuzz|integration|sanitize) ;;
    *) echo "test.sh: unknown suite '$only' (want regress, unit, fuzz, integration or sanitize)" >&2
       exit 2 ;;
esac
if [[ $sanitize_all -eq 1 && -n $only && $only != integration ]]; then
    echo "test.sh: --sanitize runs the integration suite; not with --only $only" >&2
    exit 2
fi
[[ $sanitize_all -eq 0 ]] || only=integration

# The integration tests the sanitize suite runs against the ASan/UBSan builds: every program is
# covered, each test exercising much of its program per second, about 3 minutes in all (the whole
# integration suite would double its ~10 minutes; scripts/test-sanitize.sh runs all of it). Seconds
# under ASan on the shared 2-core machine at load ~11 (other work running):
#   worker-api-batch         12  worker through the gateway (HTTP client, group commit through
#                                POST /nodes/complete, the gateway refusing it)
#   worker-trainer-children  48  worker over libpq: trainer processes crashed, canceled, hung,
#                                replaced, 220 jobs on one trainer
#   api-postgrest            11  the gateway's PostgREST-compatible /rpc with the real npm client
#   api-socketio             68  the gateway's Engine.IO/Socket.IO and WebSocket frames (wslay)
#   notify-delivery          21  the notifier: email (SMTP) and signed webhooks, retries
#   cli-basics               48  the CLI: help, signup, login, balance, submit, errors
# Not worker-api-30-jobs or workers-30-jobs: their 60 s limit for 30 jobs was missed under ASan
# at that load.
SANITIZE_SUBSET=(worker-api-batch worker-trainer-children api-postgrest api-socketio
    notify-delivery cli-basics)
SANITIZE_SUBSET=("${SANITIZE_SUBSET[@]/#/regress/integration/}")

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export MM_REPO=$repo
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
MM_LOG_TAG="test.sh"

passed=0
failed=0
failures=()
tree=""
cluster=""
logdir=""

say() { printf '\n==== %s\n' "$*"; }
pass() { passed=$((passed + ${2:-1})); }
fail() { failed=$((failed + ${2:-1})); failures+=("$1"); }

# Stop the cluster and remove temp dirs (or, with --keep, say how to reach them). Idempotent.
cleanup() {
    if [[ $keep -eq 1 && -n "$cluster" && -f "$cluster/data/postmaster.pid" ]]; then
        cat <<KEEP

==== cluster kept running (--keep)
  connect:  psql "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
  env:      export PGHOST=127.0.0.1 PGPORT=$PGPORT PGUSER=postgres MM_PGTREE=$tree MM_CLUSTER_DIR=$cluster
  log:      $cluster/postgres.log
  stop:     bash -c '. scripts/lib/cluster.sh && mm_cluster_stop $cluster' && rm -rf $cluster $tree
KEEP
    else
        [[ -n "$cluster" ]] && { mm_cluster_stop "$cluster" || true; rm -rf "$cluster"; }
        [[ -n "$tree" ]] && rm -rf "$tree"
        cluster="" tree=""
    fi
    [[ -n "$logdir" ]] && rm -rf "$logdir"
    logdir=""
}
# An integration test runs in the background (child=its timeout's pid) so a signal reaches this script
# at once; we pass it on (timeout forwards it to the test's whole process group), then clean up.
child=""
# shellcheck disable=SC2317  # only reached from the traps below
on_signal() {
    echo "test.sh: got SIG$1; stopping the running test, the cluster, and removing temp dirs" >&2
    if [[ -n "$child" ]]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
    exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# Print the summary and exit; the very last line is "N passed, N failed".
finish() {
    trap - EXIT
    cleanup
    if [[ ${#failures[@]} -gt 0 ]]; then
        printf '\n==== failed:\n'
        printf '  %s\n' "${failures[@]}"
    fi
    printf '%d passed, %d failed\n' "$passed" "$failed"
    if [[ $failed -eq 0 && $passed -gt 0 ]]; then exit 0; fi
    exit 1
}

# A setup step failed: nothing more can run.
setup_failed() {
    echo "test.sh: $1; no tests can run" >&2
    fail "setup: $1"
    finish
}

want() { [[ -z "$only" || "$only" == "$1" ]]; }
want_sanitize() { [[ $sanitize_all -eq 1 ]] || want sanitize; }

say "dependencies"
scripts/install-deps.sh || setup_failed "scripts/install-deps.sh failed"
pg_config=$(mm_pg_config) || setup_failed "no pg_config"
export PG_CONFIG=$pg_config

say "build (make)"
make --no-print-directory PG_CONFIG="$pg_config" || setup_failed "make failed"
if want_sanitize; then
    say "build (make sanitize: the ASan/UBSan builds)"
    make --no-print-directory sanitize PG_CONFIG="$pg_config" || setup_failed "make sanitize failed"
fi

say "private PostgreSQL tree and cluster"
logdir=$(mktemp -d /tmp/mm-testlog.XXXXXX)
tree=$(mm_tmpdir pgtree) || setup_failed "could not create a temp dir"
mm_pg_tree "$tree" || setup_failed "could not build the private PostgreSQL tree"
export MM_PGTREE=$tree
cluster=$(mm_tmpdir cluster) || setup_failed "could not create a temp dir"
mm_cluster_start "$cluster" "$(mm_free_port)" || setup_failed "could not start the test cluster"
export PGHOST PGPORT PGUSER PGDATABASE MM_CLUSTER_DIR
echo "cluster up: 127.0.0.1:$PGPORT, data $cluster/data, binaries $tree"

# run_installcheck LABEL OUTDIR MAKE-ARGS...: one `make installcheck` run (pg_regress or isolation).
# pg_regress 15 prints one "test NAME ... RESULT" line per test ("     NAME ... RESULT" inside a parallel
# group); RESULT "ok" passes, anything else ("FAILED", "failed (ignored)", a diff error) fails. A failing
# run that printed no failing test line (e.g. CREATE EXTENSION failed first) counts as one failure.
run_installcheck() {
    local label=$1 outdir=$2 log rc=0 n_ok n_bad
    local line_re='^(test +| +)[^ ]+ +\.\.\. '
    shift 2
    log=$logdir/$label.log
    make --no-print-directory installcheck PG_CONFIG="$pg_config" "$@" 2>&1 | tee "$log" || rc=$?
    n_ok=$(grep -cE "${line_re}+ok( |$)" "$log" || true)
    n_bad=$(( $(grep -cE "$line_re" "$log" || true) - n_ok ))
    pass "$label" "$n_ok"
    if [[ $n_bad -gt 0 ]]; then
        fail "$label: $(grep -E "$line_re" "$log" | grep -vE "${line_re}+ok( |$)" \
            | awk '{ printf "%s ", ($1 == "test" ? $2 : $1) }')" "$n_bad"
    elif [[ $rc -ne 0 ]]; then
        fail "$label: make installcheck exited $rc with no failing test line (see its output above)"
    fi
    if [[ $rc -ne 0 && -s "$outdir/regression.diffs" ]]; then
        echo "---- $outdir/regression.diffs (last 300 lines)"
        tail -n 300 "$outdir/regression.diffs"
        echo "---- end of $outdir/regression.diffs"
    fi
}

if want regress; then
    say "regress: pg_regress (regress/sql)"
    if compgen -G 'regress/sql/*.sql' >/dev/null; then
        # ISOLATION= / REGRESS= on the command line run the two halves of installcheck separately,
        # so isolation still runs when pg_regress fails.
        run_installcheck pg_regress regress/out ISOLATION=
    else
        echo "no regress/sql/*.sql; skipped"
    fi
    say "regress: isolation (regress/specs)"
    if compgen -G 'regress/specs/*.spec' >/dev/null; then
        run_installcheck isolation regress/out-isolation REGRESS=
    else
        echo "no regress/specs/*.spec; skipped"
    fi
fi

if want unit; then
    # Each component's `make check` ends with a "N passed, N failed" line; worker (trainers, loop,
    # HTTP client), api (the Socket.IO packet parser) and notify (signatures, email headers, settings).
    for comp in worker api notify; do
        say "unit: make -C $comp check"
        if [[ -f $comp/Makefile ]] && grep -qE '^check[[:space:]]*:' "$comp/Makefile"; then
            rc=0
            make --no-print-directory -C "$comp" check PG_CONFIG="$pg_config" 2>&1 | tee "$logdir/unit.log" || rc=$?
            summary=$(grep -E '^[[:space:]]*[0-9]+ passed, [0-9]+ failed[[:space:]]*$' "$logdir/unit.log" | tail -n 1 || true)
            if [[ -n "$summary" ]]; then
                read -r n_ok _ n_bad _ <<<"$summary"
                pass "unit $comp" "$n_ok"
                [[ $n_bad -gt 0 ]] && fail "unit: $n_bad $comp test(s)" "$n_bad"
                [[ $rc -ne 0 && $n_bad -eq 0 ]] && fail "unit: make -C $comp check exited $rc"
            else
                fail "unit: make -C $comp check exited $rc without a 'N passed, N failed' line"
            fi
        else
            echo "$comp/Makefile has no check target; skipped"
        fi
    done
fi

if want fuzz; then
    # One pass or failure per target, from fuzz.sh's own "N passed, N failed" (it builds with clang).
    say "fuzz: scripts/fuzz.sh --suite"
    rc=0
    scripts/fuzz.sh --suite 2>&1 | tee "$logdir/fuzz.log" || rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/fuzz.log" | tail -n 1 || true)
    if [[ -n "$summary" ]]; then
        read -r n_ok _ n_bad _ <<<"$summary"
        pass "fuzz" "$n_ok"
        [[ $n_bad -gt 0 ]] && fail "fuzz: $(sed -n 's/^fuzz.sh: failed: //p' "$logdir/fuzz.log")" "$n_bad"
        [[ $rc -ne 0 && $n_bad -eq 0 ]] && fail "fuzz: scripts/fuzz.sh exited $rc"
    else
        fail "fuzz: scripts/fuzz.sh exited $rc without a 'N passed, N failed' line"
    fi
fi

# run_integration LABEL TESTS...: each test one count; LABEL prefixes its name in the results.
run_integration() {
    local label=$1 t start rc why
    shift
    for t in "$@"; do
        if [[ ! -x "$t" ]]; then
            echo "skipping $t: not executable (chmod +x it to run it)"
            continue
        fi
        echo "---- $label$t"
        start=$SECONDS
        rc=0
        timeout -k 10 300 "$t" </dev/null >"$logdir/it.log" 2>&1 &
        child=$!
        wait "$child" || rc=$?
        child=""
        if [[ $rc -eq 0 ]]; then
            pass "$label$t"
            echo "ok    $label$t ($((SECONDS - start)) s)"
        else
            why="exit status $rc"
            [[ $rc -eq 124 ]] && why="timed out after 300 s"
            fail "$label$t ($why)"
            echo "FAIL  $label$t ($why, $((SECONDS - start)) s); its output (last 200 lines):"
            tail -n 200 "$logdir/it.log" | sed 's/^/    /'
        fi
        # A test that died mid-restart must not take the following tests down with it.
        if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT" -t 5; then
            echo "cluster not accepting connections after $t; restarting it"
            mm_cluster_restart "$cluster" || setup_failed "could not restart the cluster after $t"
        fi
    done
}

if want integration || want sanitize; then
    export MM_WORKER=$repo/worker/modelmine-worker
    # The real npm clients the gateway's tests drive (postgrest-js, socket.io-client), exactly as the
    # committed lockfile pins them; reinstalled only when the lockfile changed since the last install.
    if command -v npm >/dev/null 2>&1 && [[ -f tests/js/package-lock.json ]] &&
        ! cmp -s tests/js/package-lock.json tests/js/node_modules/.package-lock.json.installed 2>/dev/null; then
        echo "npm ci in tests/js (the test clients' pinned packages)"
        if (cd tests/js && npm ci --no-audit --no-fund --loglevel=error) >"$logdir/npm.log" 2>&1; then
            cp tests/js/package-lock.json tests/js/node_modules/.package-lock.json.installed
        else
            tail -n 20 "$logdir/npm.log"
            fail "npm ci in tests/js"
        fi
    fi
fi

if want integration; then
    mapfile -t all_tests < <(find regress/integration -maxdepth 1 -name '*.sh' -type f 2>/dev/null |
        LC_ALL=C sort)
    if [[ $sanitize_all -eq 1 ]]; then
        say "integration against the ASan/UBSan builds (--sanitize): regress/integration/*.sh"
        export MM_SANITIZE=1
        run_integration "sanitize: " "${all_tests[@]}"
        unset MM_SANITIZE
    else
        say "integration: regress/integration/*.sh"
        run_integration "" "${all_tests[@]}"
    fi
    [[ ${#all_tests[@]} -gt 0 ]] || echo "no executable regress/integration/*.sh; skipped"
fi

if want sanitize && [[ $sanitize_all -eq 0 ]]; then
    say "sanitize: ${SANITIZE_SUBSET[*]} against the ASan/UBSan builds"
    sanitize_start=$SECONDS
    export MM_SANITIZE=1
    run_integration "sanitize: " "${SANITIZE_SUBSET[@]/%/.sh}"
    unset MM_SANITIZE
    echo "sanitize subset: $((SECONDS - sanitize_start)) s"
fi

if [[ $((passed + failed)) -eq 0 ]]; then
    echo "test.sh: no tests ran${only:+ in suite $only}; that counts as a failure" >&2
fi
finish
