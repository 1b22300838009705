"""Write float32 .tflite flatbuffers for layers and architectures directly, without TensorFlow.

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
fused; every
operator at version 1, except ``CONV_2D`` at version 6 (grouped convolution)
in a model with a grouped conv, as the converter marks it. Weights are random (He-scaled
normals) float32 constants, so inference runs at the speed of a trained model.

On 1x1 feature maps it does what the converter does there: the SE's ``MEAN``
(a no-op) is dropped and the shortcut operand of the residual ``ADD`` goes
through a ``RESHAPE`` to a vector. Two differences from the converter, neither
of which changes a latency: the operators come in the Keras layer order (the
converter may schedule a pooling shortcut before the main path), and equal
constants are not deduplicated.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from latprof.errors import ArchitectureError
from latprof.space._arch import Architecture
from latprof.space._layers import LayerConfig, named_layers

__all__ = ["layer_tflite_bytes", "arch_tflite_bytes", "write_tflite"]

_ACT = {"relu": "RELU", "relu6": "RELU6", "none": "NONE"}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


class _Graph:
    """Accumulates tensors, constant buffers and operators of one subgraph."""

    def __init__(self, seed: int) -> None:
        self.s = _schema()
        self.rng = np.random.default_rng(seed)
        self.tensors: list = []
        self.shapes: list[tuple[int, ...]] = []
        self.buffers: list = [self.s.BufferT()]  # buffer 0: the empty sentinel
        self.operators: list = []
        self.opcodes: dict[int, int] = {}  # builtin code -> index in operatorCodes
        self.versions: dict[int, int] = {}  # builtin code -> operator version, where above 1

    # ------------------------------------------------------------ tensors

    def _tensor(self, shape: tuple[int, ...], name: str, data: np.ndarray | None = None) -> int:
        s = self.s
        t = s.TensorT()
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = s.TensorType.FLOAT32 if data is None or data.dtype == np.float32 else s.TensorType.INT32
        t.name = name
        buf = s.BufferT()
        if data is not None:
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        self.buffers.append(buf)
        t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        self.shapes.append(tuple(shape))
        return len(self.tensors) - 1

    def activation(self, shape: tuple[int, ...], name: str) -> int:
        return self._tensor(shape, name)

    def weights(self, shape: tuple[int, ...], fan_in: int, name: str) -> int:
        data = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / max(fan_in, 1)))
        return self._tensor(shape, name, data)

    def bias(self, n: int, name: str) -> int:
        return self._tensor((n,), name, self.rng.standard_normal(n, dtype=np.float32) * np.float32(0.01))

    def int_const(self, values: list[int], name: str) -> int:
        return self._tensor((len(values),), name, np.asarray(values, dtype=np.int32))

    # ------------------------------------------------------------ operators

    def _op(self, code_name: str, inputs: list[int], out_shape: tuple[int, ...], name: str,
            options_name: str | None = None, **options) -> int:
        s = self.s
        code = getattr(s.BuiltinOperator, code_name)
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        op = s.OperatorT()
        op.opcodeIndex = self.opcodes[code]
        op.inputs = np.asarray(inputs, dtype=np.int32)
        out = self.activation(out_shape, name)
        op.outputs = np.asarray([out], dtype=np.int32)
        if options_name is not None:
            opts = getattr(s, options_name + "T")()
            for key, value in options.items():
                setattr(opts, key, value)
            op.builtinOptionsType = getattr(s.BuiltinOptions, options_name)
            op.builtinOptions = opts
        self.operators.append(op)
        return out

    def conv(self, x: int, cout: int, kernel: int, stride: int, act: str, name: str, padding: str = "SAME",
             groups: int = 1) -> int:
        n, h, w, cin = self.shapes[x]
        oh, ow = _out(h, stride, padding, kernel), _out(w, stride, padding, kernel)
        # A grouped conv's filter holds cin / groups input channels; TFLite infers the groups from that.
        wt = self.weights((cout, kernel, kernel, cin // groups), kernel * kernel * cin // groups, name + "/weights")
        b = self.bias(cout, name + "/bias")
        if groups > 1:
            self.versions[self.s.BuiltinOperator.CONV_2D] = 6
        return self._op("CONV_2D", [x, wt, b], (n, oh, ow, cout), name, "Conv2DOptions",
                        padding=_padding(self.s, padding), strideW=stride, strideH=stride,
                        fusedActivationFunction=_act(self.s, act))

    def depthwise(self, x: int, kernel: int, stride: int, act: str, name: str) -> int:
        n, h, w, c = self.shapes[x]
        wt = self.weights((1, kernel, kernel, c), kernel * kernel, name + "/weights")
        b = self.bias(c, name + "/bias")
        return self._op("DEPTHWISE_CONV_2D", [x, wt, b], (n, _out(h, stride), _out(w, stride), c), name,
                        "DepthwiseConv2DOptions", padding=_padding(self.s, "SAME"), strideW=stride,
                        strideH=stride, depthMultiplier=1, fusedActivationFunction=_act(self.s, act))

    def mean(self, x: int, keep_dims: bool, name: str) -> int:
        n, _, _, c = self.shapes[x]
        axes = self.int_const([1, 2], name + "/reduction_indices")
        shape = (n, 1, 1, c) if keep_dims else (n, c)
        return self._op("MEAN", [x, axes], shape, name, "ReducerOptions", keepDims=keep_dims)

    def float_const(self, values: np.ndarray, name: str) -> int:
        return self._tensor(values.shape, name, np.asarray(values, dtype=np.float32))

    def elementwise(self, kind: str, a: int, b: int, name: str, act: str = "none") -> int:
        options = "AddOptions" if kind == "ADD" else "MulOptions"
        return self._op(kind, [a, b], self.shapes[a], name, options, fusedActivationFunction=_act(self.s, act))

    def relu(self, x: int, name: str) -> int:
        return self._op("RELU", [x], self.shapes[x], name)

    def logistic(self, x: int, name: str) -> int:
        return self._op("LOGISTIC", [x], self.shapes[x], name)

    def avg_pool(self, x: int, stride: int, name: str, size: int = 3, padding: str = "SAME") -> int:
        n, h, w, c = self.shapes[x]
        oh, ow = _out(h, stride, padding, size), _out(w, stride, padding, size)
        return self._op("AVERAGE_POOL_2D", [x], (n, oh, ow, c), name, "Pool2DOptions",
                        padding=_padding(self.s, padding), strideW=stride, strideH=stride, filterWidth=size,
                        filterHeight=size, fusedActivationFunction=_act(self.s, "none"))

    def fully_connected(self, x: int, cout: int, name: str) -> int:
        n, cin = self.shapes[x]
        wt = self.weights((cout, cin), cin, name + "/weights")
        b = self.bias(cout, name + "/bias")
        return self._op("FULLY_CONNECTED", [x, wt, b], (n, cout), name, "FullyConnectedOptions",
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
        return self._op("SOFTMAX", [x], self.shapes[x], name, "SoftmaxOptions", beta=1.0)

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

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        import flatbuffers

        s = self.s
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


def layer_tflite_bytes(layer: LayerConfig, seed: int = 0) -> bytes:
    """A float32 .tflite (bytes) holding one layer: input ``1 x r x r x in``, random weights."""
    g = _Graph(seed)
    x = g.activation((1, layer.resolution, layer.resolution, layer.in_channels), "input")
    out = g.layer(x, layer, "layer")
    return g.finish([x], [out], f"latprof layer {layer.layer_key()}")


def arch_tflite_bytes(arch: Architecture, seed: int = 0) -> bytes:
    """A float32 .tflite (bytes) of a whole architecture: input ``1 x res x res x 3``, random weights."""
    g = _Graph(seed)
    x = inp = g.activation((1, arch.resolution, arch.resolution, 3), "input")
    for name, layer in named_layers(arch):
        x = g.layer(x, layer, name)
    return g.finish([inp], [x], f"latprof arch {arch.name or 'arch'}")


def write_tflite(model, path: str | os.PathLike, seed: int = 0, space=None) -> Path:
    """Write ``model`` (an Architecture, one LayerConfig, or an architecture of ``space``) as .tflite to
    ``path`` atomically; return the Path."""
    if isinstance(model, LayerConfig):
        data = layer_tflite_bytes(model, seed)
    elif isinstance(model, Architecture):
        data = arch_tflite_bytes(model, seed)
    elif space is not None:
        data = space.tflite_bytes(model, seed)
    else:
        raise ArchitectureError(f"expected an Architecture or LayerConfig, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
