"""How lookup-table micro-models and calibration models are measured.

* :class:`HostBatchRunner` (device ``local``): one child process
  (``latprof.benchmarking._host_worker --batch -``), pinned to the same core
  and driving the same LiteRT interpreter as ``latprof measure``, times model
  after model; process start-up (about a second) is paid once, not per entry.
  With ``realtime`` (the default) the child runs under ``SCHED_FIFO`` priority 1
  where the OS allows it, so other processes on a shared machine cannot
  time-slice it mid-inference (on a loaded 2-core host this cut the p90 of a
  0.5 ms model from ~4 ms to ~0.55 ms); the policy used is a stored setting.
  The speed probe (:mod:`latprof.speed`) is timed around every model: the
  worker waits (briefly) for the core to be at full speed first, and a model
  timed while the core was slowed down is timed again.
* :class:`DeviceRunner` (phones, or any other :class:`~latprof.devices.Device`):
  models go through :func:`latprof.measure.measure_many` in batches of
  ``DEVICE_BATCH`` -- pushed together, run with ``benchmark_model`` on the big
  cores by one shell call, device state read before and after each batch,
  waiting for a hot phone to cool (``wait_cool``), throttling kept as warnings.

Both report the settings that change a latency; they are stored with every row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from latprof.benchmarking.host import HostWorker, default_host_cpu
from latprof.benchmarking.record import LatencyStats, Measurement
from latprof.devices import BenchmarkRequest, Device
from latprof.speed import PROBE_NAME, write_probe

__all__ = ["Result", "HostBatchRunner", "DeviceRunner", "make_runner", "result_from_measurement", "DEVICE_BATCH"]

X = TypeVar("X")
DEVICE_BATCH = 16  # micro-models per push and shell call on a phone


@dataclass(frozen=True)
class Result:
    """Timings of one model, the settings they were taken with, and any warnings."""

    stats: LatencyStats
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None  # the device that measured it, where it is not the build's device


class HostBatchRunner:
    """Times .tflite files one after another in a single pinned child process.

    The probe is timed before and after each model; when either is more than
    ``probe_tolerance`` above the fastest probe time seen, the model is timed
    again (up to ``attempts`` times) and the attempt nearest full speed is kept.
    Waiting and timing again are rationed: at most ``wait_share`` of the time
    since the runner started goes to them, so on a host that stays busy a build
    still ends (its slow rows are flagged and rescaled by the probe instead).
    """

    def __init__(self, *, warmup_runs: int, num_runs: int, threads: int = 1, timeout_s: float = 600.0,
                 cpu: int | None = -1, method: str, realtime: bool = True, probe_dir: Path | None = None,
                 probe_tolerance: float = 0.15, probe_wait_s: float = 0.5, attempts: int = 3,
                 wait_share: float = 0.25, delegate: str = "xnnpack") -> None:
        self.cpu = default_host_cpu() if cpu == -1 else cpu
        self.probe_tolerance, self.probe_wait_s, self.attempts = probe_tolerance, probe_wait_s, attempts
        self.wait_share = wait_share
        self._started, self._waited = time.monotonic(), 0.0
        self.settings = {
            "method": method, "runtime": "ai-edge-litert", "runtime_version": metadata.version("ai-edge-litert"),
            "threads": threads, "warmup_runs": warmup_runs, "num_runs": num_runs, "pinned_cpu": self.cpu,
            "core_mask": None if self.cpu is None else format(1 << self.cpu, "x"),
            "delegate": delegate, "statistic": "median", "binary": None,
            "runner": "latprof host batch runner (one pinned child process, LiteRT Interpreter.invoke timed)",
            "probe": PROBE_NAME if probe_dir is not None else None,
            "probe_wait_s": probe_wait_s if probe_dir is not None else None,
            "probe_tolerance": probe_tolerance if probe_dir is not None else None,
            "probe_wait_share": wait_share if probe_dir is not None else None,
        }
        probe_args = () if probe_dir is None else (
            "--probe", str(write_probe(probe_dir)), "--probe-wait-s", str(probe_wait_s),
            "--probe-tolerance", str(probe_tolerance))
        self._worker = HostWorker(threads=threads, warmup_runs=warmup_runs, num_runs=num_runs, cpu=self.cpu,
                                  timeout_s=timeout_s, realtime=realtime,
                                  extra_args=("--delegate", delegate, *probe_args))
        self.settings["scheduling"] = self._worker.scheduling

    def _run(self, path: Path, wait_s: float) -> Result:
        record = self._worker.ask({"model": str(path), "probe_wait_s": wait_s})
        settings = dict(self.settings)
        if "probe_us" in record:
            settings["probe_ms"] = [round(v / 1e3, 5) for v in record["probe_us"]]
            settings["probe_fast_ms"] = round(record["probe_fast_us"] / 1e3, 5)
            settings["probe_waited_s"] = round(record["probe_wait_s"], 4)
        return Result(LatencyStats.from_samples(record["run_us"]), settings)

    def measure(self, path: Path) -> Result:
        """Time ``path``; again (up to ``attempts`` times) while the probe says the core was slowed down."""
        best: tuple[float, Result] | None = None
        for attempt in range(self.attempts):
            budget = self.wait_share * (time.monotonic() - self._started) - self._waited
            if attempt and budget <= 0:
                break
            start = time.monotonic()
            result = self._run(path, min(self.probe_wait_s, max(budget, 0.0)))
            self._waited += (time.monotonic() - start) if attempt else result.settings.get("probe_waited_s", 0.0)
            slow = _slowdown(result.settings)
            if best is None or slow < best[0]:
                best = (slow, result)
            if slow <= self.probe_tolerance:
                break
        slow, result = best
        if slow > self.probe_tolerance:
            result = Result(result.stats, result.settings,
                            [f"timed while the core ran {slow:.0%} slow (other work on the machine); "
                             "`latprof fit` rescales it by the probe"])
        return result

    def close(self) -> None:
        self._worker.close()

    def __enter__(self) -> "HostBatchRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _slowdown(settings: dict[str, Any]) -> float:
    """How much slower than its fastest the probe ran around a measurement (0 without a probe)."""
    probe, fast = settings.get("probe_ms"), settings.get("probe_fast_ms")
    if not probe or not fast:
        return 0.0
    return max(probe) / fast - 1.0


def result_from_measurement(m: Measurement, settings: dict[str, Any]) -> Result:
    """A table row's Result from a device measurement, ``settings`` (the build's) over the run's own."""
    merged = {**m.settings, **settings, "runtime": m.runtime, "runtime_version": m.runtime_version,
              "command": m.command, "statistic": "median" if m.stats.median_ms is not None else "mean"}
    merged.setdefault("binary", None)
    return Result(m.stats, merged, list(m.warnings), fingerprint=m.fingerprint)


class DeviceRunner:
    """Times models with :func:`latprof.measure.measure_many` on a device (state checks, cool-down).

    :meth:`measure_many` takes ``batch`` models at a time: pushed together and run by one shell
    call (one ``benchmark_model`` process each), the device state read before and after the batch.
    """

    def __init__(self, device: Device, request: BenchmarkRequest, *, method: str, wait_cool: bool = True,
                 notify: Callable[[str], None] = lambda _: None, batch: int = DEVICE_BATCH) -> None:
        self.device, self.request, self.wait_cool, self.notify, self.batch = device, request, wait_cool, notify, batch
        self.settings = {"method": method, "threads": request.threads, "delegate": request.delegate,
                         "warmup_runs": request.warmup_runs, "num_runs": request.num_runs}

    def measure_many(self, items: Sequence[X], write: Callable[[X, int], Path]) -> Iterator[tuple[X, Result]]:
        """``(item, Result)`` for each item, batch after batch (a batch is yielded whole once it has run)."""
        from latprof.measure import measure_many

        for start in range(0, len(items), self.batch):
            chunk = items[start:start + self.batch]
            paths = [write(item, start + i) for i, item in enumerate(chunk)]
            try:
                measured = measure_many(paths, self.device, self.request, rounds=1, probe=False,
                                        wait_cool=self.wait_cool, notify=self.notify)
            finally:
                for path in paths:
                    path.unlink(missing_ok=True)
            for item, m in zip(chunk, measured):
                yield item, result_from_measurement(m, self.settings)

    def close(self) -> None:
        """Nothing to release: the device belongs to the caller."""

    def __enter__(self) -> "DeviceRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_runner(device: Device, request: BenchmarkRequest, *, method: str, wait_cool: bool = True,
                realtime: bool = True, probe_dir: Path | None = None, dtype: str = "float32",
                notify: Callable[[str], None] = lambda _: None) -> HostBatchRunner | DeviceRunner:
    """The fast batch runner for the host (probing speed when ``probe_dir`` is given), the device's own
    ``lut_runner`` where it has one (a farm's phones), else DeviceRunner; ``dtype``, the data type of the
    models it will time, joins the settings stored with every row."""
    from latprof.devices.local import LocalDevice

    if hasattr(device, "lut_runner"):
        runner = device.lut_runner(request, method=method, notify=notify)
    elif isinstance(device, LocalDevice):
        runner = HostBatchRunner(warmup_runs=request.warmup_runs, num_runs=request.num_runs, threads=request.threads,
                                 timeout_s=request.timeout_s or 600.0, cpu=device.cpu, method=method,
                                 realtime=realtime, probe_dir=probe_dir, delegate=request.delegate)
    else:
        runner = DeviceRunner(device, request, method=method, wait_cool=wait_cool, notify=notify)
    runner.settings["dtype"] = dtype
    return runner
