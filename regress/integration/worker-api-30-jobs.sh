#!/usr/bin/env bash
# worker-api-30-jobs: workers-30-jobs.sh with the workers on the HTTP gateway (--api), not libpq.
# 3 workers x 2 slots drain 30 jobs, and the books add up.
# The same checks must hold. lib.sh's API mode (IT_WORKER_API=1) starts the gateway on the first
# start_worker; IT_WORKER_API_TLS=1 serves it over HTTPS with a CA made by the test.
IT_WORKER_API=1 exec bash "$(dirname "$0")/workers-30-jobs.sh"
