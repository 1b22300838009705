"""The one model (latprof.predictor._model.fit_units) on synthetic laws: what it recovers, and what it ignores.

Latencies follow a known law over the analytic prior (tests/_laws.py); the only figures the
assertions use are the law's own parameters and the model's errors relative to simpler fits.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from _laws import ANALYTIC, family_ratios, law_ms, law_rows
from latprof.errors import PredictorError
from latprof.predictor import error_summary
from latprof.predictor._known import rescale
from latprof.predictor._model import Row, fit_units
from latprof.predictor._priors import AnalyticPrior, DevicesPrior, analytic_ms
from latprof.predictor._units import arch_units, layer_unit
from latprof.space import MnasNetSpace, op_family

SPACE = MnasNetSpace(0.5, 96)
RATIOS = family_ratios(0)
PRIOR = AnalyticPrior()
# The families that carry most of the cost and vary from one architecture to another (the classifier's do
# not: its cost is the intercept's; SE operators are too cheap to pin down), so their ratios are identifiable.
VARYING = ("conv", "depthwise", "pointwise")


def predict(model, prior, rows) -> np.ndarray:
    """The fitted model's latency of each row, on the runtime it predicts."""
    return np.array([model.intercept_ms + sum(model.unit_ms(u, prior) for u in r.units) for r in rows])


def _archs(n: int, seed: int = 0) -> list:
    return [SPACE.sample(random.Random(seed * 100_000 + i)) for i in range(n)]


@pytest.fixture(scope="module")
def population():
    archs = _archs(400)
    return archs, law_rows(SPACE, archs, RATIOS, noise=0.01)


@pytest.fixture(scope="module")
def clean_fit(population):
    _, rows = population
    return fit_units(rows[:200], PRIOR)


def test_per_family_ratios_are_recovered(population, clean_fit):
    _, rows = population
    model, loo, kept = clean_fit
    y_held = np.array([r.latency_ms for r in rows[200:]])
    held = error_summary(predict(model, PRIOR, rows[200:]), y_held)
    assert held["mape"] < 0.02 and held["spearman_rho"] > 0.99
    for family in VARYING:
        assert model.ratio + model.family_ratio.get(family, 0.0) == pytest.approx(RATIOS[family], rel=0.05), family
    # the shared ratio alone (intercept + s x prior, no per-family correction) is clearly worse: the families
    # were learnt
    prior_ms = lambda rs: [sum(analytic_ms(u) for u in r.units) for r in rs]  # noqa: E731
    line = np.polyfit(prior_ms(rows[:200]), [r.latency_ms for r in rows[:200]], 1)
    shared = error_summary(np.polyval(line, prior_ms(rows[200:])), y_held)
    assert shared["mape"] > 2 * held["mape"]
    assert kept.all() and error_summary(loo, np.array([r.latency_ms for r in rows[:200]]))["mape"] < 0.02


def test_a_runtime_factor_is_recovered(population):
    """Rows of an older runtime run 1.3x as long; the fit puts them on the newer runtime's scale."""
    _, rows = population
    new = rows[:40]
    mixed = new[:25] + [Row(r.units, 1.3 * r.latency_ms, "old") for r in new[25:]]
    mixed = [Row(r.units, r.latency_ms, r.runtime or "new") for r in mixed]
    model, _, _ = fit_units(mixed, PRIOR)
    assert model.runtime == "new" and model.runtime_factors == {"old": pytest.approx(1.3, rel=0.02)}
    y_new = np.array([r.latency_ms for r in new])
    assert error_summary(predict(model, PRIOR, new), y_new)["mape"] < 0.03
    older, _, _ = fit_units(mixed, PRIOR, runtime="old")
    assert older.runtime == "old" and older.runtime_factors == {"new": pytest.approx(1 / 1.3, rel=0.02)}
    assert error_summary(predict(older, PRIOR, new), 1.3 * y_new)["mape"] < 0.03
    with pytest.raises(PredictorError, match="no calibration row was measured with runtime 'v9'"):
        fit_units(mixed, PRIOR, runtime="v9")


def _device(ratios: dict[str, float], rng: np.random.Generator, spread: float) -> dict[str, float]:
    """A made-up known device: per family ratios to the analytic cost, times a per-key factor of its own."""
    out = {}
    for layer in SPACE.unique_layer_configs():
        unit = layer_unit("", layer)
        ms = sum(ratios[op_family(op)] * ANALYTIC.op_ms(op) for op in unit.operators)
        out[unit.key] = float(ms * np.exp(rng.normal(0.0, spread)))
    return out


def test_a_mix_of_known_devices_beats_the_analytic_prior():
    """The device costs 0.7 x A + 0.3 x B per layer (C is a distractor): the devices prior finds that."""
    rng = np.random.default_rng(5)
    a, b, c = (_device(family_ratios(s), rng, 0.4) for s in (1, 2, 3))
    archs = _archs(230, seed=1)
    units = [tuple(arch_units(SPACE, arch)) for arch in archs]
    y = np.array([1.5 + sum(0.7 * a[u.key] + 0.3 * b[u.key] for u in us) for us in units])
    rows = [Row(us, float(ms)) for us, ms in zip(units, y)]
    train, test = rows[:30], rows[30:]
    components = {"A": a, "B": b, "C": c}
    devices = DevicesPrior(components, {name: rescale(costs, SPACE) for name, costs in components.items()})
    mix, _, _ = fit_units(train, devices)
    alone, _, _ = fit_units(train, PRIOR)
    mixed = error_summary(predict(mix, devices, test), y[30:])
    analytic = error_summary(predict(alone, PRIOR, test), y[30:])
    assert mixed["mape"] < 0.5 * analytic["mape"] and mixed["mape"] < 0.02
    assert mixed["spearman_rho"] > analytic["spearman_rho"]
    # the mix's weights, in device ms per device ms (each column is a device's cost over its analytic scale)
    weight = {name: mix.aux[name] / devices.scales[name] for name in components}
    assert weight == {"A": pytest.approx(0.7, abs=0.05), "B": pytest.approx(0.3, abs=0.05),
                      "C": pytest.approx(0.0, abs=0.05)}


def test_ten_noisy_rows_get_the_heavy_penalties(population, clean_fit):
    """The SE rule: with 10 rows at 10% noise the per-key corrections are not worth their cost, and the per-family
    ones are penalised harder than 200 clean rows penalise them."""
    archs, _ = population
    noisy = law_rows(SPACE, archs[:10], RATIOS, noise=0.10, seed=4)
    model, _, _ = fit_units(noisy, PRIOR)
    heavy = [np.inf if v is None else v for v in model.lambdas]
    clean = [np.inf if v is None else v for v in clean_fit[0].lambdas]
    assert heavy[2] == np.inf  # per-key group dropped
    assert heavy[1] > clean[1]  # 200 clean rows earn the per-family ratios a lighter penalty
    assert not model.key_ratio


def test_a_wild_row_is_dropped(population, clean_fit):
    _, rows = population
    wild = list(rows[:40])
    wild[7] = Row(wild[7].units, 3.0 * wild[7].latency_ms)  # a busy phone, a typo
    model, loo, kept = fit_units(wild, PRIOR)
    assert kept.tolist() == [i != 7 for i in range(40)] and np.isnan(loo[7])
    # the same fit as without the row (up to the column scales, taken from all rows): kept, a 3x row in 40
    # would move the predictions by several percent
    reference, _, _ = fit_units(rows[:7] + rows[8:40], PRIOR)
    np.testing.assert_allclose(predict(model, PRIOR, rows[200:220]), predict(reference, PRIOR, rows[200:220]),
                               rtol=1e-3)


def test_rows_that_run_nothing_leave_the_fit_unchanged(population):
    """E.g. disconnected NAS-Bench-201 cells: nothing runs, the phone times ~0 ms."""
    _, rows = population
    clean, loo, kept = fit_units(rows[:40], PRIOR)
    empty = [Row((), ms) for ms in (0.005, 0.004, 0.006)]
    mixed, mixed_loo, mixed_kept = fit_units(rows[:20] + empty + rows[20:40], PRIOR)
    assert mixed.to_json() == clean.to_json() and mixed.key_ratio == clean.key_ratio
    assert mixed_kept.tolist() == [True] * 20 + [False] * 3 + [True] * 20
    np.testing.assert_allclose(np.r_[mixed_loo[:20], mixed_loo[23:]], loo)


def test_too_few_rows_is_a_clear_error(population):
    _, rows = population
    with pytest.raises(PredictorError, match="at least 3"):
        fit_units(rows[:2], PRIOR)
    with pytest.raises(PredictorError, match="at least 3"):
        fit_units(rows[:2] + [Row((), 0.005)] * 5, PRIOR)


def test_the_law_helper_is_the_analytic_prior_times_the_ratios():
    """tests/_laws.py prices exactly what the analytic prior prices (else the tests above test the helper)."""
    units = arch_units(SPACE, _archs(1)[0])
    ones = {family: 1.0 for family in RATIOS}
    assert law_ms(units, ones) == pytest.approx(1.5 + sum(PRIOR.costs(u)[0].sum() for u in units), rel=1e-12)
