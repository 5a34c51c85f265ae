"""Compile the executor proto into importable modules (`executor_pb2`, `executor_pb2_grpc`).

Used at image build time (output into the server env's site-packages) and by the tests (output
into a temp dir), so generated code is never committed.
"""

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc


def compile_proto(proto: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    argv = [
        "grpc_tools.protoc",
        f"--proto_path={proto.parent}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto),
    ]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed for {proto}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("proto", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    compile_proto(args.proto, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
