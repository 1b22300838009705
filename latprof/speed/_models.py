"""The models timed next to a measurement: the speed probe, and named references (``mobilenet-v2``).

On a shared host a pinned core's speed is not constant: on the 2-core VMs
latprof is developed on, a model runs ~1.6x slower whenever anything runs on
the other core (the two vCPUs behave like hyperthread siblings), and that
flips within seconds as other people's jobs start and stop; phones change speed
too (DVFS, thermal throttling). The probe, a small fixed network, is timed
around every measurement: how fast the device was at that moment. Its times
are stored with each result (a table row's ``settings["probe_ms"]``, a
measurement's ``reference_speed["probe_ms"]``), and figures are rescaled to
the device's reference speed (:mod:`latprof.speed`).
"""

from __future__ import annotations

import re
from pathlib import Path

from latprof.cache import cache_dir, write_atomic
from latprof.errors import ArchitectureError, ModelFileError
from latprof.space import REFERENCES, get_space, parse_arch

__all__ = ["PROBE_ARCH", "PROBE_NAME", "write_probe", "probe_model", "reference_model"]

# conv 1x1, depthwise 3x3 and 5x5, SE, identity and pooling skips: a mix of compute- and memory-bound kernels.
PROBE_ARCH = ("res64_stem16_head320_cls100_relu:ds_r1_k3_s1_i16_o16:ir_r2_k3_s2_e6_i16_o24:"
              "ir_r2_k5_s2_e3_i24_o40_se0.25:ir_r2_k3_s2_e6_i40_o80_pool:ir_r1_k3_s1_e6_i80_o96")
PROBE_NAME = f"latprof probe v1 ({PROBE_ARCH}, flatbuffer writer seed 0)"


def _write(arch_text: str, path: Path) -> Path:
    return write_atomic(path, get_space("mnasnet").tflite_bytes(parse_arch(arch_text), seed=0))


def write_probe(folder: Path) -> Path:
    """Write the probe model into ``folder``; return its path."""
    return _write(PROBE_ARCH, Path(folder) / "latprof-probe.tflite")


def probe_model() -> Path:
    """The probe model in latprof's cache folder, written on first use."""
    path = cache_dir() / "speed" / "latprof-probe-v1.tflite"
    return path if path.is_file() else _write(PROBE_ARCH, path)


def reference_model(name: str) -> Path:
    """A reference to time a model against: a .tflite path, or a named architecture (``mobilenet-v2``).

    A named one is written once by latprof's flatbuffer writer (float32, seed 0) into
    the cache folder and reused from there.
    """
    if name.endswith(".tflite") or Path(name).is_file():
        path = Path(name)
        if not path.is_file():
            raise ModelFileError(f"reference model not found: {path}; check the path")
        return path
    base = name.split("@", 1)[0]
    if base not in REFERENCES:
        raise ArchitectureError(f"unknown reference {name!r}; pass a .tflite file or one of "
                                f"{', '.join(sorted(REFERENCES))}")
    path = cache_dir() / "references" / f"{re.sub(r'[^A-Za-z0-9.@,-]+', '_', name)}.tflite"
    return path if path.is_file() else _write(name, path)
