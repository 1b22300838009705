"""The layer regression: latency of layer configurations the table does not hold.

Two parts, both fitted on the device's table:

1. an operator-level linear cost model (:mod:`latprof.predict._features`),
   fitted by non-negative least squares on *relative* error (rows weighted by
   1/latency), so that small and large layers count alike;
2. a local correction from the table's nearest *siblings*: entries with the
   same op, kernel, stride, expansion, SE and skip (relaxing these in steps
   when none exist), nearest in log channels and log resolution. The
   prediction is the cost model times the distance-weighted geometric mean of
   the siblings' table/model ratios -- so a 112-filter block between the 96-
   and 120-filter entries of the table inherits their measured efficiency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from latprof.errors import ArchitectureError, PredictorError
from latprof.predict._features import GROUPS, N_FEATURES, OpDesc, layer_ops, layer_vector
from latprof.space import LayerConfig

__all__ = ["parse_layer_key", "CostModel", "Siblings", "fit_cost_model", "design_matrix"]

_K_NEAREST = 4


def parse_layer_key(key: str) -> LayerConfig:
    """Inverse of :meth:`LayerConfig.layer_key`."""
    try:
        return LayerConfig.from_key(key)
    except ArchitectureError:
        raise PredictorError(f"{key!r} is not a layer key like ir_k3_s2_e6_i16_o24_se0_none_relu_r112; "
                             "rebuild the table with `latprof build-lut`") from None


@dataclass(frozen=True)
class CostModel:
    """Operator-level linear cost model: one coefficient vector per operator group."""

    coef: np.ndarray  # len(GROUPS) * N_FEATURES

    def layer_ms(self, layer: LayerConfig) -> float:
        return float(layer_vector(layer_ops(layer)) @ self.coef)

    def ops_ms(self, ops: list[OpDesc]) -> float:
        return float(layer_vector(ops) @ self.coef)

    def to_json(self) -> dict[str, list[float]]:
        c = self.coef.reshape(len(GROUPS), N_FEATURES)
        return {g: [float(v) for v in c[i]] for i, g in enumerate(GROUPS)}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> "CostModel":
        coef = np.zeros((len(GROUPS), N_FEATURES))
        for i, g in enumerate(GROUPS):
            if g in data:
                coef[i] = data[g]
        return cls(coef.ravel())


def design_matrix(layers: list[LayerConfig]) -> np.ndarray:
    """One :func:`layer_vector` row per layer."""
    return np.array([layer_vector(layer_ops(layer)) for layer in layers])


def fit_cost_model(X: np.ndarray, ms: np.ndarray) -> CostModel:
    """Non-negative least squares on relative error over table entries (``X`` from :func:`design_matrix`)."""
    if len(ms) < 2:
        raise PredictorError("the lookup table has fewer than 2 entries; run `latprof build-lut` to fill it")
    w = 1.0 / np.maximum(ms, 1e-6)
    scale = np.maximum(np.abs(X * w[:, None]).max(axis=0), 1e-12)  # column scaling for a well-posed NNLS
    coef, _ = nnls((X * w[:, None]) / scale, ms * w, maxiter=50 * X.shape[1])
    return CostModel(coef / scale)


def _family_keys(layer: LayerConfig) -> tuple[tuple, ...]:
    """Sibling families from the most to the least specific."""
    se = layer.se_ratio > 0
    return (
        (layer.op, layer.kernel, layer.stride, layer.expansion, se, layer.skip),
        (layer.op, layer.kernel, layer.stride, layer.expansion, se),
        (layer.op, layer.kernel, layer.stride),
        (layer.op,),
    )


@dataclass
class Siblings:
    """Table entries grouped by family, with their log residuals against the cost model."""

    families: list[dict[tuple, tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)

    @classmethod
    def build(cls, layers: list[LayerConfig], ms: np.ndarray, raw: np.ndarray) -> "Siblings":
        """From table entries, their latencies and the cost model's predictions for them."""
        resid = np.log(np.maximum(ms, 1e-6) / np.maximum(raw, 1e-6))
        levels: list[dict[tuple, list]] = [{} for _ in range(4)]
        for layer, r in zip(layers, resid):
            pos = (math.log(layer.in_channels), math.log(layer.out_channels), math.log(layer.resolution))
            for level, key in zip(levels, _family_keys(layer)):
                level.setdefault(key, []).append((pos, r))
        families = [{k: (np.array([p for p, _ in v]), np.array([r for _, r in v])) for k, v in level.items()}
                    for level in levels]
        return cls(families)

    def log_correction(self, layer: LayerConfig) -> tuple[float, int]:
        """(log ratio to apply to the cost model, family level used: 0 most specific, 4 none)."""
        pos = np.array([math.log(layer.in_channels), math.log(layer.out_channels), math.log(layer.resolution)])
        for level, key in enumerate(_family_keys(layer)):
            found = self.families[level].get(key) if level < len(self.families) else None
            if found is None:
                continue
            points, resid = found
            d = np.abs(points - pos) @ np.array([1.0, 1.0, 2.0])
            nearest = np.argsort(d)[:_K_NEAREST]
            w = 1.0 / (d[nearest] + 0.1)
            return float(resid[nearest] @ w / w.sum()), level
        return 0.0, 4
