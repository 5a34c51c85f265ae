"""Access to the shared platform contract (docker/platform.json).

The file's location is the one bootstrap value that cannot live inside the file itself, so it
comes from the environment variable below (the image sets it from a build arg).
"""

import json
import os
from pathlib import Path
from typing import Any

PLATFORM_FILE_ENV = "VPE_PLATFORM_FILE"


class PlatformError(RuntimeError):
    """The platform contract is missing or lacks a value we need."""


def platform_file(explicit: str | None = None) -> Path:
    raw = explicit or os.environ.get(PLATFORM_FILE_ENV)
    if not raw:
        raise PlatformError(f"platform file unknown: set {PLATFORM_FILE_ENV} or pass it explicitly")
    return Path(raw)


def load_platform(explicit: str | None = None) -> dict[str, Any]:
    path = platform_file(explicit)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlatformError(f"cannot read platform file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise PlatformError(f"platform file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PlatformError(f"platform file {path} must hold a JSON object")
    return data


def lookup(platform: dict[str, Any], dotted: str) -> Any:
    """Return platform["a"]["b"] for "a.b", naming the missing key on failure."""
    node: Any = platform
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PlatformError(f"platform file lacks key {dotted!r}")
        node = node[part]
    return node
