"""Data shipped inside the package: device configs and published phone latencies.

They are package data (``latprof/data/device_configs/``), so a wheel or ``pip install .``
carries them; the user's own configs live in ``~/.config/latprof/devices/`` or
``$LATPROF_DEVICE_CONFIGS`` (see :mod:`latprof.devices.config`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["DEVICE_CONFIGS", "PUBLISHED"]

# files() of a package installed as files on disk (a wheel, `pip install .` or -e) is a pathlib.Path;
# Path() refuses a zip-imported package loudly instead of pointing at a folder that does not exist.
DEVICE_CONFIGS: Path = Path(files(__name__) / "device_configs")
PUBLISHED: Path = DEVICE_CONFIGS / "published"
