#!/usr/bin/env bash
# Exercises the node-exporter image under its upstream tag (stand-in or real) against the
# contract the stack relies on. Needs the image present (scripts/provide-images.sh node-exporter).
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images node-exporter)
port=$(platform_value ports nodeExporter)
debian=$(platform_value images debian)
version=${image#*:v}
name=vpe-standin-test-nodeexp-$$
volume=$name-textfiles

cleanup() {
  "$docker" rm -f "$name" >/dev/null 2>&1 || true
  "$docker" network rm "$name" >/dev/null 2>&1 || true
  "$docker" volume rm "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

metrics() { "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO- "http://$name:$port/metrics"; }

"$docker" network create "$name" >/dev/null
"$docker" volume create "$volume" >/dev/null
"$docker" run --rm -v "$volume:/t" "$debian" sh -c \
  'printf "# TYPE standin_marker gauge\nstandin_marker 42\n" >/t/standin.prom'

echo "# the textfile and filesystem collectors only, as the stack runs it"
"$docker" run -d --name "$name" --network "$name" -v "$volume:/textfiles:ro" "$image" \
  --collector.disable-defaults --collector.textfile --collector.textfile.directory=/textfiles \
  --collector.filesystem '--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|etc)($|/)|^/$' \
  "--web.listen-address=:$port" >/dev/null
check "its landing page answers another container" wait_until 60 "$docker" run --rm --network "$name" --entrypoint wget "$image" -qO /dev/null "http://$name:$port/"
out=$(metrics)
check "version is $version" contains "$("$docker" exec "$name" node_exporter --version 2>&1)" "version $version"
check "the textfile's gauge" grep -qx 'standin_marker 42' <<<"$out"
check "the volume's filesystem size" grep -qE '^node_filesystem_size_bytes\{device="[^"]+",fstype="[^"]+",mountpoint="/textfiles"\} [0-9.e+]+$' <<<"$out"
check "the volume's free bytes" grep -qE '^node_filesystem_avail_bytes\{[^}]*mountpoint="/textfiles"\} [0-9.e+]+$' <<<"$out"
check "no excluded mount" fails grep -qE '^node_filesystem_size_bytes\{[^}]*mountpoint="/(etc/[a-z.]+)?"' <<<"$out"
check "no disabled collector (cpu)" fails grep -q '^node_cpu_seconds_total' <<<"$out"
check "it runs as uid 65534" pid1_uid_is "$name" 65534

finish
