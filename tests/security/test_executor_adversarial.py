"""Attacks on a real executor serving mutual TLS: each must be refused, the refusal logged where
gRPC logs it, and the executor must keep serving legitimate clients during and after.

One server per module (see conftest.secure_executor), so later attacks also hit a server that
earlier ones went at. Waits are bounded to keep a broken server from hanging the run; no
assertion is about how long anything took.
"""

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pki
import pytest
from conftest import (
    ALIAS,
    CALL_TIMEOUT,
    HANDSHAKE_FAILED,
    SecureExecutor,
    channel_credentials,
    pinging_alongside,
    secure_channel,
    wait_for,
)

# gRPC's default receive limit is 4 MiB; the server keeps it.
OVERSIZED = 5 * 1024 * 1024
# extract_catalog's --date in every attack on it; no legitimate call here uses it, so the
# buffer folder for it must never appear.
ATTACK_DATE = "2030-01-01"


# --- helpers ---------------------------------------------------------------------------------


def assert_healthy(target: SecureExecutor) -> None:
    """The executor still serves legitimate clients: ping, a real task, and its healthcheck."""
    assert target.server.proc.poll() is None, target.stderr()
    assert target.ping("still there?") == "still there?"
    assert target.command("echo", "--word", "still here", "--code", "0").exit_code == 0
    probe = target.health_cli()
    assert probe.returncode == 0, probe.stderr


def assert_pinger_unharmed(replies: list[str], errors: list[BaseException]) -> None:
    assert errors == []
    assert replies, "the legitimate pinger never got a reply"
    assert set(replies) == {"alongside"}


def refused(channel: grpc.Channel, target: SecureExecutor) -> grpc.RpcError:
    """The error a ping over `channel` ends in; it must not succeed."""
    with channel, pytest.raises(grpc.RpcError) as caught:
        target.ping("let me in", channel)
    return caught.value


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def handshake_failures(target: SecureExecutor, offset: int, reason: str = "") -> list[str]:
    """The server's handshake-failure lines after stderr `offset` that give `reason`."""
    text = target.stderr()[offset:]
    return [line for line in text.splitlines() if HANDSHAKE_FAILED in line and reason in line]


def await_handshake_failures(
    target: SecureExecutor, offset: int, reason: str = "", count: int = 1
) -> list[str]:
    """Wait for `count` such lines: gRPC logs them from its own threads, after the refusal."""

    def enough() -> list[str]:
        found = handshake_failures(target, offset, reason)
        return found if len(found) >= count else []

    found: list[str] = wait_for(enough, f"{count} handshake failure(s) logged ({reason!r})")
    return found


def read_until_closed(sock: socket.socket) -> bytes:
    """What the server sent before closing; a reset counts as closed too."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size and (chunk := sock.recv(size - len(received))):
        received += chunk
    return received


@contextlib.contextmanager
def raw_connection(target: SecureExecutor) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", target.server.port), timeout=CALL_TIMEOUT) as sock:
        yield sock


def client_hello() -> bytes:
    """A genuine TLS ClientHello for the executor's name, as the first flight of a handshake."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=ALIAS)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# HTTP/2 connection preface and an empty SETTINGS frame: what a plaintext gRPC client opens with.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
GARBAGE = bytes(range(256)) * 16
TLS_HANDSHAKE_RECORD = b"\x16"  # record content type 22
TLS_SERVER_HELLO = b"\x02"  # handshake message type 2


# --- transport: who may connect --------------------------------------------------------------


def test_legitimate_client_is_served(secure_executor: SecureExecutor) -> None:
    """The baseline every refusal below is measured against."""
    assert_healthy(secure_executor)
    assert "with mutual TLS" in secure_executor.stderr()


def test_plaintext_client_is_refused_and_logged(secure_executor: SecureExecutor) -> None:
    offset = len(secure_executor.stderr())
    error = refused(grpc.insecure_channel(secure_executor.target), secure_executor)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert await_handshake_failures(secure_executor, offset, "WRONG_VERSION_NUMBER")
    assert_healthy(secure_executor)


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        pytest.param(None, "PEER_DID_NOT_RETURN_A_CERTIFICATE", id="no-certificate"),
        pytest.param("foreign_client", "unable to get local issuer certificate", id="foreign-ca"),
        pytest.param("expired_client", "certificate has expired", id="expired"),
    ],
)
def test_client_without_a_valid_certificate_is_refused_and_logged(
    secure_executor: SecureExecutor, identity: str | None, reason: str
) -> None:
    """The client trusts the right CA, so only its own certificate (missing, from another CA,
    expired though signed by the right CA) can be why the server refuses it."""
    presented = getattr(secure_executor.pki, identity) if identity else None
    credentials = channel_credentials(secure_executor.pki.ca, presented)
    offset = len(secure_executor.stderr())
    error = refused(secure_channel(secure_executor.target, credentials), secure_executor)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert await_handshake_failures(secure_executor, offset, reason)
    assert_healthy(secure_executor)


@pytest.mark.parametrize(
    ("trust", "name", "reason"),
    [
        pytest.param("foreign_ca", ALIAS, "CERTIFICATE_VERIFY_FAILED", id="untrusted-ca"),
        pytest.param("ca", "not-the-executor", "is not in peer certificate", id="wrong-name"),
    ],
)
def test_client_refuses_a_server_it_cannot_authenticate(
    secure_executor: SecureExecutor, trust: str, name: str, reason: str
) -> None:
    """Mutual means the server is authenticated too: a client presenting a good certificate
    still refuses a server whose certificate is not from the CA it trusts, or not for the name
    it dials."""
    trusted = getattr(secure_executor.pki, trust)
    credentials = channel_credentials(trusted, secure_executor.pki.client)
    error = refused(secure_channel(secure_executor.target, credentials, name), secure_executor)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert reason in (error.details() or "")
    assert_healthy(secure_executor)


def test_health_probe_with_a_foreign_identity_is_unhealthy(
    secure_executor: SecureExecutor, tmp_path: Path
) -> None:
    """The probe's exit 0 means something: the same CLI with another CA's certificate fails."""
    issued = secure_executor.pki
    foreign_dir = pki.write_tls_dir(tmp_path / "foreign-tls", issued.ca, issued.foreign_client)
    probe = secure_executor.health_cli(foreign_dir)
    assert probe.returncode == 1
    assert "unhealthy" in probe.stderr
    assert "UNAVAILABLE" in probe.stderr
    assert_healthy(secure_executor)


def test_every_refused_handshake_is_logged(secure_executor: SecureExecutor) -> None:
    """One log line per refusal, not a sample: twenty garbage connections, twenty lines."""
    offset, attempts = len(secure_executor.stderr()), 20
    for _ in range(attempts):
        with raw_connection(secure_executor) as sock:
            sock.sendall(GARBAGE)
            read_until_closed(sock)
    assert await_handshake_failures(secure_executor, offset, count=attempts)
    assert_healthy(secure_executor)


# --- malformed traffic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(GARBAGE, "WRONG_VERSION_NUMBER", id="tcp-garbage"),
        pytest.param(H2_PREFACE, "WRONG_VERSION_NUMBER", id="plaintext-http2-preface"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: executor\r\nConnection: close\r\n\r\n",
            "HTTP_REQUEST",
            id="http1-request",
        ),
    ],
)
def test_malformed_stream_is_closed_and_logged(
    secure_executor: SecureExecutor, payload: bytes, reason: str
) -> None:
    offset = len(secure_executor.stderr())
    with pinging_alongside(secure_executor) as pinger, raw_connection(secure_executor) as sock:
        sock.sendall(payload)
        read_until_closed(sock)  # returns once the server has closed the connection
    assert_pinger_unharmed(pinger.replies, pinger.errors)
    assert await_handshake_failures(secure_executor, offset, reason)
    assert_healthy(secure_executor)


def test_client_hello_then_garbage_is_closed_and_logged(secure_executor: SecureExecutor) -> None:
    """A handshake that starts properly and then turns to garbage mid-way."""
    offset = len(secure_executor.stderr())
    with pinging_alongside(secure_executor) as pinger, raw_connection(secure_executor) as sock:
        sock.sendall(client_hello())
        reply = receive_exactly(sock, 5 + 1)  # record header, then the handshake type
        # A TLS handshake record holding a ServerHello: the hello was taken as a real one.
        assert reply[:1] == TLS_HANDSHAKE_RECORD
        assert reply[5:6] == TLS_SERVER_HELLO
        sock.sendall(GARBAGE)
        read_until_closed(sock)
    assert_pinger_unharmed(pinger.replies, pinger.errors)
    assert await_handshake_failures(secure_executor, offset, "WRONG_VERSION_NUMBER")
    assert_healthy(secure_executor)


def test_half_closed_connection_sending_nothing_is_closed(
    secure_executor: SecureExecutor,
) -> None:
    """A client that connects and half-closes without a byte: the server closes its side too
    (nothing to log: no handshake was attempted)."""
    with raw_connection(secure_executor) as sock:
        sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(sock) == b""
    assert_healthy(secure_executor)


def test_silent_connections_do_not_block_others(secure_executor: SecureExecutor) -> None:
    """Connections that never send a byte sit in gRPC's handshake until its handshake timeout;
    while they are held, legitimate clients are served."""
    with contextlib.ExitStack() as held:
        for _ in range(50):
            held.enter_context(raw_connection(secure_executor))
        assert_healthy(secure_executor)
    assert_healthy(secure_executor)


# --- requests: what an authenticated client may ask -----------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        pytest.param(["--buffer-dir", "{outside}"], "--buffer-dir", id="buffer-dir"),
        pytest.param(["--buffer-dir={outside}"], "--buffer-dir", id="buffer-dir-inline"),
        # argparse would expand this abbreviation to the script's own --buffer-dir.
        pytest.param(["--buf", "{outside}"], "--buf", id="abbreviated-buffer-dir"),
        pytest.param(["--source", "/etc/passwd"], "--source", id="source"),
    ],
)
def test_undeclared_argument_is_refused_before_anything_runs(
    secure_executor: SecureExecutor, tmp_path: Path, extra: list[str], named: str
) -> None:
    """extract_catalog's script has --source and --buffer-dir options of its own; tasks.toml
    declares only --date and --format, so a request may not reach them."""
    outside = tmp_path / "outside"
    args = ["--date", ATTACK_DATE, "--format", "csv", *(a.format(outside=outside) for a in extra)]
    run_id = f"undeclared-{named.strip('-')}-{len(extra)}"
    error = rpc_error(lambda: secure_executor.command("extract_catalog", *args, run_id=run_id))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"argument '{named}' is not accepted" in (error.details() or "")
    assert not (secure_executor.server.logs_dir / f"{run_id}.log").exists()
    assert not outside.exists()
    assert not (secure_executor.server.buffer_dir / "landslides" / ATTACK_DATE).exists()
    assert_healthy(secure_executor)


def test_undeclared_argument_leaves_no_side_effect(secure_executor: SecureExecutor) -> None:
    """ping_env's stamp file shows whether the task ran; the legitimate call first proves the
    absence check below could see one."""
    stamps = secure_executor.server.stamps_dir
    assert secure_executor.command("ping_env", "--stamp", "control").exit_code == 0
    assert (stamps / "control").is_file()
    error = rpc_error(
        lambda: secure_executor.command(
            "ping_env", "--stamp", "attack", "--source", "/etc/passwd", run_id="stamp-attack"
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "argument '--source' is not accepted" in (error.details() or "")
    assert not (stamps / "attack").exists()
    assert not (secure_executor.server.logs_dir / "stamp-attack.log").exists()
    assert_healthy(secure_executor)


PATH_VALUES = ["/etc/passwd", "../../etc/passwd", "a/b", "..", "~root", "%2e%2e%2fetc", "x\0/y"]


@pytest.mark.parametrize("value", PATH_VALUES)
@pytest.mark.parametrize(("task", "name"), [("ping_env", "--stamp"), ("echo", "--word")])
def test_path_as_a_pattern_argument_is_refused(
    secure_executor: SecureExecutor, task: str, name: str, value: str
) -> None:
    """A declared pattern argument is a token, never a path: anything path-like is refused."""
    run_id = f"path-{task}-{PATH_VALUES.index(value)}"
    for args in ([name, value], [f"{name}={value}"]):
        error = rpc_error(lambda a=args: secure_executor.command(task, *a, run_id=run_id))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert f"argument '{name}'" in (error.details() or "")
    assert not (secure_executor.server.logs_dir / f"{run_id}.log").exists()
    assert_healthy(secure_executor)


# --- resource exhaustion -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["argument", "run_id", "ping"])
def test_oversized_message_is_refused(secure_executor: SecureExecutor, field: str) -> None:
    """5 MiB in one field, above gRPC's 4 MiB receive limit: refused before the servicer."""
    big = "a" * OVERSIZED
    calls: dict[str, Callable[[], Any]] = {
        "argument": lambda: secure_executor.command("echo", "--word", big),
        "run_id": lambda: secure_executor.command("echo", run_id=big),
        "ping": lambda: secure_executor.ping(big),
    }
    with pinging_alongside(secure_executor) as pinger:
        error = rpc_error(calls[field])
    assert error.code() in {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT}
    assert_pinger_unharmed(pinger.replies, pinger.errors)
    assert_healthy(secure_executor)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["a"] * 200_000, id="stray-values"),
        pytest.param(["--word", "a"] * 100_000, id="repeated-declared"),
        pytest.param([f"--x{i}" for i in range(200_000)], id="distinct-undeclared"),
    ],
)
def test_two_hundred_thousand_arguments_are_refused(
    secure_executor: SecureExecutor, args: list[str]
) -> None:
    with pinging_alongside(secure_executor) as pinger:
        error = rpc_error(lambda: secure_executor.command("echo", *args, run_id="many-args"))
    assert error.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    # The refusal names one argument; it does not echo the flood back.
    assert len(error.details() or "") < 1000
    assert not (secure_executor.server.logs_dir / "many-args.log").exists()
    assert_pinger_unharmed(pinger.replies, pinger.errors)
    assert_healthy(secure_executor)


def _open_hostile_sockets(target: SecureExecutor, stack: contextlib.ExitStack) -> None:
    """Plaintext, garbage and silent connections, held open until `stack` closes."""
    for index in range(90):
        sock = stack.enter_context(raw_connection(target))
        payload = (H2_PREFACE, GARBAGE, b"")[index % 3]
        with contextlib.suppress(OSError):  # the server may already have closed it
            sock.sendall(payload)


def _flood_calls(
    target: SecureExecutor, stack: contextlib.ExitStack
) -> tuple[list[Any], list[Any]]:
    """200 pings, each on its own TLS connection, and 40 echo tasks, all in flight at once."""
    channels = [stack.enter_context(target.legit_channel(own_connection=True)) for _ in range(200)]
    ping = target.wire.pb2.PingRequest(message="flood")
    pings = [target.stub(c).ping.future(ping, timeout=CALL_TIMEOUT * 2) for c in channels]
    task = target.wire.pb2.ExeTask(command="echo", args=["--word", "flood"])
    commands = [
        target.stub(channels[i]).command.future(task, timeout=CALL_TIMEOUT * 2) for i in range(40)
    ]
    return pings, commands


def _outcome(future: Any) -> grpc.StatusCode:
    try:
        future.result()
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def test_connection_flood_does_not_bring_the_server_down(
    secure_executor: SecureExecutor,
) -> None:
    """Hostile sockets held open while valid clients open 200 TLS connections and 40 task
    calls: every ping is answered; a task either runs or is refused for want of a slot (the
    server has 2), never dropped."""
    with pinging_alongside(secure_executor) as pinger, contextlib.ExitStack() as stack:
        _open_hostile_sockets(secure_executor, stack)
        pings, commands = _flood_calls(secure_executor, stack)
        ping_outcomes = [_outcome(f) for f in pings]
        command_outcomes = [_outcome(f) for f in commands]
    assert set(ping_outcomes) == {grpc.StatusCode.OK}
    assert set(command_outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert grpc.StatusCode.OK in command_outcomes
    assert_pinger_unharmed(pinger.replies, pinger.errors)
    assert_healthy(secure_executor)
