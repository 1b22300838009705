"""LatencyPredictor on a synthetic device whose latencies follow a known law, and the stored-format registry.

Layer latencies come from a known operator cost law (per fine operator kind, linear in the
operator's features) and whole-network latencies from a known correction (intercept, one scale
for the layers that vary, a per-layer term), so fitting must recover the law, and every prediction
path (predict, predict_many of a list or of tokens, per layer, .tflite, archs without origin) must
agree with it and with each other.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from latprof.errors import LookupTableError, PredictorError
from latprof.lut import _tables as T
from latprof.predictor import FORMAT, LatencyPredictor, fit_predictor, load_predictor, save_predictor
from latprof.space import OP_KINDS, MnasNetSpace, arch_layers, format_arch, layer_operators, op_kind, parse_arch, \
    write_tflite
from latprof.store import Store

SPACE = MnasNetSpace(0.35, 32)
INTERCEPT_MS, SCALE, PER_LAYER_MS = 0.05, 1.10, -0.002  # the network law
# The classifier is the same in every network of a space, so its scale cannot be told from the intercept: it stays 1.


def _true_coefficients() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = len(OP_KINDS)
    coef = np.column_stack([rng.uniform(0.002, 0.01, n),  # per-op overhead
                            rng.uniform(0.5, 2.0, n),  # ms per million MACs
                            rng.uniform(0.01, 0.05, n),  # per 1e5 input elements
                            rng.uniform(0.01, 0.05, n),  # per 1e5 output elements
                            np.zeros(n)])
    return dict(zip(OP_KINDS, coef))


TRUE_COEF = _true_coefficients()


def true_layer_ms(layer) -> float:
    """The layer timed alone, as a table holds it."""
    return float(sum(TRUE_COEF[op_kind(op)] @ op.features() for op in layer_operators(layer)))


def true_share_ms(layer) -> float:
    """The layer's share of a network's latency."""
    return true_layer_ms(layer) * (1.0 if layer.op == "fc" else SCALE) + PER_LAYER_MS


def true_network_ms(arch) -> float:
    return INTERCEPT_MS + sum(true_share_ms(layer) for layer in arch_layers(arch))


def _fill(store: Store, drop_width: int | None = None, calibration: int = 40, entries: int | None = None) -> None:
    """A complete synthetic table (optionally without the entries of one output width, or only the first
    ``entries``) and calibration set."""
    settings = {"method": "synthetic", "threads": 1, "warmup_runs": 0, "num_runs": 1}
    rows = []
    for layer in SPACE.unique_layer_configs()[:entries]:
        if layer.out_channels == drop_width and layer.op != "fc":
            continue
        ms = true_layer_ms(layer)
        rows.append(("local", "mnasnet", layer.layer_key(), ms, ms, 0.0, ms, 1, json.dumps(settings), "{}", "[]",
                     T.now()))
    with store.connection as conn:  # one transaction: T.add_entry commits each row
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
        fit = fit_predictor(store, "local", "mnasnet")
        save_predictor(store, fit)
        predictor = load_predictor("local", "mnasnet", store=store)
    return path, predictor, fit


def test_fit_recovers_the_law(fitted):
    """Every layer's share of a network is the law's (scale x table time + per-layer term).

    The intercept and the classifier (in every network, unscaled) cannot be told apart; only their sum is
    fixed, so the fit may put the classifier's discount in the intercept or in its operator family's ratio.
    """
    _, predictor, fit = fitted
    report = fit.report
    loo = report["leave_one_out"]
    assert loo["n"] == 40 and loo["mape"] < 1e-3 and loo["within_5"] == 1.0 and loo["kendall_tau"] > 0.99
    layers = SPACE.unique_layer_configs()
    (classifier,) = {layer for layer in layers if layer.op == "fc"}
    for layer in layers:
        if layer is not classifier:
            assert predictor.layer_ms(layer)[0] == pytest.approx(true_share_ms(layer), rel=0.015, abs=1e-3)
    constant = predictor.intercept_ms + predictor.layer_ms(classifier)[0]
    assert constant == pytest.approx(INTERCEPT_MS + true_share_ms(classifier), abs=5e-3)
    assert report["table_entries"] == len(layers)
    assert report["regression_leave_width_out"]["with_neighbours"]["mape"] < 0.01
    # the baselines are reported on the same rows and are worse on this law
    for name in ("flops", "op_counts"):
        assert report["baselines_leave_one_out"][name]["mape"] > 10 * loo["mape"], name


def test_every_path_agrees(fitted, tmp_path):
    _, predictor, _ = fitted
    archs = [SPACE.sample(random.Random(s)) for s in range(25)]
    parsed = [parse_arch(format_arch(a)) for a in archs]  # the same architectures, without origin
    assert all(p.origin is None for p in parsed) and all(a.origin is not None for a in archs)
    many = predictor.predict_many(archs)
    assert many.dtype == np.float64 and many.shape == (25,)
    np.testing.assert_allclose(predictor.predict_many(parsed), many, rtol=1e-9)
    np.testing.assert_allclose(predictor.predict_many(SPACE.encode(archs)), many, rtol=1e-9)
    for arch, again, value in zip(archs, parsed, many):
        p = predictor.predict(arch)
        assert p.latency_ms == pytest.approx(value, rel=1e-9)
        assert predictor.predict(again).latency_ms == pytest.approx(value, rel=1e-9)
        assert predictor.predict(format_arch(arch)).latency_ms == pytest.approx(value, rel=1e-9)
        assert p.latency_ms == pytest.approx(true_network_ms(arch), rel=1e-3)
        assert p.overhead_ms + sum(r.ms for r in p.layers) == pytest.approx(p.latency_ms, rel=1e-9)
        assert [r.name for r in p.layers][:2] == ["stem", "b1.1"] and p.layers[-1].name == "classifier"
        assert [r.layer_key for r in p.layers] == [layer.layer_key() for layer in arch_layers(arch)]
        assert {r.source for r in p.layers} == {"table"}
        assert p.low_ms < p.latency_ms < p.high_ms
        # layer by layer (no token slots) gives the same numbers
        by_layer = predictor.intercept_ms + sum(predictor.layer_ms(layer)[0] for layer in arch_layers(arch))
        assert by_layer == pytest.approx(value, rel=1e-9)
    path = write_tflite(archs[0], tmp_path / "arch.tflite")
    from_file = predictor.predict(path)
    assert [r.layer_key for r in from_file.layers] == [layer.layer_key() for layer in arch_layers(archs[0])]
    assert from_file.latency_ms == pytest.approx(many[0], rel=1e-9)
    assert predictor.predict(str(path)).latency_ms == pytest.approx(many[0], rel=1e-9)


def test_tokens_out_of_range_are_refused(fitted):
    _, predictor, _ = fitted
    tokens = SPACE.encode([SPACE.sample(random.Random(0))])
    with pytest.raises(PredictorError, match="shape"):
        predictor.predict_many(tokens[:, :-1])
    bad = tokens.copy()
    bad[0, 0] = 255
    with pytest.raises(PredictorError, match="out of range"):
        predictor.predict_many(bad)


def test_architectures_outside_the_table_use_the_regression(fitted):
    _, predictor, _ = fitted
    a1 = parse_arch("mnasnet-a1@0.35,32")  # MnasNet-A1 filters: widths the space never has
    p = predictor.predict(a1)
    sources = {r.name: r.source for r in p.layers}
    assert "regression" in sources.values() and "table" in sources.values()
    assert p.regression_share > 0
    assert p.latency_ms == pytest.approx(true_network_ms(a1), rel=0.02)
    assert predictor.predict_many([a1])[0] == pytest.approx(p.latency_ms, rel=1e-9)
    other_res = parse_arch(format_arch(SPACE.sample(random.Random(5))).replace("res32", "res48", 1))
    assert predictor.predict(other_res).latency_ms == pytest.approx(true_network_ms(other_res), rel=0.02)


def test_unseen_widths_come_from_the_regression(tmp_path):
    width = SPACE.blocks[3].filters[1]
    with Store(tmp_path / "holes.db") as store:
        _fill(store, drop_width=width)
        save_predictor(store, fit_predictor(store, "local", "mnasnet"))
        predictor = load_predictor("local", "mnasnet", store=store)
    missing = [layer for layer in SPACE.unique_layer_configs() if layer.out_channels == width and layer.op != "fc"]
    assert missing
    for layer in missing[:200]:
        ms, source = predictor.layer_ms(layer)
        assert source == "regression"
        assert ms == pytest.approx(true_share_ms(layer), rel=0.02)


def test_stored_as_plain_json(fitted):
    path, predictor, fit = fitted
    with Store(path) as store:
        fmt, coefficients, report = store.connection.execute(
            "SELECT format, coefficients, report FROM predictors ORDER BY id DESC LIMIT 1").fetchone()
        stored = store.latest_predictor("local", "mnasnet")
    assert fmt == FORMAT == stored.format
    assert json.loads(coefficients) == stored.document == json.loads(json.dumps(fit.document))
    assert json.loads(report)["fitted_on"] == 40
    assert set(stored.document["ops"]["regression"]) == set(OP_KINDS)
    # the stored document alone predicts what the fit predicted
    again = LatencyPredictor(stored.document)
    arch = SPACE.sample(random.Random(3))
    assert again.predict(arch).latency_ms == pytest.approx(predictor.predict(arch).latency_ms, rel=1e-12)


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
        _fill(store, calibration=2, entries=100)
        with pytest.raises(PredictorError, match="calibration architecture"):
            fit_predictor(store, "local", "mnasnet")


# ---------------------------------------------------------------- the format registry

def _one_line_error(store: Store, device: str, space: str = "mnasnet") -> str:
    with pytest.raises(PredictorError) as info:
        load_predictor(device, space, store=store)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_table_predictor_of_the_first_format_says_to_fit_again(tmp_path):
    with Store(tmp_path / "old.db") as store:
        store.save_predictor("pixel1", "mnasnet", {"format": "latprof.predictor/1", "device": "pixel1",
                                                   "space": "mnasnet", "cost_model": {}, "correction": {}}, {})
        message = _one_line_error(store, "pixel1")
    assert "latprof.predictor/1" in message and "run `latprof fit --device pixel1 --space mnasnet` again" in message


def test_a_whole_model_calibration_of_the_first_format_says_to_calibrate_again(tmp_path):
    with Store(tmp_path / "old.db") as store:
        # stored for every space ("*"), as `latprof calibrate` without --space did
        store.save_predictor("galaxy", "*", {"format": "latprof-calibrated/1", "device": "galaxy",
                                             "reference": "local", "kinds": [], "model": {}}, {})
        message = _one_line_error(store, "galaxy")
    assert "latprof-calibrated/1" in message
    assert "run `latprof calibrate --device galaxy --from CSV|published` again" in message


def test_an_unknown_format_says_to_upgrade_or_fit_again(tmp_path):
    with Store(tmp_path / "new.db") as store:
        store.save_predictor("pixel1", "mnasnet", {"format": "latprof.predictor/99", "device": "pixel1"}, {})
        message = _one_line_error(store, "pixel1")
    assert "latprof.predictor/99" in message and "upgrade latprof or fit it again" in message


def test_a_space_calibration_of_the_first_format_loads_and_predicts_its_weights(tmp_path):
    space = MnasNetSpace(0.35, 32)
    rng = np.random.default_rng(3)
    weights = {layer.layer_key(): float(rng.uniform(0.01, 0.2)) for layer in space.unique_layer_configs()}
    document = {"format": "latprof-space-calibrated/1", "device": "galaxy", "space": "mnasnet",
                "params": space.params(), "prior": "analytic", "model": {"intercept_ms": 1.25},
                "weights": weights, "fallback_per_analytic_ms": 2.0, "report": {}}
    with Store(tmp_path / "old.db") as store:
        store.save_predictor("galaxy", "mnasnet", document, {"leave_one_out": {"mape": 0.04}})
        predictor = load_predictor("galaxy", "mnasnet", store=store)
    assert predictor.space_params == space.params() and predictor.prior == "analytic"
    archs = [space.sample(random.Random(s)) for s in range(10)]
    expected = np.array([1.25 + sum(weights[layer.layer_key()] for layer in arch_layers(a)) for a in archs])
    np.testing.assert_allclose(predictor.predict_many(archs), expected, rtol=1e-9)
    p = predictor.predict(archs[0])
    assert p.latency_ms == pytest.approx(expected[0], rel=1e-9)
    assert {r.source for r in p.layers} == {"calibrated"}
    assert p.high_ms / p.latency_ms - 1 == pytest.approx(0.04)  # its leave-one-out MAPE is the band
