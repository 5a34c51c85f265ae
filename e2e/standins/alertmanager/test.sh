#!/usr/bin/env bash
# Exercises the alertmanager image under its upstream tag (stand-in or real) against the contract
# the stack relies on. Needs the image present (scripts/provide-images.sh alertmanager).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images alertmanager)
uid=$(platform_value users prometheus uid)
port=$(platform_value ports alertmanager)
version=${image#*:v}
name=vpe-standin-test-alertmanager-$$

cleanup() {
  "$docker" rm -f "$name" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

fetch() { "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO- "http://alerts:$port$1"; }

"$docker" network create "$name" >/dev/null
echo "# default command and config"
"$docker" run -d --name "$name" --network "$name" --network-alias alerts "$image" \
  --config.file=/etc/alertmanager/alertmanager.yml --storage.path=/alertmanager \
  --cluster.listen-address= >/dev/null
check "ready for another container" wait_until 60 fetch /-/ready
check "version is $version" contains "$(fetch /api/v2/status)" "\"version\":\"$version\""
check "it takes no alerts it was not sent" contains "$(fetch /api/v2/alerts)" "[]"
check "it runs as uid $uid" pid1_uid_is "$name" "$uid"
check "/alertmanager is owned by uid $uid" owner_is "$name" /alertmanager "$uid"
check "amtool is on PATH" "$docker" run --rm --entrypoint sh "$image" -c 'amtool --version >/dev/null 2>&1'

finish
