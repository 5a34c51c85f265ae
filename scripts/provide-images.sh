#!/usr/bin/env bash
# Makes every upstream image the stack uses available in the local Docker engine under its
# upstream name:tag (docker/images.json): keeps it if present, else pulls it, else builds the
# local stand-in from e2e/standins/<key> (for machines with no reachable registry).
#
# Usage: scripts/provide-images.sh [--force] [--no-pull] [KEY...]
#   KEY       a key of docker/images.json (default: debian postgres airflow redis prometheus
#             alertmanager statsd-exporter postgres-exporter node-exporter redis-exporter)
#   --force   ignore images already present (pull or rebuild them)
#   --no-pull skip the registry and build stand-ins directly
# Prints one line per image: present / pulled / built, with seconds and size.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
standins="$repo_root/e2e/standins"
# shellcheck source=e2e/standins/platform.sh
. "$standins/platform.sh"
label=org.vpe.standin
default_keys=(debian postgres airflow redis prometheus alertmanager statsd-exporter postgres-exporter node-exporter redis-exporter)
pull_timeout=60

force=false
pull=true
docker=
build_args=()
context_files=()
go_binaries=()

die() { echo "provide-images: $*" >&2; exit 1; }

# absent | kept (pulled from a registry or one of our stand-ins) | stray (someone's unlabelled
# local build or import under the upstream tag, which is replaced).
image_state() {
  local info
  info=$("$docker" image inspect --format \
    "{{if .Config.Labels}}{{index .Config.Labels \"$label\"}}{{end}}|{{len .RepoDigests}}" \
    "$1" 2>/dev/null) || { echo absent; return; }
  if [ "${info%|*}" = true ] || [ "${info#*|}" != 0 ]; then echo kept; else echo stray; fi
}

image_size() {
  "$docker" image inspect --format '{{.Size}}' "$1" | awk '{ printf "%d MB", $1 / 1000000 }'
}

try_pull() {
  $pull || return 1
  timeout "$pull_timeout" "$docker" pull --quiet "$1" >/dev/null 2>&1
}

# Sets build_args and context_files for the stand-in of $1 from platform.json.
configure_standin() {
  local key=$1 tag version
  tag=$(platform_value images "$key")
  version=${tag#*:}; version=${version#v}; version=${version%%-*}
  build_args=(--build-arg "BASE_IMAGE=$(platform_value images debian)")
  context_files=()
  go_binaries=()
  case "$key" in
    prometheus | alertmanager | postgres-exporter | node-exporter | redis-exporter)
      # One Debian package at the tag's version: the shared installer goes into the context.
      context_files=("$standins/apt-install-release.sh") ;;
  esac
  case "$key" in
    postgres)
      build_args+=(--build-arg "PG_MAJOR=${version%%.*}" --build-arg "PG_VERSION=$version"
        --build-arg "POSTGRES_UID=$(platform_value users postgres uid)"
        --build-arg "POSTGRES_GID=$(platform_value users postgres gid)"
        --build-arg "POSTGRES_PORT=$(platform_value ports postgres)"
        --build-arg "PGDATA_DIR=$(platform_value paths postgresData)") ;;
    redis)
      build_args+=(--build-arg "REDIS_VERSION=$version"
        --build-arg "REDIS_UID=$(platform_value users redis uid)"
        --build-arg "REDIS_GID=$(platform_value users redis gid)"
        --build-arg "REDIS_PORT=$(platform_value ports redis)") ;;
    prometheus)
      build_args+=(--build-arg "PROMETHEUS_VERSION=$version"
        --build-arg "PROMETHEUS_PORT=$(platform_value ports prometheus)") ;;
    alertmanager)
      build_args+=(--build-arg "ALERTMANAGER_VERSION=$version"
        --build-arg "ALERTMANAGER_PORT=$(platform_value ports alertmanager)") ;;
    postgres-exporter)
      build_args+=(--build-arg "POSTGRES_EXPORTER_VERSION=$version"
        --build-arg "POSTGRES_EXPORTER_PORT=$(platform_value ports postgresExporter)") ;;
    redis-exporter)
      build_args+=(--build-arg "REDIS_EXPORTER_VERSION=$version"
        --build-arg "REDIS_EXPORTER_PORT=$(platform_value ports redisExporter)") ;;
    node-exporter)
      build_args+=(--build-arg "NODE_EXPORTER_VERSION=$version"
        --build-arg "NODE_EXPORTER_PORT=$(platform_value ports nodeExporter)") ;;
    statsd-exporter)
      build_args+=(--build-arg "STATSD_WEB_PORT=$(platform_value ports statsdExporterWeb)"
        --build-arg "STATSD_PORT=$(platform_value ports statsd)")
      go_binaries=("github.com/prometheus/statsd_exporter@v$version") ;;
    airflow)
      [ "$version" = "$(platform_value versions airflow)" ] \
        || die "images.json airflow ($tag) disagrees with versions.airflow in $vpe_platform_file"
      build_args+=(--build-arg "AIRFLOW_VERSION=$version"
        --build-arg "PYTHON_MINOR=$(platform_value pythonMinor)"
        --build-arg "AIRFLOW_UID=$(platform_value users airflow uid)"
        --build-arg "AIRFLOW_GID=$(platform_value users airflow gid)"
        --build-arg "AIRFLOW_HOME_DIR=$(platform_value paths airflowHome)")
      context_files=("$repo_root/docker/airflow/constraints.txt") ;;
    *) die "no stand-in exists for image key '$key'" ;;
  esac
}

# The stand-in's inputs (its folder, extra context files, build args) as one hash, stored as a
# label: a stand-in built from other inputs (say, an older constraints.txt) is rebuilt.
standin_inputs() {
  local key=$1 f
  configure_standin "$key"
  {
    (cd "$standins/$key" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    for f in "${context_files[@]}"; do sha256sum <"$f"; done
    printf '%s\n' "${build_args[@]}" "${go_binaries[@]}"
  } | sha256sum | cut -d' ' -f1
}

image_label() {
  "$docker" image inspect --format "{{if .Config.Labels}}{{index .Config.Labels \"$2\"}}{{end}}" "$1" 2>/dev/null
}

# The airflow stand-in needs the project's constraints file, which lives outside its folder:
# a throwaway context holds both without duplicating the file in git.
build_standin() {
  local key=$1 tag=$2 context log
  configure_standin "$key"
  context=$(mktemp -d "${TMPDIR:-/tmp}/vpe-standin-$key.XXXXXX")
  log="$context.log"
  cp -a "$standins/$key/." "$context/"
  local f
  for f in "${context_files[@]}"; do
    [ -r "$f" ] || die "the $key stand-in needs $f, which does not exist yet"
    cp "$f" "$context/"
  done
  for f in "${go_binaries[@]}"; do
    go_install "$key" "$f" "$context/bin" || { rm -rf "$context"; die "building $f for the $key stand-in failed"; }
  done
  if ! DOCKER_BUILDKIT=1 "$docker" build --progress=plain --label "$label=true" \
      --label "$label.inputs=$(standin_inputs "$key")" \
      "${build_args[@]}" -t "$tag" "$context" >"$log" 2>&1; then
    rm -rf "$context"
    tail -40 "$log" >&2
    die "building the $key stand-in failed (full log: $log)"
  fi
  rm -rf "$context" "$log"
}

# Builds MODULE@vVERSION from the Go module proxy with this machine's Go, static, stamped with its
# version as upstream's promu does, into DIR. The engine must share this machine's architecture.
go_install() {
  local key=$1 module=$2 dir=$3 engine_arch go_arch
  command -v go >/dev/null || die "the $key stand-in is built with Go, which is not installed"
  engine_arch=$("$docker" info --format '{{.Architecture}}')
  go_arch=$(go env GOARCH)
  case "$engine_arch" in x86_64) engine_arch=amd64 ;; aarch64) engine_arch=arm64 ;; esac
  [ "$engine_arch" = "$go_arch" ] \
    || die "the $key stand-in is built for this machine's $go_arch; the engine is $engine_arch"
  GOBIN=$dir CGO_ENABLED=0 GOFLAGS=-trimpath go install \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${module##*@v}" "$module"
}

provide() {
  local key=$1 tag state start
  tag=$(platform_value images "$key")
  state=$(image_state "$tag")
  if [ "$state" = kept ] && ! $force; then
    # A pulled image, or the debootstrapped base, is kept as it is; a stand-in only while its
    # inputs are unchanged.
    if [ "$key" = debian ] || [ "$(image_label "$tag" "$label")" != true ] \
        || [ "$(image_label "$tag" "$label.inputs")" = "$(standin_inputs "$key")" ]; then
      echo "present: $tag"
      return
    fi
    echo "rebuilding: $tag (its stand-in inputs changed)" >&2
  fi
  start=$SECONDS
  if try_pull "$tag"; then
    echo "pulled: $tag ($((SECONDS - start)) s, $(image_size "$tag"))"
    return
  fi
  [ "$key" = conda ] && die "unavailable: $tag (no conda channel; only an executor environment" \
    "with an environment.yml needs it) - it was requested and could not be pulled"
  [ "$state" = stray ] && echo "replacing an unlabelled local image: $tag" >&2
  if [ "$key" = debian ]; then
    start=$SECONDS
    "$repo_root/scripts/debian-base.sh" >/dev/null
  else
    # Stand-ins build FROM the debian one: provide it first unless a usable one is present.
    [ "$(image_state "$(platform_value images debian)")" = kept ] || provide debian
    start=$SECONDS
    build_standin "$key" "$tag"
  fi
  echo "built: $tag ($((SECONDS - start)) s, $(image_size "$tag"))"
}

report_unrequested_conda() {
  local tag
  tag=$(platform_value images conda)
  [ "$(image_state "$tag")" = absent ] || return 0
  echo "unavailable: $tag (no conda channel; only an executor environment with an environment.yml needs it)"
}

main() {
  local keys=() known key
  while [ $# -gt 0 ]; do
    case "$1" in
      --force) force=true ;;
      --no-pull) pull=false ;;
      -*) die "unknown option '$1' (usage: provide-images.sh [--force] [--no-pull] [KEY...])" ;;
      *) keys+=("$1") ;;
    esac
    shift
  done
  [ ${#keys[@]} -gt 0 ] || keys=("${default_keys[@]}")
  known=" $(platform_value images) "
  for key in "${keys[@]}"; do
    [[ "$known" == *" $key "* ]] || die "unknown image key '$key'; known:$known"
  done

  docker=$("$repo_root/scripts/ensure-docker.sh")
  # Two concurrent runs would build the same tags twice; serialise them.
  exec 9>"${TMPDIR:-/tmp}/vpe-provide-images.lock"
  flock 9

  # debian first: the other stand-ins are built FROM it.
  [[ " ${keys[*]} " == *" debian "* ]] && provide debian
  for key in "${keys[@]}"; do
    [ "$key" = debian ] || provide "$key"
  done
  [[ " ${keys[*]} " == *" conda "* ]] || report_unrequested_conda
}

main "$@"
