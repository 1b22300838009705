"""Read the operator list of any .tflite file straight from its flatbuffer.

No TensorFlow and no conversion: the generated TFLite schema module shipped
with ``ai_edge_litert`` (or, failing that, TensorFlow's copy) over the
``flatbuffers`` runtime. Works for models latprof built and for models it
never described (a Keras MobileNetV3, EfficientNet, a user's own model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latprof.errors import ModelFileError


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - ai-edge-litert is a dependency
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


@dataclass(frozen=True)
class TFLiteTensor:
    """A tensor as stored in the flatbuffer. ``constant``: it has data (weights, biases, shapes)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    constant: bool

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(d, 0)
        return n


@dataclass(frozen=True)
class TFLiteOp:
    """One operator of a .tflite subgraph, in run order.

    ``attributes`` are the op's builtin options with snake_case keys and enum
    values as names, e.g. ``{"padding": "SAME", "stride_w": 2, "stride_h": 2,
    "fused_activation_function": "RELU6", "dilation_w_factor": 1, ...}`` for a
    CONV_2D, ``depth_multiplier`` for a DEPTHWISE_CONV_2D, ``keep_dims`` for MEAN.
    """

    index: int
    name: str  # builtin operator name ("CONV_2D") or the custom code of a custom op
    builtin_code: int
    inputs: tuple[TFLiteTensor | None, ...]  # None for an omitted optional input (index -1)
    outputs: tuple[TFLiteTensor, ...]
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.inputs if t is not None and not t.constant]

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.outputs]

    @property
    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.inputs if t is not None and t.constant]

    def params(self) -> int:
        """Elements of the constant weight/bias inputs of conv and fully connected ops (0 for others)."""
        if self.name not in _WEIGHTED:
            return 0
        return sum(t.size for t in self.inputs if t is not None and t.constant)

    def macs(self) -> int:
        """Multiply-adds of conv, depthwise conv and fully connected ops (0 for others)."""
        if self.name not in _WEIGHTED or not self.outputs:
            return 0
        out = self.outputs[0].size
        weights = self.inputs[1] if len(self.inputs) > 1 else None
        if weights is None:
            return 0
        w = weights.shape
        if self.name == "CONV_2D":  # filter [O, H, W, I]
            return out * w[1] * w[2] * w[3]
        if self.name == "DEPTHWISE_CONV_2D":  # filter [1, H, W, C*M]
            return out * w[1] * w[2]
        if self.name == "FULLY_CONNECTED":  # weights [O, I]
            return out * w[-1]
        if self.name == "TRANSPOSE_CONV":  # filter [O, H, W, I]; input 2 is the data
            data = self.inputs[2]
            return (data.size if data is not None else 0) * w[0] * w[1] * w[2]
        return 0


_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}

_ENUM_KEYS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType",
              "weights_format": "FullyConnectedOptionsWeightsFormat"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _enum_names(schema, enum: str) -> dict[int, str]:
    cls = getattr(schema, enum, None)
    if cls is None:
        return {}
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _options(schema, op, cache: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for union_name, type_getter, table_getter in (
        ("BuiltinOptions", "BuiltinOptionsType", "BuiltinOptions"),
        ("BuiltinOptions2", "BuiltinOptions2Type", "BuiltinOptions2"),
    ):
        if not hasattr(op, type_getter):
            continue
        kind = getattr(op, type_getter)()
        if not kind:
            continue
        if union_name not in cache:
            cache[union_name] = _enum_names(schema, union_name)
        cls_name = cache[union_name].get(kind)
        table = getattr(op, table_getter)()
        if cls_name is None or table is None:
            continue
        reader, obj_cls = getattr(schema, cls_name, None), getattr(schema, cls_name + "T", None)
        if reader is None or obj_cls is None:
            continue
        options = reader()
        options.Init(table.Bytes, table.Pos)
        for key, value in vars(obj_cls.InitFromObj(options)).items():
            skey = _snake(key)
            if skey in _ENUM_KEYS:
                enum = cache.setdefault(_ENUM_KEYS[skey], _enum_names(schema, _ENUM_KEYS[skey]))
                value = enum.get(value, value)
            elif hasattr(value, "tolist"):
                value = value.tolist()
            elif isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            out[skey] = value
    return out


def read_tflite_ops(path: str | Path, subgraph: int = 0) -> list[TFLiteOp]:
    """The operators of ``subgraph`` (0 = the main graph) of a .tflite file, in run order.

    Raises ModelFileError if the file is missing or is not a TFLite flatbuffer.
    """
    from latprof.benchmarking.record import inspect_model

    path = Path(path)
    inspect_model(path)  # existence, identifier, truncation: one consistent set of errors
    data = path.read_bytes()
    schema = _schema()
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        n_subgraphs = model.SubgraphsLength()
    except Exception as exc:  # noqa: BLE001 - corrupt flatbuffer
        raise ModelFileError(f"{path} is not a readable TFLite flatbuffer ({exc}); re-export the model") from None
    if not 0 <= subgraph < n_subgraphs:
        raise ModelFileError(f"{path} has {n_subgraphs} subgraph(s); subgraph {subgraph} does not exist")
    op_names = _enum_names(schema, "BuiltinOperator")
    type_names = _enum_names(schema, "TensorType")
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        custom = oc.CustomCode()
        name = custom.decode("utf-8", "replace") if custom else op_names.get(code, f"BUILTIN_{code}")
        codes.append((code, name))
    g = model.Subgraphs(subgraph)
    tensor_cache: dict[int, TFLiteTensor] = {}

    def tensor(index: int) -> TFLiteTensor | None:
        if index < 0:
            return None
        if index not in tensor_cache:
            t = g.Tensors(index)
            buf = t.Buffer()
            constant = False
            if 0 < buf < model.BuffersLength():
                b = model.Buffers(buf)
                constant = b.DataLength() > 0 or (hasattr(b, "Size") and b.Size() > 0)
            name = t.Name()
            tensor_cache[index] = TFLiteTensor(
                name=name.decode("utf-8", "replace") if name else "",
                shape=tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else ())),
                dtype=type_names.get(t.Type(), str(t.Type())).lower(),
                constant=bool(constant),
            )
        return tensor_cache[index]

    ops = []
    cache: dict = {}
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code, name = codes[op.OpcodeIndex()]
        ins = tuple(tensor(int(j)) for j in (op.InputsAsNumpy() if op.InputsLength() else ()))
        outs = tuple(tensor(int(j)) for j in (op.OutputsAsNumpy() if op.OutputsLength() else ()))
        ops.append(TFLiteOp(index=i, name=name, builtin_code=code, inputs=ins,
                            outputs=tuple(t for t in outs if t is not None),
                            attributes=_options(schema, op, cache)))
    return ops


def tflite_params_macs(ops: list[TFLiteOp]) -> tuple[int, int]:
    """(parameters, multiply-adds) of an operator list, with the same convention as ``count_params_macs``."""
    return sum(op.params() for op in ops), sum(op.macs() for op in ops)
