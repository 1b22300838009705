"""The end-to-end correction: from isolated layer latencies to a whole network's latency.

A layer timed alone differs from the same layer inside a network: the
network pays the interpreter's per-invoke overhead once (each micro-model paid
it once per layer), and a layer runs with caches holding its predecessor's
output rather than its own previous run. The correction is linear and additive
over layers, so it can be precomputed per layer::

    latency = intercept + sum over layers (scale[op] * isolated_ms + per_layer)

``scale`` is stored per layer op (``cn``, ``ds``, ``ir``, ``fc``, and ``op``
for lone operators of a .tflite file that match no layer pattern; those pay no
per-layer term); ``per_layer`` may be negative (the per-invoke overhead the
micro-models paid).
It is fitted on the calibration set (architectures measured end to end) by
bounded least squares on relative error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from latprof.errors import PredictorError

__all__ = ["Correction", "fit_correction", "UNIT_KINDS", "unit_features"]

UNIT_KINDS = ("cn", "ds", "ir", "fc", "op")  # "op": a lone .tflite operator no layer pattern matched
_FIT_KINDS = ("cn", "ds", "ir", "fc")


def unit_features(units: list[tuple[str, float]]) -> np.ndarray:
    """Design row for one network from its ``(kind, isolated ms)`` units: [1, ms per kind..., n_units]."""
    row = np.zeros(2 + len(_FIT_KINDS))
    row[0] = 1.0
    for kind, ms in units:
        row[1 + _FIT_KINDS.index(kind if kind in _FIT_KINDS else "ir")] += ms
        row[-1] += 1.0
    return row


@dataclass(frozen=True)
class Correction:
    """Fitted end-to-end correction (all times in ms)."""

    intercept_ms: float
    scale: dict[str, float]
    per_layer_ms: float

    def unit_ms(self, kind: str, isolated_ms: float) -> float:
        """A unit's share of the network latency (lone operators pay no per-layer term)."""
        return self.scale.get(kind, self.scale["ir"]) * isolated_ms + (self.per_layer_ms if kind != "op" else 0.0)

    def network_ms(self, units: list[tuple[str, float]]) -> float:
        return self.intercept_ms + sum(self.unit_ms(k, ms) for k, ms in units)

    def to_json(self) -> dict:
        return {"intercept_ms": self.intercept_ms, "scale": dict(self.scale), "per_layer_ms": self.per_layer_ms}

    @classmethod
    def from_json(cls, data: dict) -> "Correction":
        return cls(float(data["intercept_ms"]), {k: float(v) for k, v in data["scale"].items()},
                   float(data["per_layer_ms"]))

    @classmethod
    def identity(cls) -> "Correction":
        """No correction: the plain sum of isolated latencies."""
        return cls(0.0, {k: 1.0 for k in UNIT_KINDS}, 0.0)


def fit_correction(rows: np.ndarray, measured_ms: np.ndarray) -> Correction:
    """Fit on design rows from :func:`unit_features` and the measured end-to-end latencies.

    One scale for all layer ops that vary across the calibration set (a scale
    per op was no better in cross-validation on a noisy host, and is easier to
    drag), an intercept and a per-layer term; robust (soft-L1) least squares on
    relative error, so a network timed while the host was busy cannot pull the fit.
    """
    if len(measured_ms) < 3:
        raise PredictorError(f"{len(measured_ms)} calibration architecture(s) is too few to fit the end-to-end "
                             "correction; run `latprof build-lut --calibration 60` (at least 20 recommended)")
    kinds = rows[:, 1:1 + len(_FIT_KINDS)]
    # A kind absent from every calibration network, or the same in all of them (the classifier of one space),
    # cannot be told apart from the intercept: it keeps scale 1.
    used = kinds.std(axis=0) > 1e-9 * np.maximum(kinds.mean(axis=0), 1e-12)
    design = np.column_stack([rows[:, 0], kinds[:, used].sum(axis=1), rows[:, -1]])
    target = measured_ms - kinds[:, ~used].sum(axis=1)
    sol = least_squares(lambda x: (design @ x - target) / measured_ms, np.array([0.0, 1.0, 0.0]),
                        bounds=([0.0, 0.5, -1.0], [np.inf, 2.0, 1.0]), loss="soft_l1", f_scale=0.02).x
    scale = {kind: float(sol[1]) if u else 1.0 for kind, u in zip(_FIT_KINDS, used)}
    scale["op"] = float(sol[1])
    return Correction(float(sol[0]), scale, float(sol[2]))
