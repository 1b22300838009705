"""Reference-device costs of models: measured once on the host, then read from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from latprof.benchmarking.record import Measurement, inspect_model
from latprof.calibrate._features import ReferenceCost, reference_cost
from latprof.calibrate._opcost import op_features
from latprof.devices import BenchmarkRequest, open_device
from latprof.errors import LatprofError
from latprof.measure import measure
from latprof.store import Store

__all__ = ["host_reference", "REFERENCE_RUNS"]

REFERENCE_RUNS = 30


def _is_noisy(m: Measurement) -> bool:
    return any(w.startswith("noisy runs") for w in m.warnings)


def _stored_profile(store: Store, sha256: str, device: str) -> Measurement | None:
    for m in reversed(store.measurements(device=device)):
        if m.model_sha256 == sha256 and m.op_profile and m.settings.get("threads") == 1 and not _is_noisy(m):
            return m
    return None


def host_reference(path: Path, store: Store, *, device: str = "local",
                   notify: Callable[[str], None] = lambda _: None) -> tuple[ReferenceCost, list[tuple]]:
    """The model's cost on the reference device by operator kind, and its ``(kind, GMACs, MB, ms)`` op samples.

    Measures the model (end to end and per operator) and stores that, unless the store has a
    measurement of it that was not flagged as noisy.
    """
    from latprof.space import read_tflite_ops

    info = inspect_model(path)
    stored = _stored_profile(store, info.sha256, device)
    if stored is None:
        notify(f"measuring {info.name} on {device} (end to end and per operator) for the reference costs")
        with open_device(device) as dev:
            request = BenchmarkRequest(threads=1, warmup_runs=5, num_runs=REFERENCE_RUNS, op_profile=True,
                                       timeout_s=dev.config.benchmark.timeout_s)
            stored = measure(path, dev, request, store=store)
    ops = read_tflite_ops(path)
    op_ms = [row["avg_ms"] for row in stored.op_profile]
    if len(op_ms) != len(ops):
        raise LatprofError(f"the stored op profile of {info.name} does not match its operators; "
                           f"measure it again with `latprof measure {path} --op-profile`")
    samples = [(*op_features(op), ms) for op, ms in zip(ops, op_ms)]
    # Interference from other programs only ever adds time, so the 5th percentile is the
    # most repeatable figure for a reference cost on a shared machine.
    total = stored.stats.p5_ms if stored.stats.p5_ms is not None else stored.stats.headline_ms
    return reference_cost(ops, op_ms, total), samples
