"""Trivial task: report which interpreter runs it; optionally stamp the start time.

--stamp-file receives time.monotonic_ns() as the first thing the script does after
interpreter start-up (the executor benchmark measures dispatch overhead with it).
"""

import time

STARTED_NS = time.monotonic_ns()

import argparse  # noqa: E402 - the stamp must precede every other import
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stamp-file", type=Path)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args(argv)
    if args.stamp_file is not None:
        args.stamp_file.write_text(str(STARTED_NS))
    print(f"ping_env: python {sys.version.split()[0]} prefix={sys.prefix}")
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
