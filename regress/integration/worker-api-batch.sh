#!/usr/bin/env bash
# worker-api-batch: worker-batch.sh with the worker on the HTTP gateway (--api): batches go through
# POST /nodes/complete, and a gateway that refuses it (no EXECUTE) turns them off the same way.
IT_WORKER_API=1 exec bash "$(dirname "$0")/worker-batch.sh"
