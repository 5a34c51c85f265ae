#!/usr/bin/env bash
# Entrypoint of the redis stand-in, honouring the official image's behaviour: options alone or a
# config file imply redis-server; as root it fixes /data ownership and drops to the redis user;
# without a config file that sets protected-mode it turns protected mode off, because inside a
# container the clients always arrive from other addresses.
set -euo pipefail

if [ $# -eq 0 ] || [ "${1:0:1}" = - ] || [[ "$1" == *.conf ]]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  config=${2:-}
  if [ ! -f "$config" ] || ! grep -Eq '^[[:space:]]*protected-mode[[:space:]]' "$config"; then
    set -- "$@" --protected-mode no
  fi
  # Data files should not be world-readable unless the operator chose a umask.
  [ "$(umask)" != 0022 ] || umask 0077
fi

exec "$@"
