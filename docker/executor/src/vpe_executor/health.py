"""Container healthcheck: exit 0 only if the local executor reports SERVING over mutual TLS."""

import argparse
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vpe_executor.platform_config import PlatformError, load_platform, lookup
from vpe_executor.tls import TlsError, TlsFiles, channel_credentials


def check(target: str, timeout_seconds: float, channel: grpc.Channel) -> bool:
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_seconds)
        except grpc.RpcError as exc:
            print(f"unhealthy: {target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return False
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"unhealthy: {target}: status {reply.status}", file=sys.stderr)
    return serving


def open_channel(target: str, args: argparse.Namespace, platform: dict[str, Any]) -> grpc.Channel:
    if args.plaintext:
        return grpc.insecure_channel(target)
    files = TlsFiles.for_platform(platform, args.tls_dir)
    # The probe dials 127.0.0.1 but checks the certificate against the executor's alias.
    options = [("grpc.ssl_target_name_override", lookup(platform, "aliases.executor"))]
    return grpc.secure_channel(target, channel_credentials(files), options=options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", help="host:port (default: 127.0.0.1:<ports.executorGrpc>)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS")
    parser.add_argument("--tls-dir", type=Path, help="default: platform tls.dir")
    parser.add_argument("--plaintext", action="store_true", help="tests only")
    args = parser.parse_args(argv)
    try:
        platform = load_platform()
        target = args.target or f"127.0.0.1:{lookup(platform, 'ports.executorGrpc')}"
        channel = open_channel(target, args, platform)
    except (PlatformError, TlsError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if check(target, args.timeout, channel) else 1


if __name__ == "__main__":
    sys.exit(main())
