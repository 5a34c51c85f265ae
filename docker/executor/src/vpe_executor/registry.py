"""The task registry: the only commands the executor will run.

Format (TOML), one table per command:

    [tasks.extract_catalog]
    env = "ingestion"                      # <envs dir>/<env>/bin/python runs the script
    script = "pipelines/ingestion/extract_catalog.py"   # relative to the registry file
    args = []                              # fixed args, before the caller's args
    timeout_seconds = 600
"""

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_KNOWN_FIELDS = frozenset({"env", "script", "args", "timeout_seconds"})


class RegistryError(ValueError):
    """The registry file is unusable; the message names the task and field."""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    interpreter: Path
    script: Path
    args: tuple[str, ...]
    timeout_seconds: float

    def argv(self, extra: tuple[str, ...] | list[str]) -> list[str]:
        return [str(self.interpreter), str(self.script), *self.args, *extra]


def interpreter_path(envs_dir: Path, env: str) -> Path:
    return envs_dir / env / "bin" / "python"


def load_registry(path: Path, envs_dir: Path) -> dict[str, TaskSpec]:
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except OSError as exc:
        raise RegistryError(f"registry {path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"registry {path}: invalid TOML: {exc}") from exc
    tasks = document.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise RegistryError(f"registry {path}: needs at least one [tasks.<name>] table")
    unknown_top = set(document) - {"tasks"}
    if unknown_top:
        raise RegistryError(f"registry {path}: unknown top-level keys {sorted(unknown_top)}")
    return {
        name: _task(name, body, path.parent.resolve(), envs_dir) for name, body in tasks.items()
    }


def _task(name: str, body: Any, base: Path, envs_dir: Path) -> TaskSpec:
    if not isinstance(body, Mapping):
        raise RegistryError(f"task {name!r}: must be a table")
    unknown = set(body) - _KNOWN_FIELDS
    if unknown:
        raise RegistryError(f"task {name!r}: unknown field(s) {sorted(unknown)}")
    return TaskSpec(
        name=name,
        interpreter=_interpreter(name, body, envs_dir),
        script=_script(name, body, base),
        args=_args(name, body),
        timeout_seconds=_timeout(name, body),
    )


def _required(name: str, body: Mapping[str, Any], field: str) -> Any:
    if field not in body:
        raise RegistryError(f"task {name!r}: field {field!r} is required")
    return body[field]


def _interpreter(name: str, body: Mapping[str, Any], envs_dir: Path) -> Path:
    env = _required(name, body, "env")
    if not isinstance(env, str) or not _ENV_NAME.fullmatch(env):
        raise RegistryError(f"task {name!r}: field 'env' must be an environment name, got {env!r}")
    interpreter = interpreter_path(envs_dir, env)
    if not os.access(interpreter, os.X_OK):
        raise RegistryError(
            f"task {name!r}: field 'env' names {env!r} but {interpreter} is not an executable"
        )
    return interpreter


def _script(name: str, body: Mapping[str, Any], base: Path) -> Path:
    script = _required(name, body, "script")
    if not isinstance(script, str) or not script:
        raise RegistryError(f"task {name!r}: field 'script' must be a non-empty string")
    resolved = (base / script).resolve()
    if not resolved.is_file():
        raise RegistryError(f"task {name!r}: field 'script' points to missing file {resolved}")
    return resolved


def _args(name: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    args = body.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise RegistryError(f"task {name!r}: field 'args' must be a list of strings")
    return tuple(args)


def _timeout(name: str, body: Mapping[str, Any]) -> float:
    timeout = _required(name, body, "timeout_seconds")
    valid = (
        isinstance(timeout, int | float)
        and not isinstance(timeout, bool)
        and math.isfinite(timeout)
        and timeout > 0
    )
    if not valid:
        raise RegistryError(
            f"task {name!r}: field 'timeout_seconds' must be a positive number, got {timeout!r}"
        )
    return float(timeout)
