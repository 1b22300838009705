"""Building and converting architectures, and reading .tflite operator lists (TensorFlow; tiny models only)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from latprof.errors import ModelFileError
from latprof.space import (
    LayerConfig,
    MnasNetSpace,
    arch_layers,
    build_keras_model,
    count_params_macs,
    export_tflite,
    keras_to_tflite,
    parse_arch,
    read_tflite_ops,
    tflite_params_macs,
)

# Every kind of layer: cn/ds/ir, SE, identity skip, pooling skip with and without projection, ReLU6.
MIXED = (
    "res48_stem16_head96_cls10_relu6:ds_r1_k3_s1_i16_o8_se0.25:ir_r2_k5_s2_e3_i8_o16_se0.25_pool:"
    "cn_r2_k3_s2_i16_o24_pool:ir_r2_k3_s1_e6_i24_o24_se0.25:ds_r1_k5_s2_i24_o32_pool:cn_r1_k3_s1_i32_o32_se0.25"
)

FOLDED_AWAY = {"RELU", "RELU6", "SUB", "RSQRT", "SQUARED_DIFFERENCE", "BATCH_MATMUL", "VAR_HANDLE", "READ_VARIABLE"}


def run_tflite(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def assert_ops_match_layers(ops, layers) -> None:
    """The flatbuffer's ops, cut into consecutive per-layer runs, are each layer's tflite_ops().

    Within a layer the order of independent branches (a pooling shortcut versus
    the main path) is the converter's choice, so runs are compared as multisets;
    the last op of a run (ADD for a residual) is fixed.
    """
    names = [op.name for op in ops]
    assert len(names) == sum(len(layer.tflite_ops()) for layer in layers)
    i = 0
    for layer in layers:
        expected = layer.tflite_ops()
        run = names[i: i + len(expected)]
        assert Counter(run) == Counter(expected), (layer.layer_key(), run, expected)
        assert run[-1] == expected[-1], (layer.layer_key(), run, expected)
        i += len(expected)


def expected_fused_activations(layers: list[LayerConfig]) -> Counter:
    """Fused activation of every conv-like op, derived from the layer configs."""
    fused: Counter = Counter()
    for layer in layers:
        act = layer.activation.upper()
        if layer.op == "fc":
            fused["NONE"] += 1
            continue
        fused[act] += {"cn": 1, "ds": 1, "ir": 2}[layer.op]
        fused["NONE"] += layer.op in ("ds", "ir")  # linear projection
        if layer.se_ratio:
            fused["RELU"] += 1  # SE reduce
            fused["NONE"] += 1  # SE expand (sigmoid is a separate LOGISTIC)
        fused["NONE"] += layer.has_projection_shortcut
    return fused


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    a = parse_arch(MIXED)
    model = build_keras_model(a)
    data = keras_to_tflite(model)
    path = tmp_path_factory.mktemp("space") / "mixed.tflite"
    path.write_bytes(data)
    return a, model, data, path


def test_converted_ops_are_exactly_the_layers_tflite_ops(mixed):
    a, _, _, path = mixed
    assert_ops_match_layers(read_tflite_ops(path), arch_layers(a))


def test_batchnorm_and_relu_are_folded_into_the_convolutions(mixed):
    """What a phone runs: no BN arithmetic and no activation ops left, activations fused into convs."""
    from latprof.space._build import LAST_CONVERTER

    a, _, _, path = mixed
    ops = read_tflite_ops(path)
    names = Counter(op.name for op in ops)
    assert not FOLDED_AWAY & set(names), names
    layers = arch_layers(a)
    assert names["MUL"] == sum(layer.se_ratio > 0 for layer in layers)  # only the SE scaling
    assert names["ADD"] == sum(layer.skip != "none" for layer in layers)  # only the residuals
    fused = Counter(op.attributes["fused_activation_function"] for op in ops
                    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    assert fused == expected_fused_activations(layers)
    assert fused["RELU6"] > 0
    for op in ops:
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert len(op.inputs) == 3 and op.inputs[2].constant  # the folded BN bias
    assert LAST_CONVERTER["path"].startswith("graphdef")


def test_counts_match_the_flatbuffer_and_the_keras_model(mixed):
    a, model, _, path = mixed
    params, macs = count_params_macs(a)
    assert tflite_params_macs(read_tflite_ops(path)) == (params, macs)
    bn_gammas = sum(int(np.prod(w.shape)) for w in model.trainable_weights if w.path.endswith("gamma"))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable - bn_gammas == params  # BN beta becomes the conv bias, gamma folds into the weights


def test_converted_model_computes_what_the_keras_model_computes(mixed):
    a, model, data, _ = mixed
    x = np.random.default_rng(0).standard_normal((1, a.resolution, a.resolution, 3)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    got = run_tflite(data, x)
    assert got.shape == (1, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_op_attributes_and_shapes(mixed):
    a, _, _, path = mixed
    ops = read_tflite_ops(path)
    stem = ops[0]
    assert stem.name == "CONV_2D" and stem.builtin_code == 3
    assert stem.input_shapes == [(1, 48, 48, 3)] and stem.output_shapes == [(1, 24, 24, 16)]
    assert stem.weight_shapes == [(16, 3, 3, 3), (16,)]
    assert stem.attributes["stride_h"] == stem.attributes["stride_w"] == 2
    assert stem.attributes["padding"] == "SAME" and stem.attributes["fused_activation_function"] == "RELU6"
    assert stem.attributes["dilation_w_factor"] == 1
    dw = next(op for op in ops if op.name == "DEPTHWISE_CONV_2D")
    assert dw.attributes["depth_multiplier"] == 1 and dw.weight_shapes[0] == (1, 3, 3, 16)
    pool = next(op for op in ops if op.name == "AVERAGE_POOL_2D")
    assert pool.attributes["filter_width"] == 3 and pool.attributes["stride_w"] == 2
    mean = next(op for op in ops if op.name == "MEAN")
    assert mean.attributes["keep_dims"] is True
    assert ops[-1].name == "SOFTMAX" and ops[-1].output_shapes == [(1, 10)]


@pytest.mark.parametrize("resolution", [64, 32])  # at 32 the last blocks run on 1x1 feature maps
def test_random_space_architectures_build_convert_and_run(tmp_path, resolution):
    space = MnasNetSpace(depth_multiplier=0.35, resolution=resolution)
    rng = random.Random(11)
    for i in range(1):
        a = space.sample(rng)
        path = export_tflite(a, tmp_path / f"sampled{i}.tflite")
        ops = read_tflite_ops(path)
        assert_ops_match_layers(ops, arch_layers(a))
        assert tflite_params_macs(ops) == count_params_macs(a)
        out = run_tflite(path.read_bytes(), np.ones((1, resolution, resolution, 3), np.float32))
        assert out.shape == (1, 1000) and abs(float(out.sum()) - 1.0) < 1e-3


def test_a_single_layer_exports_for_a_lookup_table(tmp_path):
    layer = LayerConfig("ir", 5, 2, 6, 0.25, "pool", 16, 24, 32, "relu")
    path = export_tflite(layer, tmp_path / "layer.tflite")
    ops = read_tflite_ops(path)
    assert_ops_match_layers(ops, [layer])
    assert ops[0].input_shapes == [(1, 32, 32, 16)] and ops[-1].output_shapes == [(1, 16, 16, 24)]
    assert tflite_params_macs(ops) == (layer.params(), layer.macs())


@pytest.mark.parametrize("layer", [
    LayerConfig("ds", 3, 1, 1, 0.25, "id", 16, 16, 1, "relu"),
    LayerConfig("cn", 3, 2, 1, 0.25, "pool", 16, 24, 2, "relu"),
], ids=lambda layer: layer.layer_key())
def test_layers_on_one_by_one_feature_maps(tmp_path, layer):
    """The converter drops the SE MEAN and adds a RESHAPE before the residual ADD at 1x1."""
    ops = read_tflite_ops(export_tflite(layer, tmp_path / "layer.tflite"))
    assert "MEAN" not in layer.tflite_ops() and "RESHAPE" in layer.tflite_ops()
    assert_ops_match_layers(ops, [layer])


def test_reads_a_keras_mobilenet_v3_never_described_by_a_string():
    import keras

    model = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), weights=None, include_preprocessing=False)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mbv3.tflite"
        path.write_bytes(keras_to_tflite(model))
        ops = read_tflite_ops(path)
    names = Counter(op.name for op in ops)
    assert names["HARD_SWISH"] > 0 and names["DEPTHWISE_CONV_2D"] == 11 and names["CONV_2D"] > 20
    assert all("fused_activation_function" in op.attributes for op in ops if op.name == "CONV_2D")
    params, macs = tflite_params_macs(ops)
    # Keras counts BN (4 per channel, moving stats included); the flatbuffer has one folded bias per channel.
    assert 0.9 * model.count_params() < params < model.count_params()
    assert macs > 0


def test_reads_a_model_converted_by_from_keras_model(tiny_tflite):
    ops = read_tflite_ops(tiny_tflite)
    assert [op.name for op in ops] == ["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"]
    assert ops[0].attributes["fused_activation_function"] == "RELU6"
    assert ops[0].output_shapes == [(1, 8, 8, 8)]


def test_read_errors(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        read_tflite_ops(tmp_path / "missing.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 200)
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        read_tflite_ops(bad)


def test_export_many_yields_in_order_and_reuses_files(tmp_path):
    from latprof.space import export_many

    layers = [LayerConfig("ds", 3, 1, 1, 0.0, "id", 8, 8, 16, "relu"),
              LayerConfig("cn", 5, 2, 1, 0.25, "pool", 8, 16, 16, "relu6")]
    got = list(export_many(layers, tmp_path, workers=1))
    assert [item for item, _ in got] == layers
    for layer, path in got:
        assert path.name == layer.layer_key() + ".tflite"
        assert_ops_match_layers(read_tflite_ops(path), [layer])
    mtimes = [p.stat().st_mtime_ns for _, p in got]
    assert [p.stat().st_mtime_ns for _, p in export_many(layers, tmp_path)] == mtimes  # reused, no worker
