# shellcheck shell=bash
# Sourced by scripts/provide-images.sh, scripts/debian-base.sh and the stand-in tests: reads
# values from docker/platform.json, the single source of truth for tags, ids and paths.

vpe_repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# VPE_PLATFORM_FILE lets the self-tests point the scripts at throwaway image tags.
vpe_platform_file=${VPE_PLATFORM_FILE:-$vpe_repo_root/docker/platform.json}

# platform.json value at a key path, e.g. `platform_value users postgres uid`; objects print
# their keys separated by spaces.
platform_value() {
  python3 - "$vpe_platform_file" "$@" <<'PY'
import json
import sys

value = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    value = value[key]
if isinstance(value, dict):
    print(*value)
else:
    print(value)
PY
}
