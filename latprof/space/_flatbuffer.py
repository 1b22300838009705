"""Write float32 and int8 .tflite flatbuffers for layers and architectures directly, without TensorFlow.

The Keras -> converter path (:mod:`latprof.space._build`) takes a second or
more per model; building a lookup table needs thousands of single-layer
models, so this module writes the TFLite flatbuffer itself (the generated
schema's object API over the ``flatbuffers`` runtime) in milliseconds.

It emits what the converter emits for the same :class:`LayerConfig`: BatchNorm
folded into the convolution bias, ReLU/ReLU6 fused into the convolutions,
``SAME`` padding for the block convolutions and ``VALID`` for the SE and
shortcut-projection 1x1 convolutions (Keras' defaults), SE as
``MEAN(keep_dims=True) -> CONV_2D(RELU) -> CONV_2D -> LOGISTIC -> MUL``, the
pooling shortcut as ``AVERAGE_POOL_2D`` 3x3 ``SAME`` (+ a 1x1 projection) and
``ADD``, a grouped 1x1 conv as ``CONV_2D`` with a ``(out, 1, 1, in / groups)``
filter and the channel shuffle as ``RESHAPE -> TRANSPOSE -> RESHAPE``, the
classifier as ``MEAN(keep_dims=False) -> FULLY_CONNECTED -> SOFTMAX``, the
NAS-Bench-201 pieces as ``RELU``, ``AVERAGE_POOL_2D``, ``ADD``, the reduction
block's ``RELU -> CONV_2D(RELU) -> CONV_2D`` plus ``AVERAGE_POOL_2D(2x2) ->
CONV_2D`` and ``ADD``, and a BatchNorm after no conv as ``MUL`` with the ReLU
fused; in float32 every operator at version 1, except ``CONV_2D`` at version 6
(grouped convolution) in a model with a grouped conv, as the converter marks
it. Weights are random (He-scaled normals), so inference runs at the speed of
a trained model.

``dtype="int8"`` gives what the converter's full-integer post-training
quantization gives (checked against TF 2.21 in tests/test_space_flatbuffer_int8.py):
int8 activations, one (scale, zero point) each, sized from an estimate of the
values' spread so they do not saturate; int8 weights symmetric per output
channel (zero point 0, axis 0, 3 for ``DEPTHWISE_CONV_2D``); int32 biases of
scale input scale * weight scale; ``LOGISTIC`` and ``SOFTMAX`` outputs at
1/256, -128; pooling, reshapes and transposes keep their input's quantization;
the int8 operator versions (:data:`_INT8_VERSIONS`). A layer takes and gives
int8, as inside an int8 network; an architecture takes and gives float32
through a first ``QUANTIZE`` and a last ``DEQUANTIZE`` (after the
``SOFTMAX``), the converter's default. XNNPACK takes the same operators of
both (it leaves int8 ``AVERAGE_POOL_2D``, ``RELU`` and ``SOFTMAX`` to TFLite's kernels).

On 1x1 feature maps it does what the converter does there: the SE's ``MEAN``
(a no-op) is dropped and the shortcut operand of the residual ``ADD`` goes
through a ``RESHAPE`` to a vector. Two differences from the converter, neither
of which changes a latency: the operators come in the Keras layer order (the
converter may schedule a pooling shortcut before the main path; in int8 that
order splits such a layer into two XNNPACK partitions where the converter's
has one, which timed the same on the host), and equal constants are not
deduplicated.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from latprof.cache import write_atomic
from latprof.errors import ArchitectureError
from latprof.space._arch import Architecture
from latprof.space._layers import LayerConfig, named_layers

__all__ = ["DTYPES", "layer_tflite_bytes", "arch_tflite_bytes", "write_tflite"]

_ACT = {"relu": "RELU", "relu6": "RELU6", "none": "NONE"}
DTYPES = ("float32", "int8")
# Operator versions the converter marks int8 operators with (float32 ones: all 1); CONV_2D is 6 if grouped.
_INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "MUL": 2, "MEAN": 2,
                  "AVERAGE_POOL_2D": 2, "LOGISTIC": 2, "SOFTMAX": 2, "RELU": 2, "TRANSPOSE": 2, "DEQUANTIZE": 2}
_SPREAD = 6.0  # an int8 activation covers +-6 estimated standard deviations (the estimates run up to 1.5x low)
_PROBABILITY = (1 / 256, -128)  # (scale, zero point) of LOGISTIC and SOFTMAX outputs, fixed by TFLite


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _check_dtype(dtype: str) -> None:
    """Raise ArchitectureError unless ``dtype`` is one the writer builds."""
    if dtype not in DTYPES:
        raise ArchitectureError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")


def _qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) of a range, widened to hold 0 exactly, as the converter does."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32(max(hi - lo, 1e-2) / 255))  # a zero map too gets a scale XNNPACK accepts
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


class _Graph:
    """Accumulates tensors, constant buffers and operators of one subgraph.

    With ``dtype="int8"`` every activation is int8 with a per-tensor (scale,
    zero point) set from a running estimate of its values' spread (He-scaled
    weights keep a conv's output RMS at about sqrt(2) times its input's), so
    nothing saturates badly; constants are quantized from their values.
    """

    def __init__(self, seed: int, dtype: str = "float32") -> None:
        _check_dtype(dtype)
        self.s = _schema()
        self.int8 = dtype == "int8"
        self.rng = np.random.default_rng(seed)
        self.tensors: list = []
        self.shapes: list[tuple[int, ...]] = []
        self.qparams: list[tuple[float, int]] = []  # int8 (scale, zero point) of each tensor, as if quantized
        self.rms: list[float] = []  # estimated root mean square of each tensor's values
        self.buffers: list = [self.s.BufferT()]  # buffer 0: the empty sentinel
        self.operators: list = []
        self.opcodes: dict[int, int] = {}  # builtin code -> index in operatorCodes
        self.versions: dict[int, int] = {}  # builtin code -> operator version, where above 1

    # ------------------------------------------------------------ tensors

    def _tensor(self, shape: tuple[int, ...], name: str, data: np.ndarray | None = None, *,
                qparams: tuple[float, int] = (1.0, 0), rms: float = 1.0, scales: np.ndarray | None = None,
                axis: int = 0, kind: str | None = None) -> int:
        """A tensor (constant if ``data``) of ``kind`` (default: the data's, or the graph's activation type);
        int8 ones carry ``qparams``, quantized constants per-channel ``scales`` along ``axis`` (zero point 0)."""
        s = self.s
        t = s.TensorT()
        t.shape = np.asarray(shape, dtype=np.int32)
        if kind is None:
            kind = ("int8" if self.int8 else "float32") if data is None else data.dtype.name
        t.type = {"float32": s.TensorType.FLOAT32, "int8": s.TensorType.INT8, "int32": s.TensorType.INT32}[kind]
        t.name = name
        if kind == "int8" or scales is not None:
            q = s.QuantizationParametersT()
            q.scale = np.asarray([qparams[0]] if scales is None else scales, dtype=np.float32)
            q.zeroPoint = np.asarray([qparams[1]] if scales is None else np.zeros(len(scales)), dtype=np.int64)
            q.quantizedDimension = axis
            t.quantization = q
        buf = s.BufferT()
        if data is not None:
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        self.buffers.append(buf)
        t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        self.shapes.append(tuple(shape))
        self.qparams.append(qparams)
        self.rms.append(rms)
        return len(self.tensors) - 1

    def activation(self, shape: tuple[int, ...], name: str, qparams: tuple[float, int] | None = None,
                   rms: float = 1.0) -> int:
        """A non-constant tensor; int8 (scale, zero point) default: +-6 RMS."""
        return self._tensor(shape, name, qparams=qparams or _qparams(-_SPREAD * rms, _SPREAD * rms), rms=rms)

    def range(self, x: int) -> tuple[float, float]:
        """The real values int8 tensor ``x`` can hold."""
        scale, zp = self.qparams[x]
        return (-128 - zp) * scale, (127 - zp) * scale

    def weights_and_bias(self, x: int, shape: tuple[int, ...], fan_in: int, axis: int, name: str) -> tuple[int, int]:
        """He-scaled random weights of ``shape`` (output channels along ``axis``) and their bias, applied to ``x``.

        int8: symmetric per-channel weights (zero point 0, [-127, 127]) and int32 biases of scale
        input scale * weight scale, as the converter writes them (the int8 kernels assume both).
        """
        weights = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / max(fan_in, 1)))
        bias = self.rng.standard_normal(shape[axis], dtype=np.float32) * np.float32(0.01)
        if not self.int8:
            return self._tensor(shape, name + "/weights", weights), self._tensor(bias.shape, name + "/bias", bias)
        other = tuple(i for i in range(len(shape)) if i != axis)
        w_scales = np.maximum(np.abs(weights).max(axis=other), np.float32(1e-12)) / np.float32(127)
        per_channel = w_scales.reshape([-1 if i == axis else 1 for i in range(len(shape))])
        q_weights = np.clip(np.round(weights / per_channel), -127, 127).astype(np.int8)
        b_scales = np.float32(self.qparams[x][0]) * w_scales
        q_bias = np.clip(np.round(bias / b_scales), -2**31, 2**31 - 1).astype(np.int32)
        return (self._tensor(shape, name + "/weights", q_weights, scales=w_scales, axis=axis),
                self._tensor(bias.shape, name + "/bias", q_bias, scales=b_scales))

    def int_const(self, values: list[int], name: str) -> int:
        return self._tensor((len(values),), name, np.asarray(values, dtype=np.int32))

    def float_const(self, values: np.ndarray, name: str) -> int:
        """A constant of real ``values``: float32, or int8 quantized per tensor over their range."""
        values = np.asarray(values, dtype=np.float32)
        rms = float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0
        if not self.int8:
            return self._tensor(values.shape, name, values, rms=rms)
        qparams = _qparams(float(values.min(initial=0.0)), float(values.max(initial=0.0)))
        data = np.clip(np.round(values / qparams[0]) + qparams[1], -128, 127).astype(np.int8)
        return self._tensor(values.shape, name, data, qparams=qparams, rms=rms)

    def _activated(self, rms: float, act: str) -> dict:
        """``_op`` keywords for the output of a linear op of ``rms`` followed by ``act``."""
        if act == "none":
            return {"rms": rms}
        hi = _SPREAD * rms if act == "relu" else min(6.0, _SPREAD * rms)
        return {"qparams": _qparams(0.0, hi), "rms": rms / np.sqrt(2.0)}

    # ------------------------------------------------------------ operators

    def _operator(self, code_name: str, inputs: list[int], outputs: list[int], options_name: str | None = None,
                  **options) -> None:
        s = self.s
        code = getattr(s.BuiltinOperator, code_name)
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        if self.int8 and code_name in _INT8_VERSIONS:
            self.versions[code] = max(self.versions.get(code, 1), _INT8_VERSIONS[code_name])
        op = s.OperatorT()
        op.opcodeIndex = self.opcodes[code]
        op.inputs = np.asarray(inputs, dtype=np.int32)
        op.outputs = np.asarray(outputs, dtype=np.int32)
        if options_name is not None:
            opts = getattr(s, options_name + "T")()
            for key, value in options.items():
                setattr(opts, key, value)
            op.builtinOptionsType = getattr(s.BuiltinOptions, options_name)
            op.builtinOptions = opts
        self.operators.append(op)

    def _op(self, code_name: str, inputs: list[int], out_shape: tuple[int, ...], name: str,
            options_name: str | None = None, out: dict | None = None, **options) -> int:
        """Append an operator with a new output tensor; ``out``: its ``activation`` keywords (default: the first
        input's int8 quantization and RMS, which the converter keeps for pooling, reshapes and transposes)."""
        if out is None:
            out = {"qparams": self.qparams[inputs[0]], "rms": self.rms[inputs[0]]}
        result = self.activation(out_shape, name, **out)
        self._operator(code_name, inputs, [result], options_name, **options)
        return result

    def conv(self, x: int, cout: int, kernel: int, stride: int, act: str, name: str, padding: str = "SAME",
             groups: int = 1) -> int:
        n, h, w, cin = self.shapes[x]
        oh, ow = _out(h, stride, padding, kernel), _out(w, stride, padding, kernel)
        # A grouped conv's filter holds cin / groups input channels; TFLite infers the groups from that.
        shape = (cout, kernel, kernel, cin // groups)
        wt, b = self.weights_and_bias(x, shape, kernel * kernel * cin // groups, 0, name)
        if groups > 1:
            self.versions[self.s.BuiltinOperator.CONV_2D] = 6
        return self._op("CONV_2D", [x, wt, b], (n, oh, ow, cout), name, "Conv2DOptions",
                        self._activated(np.sqrt(2.0) * self.rms[x], act), padding=_padding(self.s, padding),
                        strideW=stride, strideH=stride, fusedActivationFunction=_act(self.s, act))

    def depthwise(self, x: int, kernel: int, stride: int, act: str, name: str) -> int:
        n, h, w, c = self.shapes[x]
        wt, b = self.weights_and_bias(x, (1, kernel, kernel, c), kernel * kernel, 3, name)
        return self._op("DEPTHWISE_CONV_2D", [x, wt, b], (n, _out(h, stride), _out(w, stride), c), name,
                        "DepthwiseConv2DOptions", self._activated(np.sqrt(2.0) * self.rms[x], act),
                        padding=_padding(self.s, "SAME"), strideW=stride, strideH=stride, depthMultiplier=1,
                        fusedActivationFunction=_act(self.s, act))

    def mean(self, x: int, keep_dims: bool, name: str) -> int:
        n, _, _, c = self.shapes[x]
        axes = self.int_const([1, 2], name + "/reduction_indices")
        shape = (n, 1, 1, c) if keep_dims else (n, c)
        return self._op("MEAN", [x, axes], shape, name, "ReducerOptions", keepDims=keep_dims)

    def elementwise(self, kind: str, a: int, b: int, name: str, act: str = "none") -> int:
        (lo_a, hi_a), (lo_b, hi_b) = self.range(a), self.range(b)
        if kind == "ADD":
            options, lo, hi = "AddOptions", lo_a + lo_b, hi_a + hi_b
            rms = float(np.hypot(self.rms[a], self.rms[b]))
        else:
            products = (lo_a * lo_b, lo_a * hi_b, hi_a * lo_b, hi_a * hi_b)
            options, lo, hi, rms = "MulOptions", min(products), max(products), self.rms[a] * self.rms[b]
        if act == "relu":
            lo = 0.0
        out = {"qparams": _qparams(lo, hi), "rms": rms}
        return self._op(kind, [a, b], self.shapes[a], name, options, out, fusedActivationFunction=_act(self.s, act))

    def relu(self, x: int, name: str) -> int:
        out = {"qparams": _qparams(0.0, self.range(x)[1]), "rms": self.rms[x] / np.sqrt(2.0)}
        return self._op("RELU", [x], self.shapes[x], name, out=out)

    def logistic(self, x: int, name: str) -> int:
        return self._op("LOGISTIC", [x], self.shapes[x], name, out={"qparams": _PROBABILITY, "rms": 0.5})

    def avg_pool(self, x: int, stride: int, name: str, size: int = 3, padding: str = "SAME") -> int:
        n, h, w, c = self.shapes[x]
        oh, ow = _out(h, stride, padding, size), _out(w, stride, padding, size)
        return self._op("AVERAGE_POOL_2D", [x], (n, oh, ow, c), name, "Pool2DOptions",
                        padding=_padding(self.s, padding), strideW=stride, strideH=stride, filterWidth=size,
                        filterHeight=size, fusedActivationFunction=_act(self.s, "none"))

    def fully_connected(self, x: int, cout: int, name: str) -> int:
        n, cin = self.shapes[x]
        wt, b = self.weights_and_bias(x, (cout, cin), cin, 0, name)
        return self._op("FULLY_CONNECTED", [x, wt, b], (n, cout), name, "FullyConnectedOptions",
                        self._activated(np.sqrt(2.0) * self.rms[x], "none"),
                        fusedActivationFunction=_act(self.s, "none"))

    def reshape(self, x: int, shape: tuple[int, ...], name: str) -> int:
        return self._op("RESHAPE", [x, self.int_const(list(shape), name + "/shape")], shape, name)

    def transpose(self, x: int, perm: tuple[int, ...], name: str) -> int:
        shape = tuple(self.shapes[x][p] for p in perm)
        return self._op("TRANSPOSE", [x, self.int_const(list(perm), name + "/perm")], shape, name)

    def channel_shuffle(self, x: int, groups: int, name: str) -> int:
        """ShuffleNet's shuffle as the converter emits Keras ``Reshape -> Permute -> Reshape``: 4-D throughout."""
        n, h, w, c = self.shapes[x]
        x = self.reshape(x, (n, h * w, groups, c // groups), name + "/split")
        x = self.transpose(x, (0, 1, 3, 2), name + "/swap")
        return self.reshape(x, (n, h, w, c), name + "/merge")

    def reshape_to_vector(self, x: int, name: str) -> int:
        n = self.shapes[x][-1]
        shape = self.int_const([n], name + "/shape")
        return self._op("RESHAPE", [x, shape], (n,), name)

    def softmax(self, x: int, name: str) -> int:
        out = {"qparams": _PROBABILITY, "rms": 1.0 / self.shapes[x][-1]}
        return self._op("SOFTMAX", [x], self.shapes[x], name, "SoftmaxOptions", out, beta=1.0)

    # ------------------------------------------------------------ layers

    def layer(self, x: int, layer: LayerConfig, name: str) -> int:
        """Append the operators of one layer after tensor ``x`` (mirrors ``_build.apply_layer``)."""
        if self.shapes[x][1:] != (layer.resolution, layer.resolution, layer.in_channels):
            raise ArchitectureError(f"{name}: input shape {self.shapes[x]} does not fit layer {layer.layer_key()}")
        if layer.op == "fc":
            x = self.mean(x, False, name + "/pool")
            x = self.fully_connected(x, layer.out_channels, name + "/fc")
            return self.softmax(x, name + "/softmax")
        if layer.is_cell_piece:
            return self.cell_layer(x, layer, name)
        inp, act = x, layer.activation
        if layer.op == "cn":
            x = self.conv(x, layer.out_channels, layer.kernel, layer.stride, act, name + "/conv")
        else:
            if layer.op == "ir":
                x = self.conv(x, layer.mid_channels, 1, 1, act, name + "/expand", groups=layer.groups)
                if layer.groups > 1:
                    x = self.channel_shuffle(x, layer.groups, name + "/shuffle")
            x = self.depthwise(x, layer.kernel, layer.stride, act, name + "/dw")
        one_by_one = layer.out_resolution == 1
        if layer.se_ratio > 0:
            s = x if one_by_one else self.mean(x, True, name + "/se_pool")
            s = self.conv(s, layer.se_channels, 1, 1, "relu", name + "/se_reduce", padding="VALID")
            s = self.conv(s, layer.mid_channels, 1, 1, "none", name + "/se_expand", padding="VALID")
            s = self.logistic(s, name + "/se_sigmoid")
            x = self.elementwise("MUL", x, s, name + "/se_scale")
        if layer.op in ("ds", "ir"):
            x = self.conv(x, layer.out_channels, 1, 1, "none", name + "/project", groups=layer.groups)
        if layer.skip == "none":
            return x
        sc = inp
        if layer.skip == "pool":
            sc = self.avg_pool(inp, layer.stride, name + "/skip_pool")
            if layer.has_projection_shortcut:
                sc = self.conv(sc, layer.out_channels, 1, 1, "none", name + "/skip_proj", padding="VALID")
        if one_by_one:
            sc = self.reshape_to_vector(sc, name + "/squeeze")
        return self.elementwise("ADD", x, sc, name + "/add")

    def cell_layer(self, x: int, layer: LayerConfig, name: str, other: int | None = None) -> int:
        """A NAS-Bench-201 piece after ``x`` (mirrors ``_build.apply_cell_layer``); ``other``: an ``add``'s second
        operand (default ``x`` itself, as in a single-layer model)."""
        c = layer.out_channels
        if layer.op == "relu":
            return self.relu(x, name + "/relu")
        if layer.op == "pool":
            return self.avg_pool(x, 1, name + "/pool")
        if layer.op == "add":
            return self.elementwise("ADD", x, x if other is None else other, name + "/add")
        if layer.op == "bnrelu":
            scale = self.float_const(1.0 + 0.1 * self.rng.standard_normal(c, dtype=np.float32), name + "/scale")
            return self.elementwise("MUL", x, scale, name + "/bn_mul", act="relu")
        # "res": ResNet basic block with a pooled 1x1-conv shortcut
        inp = x
        x = self.relu(x, name + "/relu")
        x = self.conv(x, c, 3, layer.stride, "relu", name + "/conv_a")
        x = self.conv(x, c, 3, 1, "none", name + "/conv_b")
        sc = self.avg_pool(inp, layer.stride, name + "/down_pool", size=layer.stride, padding="VALID")
        sc = self.conv(sc, c, 1, 1, "none", name + "/down_conv", padding="VALID")
        return self.elementwise("ADD", sc, x, name + "/add")

    def _float_io(self, inputs: list[int], outputs: list[int]) -> tuple[list[int], list[int]]:
        """Float32 model inputs and outputs around int8 ones: ``QUANTIZE`` first, ``DEQUANTIZE`` last."""
        body, self.operators = self.operators, []
        float_inputs = [self._tensor(self.shapes[x], self.tensors[x].name + "/float", kind="float32") for x in inputs]
        for f, x in zip(float_inputs, inputs):
            self._operator("QUANTIZE", [f], [x])
        self.operators += body
        float_outputs = [self._tensor(self.shapes[y], self.tensors[y].name + "/float", kind="float32") for y in outputs]
        for y, f in zip(outputs, float_outputs):
            self._operator("DEQUANTIZE", [y], [f])
        return float_inputs, float_outputs

    def finish(self, inputs: list[int], outputs: list[int], description: str, float_io: bool = True) -> bytes:
        """The .tflite bytes; an int8 graph with ``float_io`` takes and gives float32 (the converter's default)."""
        import flatbuffers

        s = self.s
        if self.int8 and float_io:
            inputs, outputs = self._float_io(inputs, outputs)
        sub = s.SubGraphT()
        sub.tensors, sub.operators = self.tensors, self.operators
        sub.inputs = np.asarray(inputs, dtype=np.int32)
        sub.outputs = np.asarray(outputs, dtype=np.int32)
        sub.name = "main"
        model = s.ModelT()
        model.version = 3
        model.description = description
        model.subgraphs = [sub]
        model.buffers = self.buffers
        codes = []
        for code in sorted(self.opcodes, key=self.opcodes.__getitem__):
            oc = s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = self.versions.get(code, 1)
            codes.append(oc)
        model.operatorCodes = codes
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _out(size: int, stride: int, padding: str = "SAME", kernel: int = 1) -> int:
    return -(-size // stride) if padding == "SAME" else (size - kernel) // stride + 1


def _padding(schema, name: str) -> int:
    return getattr(schema.Padding, name)


def _act(schema, name: str) -> int:
    return getattr(schema.ActivationFunctionType, _ACT[name])


def layer_tflite_bytes(layer: LayerConfig, seed: int = 0, dtype: str = "float32") -> bytes:
    """A .tflite (bytes) holding one layer: input ``1 x r x r x in``, random weights; ``dtype`` "int8": int8
    input and output too, as the layer runs inside an int8 network."""
    g = _Graph(seed, dtype)
    x = g.activation((1, layer.resolution, layer.resolution, layer.in_channels), "input")
    out = g.layer(x, layer, "layer")
    return g.finish([x], [out], f"latprof layer {layer.layer_key()}", float_io=False)


def arch_tflite_bytes(arch: Architecture, seed: int = 0, dtype: str = "float32") -> bytes:
    """A .tflite (bytes) of a whole architecture: input ``1 x res x res x 3``, random weights; ``dtype`` "int8":
    float32 input and output around the int8 network (``QUANTIZE`` ... ``DEQUANTIZE``)."""
    g = _Graph(seed, dtype)
    x = inp = g.activation((1, arch.resolution, arch.resolution, 3), "input")
    for name, layer in named_layers(arch):
        x = g.layer(x, layer, name)
    return g.finish([inp], [x], f"latprof arch {arch.name or 'arch'}")


def write_tflite(model, path: str | os.PathLike, seed: int = 0, space=None, dtype: str = "float32") -> Path:
    """Write ``model`` (an Architecture, one LayerConfig, or an architecture of ``space``) as a ``dtype``
    (float32 or int8) .tflite to ``path`` atomically; return the Path."""
    _check_dtype(dtype)
    if isinstance(model, LayerConfig):
        data = layer_tflite_bytes(model, seed, dtype)
    elif isinstance(model, Architecture):
        data = arch_tflite_bytes(model, seed, dtype)
    elif space is not None:
        data = space.tflite_bytes(model, seed, dtype)
    else:
        raise ArchitectureError(f"expected an Architecture or LayerConfig, got {type(model).__name__}")
    return write_atomic(path, data)

