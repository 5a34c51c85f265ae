#!/bin/sh
# Installs Debian's PACKAGE at exactly the upstream release VERSION, plus EXTRA packages, for the
# stand-ins built from one Debian package (copied into their build context by provide-images.sh).
# Debian versions add a suffix to the upstream one ("0.25.0-1+b4", "2.42.0+ds-5+deb12u1"): the
# first whose version starts with VERSION then SEPARATOR is taken, so the build fails loudly,
# naming what the mirror has, once it no longer offers the pinned release.
# Usage: apt-install-release.sh PACKAGE VERSION SEPARATOR [EXTRA...]
set -eu
package=$1 version=$2 separator=$3
shift 3
apt-get update
deb_version=$(apt-cache madison "$package" | awk -v want="$version$separator" 'index($3, want) == 1 { print $3; exit }')
if [ -z "$deb_version" ]; then
  echo "ERROR: Debian's mirror no longer offers $package $version;" \
       "available: $(apt-cache madison "$package" | awk '{print $3}' | xargs)" >&2
  exit 1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package=$deb_version" "$@"
rm -rf /var/lib/apt/lists/*
