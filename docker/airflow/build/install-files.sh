#!/usr/bin/env bash
# Root part of the Airflow image build: platform.json, the PostgreSQL JDBC driver (sha256
# checked), the Spark jobs, the init script with the helpers it uses (platform-get, admin-user,
# vpe_secrets), and the job and Celery worker health probes, each at the path platform.json gives.
# Usage: install-files.sh <platform.json> <PLATFORM_FILE build arg> <jobs dir> <bin dir> <platform-get.py>
set -euo pipefail

platform=$1
platform_file=$2
jobs_src=$3
bin_src=$4
platform_get=$5

die() { echo "airflow image setup: $*" >&2; exit 1; }
json() { python "$platform_get" "$platform" "$1"; }

expected_file=$(json paths.platformFile)
[ -n "$platform_file" ] || die "build arg PLATFORM_FILE is required (platform.json paths.platformFile = $expected_file)"
[ "$platform_file" = "$expected_file" ] || die "build arg PLATFORM_FILE=$platform_file differs from platform.json paths.platformFile=$expected_file"
install -D -m 0644 "$platform" "$platform_file"

jdbc_version=$(json versions.postgresJdbc)
jar="$(json paths.jars)/postgresql-${jdbc_version}.jar"
install -d -m 0755 "$(dirname "$jar")"
curl -fsSL --retry 3 -o "$jar" \
  "https://repo1.maven.org/maven2/org/postgresql/postgresql/${jdbc_version}/postgresql-${jdbc_version}.jar"
echo "$(json checksums.postgresJdbcSha256)  $jar" | sha256sum --check --strict
chmod 0644 "$jar"

install -d -m 0755 "$(json paths.jobs)"
install -m 0644 "$jobs_src"/*.py "$(json paths.jobs)/"

init=$(json paths.airflowInit)
install -D -m 0755 "$bin_src/airflow-init.sh" "$init"
install -m 0755 "$platform_get" "$(dirname "$init")/platform-get.py"
install -m 0755 "$bin_src/admin-user.py" "$(dirname "$init")/admin-user.py"
job_probe=$(json paths.airflowJobProbe)
celery_probe=$(json paths.airflowCeleryProbe)
install -D -m 0755 "$bin_src/job-alive.py" "$job_probe"
install -D -m 0755 "$bin_src/celery-alive.py" "$celery_probe"
# vpe_secrets.py (secrets from a file or an Airflow _CMD) is imported by the probes and run by the
# init script from their own folder (a script's folder is first on its sys.path), so it goes
# beside each of them, wherever platform.json puts them.
for dir in $(printf '%s\n' "$(dirname "$init")" "$(dirname "$job_probe")" "$(dirname "$celery_probe")" | sort -u); do
  install -m 0644 "$bin_src/vpe_secrets.py" "$dir/"
done
