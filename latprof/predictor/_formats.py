"""Stored predictor formats: the current one, and what becomes of older ones (a registry, not exceptions)."""

from __future__ import annotations

from typing import Any, Callable

from latprof.errors import PredictorError
from latprof.predictor._opmodel import analytic_regression
from latprof.predictor._predictor import LatencyPredictor
from latprof.store import StoredPredictor

__all__ = ["FORMAT", "from_stored"]

FORMAT = "latprof.predictor/2"


def _space_calibrated_v1(row: StoredPredictor) -> dict[str, Any]:
    """A stored ``latprof calibrate --space`` fit of latprof <= stop 13: its per-key weights are device ms."""
    doc, report = row.document, row.report
    return {
        "format": FORMAT, "device": doc["device"], "space": doc["space"], "space_params": doc["params"],
        "prior": doc["prior"], "intercept_ms": doc["model"]["intercept_ms"],
        "keys": {k: [float(v), "calibrated"] for k, v in doc["weights"].items()},
        "ops": {"regression": analytic_regression().to_json(), "ratio": doc["fallback_per_analytic_ms"]},
        "band": {"rel": report.get("leave_one_out", {}).get("mape", 0.1)},
    }


def _refit(command: str) -> Callable[[StoredPredictor], dict[str, Any]]:
    def fail(row: StoredPredictor) -> dict[str, Any]:
        raise PredictorError(f"the stored predictor of {row.device} ({row.space}) is from an older latprof (format "
                             f"{row.format}); run `{command.format(device=row.device, space=row.space)}` again")
    return fail


_LOADERS: dict[str, Callable[[StoredPredictor], dict[str, Any]]] = {
    FORMAT: lambda row: row.document,
    "latprof-space-calibrated/1": _space_calibrated_v1,
    "latprof.predictor/1": _refit("latprof fit --device {device} --space {space}"),
    "latprof-calibrated/1": _refit("latprof calibrate --device {device} --from CSV|published"),
}


def from_stored(row: StoredPredictor, space: str) -> LatencyPredictor:
    """The predictor of a stored row, by its format; a whole-model one prices architectures of ``space``."""
    loader = _LOADERS.get(row.format)
    if loader is None:
        raise PredictorError(f"the stored predictor of {row.device} ({row.space}) has format {row.format!r}, which "
                             "this latprof does not know; upgrade latprof or fit it again")
    return LatencyPredictor(loader(row), space=space)
