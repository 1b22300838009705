"""`latprof calibrate`: a device's predictor from end-to-end measurements on it.

Rows come from a CSV file (``model,latency_ms`` plus optional
``depth_multiplier,resolution,device,runtime_version,source`` columns;
``latprof results --csv`` exports work too) or from the published Pixel tables shipped in
latprof (:data:`latprof.data.PUBLISHED`). Each row's model is costed on the reference
device (the host) by operator kind; :func:`fit_kind_ratios` maps those costs
to the device, with one latency factor per runtime version other than the one
predicted for. The result is stored as plain JSON in the ``predictors`` table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from latprof.calibrate._features import KINDS, ReferenceCost
from latprof.calibrate._fit import KindRatioModel, cross_validate_flops, cross_validate_kinds, fit_kind_ratios
from latprof.space import ModelSpec, model_spec, tflite_for
from latprof.calibrate._opcost import OpCostModel
from latprof.calibrate._reference import host_reference
from latprof import data
from latprof.errors import LatprofError, ParseError, PredictorError
from latprof.store import Store
from latprof.userfiles import latency_ms, read_csv

__all__ = ["CalibrationRow", "Calibration", "read_rows", "calibrate", "load_calibration", "PUBLISHED", "FORMAT"]

FORMAT = "latprof-calibrated/1"
CALIBRATED_SPACE = "*"  # a calibration predicts any model, not one space's
PUBLISHED = data.PUBLISHED / "published_pixel_latency.csv"


@dataclass(frozen=True)
class CalibrationRow:
    """One end-to-end measurement on the target device."""

    spec: ModelSpec
    latency_ms: float
    source: str
    runtime: str = ""  # runtime version the latency was measured with; rows of one version share a scale


def _published_device(name: str) -> str:
    return name.lower().replace(" ", "")  # "Pixel 1" -> "pixel1"


def read_rows(source: str | Path, device: str, notify: Callable[[str], None] = lambda _: None) -> list[CalibrationRow]:
    """Rows for ``device`` from a CSV file, or ``"published"`` for the shipped Pixel tables."""
    path = PUBLISHED if str(source) == "published" else Path(source)
    if not path.is_file():
        raise ParseError(f"measurements file not found: {path}; pass a CSV with model,latency_ms columns or `published`")
    columns, table = read_csv(path)
    if not table or not {"model", "latency_ms"} <= set(columns):
        raise ParseError(f"{path} needs at least the columns model,latency_ms (one row per measured model)")
    rows, skipped = [], []
    for number, raw in table:
        row_device = raw.get("device")
        if row_device and _published_device(row_device) != device and row_device != device:
            continue
        latency = latency_ms(raw["latency_ms"], path, number)
        try:
            multiplier = float(raw["depth_multiplier"]) if raw.get("depth_multiplier") else None
            resolution = int(float(raw["resolution"])) if raw.get("resolution") else None
            model = raw["model"]
            if model.endswith(".tflite") and not Path(model).is_absolute():
                model = str(path.parent / model) if (path.parent / model).exists() else model
            spec = model_spec(model, multiplier, resolution)
            rows.append(CalibrationRow(spec, latency, raw.get("source") or path.name,
                                       raw.get("runtime_version") or ""))
        except (LatprofError, ValueError) as exc:
            skipped.append(f"line {number} ({raw.get('model')}): {exc}")
    for reason in skipped:
        notify(f"skipped {reason}")
    if not rows:
        raise ParseError(f"{path} has no usable rows for device {device}; check the device column and model names")
    return rows


@dataclass
class Calibration:
    """A device's calibrated predictor and how well it did on its own rows, held out."""

    device: str
    reference: str
    model: KindRatioModel
    op_costs: OpCostModel
    sequence_factor: float  # reference end-to-end time / sum of its ops timed alone (median over rows)
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def predict_cost(self, cost: ReferenceCost) -> float:
        """Device latency (ms) of a model with the given reference cost."""
        return float(self.model.predict(cost.vector(), cost.gmacs())[0])

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "device": self.device, "reference": self.reference, "kinds": list(KINDS),
                "model": self.model.to_json(), "op_costs": self.op_costs.to_json(),
                "sequence_factor": self.sequence_factor, "rows": self.rows, "report": self.report}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Calibration":
        if data.get("format") != FORMAT:
            raise PredictorError(f"stored calibration has format {data.get('format')}, expected {FORMAT}; "
                                 "run `latprof calibrate` again")
        try:
            return cls(device=data["device"], reference=data["reference"],
                       model=KindRatioModel.from_json(data["model"]), op_costs=OpCostModel.from_json(data["op_costs"]),
                       sequence_factor=float(data["sequence_factor"]), rows=data["rows"], report=data["report"])
        except KeyError as exc:
            raise PredictorError(f"the stored calibration of {data.get('device')} lacks {exc}; "
                                 "run `latprof calibrate` again") from None


def _errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    rel = pred / y - 1
    return {"mape": float(np.mean(np.abs(rel))), "within_10": float(np.mean(np.abs(rel) <= 0.10)),
            "within_15": float(np.mean(np.abs(rel) <= 0.15)), "max_abs_rel": float(np.max(np.abs(rel)))}


def calibrate(device: str, rows: list[CalibrationRow], store: Store, *, reference: str = "local",
              runtime: str | None = None, notify: Callable[[str], None] = lambda _: None) -> Calibration:
    """Fit ``device``'s predictor from ``rows``, report held-out errors, and store it.

    Predictions are for the runtime version ``runtime`` (default: the one most rows were measured with).
    """
    from latprof.space import read_tflite_ops

    runtimes = [r.runtime for r in rows]
    if runtime is not None and runtime not in runtimes:
        raise PredictorError(f"no calibration row was measured with runtime {runtime!r}; "
                             f"pass one of: {', '.join(repr(r) for r in dict.fromkeys(runtimes))}")
    costs, macs, samples, iso_ratio = [], [], [], []
    for row in rows:
        path = tflite_for(row.spec)
        cost, model_samples = host_reference(path, store, device=reference, notify=notify)
        costs.append(cost)
        samples += model_samples
        iso_ratio.append(cost.total_ms / sum(s[-1] for s in model_samples))
        macs.append(sum(op.macs() for op in read_tflite_ops(path)))
    op_costs = OpCostModel.fit(samples)
    x = np.array([c.vector() for c in costs])
    g = np.array([c.gmacs() for c in costs])
    y = np.array([r.latency_ms for r in rows])
    model = fit_kind_ratios(x, y, gmacs=g, runtimes=runtimes, runtime=runtime)
    families = [r.spec.family for r in rows]
    loo = cross_validate_kinds(x, y, model, g, runtimes=runtimes)
    report: dict[str, Any] = {"rows": len(rows), "strength": model.strength, "gmac_strength": model.gmac_strength,
                              "runtime": model.runtime, "runtime_factors": model.runtime_factors,
                              "leave_one_out": _errors(loo, y)}
    flops = np.array(macs, float)
    report["flops_leave_one_out"] = _errors(cross_validate_flops(flops, y, None, runtimes, model.runtime), y)
    lofo = None
    if len(set(families)) > 1:
        lofo = cross_validate_kinds(x, y, model, g, families, runtimes, nested=True)
        report["leave_one_family_out"] = _errors(lofo, y)
        flops_lofo = cross_validate_flops(flops, y, families, runtimes)
        report["flops_leave_one_family_out"] = _errors(flops_lofo, y)
        # a held-out row whose runtime no other family was measured with cannot be put on its runtime's scale
        scaled = np.array([any(o.runtime == r.runtime and o.spec.family != r.spec.family for o in rows) for r in rows])
        if 0 < scaled.sum() < len(rows):
            report["leave_one_family_out_scaled"] = {"rows": int(scaled.sum()), **_errors(lofo[scaled], y[scaled])}
            report["flops_leave_one_family_out_scaled"] = {"rows": int(scaled.sum()),
                                                           **_errors(flops_lofo[scaled], y[scaled])}
    table = []
    for i, (row, cost) in enumerate(zip(rows, costs)):
        table.append({
            "model": row.spec.name, "family": row.spec.family, "source": row.source, "runtime": row.runtime,
            "measured_ms": row.latency_ms, "reference_ms": cost.total_ms, "macs": macs[i], "loo_ms": float(loo[i]),
            "lofo_ms": float(lofo[i]) if lofo is not None else None,
        })
    result = Calibration(device=device, reference=reference, model=model, op_costs=op_costs,
                         sequence_factor=float(np.median(iso_ratio)), rows=table, report=report)
    with store.connection:
        store.connection.execute(
            "INSERT INTO predictors (device, space, format, coefficients, report, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (device, CALIBRATED_SPACE, FORMAT, json.dumps(result.to_json()), json.dumps(report),
             datetime.now(timezone.utc).isoformat(timespec="seconds")),
        )
    return result


def load_calibration(device: str, store: Store) -> Calibration | None:
    """The latest calibration of ``device``, or None."""
    row = store.connection.execute(
        "SELECT coefficients FROM predictors WHERE device = ? AND format = ? ORDER BY id DESC LIMIT 1",
        (device, FORMAT),
    ).fetchone()
    return Calibration.from_json(json.loads(row[0])) if row else None
