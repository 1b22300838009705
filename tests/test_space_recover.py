"""Layers recovered from converted .tflite files, so that `latprof predict model.tflite` can use the table."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from latprof.space import (MnasNetSpace, arch_layers, export_tflite, keras_to_tflite, parse_arch, read_tflite_ops,
                           recover_layers)


@pytest.mark.parametrize("arch", [
    MnasNetSpace(0.35, 64).sample(random.Random(21)),
    MnasNetSpace(0.35, 32).sample(random.Random(22)),  # last blocks on 1x1 maps: converter rewrites
    parse_arch("mnasnet-a1@0.35,64"),  # SE ratio on other widths, 112-style filters
], ids=["space@64", "space@32", "mnasnet-a1"])
def test_converted_architecture_is_recovered_layer_for_layer(tmp_path, arch):
    ops = read_tflite_ops(export_tflite(arch, tmp_path / "arch.tflite"))
    units = recover_layers(ops)
    assert [layer for layer, _ in units] == arch_layers(arch)
    assert sorted(op.index for _, group in units for op in group) == list(range(len(ops)))


def _keras_tflite(tmp_path, name, **kwargs):
    import keras

    model = getattr(keras.applications, name)(input_shape=(64, 64, 3), weights=None, **kwargs)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(keras_to_tflite(model))
    ops = read_tflite_ops(path)
    units = recover_layers(ops)
    assert sorted(op.index for _, group in units for op in group) == list(range(len(ops)))  # each op once
    return units


def test_keras_mobilenet_v2_is_recovered_as_relu6_layers(tmp_path):
    """The converter folds Keras' explicit padding into SAME convolutions, so every op belongs to a layer."""
    units = _keras_tflite(tmp_path, "MobileNetV2", alpha=0.35)
    layers = [layer for layer, _ in units]
    assert None not in layers
    assert layers[0].layer_key() == "cn_k3_s2_e1_i3_o16_se0_none_relu6_r64" and layers[-1].op == "fc"
    assert sum(layer.op == "ir" and layer.skip == "id" for layer in layers) == 10


def test_foreign_operators_stay_alone(tmp_path):
    units = _keras_tflite(tmp_path, "MobileNetV3Small", include_preprocessing=False)
    lone = Counter(group[0].name for layer, group in units if layer is None)
    assert lone["HARD_SWISH"] > 0 and lone["CONV_2D"] > 0
