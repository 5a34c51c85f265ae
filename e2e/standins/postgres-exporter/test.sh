#!/usr/bin/env bash
# Exercises the postgres-exporter image under its upstream tag (stand-in or real) against the
# contract the stack relies on, with the postgres image as its server. Needs both images present
# (scripts/provide-images.sh postgres postgres-exporter).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images postgres-exporter)
postgres=$(platform_value images postgres)
port=$(platform_value ports postgresExporter)
version=${image#*:v}
name=vpe-standin-test-pgexp-$$
work=$(mktemp -d)

cleanup() {
  "$docker" rm -f "$name" "$name-pg" "$name-wrong" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Random passwords per run: nothing secret lives in the repository.
admin_password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
monitor_password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
# Each as the stack delivers it: root-owned, mode 0440, read through group 0.
mkdir "$work/right" "$work/wrong"
printf '%s' "$monitor_password" >"$work/right/password"
printf '%s' "not-the-password" >"$work/wrong/password"
chmod 0440 "$work/right/password" "$work/wrong/password"
cat >"$work/queries.yml" <<'YAML'
standin_rows:
  query: "SELECT 'marker' AS relation, count(*) AS rows FROM marker"
  master: true
  metrics:
    - relation:
        usage: "LABEL"
        description: "table"
    - rows:
        usage: "GAUGE"
        description: "rows"
YAML
chmod 0444 "$work/queries.yml"

psql() { "$docker" exec -i "$name-pg" psql -v ON_ERROR_STOP=1 -qAt -U postgres -d postgres "$@"; }
# An exporter as the stack runs it, with the password file of folder $2.
exporter() {
  "$docker" create --name "$1" --network "$name" --group-add 0 \
    -e "DATA_SOURCE_URI=pg:5432/postgres?sslmode=disable" -e DATA_SOURCE_USER=monitor \
    -e "DATA_SOURCE_PASS_FILE=/run/secrets/password" \
    "$image" --extend.query-path=/etc/exporter-queries.yml "--web.listen-address=:$port" >/dev/null
  "$docker" cp "$work/$2" "$1:/run/secrets"
  "$docker" cp "$work/queries.yml" "$1:/etc/exporter-queries.yml"
  "$docker" start "$1" >/dev/null
}
metrics() { "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO- "http://$1:$port/metrics"; }
pg_up_is() { metrics "$1" | grep -qx "pg_up $2"; }

"$docker" network create "$name" >/dev/null
"$docker" run -d --name "$name-pg" --network "$name" --network-alias pg -e "POSTGRES_PASSWORD=$admin_password" "$postgres" >/dev/null
wait_until 60 psql -c "SELECT 1"
psql -c "CREATE ROLE monitor LOGIN PASSWORD '$monitor_password'; GRANT pg_monitor TO monitor;
         CREATE TABLE marker (v int); INSERT INTO marker SELECT generate_series(1, 7); GRANT SELECT ON marker TO monitor;"

echo "# the exporter, its password from a file"
exporter "$name" right
check "its landing page answers another container" wait_until 60 "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO /dev/null "http://$name:$port/"
check "it reaches PostgreSQL (pg_up 1)" wait_until 30 pg_up_is "$name" 1
out=$(metrics "$name")
check "version is $version" contains "$("$docker" exec "$name" postgres_exporter --version 2>&1)" "version $version"
check "it reports database sizes" grep -qE '^pg_database_size_bytes\{datname="postgres",server="pg:5432"\} [0-9.e+]+$' <<<"$out"
check "the custom query's gauge has its label and the exact count" grep -qx 'standin_rows_rows{relation="marker",server="pg:5432"} 7' <<<"$out"
check "the password is not in docker inspect" fails grep -qF "$monitor_password" <<<"$("$docker" inspect "$name")"
check "it runs as uid 65534" pid1_uid_is "$name" 65534

echo "# a wrong password"
exporter "$name-wrong" wrong
check "it still answers, and says pg_up 0" wait_until 60 pg_up_is "$name-wrong" 0

finish
