"""The one layer -> operators description against the operators the .tflite writer emits, and the taxonomy."""

from __future__ import annotations

import pytest

from latprof.errors import ArchitectureError
from latprof.space import (
    OP_KINDS,
    FBNetSpace,
    LayerConfig,
    MnasNetSpace,
    NASBench201Space,
    Operator,
    keras_to_tflite,
    layer_operators,
    op_family,
    op_kind,
    read_tflite_ops,
    tflite_operators,
    write_tflite,
)

SPACES = {"mnasnet": MnasNetSpace(0.35, 32), "fbnet32": FBNetSpace(32), "fbnet224": FBNetSpace(224),
          "nasbench201": NASBench201Space()}


def _written(layer: LayerConfig, tmp_path) -> list[Operator]:
    return tflite_operators(read_tflite_ops(write_tflite(layer, tmp_path / "layer.tflite")))


@pytest.mark.parametrize("name", SPACES)
def test_every_layer_of_a_space_is_described_as_written(tmp_path, name):
    """Kinds, shapes, MACs, weights, strides, groups and broadcasts of every unique layer, op for op, in order."""
    layers = SPACES[name].unique_layer_configs()
    for layer in layers:
        described, written = list(layer_operators(layer)), _written(layer, tmp_path)
        assert described == written, layer.layer_key()
        assert [op_kind(op) for op in described] == [op_kind(op) for op in written]
        assert [op_family(op) for op in described] == [op_family(op) for op in written]
        assert layer.tflite_ops() == tuple(op.kind for op in written)
        assert sum(op.macs for op in described) == layer.macs()
    assert {op_kind(op) for layer in layers for op in layer_operators(layer)} <= set(OP_KINDS)


@pytest.mark.parametrize("layer, families", [
    (LayerConfig("ir", 5, 1, 6, 0.25, "id", 16, 16, 8, "relu"),  # SE on an 8x8 map, identity residual
     ["pointwise", "depthwise", "pooling", "se", "se", "se", "se", "pointwise", "elementwise"]),
    (LayerConfig("ds", 3, 1, 1, 0.25, "id", 16, 16, 1, "relu"),  # 1x1 map: no MEAN, the ADD broadcasts a vector
     ["depthwise", "se", "se", "se", "se", "se", "other", "se"]),
    (LayerConfig("cn", 3, 2, 1, 0.0, "pool", 16, 24, 16, "relu"),  # projected pooling shortcut
     ["conv", "pooling", "pointwise", "elementwise"]),
    (LayerConfig("fc", 1, 1, 1, 0.0, "none", 64, 10, 4, "none"), ["pooling", "other", "other"]),
    (LayerConfig("bnrelu", 1, 1, 1, 0.0, "none", 16, 16, 8, "none"), ["elementwise"]),  # MUL by a constant
])
def test_families_keep_the_squeeze_and_excitation_rule(tmp_path, layer, families):
    """A 1x1-map pointwise conv or element-wise op, and a broadcast MUL/ADD, are family "se"."""
    assert [op_family(op) for op in _written(layer, tmp_path)] == families
    assert [op_family(op) for op in layer_operators(layer)] == families


def test_grouped_shuffled_layer_kinds(tmp_path):
    layer = LayerConfig("ir", 3, 1, 1, 0.0, "id", 24, 24, 8, "relu", 2)  # FBNet's k3_e1_g2
    written = _written(layer, tmp_path)
    assert [op_kind(op) for op in written] == ["conv1x1_g", "reshape", "copy", "reshape", "dw3s1", "conv1x1_g",
                                               "add"]
    assert written[0].groups == 2 and written[0].macs == 8 * 8 * 24 * 24 // 2


def test_converted_dilated_grouped_and_rectangular_convs(tmp_path):
    keras = pytest.importorskip("keras")
    x = inp = keras.Input((16, 16, 8), batch_size=1)
    x = keras.layers.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, groups=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, (1, 7), strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)
    path = tmp_path / "convs.tflite"
    path.write_bytes(keras_to_tflite(keras.Model(inp, x)))
    ops = tflite_operators(read_tflite_ops(path))
    assert [(op.kind, op.kernel, op.stride, op.dilation, op.groups) for op in ops] == [
        ("CONV_2D", 3, 1, 2, 1), ("CONV_2D", 3, 1, 1, 2), ("CONV_2D", 7, 2, 1, 1), ("DEPTHWISE_CONV_2D", 3, 1, 2, 1)]
    # dilation 2: a 5x5 reach; a grouped 3x3 is its own kind
    assert [op_kind(op) for op in ops] == ["conv5s1", "conv_g", "conv7s2", "dw5s1"]
    assert [op_family(op) for op in ops] == ["conv", "conv", "conv", "depthwise"]
    assert ops[1].macs == 16 * 16 * 8 * 3 * 3 * 4  # each output channel sees half the inputs


def test_operator_features():
    op = Operator("CONV_2D", in_elems=200_000, out_elems=100_000, weight_elems=50_000, macs=3_000_000)
    assert op.features().tolist() == [1.0, 3.0, 2.0, 1.0, 0.5]


@pytest.mark.parametrize("name", ["mnasnet", "fbnet32", "nasbench201"])
def test_operator_keys_round_trip(name):
    space = SPACES[name]
    ops = {op for arch in (space.sample(seed) for seed in range(3)) for _, layer in space.named_layers(arch)
           for op in layer_operators(layer)}
    ops |= {Operator("DEPTHWISE_CONV_2D", 7, 2, 3, 1, 1, 2, 3, 4, 5, True),
            Operator("TFLite_Detection_PostProcess_k1")}  # a custom code with underscores and a tag-like tail
    keys = {op.key() for op in ops}
    assert len(keys) == len(ops)  # every field is in the key
    assert all(key.startswith("op:") and " " not in key for key in keys)
    assert {Operator.from_key(key) for key in keys} == ops


@pytest.mark.parametrize("key", ["", "op:", "CONV_2D_k1_s1_d1_g1_i1_o1_w1_m1_p1_b0", "op:CONV_2D_k1_s1_d1_g1_i1_o1",
                                 "op:CONV_2D_k1_s1_d1_g1_i1_o1_w1_m1_p1_b2", "op:CONV_2D_k1_s1_d1_g1_i1_o1_w1_m1_p1_b0x",
                                 "op:_k1_s1_d1_g1_i1_o1_w1_m1_p1_b0", "op:CONV_2D_s1_k1_d1_g1_i1_o1_w1_m1_p1_b0"])
def test_bad_operator_keys_are_refused(key):
    with pytest.raises(ArchitectureError, match="not an operator key"):
        Operator.from_key(key)
