#!/usr/bin/env bash
# Checks the Debian base under its upstream tag (stand-in or real) for what the other images and
# the project's Dockerfiles rely on. Needs the image present (scripts/provide-images.sh debian).
# shellcheck disable=SC2016  # single-quoted $VARS are expanded inside the container
# shellcheck source=e2e/standins/testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"

image=$(platform_value images debian)
suite=${image#*:}
suite=${suite%%-*}

in_image() { "$docker" run --rm "$image" bash -c "$1"; }

check "default command is bash" \
  [ "$("$docker" image inspect --format '{{json .Config.Cmd}}' "$image")" = '["bash"]' ]
check "runs as root by default" [ "$(in_image 'id -u')" = 0 ]
check "is Debian $suite" contains "$(in_image 'cat /etc/os-release')" "VERSION_CODENAME=$suite"
check "PATH covers the sbin and bin directories" \
  contains "$(in_image 'echo $PATH')" /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
check "ships no apt lists" [ "$(in_image 'ls /var/lib/apt/lists | grep -vc -e ^lock$ -e ^partial$ || true')" = 0 ]
check "ships only copyright files under /usr/share/doc" \
  [ "$(in_image 'find /usr/share/doc -type f ! -name copyright | wc -l')" = 0 ]
check "security updates are configured" \
  contains "$(in_image 'cat /etc/apt/sources.list.d/debian.sources')" "$suite-security"
check "apt installs packages without man pages or docs" \
  [ "$(in_image 'apt-get update -qq && apt-get install -y -qq --no-install-recommends less >/dev/null 2>&1 && ls /usr/share/man | wc -l; ls /usr/share/doc/less')" = "$(printf '0\ncopyright')" ]

# Only where this machine's HTTPS is intercepted by a proxy with a local CA (see README.md).
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  check "PIP_CERT points at the system bundle" \
    [ "$(in_image 'echo $PIP_CERT')" = /etc/ssl/certs/ca-certificates.crt ]
  check "HTTPS through the proxy verifies with the bundle" \
    in_image 'apt-get update -qq && apt-get install -y -qq --no-install-recommends curl >/dev/null 2>&1 && curl -fsS -o /dev/null https://pypi.org/simple/pip/'
fi

finish
