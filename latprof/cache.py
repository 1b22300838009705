"""latprof's cache folder: files latprof writes once and reuses (exported models)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$LATPROF_CACHE``, else ``~/.cache/latprof``."""
    return Path(os.environ.get("LATPROF_CACHE") or Path.home() / ".cache" / "latprof")
