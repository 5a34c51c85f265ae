# shellcheck shell=bash
# Sourced by the stand-in tests: assertions that count failures, and bounded polling.
set -euo pipefail
# shellcheck source=e2e/standins/platform.sh
. "$(dirname "${BASH_SOURCE[0]}")/platform.sh"

# shellcheck disable=SC2034  # used by the tests that source this file
docker=$("$vpe_repo_root/scripts/ensure-docker.sh")
failures=0

check() {
  local what=$1; shift
  if "$@"; then echo "ok   - $what"; else echo "FAIL - $what"; failures=$((failures + 1)); fi
}

# Retries a command once a second, at most $1 times: a bound on waiting, not a timing assertion.
wait_until() {
  local tries=$1; shift
  until "$@" >/dev/null 2>&1; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 1
  done
}

# Fails unless $1 contains $2.
contains() { [[ "$1" == *"$2"* ]]; }

# Succeeds when the command fails.
fails() { ! "$@" >/dev/null 2>&1; }

# Fails unless PID 1 of container $1 runs with real uid $2.
pid1_uid_is() {
  # shellcheck disable=SC2016  # $2 is awk's field, not the shell's
  [ "$("$docker" exec "$1" awk '/^Uid:/ { print $2 }' /proc/1/status)" = "$2" ]
}

# Fails unless path $2 in container $1 is owned by uid $3.
owner_is() { [ "$("$docker" exec "$1" stat -c %u "$2")" = "$3" ]; }

finish() {
  if [ "$failures" -eq 0 ]; then echo "all checks passed"; return 0; fi
  echo "$failures check(s) failed"
  return 1
}
