#!/usr/bin/env bash
# The project's whole test suite, fastest first: TypeScript unit tests under mocks, the alert rules
# (promtool), the warehouse
# against a real PostgreSQL, the Python services and DAGs, then the real-engine end-to-end run.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() {
  local started=$SECONDS
  echo "=== $1" >&2
  shift
  "$@"
  echo "=== done in $((SECONDS - started)) s" >&2
}

stage "unit (tsc, eslint, mocks)" npm run --silent test:unit
stage "alert rules (promtool)" npm run --silent test:rules
stage "warehouse (real PostgreSQL)" npm run --silent test:warehouse
stage "python (ruff, executor, pipelines, DAGs)" npm run --silent test:python
stage "end to end (real Docker engine)" npm run --silent test:e2e
