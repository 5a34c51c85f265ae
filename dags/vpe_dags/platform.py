"""The platform contract (docker/platform.json) as seen from DAG files.

The file's location is the one bootstrap value that cannot live inside the file itself: the
Airflow image sets VPE_PLATFORM_FILE from its PLATFORM_FILE build arg; tests point it at the
repository's docker/platform.json.
"""

import functools
import json
import os
from pathlib import Path
from typing import Any

PLATFORM_FILE_ENV = "VPE_PLATFORM_FILE"


class PlatformError(RuntimeError):
    """platform.json is missing, unreadable or lacks a value a DAG needs."""


@functools.cache
def platform() -> dict[str, Any]:
    raw = os.environ.get(PLATFORM_FILE_ENV)
    if not raw:
        raise PlatformError(f"{PLATFORM_FILE_ENV} is not set: it must name platform.json")
    path = Path(raw)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PlatformError(
            f"{PLATFORM_FILE_ENV}={path}: cannot load platform.json: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise PlatformError(f"{PLATFORM_FILE_ENV}={path}: platform.json must hold a JSON object")
    return data


def value(dotted: str) -> Any:
    """platform()["a"]["b"] for "a.b", naming the missing key on failure."""
    found: Any = platform()
    walked: list[str] = []
    for key in dotted.split("."):
        walked.append(key)
        if not isinstance(found, dict) or key not in found:
            raise PlatformError(f"platform.json has no key {'.'.join(walked)}")
        found = found[key]
    return found


def connection_id(kind: str) -> str:
    """Airflow connection id of `kind` (grpc, spark, fs); the stack provisions exactly these."""
    return str(value(f"connections.{kind}"))


def buffer_file(kind: str, date_template: str, **parts: str) -> str:
    """Buffer-relative path of a per-date file (bufferFiles.<kind>) for a templated date.

    `parts` fill the layout's other placeholders (format="xlsx"); the date stays a template.
    """
    path = str(value(f"bufferFiles.{kind}")).replace("{date}", date_template)
    for name, part in parts.items():
        path = path.replace(f"{{{name}}}", part)
    if "{" in path.replace(date_template, ""):
        raise PlatformError(f"bufferFiles.{kind} = {path!r}: a placeholder is not filled")
    return path
