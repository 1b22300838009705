"""Files a finished search leaves in its output folder, and measuring its winners on the device."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latprof.search._latency import LatencyModel
from latprof.search._runner import SearchResult
from latprof.search._trials import Trial, write_csv
from latprof.space import SearchSpace, export_tflite, get_space, quantize_for

__all__ = ["VERIFY_FIELDS", "verify", "write_outputs", "write_verify"]

VERIFY_FIELDS = ("idx", "predicted_ms", "band_low_ms", "band_high_ms", "measured_ms", "error_pct", "target_ms",
                 "measured_vs_target_pct", "arch")


def write_outputs(result: SearchResult, out_dir: str | Path, *, export: bool = True) -> dict[str, Path]:
    """``pareto.csv``, ``top.csv``, ``best_arch.txt`` and (``export``) ``best.tflite``; returns them by name.

    ``trials.csv`` is written by the search itself, as trials arrive.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trials": out / "trials.csv", "pareto": out / "pareto.csv", "top": out / "top.csv"}
    space = result.config.make_space()
    write_csv(paths["pareto"], result.pareto(), space)
    write_csv(paths["top"], result.top(), space)
    best = result.chosen
    if best is not None:
        paths["best_arch"] = out / "best_arch.txt"
        unchanged = paths["best_arch"].exists() and paths["best_arch"].read_text().strip() == best.arch
        paths["best_arch"].write_text(best.arch + "\n")
        if export:
            tflite = out / "best.tflite"
            # A resumed search whose best did not change keeps its export (written whole or not at all).
            paths["best_tflite"] = tflite if unchanged and tflite.exists() else export_tflite(
                space.parse(best.arch), tflite, space, quantize=quantize_for(result.config.dtype))
    return paths


def verify(trials: Sequence[Trial], measured: LatencyModel, target_ms: float,
           predictor: Any | None = None, space: SearchSpace | None = None) -> list[dict[str, Any]]:
    """Measure each trial's architecture (``measured``, e.g. MeasuredLatency) next to its predicted latency.

    With a ``predictor`` that has ``predict(arch)`` (latprof.predictor), its band is included.
    """
    space = space or get_space("mnasnet")
    archs = [space.parse(t.arch) for t in trials]
    values = measured.predict_many(archs)
    rows = []
    for trial, arch, ms in zip(trials, archs, values):
        band = predictor.predict(arch) if predictor is not None and hasattr(predictor, "predict") else None
        rows.append({
            "idx": trial.idx, "predicted_ms": trial.latency_ms,
            "band_low_ms": band.low_ms if band is not None else None,
            "band_high_ms": band.high_ms if band is not None else None,
            "measured_ms": float(ms), "error_pct": 100.0 * (trial.latency_ms - ms) / ms, "target_ms": target_ms,
            "measured_vs_target_pct": 100.0 * (ms - target_ms) / target_ms, "arch": trial.arch,
        })
    return rows


def write_verify(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """The rows of :func:`verify` as CSV at ``path``."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, VERIFY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path
