"""What a fit report says: leave-one-out and held-out errors of latprof next to the FLOPs and op-kind-count
baselines fitted on the same rows, and leave-one-family-out for whole models."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from latprof.predictor import baselines
from latprof.predictor._evidence import Observation
from latprof.predictor._metrics import error_summary
from latprof.predictor._model import MIN_ROWS, Row, UnitModel, fit_units
from latprof.predictor._priors import Prior
from latprof.space import FAMILIES, SearchSpace

__all__ = ["fit_report"]


def _predict_rows(document: dict[str, Any], rows: Sequence[Row]) -> np.ndarray:
    """Predictions of rows whose units are all in the document, in each row's runtime when it was fitted."""
    keys, b = document["keys"], document["intercept_ms"]
    factors = document["runtime_factors"]
    return np.array([(b + sum(keys[u.key][0] for u in r.units)) * factors.get(r.runtime, 1.0) for r in rows])


def _macs(rows: Sequence[Row]) -> np.ndarray:
    return np.array([sum(op.macs for u in r.units for op in u.operators) for r in rows], float)


def _family_counts(rows: Sequence[Row]) -> np.ndarray:
    counts = np.zeros((len(rows), len(FAMILIES)))
    per_unit: dict[str, np.ndarray] = {}
    for i, r in enumerate(rows):
        for u in r.units:
            if u.key not in per_unit:
                per_unit[u.key] = baselines.family_counts(u.operators)
            counts[i] += per_unit[u.key]
    return counts


class _BaselineData:
    """What the baselines see of rows: multiply-adds, op-family counts, latencies, runtimes."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.macs, self.counts = _macs(rows), _family_counts(rows)
        self.y, self.runtimes = np.array([r.latency_ms for r in rows]), [r.runtime for r in rows]

    def predict(self, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
        """FLOPs and op-kind-count predictions of the ``test`` rows, fitted on the ``train`` rows."""
        runtimes = self.runtimes
        flops = baselines.fit_flops(self.macs[train], self.y[train], [runtimes[i] for i in train])
        return {"flops": flops.predict(self.macs[test], [runtimes[i] for i in test]),
                "op_counts": baselines.fit_op_counts(self.counts[train], self.y[train]).predict(self.counts[test])}


def _cv_baselines(data: _BaselineData, rows: np.ndarray, max_folds: int = 100) -> dict[str, np.ndarray]:
    """Held-out baseline predictions of ``rows`` (indices into ``data``) from the other ``rows``: leave-one-out,
    or ``max_folds`` folds when there are more rows."""
    folds = np.arange(len(rows)) % max_folds if len(rows) > max_folds else np.arange(len(rows))
    out = {"flops": np.zeros(len(rows)), "op_counts": np.zeros(len(rows))}
    for fold in np.unique(folds):
        test = folds == fold
        for name, pred in data.predict(rows[~test], rows[test]).items():
            out[name][test] = pred
    return out


def fit_report(device: str, space: SearchSpace | None, prior: Prior, model: UnitModel, rows: list[Row],
            observations: Sequence[Observation], chosen: list[int], loo: np.ndarray, kept: np.ndarray,
            document: dict[str, Any]) -> dict[str, Any]:
    fitted, data, chosen_rows = [rows[i] for i in chosen], _BaselineData(rows), np.array(chosen, dtype=int)
    y = data.y[chosen_rows]
    report: dict[str, Any] = {
        "device": device, "space": document["space"], "rows": len(rows), "fitted_on": len(chosen),
        "prior": prior.name, "model": model.to_json(), "band": document["band"],
        "leave_one_out": error_summary(loo[kept], y[kept]),
        "outliers": [observations[chosen[i]].name or str(chosen[i]) for i in np.flatnonzero(~kept)
                     if rows[chosen[i]].units],
        "fitted_rows": [_name(observations[i], space) for i in chosen],
    }
    if len(fitted) >= 3:
        report["baselines_leave_one_out"] = {name: error_summary(pred, y)
                                             for name, pred in _cv_baselines(data, chosen_rows).items()}
    if getattr(prior, "own", False):
        report["table_entries"] = len(prior.table)
        report["regression_leave_width_out"] = prior.width_cv
    held = np.setdiff1d(np.arange(len(rows)), chosen)
    if len(held):
        y_held = np.array([rows[i].latency_ms for i in held])
        report["held_out"] = error_summary(_predict_rows(document, [rows[i] for i in held]), y_held)
        report["baselines_held_out"] = {name: error_summary(pred, y_held)
                                        for name, pred in data.predict(chosen_rows, held).items()}
    families = [observations[i].family for i in chosen]
    if space is None and len(set(families)) > 1:
        report.update(_leave_one_family_out(fitted, families, prior, data, chosen_rows))
    return report


def _name(obs: Observation, space: SearchSpace | None) -> str:
    if obs.name:
        return obs.name
    return (obs.space or space).format(obs.model) if (obs.space or space) is not None else str(obs.model)


def _leave_one_family_out(rows: list[Row], families: list[str], prior: Prior, data: _BaselineData,
                          index: np.ndarray) -> dict:
    """Each family predicted by a fit on the others (penalties and target runtime chosen anew), next to FLOPs
    (``data`` holds the baselines' view of ``rows`` at ``index``).

    A family whose complement is too small to fit is not predicted; ``scaled``: only the rows whose
    runtime some other family was measured with (others cannot be put on their runtime's scale)."""
    y = np.array([r.latency_ms for r in rows])
    pred, flops = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for family in dict.fromkeys(families):
        test = np.array([f == family for f in families])
        if (~test).sum() < MIN_ROWS:
            continue
        fold, _, _ = fit_units([r for r, t in zip(rows, test) if not t], prior)
        pred[test] = fold.predict([r for r, t in zip(rows, test) if t], prior)
        flops[test] = data.predict(index[~test], index[test])["flops"]
    done = np.isfinite(pred)
    scaled = done & np.array([any(o.runtime == r.runtime and g != f for o, g in zip(rows, families))
                              for r, f in zip(rows, families)])
    out = {"leave_one_family_out": error_summary(pred[done], y[done]),
           "flops_leave_one_family_out": error_summary(flops[done], y[done])}
    if 0 < scaled.sum() < done.sum():
        out["leave_one_family_out_scaled"] = {"rows": int(scaled.sum()), **error_summary(pred[scaled], y[scaled])}
        out["flops_leave_one_family_out_scaled"] = {"rows": int(scaled.sum()),
                                                    **error_summary(flops[scaled], y[scaled])}
    out["lofo_ms"] = [None if not np.isfinite(v) else float(v) for v in pred]
    return out
