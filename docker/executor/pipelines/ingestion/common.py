"""Helpers shared by the ingestion pipeline scripts: platform paths, dates, atomic writes."""

import argparse
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from vpe_executor.platform_config import load_platform, lookup


def iso_date(raw: str) -> date:
    """argparse type for --date (the Airflow logical date, YYYY-MM-DD)."""
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--date must be YYYY-MM-DD, got {raw!r}") from None


def platform() -> dict[str, Any]:
    return load_platform()


def buffer_file(
    buffer_dir: Path, key: str, day: date, settings: dict[str, Any], **parts: str
) -> Path:
    """Path of a per-date buffer file; the layout lives in platform bufferFiles.<key>.

    `parts` fill the layout's other placeholders, e.g. format="xlsx" for the catalog files.
    """
    layout = lookup(settings, f"bufferFiles.{key}")
    return buffer_dir / layout.format(date=day.isoformat(), **parts)


def atomic_write_text(target: Path, text: str) -> None:
    """Write then rename, so a FileSensor never sees a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; readers (Airflow, Spark) share the group, so honour the umask.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
