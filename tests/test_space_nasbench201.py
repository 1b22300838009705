"""The NAS-Bench-201 space: strings, tokens, the two forms of `none`, layers, and both model writers."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latprof.data import PUBLISHED
from latprof.errors import ArchitectureError
from latprof.space import (LayerConfig, NASBench201Arch, get_space, keras_to_tflite, layer_operators,
                           read_tflite_ops)
from latprof.space._flatbuffer import layer_tflite_bytes

CSV = PUBLISHED / "nasbench201_latency.csv"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
DEAD_END = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"  # node 1 feeds nothing
DISCONNECTED = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"


@pytest.fixture(scope="module")
def run():
    return get_space("nasbench201")


@pytest.fixture(scope="module")
def pruned():
    return get_space("nasbench201-pruned")


def _invoke(data: bytes) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data, num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.random.default_rng(0).standard_normal(inp["shape"]).astype(np.float32))
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def _op_counts(data: bytes, tmp_path: Path, name: str) -> Counter:
    path = tmp_path / name
    path.write_bytes(data)
    return Counter(op.name for op in read_tflite_ops(path))


def test_every_published_string_round_trips_through_tokens(run):
    archs = pd.read_csv(CSV, usecols=["arch"])["arch"]
    assert len(archs) == run.size() == 15625
    seen = set()
    for text in archs:
        arch = run.parse(text)
        assert run.format(arch) == text
        tokens = tuple(run.to_tokens(arch))
        assert run.from_tokens(tokens) == arch
        seen.add(tokens)
    assert len(seen) == 15625


def test_layers_follow_the_cell_graph(run, pruned):
    best = run.parse(BEST)
    names = [n for n, _ in run.named_layers(best)]
    # per cell: 3 conv edges (reading the ReLUs of nodes 0 and 1) + 1 pool edge, node 2 sums 2 terms, node 3 sums 3
    assert sum(n.startswith("s2.c3.") for n in names) == 3 + 2 + 1 + 1 + 2
    assert names[:1] == ["stem"] and names[-2:] == ["lastact", "classifier"] and names.count("r1") == 1
    assert run.layers(best) == pruned.layers(best)  # no none edge: both forms agree
    params, macs = run.count_params_macs(best)
    assert macs == sum(layer.macs() for layer in run.layers(best))
    convs = Counter((l.kernel, l.resolution) for l in run.layers(best) if l.op == "cn" and l.in_channels > 3)
    assert convs == {(3, 32): 15, (3, 16): 15, (3, 8): 15}

    dead = run.parse(DEAD_END)
    assert Counter(l.op for l in run.layers(dead))["cn"] == 16  # stem + the dead-end conv, which still runs
    assert Counter(l.op for l in pruned.layers(dead))["cn"] == 1  # pruned: its result never reaches the output
    # pruned: the pooling of the zero node 2 reaches the output, so it runs, and node 3 adds it to the input
    assert Counter(l.op for l in pruned.layers(dead)) == {"pool": 15, "add": 15, "res": 2, "cn": 1, "bnrelu": 1,
                                                         "fc": 1}

    cut = run.parse(DISCONNECTED)
    assert not cut.is_connected()
    assert pruned.layers(cut) == []
    assert Counter(l.op for l in run.layers(cut)) == {"relu": 15, "cn": 16, "pool": 15, "res": 2, "bnrelu": 1, "fc": 1}


def test_unique_layer_configs_cover_samples_and_have_consistent_operators(run, pruned):
    unique = set(run.unique_layer_configs())
    assert len(unique) == 20 and set(pruned.unique_layer_configs()) == unique
    rng = random.Random(0)
    for _ in range(300):
        arch = run.sample(rng)
        assert set(run.layers(arch)) <= unique and set(pruned.layers(arch)) <= unique
    for layer in unique:
        assert LayerConfig.from_key(layer.layer_key()) == layer
        assert tuple(op.kind for op in layer_operators(layer)) == layer.tflite_ops()


@pytest.mark.parametrize("op", ["cn", "relu", "pool", "add", "res", "bnrelu"])
def test_single_layer_flatbuffers_run_and_hold_the_listed_operators(run, op, tmp_path):
    layers = [l for l in run.unique_layer_configs() if l.op == op]
    for layer in layers:
        data = layer_tflite_bytes(layer)
        out = _invoke(data)[0]
        assert out.shape == (1, layer.out_resolution, layer.out_resolution, layer.out_channels)
        assert np.isfinite(out).all()
        assert _op_counts(data, tmp_path, "l.tflite") == Counter(layer.tflite_ops())


@pytest.mark.parametrize("form,text,outputs", [("nasbench201", BEST, 1), ("nasbench201", DEAD_END, 16),
                                               ("nasbench201-pruned", DEAD_END, 1),
                                               ("nasbench201", DISCONNECTED, 16)])
def test_whole_models_run_and_the_converter_keeps_the_same_operators(form, text, outputs, tmp_path):
    space = get_space(form)
    arch = space.parse(text)
    expected = Counter(op for layer in space.layers(arch) for op in layer.tflite_ops())
    data = space.tflite_bytes(arch)
    results = _invoke(data)
    assert len(results) == outputs  # results no op reads are kept as outputs, so nothing is dropped
    assert results[0].shape == (1, 10) and np.allclose(results[0].sum(), 1.0, atol=1e-4)
    assert _op_counts(data, tmp_path, "fb.tflite") == expected
    if text == DISCONNECTED:
        return
    converted = _op_counts(keras_to_tflite(space.keras_model(arch)), tmp_path, "k.tflite")
    if text == DEAD_END:
        # node 2 is a zero map: the converter folds the pooling that reads it (the flatbuffer writer keeps it,
        # as NAS-Bench-201's PyTorch code runs it), but every convolution stays
        assert converted["CONV_2D"] == expected["CONV_2D"] and converted["AVERAGE_POOL_2D"] < expected["AVERAGE_POOL_2D"]
    else:
        assert converted == expected


def test_errors_name_the_problem(run, pruned):
    with pytest.raises(ArchitectureError, match="not a NAS-Bench-201 cell string"):
        run.parse("|nor_conv_3x3~0|+|none~0|")
    with pytest.raises(ArchitectureError, match="unknown op 'conv_5x5'"):
        run.parse(BEST.replace("avg_pool_3x3", "conv_5x5"))
    with pytest.raises(ArchitectureError, match="op~node"):
        run.parse("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ArchitectureError, match="resolution 32 only"):
        get_space("nasbench201", resolution=224)
    with pytest.raises(ArchitectureError, match="no path from input to output"):
        pruned.tflite_bytes(pruned.parse(DISCONNECTED))
    with pytest.raises(ArchitectureError, match="NASBench201Arch"):
        run.to_tokens("not an arch")
    assert isinstance(run.mutate(run.parse(BEST), 1), NASBench201Arch)


def test_the_two_forms_match_the_two_kinds_of_published_measurement(run):
    # HELP's own Pixel 2 timings keep disconnected cells at full cost; HW-NAS-Bench's Pixel 3 ones drop them.
    data = pd.read_csv(CSV)
    cut = data["arch"].map(lambda s: not run.parse(s).is_connected())
    assert 300 < cut.sum() < 400
    assert data.loc[cut, "pixel2_ms"].median() > 0.5 * data.loc[~cut, "pixel2_ms"].median()
    assert data.loc[cut, "pixel3_ms"].median() < 0.05 * data.loc[~cut, "pixel3_ms"].median()
