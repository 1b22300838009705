"""Calibrating a device from end-to-end measurements (issue: phone predictors without the phone)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from latprof.calibrate import (
    KINDS, PUBLISHED, cross_validate, fit_flops_linear, fit_kind_ratios, load_calibration, model_spec, op_kind,
    read_rows,
)
from latprof.cli import main
from latprof.errors import ParseError, PredictorError
from latprof.store import Store


def test_fit_recovers_known_per_kind_ratios():
    """Synthetic rows built from known ratios: the fit must find them again (and the intercept)."""
    rng = np.random.default_rng(0)
    truth = np.array([3.0, 5.0, 2.0, 4.0, 3.0, 6.0, 3.0])
    x = rng.uniform(0.1, 5.0, size=(40, len(KINDS)))
    y = 1.5 + x @ truth
    model = fit_kind_ratios(x, y, strength=1e-4)
    assert [model.ratios[k] for k in KINDS] == pytest.approx(truth, rel=0.02)
    assert model.intercept_ms == pytest.approx(1.5, abs=0.2)


def test_unused_kinds_get_the_shared_ratio():
    x = np.zeros((6, len(KINDS)))
    x[:, KINDS.index("pointwise")] = [1, 2, 3, 4, 5, 6]
    x[:, KINDS.index("depthwise")] = [0.5, 0.4, 1.0, 0.7, 1.5, 1.2]
    y = 4.0 * x.sum(axis=1)
    model = fit_kind_ratios(x, y, strength=10.0)
    assert model.ratios["se"] == pytest.approx(model.shared_ratio, rel=1e-3)
    assert model.shared_ratio == pytest.approx(4.0, rel=0.05)


def test_leave_one_group_out_never_sees_the_held_out_group():
    x = np.array([[1.0], [2.0], [3.0], [10.0]])
    y = np.array([2.0, 4.0, 6.0, 100.0])  # the last group follows another law
    seen = []

    class Spy:
        def __init__(self, a, b):
            seen.append(len(b))

        def predict(self, rows):
            return np.zeros(len(rows))

    cross_validate(Spy, x, y, ["a", "a", "a", "b"])
    assert sorted(seen) == [1, 3]
    with pytest.raises(PredictorError, match="two groups"):
        cross_validate(Spy, x, y, ["a"] * 4)


def test_flops_baseline_fits_a_line():
    macs = np.array([1e8, 2e8, 4e8])
    model = fit_flops_linear(macs, 2.0 + 30.0 * macs / 1e9)
    assert model.ms_per_gmac == pytest.approx(30.0, rel=1e-3) and model.intercept_ms == pytest.approx(2.0, rel=1e-2)


def test_runtime_factors_put_two_runtime_versions_on_one_scale():
    """Rows of an older runtime run 1.25x as long; both fits find the factor and predict the newer runtime."""
    rng = np.random.default_rng(1)
    truth = np.array([3.0, 5.0, 2.0, 4.0, 3.0, 6.0, 3.0])
    x = rng.uniform(0.1, 5.0, size=(30, len(KINDS)))
    new_ms = 1.5 + x @ truth
    runtimes = np.array(["v2.1"] * 18 + ["v1.0"] * 12)
    y = np.where(runtimes == "v1.0", 1.25 * new_ms, new_ms)
    model = fit_kind_ratios(x, y, strength=1e-4, runtimes=runtimes)
    assert model.runtime == "v2.1" and model.runtime_factors == {"v1.0": pytest.approx(1.25, rel=0.01)}
    assert model.predict(x) == pytest.approx(new_ms, rel=0.02)
    assert model.predict(x, runtimes=runtimes) == pytest.approx(y, rel=0.02)
    older = fit_kind_ratios(x, y, strength=1e-4, runtimes=runtimes, runtime="v1.0")
    assert older.runtime_factors == {"v2.1": pytest.approx(0.8, rel=0.01)}
    assert fit_kind_ratios(x, y, strength=1e-4).predict(x) != pytest.approx(new_ms, rel=0.02)  # one scale can't fit

    macs = rng.uniform(1e8, 6e8, size=30)
    y = (2.0 + 30.0 * macs / 1e9) * np.where(runtimes == "v1.0", 1.25, 1.0)
    flops = fit_flops_linear(macs, y, runtimes=runtimes)
    assert flops.runtime_factors == {"v1.0": pytest.approx(1.25, rel=1e-3)}
    assert flops.ms_per_gmac == pytest.approx(30.0, rel=1e-3)


def test_published_rows_name_their_runtime():
    """The two Pixel 1 tables of different years are two runtime versions; every row names one."""
    rows = read_rows("published", "pixel1")
    assert all(r.runtime for r in rows)
    readme_v2 = {r.runtime for r in rows if r.spec.family == "MobileNetV2" and "README" in r.source}
    paper = {r.runtime for r in rows if "paper" in r.source}
    assert len(readme_v2) == 1 and len(paper) == 1 and readme_v2 != paper


def test_mnasnet_holdout_rows_read_as_named_architectures():
    rows = read_rows(PUBLISHED.parent / "mnasnet_a1_pixel1_latency.csv", "pixel1")
    assert len(rows) == 25 and {r.spec.family for r in rows} == {"mnasnet-a1"}
    assert {r.spec.name for r in rows} >= {"mnasnet-a1@1.4,224", "mnasnet-a1@0.35,96"}
    assert all("tensorflow/tpu" in r.source and r.runtime for r in rows)
    assert not {r.runtime for r in rows} & {r.runtime for r in read_rows("published", "pixel1")}


def test_published_rows_keep_their_sources():
    rows = read_rows("published", "pixel1")
    families = {r.spec.family for r in rows}
    assert families == {"MobileNetV2", "MobileNetV3"}
    assert len([r for r in rows if r.spec.family == "MobileNetV2"]) >= 22
    assert all("README" in r.source or "arXiv" in r.source or "paper" in r.source.lower() for r in rows)
    v3 = [r for r in rows if r.spec.name.startswith("MobileNetV3-Large-minimalistic 1@224")]
    assert v3 and v3[0].latency_ms == 44.1
    assert PUBLISHED.parent.name == "published"


def test_bad_measurement_files(tmp_path):
    with pytest.raises(ParseError, match="not found"):
        read_rows(tmp_path / "none.csv", "pixel1")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ms\nx,1\n")
    with pytest.raises(ParseError, match="model,latency_ms"):
        read_rows(bad, "pixel1")


def test_op_kinds_of_a_real_model(tiny_tflite):
    from latprof.space import read_tflite_ops

    kinds = [op_kind(op) for op in read_tflite_ops(tiny_tflite)]
    assert kinds == ["conv", "depthwise", "pooling", "other"]


def test_calibrate_end_to_end_on_a_new_device(tmp_path, monkeypatch):
    """A made-up phone that runs every model 2.5x slower than the host plus 1 ms: calibration must find that.

    Each model is measured on the host once and that measurement is reused even if flagged noisy,
    so the phone figures are exactly 2.5x + 1 of the reference costs calibrate sees.
    """
    monkeypatch.setenv("LATPROF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("latprof.calibrate._reference._is_noisy", lambda m: False)
    models = [("MobileNetV2", 0.35, r) for r in (32, 48, 64, 96)]
    from latprof.calibrate import host_reference, tflite_for

    with Store() as store:
        host_ms = [host_reference(tflite_for(model_spec(*m)), store)[0].total_ms for m in models]
    measurements = tmp_path / "galaxy.csv"
    runtime_factor = {"tflite 2.4": 1.3, "tflite 2.14": 1.0}  # two models measured again on an older, slower runtime
    with measurements.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "depth_multiplier", "resolution", "latency_ms", "runtime_version", "source"])
        for i, ((family, alpha, res), ms) in enumerate(zip(models, host_ms)):
            for runtime, factor in runtime_factor.items():
                if runtime == "tflite 2.14" or i % 2:
                    writer.writerow([family, alpha, res, factor * (2.5 * ms + 1.0), runtime, "made up for the test"])
    result = CliRunner().invoke(main, ["calibrate", "--device", "galaxy-s7", "--from", str(measurements)])
    assert result.exit_code == 0, result.output
    assert "calibrated galaxy-s7 from 6 measured models" in result.output and "depthwise" in result.output
    assert "predicts runtime 'tflite 2.14'" in result.output
    with Store() as store:
        calibration = load_calibration("galaxy-s7", store)
    assert calibration.model.runtime_factors == {"tflite 2.4": pytest.approx(1.3, rel=0.02)}
    assert calibration.report["leave_one_out"]["mape"] < 0.05
    for row in calibration.rows:
        factor = runtime_factor[row["runtime"]]
        assert row["measured_ms"] == pytest.approx(factor * (2.5 * row["reference_ms"] + 1.0))
        assert row["loo_ms"] == pytest.approx(row["measured_ms"], rel=0.1)
    predicted = CliRunner().invoke(main, ["predict", "mobilenet-v2@0.35,64", "--device", "galaxy-s7"])
    assert predicted.exit_code == 0, predicted.output
    assert "for runtime 'tflite 2.14'" in predicted.output
    unknown = CliRunner().invoke(main, ["calibrate", "--device", "galaxy-s7", "--from", str(measurements),
                                        "--runtime", "tflite 9"])
    assert unknown.exit_code != 0 and "no calibration row was measured with runtime 'tflite 9'" in unknown.output
