#!/usr/bin/env bash
# Exercises the redis image under its upstream tag (stand-in or real) against the contract the
# stack relies on. Needs the image present (scripts/provide-images.sh redis).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images redis)
uid=$(platform_value users redis uid)
port=$(platform_value ports redis)
version=${image#*:}
version=${version%%-*}
name=vpe-standin-test-redis-$$

cleanup() {
  "$docker" rm -f "$name" "$name-opts" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$docker" network create "$name" >/dev/null
# A remote client on the network: protected mode or a loopback bind would refuse it.
cli() {
  "$docker" run --rm --network "$name" "$image" redis-cli -h "$1" -p "$port" "${@:2}"
}
answers() { [ "$(cli "$1" PING)" = PONG ]; }
replies() { [ "$(cli "${@:2}")" = "$1" ]; }

echo "# default command"
"$docker" run -d --name "$name" --network "$name" --network-alias cache "$image" >/dev/null
check "answers PING from another container" wait_until 60 answers cache
check "SET from another container" replies OK cache SET k v
check "GET returns the value" replies v cache GET k
check "protected mode is off" contains "$(cli cache CONFIG GET protected-mode)" no
check "server version is $version" contains "$(cli cache INFO server)" "redis_version:$version"
check "server runs as uid $uid" pid1_uid_is "$name" "$uid"
check "SAVE succeeds" replies OK cache SAVE
check "/data/dump.rdb is owned by redis" owner_is "$name" /data/dump.rdb "$uid"
check "redis-cli is on PATH" "$docker" run --rm "$image" sh -c 'command -v redis-cli >/dev/null'

echo "# options only (upstream prepends redis-server)"
"$docker" run -d --name "$name-opts" --network "$name" --network-alias opts "$image" \
  --appendonly yes >/dev/null
check "answers with options-only command" wait_until 60 answers opts
check "the option was applied" contains "$(cli opts CONFIG GET appendonly)" yes
check "protected mode stays off with extra options" \
  contains "$(cli opts CONFIG GET protected-mode)" no

finish
