#!/usr/bin/env bash
# Installs Debian's OpenJDK 17 JRE (what Spark 4 runs on) plus procps and any extra packages
# given as arguments, and links it to /usr/lib/jvm/java-17 so JAVA_HOME does not depend on the
# CPU architecture in Debian's directory name. Shared by the Spark and Airflow image builds.
set -euo pipefail

# Slim bases exclude man pages, and the JRE's postinst fails without this folder.
mkdir -p /usr/share/man/man1
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  openjdk-17-jre-headless procps "$@"
rm -rf /var/lib/apt/lists/*
ln -s "$(dirname "$(dirname "$(readlink -f /usr/bin/java)")")" /usr/lib/jvm/java-17
