"""A device's predictor for one space from N measured architectures (issue: more spaces, real phone data)."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from _laws import family_ratios, law_latencies, law_rows
from latprof.cli import main
from latprof.predictor import LatencyPredictor, Observation, error_summary, fit_predictor, select_archs
from latprof.predictor._priors import AnalyticPrior
from latprof.space import FAMILIES, get_space, op_family
from latprof.store import Store

SPACE = get_space("mnasnet", resolution=96, depth_multiplier=0.5)
RATIOS = family_ratios(0)


@pytest.fixture(scope="module")
def population():
    archs = [SPACE.sample(random.Random(i)) for i in range(400)]
    return archs, law_latencies(SPACE, archs, RATIOS, noise=0.02)


def test_ten_samples_already_rank_well_and_leave_one_out_is_reported(population, tmp_path):
    archs, y = population
    observations = [Observation(a, float(ms)) for a, ms in zip(archs, y)]
    with Store(tmp_path / "x.db") as store:
        fitted = fit_predictor(store, "galaxy", SPACE, observations=observations, prior="analytic", samples=10,
                               seed=3)
    report = fitted.report
    assert report["rows"] == 400 and report["fitted_on"] == 10 and len(report["fitted_rows"]) == 10
    assert report["held_out"]["n"] == 390 and report["held_out"]["spearman_rho"] > 0.9
    assert set(report["leave_one_out"]) >= {"mape", "within_10", "rmse_ms"} and report["leave_one_out"]["mape"] > 0
    assert set(report["baselines_held_out"]) == {"flops", "op_counts"}
    # what the report says held out is what the stored document predicts
    fitted_names = set(report["fitted_rows"])
    held = [(a, ms) for a, ms in zip(archs, y) if SPACE.format(a) not in fitted_names]
    predicted = fitted.predictor.predict_many([a for a, _ in held])
    assert error_summary(predicted, np.array([ms for _, ms in held]))["mape"] == pytest.approx(
        report["held_out"]["mape"], rel=1e-9)


@pytest.fixture(scope="module")
def selection(population):
    archs, _ = population
    rows = law_rows(SPACE, archs, RATIOS, noise=0.02)
    prior = AnalyticPrior()
    pool = archs[:300]
    active = select_archs(SPACE, pool, 30, prior, how="active")
    randoms = [select_archs(SPACE, pool, 30, prior, how="random", seed=seed) for seed in range(5)]
    return rows, prior, pool, active, randoms


def test_active_selection_is_distinct_and_deterministic(selection):
    rows, prior, pool, picks, randoms = selection
    assert len(set(picks)) == 30 and picks == select_archs(SPACE, pool, 30, prior, how="active")
    assert picks != list(range(30))  # a design, not the first rows (a constant family column once made it so)
    assert len({tuple(r) for r in randoms}) == 5 and all(len(set(r)) == 30 for r in randoms)
    assert randoms[0] == select_archs(SPACE, pool, 30, prior, how="random", seed=0)


def test_active_selection_spreads_the_family_costs_more_than_random_picks(selection):
    """D-optimal design: the picks' per-family prior costs span more volume (log det of their information
    matrix) than any of 5 random picks of the same size. (On this law that does not make the fit better than
    random picks: 2.1% vs 1.8% held-out MAPE; the closing note of issue 16 says so.)"""
    rows, prior, pool, picks, randoms = selection

    Z = np.zeros((len(pool), len(FAMILIES)))
    for i in range(len(pool)):
        for u in rows[i].units:
            for op, p in zip(u.operators, prior.costs(u)[0]):
                Z[i, FAMILIES.index(op_family(op))] += p
    Z = Z[:, np.ptp(Z, axis=0) > 0]
    Z = np.column_stack([np.ones(len(pool)), (Z - Z.mean(axis=0)) / Z.std(axis=0)])

    def log_det(chosen) -> float:
        return float(np.linalg.slogdet(Z[chosen].T @ Z[chosen] + 1e-2 * np.eye(Z.shape[1]))[1])

    assert log_det(picks) > max(log_det(r) for r in randoms)


def _write_rows(path, space, archs, y, device=None):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "latency_ms"] + (["device"] if device else []))
        for a, ms in zip(archs, y):
            w.writerow([space.format(a), f"{ms:.4f}"] + ([device] if device else []))


def test_cli_calibrate_predict_and_search_use_the_space_calibration(tmp_path):
    space = get_space("mnasnet", resolution=96)
    archs1 = [space.sample(random.Random(1000 + i)) for i in range(60)]
    truth = law_latencies(space, archs1, RATIOS)
    rows = tmp_path / "measured.csv"
    _write_rows(rows, space, archs1, truth)
    db = str(tmp_path / "lat.db")
    runner = CliRunner()
    result = runner.invoke(main, ["--db", db, "calibrate", "--space", "mnasnet", "--resolution", "96", "--device",
                                  "galaxy-test", "--from", str(rows), "--samples", "20", "--select", "active"])
    assert result.exit_code == 0, result.output
    assert ("calibrated galaxy-test for space mnasnet from 20 of 60 measured architectures "
            "(active selection; prior: analytic)") in result.stdout
    assert "held out (40 rows not fitted on)" in result.stdout
    with Store(db) as store:
        stored = store.latest_predictor("galaxy-test", "mnasnet")
        raw = store.connection.execute("SELECT coefficients FROM predictors WHERE device = 'galaxy-test'")
        assert json.loads(raw.fetchone()[0]) == stored.document  # plain JSON, no pickles
    assert stored.space == "mnasnet" and stored.document["space_params"] == {"depth_multiplier": 1.0,
                                                                              "resolution": 96}
    fitted_rows = stored.report["fitted_rows"]
    assert len(set(fitted_rows)) == 20 and set(fitted_rows) <= {space.format(a) for a in archs1}
    assert stored.report["held_out"]["mape"] < 0.05
    predictor = LatencyPredictor(stored.document)
    arch = space.format(archs1[-1])
    out = runner.invoke(main, ["--db", db, "predict", arch, "--space", "mnasnet", "--device", "galaxy-test", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["latency_ms"] == pytest.approx(predictor.predict(archs1[-1]).latency_ms)
    assert got["latency_ms"] == pytest.approx(float(predictor.predict_many([archs1[-1]])[0]))
    assert got["latency_ms"] == pytest.approx(truth[-1], rel=0.05)
    assert {r["source"] for r in got["layers"]} == {"calibrated"}
    listing = tmp_path / "archs.txt"
    listing.write_text("\n".join(space.format(a) for a in archs1[:3]) + "\n")
    many = runner.invoke(main, ["--db", db, "predict", "--from", str(listing), "--space", "mnasnet", "--device",
                                "galaxy-test", "--json"])
    assert many.exit_code == 0 and len(json.loads(many.stdout)) == 3
    target = float(np.median(truth))
    search = runner.invoke(main, ["--db", db, "search", "--target-ms", f"{target:.3f}", "--device", "galaxy-test",
                                  "--space", "mnasnet", "--samples", "4", "--batch-size", "4", "--controller",
                                  "random", "--out", str(tmp_path / "search")])
    assert search.exit_code == 0, search.output
    assert "calibrated predictor" in search.stdout and "resolution 96" in search.stdout
    trials = list(csv.DictReader((tmp_path / "search" / "trials.csv").open()))
    assert len(trials) == 4
    for t in trials:
        assert float(t["latency_ms"]) == pytest.approx(float(predictor.predict_many([space.parse(t["arch"])])[0]))


def test_cli_suggest_prints_architectures_to_measure(tmp_path):
    out = CliRunner().invoke(main, ["--db", str(tmp_path / "x.db"), "calibrate", "--space", "mnasnet", "--resolution",
                                    "96", "--device", "newphone", "--suggest", "5"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    space = get_space("mnasnet", resolution=96)
    assert len(lines) == 5 and len({space.format(space.parse(s)) for s in lines}) == 5


@pytest.mark.parametrize("args, message", [
    (["--from", "missing.csv"], "measurements file not found"),
    (["--from", "published"], "no published latencies ship for space mnasnet"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    out = CliRunner().invoke(main, ["--db", str(tmp_path / "x.db"), "calibrate", "--space", "mnasnet", "--device",
                                    "p", *args])
    assert out.exit_code != 0
    assert message in out.output and len(out.output.strip().splitlines()) == 1


def test_fbnet_from_published_phone_data_then_search(tmp_path):
    """The issue's path: calibrate the Samsung A50 for FBNet from the shipped data, then search under 40 ms."""
    db = str(tmp_path / "a50.db")
    runner = CliRunner()
    out = runner.invoke(main, ["--db", db, "calibrate", "--space", "fbnet", "--device", "samsung_a50", "--from",
                               "published", "--samples", "50", "--seed", "1", "--prior", "analytic"])
    assert out.exit_code == 0, out.output
    assert "from 50 of 5000 measured architectures (random selection; prior: analytic)" in out.stdout
    held = out.stdout.split("held out (4950 rows not fitted on) ")[1]
    assert float(held.split("MAPE")[1].split("%")[0]) < 15.0  # real phone data: the fit generalises
    search = runner.invoke(main, ["--db", db, "search", "--space", "fbnet", "--device", "samsung_a50", "--target-ms",
                                  "40", "--samples", "4", "--batch-size", "4", "--controller", "random",
                                  "--out", str(tmp_path / "s")])
    assert search.exit_code == 0, search.output
    assert "in the fbnet space (resolution 32)" in search.stdout
    space = get_space("fbnet")
    with Store(db) as store:
        predictor = LatencyPredictor(store.latest_predictor("samsung_a50", "fbnet").document)
    for row in csv.DictReader((tmp_path / "s" / "trials.csv").open()):
        assert float(row["latency_ms"]) == pytest.approx(float(predictor.predict_many([space.parse(row["arch"])])[0]))
        assert float(row["accuracy"]) > 0
    assert (tmp_path / "s" / "best.tflite").stat().st_size > 0


def test_the_default_prior_mixes_the_other_shipped_phones(tmp_path, monkeypatch):
    """--prior auto on a space with shipped phone data: the other phones (never the device itself) and analytic.

    The known phones are fitted on 60 of their rows (not 2000) into a cache of this test's own, to stay quick.
    """
    monkeypatch.setattr("latprof.predictor._known.MAX_ROWS", 60)
    monkeypatch.setenv("LATPROF_CACHE", str(tmp_path / "cache"))
    db = str(tmp_path / "a50.db")
    out = CliRunner().invoke(main, ["--db", db, "calibrate", "--space", "fbnet", "--device", "samsung_a50", "--from",
                                    "published", "--samples", "50", "--seed", "1"])
    assert out.exit_code == 0, out.output
    assert ("from 50 of 5000 measured architectures (random selection; prior: devices(pixel2,pixel3,raspi4)"
            "+analytic)") in out.stdout
    held = out.stdout.split("held out (4950 rows not fitted on) ")[1]
    assert float(held.split("MAPE")[1].split("%")[0]) < 15.0
    with Store(db) as store:
        stored = store.latest_predictor("samsung_a50", "fbnet")
    assert stored.document["prior"] == stored.report["prior"] == "devices(pixel2,pixel3,raspi4)+analytic"
    assert set(stored.report["model"]["aux"]) >= {"pixel2", "pixel3", "raspi4", "analytic"}
