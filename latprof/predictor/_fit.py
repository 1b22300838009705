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

from latprof.errors import PredictorError
from latprof.lut import finished_builds, table_identity, table_space
from latprof.predictor._evidence import Observation, lut_observations
from latprof.predictor._formats import FORMAT
from latprof.predictor._model import Row, UnitModel, fit_units
from latprof.predictor._predictor import LatencyPredictor
from latprof.predictor._priors import Prior
from latprof.predictor._report import fit_report
from latprof.predictor._sources import BAND_PERCENTILE, load_prior, own_table_prior
from latprof.predictor._units import Unit, arch_units, key_unit, layer_unit, tflite_units
from latprof.space import FAMILIES, SearchSpace, get_space, op_family, tflite_for
from latprof.speed import register_reference
from latprof.store import Store

__all__ = ["Fitted", "fit_predictor", "save_predictor", "load_prior", "select_archs", "own_table_prior"]

_MIN_CALIBRATION = 4
WHOLE_MODELS = "*"


@dataclass(frozen=True)
class Fitted:
    """A fitted predictor: the document to store and the report of how well it did held out."""

    document: dict[str, Any]
    report: dict[str, Any]

    @property
    def predictor(self) -> LatencyPredictor:
        return LatencyPredictor(self.document)


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
                  dtype: str = "float32", notify: Callable[[str], None] = lambda _: None) -> Fitted:
    """Fit ``device``'s predictor (not yet stored; see :func:`save_predictor`).

    ``dtype``: the data type of the models it prices; its table (and observations) must be of that type.
    ``observations=None``: the device's own lookup table and calibration set (``latprof fit``).
    ``space=None``: whole models (any .tflite), stored for space ``"*"``.
    ``samples``: fit on that many of the rows (``select`` random or active), report the rest as held out.
    No observations at all: the prior alone, whose ranking holds but whose milliseconds are the prior's.
    """
    own = observations is None
    space_obj = get_space(space) if isinstance(space, str) else space
    variants: list[dict[str, Any]] = []
    if own:
        table = table_space(space_obj.name, dtype)
        table_prior, calibration = own_table_prior(store, device, table)
        if len(calibration) < _MIN_CALIBRATION:
            raise PredictorError(f"device {device} (table {table}) has {len(calibration)} calibration "
                                 f"architecture(s), at least {_MIN_CALIBRATION} are needed (60 recommended); run "
                                 f"`latprof build-lut --device {device} --calibration 60 --dtype {dtype}`")
        speed = table_prior.speed
        observations = lut_observations(calibration, space_obj.name, speed["probe_ref_ms"], speed["probe_beta"])
        prior_obj: Prior = table_prior
        variants = finished_builds(store.connection, device, table)
        if variants:
            space_obj = get_space(space_obj.name, **variants[0])
    else:
        _check_dtypes(observations, dtype)
        prior_obj = prior if not isinstance(prior, str) else load_prior(prior, store, space_obj, device=device,
                                                                        dtype=dtype, notify=notify)
    rows = _rows(observations, space_obj)
    chosen = list(range(len(rows)))
    if samples is not None and samples < len(rows):
        chosen = _select([r.units for r in rows], samples, prior_obj, how=select, seed=seed)
    if chosen:
        model, loo, kept = fit_units([rows[i] for i in chosen], prior_obj, runtime=runtime)
    else:  # the prior alone: it ranks, but its milliseconds are the prior's, not the device's
        model, loo, kept = UnitModel(0.0, 1.0), np.zeros(0), np.zeros(0, dtype=bool)
    document = _document(device, space_obj, variants, prior_obj, model, rows, chosen, loo, kept, store, dtype)
    report = fit_report(device, space_obj, prior_obj, model, rows, observations, chosen, loo, kept, document)
    notify(f"fitted the {document['space']} predictor of {device} on {len(chosen)} rows (prior {prior_obj.name})")
    return Fitted(document, report)


def _resolve_keys(model: UnitModel, prior: Prior, units: dict[str, Unit]) -> dict[str, list]:
    own = getattr(prior, "own", False)
    keys = {}
    for key, unit in units.items():
        costs, source = prior.costs(unit)
        ms = max(model.unit_ms(unit, prior, costs), 0.0)
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
    band = float(np.percentile(rel, BAND_PERCENTILE)) if len(rel) else 1.0  # no rows: no idea of the scale
    width_cv = getattr(prior, "width_cv", {})
    return {"rel": band, "unpriced_rel": float(width_cv.get("abs_rel_p90", band))}


def _check_dtypes(observations: Sequence[Observation], dtype: str) -> None:
    """Raise PredictorError when an observation was measured in another data type than the fit is for."""
    other = sorted({o.dtype for o in observations if o.dtype != dtype})
    if other:
        raise PredictorError(f"the observations include models measured in {', '.join(other)}, but this fit is for "
                             f"{dtype}; pass --dtype {other[0]}, or keep only the {dtype} rows")


def _document(device: str, space: SearchSpace | None, variants: list, prior: Prior, model: UnitModel,
              rows: list[Row], chosen: list[int], loo: np.ndarray, kept: np.ndarray, store: Store,
              dtype: str) -> dict[str, Any]:
    own = getattr(prior, "own", False)
    y = np.array([rows[i].latency_ms for i in chosen])
    return {
        "format": FORMAT, "device": device, "space": space.name if space is not None else WHOLE_MODELS,
        "dtype": dtype, "space_params": space.params() if space is not None else {}, "variants": variants,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prior": prior.name, "runtime": model.runtime, "runtime_factors": model.runtime_factors,
        "intercept_ms": model.intercept_ms, "per_layer_ms": model.per_layer_ms,
        "keys": _resolve_keys(model, prior, _known_units(space, prior, rows, variants)),
        "ops": _ops(model, prior), "band": _band(prior, y[kept], loo[kept]),
        "speed": prior.speed if own else None,
        "measured_with": table_identity(store.connection, device, table_space(space.name, dtype)) if own else None,
        "model": model.to_json(),
    }


def _ops(model: UnitModel, prior: Prior) -> dict[str, Any]:
    """What prices a unit the document has no key for: the prior's regression, rescaled by the fit."""
    return {"regression": prior.regression.to_json(), "ratio": model.ratio, "family_ratio": model.family_ratio,
            "family_op_ms": model.family_op_ms, "macs": model.aux.get("macs", 0.0),
            "analytic": float(sum(v for k, v in model.aux.items() if k != "macs"))}


def save_predictor(store: Store, fitted: Fitted) -> int:
    """Store a fitted predictor (and, for a table with probe times, its reference speed); returns its row id."""
    doc = fitted.document
    stored_as = table_space(doc["space"], doc.get("dtype", "float32"))
    predictor_id = store.save_predictor(doc["device"], stored_as, doc, fitted.report)
    speed = fitted.predictor.speed
    if speed is not None:
        register_reference(store, doc["device"], stored_as, doc["speed"]["probe_identity"], speed)
    return predictor_id
