#!/usr/bin/env bash
# Image build steps for the executor, run by the Dockerfile (as root, in the build).
#
#   build.sh envs APP_DIR   create one isolated environment per envs/<name>/ folder
#   build.sh app  APP_DIR   compile the proto, make vpe_executor importable, create the user
#
# An environment is a locked uv project (pyproject.toml + uv.lock, installed with
# `uv sync --frozen`: nothing is resolved at build time and every hash is checked), or, chosen per
# environment for conda-only packages, a conda spec (environment.yml; needs the conda base image
# and a reachable channel). Either way it lands in ENVS_DIR/<name> with platform.json's Python minor.
#
# Reads PLATFORM_FILE, ENVS_DIR, EXECUTOR_UID and GRPC_PORT from the environment (the
# Dockerfile's build args) and checks each against the COPY'd platform.json, so the image cannot
# silently drift from the contract.
set -euo pipefail

die() { echo "executor build: $*" >&2; exit 1; }

platform() {
  python3 - "$PLATFORM_FILE" "$1" <<'PY'
import json, sys
node = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    node = node[key]
print(node)
PY
}

require_args() {
  local name
  for name in PLATFORM_FILE ENVS_DIR EXECUTOR_UID GRPC_PORT; do
    [ -n "${!name:-}" ] || die "build arg $name is required (see the Dockerfile header)"
  done
  check_arg ENVS_DIR paths.envs
  check_arg EXECUTOR_UID users.executor.uid
  check_arg GRPC_PORT ports.executorGrpc
  check_arg PLATFORM_FILE paths.platformFile
  [ "$(platform users.executor.gid)" = 0 ] || die "platform users.executor.gid must be 0"
}

check_arg() {
  local expected
  expected=$(platform "$2")
  [ "${!1}" = "$expected" ] || die "build arg $1='${!1}' differs from platform.json $2='$expected'"
}

purelib() {
  "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# uv itself, pinned in platform.json, in a throwaway venv removed once the environments exist.
install_uv() {
  python3 -m venv /tmp/vpe-uv
  /tmp/vpe-uv/bin/pip install --quiet --disable-pip-version-check "uv==$(platform versions.uv)"
}

# The channels an environment.yml lists (conda-forge when none), as URLs.
conda_channels() {
  local spec=$1 channels channel
  channels=$(awk '/^channels:/ {on=1; next} on && /^[^ ]/ {on=0} on && /^ *- / {sub(/^ *- */, ""); print}' "$spec/environment.yml")
  for channel in ${channels:-conda-forge}; do
    case "$channel" in *://*) echo "${channel%/}" ;; *) echo "https://conda.anaconda.org/$channel" ;; esac
  done
}

# Fails at once, naming the environment and the channel, when a channel cannot be reached.
check_conda_channels() {
  local name=$1 spec=$2 url
  for url in $(conda_channels "$spec"); do
    python3 - "$url/noarch/repodata.json" <<'PY' ||
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=15)
PY
      die "env $name uses conda (environment.yml) but its channel $url cannot be reached from this build"
  done
  command -v conda >/dev/null || die "env $name uses conda (environment.yml) but the base image has no conda"
}

create_env() {
  local spec=$1 prefix=$2 name
  name=$(basename "$prefix")
  if [ -f "$spec/pyproject.toml" ]; then
    [ -f "$spec/uv.lock" ] || die "env $name: pyproject.toml without uv.lock (run uv lock in $spec)"
    UV_PROJECT_ENVIRONMENT="$prefix" UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
      /tmp/vpe-uv/bin/uv sync --quiet --frozen --no-dev --project "$spec" --python "$(command -v python3)"
  elif [ -f "$spec/environment.yml" ]; then
    check_conda_channels "$name" "$spec"
    conda env create --quiet --prefix "$prefix" --file "$spec/environment.yml"
  else
    die "env $name: expected pyproject.toml + uv.lock, or environment.yml, in $spec"
  fi
  local minor
  minor=$("$prefix/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$minor" = "$(platform pythonMinor)" ] ||
    die "env $name has python $minor, platform.json pythonMinor is $(platform pythonMinor)"
}

build_envs() {
  local app_dir=$1 spec
  install_uv
  for spec in "$app_dir"/envs/*/; do
    create_env "${spec%/}" "$ENVS_DIR/$(basename "$spec")"
  done
  rm -rf /tmp/vpe-uv
  [ -x "$ENVS_DIR/server/bin/python" ] || die "no envs/server project: the server needs its own env"
  if command -v conda >/dev/null; then conda clean --all --yes --quiet; fi
}

build_app() {
  local app_dir=$1 env site
  site=$(purelib "$ENVS_DIR/server")
  PYTHONPATH="$app_dir/src" "$ENVS_DIR/server/bin/python" -m vpe_executor.protogen \
    "$app_dir/proto/executor.proto" "$site"
  # A .pth file instead of PYTHONPATH: nothing leaks into the environment of task processes,
  # and every env (pipelines included) can import vpe_executor.platform_config.
  for env in "$ENVS_DIR"/*/; do
    echo "$app_dir/src" >"$(purelib "${env%/}")/vpe_executor.pth"
  done
  "$ENVS_DIR/server/bin/python" -c 'import executor_pb2_grpc, vpe_executor.server'
  "$ENVS_DIR/server/bin/python" -m compileall -q "$app_dir/src" "$app_dir/pipelines"

  useradd --uid "$EXECUTOR_UID" --gid 0 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin vpe-executor
  # Named volumes start as a copy of these directories: group 0, setgid, group-writable.
  local dir
  for dir in "$(platform paths.logs)/executor" "$(platform paths.buffer)" "$(platform paths.data)"; do
    mkdir -p "$dir"
    chown "$EXECUTOR_UID:0" "$dir"
    chmod 2775 "$dir"
  done
  chown "$EXECUTOR_UID:0" "$(platform paths.logs)"
  chmod 2775 "$(platform paths.logs)"
}

main() {
  [ $# = 2 ] || die "usage: build.sh envs|app APP_DIR"
  require_args
  case "$1" in
    envs) build_envs "$2" ;;
    app) build_app "$2" ;;
    *) die "unknown step '$1'" ;;
  esac
}

main "$@"
