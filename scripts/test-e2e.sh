#!/usr/bin/env bash
# The real-engine suites: a Docker engine (started here if needed), the upstream images (pulled,
# or built as local stand-ins where no registry is reachable) and their contract tests, the
# harness's own tests, then the whole dev stack end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-docker.sh >/dev/null
e2e/standins/run-tests.sh
npm run --silent test:harness
exec node --import tsx --test --test-concurrency=1 tests/e2e/*.e2e.test.ts
