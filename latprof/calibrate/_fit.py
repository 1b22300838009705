"""Fitting a device's latency from reference-device costs per operator kind.

    latency(m) = intercept + sum_k ratio_k * host_ms_k(m)

fitted on relative error with non-negative coefficients (scipy ``lsq_linear``),
and with every ``ratio_k`` pulled towards one shared ratio by a ridge penalty
whose strength is chosen by leave-one-out cross-validation. A kind the
calibration models never use gets the shared ratio; a kind they use a lot can
move away from it, which is how a phone that is "slower, but not uniformly"
shows up (its ratios are printed for a sanity check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import lsq_linear

from latprof.calibrate._features import KINDS
from latprof.errors import PredictorError

__all__ = ["KindRatioModel", "fit_kind_ratios", "fit_flops_linear", "FlopsLinearModel", "cross_validate"]

_LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class KindRatioModel:
    """Per-kind ratios (device ms per reference ms) and an intercept (ms)."""

    ratios: dict[str, float]
    shared_ratio: float
    intercept_ms: float
    strength: float  # the ridge strength pulling ratios to the shared one

    def predict(self, kind_ms: np.ndarray) -> np.ndarray:
        """Device ms for rows of per-kind reference ms (:data:`KINDS` order)."""
        r = np.array([self.ratios[k] for k in KINDS])
        return self.intercept_ms + np.atleast_2d(kind_ms) @ r

    def to_json(self) -> dict:
        return {"ratios": self.ratios, "shared_ratio": self.shared_ratio, "intercept_ms": self.intercept_ms,
                "strength": self.strength}

    @classmethod
    def from_json(cls, data: dict) -> "KindRatioModel":
        return cls(ratios={k: float(v) for k, v in data["ratios"].items()}, shared_ratio=float(data["shared_ratio"]),
                   intercept_ms=float(data["intercept_ms"]), strength=float(data["strength"]))


def _solve(x: np.ndarray, y: np.ndarray, strength: float) -> KindRatioModel:
    n, k = x.shape
    total = x.sum(axis=1)
    r0 = float(np.median(y / total))  # scale for the penalty, so it is unit-free
    # unknowns: [intercept, shared, ratio_1..ratio_k]; data rows are relative errors
    data = np.hstack([np.ones((n, 1)), np.zeros((n, 1)), x]) / y[:, None]
    penalty = np.zeros((k, k + 2))
    penalty[:, 1] = -1.0
    penalty[:, 2:] = np.eye(k)
    penalty *= np.sqrt(strength) / r0
    a = np.vstack([data, penalty])
    b = np.concatenate([np.ones(n), np.zeros(k)])
    theta = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    return KindRatioModel(ratios=dict(zip(KINDS, map(float, theta[2:]))), shared_ratio=float(theta[1]),
                          intercept_ms=float(theta[0]), strength=strength)


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


def fit_kind_ratios(x: np.ndarray, y: np.ndarray, strength: float | None = None) -> KindRatioModel:
    """Fit on ``x`` (rows: per-kind reference ms) and ``y`` (device ms); strength by LOO when None."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(y) < 2:
        raise PredictorError(f"calibration needs at least 2 measured models, got {len(y)}; add rows")
    if strength is None:
        if len(y) < 4:
            strength = 10.0
        else:
            errors = [np.mean(np.abs(cross_validate(lambda a, b, s=s: _solve(a, b, s), x, y) / y - 1))
                      for s in _LAMBDAS]
            strength = _LAMBDAS[int(np.argmin(errors))]
    return _solve(x, y, strength)


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
