"""Files a user hands latprof (``--from``): read and checked in one place.

A file that is not UTF-8 text, or a latency that is not a positive number of
milliseconds, becomes a one-line :class:`~latprof.errors.ParseError` naming
the file, the line and the fix, before anything is fitted or stored.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from latprof.errors import ParseError

__all__ = ["read_text", "read_csv", "latency_ms"]


def read_text(path: Path) -> str:
    """The text of a UTF-8 file (a byte-order mark is allowed); ParseError if it is unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read {path} ({exc.strerror}); pass a readable file") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ParseError(f"{path} line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                         "save the file as UTF-8") from None


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV file's column names and its data rows, each with its line number in the file (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ParseError(f"{path} line {reader.line_num} is not valid CSV ({exc}); fix the line") from None
    return list(reader.fieldnames or []), rows


def latency_ms(cell: str | None, path: Path, line: int) -> float:
    """A latency cell as milliseconds; ParseError naming the line unless it is a finite number above zero."""
    try:
        value = float(cell or "")
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ParseError(f"{path} line {line}: latency {cell!r} is not a positive number of milliseconds; "
                         "correct or delete the row")
    return value
