#!/usr/bin/env bash
# Entrypoint of the Airflow stand-in, honouring the parts of the official image's entrypoint the
# stack relies on: group 0 is required for any uid other than airflow's, `bash`/`sh`/`python`
# run as given, and anything else is an `airflow` sub-command.
set -euo pipefail

check_group() {
  [ "$(id -g)" = 0 ] && return
  if [ "$(id -u)" = "$AIRFLOW_UID" ]; then
    echo "WARNING: run the image with group 0 (started with uid $(id -u), gid $(id -g))" >&2
    return
  fi
  echo "ERROR: the image must run with group 0 (GID=0) for any uid; started with" \
       "uid $(id -u) and gid $(id -g)" >&2
  exit 1
}

# An arbitrary uid has no passwd entry and thus no usable HOME; the venv and pip expect one.
ensure_home() {
  whoami >/dev/null 2>&1 || export HOME="$AIRFLOW_USER_HOME_DIR"
}

main() {
  check_group
  ensure_home
  case "${1:-}" in
    bash | sh) exec "/bin/$1" "${@:2}" ;;
    python) exec python "${@:2}" ;;
    # `airflow <sub-command>` and `<sub-command>` are equivalent, as upstream.
    airflow) exec airflow "${@:2}" ;;
  esac
  exec airflow "$@"
}

main "$@"
