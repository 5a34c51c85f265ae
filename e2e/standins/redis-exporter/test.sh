#!/usr/bin/env bash
# Exercises the redis-exporter image under its upstream tag (stand-in or real) against the
# contract the stack relies on, with the redis image as its server. Needs both images present
# (scripts/provide-images.sh redis redis-exporter).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images redis-exporter)
redis=$(platform_value images redis)
port=$(platform_value ports redisExporter)
version=${image#*:v}
version=${version%%-*}
name=vpe-standin-test-redisexp-$$
work=$(mktemp -d)

cleanup() {
  "$docker" rm -f "$name" "$name-redis" "$name-wrong" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A random password per run: nothing secret lives in the repository.
password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
# Each as the stack delivers it: root-owned, mode 0440, read through group 0.
mkdir "$work/right" "$work/wrong"
printf '{"redis://redis:6379": "%s"}' "$password" >"$work/right/passwords.json"
printf '{"redis://redis:6379": "not-the-password"}' >"$work/wrong/passwords.json"
chmod 0440 "$work/right/passwords.json" "$work/wrong/passwords.json"

# An exporter as the stack runs it, with the password file of folder $2.
exporter() {
  "$docker" create --name "$1" --network "$name" --group-add 0 "$image" \
    --redis.addr=redis://redis:6379 --redis.password-file=/run/secrets/passwords.json "--web.listen-address=:$port" >/dev/null
  "$docker" cp "$work/$2" "$1:/run/secrets"
  "$docker" start "$1" >/dev/null
}
fetch() { "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO- "http://$1:$port$2"; }
redis_up_is() { fetch "$1" /metrics | grep -qx "redis_up $2"; }

"$docker" network create "$name" >/dev/null
"$docker" run -d --name "$name-redis" --network "$name" --network-alias redis "$redis" redis-server --requirepass "$password" >/dev/null

echo "# the exporter, its password from a file"
exporter "$name" right
check "/health answers another container" wait_until 60 fetch "$name" /health
check "it logs in to Redis (redis_up 1)" wait_until 30 redis_up_is "$name" 1
out=$(fetch "$name" /metrics)
check "version is $version" grep -qE "^redis_exporter_build_info\\{.*version=\"v?$version[-\"]" <<<"$out"
check "Redis' own figures" grep -qE '^redis_connected_clients [1-9]' <<<"$out"
check "the password is not in docker inspect" fails grep -qF "$password" <<<"$("$docker" inspect "$name")"
check "it runs as uid 59000" pid1_uid_is "$name" 59000

echo "# a wrong password"
exporter "$name-wrong" wrong
check "it still answers, and says redis_up 0" wait_until 60 redis_up_is "$name-wrong" 0

finish
