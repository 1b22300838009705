"""The simple proxies latprof must beat, fitted on the same measured rows as latprof.

* :func:`fit_flops`: ``ms = a * GMACs + b`` (non-negative, relative error), with one latency factor per runtime
  version other than the target one, for whole models measured under several runtimes.
* :func:`fit_op_counts`: one cost per operator family, ``ms = b + sum_f count_f * cost_f`` (non-negative least
  squares on relative error), with :func:`op_counts` giving the counts from latprof's one layer -> operators
  description. On NAS-Bench-201 that is 4 families that vary (conv, pointwise, pooling, elementwise) + the
  intercept: the issue's 5-parameter op-kind-count model.
* :func:`fit_onehot`: ridge regression on one-hot architecture decisions (an additive model of a cell space),
  its penalty chosen by exact leave-one-out.

Each fit returns a model with ``.predict``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear

from latprof.errors import PredictorError
from latprof.predictor._solve import ridge_loo
from latprof.space import FAMILIES, LayerConfig, Operator, SearchSpace, layer_operators, op_family

__all__ = ["FlopsModel", "OpCountModel", "OneHotModel", "fit_flops", "fit_op_counts", "fit_onehot", "op_counts", "family_counts",
           "ONEHOT_PENALTIES"]

ONEHOT_PENALTIES = tuple(np.logspace(-3, 3, 13))
_FACTOR_PRIOR = 0.1  # weight of "a runtime's factor is 1" (a row weighs 1): keeps factors finite if data can't fix them


# ---------------------------------------------------------------- FLOPs

@dataclass(frozen=True)
class FlopsModel:
    """``ms = ms_per_gmac * multiply-adds / 1e9 + intercept_ms``, times the row's runtime factor."""

    ms_per_gmac: float
    intercept_ms: float
    runtime: str = ""
    runtime_factors: dict[str, float] = field(default_factory=dict)

    def predict(self, macs: Any, runtimes: Sequence[str] | None = None) -> np.ndarray:
        """Latency (ms) of models with ``macs`` multiply-adds, in each one's runtime (default: the target)."""
        out = self.intercept_ms + self.ms_per_gmac * np.asarray(macs, float).reshape(-1) / 1e9
        if runtimes is None:
            return out
        return out * np.array([self.runtime_factors.get(r, 1.0) for r in runtimes])


def fit_flops(macs: Any, y: Any, runtimes: Sequence[str] | None = None, runtime: str | None = None) -> FlopsModel:
    """Best FLOPs-only fit on relative error, non-negative.

    With ``runtimes`` (one per row), predictions are for ``runtime`` (default: the most common one) and every
    other runtime gets a latency factor, held near 1 by a weak prior when few rows fix it.
    """
    macs, y = np.asarray(macs, float).reshape(-1), _latencies(y)
    if len(macs) != len(y):
        raise PredictorError(f"{len(macs)} multiply-add counts for {len(y)} latencies; pass one per row")
    if runtimes is not None and len(runtimes) != len(y):
        raise PredictorError(f"{len(runtimes)} runtimes for {len(y)} latencies; pass one per row")
    runtimes = [""] * len(y) if runtimes is None else [str(r) for r in runtimes]
    target = runtime if runtime in runtimes else max(dict.fromkeys(runtimes), key=runtimes.count)
    (slope, intercept), factors = _relative_nnls(np.column_stack([macs / 1e9, np.ones_like(macs)]), y,
                                                 runtimes, target)
    return FlopsModel(float(slope), float(intercept), target, factors)


def _relative_nnls(design: np.ndarray, y: np.ndarray, runtimes: Sequence[str],
                   target: str) -> tuple[np.ndarray, dict[str, float]]:
    """Non-negative ``design @ theta ~ y`` on relative error, with a latency factor for each runtime other than
    ``target`` (fitted as its inverse ``u``: a row of that runtime asks ``design @ theta / y = u``)."""
    n, width = design.shape
    others = sorted(set(runtimes) - {target})
    columns = np.zeros((n, len(others)))
    for j, other in enumerate(others):
        columns[[r == other for r in runtimes], j] = -1.0
    a = np.vstack([np.hstack([design / y[:, None], columns]),
                   np.hstack([np.zeros((len(others), width)), _FACTOR_PRIOR * np.eye(len(others))])])
    b = np.concatenate([[1.0 if r == target else 0.0 for r in runtimes], _FACTOR_PRIOR * np.ones(len(others))])
    theta = lsq_linear(a, b, bounds=(0.0, np.inf), method="bvls").x
    return theta[:width], {o: 1.0 / max(float(u), 1e-9) for o, u in zip(others, theta[width:])}


def _latencies(y: Any) -> np.ndarray:
    y = np.asarray(y, float).reshape(-1)
    if len(y) == 0 or not np.all(np.isfinite(y) & (y > 0)):
        raise PredictorError("a relative-error fit needs at least one latency and every latency > 0 ms; drop the "
                             "rows timed at 0 ms or less (nothing ran)")
    return y


# ---------------------------------------------------------------- operator counts

@dataclass(frozen=True)
class OpCountModel:
    """``ms = intercept_ms + counts @ costs_ms``: one cost per operator family (column of :func:`op_counts`)."""

    intercept_ms: float
    costs_ms: np.ndarray

    def predict(self, counts: Any) -> np.ndarray:
        """Latency (ms) of architectures given as a count matrix with the fitted columns."""
        counts = np.atleast_2d(np.asarray(counts, float))
        if counts.shape[1] != len(self.costs_ms):
            raise PredictorError(f"count matrix has {counts.shape[1]} columns, the model {len(self.costs_ms)}; "
                                 f"count with the same op_counts as the fit")
        return self.intercept_ms + counts @ self.costs_ms


def fit_op_counts(counts: Any, y: Any) -> OpCountModel:
    """Non-negative least squares on relative error of ``y`` (ms) on an intercept and ``counts`` (n, F)."""
    counts, y = np.atleast_2d(np.asarray(counts, float)), _latencies(y)
    if len(counts) != len(y):
        raise PredictorError(f"{len(counts)} count rows for {len(y)} latencies; pass one per row")
    theta, _ = _relative_nnls(np.column_stack([np.ones(len(y)), counts]), y, [""] * len(y), "")
    return OpCountModel(float(theta[0]), theta[1:])


def family_counts(operators: Iterable[Operator]) -> np.ndarray:
    """How many of ``operators`` fall in each family (:data:`latprof.space.FAMILIES` order)."""
    families = Counter(op_family(op) for op in operators)
    return np.array([families[f] for f in FAMILIES], float)


@lru_cache(maxsize=65536)
def _layer_counts(layer: LayerConfig) -> np.ndarray:
    return family_counts(layer_operators(layer))


def op_counts(space: SearchSpace, archs: Sequence[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per architecture, how many operators of each family (:data:`latprof.space.FAMILIES`) its layers run.

    Counted from the space's own layers, so a space form decides what runs: in ``nasbench201`` every
    non-``none`` edge, in ``nasbench201-pruned`` only the edges that reach the cell's output. Returns the
    (n, len(FAMILIES)) matrix and the family names, the same columns for any ``archs``.
    """
    out = np.zeros((len(archs), len(FAMILIES)))
    for i, arch in enumerate(archs):
        for layer, n in Counter(space.layers(arch)).items():
            out[i] += n * _layer_counts(layer)
    return out, FAMILIES


# ---------------------------------------------------------------- one-hot ridge

@dataclass(frozen=True)
class OneHotModel:
    """``ms = intercept_ms + onehot(tokens) @ weights_ms``, ridge with the leave-one-out ``penalty``."""

    intercept_ms: float
    weights_ms: np.ndarray
    n_choices: tuple[int, ...]
    penalty: float

    def predict(self, tokens: Any) -> np.ndarray:
        """Latency (ms) of architectures given as token rows (n, D)."""
        return self.intercept_ms + _onehot(tokens, self.n_choices) @ self.weights_ms


def _onehot(tokens: Any, n_choices: Sequence[int]) -> np.ndarray:
    tokens = np.atleast_2d(np.asarray(tokens, dtype=int))
    if tokens.shape[1] != len(n_choices):
        raise PredictorError(f"token rows have {tokens.shape[1]} decisions, the space {len(n_choices)}; "
                             f"encode the architectures with the space they were fitted on")
    if np.any(tokens < 0) or np.any(tokens >= np.asarray(n_choices)):
        raise PredictorError("a token is outside its decision's choices; encode the architectures with the space")
    return np.concatenate([np.eye(n)[tokens[:, j]] for j, n in enumerate(n_choices)], axis=1)


def fit_onehot(tokens: Any, n_choices: Sequence[int], y: Any) -> OneHotModel:
    """Ridge on one-hot tokens with a free intercept; the penalty (of :data:`ONEHOT_PENALTIES`, in units of the
    one-hot columns) with the least exact leave-one-out squared error."""
    n_choices = tuple(int(n) for n in n_choices)
    X, y = _onehot(tokens, n_choices), np.asarray(y, float).reshape(-1)
    if len(X) != len(y) or len(y) < 2:
        raise PredictorError(f"{len(X)} token rows for {len(y)} latencies; pass one per row, at least 2")
    M = np.column_stack([np.ones(len(y)), X])
    fits = []
    for penalty in ONEHOT_PENALTIES:
        w, loo = ridge_loo(M, y, np.r_[0.0, np.full(X.shape[1], penalty)])
        fits.append((float(np.mean(loo ** 2)), penalty, w))
    _, penalty, w = min(fits, key=lambda f: f[0])
    return OneHotModel(float(w[0]), w[1:], n_choices, float(penalty))
