"""Test task: print its args to stdout and a line to stderr, exit with --code."""

import sys

print("stdout:", *sys.argv[1:], flush=True)
print("stderr: hello", file=sys.stderr, flush=True)
sys.exit(int(sys.argv[sys.argv.index("--code") + 1]) if "--code" in sys.argv else 0)
