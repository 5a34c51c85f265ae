#!/usr/bin/env bash
# One-shot initialisation the stack runs before any Airflow service starts:
#  1. `airflow db migrate`, failing with its exit code (the official entrypoint's
#     _AIRFLOW_DB_MIGRATE swallows migration errors);
#  2. Fernet keys: Airflow encrypts connection secrets, variables and trigger arguments with the
#     stack's key, and a stack that comes back onto kept data (destroy keeps it) has a new one.
#     Every key the stack has used is recorded, current first, on the keys volume (platform.json
#     paths.airflowKeys). When the current key is new, or when `npm run restore` left its marker
#     (paths.airflowKeysRestored: restored data may be under any earlier key), everything is
#     re-encrypted with the current key. Data encrypted with a key that was never recorded fails
#     the step, loudly;
#  3. the admin user of the FAB auth manager: created, or its password reset when it exists,
#     so a re-run converges and exits 0 (admin-user.py: one process, not three CLI runs).
# The user name and password come from the environment variables that platform.json
# env.adminUsername / env.adminPassword name; the password from the file <env.adminPassword>_FILE
# names when set (the stack keeps secrets out of the environment). The password reaches
# admin-user.py on stdin only (never argv, never the log). The Fernet key is Airflow's
# AIRFLOW__CORE__FERNET_KEY, or the output of the command AIRFLOW__CORE__FERNET_KEY_CMD.
# vpe_secrets.py reads both as Airflow and the other scripts of this image do.
set -euo pipefail

die() { echo "airflow-init: $*" >&2; exit 1; }

platform=${VPE_PLATFORM_FILE:-}
[ -n "$platform" ] || die "VPE_PLATFORM_FILE is not set: it must name platform.json"
bin=$(dirname "${BASH_SOURCE[0]}")
json() { python "$bin/platform-get.py" "$platform" "$1"; }
# secret file|command NAME: the value on stdout, or a message naming the variable on stderr.
secret() { python "$bin/vpe_secrets.py" "$1" "$2"; }

user_var=$(json env.adminUsername)
password_var=$(json env.adminPassword)
username=${!user_var:-}
[ -n "$username" ] || die "$user_var (platform.json env.adminUsername) is empty"
password=$(secret file "$password_var") || die "no admin password (platform.json env.adminPassword)"
[[ $password != *$'\n'* ]] || die "$password_var must be a single line"
# Keep the secret, and where it lives, out of the environment of every command below.
unset "$password_var" "${password_var}_FILE"

echo "airflow-init: migrating the metadata database"
airflow db migrate

keys_dir=$(json paths.airflowKeys)
keyring="$keys_dir/fernet-keys"
restored=$(json paths.airflowKeysRestored)
# $(...) drops the trailing newlines a key file may end with (Fernet keys never hold one).
current=$(secret command AIRFLOW__CORE__FERNET_KEY) || die "no current Fernet key"
[ -n "$current" ] || die "AIRFLOW__CORE__FERNET_KEY: the command printed only blank lines"
[ -d "$keys_dir" ] && [ -w "$keys_dir" ] || die "$keys_dir (platform.json paths.airflowKeys) is not a writable folder"
last=""
previous=""
if [ -s "$keyring" ]; then
  last=$(head -n1 "$keyring")
  previous=$(grep -vxF -- "$current" "$keyring" | paste -sd, -) || true
fi
if [ -n "$previous" ] && { [ "$last" != "$current" ] || [ -e "$restored" ]; }; then
  echo "airflow-init: data may be under an earlier Fernet key; re-encrypting connections, variables and triggers with the current one"
  # A plain AIRFLOW__CORE__FERNET_KEY takes precedence over its _CMD in Airflow, so this one
  # command sees every key while the stack's setting stays a command.
  AIRFLOW__CORE__FERNET_KEY="$current,$previous" airflow rotate-fernet-key
fi
(umask 077 && { printf '%s\n' "$current"; [ -z "$previous" ] || tr , '\n' <<<"$previous"; } > "$keyring.new")
mv "$keyring.new" "$keyring"
rm -f "$restored"

printf '%s\n' "$password" | python "$bin/admin-user.py" "$username"
echo "airflow-init: done"
