#!/usr/bin/env bash
# Test dependencies from Debian's archive: installs each package whose program is missing
# (root + apt only), so a new machine gets what the tests start (throwaway PostgreSQL 15
# clusters via initdb/pg_ctl, a Redis server for the Celery worker test).
# Usage: ensure-debian-packages.sh PROGRAM=PACKAGE ...
set -euo pipefail
missing=()
for pair in "$@"; do
  [ -x "${pair%%=*}" ] || missing+=("${pair#*=}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-debian-packages: missing ${missing[*]}; install them (Debian packages) and retry" >&2
  exit 1
fi
echo "ensure-debian-packages: installing ${missing[*]}" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
