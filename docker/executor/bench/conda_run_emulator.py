"""Stand-in for `conda run -p PREFIX CMD...`, used only as the benchmark's baseline.

No conda exists on this machine, so this reproduces the process structure of `conda run`
(conda 23-25, conda/cli/main_run.py + conda/utils.py:wrap_subprocess_call):
  1. an interpreter starts (the `conda` entry point) and writes a temporary shell script,
  2. that script runs `eval "$(conda shell.posix hook)"`   -> a second interpreter start,
  3. then `conda activate PREFIX`, i.e. `conda shell.posix activate` -> a third one,
  4. then the command, as a child of bash whose output conda captures and re-prints.
Each conda interpreter start here imports only the stdlib, not conda's own packages, so the
figure is a lower bound of what `conda run` costs.

Usage: conda_run_emulator.py PREFIX CMD [ARGS...]
"""

import os
import shlex
import subprocess
import sys
import tempfile

HOOK = "--shell-posix-hook"
ACTIVATE = "--shell-posix-activate"


def hook() -> str:
    me = shlex.join([sys.executable, os.path.abspath(__file__)])
    return f'conda() {{ eval "$({me} {ACTIVATE} "$2")"; }}\n'


def activate(prefix: str) -> str:
    path = f"{prefix}/bin:{os.environ.get('PATH', '')}"
    exports = {"CONDA_PREFIX": prefix, "CONDA_SHLVL": "1", "PATH": path}
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in exports.items())


def run(prefix: str, command: list[str]) -> int:
    me = shlex.join([sys.executable, os.path.abspath(__file__)])
    script = f'eval "$({me} {HOOK})"\nconda activate {shlex.quote(prefix)}\n{shlex.join(command)}\n'
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as fh:
        fh.write(script)
    try:
        done = subprocess.run(["bash", fh.name], capture_output=True, text=True, check=False)
    finally:
        os.unlink(fh.name)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def main(argv: list[str]) -> int:
    if argv[:1] == [HOOK]:
        sys.stdout.write(hook())
        return 0
    if argv[:1] == [ACTIVATE]:
        sys.stdout.write(activate(argv[1]))
        return 0
    return run(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
