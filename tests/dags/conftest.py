"""Fixtures for the DAG and Spark-job tests: real Airflow 3 configured in a temporary home.

Airflow reads its configuration when first imported, so the environment is set here, at
import time, before any test module imports airflow: a throwaway AIRFLOW_HOME with a SQLite
metadata database, this repository's dags/ folder and docker/platform.json. The executor's
gRPC stubs are generated from docker/proto/executor.proto into a temporary folder on sys.path,
as the Airflow image does at build time.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402
from pki import client_identity, issue, make_ca, tls_file_names, write_tls_dir  # noqa: E402

DAGS = REPO / "dags"
PLATFORM_FILE = REPO / "docker" / "platform.json"
PROTO = REPO / "docker" / "proto" / "executor.proto"

_HOME = Path(tempfile.mkdtemp(prefix="vpe-airflow-home-"))
STUBS = _HOME / "stubs"
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "VPE_PLATFORM_FILE": str(PLATFORM_FILE),
    }
)


def _generate_stubs() -> None:
    STUBS.mkdir()
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}",
         f"--python_out={STUBS}", f"--grpc_python_out={STUBS}", PROTO.name],
        check=True, capture_output=True,
    )  # fmt: skip
    sys.path[:0] = [str(STUBS), str(DAGS)]


_generate_stubs()


def pytest_sessionfinish() -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database (dag.test needs one)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True, capture_output=True, env=os.environ.copy(),
    )  # fmt: skip
    return _HOME / "airflow.db"


@pytest.fixture(scope="session")
def dagbag() -> Any:
    # What the dag-processor and the task runner use: it puts the bundle (dags/) on sys.path.
    from airflow.models.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)


@dataclass(frozen=True)
class ExecutorTls:
    """--tls-dir folders of a test executor (certificate for localhost) and of Airflow."""

    server_dir: Path
    client_dir: Path


@pytest.fixture(scope="session")
def executor_tls(tmp_path_factory: pytest.TempPathFactory) -> ExecutorTls:
    root = tmp_path_factory.mktemp("executor-tls")
    ca = make_ca()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    server = issue(ca, "localhost", usages, dns_names=("localhost",))
    return ExecutorTls(
        write_tls_dir(root / "server", ca, server),
        write_tls_dir(root / "client", ca, client_identity(ca)),
    )


def server_credentials(tls_dir: Path) -> grpc.ServerCredentials:
    """What the executor serves with: only clients with a certificate from the CA get in."""
    ca, cert, key = (tls_dir / name for name in tls_file_names())
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=ca.read_bytes(),
        require_client_auth=True,
    )


def provision_connections(
    monkeypatch: pytest.MonkeyPatch,
    platform: dict[str, Any],
    *,
    grpc_address: tuple[str, int],
    tls_dir: Path,
) -> None:
    """AIRFLOW_CONN_* variables in the JSON form the stack provisions (components/airflow.ts)."""
    ids = platform["connections"]
    aliases, ports, tls = platform["aliases"], platform["ports"], platform["tls"]
    tls_files = {
        "ca_file": str(tls_dir / tls["caFile"]),
        "cert_file": str(tls_dir / tls["certFile"]),
        "key_file": str(tls_dir / tls["keyFile"]),
    }
    values = {
        ids["grpc"]: {"conn_type": "grpc", "host": grpc_address[0], "port": grpc_address[1],
                      "extra": {"auth_type": "CUSTOM", **tls_files}},
        ids["spark"]: {"conn_type": "spark", "host": f"spark://{aliases['sparkMaster']}",
                       "port": ports["sparkMaster"]},
    }  # fmt: skip
    for conn_id, value in values.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
