"""Shared fixtures: a throwaway real PostgreSQL cluster and per-test warehouse databases.

`postgres_server` (session) runs initdb + pg_ctl on a free loopback port in a temp dir (as the
`postgres` OS user when the tests run as root, since initdb refuses root).
`warehouse_url` (per test) creates a fresh database, applies warehouse/migrations/*.sql in name
order with psql (ON_ERROR_STOP), and yields its postgresql:// URL.
Binaries: $VPE_PG_BIN or /usr/lib/postgresql/15/bin.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "warehouse" / "migrations"
PG_BIN = Path(os.environ.get("VPE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "vpe_test"


@pytest.fixture(scope="session")
def platform() -> dict[str, Any]:
    """docker/platform.json, with docker/images.json's tags under "images" as platform.ts has it."""
    values: dict[str, Any] = json.loads((REPO / "docker" / "platform.json").read_text())
    values["images"] = json.loads((REPO / "docker" / "images.json").read_text())
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, database: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        return subprocess.run(
            [*command, "-d", self.url(database), *args], check=True, capture_output=True, text=True
        )


def _as_postgres_user(base: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    account = pwd.getpwnam("postgres")
    shutil.chown(base, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # Not pytest's tmp_path: its 0700 parent is not traversable by the postgres user.
    base = Path(tempfile.mkdtemp(prefix="vpe-pg-"))
    base.chmod(0o755)
    prefix = _as_postgres_user(base)
    data, port = base / "data", free_port()
    subprocess.run(
        [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
         "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l",
         str(base / "server.log"), "-w", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield PostgresServer("127.0.0.1", port, PG_USER)
    finally:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def migration_files() -> list[Path]:
    files = sorted(MIGRATIONS.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no warehouse migrations in {MIGRATIONS}")
    return files


@pytest.fixture
def warehouse_url(postgres_server: PostgresServer) -> Iterator[str]:
    database = f"warehouse_{uuid.uuid4().hex[:12]}"
    postgres_server.psql("postgres", "-c", f'CREATE DATABASE "{database}"')
    for migration in migration_files():
        postgres_server.psql(database, "-f", str(migration))
    try:
        yield postgres_server.url(database)
    finally:
        postgres_server.psql("postgres", "-c", f'DROP DATABASE "{database}" WITH (FORCE)')
