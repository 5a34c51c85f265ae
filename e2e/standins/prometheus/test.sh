#!/usr/bin/env bash
# Exercises the prometheus image under its upstream tag (stand-in or real) against the contract the
# stack relies on. Needs the image present (scripts/provide-images.sh prometheus).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images prometheus)
uid=$(platform_value users prometheus uid)
port=$(platform_value ports prometheus)
version=${image#*:v}
name=vpe-standin-test-prometheus-$$

cleanup() {
  "$docker" rm -f "$name" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# From another container on the network, with the image's own wget.
fetch() { "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO- "http://metrics:$port$1"; }

"$docker" network create "$name" >/dev/null
echo "# default command and config"
"$docker" run -d --name "$name" --network "$name" --network-alias metrics "$image" >/dev/null
check "ready for another container" wait_until 60 fetch /-/ready
check "version is $version" contains "$(fetch /api/v1/status/buildinfo)" "\"version\":\"$version"
check "its query API answers" contains "$(fetch '/api/v1/query?query=1%2B1')" '"result":[' 
check "its UI is served" contains "$(fetch /graph)" "<title>Prometheus"
check "it stores under /prometheus" contains "$(fetch /api/v1/status/flags)" '"storage.tsdb.path":"/prometheus"'
check "it runs as uid $uid" pid1_uid_is "$name" "$uid"
check "/prometheus is owned by uid $uid" owner_is "$name" /prometheus "$uid"
check "promtool is on PATH" "$docker" run --rm --entrypoint sh "$image" -c 'promtool --version >/dev/null 2>&1'

finish
