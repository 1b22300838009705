"""Where a search gets latencies: anything with ``predict_many``, e.g. the predictor, or real measurement."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from latprof.space import Architecture, SearchSpace, export_tflite, get_space, quantize_for

if TYPE_CHECKING:
    from latprof.devices import BenchmarkRequest, Device
    from latprof.store import Store

__all__ = ["LatencyModel", "MeasuredLatency"]


@runtime_checkable
class LatencyModel(Protocol):
    """Latency in milliseconds of each architecture (``latprof.predictor.LatencyPredictor`` is one)."""

    def predict_many(self, archs: Sequence[Architecture]) -> np.ndarray: ...


class MeasuredLatency:
    """Measures each architecture on a device, as the paper did: export to .tflite, benchmark, store.

    ``device`` and ``request`` come from :func:`latprof.devices.open_device` and
    :func:`latprof.measure.build_request`; each measurement goes to ``store``.
    """

    def __init__(self, device: Device, request: BenchmarkRequest, *, store: Store | None = None,
                 workdir: str | Path | None = None, space: SearchSpace | None = None, dtype: str = "float32") -> None:
        self.device, self.request, self.store, self.dtype = device, request, store, dtype
        self.space = space or get_space("mnasnet")
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="latprof-search-"))

    def measure(self, arch: Architecture) -> float:
        """Median latency of ``arch`` on the device, in ms (the .tflite is deleted afterwards)."""
        from latprof.measure import measure

        name = "arch-" + hashlib.sha256(self.space.format(arch).encode()).hexdigest()[:12] + ".tflite"
        path = export_tflite(arch, self.workdir / name, self.space, quantize=quantize_for(self.dtype))
        try:
            return float(measure(path, self.device, self.request, store=self.store).stats.headline_ms)
        finally:
            path.unlink(missing_ok=True)

    def predict_many(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.array([self.measure(a) for a in archs], dtype=float)
