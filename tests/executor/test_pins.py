"""Version pins that must agree with docker/platform.json (the single source of truth)."""

import re
from pathlib import Path
from typing import Any

from conftest import EXECUTOR, REPO


def test_test_requirements_grpc_pins_match_platform(platform: dict[str, Any]) -> None:
    text = (REPO / "tests" / "requirements" / "executor.txt").read_text()
    pins = dict(re.findall(r"^(grpcio[\w-]*)==(\S+)$", text, flags=re.MULTILINE))
    expected = platform["versions"]["grpcio"]
    assert pins == dict.fromkeys(["grpcio", "grpcio-tools", "grpcio-health-checking"], expected)


def test_every_requirement_is_pinned_exactly() -> None:
    files = [REPO / "tests" / "requirements" / "executor.txt"]
    files += sorted((EXECUTOR / "envs").glob("*/requirements.txt"))
    for path in files:
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert re.fullmatch(r"[\w.\-\[\]]+==\S+", line), f"{path}: {line!r} is not pinned"


def test_conda_specs_use_platform_python_and_requirements(platform: dict[str, Any]) -> None:
    for spec in sorted((EXECUTOR / "envs").glob("*/environment.yml")):
        text = spec.read_text()
        assert f"  - python={platform['pythonMinor']}\n" in text, spec
        assert "      - -r requirements.txt\n" in text, spec
        assert "  - conda-forge\n" in text, spec
        assert Path(spec.parent / "requirements.txt").is_file()
