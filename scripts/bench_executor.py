#!/usr/bin/env python3
"""Benchmark the executor over loopback: task dispatch overhead and gRPC ping performance.

Starts a real server (python -m vpe_executor) with a throwaway registry and venv, then measures
  dispatch   client call -> first line of the task script (ping_env stamps time.monotonic_ns(),
             a system-wide clock on Linux), for the executor's direct-interpreter dispatch and
             for a `conda run` baseline (docker/executor/bench/conda_run_emulator.py: same
             process structure as conda run, stdlib-only interpreters, so a lower bound);
  ping       sequential round-trip latency, and throughput with concurrent client threads;
  transport  the same server over mutual TLS (as the stack runs it; test PKI from tests/pki.py)
             against the plaintext baseline, interleaved: a ping on an open channel, and a new
             channel + ping (what each Airflow task does: the grpc hook opens a channel per call).
Bounded loops, loopback only. Prints a table; writes reports/bench_executor.json.

Run with the project venv: .venv/bin/python scripts/bench_executor.py [--dispatch-runs N]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXECUTOR = REPO / "docker" / "executor"
PING_ENV = EXECUTOR / "pipelines" / "ingestion" / "ping_env.py"
EMULATOR = EXECUTOR / "bench" / "conda_run_emulator.py"
REPORT = REPO / "reports" / "bench_executor.json"
STAMP = "bench"  # ping_env --stamp: a name; the file is <paths.logs>/executor/stamps/<name>
sys.path[:0] = [str(EXECUTOR / "src"), str(REPO / "tests")]

import grpc  # noqa: E402
from pki import make_test_pki, write_tls_dir  # noqa: E402 - needs the sys.path entry above

from vpe_executor.protogen import compile_proto  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(values_ms: list[float], pcts: tuple[int, ...]) -> dict[str, float]:
    stats = {f"p{p}_ms": round(percentile(values_ms, p), 3) for p in pcts}
    stats["mean_ms"] = round(sum(values_ms) / len(values_ms), 3)
    return {**stats, "n": len(values_ms)}


def write_registry(root: Path, prefix: Path) -> Path:
    python = prefix / "bin" / "python"
    stamp = '"--stamp" = { pattern = "[A-Za-z0-9_-]{1,64}" }\n'
    registry = root / "tasks.toml"
    registry.write_text(
        f'[tasks.direct]\nenv = "bench"\nscript = "{PING_ENV}"\ntimeout_seconds = 60\n'
        f"[tasks.direct.arguments]\n{stamp}\n"
        f'[tasks.conda_run]\nenv = "bench"\nscript = "{EMULATOR}"\n'
        f'args = ["{prefix}", "{python}", "{PING_ENV}"]\ntimeout_seconds = 60\n'
        f"[tasks.conda_run.arguments]\n{stamp}"
    )
    return registry


def write_platform(root: Path) -> Path:
    """platform.json with paths.logs in the throwaway folder: ping_env writes its stamp there."""
    values = json.loads((REPO / "docker" / "platform.json").read_text())
    values["paths"]["logs"] = str(root / "logs")
    path = root / "platform.json"
    path.write_text(json.dumps(values))
    return path


def start_server(
    root: Path, generated: Path, registry: Path, security: list[str]
) -> tuple[subprocess.Popen, int]:
    """`security`: ["--plaintext"] or ["--tls-dir", DIR]."""
    stderr_path = root / f"server-{len(list(root.glob('server-*.stderr')))}.stderr"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXECUTOR / "src"), str(generated)])}
    env["VPE_PLATFORM_FILE"] = str(write_platform(root))
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vpe_executor", "--registry", str(registry),
             "--envs-dir", str(root / "envs"), "--logs-dir", str(root / "logs"),
             "--host", "127.0.0.1", "--port", "0", "--max-concurrent", "4", *security],
            env=env, stderr=stderr, stdout=stderr,
        )  # fmt: skip
    for _ in range(1500):
        if proc.poll() is not None:
            sys.exit(f"server exited: {stderr_path.read_text()}")
        match = re.search(r"listening on [^:]+:(\d+)", stderr_path.read_text())
        if match:
            return proc, int(match.group(1))
        time.sleep(0.02)
    proc.kill()
    sys.exit("server did not start")


def measure_dispatch(stub: Any, pb2: Any, command: str, stamp: Path) -> float:
    stamp.unlink(missing_ok=True)
    request = pb2.ExeTask(command=command, args=["--stamp", stamp.name])
    sent = time.monotonic_ns()
    stub.command(request, timeout=60)
    return (int(stamp.read_text()) - sent) / 1e6


def timed(call: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def throughput(call: Callable[[], Any], total: int, threads: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(call) for _ in range(total)]:
            future.result()
    return total / (time.perf_counter() - start)


def measure_transport(
    args: argparse.Namespace, pb2: Any, pb2_grpc: Any, pki: Any, port: int, tls_port: int
) -> dict[str, Any]:
    credentials = grpc.ssl_channel_credentials(
        pki.ca.cert_pem, pki.client.key_pem, pki.client.cert_pem
    )
    # A channel of its own connection each, as a task process gets: gRPC otherwise shares one
    # connection among a process's channels to the same address.
    own = [("grpc.use_local_subchannel_pool", 1)]
    tls = [*own, ("grpc.ssl_target_name_override", "executor")]
    opens: dict[str, Callable[[], grpc.Channel]] = {
        "plaintext": lambda: grpc.insecure_channel(f"127.0.0.1:{port}", own),
        "mutual_tls": lambda: grpc.secure_channel(f"127.0.0.1:{tls_port}", credentials, tls),
    }
    ping = pb2.PingRequest(message="x")
    samples: dict[str, dict[str, list[float]]] = {name: {"open": [], "new": []} for name in opens}
    channels = {name: open_() for name, open_ in opens.items()}
    try:
        stubs = {name: pb2_grpc.PingServiceStub(channel) for name, channel in channels.items()}
        for stub in stubs.values():
            timed(lambda stub=stub: stub.ping(ping, timeout=10), 200)  # warm both alike

        def fresh(open_: Callable[[], grpc.Channel]) -> None:
            with open_() as channel:
                pb2_grpc.PingServiceStub(channel).ping(ping, timeout=10)

        for _ in range(args.transport_runs):  # interleaved so drift hits both alike
            for name, open_ in opens.items():
                samples[name]["open"] += timed(lambda s=stubs[name]: s.ping(ping, timeout=10), 1)
                samples[name]["new"] += timed(lambda o=open_: fresh(o), 1)
    finally:
        for channel in channels.values():
            channel.close()
    result: dict[str, Any] = {
        name: {kind: summary(values, (50, 95)) for kind, values in kinds.items()}
        for name, kinds in samples.items()
    }
    for kind in ("open", "new"):
        base, tls = (result[name][kind]["p50_ms"] for name in opens)
        result[f"ratio_{kind}_p50"] = round(tls / base, 2)
    return result


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    generated = root / "gen"
    compile_proto(REPO / "docker" / "proto" / "executor.proto", generated)
    sys.path.insert(0, str(generated))
    import executor_pb2 as pb2
    import executor_pb2_grpc as pb2_grpc

    prefix = root / "envs" / "bench"
    venv.create(prefix, with_pip=False, symlinks=True)
    registry = write_registry(root, prefix)
    proc, port = start_server(root, generated, registry, ["--plaintext"])
    pki = make_test_pki()
    tls_dir = write_tls_dir(root / "tls", pki.ca, pki.server)
    tls_proc, tls_port = start_server(root, generated, registry, ["--tls-dir", str(tls_dir)])
    try:
        transport = measure_transport(args, pb2, pb2_grpc, pki, port, tls_port)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb2_grpc.PingServiceStub(channel)
            stamp = root / "logs" / "executor" / "stamps" / STAMP
            dispatch: dict[str, list[float]] = {"direct": [], "conda_run": []}
            for command in dispatch:  # warm caches for both paths before measuring
                measure_dispatch(stub, pb2, command, stamp)
            for _ in range(args.dispatch_runs):  # interleaved so drift hits both alike
                for command, samples in dispatch.items():
                    samples.append(measure_dispatch(stub, pb2, command, stamp))
            ping = pb2.PingRequest(message="x")

            def call() -> Any:
                return stub.ping(ping, timeout=10)

            timed(call, 200)
            latencies = timed(call, args.ping_runs)
            rate = throughput(call, args.throughput_calls, args.threads)
    finally:
        for server in (proc, tls_proc):
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    return {
        "transport": transport,
        "dispatch": {name: summary(s, (50, 95)) for name, s in dispatch.items()},
        "ping_latency": summary(latencies, (50, 99)),
        "ping_throughput": {
            "requests_per_second": round(rate, 1),
            "calls": args.throughput_calls,
            "client_threads": args.threads,
        },
        "environment": {
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "grpcio": grpc.__version__,
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{'measure':<34}{'p50 ms':>10}{'tail ms':>10}  {'tail':<5}{'n':>6}")
    rows = [(f"dispatch {name}", stats, "p95") for name, stats in result["dispatch"].items()]
    rows.append(("ping latency", result["ping_latency"], "p99"))
    for label, stats, tail in rows:
        tail_ms = stats[f"{tail}_ms"]
        print(f"{label:<34}{stats['p50_ms']:>10.3f}{tail_ms:>10.3f}  {tail:<5}{stats['n']:>6}")
    transport = result["transport"]
    for name in ("plaintext", "mutual_tls"):
        for kind, label in (("open", "ping, open channel"), ("new", "new channel + ping")):
            stats = transport[name][kind]
            row = f"{label} {name}"
            print(
                f"{row:<34}{stats['p50_ms']:>10.3f}{stats['p95_ms']:>10.3f}  p95  {stats['n']:>6}"
            )
    ratios = (
        f"open channel {transport['ratio_open_p50']}x, new channel {transport['ratio_new_p50']}x"
    )
    print(f"mutual TLS / plaintext, p50: {ratios}")
    rate = result["ping_throughput"]
    print(
        f"ping throughput: {rate['requests_per_second']:.0f} req/s "
        f"({rate['calls']} calls, {rate['client_threads']} client threads)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatch-runs", type=int, default=40)
    parser.add_argument("--ping-runs", type=int, default=2000)
    parser.add_argument("--throughput-calls", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--transport-runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vpe-bench-") as tmp:
        result = run(args, Path(tmp))
    print_table(result)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
