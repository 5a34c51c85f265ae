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
# env.adminUsername / env.adminPassword name. The password reaches admin-user.py on stdin only
# (never argv, never the log).
set -euo pipefail

die() { echo "airflow-init: $*" >&2; exit 1; }

platform=${VPE_PLATFORM_FILE:-}
[ -n "$platform" ] || die "VPE_PLATFORM_FILE is not set: it must name platform.json"
json() { python "$(dirname "${BASH_SOURCE[0]}")/platform-get.py" "$platform" "$1"; }

user_var=$(json env.adminUsername)
password_var=$(json env.adminPassword)
username=${!user_var:-}
password=${!password_var:-}
[ -n "$username" ] || die "$user_var (platform.json env.adminUsername) is empty"
[ -n "$password" ] || die "$password_var (platform.json env.adminPassword) is empty"
[[ $password != *$'\n'* ]] || die "$password_var must be a single line"
# Keep the secret out of the environment of every command below.
unset "$password_var"

echo "airflow-init: migrating the metadata database"
airflow db migrate

keys_dir=$(json paths.airflowKeys)
keyring="$keys_dir/fernet-keys"
restored=$(json paths.airflowKeysRestored)
current=${AIRFLOW__CORE__FERNET_KEY:-}
[ -n "$current" ] || die "AIRFLOW__CORE__FERNET_KEY is empty"
[ -d "$keys_dir" ] && [ -w "$keys_dir" ] || die "$keys_dir (platform.json paths.airflowKeys) is not a writable folder"
last=""
previous=""
if [ -s "$keyring" ]; then
  last=$(head -n1 "$keyring")
  previous=$(grep -vxF -- "$current" "$keyring" | paste -sd, -) || true
fi
if [ -n "$previous" ] && { [ "$last" != "$current" ] || [ -e "$restored" ]; }; then
  echo "airflow-init: data may be under an earlier Fernet key; re-encrypting connections, variables and triggers with the current one"
  AIRFLOW__CORE__FERNET_KEY="$current,$previous" airflow rotate-fernet-key
fi
(umask 077 && { printf '%s\n' "$current"; [ -z "$previous" ] || tr , '\n' <<<"$previous"; } > "$keyring.new")
mv "$keyring.new" "$keyring"
rm -f "$restored"

printf '%s\n' "$password" | python "$(dirname "${BASH_SOURCE[0]}")/admin-user.py" "$username"
echo "airflow-init: done"
