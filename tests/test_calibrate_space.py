"""A device's predictor for one space from N measured architectures (issue: more spaces, real phone data)."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from latprof.calibrate import (
    PriorCosts, SpacePredictor, bags, fit_space_model, layer_info, load_space_calibration, predict_bags,
    ranking_report, select_active, select_random,
)
from latprof.calibrate._space import analytic_ms, layer_group
from latprof.cli import main
from latprof.errors import PredictorError
from latprof.space import get_space
from latprof.store import Store

SPACE = get_space("mnasnet", resolution=96, depth_multiplier=0.5)


def _truth(space, archs, seed: int = 0, noise: float = 0.0):
    """Synthetic device: a different ratio per layer kind, an intercept, optional multiplicative noise."""
    rng = np.random.default_rng(seed)
    ratio: dict[str, float] = {}
    out = []
    for arch in archs:
        total = 1.5
        for layer in space.layers(arch):
            group = layer_group(layer)
            if group not in ratio:
                ratio[group] = float(rng.uniform(1.0, 4.0))
            total += ratio[group] * analytic_ms(layer)
        out.append(total)
    y = np.array(out)
    return y * rng.normal(1.0, noise, len(y)) if noise else y


@pytest.fixture(scope="module")
def population():
    archs = [SPACE.sample(random.Random(i)) for i in range(400)]
    return archs, bags(SPACE, archs), _truth(SPACE, archs, noise=0.02)


def test_fit_learns_per_kind_ratios_from_measurements(population):
    archs, bag_list, y = population
    info = layer_info(SPACE, PriorCosts({}, "analytic"), {k for b in bag_list for k in b})
    model = fit_space_model(bag_list[:200], y[:200], info)
    held = predict_bags(model, bag_list[200:], info)
    report = ranking_report(held, y[200:])
    assert report["mape"] < 0.02
    assert report["spearman_rho"] > 0.99
    # The shared ratio alone (no per-kind correction) is clearly worse: the kinds were learnt.
    plain = np.polyfit([sum(n * info[k][1] for k, n in b.items()) for b in bag_list[:200]], y[:200], 1)
    plain_pred = np.polyval(plain, [sum(n * info[k][1] for k, n in b.items()) for b in bag_list[200:]])
    assert ranking_report(plain_pred, y[200:])["mape"] > 2 * report["mape"]


def test_ten_samples_already_rank_well_and_leave_one_out_is_reported(population):
    archs, bag_list, y = population
    info = layer_info(SPACE, PriorCosts({}, "analytic"), {k for b in bag_list for k in b})
    train = select_random(len(archs), 10, seed=3)
    model = fit_space_model([bag_list[i] for i in train], y[train], info)
    test = np.setdiff1d(np.arange(len(archs)), train)
    assert ranking_report(predict_bags(model, [bag_list[i] for i in test], info), y[test])["spearman_rho"] > 0.9
    assert set(model.loo) >= {"mape", "within_10", "rmse_ms"} and model.loo["mape"] > 0


def test_architectures_that_run_nothing_do_not_bend_the_fit(population):
    from collections import Counter

    archs, bag_list, y = population
    info = layer_info(SPACE, PriorCosts({}, "analytic"), {k for b in bag_list for k in b})
    clean = fit_space_model(bag_list[:40], y[:40], info)
    # e.g. disconnected NAS-Bench-201 cells in the pruned form: nothing runs, the phone times ~0 ms
    mixed = fit_space_model(bag_list[:40] + [Counter()] * 3, np.r_[y[:40], [0.005, 0.004, 0.006]], info)
    assert mixed.to_json() == clean.to_json()


def test_too_few_rows_is_a_clear_error(population):
    _, bag_list, y = population
    info = layer_info(SPACE, PriorCosts({}, "analytic"), {k for b in bag_list[:2] for k in b})
    with pytest.raises(PredictorError, match="at least 3"):
        fit_space_model(bag_list[:2], y[:2], info)


def test_active_selection_is_distinct_deterministic_and_beats_random_picks(population):
    _, bag_list, y = population
    info = layer_info(SPACE, PriorCosts({}, "analytic"), {k for b in bag_list for k in b})
    pool, test = np.arange(300), np.arange(300, 400)

    def held_out_mape(picks) -> float:
        model = fit_space_model([bag_list[i] for i in picks], y[picks], info)
        return ranking_report(predict_bags(model, [bag_list[i] for i in test], info), y[test])["mape"]

    picks = select_active([bag_list[i] for i in pool], info, 30)
    assert len(set(picks)) == 30 and picks == select_active([bag_list[i] for i in pool], info, 30)
    random_mapes = [held_out_mape(np.array(select_random(len(pool), 30, seed))) for seed in range(5)]
    assert held_out_mape(np.array(picks)) < np.mean(random_mapes)


def _write_rows(path, space, archs, y, device=None):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "latency_ms"] + (["device"] if device else []))
        for a, ms in zip(archs, y):
            w.writerow([space.format(a), f"{ms:.4f}"] + ([device] if device else []))


def test_cli_calibrate_predict_and_search_use_the_space_calibration(tmp_path):
    space = get_space("mnasnet", resolution=96)
    archs1 = [space.sample(random.Random(1000 + i)) for i in range(60)]
    rows = tmp_path / "measured.csv"
    _write_rows(rows, space, archs1, _truth(space, archs1))
    db = str(tmp_path / "lat.db")
    runner = CliRunner()
    result = runner.invoke(main, ["--db", db, "calibrate", "--space", "mnasnet", "--resolution", "96", "--device",
                                  "galaxy-test", "--from", str(rows), "--samples", "20", "--select", "active"])
    assert result.exit_code == 0, result.output
    assert "from 20 of 60 measured architectures (active selection; prior: analytic)" in result.stdout
    assert "held out (40 rows not fitted on)" in result.stdout
    with Store(db) as store:
        calibration = load_space_calibration("galaxy-test", "mnasnet", store)
        stored = store.connection.execute("SELECT coefficients FROM predictors WHERE device = 'galaxy-test'")
        json.loads(stored.fetchone()[0])  # plain JSON, no pickles
    assert calibration is not None and calibration.params == {"depth_multiplier": 1.0, "resolution": 96}
    assert len(calibration.report["fitted_archs"]) == 20
    predictor = SpacePredictor(calibration)
    arch = space.format(archs1[-1])
    out = runner.invoke(main, ["--db", db, "predict", arch, "--space", "mnasnet", "--device", "galaxy-test", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["latency_ms"] == pytest.approx(predictor.predict(archs1[-1]).latency_ms)
    assert got["latency_ms"] == pytest.approx(float(predictor.predict_many([archs1[-1]])[0]))
    assert {r["source"] for r in got["layers"]} == {"calibrated"}
    listing = tmp_path / "archs.txt"
    listing.write_text("\n".join(space.format(a) for a in archs1[:3]) + "\n")
    many = runner.invoke(main, ["--db", db, "predict", "--from", str(listing), "--space", "mnasnet", "--device",
                                "galaxy-test", "--json"])
    assert many.exit_code == 0 and len(json.loads(many.stdout)) == 3
    target = float(np.median(_truth(space, archs1)))
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
                               "published", "--samples", "50", "--seed", "1"])
    assert out.exit_code == 0, out.output
    assert "from 50 of 5000 measured architectures (random selection; prior: analytic)" in out.stdout
    held = out.stdout.split("held out (4950 rows not fitted on): ")[1]
    assert float(held.split("MAPE")[1].split("%")[0]) < 15.0  # real phone data: the fit generalises
    search = runner.invoke(main, ["--db", db, "search", "--space", "fbnet", "--device", "samsung_a50", "--target-ms",
                                  "40", "--samples", "4", "--batch-size", "4", "--controller", "random",
                                  "--out", str(tmp_path / "s")])
    assert search.exit_code == 0, search.output
    assert "in the fbnet space (resolution 32)" in search.stdout
    space = get_space("fbnet")
    with Store(db) as store:
        predictor = SpacePredictor(load_space_calibration("samsung_a50", "fbnet", store))
    for row in csv.DictReader((tmp_path / "s" / "trials.csv").open()):
        assert float(row["latency_ms"]) == pytest.approx(float(predictor.predict_many([space.parse(row["arch"])])[0]))
        assert float(row["accuracy"]) > 0
    assert (tmp_path / "s" / "best.tflite").stat().st_size > 0
