"""Token rows of many architectures at once (SearchSpace.encode) and the layers each group of tokens decides."""

from __future__ import annotations

import dataclasses
import pickle
import random

import numpy as np
import pytest

from latprof.errors import ArchitectureError
from latprof.space import FBNetSpace, MnasNetSpace, NASBench201Space, arch_from_json, arch_to_json, parse_arch

SPACES = {"mnasnet": MnasNetSpace(0.35, 32), "mnasnet224": MnasNetSpace(1.0, 224), "fbnet": FBNetSpace(32),
          "nasbench201": NASBench201Space()}


@pytest.fixture(params=SPACES)
def space(request):
    return SPACES[request.param]


def _archs(space, n=60):
    rng = random.Random(7)
    return [space.sample(rng) for _ in range(n)]


def test_encode_gives_the_token_rows(space):
    archs = _archs(space)
    rows = space.encode(archs)
    assert rows.dtype == np.uint8 and rows.shape == (len(archs), len(space.decisions()))
    assert rows.tolist() == [space.to_tokens(a) for a in archs]
    assert [space.from_tokens(list(map(int, r))) for r in rows] == archs
    assert space.encode([]).shape == (0, len(space.decisions()))


def test_architectures_without_origin_encode_the_same(space):
    archs = _archs(space, 20)
    parsed = [space.parse(space.format(a)) for a in archs]
    assert all(p.origin is None for p in parsed) and all(a.origin is not None for a in archs)
    assert parsed == archs and [hash(p) for p in parsed] == [hash(a) for a in archs]  # origin is not compared
    assert space.encode(parsed).tolist() == space.encode(archs).tolist()
    mutated = [space.mutate(a, random.Random(i)) for i, a in enumerate(archs)]
    assert space.encode(mutated).tolist() == [space.to_tokens(m) for m in mutated]


def test_origin_survives_pickling_and_an_equal_space():
    space = SPACES["mnasnet"]
    archs = _archs(space, 5)
    again = pickle.loads(pickle.dumps(archs))
    assert [a.origin for a in again] == [a.origin for a in archs]
    assert MnasNetSpace(0.35, 32).encode(again).tolist() == space.encode(archs).tolist()
    assert "origin" not in repr(archs[0]) and "origin" not in arch_to_json(archs[0])
    assert arch_from_json(arch_to_json(archs[0])) == archs[0]


def test_a_changed_architecture_drops_its_origin():
    space = SPACES["mnasnet"]
    arch = space.sample(3)
    first = arch.blocks[0]
    kernel = 5 if first.kernel == 3 else 3
    changed = dataclasses.replace(arch, blocks=(dataclasses.replace(first, kernel=kernel),) + arch.blocks[1:])
    assert changed.origin is None
    assert space.encode([changed])[0, 1] == (1 if kernel == 5 else 0)


def test_equal_filter_choices_encode_as_to_tokens():
    space = SPACES["mnasnet"]  # at 0.35 two filter choices of block 1 round to 8
    filters = space.blocks[0].filters
    assert filters[1] == filters[2]
    tokens = [0] * len(space.decisions())
    tokens[4] = 2
    arch = space.from_tokens(tokens)
    assert space.encode([arch])[0, 4] == space.to_tokens(arch)[4] == 1


def test_an_architecture_not_in_the_space_is_refused():
    space = SPACES["mnasnet"]
    with pytest.raises(ArchitectureError, match="not in"):
        space.encode([space.sample(1), parse_arch("mnasnet-a1")])
    with pytest.raises(ArchitectureError, match="resolution"):
        FBNetSpace(32).encode([FBNetSpace(224).sample(1)])  # another space's origin is not trusted
    with pytest.raises(ArchitectureError):
        FBNetSpace(32).encode([space.sample(1)])


@pytest.mark.parametrize("name", ["mnasnet", "mnasnet224", "fbnet"])
def test_token_slots_give_the_named_layers(name):
    space = SPACES[name]
    slots = space.token_slots()
    decisions = space.decisions()
    for slot in slots:
        assert slot.sizes == tuple(len(decisions[c].choices) for c in slot.columns)
    for arch, tokens in zip(_archs(space), space.encode(_archs(space))):
        layers = [named for slot in slots for named in slot.layers(tuple(int(tokens[c]) for c in slot.columns))]
        assert layers == space.named_layers(arch)


def test_mnasnet_block_slots_read_the_previous_filters():
    slots = SPACES["mnasnet"].token_slots()
    assert [s.columns for s in slots[:3]] == [(), (0, 1, 2, 3, 4, 5), (4, 6, 7, 8, 9, 10, 11)]
    assert slots[-2].columns == (40,) and slots[-1].columns == ()


def test_a_cell_space_has_no_token_slots():
    assert NASBench201Space().token_slots() is None
    assert NASBench201Space(prune=True).key != NASBench201Space().key
