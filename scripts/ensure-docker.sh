#!/usr/bin/env bash
# Makes a Docker engine reachable: uses the user's own if it answers; otherwise, on a Debian
# machine where we are root, installs Debian's docker.io and starts dockerd in the background.
# Exports nothing; prints the client to use (BuildKit works only with Debian's /usr/bin/docker).
set -euo pipefail

docker_client() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

engine_answers() {
  local client
  client=$(docker_client 2>/dev/null) || return 1
  timeout 10 "$client" info >/dev/null 2>&1
}

if engine_answers; then
  docker_client
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-docker: no Docker engine answers and this machine cannot install one" \
       "(need root and apt-get). Start Docker, or set DOCKER_HOST, and retry." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null; then
  echo "ensure-docker: installing Debian's docker.io" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

mkdir -p /var/log/vpe
echo "ensure-docker: starting dockerd (log: /var/log/vpe/dockerd.log)" >&2
nohup dockerd >/var/log/vpe/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if engine_answers; then docker_client; exit 0; fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see /var/log/vpe/dockerd.log" >&2
tail -20 /var/log/vpe/dockerd.log >&2
exit 1
