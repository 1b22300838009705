"""The MnasNet search space: decisions, tokens, sampling, mutation, size, unique layers, registry."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys

import pytest

from latprof.errors import ArchitectureError
from latprof.space import (
    LayerConfig,
    MnasNetSpace,
    SearchSpace,
    arch_layers,
    format_arch,
    get_space,
    parse_arch,
    register_space,
    space_names,
)
from latprof.space._mnasnet import MOBILENET_V2_STAGES


@pytest.fixture(scope="module")
def space() -> MnasNetSpace:
    return MnasNetSpace()


def test_space_follows_the_paper_and_mobilenet_v2(space):
    """7 blocks with MobileNetV2's strides and reference filters; 6 decisions per block.

    Per block: 4 conv ops x 2 kernels x 2 SE x 3 skips x 3 filter sizes x 3 layer
    counts = 432, the per-block size S of the MnasNet paper (section 4.1); the two
    one-layer stages have 2 layer counts (1 or 2), so 288.
    """
    decisions = space.decisions()
    assert len(decisions) == 42
    assert [d.name for d in decisions[:6]] == ["b1.op", "b1.kernel", "b1.se", "b1.skip", "b1.filters", "b1.layers"]
    assert [b.stride for b in space.blocks] == [1, 2, 2, 2, 1, 2, 1]
    assert [b.ref_filters for b in space.blocks] == [16, 24, 32, 64, 96, 160, 320]
    assert [b.ref_layers for b in space.blocks] == [1, 2, 3, 4, 3, 3, 1]
    assert [b.filters for b in space.blocks][1] == (20, 24, 32)  # 0.75, 1.0, 1.25 x 24, multiples of 4
    per_block = [math.prod(len(d.choices) for d in decisions[6 * i: 6 * i + 6]) for i in range(7)]
    assert per_block == [288, 432, 432, 432, 432, 432, 288]
    assert space.num_combinations() == 432**5 * 288**2


def test_space_size_and_unique_layer_configs(space):
    """The counts printed by `latprof space show` and the benchmark script."""
    assert space.size() == 770_351_078_729_318_400
    assert space.size() < space.num_combinations()
    uniques = space.unique_layer_configs()
    assert len(uniques) == 2837
    assert len({u.layer_key() for u in uniques}) == len(uniques)  # keys are unique too
    assert uniques[0].layer_key() == "cn_k3_s2_e1_i3_o32_se0_none_relu_r224"  # stem
    assert uniques[-1].op == "fc"  # classifier


def test_unique_layer_configs_cover_every_sampled_architecture(space):
    uniques = set(space.unique_layer_configs())
    rng = random.Random(7)
    for _ in range(300):
        assert set(arch_layers(space.sample(rng))) <= uniques


def test_size_counts_distinct_networks_by_brute_force(monkeypatch):
    """On a 2-block space small enough to enumerate, size() equals the number of distinct layer lists."""
    from latprof.space import _mnasnet

    monkeypatch.setattr(_mnasnet, "CONV_OPS", ("ds", "ir6"))
    monkeypatch.setattr(_mnasnet, "KERNEL_CHOICES", (3,))

    class Tiny(MnasNetSpace):
        def __init__(self):
            super().__init__(depth_multiplier=0.5, resolution=64)
            self.blocks = (self.blocks[0], self.blocks[6])  # two stride-1 stages, 1-2 layers each
            self._decisions = self._decisions[:6] + self._decisions[36:]

    tiny = Tiny()
    seen = {
        tuple(arch_layers(tiny.from_tokens(list(tokens))))
        for tokens in itertools.product(*(range(len(d.choices)) for d in tiny.decisions()))
    }
    assert tiny.num_combinations() == 72 * 72
    assert tiny.size() == len(seen) < tiny.num_combinations()


def test_tokens_roundtrip_and_sampling_is_seeded(space):
    a = space.sample(random.Random(0))
    assert space.from_tokens(space.to_tokens(a)) == a
    assert [format_arch(space.sample(random.Random(3))) for _ in range(2)] == [format_arch(space.sample(3))] * 2
    rng1, rng2 = random.Random(5), random.Random(5)
    assert [space.sample(rng1) for _ in range(5)] == [space.sample(rng2) for _ in range(5)]
    assert len({space.sample(rng1) for _ in range(50)}) == 50
    assert space.contains(a) and space.parse(space.format(a)) == a


def test_sampling_is_uniform_per_decision(space):
    rng = random.Random(1)
    counts = [0, 0, 0, 0]
    for _ in range(4000):
        counts[space.to_tokens(space.sample(rng))[0]] += 1
    assert all(800 < c < 1200 for c in counts), counts


def test_mutation_changes_exactly_one_decision_and_the_network(space):
    rng = random.Random(2)
    for _ in range(200):
        a = space.sample(rng)
        b = space.mutate(a, rng)
        diff = [i for i, (x, y) in enumerate(zip(space.to_tokens(a), space.to_tokens(b))) if x != y]
        assert len(diff) == 1
        assert arch_layers(a) != arch_layers(b)


def test_references_are_outside_the_space_with_a_precise_reason(space):
    with pytest.raises(ArchitectureError, match=r"block 5 .*output filters 112 is not a choice of the space; "
                                                r"allowed: 72, 96, 120 \(field 'o'\)"):
        space.to_tokens(parse_arch("mnasnet-a1"))
    assert not space.contains(parse_arch("mobilenet-v2"))  # ReLU6, the space uses ReLU
    with pytest.raises(ArchitectureError, match="header resolution is 192, the space has 224"):
        space.to_tokens(parse_arch("mnasnet-a1@1.0,192"))


def test_bad_tokens_are_rejected(space):
    with pytest.raises(ArchitectureError, match="takes 42 tokens, got 3"):
        space.from_tokens([0, 0, 0])
    with pytest.raises(ArchitectureError, match=r"b1.op must be an integer in 0..3 \(choices: cn, ds, ir3, ir6\), got 4"):
        space.from_tokens([4] + [0] * 41)


def test_depth_multiplier_and_resolution_are_space_parameters():
    small = get_space("mnasnet", depth_multiplier=0.5, resolution=128)
    a = small.sample(0)
    assert a.resolution == 128 and a.stem_filters == 16
    assert all(b.out_filters % 4 == 0 for b in a.blocks)
    assert small.params() == {"depth_multiplier": 0.5, "resolution": 128}
    with pytest.raises(ArchitectureError, match="resolution 7 is out of range"):
        MnasNetSpace(resolution=7)


def test_registry():
    assert "mnasnet" in space_names()
    assert isinstance(get_space("mnasnet"), SearchSpace)
    assert {"fbnet", "nasbench201", "nasbench201-pruned"} <= set(space_names())
    with pytest.raises(ArchitectureError, match="unknown search space 'nasbench101'; known: .*mnasnet"):
        get_space("nasbench101")

    class Custom(MnasNetSpace):
        name = "custom-test"

    register_space("custom-test", Custom)
    try:
        assert isinstance(get_space("custom-test", resolution=96), Custom)
    finally:
        from latprof.space import _base

        _base._REGISTRY.pop("custom-test")


def test_layer_key_is_canonical():
    # An identity skip that cannot apply (stride 2) is the same layer as no skip.
    a = LayerConfig("ir", 3, 2, 6, 0.0, "id", 16, 24, 112, "relu")
    b = LayerConfig("ir", 3, 2, 6, 0, "none", 16, 24, 112, "relu")
    assert a == b and hash(a) == hash(b)
    assert a.layer_key() == "ir_k3_s2_e6_i16_o24_se0_none_relu_r112"
    assert LayerConfig("ds", 5, 1, 9, 0.25, "id", 40, 40, 28, "relu6").layer_key() == \
        "ds_k5_s1_e1_i40_o40_se0.25_id_relu6_r28"
    assert LayerConfig("ir", 3, 1, 6, 0.25, "id", 40, 40, 28, "relu").tflite_ops() == (
        "CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "CONV_2D", "CONV_2D", "LOGISTIC", "MUL", "CONV_2D", "ADD")


def test_sampling_and_parsing_do_not_import_tensorflow():
    code = (
        "import sys, random\n"
        "from latprof.space import get_space, parse_arch, format_arch, count_params_macs\n"
        "from latprof.cli.arch import arch, space\n"
        "s = get_space('mnasnet'); a = s.sample(random.Random(0)); parse_arch(format_arch(a))\n"
        "count_params_macs(parse_arch('mnasnet-a1'))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reference_stages_are_mobilenet_v2():
    mbv2 = parse_arch("mobilenet-v2")
    assert [(b.out_filters, b.repeats, b.stride) for b in mbv2.blocks] == list(MOBILENET_V2_STAGES)


def test_layer_keys_parse_back(space):
    for layer in space.unique_layer_configs():
        assert LayerConfig.from_key(layer.layer_key()) == layer
    with pytest.raises(ArchitectureError, match="not a layer key"):
        LayerConfig.from_key("ir_k3")
    with pytest.raises(ArchitectureError, match="not canonical; the canonical key is 'ir_k3_s2_e6_i16_o24_se0_none_"):
        LayerConfig.from_key("ir_k3_s2_e6_i16_o24_se0_id_relu_r112")
