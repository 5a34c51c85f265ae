"""Test task: write its pid to MARKER, then wait until RELEASE exists (or forever)."""

import os
import sys
import time
from pathlib import Path

marker, release = Path(sys.argv[1]), Path(sys.argv[2])
tmp = marker.with_suffix(".tmp")
tmp.write_text(str(os.getpid()))
tmp.replace(marker)
while not release.exists():
    time.sleep(0.02)
print("released", flush=True)
