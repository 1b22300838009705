"""The speed probe: a small fixed network timed before and after every host measurement.

On a shared host a pinned core's speed is not constant: on the 2-core VMs
latprof is developed on, a model runs ~1.6x slower whenever anything runs on
the other core (the two vCPUs behave like hyperthread siblings), and that
flips within seconds as other people's jobs start and stop. The batch runner
therefore times this probe (``--probe`` of the host worker) just before and
just after each model: a row whose two probe times disagree was timed while
the core changed speed and is measured again; the probe time of each row is
stored with it (``settings["probe_ms"]``), and ``latprof fit`` rescales every
row to one reference speed (:func:`latprof.predict` ``probe_ref_ms``).
"""

from __future__ import annotations

from pathlib import Path

from latprof.space._arch import parse_arch_string
from latprof.space._flatbuffer import write_tflite

__all__ = ["PROBE_ARCH", "PROBE_NAME", "write_probe"]

# conv 1x1, depthwise 3x3 and 5x5, SE, identity and pooling skips: a mix of compute- and memory-bound kernels.
PROBE_ARCH = ("res64_stem16_head320_cls100_relu:ds_r1_k3_s1_i16_o16:ir_r2_k3_s2_e6_i16_o24:"
              "ir_r2_k5_s2_e3_i24_o40_se0.25:ir_r2_k3_s2_e6_i40_o80_pool:ir_r1_k3_s1_e6_i80_o96")
PROBE_NAME = f"latprof probe v1 ({PROBE_ARCH}, flatbuffer writer seed 0)"


def write_probe(folder: Path) -> Path:
    """Write the probe model into ``folder``; return its path."""
    return write_tflite(parse_arch_string(PROBE_ARCH), Path(folder) / "latprof-probe.tflite", seed=0)
