"""Test task: write its pid to --marker PATH, then wait until --release PATH exists (or forever)."""

import os
import sys
import time
from pathlib import Path


def option(name: str) -> Path:
    return Path(sys.argv[sys.argv.index(name) + 1])


marker, release = option("--marker"), option("--release")
tmp = marker.with_suffix(".tmp")
tmp.write_text(str(os.getpid()))
tmp.replace(marker)
while not release.exists():
    time.sleep(0.02)
print("released", flush=True)
