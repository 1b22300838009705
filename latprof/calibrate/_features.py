"""What a model costs on the reference device, broken down by operator kind.

The reference cost of a model is its measured end-to-end latency on the
reference device (the host), split across operator kinds in proportion to the
per-operator times of the same model's op profile. Splitting a measured total
(rather than summing isolated op times) keeps per-invoke overhead and the
effects of running ops in sequence inside the figure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "op_kind", "ReferenceCost", "reference_cost"]

#: Operator kinds, in feature order.
KINDS = ("conv", "depthwise", "pointwise", "se", "pooling", "elementwise", "other")
_ELEMENTWISE = {"ADD", "MUL", "SUB", "DIV", "HARD_SWISH", "LOGISTIC", "RELU", "RELU6", "TANH", "MAXIMUM", "MINIMUM"}
_POOLING = {"MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D"}


def _spatial(shape: tuple[int, ...]) -> int:
    return shape[1] * shape[2] if len(shape) == 4 else 0


def op_kind(op) -> str:
    """The kind of one :class:`latprof.space.TFLiteOp` (see :data:`KINDS`)."""
    outputs = op.output_shapes
    out_spatial = _spatial(outputs[0]) if outputs else 0
    if op.name == "DEPTHWISE_CONV_2D":
        return "depthwise"
    if op.name == "CONV_2D":
        weights = op.weight_shapes
        kernel = weights[0][1] * weights[0][2] if weights and len(weights[0]) == 4 else 1
        if kernel > 1:
            return "conv"
        return "se" if out_spatial == 1 else "pointwise"
    if op.name in _POOLING:
        return "pooling"
    if op.name in _ELEMENTWISE:
        shapes = op.input_shapes
        broadcast = len(shapes) == 2 and shapes[0] != shapes[1]  # the SE excitation scale
        return "se" if out_spatial == 1 or broadcast else "elementwise"
    return "other"


@dataclass(frozen=True)
class ReferenceCost:
    """A model's reference-device cost: total, per kind (ms), and multiply-adds and bytes moved per kind."""

    total_ms: float
    kind_ms: dict[str, float]
    kind_macs: dict[str, float]
    kind_bytes: dict[str, float]

    def vector(self) -> np.ndarray:
        """Per-kind milliseconds in :data:`KINDS` order."""
        return np.array([self.kind_ms.get(k, 0.0) for k in KINDS])

    def gmacs(self) -> np.ndarray:
        """Per-kind multiply-adds (billions) in :data:`KINDS` order."""
        return np.array([self.kind_macs.get(k, 0.0) for k in KINDS]) / 1e9

    def to_dict(self) -> dict:
        return {"total_ms": self.total_ms, "kind_ms": self.kind_ms, "kind_macs": self.kind_macs,
                "kind_bytes": self.kind_bytes}


def reference_cost(ops: list, op_ms: list[float], total_ms: float) -> ReferenceCost:
    """Split ``total_ms`` across kinds by the op profile ``op_ms`` (one time per op of ``ops``, same order)."""
    if len(ops) != len(op_ms):
        raise ValueError(f"op profile has {len(op_ms)} rows for {len(ops)} operators")
    iso, macs, moved = defaultdict(float), defaultdict(float), defaultdict(float)
    for op, ms in zip(ops, op_ms):
        kind = op_kind(op)
        iso[kind] += ms
        macs[kind] += op.macs()
        moved[kind] += 4.0 * (sum(int(np.prod(s)) for s in op.input_shapes + op.output_shapes) + op.params())
    scale = total_ms / sum(iso.values())
    return ReferenceCost(
        total_ms=total_ms,
        kind_ms={k: iso[k] * scale for k in KINDS if k in iso},
        kind_macs={k: macs[k] for k in KINDS if k in macs},
        kind_bytes={k: moved[k] for k in KINDS if k in moved},
    )
