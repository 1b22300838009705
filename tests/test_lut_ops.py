"""Operator entries of a table: the built-in op probes and `build-lut --ops-from`, keyed by Operator.key()."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.errors import LookupTableError
from latprof.lut import _tables as T
from latprof.lut import load_entries, model_units, op_probe_models
from latprof.space import OP_KINDS, Operator, op_kind, read_tflite_ops, recover_layers, tflite_operators
from latprof.store import Store

pytest.importorskip("ai_edge_litert")

# every builtin the issue lists, as the converter emits it from the probe graphs
LISTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "SUB", "CONCATENATION", "AVERAGE_POOL_2D",
          "MAX_POOL_2D", "MEAN", "PAD", "RESHAPE", "TRANSPOSE", "SPLIT", "STRIDED_SLICE", "RELU", "RELU6", "HARD_SWISH",
          "LOGISTIC", "TANH", "SOFTMAX", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "GELU"}
ARGS = ["build-lut", "--device", "local", "--space", "nasbench201", "--runs", "3", "--warmup", "1",
        "--calibration", "0", "--no-probe", "--no-realtime", "--no-op-probes"]


@pytest.fixture(scope="session")
def tiny_probes(tmp_path_factory):
    """The probe graphs at one small stage (the default stages differ only in sizes)."""
    return op_probe_models(tmp_path_factory.mktemp("probes"), stages=((8, 16),))


def test_probes_cover_every_fine_kind_and_the_listed_operators(tiny_probes):
    ops = [op for path in tiny_probes for op in tflite_operators(read_tflite_ops(path))]
    kinds = Counter(op_kind(op) for op in ops)
    assert set(OP_KINDS) <= set(kinds), set(OP_KINDS) - set(kinds)
    assert LISTED <= {op.kind for op in ops}, LISTED - {op.kind for op in ops}
    assert {(op.kernel, op.stride) for op in ops if op.kind == "DEPTHWISE_CONV_2D"} >= {(k, s) for k in (3, 5, 7)
                                                                                        for s in (1, 2)}
    assert any(op.groups > 1 for op in ops) and any(op.broadcast for op in ops if op.kind == "MUL")
    assert all(Operator.from_key(op.key()) == op for op in ops)


def test_probes_are_built_once(tiny_probes):
    stamps = [p.stat().st_mtime_ns for p in tiny_probes]
    heard = []
    assert op_probe_models(tiny_probes[0].parent, stages=((8, 16),), notify=heard.append) == tiny_probes
    assert [p.stat().st_mtime_ns for p in tiny_probes] == stamps and not heard


def test_ops_from_stores_layers_and_one_entry_per_unique_operator(tiny_tflite, tmp_path):
    db = tmp_path / "ops.db"
    units = recover_layers(read_tflite_ops(tiny_tflite))
    layers = {layer.layer_key() for layer, _ in units if layer is not None}
    ops = [tflite_operators(o)[0] for layer, o in units if layer is None]
    assert layers and len(ops) >= 2
    first = CliRunner().invoke(main, ["--db", str(db), *ARGS, "--ops-from", str(tiny_tflite),
                                      "--ops-from", str(tiny_tflite)])  # twice: deduplicated by key
    assert first.exit_code == 0, first.output
    assert (f"--ops-from: 2 model(s), {len(layers)} layers and {len(ops)} operators (0 already stored; measured now "
            f"{len(layers)} layers and {len(ops)} operators") in first.output
    with Store(db) as store:
        entries = {e.layer_key: e for e in load_entries(store.connection, "local", "nasbench201")}
    op_keys = {k for k in entries if k.startswith("op:")}
    assert op_keys == {op.key() for op in ops} and {Operator.from_key(k) for k in op_keys} == set(ops)
    assert layers <= set(entries) and len(entries) == 20 + len(layers) + len(ops)
    methods = {k.startswith("op:"): e.settings["method"] for k, e in entries.items()}
    assert methods[True].startswith("single operator") and methods[False].startswith("micro-model")
    assert all(e.median_ms > 0 and e.runs == 3 and e.settings["warmup_runs"] == 1 for e in entries.values())

    again = CliRunner().invoke(main, ["--db", str(db), *ARGS, "--ops-from", str(tiny_tflite)])
    assert again.exit_code == 0, again.output
    assert f"({len(layers) + len(ops)} already stored; measured now 0 layers and 0 operators: none)" in again.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM lut_entries").fetchone()[0] == len(entries)
        op_settings = json.loads(conn.execute("SELECT settings FROM lut_entries WHERE layer_key LIKE 'op:%'")
                                 .fetchone()[0])
        T.check_settings(conn, "lut_entries", "local", "nasbench201", op_settings, ops=True)
        with pytest.raises(LookupTableError, match="method="):  # an operator method is not a layer method
            T.check_settings(conn, "lut_entries", "local", "nasbench201", op_settings, ops=False)
        with pytest.raises(LookupTableError, match="num_runs=3"):
            T.check_settings(conn, "lut_entries", "local", "nasbench201", {**op_settings, "num_runs": 5}, ops=True)


@pytest.mark.parametrize("bad", ["missing.tflite", "notes.txt"])
def test_bad_ops_from_fails_in_one_line_before_measuring(tmp_path, bad):
    (tmp_path / "notes.txt").write_text("not a model\n")
    db = tmp_path / "ops.db"
    result = CliRunner().invoke(main, ["--db", str(db), *ARGS, "--ops-from", str(tmp_path / bad)])
    assert result.exit_code in (1, 2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and bad in lines[0], result.output
    assert not db.exists()  # nothing was measured, not even the layer table


def test_model_units_deduplicate_across_models(tiny_tflite, tiny_probes):
    one, both = model_units([tiny_tflite]), model_units([tiny_tflite, *tiny_probes, tiny_tflite])
    assert list(both)[:len(one)] == list(one)  # the first model's units first, in its order
    assert set(both) == set(one) | set(model_units(list(tiny_probes)))  # every unit of every model, once
