"""A real executor subprocess serving mutual TLS with a test PKI, and the clients that attack it.

The server is started by tests/executor/conftest.py's start_server, loaded here as a module under
its own name: pytest imports every conftest as `conftest`, so this session could not import that
one by name (scripts/test-python.sh runs each suite as its own pytest session for the same
reason). Passing --tls-dir makes start_server leave out --plaintext.
"""

import importlib.util
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # tests/pki.py, shared with other suites

import pki  # noqa: E402 - needs the path above


def _load_executor_conftest() -> ModuleType:
    path = TESTS / "executor" / "conftest.py"
    spec = importlib.util.spec_from_file_location("executor_conftest", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


executor = _load_executor_conftest()
ServerProcess = executor.ServerProcess
child_env = executor.child_env
wait_for = executor.wait_for
# Its session fixtures (proto compiled once, the wire module), registered in this session too.
generated_dir = executor.generated_dir
wire = executor.wire

ALIAS = pki.executor_alias()
# What gRPC core (BoringSSL) writes to the server's stderr for every refused TLS handshake.
HANDSHAKE_FAILED = "Handshake failed with error SSL_ERROR_SSL"
CALL_TIMEOUT = 30.0


def channel_credentials(
    trusted_ca: pki.Identity, identity: pki.Identity | None
) -> grpc.ChannelCredentials:
    """Trust `trusted_ca` and present `identity` (none: a TLS client without a certificate)."""
    return grpc.ssl_channel_credentials(
        root_certificates=trusted_ca.cert_pem,
        private_key=identity.key_pem if identity else None,
        certificate_chain=identity.cert_pem if identity else None,
    )


def secure_channel(
    target: str,
    credentials: grpc.ChannelCredentials,
    name: str = ALIAS,
    own_connection: bool = False,
) -> grpc.Channel:
    """A TLS channel to 127.0.0.1 that checks the server's certificate against `name`, as the
    stack's clients do by dialling the alias. `own_connection` stops gRPC from sharing one TCP
    connection among channels with the same target, so a flood really opens many."""
    options: list[tuple[str, Any]] = [("grpc.ssl_target_name_override", name)]
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    return grpc.secure_channel(target, credentials, options=options)


@dataclass
class SecureExecutor:
    """The executor under attack, its TLS folder and PKI, and a legitimate client."""

    server: ServerProcess
    tls_dir: Path
    pki: pki.TestPki
    generated_dir: Path
    wire: ModuleType

    @property
    def target(self) -> str:
        return self.server.target

    def stub(self, channel: grpc.Channel) -> Any:
        return self.wire.pb2_grpc.PingServiceStub(channel)

    def legit_channel(self, own_connection: bool = False) -> grpc.Channel:
        credentials = channel_credentials(self.pki.ca, self.pki.client)
        return secure_channel(self.target, credentials, own_connection=own_connection)

    def ping(self, message: str = "still there?", channel: grpc.Channel | None = None) -> str:
        stub = self.stub(channel) if channel else self.server.stubs["ping"]
        request = self.wire.pb2.PingRequest(message=message)
        reply: str = stub.ping(request, timeout=CALL_TIMEOUT).message
        return reply

    def command(self, command: str, *args: str, run_id: str = "") -> Any:
        request = self.wire.pb2.ExeTask(command=command, args=list(args), run_id=run_id)
        return self.server.stubs["ping"].command(request, timeout=CALL_TIMEOUT)

    def stderr(self) -> str:
        return self.server.stderr()

    def health_cli(self, tls_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
        """The container healthcheck, `python -m vpe_executor.health`, dialling this server."""
        return subprocess.run(
            [sys.executable, "-m", "vpe_executor.health", "--target", self.target,
             "--tls-dir", str(tls_dir or self.tls_dir), "--timeout", "10"],
            env=child_env(self.generated_dir), capture_output=True, text=True, check=False,
            timeout=60,
        )  # fmt: skip


def install_secure_client(target: SecureExecutor) -> None:
    """start_server dials plaintext, which this server refuses: swap in the legitimate client's
    TLS channel (ServerProcess.stop closes whichever channel it holds)."""
    target.server.channel.close()
    target.server.channel = target.legit_channel()
    target.server.stubs["ping"] = target.stub(target.server.channel)


@pytest.fixture(scope="session")
def test_pki() -> pki.TestPki:
    return pki.make_test_pki()


@pytest.fixture(scope="module")
def secure_executor(
    tmp_path_factory: pytest.TempPathFactory,
    generated_dir: Path,
    wire: ModuleType,
    test_pki: pki.TestPki,
) -> Iterator[SecureExecutor]:
    """One executor per module, so every attack also hits a server earlier attacks went at."""
    root = tmp_path_factory.mktemp("secure-executor")
    tls_dir = pki.write_tls_dir(root / "tls", test_pki.ca, test_pki.server)
    server = executor.start_server(root, generated_dir, wire, "--tls-dir", str(tls_dir))
    running = SecureExecutor(server, tls_dir, test_pki, generated_dir, wire)
    install_secure_client(running)
    yield running
    assert server.stop() == 0, server.stderr()


@dataclass
class Pinger:
    """Legitimate pings in a loop on their own thread; what each returned or raised."""

    replies: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


@contextmanager
def pinging_alongside(target: SecureExecutor) -> Iterator[Pinger]:
    """Keep a legitimate client pinging for as long as the block runs (at least once), so an
    attack is shown not to starve it while it lasts, not only afterwards."""
    pinger, stop = Pinger(), threading.Event()

    def loop() -> None:
        with target.legit_channel(own_connection=True) as channel:
            while True:
                try:
                    pinger.replies.append(target.ping("alongside", channel))
                except grpc.RpcError as exc:  # re-raised as an assertion by the test
                    pinger.errors.append(exc)
                if stop.is_set():
                    return

    thread = threading.Thread(target=loop, name="legit-pinger")
    thread.start()
    try:
        yield pinger
    finally:
        stop.set()
        thread.join(timeout=CALL_TIMEOUT * 2)
