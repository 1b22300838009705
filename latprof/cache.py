"""latprof's cache folder (files latprof writes once and reuses, e.g. exported models), and how files are
written whole."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "write_atomic"]


def cache_dir() -> Path:
    """``$LATPROF_CACHE``, else ``~/.cache/latprof``."""
    return Path(os.environ.get("LATPROF_CACHE") or Path.home() / ".cache" / "latprof")


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` whole or not at all (through a per-process ``.part`` file, renamed), making its
    folder; return the Path. A run killed mid-write, or another process writing the same file, leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
    return path
