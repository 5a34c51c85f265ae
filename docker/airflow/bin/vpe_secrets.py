"""Secrets the stack hands to this image's scripts without putting them in the environment.

The stack uploads each secret as a file (platform.json paths.secrets) and puts only a pointer to
it in the container's environment, where `docker inspect` and /proc/<pid>/environ would show a
value. Two conventions, one per kind of variable:

- our own variables (platform.json env.*): NAME_FILE=<path> names a file holding the value, one
  trailing newline stripped; a plain NAME is still accepted (the tests set it); both is an error.
- Airflow's settings: NAME_CMD=<command> prints the value, which Airflow honours for its
  `sensitive` options. It is run as Airflow runs it (airflow.configuration.run_command:
  shlex.split, no shell, standard output taken as is) and a plain NAME wins, as in Airflow, so a
  script reads exactly what Airflow reads without importing Airflow.

Messages name the variable, and the file or command; never the value.

As a command, for airflow-init.sh: vpe_secrets.py file|command NAME writes the value to stdout.
"""

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping

FILE_SUFFIX = "_FILE"
COMMAND_SUFFIX = "_CMD"
# Enough for `cat`'s reason; bounded so a chatty command cannot flood a healthcheck's log.
STDERR_SHOWN = 300


class SecretError(Exception):
    """A secret that is missing, or whose file or command failed; the message names the variable."""


def read_secret_file(variable: str, path: str) -> str:
    """The content of the file `variable` names, one trailing newline stripped."""
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read()
    except OSError as error:
        raise SecretError(f"{variable}={path}: cannot read the file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise SecretError(f"{variable}={path}: expected UTF-8 text") from None
    value = value.removesuffix("\n")
    if not value:
        raise SecretError(f"{variable}={path}: the file is empty")
    return value


def run_secret_command(variable: str, command: str) -> str:
    """The standard output of `command`, run like Airflow runs a `_cmd` option."""
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise SecretError(f"{variable}: cannot parse the command ({error})") from None
    if not argv:
        raise SecretError(f"{variable} is empty: expected a command printing the value")
    try:
        done = subprocess.run(argv, capture_output=True, close_fds=True, check=False)
    except OSError as error:
        raise SecretError(f"{variable}: cannot run {argv[0]} ({error.strerror})") from None
    # Named by its program only: unlike Airflow's message, not its arguments (a command may
    # hold a secret itself), and never its stdout, where a half-working one put the secret.
    program = argv[0]
    if done.returncode != 0:
        reason = done.stderr.decode(sys.getdefaultencoding(), "ignore").strip()[-STDERR_SHOWN:]
        detail = f": {reason}" if reason else ""
        raise SecretError(f"{variable}: {program} exited with code {done.returncode}{detail}")
    # Decoded as Airflow decodes it, and not stripped: Airflow keeps a trailing newline too.
    value = done.stdout.decode(sys.getdefaultencoding(), "ignore")
    if not value:
        raise SecretError(f"{variable}: {program} printed nothing")
    return value


def from_env_or_file(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """Our own variable: the file NAME_FILE names, else NAME."""
    file_variable = name + FILE_SUFFIX
    path, plain = environ.get(file_variable, ""), environ.get(name, "")
    if path and plain:
        raise SecretError(f"both {name} and {file_variable} are set: expected only one")
    if path:
        return read_secret_file(file_variable, path)
    if not plain:
        raise SecretError(f"{name} is not set: expected it or {file_variable} (a file holding it)")
    return plain


def from_env_or_command(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """An Airflow setting: NAME, else the output of the command NAME_CMD."""
    plain = environ.get(name, "")
    if plain:
        return plain
    command_variable = name + COMMAND_SUFFIX
    if command_variable not in environ:
        expected = f"expected it or {command_variable} (a command printing it)"
        raise SecretError(f"{name} is not set: {expected}")
    return run_secret_command(command_variable, environ[command_variable])


def main(argv: list[str]) -> int:
    readers = {"file": from_env_or_file, "command": from_env_or_command}
    if len(argv) != 3 or argv[1] not in readers or not argv[2]:
        print("usage: vpe_secrets.py file|command NAME", file=sys.stderr)
        return 2
    try:
        value = readers[argv[1]](argv[2])
    except SecretError as error:
        print(f"vpe_secrets: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
