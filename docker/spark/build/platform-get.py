"""Print one value of platform.json: platform-get.py <platform.json> <a.b.c>.

Shared by the Spark and Airflow image builds (and baked into the Airflow image for its init
script) so Dockerfiles and shell scripts read the contract instead of repeating its values.
"""

import json
import sys
from pathlib import Path
from typing import Any


def lookup(path: str, dotted: str) -> Any:
    value = json.loads(Path(path).read_text(encoding="utf-8"))
    walked: list[str] = []
    for key in dotted.split("."):
        walked.append(key)
        if not isinstance(value, dict) or key not in value:
            sys.exit(f"platform-get: {path} has no key {'.'.join(walked)}")
        value = value[key]
    return value


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: platform-get.py <platform.json> <dotted.key>")
    print(lookup(sys.argv[1], sys.argv[2]))
