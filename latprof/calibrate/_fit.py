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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import lsq_linear

from latprof.calibrate._features import KINDS
from latprof.errors import PredictorError

__all__ = ["KindRatioModel", "fit_kind_ratios", "fit_flops_linear", "FlopsLinearModel", "cross_validate",
           "cross_validate_kinds"]

_LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)


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

    def predict(self, kind_ms: np.ndarray, kind_gmacs: np.ndarray | None = None) -> np.ndarray:
        """Device ms for rows of per-kind reference ms (and GMACs), both in :data:`KINDS` order."""
        out = self.intercept_ms + np.atleast_2d(kind_ms) @ np.array([self.ratios[k] for k in KINDS])
        if self.per_gmac and kind_gmacs is not None:
            out = out + np.atleast_2d(kind_gmacs) @ np.array([self.per_gmac[k] for k in KINDS])
        return out

    def to_json(self) -> dict:
        return {"ratios": self.ratios, "shared_ratio": self.shared_ratio, "intercept_ms": self.intercept_ms,
                "strength": self.strength, "per_gmac": self.per_gmac, "shared_per_gmac": self.shared_per_gmac,
                "gmac_strength": self.gmac_strength}

    @classmethod
    def from_json(cls, data: dict) -> "KindRatioModel":
        return cls(ratios={k: float(v) for k, v in data["ratios"].items()}, shared_ratio=float(data["shared_ratio"]),
                   intercept_ms=float(data["intercept_ms"]), strength=float(data["strength"]),
                   per_gmac={k: float(v) for k, v in data.get("per_gmac", {}).items()},
                   shared_per_gmac=float(data.get("shared_per_gmac", 0.0)),
                   gmac_strength=float(data.get("gmac_strength", 0.0)))


def _pull(k: int, width: int, shared: int, first: int, weight: float) -> np.ndarray:
    """Penalty rows pulling columns first..first+k-1 towards column ``shared``."""
    rows = np.zeros((k, width))
    rows[:, shared] = -1.0
    rows[:, first:first + k] = np.eye(k)
    return rows * weight


def _solve(x: np.ndarray, y: np.ndarray, strength: float, g: np.ndarray | None = None,
           gmac_strength: float = 1.0) -> KindRatioModel:
    n, k = x.shape
    r0 = float(np.median(y / x.sum(axis=1)))  # scales for the penalties, so they are unit-free
    # unknowns: [intercept, shared ratio, ratio_1..ratio_k(, shared per-GMAC, per_gmac_1..per_gmac_k)]
    blocks = [np.ones((n, 1)), np.zeros((n, 1)), x]
    if g is not None:
        blocks += [np.zeros((n, 1)), g]
    data = np.hstack(blocks) / y[:, None]
    width = data.shape[1]
    penalties = [_pull(k, width, 1, 2, np.sqrt(strength) / r0)]
    if g is not None:
        f0 = float(np.median(y / np.maximum(g.sum(axis=1), 1e-12)))
        penalties.append(_pull(k, width, 2 + k, 3 + k, np.sqrt(gmac_strength) / f0))
    a = np.vstack([data, *penalties])
    b = np.concatenate([np.ones(n), np.zeros(k * len(penalties))])
    theta = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    per_gmac = dict(zip(KINDS, map(float, theta[3 + k:]))) if g is not None else {}
    return KindRatioModel(ratios=dict(zip(KINDS, map(float, theta[2:2 + k]))), shared_ratio=float(theta[1]),
                          intercept_ms=float(theta[0]), strength=strength, per_gmac=per_gmac,
                          shared_per_gmac=float(theta[2 + k]) if g is not None else 0.0,
                          gmac_strength=gmac_strength if g is not None else 0.0)


class _Features:
    """Per-kind reference ms and GMACs side by side, so cross-validation can split rows of both."""

    def __init__(self, x: np.ndarray, g: np.ndarray | None) -> None:
        self.x, self.g = x, g

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows) -> "_Features":
        return _Features(self.x[rows], None if self.g is None else self.g[rows])


def cross_validate(fit, x: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None) -> np.ndarray:
    """Held-out predictions: leave-one-out, or leave-one-group-out when ``groups`` is given."""
    labels = np.asarray(groups if groups is not None else np.arange(len(y)))
    pred = np.empty(len(y))
    for label in np.unique(labels):
        test = labels == label
        if test.all():
            raise PredictorError("leave-one-group-out needs at least two groups of calibration models")
        pred[test] = fit(x[~test], y[~test]).predict(x[test])
    return pred


def fit_kind_ratios(x: np.ndarray, y: np.ndarray, strength: float | None = None, gmacs: np.ndarray | None = None,
                    gmac_strength: float | None = None) -> KindRatioModel:
    """Fit on ``x`` (rows: per-kind reference ms), optionally ``gmacs`` (rows: per-kind GMACs), and ``y``
    (device ms); the strengths by leave-one-out when None."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    g = None if gmacs is None else np.asarray(gmacs, float)
    if len(y) < 2:
        raise PredictorError(f"calibration needs at least 2 measured models, got {len(y)}; add rows")
    grid_r = _LAMBDAS if strength is None else (strength,)
    grid_g = (1.0,) if g is None else (_LAMBDAS if gmac_strength is None else (gmac_strength,))
    if len(grid_r) * len(grid_g) > 1 and len(y) < 4:
        grid_r, grid_g = (strength or 10.0,), (gmac_strength or 10.0,)
    best = None
    for sr in grid_r:
        for sg in grid_g:
            if len(grid_r) * len(grid_g) == 1:
                best = (0.0, sr, sg)
                break
            fit = _model_fitter(sr, sg)
            err = float(np.mean(np.abs(cross_validate(fit, _Features(x, g), y) / y - 1)))
            if best is None or err < best[0]:
                best = (err, sr, sg)
    return _solve(x, y, best[1], g, best[2])


class _Fitted:
    def __init__(self, model: KindRatioModel) -> None:
        self.model = model

    def predict(self, f: "_Features") -> np.ndarray:
        return self.model.predict(f.x, f.g)


def _model_fitter(strength: float, gmac_strength: float):
    """A ``fit(features, y)`` for :func:`cross_validate` with fixed strengths."""
    return lambda f, y: _Fitted(_solve(f.x, y, strength, f.g, gmac_strength))


def cross_validate_kinds(x: np.ndarray, y: np.ndarray, model: KindRatioModel, gmacs: np.ndarray | None = None,
                         groups: Sequence[str] | None = None) -> np.ndarray:
    """Held-out predictions of the kind model with ``model``'s strengths (leave-one-out or -group-out)."""
    fit = _model_fitter(model.strength, model.gmac_strength or 1.0)
    return cross_validate(fit, _Features(np.asarray(x, float), None if gmacs is None else np.asarray(gmacs, float)),
                          np.asarray(y, float), groups)


@dataclass(frozen=True)
class FlopsLinearModel:
    """The FLOPs-only baseline: ``ms = a * multiply-adds + b``."""

    ms_per_gmac: float
    intercept_ms: float

    def predict(self, macs: np.ndarray) -> np.ndarray:
        return self.intercept_ms + self.ms_per_gmac * np.asarray(macs, float).reshape(-1) / 1e9


def fit_flops_linear(macs: np.ndarray, y: np.ndarray) -> FlopsLinearModel:
    """Best FLOPs-only fit on relative error, non-negative."""
    macs, y = np.asarray(macs, float).reshape(-1), np.asarray(y, float)
    a = np.column_stack([macs / 1e9, np.ones_like(macs)]) / y[:, None]
    slope, intercept = lsq_linear(a, np.ones_like(y), bounds=(0.0, np.inf)).x
    return FlopsLinearModel(float(slope), float(intercept))
