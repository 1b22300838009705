"""Recover latprof layers from the operator graph of any .tflite file.

Walks the data flow from each operator and matches the operator patterns a
:class:`LayerConfig` compiles to (``cn``: conv; ``ds``: depthwise, optional SE,
1x1 projection; ``ir``: 1x1 expansion, depthwise, optional SE, projection;
``fc``: mean, fully connected, softmax; each with an identity or pooling
shortcut). A matched layer can be looked up in the table; operators that match
no pattern (a Keras model's explicit ``PAD`` before a stride-2 depthwise conv,
hard-swish activations, ...) stay lone operators for the regression.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from latprof.errors import ArchitectureError
from latprof.space._layers import LayerConfig
from latprof.space._tflite import TFLiteOp

__all__ = ["recover_layers"]

_ACTS = {"RELU": "relu", "RELU6": "relu6"}
_SE_RATIOS = (0.25, 0.125, 0.5, 0.0625, 1.0)


def recover_layers(ops: list[TFLiteOp]) -> list[tuple[LayerConfig | None, list[TFLiteOp]]]:
    """``(layer, its operators)`` in run order; ``layer`` is None for a lone operator."""
    consumers: dict[int, list[TFLiteOp]] = defaultdict(list)
    producer: dict[int, TFLiteOp] = {}
    for op in ops:
        for t in op.inputs:
            if t is not None and not t.constant:
                consumers[id(t)].append(op)
        for t in op.outputs:
            producer[id(t)] = op
    used: set[int] = set()
    units: list[tuple[LayerConfig | None, list[TFLiteOp]]] = []
    for op in ops:
        if op.index in used:
            continue
        match = _match(op, consumers, producer)
        if match is not None and not any(o.index in used for o in match[1]):
            used.update(o.index for o in match[1])
            units.append(match)
    units += [(None, [op]) for op in ops if op.index not in used]
    return sorted(units, key=lambda u: min(o.index for o in u[1]))


def _main_input(op: TFLiteOp):
    return op.inputs[0] if op.inputs else None


def _sole(consumers, tensor, name: str | None = None) -> TFLiteOp | None:
    cons = consumers.get(id(tensor), [])
    if len(cons) != 1 or (name is not None and cons[0].name != name):
        return None
    return cons[0]


def _conv_ok(op: TFLiteOp) -> bool:
    """SAME padding (or a 1x1 kernel, where padding makes no difference) and no dilation."""
    a = op.attributes
    w = op.inputs[1].shape if len(op.inputs) > 1 and op.inputs[1] is not None else ()
    pointwise = len(w) == 4 and w[1] == w[2] == 1
    return ((a.get("padding") == "SAME" or pointwise)
            and a.get("dilation_h_factor", 1) == 1 and a.get("dilation_w_factor", 1) == 1)


def _is_1x1(op: TFLiteOp, act: str | None = None, padding: str | None = None) -> bool:
    if op is None or op.name != "CONV_2D" or len(op.inputs) < 2 or op.inputs[1] is None:
        return False
    w = op.inputs[1].shape
    a = op.attributes
    return (len(w) == 4 and w[1] == 1 and w[2] == 1 and a.get("stride_h") == 1
            and (act is None or a.get("fused_activation_function") == act)
            and (padding is None or a.get("padding") == padding))


def _se_ratio(cin: int, se: int) -> float:
    for r in _SE_RATIOS:
        if max(1, int(cin * r)) == se:
            return r
    ratio = se / cin
    return ratio if max(1, int(cin * ratio)) == se else (se + 1e-6) / cin


def _match(anchor: TFLiteOp, consumers, producer) -> tuple[LayerConfig, list[TFLiteOp]] | None:
    x = _main_input(anchor)
    if x is None or len(x.shape) != 4 or x.shape[1] != x.shape[2]:
        return None
    res, cin = x.shape[1], x.shape[3]
    if anchor.name == "MEAN" and not anchor.attributes.get("keep_dims", False):
        fc = _sole(consumers, anchor.outputs[0], "FULLY_CONNECTED")
        sm = _sole(consumers, fc.outputs[0], "SOFTMAX") if fc else None
        if sm is None or fc.attributes.get("fused_activation_function") != "NONE":
            return None
        return LayerConfig("fc", 1, 1, 1, 0.0, "none", cin, fc.outputs[0].shape[-1], res, "none"), [anchor, fc, sm]
    matched = [anchor]
    if anchor.name == "CONV_2D" and _conv_ok(anchor):
        act = _ACTS.get(anchor.attributes.get("fused_activation_function"))
        dw = _sole(consumers, anchor.outputs[0], "DEPTHWISE_CONV_2D")
        if act and _is_1x1(anchor) and dw is not None and _conv_ok(dw) \
                and _ACTS.get(dw.attributes.get("fused_activation_function")) == act:
            mid = anchor.outputs[0].shape[3]
            if mid % cin:
                return None
            op, expansion, core = "ir", mid // cin, dw
            matched.append(dw)
        else:
            op, expansion, core = "cn", 1, anchor
    elif anchor.name == "DEPTHWISE_CONV_2D" and _conv_ok(anchor) and anchor.attributes.get("depth_multiplier") == 1:
        op, expansion, core = "ds", 1, anchor
        act = _ACTS.get(anchor.attributes.get("fused_activation_function"))
    else:
        return None
    if act is None:
        return None
    kernel, stride = core.inputs[1].shape[1], int(core.attributes.get("stride_h", 1))
    if core.inputs[1].shape[2] != kernel or int(core.attributes.get("stride_w", 1)) != stride:
        return None
    t = core.outputs[0]
    se_ratio = 0.0
    cons = consumers.get(id(t), [])
    names = sorted(o.name for o in cons)
    one_by_one = t.shape[1] == 1  # the converter drops the SE MEAN on 1x1 maps
    if len(cons) == 2 and names == (["CONV_2D", "MUL"] if one_by_one else ["MEAN", "MUL"]):
        mul = next(o for o in cons if o.name == "MUL")
        mean = None if one_by_one else next(o for o in cons if o.name == "MEAN")
        reduce = next(o for o in cons if o.name == "CONV_2D") if one_by_one else _sole(consumers, mean.outputs[0])
        expand = _sole(consumers, reduce.outputs[0]) if _is_1x1(reduce, "RELU") else None
        sig = _sole(consumers, expand.outputs[0], "LOGISTIC") if _is_1x1(expand, "NONE") else None
        if (mean is not None and not mean.attributes.get("keep_dims")) or sig is None \
                or _sole(consumers, sig.outputs[0]) is not mul:
            return None
        se_ratio = _se_ratio(cin, reduce.outputs[0].shape[3])
        matched += ([mean] if mean is not None else []) + [reduce, expand, sig, mul]
        t = mul.outputs[0]
    elif len(cons) != 1 and op != "cn":
        return None
    if op in ("ds", "ir"):
        proj = _sole(consumers, t)
        if not _is_1x1(proj, "NONE", "SAME"):
            return None
        matched.append(proj)
        t = proj.outputs[0]
    cout = t.shape[3]
    skip = "none"
    add = _sole(consumers, t, "ADD")
    if add is not None and add.attributes.get("fused_activation_function") == "NONE" and len(add.inputs) == 2:
        other = add.inputs[1] if add.inputs[0] is t else add.inputs[0]
        squeeze = producer.get(id(other))  # on 1x1 maps the shortcut reaches the ADD through a RESHAPE
        squeeze = squeeze if squeeze is not None and squeeze.name == "RESHAPE" and one_by_one else None
        if squeeze is not None:
            other = _main_input(squeeze)
        extra = [squeeze, add] if squeeze is not None else [add]
        if other is x and stride == 1 and cin == cout:
            skip = "id"
            matched += extra
        else:
            branch = _pool_branch(other, x, stride, cin, cout, consumers, producer)
            if branch is not None:
                skip = "pool"
                matched += branch + extra
    try:
        layer = LayerConfig(op, kernel, stride, expansion, se_ratio, skip, cin, cout, res, act)
    except ArchitectureError:
        return None
    if Counter(layer.tflite_ops()) != Counter(o.name for o in matched):
        return None
    return layer, matched


def _pool_branch(other, x, stride, cin, cout, consumers, producer) -> list[TFLiteOp] | None:
    """The ops of a pooling shortcut from ``x`` to ``other`` (with a 1x1 projection when channels change)."""
    src = producer.get(id(other))
    ops = []
    if src is not None and _is_1x1(src, "NONE", "VALID") and cin != cout:
        if _sole(consumers, src.outputs[0]) is None:
            return None
        ops.append(src)
        src = producer.get(id(_main_input(src)))
    elif cin != cout:
        return None
    if src is None or src.name != "AVERAGE_POOL_2D" or _main_input(src) is not x:
        return None
    a = src.attributes
    if (a.get("padding") != "SAME" or a.get("filter_height") != 3 or a.get("filter_width") != 3
            or a.get("stride_h") != stride or _sole(consumers, src.outputs[0]) is None):
        return None
    return [src] + ops
