#!/usr/bin/env bash
# Installs requirements.txt (as the image's airflow user) with every version taken from
# constraints.txt, plus the platform.json-pinned apache-airflow, pyspark and grpcio, so pip can
# never move Airflow itself while adding providers.
# Usage: install-packages.sh <platform.json> <constraints.txt> <requirements.txt> <platform-get.py>
set -euo pipefail

platform=$1
constraints=$2
requirements=$3
platform_get=$4

json() { python "$platform_get" "$platform" "$1"; }

pip install --no-cache-dir --disable-pip-version-check -c "$constraints" -r "$requirements" \
  "apache-airflow==$(json versions.airflow)" \
  "pyspark==$(json versions.pyspark)" \
  "grpcio==$(json versions.grpcio)"
pip check
