"""Registry validation: every mistake names the task and the field."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import EXECUTOR, TASKS, TEST_ENV, child_env, make_envs_dir, write_registry

from vpe_executor.registry import RegistryError, load_registry

GOOD = {"env": TEST_ENV, "script": str(TASKS / "echo.py"), "args": ["x"], "timeout_seconds": 5}


@pytest.fixture
def envs_dir(tmp_path: Path) -> Path:
    return make_envs_dir(tmp_path)


def test_good_registry_builds_argv(tmp_path: Path, envs_dir: Path) -> None:
    registry = load_registry(write_registry(tmp_path, {"echo": GOOD}), envs_dir)
    assert registry["echo"].argv(["y"]) == [
        str(envs_dir / TEST_ENV / "bin" / "python"),
        str(TASKS / "echo.py"),
        "x",
        "y",
    ]
    assert registry["echo"].timeout_seconds == 5.0


def test_shipped_registry_is_valid(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    for env in ("ingestion",):
        (envs / env / "bin").mkdir(parents=True)
        (envs / env / "bin" / "python").symlink_to(sys.executable)
    registry = load_registry(EXECUTOR / "tasks.toml", envs)
    assert {"extract_catalog", "import_events", "ping_env"} <= set(registry)
    assert all(spec.script.is_file() for spec in registry.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env": None}, "task 'bad': field 'env' is required"),
        ({"env": "../x"}, "task 'bad': field 'env' must be an environment name"),
        ({"env": "missing"}, "task 'bad': field 'env' names 'missing' but"),
        ({"script": None}, "task 'bad': field 'script' is required"),
        ({"script": "nope.py"}, "task 'bad': field 'script' points to missing file"),
        ({"args": "x"}, "task 'bad': field 'args' must be a list of strings"),
        ({"args": [1]}, "task 'bad': field 'args' must be a list of strings"),
        ({"timeout_seconds": None}, "task 'bad': field 'timeout_seconds' is required"),
        ({"timeout_seconds": 0}, "task 'bad': field 'timeout_seconds' must be a positive number"),
        ({"timeout_seconds": "9"}, "task 'bad': field 'timeout_seconds' must be a positive"),
        ({"timeout_seconds": True}, "task 'bad': field 'timeout_seconds' must be a positive"),
        ({"retries": 3}, "task 'bad': unknown field(s) ['retries']"),
    ],
)
def test_invalid_task_names_task_and_field(
    tmp_path: Path, envs_dir: Path, change: dict[str, Any], message: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = write_registry(tmp_path, {"good": GOOD, "bad": body})
    with pytest.raises(RegistryError) as caught:
        load_registry(path, envs_dir)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs at least one [tasks.<name>] table"),
        ("tasks = 3\n", "needs at least one [tasks.<name>] table"),
        ("[tasks.a\n", "invalid TOML"),
        ("[other]\n[tasks.a]\n", "unknown top-level keys ['other']"),
        ("[tasks]\na = 1\n", "task 'a': must be a table"),
    ],
)
def test_invalid_document(tmp_path: Path, envs_dir: Path, text: str, message: str) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    with pytest.raises(RegistryError) as caught:
        load_registry(path, envs_dir)
    assert message in str(caught.value)


def test_server_refuses_to_start_with_bad_registry(
    tmp_path: Path, envs_dir: Path, generated_dir: Path
) -> None:
    registry = write_registry(tmp_path, {"bad": {**GOOD, "timeout_seconds": -1}})
    proc = subprocess.run(
        [sys.executable, "-m", "vpe_executor", "--registry", str(registry),
         "--envs-dir", str(envs_dir), "--logs-dir", str(tmp_path), "--port", "0"],
        env=child_env(generated_dir), capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "configuration error: task 'bad': field 'timeout_seconds'" in proc.stderr
