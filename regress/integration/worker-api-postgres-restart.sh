#!/usr/bin/env bash
# worker-api-postgres-restart: postgres-restart.sh with the workers on the HTTP gateway (--api),
# not libpq.
# PostgreSQL crash-restarts under three busy workers (a private cluster: MM_CLUSTER_DIR).
# The same checks must hold. lib.sh's API mode (IT_WORKER_API=1) starts the gateway on the first
# start_worker; IT_WORKER_API_TLS=1 serves it over HTTPS with a CA made by the test.
IT_WORKER_API=1 exec bash "$(dirname "$0")/postgres-restart.sh"
