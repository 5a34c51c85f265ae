"""Helpers shared by the ingestion pipeline scripts: platform paths, dates, atomic writes."""

import argparse
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql

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


@contextmanager
def atomic_writer(target: Path) -> Iterator[TextIO]:
    """A text file that appears at `target` whole, once the block ends (write, then rename),
    so a FileSensor never sees a half-written file; nothing appears if the block raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; readers (Airflow, Spark) share the group, so honour the umask.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(target: Path, text: str) -> None:
    with atomic_writer(target) as fh:
        fh.write(text)


def stage_and_insert(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    fill: Callable[[psycopg.Copy], None],
    copy_options: str = "",
) -> tuple[int, int]:
    """COPY rows (written by `fill`) into a temporary table shaped like `table`'s `columns`, then
    INSERT them into `table` with ON CONFLICT (`conflict`) DO NOTHING, in the caller's
    transaction: a re-import inserts nothing, and triggers see only new rows. Returns the rows
    staged and the rows inserted."""
    staging = sql.Identifier(f"{table}_incoming")
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    target = sql.Identifier(table)
    cur.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            staging, names, target
        )
    )
    with cur.copy(
        sql.SQL("COPY {} ({}) FROM STDIN {}").format(staging, names, sql.SQL(copy_options))
    ) as copy:
        fill(copy)
    staged = cur.rowcount
    cur.execute(
        sql.SQL(
            "INSERT INTO {target} ({names}) SELECT {names} FROM {staging} "
            "ON CONFLICT ({conflict}) DO NOTHING"
        ).format(
            target=target,
            names=names,
            staging=staging,
            conflict=sql.SQL(", ").join(map(sql.Identifier, conflict)),
        )
    )
    return staged, cur.rowcount
