#!/usr/bin/env bash
# worker-api-sigterm: worker-sigterm.sh with the workers on the HTTP gateway (--api), not libpq.
# SIGTERM drains a worker: no new claim, the running job given back.
# The same checks must hold. lib.sh's API mode (IT_WORKER_API=1) starts the gateway on the first
# start_worker; IT_WORKER_API_TLS=1 serves it over HTTPS with a CA made by the test.
IT_WORKER_API=1 exec bash "$(dirname "$0")/worker-sigterm.sh"
