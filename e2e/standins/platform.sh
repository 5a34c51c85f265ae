# shellcheck shell=bash
# Sourced by scripts/provide-images.sh, scripts/debian-base.sh and the stand-in tests: reads
# values from docker/platform.json, the single source of truth for ids, ports and paths, and
# docker/images.json, for the upstream image tags.

vpe_repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# VPE_PLATFORM_FILE and VPE_IMAGES_FILE let the self-tests and the upgrade test point the
# scripts at other values and image tags.
vpe_platform_file=${VPE_PLATFORM_FILE:-$vpe_repo_root/docker/platform.json}
vpe_images_file=${VPE_IMAGES_FILE:-$vpe_repo_root/docker/images.json}

# The value at a key path, e.g. `platform_value users postgres uid`; `platform_value images KEY`
# reads images.json. Objects print their keys separated by spaces.
platform_value() {
  python3 - "$vpe_platform_file" "$vpe_images_file" "$@" <<'PY'
import json
import sys

platform_file, images_file, *keys = sys.argv[1:]
value = json.load(open(platform_file))
value["images"] = json.load(open(images_file))
for key in keys:
    value = value[key]
if isinstance(value, dict):
    print(*value)
else:
    print(value)
PY
}
