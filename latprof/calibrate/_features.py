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

from latprof.space import FAMILIES, op_family, tflite_operators

__all__ = ["KINDS", "op_kind", "ReferenceCost", "reference_cost"]

#: Operator kinds, in feature order: latprof.space's operator families.
KINDS = FAMILIES


def op_kind(op) -> str:
    """The kind of one :class:`latprof.space.TFLiteOp` (see :data:`KINDS`)."""
    return op_family(tflite_operators([op])[0])


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
