#!/usr/bin/env bash
# Builds the Spark and Airflow images and checks them together on a private network:
# the master starts, a worker registers (ALIVE in the master's /json/), and a PySpark job with
# a Python UDF runs from the Airflow image (client-mode driver) on the worker, proving that
# driver and executors agree on Python and PySpark versions. Also checks the Airflow image's
# spark-submit, gRPC stubs, JDBC jar and init script. Prints build times and image sizes.
# Needs the base images of images.json (debian, airflow) in the local engine.
# Usage: docker/spark/smoke-test.sh      Env: DOCKER (default /usr/bin/docker), TAG_PREFIX
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
docker_bin=${DOCKER:-/usr/bin/docker}
prefix=${TAG_PREFIX:-vpe-smoke}
run_id="$prefix-$$"
json() { python3 "$repo/docker/spark/build/platform-get.py" "$repo/docker/platform.json" "$1"; }
image() { python3 "$repo/docker/spark/build/platform-get.py" "$repo/docker/images.json" "$1"; }

dockerd() { DOCKER_BUILDKIT=1 "$docker_bin" "$@"; }
cleanup() {
  dockerd rm -f "$run_id-master" "$run_id-worker" >/dev/null 2>&1 || true
  dockerd network rm "$run_id" >/dev/null 2>&1 || true
}
trap cleanup EXIT

build() { # <service> <build args...>
  local service=$1 start
  shift
  start=$(date +%s)
  dockerd build -q -f "$repo/docker/$service/Dockerfile" "$@" -t "$prefix/$service:test" "$repo/docker" >/dev/null
  echo "built $prefix/$service:test in $(($(date +%s) - start))s," \
    "$(dockerd image inspect -f '{{.Size}}' "$prefix/$service:test" | awk '{printf "%.0f MB", $1/1e6}')"
}

build spark --build-arg "DEBIAN_IMAGE=$(image debian)" --build-arg "SPARK_HOME=$(json paths.sparkHome)"
build airflow --build-arg "AIRFLOW_IMAGE=$(image airflow)" --build-arg "PLATFORM_FILE=$(json paths.platformFile)"

master=$(json aliases.sparkMaster)
master_url="spark://$master:$(json ports.sparkMaster)"
dockerd network create "$run_id" >/dev/null
dockerd run -d --name "$run_id-master" --network "$run_id" --network-alias "$master" "$prefix/spark:test" \
  spark-class org.apache.spark.deploy.master.Master --host "$master" \
  --port "$(json ports.sparkMaster)" --webui-port "$(json ports.sparkMasterUi)" >/dev/null
dockerd run -d --name "$run_id-worker" --network "$run_id" -e SPARK_WORKER_CORES=1 \
  -e SPARK_WORKER_MEMORY=1g -e SPARK_WORKER_DIR=/tmp/spark-work "$prefix/spark:test" \
  spark-class org.apache.spark.deploy.worker.Worker "$master_url" >/dev/null

alive_workers() {
  dockerd exec "$run_id-master" curl -fsS "http://127.0.0.1:$(json ports.sparkMasterUi)/json/" 2>/dev/null \
    | python3 -c 'import json, sys; print(sum(w["state"] == "ALIVE" for w in json.load(sys.stdin)["workers"]))' 2>/dev/null
}
for _ in $(seq 60); do
  [ "$(alive_workers || echo 0)" -ge 1 ] && break
  sleep 2
done
[ "$(alive_workers)" -ge 1 ] || { echo "FAIL: no ALIVE worker registered" >&2; exit 1; }
echo "ok: worker registered with $master_url"

# Runs a bash snippet in the Airflow image; further arguments become the snippet's $0, $1...
airflow_check() { dockerd run --rm --network "$run_id" "$prefix/airflow:test" bash -c "$@"; }
# shellcheck disable=SC2016 # expanded by the container's bash
airflow_check 'spark-submit --version 2>&1 | grep -q "version $0"' "$(json versions.pyspark)" \
  && echo "ok: spark-submit $(json versions.pyspark) in the Airflow image"
airflow_check 'python -c "import executor_pb2, executor_pb2_grpc; executor_pb2_grpc.PingServiceStub"' \
  && echo "ok: executor stubs importable"
airflow_check "test -s $(json paths.jars)/postgresql-$(json versions.postgresJdbc).jar && test -x $(json paths.airflowInit) && test -f $(json paths.jobs)/events_per_country_year.py" \
  && echo "ok: JDBC jar, init script and Spark job in place"

job='
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("smoke").getOrCreate()
rdd = spark.sparkContext.parallelize(range(100), 2)
minors = rdd.map(lambda _: "%d.%d" % sys.version_info[:2]).distinct().collect()
print("RESULT", rdd.map(lambda x: x * 2).sum(), minors)
spark.stop()
'
start=$(date +%s)
# shellcheck disable=SC2016 # expanded by the container's bash
out=$(dockerd run --rm --network "$run_id" -e "SMOKE_JOB=$job" "$prefix/airflow:test" bash -c \
  'printf "%s" "$SMOKE_JOB" > /tmp/smoke.py && spark-submit --master "$0" --executor-memory 512m --total-executor-cores 1 /tmp/smoke.py 2>/dev/null' \
  "$master_url")
expected="RESULT 9900 ['$(json pythonMinor)']"
[ "$out" = "$expected" ] || { echo "FAIL: job printed '$out', expected '$expected'" >&2; exit 1; }
echo "ok: PySpark job from the Airflow image ran on the worker in $(($(date +%s) - start))s ($out)"
