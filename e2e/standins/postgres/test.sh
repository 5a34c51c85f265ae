#!/usr/bin/env bash
# Exercises the postgres image under its upstream tag (stand-in or real) against the contract the
# stack relies on. Needs the image present (scripts/provide-images.sh postgres).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images postgres)
pgdata=$(platform_value paths postgresData)
uid=$(platform_value users postgres uid)
version=${image#*:}
version=${version%%-*}
name=vpe-standin-test-pg-$$
volume=$name-data
db=standin_check
initdir=$(mktemp -d)

cleanup() {
  "$docker" rm -f "$name" "$name-2" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
  "$docker" volume rm "$volume" >/dev/null 2>&1 || true
  rm -rf "$initdir"
}
trap cleanup EXIT

# A random password per run: nothing secret lives in the repository.
POSTGRES_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
export POSTGRES_PASSWORD

# The first init script blocks until the test releases it, so the test can observe the container
# mid-initialisation without relying on timing.
cat >"$initdir/10-gate.sh" <<'SH'
#!/bin/sh
touch /tmp/init-running
while [ ! -e /tmp/release-init ]; do sleep 0.2; done
SH
echo "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('from-init');" >"$initdir/20-marker.sql"
chmod 755 "$initdir" "$initdir/10-gate.sh"
chmod 644 "$initdir/20-marker.sql"

"$docker" network create "$name" >/dev/null
"$docker" volume create "$volume" >/dev/null

start_server() {
  "$docker" run -d --name "$1" --network "$name" --network-alias pg \
    -v "$volume:$pgdata" -v "$initdir:/docker-entrypoint-initdb.d:ro" \
    -e POSTGRES_PASSWORD -e POSTGRES_DB="$db" \
    --health-cmd "pg_isready -h 127.0.0.1 -U postgres -d $db" \
    --health-interval 1s --health-retries 100000 "$image" >/dev/null
}
is_healthy() {
  [ "$("$docker" inspect --format '{{.State.Health.Status}}' "$1")" = healthy ]
}
password_on_a_command_line() {
  "$docker" exec "$name" sh -c 'cat /proc/[0-9]*/cmdline' | tr '\0' ' ' \
    | grep -qF -- "$POSTGRES_PASSWORD"
}
probes_run() {
  [ "$("$docker" inspect --format '{{len .State.Health.Log}}' "$1")" -gt 0 ]
}
last_probe_failed() {
  [ "$("$docker" inspect --format '{{(index .State.Health.Log 0).ExitCode}}' "$1")" != 0 ]
}
# psql from a separate container: TCP over the network, so pg_hba's password rule applies.
client_sql() {
  "$docker" run --rm --network "$name" -e PGPASSWORD "$image" \
    psql -h pg -U postgres -d "$db" -v ON_ERROR_STOP=1 -tAc "$1"
}

echo "# first start on an empty volume"
start_server "$name"
check "init scripts start" wait_until 120 "$docker" exec "$name" test -e /tmp/init-running
check "temporary server answers on the unix socket during init" \
  "$docker" exec "$name" pg_isready -q
check "TCP probe fails during init" fails "$docker" exec "$name" pg_isready -h 127.0.0.1
check "healthcheck has probed during init" wait_until 60 probes_run "$name"
check "healthcheck is not healthy during init" fails is_healthy "$name"
check "the recorded probe failed" last_probe_failed "$name"
"$docker" exec "$name" touch /tmp/release-init
check "healthy after init" wait_until 120 is_healthy "$name"
check "server process runs as uid $uid" pid1_uid_is "$name" "$uid"
check "PGDATA owned by postgres" owner_is "$name" "$pgdata" "$uid"

PGPASSWORD=$POSTGRES_PASSWORD
export PGPASSWORD
check "password auth over TCP reads the init script's row" \
  contains "$(client_sql 'SELECT v FROM marker')" from-init
check "database is UTF8" contains "$(client_sql 'SHOW server_encoding')" UTF8
check "server version matches the tag" \
  contains "$(client_sql 'SHOW server_version')" "$version"
check "scram-sha-256 rule for remote hosts" \
  contains "$("$docker" exec "$name" tail -1 "$pgdata/pg_hba.conf")" "host all all all scram-sha-256"
wrong=$(PGPASSWORD=wrong-$RANDOM client_sql 'SELECT 1' 2>&1 || true)
check "wrong password is rejected" contains "$wrong" "password authentication failed"
check "password is not on any command line" fails password_on_a_command_line

echo "# restart on the same volume"
"$docker" stop "$name" >/dev/null
"$docker" rm "$name" >/dev/null
unset POSTGRES_PASSWORD
start_server "$name-2"
# The gate script is still mounted: if init ran again it would block and never become healthy.
check "second start becomes healthy without a password" wait_until 120 is_healthy "$name-2"
check "second start skips init" \
  contains "$("$docker" logs "$name-2" 2>&1)" "Skipping initialization"
check "data survived container removal (init rows not duplicated)" \
  [ "$(client_sql 'SELECT count(*) FROM marker')" = 1 ]

echo "# empty volume without a password"
refusal=$("$docker" run --rm "$image" 2>&1 || true)
check "refuses to initialise without POSTGRES_PASSWORD" contains "$refusal" "POSTGRES_PASSWORD is not set"

finish
