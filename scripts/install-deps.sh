#!/usr/bin/env bash
# scripts/install-deps.sh: install the Debian 12 packages ModelMine builds and tests with.
#
# Checks each package with dpkg-query first; when all are present it does nothing (one line of output).
# Otherwise, as root: apt-get update + apt-get install; as a normal user: the same through `sudo -n`
# (never prompts), or exits 1 listing what to install. Safe to run any number of times.
set -euo pipefail

packages=(
    postgresql-15             # server binaries, copied into the private test tree
    postgresql-server-dev-15  # pg_config, PGXS, pg_regress, pg_isolation_regress
    postgresql-contrib        # pgcrypto, required by the extension
    libpq-dev                 # the worker's libpq
    libjansson-dev            # the worker's JSON
    libcurl4-openssl-dev      # the worker's HTTP client
    libmicrohttpd-dev         # modelmine-api's HTTP server (thread per connection, upgrade to WebSocket)
    libwslay-dev              # modelmine-api's WebSocket framing (Socket.IO's websocket transport)
    make gcc pkg-config
    clang                     # scripts/fuzz.sh: the libFuzzer targets (clang 14 on Debian 12)
    libclang-rt-14-dev        # ... their runtime: libFuzzer, AddressSanitizer, UBSan
    tmux                      # the demo's worker network, one pane per process
    jq                        # integration tests read the gateway's JSON responses
    wrk                       # scripts/bench-api.sh: HTTP load on the gateway
    chromium                  # the dashboard's browser tests (headless, driven by playwright-core)
    fonts-dejavu-core         # a font for chromium's rendering and screenshots
    faketime                  # scripts/chaos.sh: clock jumps in a running worker (libfaketime)
)
# python3 only when a test uses it (regress/ or worker/tests/ mention it).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if grep -rqswI --exclude-dir=out --exclude-dir=out-isolation --exclude-dir=results python3 "$repo/regress" "$repo/worker/tests" 2>/dev/null; then
    packages+=(python3)
fi
# scikit-learn's bundled iris, digits and breast_cancer, when the unit tests read them (worker/tests/
# test_defaults.c); scripts/bench-train.sh installs it for itself as well
if grep -rqsI --exclude-dir=results python3-sklearn "$repo/worker/tests" 2>/dev/null; then
    packages+=(python3-sklearn)
fi
# a local SMTP sink, when a test receives mail with it (the notifier's regress/integration/notify-*.sh)
if grep -rqsI --exclude-dir=out --exclude-dir=results aiosmtpd "$repo/regress" 2>/dev/null; then
    packages+=(python3-aiosmtpd)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ "$status" == installed ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#packages[@]} packages already installed; nothing to do"
    exit 0
fi

echo "install-deps: missing packages: ${missing[*]}"
if [[ $EUID -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-deps: error: not root and passwordless sudo is not available, so these cannot be installed." >&2
    echo "install-deps: ask an administrator to run:" >&2
    echo "    apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
echo "install-deps: apt-get install ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "install-deps: installed ${missing[*]}"
