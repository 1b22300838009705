"""Fitting a device's predictor from its table and calibration set, and storing it as plain JSON.

Steps (:func:`fit_predictor`):

1. rescale every stored row to one reference speed with the probe timed
   around it (host only; ``latency * (probe_ref / probe) ** beta``, ``beta``
   fitted on the table);
2. fit the operator cost model and sibling correction on the table, and
   cross-validate them (random 5-fold, and leave-one-width-out: every entry
   with a given output width held out at once, i.e. "channel counts the table
   lacks");
3. fit the end-to-end correction on the calibration architectures and
   cross-validate it (k-fold), next to two baselines fitted on the same folds:
   a FLOPs-linear model and the plain table sum; a learning curve says how many
   calibration architectures the correction needs;
4. store coefficients and report as JSON rows in the ``predictors`` table.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from latprof.errors import LookupTableError, PredictorError
from latprof.lut import _tables as T
from latprof.predict._correction import Correction, fit_correction, unit_features
from latprof.predict._regression import CostModel, Siblings, design_matrix, fit_cost_model, parse_layer_key
from latprof.space import LayerConfig, SearchSpace, get_space
from latprof.speed import SpeedReference, probe_factor, probe_identity, register_reference
from latprof.store import Store

__all__ = ["FORMAT", "fit_predictor", "save_predictor", "load_model", "normalized_table", "errors_summary",
           "predictor_speed"]

FORMAT = "latprof.predictor/1"
_REF_PERCENTILE = 10
_MIN_CALIBRATION = 4  # the correction needs 3 to fit, and cross-validation one more to hold out


def errors_summary(pred: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Within-5%/10%, MAPE, RMSE and Kendall's tau of predictions against measurements."""
    from scipy.stats import kendalltau

    rel = pred / measured - 1
    tau = kendalltau(pred, measured).statistic if len(pred) > 1 else float("nan")
    return {"n": len(pred), "within_5": float(np.mean(np.abs(rel) <= 0.05)),
            "within_10": float(np.mean(np.abs(rel) <= 0.10)), "mape": float(np.mean(np.abs(rel))),
            "rmse_ms": float(np.sqrt(np.mean((pred - measured) ** 2))), "kendall_tau": float(tau),
            "max_abs_rel": float(np.max(np.abs(rel)))}


def normalized_table(entries: list[T.LutEntry], ref: float | None, beta: float) -> dict[str, float]:
    return {e.layer_key: e.median_ms * probe_factor(e.settings.get("probe_ms"), ref, beta) for e in entries}


def _fit_beta(X: np.ndarray, ms: np.ndarray, probes: np.ndarray, ref: float | None) -> float:
    """How latency scales with the probe time, from the table's residuals against the cost model."""
    ok = np.isfinite(probes)
    if ref is None or ok.sum() < 20 or np.ptp(np.log(probes[ok])) < 0.05:
        return 1.0
    resid = np.log(ms / np.maximum(X @ fit_cost_model(X, ms).coef, 1e-9))
    x = np.log(probes[ok] / ref)
    slope = np.polyfit(x, resid[ok], 1)[0]
    return float(np.clip(slope, 0.0, 1.5))


def _regression_cv(layers: list[LayerConfig], X: np.ndarray, ms: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    raw, corrected = np.zeros(len(ms)), np.zeros(len(ms))
    for g in np.unique(groups):
        test = groups == g
        train_layers = [layer for layer, keep in zip(layers, ~test) if keep]
        model = fit_cost_model(X[~test], ms[~test])
        siblings = Siblings.build(train_layers, ms[~test], X[~test] @ model.coef)
        raw[test] = X[test] @ model.coef
        for i in np.flatnonzero(test):
            corrected[i] = raw[i] * math.exp(siblings.log_correction(layers[i])[0])
    return {"cost_model_only": errors_summary(raw, ms), "with_siblings": errors_summary(corrected, ms),
            "abs_rel_p95": float(np.percentile(np.abs(corrected / ms - 1), 95))}


def _units(space: SearchSpace, arch_string: str, table: dict[str, float], model: CostModel, siblings: Siblings):
    units, macs = [], 0
    for layer in space.layers(space.parse(arch_string)):
        key = layer.layer_key()
        iso = table.get(key)
        if iso is None:
            iso = model.layer_ms(layer) * math.exp(siblings.log_correction(layer)[0])
        units.append((layer.op, iso))
        macs += layer.macs()
    return units, macs


def _correction_cv(rows: np.ndarray, macs: np.ndarray, y: np.ndarray, folds: int, seed: int = 0):
    """k-fold predictions of the correction and of the FLOPs-linear baseline."""
    k = max(2, min(folds, len(y)))
    assign = np.random.default_rng(seed).permutation(len(y)) % k
    pred, flops = np.zeros(len(y)), np.zeros(len(y))
    for f in range(k):
        test = assign == f
        corr = fit_correction(rows[~test], y[~test])
        pred[test] = [corr.intercept_ms + sum(_unit_terms(corr, r)) for r in rows[test]]
        a, b = np.polyfit(macs[~test], y[~test], 1)
        flops[test] = a * macs[test] + b
    return pred, flops


def _unit_terms(corr: Correction, row: np.ndarray) -> list[float]:
    kinds = ("cn", "ds", "ir", "fc")
    return [corr.scale[k] * row[1 + i] for i, k in enumerate(kinds)] + [corr.per_layer_ms * row[-1]]


def fit_predictor(store: Store, device: str = "local", space: str = "mnasnet", *, folds: int = 10,
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit a device's predictor; returns ``(model, report)`` (both plain JSON-able dicts), not yet stored."""
    conn = store.connection
    entries = T.load_entries(conn, device, space)
    if not entries:
        raise LookupTableError(f"no lookup table for device {device} (space {space}); "
                               f"run `latprof build-lut --device {device}`")
    calibration = T.load_calibration(conn, device, space)
    if len(calibration) < _MIN_CALIBRATION:
        raise PredictorError(f"device {device} (space {space}) has {len(calibration)} calibration architecture(s), "
                             f"at least {_MIN_CALIBRATION} are needed (60 recommended); run `latprof build-lut "
                             f"--device {device} --calibration 60`")
    probes = np.array([np.mean(e.settings["probe_ms"]) if e.settings.get("probe_ms") else np.nan
                       for e in entries + calibration])  # type: ignore[operator]
    ref = float(np.nanpercentile(probes, _REF_PERCENTILE)) if np.isfinite(probes).any() else None
    layers = [parse_layer_key(e.layer_key) for e in entries]
    X = design_matrix(layers)
    beta = _fit_beta(X, np.array([e.median_ms for e in entries]), probes[:len(entries)], ref)
    table = normalized_table(entries, ref, beta)
    ms = np.array([table[e.layer_key] for e in entries])
    model = fit_cost_model(X, ms)
    siblings = Siblings.build(layers, ms, X @ model.coef)

    rng = np.random.default_rng(0)
    random_cv = _regression_cv(layers, X, ms, rng.permutation(len(ms)) % 5)
    width_cv = _regression_cv(layers, X, ms, np.array([layer.out_channels for layer in layers]))

    unit_rows, macs, y = [], [], []
    for c in calibration:
        units, m = _units(get_space(space, **c.params), c.arch, table, model, siblings)
        unit_rows.append(unit_features(units))
        macs.append(m)
        y.append(c.median_ms * probe_factor(c.settings.get("probe_ms"), ref, beta))
    rows, macs_a, y_a = np.array(unit_rows), np.array(macs, dtype=float), np.array(y)
    correction = fit_correction(rows, y_a)
    cv_pred, cv_flops = _correction_cv(rows, macs_a, y_a, folds)
    plain = rows[:, 1:-1].sum(axis=1)
    curve = {}
    for n in (10, 20, 40, 60, 80):
        if n < len(y_a):
            sub = np.random.default_rng(1).permutation(len(y_a))
            train, test = sub[:n], sub[n:]
            corr = fit_correction(rows[train], y_a[train])
            pred = np.array([corr.intercept_ms + sum(_unit_terms(corr, r)) for r in rows[test]])
            curve[str(n)] = errors_summary(pred, y_a[test])
    band = float(np.percentile(np.abs(cv_pred / y_a - 1), 95))
    model_json = {
        "format": FORMAT, "device": device, "space": space, "created_at": T.now(),
        "probe_ref_ms": ref, "probe_beta": beta, "probe_identity": probe_identity(entries[0].settings),
        "cost_model": model.to_json(), "correction": correction.to_json(),
        "band": {"rel": band, "regression_rel": width_cv["abs_rel_p95"]},
        "variants": T.finished_builds(conn, device, space),
        "measured_with": T.table_identity(conn, device, space),  # threads and delegate it predicts for
        "table_entries": len(entries), "calibration_archs": len(calibration),
    }
    report = {
        "device": device, "space": space, "table_entries": len(entries), "calibration_archs": len(calibration),
        "probe_ref_ms": ref, "probe_beta": beta,
        "regression_cv_random_5fold": random_cv, "regression_cv_leave_width_out": width_cv,
        "end_to_end_cv": {"latprof": errors_summary(cv_pred, y_a), "flops_linear": errors_summary(cv_flops, y_a),
                          "plain_table_sum": errors_summary(plain, y_a), "folds": max(2, min(folds, len(y_a)))},
        "calibration_learning_curve": curve,
        "correction": correction.to_json(), "band_rel": band,
    }
    return model_json, report


def save_predictor(store: Store, model: dict[str, Any], report: dict[str, Any]) -> int:
    """Store a fitted predictor (JSON coefficients and report); returns its row id."""
    with store.connection as conn:
        cur = conn.execute(
            "INSERT INTO predictors (device, space, format, coefficients, report, created_at) VALUES (?,?,?,?,?,?)",
            (model["device"], model["space"], model["format"], json.dumps(model), json.dumps(report),
             model["created_at"]),
        )
    speed = predictor_speed(model)
    if speed is not None:
        register_reference(store, model["device"], model["space"], model["probe_identity"], speed)
    return int(cur.lastrowid)


def predictor_speed(model: dict[str, Any]) -> SpeedReference | None:
    """The reference speed a fitted predictor predicts for (None when its table was built without the probe)."""
    if model.get("probe_ref_ms") is None:
        return None
    return SpeedReference(model["probe_ref_ms"], model["probe_beta"],
                          f"the {model['space']} predictor fitted {model['created_at']}: 10th-percentile probe time "
                          f"of its table, exponent {model['probe_beta']:.2f}")


def load_model(store: Store, device: str, space: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The latest stored predictor of a device: ``(model, report)``; LatprofError when there is none."""
    conn = store.connection
    row = conn.execute("SELECT format, coefficients, report FROM predictors WHERE device = ? AND space = ? "
                       "ORDER BY id DESC LIMIT 1", (device, space)).fetchone()
    if row is None:
        T.load_table(conn, device, space)  # no table at all: say so first
        raise PredictorError(f"no fitted predictor for device {device} (space {space}); "
                             f"run `latprof fit --device {device}`")
    if row[0] != FORMAT:
        raise PredictorError(f"the stored predictor of {device} has format {row[0]!r}, this latprof reads "
                             f"{FORMAT!r}; run `latprof fit --device {device}` again")
    return json.loads(row[1]), json.loads(row[2])
