#!/usr/bin/env bash
# worker-api-kill9: worker-kill9.sh with the workers on the HTTP gateway (--api), not libpq.
# A worker killed with SIGKILL mid-job; the job comes back through its lease.
# The same checks must hold. lib.sh's API mode (IT_WORKER_API=1) starts the gateway on the first
# start_worker; IT_WORKER_API_TLS=1 serves it over HTTPS with a CA made by the test.
IT_WORKER_API=1 exec bash "$(dirname "$0")/worker-kill9.sh"
