"""The direct TFLite writer builds what the Keras -> converter path builds, operator for operator."""

from __future__ import annotations

import random
import time
from collections import Counter

import numpy as np
import pytest

from latprof.errors import ArchitectureError
from latprof.space import LayerConfig, MnasNetSpace, export_tflite, layer_operators, parse_arch, read_tflite_ops
from latprof.space._flatbuffer import write_tflite

LAYERS = [
    LayerConfig("ir", 5, 2, 3, 0.25, "pool", 16, 24, 32, "relu"),  # SE + pooling shortcut with projection
    LayerConfig("ds", 3, 1, 1, 0.0, "id", 16, 16, 32, "relu6"),  # identity residual, ReLU6
    LayerConfig("cn", 5, 1, 1, 0.25, "pool", 16, 16, 16, "relu"),  # pooling shortcut without projection
    LayerConfig("fc", 1, 1, 1, 0.0, "none", 64, 10, 4, "none"),  # mean + fully connected + softmax
    LayerConfig("ds", 3, 1, 1, 0.25, "id", 16, 16, 1, "relu"),  # 1x1 map: no SE MEAN, RESHAPE before the ADD
    LayerConfig("cn", 3, 2, 1, 0.25, "pool", 16, 24, 2, "relu"),  # 1x1 output with a projected pooling shortcut
]


def _signature(path) -> Counter:
    """Operators as (name, input/weight shapes and dtypes, output shapes, options), as a multiset."""
    return Counter(
        (op.name,
         tuple((t.shape, t.dtype, t.constant) if t is not None else None for t in op.inputs),
         tuple(t.shape for t in op.outputs),
         tuple(sorted((k, str(v)) for k, v in op.attributes.items())))
        for op in read_tflite_ops(path)
    )


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(Keras-converted, flatbuffer-written) file pairs for a few layers and a small architecture."""
    folder = tmp_path_factory.mktemp("fb")
    space = MnasNetSpace(0.35, 64)
    items = LAYERS + [space.sample(random.Random(3))]
    out = []
    for i, item in enumerate(items):
        out.append((item, export_tflite(item, folder / f"keras{i}.tflite"), write_tflite(item, folder / f"fb{i}.tflite")))
    return out


def test_same_operators_shapes_and_options_as_the_converter(pairs):
    for item, keras_path, fb_path in pairs:
        keras_ops, fb_ops = _signature(keras_path), _signature(fb_path)
        assert fb_ops == keras_ops, (item, keras_ops - fb_ops, fb_ops - keras_ops)
    names = {op.name for _, _, path in pairs for op in read_tflite_ops(path)}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "LOGISTIC", "MUL", "ADD", "AVERAGE_POOL_2D",
            "FULLY_CONNECTED", "SOFTMAX"} <= names


def test_options_that_change_the_kernel_are_the_converters(pairs):
    _, _, fb_path = pairs[0]
    ops = read_tflite_ops(fb_path)
    by_name = {}
    for op in ops:
        by_name.setdefault(op.name, []).append(op.attributes)
    assert {a["padding"] for a in by_name["CONV_2D"]} == {"SAME", "VALID"}  # block convs SAME, SE/shortcut VALID
    assert by_name["DEPTHWISE_CONV_2D"][0]["stride_h"] == 2
    assert by_name["DEPTHWISE_CONV_2D"][0]["fused_activation_function"] == "RELU"
    assert by_name["MEAN"][0]["keep_dims"] is True
    assert by_name["AVERAGE_POOL_2D"][0]["filter_height"] == 3


def test_host_latency_matches_the_converted_model(pairs):
    """Same graph, same kernels: invoked alternately in one process, both files take the same time.

    Alternating invocations cancel the shared host's changes of speed (another
    process on the sibling core slows both models alike); the bound stays loose.
    """
    from ai_edge_litert.interpreter import Interpreter

    _, keras_path, fb_path = pairs[-1]
    interpreters = []
    for path in (keras_path, fb_path):
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.random.default_rng(0).standard_normal(detail["shape"],
                                                                                       dtype=np.float32))
        interpreters.append(interpreter)
    ratios = []
    for i in range(220):
        times = []
        for interpreter in interpreters:
            start = time.perf_counter_ns()
            interpreter.invoke()
            times.append(time.perf_counter_ns() - start)
        if i >= 20:  # warm-up
            ratios.append(times[1] / times[0])
    assert 0.8 < float(np.median(ratios)) < 1.25, np.percentile(ratios, [10, 50, 90])


def test_predictor_op_model_matches_the_written_operators(tmp_path):
    """latprof.space's operator list of a layer equals what the writer emits (names, sizes, MACs)."""
    space = MnasNetSpace(0.35, 64)
    layers = list({layer for a in (space.sample(random.Random(s)) for s in range(3)) for layer in space.layers(a)})
    layers += LAYERS
    for i, layer in enumerate(layers):
        ops = read_tflite_ops(write_tflite(layer, tmp_path / f"l{i}.tflite"))
        written = Counter((op.name, sum(t.size for t in op.outputs), op.macs()) for op in ops)
        modelled = Counter((d.kind, d.out_elems, d.macs) for d in layer_operators(layer))
        assert written == modelled, layer.layer_key()


def test_writer_rejects_what_it_cannot_build(tmp_path):
    with pytest.raises(ArchitectureError, match="expected an Architecture or LayerConfig"):
        write_tflite("mnasnet-a1", tmp_path / "x.tflite")
    arch = parse_arch("mnasnet-a1@0.35,64")
    assert len(read_tflite_ops(write_tflite(arch, tmp_path / "a1.tflite"))) > 50
