"""The task registry: the only commands the executor will run, and the only arguments a
request may give them.

Format (TOML), one table per command:

    [tasks.extract_catalog]
    env = "ingestion"                      # <envs dir>/<env>/bin/python runs the script
    script = "pipelines/ingestion/extract_catalog.py"   # relative to the registry file
    args = []                              # optional fixed args, before the request's
    timeout_seconds = 600

    [tasks.extract_catalog.arguments]      # optional; without it a request may give none
    "--date" = { type = "date", required = true }
    "--format" = { choices = ["csv", "xlsx"], required = true }

Each declared argument is an option taking exactly one value, `--name value` (`--name=value`
is accepted too and passed on as `--name value`). Its name looks like --[a-z][a-z0-9-]* and
must be the script's own option name: argparse expands an abbreviation to a longer option,
which would then escape this declaration. Its table holds exactly one kind:

    type = "date"               an ISO calendar date, YYYY-MM-DD
    type = "integer"            decimal digits; optional min = N and/or max = N (N >= 0)
    choices = ["csv", "xlsx"]   one of these strings
    pattern = "[a-z]{1,8}"      a value the regex matches whole (re.fullmatch)

plus `required = true` when a request must give it (default false). TaskSpec.validated_args
checks a request's arguments before anything runs and refuses an undeclared argument, a stray
value, a missing, repeated or ill-formed value, and any value that starts with "-" (the
script's argparse would read it as an option; so integers are never negative) or holds NUL,
CR or LF. Paths a task reads or writes come from platform.json, never from a request: declare
no path argument.
"""

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_KNOWN_FIELDS = frozenset({"env", "script", "args", "timeout_seconds", "arguments"})
_ARGUMENT_NAME = re.compile(r"--[a-z][a-z0-9-]*")
_ARGUMENT_FIELDS = frozenset({"type", "choices", "pattern", "min", "max", "required"})
_KIND_FIELDS = ("type", "choices", "pattern")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Bounded: int() refuses strings of thousands of digits with a ValueError of its own.
_DIGITS = re.compile(r"[0-9]{1,18}")
_UNSAFE_CHARS = ("\0", "\n", "\r")
_SHOWN_MAX = 80

Kind = Literal["date", "integer", "choices", "pattern"]


class RegistryError(ValueError):
    """The registry file is unusable; the message names the task and field."""


class TaskArgumentError(ValueError):
    """A request's arguments do not fit the task's declaration; the message names the
    task, the argument and what was expected."""


def _show(value: str) -> str:
    """A request's value for an error message: quoted, escaped and bounded, since the message
    goes back to the caller and into the log."""
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_MAX else f"{shown[: _SHOWN_MAX - 4]}...{shown[0]}"


@dataclass(frozen=True)
class ArgumentSpec:
    name: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    minimum: int | None = None
    maximum: int | None = None

    @property
    def expected(self) -> str:
        if self.kind == "date":
            return "a date YYYY-MM-DD"
        if self.kind == "integer":
            return _integer_range(self.minimum, self.maximum)
        if self.kind == "choices":
            return "one of " + ", ".join(map(repr, self.choices))
        assert self.pattern is not None
        return f"a value matching {self.pattern.pattern!r}"

    def problem(self, value: str) -> str | None:
        """Why `value` is refused, or None when it is accepted."""
        if any(char in value for char in _UNSAFE_CHARS):
            return f"value {_show(value)} contains NUL, CR or LF; expected {self.expected}"
        if value.startswith("-"):
            return f"value {_show(value)} starts with '-'; expected {self.expected}"
        if not self._fits(value):
            return f"expected {self.expected}, got {_show(value)}"
        return None

    def _fits(self, value: str) -> bool:
        if self.kind == "date":
            return _ISO_DATE.fullmatch(value) is not None and _is_calendar_date(value)
        if self.kind == "integer":
            return _DIGITS.fullmatch(value) is not None and self._in_range(int(value))
        if self.kind == "choices":
            return value in self.choices
        assert self.pattern is not None
        return self.pattern.fullmatch(value) is not None

    def _in_range(self, number: int) -> bool:
        return (self.minimum is None or number >= self.minimum) and (
            self.maximum is None or number <= self.maximum
        )


def _integer_range(minimum: int | None, maximum: int | None) -> str:
    if maximum is not None:
        return f"an integer in {minimum or 0}..{maximum}"
    return "an integer" if minimum is None else f"an integer >= {minimum}"


def _is_calendar_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class TaskSpec:
    name: str
    interpreter: Path
    script: Path
    args: tuple[str, ...]
    timeout_seconds: float
    arguments: Mapping[str, ArgumentSpec] = field(default_factory=dict)

    def argv(self, extra: tuple[str, ...] | list[str]) -> list[str]:
        """The command line; `extra` must come from validated_args."""
        return [str(self.interpreter), str(self.script), *self.args, *extra]

    def validated_args(self, args: Sequence[str]) -> list[str]:
        """A request's arguments as `--name value` pairs in the request's order, or
        TaskArgumentError naming the first argument that does not fit the declaration."""
        given: dict[str, str] = {}
        index = 0
        while index < len(args):
            name, value, index = self._next_pair(args, index)
            if name in given:
                raise self._error(f"argument {name!r} is given more than once")
            given[name] = value
        for spec in self.arguments.values():
            if spec.required and spec.name not in given:
                raise self._error(f"argument {spec.name!r} is required; expected {spec.expected}")
        return [token for pair in given.items() for token in pair]

    def _next_pair(self, args: Sequence[str], index: int) -> tuple[str, str, int]:
        """The argument at `index`, its value and the index after them."""
        token = args[index]
        name, inline, inline_value = token.partition("=")
        spec = self.arguments.get(name)
        if spec is None:
            raise self._error(self._not_accepted(token, name))
        if inline:
            value, index = inline_value, index + 1
        elif index + 1 < len(args):
            value, index = args[index + 1], index + 2
        else:
            raise self._error(f"argument {name!r} needs a value; expected {spec.expected}")
        problem = spec.problem(value)
        if problem is not None:
            raise self._error(f"argument {name!r}: {problem}")
        return name, value, index

    def _not_accepted(self, token: str, name: str) -> str:
        accepted = ", ".join(map(repr, self.arguments)) or "none"
        if token.startswith("-"):
            return f"argument {_show(name)} is not accepted (accepted arguments: {accepted})"
        return (
            f"unexpected value {_show(token)}: arguments are --name value pairs "
            f"(accepted arguments: {accepted})"
        )

    def _error(self, message: str) -> TaskArgumentError:
        return TaskArgumentError(f"task {self.name!r}: {message}")


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
    args = _args(name, body)
    return TaskSpec(
        name=name,
        interpreter=_interpreter(name, body, envs_dir),
        script=_script(name, body, base),
        args=args,
        timeout_seconds=_timeout(name, body),
        arguments=_arguments(name, body, args),
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


def _arguments(
    name: str, body: Mapping[str, Any], fixed: tuple[str, ...]
) -> dict[str, ArgumentSpec]:
    table = body.get("arguments", {})
    if not isinstance(table, Mapping):
        raise RegistryError(
            f"task {name!r}: field 'arguments' must be a table of \"--name\" = {{ ... }}"
        )
    arguments = {arg: _argument(name, arg, spec) for arg, spec in table.items()}
    # A fixed option repeated by a request would leave the script to pick one of the two.
    clashing = sorted(a for a in arguments if any(f.partition("=")[0] == a for f in fixed))
    if clashing:
        raise RegistryError(f"task {name!r}: argument(s) {clashing} are among its fixed 'args'")
    return arguments


def _argument(task: str, name: str, body: Any) -> ArgumentSpec:
    where = f"task {task!r}: argument {name!r}"
    if not _ARGUMENT_NAME.fullmatch(name):
        raise RegistryError(f"{where}: a name must look like --[a-z][a-z0-9-]*")
    if not isinstance(body, Mapping):
        raise RegistryError(f'{where}: must be a table such as {{ type = "date" }}')
    unknown = set(body) - _ARGUMENT_FIELDS
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {sorted(unknown)}")
    kinds = [k for k in _KIND_FIELDS if k in body]
    if len(kinds) != 1:
        raise RegistryError(
            f"{where}: needs exactly one of the fields 'type', 'choices', 'pattern', got {kinds}"
        )
    required = body.get("required", False)
    if not isinstance(required, bool):
        raise RegistryError(f"{where}: field 'required' must be true or false, got {required!r}")
    if kinds == ["type"]:
        spec = _typed(where, name, body, required)
    elif kinds == ["choices"]:
        spec = ArgumentSpec(name, "choices", required, choices=_choices(where, body["choices"]))
    else:
        spec = ArgumentSpec(name, "pattern", required, pattern=_pattern(where, body["pattern"]))
    if spec.kind != "integer" and ("min" in body or "max" in body):
        raise RegistryError(f"{where}: fields 'min' and 'max' need type = \"integer\"")
    return spec


def _typed(where: str, name: str, body: Mapping[str, Any], required: bool) -> ArgumentSpec:
    kind = body["type"]
    if kind == "date":
        return ArgumentSpec(name, "date", required)
    if kind != "integer":
        raise RegistryError(f"{where}: field 'type' must be date or integer, got {kind!r}")
    minimum, maximum = _bound(where, body, "min"), _bound(where, body, "max")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise RegistryError(f"{where}: field 'min' ({minimum}) exceeds field 'max' ({maximum})")
    return ArgumentSpec(name, "integer", required, minimum=minimum, maximum=maximum)


def _bound(where: str, body: Mapping[str, Any], key: str) -> int | None:
    bound = body.get(key)
    if bound is None:
        return None
    # A value never starts with "-", so a negative bound could never be reached.
    if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
        raise RegistryError(f"{where}: field {key!r} must be an integer >= 0, got {bound!r}")
    return bound


def _choices(where: str, choices: Any) -> tuple[str, ...]:
    valid = (
        isinstance(choices, list)
        and len(choices) > 0
        and all(isinstance(c, str) and c for c in choices)
        and len(set(choices)) == len(choices)
    )
    if not valid:
        raise RegistryError(
            f"{where}: field 'choices' must be a non-empty list of distinct non-empty strings"
        )
    for choice in choices:
        if choice.startswith("-") or any(char in choice for char in _UNSAFE_CHARS):
            raise RegistryError(
                f"{where}: choice {choice!r} could never be given "
                "(a value cannot start with '-' or hold NUL, CR or LF)"
            )
    return tuple(choices)


def _pattern(where: str, pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise RegistryError(f"{where}: field 'pattern' must be a non-empty regular expression")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RegistryError(
            f"{where}: field 'pattern' {pattern!r} is not a valid regex: {exc}"
        ) from None
