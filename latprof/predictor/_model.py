"""The one latency model, fitted on end-to-end rows over any prior.

    latency = b + sum over units u of [ sum over operators o of u:  p(o) * (s + a[family(o)]) + c[family(o)]
                                        + p(u) * d[key(u)] + sum_j m_j * aux_j(u) + t * [u is a layer] ]

``p`` is the prior's cost, ``b``, ``s`` and (for a table timed layer by layer)
``t`` are free (``b`` and ``s`` non-negative); the auxiliary coefficients ``m``
(the prior's own columns, e.g. each known device of a mix, and multiply-adds;
non-negative), the per-family ratios ``a`` and per-operator costs ``c``, and the
per-key ratios ``d`` form three groups with one ridge penalty each
(:func:`latprof.predictor._solve.fit_penalised`, relative error). With the
family costs alone it is the op-kind-count model;
with ``s`` alone, "the device is the prior times a constant". Rows of another
runtime version than the target are compared with ``latency / (1 + delta_r)``
(``delta_r`` weakly pulled to 0), which keeps the problem linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from latprof.errors import PredictorError
from latprof.predictor._opmodel import MACS_PER_MS
from latprof.predictor._priors import Prior
from latprof.predictor._solve import fit_penalised
from latprof.predictor._units import Unit
from latprof.space import FAMILIES, op_family

__all__ = ["Row", "UnitModel", "fit_units", "target_runtime", "aux_names", "aux_values", "MIN_ROWS"]

MIN_ROWS = 3
_FACTOR_PENALTY = 0.1 ** 2  # "a runtime's factor is 1", weighing like a tenth of a row


@dataclass(frozen=True)
class Row:
    """One end-to-end measurement: the model's units, its latency and the runtime it ran on."""

    units: tuple[Unit, ...]
    latency_ms: float
    runtime: str = ""


@dataclass
class UnitModel:
    """The fitted coefficients (ms and ratios, see the module docstring)."""

    intercept_ms: float
    ratio: float
    per_layer_ms: float = 0.0
    aux: dict[str, float] = field(default_factory=dict)
    family_ratio: dict[str, float] = field(default_factory=dict)
    family_op_ms: dict[str, float] = field(default_factory=dict)
    key_ratio: dict[str, float] = field(default_factory=dict)
    runtime: str = ""
    runtime_factors: dict[str, float] = field(default_factory=dict)
    lambdas: tuple[float | None, ...] = ()

    def unit_ms(self, unit: Unit, prior: Prior, costs: np.ndarray | None = None) -> float:
        """The device ms one unit adds over ``prior`` (the prior it was fitted with; ``costs``: the prior's
        per-operator costs of ``unit`` when the caller has them already)."""
        costs = np.asarray(prior.costs(unit)[0] if costs is None else costs, float)
        aux = aux_values(prior, unit)
        total = 0.0
        for op, p in zip(unit.operators, costs):
            family = op_family(op)
            total += p * (self.ratio + self.family_ratio.get(family, 0.0)) + self.family_op_ms.get(family, 0.0)
        total += float(costs.sum()) * self.key_ratio.get(unit.key, 0.0)
        total += sum(m * v for m, v in zip(self.aux.values(), aux))
        return total + (self.per_layer_ms if unit.layer is not None else 0.0)

    def predict(self, rows: Sequence[Row], prior: Prior) -> np.ndarray:
        """Latency (ms) of each row, in its own runtime when that runtime was fitted (else the target's)."""
        cost: dict[str, float] = {}
        out = []
        for row in rows:
            cost.update({u.key: self.unit_ms(u, prior) for u in row.units if u.key not in cost})
            ms = self.intercept_ms + sum(cost[u.key] for u in row.units)
            out.append(ms * self.runtime_factors.get(row.runtime, 1.0))
        return np.array(out)

    def to_json(self) -> dict[str, Any]:
        return {"intercept_ms": self.intercept_ms, "ratio": self.ratio, "per_layer_ms": self.per_layer_ms,
                "aux": self.aux, "family_ratio": self.family_ratio, "family_op_ms": self.family_op_ms,
                "key_ratios": len(self.key_ratio), "runtime": self.runtime, "runtime_factors": self.runtime_factors,
                "lambdas": list(self.lambdas)}


def aux_names(prior: Prior) -> tuple[str, ...]:
    """The auxiliary columns: the prior's, and multiply-adds (phones are compute-bound where a host is not)."""
    return (*prior.aux_names, "macs")


def aux_values(prior: Prior, unit: Unit) -> np.ndarray:
    return np.r_[prior.aux(unit), sum(op.macs for op in unit.operators) / MACS_PER_MS]


def target_runtime(runtimes: Sequence[str], preferred: str | None = None) -> str:
    """``preferred`` when some row has it, else the most common runtime (first on ties)."""
    runtimes = list(runtimes)
    if preferred is not None:
        if preferred not in runtimes:
            raise PredictorError(f"no calibration row was measured with runtime {preferred!r}; "
                                 f"pass one of: {', '.join(repr(r) for r in dict.fromkeys(runtimes))}")
        return preferred
    return max(dict.fromkeys(runtimes), key=runtimes.count) if runtimes else ""


class _Features:
    """Per-unit prior costs and auxiliary values, computed once per key."""

    def __init__(self, prior: Prior) -> None:
        self.prior = prior
        self._cache: dict[str, tuple[np.ndarray, str, np.ndarray, list[int]]] = {}

    def __call__(self, unit: Unit) -> tuple[np.ndarray, str, np.ndarray, list[int]]:
        hit = self._cache.get(unit.key)
        if hit is None:
            costs, source = self.prior.costs(unit)
            families = [FAMILIES.index(op_family(op)) for op in unit.operators]
            hit = self._cache[unit.key] = (np.asarray(costs, float), source, aux_values(self.prior, unit), families)
        return hit


def _design(rows: Sequence[Row], features: _Features, keys: list[str]) -> dict[str, np.ndarray]:
    n, n_fam, n_aux = len(rows), len(FAMILIES), len(aux_names(features.prior))
    key_index = {k: i for i, k in enumerate(keys)}
    out = {"total": np.zeros(n), "layers": np.zeros(n), "aux": np.zeros((n, n_aux)),
           "family": np.zeros((n, n_fam)), "count": np.zeros((n, n_fam)), "key": np.zeros((n, len(keys)))}
    for i, row in enumerate(rows):
        for unit in row.units:
            costs, _, aux, families = features(unit)
            out["total"][i] += costs.sum()
            out["layers"][i] += unit.layer is not None
            out["aux"][i] += aux
            np.add.at(out["family"][i], families, costs)
            np.add.at(out["count"][i], families, 1.0)
            out["key"][i, key_index[unit.key]] += costs.sum()
    return out


def _unit_scale(column: np.ndarray, y: np.ndarray) -> float:
    """Device ms per column unit, typical: so that coefficients near 1 mean "explains the latency"."""
    ok = column > 0
    return float(np.median(y[ok] / column[ok])) if ok.any() else 1.0


def fit_units(rows: Sequence[Row], prior: Prior, *, runtime: str | None = None) -> tuple[UnitModel, np.ndarray,
                                                                                       np.ndarray]:
    """Fit on ``rows``; returns the model, leave-one-out predictions (ms) and the rows kept (bool mask).

    Rows in which nothing runs (a disconnected NAS-Bench-201 cell) say nothing about costs and are left out.
    """
    y_all = np.array([r.latency_ms for r in rows], float)
    runs = np.array([bool(r.units) and r.latency_ms > 0 for r in rows])
    rows = [r for r, keep in zip(rows, runs) if keep]
    if len(rows) < MIN_ROWS:
        raise PredictorError(f"{len(rows)} measured models are too few to fit a predictor; measure at least {MIN_ROWS}")
    y = y_all[runs]
    features = _Features(prior)
    keys = sorted({u.key for r in rows for u in r.units})
    d = _design(rows, features, keys)
    r0 = _unit_scale(d["total"], y)
    per_op = float(d["total"].sum() / max(d["count"].sum(), 1.0))  # mean prior ms of an operator
    aux_scale = np.array([_unit_scale(d["aux"][:, j], y) for j in range(d["aux"].shape[1])])
    layer_scale = float(y.mean() / max(d["layers"].mean(), 1e-9)) if prior.isolated else 0.0
    free = [np.ones(len(y)), d["total"] * r0] + ([d["layers"] * layer_scale] if prior.isolated else [])
    blocks = [(np.column_stack(free), 0), (d["aux"] * aux_scale, 1),
              (np.column_stack([d["family"], d["count"] * per_op]) * r0, 2), (d["key"] * r0, 3)]
    target = target_runtime([r.runtime for r in rows], runtime)
    others = sorted({r.runtime for r in rows} - {target})
    runtime_cols = np.column_stack([-(y * np.array([r.runtime == o for r in rows])) for o in others]) \
        if others else np.zeros((len(y), 0))
    M = np.column_stack([b for b, _ in blocks] + [runtime_cols])
    groups = np.concatenate([np.full(b.shape[1], g) for b, g in blocks] + [np.zeros(len(others), int)])
    fixed = {M.shape[1] - len(others) + j: _FACTOR_PENALTY for j in range(len(others))}
    floor = float(np.percentile(y, 5))
    aux_columns = tuple(range(len(free), len(free) + d["aux"].shape[1]))  # a mix's weights
    sol = fit_penalised(M, y, groups, weights=1.0 / np.maximum(y, floor), fixed=fixed, nonneg=(0, 1, *aux_columns))
    scales = {"r0": r0, "per_op": per_op, "aux": aux_scale, "layer": layer_scale}
    model = _coefficients(sol.coef, len(free), prior, keys, scales, target, others,
                          [None if not np.isfinite(v) else float(v) for v in sol.lambdas])
    kept = np.flatnonzero(runs)[sol.inliers]
    mask = np.zeros(len(y_all), dtype=bool)
    mask[kept] = True
    loo = np.full(len(y_all), np.nan)
    loo[kept] = y[sol.inliers] - sol.loo
    return model, loo, mask


def _coefficients(coef: np.ndarray, n_free: int, prior: Prior, keys: list[str], scales: dict[str, Any],
                  target: str, others: list[str], lambdas: list[float | None]) -> UnitModel:
    r0, n_fam = scales["r0"], len(FAMILIES)
    free, aux, fam, key, rt = np.split(coef, np.cumsum([n_free, len(scales["aux"]), 2 * n_fam, len(keys)]))
    return UnitModel(
        intercept_ms=float(free[0]), ratio=float(free[1] * r0),
        per_layer_ms=float(free[2] * scales["layer"]) if n_free > 2 else 0.0,
        aux={name: float(v * s) for name, v, s in zip(aux_names(prior), aux, scales["aux"])},
        family_ratio={f: float(v * r0) for f, v in zip(FAMILIES, fam[:n_fam]) if v != 0},
        family_op_ms={f: float(v * r0 * scales["per_op"]) for f, v in zip(FAMILIES, fam[n_fam:]) if v != 0},
        key_ratio={k: float(v * r0) for k, v in zip(keys, key) if v != 0},
        runtime=target, runtime_factors={o: 1.0 / max(1.0 + float(v), 1e-9) for o, v in zip(others, rt)},
        lambdas=tuple(lambdas),
    )
