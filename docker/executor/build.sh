#!/usr/bin/env bash
# Image build steps for the executor, run by the Dockerfile (as root, in the build).
#
#   build.sh envs APP_DIR   create one isolated environment per envs/<name>/ spec
#   build.sh app  APP_DIR   compile the proto, make vpe_executor importable, create the user
#
# Reads ENV_FORMAT, PLATFORM_FILE, ENVS_DIR, EXECUTOR_UID and GRPC_PORT from the environment
# (the Dockerfile's build args) and checks each against the COPY'd platform.json, so the image
# cannot silently drift from the contract.
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
  for name in ENV_FORMAT PLATFORM_FILE ENVS_DIR EXECUTOR_UID GRPC_PORT; do
    [ -n "${!name:-}" ] || die "build arg $name is required (see the Dockerfile header)"
  done
  case "$ENV_FORMAT" in venv | conda) ;; *) die "build arg ENV_FORMAT must be venv or conda, got '$ENV_FORMAT'" ;; esac
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

create_env() {
  local spec=$1 prefix=$2
  if [ "$ENV_FORMAT" = conda ]; then
    conda env create --quiet --prefix "$prefix" --file "$spec/environment.yml"
  else
    python3 -m venv "$prefix"
    "$prefix/bin/pip" install --quiet --disable-pip-version-check -r "$spec/requirements.txt"
  fi
  local minor
  minor=$("$prefix/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$minor" = "$(platform pythonMinor)" ] ||
    die "env $(basename "$prefix") has python $minor, platform.json pythonMinor is $(platform pythonMinor)"
}

build_envs() {
  local app_dir=$1 spec
  # pip expands ${VPE_GRPCIO_VERSION} inside envs/server/requirements.txt.
  VPE_GRPCIO_VERSION=$(platform versions.grpcio)
  export VPE_GRPCIO_VERSION
  for spec in "$app_dir"/envs/*/; do
    create_env "${spec%/}" "$ENVS_DIR/$(basename "$spec")"
  done
  [ -x "$ENVS_DIR/server/bin/python" ] || die "no envs/server spec: the server needs its own env"
  if [ "$ENV_FORMAT" = conda ]; then conda clean --all --yes --quiet; fi
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
