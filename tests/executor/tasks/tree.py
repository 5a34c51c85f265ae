"""Test task: spawn a child that spawns a grandchild; write both pids to --pidfile PATH.

With --exit now the task returns at once, leaving the tree behind; otherwise it sleeps forever.
"""

import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print(grandchild.pid, flush=True)
time.sleep(3600)
"""

pidfile = Path(sys.argv[sys.argv.index("--pidfile") + 1])
child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
assert child.stdout is not None
grandchild_pid = int(child.stdout.readline())
tmp = pidfile.with_suffix(".tmp")
tmp.write_text(f"{child.pid} {grandchild_pid}")
tmp.replace(pidfile)
if "--exit" not in sys.argv:
    time.sleep(3600)
