"""The one operator taxonomy, and the one description of what a layer becomes.

:class:`Operator` is what a cost model needs to know about one TFLite
operator. :func:`layer_operators` gives the operators a :class:`LayerConfig`
compiles to (what :mod:`latprof.space._flatbuffer` and the TFLite converter
emit), :func:`tflite_operators` the same description for the operators read
from any .tflite file.

Two levels of kind:

* :func:`op_kind`, the *fine* kind (:data:`OP_KINDS`): ``conv1x1``,
  ``conv1x1_vec`` (on a 1x1 map), ``conv1x1_g`` (grouped), ``conv{3,5,7}s{1,2}``
  and ``dw{3,5,7}s{1,2}`` (kernel bucket <=3 / <=5 / larger, of the effective
  kernel under dilation; stride 1 or >= 2), ``fc``, ``mean``, ``pool`` (average),
  ``maxpool``, ``add`` (ADD/SUB/MAXIMUM/MINIMUM), ``mul`` (MUL/DIV), ``act``
  (standalone activations), ``softmax``, ``concat``, ``pad``, ``reshape``,
  ``copy`` (transpose, split, slice, gather, and an int8 model's quantize /
  dequantize), ``resize``, ``other``.
* :func:`op_family`, the *family* (:data:`FAMILIES`): ``conv`` (kernel > 1),
  ``depthwise``, ``pointwise``, ``pooling``, ``elementwise``, ``other``, and
  ``se``: a pointwise conv or element-wise op on a 1x1 map, or a broadcast
  element-wise op (the squeeze-and-excitation scale), whose cost is a per-op
  overhead rather than a per-element one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Sequence

import numpy as np

from latprof.errors import ArchitectureError

if TYPE_CHECKING:
    from latprof.space._layers import LayerConfig
    from latprof.space._tflite import TFLiteOp

__all__ = ["Operator", "layer_operators", "tflite_operators", "OP_KINDS", "op_kind", "FAMILIES", "op_family"]

OP_KINDS = (
    "conv1x1", "conv1x1_vec", "conv1x1_g", "conv3s1", "conv3s2", "conv5s1", "conv5s2", "conv7s1", "conv7s2", "conv_g",
    "dw3s1", "dw3s2", "dw5s1", "dw5s2", "dw7s1", "dw7s2", "fc", "mean", "pool", "maxpool", "add", "mul", "act",
    "softmax", "concat", "pad", "reshape", "copy", "resize", "other",
)
FAMILIES = ("conv", "depthwise", "pointwise", "se", "pooling", "elementwise", "other")

_KINDS_BY_NAME = {
    "FULLY_CONNECTED": "fc", "MEAN": "mean", "AVERAGE_POOL_2D": "pool", "MAX_POOL_2D": "maxpool",
    **dict.fromkeys(("ADD", "SUB", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"), "add"),
    **dict.fromkeys(("MUL", "DIV"), "mul"),
    **dict.fromkeys(("LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU",
                     "PRELU", "ELU", "GELU"), "act"),
    "SOFTMAX": "softmax", "CONCATENATION": "concat", "PAD": "pad", "PADV2": "pad", "MIRROR_PAD": "pad",
    **dict.fromkeys(("RESHAPE", "SQUEEZE", "EXPAND_DIMS"), "reshape"),
    # QUANTIZE / DEQUANTIZE (the edges of an int8 model) convert each element once: priced as copies
    **dict.fromkeys(("TRANSPOSE", "SPLIT", "SPLIT_V", "STRIDED_SLICE", "SLICE", "GATHER", "PACK", "UNPACK", "QUANTIZE",
                     "DEQUANTIZE"), "copy"),
    **dict.fromkeys(("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"), "resize"),
}
# Operator.key(): "op:" KIND then one "_<tag><int>" per remaining field, in field order. KIND is greedy, so a
# custom op code that itself contains underscores or tags still reads back whole.
_KEY_TAGS = {"kernel": "k", "stride": "s", "dilation": "d", "groups": "g", "in_elems": "i", "out_elems": "o",
             "weight_elems": "w", "macs": "m", "out_spatial": "p", "broadcast": "b"}
_KEY = re.compile(r"op:(?P<kind>\S+)" + "".join(f"_{t}(?P<{f}>\\d+)" for f, t in _KEY_TAGS.items()))
_BINARY = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"}
_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
_FAMILY_BY_KIND = {"mean": "pooling", "pool": "pooling", "maxpool": "pooling",
                   "add": "elementwise", "mul": "elementwise", "act": "elementwise"}


@dataclass(frozen=True)
class Operator:
    """What the cost model needs to know about one operator."""

    kind: str  # TFLite builtin name
    kernel: int = 1  # the larger filter side (convs, pools)
    stride: int = 1
    dilation: int = 1
    groups: int = 1  # CONV_2D: input channels / the filter's input channels
    in_elems: int = 0  # elements of the non-constant inputs
    out_elems: int = 0
    weight_elems: int = 0  # constant inputs of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (weights + bias)
    macs: int = 0
    out_spatial: int = 1  # output height x width (1 for vectors)
    broadcast: bool = False  # a binary element-wise op whose two inputs differ in shape (e.g. the SE scale)

    def key(self) -> str:
        """The table key of this operator, every field in order, e.g. ``op:DEPTHWISE_CONV_2D_k7_s1_d2_g1_i100_o200
        _w300_m400_p49_b1`` (one string): ``op:<kind>_k<kernel>_s<stride>_d<dilation>_g<groups>_i<in_elems>
        _o<out_elems>_w<weight_elems>_m<macs>_p<out_spatial>_b<0|1>``, with ``kind`` the builtin name (or custom
        code) verbatim. :meth:`from_key` reads it back exactly."""
        return "op:" + self.kind + "".join(f"_{t}{int(getattr(self, f))}" for f, t in _KEY_TAGS.items())

    @classmethod
    def from_key(cls, key: str) -> Operator:
        """The operator whose :meth:`key` is ``key``; :class:`ArchitectureError` if ``key`` is not one."""
        match = _KEY.fullmatch(key)
        if match is None or int(match["broadcast"]) > 1:
            raise ArchitectureError(f"{key!r} is not an operator key: expected op:<KIND>_k.._s.._d.._g.._i.._o.._w.."
                                    "_m.._p.._b<0|1> as written by Operator.key()")
        values = {f.name: int(match[f.name]) for f in fields(cls) if f.name != "kind"}
        return cls(match["kind"], **{**values, "broadcast": bool(values["broadcast"])})

    def features(self) -> np.ndarray:
        """``[1, MACs / 1e6, input elements / 1e5, output elements / 1e5, weights / 1e5]``."""
        return np.array([1.0, self.macs / 1e6, self.in_elems / 1e5, self.out_elems / 1e5, self.weight_elems / 1e5])


def _bucket(kernel: int, dilation: int) -> int:
    k = dilation * (kernel - 1) + 1
    return 3 if k <= 3 else 5 if k <= 5 else 7


def op_kind(op: Operator) -> str:
    """The fine kind of ``op`` (a member of :data:`OP_KINDS`)."""
    if op.kind == "CONV_2D":
        if op.kernel == 1:
            return "conv1x1_vec" if op.out_spatial == 1 else "conv1x1_g" if op.groups > 1 else "conv1x1"
        if op.groups > 1:  # a grouped k x k conv (ConvNeXt, ResNeXt) runs nothing like a dense or depthwise one
            return "conv_g"
        return f"conv{_bucket(op.kernel, op.dilation)}s{min(op.stride, 2)}"
    if op.kind == "DEPTHWISE_CONV_2D":
        return f"dw{_bucket(op.kernel, op.dilation)}s{min(op.stride, 2)}"
    return _KINDS_BY_NAME.get(op.kind, "other")


def op_family(op: Operator) -> str:
    """The family of ``op`` (a member of :data:`FAMILIES`)."""
    kind = op_kind(op)
    if kind.startswith("conv1x1"):
        return "se" if op.out_spatial == 1 else "pointwise"
    if kind.startswith("conv"):
        return "conv"
    if kind.startswith("dw"):
        return "depthwise"
    family = _FAMILY_BY_KIND.get(kind, "other")
    if family == "elementwise" and (op.out_spatial == 1 or op.broadcast):
        return "se"
    return family


# ---------------------------------------------------------------- layers


def _conv(kind: str, hw_in: int, hw_out: int, cin: int, cout: int, k: int, s: int, groups: int = 1) -> Operator:
    if kind == "DEPTHWISE_CONV_2D":
        return Operator(kind, k, s, in_elems=hw_in * cin, out_elems=hw_out * cout, weight_elems=k * k * cout + cout,
                        macs=hw_out * k * k * cout, out_spatial=hw_out)
    per_group = k * k * cin // groups * cout  # each output channel sees cin / groups inputs
    return Operator(kind, k, s, groups=groups, in_elems=hw_in * cin, out_elems=hw_out * cout,
                    weight_elems=per_group + cout, macs=hw_out * per_group, out_spatial=hw_out)


def _elementwise(kind: str, elems: int, operands: int, spatial: int, broadcast: bool = False) -> Operator:
    return Operator(kind, in_elems=operands * elems, out_elems=elems, out_spatial=spatial, broadcast=broadcast)


def _copy(kind: str, elems: int, spatial: int) -> Operator:
    return Operator(kind, in_elems=elems, out_elems=elems, out_spatial=spatial)


def layer_operators(layer: LayerConfig) -> tuple[Operator, ...]:
    """The operators of one layer in run order, as :mod:`latprof.space._flatbuffer` (and the converter) emit them.

    BatchNorm and ReLU/ReLU6 are folded into the convolutions. With a pooling
    shortcut the converter may schedule the shortcut's operators before or
    between the main path's; the writer keeps this order, the ADD is last.
    """
    r, ro = layer.resolution, layer.out_resolution
    hw_in, hw_out = r * r, ro * ro
    cin, cout = layer.in_channels, layer.out_channels
    if layer.op == "fc":
        return (Operator("MEAN", in_elems=hw_in * cin, out_elems=cin),
                Operator("FULLY_CONNECTED", in_elems=cin, out_elems=cout, weight_elems=cin * cout + cout,
                         macs=cin * cout),
                Operator("SOFTMAX", in_elems=cout, out_elems=cout))
    if layer.is_cell_piece:
        return _cell_operators(layer, hw_in, hw_out, cin, cout)
    ops: list[Operator] = []
    mid = layer.mid_channels
    k, s, g = layer.kernel, layer.stride, layer.groups
    if layer.op == "cn":
        ops.append(_conv("CONV_2D", hw_in, hw_out, cin, cout, k, s))
    else:
        if layer.op == "ir":
            ops.append(_conv("CONV_2D", hw_in, hw_in, cin, mid, 1, 1, g))
            if g > 1:  # channel shuffle: (hw, g, mid/g) -> (hw, mid/g, g) -> (h, w, mid), copies of the expanded map
                size = hw_in * mid
                ops += [_copy("RESHAPE", size, hw_in * g), _copy("TRANSPOSE", size, hw_in * mid // g),
                        _copy("RESHAPE", size, hw_in)]
        ops.append(_conv("DEPTHWISE_CONV_2D", hw_in, hw_out, mid, mid, k, s))
    one_by_one = ro == 1  # the converter drops the SE MEAN and reshapes the shortcut on 1x1 maps
    if layer.se_ratio > 0:
        se = layer.se_channels
        if not one_by_one:
            ops.append(Operator("MEAN", in_elems=hw_out * mid, out_elems=mid))
        ops += [_conv("CONV_2D", 1, 1, mid, se, 1, 1), _conv("CONV_2D", 1, 1, se, mid, 1, 1),
                _elementwise("LOGISTIC", mid, 1, 1),
                Operator("MUL", in_elems=hw_out * mid + mid, out_elems=hw_out * mid, out_spatial=hw_out,
                         broadcast=not one_by_one)]
    if layer.op in ("ds", "ir"):
        ops.append(_conv("CONV_2D", hw_out, hw_out, mid, cout, 1, 1, g))
    if layer.skip == "pool":
        ops.append(Operator("AVERAGE_POOL_2D", 3, s, in_elems=hw_in * cin, out_elems=hw_out * cin,
                            out_spatial=hw_out))
        if layer.has_projection_shortcut:
            ops.append(_conv("CONV_2D", hw_out, hw_out, cin, cout, 1, 1))
    if layer.skip in ("pool", "id"):
        if one_by_one:  # the shortcut becomes a vector, so the ADD broadcasts it over the 1x1 map
            ops.append(_copy("RESHAPE", cout, 1))
        ops.append(_elementwise("ADD", hw_out * cout, 2, hw_out, broadcast=one_by_one))
    return tuple(ops)


def _cell_operators(layer: LayerConfig, hw_in: int, hw_out: int, cin: int, cout: int) -> tuple[Operator, ...]:
    """The operators of a NAS-Bench-201 cell piece (see :mod:`latprof.space._layers`)."""
    if layer.op == "relu":
        return (_elementwise("RELU", hw_out * cout, 1, hw_out),)
    if layer.op == "pool":
        return (Operator("AVERAGE_POOL_2D", 3, 1, in_elems=hw_in * cin, out_elems=hw_out * cout, out_spatial=hw_out),)
    if layer.op == "add":
        return (_elementwise("ADD", hw_out * cout, 2, hw_out),)
    if layer.op == "bnrelu":  # the scale is a constant, so one data input
        return (_elementwise("MUL", hw_out * cout, 1, hw_out),)
    s = layer.stride  # "res"
    return (_elementwise("RELU", hw_in * cin, 1, hw_in), _conv("CONV_2D", hw_in, hw_out, cin, cout, 3, s),
            _conv("CONV_2D", hw_out, hw_out, cout, cout, 3, 1),
            Operator("AVERAGE_POOL_2D", s, s, in_elems=hw_in * cin, out_elems=hw_out * cin, out_spatial=hw_out),
            _conv("CONV_2D", hw_out, hw_out, cin, cout, 1, 1), _elementwise("ADD", hw_out * cout, 2, hw_out))


# ---------------------------------------------------------------- any .tflite


def _spatial(shape: tuple[int, ...]) -> int:
    return shape[1] * shape[2] if len(shape) == 4 else 1


def _operator(op: TFLiteOp) -> Operator:
    data = [t for t in op.inputs if t is not None and not t.constant]
    weights = sum(t.size for t in op.inputs if t is not None and t.constant) if op.name in _WEIGHTED else 0
    a = op.attributes
    kernel = stride = dilation = groups = 1
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1 and op.inputs[1] is not None:
        w = op.inputs[1].shape  # CONV_2D [O, H, W, I / groups], DEPTHWISE [1, H, W, C * M]
        kernel = max(w[1], w[2]) if len(w) == 4 else 1
        stride = int(max(a.get("stride_h", 1), a.get("stride_w", 1)))
        dilation = int(max(a.get("dilation_h_factor", 1), a.get("dilation_w_factor", 1)))
        if op.name == "CONV_2D" and data and len(w) == 4 and w[3] and len(data[0].shape) == 4:
            groups = max(1, data[0].shape[3] // w[3])
    elif op.name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kernel = int(max(a.get("filter_height", 1), a.get("filter_width", 1)))
        stride = int(max(a.get("stride_h", 1), a.get("stride_w", 1)))
    broadcast = op.name in _BINARY and len(data) == 2 and data[0].shape != data[1].shape
    return Operator(op.name, kernel, stride, dilation, groups, in_elems=sum(t.size for t in data),
                    out_elems=sum(t.size for t in op.outputs), weight_elems=weights, macs=op.macs(),
                    out_spatial=_spatial(op.outputs[0].shape) if op.outputs else 1, broadcast=broadcast)


def tflite_operators(ops: Sequence[TFLiteOp]) -> list[Operator]:
    """One :class:`Operator` per operator read from a .tflite file (:func:`latprof.space.read_tflite_ops`), in order."""
    return [_operator(op) for op in ops]
