#!/usr/bin/env bash
# Exercises the statsd-exporter image under its upstream tag (stand-in or real) against the
# contract the stack relies on. Needs the image present (scripts/provide-images.sh statsd-exporter).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images statsd-exporter)
uid=$(platform_value users prometheus uid)
web=$(platform_value ports statsdExporterWeb)
statsd=$(platform_value ports statsd)
version=${image#*:v}
name=vpe-standin-test-statsd-$$
mapping=$(mktemp -d)

cleanup() {
  "$docker" rm -f "$name" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
  rm -rf "$mapping"
}
trap cleanup EXIT

cat >"$mapping/mapping.yml" <<'YAML'
mappings:
  - match: "test.dagrun.duration.*.*"
    name: test_dagrun_duration
    labels: { status: "$1", dag_id: "$2" }
YAML
chmod -R a+rX "$mapping"

fetch() { "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO- "http://statsd:$web$1"; }
# A statsd client on the network: bash's /dev/udp from the debian image.
send() {
  "$docker" run --rm --network "$name" "$(platform_value images debian)" \
    bash -c "printf '%s' '$1' >/dev/udp/statsd/$statsd"
}
# The sample is in and the exporter shows it.
shows() { contains "$(fetch /metrics)" "$1"; }

"$docker" network create "$name" >/dev/null
"$docker" run -d --name "$name" --network "$name" --network-alias statsd \
  -v "$mapping:/etc/statsd:ro" "$image" --statsd.mapping-config=/etc/statsd/mapping.yml >/dev/null
check "ready for another container" wait_until 60 fetch /-/ready
check "healthy" contains "$(fetch /-/healthy)" "Healthy"
send "test.dagrun.duration.success.ingestion:1500|ms"
send "test.scheduler_heartbeat:1|c"
check "a mapped timer is a summary in seconds, with its labels" \
  wait_until 30 shows 'test_dagrun_duration_sum{dag_id="ingestion",status="success"} 1.5'
check "an unmapped counter keeps its dotted name, underscored" \
  wait_until 30 shows 'test_scheduler_heartbeat 1'
check "version is $version" contains "$(fetch /metrics)" "version=\"$version\""
check "it runs as uid $uid" pid1_uid_is "$name" "$uid"

finish
