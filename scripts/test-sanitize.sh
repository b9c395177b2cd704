#!/usr/bin/env bash
# scripts/test-sanitize.sh: every integration test (regress/integration/*.sh) against the
# AddressSanitizer + UBSan builds of the worker, CLI, gateway and notifier (`make sanitize`), on a
# throwaway cluster; a sanitizer report fails the test (regress/integration/sanitize-lib.sh).
# scripts/test.sh runs only a subset of them this way (its SANITIZE_SUBSET); this runs them all
# (about as long as the integration suite itself, 10-20 minutes). Extra arguments go to test.sh
# (e.g. --keep). The last line is "N passed, N failed".
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/test.sh" --sanitize "$@"
