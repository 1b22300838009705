"""A search's latencies measured on the farm: every candidate of a batch on a free phone, in parallel."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from latprof.devices import BenchmarkRequest
from latprof.farm._client import Farm
from latprof.space import SearchSpace
from latprof.store import Store

__all__ = ["FarmLatency"]


class FarmLatency:
    """A search's latency model measuring every candidate on the farm's phones of ``kind``, in parallel."""

    def __init__(self, farm: Farm, kind: str, request: BenchmarkRequest, *, space: SearchSpace,
                 store: Store | None = None, dtype: str = "float32",
                 notify: Callable[[str], None] = lambda _: None) -> None:
        self.farm, self.kind, self.request, self.space = farm, kind, request, space
        self.store, self.dtype, self.notify = store, dtype, notify

    def predict_many(self, archs: Sequence[Any]) -> np.ndarray:
        """Median latency (ms) of each architecture, measured on whichever phone is free."""
        from latprof.farm._agent import Job
        from latprof.space import write_tflite

        archs = list(archs)
        out = np.full(len(archs), np.nan)
        with tempfile.TemporaryDirectory(prefix="latprof-farm-") as tmp:
            def job(arch) -> Job:
                name = "arch-" + hashlib.sha256(self.space.format(arch).encode()).hexdigest()[:12] + ".tflite"
                path = write_tflite(arch, Path(tmp) / name, seed=0, space=self.space, dtype=self.dtype)
                return Job(((name, path.read_bytes()),), self.request)

            for index, result in self.farm.run(self.kind, map(job, archs), notify=self.notify, keep_failed=True):
                if result.status != "ok":  # NaN: the search stores a failed trial and goes on
                    self.notify(f"candidate {index} failed on the farm: {result.message}")
                    continue
                m = result.measurements[0]
                if self.store is not None:
                    self.store.add_measurement(m)
                out[index] = m.stats.headline_ms
        return out
