"""Trivial task: report which interpreter runs it; optionally stamp the start time.

--stamp NAME writes time.monotonic_ns(), taken as the first thing the script does after
interpreter start-up, to <paths.logs>/executor/stamps/NAME (the executor benchmark measures
dispatch overhead with it). NAME is a token, not a path: the folder comes from platform.json,
so a caller cannot make the task write anywhere else.
"""

import time

STARTED_NS = time.monotonic_ns()

import argparse  # noqa: E402 - the stamp must precede every other import
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# platform_config, not common.platform(): stdlib only, so ping_env also runs in the
# benchmark's bare interpreters.
from vpe_executor.platform_config import load_platform, lookup  # noqa: E402

STAMP_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def stamp_name(raw: str) -> str:
    """argparse type for --stamp: the same token tasks.toml declares."""
    if not STAMP_NAME.fullmatch(raw):
        raise argparse.ArgumentTypeError(f"--stamp must match {STAMP_NAME.pattern}, got {raw!r}")
    return raw


def stamp_path(name: str) -> Path:
    # <paths.logs>/executor is the executor's own log folder (see vpe_executor.server).
    return Path(lookup(load_platform(), "paths.logs")) / "executor" / "stamps" / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stamp", type=stamp_name, metavar="NAME")
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args(argv)
    if args.stamp is not None:
        path = stamp_path(args.stamp)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(STARTED_NS))
    print(f"ping_env: python {sys.version.split()[0]} prefix={sys.prefix}")
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
