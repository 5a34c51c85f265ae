#!/usr/bin/env bash
# From a fresh clone to a running stack: `scripts/up.sh [dev|prod|server]`.
# Needs the Pulumi CLI, and Docker here unless the stack file's docker:host is an ssh:// server. State stays in ./.pulumi (no Pulumi account); the secrets
# passphrase is generated once into ./.pulumi/passphrase (keep it: it decrypts the state's secrets).
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-dev}
[ -f "Pulumi.$stack.yaml" ] || { echo "up: no Pulumi.$stack.yaml (stacks: dev, prod, server)" >&2; exit 2; }
command -v pulumi >/dev/null || { echo "up: the Pulumi CLI is required (https://www.pulumi.com/docs/install/)" >&2; exit 1; }
if ! grep -q '^  docker:host: ssh://' "Pulumi.$stack.yaml"; then
  docker info >/dev/null 2>&1 || { echo "up: no Docker engine answers; start Docker first" >&2; exit 1; }
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p .pulumi
# Same folder as Pulumi.yaml's backend.url, made absolute for the CLI.
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$PWD/.pulumi}
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  if [ ! -s .pulumi/passphrase ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >.pulumi/passphrase)
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE=$PWD/.pulumi/passphrase
fi
pulumi stack select --create "$stack" >/dev/null
pulumi up --yes --stack "$stack"
pulumi stack output --stack "$stack"
