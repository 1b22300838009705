"""The int8 flatbuffer writer against TensorFlow's full-integer converter, and against XNNPACK.

Each layer (and one small architecture) is built both ways: the writer's
``dtype="int8"`` model and the converter's int8 export of the same Keras
layer. They must have the same operators wired the same way, with the same
tensor types, quantization granularity, options and operator versions; obey
the rules XNNPACK's int8 kernels rely on; and leave the same operators to
TFLite's own kernels when XNNPACK (the interpreter's default) is applied.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from latprof.errors import ArchitectureError
from latprof.space import LayerConfig, NASBench201Space, export_tflite, parse_arch
from latprof.space._flatbuffer import arch_tflite_bytes, layer_tflite_bytes, write_tflite

LAYERS = [
    LayerConfig("cn", 3, 2, 1, 0.0, "none", 3, 8, 16, "relu"),  # stem conv
    LayerConfig("ds", 3, 1, 1, 0.0, "id", 16, 16, 16, "relu6"),  # identity residual, ReLU6
    LayerConfig("ir", 5, 2, 3, 0.25, "pool", 16, 24, 16, "relu"),  # SE + pooling shortcut with projection
    LayerConfig("ir", 3, 1, 3, 0.25, "id", 16, 16, 8, "relu"),  # SE + identity residual
    LayerConfig("cn", 3, 1, 1, 0.0, "pool", 16, 16, 8, "relu"),  # pooling shortcut without projection
    LayerConfig("ds", 3, 1, 1, 0.25, "id", 16, 16, 1, "relu"),  # 1x1 map: no SE MEAN, RESHAPE before the ADD
    LayerConfig("ir", 3, 1, 2, 0.0, "id", 16, 16, 8, "relu", groups=2),  # FBNet: grouped 1x1s + channel shuffle
    LayerConfig("relu", 1, 1, 1, 0.0, "none", 16, 16, 8, "none"),  # NAS-Bench-201 pieces
    LayerConfig("pool", 3, 1, 1, 0.0, "none", 16, 16, 8, "none"),
    LayerConfig("add", 1, 1, 1, 0.0, "none", 16, 16, 8, "none"),
    LayerConfig("bnrelu", 1, 1, 1, 0.0, "none", 16, 16, 8, "none"),
    LayerConfig("res", 3, 2, 1, 0.0, "none", 16, 32, 8, "none"),
    LayerConfig("fc", 1, 1, 1, 0.0, "none", 64, 10, 4, "none"),  # classifier: MEAN + FULLY_CONNECTED + SOFTMAX
]
ARCH = "res32_stem8_head32_cls10_relu:ds_r1_k3_s1_i8_o8_se0.25:ir_r1_k3_s2_e3_i8_o16_pool"
WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
# Conv-layer operators XNNPACK runs in int8 (in both models); the rest of an int8 layer may stay on TFLite.
XNNPACK_INT8 = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "LOGISTIC", "MUL", "ADD", "RESHAPE",
                "TRANSPOSE", "QUANTIZE", "DEQUANTIZE"}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _model(data: bytes):
    s = _schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))


def _op_name(model, op) -> str:
    s = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    return names[max(code.builtinCode, code.deprecatedBuiltinCode)]


def _quant(tensor) -> tuple[np.ndarray, np.ndarray, int] | None:
    q = tensor.quantization
    if q is None or q.scale is None:
        return None
    return np.asarray(q.scale), np.asarray(q.zeroPoint), q.quantizedDimension


def _dataflow(data: bytes) -> Counter:
    """Operators as (name, version, options, inputs, outputs), each input with the operator producing it: the
    graph, independent of the order the operators are scheduled in. A tensor: type, shape, constant, and its
    quantization's granularity (channels and axis when per channel)."""
    model = _model(data)
    sub = model.subgraphs[0]
    producer = {int(t): _op_name(model, op) for op in sub.operators for t in op.outputs}

    def tensor(i: int):
        t = sub.tensors[i]
        q = _quant(t)
        granularity = None if q is None else (len(q[0]), q[2]) if len(q[0]) > 1 else "per-tensor"
        return t.type, tuple(int(d) for d in t.shape), model.buffers[t.buffer].data is not None, granularity

    return Counter(
        (_op_name(model, op), model.operatorCodes[op.opcodeIndex].version,
         tuple(sorted(vars(op.builtinOptions).items())) if op.builtinOptions is not None else (),
         tuple((tensor(i), producer.get(int(i))) for i in op.inputs), tuple(tensor(i) for i in op.outputs))
        for op in sub.operators
    )


def _io_types(data: bytes) -> tuple[list[int], list[int]]:
    sub = _model(data).subgraphs[0]
    return [sub.tensors[i].type for i in sub.inputs], [sub.tensors[i].type for i in sub.outputs]


def _sequence(data: bytes) -> list[str]:
    model = _model(data)
    return [_op_name(model, op) for op in model.subgraphs[0].operators]


def _shortcut_ops(item) -> bool:
    """Whether a layer's residual operand goes through operators (pooling, 1x1 conv, squeeze)."""
    if not isinstance(item, LayerConfig):
        return False
    return item.skip == "pool" or item.op == "res" or (item.skip == "id" and item.out_resolution == 1)


def _check_int8_rules(data: bytes) -> None:
    """What full-integer quantization and XNNPACK's int8 (QS8) kernels rely on."""
    s = _schema()
    model = _model(data)
    sub = model.subgraphs[0]
    qp = {}
    for i, t in enumerate(sub.tensors):
        constant = model.buffers[t.buffer].data is not None
        if not constant and t.type != s.TensorType.FLOAT32:
            assert t.type == s.TensorType.INT8, t.name
            assert len(_quant(t)[0]) == 1, t.name  # activations: per tensor
        if t.type == s.TensorType.INT8 and len(_quant(t)[0]) == 1:
            scale, zp, _ = _quant(t)
            assert -128 <= zp[0] <= 127, t.name
            qp[i] = (float(scale[0]), int(zp[0]))
    for op in sub.operators:
        name, ins, out = _op_name(model, op), [int(i) for i in op.inputs], int(op.outputs[0])
        if name in WEIGHT_AXIS:
            w, b = sub.tensors[ins[1]], sub.tensors[ins[2]]
            w_scale, w_zp, axis = _quant(w)
            values = np.frombuffer(bytes(model.buffers[w.buffer].data), dtype=np.int8)
            assert w.type == s.TensorType.INT8 and axis == WEIGHT_AXIS[name], name
            assert len(w_scale) == w.shape[axis] and not w_zp.any() and values.min() >= -127, name
            b_scale, b_zp, _ = _quant(b)
            assert b.type == s.TensorType.INT32 and not b_zp.any(), name
            np.testing.assert_allclose(b_scale, np.float32(qp[ins[0]][0]) * w_scale, rtol=1e-6)
        if name in ("LOGISTIC", "SOFTMAX"):
            assert qp[out] == (pytest.approx(1 / 256), -128), name
        if name in ("AVERAGE_POOL_2D", "RESHAPE", "TRANSPOSE"):
            assert qp[out] == qp[ins[0]], name
        relu = name == "RELU" or getattr(op.builtinOptions, "fusedActivationFunction", 0) in (1, 3)  # RELU(6)
        # A ReLU output sits on [0, max] (zero point -128), unless calibration saw only zeros there (the
        # converter's random Keras SE can have a dead 2-channel reduce: zero point 0, scale ~1e-8).
        if relu and qp[out][0] > 1e-6:
            assert qp[out][1] == -128, (name, sub.tensors[out].name, qp[out])


def _interpreter(data: bytes, **options):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=1, **options)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        x = rng.standard_normal(detail["shape"], dtype=np.float32)
        if detail["dtype"] == np.int8:
            scale, zp = detail["quantization"]
            x = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter


def _left_to_tflite(interpreter) -> Counter:
    """The operators no XNNPACK partition took: walk back from each DELEGATE node's outputs to its inputs."""
    ops = interpreter._get_ops_details()  # nodes of the original graph, then one DELEGATE node per partition
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    taken: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            op = producer.get(todo.pop())
            if op is not None and op["index"] not in taken:
                taken.add(op["index"])
                todo += [int(t) for t in op["inputs"] if int(t) not in boundary]
    return Counter(op["op_name"] for op in ops if op["op_name"] != "DELEGATE" and op["index"] not in taken)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(item, converter's int8 bytes, writer's int8 bytes) for every layer (int8 I/O) and ARCH (float I/O)."""
    import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("int8")
    out = []
    for i, layer in enumerate(LAYERS):
        path = export_tflite(layer, folder / f"keras{i}.tflite", quantize="int8", representative=8, io_dtype="int8")
        out.append((layer, path.read_bytes(), layer_tflite_bytes(layer, seed=i, dtype="int8")))
    arch = parse_arch(ARCH)
    path = export_tflite(arch, folder / "arch.tflite", quantize="int8", representative=8)
    out.append((arch, path.read_bytes(), arch_tflite_bytes(arch, dtype="int8")))
    return out


def test_same_operators_wired_alike_with_the_converters_types_and_versions(pairs):
    for item, converted, written in pairs:
        assert _io_types(written) == _io_types(converted), item
        keras_ops, fb_ops = _dataflow(converted), _dataflow(written)
        assert fb_ops == keras_ops, (item, keras_ops - fb_ops, fb_ops - keras_ops)
        # Same order too, except where the converter schedules a shortcut's operators before the main path.
        if not _shortcut_ops(item):
            assert _sequence(written) == _sequence(converted), item
    s = _schema()
    layer_io = ([s.TensorType.INT8], [s.TensorType.INT8])
    assert all(_io_types(written) == layer_io for item, _, written in pairs if isinstance(item, LayerConfig))
    _, _, arch = pairs[-1]
    assert _io_types(arch) == ([s.TensorType.FLOAT32], [s.TensorType.FLOAT32])
    assert _sequence(arch)[0] == "QUANTIZE" and _sequence(arch)[-2:] == ["SOFTMAX", "DEQUANTIZE"]


def test_quantization_follows_the_int8_rules_as_the_converters_does(pairs):
    for item, converted, written in pairs:
        for data in (converted, written):  # the rules are the converter's own
            try:
                _check_int8_rules(data)
            except AssertionError as e:
                raise AssertionError(f"{'converted' if data is converted else 'written'} {item}: {e}") from None


def test_xnnpack_takes_the_same_operators_as_from_the_converters_model(pairs):
    for item, converted, written in pairs:
        left = _left_to_tflite(_interpreter(written))
        assert left == _left_to_tflite(_interpreter(converted)), item
        assert not set(left) & XNNPACK_INT8, (item, left)
        if isinstance(item, LayerConfig) and item.op in ("cn", "ds", "ir") and item.skip != "pool":
            assert not left, (item, left)  # the whole layer runs in XNNPACK's int8 kernels


def test_activations_do_not_saturate(pairs):
    """Run without XNNPACK, keeping every tensor: no int8 activation clips more than 1% of its values (a ReLU's
    zeros, its lowest value, are no clipping; LOGISTIC and SOFTMAX outputs are bounded by design)."""
    from ai_edge_litert.interpreter import OpResolverType

    s = _schema()
    for item, _, written in pairs:
        model = _model(written)
        sub = model.subgraphs[0]
        bounded = {int(op.outputs[0]) for op in sub.operators if _op_name(model, op) in ("LOGISTIC", "SOFTMAX")}
        activations = [i for i, t in enumerate(sub.tensors) if t.type == s.TensorType.INT8
                       and model.buffers[t.buffer].data is None and i not in bounded]
        interpreter = _interpreter(written, experimental_preserve_all_tensors=True,
                                   experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        for i in activations:
            values, (_, zp) = interpreter.get_tensor(i), _quant(sub.tensors[i])[:2]
            clipped = np.mean(values == 127) + (np.mean(values == -128) if zp[0] > -128 else 0.0)
            assert clipped < 0.01, (item, sub.tensors[i].name, clipped)


def test_dtype_is_checked(tmp_path):
    layer = LAYERS[0]
    with pytest.raises(ArchitectureError, match=r"unknown dtype 'float16'; allowed: float32, int8"):
        layer_tflite_bytes(layer, dtype="float16")
    with pytest.raises(ArchitectureError, match="allowed: float32, int8"):
        write_tflite(parse_arch(ARCH), tmp_path / "a.tflite", dtype="uint8")

    written = write_tflite(layer, tmp_path / "layer.tflite", dtype="int8")
    assert _io_types(written.read_bytes()) == ([_schema().TensorType.INT8], [_schema().TensorType.INT8])


def test_a_space_writes_int8_architectures_through_the_writer(tmp_path):
    """NAS-Bench-201 drives the writer's graph itself (cells, zero maps, extra outputs): float32 in and out."""
    space = NASBench201Space(prune=False)  # node 1 has no input: node 2's 1x1 conv reads a zero map
    arch = space.parse("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    data = write_tflite(arch, tmp_path / "nb.tflite", space=space, dtype="int8").read_bytes()
    _check_int8_rules(data)
    interpreter = _interpreter(data)
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert output.sum() == pytest.approx(1.0, abs=0.02)  # a softmax, through int8 and back
