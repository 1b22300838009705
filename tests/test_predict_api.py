"""The Predictor on a synthetic device whose latencies follow a known law.

Layer latencies come from a known operator cost model and whole-network
latencies from a known correction, so fitting must recover the law, and every
prediction path (predict, predict_many, predict_tokens, per layer, .tflite)
must agree with it and with each other.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from latprof.errors import LookupTableError, PredictorError
from latprof.lut import _tables as T
from latprof.predict import Predictor, fit_predictor, load_predictor, save_predictor
from latprof.predict._correction import Correction
from latprof.predict._features import GROUPS, N_FEATURES, layer_ops, layer_vector
from latprof.predict._regression import CostModel
from latprof.space import MnasNetSpace, arch_layers, format_arch, parse_arch
from latprof.space._flatbuffer import write_tflite
from latprof.store import Store

SPACE = MnasNetSpace(0.35, 32)
# One scale for the layers that vary; the classifier is the same in every network of a space, so its scale
# cannot be told from the intercept and stays 1.
TRUE_CORRECTION = Correction(0.05, {"cn": 1.10, "ds": 1.10, "ir": 1.10, "fc": 1.0, "op": 1.10}, -0.002)


def _true_cost() -> CostModel:
    rng = np.random.default_rng(7)
    coef = np.zeros((len(GROUPS), N_FEATURES))
    coef[:, 0] = rng.uniform(0.002, 0.01, len(GROUPS))  # per-op overhead
    coef[:, 1] = rng.uniform(0.5, 2.0, len(GROUPS))  # ms per million MACs
    coef[:, 2] = rng.uniform(0.01, 0.05, len(GROUPS))  # per 1e5 input elements
    coef[:, 3] = rng.uniform(0.01, 0.05, len(GROUPS))
    return CostModel(coef.ravel())


TRUE_COST = _true_cost()


def true_network_ms(arch) -> float:
    return TRUE_CORRECTION.network_ms([(layer.op, TRUE_COST.layer_ms(layer)) for layer in arch_layers(arch)])


def _fill(store: Store, drop_width: int | None = None, calibration: int = 40) -> None:
    """A complete synthetic table (optionally without the entries of one output width) and calibration set."""
    settings = {"method": "synthetic", "threads": 1, "warmup_runs": 0, "num_runs": 1}
    rows = []
    for layer in SPACE.unique_layer_configs():
        if layer.out_channels == drop_width and layer.op != "fc":
            continue
        ms = TRUE_COST.layer_ms(layer)
        rows.append(("local", "mnasnet", layer.layer_key(), ms, ms, 0.0, ms, 1, json.dumps(settings), "{}", "[]",
                     T.now()))
    with store.connection as conn:
        conn.executemany("INSERT INTO lut_entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    T.start_build(store.connection, "local", "mnasnet", SPACE.params(), len(rows), settings)
    T.finish_build(store.connection, "local", "mnasnet", SPACE.params())
    for i in range(calibration):
        arch = SPACE.sample(random.Random(1000 + i))
        ms = true_network_ms(arch)
        T.add_calibration(store.connection, T.CalibrationRow("local", "mnasnet", format_arch(arch), SPACE.params(),
                                                             ms, ms, 0.0, ms, 1, settings))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.db"
    with Store(path) as store:
        _fill(store)
        model, report = fit_predictor(store, "local", "mnasnet")
        save_predictor(store, model, report)
        predictor = load_predictor("local", "mnasnet", store=store)
    return path, predictor, model, report


def test_fit_recovers_the_law(fitted):
    _, _, model, report = fitted
    e2e = report["end_to_end_cv"]["latprof"]
    assert e2e["mape"] < 1e-3 and e2e["within_5"] == 1.0 and e2e["kendall_tau"] > 0.99
    corr = Correction.from_json(model["correction"])
    assert corr.intercept_ms == pytest.approx(0.05, abs=2e-3)
    assert corr.per_layer_ms == pytest.approx(-0.002, abs=5e-4)
    for kind in ("cn", "ds", "ir", "fc", "op"):
        assert corr.scale[kind] == pytest.approx(TRUE_CORRECTION.scale[kind], rel=0.01)
    assert report["regression_cv_random_5fold"]["with_siblings"]["mape"] < 0.01
    # the baselines are reported on the same folds and are worse on this law
    assert report["end_to_end_cv"]["plain_table_sum"]["mape"] > 10 * e2e["mape"]
    assert report["end_to_end_cv"]["flops_linear"]["mape"] > 10 * e2e["mape"]


def test_every_path_agrees(fitted):
    _, predictor, _, _ = fitted
    archs = [SPACE.sample(random.Random(s)) for s in range(25)]
    many = predictor.predict_many(archs)
    tokens = np.array([SPACE.to_tokens(a) for a in archs])
    assert many.dtype == np.float64
    np.testing.assert_allclose(predictor.predict_tokens(tokens), many, rtol=1e-9)
    for arch, value in zip(archs, many):
        p = predictor.predict(arch)
        assert p.latency_ms == pytest.approx(value, rel=1e-9)
        assert p.latency_ms == pytest.approx(true_network_ms(arch), rel=1e-3)
        assert p.overhead_ms + sum(r.ms for r in p.layers) == pytest.approx(p.latency_ms, rel=1e-9)
        assert [r.name for r in p.layers][:2] == ["stem", "b1.1"] and p.layers[-1].name == "classifier"
        assert [r.layer_key for r in p.layers] == [layer.layer_key() for layer in arch_layers(arch)]
        assert {r.source for r in p.layers} == {"table"}
        assert p.low_ms < p.latency_ms < p.high_ms
    # the layer-by-layer path (no precomputed space) gives the same numbers
    slow = Predictor(fitted[2], predictor.table)
    slow._variants.clear()
    assert slow.predict(archs[0]).latency_ms == pytest.approx(many[0], rel=1e-9)
    np.testing.assert_allclose(slow.predict_many(archs), many, rtol=1e-9)


def test_architectures_outside_the_table_use_the_regression(fitted):
    _, predictor, _, _ = fitted
    a1 = parse_arch("mnasnet-a1@0.35,32")  # MnasNet-A1 filters: widths the space never has
    p = predictor.predict(a1)
    sources = {r.name: r.source for r in p.layers}
    assert "regression" in sources.values() and "table" in sources.values()
    assert p.regression_share > 0
    assert p.latency_ms == pytest.approx(true_network_ms(a1), rel=0.02)
    other_res = parse_arch(format_arch(SPACE.sample(random.Random(5))).replace("res32", "res48", 1))
    assert predictor.predict(other_res).latency_ms == pytest.approx(true_network_ms(other_res), rel=0.02)


def test_unseen_widths_come_from_the_regression(tmp_path):
    width = SPACE.blocks[3].filters[1]
    with Store(tmp_path / "holes.db") as store:
        _fill(store, drop_width=width)
        save_predictor(store, *fit_predictor(store, "local", "mnasnet"))
        predictor = load_predictor("local", "mnasnet", store=store)
    missing = [layer for layer in SPACE.unique_layer_configs() if layer.out_channels == width and layer.op != "fc"]
    assert missing
    for layer in missing[:200]:
        ms, source = predictor.layer_ms(layer)
        assert source == "regression"
        assert ms == pytest.approx(TRUE_COST.layer_ms(layer), rel=0.02)


def test_tflite_file_is_predicted_like_its_architecture(fitted, tmp_path):
    _, predictor, _, _ = fitted
    arch = SPACE.sample(random.Random(11))
    path = write_tflite(arch, tmp_path / "arch.tflite")
    from_file = predictor.predict_tflite(path)
    assert [r.layer_key for r in from_file.layers] == [layer.layer_key() for layer in arch_layers(arch)]
    assert from_file.latency_ms == pytest.approx(predictor.predict(arch).latency_ms, rel=1e-9)


def test_stored_as_plain_json(fitted):
    path, _, model, _ = fitted
    with Store(path) as store:
        coefficients, report = store.connection.execute(
            "SELECT coefficients, report FROM predictors ORDER BY id DESC LIMIT 1").fetchone()
    assert json.loads(coefficients)["cost_model"] == model["cost_model"]
    assert json.loads(report)["calibration_archs"] == 40
    assert set(model["cost_model"]) == set(GROUPS)


def test_missing_table_and_missing_fit_say_what_to_run(tmp_path):
    with Store(tmp_path / "empty.db") as store:
        with pytest.raises(LookupTableError, match=r"no lookup table for device pixel1 \(space mnasnet\); "
                                                   r"run `latprof build-lut --device pixel1`"):
            load_predictor("pixel1", store=store)
        _fill(store, calibration=5)
        with pytest.raises(PredictorError, match=r"no fitted predictor for device local .*run `latprof fit "
                                                 r"--device local`"):
            load_predictor("local", store=store)
    with Store(tmp_path / "few.db") as store:
        _fill(store, calibration=2)
        with pytest.raises(PredictorError, match="calibration architecture"):
            fit_predictor(store, "local", "mnasnet")


def test_cost_model_features_are_additive_over_operators():
    layer = SPACE.unique_layer_configs()[100]
    ops = layer_ops(layer)
    assert np.allclose(sum(layer_vector([op]) for op in ops), layer_vector(ops))
