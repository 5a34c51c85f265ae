#!/usr/bin/env bash
# The real-engine end-to-end suite: a Docker engine (started here if needed), the upstream images
# (pulled, or built as local stand-ins where no registry is reachable), then the test itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-docker.sh >/dev/null
scripts/provide-images.sh debian postgres airflow
exec node --import tsx --test --test-concurrency=1 tests/e2e/*.e2e.test.ts
