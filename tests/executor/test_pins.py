"""Pins that must agree with docker/platform.json (the single source of truth), and locks that
must agree with the projects they lock."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import EXECUTOR, REPO

ENVS = sorted(p.parent for p in (EXECUTOR / "envs").glob("*/pyproject.toml"))
# The isolation test's environments (tests/e2e/executorImage.e2e.test.ts) are locked the same way.
FIXTURE_ENVS = sorted((REPO / "tests" / "e2e" / "fixtures" / "isolation" / "envs").glob("*/"))
UV = Path(sys.executable).with_name("uv")


def lock_check(env: Path) -> subprocess.CompletedProcess[str]:
    command = [str(UV), "lock", "--check", "--project", str(env)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def project(env: Path) -> dict[str, Any]:
    return tomllib.loads((env / "pyproject.toml").read_text())["project"]


def test_every_environment_is_a_locked_uv_project() -> None:
    folders = sorted(p for p in (EXECUTOR / "envs").iterdir() if p.is_dir())
    assert [p.name for p in folders] == [p.name for p in ENVS], "an env without pyproject.toml"
    assert "server" in [p.name for p in ENVS]
    for env in ENVS:
        assert (env / "uv.lock").is_file(), f"{env.name}: no uv.lock"
        assert not (env / "environment.yml").exists(), f"{env.name}: a shipped env selects conda"


def test_test_requirements_pins_match_platform(platform: dict[str, Any]) -> None:
    text = (REPO / "tests" / "requirements" / "executor.txt").read_text()
    pins = dict(re.findall(r"^([\w-]+)==(\S+)$", text, flags=re.MULTILINE))
    expected = platform["versions"]["grpcio"]
    assert {k: v for k, v in pins.items() if k.startswith("grpcio")} == dict.fromkeys(
        ["grpcio", "grpcio-tools", "grpcio-health-checking"], expected
    )
    assert pins["uv"] == platform["versions"]["uv"]


def test_server_environment_grpc_pins_match_platform(platform: dict[str, Any]) -> None:
    pins = dict(d.split("==") for d in project(EXECUTOR / "envs" / "server")["dependencies"])
    expected = platform["versions"]["grpcio"]
    assert {k: v for k, v in pins.items() if k.startswith("grpcio")} == dict.fromkeys(
        ["grpcio", "grpcio-tools", "grpcio-health-checking"], expected
    )


def test_every_requirement_is_pinned_exactly() -> None:
    for line in (REPO / "tests" / "requirements" / "executor.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[\w.\-\[\]]+==\S+", line), f"executor.txt: {line!r} is not pinned"
    for env in ENVS:
        for dependency in project(env)["dependencies"]:
            pinned = re.fullmatch(r"[\w.\-\[\]]+==\S+", dependency)
            assert pinned, f"{env.name}: {dependency!r} is not pinned"


@pytest.mark.parametrize("env", ENVS + FIXTURE_ENVS, ids=lambda p: p.name)
def test_environment_python_is_platform_minor(env: Path, platform: dict[str, Any]) -> None:
    wanted = f"=={platform['pythonMinor']}.*"
    assert project(env)["requires-python"] == wanted
    assert tomllib.loads((env / "uv.lock").read_text())["requires-python"] == wanted


@pytest.mark.parametrize("env", ENVS + FIXTURE_ENVS, ids=lambda p: p.name)
def test_lock_matches_its_project(env: Path) -> None:
    result = lock_check(env)
    assert result.returncode == 0, f"{env.name}: stale uv.lock, run uv lock\n{result.stderr}"


def test_lock_check_fails_when_the_project_changed_without_its_lock(tmp_path: Path) -> None:
    env = tmp_path / "ingestion"
    env.mkdir()
    (env / "uv.lock").write_bytes((EXECUTOR / "envs" / "ingestion" / "uv.lock").read_bytes())
    text = (EXECUTOR / "envs" / "ingestion" / "pyproject.toml").read_text()
    edited = text.replace("typing_extensions==4.16.0", "typing_extensions==4.15.0")
    assert edited != text
    (env / "pyproject.toml").write_text(edited)
    assert lock_check(env).returncode != 0
