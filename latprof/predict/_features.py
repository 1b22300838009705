"""Operator descriptions and regression features, for layers and for arbitrary .tflite operators.

A layer's latency is modelled as the sum of its operators' costs; each
operator falls in a *group* (``conv1x1``, ``dw5s2``, ``mean``, ...) and costs
``c0 + c1*MACs + c2*input + c3*output + c4*weights`` with the group's own
coefficients (elements in units of 1e5, MACs in millions). Operators of kinds
no table ever measured borrow the coefficients of the closest measured group
(:data:`FALLBACK`), e.g. ``HARD_SWISH`` costs like ``LOGISTIC``, ``PAD`` like ``ADD``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latprof.space import LayerConfig, TFLiteOp

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

_ELEMENTWISE = {"ADD": "add", "SUB": "add", "MUL": "mul", "DIV": "mul", "LOGISTIC": "logistic", "TANH": "logistic",
                "HARD_SWISH": "hard_swish", "SOFTMAX": "softmax", "MEAN": "mean", "AVERAGE_POOL_2D": "pool",
                "MAX_POOL_2D": "pool", "FULLY_CONNECTED": "fc"}
_COPY = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PAD", "PADV2", "CONCATENATION", "TRANSPOSE", "STRIDED_SLICE",
         "SLICE", "QUANTIZE", "DEQUANTIZE"}


@dataclass(frozen=True)
class OpDesc:
    """What the cost model needs to know about one operator."""

    kind: str  # TFLite builtin name
    kernel: int = 1
    stride: int = 1
    in_elems: int = 0  # elements of the non-constant inputs
    out_elems: int = 0
    weight_elems: int = 0
    macs: int = 0
    out_spatial: int = 1  # output height x width (1 for vectors)


def group_of(d: OpDesc) -> str:
    """The cost group of an operator (a member of GROUPS or a key of FALLBACK)."""
    if d.kind == "CONV_2D":
        if d.kernel == 1:
            return "conv1x1" if d.out_spatial > 1 else "conv1x1_vec"
        k = 3 if d.kernel <= 3 else 5 if d.kernel <= 5 else 7
        return f"conv{k}s{min(d.stride, 2)}"
    if d.kind == "DEPTHWISE_CONV_2D":
        k = 3 if d.kernel <= 3 else 5 if d.kernel <= 5 else 7
        return f"dw{k}s{min(d.stride, 2)}"
    if d.kind in _ELEMENTWISE:
        return _ELEMENTWISE[d.kind]
    if d.kind in _COPY:
        return "copy"
    return "elementwise"


def op_vector(d: OpDesc) -> np.ndarray:
    return np.array([1.0, d.macs / 1e6, d.in_elems / 1e5, d.out_elems / 1e5, d.weight_elems / 1e5])


def layer_vector(ops: list[OpDesc]) -> np.ndarray:
    """The layer's design-matrix row: per group, the sum of its operators' feature vectors."""
    row = np.zeros(len(GROUPS) * N_FEATURES)
    for d in ops:
        g = group_of(d)
        g = FALLBACK.get(g, g)
        i = GROUPS.index(g) * N_FEATURES
        row[i:i + N_FEATURES] += op_vector(d)
    return row


def _conv(kind: str, hw_in: int, hw_out: int, cin: int, cout: int, k: int, s: int, groups: int = 1) -> OpDesc:
    if kind == "DEPTHWISE_CONV_2D":
        return OpDesc(kind, k, s, hw_in * cin, hw_out * cout, k * k * cout + cout, hw_out * k * k * cout, hw_out)
    per_group = k * k * cin // groups * cout  # each output channel sees cin / groups inputs
    return OpDesc(kind, k, s, hw_in * cin, hw_out * cout, per_group + cout, hw_out * per_group, hw_out)


def layer_ops(layer: LayerConfig) -> list[OpDesc]:
    """The operators of one layer, as :mod:`latprof.space._flatbuffer` (and the converter) emit them."""
    r, ro = layer.resolution, layer.out_resolution
    hw_in, hw_out = r * r, ro * ro
    cin, cout = layer.in_channels, layer.out_channels
    if layer.op == "fc":
        return [OpDesc("MEAN", in_elems=hw_in * cin, out_elems=cin),
                OpDesc("FULLY_CONNECTED", in_elems=cin, out_elems=cout, weight_elems=cin * cout + cout,
                       macs=cin * cout),
                OpDesc("SOFTMAX", in_elems=cout, out_elems=cout)]
    if layer.is_cell_piece:
        return _cell_layer_ops(layer, hw_in, hw_out, cin, cout)
    ops: list[OpDesc] = []
    mid = layer.mid_channels
    k, s = layer.kernel, layer.stride
    if layer.op == "cn":
        ops.append(_conv("CONV_2D", hw_in, hw_out, cin, cout, k, s))
    else:
        if layer.op == "ir":
            ops.append(_conv("CONV_2D", hw_in, hw_in, cin, mid, 1, 1, layer.groups))
            if layer.groups > 1:  # channel shuffle: RESHAPE -> TRANSPOSE -> RESHAPE, copies of the expanded map
                ops += [OpDesc(kind, in_elems=hw_in * mid, out_elems=hw_in * mid, out_spatial=hw_in)
                        for kind in ("RESHAPE", "TRANSPOSE", "RESHAPE")]
        ops.append(_conv("DEPTHWISE_CONV_2D", hw_in, hw_out, mid, mid, k, s))
    one_by_one = ro == 1  # the converter drops the SE MEAN and reshapes the shortcut on 1x1 maps
    if layer.se_ratio > 0:
        se = layer.se_channels
        if not one_by_one:
            ops.append(OpDesc("MEAN", in_elems=hw_out * mid, out_elems=mid))
        ops += [_conv("CONV_2D", 1, 1, mid, se, 1, 1), _conv("CONV_2D", 1, 1, se, mid, 1, 1),
                OpDesc("LOGISTIC", in_elems=mid, out_elems=mid),
                OpDesc("MUL", in_elems=hw_out * mid + mid, out_elems=hw_out * mid, out_spatial=hw_out)]
    if layer.op in ("ds", "ir"):
        ops.append(_conv("CONV_2D", hw_out, hw_out, mid, cout, 1, 1, layer.groups))
    if layer.skip == "pool":
        ops.append(OpDesc("AVERAGE_POOL_2D", 3, s, hw_in * cin, hw_out * cin, out_spatial=hw_out))
        if layer.has_projection_shortcut:
            ops.append(_conv("CONV_2D", hw_out, hw_out, cin, cout, 1, 1))
    if layer.skip in ("pool", "id"):
        if one_by_one:
            ops.append(OpDesc("RESHAPE", in_elems=cout, out_elems=cout))
        ops.append(OpDesc("ADD", in_elems=2 * hw_out * cout, out_elems=hw_out * cout, out_spatial=hw_out))
    return ops


def _elementwise(kind: str, elems: int, operands: int, spatial: int) -> OpDesc:
    return OpDesc(kind, in_elems=operands * elems, out_elems=elems, out_spatial=spatial)


def _cell_layer_ops(layer: LayerConfig, hw_in: int, hw_out: int, cin: int, cout: int) -> list[OpDesc]:
    """The operators of a NAS-Bench-201 cell piece (see :mod:`latprof.space._layers`)."""
    if layer.op == "relu":
        return [_elementwise("RELU", hw_out * cout, 1, hw_out)]
    if layer.op == "pool":
        return [OpDesc("AVERAGE_POOL_2D", 3, 1, hw_in * cin, hw_out * cout, out_spatial=hw_out)]
    if layer.op == "add":
        return [_elementwise("ADD", hw_out * cout, 2, hw_out)]
    if layer.op == "bnrelu":
        return [_elementwise("MUL", hw_out * cout, 1, hw_out)]
    s = layer.stride  # "res"
    return [_elementwise("RELU", hw_in * cin, 1, hw_in), _conv("CONV_2D", hw_in, hw_out, cin, cout, 3, s),
            _conv("CONV_2D", hw_out, hw_out, cout, cout, 3, 1),
            OpDesc("AVERAGE_POOL_2D", 2, s, hw_in * cin, hw_out * cin, out_spatial=hw_out),
            _conv("CONV_2D", hw_out, hw_out, cin, cout, 1, 1), _elementwise("ADD", hw_out * cout, 2, hw_out)]


def tflite_op_desc(op: TFLiteOp) -> OpDesc:
    """An :class:`OpDesc` for an operator read from any .tflite file."""
    data_in = sum(t.size for t in op.inputs if t is not None and not t.constant)
    out = sum(t.size for t in op.outputs)
    weights = sum(t.size for t in op.inputs if t is not None and t.constant) if op.name in (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") else 0
    shape = op.outputs[0].shape if op.outputs else ()
    spatial = shape[1] * shape[2] if len(shape) == 4 else 1
    kernel, stride = 1, 1
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1 and op.inputs[1] is not None:
        kernel = op.inputs[1].shape[1]
        stride = int(op.attributes.get("stride_h", 1))
    elif op.name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kernel, stride = int(op.attributes.get("filter_height", 1)), int(op.attributes.get("stride_h", 1))
    return OpDesc(op.name, kernel, stride, data_in, out, weights, op.macs(), spatial)
