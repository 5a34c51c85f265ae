#!/usr/bin/env bash
# Exercises scripts/provide-images.sh against a copy of images.json whose redis tag is a
# throwaway one, so the images other people use are never replaced. Needs the debian image.
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"

provide="$vpe_repo_root/scripts/provide-images.sh"
work=$(mktemp -d)
tag=vpe-standin-selftest/redis-$$:$(platform_value images redis | sed 's/.*://')
conda=$(platform_value images conda)

stray=
cleanup() {
  "$docker" rmi -f "$tag" ${stray:+"$stray"} >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$vpe_images_file" "$work/images.json" "$tag" <<'PY'
import json
import sys

images = json.load(open(sys.argv[1]))
images["redis"] = sys.argv[3]
json.dump(images, open(sys.argv[2], "w"))
PY
cp "$vpe_platform_file" "$work/platform.json"
export VPE_IMAGES_FILE="$work/images.json" VPE_PLATFORM_FILE="$work/platform.json"

# Runs the script; its stdout+stderr land in $out and its exit code in $rc.
provide_run() {
  rc=0
  out=$("$provide" "$@" 2>&1) || rc=$?
}
is_standin() {
  [ "$("$docker" image inspect --format '{{index .Config.Labels "org.vpe.standin"}}' "$1")" = true ]
}

echo "# absent -> built"
provide_run --no-pull redis
check "exit code 0" [ "$rc" = 0 ]
check "reports built with seconds and size" contains "$out" "built: $tag ("
check "the built image carries the stand-in label" is_standin "$tag"
check "an unrequested conda image is reported unavailable" \
  contains "$out" "unavailable: $conda (no conda channel; only an executor environment with an environment.yml needs it)"

echo "# present -> kept"
provide_run redis
check "reports present" contains "$out" "present: $tag"
check "does not rebuild" fails contains "$out" "built:"

echo "# an unlabelled local image under the tag is replaced (after a failed pull)"
stray=$(tar -cf - -T /dev/null | "$docker" import - "$tag")
provide_run redis
check "says it replaces the unlabelled image" contains "$out" "replacing an unlabelled local image: $tag"
check "rebuilds it" contains "$out" "built: $tag ("
check "the replacement is the stand-in" is_standin "$tag"

echo "# a stand-in built from other inputs is rebuilt (here: another uid in platform.json)"
python3 - "$VPE_PLATFORM_FILE" <<'PY'
import json
import sys

platform = json.load(open(sys.argv[1]))
platform["users"]["redis"]["uid"] += 1
json.dump(platform, open(sys.argv[1], "w"))
PY
provide_run --no-pull redis
check "says why it rebuilds" contains "$out" "rebuilding: $tag (its stand-in inputs changed)"
check "rebuilds it" contains "$out" "built: $tag ("
provide_run redis
check "then keeps it" contains "$out" "present: $tag"

echo "# --force rebuilds a present image"
provide_run --force --no-pull redis
check "reports built" contains "$out" "built: $tag ("

echo "# bad requests"
provide_run nosuchimage
check "unknown key fails" [ "$rc" != 0 ]
check "... naming the key" contains "$out" "unknown image key 'nosuchimage'"
provide_run --bogus
check "unknown option fails naming it" contains "$out" "unknown option '--bogus'"
if ! "$docker" image inspect "$conda" >/dev/null 2>&1; then
  provide_run conda
  check "requested conda fails when it cannot be pulled" [ "$rc" != 0 ]
  check "... saying why" contains "$out" "unavailable: $conda (no conda channel"
fi

finish
