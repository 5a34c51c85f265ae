#!/usr/bin/env bash
# Exercises the Airflow image under its upstream tag (stand-in or real) against the contract the
# stack relies on. Needs the image present (scripts/provide-images.sh airflow).
# shellcheck disable=SC2016  # single-quoted $VARS are expanded inside the container
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images airflow)
version=$(platform_value versions airflow)
python_minor=$(platform_value pythonMinor)
uid=$(platform_value users airflow uid)
gid=$(platform_value users airflow gid)
airflow_home=$(platform_value paths airflowHome)
derived=vpe-standin-test-airflow-derived:$$
# A small pure-Python wheel that the image does not ship, to prove pip works as USER airflow.
probe_package=cowsay==6.1

cleanup() { "$docker" rmi -f "$derived" >/dev/null 2>&1 || true; }
trap cleanup EXIT

run() { "$docker" run --rm "$@" 2>/dev/null; }
last_line() { tail -n 1; }
image_exists() { "$docker" image inspect "$1" >/dev/null 2>&1; }

echo "# entrypoint dispatch"
check "'version' runs airflow version ($version)" [ "$(run "$image" version | last_line)" = "$version" ]
check "'airflow version' is accepted too" [ "$(run "$image" airflow version | last_line)" = "$version" ]
check "default user is uid $uid gid $gid" \
  contains "$(run "$image" bash -c id)" "uid=$uid(airflow) gid=$gid("
check "sh runs as given" [ "$(run "$image" sh -c 'echo from-sh')" = from-sh ]
check "PID 1 is dumb-init" [ "$(run "$image" bash -c 'cat /proc/1/comm')" = dumb-init ]
check "python is $python_minor" \
  [ "$(run "$image" python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$python_minor" ]
check "grpc, standard, postgres, celery and fab providers import" \
  run "$image" python -c 'import airflow.providers.grpc, airflow.providers.standard, airflow.providers.postgres, airflow.providers.celery, airflow.providers.fab'

echo "# users and permissions"
check "AIRFLOW_HOME is $airflow_home and the working directory" \
  [ "$(run "$image" bash -c 'echo "$AIRFLOW_HOME $PWD"')" = "$airflow_home $airflow_home" ]
check "AIRFLOW_HOME owned by $uid:$gid and group-writable" \
  contains "$(run "$image" bash -c "stat -c '%u:%g %A' $airflow_home")" "$uid:$gid drwxrws"
check "an arbitrary uid with group 0 runs airflow" \
  [ "$(run --user 4321:0 "$image" version | last_line)" = "$version" ]
check "an arbitrary uid with group 0 can write AIRFLOW_HOME" \
  run --user 4321:0 "$image" bash -c 'touch "$AIRFLOW_HOME/dags/probe"'
refusal=$("$docker" run --rm --user 4321:4321 "$image" version 2>&1 || true)
check "an arbitrary uid with another group is refused" contains "$refusal" "must run with group 0"
check "... with a non-zero exit code" fails "$docker" run --rm --user 4321:4321 "$image" version

echo "# derived image installs with pip as USER airflow"
build_log=$(printf 'FROM %s\nUSER airflow\nRUN pip install --no-cache-dir --no-deps %s\n' \
  "$image" "$probe_package" | DOCKER_BUILDKIT=1 "$docker" build -q -t "$derived" - 2>&1) \
  || echo "$build_log" >&2
check "derived image builds" image_exists "$derived"
check "the package lands in airflow's virtualenv" \
  contains "$(run "$derived" python -c 'import cowsay; print(cowsay.__file__)')" /home/airflow/.local/

finish
