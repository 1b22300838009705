"""Lookup tables measured through the farm.

:class:`FarmDevice` stands for every phone of one kind in the farm as
:func:`latprof.lut.build_lut` sees a device: its runner sends batches of
micro-models (up to ``DEVICE_BATCH``, fewer when that keeps every phone busy) to
free phones, the build stores each entry as its batch arrives (with the
fingerprint of the phone that measured it), and a rerun resumes as any build does.

Before the table is shared out, the first entry is measured on every phone:
a phone whose time is more than ``tolerance`` off its peers' (the median, or
with two phones the quicker one: interference only adds time) is flagged in
``farm status`` and gets no entry of the build. Every result's latency-changing
settings (binary, runtime version, core mask, ...) must equal the first
result's, or its phone is flagged too and the entry measured again elsewhere.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from latprof.devices import BenchmarkRequest, DeviceConfig
from latprof.lut import DEVICE_BATCH, SETTING_KEYS, result_from_measurement
from latprof.farm._client import Farm

__all__ = ["FarmDevice", "FarmRunner", "DEFAULT_TOLERANCE"]

X = TypeVar("X")
DEFAULT_TOLERANCE = 0.15  # relative disagreement of one layer between two phones of one model


class FarmDevice:
    """The phones of ``kind`` in ``farm``, as one device for :func:`latprof.lut.build_lut`.

    Its ``config`` (benchmark defaults, thermal limits) and ``delegates`` (those every phone runs) are the
    phones' own, so :func:`latprof.measure.build_request` takes it like any device.
    """

    def __init__(self, farm: Farm, kind: str, *, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.farm, self.name, self.tolerance = farm, kind, tolerance
        self.config: DeviceConfig = farm.device_config(kind)
        known = [r["delegates"] for r in farm.phones(kind).values() if r.get("delegates")]
        self.delegates = tuple(d for d in (known[0] if known else ()) if all(d in k for k in known))

    def fingerprint(self) -> dict[str, Any]:
        return {"farm": self.name, "phones": sorted(self.farm.phones(self.name))}

    def lut_runner(self, request: BenchmarkRequest, *, method: str,
                   notify: Callable[[str], None] = lambda _: None) -> "FarmRunner":
        """The runner :func:`latprof.lut.build_lut` measures with (instead of one device's)."""
        return FarmRunner(self, request, method=method, notify=notify)

    def close(self) -> None:
        """Nothing to release: the phones belong to their agents."""

    def __enter__(self) -> "FarmDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FarmRunner:
    """Measures many models across the phones of a :class:`FarmDevice`, results in order of arrival."""

    def __init__(self, device: FarmDevice, request: BenchmarkRequest, *, method: str,
                 notify: Callable[[str], None] = lambda _: None) -> None:
        self.device, self.request, self.notify = device, request, notify
        self.settings = {"method": method, "threads": request.threads, "delegate": request.delegate,
                         "warmup_runs": request.warmup_runs, "num_runs": request.num_runs}
        self._keys = SETTING_KEYS
        self._reference: dict[str, Any] | None = None

    def measure_many(self, items: Sequence[X], write: Callable[[X, int], Path]) -> Iterator[tuple[X, Any]]:
        """``(item, Result)`` for every item, a batch at a time as each arrives; each item measured (stored) once."""
        from latprof.farm._agent import Job

        farm, kind = self.device.farm, self.device.name
        first = self._compare_phones(Job(self._models(write, items[:1], 0), self.request)) if items else None
        start = 0 if first is None else 1
        if first is not None:
            yield items[0], first
        serials = [s for s, row in farm.phones(kind).items() if not row.get("flagged")]
        size = max(1, min(DEVICE_BATCH, (len(items) - start) // (2 * max(len(serials), 1))))  # every phone busy
        starts = range(start, len(items), size)
        jobs = (Job(self._models(write, items[i:i + size], i), self.request) for i in starts)
        for index, result in farm.run(kind, jobs, check=self._check, only=serials, notify=self.notify):
            for item, m in zip(items[starts[index]:starts[index] + size], result.measurements):
                yield item, self._result(m)

    @staticmethod
    def _models(write: Callable[[X, int], Path], items: Sequence[X], start: int) -> tuple[tuple[str, bytes], ...]:
        models = []
        for i, item in enumerate(items, start=start):
            path = write(item, i)
            models.append((path.name, path.read_bytes()))
            path.unlink(missing_ok=True)
        return tuple(models)

    def _compare_phones(self, job) -> Any:
        """Measure ``job`` (one model) on every free phone at once; flag those that disagree; the result kept."""
        farm = self.device.farm
        results = farm.run_on_each(self.device.name, job, check=self._check)
        if not results:
            return None
        times = {s: r.measurements[0].stats.headline_ms for s, r in results.items()}
        reference = statistics.median(times.values()) if len(times) > 2 else min(times.values())
        for serial, ms in times.items():
            off = ms / reference - 1.0
            reason = None
            if abs(off) > self.device.tolerance:
                reason = (f"measured {ms:.3f} ms where its peers measured {reference:.3f} ms ({off:+.0%}); "
                          "its entries are not used (check its load and temperature)")
                self.notify(f"{serial} {reason}")
            farm.flag(serial, reason)
        keep = min(times, key=lambda s: abs(times[s] - reference))
        return self._result(results[keep].measurements[0])

    def _check(self, result) -> str | None:
        """A reason to reject the phone when its settings differ from the first result's."""
        settings = self._result(result.measurements[0]).settings
        if self._reference is None:
            self._reference = settings
            return None
        diff = [f"{k}={settings.get(k)!r} (others {self._reference.get(k)!r})" for k in self._keys
                if settings.get(k) != self._reference.get(k)]
        return f"measured with other settings: {', '.join(diff)}" if diff else None

    def _result(self, measurement):
        return result_from_measurement(measurement, self.settings)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "FarmRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

