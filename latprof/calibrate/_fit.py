"""Fitting a device's latency from reference-device costs per operator kind.

    latency(m) = intercept + sum_k ratio_k * host_ms_k(m) + sum_k per_gmac_k * GMACs_k(m)

fitted on relative error with non-negative coefficients (scipy ``lsq_linear``).
Every ``ratio_k`` is pulled towards one shared ratio, and every ``per_gmac_k``
towards one shared cost per GMAC, by ridge penalties whose strengths are chosen
by leave-one-out cross-validation. The multiply-add terms carry what the host's
times miss: a phone core is compute-bound where the host's wide, cached core is
not, so its time follows multiply-adds more closely than the host's does. A kind
the calibration models never use gets the shared coefficients; a kind they use
a lot can move away from them, which is how a phone that is "slower, but not
uniformly" shows up (the coefficients are printed for a sanity check).

Rows may come from different runtime versions of the same phone (published
tables of different years: the same MobileNetV2 is 73.8 ms in one and 64 ms in
another). Each runtime other than the target gets one latency factor, fitted
jointly: its rows are compared with ``factor * prediction``, which stays
linear in the unknowns as ``prediction / y - 1/factor``. Predictions are for
the target runtime; a row of another fitted runtime is scaled by its factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import lsq_linear

from latprof.calibrate._features import KINDS
from latprof.errors import PredictorError

__all__ = ["KindRatioModel", "fit_kind_ratios", "fit_flops_linear", "FlopsLinearModel", "cross_validate",
           "cross_validate_kinds", "cross_validate_flops"]

_LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)
_FACTOR_PRIOR = 0.1  # weight of "a runtime's factor is 1" (a row weighs 1): keeps factors finite if data can't fix them


def _target_runtime(runtimes: Sequence[str], preferred: str | None = None) -> str:
    """The runtime predictions are for: ``preferred`` if some row has it, else the most common (first on ties)."""
    runtimes = list(runtimes)
    if preferred is not None and preferred in runtimes:
        return preferred
    return max(dict.fromkeys(runtimes), key=runtimes.count)


def _runtime_scale(n: int, runtimes: Sequence[str] | None, factors: dict[str, float]) -> np.ndarray:
    """Per-row latency factor of each row's runtime (1 for the target and for runtimes never fitted)."""
    if runtimes is None or not factors:
        return np.ones(n)
    return np.array([factors.get(r, 1.0) for r in runtimes])


def _relative_lsq(design: np.ndarray, y: np.ndarray, penalties: np.ndarray, runtimes: Sequence[str] | None,
                  target: str | None) -> tuple[np.ndarray, dict[str, float]]:
    """Non-negative ``design @ theta ~ y`` on relative error, with ``penalties @ theta ~ 0`` and one latency
    factor per runtime other than ``target``; returns theta and the factors."""
    n, width = design.shape
    runtimes = [""] * n if runtimes is None else list(runtimes)
    others = sorted(set(runtimes) - {target})
    columns = np.zeros((n, len(others)))
    for j, other in enumerate(others):
        columns[[r == other for r in runtimes], j] = -1.0
    a = np.vstack([
        np.hstack([design / y[:, None], columns]),
        np.hstack([penalties, np.zeros((len(penalties), len(others)))]),
        np.hstack([np.zeros((len(others), width)), _FACTOR_PRIOR * np.eye(len(others))]),
    ])
    b = np.concatenate([[1.0 if r == target else 0.0 for r in runtimes], np.zeros(len(penalties)),
                        _FACTOR_PRIOR * np.ones(len(others))])
    theta = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    return theta[:width], {o: 1.0 / max(float(u), 1e-9) for o, u in zip(others, theta[width:])}


@dataclass(frozen=True)
class KindRatioModel:
    """Per-kind ratios (device ms per reference ms), per-kind ms per GMAC, and an intercept (ms)."""

    ratios: dict[str, float]
    shared_ratio: float
    intercept_ms: float
    strength: float  # the ridge strength pulling ratios to the shared one
    per_gmac: dict[str, float] = field(default_factory=dict)  # empty: fitted without multiply-adds
    shared_per_gmac: float = 0.0
    gmac_strength: float = 0.0
    runtime: str = ""  # the runtime predictions are for
    runtime_factors: dict[str, float] = field(default_factory=dict)  # other runtime -> its ms per target-runtime ms

    def predict(self, kind_ms: np.ndarray, kind_gmacs: np.ndarray | None = None,
                runtimes: Sequence[str] | None = None) -> np.ndarray:
        """Device ms for rows of per-kind reference ms (and GMACs), both in :data:`KINDS` order; in the target
        runtime, or in each row's runtime when ``runtimes`` is given."""
        out = self.intercept_ms + np.atleast_2d(kind_ms) @ np.array([self.ratios[k] for k in KINDS])
        if self.per_gmac and kind_gmacs is not None:
            out = out + np.atleast_2d(kind_gmacs) @ np.array([self.per_gmac[k] for k in KINDS])
        return out * _runtime_scale(len(out), runtimes, self.runtime_factors)

    def to_json(self) -> dict:
        return {"ratios": self.ratios, "shared_ratio": self.shared_ratio, "intercept_ms": self.intercept_ms,
                "strength": self.strength, "per_gmac": self.per_gmac, "shared_per_gmac": self.shared_per_gmac,
                "gmac_strength": self.gmac_strength, "runtime": self.runtime, "runtime_factors": self.runtime_factors}

    @classmethod
    def from_json(cls, data: dict) -> "KindRatioModel":
        return cls(ratios={k: float(v) for k, v in data["ratios"].items()}, shared_ratio=float(data["shared_ratio"]),
                   intercept_ms=float(data["intercept_ms"]), strength=float(data["strength"]),
                   per_gmac={k: float(v) for k, v in data.get("per_gmac", {}).items()},
                   shared_per_gmac=float(data.get("shared_per_gmac", 0.0)),
                   gmac_strength=float(data.get("gmac_strength", 0.0)), runtime=str(data.get("runtime", "")),
                   runtime_factors={k: float(v) for k, v in data.get("runtime_factors", {}).items()})


def _pull(k: int, width: int, shared: int, first: int, weight: float) -> np.ndarray:
    """Penalty rows pulling columns first..first+k-1 towards column ``shared``."""
    rows = np.zeros((k, width))
    rows[:, shared] = -1.0
    rows[:, first:first + k] = np.eye(k)
    return rows * weight


class _Rows:
    """Calibration rows (per-kind reference ms, GMACs, runtimes) side by side, so cross-validation can split them."""

    def __init__(self, x: np.ndarray, g: np.ndarray | None = None, runtimes: Sequence[str] | None = None) -> None:
        self.x, self.g = np.asarray(x, float), None if g is None else np.asarray(g, float)
        self.runtimes = None if runtimes is None else np.asarray(runtimes, dtype=object)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows) -> "_Rows":
        return _Rows(self.x[rows], None if self.g is None else self.g[rows],
                     None if self.runtimes is None else self.runtimes[rows])


def _solve(rows: _Rows, y: np.ndarray, strength: float, gmac_strength: float = 1.0,
           runtime: str | None = None) -> KindRatioModel:
    x, g = rows.x, rows.g
    n, k = x.shape
    target = _target_runtime(rows.runtimes, runtime) if rows.runtimes is not None else ""
    r0 = float(np.median(y / x.sum(axis=1)))  # scales for the penalties, so they are unit-free
    # unknowns: [intercept, shared ratio, ratio_1..ratio_k(, shared per-GMAC, per_gmac_1..per_gmac_k)]
    blocks = [np.ones((n, 1)), np.zeros((n, 1)), x]
    if g is not None:
        blocks += [np.zeros((n, 1)), g]
    design = np.hstack(blocks)
    width = design.shape[1]
    penalties = [_pull(k, width, 1, 2, np.sqrt(strength) / r0)]
    if g is not None:
        f0 = float(np.median(y / np.maximum(g.sum(axis=1), 1e-12)))
        penalties.append(_pull(k, width, 2 + k, 3 + k, np.sqrt(gmac_strength) / f0))
    theta, factors = _relative_lsq(design, y, np.vstack(penalties), rows.runtimes, target)
    per_gmac = dict(zip(KINDS, map(float, theta[3 + k:]))) if g is not None else {}
    return KindRatioModel(ratios=dict(zip(KINDS, map(float, theta[2:2 + k]))), shared_ratio=float(theta[1]),
                          intercept_ms=float(theta[0]), strength=strength, per_gmac=per_gmac,
                          shared_per_gmac=float(theta[2 + k]) if g is not None else 0.0,
                          gmac_strength=gmac_strength if g is not None else 0.0, runtime=target,
                          runtime_factors=factors)


def cross_validate(fit, x, y: np.ndarray, groups: Sequence[str] | None = None) -> np.ndarray:
    """Held-out predictions: leave-one-out, or leave-one-group-out when ``groups`` is given.

    ``fit(x_train, y_train)`` returns an object whose ``predict(x_test)`` gives latencies.
    """
    labels = np.asarray(groups if groups is not None else np.arange(len(y)))
    pred = np.empty(len(y))
    for label in np.unique(labels):
        test = labels == label
        if test.all():
            raise PredictorError("leave-one-group-out needs at least two groups of calibration models")
        pred[test] = fit(x[~test], y[~test]).predict(x[test])
    return pred


class _Fitted:
    """What a fitter hands :func:`cross_validate`: a ``predict(rows)`` in each row's own runtime."""

    def __init__(self, predict) -> None:
        self.predict = predict


def _kind_fitter(strength: float, gmac_strength: float, runtime: str | None):
    """A ``fit(rows, y)`` for :func:`cross_validate` with fixed strengths."""
    def fit(rows: _Rows, y: np.ndarray) -> _Fitted:
        model = _solve(rows, y, strength, gmac_strength, runtime)
        return _Fitted(lambda test: model.predict(test.x, test.g, test.runtimes))
    return fit


def fit_kind_ratios(x: np.ndarray, y: np.ndarray, strength: float | None = None, gmacs: np.ndarray | None = None,
                    gmac_strength: float | None = None, runtimes: Sequence[str] | None = None,
                    runtime: str | None = None) -> KindRatioModel:
    """Fit on ``x`` (rows: per-kind reference ms), optionally ``gmacs`` (rows: per-kind GMACs), and ``y``
    (device ms); the strengths by leave-one-out when None. ``runtimes`` names each row's runtime version;
    predictions are for ``runtime`` if some row has it, else for the most common."""
    rows, y = _Rows(x, gmacs, runtimes), np.asarray(y, float)
    if len(y) < 2:
        raise PredictorError(f"calibration needs at least 2 measured models, got {len(y)}; add rows")
    grid_r = _LAMBDAS if strength is None else (strength,)
    grid_g = (1.0,) if rows.g is None else (_LAMBDAS if gmac_strength is None else (gmac_strength,))
    if len(grid_r) * len(grid_g) > 1 and len(y) < 4:
        grid_r, grid_g = (strength or 10.0,), (gmac_strength or 10.0,)
    if len(grid_r) * len(grid_g) == 1:
        return _solve(rows, y, grid_r[0], grid_g[0], runtime)
    best = None
    for sr in grid_r:
        for sg in grid_g:
            err = float(np.mean(np.abs(cross_validate(_kind_fitter(sr, sg, runtime), rows, y) / y - 1)))
            if best is None or err < best[0]:
                best = (err, sr, sg)
    return _solve(rows, y, best[1], best[2], runtime)


def cross_validate_kinds(x: np.ndarray, y: np.ndarray, model: KindRatioModel, gmacs: np.ndarray | None = None,
                         groups: Sequence[str] | None = None, runtimes: Sequence[str] | None = None,
                         nested: bool = False) -> np.ndarray:
    """Held-out predictions of the kind model (leave-one-out or -group-out), each in its row's runtime when that
    runtime is among the training rows. With ``model``'s strengths and target runtime, or, when ``nested``, as a
    user with only the fold's training rows would fit: strengths and target runtime from those rows alone."""
    if nested:
        def fit(rows: _Rows, b: np.ndarray) -> _Fitted:
            fold = fit_kind_ratios(rows.x, b, gmacs=rows.g, runtimes=rows.runtimes)
            return _Fitted(lambda test: fold.predict(test.x, test.g, test.runtimes))
    else:
        fit = _kind_fitter(model.strength, model.gmac_strength or 1.0, model.runtime or None)
    return cross_validate(fit, _Rows(x, gmacs, runtimes), np.asarray(y, float), groups)


@dataclass(frozen=True)
class FlopsLinearModel:
    """The FLOPs-only baseline: ``ms = a * multiply-adds + b``, with the same runtime factors as the kind model."""

    ms_per_gmac: float
    intercept_ms: float
    runtime: str = ""
    runtime_factors: dict[str, float] = field(default_factory=dict)

    def predict(self, macs: np.ndarray, runtimes: Sequence[str] | None = None) -> np.ndarray:
        out = self.intercept_ms + self.ms_per_gmac * np.asarray(macs, float).reshape(-1) / 1e9
        return out * _runtime_scale(len(out), runtimes, self.runtime_factors)


def fit_flops_linear(macs: np.ndarray, y: np.ndarray, runtimes: Sequence[str] | None = None,
                     runtime: str | None = None) -> FlopsLinearModel:
    """Best FLOPs-only fit on relative error, non-negative (with runtime factors when ``runtimes`` is given)."""
    macs, y = np.asarray(macs, float).reshape(-1), np.asarray(y, float)
    target = _target_runtime(runtimes, runtime) if runtimes is not None else ""
    design = np.column_stack([macs / 1e9, np.ones_like(macs)])
    (slope, intercept), factors = _relative_lsq(design, y, np.zeros((0, 2)), runtimes, target)
    return FlopsLinearModel(float(slope), float(intercept), target, factors)


def cross_validate_flops(macs: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None,
                         runtimes: Sequence[str] | None = None, runtime: str | None = None) -> np.ndarray:
    """Held-out predictions of the FLOPs-only fit (leave-one-out or -group-out), as :func:`cross_validate_kinds`."""
    def fit(rows: _Rows, b: np.ndarray) -> _Fitted:
        model = fit_flops_linear(rows.x[:, 0], b, rows.runtimes, runtime)
        return _Fitted(lambda test: model.predict(test.x[:, 0], test.runtimes))
    return cross_validate(fit, _Rows(np.asarray(macs, float).reshape(-1, 1), None, runtimes), np.asarray(y, float),
                          groups)
