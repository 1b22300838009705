"""Fitting a device's predictor from any evidence over any prior, and storing it as one JSON document.

:func:`fit_predictor` gathers the rows (the device's lookup-table calibration
set, or :class:`~latprof.predictor.Observation` rows from a CSV or the
published data), the prior (:func:`load_prior`), fits the one model
(:mod:`latprof.predictor._model`), and resolves every layer key it knows into
device milliseconds, so the stored document predicts on its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np

from latprof.errors import LookupTableError, PredictorError
from latprof.lut import finished_builds, load_calibration, load_entries, table_identity
from latprof.predictor import baselines
from latprof.predictor._evidence import Observation, lut_observations
from latprof.predictor._formats import FORMAT
from latprof.predictor._known import known_costs, rescale
from latprof.predictor._metrics import error_summary
from latprof.predictor._model import MIN_ROWS, Row, UnitModel, fit_units
from latprof.predictor._opmodel import Neighbours, fit_op_regression
from latprof.predictor._predictor import LatencyPredictor
from latprof.predictor._priors import AnalyticPrior, DevicesPrior, Prior, TablePrior
from latprof.predictor._units import Unit, arch_units, key_unit, layer_unit, tflite_units
from latprof.space import FAMILIES, LayerConfig, SearchSpace, get_space, op_family, tflite_for
from latprof.speed import probe_factor, probe_identity, register_reference
from latprof.store import Store

__all__ = ["Fitted", "fit_predictor", "save_predictor", "load_prior", "select_archs", "own_table_prior"]

_REF_PERCENTILE = 10
_MIN_CALIBRATION = 4
_BAND_PERCENTILE = 90
WHOLE_MODELS = "*"


@dataclass(frozen=True)
class Fitted:
    """A fitted predictor: the document to store and the report of how well it did held out."""

    document: dict[str, Any]
    report: dict[str, Any]

    @property
    def predictor(self) -> LatencyPredictor:
        return LatencyPredictor(self.document)


# ---------------------------------------------------------------- priors

def _fit_beta(entries, ms: np.ndarray, probes: np.ndarray, ref: float | None, ops) -> float:
    """How latency scales with the probe time, from the table's residuals against the regression."""
    ok = np.isfinite(probes)
    if ref is None or ok.sum() < 20 or np.ptp(np.log(probes[ok])) < 0.05:
        return 1.0
    regression = fit_op_regression(ops, ms)
    estimate = np.array([regression.ops_ms(o).sum() for o in ops])
    resid = np.log(ms / np.maximum(estimate, 1e-9))
    slope = np.polyfit(np.log(probes[ok] / ref), resid[ok], 1)[0]
    return float(np.clip(slope, 0.0, 1.5))


def own_table_prior(store: Store, device: str, space: str) -> tuple[TablePrior, list]:
    """The device's own table prior at its reference speed, and its calibration rows (raw)."""
    entries = load_entries(store.connection, device, space)
    if not entries:
        raise LookupTableError(f"no lookup table for device {device} (space {space}); run `latprof build-lut "
                               f"--device {device}` or `latprof calibrate --device {device} --from ...`")
    calibration = load_calibration(store.connection, device, space)
    probes = np.array([np.mean(e.settings["probe_ms"]) if e.settings.get("probe_ms") else np.nan
                       for e in entries + calibration])
    ref = float(np.nanpercentile(probes, _REF_PERCENTILE)) if np.isfinite(probes).any() else None
    units = [key_unit(e.layer_key) for e in entries]
    ops = [u.operators for u in units]
    raw = np.array([e.median_ms for e in entries])
    beta = _fit_beta(entries, raw, probes[:len(entries)], ref, ops)
    ms = np.array([e.median_ms * probe_factor(e.settings.get("probe_ms"), ref, beta) for e in entries])
    regression = fit_op_regression(ops, ms)
    estimate = np.array([regression.ops_ms(o).sum() for o in ops])
    layers = [i for i, u in enumerate(units) if u.layer is not None]
    neighbours = Neighbours.build([units[i].layer for i in layers], ms[layers], estimate[layers])
    speed = {"probe_ref_ms": ref, "probe_beta": beta, "probe_identity": probe_identity(entries[0].settings)}
    prior = TablePrior(device, dict(zip((e.layer_key for e in entries), ms)), regression, neighbours, own=True,
                       speed=speed)
    prior.width_cv = _width_cv(units, ms)
    return prior, calibration


def _width_cv(units: list[Unit], ms: np.ndarray) -> dict[str, Any]:
    """Leave-one-width-out: every entry of an output width held out at once ("channel counts the table lacks");
    an operator entry is held out with the operators of its output size."""
    widths = np.array([u.layer.out_channels if u.layer is not None else -u.operators[0].out_elems for u in units])
    raw, corrected = np.zeros(len(ms)), np.zeros(len(ms))
    for width in np.unique(widths):
        test = widths == width
        if test.all():
            return {}
        train = np.flatnonzero(~test)
        regression = fit_op_regression([units[i].operators for i in train], ms[train])
        estimate = np.array([regression.ops_ms(u.operators).sum() for u in units])
        layers = [i for i in train if units[i].layer is not None]
        neighbours = Neighbours.build([units[i].layer for i in layers], ms[layers], estimate[layers])
        raw[test] = estimate[test]
        corrected[test] = [estimate[i] * (neighbours.factor(units[i].layer) if units[i].layer is not None else 1.0)
                           for i in np.flatnonzero(test)]
    return {"regression_only": error_summary(raw, ms), "with_neighbours": error_summary(corrected, ms),
            "abs_rel_p90": float(np.percentile(np.abs(corrected / ms - 1), _BAND_PERCENTILE))}


def load_prior(spec: str, store: Store | None, space: SearchSpace | None, *, device: str) -> Prior:
    """A prior by name: ``auto``, ``own``, ``analytic``, ``devices`` or ``table:DEVICE``.

    ``auto``: for a space, the device's own table, else the known devices' mix (never the device
    itself: it is the one being predicted), else analytic; for whole models (``space`` None), the
    device's own table when it has one, else analytic (the host's table as prior predicted Pixel 2
    and 3 models of a held-out family worse than analytic: 16.8% / 5.0% MAPE against 3.2% / 0.9%).
    """
    space_name = space.name if space is not None else "mnasnet"
    if spec in ("auto", "own") and store is not None and load_entries(store.connection, device, space_name):
        return own_table_prior(store, device, space_name)[0]
    if spec == "own":
        raise LookupTableError(f"no lookup table for device {device} (space {space_name}); "
                               f"run `latprof build-lut --device {device}`")
    if spec.startswith("table:"):
        other = spec.split(":", 1)[1]
        if store is None or not load_entries(store.connection, other, space_name):
            raise LookupTableError(f"no lookup table for device {other} (space {space_name}); run "
                                   f"`latprof build-lut --device {other} --space {space_name}` or pick another prior")
        prior = own_table_prior(store, other, space_name)[0]
        return TablePrior(other, prior.table, prior.regression, prior.neighbours, own=False)
    if spec in ("auto", "devices") and space is not None:
        components, scales = known_costs(space, exclude=device)
        if device != "local" and store is not None and load_entries(store.connection, "local", space_name):
            components["local"] = _table_costs(own_table_prior(store, "local", space_name)[0], space)
            scales["local"] = rescale(components["local"], space)
        if components:
            return DevicesPrior(components, scales)
    if spec in ("auto", "devices", "analytic"):
        return AnalyticPrior()
    raise PredictorError(f"unknown prior {spec!r}; use auto, analytic, devices or table:DEVICE")


def _table_costs(prior: TablePrior, space: SearchSpace) -> dict[str, float]:
    """A table prior's ms for every unique layer of ``space`` (measured, else its regression)."""
    units = [layer_unit("", layer) for layer in space.unique_layer_configs()]
    return {u.key: float(prior.costs(u)[0].sum()) for u in units}


# ---------------------------------------------------------------- rows

def _units(obs: Observation, space: SearchSpace | None) -> tuple[Unit, ...]:
    if space is None and obs.space is None:
        return tuple(tflite_units(tflite_for(obs.model)))
    return tuple(arch_units(obs.space or space, obs.model))


def _rows(observations: Sequence[Observation], space: SearchSpace | None) -> list[Row]:
    return [Row(_units(o, space), o.latency_ms, o.runtime) for o in observations]


def select_archs(space: SearchSpace, archs: Sequence[Any], count: int, prior: Prior, *, how: str = "active",
                 seed: int = 0) -> list[int]:
    """Indices of the ``count`` of ``archs`` to measure: ``random`` (seeded) or ``active``.

    Active: greedy D-optimal design over per-family prior costs; each pick is the candidate
    whose prediction the picks so far constrain least. It needs no latencies.
    """
    return _select([arch_units(space, a) for a in archs], count, prior, how=how, seed=seed)


def _select(rows_units: Sequence[Sequence[Unit]], count: int, prior: Prior, *, how: str, seed: int,
            ridge: float = 1e-2) -> list[int]:
    n = len(rows_units)
    if how == "random":
        return sorted(random.Random(seed).sample(range(n), min(count, n)))
    if how != "active":
        raise PredictorError(f"unknown selection {how!r}; use random or active")
    Z = np.zeros((n, len(FAMILIES)))
    for i, units in enumerate(rows_units):
        for u in units:
            costs, _ = prior.costs(u)
            for op, p in zip(u.operators, costs):
                Z[i, FAMILIES.index(op_family(op))] += p
    Z = Z[:, np.ptp(Z, axis=0) > 1e-9 * np.abs(Z).max(axis=0)]  # a constant column's std is ~1e-15, not 0
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    Z = np.column_stack([np.ones(n), Z])
    inv = np.eye(Z.shape[1]) / ridge
    chosen, taken = [], np.zeros(n, dtype=bool)
    for _ in range(min(count, n)):
        var = np.einsum("ij,jk,ik->i", Z, inv, Z)
        var[taken] = -np.inf
        i = int(np.argmax(var))
        chosen.append(i)
        taken[i] = True
        u = inv @ Z[i]
        inv -= np.outer(u, u) / (1.0 + Z[i] @ u)  # Sherman-Morrison
    return chosen


# ---------------------------------------------------------------- fitting

def fit_predictor(store: Store, device: str, space: str | SearchSpace | None = "mnasnet", *,
                  observations: Sequence[Observation] | None = None, prior: str | Prior = "auto",
                  runtime: str | None = None, samples: int | None = None, select: str = "random", seed: int = 0,
                  notify: Callable[[str], None] = lambda _: None) -> Fitted:
    """Fit ``device``'s predictor (not yet stored; see :func:`save_predictor`).

    ``observations=None``: the device's own lookup table and calibration set (``latprof fit``).
    ``space=None``: whole models (any .tflite), stored for space ``"*"``.
    ``samples``: fit on that many of the rows (``select`` random or active), report the rest as held out.
    No observations at all: the prior alone, whose ranking holds but whose milliseconds are the prior's.
    """
    own = observations is None
    space_obj = get_space(space) if isinstance(space, str) else space
    variants: list[dict[str, Any]] = []
    if own:
        table_prior, calibration = own_table_prior(store, device, space_obj.name)
        if len(calibration) < _MIN_CALIBRATION:
            raise PredictorError(f"device {device} (space {space_obj.name}) has {len(calibration)} calibration "
                                 f"architecture(s), at least {_MIN_CALIBRATION} are needed (60 recommended); run "
                                 f"`latprof build-lut --device {device} --calibration 60`")
        speed = table_prior.speed
        observations = lut_observations(calibration, space_obj.name, speed["probe_ref_ms"], speed["probe_beta"])
        prior_obj: Prior = table_prior
        variants = finished_builds(store.connection, device, space_obj.name)
        if variants:
            space_obj = get_space(space_obj.name, **variants[0])
    else:
        prior_obj = prior if not isinstance(prior, str) else load_prior(prior, store, space_obj, device=device)
    rows = _rows(observations, space_obj)
    chosen = list(range(len(rows)))
    if samples is not None and samples < len(rows):
        chosen = _select([r.units for r in rows], samples, prior_obj, how=select, seed=seed)
    if chosen:
        model, loo, kept = fit_units([rows[i] for i in chosen], prior_obj, runtime=runtime)
    else:  # the prior alone: it ranks, but its milliseconds are the prior's, not the device's
        model, loo, kept = UnitModel(0.0, 1.0), np.zeros(0), np.zeros(0, dtype=bool)
    document = _document(device, space_obj, variants, prior_obj, model, rows, chosen, loo, kept, store)
    report = _report(device, space_obj, prior_obj, model, rows, observations, chosen, loo, kept, document)
    notify(f"fitted the {document['space']} predictor of {device} on {len(chosen)} rows (prior {prior_obj.name})")
    return Fitted(document, report)


def _resolve_keys(model: UnitModel, prior: Prior, units: dict[str, Unit]) -> dict[str, list]:
    own = getattr(prior, "own", False)
    keys = {}
    for key, unit in units.items():
        _, source = prior.costs(unit)
        ms = max(model.unit_ms(unit, prior), 0.0)
        keys[key] = [ms, source if own and source in ("table", "regression") else "calibrated"]
    return keys


def _known_units(space: SearchSpace | None, prior: Prior, rows: list[Row], variants) -> dict[str, Unit]:
    units = {u.key: u for r in rows for u in r.units}
    spaces = [get_space(space.name, **v) for v in variants] if variants else ([space] if space is not None else [])
    for s in spaces:
        for layer in s.unique_layer_configs():
            u = layer_unit("", layer)
            units.setdefault(u.key, u)
    for key in getattr(prior, "table", {}):
        units.setdefault(key, key_unit(key))
    return units


def _band(prior: Prior, y: np.ndarray, loo: np.ndarray) -> dict[str, float]:
    rel = np.abs(loo / y - 1)
    band = float(np.percentile(rel, _BAND_PERCENTILE)) if len(rel) else 1.0  # no rows: no idea of the scale
    width_cv = getattr(prior, "width_cv", {})
    return {"rel": band, "unpriced_rel": float(width_cv.get("abs_rel_p90", band))}


def _document(device: str, space: SearchSpace | None, variants: list, prior: Prior, model: UnitModel,
              rows: list[Row], chosen: list[int], loo: np.ndarray, kept: np.ndarray, store: Store) -> dict[str, Any]:
    own = getattr(prior, "own", False)
    y = np.array([rows[i].latency_ms for i in chosen])
    return {
        "format": FORMAT, "device": device, "space": space.name if space is not None else WHOLE_MODELS,
        "space_params": space.params() if space is not None else {}, "variants": variants,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prior": prior.name, "runtime": model.runtime, "runtime_factors": model.runtime_factors,
        "intercept_ms": model.intercept_ms, "per_layer_ms": model.per_layer_ms,
        "keys": _resolve_keys(model, prior, _known_units(space, prior, rows, variants)),
        "ops": _ops(model, prior), "band": _band(prior, y[kept], loo[kept]),
        "speed": prior.speed if own else None,
        "measured_with": table_identity(store.connection, device, space.name) if own else None,
        "model": model.to_json(),
    }


def _ops(model: UnitModel, prior: Prior) -> dict[str, Any]:
    """What prices a unit the document has no key for: the prior's regression, rescaled by the fit."""
    return {"regression": prior.regression.to_json(), "ratio": model.ratio, "family_ratio": model.family_ratio,
            "family_op_ms": model.family_op_ms, "macs": model.aux.get("macs", 0.0),
            "analytic": float(sum(v for k, v in model.aux.items() if k != "macs"))}


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


def _cv_baselines(rows: Sequence[Row], max_folds: int = 100) -> dict[str, np.ndarray]:
    """Held-out baseline predictions: leave-one-out, or ``max_folds`` folds when there are more rows."""
    data = _BaselineData(rows)
    folds = np.arange(len(rows)) % max_folds if len(rows) > max_folds else np.arange(len(rows))
    out = {"flops": np.zeros(len(rows)), "op_counts": np.zeros(len(rows))}
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        for name, pred in data.predict(np.flatnonzero(folds != fold), test).items():
            out[name][test] = pred
    return out


def _report(device: str, space: SearchSpace | None, prior: Prior, model: UnitModel, rows: list[Row],
            observations: Sequence[Observation], chosen: list[int], loo: np.ndarray, kept: np.ndarray,
            document: dict[str, Any]) -> dict[str, Any]:
    fitted = [rows[i] for i in chosen]
    y = np.array([r.latency_ms for r in fitted])
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
                                             for name, pred in _cv_baselines(fitted).items()}
    if getattr(prior, "own", False):
        report["table_entries"] = len(prior.table)
        report["regression_leave_width_out"] = prior.width_cv
    held = np.setdiff1d(np.arange(len(rows)), chosen)
    if len(held):
        y_held = np.array([rows[i].latency_ms for i in held])
        report["held_out"] = error_summary(_predict_rows(document, [rows[i] for i in held]), y_held)
        report["baselines_held_out"] = {name: error_summary(pred, y_held)
                                        for name, pred in _BaselineData(rows).predict(np.array(chosen), held).items()}
    families = [observations[i].family for i in chosen]
    if space is None and len(set(families)) > 1:
        report.update(_leave_one_family_out(fitted, families, prior, document["runtime"] or None))
    return report


def _name(obs: Observation, space: SearchSpace | None) -> str:
    if obs.name:
        return obs.name
    return (obs.space or space).format(obs.model) if (obs.space or space) is not None else str(obs.model)


def _leave_one_family_out(rows: list[Row], families: list[str], prior: Prior, runtime: str | None) -> dict:
    """Each family predicted by a fit on the others (penalties and target runtime chosen anew), next to FLOPs.

    A family whose complement is too small to fit is not predicted; ``scaled``: only the rows whose
    runtime some other family was measured with (others cannot be put on their runtime's scale)."""
    y, data = np.array([r.latency_ms for r in rows]), _BaselineData(rows)
    pred, flops = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for family in dict.fromkeys(families):
        test = np.array([f == family for f in families])
        if (~test).sum() < MIN_ROWS:
            continue
        fold, _, _ = fit_units([r for r, t in zip(rows, test) if not t], prior)
        cost = {}
        for i in np.flatnonzero(test):
            units = rows[i].units
            cost.update({u.key: fold.unit_ms(u, prior) for u in units if u.key not in cost})
            factor = fold.runtime_factors.get(rows[i].runtime, 1.0) if rows[i].runtime != fold.runtime else 1.0
            pred[i] = (fold.intercept_ms + sum(cost[u.key] for u in units)) * factor
        flops[test] = data.predict(np.flatnonzero(~test), np.flatnonzero(test))["flops"]
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


def save_predictor(store: Store, fitted: Fitted) -> int:
    """Store a fitted predictor (and, for a table with probe times, its reference speed); returns its row id."""
    doc = fitted.document
    predictor_id = store.save_predictor(doc["device"], doc["space"], doc, fitted.report)
    speed = fitted.predictor.speed
    if speed is not None:
        register_reference(store, doc["device"], doc["space"], doc["speed"]["probe_identity"], speed)
    return predictor_id
