"""A simulated ``benchmark_model``: timings latprof predicts for a device, slept instead of run.

``latprof device serve --benchmark simulated --speed-of DEVICE`` makes a phone
whose benchmark costs the host almost nothing, so many fit on a small machine
(a farm's tests and throughput benchmark). Each run's time is the model's
predicted latency on DEVICE times a little log-normal noise; the tool sleeps
for the whole benchmark (warm-up and timed runs) and prints the real output.

The prediction is DEVICE's stored predictor (``latprof fit`` or ``latprof calibrate``)
when the store has one; otherwise a multiply-add rate: ``MACS_PER_CYCLE`` per
cycle of the config's fastest core, plus ``OP_OVERHEAD_MS`` per operator.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

from latprof.errors import LatprofError

__all__ = ["SimulatedSpeed", "SimulatedRun", "MACS_PER_CYCLE", "OP_OVERHEAD_MS"]

# MnasNet-A1 (312 M multiply-adds) takes 78 ms on a Pixel 1 (2.15 GHz big core): about 2 per cycle.
MACS_PER_CYCLE = 2.0
OP_OVERHEAD_MS = 0.01
_INIT_US = 2000.0


@dataclass(frozen=True)
class SimulatedRun:
    """What the simulated tool reports, as :func:`latprof.benchmarking.host.run_host_benchmark` does."""

    init_us: float
    warmup_us: tuple[float, ...]
    run_us: tuple[float, ...]
    op_profile: None = None


class SimulatedSpeed:
    """Predicted latencies of DEVICE for .tflite files, with ``noise`` (relative std) per run."""

    def __init__(self, device: str, *, db: str | None = None, noise: float = 0.02, seed: int | None = None) -> None:
        self.device, self.noise = device, noise
        self._random = random.Random(seed)
        self._cache: dict[str, float] = {}
        self._predictor = _stored_predictor(device, db)
        if self._predictor is not None:
            self.source = f"{device}'s fitted predictor (prior {self._predictor.prior})"
        else:
            self._clock_hz = _fastest_core_hz(device)
            self.source = (f"{device} at {MACS_PER_CYCLE:g} multiply-adds per cycle of its fastest core "
                           f"({self._clock_hz / 1e9:.2f} GHz) + {OP_OVERHEAD_MS:g} ms per operator "
                           "(no fitted predictor of it stored)")

    def latency_ms(self, path: Path) -> float:
        """The predicted latency of the model at ``path`` (computed once per file content)."""
        data = Path(path).read_bytes()
        key = hashlib.sha256(data).hexdigest()
        if key not in self._cache:
            self._cache[key] = self._predict(Path(path))
        return self._cache[key]

    def _predict(self, path: Path) -> float:
        if self._predictor is not None:
            return float(self._predictor.predict(path).latency_ms)
        from latprof.space import read_tflite_ops

        ops = read_tflite_ops(path)
        macs = sum(op.macs() for op in ops)
        return 1e3 * macs / (MACS_PER_CYCLE * self._clock_hz) + OP_OVERHEAD_MS * len(ops)

    def run(self, path: Path, warmup_runs: int, num_runs: int) -> SimulatedRun:
        """Sleep for the whole benchmark and return its per-run times (microseconds)."""
        mean_us = 1e3 * self.latency_ms(path)
        times = [mean_us * self._random.lognormvariate(0.0, self.noise) for _ in range(warmup_runs + num_runs)]
        time.sleep((_INIT_US + sum(times)) / 1e6)
        return SimulatedRun(_INIT_US, tuple(times[:warmup_runs]), tuple(times[warmup_runs:]))


def _stored_predictor(device: str, db: str | None):
    from latprof.predictor import load_predictor
    from latprof.store import Store

    try:
        with Store(db, writable=False) as store:  # reading a predictor must not create or migrate a database
            return load_predictor(device, "mnasnet", store=store)
    except LatprofError:
        return None


def _fastest_core_hz(device: str) -> float:
    from latprof.devices import load_config

    khz = load_config(device).hardware.get("cpu_max_khz")
    if not khz:
        raise LatprofError(f"device config '{device}' has no [hardware] cpu_max_khz to simulate its speed; "
                           f"add it, or fit a predictor for it (`latprof build-lut --device {device}`, `latprof fit`)")
    return 1e3 * max(khz)
