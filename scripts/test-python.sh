#!/usr/bin/env bash
# Python checks: ruff, then pytest for the executor, its pipelines and the DAGs (real grpcio, real
# PostgreSQL, real Airflow 3 from PyPI), attacks on a real mutual-TLS executor (tests/security), then
# the container exporter (tests/monitoring).
# Creates .venv from the pinned requirements when needed.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=(tests/requirements/dags.txt tests/requirements/executor.txt)
stamp=.venv/.requirements.sha256
wanted=$(cat "${requirements[@]}" docker/airflow/constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "test-python: installing pinned test requirements into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "${requirements[0]}" -r "${requirements[1]}"
  echo "$wanted" >"$stamp"
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# One session per suite: each imports helpers from its own conftest module by name.
.venv/bin/python -m pytest -q -p no:cacheprovider tests/executor "$@"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/dags "$@"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/security "$@"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/monitoring "$@"
