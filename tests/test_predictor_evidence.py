"""End-to-end evidence for a device's predictor: measurement files, the published rows, and `latprof calibrate`
of whole models (phone predictors without the phone)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.errors import ParseError
from latprof.predictor import read_observations
from latprof.predictor._priors import analytic_ms
from latprof.predictor._units import arch_units, tflite_units
from latprof.space import FAMILIES, get_space, model_spec, op_family, read_tflite_ops, tflite_for, tflite_operators
from latprof.store import Store


def test_published_rows_name_their_runtime():
    """The two Pixel 1 tables of different years are two runtime versions; every row names one."""
    rows = read_observations("published", "pixel1")
    assert all(r.runtime for r in rows)
    readme_v2 = {r.runtime for r in rows if r.family == "MobileNetV2" and "README" in r.source}
    paper = {r.runtime for r in rows if "paper" in r.source}
    assert len(readme_v2) == 1 and len(paper) == 1 and readme_v2 != paper


def test_named_architecture_rows_read_with_their_family_runtime_and_source(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("model,depth_multiplier,resolution,latency_ms,device,runtime_version,source\n"
                   "mnasnet-a1,1.4,224,150.0,Pixel 1,tflite 2018,a paper\n"
                   "mnasnet-a1,0.35,96,9.5,Pixel 1,tflite 2018,a paper\n"
                   "mnasnet-a1,1.0,224,78.0,Pixel 2,tflite 2018,a paper\n")
    rows = read_observations(path, "pixel1")
    assert len(rows) == 2 and {r.family for r in rows} == {"mnasnet-a1"}
    assert {r.model.name for r in rows} == {"mnasnet-a1@1.4,224", "mnasnet-a1@0.35,96"}
    assert all(r.name == r.model.name and r.source == "a paper" and r.runtime == "tflite 2018" for r in rows)


def test_published_rows_keep_their_sources():
    rows = read_observations("published", "pixel1")
    assert {r.family for r in rows} == {"MobileNetV2", "MobileNetV3"}
    assert len([r for r in rows if r.family == "MobileNetV2"]) >= 22
    assert all("README" in r.source or "arXiv" in r.source or "paper" in r.source.lower() for r in rows)
    v3 = [r for r in rows if r.model.name.startswith("MobileNetV3-Large-minimalistic 1@224")]
    assert v3 and v3[0].latency_ms == 44.1
    assert all(r.space is None for r in rows)  # whole models, not architectures of a space


def test_rows_of_other_devices_are_left_out(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("model,depth_multiplier,resolution,latency_ms,device\n"
                    "MobileNetV2,0.35,32,3.5,galaxy\nMobileNetV2,0.35,48,4.5,pixel9\n")
    rows = read_observations(path, "galaxy")
    assert [(r.model.name, r.latency_ms, r.source) for r in rows] == [("MobileNetV2 0.35@32", 3.5, "two.csv")]
    with pytest.raises(ParseError, match="no usable rows for device nokia"):
        read_observations(path, "nokia")


def test_bad_measurement_files(tmp_path):
    with pytest.raises(ParseError, match="not found") as missing:
        read_observations(tmp_path / "none.csv", "pixel1")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ms\nx,1\n")
    with pytest.raises(ParseError, match="model,latency_ms") as columns:
        read_observations(bad, "pixel1")
    assert "\n" not in str(missing.value) + str(columns.value)


def test_operator_families_of_a_real_model(tiny_tflite):
    families = [op_family(op) for op in tflite_operators(read_tflite_ops(tiny_tflite))]
    assert families == ["conv", "depthwise", "pooling", "other"]
    assert set(families) <= set(FAMILIES)


def _analytic_model_ms(spec) -> float:
    """The analytic prior's cost of a whole model (the prior a store without a host table gives)."""
    return sum(analytic_ms(u) for u in tflite_units(tflite_for(spec)))


def test_calibrate_end_to_end_on_a_new_device(tmp_path):
    """A made-up phone that runs every model 2.5x the analytic cost plus 1 ms: calibration must find that.

    Two models are measured again on an older runtime that takes 1.3x as long; the fit predicts the
    newer runtime and learns the factor.
    """
    models = [("MobileNetV2", 0.35, r) for r in (32, 48, 64, 96)]
    prior_ms = [_analytic_model_ms(model_spec(*m)) for m in models]
    measurements = tmp_path / "galaxy.csv"
    runtime_factor = {"tflite 2.4": 1.3, "tflite 2.14": 1.0}
    with measurements.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "depth_multiplier", "resolution", "latency_ms", "runtime_version", "source"])
        for i, ((family, alpha, res), ms) in enumerate(zip(models, prior_ms)):
            for runtime, factor in runtime_factor.items():
                if runtime == "tflite 2.14" or i % 2:
                    writer.writerow([family, alpha, res, factor * (2.5 * ms + 1.0), runtime, "made up for the test"])
    result = CliRunner().invoke(main, ["calibrate", "--device", "galaxy-s7", "--from", str(measurements)])
    assert result.exit_code == 0, result.output
    assert "calibrated galaxy-s7 from 6 measured models (prior: analytic)" in result.output
    assert "predicts runtime 'tflite 2.14'" in result.output
    with Store() as store:
        stored = store.latest_predictor("galaxy-s7", "mnasnet")
    assert stored.space == "*" and stored.document["runtime"] == "tflite 2.14"
    model = stored.document["model"]
    assert model["intercept_ms"] == pytest.approx(1.0, abs=0.1)
    families = {op_family(u_op) for m in models for u in tflite_units(tflite_for(model_spec(*m)))
                for u_op in u.operators}
    assert {"conv", "depthwise", "pointwise"} <= families
    for family in families:  # every operator family of the models costs 2.5x its prior
        assert model["ratio"] + model["family_ratio"].get(family, 0.0) == pytest.approx(2.5, rel=0.03), family
    assert stored.document["runtime_factors"] == {"tflite 2.4": pytest.approx(1.3, rel=0.02)}
    loo = stored.report["leave_one_out"]
    assert loo["n"] == 6 and loo["mape"] < 0.05 and loo["max_abs_rel"] < 0.1

    predicted = CliRunner().invoke(main, ["predict", "mobilenet-v2@0.35,64", "--device", "galaxy-s7"])
    assert predicted.exit_code == 0, predicted.output
    assert "for runtime 'tflite 2.14'" in predicted.output
    # a measured model's .tflite is predicted on the newer runtime's scale, near the law
    path = tflite_for(model_spec(*models[1]))
    as_json = CliRunner().invoke(main, ["predict", str(path), "--device", "galaxy-s7", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["latency_ms"] == pytest.approx(2.5 * prior_ms[1] + 1.0, rel=0.05)

    unknown = CliRunner().invoke(main, ["calibrate", "--device", "galaxy-s7", "--from", str(measurements),
                                        "--runtime", "tflite 9"])
    assert unknown.exit_code != 0 and "no calibration row was measured with runtime 'tflite 9'" in unknown.output


def test_a_named_architecture_prices_like_its_layers():
    """mnasnet-a1 rows are architectures: their units are the space's layers, as the predictor prices them."""
    space = get_space("mnasnet")
    units = tflite_units(tflite_for(model_spec("mnasnet-a1", 0.35, 96)))
    layers = arch_units(space, space.parse("mnasnet-a1@0.35,96"))
    assert [u.key for u in units] == [u.key for u in layers]
    assert np.isclose(sum(analytic_ms(u) for u in units), sum(analytic_ms(u) for u in layers))


def test_leave_one_family_out_never_sees_the_held_out_family(monkeypatch):
    """Each family is predicted by a fit on the other families' rows only (the held-out figure users read)."""
    import random

    from _laws import family_ratios, law_rows
    from latprof.predictor import _report
    from latprof.predictor._model import fit_units
    from latprof.predictor._priors import AnalyticPrior

    space = get_space("mnasnet", resolution=96, depth_multiplier=0.5)
    rows = law_rows(space, [space.sample(random.Random(i)) for i in range(11)], family_ratios(2), noise=0.03)
    families = ["a"] * 5 + ["b"] * 4 + ["c"] * 2
    prior = AnalyticPrior()
    seen = []
    monkeypatch.setattr(_report, "fit_units", lambda fold, p, **kw: seen.append(fold) or fit_units(fold, p, **kw))
    out = _report._leave_one_family_out(rows, families, prior, _report._BaselineData(rows), np.arange(len(rows)))
    assert sorted(len(fold) for fold in seen) == [6, 7, 9]
    for family in "abc":
        test = [i for i, f in enumerate(families) if f == family]
        (fold,) = [fold for fold in seen if len(fold) == len(rows) - len(test)]
        assert not {id(rows[i]) for i in test} & {id(r) for r in fold}
        model, _, _ = fit_units([rows[i] for i in range(len(rows)) if i not in test], prior)
        for i in test:
            expected = model.intercept_ms + sum(model.unit_ms(u, prior) for u in rows[i].units)
            assert out["lofo_ms"][i] == pytest.approx(expected, rel=1e-9)
