#!/usr/bin/env bash
# Provides the images (building stand-ins where no registry answers) and runs every stand-in test.
# Exit code 0 only when every test passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/../../scripts/provide-images.sh"

status=0
for t in provide-images-test.sh debian/test.sh postgres/test.sh redis/test.sh airflow/test.sh prometheus/test.sh alertmanager/test.sh statsd-exporter/test.sh postgres-exporter/test.sh node-exporter/test.sh redis-exporter/test.sh; do
  echo "== $t"
  "$here/$t" || status=1
done
exit "$status"
