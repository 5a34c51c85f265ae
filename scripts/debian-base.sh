#!/usr/bin/env bash
# Builds a local stand-in for the official Debian slim image (docker/images.json debian) with
# debootstrap and imports it into the Docker engine under the upstream name:tag.
# Usage: scripts/debian-base.sh            (needs root; installs debootstrap with apt if missing)
# Env:   DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR override the mirrors read from the host's apt.
#        VPE_STANDIN_CA_DIR (default /usr/local/share/ca-certificates): host trust anchors added
#        to the base, because this machine's HTTPS goes through an intercepting proxy.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=e2e/standins/platform.sh
. "$repo_root/e2e/standins/platform.sh"
host_sources=/etc/apt/sources.list.d/debian.sources
ca_dir=${VPE_STANDIN_CA_DIR:-/usr/local/share/ca-certificates}
# The standard Debian bundle path: PIP_CERT & co. point at it so pip/requests trust the proxy.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
image_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "debian-base: $*" >&2; exit 1; }

# Prints the first URI of the deb822 stanza whose Suites list contains exactly $1.
mirror_for_suite() {
  [ -r "$host_sources" ] || return 0
  awk -v suite="$1" '
    /^$/ { uri = ""; hit = 0; next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
    hit && uri != "" { print uri; exit }
  ' "$host_sources"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  echo "debian-base: installing debootstrap" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

host_cas() {
  [ -d "$ca_dir" ] || return 0
  find "$ca_dir" -maxdepth 1 -type f -name '*.crt' | sort
}

write_sources() {
  local root=$1 suite=$2 mirror=$3 security=$4
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# Same intent as the official slim variant: documentation, man pages and translations are not
# installed by later apt-get runs either, and apt keeps no package caches in image layers.
write_slim_config() {
  local root=$1
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf '%s\n' 'Acquire::GzipIndexes "true";' 'Acquire::CompressionTypes::Order:: "gz";' \
    >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' \
    >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # Package maintainer scripts must not try to start daemons inside an image build.
  printf '%s\n' '#!/bin/sh' 'exit 101' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
}

trim_rootfs() {
  local root=$1
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.bash_history
  find "$root/var/log" -type f -delete
  # Docker provides these at run time; the host's copies must not leak into the image.
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  : >"$root/etc/machine-id"
}

install_cas() {
  local root=$1; shift
  install -m 644 "$@" "$root/usr/local/share/ca-certificates/"
  local out
  # openssl rehash always warns about the bundle file itself; show the output only on failure.
  out=$(chroot "$root" /usr/sbin/update-ca-certificates 2>&1) || { echo "$out" >&2; return 1; }
}

main() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
  local tag suite mirror security docker
  tag=$(platform_value images debian)
  suite=${tag#*:}; suite=${suite%%-*}
  mirror=${DEBIAN_MIRROR:-$(mirror_for_suite "$suite")}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${DEBIAN_SECURITY_MIRROR:-$(mirror_for_suite "$suite-security")}
  security=${security:-http://deb.debian.org/debian-security}
  docker=$("$repo_root/scripts/ensure-docker.sh")
  ensure_debootstrap

  local cas=() include=()
  mapfile -t cas < <(host_cas)
  [ ${#cas[@]} -gt 0 ] && include=(--include=ca-certificates)

  local root
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/vpe-debian-base.XXXXXX")
  # shellcheck disable=SC2064  # expand now: root is local to main
  trap "rm -rf '$root'" EXIT
  echo "debian-base: debootstrap $suite from $mirror" >&2
  debootstrap --variant=minbase "${include[@]}" "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; rm -f "$root.log"; die "debootstrap failed"; }
  rm -f "$root.log"
  write_sources "$root" "$suite" "$mirror" "$security"
  write_slim_config "$root"

  local changes=(--change "ENV PATH=$image_path" --change 'CMD ["bash"]')
  if [ ${#cas[@]} -gt 0 ]; then
    install_cas "$root" "${cas[@]}"
    changes+=(--change "ENV PIP_CERT=$ca_bundle REQUESTS_CA_BUNDLE=$ca_bundle SSL_CERT_FILE=$ca_bundle")
  fi
  trim_rootfs "$root"

  tar --numeric-owner -C "$root" -c . \
    | "$docker" import "${changes[@]}" --change 'LABEL org.vpe.standin=true' \
        --message "vpe stand-in for $tag (debootstrap $suite)" - "$tag" >/dev/null
  echo "$tag"
}

main "$@"
