#!/usr/bin/env bash
# Entrypoint of the postgres stand-in: the parts of the official image's contract the stack uses
# (root start -> fix PGDATA -> drop to postgres; one-time init on an empty PGDATA with a
# socket-only temporary server; then the real server on all interfaces).
set -Eeuo pipefail

initdb_dir=/docker-entrypoint-initdb.d

die() { echo "docker-entrypoint: error: $*" >&2; exit 1; }
log() { echo "docker-entrypoint: $*"; }

# VAR or VAR_FILE, the upstream convention for secrets mounted as files.
file_env() {
  local var=$1 default=${2:-} file_var="${1}_FILE"
  local value=$default
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $var and $file_var are set; use one"
  fi
  if [ -n "${!var:-}" ]; then
    value=${!var}
  elif [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "$file_var names an unreadable file: ${!file_var}"
    value=$(<"${!file_var}")
  fi
  export "$var=$value"
  unset "$file_var"
}

create_directories() {
  mkdir -p "$PGDATA" /var/run/postgresql
  # initdb and postgres refuse a data directory readable by others.
  chmod 700 "$PGDATA"
  if [ "$(id -u)" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    chown postgres:postgres /var/run/postgresql
    chmod 3777 /var/run/postgresql
  fi
}

load_settings() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
}

require_password() {
  [ -n "$POSTGRES_PASSWORD" ] && return
  [ "$POSTGRES_HOST_AUTH_METHOD" = trust ] && return
  die "POSTGRES_PASSWORD is not set and the database is uninitialized.
  Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value for the superuser, or
  set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password (unsafe)."
}

run_initdb() {
  local extra=()
  # Split on whitespace like a shell word list; quoted arguments are not supported.
  read -ra extra <<<"$POSTGRES_INITDB_ARGS"
  if [ -n "$POSTGRES_PASSWORD" ]; then
    # Process substitution keeps the password off the command line and off the disk.
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${extra[@]}"
  else
    initdb --username="$POSTGRES_USER" "${extra[@]}"
  fi
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

psql_init() {
  PGPASSWORD=$POSTGRES_PASSWORD psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc \
    --username "$POSTGRES_USER" "$@"
}

create_database() {
  local exists
  exists=$(psql_init --dbname postgres --tuples-only --no-align --set db="$POSTGRES_DB" \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
  [ -n "$exists" ] && return
  psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
}

run_init_files() {
  local f
  for f in "$initdb_dir"/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then log "running $f"; "$f"
        else log "sourcing $f"
          # shellcheck disable=SC1090  # user-provided init script
          . "$f"
        fi ;;
      *.sql) log "running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f" ;;
    esac
  done
}

# The temporary server listens only on the unix socket so that a TCP health probe
# (pg_isready -h 127.0.0.1) cannot report ready before initialisation has finished.
initialise() {
  load_settings
  require_password
  run_initdb
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  create_database
  run_init_files
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset POSTGRES_PASSWORD
  log "PostgreSQL init process complete; ready for start up."
}

main() {
  if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi
  if [ "$1" != postgres ]; then exec "$@"; fi

  create_directories
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [ -s "$PGDATA/PG_VERSION" ]; then
    log "PostgreSQL Database directory appears to contain a database; Skipping initialization"
  else
    initialise
  fi
  exec "$@"
}

main "$@"
