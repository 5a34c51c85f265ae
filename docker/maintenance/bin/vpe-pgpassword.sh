# shellcheck shell=bash
# Sourced by vpe-maintenance, vpe-backup and vpe-restore (each may run on its own, through
# `docker exec`): the PostgreSQL password from the file PGPASSWORD_FILE names.
# The stack keeps the password out of the container's environment, where `docker inspect` shows
# it, and sets PGPASSWORD_FILE to a file it uploaded, holding the password alone. libpq's own
# PGPASSFILE cannot take it: libpq ignores a password file with any group or world permission bit
# (an upload may be root-owned 0440, readable through the group), and expects host:port:db:user:
# password lines. So the script reads it into a PGPASSWORD of its own process and children, never
# printed. A plain PGPASSWORD (the tests) still works.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  echo "vpe-pgpassword.sh: source it from a script, do not run it" >&2
  exit 2
fi

# pgpassword_from_file: exports PGPASSWORD read from $PGPASSWORD_FILE (one trailing newline
# stripped) and unsets PGPASSWORD_FILE, so a child script (vpe-backup under vpe-maintenance)
# sees only the password; without PGPASSWORD_FILE, changes nothing. Exits 1 when the file cannot
# be read or is empty, or when both are set, naming the variables and the path.
pgpassword_from_file() {
  local script=${0##*/} file=${PGPASSWORD_FILE:-} content
  [ -n "$file" ] || return 0
  if [ -n "${PGPASSWORD:-}" ]; then
    echo "$script: both PGPASSWORD and PGPASSWORD_FILE are set: expected only one" >&2
    exit 1
  fi
  local reason="cannot read the file"
  [ -e "$file" ] || reason="no such file"
  [ ! -d "$file" ] || reason="a folder, not a file"
  # The trailing x keeps the file's own trailing newlines from $(...), so only one is stripped.
  if ! content=$(cat -- "$file" 2>/dev/null && printf x); then
    echo "$script: PGPASSWORD_FILE=$file: $reason" >&2
    exit 1
  fi
  content=${content%x}
  content=${content%$'\n'}
  if [ -z "$content" ]; then
    echo "$script: PGPASSWORD_FILE=$file: the file is empty" >&2
    exit 1
  fi
  export PGPASSWORD=$content
  unset PGPASSWORD_FILE
}
