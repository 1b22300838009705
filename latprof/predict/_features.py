"""Operator descriptions and regression features, for layers and for arbitrary .tflite operators.

A layer's latency is modelled as the sum of its operators' costs; each
operator falls in a *group* (``conv1x1``, ``dw5s2``, ``mean``, ...) and costs
``c0 + c1*MACs + c2*input + c3*output + c4*weights`` with the group's own
coefficients (elements in units of 1e5, MACs in millions). Operators of kinds
no table ever measured borrow the coefficients of the closest measured group
(:data:`FALLBACK`), e.g. ``HARD_SWISH`` costs like ``LOGISTIC``, ``PAD`` like ``ADD``.
"""

from __future__ import annotations

import numpy as np

from latprof.space import LayerConfig, Operator, TFLiteOp, layer_operators, op_kind, tflite_operators

__all__ = ["OpDesc", "layer_ops", "tflite_op_desc", "GROUPS", "FALLBACK", "N_FEATURES", "group_of",
           "op_vector", "layer_vector", "FEATURE_NAMES"]

GROUPS = (
    "conv1x1", "conv1x1_vec", "conv3s1", "conv3s2", "conv5s1", "conv5s2", "dw3s1", "dw3s2", "dw5s1", "dw5s2",
    "fc", "mean", "pool", "add", "mul", "logistic", "softmax",
)
# Groups no table entry may exercise, and the measured group whose coefficients they borrow.
FALLBACK = {
    "conv7s1": "conv5s1", "conv7s2": "conv5s2", "dw7s1": "dw5s1", "dw7s2": "dw5s2",
    "hard_swish": "logistic", "elementwise": "add", "copy": "add",
}
FEATURE_NAMES = ("per_op", "macs_m", "in_1e5", "out_1e5", "weights_1e5")
N_FEATURES = len(FEATURE_NAMES)

# latprof.space's fine kinds (op_kind) in the groups above; "act" splits by operator below.
_GROUP_OF_KIND = {"conv1x1_g": "conv1x1", "maxpool": "pool", "concat": "copy", "pad": "copy", "reshape": "copy"}
_ACT_GROUPS = {"LOGISTIC": "logistic", "TANH": "logistic", "HARD_SWISH": "hard_swish"}

OpDesc = Operator


def group_of(d: Operator) -> str:
    """The cost group of an operator (a member of GROUPS or a key of FALLBACK)."""
    kind = op_kind(d)
    if kind == "act":
        return _ACT_GROUPS.get(d.kind, "elementwise")
    if kind in ("resize", "other"):
        return "elementwise"
    return _GROUP_OF_KIND.get(kind, kind)


def op_vector(d: Operator) -> np.ndarray:
    return d.features()


def layer_vector(ops: list[OpDesc]) -> np.ndarray:
    """The layer's design-matrix row: per group, the sum of its operators' feature vectors."""
    row = np.zeros(len(GROUPS) * N_FEATURES)
    for d in ops:
        g = group_of(d)
        g = FALLBACK.get(g, g)
        i = GROUPS.index(g) * N_FEATURES
        row[i:i + N_FEATURES] += op_vector(d)
    return row


def layer_ops(layer: LayerConfig) -> list[Operator]:
    """The operators of one layer (:func:`latprof.space.layer_operators`)."""
    return list(layer_operators(layer))


def tflite_op_desc(op: TFLiteOp) -> Operator:
    """The :class:`latprof.space.Operator` of one operator read from a .tflite file."""
    return tflite_operators([op])[0]
