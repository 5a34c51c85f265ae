#!/usr/bin/env bash
# The warehouse and pipeline tests start throwaway PostgreSQL 15 clusters with initdb/pg_ctl:
# install Debian's server binaries when they are missing (root + apt only).
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-postgres: $bin/initdb is missing; install PostgreSQL 15 server binaries" >&2
  exit 1
fi
echo "ensure-postgres: installing Debian's postgresql-15" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
