"""A per-operator-kind cost model of the reference device, for splitting a layer's time across kinds.

Fitted on the op profiles measured while calibrating (thousands of operator
timings): ``ms = a_k * GMACs + b_k * MB moved + c_k`` per kind, non-negative.
It only has to get the *proportions* inside a layer right; totals come from
the reference device's lookup table or from end-to-end measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from latprof.calibrate._features import KINDS, op_kind

__all__ = ["OpCostModel", "op_features"]


def op_features(op) -> tuple[str, float, float]:
    """(kind, GMACs, MB moved) of one TFLite op."""
    moved = 4.0 * (sum(int(np.prod(s)) for s in op.input_shapes + op.output_shapes) + op.params())
    return op_kind(op), op.macs() / 1e9, moved / 1e6


@dataclass(frozen=True)
class OpCostModel:
    """Isolated op time on the reference device, per kind: coefficients (per GMAC, per MB, constant) in ms."""

    coefficients: dict[str, tuple[float, float, float]]

    @classmethod
    def fit(cls, samples: list[tuple[str, float, float, float]]) -> "OpCostModel":
        """Fit from ``(kind, gmacs, mb, measured_ms)`` samples; kinds without samples get the pooled fit."""
        def solve(rows):
            x = np.array([[g, m, 1.0] for _, g, m, _ in rows])
            y = np.array([ms for *_, ms in rows])
            weights = 1.0 / np.maximum(y, 1e-3)  # relative error: small ops matter as much as big ones
            return tuple(float(v) for v in lsq_linear(x * weights[:, None], y * weights, bounds=(0, np.inf)).x)

        pooled = solve(samples) if samples else (0.0, 0.0, 0.01)
        coefficients = {}
        for kind in KINDS:
            rows = [s for s in samples if s[0] == kind]
            coefficients[kind] = solve(rows) if len(rows) >= 3 else pooled
        return cls(coefficients)

    def op_ms(self, kind: str, gmacs: float, mb: float) -> float:
        a, b, c = self.coefficients[kind]
        return a * gmacs + b * mb + c

    def kind_ms(self, ops: list) -> np.ndarray:
        """Estimated isolated time per kind (:data:`KINDS` order) of a list of ops."""
        out = np.zeros(len(KINDS))
        for op in ops:
            kind, gmacs, mb = op_features(op)
            out[KINDS.index(kind)] += self.op_ms(kind, gmacs, mb)
        return out

    def to_json(self) -> dict:
        return {k: list(v) for k, v in self.coefficients.items()}

    @classmethod
    def from_json(cls, data: dict) -> "OpCostModel":
        return cls({k: tuple(float(x) for x in v) for k, v in data.items()})
