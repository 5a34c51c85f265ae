"""Container healthcheck: exit 0 only if the local executor reports SERVING."""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vpe_executor.platform_config import PlatformError, load_platform, lookup


def check(target: str, timeout_seconds: float) -> bool:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_seconds)
        except grpc.RpcError as exc:
            print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return False
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"unhealthy: status {reply.status}", file=sys.stderr)
    return serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", help="host:port (default: 127.0.0.1:<ports.executorGrpc>)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    target = args.target
    if target is None:
        try:
            target = f"127.0.0.1:{lookup(load_platform(), 'ports.executorGrpc')}"
        except PlatformError as exc:
            print(f"unhealthy: {exc}", file=sys.stderr)
            return 1
    return 0 if check(target, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
