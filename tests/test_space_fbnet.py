"""The FBNet space: strings, tokens, layers, and grouped layers through the .tflite writer and the converter."""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from latprof.errors import ArchitectureError
from latprof.space import (
    FBNetArch,
    FBNetSpace,
    LayerConfig,
    arch_from_json,
    arch_to_json,
    format_arch,
    get_space,
    keras_to_tflite,
    layer_operators,
    parse_arch,
    read_tflite_ops,
)
from latprof.space._flatbuffer import layer_tflite_bytes

CSV = Path("/work/shared/data/phone_latency/fbnet.csv")
GROUPED = [
    LayerConfig("ir", 3, 1, 1, 0.0, "id", 24, 24, 32, "relu", 2),  # residual
    LayerConfig("ir", 5, 2, 1, 0.0, "id", 24, 32, 32, "relu", 2),  # strided, filters change
    LayerConfig("ir", 5, 1, 1, 0.0, "id", 184, 352, 4, "relu", 2),  # the last stage at 32x32
]


@pytest.fixture(scope="module")
def space() -> FBNetSpace:
    return get_space("fbnet", resolution=32)


def _run(data: bytes, delegate: bool) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {} if delegate else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    it = Interpreter(model_content=data, num_threads=1, **kw)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.random.default_rng(0).standard_normal(inp["shape"]).astype(np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _ops(data: bytes, tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(data)
    return read_tflite_ops(path)


@pytest.mark.skipif(not CSV.exists(), reason="HW-NAS-Bench FBNet latency CSV not present")
def test_csv_strings_round_trip(space):
    with CSV.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 100
    for row in rows:
        assert space.format(space.parse(row["arch"])) == row["arch"]


def test_tokens_round_trip_and_sampling_stays_in_the_space(space):
    rng = random.Random(0)
    for _ in range(50):
        a = space.sample(rng)
        assert isinstance(a, FBNetArch) and a.resolution == 32
        tokens = space.to_tokens(a)
        assert space.from_tokens(tokens) == a and space.contains(a)
        assert space.parse(space.format(a)) == a
        b = space.mutate(a, rng)
        assert space.contains(b)
        assert sum(x != y for x, y in zip(tokens, space.to_tokens(b))) == 1
    assert space.size() == 9 ** 22 == space.num_combinations()
    assert len(space.decisions()) == 22


def test_hand_checked_layers_at_32_and_224(space):
    all_skip = space.parse("-".join(["skip"] * 22))
    keys = [layer.layer_key() for layer in space.layers(all_skip)]
    # Identity skips build nothing; the six shape-changing ones are 1x1 conv + BN + ReLU with the stride.
    assert keys == [
        "cn_k3_s1_e1_i3_o16_se0_none_relu_r32",
        "cn_k1_s1_e1_i16_o24_se0_none_relu_r32",
        "cn_k1_s2_e1_i24_o32_se0_none_relu_r32",
        "cn_k1_s2_e1_i32_o64_se0_none_relu_r16",
        "cn_k1_s1_e1_i64_o112_se0_none_relu_r8",
        "cn_k1_s2_e1_i112_o184_se0_none_relu_r8",
        "cn_k1_s1_e1_i184_o352_se0_none_relu_r4",
        "cn_k1_s1_e1_i352_o1504_se0_none_relu_r4",
        "fc_k1_s1_e1_i1504_o100_se0_none_none_r4",
    ]
    ops = ["k3_e1_g2"] * 22
    named = dict(space.named_layers(space.parse("-".join(ops))))
    layer = named["s2.2"]  # 24 -> 24 at 32x32: grouped expand, shuffle, depthwise, grouped project, add
    assert layer.layer_key() == "ir_k3_s1_e1_i24_o24_se0_id_relu_r32_g2"
    assert layer.tflite_ops() == ("CONV_2D", "RESHAPE", "TRANSPOSE", "RESHAPE", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD")
    assert layer.params() == (24 * 12 + 24) + (9 * 24 + 24) + (24 * 12 + 24)
    assert layer.macs() == 1024 * (24 * 12 + 9 * 24 + 24 * 12)
    assert LayerConfig.from_key(layer.layer_key()) == layer
    assert list(named)[:3] == ["stem", "s1.1", "s2.1"] and list(named)[-2:] == ["head", "classifier"]
    assert len(named) == 22 + 3

    big = FBNetSpace(224)
    big_layers = big.named_layers(big.parse("-".join(ops)))
    assert big_layers[0][1].layer_key() == "cn_k3_s2_e1_i3_o16_se0_none_relu_r224"
    assert [(n, layer.resolution) for n, layer in big_layers if n in ("s1.1", "s2.1", "s3.1", "s7.1", "head")] == [
        ("s1.1", 112), ("s2.1", 112), ("s3.1", 56), ("s7.1", 7), ("head", 7)]
    assert big_layers[-1][1].layer_key() == "fc_k1_s1_e1_i1984_o1000_se0_none_none_r7"


def test_generic_architecture_strings_and_json_round_trip(space):
    a = space.sample(random.Random(3)).architecture()
    text = format_arch(a)
    assert text.startswith("res32_stem16_ss1_head1504_cls100_relu:")
    assert parse_arch(text) == a and arch_from_json(arch_to_json(a)) == a
    g = parse_arch("res32_stem16_ss1:ir_r1_k3_s1_e1_i16_o16_g2:cn_r1_k1_s2_i16_o24_noskip")
    assert (g.stem_stride, g.blocks[0].groups, g.blocks[1].kernel) == (1, 2, 1)
    assert format_arch(g) == ("res32_stem16_ss1_head1280_cls1000_relu:ir_r1_k3_s1_e1_i16_o16_g2:"
                              "cn_r1_k1_s2_i16_o24_noskip")
    assert "stem_stride" not in arch_to_json(parse_arch("mnasnet-a1"))  # unchanged where the defaults hold


def test_errors_name_the_problem(space):
    with pytest.raises(ArchitectureError, match="has 22 layers, got 2"):
        space.parse("k3_e1-skip")
    with pytest.raises(ArchitectureError, match="layer 3: unknown op 'k7_e6'"):
        space.parse("-".join(["k3_e1", "skip", "k7_e6"] + ["skip"] * 19))
    with pytest.raises(ArchitectureError, match=r"use FBNetSpace\(resolution=224\)"):
        space.to_tokens(FBNetSpace(224).sample(0))
    with pytest.raises(ArchitectureError, match="not supported; allowed: 32, 224"):
        get_space("fbnet", resolution=64)
    with pytest.raises(ArchitectureError, match="field 'ss'"):
        get_space("mnasnet").to_tokens(parse_arch("res224_stem32_ss1:ds_r1_k3_s1_i32_o16"))


@pytest.mark.parametrize("layer", GROUPED, ids=lambda layer: layer.layer_key())
def test_grouped_layer_tflite_runs_and_matches_the_models(layer, tmp_path):
    data = layer_tflite_bytes(layer)
    ops = _ops(data, tmp_path, "layer.tflite")
    assert tuple(op.name for op in ops) == layer.tflite_ops()
    conv = ops[0]
    assert conv.inputs[1].shape == (layer.mid_channels, 1, 1, layer.in_channels // 2)  # grouped filter
    assert sum(op.macs() for op in ops) == layer.macs()
    written = Counter((op.name, sum(t.size for t in op.outputs), op.macs()) for op in ops)
    assert written == Counter((d.kind, d.out_elems, d.macs) for d in layer_operators(layer))
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    versions = {oc.builtinCode: oc.version for oc in model.operatorCodes}
    assert versions[schema.BuiltinOperator.CONV_2D] == 6  # grouped convolution, as the converter marks it
    with_xnnpack, builtin = _run(data, True), _run(data, False)
    assert with_xnnpack.shape == (1, layer.out_resolution, layer.out_resolution, layer.out_channels)
    np.testing.assert_allclose(with_xnnpack, builtin, rtol=1e-4, atol=1e-4)


def test_unique_layer_configs_cover_sampled_architectures(space):
    unique = set(space.unique_layer_configs())
    assert len(unique) == len(space.unique_layer_configs())
    rng = random.Random(1)
    for _ in range(50):
        assert set(space.layers(space.sample(rng))) <= unique


def test_naswot_runs_grouped_layers_and_shuffles_like_shufflenet(space):
    from latprof.search._accuracy import scaled_copy
    from latprof.search._naswot import _Forward, naswot_score

    x = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)
    assert _Forward.channel_shuffle(x, 2).ravel().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    arch = space.parse("-".join(["k3_e1_g2", "k5_e6"] * 11)).architecture()
    copy = scaled_copy(arch, resolution=32, width=0.25, num_classes=10)
    images = np.random.default_rng(0).standard_normal((8, 32, 32, 3)).astype(np.float32)
    assert np.isfinite(naswot_score(copy, images))


def test_whole_model_flatbuffer_runs_and_keras_converts_to_the_same_operators(space, tmp_path):
    arch = space.parse("k3_e1_g2-skip-k5_e1_g2-skip-k3_e3-k5_e1-skip-k3_e6-k5_e6-skip-k3_e1-k5_e3-k3_e1_g2-"
                       "k5_e1_g2-skip-k3_e6-k5_e6-k3_e3-skip-k5_e1-k3_e1_g2-skip")
    data = space.tflite_bytes(arch)
    written = [op.name for op in _ops(data, tmp_path, "fb.tflite")]
    assert written == [name for layer in space.layers(arch) for name in layer.tflite_ops()]
    assert _run(data, True).shape == (1, 100)
    converted = [op.name for op in _ops(keras_to_tflite(space.keras_model(arch)), tmp_path, "keras.tflite")]
    assert converted == written
