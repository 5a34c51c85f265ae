"""The generated protocol modules, imported in one place with a clear error if absent."""

import importlib
from types import ModuleType


def _load(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"generated module {name!r} not importable: run "
            "`python -m vpe_executor.protogen executor.proto <dir on sys.path>` first"
        ) from exc


pb2 = _load("executor_pb2")
pb2_grpc = _load("executor_pb2_grpc")
