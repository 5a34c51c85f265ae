#!/usr/bin/env bash
# Build-time setup of the Spark image (run once as root by the Dockerfile): pyspark in a venv,
# SPARK_HOME, the spark user and the healthcheck, all from platform.json.
# Usage: setup.sh <platform.json> <constraints.txt> <SPARK_HOME build arg>
set -euo pipefail

platform=$1
constraints=$2
spark_home=$3
venv=/opt/pyspark-venv

die() { echo "spark image setup: $*" >&2; exit 1; }

json() { python3 "$(dirname "$0")/platform-get.py" "$platform" "$1"; }

expected_home=$(json paths.sparkHome)
[ -n "$spark_home" ] || die "build arg SPARK_HOME is required (platform.json paths.sparkHome = $expected_home)"
[ "$spark_home" = "$expected_home" ] || die "build arg SPARK_HOME=$spark_home differs from platform.json paths.sparkHome=$expected_home"

# Driver (Airflow image) and executors must share a Python minor, or PySpark refuses to run.
python_minor=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$python_minor" = "$(json pythonMinor)" ] || die "base python3 is $python_minor, platform.json pythonMinor is $(json pythonMinor)"

python3 -m venv "$venv"
"$venv/bin/pip" install --disable-pip-version-check --no-warn-script-location \
  -c "$constraints" "pyspark==$(json versions.pyspark)"
# pip's pyspark package is a complete Spark distribution (bin/, jars/, sbin/).
ln -s "$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" "$spark_home"

useradd --uid "$(json users.spark.uid)" --gid "$(json users.spark.gid)" \
  --create-home --home-dir /home/spark --shell /bin/bash spark
# A logs volume that a swarm node creates on first use is filled from the image: the workers'
# folder is then there, the spark user's.
install -d -o spark -g "$(json users.spark.gid)" -m 2775 "$(json paths.logs)/spark"

# One image serves master and worker: healthy when either web UI of this container answers.
# The worker's port follows SPARK_WORKER_WEBUI_PORT when the stack sets it.
cat > /usr/local/bin/vpe-spark-health <<HEALTH
#!/usr/bin/env bash
for port in $(json ports.sparkMasterUi) "\${SPARK_WORKER_WEBUI_PORT:-$(json ports.sparkWorkerUi)}"; do
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:\${port}/json/" && exit 0
done
exit 1
HEALTH
chmod 0755 /usr/local/bin/vpe-spark-health
