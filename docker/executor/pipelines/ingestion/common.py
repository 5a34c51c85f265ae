"""Helpers shared by the ingestion pipeline scripts: platform paths, dates, secrets, atomic
writes."""

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


class SecretError(Exception):
    """A secret that is missing or unreadable; the message names the variable, never the value."""


def secret_from_env(name: str) -> str:
    """The value of our variable `name` (platform env.*): the content of the file NAME_FILE
    names, one trailing newline stripped, else NAME itself.

    The stack keeps secrets out of the environment, where `docker inspect` shows them: it
    uploads each to a file and sets NAME_FILE; the tests still set NAME. Both is an error.
    """
    file_variable = f"{name}_FILE"
    path, plain = os.environ.get(file_variable, ""), os.environ.get(name, "")
    if path and plain:
        raise SecretError(f"both {name} and {file_variable} are set: expected only one")
    if not path:
        if not plain:
            expected = f"nor {file_variable}, a file holding it"
            raise SecretError(f"environment variable {name} is not set ({expected})")
        return plain
    try:
        value = Path(path).read_text(encoding="utf-8").removesuffix("\n")
    except OSError as exc:
        reason = f"cannot read the file ({exc.strerror})"
        raise SecretError(f"{file_variable}={path}: {reason}") from None
    except UnicodeDecodeError:
        raise SecretError(f"{file_variable}={path}: expected UTF-8 text") from None
    if not value:
        raise SecretError(f"{file_variable}={path}: the file is empty")
    return value


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
