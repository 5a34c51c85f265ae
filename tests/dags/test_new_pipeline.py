"""`npm run new:pipeline` scaffolds a pipeline that works.

In a temporary copy of the project: the scaffold's environment is built from its lock
(`uv sync --frozen`, as the image does), and its DAG, run by real Airflow (dag.test), calls its
task through a real executor server over real gRPC. Bad names are refused and change nothing.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import DAGS, PLATFORM_FILE, REPO, STUBS, ExecutorTls, provision_connections

NAME = "demo_pipe"
TSX = REPO / "node_modules" / ".bin" / "tsx"
UV = Path(sys.executable).with_name("uv")
LOGICAL_DATE = datetime(2024, 5, 1, tzinfo=UTC)


def scaffold(root: Path, name: str, uv_dir: Path = UV.parent) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{uv_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [str(TSX), str(REPO / "commands" / "newPipeline.ts"), name, "--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def snapshot(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "docker", root / "docker", ignore=skip)
    shutil.copytree(DAGS, root / "dags", ignore=skip)
    result = scaffold(root, NAME)
    assert result.returncode == 0, result.stderr
    return root


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (NAME, "already exists"),
        ("server", "reserved"),
        ("9lives", "expected a lowercase Python identifier"),
        ("Geo", "expected a lowercase Python identifier"),
        ("class", "a Python keyword"),
    ],
)
def test_a_bad_name_is_refused_and_changes_nothing(project: Path, name: str, problem: str) -> None:
    before = snapshot(project)
    result = scaffold(project, name)
    assert result.returncode == 1
    assert problem in result.stderr
    assert f'"{name}"' in result.stderr
    assert snapshot(project) == before


def test_the_scaffolded_task_accepts_only_a_date(project: Path) -> None:
    registry = tomllib.loads((project / "docker" / "executor" / "tasks.toml").read_text())
    task = registry["tasks"][f"{NAME}_hello"]
    assert task["arguments"] == {"--date": {"type": "date", "required": True}}
    dag = (project / "dags" / f"{NAME}.py").read_text()
    assert 'command_args=["--date", "{{ ds }}"]' in dag


def fake_uv(folder: Path, version: str, lock_fails: bool) -> Path:
    """A `uv` that reports VERSION and whose `lock` fails, or does nothing, as asked."""
    folder.mkdir()
    lock = 'echo "lock refused" >&2; exit 1' if lock_fails else "exit 0"
    uv = folder / "uv"
    version_reply = f'[ "$1" = --version ] && {{ echo "uv {version}"; exit 0; }}'
    uv.write_text(f"#!/bin/sh\n{version_reply}\n{lock}\n")
    uv.chmod(0o755)
    return folder


def test_without_uv_at_the_pinned_version_nothing_changes(
    project: Path, platform: dict[str, Any], tmp_path: Path
) -> None:
    before = snapshot(project)
    result = scaffold(project, "other", fake_uv(tmp_path / "old", "0.0.1", lock_fails=False))
    assert result.returncode == 1
    assert f"uv {platform['versions']['uv']} (platform.json versions.uv) is needed" in result.stderr
    assert snapshot(project) == before


def test_a_failed_lock_removes_everything_the_scaffold_wrote(
    project: Path, platform: dict[str, Any], tmp_path: Path
) -> None:
    before = snapshot(project)
    uv = fake_uv(tmp_path / "failing", platform["versions"]["uv"], lock_fails=True)
    result = scaffold(project, "other", uv)
    assert result.returncode == 1
    assert "uv lock in" in result.stderr and "lock refused" in result.stderr
    assert snapshot(project) == before
    assert not (project / "docker" / "executor" / "envs" / "other").exists()


def build_envs(project: Path, registry: Path, envs: Path) -> None:
    """Each environment the registry uses, from its lock, as docker/executor/build.sh does."""
    tasks = tomllib.loads(registry.read_text())["tasks"].values()
    for env in sorted({task["env"] for task in tasks}):
        spec = project / "docker" / "executor" / "envs" / env
        subprocess.run(
            [str(UV), "sync", "--quiet", "--frozen", "--no-dev", "--project", str(spec),
             "--python", sys.executable],
            env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(envs / env),
                 "UV_PYTHON_DOWNLOADS": "never"},
            check=True, capture_output=True,
        )  # fmt: skip


@pytest.fixture
def executor(
    project: Path, tmp_path: Path, executor_tls: ExecutorTls
) -> Iterator[tuple[int, Path]]:
    registry = project / "docker" / "executor" / "tasks.toml"
    envs, logs = tmp_path / "envs", tmp_path / "logs"
    build_envs(project, registry, envs)
    stderr_path = tmp_path / "server.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(project / "docker" / "executor" / "src"), str(STUBS)])
    env["VPE_PLATFORM_FILE"] = str(PLATFORM_FILE)
    command = [
        sys.executable, "-m", "vpe_executor", "--registry", str(registry), "--envs-dir", str(envs),
        "--logs-dir", str(logs), "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
        "--tls-dir", str(executor_tls.server_dir),
    ]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"listening on [^:]+:(\d+)", stderr_path.read_text())):
            assert proc.poll() is None, f"executor exited: {stderr_path.read_text()}"
            assert time.monotonic() < deadline, "the executor never listened"
            time.sleep(0.05)
        yield int(match.group(1)), logs
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_scaffolded_dag_runs_its_task_through_a_real_executor(
    project: Path,
    executor: tuple[int, Path],
    airflow_db: Path,
    platform: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    executor_tls: ExecutorTls,
) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    port, logs = executor
    provision_connections(
        monkeypatch,
        platform,
        grpc_address=("localhost", port),
        tls_dir=executor_tls.client_dir,
    )
    dags = project / "dags"
    bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags)
    # As the dag-processor would, for the copy (dag.test() parses the configured folder).
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    sync_bag_to_db(bag, "dags-folder", None)
    dag = bag.dags[NAME]
    run = dag.test(logical_date=LOGICAL_DATE)
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"hello": "success"}
    outputs = "".join(p.read_text() for p in logs.rglob("*.log"))
    assert f"{NAME}: hello for 2024-05-01 from python {platform['pythonMinor']}" in outputs
    assert f"envs/{NAME}" in outputs, "the task did not run with its own environment's interpreter"
