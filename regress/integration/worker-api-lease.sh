#!/usr/bin/env bash
# worker-api-lease: worker-lease.sh with the workers on the HTTP gateway (--api), not libpq.
# Leases kept by progress reports alone; a busy job row is retried, not refused.
# The same checks must hold. lib.sh's API mode (IT_WORKER_API=1) starts the gateway on the first
# start_worker; IT_WORKER_API_TLS=1 serves it over HTTPS with a CA made by the test.
IT_WORKER_API=1 exec bash "$(dirname "$0")/worker-lease.sh"
